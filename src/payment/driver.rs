//! The thin async driver around [`Machine`]: it journals, sends, listens for
//! the cashier, and sleeps until the machine's next instant. It decides
//! nothing; the order of its steps is what keeps invariant 4:
//! every request is journaled before it is sent, every answer before the
//! machine sees it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;
use time::{OffsetDateTime, UtcOffset};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::machine::{Call, Final, Machine, Resume, Status, Step};
use super::policy::Timings;
use crate::domain::{AuthCode, Fen, OutTradeNo, TillId};
use crate::fault;
use crate::journal::{
    EventKind, EventRecord, EventRow, FinalRecord, Journal, JournalError, NewOrder, OrderId,
    OrderRow, OrderState,
};
use crate::wechat::Fields;
use crate::wechat::api::{
    self, Expected, Merchant, MicropayOrder, MicropayOutcome, QueryOutcome, ReverseOutcome,
};
use crate::wechat::client::{Endpoint, GatewayClient};
use crate::wechat::messages::Language;

/// The journal, shared by the engine and the screens that read it.
pub type SharedJournal = Arc<Mutex<Journal>>;

/// One payment to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub amount: Fen,
    pub body: String,
    pub auth_code: AuthCode,
}

/// What a payment reports while it runs, for a screen or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The order is journaled under this number.
    Opened {
        out_trade_no: OutTradeNo,
    },
    /// The machine's state changed; `elapsed` is the time since the micropay was sent.
    Status {
        status: Status,
        elapsed: Duration,
    },
    Finished(PaymentResult),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentResult {
    pub out_trade_no: OutTradeNo,
    pub amount: Fen,
    pub outcome: Final,
    /// The cashier's message in the configured language.
    pub message: String,
}

impl PaymentResult {
    pub fn state(&self) -> OrderState {
        self.outcome.state()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the journal could not be written ({0}); {1} Free disk space or fix the journal's permissions, then restart scanpay: unfinished orders are recovered from the journal"
    )]
    Journal(JournalError, &'static str),
}

/// Everything a payment needs; cheap to clone into a task.
#[derive(Clone)]
pub struct Engine {
    pub gateway: GatewayClient,
    pub merchant: Merchant,
    pub journal: SharedJournal,
    pub timings: Timings,
    pub till: TillId,
    pub spbill_create_ip: String,
    pub store_offset: UtcOffset,
    pub language: Language,
}

impl Engine {
    /// Takes one payment to its end. `cancel` turning true is the cashier's
    /// cancel key. An error means the journal failed: the order is left open
    /// in it, for recovery.
    pub async fn pay(
        &self,
        request: PaymentRequest,
        progress: mpsc::UnboundedSender<Progress>,
        cancel: watch::Receiver<bool>,
    ) -> Result<PaymentResult, EngineError> {
        let new = NewOrder {
            till: &self.till,
            total_fee: request.amount,
            body: &request.body,
            auth_code_masked: request.auth_code.masked(),
            now: OffsetDateTime::now_utc(),
            local_offset: self.store_offset,
        };
        let (order, out_trade_no) = {
            let mut journal = self.lock();
            journal
                .open_order(&new)
                .map_err(|e| EngineError::Journal(e, "nothing was sent, so nobody was charged."))?
        };
        let _ = progress.send(Progress::Opened {
            out_trade_no: out_trade_no.clone(),
        });
        fault::hit(fault::Point::OrderJournaled);
        let span = tracing::info_span!("payment", %out_trade_no, amount = %request.amount, code = %request.auth_code);
        let machine = Machine::new(self.timings);
        let amount = request.amount;
        self.drive(
            order,
            out_trade_no,
            amount,
            Some(request),
            machine,
            Clock::default(),
            progress,
            cancel,
        )
        .instrument(span)
        .await
    }

