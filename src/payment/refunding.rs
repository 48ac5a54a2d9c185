//! The thin async driver around [`RefundMachine`]: journal, send, feed back,
//! in that order — every refund request is journaled before it leaves and
//! every answer before the machine sees it, all conditional on this process
//! still driving the refund.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::driver::{Engine, journal_fields};
use super::event::{Event, RefundReply};
use super::refund::{RefundCall, RefundFinal, RefundMachine, RefundStep, RefundTimings};
use crate::domain::Fen;
use crate::fault;
use crate::journal::{
    EventRecord, JournalError, OrderRow, RefundEnd, RefundRefusal, RefundRow, RefundState,
};
use crate::wechat::api::{self, Expected};
use crate::wechat::client::Endpoint;
use crate::wechat::messages::Language;
use crate::wechat::refund::{
    RefundOrder, classify_refund, classify_refund_query, refund_query_request, refund_request,
};

/// How a refund run ended, for the command that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    pub out_refund_no: String,
    pub amount: Fen,
    pub outcome: RefundFinal,
    pub message: String,
}

impl RefundResult {
    pub fn state(&self) -> RefundState {
        self.outcome.state()
    }
}

impl RefundFinal {
    pub fn state(&self) -> RefundState {
        match self {
            RefundFinal::Refunded { .. } => RefundState::Refunded,
            RefundFinal::Refused(_) => RefundState::Refused,
            RefundFinal::Closed => RefundState::Closed,
            RefundFinal::Change => RefundState::Change,
            RefundFinal::Processing => RefundState::Processing,
            RefundFinal::Unclear(_) => RefundState::Unclear,
        }
    }

    pub fn refund_id(&self) -> Option<&str> {
        match self {
            RefundFinal::Refunded { refund_id } => Some(refund_id),
            _ => None,
        }
    }

    /// The gateway's code (or ours) that explains the outcome.
    pub fn err_code(&self) -> Option<String> {
        match self {
            RefundFinal::Refused(refusal) => Some(refusal.code.clone()),
            RefundFinal::Unclear(unclear) => Some(unclear.code().to_string()),
            _ => None,
        }
    }
}

/// What the manager reads.
pub fn refund_message(outcome: &RefundFinal, language: Language) -> String {
    let zh = language == Language::Chinese;
    match (outcome, zh) {
        (RefundFinal::Refunded { .. }, true) => "退款成功".into(),
        (RefundFinal::Refunded { .. }, false) => "Refunded".into(),
        (RefundFinal::Refused(r), true) if r.code == "NOTENOUGH" => {
            "商户账户余额不足，请充值后用同一退款单号重试（scanpay replay）".into()
        }
        (RefundFinal::Refused(r), false) if r.code == "NOTENOUGH" => {
            "The merchant account's balance is too low: top it up, then retry".into()
        }
        (RefundFinal::Refused(r), true) => format!("退款被拒绝（{}）：{}", r.code, r.description),
        (RefundFinal::Refused(r), false) => {
            format!("WeChat refused the refund ({}): {}", r.code, r.description)
        }
        (RefundFinal::Closed, true) => "退款已关闭，未退款".into(),
        (RefundFinal::Closed, false) => "The refund was closed; nothing was refunded".into(),
        (RefundFinal::Change, true) => {
            "退款异常（用户的卡无法入账），请在微信支付商户平台处理".into()
        }
        (RefundFinal::Change, false) => {
            "The customer's card could not take the refund: settle it on the WeChat Pay merchant platform".into()
        }
        (RefundFinal::Processing, true) => "退款处理中；scanpay replay 会继续跟进".into(),
        (RefundFinal::Processing, false) => {
            "The refund is processing; `scanpay replay` follows it up".into()
        }
        (RefundFinal::Unclear(_), true) => {
            "退款结果未明；scanpay replay 会用同一退款单号继续处理，不会重复退款".into()
        }
        (RefundFinal::Unclear(_), false) => {
            "The refund's outcome is unclear; `scanpay replay` follows it up under the same number, never refunding twice".into()
        }
    }
}

/// Why [`Engine::refund`] refunded nothing, or could not see it through.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// Refused before anything was journaled or sent.
    #[error("{0}")]
    Refused(RefundRefusal),
    /// The journal could not record the refund, so nothing was sent.
    #[error("{0}: nothing was sent")]
    NotOpened(JournalError),
    #[error(transparent)]
    Interrupted(RefundInterrupted),
}

