//! HID POS reports: a scanner on the bar code scanner usage page (0x8C,
//! usage 0x02 Bar Code Scanner).
//!
//! The HID POS usage tables leave the scanned-data report to the vendor; the
//! layout nearly every scanner in HID POS mode uses is Honeywell's, the one
//! documented byte for byte in the Access-IS product manuals (LSR116,
//! ATR110: appendix "HID reports – Receive data"):
//!
//! | byte      | meaning                                                  |
//! |-----------|----------------------------------------------------------|
//! | 0         | report id, 0x02                                          |
//! | 1         | how many barcode bytes this report carries (at most 56)  |
//! | 2..5      | AIM symbology id, e.g. `]E0`, `]Q1`; zeros if disabled   |
//! | 5..       | the barcode bytes, then zero padding                     |
//! | 61, 62    | vendor symbology id, reserved (in a 64-byte report)      |
//! | last      | flags: bit 0 set when more reports of this code follow   |
//!
//! The length is whatever hidapi hands over (64 for all known scanners), so
//! the flags are read from the last byte rather than from byte 63. A code
//! longer than one report comes in several, each with its own length and
//! AIM id; they are joined until a report without the continuation flag.

use std::time::{Duration, Instant};

use super::{Frame, Pending};

const SCANNED_DATA: u8 = 0x02;
/// Report id, length, three bytes of AIM id.
const HEADER: usize = 5;
const MORE_FOLLOWS: u8 = 0x01;

pub struct PosDecoder {
    idle_gap: Duration,
    /// A code whose continuation reports are still coming.
    read: Option<Pending>,
}

impl PosDecoder {
    /// `idle_gap`: how long to wait for a continuation report before the
    /// part already received is refused (the reports of one code come
    /// back to back, a few milliseconds apart).
    pub fn new(idle_gap: Duration) -> Self {
        Self {
            idle_gap,
            read: None,
        }
    }

    /// One input report as hidapi returned it, received at `at`.
    pub fn feed(&mut self, report: &[u8], at: Instant, out: &mut Vec<Frame>) {
        self.poll(at, out);
        if report.first() != Some(&SCANNED_DATA) {
            // Status or attribute reports: not a scan.
            return;
        }
        let mut read = self.read.take().unwrap_or_else(|| Pending::new(at));
        read.last = at;
        let Some((data, flags)) = scanned_data(report) else {
            // A length that overruns the report: not the layout above, so
            // refuse it (with any part it interrupts) rather than guess.
            read.count += report.len();
            out.push(read.into_noise());
            return;
        };
        read.push(data);
        if flags & MORE_FOLLOWS != 0 {
            self.read = Some(read);
        } else {
            out.extend(read.into_frame());
        }
    }

    /// Refuses a part whose continuation has not come within the idle gap.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Frame>) {
        if self
            .read
            .as_ref()
            .is_some_and(|read| now.saturating_duration_since(read.last) >= self.idle_gap)
        {
            self.flush(out);
        }
    }

    /// Refuses the part in progress now (silence, or the device went away):
    /// a code whose end never came cannot be trusted.
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        out.extend(self.read.take().map(Pending::into_noise));
    }
}

