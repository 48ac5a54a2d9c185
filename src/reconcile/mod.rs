//! The day's books against WeChat's daily bill (下载交易账单): which of this
//! till's orders WeChat charged as the journal says, and every place where
//! the two disagree, each with what a person should do about it.
//!
//! Pure: the journal's orders and refunds of the day (read by [`read`]) and
//! the parsed bill in, a [`Reconciliation`] out. Nothing else here reads a
//! file, asks WeChat or writes the journal; `scanpay reconcile` does, and
//! records the result.
//!
//! **Whose rows.** The bill covers every till of the merchant: a row is this
//! till's when its 设备号 (device_info) is this till's id. Other tills' rows
//! are totalled apart per 设备号 and are never discrepancies.
//!
//! **Which day.** A bill is a day in Beijing time (UTC+8): charges on the day
//! they were charged, refunds on the day WeChat accepted them. The journal
//! knows when a charge can have happened: after the micropay was sent and
//! before the till recorded the order paid. A paid order is *expected* on the
//! day's bill when that whole span lies in the day; one whose span crosses
//! midnight (rung up at 23:59:59, or found paid by `scanpay replay` the next
//! morning) is on one of the two bills, so it is matched when present and not
//! missed when absent. A refund is expected on the day it was opened, except
//! in the last [`REFUND_MARGIN_MS`] of the day (accepted after midnight,
//! perhaps).
//!
//! **What agrees.** A paid order with a SUCCESS row of the same 订单金额; a
//! reversed order with a REVOKED row (charged and returned: no money kept, and
//! the journal learns it was *reversed after payment*); a failed or closed
//! order with a REVOKED row (returned: nobody keeps money); a refund the
//! journal has as refunded, processing or CHANGE with a REFUND row of the same
//! 退款金额. Everything else about this till is a [`Discrepancy`].

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use crate::domain::Fen;
use crate::journal::{OrderId, OrderRow, OrderState, RefundRow, RefundState};
use crate::wechat::bill::{Bill, BillRow, TradeState};

pub mod read;
pub mod report;
pub mod store;

/// A refund opened this close to the end of the day may be accepted after
/// midnight, on the next day's bill: it is matched when present, not missed.
pub const REFUND_MARGIN_MS: i64 = 10 * 60 * 1000;

/// The journal's side of one day, as the caller read it.
#[derive(Debug, Clone, Default)]
pub struct JournalDay {
    /// The day, `[from_ms, to_ms)` in unix milliseconds (a Beijing day).
    pub from_ms: i64,
    pub to_ms: i64,
    /// This till's orders that can be on the day's bill: those created in the
    /// day or the day before, and any other the bill names.
    pub orders: Vec<OrderRow>,
    /// Refunds of this till's orders opened in the day or the day before, and
    /// any other the bill names, each with its order's out_trade_no.
    pub refunds: Vec<(String, RefundRow)>,
}

/// What a disagreement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// WeChat charged (SUCCESS) an order the journal does not have as paid:
    /// needs attention, open, failed, closed or reversed.
    ChargedNotPaid,
    /// WeChat charged (SUCCESS) under a number this till's journal does not know.
    ChargeNotInJournal,
    /// The journal has the order paid; the bill has no charge for it.
    PaidNotInBill,
    /// Both have the charge, with different amounts (订单金额 against total_fee).
    AmountMismatch,
    /// The journal has the order paid; WeChat returned the charge (REVOKED).
    PaidButRevoked,
    /// WeChat charged and returned (REVOKED) an order the journal has as
    /// unresolved, or does not know.
    RevokedNotReversed,
    /// The journal has a refund that moved money; the bill has no REFUND row.
    RefundNotInBill,
    /// A REFUND row the journal does not have as refunded (unknown number,
    /// refused, closed, or still unconfirmed).
    RefundNotInJournal,
    /// Both have the refund, with different amounts (退款金额).
    RefundAmountMismatch,
    /// A row of this till in a 交易状态 this build does not know.
    UnknownRow,
    /// `scanpay reconcile --store`: a SUCCESS or REFUND row whose 设备号 is
    /// no till of the store (a till that has not shipped, or a device
    /// outside scanpay).
    Unaccounted,
}