    /// Takes an order left unfinished in the journal (a crash, an outage) to
    /// its end, starting `from` a query or a reverse. `elapsed` is the time
    /// since its micropay was sent, from the journal's wall clock; every rule
    /// keeps counting from that send. No micropay is ever sent again.
    pub async fn resume(
        &self,
        order: &OrderRow,
        from: Resume,
        refund_paid: bool,
        elapsed: Duration,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<PaymentResult, EngineError> {
        let note = EventRecord {
            at: OffsetDateTime::now_utc(),
            since_t0_ms: Some(elapsed.as_millis() as u64),
            kind: EventKind::Note,
            call: None,
            summary: format!(
                "resumed {:.1} s after the micropay was sent: {}",
                elapsed.as_secs_f64(),
                match (from, refund_paid) {
                    (_, true) =>
                        "refunding on a person's decision: querying, then reversing even if paid",
                    (Resume::Query, false) => "querying, then reversing if still unclear",
                    (Resume::AfterReverse, false) => {
                        "a reverse had been sent: querying, and reversing again if still unclear"
                    }
                }
            ),
            detail: json!({ "resume": format!("{from:?}"), "refund_paid": refund_paid, "elapsed_ms": elapsed.as_millis() as u64 }),
        };
        self.lock()
            .append(order.id, &note)
            .map_err(|e| EngineError::Journal(e, "the order is left open."))?;
        let span = tracing::info_span!("recovery", out_trade_no = %order.out_trade_no, amount = %order.total_fee);
        // Nobody can press cancel on a recovered order: a sender that is gone never fires.
        let (_, cancel) = watch::channel(false);
        let mut machine = Machine::resume(self.timings, from, elapsed);
        if refund_paid {
            machine = machine.refunding_paid();
        }
        self.drive(
            order.id,
            order.out_trade_no.clone(),
            order.total_fee,
            None,
            machine,
            Clock::resumed(elapsed),
            progress,
            cancel,
        )
        .instrument(span)
        .await
    }

    /// The order's journaled events.
    pub fn events(&self, order: &OrderRow) -> Result<Vec<EventRow>, EngineError> {
        self.lock()
            .events(order.id)
            .map_err(|e| EngineError::Journal(e, "the order is left as it was."))
    }

    /// Ends an order from what the journal already proves (a verified answer
    /// that was journaled but not acted on, or a micropay never sent).
    pub fn finish_from_journal(
        &self,
        order: &OrderRow,
        outcome: Final,
        why: &str,
    ) -> Result<PaymentResult, EngineError> {
        let message = outcome.message(self.language);
        let at = OffsetDateTime::now_utc();
        let record = FinalRecord {
            state: outcome.state(),
            transaction_id: outcome.transaction_id().map(str::to_string),
            err_code: outcome.err_code(),
            message: Some(message.clone()),
            at,
        };
        let event = EventRecord {
            at,
            since_t0_ms: None,
            kind: EventKind::Finished,
            call: None,
            summary: format!(
                "finished from the journal: {} — {why}",
                record.state.as_str()
            ),
            detail: json!({ "state": record.state.as_str(), "err_code": record.err_code, "transaction_id": record.transaction_id }),
        };
        self.lock()
            .finish(order.id, &record, &event)
            .map_err(|e| EngineError::Journal(e, "the order is left open."))?;
        tracing::info!(out_trade_no = %order.out_trade_no, state = record.state.as_str(), "finished from the journal");
        Ok(PaymentResult {
            out_trade_no: order.out_trade_no.clone(),
            amount: order.total_fee,
            outcome,
            message,
        })
    }

    /// Runs the machine for a journaled order until it is done.
    #[allow(clippy::too_many_arguments)] // the parts of one order in flight; a struct would only rename them
    async fn drive(
        &self,
        order: OrderId,
        out_trade_no: OutTradeNo,
        amount: Fen,
        request: Option<PaymentRequest>,
        mut machine: Machine,
        mut clock: Clock,
        progress: mpsc::UnboundedSender<Progress>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<PaymentResult, EngineError> {
        tracing::info!("order opened");
        let in_flight = "the order is left open.";
        let before_send = "nothing was sent, so nobody was charged.";

        let expected = Expected {
            merchant: &self.merchant,
            out_trade_no: &out_trade_no,
            total_fee: amount,
        };
        let mut cancel_pending = !*cancel.borrow();
        if !cancel_pending {
            machine.cancel(Duration::ZERO);
        }
        let mut last_status = None;

        loop {
            // Step first: sending moves the machine to "querying"/"reversing",
            // which is what the cashier should see while the request is out.
            let step = machine.step(clock.now());
            let status = machine.status();
            if last_status.as_ref() != Some(&status) && !matches!(status, Status::Done(_)) {
                let _ = progress.send(Progress::Status {
                    status: status.clone(),
                    elapsed: clock.now(),
                });
                last_status = Some(status);
            }
            match step {
                Step::Send(call) => {
                    tracing::debug!(
                        call = call.name(),
                        "request due: journaling it, then sending"
                    );
                    let fields = self.request(call, &out_trade_no, request.as_ref());
                    let record = request_event(call, &fields, amount, clock.sent());
                    let stage = if call == Call::Micropay {
                        before_send
                    } else {
                        in_flight
                    };
                    {
                        let mut journal = self.lock();
                        let written = match call {
                            Call::Micropay => journal.record_micropay_intent(order, &record),
                            _ => journal.append(order, &record),
                        };
                        written.map_err(|e| EngineError::Journal(e, stage))?;
                    }
                    match call {
                        Call::Micropay => {
                            fault::hit(fault::Point::IntentJournaled);
                            clock.start();
                        }
                        Call::Reverse { .. } => fault::hit(fault::Point::ReverseJournaled),
                        Call::Query => {}
                    }
                    tracing::info!(
                        call = call.name(),
                        elapsed_ms = clock.now().as_millis() as u64,
                        "request sent"
                    );
                    let send = self.gateway.post(endpoint(call), &fields);
                    tokio::pin!(send);
                    let answer = loop {
                        tokio::select! {
                            answer = &mut send => break answer,
                            () = cancelled(&mut cancel), if cancel_pending => {
                                cancel_pending = false;
                                self.cashier_cancel(&mut machine, order, clock.now())?;
                            }
                        }
                    };
                    fault::hit(fault::Point::AnswerReceived);
                    let now = clock.now();
                    let raw = answer.clone().ok();
                    let classified = Classified::new(call, answer, &expected);
                    let (class, reason) = classified.describe();
                    let record = EventRecord {
                        at: OffsetDateTime::now_utc(),
                        since_t0_ms: Some(now.as_millis() as u64),
                        kind: EventKind::Answer,
                        call: Some(call.name().to_string()),
                        summary: format!(
                            "{} answer: {class}{}",
                            call.name(),
                            if reason.is_empty() {
                                String::new()
                            } else {
                                format!(" — {reason}")
                            }
                        ),
                        detail: json!({ "class": class, "reason": reason, "fields": raw.as_ref().map(journal_fields) }),
                    };
                    self.lock()
                        .append(order, &record)
                        .map_err(|e| EngineError::Journal(e, in_flight))?;
                    tracing::info!(call = call.name(), class, reason = %reason, elapsed_ms = now.as_millis() as u64, "answer");
                    fault::hit(fault::Point::AnswerJournaled);
                    classified.feed(&mut machine, now);
                }
                Step::WaitUntil(at) => {
                    let wake = clock.instant_of(at);
                    tokio::select! {
                        () = tokio::time::sleep_until(wake) => {
                            let what = match machine.status() {
                                Status::ReverseDue { .. } => "reverse due",
                                _ => "query due",
                            };
                            let record = EventRecord {
                                at: OffsetDateTime::now_utc(),
                                since_t0_ms: Some(clock.now().as_millis() as u64),
                                kind: EventKind::Timer,
                                call: None,
                                summary: format!("timer: {what} at {} ms", at.as_millis()),
                                detail: json!({ "due_ms": at.as_millis() as u64 }),
                            };
                            self.lock().append(order, &record).map_err(|e| EngineError::Journal(e, in_flight))?;
                        }
                        () = cancelled(&mut cancel), if cancel_pending => {
                            cancel_pending = false;
                            self.cashier_cancel(&mut machine, order, clock.now())?;
                        }
                    }
                }
                Step::AwaitAnswer => {
                    unreachable!("the driver feeds every answer before stepping again")
                }
                Step::Done(outcome) => {
                    let message = outcome.message(self.language);
                    let record = FinalRecord {
                        state: outcome.state(),
                        transaction_id: outcome.transaction_id().map(str::to_string),
                        err_code: outcome.err_code(),
                        message: Some(message.clone()),
                        at: OffsetDateTime::now_utc(),
                    };
                    let event = EventRecord {
                        at: record.at,
                        since_t0_ms: clock.sent().map(|d| d.as_millis() as u64),
                        kind: EventKind::Finished,
                        call: None,
                        summary: format!("finished: {} — {message}", record.state.as_str()),
                        detail: json!({ "state": record.state.as_str(), "err_code": record.err_code, "transaction_id": record.transaction_id }),
                    };
                    self.lock()
                        .finish(order, &record, &event)
                        .map_err(|e| EngineError::Journal(e, in_flight))?;
                    tracing::info!(state = record.state.as_str(), err_code = ?record.err_code, "payment finished");
                    let result = PaymentResult {
                        out_trade_no,
                        amount,
                        outcome,
                        message,
                    };
                    let _ = progress.send(Progress::Finished(result.clone()));
                    return Ok(result);
                }
            }
        }
    }

    fn request(
        &self,
        call: Call,
        out_trade_no: &OutTradeNo,
        request: Option<&PaymentRequest>,
    ) -> Fields {
        let nonce = api::nonce();
        match call {
            Call::Micropay => {
                let request = request
                    .expect("only a new payment sends a micropay; a resumed machine starts later");
                api::micropay_request(
                    &self.merchant,
                    &MicropayOrder {
                        out_trade_no,
                        total_fee: request.amount,
                        body: &request.body,
                        auth_code: &request.auth_code,
                        device_info: self.till.as_str(),
                        spbill_create_ip: &self.spbill_create_ip,
                    },
                    &nonce,
                )
            }
            Call::Query => api::query_request(&self.merchant, out_trade_no, &nonce),
            Call::Reverse { .. } => api::reverse_request(&self.merchant, out_trade_no, &nonce),
        }
    }

    fn cashier_cancel(
        &self,
        machine: &mut Machine,
        order: OrderId,
        now: Duration,
    ) -> Result<(), EngineError> {
        let accepted = machine.cancel(now);
        let summary = if accepted {
            "cashier cancelled: the order will be reversed as soon as the rules allow"
        } else {
            "cashier cancelled too late: the order is already being reversed or finished"
        };
        tracing::info!(accepted, "cashier cancel");
        let record = EventRecord {
            at: OffsetDateTime::now_utc(),
            since_t0_ms: Some(now.as_millis() as u64),
            kind: EventKind::Cashier,
            call: None,
            summary: summary.to_string(),
            detail: json!({ "action": "cancel", "accepted": accepted }),
        };
        self.lock()
            .append(order, &record)
            .map_err(|e| EngineError::Journal(e, "the order is left open."))
    }

    fn lock(&self) -> MutexGuard<'_, Journal> {
        lock_journal(&self.journal)
    }
}

/// Time since the micropay was sent, on the monotonic clock. A resumed
/// order starts at the time that had already passed by the journal's wall
/// clock, so every rule keeps counting from the original send.
#[derive(Debug, Clone, Copy, Default)]
struct Clock {
    /// When this process started counting (the send, or the resume).
    anchor: Option<Instant>,
    /// Time since the send at `anchor`.
    offset: Duration,
}

impl Clock {
    fn resumed(elapsed: Duration) -> Self {
        Self {
            anchor: Some(Instant::now()),
            offset: elapsed,
        }
    }

