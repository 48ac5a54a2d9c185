//! Many tills, one store: journals shipped to a real PostgreSQL server (the
//! Debian package's, started in a temp dir by `common::postgres`).
//!
//! Every test ends with the same check: the store's orders are the union of
//! the journals' orders, each exactly once and in its latest state, and the
//! store holds every event of every journal once.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::postgres::Postgres;
use scanpay::domain::{AuthCode, Fen, TillId};
use scanpay::journal::{
    EventRecord, FinalRecord, Journal, JournalWriter, NewOrder, OrderId, OrderState,
};
use scanpay::payment::Event;
use scanpay::store::{self, StoreError, Till};
use time::{Duration, OffsetDateTime, UtcOffset};

const MCH_ID: &str = "1900000109";
const CODE: &str = "134567890123456789";

/// A till's journal, written quickly through the library.
struct TillJournal {
    till: TillId,
    path: PathBuf,
    writer: JournalWriter,
    reader: Arc<Mutex<Journal>>,
    installation_id: String,
    made: usize,
}

impl TillJournal {
    fn open(dir: &Path, id: &str) -> Self {
        let path = dir.join(format!("{id}.sqlite3"));
        let journal = Journal::open(&path).unwrap();
        let installation_id = journal.installation_id().unwrap().to_string();
        let writer = JournalWriter::spawn(journal);
        let reader = Arc::new(Mutex::new(Journal::open_read_only(&path).unwrap()));
        Self {
            till: TillId::parse(id).unwrap(),
            path,
            writer,
            reader,
            installation_id,
            made: 0,
        }
    }

    fn ident(&self) -> Till {
        Till {
            installation_id: self.installation_id.clone(),
            till_id: self.till.as_str().to_string(),
            mch_id: MCH_ID.into(),
        }
    }

    /// `n` orders of three events or more: opened, a note, and for two in
    /// three a final state (the rest stay open, to be finished later).
    fn orders(&mut self, n: usize) -> Vec<OrderId> {
        let till = self.till.clone();
        let first = self.made;
        self.made += n;
        self.writer
            .run_blocking(move |j| {
                let mut ids = Vec::new();
                for i in first..first + n {
                    let now = OffsetDateTime::now_utc();
                    let new = NewOrder {
                        till: &till,
                        total_fee: Fen(100 + i as u64),
                        body: "Coffee",
                        auth_code_masked: AuthCode::parse(CODE).unwrap().masked(),
                        now,
                        local_offset: UtcOffset::from_hms(8, 0, 0).unwrap(),
                    };
                    let (id, _) = j.open_order(&new)?;
                    j.append(id, &note(now, &format!("order {i}")))?;
                    if i % 3 != 2 {
                        finish(j, id, now)?;
                    }
                    ids.push(id);
                }
                Ok(ids)
            })
            .unwrap()
    }

    /// Finishes every order still open.
    fn finish_open(&self) {
        self.writer
            .run_blocking(|j| {
                for order in j.unfinished()? {
                    finish(j, order.id, OffsetDateTime::now_utc())?;
                }
                Ok(())
            })
            .unwrap();
    }

    fn sync(&self, pg: &Postgres, batch: u32) -> Result<store::Report, StoreError> {
        runtime().block_on(self.shipping(pg, batch))
    }

