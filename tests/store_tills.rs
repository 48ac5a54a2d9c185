//! Issue 12, "many tills, one store", shown with real processes: two, then
//! ten tills, each the real till screen (the TUI, in a pseudo-terminal of
//! its own) with its own journal, take payments at one `scanpay simulate`
//! gateway while shipping their journals, by themselves in the background,
//! to one real PostgreSQL (`common::postgres`).
//!
//! While they pay:
//! - till T01 is killed mid-ship: having taken its first payment before it
//!   was joined to the store, it is started with the store and aborts right
//!   after the first batch of that backlog is committed in the store and
//!   marked in its journal (`SCANPAY_FAULT=store-shipped:1`), the rest not
//!   yet shipped; started again on its journal, it ships the rest and pays
//!   on;
//! - the database is killed (`kill -9` of the server and its backends) once
//!   every till has taken two payments, and started again once every till
//!   has taken a payment with the database down, while the tills go on
//!   paying and shipping: no till ever waits for it, and each says it is
//!   behind;
//! - the last till is killed with SIGKILL right after its last payment,
//!   whatever its shipper is doing then, and not started again.
//!
//! Afterwards `scanpay sync` is run for every journal until it exits 0, and
//! the store's orders are the union of the journals, each exactly once with
//! its till, amount and state; the store holds every event of every journal
//! once; every journal agrees with the gateway's ledger; and `scanpay store`
//! shows each till's day as its journal has it.
//!
//! The tills are the TUI, not `scanpay pay` runs with a `scanpay sync` loop
//! beside them: the TUI is what ships in the background after each payment
//! and every interval, and ten of them in ptys are light enough for two
//! cores (a till is idle between keys).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use common::postgres::{PASSWORD, Postgres};
use common::process::{Gateway, assert_invariants, ledger, start_gateway, till};
use common::pty::{Terminal, builder_of};
use scanpay::journal::{Journal, OrderState, day_bounds};
use time::{Date, OffsetDateTime, UtcOffset};

/// Payments each till takes.
const SALES: usize = 6;
/// No till starts this payment (1-based) before the database is killed,
/// nor [`RESTART_BEFORE`] before it is started again: so that every till
/// pays both while the database is up and while it is down, however the
/// tills' speeds differ on a loaded machine.
const KILL_BEFORE: usize = 4;
const RESTART_BEFORE: usize = 6;
/// Events per batch: a payment is 4 events, so its shipping is two commits
/// and a kill can fall between them.
const BATCH_EVENTS: u32 = 3;
/// Generous: a loaded 2-core machine runs ten tills, a database and a gateway.
const DEADLINE: Duration = Duration::from_secs(120);

/// The till time zone (the default): the day `scanpay store` shows.
fn store_offset() -> UtcOffset {
    UtcOffset::from_hms(8, 0, 0).unwrap()
}

/// How far the tills are, shared by the till threads and the test's own.
struct Progress {
    killed: AtomicBool,
    restarted: AtomicBool,
    /// Set when the run has failed: threads waiting on the others stop.
    abandoned: AtomicBool,
    /// Payments each till has taken.
    sold: Vec<AtomicUsize>,
    /// Of those, begun with the database down, and seen behind on the screen.
    sold_while_down: Vec<AtomicUsize>,
}

