//! The flat `<xml><field>value</field>…</xml>` format of WeChat Pay v2.
//!
//! Decoding is strict on purpose: a body that is not exactly a flat map is
//! not an answer we can trust, so it is an error (and the caller treats the
//! order as UNKNOWN), never a guess.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Largest body decoded; real answers are under 2 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// Field name → value, in the order they arrived (kept for the journal; the
/// signature sorts its own copy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`, replacing an earlier value so a key is never sent twice.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
        self
    }

    /// Sets `key` only when there is a non-empty value (optional parameters).
    pub fn set_opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.set(key, v);
        }
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let at = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(at).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut fields = Fields::new();
        for (k, v) in iter {
            fields.set(&k.into(), v);
        }
        fields
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the answer is {0} bytes, more than the {MAX_BODY} accepted")]
    TooLarge(usize),
    #[error("the answer is not UTF-8")]
    NotUtf8,
    #[error("the answer declares a DOCTYPE or entity, which is refused")]
    Doctype,
    #[error("the answer uses the entity &{0}; which is not one of XML's five")]
    UnknownEntity(String),
    #[error("the answer's root element is <{0}>, not <xml>")]
    WrongRoot(String),
    #[error("the answer nests elements inside <{0}>, which should hold a plain value")]
    Nested(String),
    #[error("the answer has the field <{0}> twice")]
    Duplicate(String),
    #[error("the answer has text outside any field")]
    StrayText,
    #[error("the answer is not well-formed XML: {0}")]
    Malformed(String),
}

/// Encodes fields as WeChat expects. Strings go in CDATA (a `]]>` inside is
/// split across two sections); values made only of digits go bare, like
/// WeChat's own `total_fee`.
pub fn encode(fields: &Fields) -> String {
    let mut out = String::with_capacity(
        64 + fields
            .iter()
            .map(|(k, v)| 2 * k.len() + v.len() + 16)
            .sum::<usize>(),
    );
    out.push_str("<xml>");
    for (key, value) in fields.iter() {
        out.push('<');
        out.push_str(key);
        out.push('>');
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(value);
        } else {
            out.push_str("<![CDATA[");
            out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
            out.push_str("]]>");
        }
        out.push_str("</");
        out.push_str(key);
        out.push('>');
    }
    out.push_str("</xml>");
    out
}

