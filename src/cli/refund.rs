//! `scanpay refund`: refunds a paid order, whole or in part, for the store
//! manager. Everything that can be checked here is checked before anything
//! is journaled or sent; the out_refund_no is committed before the request
//! leaves, and every retry (here or by `scanpay replay`) reuses it.

use time::OffsetDateTime;

use super::{Exit, err, out};
use crate::domain::{Fen, check_body};
use crate::journal::{OrderRow, RefundTotals, refundable, unix_ms};
use crate::payment::refund::RefundFinal;
use crate::payment::refunding::{RefundError, RefundResult};
use crate::startup::Running;

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
    let found = journal
        .run(move |j| match j.order_by_trade_no(&no)? {
            Some(order) => {
                let totals = RefundTotals::of(&j.refunds_of(order.id)?);
                Ok(Some((order, totals)))
            }
            None => Ok(None),
        })
        .await;
    let (order, totals) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            let message = format!(
                "no order {} in the journal: check the number (`scanpay journal` lists them)",
                args.order
            );
            return refused(&args, Exit::BadInput, message);
        }
        Err(e) => return refused(&args, Exit::Internal, e.to_string()),
    };
    // The journal screen makes the same checks (journal::refundable).
    let remaining = match refundable(&order, &totals, unix_ms(OffsetDateTime::now_utc())) {
        Ok(remaining) => remaining,
        Err(refusal) => return refused(&args, Exit::BadInput, refusal.to_string()),
    };
    let amount = match &args.amount {
        // All that remains; open_refund refuses it if a refund in between
        // took some of it.
        None => remaining,
        Some(text) => match Fen::parse_yuan_within(text, order.total_fee) {
            Ok(fen) => fen,
            Err(e) => return refused(&args, Exit::BadInput, format!("--amount {text:?}: {e}")),
        },
    };
    if let Some(reason) = &args.reason
        && let Err(e) = check_body(reason)
    {
        return refused(&args, Exit::BadInput, format!("--reason: {e}"));
    }
    match running
        .engine
        .refund(&order, amount, args.reason.clone())
        .await
    {
        Ok(result) => report(&args, &order, &result),
        Err(e @ RefundError::Refused(_)) => refused(&args, Exit::BadInput, e.to_string()),
        Err(e @ RefundError::NotOpened(_)) => {
            refused(&args, Exit::JournalUnavailable, e.to_string())
        }
        Err(e @ RefundError::Interrupted(_)) => refused(&args, Exit::NeedsAttention, e.to_string()),
    }
}

fn report(args: &RefundArgs, order: &OrderRow, result: &RefundResult) -> Exit {
    let exit = match &result.outcome {
        RefundFinal::Refunded { .. } => Exit::OK,
        RefundFinal::Refused(_) | RefundFinal::Closed => Exit::Failed,
        RefundFinal::Processing | RefundFinal::Unclear(_) | RefundFinal::Change => {
            Exit::NeedsAttention
        }
    };
    let refund_id = result.outcome.refund_id();
    let fields = serde_json::json!({
        "out_trade_no": order.out_trade_no.as_str(),
        "out_refund_no": result.out_refund_no,
        "state": result.state().as_str(),
        "amount": result.amount.to_string(),
        "refund_id": refund_id,
        "err_code": result.outcome.err_code(),
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
