//! The serial reader against real pseudo-terminals: the reader opens the
//! slave side as it would a scanner's `/dev/ttyACM0`, and each test writes
//! what a scanner would send into the master side.
//!
//! Every wait has a deadline; the only fixed waits are the quiet periods
//! that check nothing more arrives, and the pauses a scanner would make.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use scanpay::scanner::serial::{self, SerialReader, SerialSettings, Terminator};
use scanpay::scanner::{Driver, DriverStatus, Pipeline, Rejection, ScanEvent};
use serialport::{SerialPort, TTYPort};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const CODE: &str = "134539517967686076";
const OTHER: &str = "104539517967686071";
/// Longer than any wait the reader makes, shorter than a hung test.
const DEADLINE: Duration = Duration::from_secs(5);
/// Longer than the idle gap (50 ms) and a few reopen intervals (50 ms).
/// (Tests that wait for a terminator timeout set it below this.)
const QUIET: Duration = Duration::from_millis(250);

fn settings(port: &str) -> SerialSettings {
    SerialSettings {
        port: port.into(),
        reopen_interval_ms: 50,
        ..SerialSettings::default()
    }
}

/// A pty whose slave nobody holds open: the reader will be its only user,
/// as with a real port.
fn pty() -> (TTYPort, String) {
    let (master, slave) = TTYPort::pair().expect("cannot create a pseudo-terminal pair");
    let path = slave.name().expect("the slave pty has a path");
    (master, path)
}

struct Till {
    reader: SerialReader,
    events: UnboundedReceiver<ScanEvent>,
}

impl Till {
    fn start(settings: SerialSettings) -> Self {
        let (sender, events) = unbounded_channel();
        let pipeline = Pipeline::new(Driver::Serial, Duration::from_millis(1500));
        Till {
            reader: serial::spawn(settings, pipeline, sender),
            events,
        }
    }

    /// Starts on a fresh pty and waits until the port is open.
    async fn on_pty(configure: impl FnOnce(&mut SerialSettings)) -> (Self, TTYPort) {
        let (till, master, _) = Self::on_pty_at(configure).await;
        (till, master)
    }

    async fn on_pty_at(configure: impl FnOnce(&mut SerialSettings)) -> (Self, TTYPort, String) {
        let (master, path) = pty();
        let mut settings = settings(&path);
        configure(&mut settings);
        let mut till = Till::start(settings);
        let connected = till.status().await;
        assert_eq!(
            connected,
            DriverStatus::Connected(format!("{path} at 9600 8N1"))
        );
        (till, master, path)
    }

    async fn next(&mut self) -> ScanEvent {
        tokio::time::timeout(DEADLINE, self.events.recv())
            .await
            .expect("no event within the deadline")
            .expect("the reader hung up")
    }

    async fn status(&mut self) -> DriverStatus {
        match self.next().await {
            ScanEvent::Status { status, .. } => status,
            other => panic!("expected a status, got {other:?}"),
        }
    }

    async fn scan(&mut self) -> String {
        match self.next().await {
            ScanEvent::Scan { code, .. } => code.expose().to_string(),
            other => panic!("expected a scan, got {other:?}"),
        }
    }

