//! `scanpay journal`, the export and the screen, as the real binary: viewing
//! never writes the journal, creates no file (no -wal or -shm beside it, no
//! log folder in the working directory), starts no gateway and recovers
//! nothing, and works where nothing can be written: a read-only mount and a
//! user without write permission.
//!
//! These tests run as root here, where file modes alone stop nothing, so the
//! read-only cases use a read-only bind mount in a mount namespace of its own
//! (`unshare`) and an unprivileged user (`setpriv`). Each first proves that
//! a write really fails there, and fails loudly if the mechanism is missing.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::process::binary;
use common::pty::{CommandBuilder, Terminal};
use scanpay::domain::{Fen, TillId};
use scanpay::journal::{Journal, NewOrder, OrderState};

const BIN: &str = env!("CARGO_BIN_EXE_scanpay");

/// Every file in `dir` (not below it) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = if entry.file_type().unwrap().is_dir() {
                b"<folder>".to_vec()
            } else {
                std::fs::read(entry.path()).unwrap()
            };
            (name, bytes)
        })
        .collect()
}

/// Fails naming each file of `dir` added, removed or changed since `before`.
fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>, by: &str) {
    let after = snapshot(dir);
    let differ: Vec<_> = before
        .keys()
        .chain(after.keys().filter(|name| !before.contains_key(*name)))
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| match (before.get(name), after.get(name)) {
            (None, _) => format!("{name} created"),
            (_, None) => format!("{name} deleted"),
            _ => format!("{name} changed"),
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{by} changed the journal's folder: {differ:?}"
    );
}

fn names(dir: &Path) -> Vec<String> {
    snapshot(dir).into_keys().collect()
}

/// `scanpay pay` against the built-in simulator, journaling into `journal`;
/// its logs go to `scratch`. Returns the order number.
fn pay(journal: &Path, scratch: &Path, amount: &str, code: &str) -> String {
    let out = binary()
        .current_dir(scratch)
        .env("SCANPAY_JOURNAL_PATH", journal)
        .env("SCANPAY_LOG_DIR", scratch.join("logs"))
        .args(["pay", "--json", "--amount", amount, "--auth-code", code])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["state"], "paid", "{result}");
    result["out_trade_no"].as_str().unwrap().to_string()
}

/// An order opened, as a till does before it sends the micropay, and never
/// finished: what a crash leaves.
fn open_order(journal: &mut Journal) -> String {
    let till = TillId::parse("T01").unwrap();
    let new = NewOrder {
        till: &till,
        total_fee: Fen(500),
        body: "Tea",
        auth_code_masked: "**************6077".into(),
        now: time::OffsetDateTime::now_utc(),
        local_offset: time::UtcOffset::from_hms(8, 0, 0).unwrap(),
    };
    journal.open_order(&new).unwrap().1.to_string()
}

/// A journal two paid orders long, closed (no -wal or -shm left), in a folder
/// of its own; returns (folder, journal path, order numbers).
fn closed_journal(scratch: &Path) -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("journal.sqlite3");
    let orders = vec![
        pay(&path, scratch, "12.34", "134539517967686076"),
        pay(&path, scratch, "0.02", "134539517967686083"),
    ];
    assert_eq!(names(folder.path()), ["journal.sqlite3"]);
    (folder, path, orders)
}

/// A copy of a running till's journal folder, -wal and -shm included, as a
/// backup taken during business or a crashed till's disk looks: its orders
/// are in the -wal alone. Returns (folder, journal path, order numbers).
fn journal_with_a_wal() -> (tempfile::TempDir, PathBuf, Vec<String>) {
    let live = tempfile::tempdir().unwrap();
    let live_path = live.path().join("journal.sqlite3");
    let mut till = Journal::open(&live_path).unwrap();
    let orders = vec![open_order(&mut till), open_order(&mut till)];
    let copy = tempfile::tempdir().unwrap();
    // The live till's owner lock is its own, not part of a copy.
    for name in names(live.path())
        .into_iter()
        .filter(|n| !n.ends_with(".owners"))
    {
        std::fs::copy(live.path().join(&name), copy.path().join(&name)).unwrap();
    }
    drop(till);
    let wal = copy.path().join("journal.sqlite3-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "nothing in the -wal"
    );
    assert_eq!(
        names(copy.path()),
        [
            "journal.sqlite3",
            "journal.sqlite3-shm",
            "journal.sqlite3-wal"
        ]
    );
    let path = copy.path().join("journal.sqlite3");
    (copy, path, orders)
}

