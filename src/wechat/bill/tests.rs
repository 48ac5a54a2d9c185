//! The parser on bills written from the documented format
//! (`tests/fixtures/bill/`) and on spoilt ones.

use std::io::Write as _;

use super::*;

const ALL: &[u8] = include_bytes!("../../../tests/fixtures/bill/all.csv");
const LEGACY: &[u8] = include_bytes!("../../../tests/fixtures/bill/legacy.csv");
const NO_BILL: &[u8] = include_bytes!("../../../tests/fixtures/bill/no_bill.xml");
const CREATING: &[u8] = include_bytes!("../../../tests/fixtures/bill/bill_creating.xml");

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn s(text: &str) -> Option<String> {
    Some(text.to_string())
}

#[test]
fn the_fixtures_are_as_documented() {
    assert!(ALL.starts_with("\u{feff}".as_bytes()));
    assert!(ALL.windows(2).filter(|w| w == b"\r\n").count() >= 7);
    assert!(!LEGACY.contains(&b'\r'));
}

#[test]
fn the_27_column_layout_reads_into_exact_rows() {
    let bill = parse_bill(ALL).unwrap();
    assert_eq!(bill.rows.len(), 4);
    assert_eq!(
        bill.rows[0],
        BillRow {
            line: 2,
            trade_time: "2025-03-01 09:15:02".into(),
            appid: s("wxd930ea5d5a258f4f"),
            mch_id: s("10000100"),
            device_info: s("T01"),
            transaction_id: s("4200000001202503010000000001"),
            out_trade_no: "T0120250301091502A1".into(),
            openid: s("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            trade_type: s("MICROPAY"),
            trade_state: TradeState::Success,
            total_fee: Fen(1234),
            settlement_fee: Some(Fen(1234)),
            coupon_fee: Some(Fen(0)),
            refund_id: None,
            out_refund_no: None,
            refund_fee: Some(Fen(0)),
            refund_requested_fee: Some(Fen(0)),
            refund_status: None,
            // A comma inside a field does not split it.
            body: s("可乐, 雪碧"),
            attach: None,
        }
    );
    // 订单金额 is the order's total_fee; 应结订单金额 leaves out 免充值 coupons.
    let coupon = &bill.rows[1];
    assert_eq!(
        (
            coupon.device_info.as_deref(),
            coupon.total_fee,
            coupon.settlement_fee,
            coupon.coupon_fee,
            coupon.attach.as_deref()
        ),
        (
            Some("T02"),
            Fen(3),
            Some(Fen(1)),
            Some(Fen(3)),
            Some("table=4")
        )
    );
    let refund = &bill.rows[2];
    assert_eq!(refund.trade_state, TradeState::Refund);
    assert_eq!(
        (
            refund.total_fee,
            refund.refund_id.as_deref(),
            refund.out_refund_no.as_deref(),
            refund.refund_fee,
            refund.refund_requested_fee,
            refund.refund_status.as_deref()
        ),
        (
            Fen(0),
            Some("50302025030100000000000001"),
            Some("RF-T01-0001"),
            Some(Fen(500)),
            Some(Fen(500)),
            Some("SUCCESS")
        )
    );
    let revoked = &bill.rows[3];
    assert_eq!(
        (
            revoked.line,
            &revoked.trade_state,
            revoked.device_info.as_deref(),
            revoked.body.as_deref(),
            revoked.total_fee,
            revoked.refund_fee
        ),
        (5, &TradeState::Revoked, None, None, Fen(52), Some(Fen(52)))
    );
    assert_eq!(
        bill.summary,
        Some(BillSummary {
            trade_count: 4,
            settlement_total: Fen(1287),
            refund_total: Fen(552),
            coupon_refund_total: Some(Fen(0)),
            order_total: Some(Fen(1289)),
            refund_requested_total: Some(Fen(552)),
        })
    );
}

#[test]
fn the_legacy_24_column_layout_reads_by_its_own_names() {
    let bill = parse_bill(LEGACY).unwrap();
    let view: Vec<_> = bill
        .rows
        .iter()
        .map(|r| {
            (
                r.out_trade_no.as_str(),
                r.trade_state.clone(),
                r.total_fee,
                r.settlement_fee,
                r.coupon_fee,
                r.refund_fee,
                r.refund_requested_fee,
                r.device_info.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        view,
        [
            (
                "1415640626",
                TradeState::Success,
                Fen(1),
                Some(Fen(1)),
                Some(Fen(0)),
                Some(Fen(0)),
                None,
                Some("1000")
            ),
            (
                "1415635270",
                TradeState::Refund,
                Fen(0),
                Some(Fen(0)),
                Some(Fen(0)),
                Some(Fen(1)),
                None,
                Some("1000")
            ),
        ]
    );
    // The legacy layout writes `0 in the refund numbers of a charge: kept as written.
    assert_eq!(bill.rows[0].refund_id.as_deref(), Some("0"));
    assert_eq!(
        bill.rows[1].refund_id.as_deref(),
        Some("2008450740201411110000174436")
    );
    assert_eq!(bill.rows[1].body.as_deref(), Some("被扫支付测试"));
    assert_eq!(
        bill.summary,
        Some(BillSummary {
            trade_count: 2,
            settlement_total: Fen(1),
            refund_total: Fen(1),
            coupon_refund_total: Some(Fen(0)),
            order_total: None,
            refund_requested_total: None,
        })
    );
}

#[test]
fn the_other_legacy_coupon_name_and_reordered_columns_read_by_name() {
    let text = "商户订单号,交易状态,总金额,代金券或立减优惠金额,交易时间,设备号\n\
                `A1,`SUCCESS,`1.50,`0.50,`2020-01-02 03:04:05,`\n";
    let bill = parse_bill(text.as_bytes()).unwrap();
    let row = &bill.rows[0];
    assert_eq!(
        (
            row.out_trade_no.as_str(),
            row.total_fee,
            row.coupon_fee,
            row.trade_time.as_str(),
            row.device_info.as_deref(),
            row.refund_fee
        ),
        (
            "A1",
            Fen(150),
            Some(Fen(50)),
            "2020-01-02 03:04:05",
            None,
            None
        )
    );
    assert_eq!(bill.summary, None);
}

#[test]
fn gzip_bom_crlf_and_lf_give_the_same_bill() {
    let plain = parse_bill(ALL).unwrap();
    assert_eq!(parse_bill(&gzip(ALL)).unwrap(), plain);
    let lf = String::from_utf8(ALL.to_vec())
        .unwrap()
        .trim_start_matches('\u{feff}')
        .replace("\r\n", "\n");
    assert_eq!(parse_bill(lf.as_bytes()).unwrap(), plain);
    assert_eq!(
        classify_download(&gzip(ALL)).unwrap(),
        BillAnswer::Bill(plain)
    );
}

#[test]
fn failure_answers_are_classified() {
    assert_eq!(classify_download(NO_BILL).unwrap(), BillAnswer::NoBill);
    assert_eq!(classify_download(CREATING).unwrap(), BillAnswer::NotYet);
    let lower = b"<xml><return_code>FAIL</return_code><return_msg>no bill exist</return_msg></xml>";
    assert_eq!(classify_download(lower).unwrap(), BillAnswer::NoBill);
    let code_only =
        b"<xml><return_code>FAIL</return_code><return_msg>x</return_msg><error_code>20002</error_code></xml>";
    assert_eq!(classify_download(code_only).unwrap(), BillAnswer::NoBill);
    let other = b"<xml><return_code>FAIL</return_code><return_msg>invalid bill_date</return_msg><error_code>20001</error_code></xml>";
    assert_eq!(
        classify_download(other).unwrap(),
        BillAnswer::Failed("invalid bill_date (error_code 20001)".into())
    );
    assert!(matches!(
        classify_download(b"<xml><a>"),
        Err(BillError::Xml(_))
    ));
}

#[test]
fn malformed_bills_name_the_line_and_the_column() {
    let header = "交易时间,商户订单号,交易状态,订单金额\r\n";
    let bad = |rows: &str| parse_bill(format!("{header}{rows}").as_bytes()).unwrap_err();
    assert_eq!(
        bad("`2025-03-01 09:00:00,`A1,`SUCCESS,`1.234\r\n"),
        BillError::Amount {
            line: 2,
            column: "订单金额".into(),
            value: "1.234".into()
        }
    );
    assert_eq!(
        bad("`2025-03-01 09:00:00,`A1,`SUCCESS,`1.00\r\n`x,`A2,`SUCCESS\r\n"),
        BillError::FieldCount {
            line: 3,
            header: 1,
            expected: 4,
            found: 3
        }
    );
    assert_eq!(
        bad("`2025-03-01 09:00:00,`,`SUCCESS,`1.00\r\n"),
        BillError::MissingValue {
            line: 2,
            column: "商户订单号".into()
        }
    );
    assert_eq!(
        bad("`2025-03-01 09:00:00,`A1,`SUCCESS,`-1.00\r\n"),
        BillError::Amount {
            line: 2,
            column: "订单金额".into(),
            value: "-1.00".into()
        }
    );
    assert_eq!(
        bad("总交易单数,应结订单总金额,退款总金额\r\n"),
        BillError::MissingSummaryRow { line: 2 }
    );
    assert_eq!(
        bad("总交易单数,应结订单总金额,退款总金额\r\n`x,`1.00,`0.00\r\n"),
        BillError::Count {
            line: 3,
            column: "总交易单数".into(),
            value: "x".into()
        }
    );
    assert_eq!(
        bad("总交易单数,应结订单总金额,退款总金额\r\n`0,`0.00,`0.00\r\nmore\r\n"),
        BillError::AfterSummary {
            line: 4,
            text: "more".into()
        }
    );
    assert_eq!(
        parse_bill("交易时间,商户订单号,交易状态\n".as_bytes()).unwrap_err(),
        BillError::MissingColumn {
            line: 1,
            names: "订单金额 or 应结订单金额 or 总金额".into()
        }
    );
    assert_eq!(
        parse_bill(b"`A1,`SUCCESS\n").unwrap_err(),
        BillError::NoHeader {
            line: 1,
            text: "`A1,`SUCCESS".into()
        }
    );
    assert_eq!(parse_bill(b"\r\n\r\n").unwrap_err(), BillError::Empty);
    assert_eq!(
        parse_bill(b"\xe4\xba\xa4,a\n`\xff\n").unwrap_err(),
        BillError::NotUtf8 { line: 2 }
    );
    assert!(matches!(
        parse_bill(&[0x1f, 0x8b, 0, 1, 2]),
        Err(BillError::Gzip(_))
    ));
    let message = bad("`2025-03-01 09:00:00,`A1,`SUCCESS,`abc\r\n").to_string();
    assert!(
        message.contains("line 2") && message.contains("订单金额"),
        "{message}"
    );
}

#[test]
fn a_header_only_bill_has_no_rows() {
    let bill = parse_bill("交易时间,商户订单号,交易状态,总金额\r\n".as_bytes()).unwrap();
    assert_eq!(bill, Bill::default());
}
