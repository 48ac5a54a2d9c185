//! The real binary in a real pseudo-terminal, read through a VT parser the
//! way a cashier's terminal shows it: type an amount, scan a code as a
//! keyboard-wedge scanner would (one fast burst + Enter), see PAID, open the
//! journal and find the order, quit with the terminal restored.

mod common;

use std::time::Duration;

use common::pty::{CommandBuilder, Terminal};
use scanpay::journal::{Journal, OrderState};

/// The till started in a pty with its data in `dir`.
fn start_till(dir: &std::path::Path, env: &[(&str, &str)]) -> Terminal {
    start_till_sized(dir, env, 110, 32)
}

fn start_till_sized(dir: &std::path::Path, env: &[(&str, &str)], cols: u16, rows: u16) -> Terminal {
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.cwd(dir);
    cmd.env_remove("SCANPAY_CONFIG");
    cmd.env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"));
    cmd.env("SCANPAY_LOG_DIR", dir.join("logs"));
    for (key, value) in env {
        cmd.env(key, value);
    }
    Terminal::spawn_sized(cmd, cols, rows)
}

#[test]
fn type_an_amount_scan_see_paid_and_find_it_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut screen = start_till(dir.path(), &[("SCANPAY_TILL_LANGUAGE", "en")]);
    screen.wait_for("Type the amount");
    // The cashier types, a key every 150 ms.
    screen.type_slowly("12.34");
    screen.wait_for("Scan the customer's WeChat payment code");
    // The scanner: 18 digits and CR in one write, as a terminal hands them over.
    screen.press(b"134539517967686076\r");
    let paid = screen.wait_for_all(&["PAID", "order T01"]);
    assert!(paid.contains("¥12.34"), "{paid}");
    assert!(
        !paid.contains("134539517967686076"),
        "the code is masked after the scan:\n{paid}"
    );
    let order_no = paid
        .split_whitespace()
        .skip_while(|w| *w != "order")
        .nth(1)
        .expect("the result names the order")
        .to_string();

    screen.press(b"j");
    screen.wait_for_all(&["takings per hour", &order_no, "paid 1 ¥12.34"]);
    screen.press(b"\r");
    screen.wait_for_all(&["timeline", "micropay answer: PAID"]);
    // Esc closes the detail, then the journal, then clears the result.
    for _ in 0..3 {
        screen.press(b"\x1b");
        std::thread::sleep(Duration::from_millis(150));
    }
    screen.wait_for("Type the amount");
    screen.press(b"q");

    let status = screen.wait_exit("q");
    assert!(status.success(), "{status:?}");
    assert!(!screen.alternate_screen(), "the alternate screen was left");

    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let order = journal
        .order_by_trade_no(&order_no)
        .unwrap()
        .expect("the order is journaled");
    assert_eq!(order.state, OrderState::Paid);
    assert_eq!(order.total_fee.0, 1234);
}

#[test]
fn sigterm_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let mut screen = start_till(dir.path(), &[]);
    screen.wait_for("请输入金额");
    assert!(screen.alternate_screen());
    let pid = screen.child.process_id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    screen.wait_exit("SIGTERM");
    assert!(!screen.alternate_screen(), "the terminal was not restored");
}

/// ASCII words of three letters or more that are not codes or names.
fn english_words(screen: &str) -> Vec<String> {
    const ALLOWED: &[&str] = &[
        "scanpay",
        "replay",
        "Esc",
        "Backspace",
        "Enter",
        "http",
        "journal",
        "sqlite",
    ];
    // Paths (the journal's, the gateway's address) are names, and letters
    // among digits are codes (order numbers, F12).
    screen
        .split_whitespace()
        .filter(|token| !token.contains('/') && !token.contains(|c: char| c.is_ascii_digit()))
        .flat_map(|token| token.split(|c: char| !c.is_ascii_alphabetic()))
        .filter(|w| w.len() >= 3 && !ALLOWED.contains(w))
        .map(str::to_string)
        .collect()
}

