//! The thread that owns the device: opens it, feeds its reports to the
//! decoder, sends the events, and reopens the device when it goes away.
//! hidapi is blocking, so this is a plain thread, not a task.

use std::ffi::CString;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hidapi::{HidApi, HidDevice, HidError};
use tokio::sync::mpsc::UnboundedSender;

use super::devices::{self, Choice, HidDeviceInfo, Kind, NotChosen};
use super::{BootDecoder, DeviceSpec, Frame, HidSettings, PosDecoder};
use crate::scanner::{Driver, DriverStatus, Pipeline, ScanEvent};

/// How long one read waits: the idle gap and a stop are noticed this soon.
const READ_TIMEOUT_MS: i32 = 20;
/// Larger than any scanner's report (64 bytes in practice); a report cut
/// short would lose its last byte, where HID POS keeps its flags.
const REPORT_BUFFER: usize = 4096;
/// While waiting to reopen, how often to look whether the receiver is gone.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The running reader. Dropping it stops the thread and waits for it.
pub struct HidReader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for HidReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // A panic in the reader has been reported by the panic hook already.
            let _ = thread.join();
        }
    }
}

/// Starts reading the device `settings` names; events go to `events` until
/// the reader is dropped or the receiver is.
pub fn spawn(
    settings: HidSettings,
    pipeline: Pipeline,
    events: UnboundedSender<ScanEvent>,
) -> HidReader {
    let stop = Arc::new(AtomicBool::new(false));
    let failed = events.clone();
    let reader = Reader {
        spec: settings.spec(),
        idle_gap: Duration::from_millis(settings.idle_gap_ms),
        reopen_interval: Duration::from_millis(settings.reopen_interval_ms),
        pipeline,
        events,
        stop: Arc::clone(&stop),
    };
    let thread = match thread::Builder::new()
        .name("scanpay-hid".into())
        .spawn(move || reader.run())
    {
        Ok(thread) => Some(thread),
        Err(e) => {
            let _ = failed.send(ScanEvent::Status {
                driver: Driver::Hid,
                status: DriverStatus::Error(format!("cannot start the HID reader thread: {e}")),
            });
            None
        }
    };
    HidReader { stop, thread }
}

struct Reader {
    /// Checked once here too, so a bad setting is an `Error` status rather
    /// than a panic even if the caller skipped `validate`.
    spec: Result<DeviceSpec, String>,
    idle_gap: Duration,
    reopen_interval: Duration,
    pipeline: Pipeline,
    events: UnboundedSender<ScanEvent>,
    stop: Arc<AtomicBool>,
}

/// An open device and how to read it.
struct Opened {
    device: HidDevice,
    kind: Kind,
    label: String,
}

enum Decoder {
    Boot(BootDecoder),
    Pos(PosDecoder),
}

impl Decoder {
    fn new(kind: Kind, idle_gap: Duration) -> Self {
        match kind {
            Kind::BootKeyboard => Decoder::Boot(BootDecoder::new(idle_gap)),
            Kind::HidPos => Decoder::Pos(PosDecoder::new(idle_gap)),
        }
    }

    fn feed(&mut self, report: &[u8], at: Instant, out: &mut Vec<Frame>) {
        match self {
            Decoder::Boot(d) => d.feed(report, at, out),
            Decoder::Pos(d) => d.feed(report, at, out),
        }
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<Frame>) {
        match self {
            Decoder::Boot(d) => d.poll(now, out),
            Decoder::Pos(d) => d.poll(now, out),
        }
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        match self {
            Decoder::Boot(d) => d.flush(out),
            Decoder::Pos(d) => d.flush(out),
        }
    }
}

/// Why reading stopped.
enum Ended {
    /// Dropped, or nobody listens any more.
    Stopped,
    /// The device failed after it had worked: unplugged, most likely.
    Lost(String),
    /// The device opened but its first read failed.
    Unreadable(String),
}

