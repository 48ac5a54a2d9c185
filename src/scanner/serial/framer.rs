//! Cuts the byte stream of a serial scanner into reads. Pure: bytes come in
//! with the instant they arrived, and time moves only through `feed` and
//! `poll`, so every case is a plain unit test.
//!
//! A serial port has no packets: one code may come in several reads (a USB
//! adapter flushes every few milliseconds), one read may hold several codes,
//! and scanners disagree on what ends a code. So CR and LF both end a read
//! whatever `terminator` says (the port setting and the scanner's suffix
//! often disagree, and tolerating both costs nothing: a code has neither),
//! and the empty read between the CR and LF of a CRLF is skipped.
//!
//! What else ends a read depends on `terminator`. With "idle" the scanner
//! sends no line end and `idle_gap` of silence ends a read. With CR, LF or
//! CRLF a pause is no end: a USB adapter may deliver one code in two packets
//! tens of milliseconds apart, so the framer waits for the line end, up to
//! `terminator_timeout` from the read's first byte. A read still without one
//! then is refused whole as [`Rejection::Unterminated`], naming the setting,
//! and the reader logs once that the scanner sends no line end.

use std::mem;
use std::time::{Duration, Instant};

use super::settings::{SerialSettings, Terminator};
use crate::scanner::{Frame, MAX_READ, ReadTiming, Rejection};

/// Told once when a read on a port set to a line end went without one.
const NO_LINE_END: &str = "a read got no CR or LF within serial.terminator_timeout_ms and was refused: if the scanner sends no line end after a code, give it a CR suffix with its configuration barcode, or set serial.terminator = \"idle\"";

/// The framing state of one port; see the module comment.
#[derive(Debug)]
pub struct SerialFramer {
    terminator: Terminator,
    idle_gap: Duration,
    terminator_timeout: Duration,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    strip_aim_id: bool,
    /// The bytes since the last read ended, at most `MAX_READ`.
    run: Vec<u8>,
    /// Bytes of the run past `MAX_READ`: counted, not kept.
    dropped: usize,
    /// When the run's first and latest bytes came; `None` with no run.
    span: Option<(Instant, Instant)>,
    hint: Hint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    None,
    Pending,
    Given,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    LineEnd,
    /// `idle_gap` of silence, with `terminator` "idle".
    Silence,
    /// `terminator_timeout` passed with no line end, on a line-end port.
    TimedOut,
}

impl SerialFramer {
    pub fn new(settings: &SerialSettings) -> Self {
        Self {
            terminator: settings.terminator,
            idle_gap: Duration::from_millis(settings.idle_gap_ms),
            terminator_timeout: Duration::from_millis(settings.terminator_timeout_ms),
            prefix: settings.strip_prefix.as_bytes().to_vec(),
            suffix: settings.strip_suffix.as_bytes().to_vec(),
            strip_aim_id: settings.strip_aim_id,
            run: Vec::with_capacity(MAX_READ),
            dropped: 0,
            span: None,
            hint: Hint::None,
        }
    }

    /// Bytes that arrived at `at`, all of them.
    pub fn feed(&mut self, bytes: &[u8], at: Instant, out: &mut Vec<Frame>) {
        // A silence before these bytes ended the read in progress, even if
        // nobody polled during it.
        self.poll(at, out);
        for &byte in bytes {
            if byte == b'\r' || byte == b'\n' {
                self.end(at, Ending::LineEnd, out);
                continue;
            }
            let span = self.span.get_or_insert((at, at));
            span.1 = at;
            if self.run.len() < MAX_READ {
                self.run.push(byte);
            } else {
                self.dropped += 1;
            }
        }
    }

