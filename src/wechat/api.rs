//! Typed requests, and the classification of answers into the classes of
//! PROTOCOL.md. Classification is the only place that decides what an answer
//! means; everything after it works with the enums below.
//!
//! Order of reading (微信公众号支付接口文档, 协议规则): `return_code`, then the signature and our
//! identity, then `result_code` / `err_code`, then `trade_state`.

use std::fmt;

use rand::RngExt;

use super::sign::{ApiKey, SignType, sign_request, verify};
use super::xml::{Fields, XmlError};
use crate::domain::{AuthCode, Fen, OutTradeNo};

/// The merchant account we speak for.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub appid: String,
    pub mch_id: String,
    pub sub_appid: Option<String>,
    pub sub_mch_id: Option<String>,
    pub key: ApiKey,
    pub sign_type: SignType,
}

/// `body` limit in bytes: 提交付款码支付 says string(32), current docs 128; WeChat
/// counts bytes, so a Chinese description is cut on a character boundary.
pub const BODY_MAX_BYTES: usize = 128;

/// Error codes after which no money moved (PROTOCOL.md, FAILED class).
pub const DEFINITE_FAILURES: &[&str] = &[
    "AUTHCODEEXPIRE",
    "NOTENOUGH",
    "NOTSUPORTCARD",
    "AUTH_CODE_ERROR",
    "AUTH_CODE_INVALID",
    "TRADE_ERROR",
    "BUYER_MISMATCH",
    "ORDERCLOSED",
    "ORDERREVERSED",
    "PARAM_ERROR",
    "LACK_PARAMS",
    "NOAUTH",
    "SIGNERROR",
    "XML_FORMAT_ERROR",
    "NOT_UTF8",
    "REQUIRE_POST_METHOD",
    "APPID_NOT_EXIST",
    "MCHID_NOT_EXIST",
    "APPID_MCHID_NOT_MATCH",
];

/// What the terminal wants to buy.
#[derive(Debug, Clone)]
pub struct MicropayOrder<'a> {
    pub out_trade_no: &'a OutTradeNo,
    pub total_fee: Fen,
    pub body: &'a str,
    pub auth_code: &'a AuthCode,
    pub device_info: &'a str,
    pub spbill_create_ip: &'a str,
}

/// A fresh 32-character nonce_str.
pub fn nonce() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The description as WeChat accepts it: no control characters (XML cannot
/// carry most of them), at most [`BODY_MAX_BYTES`] bytes.
pub fn body_for_wire(body: &str) -> String {
    let clean: String = body.chars().filter(|c| !c.is_control()).collect();
    let mut end = clean.len().min(BODY_MAX_BYTES);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].trim().to_string()
}

pub(super) fn signed(mut fields: Fields, merchant: &Merchant) -> Fields {
    sign_request(&mut fields, &merchant.key, merchant.sign_type);
    fields
}

pub(super) fn identity(merchant: &Merchant, nonce: &str) -> Fields {
    let mut fields = Fields::new();
    fields
        .set("appid", merchant.appid.as_str())
        .set("mch_id", merchant.mch_id.as_str())
        .set_opt("sub_appid", merchant.sub_appid.as_deref())
        .set_opt("sub_mch_id", merchant.sub_mch_id.as_deref())
        .set("nonce_str", nonce);
    fields
}

pub fn micropay_request(merchant: &Merchant, order: &MicropayOrder<'_>, nonce: &str) -> Fields {
    let mut fields = identity(merchant, nonce);
    fields
        .set("device_info", order.device_info)
        .set("body", body_for_wire(order.body))
        .set("out_trade_no", order.out_trade_no.as_str())
        .set("total_fee", order.total_fee.0.to_string())
        .set("fee_type", "CNY")
        .set("spbill_create_ip", order.spbill_create_ip)
        .set("auth_code", order.auth_code.expose());
    signed(fields, merchant)
}

pub fn query_request(merchant: &Merchant, out_trade_no: &OutTradeNo, nonce: &str) -> Fields {
    let mut fields = identity(merchant, nonce);
    fields.set("out_trade_no", out_trade_no.as_str());
    signed(fields, merchant)
}

pub fn reverse_request(merchant: &Merchant, out_trade_no: &OutTradeNo, nonce: &str) -> Fields {
    query_request(merchant, out_trade_no, nonce)
}

/// A signed downloadbill (下载交易账单) request for the ALL bill of `date`
/// (Beijing time), gzipped by WeChat when `gzip` (tar_type=GZIP). The answer
/// is read by `client::GatewayClient::download_bill` and classified by
/// [`super::bill::classify_download`].
pub fn download_bill_request(merchant: &Merchant, date: time::Date, gzip: bool) -> Fields {
    let mut fields = identity(merchant, &nonce());
    fields
        .set(
            "bill_date",
            format!(
                "{:04}{:02}{:02}",
                date.year(),
                u8::from(date.month()),
                date.day()
            ),
        )
        .set("bill_type", "ALL");
    if gzip {
        fields.set("tar_type", "GZIP");
    }
    signed(fields, merchant)
}

/// Why the outcome of a call is not known. Never a success, never a failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unclear {
    /// The connection could not even be opened (refused, no route, DNS, a
    /// connect timeout, a failed TLS handshake): no byte of the request left
    /// the till. For a micropay that is definite — nothing was charged.
    Unreachable(String),
    /// No usable answer: connection reset, timeout, HTTP error page.
    Transport(String),
    /// An answer we cannot believe: unparseable, bad signature, not about our
    /// merchant, order or amount.
    Untrusted(String),
    /// The gateway itself says it does not know, or says something we have no
    /// definite meaning for (SYSTEMERROR, BANKERROR, ORDERPAID, …).
    Gateway { code: String, description: String },
}

