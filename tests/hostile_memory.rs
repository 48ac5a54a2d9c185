//! The till's peak memory while a hostile gateway on 127.0.0.1 answers
//! every call with an endless or 300 MB body. A test binary of its own: a
//! process started with vfork/posix_spawn inherits the spawning process's
//! memory high-water mark into its `ru_maxrss` at exec, so the spawning test
//! process must itself stay small for the figure to be the till's.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::code;
use common::hostile::{Hostile, hostile, pay_at, scanpay};

const MIB: u64 = 1024 * 1024;
use scanpay::journal::{Journal, OrderState};

/// Waits for `child` and returns its exit code and peak resident memory
/// (the kernel's `ru_maxrss` for that process, from wait4).
fn wait_with_peak_rss(child: std::process::Child) -> (Option<i32>, u64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value, and wait4 only writes into
    // the two pointers given, both to live locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    // Linux reports ru_maxrss in KiB.
    (code, usage.ru_maxrss as u64 * 1024)
}

fn run_measured(mut cmd: Command, dir: &Path) -> (Option<i32>, u64, String) {
    let stderr = dir.join("stderr.txt");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.txt")).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let (code, peak) = wait_with_peak_rss(child);
    (code, peak, std::fs::read_to_string(stderr).unwrap())
}

/// This test process's own high-water mark (VmHWM), in bytes.
fn own_peak() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

#[test]
fn endless_and_huge_answers_keep_the_tills_memory_small() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Every call of the payment gets another kind of endless answer.
    let server = runtime.block_on(hostile(|n| match n % 3 {
        0 => Hostile::HugeLength,
        1 => Hostile::EndlessChunked,
        _ => Hostile::EndlessUnannounced,
    }));

    // The same binary paying against its built-in simulator, for comparison.
    let calm = tempfile::tempdir().unwrap();
    let mut baseline = scanpay(calm.path());
    baseline
        .env("SCANPAY_GATEWAY_MODE", "simulator")
        .args(["pay", "--amount", "0.01", "--auth-code"])
        .arg(code().expose());
    let (exit, baseline_peak, stderr) = run_measured(baseline, calm.path());
    assert_eq!(exit, Some(0), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let mut cmd = scanpay(dir.path());
    pay_at(&mut cmd, &server.base_url());
    let (exit, peak, stderr) = run_measured(cmd, dir.path());
    let spawner = own_peak();
    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    eprintln!(
        "peak RSS of `scanpay pay`: {:.1} MiB against the simulator, {:.1} MiB against {} endless or 300 MB answers (this test process: {:.1} MiB)",
        mib(baseline_peak),
        mib(peak),
        server.accepted(),
        mib(spawner)
    );
    // Unclear at every call: reversed attempts exhausted, a person must look.
    assert_eq!(exit, Some(6), "{stderr}");
    assert!(server.accepted() >= 3, "{} calls", server.accepted());
    assert!(
        peak < baseline_peak + 64 * MIB,
        "peak RSS {} MiB (baseline {} MiB): an answer was read whole",
        peak / MIB,
        baseline_peak / MIB
    );
    let journal = Journal::open_read_only(&dir.path().join("journal.sqlite3")).unwrap();
    let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].state, OrderState::NeedsAttention);
}
