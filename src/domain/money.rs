use std::fmt;
use std::str::FromStr;

/// An amount in fen (0.01 CNY), the unit of `total_fee`. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(pub u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("no amount given: type the amount in yuan, e.g. 12.34")]
    Empty,
    #[error("{input:?} is not an amount: use digits and at most one decimal point, e.g. 12.34")]
    NotANumber { input: String },
    #[error("{input:?} has more than two decimals: amounts are in yuan to the fen, e.g. 12.34")]
    TooManyDecimals { input: String },
    #[error("the amount must be more than 0.00")]
    Zero,
    #[error(
        "{amount} is over this till's maximum of {max}: check the amount, or raise till.max_amount"
    )]
    OverMaximum { amount: Fen, max: Fen },
}

impl Fen {
    /// Parses a yuan amount as a cashier types it: `12`, `12.3`, `12.34`.
    /// Signs, exponents, spaces inside and a third decimal are refused, not rounded.
    pub fn parse_yuan(input: &str) -> Result<Self, AmountError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        let not_a_number = || AmountError::NotANumber {
            input: text.to_string(),
        };
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !digits_only(whole) || !digits_only(frac) {
            return Err(not_a_number());
        }
        if frac.len() > 2 {
            return Err(AmountError::TooManyDecimals {
                input: text.to_string(),
            });
        }
        let yuan: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| not_a_number())?
        };
        let fen_part: u64 = format!("{frac:0<2}").parse().map_err(|_| not_a_number())?;
        let fen = yuan
            .checked_mul(100)
            .and_then(|f| f.checked_add(fen_part))
            .ok_or_else(not_a_number)?;
        if fen == 0 {
            return Err(AmountError::Zero);
        }
        Ok(Fen(fen))
    }

    /// Like [`Fen::parse_yuan`], and refuses amounts above the till's maximum.
    pub fn parse_yuan_within(input: &str, max: Fen) -> Result<Self, AmountError> {
        let amount = Self::parse_yuan(input)?;
        if amount > max {
            return Err(AmountError::OverMaximum { amount, max });
        }
        Ok(amount)
    }
}

impl fmt::Display for Fen {
    /// Yuan with two decimals, as on a receipt and in exports.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Signed fen as yuan with two decimals, "-5.00" below zero: a day's net
/// takings after refunding more of earlier days than it took.
pub fn signed_yuan(fen: impl Into<i128>) -> String {
    let fen: i128 = fen.into();
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

impl FromStr for Fen {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_yuan(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signed_yuan_below_zero() {
        assert_eq!(signed_yuan(0), "0.00");
        assert_eq!(signed_yuan(3702), "37.02");
        assert_eq!(signed_yuan(-105), "-1.05");
        assert_eq!(signed_yuan(-1i128), "-0.01");
        assert_eq!(
            signed_yuan(i128::from(u64::MAX) * 2),
            "368934881474191032.30"
        );
    }

    #[test]
    fn parses_what_a_cashier_types() {
        assert_eq!(Fen::parse_yuan("12.34"), Ok(Fen(1234)));
        assert_eq!(Fen::parse_yuan("12.3"), Ok(Fen(1230)));
        assert_eq!(Fen::parse_yuan("12"), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan("12."), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan(".5"), Ok(Fen(50)));
        assert_eq!(Fen::parse_yuan("0.01"), Ok(Fen(1)));
    }

    #[test]
    fn refuses_malformed_amounts_with_the_reason() {
        assert_eq!(Fen::parse_yuan("0"), Err(AmountError::Zero));
        assert_eq!(Fen::parse_yuan("0.00"), Err(AmountError::Zero));
        assert!(matches!(
            Fen::parse_yuan("-1"),
            Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("1.234"),
            Err(AmountError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("abc"),
            Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("1e3"),
            Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("1.2.3"),
            Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("."),
            Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("+1"),
            Err(AmountError::NotANumber { .. })
        ));
        assert!(matches!(
            Fen::parse_yuan("99999999999999999999"),
            Err(AmountError::NotANumber { .. })
        ));
        assert_eq!(Fen::parse_yuan(" "), Err(AmountError::Empty));
        assert_eq!(
            Fen::parse_yuan_within("5000.01", Fen(500_000)),
            Err(AmountError::OverMaximum {
                amount: Fen(500_001),
                max: Fen(500_000)
            })
        );
        assert_eq!(
            Fen::parse_yuan_within("5000.00", Fen(500_000)),
            Ok(Fen(500_000))
        );
    }

    proptest! {
        #[test]
        fn display_and_parse_round_trip(fen in 1u64..10_000_000_000) {
            prop_assert_eq!(Fen::parse_yuan(&Fen(fen).to_string()), Ok(Fen(fen)));
        }
    }
}