impl Reader {
    fn run(mut self) {
        let spec = match self.spec.clone() {
            Ok(spec) => spec,
            Err(e) => {
                self.send(DriverStatus::Error(e));
                return;
            }
        };
        // Once the device has been there, its absence is the Disconnected
        // already sent, not a new error; other failures still are.
        let mut was_connected = false;
        // Each distinct error once, not at every retry.
        let mut reported: Option<String> = None;
        while !self.stopping() {
            let failure = match open(&spec) {
                Ok(opened) => match self.read(&opened) {
                    Ended::Stopped => return,
                    Ended::Lost(why) => {
                        was_connected = true;
                        reported = None;
                        let message = format!(
                            "{} went away ({why}); looking for it every {} ms",
                            opened.label,
                            self.reopen_interval.as_millis()
                        );
                        tracing::info!("{message}");
                        if !self.send(DriverStatus::Disconnected(message)) {
                            return;
                        }
                        None
                    }
                    Ended::Unreadable(why) => Some(NotChosen {
                        message: format!("cannot read {}: {why}", opened.label),
                        missing: false,
                    }),
                },
                Err(e) => Some(e),
            };
            if let Some(e) = failure {
                let expected = was_connected && e.missing;
                if !expected && reported.as_ref() != Some(&e.message) {
                    tracing::warn!("{}", e.message);
                    if !self.send(DriverStatus::Error(e.message.clone())) {
                        return;
                    }
                    reported = Some(e.message);
                }
            }
            self.wait(self.reopen_interval);
        }
    }

    /// Reads until the device fails or the reader stops. Connected is told
    /// after the first read that works, so a device that opens but cannot
    /// be read is one error, not a Connected/Disconnected pair every retry.
    fn read(&mut self, opened: &Opened) -> Ended {
        let mut decoder = Decoder::new(opened.kind, self.idle_gap);
        let mut buffer = vec![0u8; REPORT_BUFFER];
        let mut frames = Vec::new();
        let mut announced = false;
        loop {
            if self.stopping() {
                return Ended::Stopped;
            }
            let result = opened.device.read_timeout(&mut buffer, READ_TIMEOUT_MS);
            let now = Instant::now();
            if !announced {
                if let Err(e) = &result {
                    return Ended::Unreadable(e.to_string());
                }
                tracing::info!(device = %opened.label, kind = %opened.kind, "HID scanner connected");
                if !self.send(DriverStatus::Connected(connected(opened))) {
                    return Ended::Stopped;
                }
                announced = true;
            }
            let lost = match result {
                Ok(0) => {
                    decoder.poll(now, &mut frames);
                    None
                }
                Ok(n) => {
                    decoder.feed(&buffer[..n], now, &mut frames);
                    None
                }
                Err(e) => {
                    decoder.flush(&mut frames);
                    Some(e.to_string())
                }
            };
            for frame in frames.drain(..) {
                let event = frame.into_event(&mut self.pipeline);
                if self.events.send(event).is_err() {
                    return Ended::Stopped;
                }
            }
            if let Some(why) = lost {
                return Ended::Lost(why);
            }
        }
    }

    /// False when nobody listens any more.
    fn send(&self, status: DriverStatus) -> bool {
        self.events.send(self.pipeline.status(status)).is_ok()
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.events.is_closed()
    }

    /// Sleeps `pause`, waking early on drop (which unparks this thread).
    fn wait(&self, pause: Duration) {
        let until = Instant::now() + pause;
        while !self.stopping() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            thread::park_timeout(left.min(WAIT_SLICE));
        }
    }
}

/// The Connected status: which device, how it is read, and for keyboard
/// mode, why HID POS would be better.
fn connected(opened: &Opened) -> String {
    match opened.kind {
        Kind::HidPos => format!("{}, HID POS", opened.label),
        Kind::BootKeyboard if cfg!(target_os = "linux") => format!(
            "{}, keyboard mode: it also types into the focused window; switch the scanner to HID POS mode to stop that",
            opened.label
        ),
        Kind::BootKeyboard => format!("{}, keyboard mode", opened.label),
    }
}