impl Kind {
    /// Every kind, in the order README lists them.
    pub const ALL: [Kind; 11] = [
        Kind::ChargedNotPaid,
        Kind::ChargeNotInJournal,
        Kind::PaidNotInBill,
        Kind::AmountMismatch,
        Kind::PaidButRevoked,
        Kind::RevokedNotReversed,
        Kind::RefundNotInBill,
        Kind::RefundNotInJournal,
        Kind::RefundAmountMismatch,
        Kind::UnknownRow,
        Kind::Unaccounted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ChargedNotPaid => "charged_not_paid",
            Kind::ChargeNotInJournal => "charge_not_in_journal",
            Kind::PaidNotInBill => "paid_not_in_bill",
            Kind::AmountMismatch => "amount_mismatch",
            Kind::PaidButRevoked => "paid_but_revoked",
            Kind::RevokedNotReversed => "revoked_not_reversed",
            Kind::RefundNotInBill => "refund_not_in_bill",
            Kind::RefundNotInJournal => "refund_not_in_journal",
            Kind::RefundAmountMismatch => "refund_amount_mismatch",
            Kind::UnknownRow => "unknown_row",
            Kind::Unaccounted => "unaccounted",
        }
    }
}

/// One disagreement: what each side says, and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Discrepancy {
    pub kind: Kind,
    pub out_trade_no: String,
    /// For the refund kinds.
    pub out_refund_no: Option<String>,
    /// What the journal holds (`null` when it holds nothing).
    pub journal: Option<Value>,
    /// The bill's row (`null` when it has none).
    pub bill: Option<Value>,
    pub advice: String,
}

impl Discrepancy {
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "kind": self.kind.as_str(),
            "out_trade_no": self.out_trade_no,
            "journal": self.journal,
            "bill": self.bill,
            "advice": self.advice,
        });
        if let Some(no) = &self.out_refund_no {
            object["out_refund_no"] = Value::from(no.as_str());
        }
        object
    }
}

/// A reversed order the bill shows charged and returned: the journal records
/// it *reversed after payment*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedCharge {
    pub order: OrderId,
    pub out_trade_no: String,
    pub total_fee: Fen,
    pub transaction_id: Option<String>,
}

/// The bill's rows of one 设备号 (`None` when the row has none): another
/// till's, a device no till of the store is, or this till's own before they
/// go into its [`Totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtherTill {
    pub rows: u64,
    /// SUCCESS rows' 订单金额.
    pub charged: Fen,
    /// REFUND rows' 退款金额.
    pub refunded: Fen,
    /// REVOKED rows' 订单金额: charged and returned.
    pub returned: Fen,
}

impl OtherTill {
    /// Counts `row`; a row in a 交易状态 this build does not know moves no money.
    pub fn add(&mut self, row: &BillRow) {
        self.rows += 1;
        match row.trade_state {
            TradeState::Success => self.charged.0 += row.total_fee.0,
            TradeState::Refund => self.refunded.0 += refund_fee(row).0,
            TradeState::Revoked => self.returned.0 += row.total_fee.0,
            TradeState::Other(_) => {}
        }
    }

    /// Charged less refunded, in fen.
    pub fn net(&self) -> i128 {
        net(self.charged, self.refunded)
    }
}

/// This till's money, as each side has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// The bill: SUCCESS, REFUND and REVOKED rows of this till.
    pub bill_charged: Fen,
    pub bill_refunded: Fen,
    pub bill_returned: Fen,
    pub bill_rows: u64,
    /// The journal: paid orders created in the day, and refunds opened in
    /// the day that moved (or are moving) money.
    pub journal_paid: Fen,
    pub journal_paid_count: u64,
    pub journal_refunded: Fen,
}

impl Totals {
    /// Charged less refunded, in fen.
    pub fn bill_net(&self) -> i128 {
        net(self.bill_charged, self.bill_refunded)
    }

    pub fn journal_net(&self) -> i128 {
        net(self.journal_paid, self.journal_refunded)
    }

    /// Adds `rows` to the bill's side.
    pub fn add_bill(&mut self, rows: &OtherTill) {
        self.bill_charged.0 += rows.charged.0;
        self.bill_refunded.0 += rows.refunded.0;
        self.bill_returned.0 += rows.returned.0;
        self.bill_rows += rows.rows;
    }