/// A journaled refund one of whose steps could not be recorded: its request
/// may have left, so the money may be on its way back and refunding the
/// order another way could pay it out twice.
#[derive(Debug, thiserror::Error)]
#[error(
    "a step of refund {out_refund_no} could not be recorded, so the journal does not know whether WeChat refunded it: do not refund that money another way, not even on the merchant platform; {follow_up}. ({cause})",
    follow_up = follow_up(cause)
)]
pub struct RefundInterrupted {
    pub out_refund_no: String,
    pub cause: JournalError,
}

fn follow_up(cause: &JournalError) -> &'static str {
    match cause {
        JournalError::Taken { .. } => "the scanpay process that took the refund over follows it up",
        _ => {
            "once the journal can be written, run `scanpay replay`: it follows the refund up under the same number and never refunds twice"
        }
    }
}

impl RefundInterrupted {
    fn of(refund: &RefundRow) -> impl FnOnce(JournalError) -> Self {
        let out_refund_no = refund.out_refund_no.clone();
        move |cause| Self {
            out_refund_no,
            cause,
        }
    }
}

impl Engine {
    /// Refunds `amount` of a paid `order`: the checks of
    /// [`refundable`](crate::journal::refundable) and the out_refund_no are
    /// made in one journal transaction before anything is sent, then the
    /// refund is driven to where WeChat leaves it. What `scanpay refund` and
    /// the journal screen both run.
    pub async fn refund(
        &self,
        order: &OrderRow,
        amount: Fen,
        reason: Option<String>,
    ) -> Result<RefundResult, RefundError> {
        let opened_order = order.clone();
        let opened = self
            .journal
            .run(move |j| {
                let now = OffsetDateTime::now_utc();
                let reason_text = reason.clone();
                j.open_refund(
                    &opened_order,
                    amount,
                    reason.as_deref(),
                    |out_refund_no| EventRecord {
                        at: now,
                        since_t0_ms: None,
                        summary: format!("refund {out_refund_no} opened: {amount} yuan"),
                        event: Event::RefundOpened {
                            out_refund_no: out_refund_no.to_string(),
                            refund_fee: amount.0,
                            reason: reason_text,
                        },
                    },
                    now,
                )
            })
            .await;
        let refund = match opened {
            Ok(Ok(refund)) => refund,
            Ok(Err(refusal)) => return Err(RefundError::Refused(refusal)),
            Err(e) => return Err(RefundError::NotOpened(e)),
        };
        let machine = RefundMachine::new(refund_timings(&self.timings));
        self.drive_refund(order, refund, machine)
            .await
            .map_err(RefundError::Interrupted)
    }

