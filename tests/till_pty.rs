//! The real binary in a real pseudo-terminal, read through a VT parser the
//! way a cashier's terminal shows it: type an amount, scan a code as a
//! keyboard-wedge scanner would (one fast burst + Enter), see PAID, open the
//! journal and find the order, quit with the terminal restored.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use scanpay::journal::{Journal, OrderState};

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
}

impl Screen {
    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until the screen shows `needle`; fails with the screen if not.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {needle:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The till started in a 110x32 pty with its data in `dir`, its screen read
/// through a VT parser on a thread.
fn start_till(dir: &std::path::Path, env: &[(&str, &str)]) -> Till {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 32,
            cols: 110,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.cwd(dir);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("SCANPAY_CONFIG");
    cmd.env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"));
    cmd.env("SCANPAY_LOG_DIR", dir.join("logs"));
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = pty.slave.spawn_command(cmd).unwrap();
    drop(pty.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(
        NonZeroU16::new(32).unwrap(),
        NonZeroU16::new(110).unwrap(),
        0,
    )));
    let feed = parser.clone();
    let mut output = pty.master.try_clone_reader().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = output.read(&mut buf) {
            if n == 0 {
                break;
            }
            feed.lock().unwrap().process(&buf[..n]);
        }
    });
    let keys = pty.master.take_writer().unwrap();
    Till {
        child,
        screen: Screen { parser },
        keys,
        _terminal: pty.master,
    }
}

struct Till {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    screen: Screen,
    keys: Box<dyn Write + Send>,
    /// Dropping the master hangs up the terminal, which stops the till.
    _terminal: Box<dyn portable_pty::MasterPty + Send>,
}

#[test]
fn type_an_amount_scan_see_paid_and_find_it_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let Till {
        mut child,
        screen,
        mut keys,
        _terminal,
    } = start_till(dir.path(), &[("SCANPAY_TILL_LANGUAGE", "en")]);
    let mut press = |bytes: &[u8]| {
        keys.write_all(bytes).unwrap();
        keys.flush().unwrap();
    };

    screen.wait_for("Type the amount");
    // The cashier types, a key every 150 ms.
    for key in ["1", "2", ".", "3", "4"] {
        press(key.as_bytes());
        std::thread::sleep(Duration::from_millis(150));
    }
    screen.wait_for("Scan the customer's WeChat payment code");
    // The scanner: 18 digits and CR in one write, as a terminal hands them over.
    press(b"134539517967686076\r");
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

    press(b"j");
    let journal = screen.wait_for("takings per hour");
    assert!(
        journal.contains(&order_no) && journal.contains("paid 1 ¥12.34"),
        "{journal}"
    );
    press(b"\r");
    let detail = screen.wait_for("timeline");
    assert!(detail.contains("micropay answer: PAID"), "{detail}");
    // Esc closes the detail, then the journal, then clears the result.
    for _ in 0..3 {
        press(b"\x1b");
        std::thread::sleep(Duration::from_millis(150));
    }
    screen.wait_for("Type the amount");
    press(b"q");

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the till did not quit on q");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        !screen.parser.lock().unwrap().screen().alternate_screen(),
        "the alternate screen was left"
    );

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
    // Keep the writer: dropping it sends a line feed and EOF into the till.
    let Till {
        mut child,
        screen,
        keys: _keys,
        _terminal,
    } = start_till(dir.path(), &[]);
    screen.wait_for("请输入金额");
    assert!(screen.parser.lock().unwrap().screen().alternate_screen());
    let pid = child.process_id().unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the till ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !screen.parser.lock().unwrap().screen().alternate_screen(),
        "the terminal was not restored"
    );
}
