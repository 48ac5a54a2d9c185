//! `scanpay reconcile` end to end: the real binary against a `scanpay
//! simulate` process, two tills (two journals, two till ids) of one merchant,
//! the day's bill downloaded over HTTP on 127.0.0.1.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::Output;

use common::process::{Gateway, bill_today, json_of, pay, set_fault, start_gateway, till};
use scanpay::journal::{Journal, OrderState};
use scanpay::payment::Event;
use serde_json::Value;
use time::{OffsetDateTime, UtcOffset};

/// The simulator's bill day, as `--date` takes it.
fn today() -> String {
    bill_today().to_string()
}

fn reconcile(id: &str, dir: &Path, gateway: &Gateway, args: &[&str]) -> (Option<i32>, Output) {
    let output = till(id, dir, gateway)
        .arg("reconcile")
        .args(args)
        .output()
        .unwrap();
    (output.status.code(), output)
}

fn reconcile_json(id: &str, dir: &Path, gateway: &Gateway) -> (Option<i32>, Value) {
    let (exit, output) = reconcile(id, dir, gateway, &["--date", &today(), "--json"]);
    (exit, json_of(&output))
}

fn simulator_bill(gateway: &Gateway, creating: bool) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/_simulator/bill", gateway.control_url))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "creating": creating }).to_string())
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    });
}

fn kinds(report: &Value) -> Vec<(String, String)> {
    report["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["out_trade_no"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_day_of_two_tills_finds_the_charge_the_till_gave_up_on_and_nothing_else() {
    let gateway = start_gateway();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (a.path(), b.path());
    // Till T01: a sale, a sale refunded in part, a reverse the customer's
    // payment beat (0.52: charged and returned).
    let (exit, paid) = pay("T01", a, &gateway, "12.34", 8_000_001);
    assert_eq!(exit, Some(0));
    let (exit, refunded) = pay("T01", a, &gateway, "20.00", 8_000_002);
    assert_eq!(exit, Some(0));
    let refund = till("T01", a, &gateway)
        .args(["refund", "--order", &refunded, "--amount", "5.00"])
        .output()
        .unwrap();
    assert_eq!(refund.status.code(), Some(0), "{refund:?}");
    let (exit, returned) = pay("T01", a, &gateway, "0.52", 8_000_003);
    assert_eq!(exit, Some(5), "0.52 ends reversed");
    // A sale WeChat charged that the till lost: it dies as the answer
    // arrives, and replay cannot reach WeChat, so the order is left for a person.
    let crashed = till("T01", a, &gateway)
        .env("SCANPAY_FAULT", "answer-received")
        .args([
            "pay",
            "--amount",
            "8.88",
            "--auth-code",
            "130000000008000004",
        ])
        .output()
        .unwrap();
    assert_eq!(crashed.status.code(), None, "it must abort");
    set_fault(&gateway, serde_json::json!({"mode": "refuse"}));
    let replay = till("T01", a, &gateway).arg("replay").output().unwrap();
    set_fault(&gateway, serde_json::json!({"mode": "none"}));
    let journal = Journal::open_read_only(&a.join("journal.sqlite3")).unwrap();
    let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
    let lost = orders.iter().find(|o| o.total_fee.0 == 888).unwrap();
    assert_eq!(
        lost.state,
        OrderState::NeedsAttention,
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );
    let lost = lost.out_trade_no.to_string();
    drop(journal);
    // Till T02 of the same merchant.
    let (exit, _) = pay("T02", b, &gateway, "7.77", 8_000_005);
    assert_eq!(exit, Some(0));

    let (exit, report) = reconcile_json("T01", a, &gateway);
    assert_eq!(exit, Some(7), "{report:#}");
    assert_eq!(kinds(&report), [("charged_not_paid".into(), lost.clone())]);
    let found = &report["discrepancies"][0];
    assert_eq!(found["journal"]["state"], "needs_attention");
    assert_eq!(found["bill"]["trade_state"], "SUCCESS");
    assert_eq!(found["bill"]["total_fee"], "8.88");
    assert!(
        found["advice"]
            .as_str()
            .unwrap()
            .contains("hand over the goods"),
        "{found}"
    );
    assert_eq!(report["date"], today());
    assert_eq!(report["till"], "T01");
    assert_eq!(report["matched"], 3, "{report:#}");
    assert_eq!(report["refunds_matched"], 1);
    assert_eq!(
        report["reversed_after_payment"],
        serde_json::json!([returned])
    );
    assert_eq!(report["totals"]["bill"]["charged"], "41.22"); // 12.34 + 20.00 + 8.88
    assert_eq!(report["totals"]["bill"]["refunded"], "5.00");
    assert_eq!(report["totals"]["bill"]["net"], "36.22");
    assert_eq!(report["totals"]["bill"]["returned"], "0.52");
    assert_eq!(report["totals"]["journal"]["paid"], "32.34");
    assert_eq!(
        report["other_tills"],
        serde_json::json!([{"device_info": "T02", "rows": 1, "charged": "7.77",
            "refunded": "0.00", "returned": "0.00", "net": "7.77"}])
    );
    assert!(!paid.is_empty());

    // The journal recorded the reconciliation, and the returned charge once
    // however often the day is reconciled; the order stays reversed.
    let (exit, _) = reconcile_json("T01", a, &gateway);
    assert_eq!(exit, Some(7));
    let journal = Journal::open_read_only(&a.join("journal.sqlite3")).unwrap();
    let reconciled = journal.reconciliation_of(&today()).unwrap().unwrap();
    assert_eq!((reconciled.matched, reconciled.discrepancies), (3, 1));
    assert_eq!(reconciled.source, "downloaded");
    let order = journal.order_by_trade_no(&returned).unwrap().unwrap();
    assert_eq!(order.state, OrderState::Reversed);
    let notes = journal
        .events(order.id)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, Event::ReversedAfterPayment { total_fee: 52, .. }))
        .count();
    assert_eq!(notes, 1);
    drop(journal);

    // The manager settles it (replay finds it paid); then the books agree.
    let replay = till("T01", a, &gateway).arg("replay").output().unwrap();
    assert_eq!(replay.status.code(), Some(0), "{replay:?}");
    let (exit, report) = reconcile_json("T01", a, &gateway);
    assert_eq!(exit, Some(0), "{report:#}");
    assert_eq!(report["discrepancies"], serde_json::json!([]));
    assert_eq!(report["matched"], 4);
    // The plain report says the same, in words.
    let (exit, output) = reconcile("T01", a, &gateway, &["--date", &today()]);
    assert_eq!(exit, Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("the books agree"), "{text}");
    assert!(text.contains("T02"), "{text}");
    assert!(
        text.contains(&format!("  reversed after payment: {returned}\n")),
        "{text}"
    );

    // Till T02's books agree; T01's rows are another till's there.
    let (exit, report) = reconcile_json("T02", b, &gateway);
    assert_eq!(exit, Some(0), "{report:#}");
    assert_eq!(report["matched"], 1);
    assert_eq!(report["other_tills"][0]["device_info"], "T01");
}

