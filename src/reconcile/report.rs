//! A [`Reconciliation`] as the manager reads it: one JSON object, or a
//! text report.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Reconciliation, signed_yuan};

/// `{"date", "till", "matched", "discrepancies", "other_tills", "totals", …}`.
/// `source` is `downloaded` or `file`.
pub fn to_json(date: &str, till: &str, source: &str, result: &Reconciliation) -> Value {
    let totals = &result.totals;
    let other_tills: Vec<Value> = result
        .other_tills
        .iter()
        .map(|(device_info, other)| {
            json!({
                "device_info": device_info,
                "rows": other.rows,
                "charged": other.charged.to_string(),
                "refunded": other.refunded.to_string(),
                "returned": other.returned.to_string(),
                "net": signed_yuan(i128::from(other.charged.0) - i128::from(other.refunded.0)),
            })
        })
        .collect();
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
        "discrepancies": result
            .discrepancies
            .iter()
            .map(super::Discrepancy::to_json)
            .collect::<Vec<_>>(),
        "other_tills": other_tills,
        "totals": {
            "bill": {
                "rows": totals.bill_rows,
                "charged": totals.bill_charged.to_string(),
                "refunded": totals.bill_refunded.to_string(),
                "returned": totals.bill_returned.to_string(),
                "net": signed_yuan(totals.bill_net()),
            },
            "journal": {
                "paid_orders": totals.journal_paid_count,
                "paid": totals.journal_paid.to_string(),
                "refunded": totals.journal_refunded.to_string(),
                "net": signed_yuan(totals.journal_net()),
            },
        },
    })
}

/// The readable report: the verdict, this till's totals, other tills, and
/// each discrepancy with its advice.
pub fn to_text(date: &str, till: &str, source: &str, result: &Reconciliation) -> String {
    let totals = &result.totals;
    let mut out = String::new();
    let verdict = match result.discrepancies.len() {
        0 => "the books agree".to_string(),
        1 => "1 discrepancy".to_string(),
        n => format!("{n} discrepancies"),
    };
    let _ = writeln!(
        out,
        "Reconciliation of {date} (Beijing time), till {till}, bill {source}: {verdict}"
    );
    let _ = writeln!(
        out,
        "  matched: {} orders, {} refunds{}",
        result.matched,
        result.refunds_matched,
        match result.returned.len() {
            0 => String::new(),
            n => format!(", {n} reversed after payment (charged and returned; now in the journal)"),
        }
    );
    let _ = writeln!(
        out,
        "  this till on WeChat's bill: charged ¥{} · refunded ¥{} · net ¥{} ({} rows; ¥{} charged and returned)",
        totals.bill_charged,
        totals.bill_refunded,
        signed_yuan(totals.bill_net()),
        totals.bill_rows,
        totals.bill_returned
    );
    let _ = writeln!(
        out,
        "  this till's journal:         paid ¥{} ({} orders) · refunded ¥{} · net ¥{}",
        totals.journal_paid,
        totals.journal_paid_count,
        totals.journal_refunded,
        signed_yuan(totals.journal_net())
    );
    if totals.bill_rows == 0 && result.other_tills.is_empty() {
        let _ = writeln!(
            out,
            "  the bill has no rows: WeChat had no trade of the merchant that day (No Bill Exist)"
        );
    } else if result.other_tills.is_empty() {
        let _ = writeln!(out, "  other tills: none on the bill");
    } else {
        let _ = writeln!(out, "  other tills (not this journal's, totalled apart):");
        for (device_info, other) in &result.other_tills {
            let _ = writeln!(
                out,
                "    {:<12} {} rows · charged ¥{} · refunded ¥{} · net ¥{}",
                device_info.as_deref().unwrap_or("(no 设备号)"),
                other.rows,
                other.charged,
                other.refunded,
                signed_yuan(i128::from(other.charged.0) - i128::from(other.refunded.0))
            );
        }
    }
    for (n, d) in result.discrepancies.iter().enumerate() {
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
    out
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