/// Decodes a flat `<xml>` body into fields, accepting CDATA and escaped text
/// alike, and refusing DOCTYPEs, unknown entities, nesting, duplicates and
/// bodies over [`MAX_BODY`].
pub fn decode(body: &[u8]) -> Result<Fields, XmlError> {
    if body.len() > MAX_BODY {
        return Err(XmlError::TooLarge(body.len()));
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    let malformed = |e: &dyn std::fmt::Display| XmlError::Malformed(e.to_string());

    let mut fields = Fields::new();
    let mut in_root = false;
    let mut root_closed = false;
    // The field being read and the value gathered so far.
    let mut current: Option<(String, String)> = None;

    loop {
        match reader.read_event().map_err(|e| malformed(&e))? {
            Event::Eof => break,
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Start(start) => {
                let name = start.name().as_ref().to_string();
                if root_closed {
                    return Err(XmlError::StrayText);
                }
                if !in_root {
                    if name != "xml" {
                        return Err(XmlError::WrongRoot(name));
                    }
                    in_root = true;
                } else if let Some((parent, _)) = &current {
                    return Err(XmlError::Nested(parent.clone()));
                } else {
                    current = Some((name, String::new()));
                }
            }
            Event::Empty(empty) => {
                let name = empty.name().as_ref().to_string();
                match (&current, in_root) {
                    (Some((parent, _)), _) => return Err(XmlError::Nested(parent.clone())),
                    (None, true) => insert(&mut fields, name, String::new())?,
                    (None, false) => return Err(XmlError::WrongRoot(name)),
                }
            }
            Event::End(_) => match current.take() {
                Some((name, value)) => insert(&mut fields, name, value)?,
                None if in_root => {
                    in_root = false;
                    root_closed = true;
                }
                None => return Err(XmlError::Malformed("unbalanced end tag".into())),
            },
            Event::Text(t) => {
                let raw = t.xml10_content();
                match &mut current {
                    Some((_, value)) => value.push_str(&raw),
                    None if raw.trim().is_empty() => {}
                    None => return Err(XmlError::StrayText),
                }
            }
            Event::CData(c) => {
                let raw = c.xml10_content();
                match &mut current {
                    Some((_, value)) => value.push_str(&raw),
                    None => return Err(XmlError::StrayText),
                }
            }
            Event::GeneralRef(r) => {
                let name = r.xml10_content().into_owned();
                let resolved = resolve_entity(&name).ok_or(XmlError::UnknownEntity(name))?;
                match &mut current {
                    Some((_, value)) => value.push(resolved),
                    None => return Err(XmlError::StrayText),
                }
            }
        }
    }
    if in_root || current.is_some() || !root_closed {
        return Err(XmlError::Malformed("the body ends before </xml>".into()));
    }
    Ok(fields)
}

fn insert(fields: &mut Fields, name: String, value: String) -> Result<(), XmlError> {
    if fields.get(&name).is_some() {
        return Err(XmlError::Duplicate(name));
    }
    fields.0.push((name, value));
    Ok(())
}

/// XML's five predefined entities and numeric character references; anything
/// else would need a DTD, which we refuse.
fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn round_trips_hostile_strings() {
        let original = fields(&[
            ("body", "苹果 & <梨> ]]> \"quoted\" 'single' ]]]]>"),
            ("total_fee", "1234"),
            ("attach", ""),
            ("detail", "{\"goods_detail\":[{\"goods_name\":\"<b>\"}]}"),
        ]);
        assert_eq!(decode(encode(&original).as_bytes()).unwrap(), original);
    }

    #[test]
    fn decodes_cdata_and_escaped_text_alike() {
        let body = "<xml><a><![CDATA[x&y]]></a><b>x&amp;y</b><c>&#x4E2D;&#25991;</c><d/></xml>";
        let decoded = decode(body.as_bytes()).unwrap();
        assert_eq!(decoded.get("a"), Some("x&y"));
        assert_eq!(decoded.get("b"), Some("x&y"));
        assert_eq!(decoded.get("c"), Some("中文"));
        assert_eq!(decoded.get("d"), Some(""));
    }

    #[test]
    fn decodes_a_real_answer_with_whitespace() {
        let body = "<?xml version=\"1.0\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>332</total_fee>\n</xml>\n";
        let decoded = decode(body.as_bytes()).unwrap();
        assert_eq!(decoded.get("return_code"), Some("SUCCESS"));
        assert_eq!(decoded.get("total_fee"), Some("332"));
        assert_eq!(decoded.len(), 2);
    }

    /// Tells whether an error is the expected kind.
    type Expect = fn(&XmlError) -> bool;

    #[test]
    fn refuses_what_is_not_a_flat_map() {
        let cases: &[(&str, Expect)] = &[
            (
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><a>&e;</a></xml>",
                |e| matches!(e, XmlError::Doctype),
            ),
            ("<xml><a>&e;</a></xml>", |e| {
                matches!(e, XmlError::UnknownEntity(_))
            }),
            ("<xml><a><b>1</b></a></xml>", |e| {
                matches!(e, XmlError::Nested(_))
            }),
            ("<xml><a>1</a><a>2</a></xml>", |e| {
                matches!(e, XmlError::Duplicate(_))
            }),
            ("<html><body>502 Bad Gateway</body></html>", |e| {
                matches!(e, XmlError::WrongRoot(_))
            }),
            ("<xml><a>1</a>", |e| matches!(e, XmlError::Malformed(_))),
            ("<xml>loose<a>1</a></xml>", |e| {
                matches!(e, XmlError::StrayText)
            }),
            ("", |e| matches!(e, XmlError::Malformed(_))),
            ("<xml></xml><xml></xml>", |e| {
                matches!(e, XmlError::StrayText)
            }),
        ];
        for (body, expected) in cases {
            let err = decode(body.as_bytes()).expect_err(body);
            assert!(expected(&err), "{body}: {err:?}");
        }
        assert_eq!(decode(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
        let huge = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_BODY));
        assert!(matches!(
            decode(huge.as_bytes()),
            Err(XmlError::TooLarge(_))
        ));
    }

    proptest! {
        #[test]
        fn any_text_round_trips(values in proptest::collection::vec("[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,40}", 1..6)) {
            let original: Fields = values.iter().enumerate().map(|(i, v)| (format!("f{i}"), v.clone())).collect();
            let decoded = decode(encode(&original).as_bytes()).unwrap();
            // CDATA keeps whitespace and line ends except that XML folds CR LF to LF.
            let normalised: Fields = original.iter().map(|(k, v)| (k, v.replace("\r\n", "\n").replace('\r', "\n"))).collect();
            prop_assert_eq!(decoded, normalised);
        }
    }
}