impl Progress {
    fn new(tills: usize) -> Self {
        Self {
            killed: AtomicBool::new(false),
            restarted: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            sold: (0..tills).map(|_| AtomicUsize::new(0)).collect(),
            sold_while_down: (0..tills).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// A till waits for the test (the database killed or started again).
    fn wait(&self, what: &str, flag: &AtomicBool) {
        let deadline = Instant::now() + DEADLINE;
        while !flag.load(Ordering::SeqCst) {
            assert!(
                !self.abandoned.load(Ordering::SeqCst),
                "abandoned waiting for {what}: another till failed"
            );
            assert!(Instant::now() < deadline, "never {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The test waits for every till; a till that ended early (it failed:
    /// its panic is printed above) fails the run at once.
    fn wait_for_tills(
        &self,
        what: &str,
        tills: &[ScopedJoinHandle<'_, ()>],
        done: impl Fn(usize) -> bool,
    ) {
        let deadline = Instant::now() + DEADLINE;
        while !(0..tills.len()).all(&done) {
            if tills.iter().any(ScopedJoinHandle::is_finished) || Instant::now() > deadline {
                self.abandoned.store(true, Ordering::SeqCst);
                let counts: Vec<usize> =
                    self.sold.iter().map(|n| n.load(Ordering::SeqCst)).collect();
                panic!("the tills did not get to {what}: payments taken {counts:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn till_id(i: usize) -> String {
    format!("T{i:02}")
}

fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal.sqlite3")
}

/// Till `id` of the store as `common::process::till` configures it, with the
/// `[store]` section: small batches, and a short interval so the tills poll
/// the database all the time it is killed and started again.
fn store_till(id: &str, dir: &Path, gateway: &Gateway, pg: &Postgres) -> Command {
    let mut cmd = till(id, dir, gateway);
    cmd.current_dir(dir)
        .env("SCANPAY_STORE_DATABASE_URL", pg.url())
        .env("SCANPAY_STORE_PASSWORD", PASSWORD)
        .env("SCANPAY_STORE_BATCH_EVENTS", BATCH_EVENTS.to_string())
        .env("SCANPAY_STORE_INTERVAL_MS", "100");
    cmd
}

/// The till screen of `id`, in English, in a pty wide enough for the status
/// line's "store sync behind"; `env` on top.
fn open_till(
    id: &str,
    dir: &Path,
    gateway: &Gateway,
    pg: &Postgres,
    env: &[(&str, &str)],
) -> Terminal {
    let mut cmd = builder_of(&store_till(id, dir, gateway, pg));
    cmd.env("SCANPAY_TILL_LANGUAGE", "en");
    for (key, value) in env {
        cmd.env(key, value);
    }
    Terminal::spawn_sized(cmd, 140, 32)
}

/// Sale `s` of till `i`: a whole number of yuan, 1 to 9, that the simulator
/// charges at once (the tills' days differ), and a payment code of its own
/// (the same code twice would be a duplicate scan). One key: the wedge
/// decoder holds a typed key until `max_key_gap_ms` has passed, so the scan
/// prompt showing is the sign the amount is complete, and a scan sent after
/// it cannot take a last key still held for part of the code, however late
/// a loaded machine reads the keys.
fn sale(i: usize, s: usize) -> (String, String) {
    (format!("{}", (i + s) % 9 + 1), format!("1345{i:02}{s:012}"))
}

/// The store's mark for till `id`: its events committed there.
fn store_mark(pg: &Postgres, id: &str) -> u64 {
    pg.psql(&format!(
        "SELECT coalesce((SELECT shipped_through FROM tills WHERE till_id = '{id}'), 0)"
    ))
    .trim()
    .parse()
    .unwrap()
}

fn journal_events(dir: &Path) -> u64 {
    common::store::journal_events(&journal_path(dir))
}

/// Waits until the till in `screen` has ended; `what` names why it should.
fn wait_gone(screen: &mut Terminal, what: &str) -> portable_pty::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = screen.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not end:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Till T01's first payment and its shipping, killed mid-ship: it takes the
/// payment before it is joined to the store (no `[store]`), so that the
/// first batch it ships, when started again with the store, is of a till
/// doing nothing else, and the abort lands after that batch whatever the
/// machine's load. Shipping while paying is every other payment's lot.
fn killed_mid_ship(dir: &Path, gateway: &Gateway, pg: &Postgres) {
    let journal = journal_path(dir);
    let mut screen = open_till(
        "T01",
        dir,
        gateway,
        pg,
        &[("SCANPAY_STORE_DATABASE_URL", "")],
    );
    let (amount, code) = sale(1, 1);
    screen.sell_at("T01", &amount, &code);
    screen.press(b"q");
    let status = wait_gone(&mut screen, "q");
    assert!(status.success(), "{status:?}\n{}", screen.text());
    let events = journal_events(dir);
    assert!(
        events > u64::from(BATCH_EVENTS),
        "{events} events: one batch ships them all"
    );

    // Joined, it ships its backlog at start and aborts right after the
    // first batch is committed in the store and marked in its journal. A
    // long interval: nothing but the start ships.
    let mut screen = open_till(
        "T01",
        dir,
        gateway,
        pg,
        &[
            ("SCANPAY_FAULT", "store-shipped:1"),
            ("SCANPAY_STORE_INTERVAL_MS", "600000"),
        ],
    );
    let status = wait_gone(&mut screen, "the till with the fault armed");
    assert!(!status.success(), "{status:?}: the fault did not abort it");
    let marked = Journal::open_read_only(&journal)
        .unwrap()
        .shipped_through()
        .unwrap();
    assert_eq!(marked as u64, u64::from(BATCH_EVENTS), "the journal's mark");
    assert_eq!(
        store_mark(pg, "T01"),
        u64::from(BATCH_EVENTS),
        "the store's mark"
    );
    assert_eq!(journal_events(dir), events, "it wrote nothing but its mark");
}

/// Till `i` of `n` (1-based), in `dir`, through its day: see the file's comment.
fn work_at_till(
    i: usize,
    n: usize,
    dir: &Path,
    gateway: &Gateway,
    pg: &Postgres,
    progress: &Progress,
) {
    let id = till_id(i);
    let sold = &progress.sold[i - 1];
    if i == 1 {
        killed_mid_ship(dir, gateway, pg);
        sold.fetch_add(1, Ordering::SeqCst);
    }
    // (T01 started again on its journal: it ships the rest and pays on.)
    let mut screen = open_till(&id, dir, gateway, pg, &[]);
    for s in sold.load(Ordering::SeqCst) + 1..=SALES {
        if s == KILL_BEFORE {
            progress.wait("killed the database", &progress.killed);
        }
        if s == RESTART_BEFORE {
            progress.wait("started the database again", &progress.restarted);
        }
        let down =
            progress.killed.load(Ordering::SeqCst) && !progress.restarted.load(Ordering::SeqCst);
        let (amount, code) = sale(i, s);
        screen.sell_at(&id, &amount, &code);
        screen.wait_for_all(&["PAID", &format!("¥{amount}.00")]);
        if down && progress.sold_while_down[i - 1].load(Ordering::SeqCst) == 0 {
            // Paid with the database down (it is started again only once
            // every till got here), and the till says what waits.
            screen.wait_for("store sync behind by");
            progress.sold_while_down[i - 1].fetch_add(1, Ordering::SeqCst);
        }
        sold.fetch_add(1, Ordering::SeqCst);
        // Esc clears the result for the next customer.
        screen.press(b"\x1b");
    }
    if i == n {
        // Killed at once, whatever its shipper is doing: `scanpay sync`
        // ships the rest afterwards.
        let pid = screen.child.process_id().expect("the till's pid") as i32;
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_gone(&mut screen, "the till killed with SIGKILL");
        return;
    }
    // The others catch up by themselves once the database is back.
    let deadline = Instant::now() + DEADLINE;
    while store_mark(pg, &id) < journal_events(dir) {
        assert!(
            Instant::now() < deadline,
            "{id} did not catch up with the store:\n{}",
            screen.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    screen.press(b"q");
    let status = wait_gone(&mut screen, "q");
    assert!(status.success(), "{id}: {status:?}\n{}", screen.text());
}

/// `scanpay sync` of each journal, as cron runs it, until it exits 0 (the
/// store has every event); what it says.
fn sync_until_done(id: &str, dir: &Path, gateway: &Gateway, pg: &Postgres) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let out = store_till(id, dir, gateway, pg)
            .arg("sync")
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return said;
        }
        assert!(Instant::now() < deadline, "scanpay sync of {id}: {said}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One till's figures for a day, as `scanpay store` shows them.
#[derive(Debug, PartialEq, Eq, Default)]
struct TillFigures {
    orders: u64,
    paid: u64,
    takings_fen: u64,
}

/// The per-till figures of `date` from the store database, read-only, as the
/// manager asks for them: till id → figures. The one place that knows how
/// `scanpay store` is asked for them and prints them.
fn store_figures(pg: &Postgres, dir: &Path, date: Date) -> BTreeMap<String, TillFigures> {
    let out = common::store::store_command(
        pg,
        dir,
        &["--tills", "--date", &date.to_string(), "--format", "json"],
    );
    assert!(out.status.success(), "scanpay store: {out:?}");
    let day: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(day["date"], date.to_string());
    let count = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("a count: {v}"));
    day["tills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let figures = TillFigures {
                orders: count(&t["orders"]),
                paid: count(&t["paid"]),
                takings_fen: count(&t["takings_fen"]),
            };
            (t["till_id"].as_str().unwrap().to_string(), figures)
        })
        .collect()
}

/// The same figures from one till's journal.
fn journal_figures(dir: &Path, date: Date) -> TillFigures {
    let (from, to) = day_bounds(date, store_offset());
    let orders = Journal::open_read_only(&journal_path(dir))
        .unwrap()
        .orders_between(from, to)
        .unwrap();
    let paid: Vec<_> = orders
        .iter()
        .filter(|o| o.state == OrderState::Paid)
        .collect();
    TillFigures {
        orders: orders.len() as u64,
        paid: paid.len() as u64,
        takings_fen: paid.iter().map(|o| o.total_fee.0).sum(),
    }
}

/// The days (in the till time zone) the tills took orders on: today, or
/// today and yesterday for a run across midnight.
fn days_of(dirs: &[&Path]) -> BTreeSet<Date> {
    dirs.iter()
        .flat_map(|dir| {
            Journal::open_read_only(&journal_path(dir))
                .unwrap()
                .orders_between(i64::MIN, i64::MAX)
                .unwrap()
        })
        .map(|o| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(o.created_at_ms) * 1_000_000)
                .unwrap()
                .to_offset(store_offset())
                .date()
        })
        .collect()
}

/// `n` tills paying while shipping, through the kills; then the checks.
fn tills_paying_while_shipping(n: usize) {
    let gateway = start_gateway();
    let pg = Postgres::start();
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let progress = Progress::new(n);
    std::thread::scope(|scope| {
        let tills: Vec<_> = dirs
            .iter()
            .enumerate()
            .map(|(k, dir)| {
                let (gateway, pg, progress) = (&gateway, &pg, &progress);
                scope.spawn(move || work_at_till(k + 1, n, dir.path(), gateway, pg, progress))
            })
            .collect();
        progress.wait_for_tills("two payments each", &tills, |k| {
            progress.sold[k].load(Ordering::SeqCst) >= 2
        });
        pg.kill9();
        progress.killed.store(true, Ordering::SeqCst);
        progress.wait_for_tills("a payment each with the database down", &tills, |k| {
            progress.sold_while_down[k].load(Ordering::SeqCst) >= 1
        });
        pg.restart();
        progress.restarted.store(true, Ordering::SeqCst);
        for till in tills {
            if let Err(panic) = till.join() {
                progress.abandoned.store(true, Ordering::SeqCst);
                std::panic::resume_unwind(panic);
            }
        }
    });

    let dirs: Vec<&Path> = dirs.iter().map(|d| d.path()).collect();
    for (k, dir) in dirs.iter().enumerate() {
        let id = till_id(k + 1);
        let said = sync_until_done(&id, dir, &gateway, &pg);
        let events = journal_events(dir);
        assert!(
            said.contains(&format!("store is at event {events} for till {id}")),
            "{said}"
        );
    }
    let journals: Vec<PathBuf> = dirs.iter().map(|d| journal_path(d)).collect();
    let journals: Vec<&Path> = journals.iter().map(PathBuf::as_path).collect();
    common::store::assert_store_is_union(&pg, &journals);
    let stored = common::store::store_orders(&pg);
    assert_eq!(stored.len(), n * SALES, "every payment is an order");
    assert!(stored.values().all(|o| o.state == "paid"), "{stored:?}");

    let ledger = ledger(&gateway);
    assert_eq!(ledger.len(), n * SALES, "{ledger:?}");
    for (k, dir) in dirs.iter().enumerate() {
        let id = till_id(k + 1);
        assert_eq!(assert_invariants(dir, &ledger, &id), SALES, "{id}");
    }

    let manager = tempfile::tempdir().unwrap();
    for date in days_of(&dirs) {
        let store = store_figures(&pg, manager.path(), date);
        let journals: BTreeMap<String, TillFigures> = dirs
            .iter()
            .enumerate()
            .map(|(k, dir)| (till_id(k + 1), journal_figures(dir, date)))
            .collect();
        assert_eq!(store, journals, "the tills' day {date}");
    }
    // The store's export of those days is the journals' exports together.
    let days = days_of(&dirs);
    let (first, last) = (
        days.first().unwrap().to_string(),
        days.last().unwrap().to_string(),
    );
    let range = ["--date", first.as_str(), "--to", last.as_str()];
    let exported = common::store::assert_export_is_union(&pg, manager.path(), &journals, &range);
    assert_eq!(exported, n * SALES);

    // The simulator's bill of each day against every till at once, from the
    // back office: it agrees, and each till's section matched what it paid.
    for date in days {
        let out = till("OFFICE", manager.path(), &gateway)
            .env("SCANPAY_STORE_DATABASE_URL", pg.url())
            .env("SCANPAY_STORE_PASSWORD", PASSWORD)
            .args([
                "reconcile",
                "--store",
                "--json",
                "--date",
                &date.to_string(),
            ])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("reconcile --store of {date}: {e}: {out:?}"));
        assert_eq!(out.status.code(), Some(0), "{report:#}");
        let matched: BTreeMap<String, u64> = report["tills"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["till"].as_str().unwrap().into(),
                    t["matched"].as_u64().unwrap(),
                )
            })
            .collect();
        let paid: BTreeMap<String, u64> = dirs
            .iter()
            .enumerate()
            .map(|(k, dir)| (till_id(k + 1), journal_figures(dir, date).paid))
            .collect();
        assert_eq!(matched, paid, "{report:#}");
    }
}

#[test]
fn two_tills_paying_while_shipping_through_a_database_and_a_till_killed() {
    tills_paying_while_shipping(2);
}

#[test]
fn ten_tills_paying_while_shipping_through_a_database_and_a_till_killed() {
    tills_paying_while_shipping(10);
}
