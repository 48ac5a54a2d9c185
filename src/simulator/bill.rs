//! The daily bill (下载交易账单) as WeChat writes it: CSV text, not XML. A
//! header of the 27 columns of the ALL layout, one detail row per trade in
//! which every field starts with a backtick, then the summary header and its
//! backtick row; CRLF line ends. Amounts are yuan with two decimals.
//!
//! What the simulator puts in the columns WeChat leaves to the merchant's
//! reading (the till's reconciliation relies on these, README documents them):
//! - a SUCCESS row is a charge: 应结订单金额 = the order less its 免充值
//!   (NO_CASH) coupons, 订单金额 = the order's total_fee, refund columns empty
//!   or 0.00;
//! - a REFUND row is a refund that moved money (not REFUNDCLOSE), on the day
//!   it was accepted, 交易时间 its acceptance: 微信退款单号, 商户退款单号,
//!   退款金额 = 申请退款金额 and 退款状态 filled, 应结订单金额 = 订单金额 = 0.00;
//! - a REVOKED row is a charge a reverse returned: the charge's amounts as a
//!   SUCCESS row would have them, and 退款金额 = 申请退款金额 = the charge with
//!   退款状态 SUCCESS (no refund numbers: the merchant made no refund);
//! - 手续费 is 0.6% (费率 0.60%) of 应结订单金额, rounded half up to the fen,
//!   on SUCCESS rows and 0.00 on the others;
//! - the summary sums the columns of the rows: 总交易单数 is their count.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::ledger::bill_time;
use crate::domain::Fen;

/// The ALL layout's header (27 columns).
pub const ALL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

/// The summary header that follows the detail rows.
pub const SUMMARY_HEADER: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// The 交易状态 of a bill row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillState {
    Success,
    Refund,
    Revoked,
}

impl BillState {
    fn wire_name(self) -> &'static str {
        match self {
            BillState::Success => "SUCCESS",
            BillState::Refund => "REFUND",
            BillState::Revoked => "REVOKED",
        }
    }
}

/// bill_type: ALL (WeChat's default), SUCCESS (charges) or REFUND (refunds).
/// The simulator writes every kind in the ALL layout; REVOKED rows are in
/// ALL only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillKind {
    All,
    Success,
    Refund,
}

impl BillKind {
    pub fn from_wire(name: &str) -> Option<BillKind> {
        match name {
            "" | "ALL" => Some(BillKind::All),
            "SUCCESS" => Some(BillKind::Success),
            "REFUND" => Some(BillKind::Refund),
            _ => None,
        }
    }

    pub fn includes(self, state: BillState) -> bool {
        match self {
            BillKind::All => true,
            BillKind::Success => state == BillState::Success,
            BillKind::Refund => state == BillState::Refund,
        }
    }
}

/// One detail row, in fen; see the module's notes for what each holds.
#[derive(Clone, Debug, PartialEq)]
pub struct BillLine {
    pub time: OffsetDateTime,
    pub device_info: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub openid: String,
    pub state: BillState,
    pub settlement_fee: u64,
    pub coupon_fee: u64,
    pub refund_id: String,
    pub out_refund_no: String,
    pub refund_fee: u64,
    pub refund_status: &'static str,
    pub body: String,
    pub attach: String,
    pub total_fee: u64,
    pub refund_requested: u64,
}

impl BillLine {
    /// A row of a plain charge (or its REVOKED / REFUND counterpart) of
    /// `fee` fen with no coupon and no refund fields: what tests and benches
    /// build bills from.
    pub fn charge(
        device_info: &str,
        out_trade_no: &str,
        transaction_id: String,
        time: OffsetDateTime,
        state: BillState,
        fee: u64,
    ) -> Self {
        BillLine {
            time,
            device_info: device_info.into(),
            transaction_id,
            out_trade_no: out_trade_no.into(),
            openid: "oUser".into(),
            state,
            settlement_fee: fee,
            coupon_fee: 0,
            refund_id: String::new(),
            out_refund_no: String::new(),
            refund_fee: 0,
            refund_status: "",
            body: "咖啡".into(),
            attach: String::new(),
            total_fee: fee,
            refund_requested: 0,
        }
    }