impl Unclear {
    /// The code to journal: the gateway's, or what kind of trouble it was.
    pub fn code(&self) -> &str {
        match self {
            Unclear::Unreachable(_) => "UNREACHABLE",
            Unclear::Transport(_) => "TRANSPORT",
            Unclear::Untrusted(_) => "UNTRUSTED",
            Unclear::Gateway { code, .. } => code,
        }
    }
}

impl fmt::Display for Unclear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unclear::Unreachable(why) => write!(f, "the gateway could not be reached: {why}"),
            Unclear::Transport(why) => write!(f, "no answer from the gateway: {why}"),
            Unclear::Untrusted(why) => write!(f, "answer not trusted: {why}"),
            Unclear::Gateway { code, description } if description.is_empty() => {
                write!(f, "gateway says {code}")
            }
            Unclear::Gateway { code, description } => {
                write!(f, "gateway says {code} ({description})")
            }
        }
    }
}

/// A definite refusal: the gateway's code and its own description.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Refusal {
    pub code: String,
    pub description: String,
}

/// What a verified payment answer tells us.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Settlement {
    pub transaction_id: String,
    pub time_end: Option<String>,
    pub cash_fee: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MicropayOutcome {
    Paid(Settlement),
    /// USERPAYING: the customer must confirm on the phone.
    Pending,
    Unknown(Unclear),
    Failed(Refusal),
    /// ORDERPAID or OUT_TRADE_NO_USED on the first micropay of a number we
    /// just minted: an earlier request with this number reached WeChat, and it
    /// was not ours (the till sends one micropay per number). This customer
    /// was not charged; the number belongs to someone else's order, so it is
    /// never queried or reversed.
    NumberTaken(Refusal),
    /// The micropay never left: its connection could not be opened. Nobody
    /// was charged; the payment may simply be tried again.
    Unreachable(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryOutcome {
    Paid(Settlement),
    /// NOTPAY, USERPAYING, ACCEPT: not settled yet.
    NotSettled(String),
    /// PAYERROR: failed, the documents say to reverse.
    PayError(String),
    /// CLOSED or REVOKED: no money moved, or it was returned.
    Closed(String),
    /// REFUND: paid, then refunded by someone.
    Refunded,
    Unknown(Unclear),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReverseOutcome {
    /// `recall=N`: the order is closed; a payment, if any, is returned.
    Reversed,
    /// `recall=Y`, an error answer that may yet succeed (SYSTEMERROR,
    /// USERPAYING, …), or no trustworthy answer: reverse again.
    Again(Unclear),
    /// An answer that can never succeed ([`REVERSE_NEVER_SUCCEEDS`]): a person must look.
    Refused(Refusal),
}

/// What an answer must match to be about our request.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub merchant: &'a Merchant,
    pub out_trade_no: &'a OutTradeNo,
    pub total_fee: Fen,
    /// WeChat's number for our payment, once a trusted answer named it.
    pub transaction_id: Option<&'a str>,
}

/// A call that produced no decodable answer (see `client`).
pub type Answer = Result<Fields, Unclear>;

impl From<XmlError> for Unclear {
    fn from(e: XmlError) -> Self {
        Unclear::Untrusted(e.to_string())
    }
}

/// The checks shared by every answer with `return_code=SUCCESS`: the
/// signature over every returned field, and that it speaks of our merchant.
fn verified(fields: &Fields, expected: &Expected<'_>) -> Result<(), Unclear> {
    let merchant = expected.merchant;
    if !verify(fields, &merchant.key, merchant.sign_type) {
        return Err(Unclear::Untrusted(
            "the signature does not match (check the API key and sign_type)".into(),
        ));
    }
    let mismatch = |name: &str, ours: &str| match fields.get(name) {
        Some(theirs) if theirs == ours => None,
        Some(theirs) => Some(format!("{name} is {theirs:?}, ours is {ours:?}")),
        None => Some(format!("{name} is missing")),
    };
    let mut problems = vec![
        mismatch("appid", &merchant.appid),
        mismatch("mch_id", &merchant.mch_id),
    ];
    if let Some(sub) = &merchant.sub_mch_id {
        problems.push(mismatch("sub_mch_id", sub));
    }
    match problems.into_iter().flatten().next() {
        Some(problem) => Err(Unclear::Untrusted(problem)),
        None => Ok(()),
    }
}

/// For an answer that says "paid": the order and amount must be ours. We
/// check `total_fee`, not `cash_fee`, which is 0 when coupons pay everything.
fn settlement(fields: &Fields, expected: &Expected<'_>) -> Result<Settlement, Unclear> {
    let ours = expected.out_trade_no.as_str();
    match fields.get("out_trade_no") {
        Some(no) if no == ours => {}
        other => {
            return Err(Unclear::Untrusted(format!(
                "out_trade_no is {other:?}, ours is {ours:?}"
            )));
        }
    }
    let fee = expected.total_fee.0.to_string();
    match fields.get("total_fee") {
        Some(total) if total == fee => {}
        other => {
            return Err(Unclear::Untrusted(format!(
                "total_fee is {other:?}, ours is {fee}"
            )));
        }
    }
    let transaction_id = match fields.get("transaction_id") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => {
            return Err(Unclear::Untrusted(
                "a paid answer without transaction_id".into(),
            ));
        }
    };
    Ok(Settlement {
        transaction_id,
        time_end: fields.get("time_end").map(str::to_string),
        cash_fee: fields.get("cash_fee").and_then(|f| f.parse().ok()),
    })
}

/// Error codes that, on the one micropay sent for a number, mean an earlier
/// request with the same number reached WeChat: someone else's.
pub const NUMBER_TAKEN: &[&str] = &["ORDERPAID", "OUT_TRADE_NO_USED"];

/// An answer counts only when it is about our order: a signed answer about
/// another one (misrouted, replayed through a proxy) says nothing about ours,
/// in any trade state. A query answer must name our out_trade_no; a reverse
/// answer, which WeChat sends without it, must not name another. Once the
/// order's transaction_id is known, an answer naming another is not ours either.
fn about_our_order(
    fields: &Fields,
    expected: &Expected<'_>,
    number_required: bool,
) -> Result<(), Unclear> {
    let ours = expected.out_trade_no.as_str();
    match fields.get("out_trade_no") {
        Some(no) if no == ours => {}
        None if !number_required => {}
        other => {
            return Err(Unclear::Untrusted(format!(
                "an answer about another order: out_trade_no is {other:?}, ours is {ours:?}"
            )));
        }
    }
    match (expected.transaction_id, fields.get("transaction_id")) {
        (Some(ours), Some(theirs)) if !theirs.is_empty() && theirs != ours => {
            Err(Unclear::Untrusted(format!(
                "an answer about another payment: transaction_id is {theirs:?}, ours is {ours:?}"
            )))
        }
        _ => Ok(()),
    }
}

/// The business layer of an answer, once transport and trust are settled.
pub(super) enum Business<'f> {
    Success,
    Error { code: &'f str, description: &'f str },
}

