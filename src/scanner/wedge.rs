//! Keyboard-wedge scanners: the scanner is a USB keyboard that types the
//! code and Enter. The decoder tells its bursts from the cashier's typing by
//! timing alone, the way Odoo's barcode service and onScan.js do:
//!
//! - keys closer than `max_key_gap_ms` form one run; a run that is long
//!   enough (`min_length`), fast enough on average (`max_ms_per_char`) and
//!   ended by a terminator (Enter, Ctrl+J for LF, optionally Tab) is a scan;
//! - anything else goes back to the focused field, in order, as Odoo replays
//!   keys: never lost, never doubled. A typed key is therefore held for up
//!   to `max_key_gap_ms` before it reaches the field;
//! - a run that is a burst but ends without a terminator is **completed** as
//!   a read when the gap passes (a scanner set up without a suffix still
//!   works; a human cannot type 8+ keys that fast), and judged like any read;
//! - a second terminator right after a scan (a CR LF suffix) is swallowed,
//!   so it never submits an empty form.
//!
//! Terminals hand over up to 1 KiB at once and crossterm events carry no
//! time, so the caller stamps each key on receipt: a scan then arrives as
//! one chunk with gaps of microseconds, typing with gaps of 80 ms and more.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::ReadTiming;

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WedgeSettings {
    pub max_key_gap_ms: u64,
    pub max_ms_per_char: u64,
    pub min_length: usize,
    pub tab_terminates: bool,
}

impl Default for WedgeSettings {
    fn default() -> Self {
        Self {
            max_key_gap_ms: 50,
            max_ms_per_char: 30,
            min_length: 8,
            tab_terminates: true,
        }
    }
}

impl WedgeSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_key_gap_ms == 0 || self.max_key_gap_ms >= 80 {
            return Err(format!(
                "wedge.max_key_gap_ms = {} must be 1 to 79: at 80 ms and more a fast cashier's typing would look like a scan",
                self.max_key_gap_ms
            ));
        }
        if self.min_length < 4 {
            return Err(format!(
                "wedge.min_length = {} must be at least 4",
                self.min_length
            ));
        }
        if self.max_ms_per_char == 0 {
            return Err("wedge.max_ms_per_char must be more than 0".into());
        }
        Ok(())
    }
}

/// What the decoder hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WedgeOutput {
    /// A key for the focused field (or the app's shortcuts).
    Key(KeyEvent),
    /// A scanner read, to be judged.
    Read { text: String, timing: ReadTiming },
}

#[derive(Debug, Clone, Copy)]
struct Held {
    key: KeyEvent,
    ch: char,
    at: Instant,
}

#[derive(Debug)]
pub struct WedgeDecoder {
    settings: WedgeSettings,
    held: Vec<Held>,
    /// When the last scan's terminator arrived, to swallow a second one.
    last_scan_end: Option<Instant>,
}

enum Class {
    Char(char),
    Terminator,
    Other,
}

impl WedgeDecoder {
    pub fn new(settings: WedgeSettings) -> Self {
        Self {
            settings,
            held: Vec::new(),
            last_scan_end: None,
        }
    }

    fn gap(&self) -> Duration {
        Duration::from_millis(self.settings.max_key_gap_ms)
    }

    /// Feeds one key, stamped when it was received.
    pub fn feed(&mut self, key: KeyEvent, at: Instant, out: &mut Vec<WedgeOutput>) {
        if key.kind != KeyEventKind::Press {
            return; // Release/repeat only come with keyboard enhancement; a press is the key.
        }
        self.poll(at, out);
        match self.classify(&key) {
            Class::Char(ch) => self.held.push(Held { key, ch, at }),
            Class::Terminator if self.is_burst(at) => {
                out.push(self.take_read(at));
                self.last_scan_end = Some(at);
            }
            Class::Terminator if self.held.is_empty() && self.just_scanned(at) => {
                self.last_scan_end = None
            }
            Class::Terminator => {
                self.release(out);
                out.push(WedgeOutput::Key(key));
            }
            Class::Other => {
                self.settle(out);
                out.push(WedgeOutput::Key(key));
            }
        }
    }

