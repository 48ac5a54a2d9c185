//! `scanpay refund`: refunds a paid order, whole or in part, for the store
//! manager. Everything that can be checked here is checked before anything
//! is journaled or sent; the out_refund_no is committed before the request
//! leaves, and every retry (here or by `scanpay replay`) reuses it.

use time::OffsetDateTime;

use super::{Exit, err, out};
use crate::domain::{Fen, check_body};
use crate::journal::{EventRecord, OrderRow, OrderState, RefundRefusal, unix_ms};
use crate::payment::Event;
use crate::payment::refund::{RefundFinal, RefundMachine};
use crate::payment::refunding::{RefundResult, refund_timings};
use crate::startup::Running;

/// WeChat refunds an order within a year of its payment.
const REFUND_WITHIN_MS: i64 = 365 * 24 * 60 * 60 * 1000;

pub struct RefundArgs {
    pub order: String,
    pub amount: Option<String>,
    pub reason: Option<String>,
    pub json: bool,
}

/// One JSON object (with `--json`) or one line, and the exit code.
fn finish(args: &RefundArgs, exit: Exit, fields: serde_json::Value, line: String) -> Exit {
    if args.json {
        let mut object = fields;
        object["exit"] = serde_json::json!(exit as u8);
        out(object);
    } else {
        out(line);
    }
    exit
}

fn refused(args: &RefundArgs, exit: Exit, message: String) -> Exit {
    err(format_args!("scanpay refund: {message}"));
    let fields = serde_json::json!({
        "out_trade_no": args.order, "out_refund_no": null, "state": null, "amount": null,
        "refund_id": null, "err_code": null, "message": message,
    });
    if args.json {
        finish(args, exit, fields, String::new())
    } else {
        exit
    }
}

pub async fn run(args: RefundArgs, running: Running) -> Exit {
    let journal = &running.engine.journal;
    let no = args.order.clone();
    let order = match journal.run(move |j| j.order_by_trade_no(&no)).await {
        Ok(Some(order)) => order,
        Ok(None) => {
            let message = format!(
                "no order {} in the journal: check the number (`scanpay journal` lists them)",
                args.order
            );
            return refused(&args, Exit::BadInput, message);
        }
        Err(e) => return refused(&args, Exit::Internal, e.to_string()),
    };
    if let Err(message) = refundable(&order, unix_ms(OffsetDateTime::now_utc())) {
        return refused(&args, Exit::BadInput, message);
    }
    let amount = match &args.amount {
        None => None,
        Some(text) => match Fen::parse_yuan_within(text, order.total_fee) {
            Ok(fen) => Some(fen),
            Err(e) => return refused(&args, Exit::BadInput, format!("--amount {text:?}: {e}")),
        },
    };
    if let Some(reason) = &args.reason
        && let Err(e) = check_body(reason)
    {
        return refused(&args, Exit::BadInput, format!("--reason: {e}"));
    }
    // Without --amount: all that remains, read inside the same transaction.
    let reason = args.reason.clone();
    let opened_order = order.clone();
    let opened = journal
        .run(move |j| {
            let used: u64 = j
                .refunds_of(opened_order.id)?
                .iter()
                .filter(|r| r.state.holds_money())
                .map(|r| r.refund_fee.0)
                .sum();
            let fee = amount.unwrap_or(Fen(opened_order.total_fee.0.saturating_sub(used)));
            if fee.0 == 0 {
                return Ok(Err(RefundRefusal::TooMuch {
                    no: opened_order.out_trade_no.to_string(),
                    total: opened_order.total_fee,
                    used: Fen(used),
                    remaining: Fen(0),
                }));
            }
            let now = OffsetDateTime::now_utc();
            let reason_text = reason.clone();
            j.open_refund(
                &opened_order,
                fee,
                reason.as_deref(),
                |out_refund_no| EventRecord {
                    at: now,
                    since_t0_ms: None,
                    summary: format!("refund {out_refund_no} opened: {fee} yuan"),
                    event: Event::RefundOpened {
                        out_refund_no: out_refund_no.to_string(),
                        refund_fee: fee.0,
                        reason: reason_text,
                    },
                },
                now,
            )
        })
        .await;
    let refund = match opened {
        Ok(Ok(refund)) => refund,
        Ok(Err(refusal)) => return refused(&args, Exit::BadInput, refusal.to_string()),
        Err(e) => {
            return refused(
                &args,
                Exit::JournalUnavailable,
                format!("{e}: nothing was sent"),
            );
        }
    };
    let machine = RefundMachine::new(refund_timings(&running.engine.timings));
    match running.engine.drive_refund(&order, refund, machine).await {
        Ok(result) => report(&args, &order, &result),
        Err(e) => {
            let message = format!(
                "{e} — the refund is journaled under its number; `scanpay replay` follows it up and never refunds twice"
            );
            refused(&args, Exit::NeedsAttention, message)
        }
    }
}

/// Why `order` cannot be refunded at all, if it cannot.
fn refundable(order: &OrderRow, now_ms: i64) -> Result<(), String> {
    if order.state != OrderState::Paid {
        return Err(format!(
            "order {} is {}, not paid: only a paid order can be refunded",
            order.out_trade_no,
            order.state.as_str()
        ));
    }
    if now_ms.saturating_sub(order.created_at_ms) > REFUND_WITHIN_MS {
        return Err(format!(
            "order {} was paid more than a year ago: WeChat refunds only within a year; settle it with the customer another way",
            order.out_trade_no
        ));
    }
    Ok(())
}

fn report(args: &RefundArgs, order: &OrderRow, result: &RefundResult) -> Exit {
    let exit = match &result.outcome {
        RefundFinal::Refunded { .. } => Exit::OK,
        RefundFinal::Refused(_) | RefundFinal::Closed => Exit::Failed,
        RefundFinal::Processing | RefundFinal::Unclear(_) | RefundFinal::Change => {
            Exit::NeedsAttention
        }
    };
    let refund_id = match &result.outcome {
        RefundFinal::Refunded { refund_id } => Some(refund_id.as_str()),
        _ => None,
    };
    let err_code = match &result.outcome {
        RefundFinal::Refused(r) => Some(r.code.clone()),
        RefundFinal::Unclear(u) => Some(u.code().to_string()),
        _ => None,
    };
    let fields = serde_json::json!({
        "out_trade_no": order.out_trade_no.as_str(),
        "out_refund_no": result.out_refund_no,
        "state": result.state().as_str(),
        "amount": result.amount.to_string(),
        "refund_id": refund_id,
        "err_code": err_code,
        "message": result.message,
    });
    let line = format!(
        "{} ¥{} · order {} · refund {}{} — {}",
        result.state().as_str().to_uppercase(),
        result.amount,
        order.out_trade_no,
        result.out_refund_no,
        refund_id
            .map(|id| format!(" · refund_id {id}"))
            .unwrap_or_default(),
        result.message
    );
    finish(args, exit, fields, line)
}
