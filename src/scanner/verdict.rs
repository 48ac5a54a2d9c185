//! What a raw read is: a WeChat payment code, or a rejection whose message
//! tells the cashier (or the installer) what to do.

use std::fmt;

use crate::domain::{AuthCode, AuthCodeError, mask};

/// Why a read is not a payment code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not a WeChat payment code (length, characters, prefix, Alipay).
    Code(AuthCodeError),
    /// Digits typed through the wrong keyboard layout: the scanner is set to
    /// a layout the host does not use.
    KeyboardLayout { layout: &'static str },
    /// The same code again within the duplicate window: one scan, not two.
    Duplicate,
    /// Bytes that cannot be a code at all (line noise, a half read).
    Noise { bytes: usize },
    /// No terminator within the size a code can have: dropped, never cut.
    Overlong { bytes: usize },
    /// A serial read whose CR or LF did not come within
    /// `serial.terminator_timeout_ms`: part of a code, or a scanner that
    /// sends no line end.
    Unterminated { chars: usize, waited_ms: u64 },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Code(e) => write!(f, "{e}"),
            Rejection::KeyboardLayout { layout } => write!(
                f,
                "the scanner types digits as on a {layout} keyboard: set the scanner to the host's keyboard layout (US / \"universal\") with its configuration barcode, then scan again"
            ),
            Rejection::Duplicate => write!(f, "the same code was read again at once: counted once"),
            Rejection::Noise { bytes } => write!(
                f,
                "{bytes} bytes that are not a code (line noise or a partial read): check the cable and the port settings (baud, parity), then scan again"
            ),
            Rejection::Overlong { bytes } => write!(
                f,
                "{bytes} characters without an end: check that the scanner sends a terminator (Enter / CR / LF) and scan again"
            ),
            Rejection::Unterminated { chars, waited_ms } => write!(
                f,
                "{chars} characters and no CR or LF after them within serial.terminator_timeout_ms ({waited_ms} ms): scan again; if every scan ends so, the scanner sends no line end: give it a CR suffix with its configuration barcode, or set serial.terminator = \"idle\""
            ),
        }
    }
}

/// The verdict on one complete read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted(AuthCode),
    Rejected(Rejection),
}

/// Digits as an AZERTY (French, Belgian) host shows what a scanner sends for
/// `1234567890` when the scanner believes it is on a US keyboard.
const AZERTY_DIGITS: [char; 10] = ['&', 'é', '"', '\'', '(', '-', 'è', '_', 'ç', 'à'];
/// The US shifted digits: a scanner set to AZERTY sends Shift+digit to a US host.
const SHIFTED_DIGITS: [char; 10] = ['!', '@', '#', '$', '%', '^', '&', '*', '(', ')'];

pub fn judge(read: &str) -> Verdict {
    let text = read.trim_matches(|c: char| c == '\r' || c == '\n' || c == ' ');
    if let Some(layout) = wrong_layout(text) {
        return Verdict::Rejected(Rejection::KeyboardLayout { layout });
    }
    match AuthCode::parse(text) {
        Ok(code) => Verdict::Accepted(code),
        Err(e) => Verdict::Rejected(Rejection::Code(e)),
    }
}

/// A read of at least 8 characters made only of one layout's digit keys.
fn wrong_layout(text: &str) -> Option<&'static str> {
    let only = |set: &[char]| text.chars().count() >= 8 && text.chars().all(|c| set.contains(&c));
    if only(&AZERTY_DIGITS) {
        Some("French AZERTY")
    } else if only(&SHIFTED_DIGITS) {
        Some("shifted (AZERTY-configured scanner on a US)")
    } else {
        None
    }
}

/// A read as it may be shown after the scan: masked to its last four
/// characters, with its length, so a real code never lands on screen or disk.
pub fn shown(read: &str) -> String {
    let count = read.chars().count();
    format!("{} ({count} chars)", mask(read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_code_and_trims_line_ends() {
        assert!(
            matches!(judge("134539517967686076\r\n"), Verdict::Accepted(c) if c.expose() == "134539517967686076")
        );
    }

    #[test]
    fn recognises_a_scanner_on_the_wrong_keyboard_layout() {
        // 134539517967686076 typed by a US-layout scanner into an AZERTY host.
        let azerty: String = "134539517967686076"
            .chars()
            .map(|c| AZERTY_DIGITS[(c.to_digit(10).unwrap() as usize + 9) % 10])
            .collect();
        assert_eq!(azerty, "&\"'(\"ç(&èç-è-_-àè-");
        assert!(matches!(
            judge(&azerty),
            Verdict::Rejected(Rejection::KeyboardLayout {
                layout: "French AZERTY"
            })
        ));
        assert!(matches!(
            judge("!#$%#(!&"),
            Verdict::Rejected(Rejection::KeyboardLayout { .. })
        ));
        let message = Rejection::KeyboardLayout {
            layout: "French AZERTY",
        }
        .to_string();
        assert!(message.contains("keyboard layout"), "{message}");
    }

    #[test]
    fn names_what_is_wrong_with_other_reads() {
        assert!(matches!(
            judge("2845395179676860761234"),
            Verdict::Rejected(Rejection::Code(AuthCodeError::Alipay { .. }))
        ));
        assert!(matches!(
            judge("1345395179676860761"),
            Verdict::Rejected(Rejection::Code(AuthCodeError::WrongLength { len: 19 }))
        ));
        assert!(
            matches!(
                judge("6901234567892"),
                Verdict::Rejected(Rejection::Code(_))
            ),
            "a product EAN-13 is not a payment code"
        );
    }

    #[test]
    fn shows_reads_masked() {
        assert_eq!(shown("134539517967686076"), "**************6076 (18 chars)");
        assert_eq!(shown("12"), "12 (2 chars)");
    }
}