/// `scanpay journal` with this journal, run from `cwd`, logging where it
/// would by default (`./data/logs`, which must never appear).
fn journal_command(journal: &Path, cwd: &Path) -> Command {
    let mut cmd = binary();
    cmd.current_dir(cwd)
        .env("SCANPAY_JOURNAL_PATH", journal)
        .env_remove("SCANPAY_LOG_DIR")
        .env("SCANPAY_TILL_LANGUAGE", "en")
        .arg("journal");
    cmd
}

fn assert_exported(out: &Output, orders: &[String]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("out_trade_no,"), "{stdout}");
    assert_eq!(stdout.lines().count(), orders.len() + 1, "{stdout}");
    for order in orders {
        assert!(
            stdout.contains(order.as_str()),
            "{order} not exported:\n{stdout}"
        );
    }
}

// ---- read-only mechanisms ----

/// Fails (exit 98) if `$1` can still be written, then runs the rest.
const UNWRITABLE_THEN_RUN: &str = r#"
if touch "$1/.scanpay-write-probe" 2>/dev/null; then
    rm -f "$1/.scanpay-write-probe"
    echo "$1 is writable: the read-only set-up did not take" >&2
    exit 98
fi
shift
exec "$@"
"#;

/// `program args` with `dir` bind-mounted read-only over itself, in a mount
/// namespace of its own (`unshare --mount --map-root-user`: root, or any user
/// where user namespaces are allowed). The rest of the system sees no change.
fn read_only_mount(dir: &Path, program: &str, args: &[&str]) -> Vec<String> {
    let script = format!(
        "mount --bind -o ro \"$1\" \"$1\" || {{ echo 'cannot bind-mount' \"$1\" read-only >&2; exit 97; }}\n{UNWRITABLE_THEN_RUN}"
    );
    let mut argv: Vec<String> = ["unshare", "--mount", "--map-root-user", "--", "sh", "-c"]
        .map(String::from)
        .to_vec();
    argv.extend([
        script,
        "sh".into(),
        dir.display().to_string(),
        program.into(),
    ]);
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// `program args` as the unprivileged user nobody (65534), with `dir` and
/// its files owned by root and made read-only for everyone else.
fn as_nobody(dir: &Path, program: &str, args: &[&str]) -> Vec<String> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut argv: Vec<String> = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "sh",
        "-c",
        UNWRITABLE_THEN_RUN,
        "sh",
    ]
    .map(String::from)
    .to_vec();
    argv.extend([dir.display().to_string(), program.into()]);
    argv.extend(args.iter().map(|a| a.to_string()));
    argv
}