    /// Completes the read in progress once its deadline has passed: the
    /// idle gap's silence with "idle", else the terminator timeout.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<Frame>) {
        if let Some((_, last)) = self.span
            && let Some(deadline) = self.next_deadline()
            && now >= deadline
        {
            let ending = if self.terminator == Terminator::Idle {
                Ending::Silence
            } else {
                Ending::TimedOut
            };
            self.end(last, ending, out);
        }
    }

    /// When `poll` would complete the read in progress, if there is one.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.span.map(|(first, last)| match self.terminator {
            Terminator::Idle => last + self.idle_gap,
            Terminator::Cr | Terminator::Lf | Terminator::Crlf => first + self.terminator_timeout,
        })
    }

    /// Advice for the installer, once, when a read on a line-end port ran
    /// out of time without its CR or LF; the reader logs it.
    pub fn take_hint(&mut self) -> Option<&'static str> {
        match self.hint {
            Hint::Pending => {
                self.hint = Hint::Given;
                Some(NO_LINE_END)
            }
            Hint::None | Hint::Given => None,
        }
    }

    fn end(&mut self, completed: Instant, ending: Ending, out: &mut Vec<Frame>) {
        // No run: the LF of a CRLF, a blank line.
        let Some((first, _)) = self.span.take() else {
            return;
        };
        let timing = ReadTiming {
            completed,
            duration: completed.saturating_duration_since(first),
        };
        let dropped = mem::take(&mut self.dropped);
        if dropped > 0 {
            // Never cut a code out of it: whatever it held is dropped whole.
            out.push(Frame::Refused {
                reason: Rejection::Overlong {
                    bytes: MAX_READ + dropped,
                },
                text: String::from_utf8_lossy(&self.run).into_owned(),
                timing,
            });
        } else if let Some(frame) = self.frame(timing) {
            out.push(match frame {
                // A part of a code, or a code whose line end never came: the
                // rest may follow as a read of its own, so neither is taken.
                Frame::Read { text, timing } if ending == Ending::TimedOut => {
                    if self.hint == Hint::None {
                        self.hint = Hint::Pending;
                    }
                    Frame::Refused {
                        reason: Rejection::Unterminated {
                            chars: text.chars().count(),
                            waited_ms: millis(self.terminator_timeout),
                        },
                        text,
                        timing,
                    }
                }
                frame => frame,
            });
        }
        self.run.clear();
    }

    /// The run without its framing, judged as text; `None` if nothing is left.
    fn frame(&self, timing: ReadTiming) -> Option<Frame> {
        let mut body = self.run.as_slice();
        body = body.strip_prefix(self.prefix.as_slice()).unwrap_or(body);
        body = body.strip_suffix(self.suffix.as_slice()).unwrap_or(body);
        // A TAB or space suffix (set for keyboard use) is no reason to refuse.
        body = body.trim_ascii();
        if self.strip_aim_id
            && let [b']', letter, modifier, rest @ ..] = body
            && letter.is_ascii_alphabetic()
            && modifier.is_ascii_alphanumeric()
        {
            body = rest;
        }
        if body.is_empty() {
            return None;
        }
        Some(match std::str::from_utf8(body) {
            Ok(text) if !text.contains(char::is_control) => Frame::Read {
                text: text.to_owned(),
                timing,
            },
            _ => Frame::Refused {
                reason: Rejection::Noise { bytes: body.len() },
                text: String::from_utf8_lossy(body).into_owned(),
                timing,
            },
        })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODE: &str = "134539517967686076";
    const OTHER: &str = "104539517967686071";

    fn framer_for(terminator: Terminator) -> SerialFramer {
        SerialFramer::new(&SerialSettings {
            terminator,
            ..SerialSettings::default()
        })
    }

    fn ms(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    /// Feeds each chunk 1 ms after the previous one, then polls long after.
    fn frames(framer: &mut SerialFramer, chunks: &[&[u8]]) -> Vec<Frame> {
        let base = Instant::now();
        let mut out = Vec::new();
        let mut at = base;
        for chunk in chunks {
            at += Duration::from_millis(1);
            framer.feed(chunk, at, &mut out);
        }
        framer.poll(at + Duration::from_secs(10), &mut out);
        out
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

    #[test]
    fn each_terminator_ends_a_read_at_once() {
        for (terminator, suffix) in [
            (Terminator::Cr, "\r"),
            (Terminator::Lf, "\n"),
            (Terminator::Crlf, "\r\n"),
            (Terminator::Idle, "\r"),
        ] {
            let mut framer = framer_for(terminator);
            let at = Instant::now();
            let mut out = Vec::new();
            framer.feed(format!("{CODE}{suffix}").as_bytes(), at, &mut out);
            assert_eq!(texts(&out), [CODE], "{terminator:?}");
            assert_eq!(
                framer.next_deadline(),
                None,
                "{terminator:?}: nothing pending"
            );
        }
    }

    #[test]
    fn any_line_end_on_any_port_is_exactly_one_read() {
        for terminator in [Terminator::Cr, Terminator::Lf, Terminator::Crlf] {
            for suffix in ["\r", "\n", "\r\n", "\n\r", "\r\n\r\n"] {
                let mut framer = framer_for(terminator);
                let stream = format!("{CODE}{suffix}{OTHER}{suffix}");
                assert_eq!(
                    texts(&frames(&mut framer, &[stream.as_bytes()])),
                    [CODE, OTHER],
                    "{terminator:?} port, suffix {suffix:?}"
                );
            }
        }
    }

    #[test]
    fn the_lf_of_a_crlf_in_the_next_chunk_makes_no_empty_read() {
        let mut framer = framer_for(Terminator::Cr);
        let got = frames(
            &mut framer,
            &[
                format!("{CODE}\r").as_bytes(),
                b"\n",
                format!("{OTHER}\r").as_bytes(),
                b"\n",
            ],
        );
        assert_eq!(texts(&got), [CODE, OTHER]);
    }

    #[test]
    fn reassembles_a_code_fed_byte_by_byte() {
        let mut framer = framer_for(Terminator::Cr);
        let stream = format!("{CODE}\r");
        let chunks: Vec<&[u8]> = stream.as_bytes().chunks(1).collect();
        let got = frames(&mut framer, &chunks);
        assert_eq!(texts(&got), [CODE]);
        let Frame::Read { timing, .. } = &got[0] else {
            unreachable!()
        };
        // 19 chunks 1 ms apart: from the first digit to the CR.
        assert_eq!(timing.duration, Duration::from_millis(18));
    }

    #[test]
    fn splits_several_codes_in_one_chunk() {
        let mut framer = framer_for(Terminator::Lf);
        let stream = format!("{CODE}\n{OTHER}\n{CODE}\n");
        assert_eq!(
            texts(&frames(&mut framer, &[stream.as_bytes()])),
            [CODE, OTHER, CODE]
        );
    }

    #[test]
    fn refuses_garbage_between_codes_and_keeps_the_codes() {
        let mut framer = framer_for(Terminator::Cr);
        let stream = [
            format!("{CODE}\r").as_bytes(),
            b"\x00\xff\x1b[\r",
            b"\xe4\xb8\r", // a UTF-8 sequence cut short
            format!("{OTHER}\r").as_bytes(),
        ]
        .concat();
        let got = frames(&mut framer, &[&stream]);
        assert_eq!(
            texts(&got),
            [
                CODE.to_string(),
                "refused: Noise { bytes: 4 }".into(),
                "refused: Noise { bytes: 2 }".into(),
                OTHER.into()
            ]
        );
    }

    #[test]
    fn strips_stx_etx_prefix_suffix_and_aim_id() {
        let cases = [
            ("\u{2}", "\u{3}", format!("\u{2}{CODE}\u{3}\r")),
            ("SCAN:", "#", format!("SCAN:{CODE}#\r")),
            ("", "", format!("]E0{CODE}\r")),
            ("\u{2}", "\u{3}", format!("\u{2}]Q1{CODE}\u{3}\r")),
            ("", "", format!("{CODE}\t\r")),
            // A prefix the scanner does not send is no reason to refuse.
            ("\u{2}", "", format!("{CODE}\r")),
        ];
        for (prefix, suffix, stream) in cases {
            let mut framer = SerialFramer::new(&SerialSettings {
                strip_prefix: prefix.into(),
                strip_suffix: suffix.into(),
                ..SerialSettings::default()
            });
            assert_eq!(
                texts(&frames(&mut framer, &[stream.as_bytes()])),
                [CODE],
                "{stream:?}"
            );
        }
    }

    #[test]
    fn keeps_what_only_looks_like_an_aim_id_when_told_to() {
        let mut framer = SerialFramer::new(&SerialSettings {
            strip_aim_id: false,
            ..SerialSettings::default()
        });
        let stream = format!("]E0{CODE}\r");
        assert_eq!(
            texts(&frames(&mut framer, &[stream.as_bytes()])),
            [format!("]E0{CODE}")]
        );
        // "]" then a digit is no AIM id.
        let mut framer = framer_for(Terminator::Cr);
        assert_eq!(texts(&frames(&mut framer, &[b"]12\r"])), ["]12"]);
    }

    #[test]
    fn an_stx_etx_or_aim_id_alone_is_skipped() {
        let mut framer = SerialFramer::new(&SerialSettings {
            strip_prefix: "\u{2}".into(),
            strip_suffix: "\u{3}".into(),
            ..SerialSettings::default()
        });
        assert_eq!(frames(&mut framer, &[b"\x02\x03\r]E0\r \r\r\n"]), []);
    }

    #[test]
    fn drops_an_overlong_run_up_to_the_next_line_end() {
        let mut framer = framer_for(Terminator::Cr);
        // A code glued to the end of 60 digits must not come out as a code.
        let run = format!("{}{CODE}", "9".repeat(60));
        let stream = format!("{run}\r{OTHER}\r");
        let got = frames(
            &mut framer,
            &[&stream.as_bytes()[..30], &stream.as_bytes()[30..]],
        );
        assert_eq!(
            texts(&got),
            [
                format!("refused: Overlong {{ bytes: {} }}", run.len()),
                OTHER.into()
            ]
        );
        let Frame::Refused { text, .. } = &got[0] else {
            unreachable!()
        };
        assert_eq!(text.len(), MAX_READ, "keeps only the bound");

        let mut framer = framer_for(Terminator::Cr);
        let exactly = "1".repeat(MAX_READ);
        assert_eq!(
            texts(&frames(&mut framer, &[format!("{exactly}\r").as_bytes()])),
            [exactly],
            "{MAX_READ} bytes is not yet too long"
        );
    }

    #[test]
    fn an_overlong_run_without_line_end_ends_at_its_deadline() {
        for (terminator, deadline) in [(Terminator::Cr, 1000), (Terminator::Idle, 60)] {
            let mut framer = framer_for(terminator);
            let base = Instant::now();
            let mut out = Vec::new();
            framer.feed(&[b'7'; 100], base, &mut out);
            framer.feed(&[b'7'; 100], ms(base, 10), &mut out);
            framer.poll(ms(base, deadline - 1), &mut out);
            assert_eq!(out, [], "{terminator:?}");
            framer.poll(ms(base, deadline), &mut out);
            assert!(
                matches!(
                    &out[..],
                    [Frame::Refused {
                        reason: Rejection::Overlong { bytes: 200 },
                        ..
                    }]
                ),
                "{terminator:?}: {out:?}"
            );
        }
    }

    /// The code of the issue: 7 characters in one USB packet, 11 in the next.
    fn split_code(framer: &mut SerialFramer, base: Instant, gap_ms: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        framer.feed(&CODE.as_bytes()[..7], base, &mut out);
        // Nothing ends the read in the pause, however it is polled.
        for at in (0..gap_ms).step_by(5) {
            framer.poll(ms(base, at), &mut out);
        }
        assert_eq!(out, [], "nothing before the rest came");
        framer.feed(
            &[&CODE.as_bytes()[7..], b"\r"].concat(),
            ms(base, gap_ms),
            &mut out,
        );
        framer.poll(ms(base, gap_ms + 5000), &mut out);
        out
    }

    #[test]
    fn a_pause_inside_a_code_does_not_cut_it_on_a_line_end_port() {
        for terminator in [Terminator::Cr, Terminator::Lf, Terminator::Crlf] {
            for gap_ms in [60, 900, 999] {
                let mut framer = framer_for(terminator);
                let base = Instant::now();
                let got = split_code(&mut framer, base, gap_ms);
                assert_eq!(
                    got,
                    [Frame::Read {
                        text: CODE.into(),
                        timing: ReadTiming {
                            completed: ms(base, gap_ms),
                            duration: Duration::from_millis(gap_ms),
                        }
                    }],
                    "{terminator:?}, {gap_ms} ms"
                );
                assert_eq!(framer.take_hint(), None, "nothing to tell");
            }
        }
    }

    #[test]
    fn the_wait_for_the_terminator_is_its_own_setting() {
        let mut framer = SerialFramer::new(&SerialSettings {
            terminator_timeout_ms: 3000,
            ..SerialSettings::default()
        });
        let base = Instant::now();
        let mut out = Vec::new();
        framer.feed(&CODE.as_bytes()[..7], base, &mut out);
        assert_eq!(framer.next_deadline(), Some(ms(base, 3000)));
        // The idle gap is for "idle" only: it does not move the deadline.
        framer.feed(&CODE.as_bytes()[7..9], ms(base, 2000), &mut out);
        assert_eq!(framer.next_deadline(), Some(ms(base, 3000)));
        framer.feed(
            &[&CODE.as_bytes()[9..], b"\r"].concat(),
            ms(base, 2990),
            &mut out,
        );
        assert_eq!(texts(&out), [CODE]);
    }

    #[test]
    fn a_read_past_the_terminator_timeout_is_refused_naming_the_setting() {
        let mut framer = framer_for(Terminator::Cr);
        let base = Instant::now();
        let mut out = Vec::new();
        framer.feed(&CODE.as_bytes()[..7], base, &mut out);
        framer.feed(&CODE.as_bytes()[7..9], ms(base, 400), &mut out);
        assert_eq!(framer.next_deadline(), Some(ms(base, 1000)));
        framer.poll(ms(base, 999), &mut out);
        assert_eq!(out, []);
        framer.poll(ms(base, 1000), &mut out);
        let [
            Frame::Refused {
                reason,
                text,
                timing,
            },
        ] = &out[..]
        else {
            panic!("expected one refused partial, got {out:?}");
        };
        assert_eq!(
            *reason,
            Rejection::Unterminated {
                chars: 9,
                waited_ms: 1000
            }
        );
        assert_eq!(text, &CODE[..9]);
        assert_eq!(timing.duration, Duration::from_millis(400));
        let message = reason.to_string();
        assert!(
            message.contains("serial.terminator_timeout_ms"),
            "{message}"
        );
        assert!(
            message.contains("serial.terminator = \"idle\""),
            "{message}"
        );
        assert_eq!(framer.next_deadline(), None);

        // The rest is a read of its own, not glued to the next code.
        out.clear();
        framer.feed(
            &[&CODE.as_bytes()[9..], b"\r"].concat(),
            ms(base, 1100),
            &mut out,
        );
        framer.feed(format!("{OTHER}\r").as_bytes(), ms(base, 1200), &mut out);
        assert_eq!(texts(&out), [&CODE[9..], OTHER]);

        let hint = framer
            .take_hint()
            .expect("a read really ended without its CR");
        assert!(hint.contains("serial.terminator"), "{hint}");
        assert_eq!(framer.take_hint(), None, "once");
    }

    #[test]
    fn a_timed_out_read_of_noise_is_noise() {
        let mut framer = framer_for(Terminator::Cr);
        let got = frames(&mut framer, &[b"\x00\xff\x1b"]);
        assert_eq!(texts(&got), ["refused: Noise { bytes: 3 }"]);
    }

    #[test]
    fn idle_mode_ends_a_read_after_the_gap() {
        let mut framer = framer_for(Terminator::Idle);
        let base = Instant::now();
        let mut out = Vec::new();
        framer.feed(&CODE.as_bytes()[..7], base, &mut out);
        // A pause shorter than the gap inside a code does not cut it.
        framer.feed(&CODE.as_bytes()[7..], ms(base, 40), &mut out);
        assert_eq!(framer.next_deadline(), Some(ms(base, 90)));
        framer.poll(ms(base, 89), &mut out);
        assert_eq!(out, []);
        framer.poll(ms(base, 90), &mut out);
        assert_eq!(
            out,
            [Frame::Read {
                text: CODE.into(),
                timing: ReadTiming {
                    completed: ms(base, 40),
                    duration: Duration::from_millis(40)
                }
            }]
        );
        assert_eq!(framer.next_deadline(), None);
        assert_eq!(framer.take_hint(), None, "silence is what idle expects");
    }

    #[test]
    fn silence_before_new_bytes_ends_the_read_even_unpolled() {
        let mut framer = framer_for(Terminator::Idle);
        let base = Instant::now();
        let mut out = Vec::new();
        framer.feed(CODE.as_bytes(), base, &mut out);
        framer.feed(OTHER.as_bytes(), ms(base, 500), &mut out);
        framer.poll(ms(base, 550), &mut out);
        assert_eq!(texts(&out), [CODE, OTHER]);
    }

    #[test]
    fn a_line_port_refuses_an_unterminated_read_and_says_why_once() {
        let mut framer = framer_for(Terminator::Cr);
        let got = frames(&mut framer, &[CODE.as_bytes()]);
        assert_eq!(
            texts(&got),
            ["refused: Unterminated { chars: 18, waited_ms: 1000 }"]
        );
        let hint = framer.take_hint().expect("a hint");
        assert!(hint.contains("serial.terminator"), "{hint}");
        frames(&mut framer, &[OTHER.as_bytes()]);
        assert_eq!(framer.take_hint(), None, "once");
    }

    proptest! {
        /// However the stream is cut into chunks, and whatever line end each
        /// code has, the framer gives back exactly the codes in order.
        #[test]
        fn any_split_gives_back_the_codes(
            codes in prop::collection::vec(("1[0-5][0-9]{16}", 0..3usize), 1..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..40),
            terminator in prop::sample::select(vec![Terminator::Cr, Terminator::Lf, Terminator::Crlf]),
        ) {
            let stream: Vec<u8> = codes
                .iter()
                .flat_map(|(code, end)| [code.as_str(), ["\r", "\n", "\r\n"][*end]].concat().into_bytes())
                .collect();
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            cuts.extend([0, stream.len()]);
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &stream[w[0]..w[1]]).collect();
            let mut framer = framer_for(terminator);
            let got = frames(&mut framer, &chunks);
            let expected: Vec<String> = codes.into_iter().map(|(code, _)| code).collect();
            prop_assert_eq!(texts(&got), expected);
        }
    }
}
