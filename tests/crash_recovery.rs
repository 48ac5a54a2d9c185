//! Crash recovery, proven against the gateway's ledger. Each case runs
//! `scanpay pay` as its own process with `SCANPAY_FAULT` set, so it aborts
//! (no unwinding, no flush) at a named point of the payment path; then a new
//! `scanpay pay` starts on the same journal, which recovers before it takes
//! its own payment. A separate `scanpay simulate` process keeps the ledger.
//!
//! After every case: no order is left open or unresolved; nobody is charged
//! without a PAID order (or keeps a charge after a completed reverse); no
//! PAID order is unknown to the gateway as paid; no reverse reached the
//! gateway earlier than 15 s (scaled: 150 ms) after the micropay; and no
//! file holds a payment code or the API key.

mod common;

use common::process::{assert_invariants, assert_no_secrets, ledger, start_gateway, till};
use scanpay::journal::Journal;

const POINTS: [&str; 6] = [
    "order-journaled",
    "intent-journaled",
    "answer-received",
    "answer-journaled",
    "answer-received:2",
    "reverse-journaled",
];
/// Paid at once, USERPAYING then paid, USERPAYING until reversed, SYSTEMERROR then paid.
const SCENARIOS: [&str; 4] = ["12.34", "0.40", "0.41", "0.42"];
/// The combinations whose abort point the payment never reaches: they run,
/// and must end without aborting, so this list cannot go stale silently.
const NEVER_REACHED: [(&str, &str, &str); 4] = [
    (
        "answer-received:2",
        "12.34",
        "paid by the micropay: no second answer",
    ),
    (
        "reverse-journaled",
        "12.34",
        "paid at once: nothing to reverse",
    ),
    (
        "reverse-journaled",
        "0.40",
        "paid at the second query: nothing to reverse",
    ),
    (
        "reverse-journaled",
        "0.42",
        "paid at the first query: nothing to reverse",
    ),
];

#[test]
fn every_crash_point_in_every_main_scenario_is_recovered_without_double_charging() {
    let gateway = start_gateway();
    let cases: Vec<(usize, &str, &str)> = POINTS
        .iter()
        .flat_map(|point| SCENARIOS.iter().map(move |amount| (*point, *amount)))
        .enumerate()
        .map(|(i, (point, amount))| (i, point, amount))
        .collect();
    let dirs: Vec<tempfile::TempDir> = cases.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    // The cases are independent (own journal, own codes): four at a time.
    let work: Vec<_> = cases.iter().zip(&dirs).collect();
    for batch in work.chunks(4) {
        std::thread::scope(|scope| {
            for ((i, point, amount), dir) in batch.iter().copied() {
                let gateway = &gateway;
                scope.spawn(move || {
                    let case = format!("{amount} crashed at {point}");
                    let code = format!("13{:016}", 4_000_000 + i * 2);
                    let till_id = format!("C{i}");
                    let crashed = till(&till_id, dir.path(), gateway)
                        .env("SCANPAY_FAULT", point)
                        .args(["pay", "--amount", amount, "--auth-code", &code])
                        .output()
                        .unwrap();
                    let aborted = crashed.status.code().is_none();
                    let excluded = NEVER_REACHED
                        .iter()
                        .find(|(p, a, _)| p == point && a == amount);
                    match excluded {
                        Some((_, _, why)) => assert!(
                            !aborted,
                            "{case}: listed as never reached ({why}), yet it aborted"
                        ),
                        None => assert!(
                            aborted,
                            "{case}: the abort point was never reached (exit {:?}):\n{}",
                            crashed.status.code(),
                            String::from_utf8_lossy(&crashed.stderr)
                        ),
                    }
                    if point.starts_with("intent-journaled") && aborted {
                        // The intent is durable before the request leaves: the
                        // journal has the order, the gateway never saw it.
                        let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
                        let orders = journal.unfinished().unwrap();
                        assert_eq!(orders.len(), 1, "{case}");
                        assert!(
                            orders[0].micropay_sent_at_ms.is_some(),
                            "{case}: the intent was not committed"
                        );
                    }
                    let next = format!("13{:016}", 4_000_000 + i * 2 + 1);
                    let restarted = till(&till_id, dir.path(), gateway)
                        .args(["pay", "--amount", "0.01", "--auth-code", &next])
                        .output()
                        .unwrap();
                    assert_eq!(
                        restarted.status.code(),
                        Some(0),
                        "{case}: the restart failed:\n{}",
                        String::from_utf8_lossy(&restarted.stderr)
                    );
                    if aborted {
                        let stderr = String::from_utf8_lossy(&restarted.stderr);
                        assert!(
                            stderr.contains("recovered interrupted order"),
                            "{case}: no recovery on start:\n{stderr}"
                        );
                    }
                });
            }
        });
    }
    let ledger = ledger(&gateway);
    let mut checked = 0;
    for ((i, point, amount), dir) in cases.iter().zip(&dirs) {
        let case = format!("{amount} crashed at {point}");
        checked += assert_invariants(dir.path(), &ledger, &case);
        assert_no_secrets(dir.path(), &format!("13{:016}", 4_000_000 + i * 2), &case);
    }
    assert_eq!(
        checked,
        cases.len() * 2,
        "every case journaled its crashed order and the restart's"
    );
}