/// Reads `return_code`; for SUCCESS verifies and returns the business layer.
/// `Err(Ok(refusal))` is a `return_code=FAIL` that complains about our
/// request (signature, parameters): it was refused before any processing.
pub(super) fn layers<'f>(
    fields: &'f Fields,
    expected: &Expected<'_>,
) -> Result<Business<'f>, Result<Refusal, Unclear>> {
    match fields.get("return_code") {
        Some("SUCCESS") => {}
        Some("FAIL") => {
            let msg = fields.get("return_msg").unwrap_or("");
            return Err(match request_complaint(msg) {
                Some(code) => Ok(Refusal {
                    code: code.to_string(),
                    description: msg.to_string(),
                }),
                None => Err(Unclear::Gateway {
                    code: "FAIL".into(),
                    description: msg.to_string(),
                }),
            });
        }
        other => return Err(Err(Unclear::Untrusted(format!("return_code is {other:?}")))),
    }
    verified(fields, expected).map_err(Err)?;
    match fields.get("result_code") {
        Some("SUCCESS") => Ok(Business::Success),
        Some("FAIL") => Ok(Business::Error {
            code: fields.get("err_code").unwrap_or(""),
            description: fields.get("err_code_des").unwrap_or(""),
        }),
        other => Err(Err(Unclear::Untrusted(format!("result_code is {other:?}")))),
    }
}

/// A `return_msg` that blames our request's form: the gateway rejected it
/// before looking at the payment, so no money can have moved.
fn request_complaint(return_msg: &str) -> Option<&'static str> {
    let msg = return_msg.to_ascii_lowercase();
    if msg.contains("签名") || msg.contains("sign") {
        Some("SIGNERROR")
    } else if msg.contains("xml") {
        Some("XML_FORMAT_ERROR")
    } else if msg.contains("参数") || msg.contains("param") || msg.contains("缺少") {
        Some("PARAM_ERROR")
    } else {
        None
    }
}

pub fn classify_micropay(answer: Answer, expected: &Expected<'_>) -> MicropayOutcome {
    let fields = match answer {
        Ok(fields) => fields,
        Err(Unclear::Unreachable(why)) => return MicropayOutcome::Unreachable(why),
        Err(unclear) => return MicropayOutcome::Unknown(unclear),
    };
    match layers(&fields, expected) {
        Err(Ok(refusal)) => MicropayOutcome::Failed(refusal),
        Err(Err(unclear)) => MicropayOutcome::Unknown(unclear),
        Ok(Business::Success) => match settlement(&fields, expected) {
            Ok(paid) => MicropayOutcome::Paid(paid),
            Err(unclear) => MicropayOutcome::Unknown(unclear),
        },
        Ok(Business::Error {
            code: "USERPAYING", ..
        }) => MicropayOutcome::Pending,
        Ok(Business::Error { code, description }) if DEFINITE_FAILURES.contains(&code) => {
            MicropayOutcome::Failed(Refusal {
                code: code.to_string(),
                description: description.to_string(),
            })
        }
        Ok(Business::Error { code, description }) if NUMBER_TAKEN.contains(&code) => {
            MicropayOutcome::NumberTaken(Refusal {
                code: code.to_string(),
                description: description.to_string(),
            })
        }
        // SYSTEMERROR, BANKERROR and anything unlisted: money may have moved.
        Ok(Business::Error { code, description }) => MicropayOutcome::Unknown(Unclear::Gateway {
            code: code.to_string(),
            description: description.to_string(),
        }),
    }
}

pub fn classify_query(answer: Answer, expected: &Expected<'_>) -> QueryOutcome {
    let fields = match answer {
        Ok(fields) => fields,
        Err(unclear) => return QueryOutcome::Unknown(unclear),
    };
    let gateway = |code: &str, description: &str| {
        QueryOutcome::Unknown(Unclear::Gateway {
            code: code.to_string(),
            description: description.to_string(),
        })
    };
    match layers(&fields, expected) {
        Err(Ok(refusal)) => gateway(&refusal.code, &refusal.description),
        Err(Err(unclear)) => QueryOutcome::Unknown(unclear),
        // ORDERNOTEXIST, SYSTEMERROR, …: the query did not tell.
        Ok(Business::Error { code, description }) => gateway(code, description),
        Ok(Business::Success) => {
            if let Err(unclear) = about_our_order(&fields, expected, true) {
                return QueryOutcome::Unknown(unclear);
            }
            let state = fields.get("trade_state").unwrap_or("");
            match state {
                "SUCCESS" => match settlement(&fields, expected) {
                    Ok(paid) => QueryOutcome::Paid(paid),
                    Err(unclear) => QueryOutcome::Unknown(unclear),
                },
                "REFUND" => QueryOutcome::Refunded,
                "NOTPAY" | "USERPAYING" | "ACCEPT" => QueryOutcome::NotSettled(state.to_string()),
                "PAYERROR" => {
                    QueryOutcome::PayError(fields.get("trade_state_desc").unwrap_or("").to_string())
                }
                "CLOSED" | "REVOKED" => QueryOutcome::Closed(state.to_string()),
                other => QueryOutcome::Unknown(Unclear::Untrusted(format!(
                    "unknown trade_state {other:?}"
                ))),
            }
        }
    }
}