    /// One sync, as a task of its own.
    fn shipping(
        &self,
        pg: &Postgres,
        batch: u32,
    ) -> impl std::future::Future<Output = Result<store::Report, StoreError>> + Send + 'static {
        let (settings, reader, writer, till) = (
            pg.settings(batch),
            Arc::clone(&self.reader),
            self.writer.clone(),
            self.ident(),
        );
        async move { store::sync(&settings, &reader, &writer, &till).await }
    }

    fn event_count(&self) -> u64 {
        self.reader.lock().unwrap().events_after(0).unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn note(at: OffsetDateTime, text: &str) -> EventRecord {
    EventRecord {
        at,
        since_t0_ms: None,
        summary: format!("note: {text}"),
        event: Event::Note { text: text.into() },
    }
}

fn finish(
    j: &mut Journal,
    id: OrderId,
    at: OffsetDateTime,
) -> Result<(), scanpay::journal::JournalError> {
    let outcome = FinalRecord {
        state: OrderState::Paid,
        transaction_id: Some("4200001234202611221234567890".into()),
        err_code: None,
        message: Some("支付成功".into()),
        at: at + Duration::milliseconds(1),
    };
    let event = EventRecord {
        at: outcome.at,
        since_t0_ms: Some(1),
        summary: "finished: paid".into(),
        event: Event::Finished {
            state: "paid".into(),
            err_code: None,
            transaction_id: outcome.transaction_id.clone(),
        },
    };
    j.finish(id, &outcome, &event)
}

/// The store equals the union of these tills' journals (`common::store`).
fn assert_store_is_union(pg: &Postgres, tills: &[TillJournal]) {
    let journals: Vec<&Path> = tills.iter().map(|t| t.path.as_path()).collect();
    common::store::assert_store_is_union(pg, &journals);
}

/// Every till syncs at the same time.
fn all_at_once(
    pg: &Postgres,
    tills: &[TillJournal],
    batch: u32,
) -> Vec<Result<store::Report, StoreError>> {
    let shipping: Vec<_> = tills.iter().map(|t| t.shipping(pg, batch)).collect();
    runtime().block_on(async move {
        let tasks: Vec<_> = shipping.into_iter().map(tokio::spawn).collect();
        let mut reports = Vec::new();
        for task in tasks {
            reports.push(task.await.unwrap());
        }
        reports
    })
}

fn tills(dir: &Path, n: usize) -> Vec<TillJournal> {
    (1..=n)
        .map(|i| TillJournal::open(dir, &format!("T{i:02}")))
        .collect()
}

#[test]
fn two_tills_ship_and_catch_up_and_the_latest_state_wins() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tills = tills(dir.path(), 2);
    for till in &mut tills {
        till.orders(30);
    }
    for till in &tills {
        let report = till.sync(&pg, 25).unwrap();
        assert_eq!(report.shipped, till.event_count());
        assert_eq!(report.behind, 0);
    }
    assert_store_is_union(&pg, &tills);
    // Nothing new: nothing sent.
    assert_eq!(tills[0].sync(&pg, 25).unwrap().shipped, 0);
    // The open orders are finished, and more are taken: shipped, the store
    // shows them paid (a later state overwrites an earlier one).
    for till in &mut tills {
        till.finish_open();
        till.orders(5);
    }
    assert!(
        common::store::store_orders(&pg)
            .values()
            .any(|o| o.state == "open")
    );
    for till in &tills {
        till.sync(&pg, 25).unwrap();
    }
    assert_store_is_union(&pg, &tills);
    // The journal's mark: everything shipped.
    for till in &tills {
        let mark = till.reader.lock().unwrap().shipped_through().unwrap();
        assert_eq!(mark as u64, till.event_count());
    }
    assert_eq!(
        pg.psql("SELECT version FROM schema_version").trim(),
        store::MIGRATIONS.len().to_string()
    );
}

#[test]
fn ten_tills_at_once_with_the_database_killed_and_restarted_mid_way() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tills = tills(dir.path(), 10);
    for till in &mut tills {
        till.orders(20);
    }
    // All ten at once, the first time: the migrations run once.
    for report in all_at_once(&pg, &tills, 10) {
        assert_eq!(report.unwrap().behind, 0);
    }
    assert_store_is_union(&pg, &tills);

    // The database dies: shipping fails, clearly, and payments go on.
    pg.kill9();
    for till in &mut tills {
        till.orders(10);
        till.finish_open();
    }
    let down = tills[0].sync(&pg, 10).unwrap_err();
    assert!(
        matches!(down, StoreError::Unreachable { .. }),
        "{down:?}: {down}"
    );
    assert!(down.to_string().contains("cannot reach the store database"));
    assert!(!down.to_string().contains(common::postgres::PASSWORD));
    pg.restart();
    for report in all_at_once(&pg, &tills, 7) {
        report.unwrap();
    }
    assert_store_is_union(&pg, &tills);
}

#[test]
fn the_database_killed_between_batches_of_one_sync() {
    let pg = Arc::new(Postgres::start());
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillJournal::open(dir.path(), "T01");
    till.orders(400);
    // The server is killed while the sync is shipping its batches of 5.
    let killer = {
        let pg = Arc::clone(&pg);
        let journal = Journal::open_read_only(&till.path).unwrap();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::time::Instant::now() < deadline {
                if journal.shipped_through().unwrap() > 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            pg.kill9();
        })
    };
    let first = till.sync(&pg, 5);
    killer.join().unwrap();
    let Err(e) = first else {
        panic!("the sync finished before the kill; make the backlog larger");
    };
    assert!(
        matches!(
            e,
            StoreError::Database { .. } | StoreError::Unreachable { .. }
        ),
        "{e:?}"
    );
    pg.restart();
    let mark_before = till.reader.lock().unwrap().shipped_through().unwrap();
    assert!(mark_before > 0, "a batch was shipped before the kill");
    till.sync(&pg, 50).unwrap();
    assert_store_is_union(&pg, std::slice::from_ref(&till));
}

