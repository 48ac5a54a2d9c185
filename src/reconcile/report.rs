//! A [`Reconciliation`] (or a [`StoreReconciliation`]) as the manager reads
//! it: one JSON object, or a text report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::store::StoreReconciliation;
use super::{Discrepancy, OtherTill, Reconciliation, Totals};
use crate::domain::signed_yuan;

/// `{"date", "till", "matched", "discrepancies", "other_tills", "totals", …}`.
/// `source` is `downloaded` or `file`.
pub fn to_json(date: &str, till: &str, source: &str, result: &Reconciliation) -> Value {
    let mut object = till_json(date, till, source, result);
    object["other_tills"] = devices_json(&result.other_tills).into();
    object
}

/// [`to_json`] without "other_tills": in the store's report every other till
/// has its own section, and the rest is under "unaccounted".
fn till_json(date: &str, till: &str, source: &str, result: &Reconciliation) -> Value {
    json!({
        "date": date,
        "till": till,
        "source": source,
        "agrees": result.discrepancies.is_empty(),
        "matched": result.matched,
        "refunds_matched": result.refunds_matched,
        "reversed_after_payment": result
            .returned
            .iter()
            .map(|r| r.out_trade_no.as_str())
            .collect::<Vec<_>>(),
        "discrepancies": discrepancies_json(&result.discrepancies),
        "totals": totals_json(&result.totals, "journal"),
    })
}

/// `scanpay reconcile --store`: `{"date", "store": true, "mch_id", "source",
/// "agrees", "matched", "refunds_matched", "discrepancies" (a count),
/// "tills": [each till's own report, without other_tills], "unaccounted":
/// {"devices", "discrepancies"}, "totals": {"bill", "tills"}}`.
pub fn store_to_json(
    date: &str,
    mch_id: &str,
    source: &str,
    result: &StoreReconciliation,
) -> Value {
    let tills: Vec<Value> = result
        .tills
        .iter()
        .map(|(till, r)| till_json(date, till, source, r))
        .collect();
    json!({
        "date": date,
        "store": true,
        "mch_id": mch_id,
        "source": source,
        "agrees": result.discrepancy_count() == 0,
        "matched": result.matched(),
        "refunds_matched": result.refunds_matched(),
        "discrepancies": result.discrepancy_count(),
        "tills": tills,
        "unaccounted": {
            "devices": devices_json(&result.unaccounted),
            "discrepancies": discrepancies_json(&result.discrepancies),
        },
        "totals": totals_json(&result.totals, "tills"),
    })
}

fn discrepancies_json(discrepancies: &[Discrepancy]) -> Vec<Value> {
    discrepancies.iter().map(Discrepancy::to_json).collect()
}

fn devices_json(devices: &BTreeMap<Option<String>, OtherTill>) -> Vec<Value> {
    devices
        .iter()
        .map(|(device_info, other)| {
            json!({
                "device_info": device_info,
                "rows": other.rows,
                "charged": other.charged.to_string(),
                "refunded": other.refunded.to_string(),
                "returned": other.returned.to_string(),
                "net": signed_yuan(other.net()),
            })
        })
        .collect()
}

/// `{"bill": …, journal: …}`: `journal` names the books' side.
fn totals_json(totals: &Totals, journal: &str) -> Value {
    let mut object = json!({
        "bill": {
            "rows": totals.bill_rows,
            "charged": totals.bill_charged.to_string(),
            "refunded": totals.bill_refunded.to_string(),
            "returned": totals.bill_returned.to_string(),
            "net": signed_yuan(totals.bill_net()),
        },
    });
    object[journal] = json!({
        "paid_orders": totals.journal_paid_count,
        "paid": totals.journal_paid.to_string(),
        "refunded": totals.journal_refunded.to_string(),
        "net": signed_yuan(totals.journal_net()),
    });
    object
}

/// Where a till's reconciliation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// `scanpay reconcile` on the till: recorded in its journal; the bill's
    /// other tills are totalled apart.
    OnTill,
    /// A section of `scanpay reconcile --store`: recorded nowhere; the other
    /// tills have their own sections.
    InStore,
}

/// The readable report: the verdict, this till's totals, other tills, and
/// each discrepancy with its advice.
pub fn to_text(date: &str, till: &str, source: &str, result: &Reconciliation) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Reconciliation of {date} (Beijing time), till {till}, bill {source}: {}",
        verdict(result.discrepancies.len())
    );
    till_text(&mut out, result, Shown::OnTill);
    let totals = &result.totals;
    if totals.bill_rows == 0 && result.other_tills.is_empty() {
        let _ = writeln!(
            out,
            "  the bill has no rows: WeChat had no trade of the merchant that day (No Bill Exist)"
        );
    } else if result.other_tills.is_empty() {
        let _ = writeln!(out, "  other tills: none on the bill");
    } else {
        let _ = writeln!(out, "  other tills (not this journal's, totalled apart):");
        devices_text(&mut out, &result.other_tills);
    }
    discrepancies_text(&mut out, &result.discrepancies);
    out
}

