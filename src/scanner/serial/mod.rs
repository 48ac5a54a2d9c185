//! Serial scanners: a scanner set to its RS-232 interface, or a USB one set
//! to "USB serial" / "virtual COM port", which shows up as `/dev/ttyACM0` or
//! `/dev/ttyUSB0`.
//!
//! [`SerialFramer`] cuts the byte stream into reads and is pure; [`spawn`]
//! runs the thin part: a thread that opens the port, feeds the framer, sends
//! each read through the [`Pipeline`], and reopens the port when it goes away
//! (a USB scanner unplugged and plugged back in).

mod framer;
mod ports;
mod settings;

pub use framer::SerialFramer;
pub use ports::{PortInfo, list_ports};
pub use settings::{FlowControl, Parity, SerialSettings, Terminator};

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serialport::{ErrorKind, SerialPort};
use tokio::sync::mpsc::UnboundedSender;

use super::{DriverStatus, Frame, Pipeline, ScanEvent};

/// The longest a read on the port blocks: how soon the thread notices
/// `stop`, or that nobody listens any more. A read's own deadline (the idle
/// gap, or the wait for its terminator) wakes it sooner.
const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// The reading thread; stopping it (or dropping this) joins it.
#[derive(Debug)]
pub struct SerialReader {
    /// Dropped to tell the thread to stop: that also wakes it from a wait.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SerialReader {
    /// Closes the port and waits for the thread (at most one read timeout).
    pub fn stop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the serial scanner thread panicked");
        }
    }
}

impl Drop for SerialReader {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts reading the scanner on `settings.port` (checked with
/// [`SerialSettings::validate`]). Every read and every change of the port's
/// state comes out on `events`; the thread ends when the reader is stopped
/// or dropped, or when `events`' receiver is gone.
pub fn spawn(
    settings: SerialSettings,
    pipeline: Pipeline,
    events: UnboundedSender<ScanEvent>,
) -> SerialReader {
    let (stop, stopped) = mpsc::channel();
    let reader = Reader {
        framer: SerialFramer::new(&settings),
        settings,
        pipeline,
        events,
        stopped,
        frames: Vec::new(),
    };
    let thread = std::thread::Builder::new()
        .name("serial-scanner".into())
        .spawn(move || reader.run())
        .expect("the OS refused to start the serial scanner thread");
    SerialReader {
        stop: Some(stop),
        thread: Some(thread),
    }
}

struct Reader {
    settings: SerialSettings,
    framer: SerialFramer,
    pipeline: Pipeline,
    events: UnboundedSender<ScanEvent>,
    stopped: mpsc::Receiver<()>,
    frames: Vec<Frame>,
}

impl Reader {
    fn run(mut self) {
        let port = self.settings.port.clone();
        let interval = Duration::from_millis(self.settings.reopen_interval_ms);
        // Each open error is told once, not at every retry.
        let mut told: Option<String> = None;
        let mut ever_connected = false;
        loop {
            match open(&self.settings) {
                Ok(mut device) => {
                    told = None;
                    ever_connected = true;
                    let connected = format!("{port} at {}", self.settings.line());
                    tracing::info!("serial scanner connected: {connected}");
                    if !self.status(DriverStatus::Connected(connected)) {
                        return;
                    }
                    let Some(why) = self.pump(&mut *device) else {
                        return;
                    };
                    let reason = format!(
                        "{port} went away ({why}); reopening it every {} ms",
                        interval.as_millis()
                    );
                    tracing::info!("serial scanner disconnected: {reason}");
                    if !self.status(DriverStatus::Disconnected(reason)) {
                        return;
                    }
                }
                Err(e) => {
                    // Once it has been there, a missing port is the unplugged
                    // scanner, which `Disconnected` has already said.
                    let unplugged =
                        ever_connected && e.kind() == ErrorKind::Io(io::ErrorKind::NotFound);
                    let message = open_error(&port, &e);
                    if !unplugged && told.as_ref() != Some(&message) {
                        tracing::warn!("serial scanner: {message}");
                        if !self.status(DriverStatus::Error(message.clone())) {
                            return;
                        }
                        told = Some(message);
                    }
                }
            }
            // A read cut short by the unplug is completed once its deadline
            // has passed (refused, if its terminator never came).
            self.framer.poll(Instant::now(), &mut self.frames);
            if !self.dispatch() {
                return;
            }
            match self.stopped.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) if !self.events.is_closed() => {}
                _ => return,
            }
        }
    }

