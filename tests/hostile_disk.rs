//! The real binary in a hostile local world: who may read its files, a
//! damaged journal, exports aimed at things that are not files, descriptions
//! that cannot go on the wire, and a reader that goes away mid-payment.
//! Every gateway here is the built-in simulator on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::process::{binary, scaled_timings};
use rusqlite::Connection;
use scanpay::domain::{Fen, TillId};
use scanpay::journal::{EventRecord, FinalRecord, Journal, NewOrder, OrderState};
use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime};

const CODE: &str = "134539517967686076";

/// The binary with its journal and logs in `dir` (the built-in simulator,
/// WeChat's timings ÷ 100).
fn scanpay(dir: &Path) -> Command {
    let mut cmd = binary();
    scaled_timings(&mut cmd);
    cmd.current_dir(dir)
        .env_remove("SCANPAY_API_KEY")
        .env("SCANPAY_JOURNAL_PATH", dir.join("data/journal.sqlite3"))
        .env("SCANPAY_LOG_DIR", dir.join("data/logs"))
        .env("SCANPAY_LOG_LEVEL", "debug");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn journal_of(dir: &Path) -> PathBuf {
    dir.join("data/journal.sqlite3")
}

fn orders_in(journal: &Path) -> usize {
    let journal = Journal::open_read_only(journal).unwrap();
    journal.orders_between(i64::MIN, i64::MAX).unwrap().len()
}

/// Every folder and file below `dir` with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(folder) = todo.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            found.push((entry.path(), meta.mode() & 0o777, meta.is_dir()));
            if meta.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    found
}

fn assert_private(dir: &Path, when: &str) -> usize {
    let found = modes(dir);
    for (path, mode, is_dir) in &found {
        let wanted = if *is_dir { 0o700 } else { 0o600 };
        assert_eq!(
            *mode,
            wanted,
            "{when}: {} is {mode:o}, not {wanted:o}",
            path.display()
        );
    }
    found.len()
}

#[test]
fn a_payment_leaves_only_private_folders_and_files() {
    let dir = tempfile::tempdir().unwrap();
    // A USERPAYING payment polled slowly: long enough to look at the -wal,
    // -shm and owner lock while they exist.
    let mut child = scanpay(dir.path())
        .env("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "600")
        .env("SCANPAY_PAYMENT_DEADLINE_MS", "3000")
        .env("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "1500")
        .args(["pay", "--amount", "0.40", "--auth-code", CODE])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for the customer's password") {
        line.clear();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "no progress line");
    }
    let during = modes(dir.path());
    let names: Vec<String> = during
        .iter()
        .map(|(path, ..)| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "journal.sqlite3",
        "journal.sqlite3-wal",
        "journal.sqlite3-shm",
        "journal.sqlite3.owners",
        "logs",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".lock")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".log")), "{names:?}");
    assert_private(dir.path(), "mid-payment");
    std::thread::spawn(move || for _ in stdout.lines() {});
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert!(assert_private(dir.path(), "after the payment") >= 3);
    assert_eq!(orders_in(&journal_of(dir.path())), 1);
}

#[test]
fn a_key_file_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api.key");
    std::fs::write(&key, common::process::KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_key = || {
        let mut cmd = scanpay(dir.path());
        cmd.env("SCANPAY_GATEWAY_MODE", "wechat")
            .env("SCANPAY_GATEWAY_BASE_URL", "http://127.0.0.1:9")
            .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
            .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
            .env("SCANPAY_MERCHANT_API_KEY_FILE", &key);
        cmd
    };
    // Ours and 0600: the configuration loads (then --check finds no journal).
    let out = with_key().args(["journal", "--check"]).output().unwrap();
    assert!(
        text(&out.stderr).contains("no journal at"),
        "{}",
        text(&out.stderr)
    );
    std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
    let out = with_key()
        .args(["pay", "--amount", "1", "--auth-code", CODE])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("merchant.api_key_file")
            && stderr.contains("another user (uid 65534)")
            && stderr.contains(&format!("chown 0 {}", key.display())),
        "{stderr}"
    );
    assert!(!journal_of(dir.path()).exists(), "nothing may be journaled");
}

