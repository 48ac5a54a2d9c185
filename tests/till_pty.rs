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
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.cwd(dir);
    cmd.env_remove("SCANPAY_CONFIG");
    cmd.env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"));
    cmd.env("SCANPAY_LOG_DIR", dir.join("logs"));
    for (key, value) in env {
        cmd.env(key, value);
    }
    Terminal::spawn(cmd)
}

#[test]
fn type_an_amount_scan_see_paid_and_find_it_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut screen = start_till(dir.path(), &[("SCANPAY_TILL_LANGUAGE", "en")]);
    screen.wait_for("Type the amount");
    // The cashier types, a key every 150 ms.
    for key in ["1", "2", ".", "3", "4"] {
        screen.press(key.as_bytes());
        std::thread::sleep(Duration::from_millis(150));
    }
    screen.wait_for("Scan the customer's WeChat payment code");
    // The scanner: 18 digits and CR in one write, as a terminal hands them over.
    screen.press(b"134539517967686076\r");
    let paid = screen.wait_for("PAID");
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
    let journal = screen.wait_for("takings per hour");
    assert!(
        journal.contains(&order_no) && journal.contains("paid 1 ¥12.34"),
        "{journal}"
    );
    screen.press(b"\r");
    let detail = screen.wait_for("timeline");
    assert!(detail.contains("micropay answer: PAID"), "{detail}");
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
