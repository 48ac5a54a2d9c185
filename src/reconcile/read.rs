//! The one part of reconciling that reads: this till's side of a day, from
//! the journal. The matching itself (`super::reconcile`) stays pure.

use std::collections::{HashMap, HashSet};

use time::{Date, UtcOffset};

use super::JournalDay;
use crate::journal::{Journal, JournalError, OrderRow, RefundRow, day_bounds};
use crate::wechat::bill::Bill;

/// WeChat's bills are days in Beijing time, whatever `till.time_zone` says.
pub const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+8 is an offset"),
};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The bill of `date`: `[from_ms, to_ms)` of the Beijing day.
pub fn bill_day(date: Date) -> (i64, i64) {
    day_bounds(date, BEIJING)
}

/// The order and refund numbers the bill's rows of `till` name.
pub fn named(bill: &Bill, till: &str) -> (Vec<String>, Vec<String>) {
    let mine = bill
        .rows
        .iter()
        .filter(|r| r.device_info.as_deref() == Some(till));
    let orders = mine.clone().map(|r| r.out_trade_no.clone()).collect();
    let refunds = mine.filter_map(|r| r.out_refund_no.clone()).collect();
    (orders, refunds)
}

/// The span a bill day's orders and refunds are read from: the day and the
/// day before (a charge or refund near midnight may be on either bill).
pub fn window((from_ms, to_ms): (i64, i64)) -> (i64, i64) {
    (from_ms - DAY_MS, to_ms)
}

/// What one source (a till's journal, the store database) holds of a bill
/// day, for whichever tills it has: [`till_day`] takes one till's side of it.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Orders created in the [`window`], oldest first.
    pub orders: Vec<OrderRow>,
    /// Orders the bill names (wherever created; some may be in `orders` too).
    pub named_orders: Vec<OrderRow>,
    /// Refunds opened in the [`window`], oldest first.
    pub refunds: Vec<HeldRefund>,
    /// Refunds the bill names (wherever opened; some may be in `refunds` too).
    pub named_refunds: Vec<HeldRefund>,
}

/// A refund with the till and number of its order (a source leaves out a
/// refund whose order it lacks: it is no till's).
#[derive(Debug, Clone)]
pub struct HeldRefund {
    pub refund: RefundRow,
    pub till_id: String,
    pub out_trade_no: String,
}

/// This till's side of the bill day `[from_ms, to_ms)`, from what a source
/// holds: its orders and refunds of the [`window`], then any other the bill
/// names (`named`, in the bill's order, each once), each refund with its
/// order's number. Other tills' orders and refunds are left out.
pub fn till_day(
    (from_ms, to_ms): (i64, i64),
    till: &str,
    (named_orders, named_refunds): &(Vec<String>, Vec<String>),
    held: &Held,
) -> JournalDay {
    let mut orders: Vec<OrderRow> = held
        .orders
        .iter()
        .filter(|o| o.till_id.as_str() == till)
        .cloned()
        .collect();
    let mut known: HashSet<String> = orders.iter().map(|o| o.out_trade_no.to_string()).collect();
    let by_no: HashMap<&str, &OrderRow> = held
        .named_orders
        .iter()
        .map(|o| (o.out_trade_no.as_str(), o))
        .collect();
    for no in named_orders {
        if !known.contains(no)
            && let Some(order) = by_no.get(no.as_str())
            && order.till_id.as_str() == till
        {
            known.insert(no.clone());
            orders.push((*order).clone());
        }
    }
    let mut refunds: Vec<&HeldRefund> = held.refunds.iter().collect();
    let mut seen: HashSet<&str> = refunds
        .iter()
        .map(|r| r.refund.out_refund_no.as_str())
        .collect();
    let by_no: HashMap<&str, &HeldRefund> = held
        .named_refunds
        .iter()
        .map(|r| (r.refund.out_refund_no.as_str(), r))
        .collect();
    for no in named_refunds {
        if let Some(refund) = by_no.get(no.as_str())
            && seen.insert(no.as_str())
        {
            refunds.push(refund);
        }
    }
    JournalDay {
        from_ms,
        to_ms,
        orders,
        refunds: refunds
            .into_iter()
            .filter(|r| r.till_id == till)
            .map(|r| (r.out_trade_no.clone(), r.refund.clone()))
            .collect(),
    }
}