    /// Reads until the port is lost (`Some(why)`) or the thread should end
    /// (`None`).
    fn pump(&mut self, device: &mut dyn SerialPort) -> Option<String> {
        let mut buffer = [0; 1024];
        loop {
            if self.events.is_closed()
                || !matches!(self.stopped.try_recv(), Err(TryRecvError::Empty))
            {
                return None;
            }
            // Wake for the read's deadline rather than up to a timeout later.
            let wait = self
                .framer
                .next_deadline()
                .map_or(READ_TIMEOUT, |deadline| {
                    deadline
                        .saturating_duration_since(Instant::now())
                        .min(READ_TIMEOUT)
                });
            if let Err(e) = device.set_timeout(wait) {
                return Some(e.to_string());
            }
            match device.read(&mut buffer) {
                Ok(0) => return Some("end of file".into()),
                Ok(n) => self
                    .framer
                    .feed(&buffer[..n], Instant::now(), &mut self.frames),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Some(e.to_string()),
            }
            self.framer.poll(Instant::now(), &mut self.frames);
            if !self.dispatch() {
                return None;
            }
        }
    }

    /// Sends the frames through the pipeline; false once nobody listens.
    fn dispatch(&mut self) -> bool {
        for frame in self.frames.drain(..) {
            let event = frame.into_event(&mut self.pipeline);
            // The event's codes are masked by their Debug.
            tracing::debug!(?event, "serial scanner read");
            if self.events.send(event).is_err() {
                return false;
            }
        }
        if let Some(hint) = self.framer.take_hint() {
            tracing::warn!("serial scanner: {hint}");
        }
        true
    }

    fn status(&self, status: DriverStatus) -> bool {
        self.events.send(self.pipeline.status(status)).is_ok()
    }
}

fn open(settings: &SerialSettings) -> serialport::Result<Box<dyn SerialPort>> {
    let invalid = |what: &str| serialport::Error::new(ErrorKind::InvalidInput, what);
    serialport::new(&settings.port, settings.baud)
        .data_bits(
            settings
                .data_bits
                .try_into()
                .map_err(|()| invalid("serial.data_bits must be 5 to 8"))?,
        )
        .stop_bits(
            settings
                .stop_bits
                .try_into()
                .map_err(|()| invalid("serial.stop_bits must be 1 or 2"))?,
        )
        .parity(match settings.parity {
            Parity::None => serialport::Parity::None,
            Parity::Odd => serialport::Parity::Odd,
            Parity::Even => serialport::Parity::Even,
        })
        .flow_control(match settings.flow_control {
            FlowControl::None => serialport::FlowControl::None,
            FlowControl::Software => serialport::FlowControl::Software,
            FlowControl::Hardware => serialport::FlowControl::Hardware,
        })
        .timeout(READ_TIMEOUT)
        .open()
}

/// Why `port` cannot be opened, and what to do about it.
fn open_error(port: &str, e: &serialport::Error) -> String {
    match e.kind() {
        ErrorKind::Io(io::ErrorKind::PermissionDenied) => format!(
            "cannot open {port}: permission denied. Add the till's user to the group that may use serial ports, `dialout` on Debian/Ubuntu or `uucp` on Arch (`sudo usermod -aG dialout $USER`), then log out and in again"
        ),
        ErrorKind::Io(io::ErrorKind::NotFound) => format!(
            "{port} does not exist: plug the scanner in, or check serial.port (`scanpay scan-test --list` shows the ports)"
        ),
        // EBUSY, or the lock serialport takes to open a port exclusively.
        ErrorKind::NoDevice => format!(
            "{port} is busy: another program has it open. ModemManager often grabs USB scanners (`sudo systemctl disable --now ModemManager`); otherwise look for another scanpay or a terminal program (`sudo fuser -v {port}`)"
        ),
        _ => format!(
            "cannot open {port}: {e}. Check that serial.port is the scanner's serial port (`scanpay scan-test --list` shows them)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_errors_say_what_to_do() {
        let cases = [
            (
                ErrorKind::Io(io::ErrorKind::PermissionDenied),
                "usermod -aG dialout",
            ),
            (ErrorKind::Io(io::ErrorKind::NotFound), "scan-test --list"),
            (ErrorKind::NoDevice, "ModemManager"),
            (ErrorKind::Unknown, "Inappropriate ioctl for device"),
        ];
        for (kind, fix) in cases {
            let e = serialport::Error::new(kind, "Inappropriate ioctl for device");
            let message = open_error("/dev/ttyACM0", &e);
            assert!(message.contains("/dev/ttyACM0"), "{message}");
            assert!(message.contains(fix), "{message}");
        }
    }
}