/// The barcode bytes and the flags of a scanned-data report, or `None` if
/// the length byte does not fit the report.
fn scanned_data(report: &[u8]) -> Option<(&[u8], u8)> {
    let (&flags, body) = report.split_last()?;
    let length = usize::from(*body.get(1)?);
    let data = body.get(HEADER..HEADER + length)?;
    Some((data, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: Duration = Duration::from_millis(100);

    /// A 64-byte scanned-data report as a Honeywell scanner in HID POS mode
    /// sends it: zero padding after the data, vendor id in byte 61.
    fn report(aim: &[u8; 3], data: &[u8], more: bool) -> Vec<u8> {
        let mut report = vec![0u8; 64];
        report[0] = SCANNED_DATA;
        report[1] = data.len() as u8;
        report[2..5].copy_from_slice(aim);
        report[5..5 + data.len()].copy_from_slice(data);
        report[61] = b'j'; // Honeywell's own id for Code 128
        report[63] = u8::from(more);
        report
    }

    fn feed(reports: &[(u64, Vec<u8>)]) -> (Vec<Frame>, PosDecoder, Instant) {
        let base = Instant::now();
        let mut decoder = PosDecoder::new(GAP);
        let mut out = Vec::new();
        for (ms, report) in reports {
            decoder.feed(report, base + Duration::from_millis(*ms), &mut out);
        }
        (out, decoder, base)
    }

    #[test]
    fn one_report_with_an_aim_id_is_the_code_alone() {
        let (frames, _, base) = feed(&[(0, report(b"]E0", b"134539517967686076", false))]);
        assert_eq!(
            frames,
            [Frame::Read {
                text: "134539517967686076".into(),
                timing: crate::scanner::ReadTiming {
                    completed: base,
                    duration: Duration::ZERO
                }
            }]
        );
    }

    #[test]
    fn zero_aim_id_and_zero_padding_are_not_data() {
        let (frames, ..) = feed(&[(0, report(&[0; 3], b"134539517967686076", false))]);
        assert!(
            matches!(&frames[..], [Frame::Read { text, .. }] if text == "134539517967686076"),
            "{frames:?}"
        );
    }

    #[test]
    fn a_code_split_by_the_continuation_flag_is_joined() {
        let (frames, _, base) = feed(&[
            (0, report(b"]Q1", b"1345395179", true)),
            (2, report(b"]Q1", b"67686076", false)),
        ]);
        match &frames[..] {
            [Frame::Read { text, timing }] => {
                assert_eq!(text, "134539517967686076");
                assert_eq!(timing.duration, Duration::from_millis(2));
                assert_eq!(timing.completed, base + Duration::from_millis(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_utf8_character_split_across_reports_survives() {
        let text = "付款码".as_bytes();
        let (frames, ..) = feed(&[
            (0, report(b"]Q1", &text[..4], true)),
            (1, report(b"]Q1", &text[4..], false)),
        ]);
        assert!(matches!(&frames[..], [Frame::Read { text, .. }] if text == "付款码"));
    }

    #[test]
    fn a_long_code_over_many_reports_is_refused_whole() {
        let chunk = [b'7'; 56];
        let (frames, ..) = feed(&[
            (0, report(b"]Q1", &chunk, true)),
            (1, report(b"]Q1", &chunk, false)),
        ]);
        assert!(
            matches!(&frames[..], [Frame::Refused { reason: crate::scanner::Rejection::Overlong { bytes: 112 }, text, .. }] if text.len() == 64),
            "{frames:?}"
        );
    }

    #[test]
    fn a_continuation_that_never_comes_is_refused_as_noise() {
        let (mut frames, mut decoder, base) = feed(&[(0, report(b"]E0", b"134539517", true))]);
        assert!(frames.is_empty());
        decoder.poll(base + GAP, &mut frames);
        assert!(
            matches!(
                &frames[..],
                [Frame::Refused {
                    reason: crate::scanner::Rejection::Noise { bytes: 9 },
                    ..
                }]
            ),
            "{frames:?}"
        );
        // And the next scan is not glued to the stale part, polled or not.
        let (frames, ..) = feed(&[
            (0, report(b"]E0", b"134539517", true)),
            (500, report(b"]E0", b"134539517967686076", false)),
        ]);
        assert!(
            matches!(&frames[..], [Frame::Refused { .. }, Frame::Read { text, .. }] if text == "134539517967686076"),
            "{frames:?}"
        );
    }

    #[test]
    fn other_reports_are_ignored_and_a_length_past_the_report_is_noise() {
        let mut status = report(b"]E0", b"1", false);
        status[0] = 0x04;
        let mut bad = report(b"]E0", b"1", false);
        bad[1] = 60; // 5 + 60 > 63
        let (frames, ..) = feed(&[(0, status), (1, bad), (2, vec![SCANNED_DATA])]);
        assert!(
            matches!(
                &frames[..],
                [
                    Frame::Refused {
                        reason: crate::scanner::Rejection::Noise { bytes: 64 },
                        ..
                    },
                    Frame::Refused {
                        reason: crate::scanner::Rejection::Noise { bytes: 1 },
                        ..
                    }
                ]
            ),
            "{frames:?}"
        );
    }

    #[test]
    fn an_empty_report_is_no_read() {
        let (frames, ..) = feed(&[(0, report(&[0; 3], b"", false))]);
        assert!(frames.is_empty());
    }
}
