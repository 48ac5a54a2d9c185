use std::fmt;

/// A WeChat Pay payment code ("付款码"): 18 ASCII digits whose first two
/// digits are 10–15 (提交付款码支付, `auth_code`).
///
/// `Display` and `Debug` print the masked form, so a code cannot reach a log
/// or the journal by accident; only [`AuthCode::expose`] gives the digits, and
/// only the request builder calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthCodeError {
    #[error("the payment code is empty: scan the customer's WeChat payment code")]
    Empty,
    #[error(
        "the payment code has a character that is not a digit ({found:?}): scan the customer's WeChat payment code"
    )]
    NotDigits { found: char },
    #[error("a WeChat payment code has 18 digits, this one has {len}: scan it again")]
    WrongLength { len: usize },
    #[error(
        "this looks like an Alipay payment code (it starts with {prefix}): ask the customer for their WeChat payment code"
    )]
    Alipay { prefix: String },
    #[error(
        "a WeChat payment code starts with 10 to 15, this one starts with {prefix}: ask the customer for their WeChat payment code"
    )]
    WrongPrefix { prefix: String },
}

impl AuthCode {
    pub fn parse(input: &str) -> Result<Self, AuthCodeError> {
        let code = input.trim();
        if code.is_empty() {
            return Err(AuthCodeError::Empty);
        }
        if let Some(found) = code.chars().find(|c| !c.is_ascii_digit()) {
            return Err(AuthCodeError::NotDigits { found });
        }
        let prefix = code[..2.min(code.len())].to_string();
        // Alipay's codes are 16–24 digits starting 25–30: say so whatever the length,
        // because the cashier's fix is the same (ask for the WeChat code).
        if matches!(prefix.as_str(), "25" | "26" | "27" | "28" | "29" | "30") {
            return Err(AuthCodeError::Alipay { prefix });
        }
        if code.len() != 18 {
            return Err(AuthCodeError::WrongLength { len: code.len() });
        }
        if !matches!(prefix.as_str(), "10" | "11" | "12" | "13" | "14" | "15") {
            return Err(AuthCodeError::WrongPrefix { prefix });
        }
        Ok(Self(code.to_string()))
    }

    /// The full digits, for the micropay request and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form that may be stored and shown: only the last four digits.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Masks anything that might be a payment code down to its last four characters.
pub fn mask(code: &str) -> String {
    // Characters, not bytes: a read may hold Chinese text from another barcode.
    let hidden = code.chars().count().saturating_sub(4);
    let tail: String = code.chars().skip(hidden).collect();
    format!("{}{tail}", "*".repeat(hidden.min(14)))
}

impl fmt::Display for AuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthCode({})", self.masked())
    }
}

/// True if `text` has a word (a run of ASCII letters and digits) that is a
/// WeChat payment code: exactly 18 digits starting 10 to 15 (提交付款码支付).
///
/// Digits glued to letters are part of a longer token, not a code: a hex
/// `sign` or a `nonce_str` holds an 18-digit run starting 10–15 once in tens of
/// thousands, and refusing it would fail a payment. Longer digit runs (the
/// 28-digit transaction_id, out_trade_no) and shorter ones (amounts, times,
/// the masked code) are other things.
pub fn holds_payment_code(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| {
            let digits = word.as_bytes();
            digits.len() == 18
                && digits.iter().all(u8::is_ascii_digit)
                && digits[0] == b'1'
                && (b'0'..=b'5').contains(&digits[1])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_wechat_prefix() {
        for prefix in 10..=15 {
            let code = format!("{prefix}4539517967686076");
            assert_eq!(AuthCode::parse(&code).unwrap().expose(), code);
        }
    }

    #[test]
    fn refuses_what_is_not_a_wechat_code() {
        assert_eq!(AuthCode::parse(""), Err(AuthCodeError::Empty));
        assert_eq!(
            AuthCode::parse("13453951796768607"),
            Err(AuthCodeError::WrongLength { len: 17 })
        );
        assert_eq!(
            AuthCode::parse("1345395179676860761"),
            Err(AuthCodeError::WrongLength { len: 19 })
        );
        assert_eq!(
            AuthCode::parse("13453951796768607a"),
            Err(AuthCodeError::NotDigits { found: 'a' })
        );
        assert_eq!(
            AuthCode::parse("164539517967686076"),
            Err(AuthCodeError::WrongPrefix {
                prefix: "16".into()
            })
        );
        assert_eq!(
            AuthCode::parse("094539517967686076"),
            Err(AuthCodeError::WrongPrefix {
                prefix: "09".into()
            })
        );
        assert_eq!(
            AuthCode::parse("284539517967686076"),
            Err(AuthCodeError::Alipay {
                prefix: "28".into()
            })
        );
    }

    #[test]
    fn masks_by_characters_not_bytes() {
        assert_eq!(mask("门店二维码ABCD"), "*****ABCD");
        assert_eq!(mask("1234"), "1234");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn never_prints_the_digits() {
        let code = AuthCode::parse("134539517967686076").unwrap();
        assert_eq!(code.to_string(), "**************6076");
        assert_eq!(format!("{code:?}"), "AuthCode(**************6076)");
        assert!(!format!("{code} {code:?}").contains("1345395179"));
    }
}