#[test]
fn no_bill_yet_is_exit_4_and_no_bill_exist_is_a_bill_without_rows() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    // No trade at all: "No Bill Exist", and a day without payments agrees.
    let (exit, report) = reconcile_json("T01", dir, &gateway);
    assert_eq!(exit, Some(0), "{report:#}");
    assert_eq!(report["discrepancies"], serde_json::json!([]));
    // A paid order, but WeChat (another gateway here) has no trade that day.
    let (exit, paid) = pay("T01", dir, &gateway, "3.21", 8_100_001);
    assert_eq!(exit, Some(0));
    let empty = start_gateway();
    let (exit, report) = reconcile_json("T01", dir, &empty);
    assert_eq!(exit, Some(7), "{report:#}");
    assert_eq!(kinds(&report), [("paid_not_in_bill".into(), paid)]);
    // Bill Creating: exit 4, the date is asked of WeChat (today), nothing recorded.
    simulator_bill(&gateway, true);
    let (exit, output) = reconcile("T01", dir, &gateway, &["--date", &today()]);
    simulator_bill(&gateway, false);
    assert_eq!(exit, Some(4));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("Bill Creating"), "{message}");
    let journal = Journal::open_read_only(&dir.join("journal.sqlite3")).unwrap();
    let newest = journal.reconciliation_of(&today()).unwrap().unwrap();
    assert_eq!(
        newest.discrepancies, 1,
        "the Bill Creating try recorded nothing"
    );
}

#[test]
fn a_saved_bill_is_read_plain_or_gzipped_and_bad_input_is_exit_2() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (exit, paid) = pay("T01", dir, &gateway, "4.56", 8_200_001);
    assert_eq!(exit, Some(0));
    let now = OffsetDateTime::now_utc().to_offset(UtcOffset::from_hms(8, 0, 0).unwrap());
    let line = scanpay::simulator::BillLine::charge(
        "T01",
        &paid,
        "4200000000000001".into(),
        now,
        scanpay::simulator::BillState::Success,
        456,
    );
    let text = scanpay::simulator::render_bill(&[line], "wxd930ea5d5a258f4f", "10000100");
    let plain = dir.join("bill.csv");
    std::fs::write(&plain, &text).unwrap();
    let gzipped = dir.join("bill.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gzipped, gz.finish().unwrap()).unwrap();
    for bill in [&plain, &gzipped] {
        let report_path = dir.join("report.json");
        let (exit, output) = till("T01", dir, &gateway)
            .args(["reconcile", "--date", &today(), "--json", "--bill"])
            .arg(bill)
            .arg("--output")
            .arg(&report_path)
            .output()
            .map(|o| (o.status.code(), o))
            .unwrap();
        assert_eq!(exit, Some(0), "{output:?}");
        let report: Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
        assert_eq!(report["source"], "file");
        assert_eq!(report["matched"], 1);
        assert_eq!(report["discrepancies"], serde_json::json!([]));
    }
    // Not a bill, a malformed date, an --output that is a folder: exit 2.
    let (exit, _) = reconcile(
        "T01",
        dir,
        &gateway,
        &[
            "--date",
            &today(),
            "--bill",
            dir.join("journal.sqlite3").to_str().unwrap(),
        ],
    );
    assert_eq!(exit, Some(2));
    let (exit, output) = reconcile("T01", dir, &gateway, &["--date", "2026-02-30"]);
    assert_eq!(exit, Some(2), "{output:?}");
    let (exit, output) = reconcile(
        "T01",
        dir,
        &gateway,
        &["--date", &today(), "--output", dir.to_str().unwrap()],
    );
    assert_eq!(exit, Some(2), "{output:?}");
}