    /// Settles held keys whose run is over by `now`; call it at
    /// [`WedgeDecoder::next_deadline`] so typed keys reach the field.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<WedgeOutput>) {
        if self
            .held
            .last()
            .is_some_and(|last| now.saturating_duration_since(last.at) > self.gap())
        {
            self.settle(out);
        }
        if self
            .last_scan_end
            .is_some_and(|end| now.saturating_duration_since(end) > self.gap())
        {
            self.last_scan_end = None;
        }
    }

    /// When [`WedgeDecoder::poll`] has something to settle.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.held
            .last()
            .map(|last| last.at + self.gap() + Duration::from_millis(1))
    }

    /// True while keys are held back to see whether they are a scan.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    fn classify(&self, key: &KeyEvent) -> Class {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Enter => Class::Terminator,
            // In raw mode LF arrives as Ctrl+J (and CR as Enter).
            KeyCode::Char('j') if ctrl && !alt => Class::Terminator,
            KeyCode::Tab if self.settings.tab_terminates && !ctrl && !alt => Class::Terminator,
            KeyCode::Char(ch) if !ctrl && !alt && !ch.is_control() => Class::Char(ch),
            _ => Class::Other,
        }
    }

    fn just_scanned(&self, at: Instant) -> bool {
        self.last_scan_end
            .is_some_and(|end| at.saturating_duration_since(end) <= self.gap())
    }

    /// The held keys, ending at `end`, are a scanner's: long, fast, no pause.
    fn is_burst(&self, end: Instant) -> bool {
        let (Some(first), Some(last)) = (self.held.first(), self.held.last()) else {
            return false;
        };
        let gap = self.gap();
        let per_char = Duration::from_millis(self.settings.max_ms_per_char);
        self.held.len() >= self.settings.min_length
            && self
                .held
                .windows(2)
                .all(|w| w[1].at.saturating_duration_since(w[0].at) <= gap)
            && end.saturating_duration_since(last.at) <= gap
            && end.saturating_duration_since(first.at) <= per_char * self.held.len() as u32
    }

    /// The run is over without a terminator: a burst is completed as a read,
    /// anything else goes back to the field.
    fn settle(&mut self, out: &mut Vec<WedgeOutput>) {
        match self.held.last() {
            Some(last) if self.is_burst(last.at) => {
                let end = last.at;
                out.push(self.take_read(end));
            }
            _ => self.release(out),
        }
    }

    fn release(&mut self, out: &mut Vec<WedgeOutput>) {
        out.extend(self.held.drain(..).map(|held| WedgeOutput::Key(held.key)));
    }

    fn take_read(&mut self, end: Instant) -> WedgeOutput {
        let first = self.held.first().map_or(end, |h| h.at);
        let text = self.held.drain(..).map(|h| h.ch).collect();
        WedgeOutput::Read {
            text,
            timing: ReadTiming {
                completed: end,
                duration: end.saturating_duration_since(first),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventState;
    use proptest::prelude::*;

    fn ch(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }
    fn enter() -> KeyEvent {
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)
    }
    fn ctrl_j() -> KeyEvent {
        KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL)
    }

    /// Feeds keys at the given offsets (ms) and settles at the end.
    fn run(keys: &[(u64, KeyEvent)]) -> Vec<WedgeOutput> {
        let base = Instant::now();
        let mut decoder = WedgeDecoder::new(WedgeSettings::default());
        let mut out = Vec::new();
        for (ms, key) in keys {
            decoder.feed(*key, base + Duration::from_millis(*ms), &mut out);
        }
        let end = keys.last().map_or(0, |(ms, _)| *ms);
        decoder.poll(base + Duration::from_millis(end + 1000), &mut out);
        assert!(!decoder.is_holding());
        out
    }

    fn burst(text: &str, start: u64, step: u64) -> Vec<(u64, KeyEvent)> {
        text.chars()
            .enumerate()
            .map(|(i, c)| (start + i as u64 * step, ch(c)))
            .collect()
    }

    fn reads(out: &[WedgeOutput]) -> Vec<String> {
        out.iter()
            .filter_map(|o| {
                if let WedgeOutput::Read { text, .. } = o {
                    Some(text.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    fn keys(out: &[WedgeOutput]) -> Vec<KeyEvent> {
        out.iter()
            .filter_map(|o| {
                if let WedgeOutput::Key(k) = o {
                    Some(*k)
                } else {
                    None
                }
            })
            .collect()
    }

    const CODE: &str = "134539517967686076";

    #[test]
    fn a_chunk_with_enter_is_one_scan_and_nothing_typed() {
        let mut keys_in = burst(CODE, 0, 0);
        keys_in.push((0, enter()));
        let out = run(&keys_in);
        assert_eq!(out.len(), 1);
        assert_eq!(reads(&out), [CODE]);
    }

    #[test]
    fn cr_lf_and_lf_suffixes_give_one_scan_and_no_empty_submit() {
        for suffix in [
            vec![enter(), ctrl_j()],
            vec![ctrl_j()],
            vec![enter(), enter()],
        ] {
            let mut keys_in = burst(CODE, 0, 1);
            keys_in.extend(suffix.iter().map(|k| (18, *k)));
            let out = run(&keys_in);
            assert_eq!(reads(&out), [CODE]);
            assert!(keys(&out).is_empty(), "{out:?}");
        }
    }

    #[test]
    fn typing_goes_to_the_field_in_order_with_its_enter() {
        let typed: Vec<(u64, KeyEvent)> = vec![
            (0, ch('1')),
            (150, ch('2')),
            (300, ch('.')),
            (420, ch('5')),
            (600, enter()),
        ];
        let out = run(&typed);
        assert!(reads(&out).is_empty());
        assert_eq!(
            keys(&out),
            typed.iter().map(|(_, k)| *k).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_scan_while_the_amount_is_typed_never_changes_the_amount() {
        let mut keys_in = vec![(0, ch('1')), (120, ch('2'))];
        keys_in.extend(burst(CODE, 300, 2));
        keys_in.push((336, enter()));
        keys_in.push((700, ch('5')));
        let out = run(&keys_in);
        assert_eq!(reads(&out), [CODE]);
        assert_eq!(keys(&out), [ch('1'), ch('2'), ch('5')]);
    }

    #[test]
    fn a_burst_without_terminator_is_completed_when_the_gap_passes() {
        let out = run(&burst(CODE, 0, 1));
        assert_eq!(reads(&out), [CODE]);
        let mut decoder = WedgeDecoder::new(WedgeSettings::default());
        let base = Instant::now();
        let mut out = Vec::new();
        for (ms, key) in burst(CODE, 0, 1) {
            decoder.feed(key, base + Duration::from_millis(ms), &mut out);
        }
        decoder.poll(base + Duration::from_millis(40), &mut out);
        assert!(
            out.is_empty() && decoder.is_holding(),
            "still within the gap"
        );
        let deadline = decoder.next_deadline().unwrap();
        decoder.poll(deadline, &mut out);
        assert_eq!(reads(&out), [CODE]);
    }

    #[test]
    fn short_fast_runs_and_slow_runs_are_typing() {
        // Four fast keys: below min_length, typed.
        let mut fast = burst("1234", 0, 5);
        fast.push((20, enter()));
        assert_eq!(keys(&run(&fast)).len(), 5);
        // 18 keys at 40 ms: each gap is allowed, but 40 ms a key is no scanner.
        let mut slow = burst(CODE, 0, 40);
        slow.push((18 * 40, enter()));
        let out = run(&slow);
        assert!(reads(&out).is_empty());
        assert_eq!(keys(&out).len(), 19);
    }

    #[test]
    fn other_keys_pass_through_in_order() {
        let out = run(&[
            (0, ch('1')),
            (10, KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE)),
            (20, ch('2')),
        ]);
        assert_eq!(
            keys(&out),
            [
                ch('1'),
                KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE),
                ch('2')
            ]
        );
    }

    #[test]
    fn keypad_digits_and_tab_terminator_scan() {
        let keypad = |c| {
            KeyEvent::new_with_kind_and_state(
                KeyCode::Char(c),
                KeyModifiers::NONE,
                KeyEventKind::Press,
                KeyEventState::KEYPAD,
            )
        };
        let mut keys_in: Vec<(u64, KeyEvent)> = CODE.chars().map(|c| (0, keypad(c))).collect();
        keys_in.push((0, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        assert_eq!(reads(&run(&keys_in)), [CODE]);
    }

    #[test]
    fn an_azerty_burst_is_a_read_for_the_verdict_to_explain() {
        let mut keys_in = burst("&\"'(\"ç(&èç-è-_-àè-", 0, 0);
        keys_in.push((0, enter()));
        let read = reads(&run(&keys_in)).pop().unwrap();
        assert!(matches!(
            super::super::verdict::judge(&read),
            super::super::Verdict::Rejected(super::super::Rejection::KeyboardLayout { .. })
        ));
    }

    #[test]
    fn settings_outside_the_safe_range_are_refused() {
        let too_slow = WedgeSettings {
            max_key_gap_ms: 150,
            ..WedgeSettings::default()
        };
        assert!(
            too_slow
                .validate()
                .unwrap_err()
                .contains("wedge.max_key_gap_ms")
        );
        assert!(WedgeSettings::default().validate().is_ok());
    }

    fn printable() -> impl Strategy<Value = char> {
        prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('a', 'z'),
            Just('.'),
            Just('&'),
            Just('é')
        ]
    }

    proptest! {
        #[test]
        fn human_typing_is_never_a_scan(
            text in proptest::collection::vec(printable(), 1..40),
            gaps in proptest::collection::vec(80u64..400, 40),
            enters in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let mut t = 0;
            let mut keys_in = Vec::new();
            for (i, c) in text.iter().enumerate() {
                t += gaps[i];
                keys_in.push((t, if enters[i] { enter() } else { ch(*c) }));
            }
            let out = run(&keys_in);
            prop_assert!(reads(&out).is_empty());
            prop_assert_eq!(keys(&out), keys_in.iter().map(|(_, k)| *k).collect::<Vec<_>>());
        }

        #[test]
        fn a_scanner_burst_with_a_terminator_always_is_one(
            text in proptest::collection::vec(printable(), 8..30),
            gaps in proptest::collection::vec(0u64..=15, 30),
            terminator in prop_oneof![Just(enter()), Just(ctrl_j()), Just(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE))],
        ) {
            let mut t = 1000;
            let mut keys_in = Vec::new();
            for (i, c) in text.iter().enumerate() {
                t += gaps[i];
                keys_in.push((t, ch(*c)));
            }
            keys_in.push((t + gaps[29], terminator));
            let out = run(&keys_in);
            prop_assert_eq!(reads(&out), vec![text.iter().collect::<String>()]);
            prop_assert!(keys(&out).is_empty());
        }

        #[test]
        fn a_burst_amid_typing_splits_cleanly(
            before in proptest::collection::vec(printable(), 0..6),
            code in proptest::collection::vec(proptest::char::range('0', '9'), 18),
            after in proptest::collection::vec(printable(), 0..6),
            human_gap in 80u64..300,
            scan_gap in 0u64..=15,
        ) {
            let mut t = 0;
            let mut keys_in = Vec::new();
            let mut typed = Vec::new();
            for c in &before { t += human_gap; keys_in.push((t, ch(*c))); typed.push(ch(*c)); }
            t += human_gap;
            for c in &code { keys_in.push((t, ch(*c))); t += scan_gap; }
            keys_in.push((t, enter()));
            for c in &after { t += human_gap; keys_in.push((t, ch(*c))); typed.push(ch(*c)); }
            let out = run(&keys_in);
            prop_assert_eq!(reads(&out), vec![code.iter().collect::<String>()]);
            prop_assert_eq!(keys(&out), typed);
        }
    }
}
