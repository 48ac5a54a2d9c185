//! The till's own sentences, from the catalog the gateway's messages live in
//! (`assets/messages.toml`, keys `till.…`), with their `{fields}` filled in.

use std::fmt::Display;

use crate::wechat::messages::{Language, cashier_message};

/// The sentence `key` in `language`, each `{name}` replaced by its value.
pub fn text(language: Language, key: &str, fields: &[(&str, &dyn Display)]) -> String {
    let mut out = cashier_message(key, language).unwrap_or(key).to_string();
    for (name, value) in fields {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn fields(text: &str) -> BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            .collect()
    }

    #[test]
    fn every_till_sentence_has_both_languages_with_the_same_fields() {
        let catalog: toml::Table =
            toml::from_str(include_str!("../../assets/messages.toml")).unwrap();
        let keys: Vec<_> = catalog.keys().filter(|k| k.starts_with("till.")).collect();
        assert!(keys.len() > 20, "{keys:?}");
        for key in keys {
            let zh = cashier_message(key, Language::Chinese).unwrap();
            let en = cashier_message(key, Language::English).unwrap();
            assert_eq!(fields(zh), fields(en), "{key}");
            let cjk = |c: &char| {
                ('\u{3000}'..='\u{9fff}').contains(c) || ('\u{ff00}'..='\u{ffef}').contains(c)
            };
            assert!(!en.chars().any(|c| cjk(&c)), "{key}: {en}");
            assert!(zh.chars().any(|c| cjk(&c)), "{key}: {zh}");
        }
        assert_eq!(
            text(
                Language::Chinese,
                "till.over_maximum",
                &[("max", &"5000.00")]
            ),
            "超过本收银台上限 5000.00 元"
        );
    }
}
