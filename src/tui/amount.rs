//! The amount field: what a cashier may type, and nothing else.

use crate::domain::{AmountError, Fen};

/// The text of the amount as typed: digits, at most one point, at most two
/// decimals. Every edit keeps it valid, so it always parses or is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmountField {
    text: String,
}

/// Why a key was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    SecondPoint,
    ThirdDecimal,
    OverMaximum(Fen),
    TooLong,
}

impl AmountField {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
    }

    pub fn set(&mut self, amount: Fen) {
        self.text = amount.to_string();
    }

    /// The amount, if it is more than zero.
    pub fn value(&self) -> Result<Fen, AmountError> {
        Fen::parse_yuan(&self.text)
    }

    /// Types one character; refused keys leave the field as it was.
    pub fn type_char(&mut self, c: char, max: Fen) -> Result<(), Refused> {
        let mut next = self.text.clone();
        match c {
            '.' if next.contains('.') => return Err(Refused::SecondPoint),
            '.' if next.is_empty() => next.push_str("0."),
            '.' => next.push('.'),
            '0'..='9' => {
                if next
                    .split_once('.')
                    .is_some_and(|(_, decimals)| decimals.len() >= 2)
                {
                    return Err(Refused::ThirdDecimal);
                }
                if next == "0" {
                    next.clear(); // "05" is "5"
                }
                next.push(c);
            }
            _ => return Ok(()),
        }
        if next.len() > 10 {
            return Err(Refused::TooLong);
        }
        if Fen::parse_yuan(&next).is_ok_and(|amount| amount > max) {
            return Err(Refused::OverMaximum(max));
        }
        self.text = next;
        Ok(())
    }

    pub fn backspace(&mut self) {
        self.text.pop();
        if self.text == "0" {
            self.text.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &str) -> (AmountField, Vec<Refused>) {
        let mut field = AmountField::default();
        let refused = keys
            .chars()
            .filter_map(|c| field.type_char(c, Fen(500_000)).err())
            .collect();
        (field, refused)
    }

    #[test]
    fn takes_what_a_cashier_types() {
        assert_eq!(typed("12.34").0.value(), Ok(Fen(1234)));
        assert_eq!(typed(".5").0.text(), "0.5");
        assert_eq!(typed("05").0.text(), "5");
        assert_eq!(typed("0.05").0.value(), Ok(Fen(5)));
    }

    #[test]
    fn refuses_what_would_make_it_invalid() {
        let (field, refused) = typed("1.2.345");
        assert_eq!(field.text(), "1.23");
        assert_eq!(
            refused,
            [
                Refused::SecondPoint,
                Refused::ThirdDecimal,
                Refused::ThirdDecimal
            ]
        );
        let (field, refused) = typed("5000.01");
        assert_eq!(field.text(), "5000.0");
        assert_eq!(refused, [Refused::OverMaximum(Fen(500_000))]);
        let (field, refused) = typed("50001");
        assert_eq!(field.text(), "5000");
        assert_eq!(refused.len(), 1);
    }

    #[test]
    fn backspace_and_clear() {
        let (mut field, _) = typed("0.5");
        field.backspace();
        field.backspace();
        assert!(field.is_empty(), "{field:?}");
        let (mut field, _) = typed("12");
        field.clear();
        assert!(field.value().is_err());
    }
}
