//! The real binary in a real pseudo-terminal, its screen read through a VT
//! parser the way a cashier's terminal shows it.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use portable_pty::CommandBuilder;
use portable_pty::{ExitStatus, PtySize, native_pty_system};

pub struct Terminal {
    parser: Arc<Mutex<vt100::Parser>>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    /// Dropping the master hangs up the terminal, which stops the program.
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

/// `cmd` as a command for a pty: its program, arguments, environment
/// (removals too) and directory; e.g. a till as `common::process::till`
/// configures it, run as the real TUI.
pub fn builder_of(cmd: &std::process::Command) -> CommandBuilder {
    let mut pty = CommandBuilder::new(cmd.get_program());
    pty.args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => pty.env(key, value),
            None => pty.env_remove(key),
        }
    }
    if let Some(dir) = cmd.get_current_dir() {
        pty.cwd(dir);
    }
    pty
}

impl Terminal {
    /// `cmd` in a 110x32 pty with `TERM` set; the screen is read on a thread.
    pub fn spawn(cmd: CommandBuilder) -> Self {
        Self::spawn_sized(cmd, 110, 32)
    }

    /// `cmd` in a `cols`x`rows` pty with `TERM` set.
    pub fn spawn_sized(mut cmd: CommandBuilder, cols: u16, rows: u16) -> Self {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        cmd.env("TERM", "xterm-256color");
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let parser = Arc::new(Mutex::new(vt100::Parser::new(
            NonZeroU16::new(rows).unwrap(),
            NonZeroU16::new(cols).unwrap(),
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
        Self {
            parser,
            child,
            keys,
            _master: pty.master,
        }
    }

    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    pub fn alternate_screen(&self) -> bool {
        self.parser.lock().unwrap().screen().alternate_screen()
    }

    pub fn press(&mut self, bytes: &[u8]) {
        self.keys.write_all(bytes).unwrap();
        self.keys.flush().unwrap();
    }

    /// Types `keys` as a person does, a key every 150 ms, each shown on the
    /// screen before the next: the till stamps a key when it reads it, so a
    /// key it had not read yet when a scan follows would be stamped with the
    /// scan and taken for part of it (a loaded machine, 19 "scanned" chars).
    /// A key that changes nothing on screen (a leading "0" shows as "¥0"
    /// already) is waited for 2 s at the most.
    pub fn type_slowly(&mut self, keys: &str) {
        for key in keys.chars() {
            let before = self.text();
            self.press(key.to_string().as_bytes());
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.text() == before && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Waits until the screen shows `needle`; fails with the screen (or the
    /// exit) if it never does.
    /// Waits until the screen shows every one of `needles` at once: a frame
    /// reaches the parser in pieces, so one needle near the top can be on
    /// screen before the rows below it are.
    pub fn wait_for_all(&mut self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.wait_for(needles[0]);
            if needles.iter().all(|n| text.contains(n)) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed all of {needles:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "exited ({status:?}) before showing {needle:?}:\n{}",
                    self.text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the screen never showed {needle:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// At an English till T01: types `amount` a key at a time, scans `code`
    /// as a keyboard-wedge scanner would (one burst and CR), waits for PAID,
    /// and returns the order number the result names.
    pub fn sell(&mut self, amount: &str, code: &str) -> String {
        self.sell_at("T01", amount, code)
    }

    /// [`Self::sell`] at till `till` (its order numbers start with its id).
    pub fn sell_at(&mut self, till: &str, amount: &str, code: &str) -> String {
        self.wait_for("Type the amount");
        self.type_slowly(amount);
        self.wait_for("Scan the customer's WeChat payment code");
        self.press(format!("{code}\r").as_bytes());
        let paid = self.wait_for_all(&["PAID", &format!("order {till}")]);
        paid.split_whitespace()
            .skip_while(|w| *w != "order")
            .nth(1)
            .expect("the result names the order")
            .to_string()
    }

    /// Waits for the program to end (`what` names the trigger for the message).
    pub fn wait_exit(&mut self, what: &str) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last frame.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the program did not end on {what}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