pub fn classify_reverse(answer: Answer, expected: &Expected<'_>) -> ReverseOutcome {
    let fields = match answer {
        Ok(fields) => fields,
        Err(unclear) => return ReverseOutcome::Again(unclear),
    };
    let business = layers(&fields, expected).and_then(|business| {
        about_our_order(&fields, expected, false)
            .map(|()| business)
            .map_err(Err)
    });
    match business {
        Err(Ok(refusal)) => ReverseOutcome::Refused(refusal),
        Err(Err(unclear)) => ReverseOutcome::Again(unclear),
        Ok(Business::Success) => match fields.get("recall") {
            Some("N") => ReverseOutcome::Reversed,
            Some("Y") => ReverseOutcome::Again(Unclear::Gateway {
                code: "RECALL".into(),
                description: "recall=Y: the gateway asks to reverse again".into(),
            }),
            other => ReverseOutcome::Again(Unclear::Untrusted(format!("recall is {other:?}"))),
        },
        Ok(Business::Error { code, description }) if reverse_never_succeeds(code).is_some() => {
            ReverseOutcome::Refused(Refusal {
                code: code.to_string(),
                description: description.to_string(),
            })
        }
        // SYSTEMERROR, USERPAYING (正在支付中不能发起撤销: the customer is still
        // paying), ORDERNOTEXIST (a micropay still on its way), codes we do
        // not know: asked again after payment.reverse_retry_interval_ms.
        Ok(Business::Error { code, description }) => ReverseOutcome::Again(Unclear::Gateway {
            code: code.to_string(),
            description: description.to_string(),
        }),
    }
}

/// The reverse answers that can never succeed however often the same
/// request is repeated, each with its reason. They end the order at once as
/// needing a person. Every other error answer is retried within
/// `payment.reverse_max_attempts`, as WeChat's 付款码支付 page says:
/// "当撤销无返回或错误时,请再次调用".
pub const REVERSE_NEVER_SUCCEEDS: &[(&str, &str)] = &[
    (
        "REVERSE_EXPIRE",
        "the order is older than the 7 days within which WeChat reverses; refund it instead",
    ),
    (
        "INVALID_TRANSACTIONID",
        "WeChat knows no payment by the transaction_id sent",
    ),
    // Complaints about the request itself: the same request gets the same answer.
    (
        "SIGNERROR",
        "the signature is refused: check merchant.sign_type and the API key",
    ),
    ("PARAM_ERROR", "a parameter of the request is refused"),
    ("LACK_PARAMS", "the request lacks a parameter"),
    ("XML_FORMAT_ERROR", "the request's XML is refused"),
    ("NOT_UTF8", "the request is not UTF-8"),
    ("REQUIRE_POST_METHOD", "the request was not a POST"),
    (
        "NOAUTH",
        "the merchant may not use this API: see the merchant platform",
    ),
    ("APPID_NOT_EXIST", "merchant.appid is not known to WeChat"),
    ("MCHID_NOT_EXIST", "merchant.mch_id is not known to WeChat"),
    (
        "APPID_MCHID_NOT_MATCH",
        "merchant.appid and merchant.mch_id are not bound together",
    ),
];