fn open(spec: &DeviceSpec) -> Result<Opened, NotChosen> {
    let failed = |message: String| NotChosen {
        message,
        missing: false,
    };
    let api = HidApi::new().map_err(|e| failed(format!("cannot start hidapi: {e}")))?;
    let listed = devices::devices(&api);
    let choice = devices::choose(&listed, spec)?;
    let (path, device_info) = match choice {
        Choice::Listed(device) => (device.path.as_str(), Some(device)),
        Choice::Unlisted(path) => (path, None),
    };
    let c_path =
        CString::new(path).map_err(|_| failed(format!("hid.device {path:?} has a NUL byte")))?;
    let device = api
        .open_path(&c_path)
        .map_err(|e| open_failure(path, device_info, &e))?;
    let (kind, label) = match device_info {
        // choose() only lists a readable kind.
        Some(listed) => (listed.kind.unwrap_or(Kind::BootKeyboard), listed.label()),
        // Ask the open device, and read a keyboard unless it says HID POS.
        None => {
            let kind = device
                .get_device_info()
                .ok()
                .and_then(|info| Kind::of(info.usage_page(), info.usage()))
                .unwrap_or(Kind::BootKeyboard);
            (kind, path.to_string())
        }
    };
    Ok(Opened {
        device,
        kind,
        label,
    })
}

/// Says what to do about a device that would not open.
fn open_failure(path: &str, listed: Option<&HidDeviceInfo>, error: &HidError) -> NotChosen {
    // hidapi flattens the OS error into text; ask the OS again for its kind
    // (device nodes only: Windows and macOS paths are not files).
    let os = path
        .starts_with("/dev/")
        .then(|| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .err()
        })
        .flatten()
        .map(|e| e.kind());
    advice(path, listed, error, os)
}

