//! A micropay round as the CPU sees it: the till signs and encodes its
//! request, the gateway decodes and verifies it, signs and encodes a paid
//! answer with coupon fields, and the till decodes, verifies and classifies.
//!
//! cargo bench --bench protocol

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use scanpay::domain::{AuthCode, Fen, OutTradeNo};
use scanpay::wechat::api::{self, Expected, Merchant, MicropayOrder, MicropayOutcome};
use scanpay::wechat::sign::{sign_request, verify};
use scanpay::wechat::{ApiKey, Fields, SignType, xml};

fn merchant(sign_type: SignType) -> Merchant {
    Merchant {
        appid: "wxd930ea5d5a258f4f".into(),
        mch_id: "10000100".into(),
        sub_appid: None,
        sub_mch_id: None,
        key: ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
        sign_type,
    }
}

fn paid_answer(merchant: &Merchant, out_trade_no: &str) -> String {
    let mut fields: Fields = [
        ("return_code", "SUCCESS"),
        ("return_msg", "OK"),
        ("appid", merchant.appid.as_str()),
        ("mch_id", merchant.mch_id.as_str()),
        ("device_info", "T01"),
        ("nonce_str", "OMdoiruMjafNqdlS"),
        ("result_code", "SUCCESS"),
        ("openid", "oUpF8uN95-Ptaags6E_roPHg7AG0"),
        ("is_subscribe", "N"),
        ("trade_type", "MICROPAY"),
        ("bank_type", "CMB_CREDIT"),
        ("fee_type", "CNY"),
        ("total_fee", "1234"),
        ("cash_fee", "1233"),
        ("coupon_fee", "1"),
        ("coupon_count", "1"),
        ("coupon_id_0", "10000"),
        ("coupon_fee_0", "1"),
        ("transaction_id", "4200001212282111030178445712"),
        ("out_trade_no", out_trade_no),
        ("attach", ""),
        ("time_end", "20261123142400"),
    ]
    .into_iter()
    .collect();
    sign_request(&mut fields, &merchant.key, merchant.sign_type);
    xml::encode(&fields)
}

fn round(c: &mut Criterion) {
    let out_trade_no = OutTradeNo::parse("T0120261123142353000001").unwrap();
    let auth_code = AuthCode::parse("134539517967686076").unwrap();
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let merchant = merchant(sign_type);
        let answer = paid_answer(&merchant, out_trade_no.as_str());
        c.bench_function(
            &format!("micropay round ({})", sign_type.wire_name()),
            |b| {
                b.iter(|| {
                    let order = MicropayOrder {
                        out_trade_no: &out_trade_no,
                        total_fee: Fen(1234),
                        body: "两杯咖啡",
                        auth_code: &auth_code,
                        device_info: "T01",
                        spbill_create_ip: "127.0.0.1",
                    };
                    let request = xml::encode(&api::micropay_request(
                        &merchant,
                        &order,
                        "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                    ));
                    // The gateway's half.
                    let received = xml::decode(request.as_bytes()).unwrap();
                    assert!(verify(&received, &merchant.key, sign_type));
                    let answer = paid_answer(&merchant, received.get("out_trade_no").unwrap());
                    // The till's half.
                    let fields = xml::decode(black_box(answer.as_bytes())).unwrap();
                    let expected = Expected {
                        merchant: &merchant,
                        out_trade_no: &out_trade_no,
                        total_fee: Fen(1234),
                        transaction_id: None,
                    };
                    let outcome = api::classify_micropay(Ok(fields), &expected);
                    assert!(matches!(outcome, MicropayOutcome::Paid(_)));
                    outcome
                })
            },
        );
        c.bench_function(
            &format!("answer decode+verify+classify ({})", sign_type.wire_name()),
            |b| {
                b.iter(|| {
                    let fields = xml::decode(black_box(answer.as_bytes())).unwrap();
                    let expected = Expected {
                        merchant: &merchant,
                        out_trade_no: &out_trade_no,
                        total_fee: Fen(1234),
                        transaction_id: None,
                    };
                    api::classify_micropay(Ok(fields), &expected)
                })
            },
        );
    }
}

criterion_group!(benches, round);
criterion_main!(benches);
