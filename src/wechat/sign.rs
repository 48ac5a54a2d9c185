//! The v2 signature (微信公众号支付接口文档, 签名算法): every non-empty field except `sign`,
//! sorted by key, joined as `k=v&…`, then `&key=API_KEY`, hashed with MD5 or
//! HMAC-SHA256 and written as uppercase hex.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

use super::xml::Fields;

/// The merchant's API key. It never prints: `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
pub enum SignType {
    #[default]
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "HMAC-SHA256")]
    HmacSha256,
}

impl SignType {
    pub fn wire_name(self) -> &'static str {
        match self {
            SignType::Md5 => "MD5",
            SignType::HmacSha256 => "HMAC-SHA256",
        }
    }

    pub fn from_wire(name: &str) -> Option<Self> {
        match name {
            "MD5" => Some(SignType::Md5),
            "HMAC-SHA256" => Some(SignType::HmacSha256),
            _ => None,
        }
    }
}

/// The string that is hashed, without the key (useful in tests and for
/// explaining a SIGNERROR; it contains no secret).
pub fn signing_string(fields: &Fields) -> String {
    let mut pairs: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

pub fn sign(fields: &Fields, key: &ApiKey, sign_type: SignType) -> String {
    let mut text = signing_string(fields);
    text.push_str("&key=");
    text.push_str(key.reveal());
    match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(text.as_bytes())),
        SignType::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.reveal().as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(text.as_bytes());
            hex::encode_upper(mac.finalize().into_bytes())
        }
    }
}

/// True when `fields` carries a `sign` equal to the one we compute. Compared
/// in constant time, and case-sensitively as WeChat sends uppercase hex.
pub fn verify(fields: &Fields, key: &ApiKey, sign_type: SignType) -> bool {
    let Some(given) = fields.get("sign") else {
        return false;
    };
    let expected = sign(fields, key, sign_type);
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Adds `sign` (and `sign_type` when it is not the default) to a request.
pub fn sign_request(fields: &mut Fields, key: &ApiKey, sign_type: SignType) {
    if sign_type != SignType::Md5 {
        fields.set("sign_type", sign_type.wire_name());
    }
    fields.remove("sign");
    let signature = sign(fields, key, sign_type);
    fields.set("sign", signature);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical() -> Fields {
        [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
        .into_iter()
        .collect()
    }

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    #[test]
    fn md5_matches_the_documented_example() {
        assert_eq!(
            signing_string(&canonical()),
            "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA"
        );
        assert_eq!(
            sign(&canonical(), &ApiKey::new(KEY), SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn hmac_sha256_is_keyed_over_the_same_string() {
        // Computed with: printf '%s' "<string>&key=<key>" | openssl dgst -sha256 -hmac <key>
        assert_eq!(
            sign(&canonical(), &ApiKey::new(KEY), SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn the_documented_micropay_example_signs_to_its_true_md5() {
        // Seed 004 §3.2 prints C380BEC2…, a placeholder it reuses everywhere;
        // this is the MD5 of the string it shows (checked with md5sum).
        let fields: Fields = [
            ("appid", "wx930ea5d5a258f4f"),
            ("auth_code", "123456"),
            ("body", "test"),
            ("device_info", "123"),
            ("mch_id", "1900000109"),
            ("nonce_str", "960f228109051b9969f76c82bde183ac"),
            ("out_trade_no", "1400755861"),
            ("spbill_create_ip", "127.0.0.1"),
            ("sub_mch_id", "124"),
            ("total_fee", "1"),
        ]
        .into_iter()
        .collect();
        let key = ApiKey::new("8934e7d15453e97507ef794cf7b0519d");
        assert_eq!(
            sign(&fields, &key, SignType::Md5),
            "260D986E2E5DD07613D5960EC8EFDAF4"
        );
    }

    #[test]
    fn empty_values_and_sign_itself_are_left_out() {
        let mut with_noise = canonical();
        with_noise.set("sign", "WHATEVER").set("goods_tag", "");
        assert_eq!(signing_string(&with_noise), signing_string(&canonical()));
    }

    #[test]
    fn verification_rejects_a_tampered_field_or_sign() {
        let key = ApiKey::new(KEY);
        for sign_type in [SignType::Md5, SignType::HmacSha256] {
            let mut fields = canonical();
            sign_request(&mut fields, &key, sign_type);
            assert!(verify(&fields, &key, sign_type));
            assert!(!verify(&fields, &ApiKey::new("wrong"), sign_type));

            let mut tampered = fields.clone();
            tampered.set("body", "test2");
            assert!(!verify(&tampered, &key, sign_type));

            let mut added = fields.clone();
            added.set("coupon_fee_0", "1");
            assert!(!verify(&added, &key, sign_type));

            let mut unsigned = fields.clone();
            unsigned.remove("sign");
            assert!(!verify(&unsigned, &key, sign_type));

            let mut lowercase = fields.clone();
            let lower = lowercase.get("sign").unwrap().to_lowercase();
            lowercase.set("sign", lower);
            assert!(!verify(&lowercase, &key, sign_type));
        }
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(format!("{:?}", ApiKey::new(KEY)), "ApiKey(<redacted>)");
    }
}
