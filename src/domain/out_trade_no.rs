use std::fmt;

/// The merchant's order number: at most 32 characters of `[0-9A-Za-z_-|*@]`,
/// unique per merchant forever (提交付款码支付, `out_trade_no`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutTradeNo(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutTradeNoError {
    #[error("an out_trade_no has 1 to 32 characters, {0:?} has {1}")]
    Length(String, usize),
    #[error("{0:?} has a character out_trade_no does not allow (only 0-9 A-Z a-z _ - | * @)")]
    Character(String),
}

/// How many characters of the installation id an order number carries.
pub const INSTALLATION_PART: usize = 6;

impl OutTradeNo {
    pub fn parse(input: &str) -> Result<Self, OutTradeNoError> {
        if input.is_empty() || input.len() > 32 {
            return Err(OutTradeNoError::Length(input.to_string(), input.len()));
        }
        if !input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
        {
            return Err(OutTradeNoError::Character(input.to_string()));
        }
        Ok(Self(input.to_string()))
    }

    /// A new number for a new payment attempt: till id, the store's local
    /// time to the second (`yyMMddHHmmss`), six characters of the journal's
    /// installation id, and the journal's never-reused order sequence — at
    /// most 8 + 12 + 6 + 6 = 32 characters. The installation part keeps two
    /// tills apart even when they share a till id (a cloned disk image); the
    /// time keeps numbers unique if a journal is wiped and its sequence
    /// restarts; the sequence keeps them unique within one second.
    pub fn mint(till: &TillId, local_stamp: &str, installation: &str, sequence: u64) -> Self {
        let text = format!(
            "{}{}{}{:06}",
            till.as_str(),
            local_stamp,
            &installation[..INSTALLATION_PART.min(installation.len())],
            sequence % 1_000_000
        );
        Self::parse(&text).expect(
            "a till id of at most 8 alphanumerics, 12 digits, 6 alphanumerics and 6 digits is valid",
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutTradeNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one till: 1 to 8 ASCII letters or digits. It prefixes every
/// out_trade_no and is sent as `device_info`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TillId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "till.id {0:?} must be 1 to 8 ASCII letters or digits (it prefixes every order number), e.g. \"T01\""
)]
pub struct TillIdError(String);

impl TillId {
    pub fn parse(input: &str) -> Result<Self, TillIdError> {
        if input.is_empty() || input.len() > 8 || !input.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(TillIdError(input.to_string()));
        }
        Ok(Self(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_numbers_are_valid_and_distinct() {
        let till = TillId::parse("T01").unwrap();
        let a = OutTradeNo::mint(&till, "261123142353", "K3F9XQ2M7P0A", 1);
        let b = OutTradeNo::mint(&till, "261123142353", "K3F9XQ2M7P0A", 2);
        assert_eq!(a.as_str(), "T01261123142353K3F9XQ000001");
        assert_ne!(a, b);
        let other_installation = OutTradeNo::mint(&till, "261123142353", "ZZ0000000000", 1);
        assert_ne!(a, other_installation, "same till id, second and sequence");
        let longest = OutTradeNo::mint(
            &TillId::parse("ABCDEFGH").unwrap(),
            "261123142353",
            "K3F9XQ2M7P0A",
            999_999,
        );
        assert_eq!(longest.as_str().len(), 32);
    }

    #[test]
    fn refuses_invalid_numbers() {
        assert!(OutTradeNo::parse("").is_err());
        assert!(OutTradeNo::parse(&"1".repeat(33)).is_err());
        assert!(OutTradeNo::parse("A B").is_err());
        assert!(OutTradeNo::parse("a_b-c|d*e@f").is_ok());
        assert!(TillId::parse("T-1").is_err());
        assert!(TillId::parse("123456789").is_err());
    }
}
