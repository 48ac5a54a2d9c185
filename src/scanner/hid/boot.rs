//! Boot-protocol keyboard reports: a scanner in USB keyboard mode.
//!
//! A report is `[modifiers, reserved, k1..k6]` — 8 bytes, or 9 with a
//! leading report id — and lists the keys held at that moment, not key
//! events. So a key is pressed when it is in a report and was not in the
//! previous one: a key held across reports, the same key in two slots, and
//! several keys that arrive together (rollover) each count once, in slot
//! order. A scanner typing "11" must release the key in between, as any
//! keyboard must: a key that stays in the report is still the same press.
//!
//! Usages are physical keys, so digits are digits with or without Shift (a
//! scanner set to AZERTY sends Shift + the digit row) and on the keypad
//! whatever NumLock says. Enter ends a read; so does silence, for scanners
//! sent without a suffix or with Tab (ignored like every non-printing key).
//! Letters and punctuation become their US characters, so a read that is not
//! a code is rejected with a reason instead of vanishing. Keys pressed with
//! Ctrl, Alt or GUI are commands (a scanner's control-character prefix), not
//! text, and are skipped.

use std::time::{Duration, Instant};

use super::{Frame, Pending};

/// Left and right Shift in the modifier byte.
const SHIFT: u8 = 0x02 | 0x20;
/// Ctrl, Alt and GUI on either side.
const CHORD: u8 = !SHIFT;
const ENTER: u8 = 0x28;
const KEYPAD_ENTER: u8 = 0x58;
/// ErrorRollOver, POSTFail, ErrorUndefined: the keyboard cannot tell which
/// keys are down.
const PHANTOM: std::ops::RangeInclusive<u8> = 0x01..=0x03;

pub struct BootDecoder {
    idle_gap: Duration,
    /// The keys of the last report that counted.
    held: [u8; 6],
    read: Option<Pending>,
}

enum Key {
    Text(u8),
    Enter,
    Ignored,
}

impl BootDecoder {
    pub fn new(idle_gap: Duration) -> Self {
        Self {
            idle_gap,
            held: [0; 6],
            read: None,
        }
    }

    /// One input report as hidapi returned it, received at `at`.
    pub fn feed(&mut self, report: &[u8], at: Instant, out: &mut Vec<Frame>) {
        // A silence before this report ended the read in progress, even if
        // nobody polled during it.
        self.poll(at, out);
        let (modifiers, keys) = match report {
            [modifiers, _, keys @ ..] if keys.len() == 6 => (*modifiers, keys),
            [_id, modifiers, _, keys @ ..] if keys.len() == 6 => (*modifiers, keys),
            // Another collection's report (consumer keys, LEDs): not typing.
            _ => return,
        };
        if keys.iter().any(|key| PHANTOM.contains(key)) {
            // Keep the last real state, so keys held through the phantom
            // report are not counted again after it.
            return;
        }
        if let Some(read) = &mut self.read {
            read.last = at;
        }
        for (slot, &usage) in keys.iter().enumerate() {
            if usage == 0 || self.held.contains(&usage) || keys[..slot].contains(&usage) {
                continue;
            }
            match key(usage, modifiers) {
                Key::Text(byte) => self
                    .read
                    .get_or_insert_with(|| Pending::new(at))
                    .push(&[byte]),
                Key::Enter => out.extend(self.read.take().and_then(Pending::into_frame)),
                Key::Ignored => {}
            }
        }
        self.held.copy_from_slice(keys);
    }

    /// Completes the read in progress once it has been silent for the idle gap.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Frame>) {
        if self
            .read
            .as_ref()
            .is_some_and(|read| now.saturating_duration_since(read.last) >= self.idle_gap)
        {
            self.flush(out);
        }
    }

    /// Completes the read in progress now (silence, or the device went away).
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        out.extend(self.read.take().and_then(Pending::into_frame));
    }
}