    /// The micropay leaves now.
    fn start(&mut self) {
        self.anchor = Some(Instant::now());
    }

    fn now(&self) -> Duration {
        self.anchor
            .map_or(Duration::ZERO, |anchor| self.offset + anchor.elapsed())
    }

    /// The time since the send, once there was one.
    fn sent(&self) -> Option<Duration> {
        self.anchor.map(|_| self.now())
    }

    /// The monotonic instant at which the time since the send reaches `at`.
    fn instant_of(&self, at: Duration) -> Instant {
        let anchor = self
            .anchor
            .expect("the machine waits only once the micropay was sent");
        anchor + at.saturating_sub(self.offset)
    }
}

/// The shared journal, whoever holds it. A panic while holding the lock
/// leaves SQLite consistent (every write is a transaction), so a poisoned
/// lock is still a usable journal.
pub fn lock_journal(journal: &SharedJournal) -> MutexGuard<'_, Journal> {
    journal
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Resolves when the cashier presses cancel; never if the sender is gone.
async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|pressed| *pressed).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn endpoint(call: Call) -> Endpoint {
    match call {
        Call::Micropay => Endpoint::Micropay,
        Call::Query => Endpoint::OrderQuery,
        Call::Reverse { .. } => Endpoint::Reverse,
    }
}