    /// Drives a refund this process owns to where WeChat leaves it: `machine`
    /// is new for a refund just opened, taken over for one replay follows up.
    pub async fn drive_refund(
        &self,
        order: &OrderRow,
        refund: RefundRow,
        mut machine: RefundMachine,
    ) -> Result<RefundResult, RefundInterrupted> {
        let started = Instant::now();
        let expected = Expected {
            merchant: &self.merchant,
            out_trade_no: &order.out_trade_no,
            total_fee: order.total_fee,
            transaction_id: order.transaction_id.as_deref(),
        };
        loop {
            let now = started.elapsed();
            match machine.step(now) {
                RefundStep::Send(call) => {
                    let nonce = api::nonce();
                    let (endpoint, fields) = match call {
                        RefundCall::Refund { .. } => (
                            Endpoint::Refund,
                            refund_request(
                                &self.merchant,
                                &RefundOrder {
                                    out_trade_no: &order.out_trade_no,
                                    out_refund_no: &refund.out_refund_no,
                                    total_fee: order.total_fee,
                                    refund_fee: refund.refund_fee,
                                    reason: refund.reason.as_deref(),
                                },
                                &nonce,
                            ),
                        ),
                        RefundCall::Query => (
                            Endpoint::RefundQuery,
                            refund_query_request(&self.merchant, &refund.out_refund_no, &nonce),
                        ),
                    };
                    let record = EventRecord {
                        at: OffsetDateTime::now_utc(),
                        since_t0_ms: None,
                        summary: match call {
                            RefundCall::Refund { attempt } => format!(
                                "refund {} sent (attempt {attempt}): {} yuan",
                                refund.out_refund_no, refund.refund_fee
                            ),
                            RefundCall::Query => {
                                format!("refundquery sent for {}", refund.out_refund_no)
                            }
                        },
                        event: Event::RefundRequest {
                            out_refund_no: refund.out_refund_no.clone(),
                            call,
                            fields: journal_fields(&fields),
                        },
                    };
                    self.refund_event(&refund, record).await?;
                    if matches!(call, RefundCall::Refund { .. }) {
                        fault::hit(fault::Point::RefundJournaled);
                    }
                    let answer = self.gateway.post(endpoint, &fields).await;
                    let raw = answer.as_ref().ok().map(journal_fields);
                    let reply = match call {
                        RefundCall::Refund { .. } => RefundReply::Refund(classify_refund(
                            answer,
                            &expected,
                            &refund.out_refund_no,
                        )),
                        RefundCall::Query => RefundReply::Query(classify_refund_query(
                            answer,
                            &expected,
                            &refund.out_refund_no,
                        )),
                    };
                    fault::hit(fault::Point::RefundAnswered);
                    let record = EventRecord {
                        at: OffsetDateTime::now_utc(),
                        since_t0_ms: None,
                        summary: format!("{} answer: {reply:?}", call.name()),
                        event: Event::RefundAnswer {
                            out_refund_no: refund.out_refund_no.clone(),
                            answer: reply.clone(),
                            fields: raw,
                        },
                    };
                    self.refund_event(&refund, record).await?;
                    let now = started.elapsed();
                    match reply {
                        RefundReply::Refund(answer) => machine.on_refund(answer, now),
                        RefundReply::Query(answer) => machine.on_query(answer, now),
                    }
                }
                RefundStep::WaitUntil(at) => {
                    tokio::time::sleep_until(started + at).await;
                }
                RefundStep::AwaitAnswer => {
                    unreachable!("the driver feeds every answer before stepping again")
                }
                RefundStep::Done(outcome) => {
                    let message = refund_message(&outcome, self.language);
                    let end = RefundEnd {
                        state: outcome.state(),
                        refund_id: outcome.refund_id().map(str::to_string),
                        err_code: outcome.err_code(),
                        message: Some(message.clone()),
                        at: OffsetDateTime::now_utc(),
                    };
                    let record = EventRecord {
                        at: end.at,
                        since_t0_ms: None,
                        summary: format!(
                            "refund {} {}: {message}",
                            refund.out_refund_no,
                            end.state.as_str()
                        ),
                        event: Event::RefundFinished {
                            out_refund_no: refund.out_refund_no.clone(),
                            outcome: outcome.clone(),
                        },
                    };
                    let row = refund.clone();
                    self.journal
                        .run(move |journal| journal.finish_refund(&row, &end, &record))
                        .await
                        .map_err(RefundInterrupted::of(&refund))?;
                    return Ok(RefundResult {
                        out_refund_no: refund.out_refund_no,
                        amount: refund.refund_fee,
                        outcome,
                        message,
                    });
                }
            }
        }
    }

    async fn refund_event(
        &self,
        refund: &RefundRow,
        record: EventRecord,
    ) -> Result<(), RefundInterrupted> {
        let row = refund.clone();
        self.journal
            .run(move |journal| journal.append_refund_event(&row, &record))
            .await
            .map_err(RefundInterrupted::of(refund))
    }
}

/// The refund timings scaled like the payment's (tests, rehearsals): the
/// payment's retry interval between sends, its poll interval between queries.
pub fn refund_timings(timings: &super::Timings) -> RefundTimings {
    let defaults = RefundTimings::default();
    let scale = |d: Duration, reference: Duration, ours: Duration| {
        ours.mul_f64(d.as_secs_f64() / reference.as_secs_f64())
    };
    let payment = super::Timings::default();
    RefundTimings {
        retry_interval: scale(
            timings.reverse_retry_interval,
            payment.reverse_retry_interval,
            defaults.retry_interval,
        ),
        query_interval: scale(
            timings.poll_interval,
            payment.poll_interval,
            defaults.query_interval,
        ),
        ..defaults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_refund_is_told_as_a_refund_with_what_follows_it_up() {
        let interrupted = |cause| {
            RefundInterrupted {
                out_refund_no: "T01XR01".into(),
                cause,
            }
            .to_string()
        };
        let busy = interrupted(JournalError::Busy {
            path: "j.sqlite3".into(),
        });
        assert!(busy.contains("refund T01XR01"), "{busy}");
        assert!(busy.contains("do not refund that money"), "{busy}");
        assert!(busy.contains("run `scanpay replay`"), "{busy}");
        assert!(!busy.contains("payment"), "{busy}");
        let taken = interrupted(JournalError::Taken {
            out_trade_no: "T01XR01".into(),
            owner: "42-ABC".into(),
        });
        assert!(taken.contains("took the refund over"), "{taken}");
        assert!(!taken.contains("scanpay replay"), "{taken}");
    }
}
