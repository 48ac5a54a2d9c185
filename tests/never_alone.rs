//! The till is not alone: real processes on one journal, a second till with
//! the same till id, a till in a terminal while a manager replays and views,
//! all against one `scanpay simulate` process whose ledger is the truth.
//!
//! After each: nobody charged without a PAID order, no PAID order the
//! gateway does not know as paid, no order driven by two processes (an order
//! taken over journals a `Resumed` event), and no reverse of an order in flight.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::process::{Gateway, assert_invariants, ledger, start_gateway, till};
use common::pty::{Terminal, builder_of};
use scanpay::journal::{Journal, OrderState};
use scanpay::payment::Event;

/// How many orders of the journal in `dir` were taken over by a process
/// other than the one that opened them.
fn taken_over(dir: &Path) -> Vec<String> {
    let journal = Journal::open_read_only(&dir.join("journal.sqlite3")).unwrap();
    journal
        .orders_between(i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .filter(|order| {
            journal
                .events(order.id)
                .unwrap()
                .iter()
                .any(|e| matches!(e.event, Event::Resumed { .. }))
        })
        .map(|order| order.out_trade_no.to_string())
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn twenty_four_concurrent_pays_on_one_journal_each_finish_their_own_order() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    // Paid at once, USERPAYING then paid, USERPAYING until reversed,
    // SYSTEMERROR then paid: orders stay in flight while others start.
    let amounts = ["12.34", "0.40", "0.41", "0.42"];
    let children: Vec<_> = (0..24)
        .map(|i| {
            let code = format!("13{:016}", 5_000_000 + i);
            let amount = amounts[i % amounts.len()];
            // Timings ÷ 10: 24 processes starting at once on two cores must
            // not turn "the customer pays at the second query" into a timeout.
            let child = till("T01", dir.path(), &gateway)
                .env("SCANPAY_PAYMENT_QUERY_AFTER_UNKNOWN_MS", "500")
                .env("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "1000")
                .env("SCANPAY_PAYMENT_DEADLINE_MS", "3000")
                .env("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "1500")
                .args(["pay", "--json", "--amount", amount, "--auth-code", &code])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (code, amount, child)
        })
        .collect();
    let outputs: Vec<(String, &str, Output)> = children
        .into_iter()
        .map(|(code, amount, child)| (code, amount, child.wait_with_output().unwrap()))
        .collect();
    let ledger = ledger(&gateway);
    let mut numbers = Vec::new();
    for (code, amount, output) in &outputs {
        let stderr = text(&output.stderr);
        match output.status.code() {
            // Refused before anything was journaled or sent: the customer
            // is not in the ledger at all.
            Some(8) => {
                assert!(stderr.contains("NOT charged"), "{stderr}");
                let last4 = &code[code.len() - 4..];
                assert!(
                    !ledger.iter().any(|e| e.auth_code_last4 == last4),
                    "a refused pay reached the gateway: {stderr}"
                );
            }
            Some(exit) => {
                let result: serde_json::Value = serde_json::from_slice(&output.stdout)
                    .unwrap_or_else(|e| panic!("{amount}: {e}: {stderr}"));
                let expected = if *amount == "0.41" { 5 } else { 0 };
                assert_eq!(exit, expected, "{amount}: {result}\n{stderr}");
                numbers.push(result["out_trade_no"].as_str().unwrap().to_string());
                assert!(
                    !stderr.contains("recovered interrupted order"),
                    "a live process's order was recovered:\n{stderr}"
                );
            }
            None => panic!("{amount} died: {stderr}"),
        }
    }
    assert!(
        numbers.len() >= 20,
        "most pays must get through, {} did",
        numbers.len()
    );
    let mut distinct = numbers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), numbers.len(), "one order per process");
    assert_eq!(
        assert_invariants(dir.path(), &ledger, "24 concurrent pays"),
        numbers.len()
    );
    assert_eq!(taken_over(dir.path()), Vec::<String>::new());
}

#[test]
fn two_fresh_journals_with_one_till_id_mint_different_numbers() {
    let gateway = start_gateway();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let pay = |dir: &Path, code: &str| {
        till("T01", dir, &gateway)
            .args(["pay", "--json", "--amount", "12.34", "--auth-code", code])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // Started together: the same till id, the same second, sequence 1 each.
    let first = pay(a.path(), "134539517967680001");
    let second = pay(b.path(), "134539517967680002");
    for mut child in [first, second] {
        assert!(child.wait().unwrap().success());
    }
    let ledger = ledger(&gateway);
    let numbers: Vec<_> = ledger.iter().map(|e| e.out_trade_no.as_str()).collect();
    assert_eq!(numbers.len(), 2, "{ledger:?}");
    assert_ne!(numbers[0], numbers[1]);
    for (dir, case) in [(a.path(), "first till"), (b.path(), "second till")] {
        assert_eq!(assert_invariants(dir, &ledger, case), 1);
    }
    assert!(
        ledger.iter().all(|e| e.trade_state == "SUCCESS"),
        "{ledger:?}"
    );
}

/// The till in a pty against `gateway`, timings ÷ 10, so a payment stays in
/// flight for seconds.
fn till_in_a_terminal(dir: &Path, gateway: &Gateway) -> Terminal {
    let mut cmd = builder_of(&till("T01", dir, gateway));
    cmd.cwd(dir);
    for (key, value) in [
        ("SCANPAY_TILL_LANGUAGE", "en"),
        ("SCANPAY_PAYMENT_QUERY_AFTER_UNKNOWN_MS", "500"),
        ("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "2000"),
        ("SCANPAY_PAYMENT_DEADLINE_MS", "8000"),
        ("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "4000"),
    ] {
        cmd.env(key, value);
    }
    Terminal::spawn(cmd)
}

#[test]
fn replay_and_the_journal_leave_a_payment_in_flight_to_its_till() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let mut screen = till_in_a_terminal(dir.path(), &gateway);
    screen.wait_for("Type the amount");
    // 0.40: USERPAYING, the customer pays at the second query (4 s in).
    screen.type_slowly("0.40");
    screen.wait_for("Scan the customer's WeChat payment code");
    screen.press(b"134539517967686076\r");
    screen.wait_for("Waiting for the customer's password");

    // The manager, meanwhile, on the same journal.
    let manager = |args: &[&str]| {
        let output = till("T01", dir.path(), &gateway)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };
    let (code, out, err) = manager(&["replay"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("skipped"),
        "replay took the live order:\n{out}"
    );
    let (code, out, err) = manager(&["replay", "--reverse-paid"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("skipped"),
        "replay --reverse-paid took it:\n{out}"
    );
    let (code, out, err) = manager(&["journal", "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(",open,"),
        "the export shows the order in flight:\n{out}"
    );

    // One frame may reach the pty in pieces: wait for every part of it.
    screen.wait_for_all(&["PAID", "¥0.40"]);
    // Esc clears the result, then the amount; q quits an idle till.
    for _ in 0..2 {
        screen.press(b"\x1b");
        std::thread::sleep(Duration::from_millis(150));
    }
    screen.wait_for("Type the amount");
    screen.press(b"q");
    assert!(screen.wait_exit("q").success());

    let ledger = ledger(&gateway);
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert!(
        ledger[0].calls.iter().all(|c| c.call != "reverse"),
        "an order in flight was reversed: {:?}",
        ledger[0].calls
    );
    assert_eq!(
        assert_invariants(dir.path(), &ledger, "till with replay"),
        1
    );
    let journal = Journal::open_read_only(&dir.path().join("journal.sqlite3")).unwrap();
    let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
    assert_eq!(orders[0].state, OrderState::Paid);
    assert_eq!(taken_over(dir.path()), Vec::<String>::new());
}