/// Fields as the journal keeps them: no signature, and the payment code masked.
fn journal_fields(fields: &Fields) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = fields
        .iter()
        .filter(|(k, _)| *k != "sign")
        .map(|(k, v)| {
            let v = if k == "auth_code" {
                crate::domain::mask(v)
            } else {
                v.to_string()
            };
            (k.to_string(), serde_json::Value::String(v))
        })
        .collect();
    serde_json::Value::Object(map)
}

fn request_event(
    call: Call,
    fields: &Fields,
    amount: Fen,
    since_t0: Option<Duration>,
) -> EventRecord {
    let summary = match call {
        Call::Micropay => format!(
            "micropay sent: {amount} yuan, code {}",
            crate::domain::mask(fields.get("auth_code").unwrap_or(""))
        ),
        Call::Query => "orderquery sent".to_string(),
        Call::Reverse { attempt } => format!("reverse attempt {attempt} sent"),
    };
    EventRecord {
        at: OffsetDateTime::now_utc(),
        since_t0_ms: Some(since_t0.unwrap_or_default().as_millis() as u64),
        kind: EventKind::Request,
        call: Some(call.name().to_string()),
        summary,
        detail: json!({ "fields": journal_fields(fields) }),
    }
}

/// An answer once classified, for the journal line and for the machine.
enum Classified {
    Micropay(MicropayOutcome),
    Query(QueryOutcome),
    Reverse(ReverseOutcome),
}