#[test]
fn an_event_sent_again_with_other_content_is_refused() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillJournal::open(dir.path(), "T01");
    till.orders(3);
    till.sync(&pg, 100).unwrap();
    // A copy of the journal (same installation id) goes on its own way: its
    // next events have the ids of the original's next events.
    till.writer.close();
    drop(till);
    let copy_dir = tempfile::tempdir().unwrap();
    for file in ["T01.sqlite3", "T01.sqlite3-wal"] {
        if dir.path().join(file).exists() {
            std::fs::copy(dir.path().join(file), copy_dir.path().join(file)).unwrap();
        }
    }
    let mut original = TillJournal::open(dir.path(), "T01");
    let mut copy = TillJournal::open(copy_dir.path(), "T01");
    assert_eq!(original.installation_id, copy.installation_id);
    original.made = 3;
    copy.made = 3;
    original.orders(1);
    copy.writer
        .run_blocking(|j| {
            let open = j.unfinished()?;
            j.claim(open[0].id)?;
            j.append(open[0].id, &note(OffsetDateTime::now_utc(), "not the same"))
        })
        .unwrap();
    original.sync(&pg, 100).unwrap();
    let refused = copy.sync(&pg, 100).unwrap_err();
    let text = refused.to_string();
    assert!(matches!(refused, StoreError::Conflict { .. }), "{text}");
    assert!(text.contains("till T01"), "{text}");
    assert!(text.contains(&copy.installation_id), "{text}");
    assert!(text.contains("event "), "{text}");
    // Nothing of the refused batch was kept, and the copy's mark stayed.
    assert_store_is_union(&pg, std::slice::from_ref(&original));
}

/// `scanpay sync` as installers and cron run it.
fn sync_command(dir: &Path, url: &str, batch: u32) -> std::process::Command {
    let mut cmd = common::process::binary();
    cmd.arg("sync")
        .env("SCANPAY_TILL_ID", "T01")
        .env("SCANPAY_JOURNAL_PATH", dir.join("T01.sqlite3"))
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_STORE_DATABASE_URL", url)
        .env("SCANPAY_STORE_PASSWORD", common::postgres::PASSWORD)
        .env("SCANPAY_STORE_BATCH_EVENTS", batch.to_string());
    cmd
}

#[test]
fn scanpay_sync_killed_mid_ship_then_run_again() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut till = TillJournal::open(dir.path(), "T01");
    till.orders(100);
    let events = till.event_count();
    // Aborted (like kill -9) after its third batch of 20 was committed.
    let out = sync_command(dir.path(), &pg.url(), 20)
        .env("SCANPAY_FAULT", "store-shipped:3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let shipped: u64 = pg
        .psql("SELECT shipped_through FROM tills")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(shipped, 60);
    // Run again: the rest, nothing twice.
    let out = sync_command(dir.path(), &pg.url(), 20).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "shipped {} events, store is at event {events} for till T01",
            events - 60
        )),
        "{stdout}"
    );
    assert_store_is_union(&pg, std::slice::from_ref(&till));
    // Unreachable: a clear message and exit 1.
    drop(pg);
    let out = sync_command(dir.path(), "postgres://scanpay@127.0.0.1:1/store", 20)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach the store database at postgres://scanpay@127.0.0.1:1/store"),
        "{stderr}"
    );
    // Not configured: exit 3.
    let out = sync_command(dir.path(), "", 20).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// The real till in a pty, configured with the store: a payment taken at the
