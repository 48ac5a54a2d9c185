//! 申请退款 (`/secapi/pay/refund`, mutual TLS) and 查询退款
//! (`/pay/refundquery`): the signed requests, and every answer classified
//! for the refund machine. An answer counts only when it is signed, names our
//! merchant and our order, and — for a query — our out_refund_no.

use super::api::{Business, Expected, Merchant, Refusal, Unclear, identity, layers, signed};
use super::xml::Fields;
use crate::domain::{Fen, OutTradeNo};
use crate::payment::refund::{RefundAnswer, RefundQueryAnswer, RefundStatus};

/// Codes after which the same refund is sent again unchanged.
pub const REFUND_RETRY: &[&str] = &["SYSTEMERROR", "BIZERR_NEED_RETRY"];

/// One refund of an order.
#[derive(Debug, Clone)]
pub struct RefundOrder<'a> {
    pub out_trade_no: &'a OutTradeNo,
    pub out_refund_no: &'a str,
    /// The order's whole amount, as WeChat wants it with every refund.
    pub total_fee: Fen,
    pub refund_fee: Fen,
    pub reason: Option<&'a str>,
}

pub fn refund_request(merchant: &Merchant, refund: &RefundOrder<'_>, nonce: &str) -> Fields {
    let mut fields = identity(merchant, nonce);
    fields
        .set("out_trade_no", refund.out_trade_no.as_str())
        .set("out_refund_no", refund.out_refund_no)
        .set("total_fee", refund.total_fee.0.to_string())
        .set("refund_fee", refund.refund_fee.0.to_string())
        .set_opt("refund_desc", refund.reason);
    signed(fields, merchant)
}

pub fn refund_query_request(merchant: &Merchant, out_refund_no: &str, nonce: &str) -> Fields {
    let mut fields = identity(merchant, nonce);
    fields.set("out_refund_no", out_refund_no);
    signed(fields, merchant)
}

fn untrusted(why: String) -> Unclear {
    Unclear::Untrusted(why)
}

/// A field the answer must carry, equal to ours: without it the answer may
/// be about another refund.
fn must_match(fields: &Fields, name: &str, ours: &str) -> Result<(), Unclear> {
    match fields.get(name) {
        Some(theirs) if theirs == ours => Ok(()),
        other => Err(untrusted(format!(
            "an answer about another refund: {name} is {other:?}, ours is {ours:?}"
        ))),
    }
}

pub fn classify_refund(
    answer: super::api::Answer,
    expected: &Expected<'_>,
    out_refund_no: &str,
) -> RefundAnswer {
    let fields = match answer {
        Ok(fields) => fields,
        Err(unclear) => return RefundAnswer::Again(unclear),
    };
    match layers(&fields, expected) {
        Err(Ok(refusal)) => RefundAnswer::Refused(refusal),
        Err(Err(unclear)) => RefundAnswer::Again(unclear),
        Ok(Business::Success) => {
            let about_ours = must_match(&fields, "out_trade_no", expected.out_trade_no.as_str())
                .and_then(|()| must_match(&fields, "out_refund_no", out_refund_no));
            match (about_ours, fields.get("refund_id")) {
                (Err(unclear), _) => RefundAnswer::Again(unclear),
                (Ok(()), Some(id)) if !id.is_empty() => RefundAnswer::Accepted {
                    refund_id: id.to_string(),
                },
                (Ok(()), _) => {
                    RefundAnswer::Again(untrusted("an accepted refund without refund_id".into()))
                }
            }
        }
        Ok(Business::Error { code, description }) if REFUND_RETRY.contains(&code) => {
            RefundAnswer::Again(Unclear::Gateway {
                code: code.to_string(),
                description: description.to_string(),
            })
        }
        Ok(Business::Error { code, description }) => RefundAnswer::Refused(Refusal {
            code: code.to_string(),
            description: description.to_string(),
        }),
    }
}

