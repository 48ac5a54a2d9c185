//! Waiting for one payment code from the configured scanner, for headless
//! commands (`scanpay pay --scan`).

use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode};
use tokio::sync::mpsc;

use super::Exit;
use crate::domain::AuthCode;
use crate::scanner::wedge::{WedgeDecoder, WedgeOutput};
use crate::scanner::{Driver, DriverStatus, Pipeline, ScanEvent, ScannerSettings};

/// The first accepted code. Rejected reads are explained on stderr and
/// waited past; a device that cannot be opened, Esc, or the timeout end it.
pub async fn one_code(
    scanner: &ScannerSettings,
    timeout: Duration,
) -> Result<AuthCode, (Exit, String)> {
    scanner.validate().map_err(|e| (Exit::Config, e))?;
    let pipeline = Pipeline::new(scanner.driver, scanner.duplicate_window);
    let (events, mut received) = mpsc::unbounded_channel();
    let _reader = match scanner.driver {
        Driver::Wedge => {
            let wedge = scanner.wedge.clone();
            tokio::task::spawn_blocking(move || keyboard(wedge, pipeline, events, timeout));
            None
        }
        Driver::Hid | Driver::Serial => crate::scanner::start_reader(scanner, pipeline, events),
    };
    super::err(format_args!(
        "scan the customer's payment code ({} scanner, {} s)…",
        scanner.driver,
        timeout.as_secs()
    ));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let event = tokio::time::timeout_at(deadline, received.recv()).await;
        match event {
            Ok(Some(ScanEvent::Scan { code, .. })) => return Ok(code),
            Ok(Some(ScanEvent::Rejected { shown, reason, .. })) => {
                super::err(format_args!("not a payment code: {shown}: {reason}"))
            }
            Ok(Some(ScanEvent::Status {
                status: DriverStatus::Error(why),
                ..
            })) => return Err((Exit::Config, why)),
            Ok(Some(ScanEvent::Status {
                status: DriverStatus::Connected(what),
                ..
            })) => super::err(format_args!("scanner ready: {what}")),
            Ok(Some(ScanEvent::Status {
                status: DriverStatus::Disconnected(why),
                ..
            })) => super::err(format_args!("scanner lost: {why}; reopening")),
            Ok(None) => {
                return Err((
                    Exit::BadInput,
                    "no payment code was scanned (cancelled)".into(),
                ));
            }
            Err(_) => {
                return Err((
                    Exit::BadInput,
                    format!("no payment code was scanned within {} s", timeout.as_secs()),
                ));
            }
        }
    }
}

/// The wedge in a terminal: raw mode while waiting, restored on every exit.
fn keyboard(
    settings: crate::scanner::wedge::WedgeSettings,
    mut pipeline: Pipeline,
    events: mpsc::UnboundedSender<ScanEvent>,
    timeout: Duration,
) {
    let status = |s: DriverStatus| ScanEvent::Status {
        driver: Driver::Wedge,
        status: s,
    };
    let _raw = match super::scan_test::RawMode::enable() {
        Ok(raw) => raw,
        Err(e) => {
            let _ = events.send(status(DriverStatus::Error(format!(
                "--scan with the keyboard-wedge scanner reads this terminal, which cannot be put in raw mode ({e}): run it in a terminal, or give --auth-code, or use a serial or HID scanner"
            ))));
            return;
        }
    };
    let mut decoder = WedgeDecoder::new(settings);
    let mut out = Vec::new();
    let end = Instant::now() + timeout;
    while Instant::now() < end && !events.is_closed() {
        let wait = decoder
            .next_deadline()
            .map_or(Duration::from_millis(100), |d| {
                d.saturating_duration_since(Instant::now())
            });
        if let Ok(true) = event::poll(wait.min(Duration::from_millis(100))) {
            match event::read() {
                Ok(Event::Key(key)) if key.code == KeyCode::Esc && !decoder.is_holding() => return,
                Ok(Event::Key(key)) => decoder.feed(key, Instant::now(), &mut out),
                Ok(_) => {}
                Err(_) => return,
            }
        }
        decoder.poll(Instant::now(), &mut out);
        for output in out.drain(..) {
            if let WedgeOutput::Read { text, timing } = output {
                let _ = events.send(pipeline.read(&text, timing));
            }
        }
    }
}
