//! The network misbehaves in the middle of a batch of payments: answers cut
//! off after the gateway processed them, connections refused, a gateway
//! flapping up and down, late and garbled answers. Afterwards `scanpay
//! replay` resolves every order, and the journal and the gateway's ledger
//! agree: nobody charged without a PAID order, no PAID order unknown to the
//! gateway. Orders the gateway charged but the till never heard back about
//! are listed apart as paid-but-abandoned.

mod common;

use common::process::{
    assert_invariants, assert_no_secrets, ledger, set_fault, start_gateway, till,
};
use scanpay::journal::{Journal, OrderState};
use serde_json::json;

#[test]
fn an_outage_mid_batch_is_resolved_by_replay() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let pay = |amount: &str, code: u64| {
        till("N1", dir.path(), &gateway)
            // Short enough that "delay" is a timeout; the batch runs one payment at a time.
            .env("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "250")
            .args([
                "pay",
                "--json",
                "--amount",
                amount,
                "--auth-code",
                &format!("13{code:016}"),
            ])
            .output()
            .unwrap()
            .status
            .code()
    };
    let batch = [
        (json!({ "mode": "none" }), "12.34", Some(0)),
        // Charged at the gateway, every answer lost: the till cannot know.
        (json!({ "mode": "drop" }), "23.45", Some(6)),
        // Never reaches the gateway: the connection is refused, so nothing
        // was sent and the order fails at once, nobody charged.
        (json!({ "mode": "refuse" }), "34.56", Some(4)),
        (json!({ "mode": "http500" }), "45.67", Some(6)),
        (json!({ "mode": "garbage" }), "56.78", Some(6)),
        (json!({ "mode": "badsign" }), "67.89", Some(6)),
        (json!({ "mode": "delay" }), "78.90", Some(6)),
        (json!({ "mode": "none" }), "89.01", Some(0)),
    ];
    for (i, (fault, amount, exit)) in batch.iter().enumerate() {
        set_fault(&gateway, fault.clone());
        assert_eq!(pay(amount, 5_000_000 + i as u64), *exit, "{fault} {amount}");
    }
    // A flapping gateway: some calls get through, some do not.
    set_fault(
        &gateway,
        json!({ "mode": "flap", "up_ms": 60, "down_ms": 90 }),
    );
    for i in 0..3 {
        let exit = pay("9.99", 5_000_100 + i);
        // 4: the micropay's connection was refused, nothing sent.
        assert!(matches!(exit, Some(0 | 4 | 5 | 6)), "flap: exit {exit:?}");
    }
    set_fault(&gateway, json!({ "mode": "none" }));

    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let unresolved = journal
        .orders_between(i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .filter(|o| o.state == OrderState::NeedsAttention)
        .count();
    assert!(
        unresolved >= 5,
        "the outage left orders unresolved ({unresolved})"
    );
    drop(journal);

    let dry = till("N1", dir.path(), &gateway)
        .args(["replay", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0));
    let dry_text = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry_text.contains(&format!("{unresolved} orders would be replayed")),
        "{dry_text}"
    );
    let calls_before = ledger(&gateway)
        .iter()
        .map(|e| e.calls.len())
        .sum::<usize>();
    assert_eq!(
        ledger(&gateway)
            .iter()
            .map(|e| e.calls.len())
            .sum::<usize>(),
        calls_before,
        "--dry-run sends nothing"
    );

    let replay = till("N1", dir.path(), &gateway)
        .args(["replay", "--jobs", "3"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(
        report.contains("still unresolved                              0"),
        "{report}"
    );

    let ledger = ledger(&gateway);
    assert_invariants(dir.path(), &ledger, "outage");
    // The dropped payment was charged: replay found it paid and lists it apart.
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let dropped = journal
        .orders_between(i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .find(|o| o.total_fee.0 == 2345)
        .unwrap();
    let entry = ledger
        .iter()
        .find(|e| e.out_trade_no == dropped.out_trade_no.as_str())
        .unwrap();
    if entry.net_charged() > 0 {
        assert_eq!(dropped.state, OrderState::Paid);
        assert!(
            report.contains("PAID, BUT THE TILL HAD NOT SEEN IT")
                && report.contains(dropped.out_trade_no.as_str()),
            "{report}"
        );
    }
    // Replay twice: nothing left to do, nothing changes.
    let again = till("N1", dir.path(), &gateway)
        .arg("replay")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to replay"));
    for i in 0..8 {
        assert_no_secrets(dir.path(), &format!("13{:016}", 5_000_000 + i), "outage");
    }
}

#[test]
fn reverse_paid_refunds_a_charged_but_abandoned_order_instead_of_recording_it() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    set_fault(&gateway, json!({ "mode": "drop" }));
    let lost = till("N2", dir.path(), &gateway)
        .env("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "250")
        .args([
            "pay",
            "--json",
            "--amount",
            "31.40",
            "--auth-code",
            "135000000000000314",
        ])
        .output()
        .unwrap();
    assert_eq!(
        lost.status.code(),
        Some(6),
        "every answer was lost: needs attention"
    );
    set_fault(&gateway, json!({ "mode": "none" }));
    let no = serde_json::from_slice::<serde_json::Value>(&lost.stdout).unwrap()["out_trade_no"]
        .as_str()
        .unwrap()
        .to_string();
    let charged = ledger(&gateway)
        .into_iter()
        .find(|e| e.out_trade_no == no)
        .unwrap();

    let replay = till("N2", dir.path(), &gateway)
        .args(["replay", "--order", &no, "--reverse-paid"])
        .output()
        .unwrap();
    assert_eq!(
        replay.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&replay.stdout)
    );
    let entry = ledger(&gateway)
        .into_iter()
        .find(|e| e.out_trade_no == no)
        .unwrap();
    let order = Journal::open(&dir.path().join("journal.sqlite3"))
        .unwrap()
        .order_by_trade_no(&no)
        .unwrap()
        .unwrap();
    assert_eq!(order.state, OrderState::Reversed, "{order:?}");
    assert_eq!(
        entry.net_charged(),
        0,
        "the customer got the money back: {entry:?}"
    );
    // Whether or not the lost micropay had charged the customer, the
    // confirming query says REVOKED (as WeChat's does), so the journal
    // records a reverse after an unclear outcome, never "refunded": the
    // day's bill (a REVOKED row for a returned charge) is what tells.
    assert_eq!(
        order.err_code.as_deref(),
        Some("RECOVERED"),
        "charged {}: {order:?}",
        charged.net_charged()
    );
    assert_invariants(dir.path(), &ledger(&gateway), "reverse-paid");

    // Once recorded, a payment is never reversed by replay.
    let again = till("N2", dir.path(), &gateway)
        .args(["replay", "--order", &no])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("already reversed"));
}
