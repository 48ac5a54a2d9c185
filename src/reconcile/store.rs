//! The merchant's bill against every till of the store at once (`scanpay
//! reconcile --store`): each till's side, as the store database holds it,
//! matched by [`super::reconcile`] exactly as on the till, and the rows no
//! till of the store accounts for.
//!
//! On one till, another 设备号 is another till's business and never a
//! discrepancy. Over the whole store there is no other till left to ask: a
//! charge or refund under a 设备号 that is no till of the store is money the
//! store's books lack ([`Kind::Unaccounted`]). A REVOKED row there (charged
//! and returned) moved no money and is only totalled.

use std::collections::{BTreeMap, HashSet};

use super::{
    Discrepancy, JournalDay, Kind, OtherTill, Reconciliation, Totals, reconcile, refund_fee,
    row_json, unknown_row,
};
use crate::wechat::bill::{Bill, BillRow, TradeState};

/// The outcome over the store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StoreReconciliation {
    /// Each till of the store, by till id, as `scanpay reconcile` on it
    /// would find it (from the store's copy of its journal).
    pub tills: Vec<(String, Reconciliation)>,
    /// The rows whose 设备号 is no till of the store, per 设备号.
    pub unaccounted: BTreeMap<Option<String>, OtherTill>,
    /// Those rows that are discrepancies, in the bill's order.
    pub discrepancies: Vec<Discrepancy>,
    /// The whole bill against every till's journal.
    pub totals: Totals,
}

impl StoreReconciliation {
    /// Every discrepancy: each till's, and the unaccounted rows'.
    pub fn discrepancy_count(&self) -> usize {
        self.discrepancies.len()
            + self
                .tills
                .iter()
                .map(|(_, r)| r.discrepancies.len())
                .sum::<usize>()
    }

    /// Orders matched over every till.
    pub fn matched(&self) -> u64 {
        self.tills.iter().map(|(_, r)| r.matched).sum()
    }

    /// Refunds matched over every till.
    pub fn refunds_matched(&self) -> u64 {
        self.tills.iter().map(|(_, r)| r.refunds_matched).sum()
    }
}

/// Reconciles `bill` against each till's side (`tills`, by till id).
pub fn reconcile_store(tills: &BTreeMap<String, JournalDay>, bill: &Bill) -> StoreReconciliation {
    let mut out = StoreReconciliation {
        tills: tills
            .iter()
            .map(|(till, day)| (till.clone(), reconcile(till, day, bill)))
            .collect(),
        ..StoreReconciliation::default()
    };
    let ids: HashSet<&str> = tills.keys().map(String::as_str).collect();
    for row in &bill.rows {
        if row.device_info.as_deref().is_some_and(|d| ids.contains(d)) {
            continue;
        }
        out.unaccounted
            .entry(row.device_info.clone())
            .or_default()
            .add(row);
        match &row.trade_state {
            TradeState::Success | TradeState::Refund => out.discrepancies.push(unaccounted(row)),
            TradeState::Revoked => {}
            TradeState::Other(state) => out.discrepancies.push(unknown_row(
                row,
                state,
                &format!("order {} of {}", row.out_trade_no, device_name(row)),
                None,
            )),
        }
    }
    for (_, till) in &out.tills {
        out.totals.add(&till.totals);
    }
    for device in out.unaccounted.values() {
        out.totals.add_bill(device);
    }
    out
}

fn device_name(row: &BillRow) -> String {
    match &row.device_info {
        Some(device) => format!("设备号 {device}"),
        None => "no 设备号".into(),
    }
}

/// A charge or refund under a 设备号 that is no till of the store.
fn unaccounted(row: &BillRow) -> Discrepancy {
    let no = &row.out_trade_no;
    let what = match row.trade_state {
        TradeState::Refund => format!(
            "WeChat refunded ¥{} of order {no} (refund {})",
            refund_fee(row),
            row.out_refund_no
                .as_deref()
                .unwrap_or("without 商户退款单号")
        ),
        _ => format!(
            "WeChat charged a customer ¥{} under order {no}",
            row.total_fee
        ),
    };
    let advice = match &row.device_info {
        Some(device) => format!(
            "{what} with 设备号 {device}, and no till of the store is {device}: if {device} is a scanpay till that has not shipped its journal (no [store] settings there, or the store database unreachable from it), run `scanpay sync` on it and reconcile again; if it is a device outside scanpay (another cash register or program), account for it there"
        ),
        None => format!(
            "{what} without a 设备号: every scanpay till sends its id, so this was done outside scanpay (another cash register or program, the merchant platform); account for it there"
        ),
    };
    Discrepancy {
        kind: Kind::Unaccounted,
        out_trade_no: no.clone(),
        out_refund_no: row.out_refund_no.clone(),
        journal: None,
        bill: Some(row_json(row)),
        advice,
    }
}
