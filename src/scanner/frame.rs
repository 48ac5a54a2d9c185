//! One complete read out of a device decoder (HID or serial), before the
//! pipeline judges it.

use std::fmt;

use super::verdict::shown;
use super::{Pipeline, ReadTiming, Rejection, ScanEvent};

/// The most characters a read may have. A code with an AIM id, prefix and
/// suffix is about 25; past this the read is refused whole when it ends, so
/// a long barcode is never cut into something that looks like a code.
pub const MAX_READ: usize = 64;

/// One complete read out of a decoder.
#[derive(Clone, PartialEq, Eq)]
pub enum Frame {
    /// The text the scanner sent, for the pipeline to judge.
    Read { text: String, timing: ReadTiming },
    /// What the decoder itself refuses (`Overlong`, `Noise`).
    Refused {
        reason: Rejection,
        text: String,
        timing: ReadTiming,
    },
}

impl Frame {
    /// Judges the read: a scan, a rejection, or a duplicate.
    pub fn into_event(self, pipeline: &mut Pipeline) -> ScanEvent {
        match self {
            Frame::Read { text, timing } => pipeline.read(&text, timing),
            Frame::Refused {
                reason,
                text,
                timing,
            } => pipeline.rejected(reason, &text, timing),
        }
    }
}

/// Masked, like everything that may hold a payment code.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Frame::Read { text, timing } => f
                .debug_struct("Read")
                .field("text", &shown(text))
                .field("timing", timing)
                .finish(),
            Frame::Refused {
                reason,
                text,
                timing,
            } => f
                .debug_struct("Refused")
                .field("reason", reason)
                .field("text", &shown(text))
                .field("timing", timing)
                .finish(),
        }
    }
}
