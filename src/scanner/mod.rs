//! Scanner input. Three drivers — keyboard wedge (`wedge`), raw HID (`hid`)
//! and serial (`serial`) — each a pure decoder fed bytes or keys with the
//! instant they arrived, plus a thin reader. Every complete read goes through
//! one [`Pipeline`]: the verdict (a valid [`AuthCode`] or a rejection with its
//! reason) and the duplicate guard, and comes out as a [`ScanEvent`].

mod frame;
pub mod hid;
pub mod serial;
pub mod verdict;
pub mod wedge;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::domain::AuthCode;
pub use frame::{Frame, MAX_READ};
pub use verdict::{Rejection, Verdict};

/// How the scanner is connected (`scanner.driver`). The command line reads
/// it through [`FromStr`], by [`Driver::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Wedge,
    Hid,
    Serial,
}

impl Driver {
    pub const ALL: [Driver; 3] = [Driver::Wedge, Driver::Hid, Driver::Serial];

    /// As written in the configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Wedge => "wedge",
            Driver::Hid => "hid",
            Driver::Serial => "serial",
        }
    }
}

impl FromStr for Driver {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|driver| driver.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("there is no scanner driver {text:?}: use wedge, hid or serial"))
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Driver::Wedge => "keyboard wedge",
            Driver::Hid => "HID",
            Driver::Serial => "serial",
        })
    }
}

/// How a read arrived: when its last byte or key came, and how long it took
/// from its first. A scanner burst takes milliseconds; typing takes seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTiming {
    pub completed: Instant,
    pub duration: Duration,
}

/// The state of a driver's device, for the status line and `scan-test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverStatus {
    /// Reading from this device.
    Connected(String),
    /// The device went away; the driver keeps trying to reopen it.
    Disconnected(String),
    /// It cannot be opened; the message says why and what to do.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    Scan {
        driver: Driver,
        code: AuthCode,
        timing: ReadTiming,
    },
    /// A read that is not a payment code; `shown` is masked.
    Rejected {
        driver: Driver,
        reason: Rejection,
        shown: String,
        timing: ReadTiming,
    },
    Status {
        driver: Driver,
        status: DriverStatus,
    },
}

/// The chosen driver and every driver's settings (`[scanner]`, `[wedge]`,
/// `[hid]`, `[serial]` in the configuration).
#[derive(Debug, Clone)]
pub struct ScannerSettings {
    pub driver: Driver,
    pub duplicate_window: Duration,
    pub wedge: wedge::WedgeSettings,
    pub hid: hid::HidSettings,
    pub serial: serial::SerialSettings,
}

impl ScannerSettings {
    /// Checks the chosen driver's settings only: a till on a wedge scanner
    /// need not fill in a serial port.
    pub fn validate(&self) -> Result<(), String> {
        match self.driver {
            Driver::Wedge => self.wedge.validate(),
            Driver::Hid => self.hid.validate(),
            Driver::Serial => self.serial.validate(),
        }
    }
}

/// A device driver's reader thread; it stops when dropped.
pub enum DeviceReader {
    Hid(hid::HidReader),
    Serial(serial::SerialReader),
}

/// Starts the reader of a HID or serial scanner, sending its events to
/// `events`. The wedge has no reader: the terminal's own key events feed it.
pub fn start_reader(
    settings: &ScannerSettings,
    pipeline: Pipeline,
    events: tokio::sync::mpsc::UnboundedSender<ScanEvent>,
) -> Option<DeviceReader> {
    match settings.driver {
        Driver::Wedge => None,
        Driver::Hid => Some(DeviceReader::Hid(hid::spawn(
            settings.hid.clone(),
            pipeline,
            events,
        ))),
        Driver::Serial => Some(DeviceReader::Serial(serial::spawn(
            settings.serial.clone(),
            pipeline,
            events,
        ))),
    }
}