/// A closed journal of `per_day` finished orders on each of 2026-11-21 and
/// 2026-11-22 (Beijing), as the till writes them.
fn journal_of_two_days(path: &Path, per_day: i64) {
    let mut journal = Journal::open(path).unwrap();
    let till = TillId::parse("T01").unwrap();
    for (day, start) in [
        datetime!(2026-11-21 01:00 UTC),
        datetime!(2026-11-22 01:00 UTC),
    ]
    .into_iter()
    .enumerate()
    {
        for i in 0..per_day {
            let now: OffsetDateTime = start + Duration::seconds(i * 60);
            let body =
                format!("两杯咖啡 day {day} order {i} — a description long enough to fill pages");
            let new = NewOrder {
                till: &till,
                total_fee: Fen(100 + i as u64),
                body: &body,
                auth_code_masked: "**************6076".into(),
                now,
                local_offset: offset!(+8),
            };
            let (id, _) = journal.open_order(&new).unwrap();
            let at = now + Duration::seconds(2);
            let outcome = FinalRecord {
                state: OrderState::Paid,
                transaction_id: Some("4200001234202611221234567890".into()),
                err_code: None,
                message: Some("支付成功".into()),
                at,
            };
            let event = EventRecord {
                at,
                since_t0_ms: Some(2_000),
                summary: "paid".into(),
                event: scanpay::payment::Event::Finished {
                    state: "paid".into(),
                    err_code: None,
                    transaction_id: Some("4200001234202611221234567890".into()),
                },
            };
            journal.finish(id, &outcome, &event).unwrap();
        }
    }
}

/// The leaf pages of `table`, in key order.
fn leaf_pages(path: &Path, table: &str) -> Vec<u64> {
    let conn = Connection::open(path).unwrap();
    let pages = conn
        .prepare("SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY path")
        .unwrap()
        .query_map([table], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|page| page.unwrap() as u64)
        .collect::<Vec<u64>>();
    assert!(pages.len() >= 4, "{table}: {} leaf pages", pages.len());
    pages
}

/// 4 KiB of zeros over page `page` (from 1) of the closed journal.
fn zero_page(path: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    assert!(!Path::new(&format!("{}-wal", path.display())).exists());
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start((page - 1) * 4096)).unwrap();
    file.write_all(&[0; 4096]).unwrap();
    file.sync_all().unwrap();
}

/// The last whole-file check as if it were a day old, as on the first
/// payment of a day.
fn last_checked_yesterday(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute(
        "UPDATE checks SET checked_at_ms = checked_at_ms - 86400000",
        [],
    )
    .unwrap();
}

fn export(dir: &Path, date: &str) -> Output {
    scanpay(dir)
        .args(["journal", "--format", "csv", "--date", date])
        .output()
        .unwrap()
}

fn csv_rows(out: &Output) -> usize {
    text(&out.stdout).lines().count() - 1
}