/// till reaches the store's orders by itself, with no `scanpay sync`, and
/// right after it ends (the interval is a minute).
#[test]
fn the_till_ships_a_payment_in_the_background() {
    use common::pty::{CommandBuilder, Terminal};
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.cwd(dir.path());
    cmd.env_remove("SCANPAY_CONFIG");
    cmd.env("SCANPAY_JOURNAL_PATH", dir.path().join("journal.sqlite3"));
    cmd.env("SCANPAY_LOG_DIR", dir.path().join("logs"));
    cmd.env("SCANPAY_TILL_LANGUAGE", "en");
    cmd.env("SCANPAY_STORE_DATABASE_URL", pg.url());
    cmd.env("SCANPAY_STORE_PASSWORD", common::postgres::PASSWORD);
    cmd.env("SCANPAY_STORE_INTERVAL_MS", "60000");
    let mut screen = Terminal::spawn_sized(cmd, 140, 32);
    let order_no = screen.sell("1", "134539517967686076");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let row = loop {
        let row = pg.psql(&format!(
            "SELECT till_id, total_fee, state FROM orders WHERE out_trade_no = '{order_no}'"
        ));
        if row.contains("PAID") || row.contains("paid") {
            break row;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order {order_no} not in the store after 30 s: {row:?}\n{}",
            screen.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(row.starts_with("T01|100|"), "{row}");

    // The database goes away: the next payment is taken as ever, and the
    // status line says what waits.
    pg.kill9();
    std::thread::sleep(std::time::Duration::from_millis(1600)); // past the duplicate-scan window
    screen.press(b"2");
    screen.wait_for("Scan the customer's WeChat payment code");
    let started = std::time::Instant::now();
    screen.press(b"134539517967686076\r");
    let behind = screen.wait_for_all(&["PAID", "¥2.00", "store sync behind by"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{behind}"
    );
    screen.press(b"q");
    let status = screen.wait_exit("q");
    assert!(status.success(), "{status:?}");
}

#[test]
fn scanpay_store_shows_the_day_of_every_till_read_only() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let today = OffsetDateTime::now_utc()
        .to_offset(UtcOffset::from_hms(8, 0, 0).unwrap())
        .date()
        .to_string();

    // A store no till has shipped to: said, and left as it is (no schema made).
    let empty = common::store::store_command(&pg, dir.path(), &["--tills", "--date", &today]);
    assert_eq!(empty.status.code(), Some(1), "{empty:?}");
    let said = String::from_utf8_lossy(&empty.stderr);
    assert!(said.contains("run scanpay sync on a till"), "{said}");
    assert_eq!(
        pg.psql("SELECT to_regclass('schema_version') IS NULL")
            .trim(),
        "t"
    );

    // Two tills: 4 and 5 orders, one in three left open.
    let mut tills = tills(dir.path(), 2);
    tills[0].orders(4);
    tills[1].orders(5);
    for till in &tills {
        till.sync(&pg, 100).unwrap();
    }
    assert_store_is_union(&pg, &tills);

    let csv = common::store::store_command(&pg, dir.path(), &["--tills", "--date", &today]);
    assert_eq!(csv.status.code(), Some(0), "{csv:?}");
    let csv = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(
        lines[0],
        "till_id,installation_id,orders,paid,takings,refunds,refunded,net,unsettled,shipped_through"
    );
    let t1 = format!(
        "T01,{},4,3,3.04,0,0.00,3.04,1,{}",
        tills[0].installation_id,
        tills[0].event_count()
    );
    let t2 = format!(
        "T02,{},5,4,4.08,0,0.00,4.08,1,{}",
        tills[1].installation_id,
        tills[1].event_count()
    );
    assert_eq!(lines[1], t1);
    assert_eq!(lines[2], t2);
    assert_eq!(lines[3], "total,,9,7,7.12,0,0.00,7.12,2,0");

    let out = dir.path().join("day.json");
    let json = common::store::store_command(
        &pg,
        dir.path(),
        &[
            "--tills",
            "--date",
            &today,
            "--format",
            "json",
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["date"], today.as_str());
    assert_eq!(json["tills"].as_array().unwrap().len(), 2);
    assert_eq!(json["total"]["paid"], 7);
    assert_eq!(json["total"]["takings_fen"], 712);
    assert_eq!(json["tills"][1]["till_id"], "T02");

    // Another day: the tills, with nothing.
    let other = common::store::store_command(&pg, dir.path(), &["--tills", "--date", "2020-01-01"]);
    let other = String::from_utf8(other.stdout).unwrap();
    assert!(
        other.ends_with("total,,0,0,0.00,0,0.00,0.00,0,0\n"),
        "{other}"
    );

    // A bad date, and no store configured.
    let bad = common::store::store_command(&pg, dir.path(), &["--tills", "--date", "2026-13-01"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let none = std::process::Command::new(env!("CARGO_BIN_EXE_scanpay"))
        .current_dir(dir.path())
        .env_remove("SCANPAY_CONFIG")
        .env_remove("SCANPAY_STORE_DATABASE_URL")
        .env("SCANPAY_LOG_DIR", dir.path().join("logs"))
        .args(["store", "--date", &today])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(3), "{none:?}");
}

/// The store's export is every till's `scanpay journal` export put
/// together: the same columns, each order once, whichever till it was on.
#[test]
fn scanpay_store_exports_every_tills_orders_as_the_journals_do() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let today = OffsetDateTime::now_utc()
        .to_offset(UtcOffset::from_hms(8, 0, 0).unwrap())
        .date();
    let yesterday = today.previous_day().unwrap().to_string();
    let today = today.to_string();
    let mut tills = tills(dir.path(), 3);
    tills[0].orders(3);
    tills[1].orders(4);
    tills[2].orders(2);
    for till in &tills {
        till.sync(&pg, 7).unwrap();
    }

    let journals: Vec<&Path> = tills.iter().map(|t| t.path.as_path()).collect();
    let range = ["--date", yesterday.as_str(), "--to", today.as_str()];
    assert_eq!(
        common::store::assert_export_is_union(&pg, dir.path(), &journals, &range),
        9
    );

    // For Excel, to a file; the count said on stderr.
    let file = dir.path().join("orders.csv");
    let excel = common::store::store_command(
        &pg,
        dir.path(),
        &[
            "--date",
            &today,
            "--excel",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(excel.status.code(), Some(0), "{excel:?}");
    let said = String::from_utf8_lossy(&excel.stderr);
    assert!(said.contains("9 orders of every till written to"), "{said}");
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(scanpay::journal::UTF8_BOM), "no BOM");

    // Backwards, and --excel with JSON: refused before the store is asked.
    let backwards =
        common::store::store_command(&pg, dir.path(), &["--date", &today, "--to", &yesterday]);
    assert_eq!(backwards.status.code(), Some(2), "{backwards:?}");
    let json_excel =
        common::store::store_command(&pg, dir.path(), &["--excel", "--format", "json"]);
    assert_eq!(json_excel.status.code(), Some(2), "{json_excel:?}");
    // Nothing was written to the store by any of it.
    assert_store_is_union(&pg, &tills);
}

/// `scanpay store` in a terminal: the store screen over every till, its
/// line per till, and one order's timeline as the till journaled it, read
/// from the store database (the tills' journals are not even there).
#[test]
fn the_store_screen_shows_every_till_and_an_orders_timeline() {
    use common::pty::{CommandBuilder, Terminal};
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let tills_dir = tempfile::tempdir().unwrap();
    let mut tills = tills(tills_dir.path(), 2);
    tills[0].orders(2);
    tills[1].orders(3);
    for till in &tills {
        till.sync(&pg, 100).unwrap();
    }
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.cwd(dir.path());
    cmd.env_remove("SCANPAY_CONFIG");
    cmd.env("SCANPAY_JOURNAL_PATH", dir.path().join("none.sqlite3"));
    cmd.env("SCANPAY_LOG_DIR", dir.path().join("logs"));
    cmd.env("SCANPAY_TILL_LANGUAGE", "en");
    cmd.env("SCANPAY_TILL_TIME_ZONE", "+08:00");
    cmd.env("SCANPAY_STORE_DATABASE_URL", pg.url());
    cmd.env("SCANPAY_STORE_PASSWORD", common::postgres::PASSWORD);
    cmd.arg("store");
    let mut screen = Terminal::spawn_sized(cmd, 120, 40);
    let t1 = format!("T01 ({})", tills[0].installation_id);
    let t2 = format!("T02 ({})", tills[1].installation_id);
    let day = screen.wait_for_all(&["Store ", "5 orders", &t1, &t2, "total"]);
    assert!(
        day.contains("viewing every till of the store read-only"),
        "{day}"
    );
    // The oldest order is T01's first: its timeline holds its note.
    screen.press(b"\r");
    let timeline = screen.wait_for_all(&["order 0", "T01"]);
    assert!(!timeline.contains(&t2), "{timeline}");
    screen.press(b"\x1b");
    screen.wait_for("5 orders");
    // Tab: one till's orders, then the next's.
    screen.press(b"\t");
    screen.wait_for("2 orders · till T01");
    screen.press(b"\t");
    screen.wait_for("3 orders · till T02");
    // The database restarts behind the screen: the next read connects again.
    pg.kill9();
    pg.restart();
    screen.press(b"h");
    screen.wait_for("0 orders · till T02");
    // The database goes away: the next read says so, and the screen stays.
    pg.kill9();
    screen.press(b"l");
    screen.wait_for_all(&[
        "Cannot read the store database",
        "cannot reach the store database",
    ]);
    // Back again, and so is the day.
    pg.restart();
    screen.press(b"h");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !screen.text().contains("0 orders · till T02") || screen.text().contains("Cannot read") {
        assert!(std::time::Instant::now() < deadline, "{}", screen.text());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    screen.press(b"q");
    let status = screen.wait_exit("q");
    assert!(status.success(), "{status:?}");
    assert!(
        !dir.path().join("none.sqlite3").exists(),
        "a journal was made"
    );
}

/// A store made by the first schema, with orders in it, is brought up to
/// date by the next till that ships: the orders already there get the
/// store's ids too, and nothing is lost.
#[test]
fn a_store_of_schema_one_is_migrated_with_its_orders() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    pg.psql(&format!(
        "BEGIN; CREATE TABLE schema_version (singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton), version INTEGER NOT NULL); \
         INSERT INTO schema_version VALUES (TRUE, 1); {} \
         INSERT INTO orders (mch_id, out_trade_no, installation_id, till_id, total_fee, body, auth_code_masked, created_at_ms, state, version) \
         VALUES ('{MCH_ID}', 'T09261201120000OLDOLD000001', 'OLDOLDOLDOLD', 'T09', 700, 'Tea', '**************6789', 0, 'paid', 3); COMMIT;",
        store::MIGRATIONS[0]
    ));
    let mut tills = tills(dir.path(), 1);
    tills[0].orders(2);
    tills[0].sync(&pg, 100).unwrap();
    assert_eq!(
        pg.psql("SELECT version FROM schema_version").trim(),
        store::MIGRATIONS.len().to_string()
    );
    let ids = pg.psql(
        "SELECT count(DISTINCT id), count(*), count(*) FILTER (WHERE id IS NULL) FROM orders",
    );
    assert_eq!(ids.trim(), "3|3|0");
    assert_eq!(
        pg.psql("SELECT total_fee, state FROM orders WHERE till_id = 'T09'")
            .trim(),
        "700|paid"
    );
}

/// A till that does not know its installation id ships nothing: under an
/// empty id every till would be one installation in the store.
#[test]
fn a_till_without_an_installation_id_ships_nothing() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tills = tills(dir.path(), 1);
    tills[0].orders(2);
    let mut nameless = tills[0].ident();
    nameless.installation_id.clear();
    let shipped = runtime().block_on(store::sync(
        &pg.settings(100),
        &tills[0].reader,
        &tills[0].writer,
        &nameless,
    ));
    match shipped {
        Err(e @ StoreError::NoInstallation { .. }) => {
            assert!(e.to_string().contains("till T01"), "{e}")
        }
        other => panic!("shipped without an installation id: {other:?}"),
    }
    assert_eq!(pg.psql("SELECT count(*) FROM events").trim(), "0");
}

/// A store row changed by hand into something no till writes: the export
/// says which column holds what, and writes no file rather than a wrong one.
#[test]
fn a_row_edited_into_nonsense_stops_the_export_with_what_it_holds() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let mut tills = tills(dir.path(), 1);
    tills[0].orders(3);
    tills[0].sync(&pg, 100).unwrap();
    pg.psql("UPDATE orders SET state = 'bogus' WHERE id = (SELECT min(id) FROM orders)");
    let file = dir.path().join("orders.csv");
    let out = common::store::store_command(
        &pg,
        dir.path(),
        &["--format", "csv", "--output", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("column state holds \"bogus\""), "{said}");
    assert!(said.contains("run scanpay sync on that till"), "{said}");
    assert!(!file.exists(), "a partial export was left");

    // What the message says to do brings the row back as the journal has it.
    pg.psql("DELETE FROM orders WHERE state = 'bogus'; UPDATE tills SET shipped_through = 0");
    tills[0].sync(&pg, 100).unwrap();
    let journals = [tills[0].path.as_path()];
    common::store::assert_store_is_union(&pg, &journals);
    let out = common::store::store_command(&pg, dir.path(), &["--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
}