fn key(usage: u8, modifiers: u8) -> Key {
    if usage == ENTER || usage == KEYPAD_ENTER {
        return Key::Enter;
    }
    if modifiers & CHORD != 0 {
        return Key::Ignored;
    }
    let pick = |plain: u8, shifted: u8| {
        Key::Text(if modifiers & SHIFT != 0 {
            shifted
        } else {
            plain
        })
    };
    match usage {
        // Shift is deliberately ignored on digits: see the module doc.
        0x1E..=0x26 => Key::Text(b'1' + (usage - 0x1E)),
        0x59..=0x61 => Key::Text(b'1' + (usage - 0x59)),
        0x27 | 0x62 => Key::Text(b'0'),
        0x04..=0x1D => pick(b'a' + (usage - 0x04), b'A' + (usage - 0x04)),
        0x2C => Key::Text(b' '),
        0x2D => pick(b'-', b'_'),
        0x2E => pick(b'=', b'+'),
        0x2F => pick(b'[', b'{'),
        0x30 => pick(b']', b'}'),
        0x31 => pick(b'\\', b'|'),
        0x33 => pick(b';', b':'),
        0x34 => pick(b'\'', b'"'),
        0x35 => pick(b'`', b'~'),
        0x36 => pick(b',', b'<'),
        0x37 => pick(b'.', b'>'),
        0x38 => pick(b'/', b'?'),
        0x54 => Key::Text(b'/'),
        0x55 => Key::Text(b'*'),
        0x56 => Key::Text(b'-'),
        0x57 => Key::Text(b'+'),
        0x63 => Key::Text(b'.'),
        _ => Key::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AuthCodeError;
    use crate::scanner::{Driver, Pipeline, Rejection, ScanEvent};
    use proptest::prelude::*;

    const CODE: &str = "134539517967686076";
    const GAP: Duration = Duration::from_millis(100);
    const LEFT_SHIFT: u8 = 0x02;
    const RIGHT_SHIFT: u8 = 0x20;

    fn top_row(digit: u8) -> u8 {
        if digit == b'0' {
            0x27
        } else {
            0x1E + digit - b'1'
        }
    }

    fn keypad(digit: u8) -> u8 {
        if digit == b'0' {
            0x62
        } else {
            0x59 + digit - b'1'
        }
    }

    fn report(modifiers: u8, keys: &[u8]) -> Vec<u8> {
        let mut report = vec![modifiers, 0, 0, 0, 0, 0, 0, 0];
        report[2..2 + keys.len()].copy_from_slice(keys);
        report
    }

    /// Feeds reports 4 ms apart, as a scanner at full speed sends them.
    fn run(reports: &[Vec<u8>]) -> (Vec<Frame>, BootDecoder, Instant) {
        let base = Instant::now();
        let mut decoder = BootDecoder::new(GAP);
        let mut out = Vec::new();
        let mut at = base;
        for (i, report) in reports.iter().enumerate() {
            at = base + Duration::from_millis(4 * i as u64);
            decoder.feed(report, at, &mut out);
        }
        (out, decoder, at)
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|frame| match frame {
                Frame::Read { text, .. } => text.clone(),
                Frame::Refused { reason, .. } => format!("refused: {reason:?}"),
            })
            .collect()
    }

    /// Each character as press and release, then Enter: what a scanner in
    /// keyboard mode sends by default.
    fn typed_with_key_ups(text: &[u8], usage: fn(u8) -> u8, modifiers: u8) -> Vec<Vec<u8>> {
        let mut reports = Vec::new();
        for &c in text {
            reports.push(report(modifiers, &[usage(c)]));
            reports.push(report(0, &[]));
        }
        reports.push(report(0, &[ENTER]));
        reports.push(report(0, &[]));
        reports
    }

    #[test]
    fn a_code_with_a_key_up_after_every_key() {
        // As captured from /dev/hidraw on a scanner in USB keyboard mode:
        // "1345…" is 1E 20 21 22, every press followed by an all-zero report.
        let reports = typed_with_key_ups(CODE.as_bytes(), top_row, 0);
        assert_eq!(reports[0], [0, 0, 0x1E, 0, 0, 0, 0, 0]);
        assert_eq!(reports[1], [0; 8]);
        assert_eq!(reports[2], [0, 0, 0x20, 0, 0, 0, 0, 0]);
        assert_eq!(reports.len(), 38);
        let (frames, _, last) = run(&reports);
        assert_eq!(texts(&frames), [CODE]);
        let Frame::Read { timing, .. } = &frames[0] else {
            unreachable!()
        };
        // From the first digit to the Enter, the report before the last.
        assert_eq!(timing.duration, Duration::from_millis(4 * 36));
        assert_eq!(timing.completed, last - Duration::from_millis(4));
    }

    #[test]
    fn without_key_ups_a_changed_key_is_a_press_and_a_repeat_needs_a_release() {
        // 1 3 4 5 3 9 5 1 7 9 6 7 6 8 6 0 7 6: each key replaces the last in
        // slot 0; "11" or "33" would need the all-zero report between.
        let mut reports: Vec<Vec<u8>> = CODE.bytes().map(|c| report(0, &[top_row(c)])).collect();
        reports.push(report(0, &[ENTER]));
        let (frames, ..) = run(&reports);
        assert_eq!(texts(&frames), [CODE]);

        let held = [
            report(0, &[0x1E]),
            report(0, &[0x1E]), // still held: the same press
            report(0, &[]),
            report(0, &[0x1E]), // released in between: a second 1
            report(0, &[]),
            report(0, &[0x1E, 0x1E]), // the same key in two slots: one press
            report(0, &[ENTER]),
        ];
        let (frames, ..) = run(&held);
        assert_eq!(texts(&frames), ["111"]);
    }

    #[test]
    fn rollover_counts_each_new_key_once_in_slot_order() {
        let reports = [
            report(0, &[0x1E]),       // 1
            report(0, &[0x1E, 0x20]), // 1 still held, 3 new
            report(0, &[0x21, 0x22]), // 4 and 5 arrive together
            report(0, &[0x22]),       // 5 held
            report(0, &[0x22, 0x28]), // Enter
        ];
        let (frames, ..) = run(&reports);
        assert_eq!(texts(&frames), ["1345"]);
    }

    #[test]
    fn shifted_digits_from_an_azerty_scanner_are_still_digits() {
        let left = typed_with_key_ups(CODE.as_bytes(), top_row, LEFT_SHIFT);
        let right = typed_with_key_ups(CODE.as_bytes(), top_row, RIGHT_SHIFT);
        assert_eq!(texts(&run(&left).0), [CODE]);
        assert_eq!(texts(&run(&right).0), [CODE]);
        // And the pipeline takes it: no keyboard-layout rejection in raw HID.
        let Frame::Read { text, timing } = run(&left).0.remove(0) else {
            unreachable!()
        };
        let mut pipeline = Pipeline::new(Driver::Hid, Duration::from_secs(1));
        assert!(matches!(
            pipeline.read(&text, timing),
            ScanEvent::Scan { .. }
        ));
    }

    #[test]
    fn keypad_digits_and_keypad_enter() {
        let mut reports = typed_with_key_ups(CODE.as_bytes(), keypad, 0);
        let end = reports.len() - 2;
        reports[end] = report(0, &[KEYPAD_ENTER]);
        assert_eq!(reports[0], [0, 0, 0x59, 0, 0, 0, 0, 0]);
        assert_eq!(texts(&run(&reports).0), [CODE]);
    }

    #[test]
    fn error_rollover_is_ignored_and_keys_held_through_it_count_once() {
        let reports = [
            report(0, &[0x1E]),
            report(0, &[1, 1, 1, 1, 1, 1]),
            report(0, &[0x1E, 0x20]), // 1 was held through the phantom report
            report(0, &[]),
            report(0, &[ENTER]),
        ];
        assert_eq!(texts(&run(&reports).0), ["13"]);
    }

    #[test]
    fn a_nine_byte_report_carries_a_report_id_first() {
        let with_id = |keys: &[u8]| {
            let mut r = vec![0x01];
            r.extend(report(0, keys));
            r
        };
        let reports = [
            with_id(&[0x1E]),
            with_id(&[]),
            with_id(&[0x27]),
            with_id(&[ENTER]),
        ];
        assert_eq!(texts(&run(&reports).0), ["10"]);
        // Other reports on the same device (consumer keys, 3 bytes) are not typing.
        let (frames, ..) = run(&[vec![0x02, 0xE9, 0x00], with_id(&[0x1E]), with_id(&[ENTER])]);
        assert_eq!(texts(&frames), ["1"]);
    }

    #[test]
    fn letters_come_through_so_the_read_is_rejected_with_its_reason() {
        // "Ab1-" : Shift+a, b, 1, minus.
        let reports = [
            report(LEFT_SHIFT, &[0x04]),
            report(0, &[]),
            report(0, &[0x05]),
            report(0, &[0x1E]),
            report(0, &[0x2D]),
            report(0, &[ENTER]),
        ];
        let frames = run(&reports).0;
        assert_eq!(texts(&frames), ["Ab1-"]);
        let mut pipeline = Pipeline::new(Driver::Hid, Duration::from_secs(1));
        match frames[0].clone().into_event(&mut pipeline) {
            ScanEvent::Rejected { reason, shown, .. } => {
                assert_eq!(
                    reason,
                    Rejection::Code(AuthCodeError::NotDigits { found: 'A' })
                );
                assert_eq!(shown, "Ab1- (4 chars)");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ctrl_alt_chords_and_non_printing_keys_are_not_text() {
        let reports = [
            report(0x01, &[0x05]), // Ctrl+B: an STX prefix
            report(0, &[]),
            report(0, &[0x2B]), // Tab
            report(0, &[0x1E]),
            report(0x04, &[0x62]), // Alt+keypad 0
            report(0, &[0x29]),    // Escape
            report(0, &[ENTER]),
        ];
        assert_eq!(texts(&run(&reports).0), ["1"]);
    }

    #[test]
    fn an_overlong_read_is_refused_whole_never_cut_into_a_code() {
        // 64 digits of something else, then a valid code: one refusal.
        let long = format!("{}{CODE}", "9".repeat(64));
        let mut reports = Vec::new();
        for c in long.bytes() {
            reports.push(report(0, &[top_row(c)]));
            reports.push(report(0, &[]));
        }
        reports.push(report(0, &[ENTER]));
        let (frames, ..) = run(&reports);
        assert_eq!(texts(&frames), ["refused: Overlong { bytes: 82 }"]);
        let Frame::Refused { text, .. } = &frames[0] else {
            unreachable!()
        };
        assert_eq!(text.len(), 64);
    }

    #[test]
    fn silence_completes_a_read_without_enter() {
        let mut reports = typed_with_key_ups(CODE.as_bytes(), top_row, 0);
        reports.truncate(reports.len() - 2); // no Enter
        let (frames, mut decoder, last) = run(&reports);
        assert!(frames.is_empty());
        let mut out = Vec::new();
        decoder.poll(last + GAP - Duration::from_millis(1), &mut out);
        assert!(out.is_empty(), "not silent long enough yet");
        decoder.poll(last + GAP, &mut out);
        assert_eq!(texts(&out), [CODE]);
        let Frame::Read { timing, .. } = &out[0] else {
            unreachable!()
        };
        assert_eq!(
            timing.completed, last,
            "completed at the last report, not at the poll"
        );

        // Unpolled, the next scan's first report ends the previous read first.
        let mut out = Vec::new();
        let mut decoder = BootDecoder::new(GAP);
        let t0 = Instant::now();
        decoder.feed(&report(0, &[0x1E]), t0, &mut out);
        decoder.feed(&report(0, &[]), t0, &mut out);
        decoder.feed(&report(0, &[0x1F]), t0 + Duration::from_secs(2), &mut out);
        assert_eq!(texts(&out), ["1"]);
        decoder.flush(&mut out);
        assert_eq!(texts(&out), ["1", "2"], "flush completes what is pending");
    }

    #[test]
    fn a_bare_enter_is_no_read() {
        assert!(run(&[report(0, &[ENTER]), report(0, &[])]).0.is_empty());
    }

    /// How one key of a scan is sent: which row, which Shift, whether it is
    /// released before the next, or kept held while the next comes (rollover).
    #[derive(Debug, Clone)]
    struct Style {
        keypad: bool,
        shift: u8,
        release: bool,
        overlap: bool,
    }

    fn style() -> impl Strategy<Value = Style> {
        (
            any::<bool>(),
            prop::sample::select(vec![0, LEFT_SHIFT, RIGHT_SHIFT]),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(keypad, shift, release, overlap)| Style {
                keypad,
                shift,
                release,
                overlap,
            })
    }

    /// Encodes `digits` as a scanner might; a key is always released before
    /// it is pressed again, because a real keyboard cannot do otherwise.
    fn encode(digits: &[u8], styles: &[Style], end: Option<u8>, report_id: bool) -> Vec<Vec<u8>> {
        let mut reports = Vec::new();
        // The keys of the last report: pressing one of them again needs a release.
        let mut down: Vec<u8> = Vec::new();
        for (&digit, style) in digits.iter().zip(styles) {
            let usage = if style.keypad {
                keypad(digit)
            } else {
                top_row(digit)
            };
            if down.contains(&usage) {
                reports.push(report(0, &[]));
                down.clear();
            }
            down = match down.last() {
                Some(&previous) if style.overlap => vec![previous, usage],
                _ => vec![usage],
            };
            reports.push(report(style.shift, &down));
            if style.release {
                reports.push(report(0, &[]));
                down.clear();
            }
        }
        if let Some(enter) = end {
            reports.push(report(0, &[enter]));
            reports.push(report(0, &[]));
        }
        if report_id {
            for r in &mut reports {
                r.insert(0, 0x01);
            }
        }
        reports
    }

    proptest! {
        #[test]
        fn any_code_typed_any_legal_way_decodes_to_itself(
            digits in "[0-9]{18}",
            styles in prop::collection::vec(style(), 18),
            end in prop::sample::select(vec![Some(ENTER), Some(KEYPAD_ENTER), None]),
            report_id in any::<bool>(),
        ) {
            let reports = encode(digits.as_bytes(), &styles, end, report_id);
            let (mut frames, mut decoder, last) = run(&reports);
            decoder.poll(last + GAP, &mut frames);
            prop_assert_eq!(texts(&frames), [digits]);
        }
    }
}
