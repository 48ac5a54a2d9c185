//! `scanpay refund` end to end: the real binary against a `scanpay simulate`
//! process, a real journal, timings ÷ 100. The ledger is the truth about
//! money: each out_refund_no refunds at most once, whatever crashes.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::process::{Gateway, ledger, set_fault, start_gateway, till};
use scanpay::journal::{Journal, RefundState};
use serde_json::Value;

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Pays `amount` as till T01 in `dir`; returns the order number.
fn paid(dir: &Path, gateway: &Gateway, amount: &str, code: u64) -> String {
    let output = till("T01", dir, gateway)
        .args(["pay", "--json", "--amount", amount, "--auth-code"])
        .arg(format!("13{code:016}"))
        .output()
        .unwrap();
    let result = json(&output);
    assert_eq!(result["state"], "paid", "{result}");
    result["out_trade_no"].as_str().unwrap().to_string()
}

fn refund(dir: &Path, gateway: &Gateway, args: &[&str]) -> (Option<i32>, Value) {
    let output = till("T01", dir, gateway)
        .args(["refund", "--json"])
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), json(&output))
}

/// The refunds the gateway recorded for `no`: (out_refund_no, fen).
fn refunds_at_gateway(gateway: &Gateway, no: &str) -> Vec<(String, u64)> {
    ledger(gateway)
        .into_iter()
        .filter(|e| e.out_trade_no == no && !e.foreign)
        .flat_map(|e| e.refunds)
        .map(|r| (r.out_refund_no, r.refund_fee))
        .collect()
}

#[test]
fn a_paid_order_is_refunded_in_parts_never_beyond_what_was_paid() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let no = paid(dir.path(), &gateway, "12.34", 7_000_001);
    let (exit, first) = refund(
        dir.path(),
        &gateway,
        &["--order", &no, "--amount", "5.00", "--reason", "退货"],
    );
    assert_eq!(exit, Some(0), "{first}");
    assert_eq!(first["state"], "refunded");
    assert_eq!(first["amount"], "5.00");
    assert!(first["refund_id"].as_str().is_some_and(|id| !id.is_empty()));
    // Without --amount: all that remains.
    let (exit, rest) = refund(dir.path(), &gateway, &["--order", &no]);
    assert_eq!(exit, Some(0), "{rest}");
    assert_eq!(rest["amount"], "7.34");
    assert_eq!(
        refunds_at_gateway(&gateway, &no),
        [(format!("{no}R01"), 500), (format!("{no}R02"), 734)]
    );
    // Nothing remains: refused before anything is sent.
    let (exit, none) = refund(dir.path(), &gateway, &["--order", &no, "--amount", "0.01"]);
    assert_eq!(exit, Some(2), "{none}");
    assert!(
        none["message"].as_str().unwrap().contains("left to refund"),
        "{none}"
    );
    assert_eq!(refunds_at_gateway(&gateway, &no).len(), 2);
    // An unknown order, an amount that is not money: exit 2.
    let (exit, unknown) = refund(dir.path(), &gateway, &["--order", "T01NOSUCHORDER"]);
    assert_eq!(exit, Some(2), "{unknown}");
    let (exit, bad) = refund(dir.path(), &gateway, &["--order", &no, "--amount", "1.234"]);
    assert_eq!(exit, Some(2), "{bad}");
}

#[test]
fn each_refund_answer_ends_with_its_exit_code() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let no = paid(dir.path(), &gateway, "12.34", 7_000_101);
    // 0.07: accepted, PROCESSING at the first query, SUCCESS at the next.
    let (exit, processing) = refund(dir.path(), &gateway, &["--order", &no, "--amount", "0.07"]);
    assert_eq!(
        (exit, &processing["state"]),
        (Some(0), &Value::from("refunded")),
        "{processing}"
    );
    // 0.08: SYSTEMERROR after accepting: the same number again, refunded once.
    let (exit, retried) = refund(dir.path(), &gateway, &["--order", &no, "--amount", "0.08"]);
    assert_eq!(exit, Some(0), "{retried}");
    // 0.09: the merchant's balance is too low: refused, nothing refunded.
    let (exit, refused) = refund(dir.path(), &gateway, &["--order", &no, "--amount", "0.09"]);
    assert_eq!(exit, Some(4), "{refused}");
    assert_eq!(refused["err_code"], "NOTENOUGH");
    assert_eq!(
        refunds_at_gateway(&gateway, &no),
        [(format!("{no}R01"), 7), (format!("{no}R02"), 8)],
        "SYSTEMERROR's retry did not refund twice, NOTENOUGH nothing"
    );
}