fn advice(
    path: &str,
    listed: Option<&HidDeviceInfo>,
    error: &HidError,
    os: Option<ErrorKind>,
) -> NotChosen {
    let what = listed.map_or_else(|| path.to_string(), HidDeviceInfo::label);
    let keyboard = listed.is_some_and(|d| d.kind == Some(Kind::BootKeyboard));
    let message = match os {
        Some(ErrorKind::NotFound) => {
            return NotChosen {
                message: format!(
                    "no HID device at {path}: run `scanpay scan-test --list` to see the HID devices and set hid.device to one of them (or leave it empty to pick the first scanner), or switch the scanner to HID POS or serial mode"
                ),
                missing: true,
            };
        }
        Some(ErrorKind::PermissionDenied) if cfg!(target_os = "linux") => {
            let (vid, pid) = listed.map_or(("VID".into(), "PID".into()), |d| {
                (format!("{:04x}", d.vid), format!("{:04x}", d.pid))
            });
            format!(
                "cannot open {what}: permission denied. Let the till's user read it with a udev rule: put the line `SUBSYSTEM==\"hidraw\", ATTRS{{idVendor}}==\"{vid}\", ATTRS{{idProduct}}==\"{pid}\", MODE=\"0660\", GROUP=\"plugdev\"` in /etc/udev/rules.d/70-scanpay-scanner.rules, add the user to the plugdev group, run `sudo udevadm control --reload && sudo udevadm trigger` and replug the scanner"
            )
        }
        _ if cfg!(target_os = "macos") && keyboard => format!(
            "cannot open {what} ({error}): macOS lets a program read a keyboard-mode scanner only with Input Monitoring permission: allow scanpay (or the terminal running it) in System Settings > Privacy & Security > Input Monitoring, or switch the scanner to HID POS mode"
        ),
        _ => format!("cannot open {what}: {error}"),
    };
    NotChosen {
        message,
        missing: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn settings(device: &str) -> HidSettings {
        HidSettings {
            device: device.into(),
            idle_gap_ms: 100,
            reopen_interval_ms: 100,
        }
    }

    fn first_status(device: &str) -> DriverStatus {
        let (events, mut received) = mpsc::unbounded_channel();
        let _reader = spawn(
            settings(device),
            Pipeline::new(Driver::Hid, Duration::from_secs(1)),
            events,
        );
        match received.blocking_recv() {
            Some(ScanEvent::Status { status, .. }) => status,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_device_path_that_is_not_there_is_an_error_that_says_what_to_do() {
        match first_status("/dev/hidraw99") {
            DriverStatus::Error(message) => {
                assert!(
                    message.starts_with("no HID device at /dev/hidraw99"),
                    "{message}"
                );
                assert!(message.contains("scanpay scan-test --list"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_scanner_at_all_is_an_error_once_not_at_every_retry() {
        let (events, mut received) = mpsc::unbounded_channel();
        let reader = spawn(
            settings("05e0:1200"),
            Pipeline::new(Driver::Hid, Duration::from_secs(1)),
            events,
        );
        match received.blocking_recv() {
            Some(ScanEvent::Status {
                status: DriverStatus::Error(message),
                ..
            }) => assert!(message.starts_with("no HID device 05e0:1200"), "{message}"),
            other => panic!("{other:?}"),
        }
        // Several retries at 100 ms, and nothing more to say.
        thread::sleep(Duration::from_millis(350));
        drop(reader);
        assert!(received.try_recv().is_err());
    }

    #[test]
    fn a_node_that_is_not_hidraw_is_an_error_naming_it() {
        match first_status("/dev/null") {
            DriverStatus::Error(message) => {
                assert!(message.starts_with("cannot open /dev/null: "), "{message}");
                assert!(message.contains("not a HIDRAW device"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn permission_denied_on_linux_gives_the_udev_rule_for_that_scanner() {
        // Tests run as root here, where the OS never refuses: build the advice directly.
        let scanner = HidDeviceInfo {
            vid: 0x0c2e,
            pid: 0x0b61,
            usage_page: 0x8C,
            usage: 0x02,
            manufacturer: "Honeywell".into(),
            product: "Xenon 1900".into(),
            path: "/dev/hidraw3".into(),
            interface: 0,
            kind: Some(Kind::HidPos),
            likely_scanner: true,
        };
        let error = HidError::HidApiError {
            message:
                "failed to open device with path /dev/hidraw3: Permission denied (os error 13)"
                    .into(),
        };
        let advice = advice(
            "/dev/hidraw3",
            Some(&scanner),
            &error,
            Some(ErrorKind::PermissionDenied),
        );
        assert!(!advice.missing);
        assert!(
            advice.message.starts_with(
                "cannot open Honeywell Xenon 1900 (0c2e:0b61, /dev/hidraw3): permission denied."
            ),
            "{}",
            advice.message
        );
        for part in [
            r#"SUBSYSTEM=="hidraw", ATTRS{idVendor}=="0c2e", ATTRS{idProduct}=="0b61", MODE="0660", GROUP="plugdev""#,
            "/etc/udev/rules.d/70-scanpay-scanner.rules",
            "sudo udevadm control --reload && sudo udevadm trigger",
            "replug",
        ] {
            assert!(
                advice.message.contains(part),
                "{part} missing from {}",
                advice.message
            );
        }
    }

    #[test]
    fn a_bad_setting_is_an_error_status_not_a_panic() {
        match first_status("zebra") {
            DriverStatus::Error(message) => {
                assert!(message.starts_with("hid.device \"zebra\""), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dropping_the_reader_stops_it_promptly() {
        let (events, _received) = mpsc::unbounded_channel();
        let mut slow = settings("05e0:1200");
        slow.reopen_interval_ms = 60_000;
        let reader = spawn(
            slow,
            Pipeline::new(Driver::Hid, Duration::from_secs(1)),
            events,
        );
        thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        drop(reader);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_reader_ends_when_nobody_listens() {
        let (events, received) = mpsc::unbounded_channel();
        let reader = spawn(
            settings("05e0:1200"),
            Pipeline::new(Driver::Hid, Duration::from_secs(1)),
            events,
        );
        drop(received);
        let deadline = Instant::now() + Duration::from_secs(2);
        while reader.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            assert!(
                Instant::now() < deadline,
                "the reader still runs with nobody listening"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}