/// A Chinese till at 80x24: three sales in one minute, then the journal,
/// where each order's row shows the tail of its number (its sequence) and
/// the tail of its transaction id, and the screens carry no English word.
#[test]
fn at_80x24_in_chinese_three_orders_of_one_minute_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut screen = start_till_sized(dir.path(), &[], 80, 24);
    let idle = screen.wait_for("请输入金额");
    assert_eq!(english_words(&idle), Vec::<String>::new(), "{idle}");
    let codes = [
        "134539517967686076",
        "134539517967686077",
        "134539517967686078",
    ];
    let mut transactions = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        // Esc leaves the last result; digits one at a time like a person.
        screen.press(b"\x1b");
        std::thread::sleep(Duration::from_millis(150));
        screen.type_slowly(&format!("1{}", i + 1));
        screen.wait_for("请扫描顾客的微信付款码");
        screen.press(format!("{code}\r").as_bytes());
        let paid = screen.wait_for_all(&["支付成功", "订单号 T01"]);
        assert_eq!(english_words(&paid), Vec::<String>::new(), "{paid}");
        let id = paid
            .split_whitespace()
            .skip_while(|w| *w != "微信支付单号")
            .nth(1)
            .expect("the result names the transaction")
            .to_string();
        transactions.push(id);
    }
    screen.press(b"j");
    // The last order's row ends with its transaction's tail: once that is
    // on screen, the rows above it are too.
    let last = &transactions[2];
    let journal = screen.wait_for_all(&["每小时收款", &last[last.len() - 8..]]);
    let rows: Vec<&str> = journal.lines().filter(|l| l.contains("成功")).collect();
    assert_eq!(rows.len(), 4, "a totals line and three orders:\n{journal}");
    for (seq, id) in ["000001", "000002", "000003"].iter().zip(&transactions) {
        assert!(
            rows.iter().any(|r| r.contains(&format!("{seq} "))),
            "order {seq} is not told apart:\n{journal}"
        );
        assert!(
            journal.contains(&id[id.len() - 8..]),
            "transaction {id}'s tail is not shown:\n{journal}"
        );
    }
    assert!(
        english_words(&journal).is_empty(),
        "{:?}\n{journal}",
        english_words(&journal)
    );
    screen.press(b"\x1b");
    std::thread::sleep(Duration::from_millis(150));
    screen.press(b"q");
    assert!(screen.wait_exit("q").success());
}

/// The manager's refund at the till: pay against a `scanpay simulate`
/// process, open the journal, select the order, `r`, Enter for the whole
/// remainder, `y` to confirm; the screen says Refunded, the day shows it,
/// and the simulator's ledger has exactly that refund.
#[test]
fn a_paid_order_is_refunded_from_the_journal_screen() {
    use common::process::{KEY, ledger, start_gateway};
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SCANPAY_TILL_LANGUAGE", "en"),
        ("SCANPAY_TILL_ID", "T01"),
        ("SCANPAY_GATEWAY_MODE", "wechat"),
        ("SCANPAY_GATEWAY_BASE_URL", gateway.base_url.as_str()),
        ("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f"),
        ("SCANPAY_MERCHANT_MCH_ID", "10000100"),
        ("SCANPAY_API_KEY", KEY),
        ("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "2000"),
        ("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "100"),
        ("SCANPAY_PAYMENT_REVERSE_RETRY_INTERVAL_MS", "50"),
    ];
    let mut screen = start_till(dir.path(), &env);
    let order_no = screen.sell("12.34", "134539517967686076");

    screen.press(b"j");
    let journal = screen.wait_for_all(&["takings per hour", &order_no]);
    assert!(journal.contains(&order_no), "{journal}");
    screen.press(b"r");
    let form = screen.wait_for_all(&["refundable ¥12.34", "Enter next"]);
    assert!(form.contains("default: all that remains"), "{form}");
    screen.press(b"\r");
    let confirm = screen.wait_for_all(&["Enter or y refunds", "n change the amount · Esc"]);
    assert!(
        confirm.contains(&format!("Refund ¥12.34 of order {order_no}")),
        "{confirm}"
    );
    screen.press(b"y");
    let done = screen.wait_for_all(&["Refunded ·", "Enter or Esc closes"]);
    assert!(done.contains(&format!("{order_no}R01")), "{done}");
    screen.press(b"\r");
    // The day read again: the order refunded, the takings net of it.
    let day = screen.wait_for_all(&[
        "refunded 1 ¥12.34 · net ¥0.00",
        "today 1 paid ¥12.34 · net ¥0.00",
    ]);
    assert!(day.contains("refunded 1 ¥12.34"), "{day}");
    assert!(day.contains("today 1 paid ¥12.34 · net ¥0.00"), "{day}");
    // A second r: nothing is left to refund.
    screen.press(b"r");
    screen.wait_for("¥0.00 left to refund");
    for _ in 0..2 {
        screen.press(b"\x1b");
        std::thread::sleep(Duration::from_millis(150));
    }
    screen.wait_for("Type the amount");
    screen.press(b"q");
    assert!(screen.wait_exit("q").success());

    let refunds: Vec<_> = ledger(&gateway)
        .into_iter()
        .filter(|e| e.out_trade_no == order_no && !e.foreign)
        .flat_map(|e| e.refunds)
        .map(|r| (r.out_refund_no, r.refund_fee))
        .collect();
    assert_eq!(refunds, [(format!("{order_no}R01"), 1234)]);
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let order = journal.order_by_trade_no(&order_no).unwrap().unwrap();
    let journaled = journal.refunds_of(order.id).unwrap();
    assert_eq!(journaled.len(), 1);
    assert_eq!(journaled[0].state, scanpay::journal::RefundState::Refunded);
}
