//! The one part of reconciling that reads: this till's side of a day, from
//! the journal. The matching itself (`super::reconcile`) stays pure.

use std::collections::{HashMap, HashSet};

use time::{Date, UtcOffset};

use super::JournalDay;
use crate::journal::{Journal, JournalError, OrderRow, day_bounds};
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

/// This till's side of the bill day `[from_ms, to_ms)`: its orders and
/// refunds of the day and the day before (a charge or refund near midnight
/// may be on either bill), and any other the bill names (`named`).
pub fn journal_day(
    j: &Journal,
    (from_ms, to_ms): (i64, i64),
    till: &str,
    (named_orders, named_refunds): &(Vec<String>, Vec<String>),
) -> Result<JournalDay, JournalError> {
    let mut orders: Vec<OrderRow> = j
        .orders_between(from_ms - DAY_MS, to_ms)?
        .into_iter()
        .filter(|o| o.till_id.as_str() == till)
        .collect();
    let mut known: HashSet<String> = orders.iter().map(|o| o.out_trade_no.to_string()).collect();
    for no in named_orders {
        if !known.contains(no)
            && let Some(order) = j.order_by_trade_no(no)?
            && order.till_id.as_str() == till
        {
            known.insert(no.clone());
            orders.push(order);
        }
    }
    let mut refunds = j.refunds_between(from_ms - DAY_MS, to_ms)?;
    let seen: HashSet<String> = refunds.iter().map(|r| r.out_refund_no.clone()).collect();
    for no in named_refunds {
        if !seen.contains(no)
            && let Some(refund) = j.refund_by_no(no)?
        {
            refunds.push(refund);
        }
    }
    // Each refund with its order's number; other tills' left out.
    let mut numbers: HashMap<i64, Option<String>> = orders
        .iter()
        .map(|o| (o.id.0, Some(o.out_trade_no.to_string())))
        .collect();
    let mut day_refunds = Vec::with_capacity(refunds.len());
    for refund in refunds {
        let no = match numbers.get(&refund.order_id.0) {
            Some(no) => no.clone(),
            None => {
                let no = j
                    .order_by_id(refund.order_id)?
                    .filter(|o| o.till_id.as_str() == till)
                    .map(|o| o.out_trade_no.to_string());
                numbers.insert(refund.order_id.0, no.clone());
                no
            }
        };
        if let Some(no) = no {
            day_refunds.push((no, refund));
        }
    }
    Ok(JournalDay {
        from_ms,
        to_ms,
        orders,
        refunds: day_refunds,
    })
}
