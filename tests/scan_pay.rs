//! A scan becomes a payment: the real binary, `scanpay pay --scan` on a
//! serial scanner that is a real pseudo-terminal, paying the built-in
//! simulator and journaling the order.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use scanpay::journal::{Journal, OrderState};
use serialport::{SerialPort, TTYPort};

fn scanpay(dir: &std::path::Path, port: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.env_remove("SCANPAY_CONFIG")
        .env_remove("RUST_LOG")
        .env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"))
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_SCANNER_DRIVER", "serial")
        .env("SCANPAY_SERIAL_PORT", port)
        .env("SCANPAY_SERIAL_REOPEN_INTERVAL_MS", "50");
    cmd
}

/// Runs `pay --scan`, writes `written` into the scanner's side of the pty
/// once the till waits for a scan, and returns (exit code, stdout, stderr).
fn pay_by_scan(
    amount: &str,
    written: &[&[u8]],
) -> (Option<i32>, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (mut scanner, till_side) = TTYPort::pair().expect("a pseudo-terminal pair");
    let port = till_side.name().expect("the pty has a path");
    let mut child = scanpay(dir.path(), &port)
        .args([
            "pay",
            "--json",
            "--scan",
            "--scan-timeout",
            "20",
            "--amount",
            amount,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the till is reading the port, then "scan".
    let (lines_tx, lines) = mpsc::channel();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the till asks for a scan");
        let connected = line.contains("scanner ready");
        seen.push(line);
        if connected {
            break;
        }
    }
    for chunk in written {
        scanner.write_all(chunk).unwrap();
        scanner.flush().unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let output = child.wait_with_output().unwrap();
    seen.extend(lines.try_iter());
    drop(till_side);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        seen.join("\n"),
        dir,
    )
}

#[test]
fn a_code_written_into_the_serial_port_becomes_a_paid_order() {
    // Noise first, then the code split across two writes with a CR LF suffix.
    let (exit, stdout, stderr, dir) = pay_by_scan(
        "12.34",
        &[b"\x02\x07garbage\r", b"1345395179", b"67686076\r\n"],
    );
    assert_eq!(exit, Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains("not a payment code"),
        "the noise is explained:\n{stderr}"
    );
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let order = journal
        .order_by_trade_no(result["out_trade_no"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(order.state, OrderState::Paid);
    assert_eq!(order.total_fee.0, 1234);
    assert_eq!(order.auth_code_masked, "**************6076");
}

#[test]
fn a_bad_amount_is_refused_before_waiting_for_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay(dir.path(), "/dev/null")
        .args(["pay", "--scan", "--amount", "1.234"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than two decimals"));
}

#[test]
fn a_port_that_does_not_exist_is_a_configuration_error_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay(dir.path(), "/dev/ttyNOPE9")
        .args(["pay", "--scan", "--amount", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/dev/ttyNOPE9") && stderr.contains("scan-test --list"),
        "{stderr}"
    );
}