/// The store's report: the verdict, a section per till as its own report
/// has it, what no till of the store accounts for, and the store's totals.
pub fn store_to_text(
    date: &str,
    mch_id: &str,
    source: &str,
    result: &StoreReconciliation,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Reconciliation of {date} (Beijing time), every till of the store (merchant {mch_id}), bill {source}: {}",
        verdict(result.discrepancy_count())
    );
    let _ = writeln!(
        out,
        "  {} tills · matched {} orders, {} refunds · read from the store database; nothing is recorded in any journal",
        result.tills.len(),
        result.matched(),
        result.refunds_matched()
    );
    if result.tills.is_empty() {
        let _ = writeln!(
            out,
            "  the store has no till of merchant {mch_id}: run `scanpay sync` on each till"
        );
    }
    for (till, r) in &result.tills {
        let _ = writeln!(out, "\n── till {till}: {}", verdict(r.discrepancies.len()));
        till_text(&mut out, r, Shown::InStore);
        discrepancies_text(&mut out, &r.discrepancies);
    }
    let _ = writeln!(
        out,
        "\n── no till of the store: {}",
        verdict(result.discrepancies.len())
    );
    if result.unaccounted.is_empty() {
        let _ = writeln!(out, "  every row of the bill is a till's of the store");
    } else {
        let _ = writeln!(out, "  rows whose 设备号 is no till of the store:");
        devices_text(&mut out, &result.unaccounted);
    }
    discrepancies_text(&mut out, &result.discrepancies);
    let _ = writeln!(out, "\n── the store");
    totals_text(
        &mut out,
        &result.totals,
        ["WeChat's bill:       ", "the tills' journals: "],
    );
    out
}

/// The bill's side and the journal's of `totals`, each after its label.
fn totals_text(out: &mut String, totals: &Totals, [bill, journal]: [&str; 2]) {
    let _ = writeln!(
        out,
        "  {bill} charged ¥{} · refunded ¥{} · net ¥{} ({} rows; ¥{} charged and returned)",
        totals.bill_charged,
        totals.bill_refunded,
        signed_yuan(totals.bill_net()),
        totals.bill_rows,
        totals.bill_returned
    );
    let _ = writeln!(
        out,
        "  {journal} paid ¥{} ({} orders) · refunded ¥{} · net ¥{}",
        totals.journal_paid,
        totals.journal_paid_count,
        totals.journal_refunded,
        signed_yuan(totals.journal_net())
    );
}

fn verdict(discrepancies: usize) -> String {
    match discrepancies {
        0 => "the books agree".to_string(),
        1 => "1 discrepancy".to_string(),
        n => format!("{n} discrepancies"),
    }
}

/// A till's matched count and totals on both sides.
fn till_text(out: &mut String, result: &Reconciliation, shown: Shown) {
    let totals = &result.totals;
    let recorded = match shown {
        Shown::OnTill => "now in the journal",
        Shown::InStore => "`scanpay reconcile` on the till records it in its journal",
    };
    let _ = writeln!(
        out,
        "  matched: {} orders, {} refunds{}",
        result.matched,
        result.refunds_matched,
        match result.returned.len() {
            0 => String::new(),
            n => format!(", {n} reversed after payment (charged and returned; {recorded})"),
        }
    );
    // The manager looks these up on the till, or answers the customer, by number.
    if !result.returned.is_empty() {
        let numbers: Vec<&str> = result
            .returned
            .iter()
            .map(|r| r.out_trade_no.as_str())
            .collect();
        let _ = writeln!(out, "  reversed after payment: {}", numbers.join(", "));
    }
    totals_text(
        out,
        totals,
        ["this till on WeChat's bill:", "this till's journal:       "],
    );
}

/// A line per 设备号.
fn devices_text(out: &mut String, devices: &BTreeMap<Option<String>, OtherTill>) {
    for (device_info, other) in devices {
        let _ = writeln!(
            out,
            "    {:<12} {} rows · charged ¥{} · refunded ¥{} · net ¥{}",
            device_info.as_deref().unwrap_or("(no 设备号)"),
            other.rows,
            other.charged,
            other.refunded,
            signed_yuan(other.net())
        );
    }
}

/// Each discrepancy, numbered, with both sides and what to do.
fn discrepancies_text(out: &mut String, discrepancies: &[Discrepancy]) {
    for (n, d) in discrepancies.iter().enumerate() {
        let refund = d
            .out_refund_no
            .as_deref()
            .map(|no| format!(" · refund {no}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{}. {} · order {}{refund}\n   journal: {}\n   bill:    {}\n   what to do: {}",
            n + 1,
            d.kind.as_str(),
            d.out_trade_no,
            side(d.journal.as_ref()),
            side(d.bill.as_ref()),
            d.advice
        );
    }
}

/// One side of a discrepancy on a line.
fn side(value: Option<&Value>) -> String {
    let Some(Value::Object(map)) = value else {
        return "nothing".into();
    };
    map.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} {s}"),
            other => format!("{k} {other}"),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}