#[test]
fn a_damaged_journal_stops_payments_is_reported_by_check_and_still_exports_what_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_of(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    journal_of_two_days(&path, 200);
    let out = scanpay(dir.path())
        .args(["journal", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with(": ok\n"),
        "{}",
        text(&out.stdout)
    );

    // A page in the middle of the events: what no export reads.
    let events = leaf_pages(&path, "events");
    let orders = leaf_pages(&path, "orders");
    zero_page(&path, events[events.len() / 2]);
    last_checked_yesterday(&path);

    let out = scanpay(dir.path())
        .args(["pay", "--amount", "1", "--auth-code", CODE])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    for advice in [
        "is damaged",
        "no payment is taken",
        "Keep the file",
        "backup",
        ".recover\" > recovered.sql",
        "journal.path",
    ] {
        assert!(stderr.contains(advice), "{advice}: {stderr}");
    }
    // Refused before the order was opened: nothing journaled, nothing sent.
    assert_eq!(orders_in(&path), 400);
    let out = scanpay(dir.path()).arg("replay").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    let out = scanpay(dir.path())
        .args(["journal", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    // SQLite cannot parse the page at all, so it names the table.
    assert!(
        report.contains("damaged") && report.contains("events: database disk image is malformed"),
        "{report}"
    );
    assert!(
        text(&out.stderr).contains(".recover"),
        "{}",
        text(&out.stderr)
    );

    // The exports read the orders alone: both days come out whole.
    for date in ["2026-11-21", "2026-11-22"] {
        let out = export(dir.path(), date);
        assert_eq!(out.status.code(), Some(0), "{date}: {}", text(&out.stderr));
        assert_eq!(csv_rows(&out), 200, "{date}");
    }

    // Now a page of the second day's orders (the last leaf: the newest ids).
    zero_page(&path, *orders.last().unwrap());
    let out = export(dir.path(), "2026-11-22");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is damaged") && stderr.contains("2026-11-22"),
        "{stderr}"
    );
    let out = export(dir.path(), "2026-11-21");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(csv_rows(&out), 200);
}

fn export_to(dir: &Path, target: &Path) -> Output {
    scanpay(dir)
        .args(["journal", "--date", "2026-11-21", "--output"])
        .arg(target)
        .output()
        .unwrap()
}

#[test]
fn an_export_never_replaces_what_is_not_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let path = journal_of(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    journal_of_two_days(&path, 3);

    let fifo = dir.path().join("pipe");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let earlier = dir.path().join("earlier.csv");
    std::fs::write(&earlier, "keep me").unwrap();
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&earlier, &link).unwrap();
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let device = Path::new("/dev/full");
    let device_before = std::fs::symlink_metadata(device).unwrap();

    for (target, what) in [
        (fifo.as_path(), "is a named pipe (FIFO)"),
        (link.as_path(), "is a symbolic link"),
        (folder.as_path(), "is a directory"),
        (device, "is a device"),
    ] {
        let out = export_to(dir.path(), target);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", target.display());
        assert!(
            stderr.contains("--output") && stderr.contains(what),
            "{}: {stderr}",
            target.display()
        );
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&earlier).unwrap(), "keep me");
    assert!(std::fs::read_dir(&folder).unwrap().next().is_none());
    let device_after = std::fs::symlink_metadata(device).unwrap();
    assert!(device_after.file_type().is_char_device());
    assert_eq!(
        device_after.ino(),
        device_before.ino(),
        "/dev/full replaced"
    );
    // No partial file left behind either.
    let partial = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
    assert!(!partial);

    // A regular file is still replaced whole, keeping its permissions.
    std::fs::set_permissions(&earlier, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = export_to(dir.path(), &earlier);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&earlier).unwrap().lines().count(),
        4
    );
    let mode = std::fs::metadata(&earlier).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn descriptions_that_cannot_go_on_the_wire_are_refused_before_anything_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let long = "咖".repeat(43);
    let cases = [
        ("\u{7}\u{1b}\u{7}", "U+0007 at character 1 (3 in all)", 2),
        ("咖啡\n", "U+000A at character 3", 2),
        ("  ", "description is empty", 2),
        (
            "咖啡 134539517967686076",
            "looks like a WeChat payment code",
            2,
        ),
        (long.as_str(), "would be cut after", 2),
    ];
    for (body, reason, code) in cases {
        let out = scanpay(dir.path())
            .args(["pay", "--amount", "1", "--auth-code", CODE, "--body", body])
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{body:?}: {stderr}");
        assert!(
            stderr.contains("--body") && stderr.contains(reason),
            "{body:?}: {stderr}"
        );
        assert!(
            !stderr.contains("1345395179676"),
            "the code is never echoed: {stderr}"
        );
    }
    let out = scanpay(dir.path())
        .args(["pay", "--amount", "1", "--auth-code", CODE, "--body", &long])
        .output()
        .unwrap();
    assert!(text(&out.stderr).contains(&format!("{:?}", "咖".repeat(42))));

    // The same rules for the configured default, at start.
    // (A file: one environment variable may not hold 1.2 MB.)
    let config = dir.path().join("store.toml");
    let huge = "a".repeat(1_200_000);
    std::fs::write(&config, format!("[till]\ndefault_body = \"{huge}\"\n")).unwrap();
    let out = scanpay(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["pay", "--amount", "1", "--auth-code", CODE])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(stderr.contains("till.default_body") && stderr.contains("1200000 bytes"));
    assert!(stderr.len() < 1000, "the message quotes only the kept part");
    assert!(!journal_of(dir.path()).exists(), "nothing may be journaled");

    // 128 bytes exactly is fine.
    let out = scanpay(dir.path())
        .args(["pay", "--amount", "1", "--auth-code", CODE, "--body"])
        .arg("咖".repeat(42) + "ab")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_reader_that_goes_away_never_stops_a_payment() {
    for json in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = scanpay(dir.path());
        // USERPAYING, paid at the 2nd query: several lines after the first.
        cmd.args(["pay", "--amount", "0.40", "--auth-code", CODE])
            .env("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "300")
            .env("SCANPAY_PAYMENT_DEADLINE_MS", "1500")
            .env("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "750")
            // Warnings and more on stderr, to a reader that is gone too.
            .args(["--log-level", "debug"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.spawn().unwrap();
        // Like `| head -1`: read a line, then close both pipes mid-payment.
        let mut first = String::new();
        let mut stream: Box<dyn std::io::Read> = if json {
            Box::new(child.stderr.take().unwrap())
        } else {
            Box::new(child.stdout.take().unwrap())
        };
        let mut reader = BufReader::new(&mut stream);
        reader.read_line(&mut first).unwrap();
        drop(reader);
        drop(stream);
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "json {json}: first line {first:?}");
        let journal = Journal::open_read_only(&journal_of(dir.path())).unwrap();
        let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].state, OrderState::Paid, "json {json}");
        let log = std::fs::read_dir(dir.path().join("data/logs"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<String>();
        assert!(log.contains("cannot print"), "the lost output is logged");
    }
}