    async fn rejected(&mut self) -> Rejection {
        match self.next().await {
            ScanEvent::Rejected { reason, .. } => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    async fn quiet(&mut self) {
        if let Ok(event) = tokio::time::timeout(QUIET, self.events.recv()).await {
            panic!("expected nothing more, got {event:?}");
        }
    }
}

fn send(master: &mut TTYPort, bytes: &[u8]) {
    master.write_all(bytes).expect("write to the pty master");
}

#[tokio::test]
async fn each_terminator_gives_one_scan() {
    for (terminator, suffix) in [
        (Terminator::Cr, "\r"),
        (Terminator::Lf, "\n"),
        (Terminator::Crlf, "\r\n"),
        // No suffix: the 50 ms of silence ends the read.
        (Terminator::Idle, ""),
        // A scanner sending CRLF to a port set to CR: still one read.
        (Terminator::Cr, "\r\n"),
    ] {
        let (mut till, mut master) = Till::on_pty(|s| s.terminator = terminator).await;
        send(&mut master, format!("{CODE}{suffix}").as_bytes());
        assert_eq!(till.scan().await, CODE, "{terminator:?} {suffix:?}");
        till.quiet().await;
    }
}

#[tokio::test]
async fn reassembles_a_code_written_in_pieces_with_pauses() {
    let (mut till, mut master) = Till::on_pty(|_| {}).await;
    for piece in ["1345", "3951796", "7686076", "\r"] {
        send(&mut master, piece.as_bytes());
        // A slow adapter's flushes, well inside the 50 ms idle gap.
        std::thread::sleep(Duration::from_millis(15));
    }
    assert_eq!(till.scan().await, CODE);
    till.quiet().await;
}

/// A USB adapter that sends one code as two packets 60 ms apart: longer
/// than the 50 ms idle gap, but the port waits for the CR.
#[tokio::test]
async fn a_code_split_60_ms_apart_is_one_scan_when_a_terminator_is_set() {
    for terminator in [Terminator::Cr, Terminator::Crlf] {
        let (mut till, mut master) = Till::on_pty(|s| s.terminator = terminator).await;
        send(&mut master, &CODE.as_bytes()[..7]);
        std::thread::sleep(Duration::from_millis(60));
        send(&mut master, format!("{}\r", &CODE[7..]).as_bytes());
        assert_eq!(till.scan().await, CODE, "{terminator:?}");
        till.quiet().await;
    }
}

/// A scanner sending no line end to a port set to CR: refused after the
/// terminator timeout, with the setting named, never taken as a code.
#[tokio::test]
async fn a_read_without_its_terminator_is_refused_after_the_timeout() {
    let (mut till, mut master) = Till::on_pty(|s| s.terminator_timeout_ms = 200).await;
    send(&mut master, CODE.as_bytes());
    let reason = till.rejected().await;
    assert_eq!(
        reason,
        Rejection::Unterminated {
            chars: 18,
            waited_ms: 200
        }
    );
    assert!(reason.to_string().contains("serial.terminator"), "{reason}");
    till.quiet().await;
}

#[tokio::test]
async fn splits_several_codes_in_one_write() {
    let (mut till, mut master) = Till::on_pty(|_| {}).await;
    send(&mut master, format!("{CODE}\r{OTHER}\r").as_bytes());
    assert_eq!(till.scan().await, CODE);
    assert_eq!(till.scan().await, OTHER);
    till.quiet().await;
}

#[tokio::test]
async fn refuses_line_noise_and_reads_on() {
    let (mut till, mut master) = Till::on_pty(|_| {}).await;
    send(&mut master, b"\x00\xff\xfe\x1b\r");
    assert_eq!(till.rejected().await, Rejection::Noise { bytes: 4 });
    send(
        &mut master,
        format!("{}\r{CODE}\r", "7".repeat(80)).as_bytes(),
    );
    assert_eq!(till.rejected().await, Rejection::Overlong { bytes: 80 });
    assert_eq!(till.scan().await, CODE);
}

#[tokio::test]
async fn strips_stx_etx_and_the_aim_id() {
    let (mut till, mut master) = Till::on_pty(|s| {
        s.strip_prefix = "\u{2}".into();
        s.strip_suffix = "\u{3}".into();
    })
    .await;
    send(&mut master, format!("\x02]Q1{CODE}\x03\r").as_bytes());
    assert_eq!(till.scan().await, CODE);
}

#[tokio::test]
async fn folds_a_repeat_within_the_window() {
    let (mut till, mut master) = Till::on_pty(|_| {}).await;
    send(&mut master, format!("{CODE}\r").as_bytes());
    assert_eq!(till.scan().await, CODE);
    send(&mut master, format!("{CODE}\r").as_bytes());
    assert_eq!(till.rejected().await, Rejection::Duplicate);
}

#[tokio::test]
async fn reopens_a_replugged_scanner_behind_a_by_id_link() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("usb-Honeywell_1900-if00");
    let (mut master, slave) = pty();
    point(&link, &slave);
    let mut till = Till::start(settings(link.to_str().unwrap()));
    assert!(
        matches!(till.status().await, DriverStatus::Connected(what) if what.contains("usb-Honeywell_1900-if00"))
    );
    send(&mut master, format!("{CODE}\r").as_bytes());
    assert_eq!(till.scan().await, CODE);

    // Unplug: the tty goes away and udev removes its link. (Removing the
    // link first also keeps the reader off a pty that another test may get
    // under the old name.)
    std::fs::remove_file(&link).unwrap();
    drop(master);
    match till.status().await {
        DriverStatus::Disconnected(why) => assert!(why.contains("went away"), "{why}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    // While it is unplugged the port is missing, which Disconnected said:
    // no error at each retry.
    till.quiet().await;
    // Plug back in: udev makes a new device and moves the link to it.
    let (mut master, slave) = pty();
    point(&link, &slave);
    assert!(matches!(till.status().await, DriverStatus::Connected(_)));
    send(&mut master, format!("{OTHER}\r").as_bytes());
    assert_eq!(till.scan().await, OTHER);
}

/// Points the link at `target` at once, as udev does.
fn point(link: &Path, target: &str) {
    let new = link.with_extension("new");
    std::os::unix::fs::symlink(target, &new).unwrap();
    std::fs::rename(&new, link).unwrap();
}

#[tokio::test]
async fn a_missing_port_is_told_once_then_opened_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyACM0");
    let mut till = Till::start(settings(link.to_str().unwrap()));
    match till.status().await {
        DriverStatus::Error(why) => {
            assert!(why.contains("does not exist"), "{why}");
            assert!(why.contains("scan-test --list"), "{why}");
        }
        other => panic!("expected Error, got {other:?}"),
    }
    // Several retries go by without telling it again.
    till.quiet().await;
    let (mut master, slave) = pty();
    point(&link, &slave);
    assert!(matches!(till.status().await, DriverStatus::Connected(_)));
    send(&mut master, format!("{CODE}\r").as_bytes());
    assert_eq!(till.scan().await, CODE);
}

#[tokio::test]
async fn a_busy_port_says_so_and_is_opened_once_free() {
    let (mut master, path) = pty();
    let holder = serialport::new(&path, 9600).open().expect("hold the port");
    let mut till = Till::start(settings(&path));
    match till.status().await {
        DriverStatus::Error(why) => assert!(why.contains("busy"), "{why}"),
        other => panic!("expected Error, got {other:?}"),
    }
    till.quiet().await;
    drop(holder);
    assert!(matches!(till.status().await, DriverStatus::Connected(_)));
    send(&mut master, format!("{CODE}\r").as_bytes());
    assert_eq!(till.scan().await, CODE);
}

#[tokio::test]
async fn stopping_closes_the_port() {
    let (mut till, _master, path) = Till::on_pty_at(|_| {}).await;
    till.reader.stop();
    serialport::new(&path, 9600)
        .open()
        .expect("the port is free once stop has returned");
}

#[tokio::test]
async fn the_thread_ends_when_nobody_listens() {
    let (till, _master, path) = Till::on_pty_at(|_| {}).await;
    let Till { reader, events } = till;
    drop(events);
    // The thread notices within a read timeout and closes the port.
    let deadline = std::time::Instant::now() + DEADLINE;
    while serialport::new(&path, 9600).open().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the port is still held"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(reader);
}
