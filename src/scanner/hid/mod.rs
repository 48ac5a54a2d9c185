//! Raw HID scanners, read through `hidapi`: a scanner in USB keyboard mode
//! (boot-protocol keyboard reports, [`boot`]) or in HID POS mode (the
//! barcode-scanner usage page 0x8C, [`pos`]). The decoders are pure — whole
//! input reports in, with the instant they arrived — and [`reader`] is the
//! thin thread that opens the device and feeds them.
//!
//! Reading keyboard reports gives physical keys, not characters, so this
//! driver is immune to the keyboard-layout problem of the wedge: a scanner
//! set to AZERTY sends Shift + the digit keys, and that is still digits here.
//!
//! # Platform limits
//!
//! - **Linux**: hidraw is not exclusive. A scanner in keyboard mode that this
//!   driver reads *also* types into the focused window through the kernel's
//!   keyboard driver, so the till must ignore keyboard bursts while the HID
//!   driver is active, or it would see the code twice. Better: switch the
//!   scanner to HID POS mode, which no keyboard driver claims. Opening
//!   `/dev/hidraw*` needs read-write permission, usually from a udev rule.
//! - **Windows**: the OS owns keyboards and mice; they cannot be read through
//!   HID at all. Use the scanner's HID POS mode, or its virtual COM (serial)
//!   mode with the serial driver.
//! - **macOS**: reading a keyboard needs the Input Monitoring permission for
//!   the program (or the terminal it runs in). HID POS mode needs none.

mod boot;
mod devices;
mod pos;
mod reader;
mod settings;

use std::time::Instant;

pub use boot::BootDecoder;
pub use devices::{HidDeviceInfo, Kind, list_devices};
pub use pos::PosDecoder;
pub use reader::{HidReader, spawn};
pub use settings::{DeviceSpec, HidSettings};

pub use crate::scanner::{Frame, MAX_READ};
use crate::scanner::{ReadTiming, Rejection};

/// A read being put together, shared by both decoders: the first
/// [`MAX_READ`] bytes kept, every byte counted.
struct Pending {
    kept: Vec<u8>,
    count: usize,
    first: Instant,
    last: Instant,
}

impl Pending {
    fn new(at: Instant) -> Self {
        Self {
            kept: Vec::with_capacity(MAX_READ),
            count: 0,
            first: at,
            last: at,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = MAX_READ.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.count += bytes.len();
    }

    fn timing(&self) -> ReadTiming {
        ReadTiming {
            completed: self.last,
            duration: self.last.saturating_duration_since(self.first),
        }
    }

    /// Decoded only now that the read is whole: a UTF-8 character may be
    /// split across two HID POS reports.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.kept).into_owned()
    }

    /// The read as the scanner meant it; `None` if nothing came.
    fn into_frame(self) -> Option<Frame> {
        if self.count == 0 {
            None
        } else if self.count > MAX_READ {
            Some(Frame::Refused {
                reason: Rejection::Overlong { bytes: self.count },
                text: self.text(),
                timing: self.timing(),
            })
        } else {
            Some(Frame::Read {
                text: self.text(),
                timing: self.timing(),
            })
        }
    }

    /// The read as a fragment that cannot be a code.
    fn into_noise(self) -> Frame {
        Frame::Refused {
            reason: Rejection::Noise { bytes: self.count },
            text: self.text(),
            timing: self.timing(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_never_debug_print_a_code() {
        let now = Instant::now();
        let frame = Frame::Read {
            text: "134539517967686076".into(),
            timing: ReadTiming {
                completed: now,
                duration: std::time::Duration::ZERO,
            },
        };
        let printed = format!("{frame:?}");
        assert!(!printed.contains("134539517967686076"), "{printed}");
        assert!(printed.contains("6076 (18 chars)"), "{printed}");
    }
}