/// A temporary folder nobody may enter but not write: the working directory
/// of an unprivileged run, where a log folder could not be created anyway.
fn unwritable_cwd() -> tempfile::TempDir {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::set_permissions(cwd.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    cwd
}

/// Runs `argv` (a wrapper around the binary) like [`journal_command`].
fn run_wrapped(argv: &[String], journal: &Path, cwd: &Path) -> Output {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .env_remove("SCANPAY_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("SCANPAY_LOG_DIR")
        .env("SCANPAY_JOURNAL_PATH", journal)
        .env("SCANPAY_TILL_LANGUAGE", "en")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", argv[0]));
    let code = out.status.code();
    assert!(
        !matches!(code, Some(97 | 98)),
        "the read-only set-up failed ({argv:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---- the journal screen in a pseudo-terminal ----

struct Screen(Terminal);

impl Screen {
    /// `argv` in a pty, run from `cwd`, with this journal.
    fn start(argv: &[String], journal: &Path, cwd: &Path) -> Self {
        let mut cmd = CommandBuilder::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.cwd(cwd);
        for var in [
            "SCANPAY_CONFIG",
            "RUST_LOG",
            "SCANPAY_LOG_DIR",
            "SCANPAY_FAULT",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("SCANPAY_JOURNAL_PATH", journal);
        cmd.env("SCANPAY_TILL_LANGUAGE", "en");
        Self(Terminal::spawn(cmd))
    }

    fn text(&self) -> String {
        self.0.text()
    }

    fn wait_for(&mut self, needle: &str) -> String {
        self.0.wait_for(needle)
    }

    /// Presses q and waits for the program to end with success and the
    /// terminal restored.
    fn quit(mut self) {
        self.0.press(b"q");
        let status = self.0.wait_exit("q");
        assert!(status.success(), "{status:?}\n{}", self.text());
        assert!(!self.0.alternate_screen(), "the alternate screen was left");
    }

    /// The TCP sockets the program holds, listening or connected, as lines of
    /// /proc/net/tcp{,6}: a gateway client, the simulator's listener or a
    /// network probe would each be one. (Unix socket pairs, which the signal
    /// handling uses, are not counted.)
    fn tcp_sockets(&self) -> Vec<String> {
        let pid = self.0.child.process_id().expect("the child has a pid");
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .map(|target| target.display().to_string())
            .collect();
        assert!(fds.len() >= 3, "/proc/{pid}/fd shows no stdio: {fds:?}");
        let inodes: Vec<&str> = fds
            .iter()
            .filter_map(|target| target.strip_prefix("socket:[")?.strip_suffix(']'))
            .collect();
        ["tcp", "tcp6"]
            .iter()
            .flat_map(|table| {
                let table = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
                table
                    .lines()
                    .skip(1)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|line| {
                line.split_whitespace()
                    .nth(9)
                    .is_some_and(|inode| inodes.contains(&inode))
            })
            .collect()
    }
}

/// Shows the journal screen for `journal` (today, where its orders are), checks
/// every order is listed, and quits.
fn view(argv: &[String], journal: &Path, cwd: &Path, orders: &[String]) {
    let mut screen = Screen::start(argv, journal, cwd);
    let text = screen.wait_for("takings per hour");
    assert!(text.contains("viewing the journal read-only"), "{text}");
    // The day's rows arrive from a background read after the first frame.
    for order in orders {
        screen.wait_for(order);
    }
    screen.quit();
}

// ---- the tests ----

#[test]
fn exporting_and_viewing_change_no_file_and_create_none() {
    let scratch = tempfile::tempdir().unwrap();
    let (folder, journal, orders) = closed_journal(scratch.path());
    let before = snapshot(folder.path());
    let cwd = tempfile::tempdir().unwrap();

    let out = journal_command(&journal, cwd.path())
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert_exported(&out, &orders);
    let json = scratch.path().join("today.json");
    let out = journal_command(&journal, cwd.path())
        .args(["--format", "json", "--output"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), orders.len());
    assert_unchanged(folder.path(), &before, "the export");
    assert_eq!(
        names(cwd.path()),
        Vec::<String>::new(),
        "the export created files"
    );

    view(
        &[BIN.into(), "journal".into()],
        &journal,
        cwd.path(),
        &orders,
    );
    assert_unchanged(folder.path(), &before, "the screen");
    assert_eq!(
        names(cwd.path()),
        Vec::<String>::new(),
        "the screen created files"
    );
}

#[test]
fn the_screen_leaves_an_unfinished_order_alone_and_starts_no_gateway() {
    let scratch = tempfile::tempdir().unwrap();
    let (folder, journal, mut orders) = closed_journal(scratch.path());
    // A till crashed mid-payment: its order stays open until a till recovers it.
    let mut till = Journal::open(&journal).unwrap();
    let open = open_order(&mut till);
    drop(till);
    orders.push(open.clone());
    let read = || {
        let journal = Journal::open_read_only(&journal).unwrap();
        let order = journal.order_by_trade_no(&open).unwrap().unwrap();
        let events = journal.events(order.id).unwrap();
        (order, events)
    };
    let (order_before, events_before) = read();
    assert_eq!(order_before.state, OrderState::Open);
    let before = snapshot(folder.path());
    let cwd = tempfile::tempdir().unwrap();

    let mut screen = Screen::start(&[BIN.into(), "journal".into()], &journal, cwd.path());
    // The day's rows arrive from a background read after the first frame.
    let text = screen.wait_for(&open);
    assert!(text.contains("open"), "{text}");
    assert!(!text.contains("recovering"), "{text}");
    assert_eq!(
        screen.tcp_sockets(),
        Vec::<String>::new(),
        "a gateway or simulator runs"
    );
    // A till would have resolved an order whose micropay was never sent at
    // once; give a stray recovery the time to show.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        screen.tcp_sockets(),
        Vec::<String>::new(),
        "a gateway or simulator runs"
    );
    let text = screen.text();
    assert!(!text.contains("ecovered"), "{text}");
    screen.quit();

    let (order_after, events_after) = read();
    assert_eq!(
        order_after, order_before,
        "the screen touched the open order"
    );
    assert_eq!(events_after, events_before, "the screen appended events");
    assert_unchanged(folder.path(), &before, "the screen");
    assert_eq!(
        names(cwd.path()),
        Vec::<String>::new(),
        "files (a log?) were created"
    );
}

#[test]
fn a_journal_on_a_read_only_mount_exports_and_shows() {
    let scratch = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let closed = closed_journal(scratch.path());
    let with_wal = journal_with_a_wal();
    for (folder, journal, orders) in [&closed, &with_wal] {
        let before = snapshot(folder.path());
        let export = read_only_mount(folder.path(), BIN, &["journal", "--format", "csv"]);
        assert_exported(&run_wrapped(&export, journal, cwd.path()), orders);
        let screen = read_only_mount(folder.path(), BIN, &["journal"]);
        view(&screen, journal, cwd.path(), orders);
        assert_unchanged(folder.path(), &before, "viewing");
    }
    // Without its -shm the -wal cannot be read where the -shm cannot be
    // rebuilt: said so, rather than showing the journal without those orders.
    let (folder, journal, _) = &with_wal;
    std::fs::remove_file(folder.path().join("journal.sqlite3-shm")).unwrap();
    let export = read_only_mount(folder.path(), BIN, &["journal", "--format", "csv"]);
    let out = run_wrapped(&export, journal, cwd.path());
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("-shm file beside it, which is missing"),
        "{stderr}"
    );
    assert_eq!(names(cwd.path()), Vec::<String>::new());
}

#[test]
fn a_journal_the_user_may_not_write_exports_and_shows() {
    let scratch = tempfile::tempdir().unwrap();
    let cwd = unwritable_cwd();
    let closed = closed_journal(scratch.path());
    let with_wal = journal_with_a_wal();
    for (folder, journal, orders) in [&closed, &with_wal] {
        let export = as_nobody(folder.path(), BIN, &["journal", "--format", "csv"]);
        let before = snapshot(folder.path());
        assert_exported(&run_wrapped(&export, journal, cwd.path()), orders);
        let screen = as_nobody(folder.path(), BIN, &["journal"]);
        view(&screen, journal, cwd.path(), orders);
        assert_unchanged(folder.path(), &before, "viewing");
    }
    assert_eq!(names(cwd.path()), Vec::<String>::new());
}

#[test]
fn a_missing_journal_is_named_with_how_to_point_at_one_and_nothing_is_created() {
    let cwd = tempfile::tempdir().unwrap();
    let journal = cwd.path().join("data").join("journal.sqlite3");
    // The screen form needs a terminal; stdin/stdout piped make the export.
    for args in [&["--format", "csv"][..], &[]] {
        let out = journal_command(&journal, cwd.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("no journal at {}", journal.display()))
                && stderr.contains("journal.path")
                && stderr.contains("--config"),
            "{stderr}"
        );
        assert_eq!(names(cwd.path()), Vec::<String>::new());
    }
    let mut screen = Screen::start(&[BIN.into(), "journal".into()], &journal, cwd.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = screen.0.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the screen opened without a journal"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.exit_code(), 3);
    // The reader thread may still be taking the last output from the pty.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !screen.text().contains("no journal at") {
        assert!(Instant::now() < deadline, "{}", screen.text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(names(cwd.path()), Vec::<String>::new());
}