/// Turns complete reads into events: judges each one and folds a repeat of
/// the same code within `duplicate_window` into the first (a double CR
/// suffix, an impatient second scan).
#[derive(Debug)]
pub struct Pipeline {
    driver: Driver,
    duplicate_window: Duration,
    last: Option<(AuthCode, Instant)>,
}

impl Pipeline {
    pub fn new(driver: Driver, duplicate_window: Duration) -> Self {
        Self {
            driver,
            duplicate_window,
            last: None,
        }
    }

    pub fn driver(&self) -> Driver {
        self.driver
    }

    pub fn read(&mut self, text: &str, timing: ReadTiming) -> ScanEvent {
        match verdict::judge(text) {
            Verdict::Accepted(code) => {
                let repeat = self.last.as_ref().is_some_and(|(last, at)| {
                    *last == code
                        && timing.completed.saturating_duration_since(*at) < self.duplicate_window
                });
                self.last = Some((code.clone(), timing.completed));
                if repeat {
                    self.rejected(Rejection::Duplicate, text, timing)
                } else {
                    ScanEvent::Scan {
                        driver: self.driver,
                        code,
                        timing,
                    }
                }
            }
            Verdict::Rejected(reason) => self.rejected(reason, text, timing),
        }
    }

    /// A read the decoder itself refused (noise, overlong).
    pub fn rejected(&self, reason: Rejection, text: &str, timing: ReadTiming) -> ScanEvent {
        ScanEvent::Rejected {
            driver: self.driver,
            reason,
            shown: verdict::shown(text),
            timing,
        }
    }

    pub fn status(&self, status: DriverStatus) -> ScanEvent {
        ScanEvent::Status {
            driver: self.driver,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> ReadTiming {
        ReadTiming {
            completed: base + Duration::from_millis(ms),
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn a_driver_is_read_by_its_configuration_name() {
        for driver in Driver::ALL {
            assert_eq!(driver.name().parse::<Driver>(), Ok(driver));
            let toml = format!("driver = {:?}", driver.name());
            #[derive(serde::Deserialize)]
            struct Section {
                driver: Driver,
            }
            let section: Section = toml::from_str(&toml).unwrap();
            assert_eq!(section.driver, driver, "the same name as in the config");
        }
        assert_eq!(" Serial ".parse::<Driver>(), Ok(Driver::Serial));
        let error = "usb".parse::<Driver>().unwrap_err();
        assert!(error.contains("wedge, hid or serial"), "{error}");
    }

    #[test]
    fn the_same_code_twice_within_the_window_is_one_scan() {
        let base = Instant::now();
        let mut pipeline = Pipeline::new(Driver::Serial, Duration::from_millis(1500));
        let code = "134539517967686076";
        assert!(matches!(
            pipeline.read(code, at(base, 0)),
            ScanEvent::Scan { .. }
        ));
        assert!(matches!(
            pipeline.read(code, at(base, 40)),
            ScanEvent::Rejected {
                reason: Rejection::Duplicate,
                ..
            }
        ));
        // The window runs from the latest read, so a held trigger stays one scan.
        assert!(matches!(
            pipeline.read(code, at(base, 1400)),
            ScanEvent::Rejected {
                reason: Rejection::Duplicate,
                ..
            }
        ));
        assert!(matches!(
            pipeline.read(code, at(base, 3000)),
            ScanEvent::Scan { .. }
        ));
        assert!(
            matches!(
                pipeline.read("124539517967686076", at(base, 3010)),
                ScanEvent::Scan { .. }
            ),
            "another code is another scan"
        );
    }

    #[test]
    fn rejections_are_masked_and_give_the_reason() {
        let mut pipeline = Pipeline::new(Driver::Hid, Duration::from_secs(1));
        match pipeline.read("1345395179676860761", at(Instant::now(), 0)) {
            ScanEvent::Rejected { shown, reason, .. } => {
                assert_eq!(shown, "**************0761 (19 chars)");
                assert!(reason.to_string().contains("18 digits"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
