//! The order description (`body`) the customer sees in WeChat: checked once,
//! where it is typed (`scanpay pay --body`) or configured (`till.default_body`,
//! a preset's name), so what is journaled is exactly what goes on the wire.
//!
//! Before this check a description of control characters was cleaned to
//! nothing and sent (WeChat answers LACK_PARAMS), one holding a payment code
//! reached the journal's guard only after the payment had begun, and a
//! megabyte-long one was stored in full with every order while 128 bytes
//! were sent.

use std::fmt;

use super::auth_code::holds_payment_code;
use crate::wechat::api::BODY_MAX_BYTES;

/// Why a description is refused. The text is named only where it is harmless:
/// a payment code is never echoed, a long text only up to the cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// `position` counts characters from 1.
    ControlCharacter {
        character: char,
        position: usize,
        count: usize,
    },
    Empty,
    PaymentCode,
    TooLong {
        bytes: usize,
        kept: String,
    },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::ControlCharacter {
                character,
                position,
                count,
            } => {
                write!(
                    f,
                    "the description holds a control character, U+{:04X} at character {position}",
                    u32::from(*character)
                )?;
                if *count > 1 {
                    write!(f, " ({count} in all)")?;
                }
                write!(
                    f,
                    ": WeChat cannot show it; write the description as plain text on one line"
                )
            }
            BodyError::Empty => write!(
                f,
                "the description is empty: describe the sale, e.g. \"两杯咖啡\""
            ),
            BodyError::PaymentCode => write!(
                f,
                "the description holds what looks like a WeChat payment code (18 digits starting 10 to 15), which must never be stored or sent as text: describe the sale instead"
            ),
            BodyError::TooLong { bytes, kept } => write!(
                f,
                "the description is {bytes} bytes; WeChat takes at most {BODY_MAX_BYTES} (about 42 Chinese characters), so it would be cut after {kept:?}: shorten it"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

/// Checks a description: plain text, not empty, no payment code, at most
/// [`BODY_MAX_BYTES`] bytes.
pub fn check_body(text: &str) -> Result<(), BodyError> {
    let mut controls = text.chars().enumerate().filter(|(_, c)| c.is_control());
    if let Some((index, character)) = controls.next() {
        return Err(BodyError::ControlCharacter {
            character,
            position: index + 1,
            count: 1 + controls.count(),
        });
    }
    if text.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    if holds_payment_code(text) {
        return Err(BodyError::PaymentCode);
    }
    if text.len() > BODY_MAX_BYTES {
        let mut end = BODY_MAX_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        return Err(BodyError::TooLong {
            bytes: text.len(),
            kept: text[..end].to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_descriptions_pass() {
        for body in [
            "门店消费",
            "两杯咖啡 + 1 croissant",
            "Order 12.34",
            &"咖".repeat(42),
        ] {
            assert_eq!(check_body(body), Ok(()), "{body}");
        }
    }

    #[test]
    fn control_characters_are_named_with_their_position() {
        let e = check_body("咖啡\u{7}\n").unwrap_err();
        assert_eq!(
            e,
            BodyError::ControlCharacter {
                character: '\u{7}',
                position: 3,
                count: 2
            }
        );
        assert!(
            e.to_string().contains("U+0007 at character 3 (2 in all)"),
            "{e}"
        );
        assert!(matches!(
            check_body("\u{1b}[31m"),
            Err(BodyError::ControlCharacter { position: 1, .. })
        ));
    }

    #[test]
    fn blank_is_empty() {
        assert_eq!(check_body(""), Err(BodyError::Empty));
        assert_eq!(check_body("   \u{3000}"), Err(BodyError::Empty));
    }

    #[test]
    fn a_payment_code_is_refused_without_being_echoed() {
        let e = check_body("coffee 134539517967686076").unwrap_err();
        assert_eq!(e, BodyError::PaymentCode);
        assert!(!e.to_string().contains("1345395"));
        // Other digit runs are other things.
        assert_eq!(check_body("order 4200001234202611221234567890"), Ok(()));
        assert_eq!(check_body("tel 13800138000"), Ok(()));
    }

    #[test]
    fn too_long_says_where_it_would_be_cut_on_a_character_boundary() {
        let body = "咖".repeat(43); // 129 bytes
        let Err(BodyError::TooLong { bytes, kept }) = check_body(&body) else {
            panic!("129 bytes must be refused");
        };
        assert_eq!(bytes, 129);
        assert_eq!(kept, "咖".repeat(42));
        let huge = "a".repeat(1_200_000);
        let e = check_body(&huge).unwrap_err();
        let message = e.to_string();
        assert!(message.contains("1200000 bytes"), "{message}");
        assert!(message.len() < 400, "the message quotes only the kept part");
    }
}