pub fn classify_refund_query(
    answer: super::api::Answer,
    expected: &Expected<'_>,
    out_refund_no: &str,
) -> RefundQueryAnswer {
    let fields = match answer {
        Ok(fields) => fields,
        Err(unclear) => return RefundQueryAnswer::Unknown(unclear),
    };
    match layers(&fields, expected) {
        Err(Ok(refusal)) => RefundQueryAnswer::Unknown(Unclear::Gateway {
            code: refusal.code,
            description: refusal.description,
        }),
        Err(Err(unclear)) => RefundQueryAnswer::Unknown(unclear),
        Ok(Business::Error {
            code: "REFUNDNOTEXIST",
            ..
        }) => RefundQueryAnswer::NotFound,
        Ok(Business::Error { code, description }) => RefundQueryAnswer::Unknown(Unclear::Gateway {
            code: code.to_string(),
            description: description.to_string(),
        }),
        Ok(Business::Success) => {
            if let Err(unclear) =
                must_match(&fields, "out_trade_no", expected.out_trade_no.as_str())
            {
                return RefundQueryAnswer::Unknown(unclear);
            }
            // Refunds are listed as *_$n; ours is the one with our number.
            let count: usize = fields
                .get("refund_count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let ours = (0..count.min(50))
                .find(|n| fields.get(&format!("out_refund_no_{n}")) == Some(out_refund_no));
            let Some(n) = ours else {
                return RefundQueryAnswer::Unknown(untrusted(format!(
                    "the answer lists no refund {out_refund_no}"
                )));
            };
            let status = match fields.get(&format!("refund_status_{n}")) {
                Some("SUCCESS") => RefundStatus::Success,
                Some("PROCESSING") => RefundStatus::Processing,
                Some("REFUNDCLOSE") => RefundStatus::Closed,
                Some("CHANGE") => RefundStatus::Change,
                other => {
                    return RefundQueryAnswer::Unknown(untrusted(format!(
                        "unknown refund_status {other:?}"
                    )));
                }
            };
            RefundQueryAnswer::Status {
                status,
                refund_id: fields
                    .get(&format!("refund_id_{n}"))
                    .filter(|id| !id.is_empty())
                    .map(str::to_string),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::SignType;
    use crate::wechat::sign::sign_request;

    fn merchant() -> Merchant {
        crate::simulator::SimulatorConfig::demo().merchant(SignType::Md5)
    }

    fn answer(pairs: &[(&str, &str)]) -> Fields {
        let m = merchant();
        let mut fields: Fields = [
            ("return_code", "SUCCESS"),
            ("appid", m.appid.as_str()),
            ("mch_id", m.mch_id.as_str()),
            ("nonce_str", "n"),
        ]
        .into_iter()
        .chain(pairs.iter().copied())
        .collect();
        sign_request(&mut fields, &m.key, SignType::Md5);
        fields
    }

    fn classify(pairs: &[(&str, &str)]) -> (RefundAnswer, RefundQueryAnswer) {
        let m = merchant();
        let no = OutTradeNo::parse("T01261123142353K3F9XQ000001").unwrap();
        let expected = Expected {
            merchant: &m,
            out_trade_no: &no,
            total_fee: Fen(1234),
            transaction_id: None,
        };
        (
            classify_refund(
                Ok(answer(pairs)),
                &expected,
                "T01261123142353K3F9XQ000001R01",
            ),
            classify_refund_query(
                Ok(answer(pairs)),
                &expected,
                "T01261123142353K3F9XQ000001R01",
            ),
        )
    }

    const OURS: [(&str, &str); 2] = [
        ("out_trade_no", "T01261123142353K3F9XQ000001"),
        ("out_refund_no", "T01261123142353K3F9XQ000001R01"),
    ];

    #[test]
    fn the_request_carries_the_number_the_amounts_and_a_valid_sign() {
        let m = merchant();
        let no = OutTradeNo::parse("T01261123142353K3F9XQ000001").unwrap();
        let fields = refund_request(
            &m,
            &RefundOrder {
                out_trade_no: &no,
                out_refund_no: "T01261123142353K3F9XQ000001R01",
                total_fee: Fen(1234),
                refund_fee: Fen(500),
                reason: Some("退货"),
            },
            "nonce",
        );
        for (k, v) in [
            ("out_refund_no", "T01261123142353K3F9XQ000001R01"),
            ("total_fee", "1234"),
            ("refund_fee", "500"),
            ("refund_desc", "退货"),
        ] {
            assert_eq!(fields.get(k), Some(v), "{k}");
        }
        assert!(crate::wechat::sign::verify(&fields, &m.key, SignType::Md5));
    }

    #[test]
    fn refund_answers_fall_in_their_class() {
        let mut success = vec![("result_code", "SUCCESS"), ("refund_id", "50300")];
        success.extend(OURS);
        assert_eq!(
            classify(&success).0,
            RefundAnswer::Accepted {
                refund_id: "50300".into()
            }
        );
        for code in REFUND_RETRY {
            assert!(matches!(
                classify(&[("result_code", "FAIL"), ("err_code", code)]).0,
                RefundAnswer::Again(_)
            ));
        }
        assert!(matches!(
            classify(&[("result_code", "FAIL"), ("err_code", "NOTENOUGH")]).0,
            RefundAnswer::Refused(r) if r.code == "NOTENOUGH"
        ));
        // About another refund: not ours.
        let other = [
            ("result_code", "SUCCESS"),
            ("refund_id", "1"),
            ("out_trade_no", "T01261123142353K3F9XQ000001"),
            ("out_refund_no", "SOMEONE-ELSE"),
        ];
        assert!(matches!(
            classify(&other).0,
            RefundAnswer::Again(Unclear::Untrusted(_))
        ));
    }

    #[test]
    fn query_answers_find_our_refund_by_its_number() {
        let listed = [
            ("result_code", "SUCCESS"),
            ("out_trade_no", "T01261123142353K3F9XQ000001"),
            ("refund_count", "2"),
            ("out_refund_no_0", "T01261123142353K3F9XQ000001R00"),
            ("refund_status_0", "SUCCESS"),
            ("out_refund_no_1", "T01261123142353K3F9XQ000001R01"),
            ("refund_status_1", "PROCESSING"),
            ("refund_id_1", "50301"),
        ];
        assert_eq!(
            classify(&listed).1,
            RefundQueryAnswer::Status {
                status: RefundStatus::Processing,
                refund_id: Some("50301".into())
            }
        );
        assert_eq!(
            classify(&[("result_code", "FAIL"), ("err_code", "REFUNDNOTEXIST")]).1,
            RefundQueryAnswer::NotFound
        );
        let mut forged = answer(&listed);
        forged.set("refund_status_1", "SUCCESS");
        let m = merchant();
        let no = OutTradeNo::parse("T01261123142353K3F9XQ000001").unwrap();
        let expected = Expected {
            merchant: &m,
            out_trade_no: &no,
            total_fee: Fen(1234),
            transaction_id: None,
        };
        assert!(matches!(
            classify_refund_query(Ok(forged), &expected, "T01261123142353K3F9XQ000001R01"),
            RefundQueryAnswer::Unknown(Unclear::Untrusted(_))
        ));
    }
}