/// Why a reverse answered `code` can never succeed, if it cannot.
pub fn reverse_never_succeeds(code: &str) -> Option<&'static str> {
    REVERSE_NEVER_SUCCEEDS
        .iter()
        .find(|(listed, _)| *listed == code)
        .map(|(_, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::sign::sign;

    fn merchant() -> Merchant {
        Merchant {
            appid: "wxd930ea5d5a258f4f".into(),
            mch_id: "10000100".into(),
            sub_appid: None,
            sub_mch_id: None,
            key: ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
            sign_type: SignType::Md5,
        }
    }

    fn order_no() -> OutTradeNo {
        OutTradeNo::parse("T0120261123142353000001").unwrap()
    }

    /// What the till expects of the answers about [`order_no`], ¥12.34,
    /// before it knows a transaction id.
    fn expected_of<'a>(m: &'a Merchant, no: &'a OutTradeNo) -> Expected<'a> {
        Expected {
            merchant: m,
            out_trade_no: no,
            total_fee: Fen(1234),
            transaction_id: None,
        }
    }

    /// A correctly signed answer with the given business fields.
    fn answer(merchant: &Merchant, pairs: &[(&str, &str)]) -> Fields {
        let mut fields: Fields = [
            ("return_code", "SUCCESS"),
            ("return_msg", "OK"),
            ("appid", merchant.appid.as_str()),
            ("mch_id", merchant.mch_id.as_str()),
            ("nonce_str", "EBObtckqDbde2wll"),
        ]
        .into_iter()
        .collect();
        for (k, v) in pairs {
            fields.set(k, *v);
        }
        let signature = sign(&fields, &merchant.key, merchant.sign_type);
        fields.set("sign", signature);
        fields
    }

    fn paid_fields() -> Vec<(&'static str, &'static str)> {
        vec![
            ("result_code", "SUCCESS"),
            ("out_trade_no", "T0120261123142353000001"),
            ("total_fee", "1234"),
            ("cash_fee", "1234"),
            ("transaction_id", "4200001212282111030178445712"),
            ("time_end", "20261123142400"),
        ]
    }

    fn error(code: &str) -> Vec<(&str, &str)> {
        vec![
            ("result_code", "FAIL"),
            ("err_code", code),
            ("err_code_des", "描述"),
        ]
    }

    fn micropay(fields: Fields) -> MicropayOutcome {
        let m = merchant();
        let no = order_no();
        classify_micropay(Ok(fields), &expected_of(&m, &no))
    }

    #[test]
    fn request_carries_every_required_field_and_a_valid_sign() {
        let m = merchant();
        let no = order_no();
        let code = AuthCode::parse("134539517967686076").unwrap();
        let order = MicropayOrder {
            out_trade_no: &no,
            total_fee: Fen(1234),
            body: "咖啡\u{7}",
            auth_code: &code,
            device_info: "T01",
            spbill_create_ip: "127.0.0.1",
        };
        let fields = micropay_request(&m, &order, "n0nce");
        for required in [
            "appid",
            "mch_id",
            "nonce_str",
            "sign",
            "body",
            "out_trade_no",
            "total_fee",
            "spbill_create_ip",
            "auth_code",
        ] {
            assert!(fields.get(required).is_some(), "{required} missing");
        }
        assert_eq!(fields.get("body"), Some("咖啡"));
        assert_eq!(fields.get("total_fee"), Some("1234"));
        assert!(verify(&fields, &m.key, SignType::Md5));
        assert_eq!(fields.get("sign_type"), None);

        let hmac = Merchant {
            sign_type: SignType::HmacSha256,
            ..m
        };
        let fields = query_request(&hmac, &no, "n0nce");
        assert_eq!(fields.get("sign_type"), Some("HMAC-SHA256"));
        assert!(verify(&fields, &hmac.key, SignType::HmacSha256));
    }

    #[test]
    fn the_bill_request_names_the_day_and_is_signed() {
        let merchant = merchant();
        let date = time::macros::date!(2025 - 03 - 01);
        let fields = download_bill_request(&merchant, date, true);
        assert_eq!(fields.get("bill_date"), Some("20250301"));
        assert_eq!(fields.get("bill_type"), Some("ALL"));
        assert_eq!(fields.get("tar_type"), Some("GZIP"));
        assert_eq!(fields.get("appid"), Some(merchant.appid.as_str()));
        assert_eq!(fields.get("nonce_str").map(str::len), Some(32));
        assert!(verify(&fields, &merchant.key, merchant.sign_type));
        let plain = download_bill_request(&merchant, date, false);
        assert_eq!(plain.get("tar_type"), None);
    }

    #[test]
    fn body_is_cut_on_a_character_boundary_by_bytes() {
        let long = "咖".repeat(60); // 180 bytes
        let cut = body_for_wire(&long);
        assert!(cut.len() <= BODY_MAX_BYTES);
        assert_eq!(cut, "咖".repeat(42));
    }

    #[test]
    fn nonces_are_32_alphanumerics_and_differ() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_verified_success_for_our_order_and_amount_is_paid() {
        let m = merchant();
        match micropay(answer(&m, &paid_fields())) {
            MicropayOutcome::Paid(s) => {
                assert_eq!(s.transaction_id, "4200001212282111030178445712");
                assert_eq!(s.cash_fee, Some(1234));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn coupons_with_indexed_fields_still_verify_and_cash_fee_zero_is_paid() {
        let m = merchant();
        let mut fields = paid_fields();
        fields.retain(|(k, _)| *k != "cash_fee");
        fields.extend([
            ("cash_fee", "0"),
            ("coupon_fee", "1234"),
            ("coupon_count", "1"),
            ("coupon_id_0", "2000"),
            ("coupon_fee_0", "1234"),
        ]);
        assert!(matches!(
            micropay(answer(&m, &fields)),
            MicropayOutcome::Paid(_)
        ));
    }

    #[test]
    fn success_that_cannot_be_trusted_is_unknown_never_paid() {
        let m = merchant();
        let tampered = {
            let mut f = answer(&m, &paid_fields());
            f.set("total_fee", "1");
            f
        };
        let other_merchant = answer(
            &Merchant {
                mch_id: "999".into(),
                ..merchant()
            },
            &paid_fields(),
        );
        let wrong_amount = answer(&m, &[paid_fields(), vec![("total_fee", "1235")]].concat());
        let wrong_order = answer(
            &m,
            &[paid_fields(), vec![("out_trade_no", "OTHER")]].concat(),
        );
        let no_transaction = {
            let mut f = paid_fields();
            f.retain(|(k, _)| *k != "transaction_id");
            answer(&m, &f)
        };
        let unsigned = {
            let mut f = answer(&m, &paid_fields());
            f.remove("sign");
            f
        };
        for fields in [
            tampered,
            other_merchant,
            wrong_amount,
            wrong_order,
            no_transaction,
            unsigned,
        ] {
            assert!(matches!(
                micropay(fields),
                MicropayOutcome::Unknown(Unclear::Untrusted(_))
            ));
        }
    }

    #[test]
    fn every_micropay_error_code_falls_in_its_class() {
        let m = merchant();
        assert_eq!(
            micropay(answer(&m, &error("USERPAYING"))),
            MicropayOutcome::Pending
        );
        for code in DEFINITE_FAILURES {
            match micropay(answer(&m, &error(code))) {
                MicropayOutcome::Failed(r) => assert_eq!(r.code, *code),
                other => panic!("{code}: {other:?}"),
            }
        }
        for code in ["SYSTEMERROR", "BANKERROR", "SOMETHING_NEW", ""] {
            assert!(
                matches!(
                    micropay(answer(&m, &error(code))),
                    MicropayOutcome::Unknown(Unclear::Gateway { .. })
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn a_definite_failure_must_be_signed_too() {
        let m = merchant();
        let mut forged = answer(&m, &error("NOTENOUGH"));
        forged.set("sign", "00000000000000000000000000000000");
        assert!(matches!(
            micropay(forged),
            MicropayOutcome::Unknown(Unclear::Untrusted(_))
        ));
    }

    #[test]
    fn return_code_fail_is_failed_only_when_it_blames_our_request() {
        let fail = |msg: &str| -> Fields {
            [("return_code", "FAIL"), ("return_msg", msg)]
                .into_iter()
                .collect()
        };
        assert!(
            matches!(micropay(fail("签名失败")), MicropayOutcome::Failed(r) if r.code == "SIGNERROR")
        );
        assert!(
            matches!(micropay(fail("参数格式校验错误")), MicropayOutcome::Failed(r) if r.code == "PARAM_ERROR")
        );
        assert!(
            matches!(micropay(fail("XML格式错误")), MicropayOutcome::Failed(r) if r.code == "XML_FORMAT_ERROR")
        );
        assert!(matches!(
            micropay(fail("系统繁忙")),
            MicropayOutcome::Unknown(Unclear::Gateway { .. })
        ));
        let weird: Fields = [("return_code", "MAYBE")].into_iter().collect();
        assert!(matches!(
            micropay(weird),
            MicropayOutcome::Unknown(Unclear::Untrusted(_))
        ));
    }

    #[test]
    fn transport_trouble_is_unknown() {
        let m = merchant();
        let no = order_no();
        let expected = expected_of(&m, &no);
        let outcome = classify_micropay(Err(Unclear::Transport("timed out".into())), &expected);
        assert_eq!(
            outcome,
            MicropayOutcome::Unknown(Unclear::Transport("timed out".into()))
        );
        assert!(matches!(
            classify_query(Err(Unclear::Transport("x".into())), &expected),
            QueryOutcome::Unknown(_)
        ));
        assert!(matches!(
            classify_reverse(Err(Unclear::Transport("x".into())), &expected),
            ReverseOutcome::Again(_)
        ));
    }

    #[test]
    fn every_trade_state_falls_in_its_class() {
        let m = merchant();
        let no = order_no();
        let expected = expected_of(&m, &no);
        let query = |state: &str| {
            let mut fields = paid_fields();
            fields.push(("trade_state", state));
            classify_query(Ok(answer(&m, &fields)), &expected)
        };
        assert!(matches!(query("SUCCESS"), QueryOutcome::Paid(_)));
        assert_eq!(query("REFUND"), QueryOutcome::Refunded);
        for state in ["NOTPAY", "USERPAYING", "ACCEPT"] {
            assert_eq!(query(state), QueryOutcome::NotSettled(state.into()));
        }
        assert!(matches!(query("PAYERROR"), QueryOutcome::PayError(_)));
        assert_eq!(query("CLOSED"), QueryOutcome::Closed("CLOSED".into()));
        assert_eq!(query("REVOKED"), QueryOutcome::Closed("REVOKED".into()));
        assert!(matches!(
            query("WHATEVER"),
            QueryOutcome::Unknown(Unclear::Untrusted(_))
        ));
        for code in ["ORDERNOTEXIST", "SYSTEMERROR"] {
            let outcome = classify_query(Ok(answer(&m, &error(code))), &expected);
            assert!(
                matches!(outcome, QueryOutcome::Unknown(Unclear::Gateway { code: c, .. }) if c == code)
            );
        }
        let mut wrong_amount = paid_fields();
        wrong_amount.extend([("trade_state", "SUCCESS"), ("total_fee", "1")]);
        assert!(matches!(
            classify_query(Ok(answer(&m, &wrong_amount)), &expected),
            QueryOutcome::Unknown(_)
        ));
    }

    #[test]
    fn a_signed_answer_about_another_order_is_unknown_in_every_state() {
        let m = merchant();
        let no = order_no();
        let expected = expected_of(&m, &no);
        for state in [
            "SUCCESS",
            "REFUND",
            "NOTPAY",
            "USERPAYING",
            "PAYERROR",
            "CLOSED",
            "REVOKED",
        ] {
            let mut fields = paid_fields();
            fields.retain(|(k, _)| *k != "out_trade_no");
            fields.extend([
                ("trade_state", state),
                ("out_trade_no", "T01OTHERORDER000001"),
            ]);
            let outcome = classify_query(Ok(answer(&m, &fields)), &expected);
            assert!(
                matches!(&outcome, QueryOutcome::Unknown(Unclear::Untrusted(why)) if why.contains("another order")),
                "{state}: {outcome:?}"
            );
            let mut missing = paid_fields();
            missing.retain(|(k, _)| *k != "out_trade_no");
            missing.push(("trade_state", state));
            assert!(matches!(
                classify_query(Ok(answer(&m, &missing)), &expected),
                QueryOutcome::Unknown(Unclear::Untrusted(_))
            ));
        }
        // Once the transaction id is known, an answer naming another payment is not ours.
        let known = Expected {
            transaction_id: Some("4200000000000000000000000000"),
            ..expected
        };
        let mut closed = paid_fields();
        closed.push(("trade_state", "CLOSED"));
        assert!(matches!(
            classify_query(Ok(answer(&m, &closed)), &known),
            QueryOutcome::Unknown(Unclear::Untrusted(_))
        ));
        assert_eq!(
            classify_query(Ok(answer(&m, &closed)), &expected),
            QueryOutcome::Closed("CLOSED".into())
        );
        let reversed_other = answer(
            &m,
            &[
                ("result_code", "SUCCESS"),
                ("recall", "N"),
                ("out_trade_no", "T01OTHERORDER000001"),
            ],
        );
        assert!(matches!(
            classify_reverse(Ok(reversed_other), &expected),
            ReverseOutcome::Again(Unclear::Untrusted(_))
        ));
    }

    #[test]
    fn a_number_someone_else_used_is_taken_not_unclear() {
        for code in NUMBER_TAKEN {
            assert_eq!(
                micropay(answer(&merchant(), &error(code))),
                MicropayOutcome::NumberTaken(Refusal {
                    code: code.to_string(),
                    description: "描述".into()
                })
            );
        }
        // Unsigned, it proves nothing: unclear.
        let mut forged = answer(&merchant(), &error("ORDERPAID"));
        forged.set("sign", "0".repeat(32));
        assert!(matches!(micropay(forged), MicropayOutcome::Unknown(_)));
    }

    #[test]
    fn reverse_answers_fall_in_their_class() {
        let m = merchant();
        let no = order_no();
        let expected = expected_of(&m, &no);
        let reverse = |pairs: &[(&str, &str)]| classify_reverse(Ok(answer(&m, pairs)), &expected);
        assert_eq!(
            reverse(&[("result_code", "SUCCESS"), ("recall", "N")]),
            ReverseOutcome::Reversed
        );
        assert!(matches!(
            reverse(&[("result_code", "SUCCESS"), ("recall", "Y")]),
            ReverseOutcome::Again(_)
        ));
        assert!(matches!(
            reverse(&[("result_code", "SUCCESS")]),
            ReverseOutcome::Again(_)
        ));
        assert!(matches!(
            reverse(&error("SYSTEMERROR")),
            ReverseOutcome::Again(_)
        ));
        for (code, _) in REVERSE_NEVER_SUCCEEDS {
            assert!(matches!(reverse(&error(code)), ReverseOutcome::Refused(r) if r.code == *code));
        }
        // WeChat's 付款码支付 page: on an error, call reverse again; the customer still paying included.
        for code in [
            "SYSTEMERROR",
            "USERPAYING",
            "TRADE_ERROR",
            "ORDERNOTEXIST",
            "INVALID_REQUEST",
            "BANKERROR",
            "SOMETHING_NEW",
            "",
        ] {
            assert!(
                matches!(reverse(&error(code)), ReverseOutcome::Again(Unclear::Gateway { code: c, .. }) if c == code),
                "{code}"
            );
        }
        let still_paying = reverse(&[
            ("result_code", "FAIL"),
            ("err_code", "USERPAYING"),
            ("err_code_des", "正在支付中不能发起撤销"),
        ]);
        assert_eq!(
            still_paying,
            ReverseOutcome::Again(Unclear::Gateway {
                code: "USERPAYING".into(),
                description: "正在支付中不能发起撤销".into()
            })
        );
        // A complaint in return_code=FAIL about our request cannot succeed either.
        let unsigned_fail: Fields = [("return_code", "FAIL"), ("return_msg", "签名错误")]
            .into_iter()
            .collect();
        assert!(matches!(
            classify_reverse(Ok(unsigned_fail), &expected),
            ReverseOutcome::Refused(r) if r.code == "SIGNERROR"
        ));
        let busy: Fields = [("return_code", "FAIL"), ("return_msg", "系统繁忙")]
            .into_iter()
            .collect();
        assert!(matches!(
            classify_reverse(Ok(busy), &expected),
            ReverseOutcome::Again(_)
        ));
        // A forged "never succeeds" proves nothing: reverse again.
        let mut forged = answer(&m, &error("REVERSE_EXPIRE"));
        forged.set("sign", "0".repeat(32));
        assert!(matches!(
            classify_reverse(Ok(forged), &expected),
            ReverseOutcome::Again(Unclear::Untrusted(_))
        ));
        let mut forged = answer(&m, &[("result_code", "SUCCESS"), ("recall", "N")]);
        forged.set("recall", "Y");
        assert!(matches!(
            classify_reverse(Ok(forged), &expected),
            ReverseOutcome::Again(Unclear::Untrusted(_))
        ));
    }

    mod fuzz {
        //! Arbitrary bytes and arbitrary field maps, signed right or wrong,
        //! through the decoder and every classifier: never a panic, never
        //! PAID (or reversed) unless the signature is valid and the answer is
        //! about our merchant, order and amount.

        use super::*;
        use crate::wechat::sign::sign;
        use crate::wechat::xml;
        use proptest::prelude::*;

        const OUR_NO: &str = "T0120261123142353000001";

        /// The names answers carry, a few look-alikes, and anything else.
        fn key() -> impl Strategy<Value = String> {
            prop_oneof![
                8 => proptest::sample::select(vec![
                    "return_code", "return_msg", "result_code", "err_code", "err_code_des",
                    "appid", "mch_id", "sub_mch_id", "out_trade_no", "total_fee", "cash_fee",
                    "transaction_id", "trade_state", "recall", "time_end", "nonce_str",
                    "sign_type", "coupon_fee_0", "APPID", "total_fee ",
                ])
                .prop_map(str::to_string),
                1 => "[a-z_]{1,12}",
            ]
        }

        /// Our values, values next to ours, and anything else.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                8 => proptest::sample::select(vec![
                    "SUCCESS", "FAIL", "N", "Y", "USERPAYING", "SYSTEMERROR", "REVOKED",
                    "wxd930ea5d5a258f4f", "wxd930ea5d5a258f4F", "10000100", "100001000",
                    OUR_NO, "T0120261123142353000002", "1234", "1235", "01234", "1234 ",
                    "4200001212282111030178445712", "", "签名失败", "参数错误",
                ])
                .prop_map(str::to_string),
                1 => "\\PC{0,24}",
            ]
        }

        #[derive(Debug, Clone, Copy)]
        enum Signing {
            None,
            Valid,
            OtherKey,
            OtherType,
            Garbage,
            /// Signed right, then one value changed.
            Tampered,
        }

        fn signing() -> impl Strategy<Value = Signing> {
            prop_oneof![
                1 => Just(Signing::None),
                4 => Just(Signing::Valid),
                1 => Just(Signing::OtherKey),
                1 => Just(Signing::OtherType),
                1 => Just(Signing::Garbage),
                1 => Just(Signing::Tampered),
            ]
        }

        /// A map that, half the time, starts from a paid answer for our
        /// order, so the interesting neighbourhood is explored.
        fn answer_map() -> impl Strategy<Value = Fields> {
            (
                any::<bool>(),
                proptest::collection::vec((key(), value()), 0..16),
                signing(),
            )
                .prop_map(|(from_paid, pairs, signing)| {
                    let m = merchant();
                    let mut fields = if from_paid {
                        let mut base = paid_fields();
                        base.push(("trade_state", "SUCCESS"));
                        base.push(("recall", "N"));
                        answer(&m, &base)
                    } else {
                        Fields::new()
                    };
                    fields.remove("sign");
                    for (k, v) in &pairs {
                        fields.set(k, v.as_str());
                    }
                    let signature = match signing {
                        Signing::None => None,
                        Signing::Valid | Signing::Tampered => {
                            Some(sign(&fields, &m.key, m.sign_type))
                        }
                        Signing::OtherKey => Some(sign(
                            &fields,
                            &ApiKey::new("0123456789abcdef0123456789abcdef"),
                            m.sign_type,
                        )),
                        Signing::OtherType => Some(sign(&fields, &m.key, SignType::HmacSha256)),
                        Signing::Garbage => Some("0".repeat(32)),
                    };
                    if let Some(signature) = signature {
                        fields.set("sign", signature);
                    }
                    if let Signing::Tampered = signing {
                        let first = fields
                            .iter()
                            .next()
                            .map(|(k, v)| (k.to_string(), v.to_string()));
                        if let Some((k, v)) = first.filter(|(k, _)| k != "sign") {
                            fields.set(&k, format!("{v}x"));
                        }
                    }
                    fields
                })
        }

        /// What every PAID must satisfy.
        fn trusted_and_ours(fields: &Fields) -> bool {
            let m = merchant();
            verify(fields, &m.key, m.sign_type)
                && fields.get("return_code") == Some("SUCCESS")
                && fields.get("result_code") == Some("SUCCESS")
                && fields.get("appid") == Some(m.appid.as_str())
                && fields.get("mch_id") == Some(m.mch_id.as_str())
        }

        fn paid_for_us(fields: &Fields) -> bool {
            trusted_and_ours(fields)
                && fields.get("out_trade_no") == Some(OUR_NO)
                && fields.get("total_fee") == Some("1234")
                && fields.get("transaction_id").is_some_and(|t| !t.is_empty())
        }

        /// Classifies `answer` every way; panics (failing the property) on a
        /// PAID or reversed that the fields do not justify.
        fn check(answer: Answer) -> Result<(), TestCaseError> {
            let m = merchant();
            let no = order_no();
            let expected = expected_of(&m, &no);
            let fields = answer.clone().ok();
            let holds = |p: fn(&Fields) -> bool| fields.as_ref().is_some_and(p);
            if let MicropayOutcome::Paid(_) = classify_micropay(answer.clone(), &expected) {
                prop_assert!(holds(paid_for_us), "micropay PAID from {fields:?}");
            }
            if let QueryOutcome::Paid(_) = classify_query(answer.clone(), &expected) {
                prop_assert!(
                    holds(paid_for_us)
                        && fields.as_ref().unwrap().get("trade_state") == Some("SUCCESS"),
                    "query PAID from {fields:?}"
                );
            }
            if let ReverseOutcome::Reversed = classify_reverse(answer, &expected) {
                prop_assert!(
                    holds(trusted_and_ours)
                        && fields.as_ref().unwrap().get("recall") == Some("N")
                        && fields
                            .as_ref()
                            .unwrap()
                            .get("out_trade_no")
                            .is_none_or(|n| n == OUR_NO),
                    "reversed from {fields:?}"
                );
            }
            Ok(())
        }

        /// XML-looking soup: the pieces a hostile body is made of.
        fn soup() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(vec![
                        "<xml>",
                        "</xml>",
                        "<return_code>",
                        "</return_code>",
                        "<sign>",
                        "</sign>",
                        "<a/>",
                        "<![CDATA[",
                        "]]>",
                        "&amp;",
                        "&#x4E2D;",
                        "&#0;",
                        "&e;",
                        "<!DOCTYPE x [<!ENTITY e \"x\">]>",
                        "<?xml version=\"1.0\"?>",
                        "<!-- c -->",
                        "SUCCESS",
                        "<",
                        ">",
                        "\u{0}",
                        "\r\n",
                    ])
                    .prop_map(|s| s.as_bytes().to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..8),
                ],
                0..40,
            )
            .prop_map(|parts| parts.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_bytes_never_panic_and_never_pay(bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..512),
                soup(),
            ]) {
                let answer: Answer = xml::decode(&bytes).map_err(Unclear::from);
                check(answer)?;
            }

            #[test]
            fn arbitrary_maps_pay_only_when_signed_and_ours(fields in answer_map()) {
                check(Ok(fields.clone()))?;
                // The same map as it arrives on the wire.
                if let Ok(decoded) = xml::decode(xml::encode(&fields).as_bytes()) {
                    check(Ok(decoded))?;
                }
            }

            #[test]
            fn a_valid_signature_over_a_paid_answer_for_another_order_or_amount_never_pays(
                field in proptest::sample::select(vec!["out_trade_no", "total_fee", "appid", "mch_id"]),
                other in value(),
            ) {
                let m = merchant();
                let mut pairs = paid_fields();
                pairs.push(("trade_state", "SUCCESS"));
                let mut fields: Fields = answer(&m, &pairs);
                fields.remove("sign");
                fields.set(field, other.as_str());
                let signature = sign(&fields, &m.key, m.sign_type);
                fields.set("sign", signature);
                let ours = match field {
                    "out_trade_no" => OUR_NO,
                    "total_fee" => "1234",
                    "appid" => m.appid.as_str(),
                    _ => m.mch_id.as_str(),
                };
                let paid = matches!(micropay(fields.clone()), MicropayOutcome::Paid(_));
                prop_assert_eq!(paid, other == ours, "{} = {:?}", field, other);
                check(Ok(fields))?;
            }
        }
    }
}
