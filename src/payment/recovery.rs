//! Orders the journal shows unfinished — a crash, a power cut, an outage —
//! and how each is taken to its end without charging anyone twice.
//!
//! [`plan`] is pure: from the order's row and its events it decides. Only
//! what the journal proves is taken as final (a verified answer journaled but
//! not acted on, or a micropay whose intent was never written, so never
//! sent). Everything else is asked of the gateway again: always a query
//! first, a reverse only if still unclear, never a second micropay, and the
//! 15 s rule counted from the original send by the journal's wall clock.

use std::time::Duration;

use super::driver::{Engine, EngineError, PaymentResult};
use super::machine::{Final, Resume};
use super::policy::Timings;
use crate::journal::{EventKind, EventRow, OrderRow};
use crate::wechat::api::{Refusal, Settlement};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The micropay intent was never journaled, so nothing left the till.
    NotSent,
    /// A verified answer was journaled before the interruption.
    Finish(Final),
    /// Ask the gateway, `elapsed` after the micropay was sent.
    Resume { from: Resume, elapsed: Duration },
}

/// The intent is journaled just before the request leaves; counting the send
/// this much later keeps every "not before" rule on the safe side of the
/// fsync-to-send gap (1 s with WeChat's 15 s).
fn send_margin(timings: &Timings) -> Duration {
    timings.reverse_not_before / 15
}

pub fn plan(order: &OrderRow, events: &[EventRow], now_ms: i64, timings: &Timings) -> Plan {
    let Some(sent_ms) = order.micropay_sent_at_ms else {
        return Plan::NotSent;
    };
    for event in events.iter().filter(|e| e.kind == EventKind::Answer) {
        let class = event.detail["class"].as_str().unwrap_or("");
        let field = |name: &str| event.detail["fields"][name].as_str().map(str::to_string);
        match (event.call.as_deref(), class) {
            (Some("micropay" | "orderquery"), "PAID") => {
                if let Some(transaction_id) = field("transaction_id") {
                    let cash_fee = field("cash_fee").and_then(|f| f.parse().ok());
                    return Plan::Finish(Final::Paid(Settlement {
                        transaction_id,
                        time_end: field("time_end"),
                        cash_fee,
                    }));
                }
            }
            (Some("micropay"), "FAILED") => {
                let reason = event.detail["reason"].as_str().unwrap_or("");
                let code = field("err_code").unwrap_or_else(|| {
                    reason
                        .split_whitespace()
                        .next()
                        .unwrap_or("FAILED")
                        .to_string()
                });
                let description = field("err_code_des").unwrap_or_else(|| reason.to_string());
                return Plan::Finish(Final::Failed(Refusal { code, description }));
            }
            _ => {}
        }
    }
    let reversed = events
        .iter()
        .any(|e| e.kind == EventKind::Request && e.call.as_deref() == Some("reverse"));
    let since_send = now_ms.saturating_sub(sent_ms).max(0) as u64;
    // A clock that went backwards gives 0: the rules then wait their full time.
    let elapsed = Duration::from_millis(since_send).saturating_sub(send_margin(timings));
    Plan::Resume {
        from: if reversed {
            Resume::AfterReverse
        } else {
            Resume::Query
        },
        elapsed,
    }
}

/// Takes one unfinished or unclear order to its end. `refund_paid` is a
/// person's decision to reverse it even if the gateway reports it paid.
pub async fn resolve(
    engine: &Engine,
    order: &OrderRow,
    now_ms: i64,
    refund_paid: bool,
) -> Result<PaymentResult, EngineError> {
    let events = engine.events(order)?;
    let plan = match plan(order, &events, now_ms, &engine.timings) {
        // A person's decision to refund overrides a journaled "paid".
        Plan::Finish(Final::Paid(_)) if refund_paid => {
            let sent = order.micropay_sent_at_ms.unwrap_or(now_ms);
            let elapsed = Duration::from_millis(now_ms.saturating_sub(sent).max(0) as u64);
            Plan::Resume {
                from: Resume::Query,
                elapsed: elapsed.saturating_sub(send_margin(&engine.timings)),
            }
        }
        plan => plan,
    };
    match plan {
        Plan::NotSent => engine.finish_from_journal(
            order,
            Final::CancelledBeforeSending,
            "interrupted before the micropay was sent: nobody was charged",
        ),
        Plan::Finish(outcome) => engine.finish_from_journal(
            order,
            outcome,
            "a verified answer was journaled before the interruption",
        ),
        Plan::Resume { from, elapsed } => {
            let (progress, _) = tokio::sync::mpsc::unbounded_channel();
            engine
                .resume(order, from, refund_paid, elapsed, progress)
                .await
        }
    }
}