    /// 0.6 % of the settlement, half up, on charges only.
    fn service_fee(&self) -> u64 {
        match self.state {
            BillState::Success => (self.settlement_fee * 6 + 500) / 1000,
            BillState::Refund | BillState::Revoked => 0,
        }
    }
}

/// The bill text of `lines` (which must not be empty: a day without rows is
/// "No Bill Exist").
pub fn render(lines: &[BillLine], appid: &str, mch_id: &str) -> String {
    let mut out = String::with_capacity(512 + lines.len() * 320);
    out.push_str(ALL_HEADER);
    out.push_str("\r\n");
    let yuan = |fen: u64| Fen(fen).to_string();
    for line in lines {
        let refund_type = if line.state == BillState::Success {
            ""
        } else {
            "ORIGINAL"
        };
        let fields: [String; 27] = [
            bill_time(line.time),
            appid.to_string(),
            mch_id.to_string(),
            String::new(),
            text(&line.device_info),
            line.transaction_id.clone(),
            line.out_trade_no.clone(),
            line.openid.clone(),
            "MICROPAY".into(),
            line.state.wire_name().into(),
            "OTHERS".into(),
            "CNY".into(),
            yuan(line.settlement_fee),
            yuan(line.coupon_fee),
            line.refund_id.clone(),
            line.out_refund_no.clone(),
            yuan(line.refund_fee),
            yuan(0),
            refund_type.into(),
            line.refund_status.into(),
            text(&line.body),
            text(&line.attach),
            yuan(line.service_fee()),
            "0.60%".into(),
            yuan(line.total_fee),
            yuan(line.refund_requested),
            String::new(),
        ];
        backtick_row(&mut out, &fields);
    }
    let sum = |f: fn(&BillLine) -> u64| yuan(lines.iter().map(f).sum());
    out.push_str(SUMMARY_HEADER);
    out.push_str("\r\n");
    backtick_row(
        &mut out,
        &[
            lines.len().to_string(),
            sum(|l| l.settlement_fee),
            sum(|l| l.refund_fee),
            yuan(0),
            sum(BillLine::service_fee),
            sum(|l| l.total_fee),
            sum(|l| l.refund_requested),
        ],
    );
    out
}

fn backtick_row(out: &mut String, fields: &[String]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "`{field}");
    }
    out.push_str("\r\n");
}

/// Free text as the bill carries it: the bill has no quoting, so a line
/// break becomes a space and a backtick (which would start a field after a
/// comma) an apostrophe.
fn text(value: &str) -> String {
    value.replace(['\r', '\n'], " ").replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn line(state: BillState) -> BillLine {
        BillLine {
            // A comma, a backtick and a line break: what `text` must defuse.
            body: "可乐,`两瓶\r\n".into(),
            ..BillLine::charge(
                "T01",
                "T01A1",
                "4200000001".into(),
                datetime!(2025-03-01 12:34:56 +8),
                state,
                1234,
            )
        }
    }

    #[test]
    fn rows_are_backticked_crlf_and_summed() {
        let text = render(&[line(BillState::Success)], "wx1", "100");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines.len(), 5, "{text:?}");
        assert_eq!(lines[0].split(',').count(), 27);
        assert_eq!(
            lines[1],
            "`2025-03-01 12:34:56,`wx1,`100,`,`T01,`4200000001,`T01A1,`oUser,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`12.34,`0.00,`,`,`0.00,`0.00,`,`,`可乐,'两瓶  ,`,`0.07,`0.60%,`12.34,`0.00,`"
        );
        assert_eq!(lines[2], SUMMARY_HEADER);
        assert_eq!(lines[3], "`1,`12.34,`0.00,`0.00,`0.07,`12.34,`0.00");
        assert_eq!(lines[4], "");
    }

    #[test]
    fn kinds_filter_states() {
        assert!(BillKind::All.includes(BillState::Revoked));
        assert!(!BillKind::Success.includes(BillState::Revoked));
        assert!(BillKind::Refund.includes(BillState::Refund));
        assert_eq!(BillKind::from_wire(""), Some(BillKind::All));
        assert_eq!(BillKind::from_wire("all"), None);
    }
}