    /// Adds both sides of `other`.
    pub fn add(&mut self, other: &Totals) {
        self.bill_charged.0 += other.bill_charged.0;
        self.bill_refunded.0 += other.bill_refunded.0;
        self.bill_returned.0 += other.bill_returned.0;
        self.bill_rows += other.bill_rows;
        self.journal_paid.0 += other.journal_paid.0;
        self.journal_paid_count += other.journal_paid_count;
        self.journal_refunded.0 += other.journal_refunded.0;
    }
}

/// Money in less money out, in fen; negative on a day refunding more than it took.
fn net(taken: Fen, refunded: Fen) -> i128 {
    i128::from(taken.0) - i128::from(refunded.0)
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reconciliation {
    /// Orders on which both sides agree (reversed after payment included).
    pub matched: u64,
    /// Refunds on which both sides agree.
    pub refunds_matched: u64,
    /// Reversed orders the bill shows charged and returned.
    pub returned: Vec<ReturnedCharge>,
    /// In the order found: the bill's rows first, then what the bill lacks.
    pub discrepancies: Vec<Discrepancy>,
    /// By 设备号.
    pub other_tills: BTreeMap<Option<String>, OtherTill>,
    pub totals: Totals,
}

/// Reconciles this till's (`till`) side of `bill` against `day`.
pub fn reconcile(till: &str, day: &JournalDay, bill: &Bill) -> Reconciliation {
    let mut out = Reconciliation::default();
    let orders: HashMap<&str, &OrderRow> = day
        .orders
        .iter()
        .map(|o| (o.out_trade_no.as_str(), o))
        .collect();
    let refunds: HashMap<&str, (&str, &RefundRow)> = day
        .refunds
        .iter()
        .map(|(no, r)| (r.out_refund_no.as_str(), (no.as_str(), r)))
        .collect();
    // Orders and refunds a row of the bill accounted for.
    let mut charged: HashSet<&str> = HashSet::new();
    let mut refunded: HashSet<&str> = HashSet::new();
    let in_day = |ms: i64| ms >= day.from_ms && ms < day.to_ms;
    // Counted as other tills' rows are, so the bill side of every total is
    // summed the one way.
    let mut mine = OtherTill::default();

    for row in &bill.rows {
        if row.device_info.as_deref() != Some(till) {
            out.other_tills
                .entry(row.device_info.clone())
                .or_default()
                .add(row);
            continue;
        }
        mine.add(row);
        let no = row.out_trade_no.as_str();
        let order = orders.get(no).copied();
        match &row.trade_state {
            TradeState::Success => {
                let first = charged.insert(no);
                match order {
                    None => out.discrepancies.push(charge_not_in_journal(row, !first)),
                    Some(order) if !first => out.discrepancies.push(charged_twice(order, row)),
                    Some(order) if order.state == OrderState::Paid => {
                        if order.total_fee == row.total_fee {
                            out.matched += 1;
                        } else {
                            out.discrepancies.push(amount_mismatch(order, row));
                        }
                    }
                    Some(order) => out.discrepancies.push(charged_not_paid(order, row)),
                }
            }
            TradeState::Revoked => {
                charged.insert(no);
                match order.map(|o| (o, o.state)) {
                    Some((order, OrderState::Reversed)) => {
                        out.matched += 1;
                        out.returned.push(ReturnedCharge {
                            order: order.id,
                            out_trade_no: no.to_string(),
                            total_fee: row.total_fee,
                            transaction_id: row.transaction_id.clone(),
                        });
                    }
                    Some((_, OrderState::Failed | OrderState::Closed)) => out.matched += 1,
                    Some((order, OrderState::Paid)) => {
                        out.discrepancies.push(paid_but_revoked(order, row))
                    }
                    Some((order, _)) => out
                        .discrepancies
                        .push(revoked_not_reversed(Some(order), row)),
                    None => out.discrepancies.push(revoked_not_reversed(None, row)),
                }
            }
            TradeState::Refund => {
                let fee = refund_fee(row);
                let Some(refund_no) = row.out_refund_no.as_deref() else {
                    out.discrepancies.push(refund_not_in_journal(None, row));
                    continue;
                };
                refunded.insert(refund_no);
                match refunds.get(refund_no) {
                    Some((_, refund)) if moved_money(refund.state) => {
                        if refund.refund_fee == fee {
                            out.refunds_matched += 1;
                        } else {
                            out.discrepancies.push(refund_amount_mismatch(refund, row));
                        }
                    }
                    Some((_, refund)) => out
                        .discrepancies
                        .push(refund_not_in_journal(Some(refund), row)),
                    None => out.discrepancies.push(refund_not_in_journal(None, row)),
                }
            }
            TradeState::Other(state) => out.discrepancies.push(unknown_row(
                row,
                state,
                &format!("this till's order {no}"),
                order.map(order_json),
            )),
        }
    }
    out.totals.add_bill(&mine);

    for order in &day.orders {
        let no = order.out_trade_no.as_str();
        if order.state == OrderState::Paid && in_day(order.created_at_ms) {
            out.totals.journal_paid.0 += order.total_fee.0;
            out.totals.journal_paid_count += 1;
        }
        if order.state == OrderState::Paid && expected(order, day) && !charged.contains(no) {
            out.discrepancies.push(paid_not_in_bill(order));
        }
    }
    for (no, refund) in &day.refunds {
        if !moved_money(refund.state) || !in_day(refund.created_at_ms) {
            continue;
        }
        out.totals.journal_refunded.0 += refund.refund_fee.0;
        if refund.created_at_ms < day.to_ms - REFUND_MARGIN_MS
            && !refunded.contains(refund.out_refund_no.as_str())
        {
            out.discrepancies.push(refund_not_in_bill(no, refund));
        }
    }
    out
}

/// Whether a paid order's charge certainly falls in the day: from the
/// micropay's sending (or the order's opening) to its recording as paid.
fn expected(order: &OrderRow, day: &JournalDay) -> bool {
    let start = order.micropay_sent_at_ms.unwrap_or(order.created_at_ms);
    let end = order.finished_at_ms.unwrap_or(start);
    start >= day.from_ms && end < day.to_ms
}

/// Refunds that moved, or are moving, money: those WeChat puts on its bill.
fn moved_money(state: RefundState) -> bool {
    matches!(
        state,
        RefundState::Refunded | RefundState::Processing | RefundState::Change
    )
}

/// 退款金额, else 申请退款金额.
fn refund_fee(row: &BillRow) -> Fen {
    row.refund_fee
        .or(row.refund_requested_fee)
        .unwrap_or_default()
}

fn order_json(order: &OrderRow) -> Value {
    json!({
        "state": order.state.as_str(),
        "total_fee": order.total_fee.to_string(),
        "transaction_id": order.transaction_id,
        "err_code": order.err_code,
        "created_at_ms": order.created_at_ms,
    })
}

fn refund_json(no: &str, refund: &RefundRow) -> Value {
    json!({
        "out_trade_no": no,
        "out_refund_no": refund.out_refund_no,
        "state": refund.state.as_str(),
        "refund_fee": refund.refund_fee.to_string(),
        "refund_id": refund.refund_id,
        "created_at_ms": refund.created_at_ms,
    })
}

fn row_json(row: &BillRow) -> Value {
    let state = match &row.trade_state {
        TradeState::Success => "SUCCESS",
        TradeState::Refund => "REFUND",
        TradeState::Revoked => "REVOKED",
        TradeState::Other(other) => other.as_str(),
    };
    let mut object = json!({
        "line": row.line,
        "trade_time": row.trade_time,
        "trade_state": state,
        "total_fee": row.total_fee.to_string(),
        "transaction_id": row.transaction_id,
        "device_info": row.device_info,
    });
    if row.trade_state == TradeState::Refund {
        object["out_refund_no"] = json!(row.out_refund_no);
        object["refund_id"] = json!(row.refund_id);
        object["refund_fee"] = Value::from(refund_fee(row).to_string());
        object["refund_status"] = json!(row.refund_status);
    }
    object
}

fn charge_not_in_journal(row: &BillRow, again: bool) -> Discrepancy {
    let no = &row.out_trade_no;
    let fee = row.total_fee;
    let again = if again { " (a second time)" } else { "" };
    Discrepancy {
        kind: Kind::ChargeNotInJournal,
        out_trade_no: no.clone(),
        out_refund_no: None,
        journal: None,
        bill: Some(row_json(row)),
        advice: format!(
            "WeChat charged a customer ¥{fee}{again} under order {no}, with this till's id as 设备号, but this till's journal has no such order: find the sale (another till set up with the same till id? a journal restored from an older copy?); if nobody can, hand the customer their goods when they come, or refund ¥{fee} on the WeChat Pay merchant platform"
        ),
    }
}

fn charged_twice(order: &OrderRow, row: &BillRow) -> Discrepancy {
    Discrepancy {
        advice: format!(
            "the bill charges order {} a second time (¥{}): WeChat charges an order number once, so ask WeChat Pay support about this bill, and refund the second charge on the merchant platform if the customer really paid twice",
            order.out_trade_no, row.total_fee
        ),
        journal: Some(order_json(order)),
        ..charge_not_in_journal(row, true)
    }
}

fn charged_not_paid(order: &OrderRow, row: &BillRow) -> Discrepancy {
    let no = order.out_trade_no.as_str();
    let fee = row.total_fee;
    let advice = match order.state {
        OrderState::NeedsAttention | OrderState::Open => format!(
            "WeChat charged the customer ¥{fee} for order {no}, which the journal has as {}: this is a sale the till gave up on. If the customer is still there or comes back, hand over the goods; otherwise refund ¥{fee} on the WeChat Pay merchant platform. `scanpay replay --order {no}` then records it paid",
            order.state.as_str()
        ),
        _ => format!(
            "WeChat kept a charge of ¥{fee} for order {no}, which the journal has as {}: the customer paid and was told it failed. Refund ¥{fee} on the WeChat Pay merchant platform (or hand over the goods if the customer comes back for them)",
            order.state.as_str()
        ),
    };
    Discrepancy {
        kind: Kind::ChargedNotPaid,
        out_trade_no: no.to_string(),
        out_refund_no: None,
        journal: Some(order_json(order)),
        bill: Some(row_json(row)),
        advice,
    }
}

fn amount_mismatch(order: &OrderRow, row: &BillRow) -> Discrepancy {
    let no = order.out_trade_no.as_str();
    Discrepancy {
        kind: Kind::AmountMismatch,
        out_trade_no: no.to_string(),
        out_refund_no: None,
        journal: Some(order_json(order)),
        bill: Some(row_json(row)),
        advice: format!(
            "order {no} is ¥{} in the journal but WeChat charged ¥{} (订单金额): check the order on the WeChat Pay merchant platform; refund the difference if the customer paid too much, or settle it with them if too little",
            order.total_fee, row.total_fee
        ),
    }
}

fn paid_but_revoked(order: &OrderRow, row: &BillRow) -> Discrepancy {
    let no = order.out_trade_no.as_str();
    Discrepancy {
        kind: Kind::PaidButRevoked,
        out_trade_no: no.to_string(),
        out_refund_no: None,
        journal: Some(order_json(order)),
        bill: Some(row_json(row)),
        advice: format!(
            "the journal has order {no} paid (¥{}), but WeChat returned the charge to the customer (REVOKED): the day's takings are ¥{} less than the journal says and the customer has the goods unpaid; settle it with the customer if you can, and check the order on the WeChat Pay merchant platform",
            order.total_fee, row.total_fee
        ),
    }
}

fn revoked_not_reversed(order: Option<&OrderRow>, row: &BillRow) -> Discrepancy {
    let no = row.out_trade_no.as_str();
    let advice = match order {
        Some(order) => format!(
            "WeChat charged ¥{} for order {no} and returned it (REVOKED): nobody owes anything, but the journal still has the order as {}; `scanpay replay --order {no}` records it reversed",
            row.total_fee,
            order.state.as_str()
        ),
        None => format!(
            "WeChat charged ¥{} under order {no} (this till's id as 设备号) and returned it (REVOKED): nobody owes anything, but this till's journal has no such order; find the till that made it (another till set up with the same id?)",
            row.total_fee
        ),
    };
    Discrepancy {
        kind: Kind::RevokedNotReversed,
        out_trade_no: no.to_string(),
        out_refund_no: None,
        journal: order.map(order_json),
        bill: Some(row_json(row)),
        advice,
    }
}

/// A row in 交易状态 `state`, which this build does not know; `order` names
/// the row's order as whoever reconciles knows it.
fn unknown_row(row: &BillRow, state: &str, order: &str, journal: Option<Value>) -> Discrepancy {
    Discrepancy {
        kind: Kind::UnknownRow,
        out_trade_no: row.out_trade_no.clone(),
        out_refund_no: row.out_refund_no.clone(),
        journal,
        bill: Some(row_json(row)),
        advice: format!(
            "the bill has {order} in 交易状态 {state:?}, which scanpay does not know: look the order up on the WeChat Pay merchant platform (交易中心 → 交易订单)"
        ),
    }
}

fn paid_not_in_bill(order: &OrderRow) -> Discrepancy {
    let no = order.out_trade_no.as_str();
    Discrepancy {
        kind: Kind::PaidNotInBill,
        out_trade_no: no.to_string(),
        out_refund_no: None,
        journal: Some(order_json(order)),
        bill: None,
        advice: format!(
            "the journal has order {no} paid (¥{}{}), but WeChat's bill of the day has no charge for it: look the order up on the WeChat Pay merchant platform (交易中心 → 交易订单); if WeChat has no charge, the customer did not pay and the day's takings are ¥{} less",
            order.total_fee,
            order
                .transaction_id
                .as_deref()
                .map(|id| format!(", transaction_id {id}"))
                .unwrap_or_default(),
            order.total_fee
        ),
    }
}

fn refund_not_in_bill(no: &str, refund: &RefundRow) -> Discrepancy {
    Discrepancy {
        kind: Kind::RefundNotInBill,
        out_trade_no: no.to_string(),
        out_refund_no: Some(refund.out_refund_no.clone()),
        journal: Some(refund_json(no, refund)),
        bill: None,
        advice: format!(
            "the journal has refund {} of order {no} (¥{}) as {}, but WeChat's bill of the day has no such refund: look it up on the WeChat Pay merchant platform (交易中心 → 退款查询); if WeChat has no record of it, the customer was not refunded — `scanpay refund --order {no}` refunds them again",
            refund.out_refund_no,
            refund.refund_fee,
            refund.state.as_str()
        ),
    }
}

fn refund_not_in_journal(refund: Option<&RefundRow>, row: &BillRow) -> Discrepancy {
    let no = row.out_trade_no.as_str();
    let refund_no = row.out_refund_no.clone();
    let shown = refund_no.as_deref().unwrap_or("(no 商户退款单号)");
    let fee = refund_fee(row);
    let advice = match refund.map(|r| r.state) {
        Some(state @ (RefundState::Pending | RefundState::Unclear)) => format!(
            "WeChat refunded ¥{fee} under {shown} (order {no}), which the journal still has as {}: run `scanpay replay`, which confirms it and records it refunded",
            state.as_str()
        ),
        Some(state) => format!(
            "WeChat refunded ¥{fee} under {shown} (order {no}), which the journal has as {}: the customer did get the money back; check the refund on the WeChat Pay merchant platform (交易中心 → 退款查询) and count it in the day's refunds",
            state.as_str()
        ),
        None => format!(
            "WeChat refunded ¥{fee} of this till's order {no} under {shown}, which the journal does not know: a refund made on the WeChat Pay merchant platform or by another program; record it in the day's books (the journal's refunds and takings do not include it)"
        ),
    };
    Discrepancy {
        kind: Kind::RefundNotInJournal,
        out_trade_no: no.to_string(),
        out_refund_no: refund_no,
        journal: refund.map(|r| refund_json(no, r)),
        bill: Some(row_json(row)),
        advice,
    }
}

fn refund_amount_mismatch(refund: &RefundRow, row: &BillRow) -> Discrepancy {
    let no = row.out_trade_no.as_str();
    Discrepancy {
        kind: Kind::RefundAmountMismatch,
        out_trade_no: no.to_string(),
        out_refund_no: Some(refund.out_refund_no.clone()),
        journal: Some(refund_json(no, refund)),
        bill: Some(row_json(row)),
        advice: format!(
            "refund {} of order {no} is ¥{} in the journal but ¥{} on WeChat's bill (退款金额): check it on the WeChat Pay merchant platform (交易中心 → 退款查询); the bill's amount is what the customer got back",
            refund.out_refund_no,
            refund.refund_fee,
            refund_fee(row)
        ),
    }
}

#[cfg(test)]
mod tests;
