//! The headless commands. The exit codes are part of the interface other
//! POS programs and scripts rely on (README, "Exit codes").

pub mod check;
pub mod config;
pub mod journal;
pub mod pay;
pub mod reconcile;
pub mod refund;
pub mod replay;
mod scan;
pub mod scan_test;
pub mod simulate;
pub mod store;
pub mod sync;

/// Prints a line on stdout, never failing: a reader that went away (`| head`,
/// a closed pipe, a full disk) must not stop a payment half-way, as
/// `println!` would by panicking. The first failure is logged.
pub fn out(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        lost("stdout", &e);
    }
}

/// [`out`] for stderr.
pub fn err(line: impl std::fmt::Display) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stderr().lock(), "{line}") {
        lost("stderr", &e);
    }
}

fn lost(stream: &'static str, error: &std::io::Error) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static LOGGED: AtomicBool = AtomicBool::new(false);
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(stream, %error, "cannot print: going on without it; the journal has every step");
    }
}

/// `scanpay pay` exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Paid = 0,
    /// The journal or another part of the program failed.
    Internal = 1,
    /// The amount, payment code or arguments are malformed; nothing was sent.
    BadInput = 2,
    /// A setting is wrong or missing; nothing was sent.
    Config = 3,
    /// A definite failure: no money moved (NOTENOUGH, AUTHCODEEXPIRE, …).
    Failed = 4,
    /// Reversed or closed: any charge was returned.
    Reversed = 5,
    /// Unclear after every attempt, or the journal failed after a request
    /// left: a person must look (see `scanpay journal`), `scanpay replay` settles it.
    NeedsAttention = 6,
    /// `scanpay reconcile`: the journal and WeChat's bill disagree; the
    /// report says what to do about each discrepancy.
    Discrepancies = 7,
    /// The journal could not record the payment (busy, full, read-only)
    /// before anything was sent: nobody was charged; fix it and pay again.
    JournalUnavailable = 8,
}

impl Exit {
    /// Success, for the commands other than `pay` (where 0 means paid).
    pub const OK: Exit = Exit::Paid;
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit as u8)
    }
}