/// This till's side of the bill day `[from_ms, to_ms)` from its journal
/// ([`till_day`] of what the journal holds).
pub fn journal_day(
    j: &Journal,
    bounds: (i64, i64),
    till: &str,
    named: &(Vec<String>, Vec<String>),
) -> Result<JournalDay, JournalError> {
    let (from, to) = window(bounds);
    let orders = j.orders_between(from, to)?;
    // Only the numbers the window lacks are looked up, each once however
    // many rows name it.
    let mut seen: HashSet<&str> = orders.iter().map(|o| o.out_trade_no.as_str()).collect();
    let mut named_orders = Vec::new();
    for no in &named.0 {
        if seen.insert(no.as_str())
            && let Some(order) = j.order_by_trade_no(no)?
        {
            named_orders.push(order);
        }
    }
    let window_refunds = j.refunds_between(from, to)?;
    let mut seen: HashSet<&str> = window_refunds
        .iter()
        .map(|r| r.out_refund_no.as_str())
        .collect();
    let mut named_refunds = Vec::new();
    for no in &named.1 {
        if seen.insert(no.as_str())
            && let Some(refund) = j.refund_by_no(no)?
        {
            named_refunds.push(refund);
        }
    }
    // Each refund's order: most are among the orders just read.
    let mut of_order: HashMap<i64, Option<(String, String)>> = orders
        .iter()
        .chain(&named_orders)
        .map(|o| (o.id.0, Some(ident(o))))
        .collect();
    let mut with_order = |refunds: Vec<RefundRow>| -> Result<Vec<HeldRefund>, JournalError> {
        let mut held = Vec::with_capacity(refunds.len());
        for refund in refunds {
            let order = match of_order.get(&refund.order_id.0) {
                Some(order) => order.clone(),
                None => {
                    let order = j.order_by_id(refund.order_id)?.as_ref().map(ident);
                    of_order.insert(refund.order_id.0, order.clone());
                    order
                }
            };
            if let Some((till_id, out_trade_no)) = order {
                held.push(HeldRefund {
                    refund,
                    till_id,
                    out_trade_no,
                });
            }
        }
        Ok(held)
    };
    let held = Held {
        refunds: with_order(window_refunds)?,
        named_refunds: with_order(named_refunds)?,
        orders,
        named_orders,
    };
    Ok(till_day(bounds, till, named, &held))
}

/// An order's till and number.
fn ident(order: &OrderRow) -> (String, String) {
    (order.till_id.to_string(), order.out_trade_no.to_string())
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::domain::{Fen, OutTradeNo, TillId};
    use crate::journal::{OrderId, OrderState, RefundState};

    fn order(id: i64, till: &str, created_at_ms: i64) -> OrderRow {
        OrderRow {
            id: OrderId(id),
            out_trade_no: OutTradeNo::parse(&format!("{till}NO{id:04}")).unwrap(),
            till_id: TillId::parse(till).unwrap(),
            total_fee: Fen(100),
            body: "咖啡".into(),
            auth_code_masked: "**************6076".into(),
            created_at_ms,
            micropay_sent_at_ms: Some(created_at_ms),
            state: OrderState::Paid,
            finished_at_ms: Some(created_at_ms + 1),
            transaction_id: None,
            err_code: None,
            message: None,
        }
    }

    fn refund(id: i64, of: &OrderRow, created_at_ms: i64) -> HeldRefund {
        HeldRefund {
            refund: RefundRow {
                id,
                order_id: of.id,
                out_refund_no: format!("{}R{id}", of.out_trade_no),
                refund_fee: Fen(50),
                reason: None,
                created_at_ms,
                state: RefundState::Refunded,
                refund_id: None,
                err_code: None,
                message: None,
            },
            till_id: of.till_id.to_string(),
            out_trade_no: of.out_trade_no.to_string(),
        }
    }

    fn numbers(day: &JournalDay) -> (Vec<String>, Vec<(String, String)>) {
        (
            day.orders
                .iter()
                .map(|o| o.out_trade_no.to_string())
                .collect(),
            day.refunds
                .iter()
                .map(|(no, r)| (no.clone(), r.out_refund_no.clone()))
                .collect(),
        )
    }

    #[test]
    fn a_tills_day_is_its_window_then_what_the_bill_names_each_once() {
        let bounds = bill_day(date!(2026 - 11 - 22));
        let (from, _) = bounds;
        let mine = order(1, "T01", from + 1);
        let yesterday = order(2, "T01", from - 1);
        let theirs = order(3, "T02", from + 2);
        let last_week = order(4, "T01", from - 7 * DAY_MS);
        let theirs_old = order(5, "T02", from - 7 * DAY_MS);
        let held = Held {
            orders: vec![yesterday.clone(), mine.clone(), theirs.clone()],
            // A source may return a named order that is in the window too.
            named_orders: vec![mine.clone(), last_week.clone(), theirs_old.clone()],
            refunds: vec![refund(1, &mine, from + 5), refund(2, &theirs, from + 6)],
            named_refunds: vec![
                refund(1, &mine, from + 5),
                refund(3, &last_week, from - 6 * DAY_MS),
                refund(4, &theirs_old, from - 6 * DAY_MS),
            ],
        };
        let no = |o: &OrderRow| o.out_trade_no.to_string();
        let refund_no = |id, o: &OrderRow| format!("{}R{id}", o.out_trade_no);
        // The bill names last week's order and refund twice, and the other
        // till's old ones under this till's 设备号.
        let named = (
            vec![no(&mine), no(&last_week), no(&theirs_old), no(&last_week)],
            vec![
                refund_no(1, &mine),
                refund_no(3, &last_week),
                refund_no(4, &theirs_old),
                refund_no(3, &last_week),
            ],
        );
        let day = till_day(bounds, "T01", &named, &held);
        assert_eq!((day.from_ms, day.to_ms), bounds);
        let (orders, refunds) = numbers(&day);
        assert_eq!(orders, [no(&yesterday), no(&mine), no(&last_week)]);
        assert_eq!(
            refunds,
            [
                (no(&mine), refund_no(1, &mine)),
                (no(&last_week), refund_no(3, &last_week)),
            ]
        );
        // The other till's side of the same holding, with nothing named.
        let day = till_day(bounds, "T02", &(vec![], vec![]), &held);
        let (orders, refunds) = numbers(&day);
        assert_eq!(orders, [no(&theirs)]);
        assert_eq!(refunds, [(no(&theirs), refund_no(2, &theirs))]);
    }
}
