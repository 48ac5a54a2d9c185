//! What the cashier is told for a gateway error code, in Chinese or English
//! (`assets/messages.toml`, editable without touching code).

use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum Language {
    #[default]
    #[serde(rename = "zh")]
    Chinese,
    #[serde(rename = "en")]
    English,
}

#[derive(serde::Deserialize)]
struct Message {
    zh: String,
    en: String,
}

static MESSAGES: LazyLock<HashMap<String, Message>> = LazyLock::new(|| {
    toml::from_str(include_str!("../../assets/messages.toml"))
        .expect("assets/messages.toml is checked by a unit test")
});

/// The cashier's message for `code`, if the table has one.
pub fn cashier_message(code: &str, language: Language) -> Option<&'static str> {
    MESSAGES.get(code).map(|m| match language {
        Language::Chinese => m.zh.as_str(),
        Language::English => m.en.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definite_failure_has_both_languages() {
        for code in super::super::api::DEFINITE_FAILURES {
            let zh = cashier_message(code, Language::Chinese)
                .unwrap_or_else(|| panic!("{code} has no zh message"));
            let en = cashier_message(code, Language::English)
                .unwrap_or_else(|| panic!("{code} has no en message"));
            assert!(!zh.is_empty() && !en.is_empty());
        }
        assert_eq!(
            cashier_message("NOTENOUGH", Language::Chinese),
            Some("余额不足，请用户换卡支付")
        );
        assert_eq!(cashier_message("NO_SUCH_CODE", Language::English), None);
    }
}