#[test]
fn a_refund_killed_mid_way_is_finished_by_replay_exactly_once() {
    let gateway = start_gateway();
    for (i, point) in ["refund-journaled", "refund-answered"].iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let no = paid(dir.path(), &gateway, "12.34", 7_000_201 + i as u64);
        let crashed = till("T01", dir.path(), &gateway)
            .env("SCANPAY_FAULT", point)
            .args(["refund", "--order", &no, "--amount", "3.00"])
            .output()
            .unwrap();
        assert_eq!(crashed.status.code(), None, "{point}: it must abort");
        let replay = till("T01", dir.path(), &gateway)
            .args(["replay"])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&replay.stdout);
        assert_eq!(replay.status.code(), Some(0), "{point}: {report}");
        assert!(report.contains("refunded"), "{point}: {report}");
        assert_eq!(
            refunds_at_gateway(&gateway, &no),
            [(format!("{no}R01"), 300)],
            "{point}: exactly one refund under the one number"
        );
        let journal = Journal::open_read_only(&dir.path().join("journal.sqlite3")).unwrap();
        let order = journal.order_by_trade_no(&no).unwrap().unwrap();
        let refunds = journal.refunds_of(order.id).unwrap();
        assert_eq!(refunds.len(), 1, "{point}");
        assert_eq!(refunds[0].state, RefundState::Refunded, "{point}");
        // A second replay has nothing left to do.
        let again = till("T01", dir.path(), &gateway)
            .args(["replay"])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(0));
        assert_eq!(refunds_at_gateway(&gateway, &no).len(), 1, "{point}");
    }
}

/// A refund whose next step cannot be journaled says so in a refund's terms,
/// with its number: WeChat may have it, so only replay may follow it up.
#[test]
fn a_refund_that_cannot_be_journaled_says_what_became_of_it() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let no = paid(dir.path(), &gateway, "12.34", 7_000_301);
    // Every answer comes 400 ms late: time to take the refund from under it.
    set_fault(&gateway, serde_json::json!({"mode": "delay"}));
    let running = till("T01", dir.path(), &gateway)
        .args(["refund", "--json", "--order", &no, "--amount", "3.00"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out_refund_no = format!("{no}R01");
    let journal = rusqlite::Connection::open(dir.path().join("journal.sqlite3")).unwrap();
    journal.busy_timeout(Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal
        .execute(
            "UPDATE refunds SET owner = 'T09-gone' WHERE out_refund_no = ?1",
            [&out_refund_no],
        )
        .unwrap()
        == 0
    {
        assert!(Instant::now() < deadline, "the refund was never journaled");
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = running.wait_with_output().unwrap();
    set_fault(&gateway, serde_json::json!({"mode": "none"}));
    let result = json(&output);
    assert_eq!(output.status.code(), Some(6), "{result}");
    let message = result["message"].as_str().unwrap();
    assert!(message.contains(&out_refund_no), "{message}");
    assert!(message.contains("do not refund that money"), "{message}");
    assert!(!message.contains("payment"), "{message}");
    // Whoever took it is gone: replay finishes it, refunding once.
    let replay = till("T01", dir.path(), &gateway)
        .args(["replay"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(0), "{report}");
    assert!(report.contains("refunded"), "{report}");
    assert_eq!(
        refunds_at_gateway(&gateway, &no),
        [(out_refund_no, 300)],
        "exactly one refund under the one number"
    );
}