/// Resolves `orders` concurrently, sending each outcome as it comes.
pub fn resolve_all(
    engine: &Engine,
    orders: Vec<OrderRow>,
    now_ms: i64,
    done: tokio::sync::mpsc::UnboundedSender<(OrderRow, Result<PaymentResult, String>)>,
) {
    for order in orders {
        let engine = engine.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let result = resolve(&engine, &order, now_ms, false)
                .await
                .map_err(|e| e.to_string());
            let _ = done.send((order, result));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Fen, OutTradeNo, TillId};
    use crate::journal::{OrderId, OrderState};
    use serde_json::json;

    fn order(sent: Option<i64>) -> OrderRow {
        OrderRow {
            id: OrderId(1),
            out_trade_no: OutTradeNo::parse("T0120261123142353000001").unwrap(),
            till_id: TillId::parse("T01").unwrap(),
            total_fee: Fen(1234),
            body: "b".into(),
            auth_code_masked: "**************6076".into(),
            created_at_ms: 1_000_000,
            micropay_sent_at_ms: sent,
            state: OrderState::Open,
            finished_at_ms: None,
            transaction_id: None,
            err_code: None,
            message: None,
        }
    }

    fn event(kind: EventKind, call: &str, detail: serde_json::Value) -> EventRow {
        EventRow {
            id: 1,
            order_id: OrderId(1),
            at_ms: 0,
            since_t0_ms: None,
            kind,
            call: Some(call.into()),
            summary: String::new(),
            detail,
        }
    }

    fn answer(call: &str, class: &str, fields: serde_json::Value) -> EventRow {
        event(
            EventKind::Answer,
            call,
            json!({ "class": class, "reason": "SYSTEMERROR 系统错误", "fields": fields }),
        )
    }

    /// WeChat's own timings: the margin is then 1 s.
    fn timings() -> Timings {
        Timings::default()
    }

    #[test]
    fn no_intent_means_nothing_was_sent() {
        assert_eq!(
            plan(&order(None), &[], 2_000_000, &timings()),
            Plan::NotSent
        );
    }

    #[test]
    fn a_journaled_verified_answer_is_final() {
        let paid = answer(
            "orderquery",
            "PAID",
            json!({ "transaction_id": "4200000001", "cash_fee": "1234" }),
        );
        assert!(
            matches!(plan(&order(Some(1_000_000)), &[paid], 1_005_000, &timings()), Plan::Finish(Final::Paid(s)) if s.transaction_id == "4200000001")
        );
        let failed = answer(
            "micropay",
            "FAILED",
            json!({ "err_code": "NOTENOUGH", "err_code_des": "余额不足" }),
        );
        assert_eq!(
            plan(&order(Some(1_000_000)), &[failed], 1_005_000, &timings()),
            Plan::Finish(Final::Failed(Refusal {
                code: "NOTENOUGH".into(),
                description: "余额不足".into()
            }))
        );
    }

    #[test]
    fn anything_unclear_is_asked_again_with_the_time_since_the_send() {
        let unclear = answer("micropay", "UNKNOWN", json!({}));
        assert_eq!(
            plan(
                &order(Some(1_000_000)),
                std::slice::from_ref(&unclear),
                1_004_000,
                &timings()
            ),
            Plan::Resume {
                from: Resume::Query,
                elapsed: Duration::from_secs(3)
            },
            "4 s by the wall clock, less the 1 s margin"
        );
        let reverse = event(EventKind::Request, "reverse", json!({}));
        assert_eq!(
            plan(
                &order(Some(1_000_000)),
                &[unclear, reverse],
                1_060_000,
                &timings()
            ),
            Plan::Resume {
                from: Resume::AfterReverse,
                elapsed: Duration::from_secs(59)
            }
        );
        assert_eq!(
            plan(&order(Some(1_000_000)), &[], 900_000, &timings()),
            Plan::Resume {
                from: Resume::Query,
                elapsed: Duration::ZERO
            },
            "a clock that went backwards waits the full time"
        );
    }
}