impl Classified {
    fn new(call: Call, answer: api::Answer, expected: &Expected<'_>) -> Self {
        match call {
            Call::Micropay => Classified::Micropay(api::classify_micropay(answer, expected)),
            Call::Query => Classified::Query(api::classify_query(answer, expected)),
            Call::Reverse { .. } => Classified::Reverse(api::classify_reverse(answer, expected)),
        }
    }

    fn feed(self, machine: &mut Machine, now: Duration) {
        match self {
            Classified::Micropay(outcome) => machine.on_micropay(outcome, now),
            Classified::Query(outcome) => machine.on_query(outcome, now),
            Classified::Reverse(outcome) => machine.on_reverse(outcome, now),
        }
    }

    /// The class and the reason, as the journal and the log show them.
    fn describe(&self) -> (&'static str, String) {
        match self {
            Classified::Micropay(MicropayOutcome::Paid(paid)) => {
                ("PAID", format!("transaction {}", paid.transaction_id))
            }
            Classified::Micropay(MicropayOutcome::Pending) => (
                "PENDING",
                "USERPAYING: the customer confirms on the phone".into(),
            ),
            Classified::Micropay(MicropayOutcome::Unknown(why)) => ("UNKNOWN", why.to_string()),
            Classified::Micropay(MicropayOutcome::Failed(refusal)) => (
                "FAILED",
                format!("{} {}", refusal.code, refusal.description),
            ),
            Classified::Query(QueryOutcome::Paid(paid)) => {
                ("PAID", format!("transaction {}", paid.transaction_id))
            }
            Classified::Query(QueryOutcome::NotSettled(state)) => ("NOT_SETTLED", state.clone()),
            Classified::Query(QueryOutcome::PayError(desc)) => ("PAYERROR", desc.clone()),
            Classified::Query(QueryOutcome::Closed(state)) => ("CLOSED", state.clone()),
            Classified::Query(QueryOutcome::Refunded) => ("REFUNDED", String::new()),
            Classified::Query(QueryOutcome::Unknown(why)) => ("UNKNOWN", why.to_string()),
            Classified::Reverse(ReverseOutcome::Reversed) => ("REVERSED", "recall=N".into()),
            Classified::Reverse(ReverseOutcome::Again(why)) => ("AGAIN", why.to_string()),
            Classified::Reverse(ReverseOutcome::Refused(refusal)) => (
                "REFUSED",
                format!("{} {}", refusal.code, refusal.description),
            ),
        }
    }
}
