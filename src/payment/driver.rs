//! The thin async driver around [`Machine`]: it journals, sends, listens for
//! the cashier, and sleeps until the machine's next instant. It decides
//! nothing; the order of its steps is what keeps invariant 4:
//! every request is journaled before it is sent, every answer before the
//! machine sees it. Every journal write goes to the one writer thread and is
//! conditional on this process still driving the order.

use std::time::Duration;

use time::{OffsetDateTime, UtcOffset};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::event::{Answer, Event, JournalFields};
use super::machine::{Call, Final, Machine, Status, Step};
use super::policy::Timings;
use crate::domain::{AuthCode, Fen, OutTradeNo, TillId};
use crate::fault;
use crate::journal::{
    Claim, EventRecord, EventRow, FinalRecord, JournalError, JournalWriter, NewOrder, OrderId,
    OrderRow, OrderState,
};
use crate::wechat::Fields;
use crate::wechat::api::{
    self, Expected, Merchant, MicropayOrder, MicropayOutcome, QueryOutcome, ReverseOutcome, Unclear,
};
use crate::wechat::client::{Endpoint, GatewayClient};
use crate::wechat::messages::Language;

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

/// The journal could not record a step of a payment. Whether the customer
/// may have been charged decides what the cashier is told: never an
/// invitation to take a second payment for a sale that may be paid.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the payment could not be recorded, so nothing was sent and the customer was NOT charged: {0}"
    )]
    NotSent(JournalError),
    #[error(
        "the payment could not be recorded: the outcome is not known — take no other payment for this sale; {settles}. ({cause})",
        settles = settles(cause)
    )]
    Unknown { cause: JournalError },
}

fn settles(cause: &JournalError) -> &'static str {
    match cause {
        JournalError::Taken { .. } => "the scanpay process that took the order over settles it",
        _ => "once the journal can be written, `scanpay replay` settles it",
    }
}

impl EngineError {
    /// True when no request of the order can have left the till.
    pub fn nothing_sent(&self) -> bool {
        matches!(self, EngineError::NotSent(_))
    }
}

/// Everything a payment needs; cheap to clone into a task.
#[derive(Clone)]
pub struct Engine {
    pub gateway: GatewayClient,
    pub merchant: Merchant,
    pub journal: JournalWriter,
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
        let till = self.till.clone();
        let body = request.body.clone();
        let auth_code_masked = request.auth_code.masked();
        let total_fee = request.amount;
        let local_offset = self.store_offset;
        let (order, out_trade_no) = self
            .journal
            .run(move |journal| {
                journal.open_order(&NewOrder {
                    till: &till,
                    total_fee,
                    body: &body,
                    auth_code_masked,
                    now: OffsetDateTime::now_utc(),
                    local_offset,
                })
            })
            .await
            .map_err(EngineError::NotSent)?;
        let _ = progress.send(Progress::Opened {
            out_trade_no: out_trade_no.clone(),
        });
        fault::hit(fault::Point::OrderJournaled);
        let span = tracing::info_span!("payment", %out_trade_no, amount = %request.amount, code = %request.auth_code);
        let machine = Machine::new(self.timings);
        let amount = request.amount;
        let run = Run {
            order,
            out_trade_no,
            amount,
            request: Some(request),
            transaction_id: None,
        };
        self.drive(run, machine, Clock::default(), progress, cancel)
            .instrument(span)
            .await
    }

    /// Takes `order` over from a process that is gone, if no live one drives it.
    pub async fn claim(&self, order: &OrderRow) -> Result<Claim, EngineError> {
        let id = order.id;
        self.journal
            .run(move |journal| journal.claim(id))
            .await
            .map_err(|cause| EngineError::Unknown { cause })
    }

    /// Drives a claimed order to its end from the machine `restored` from
    /// its journaled events and taken over at `elapsed` (the time since its
    /// micropay was sent, by the journal's wall clock). The take-over is
    /// journaled first, so a crash during it is recovered the same way.
    pub async fn resume(
        &self,
        order: &OrderRow,
        events: &[EventRow],
        restored: Machine,
        elapsed: Duration,
        refund_paid: bool,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Result<PaymentResult, EngineError> {
        let doing = match restored.status() {
            Status::Done(done) => format!("finishing it as {} from the journal", done.state()),
            Status::Confirming => {
                "querying whether the customer had paid before our reverse".into()
            }
            _ if refund_paid => {
                "refunding on a person's decision: querying, then reversing even if paid".into()
            }
            _ => "querying, then reversing if still unclear".into(),
        };
        let note = EventRecord {
            at: OffsetDateTime::now_utc(),
            since_t0_ms: Some(millis(elapsed)),
            summary: format!(
                "taken over by scanpay process {} {:.1} s after the micropay was sent: {doing}",
                self.journal.owner(),
                elapsed.as_secs_f64(),
            ),
            event: Event::Resumed {
                owner: self.journal.owner().to_string(),
                elapsed_ms: millis(elapsed),
                refund_paid,
            },
        };
        self.append(order.id, note, true).await?;
        let span = tracing::info_span!("recovery", out_trade_no = %order.out_trade_no, amount = %order.total_fee);
        // Nobody can press cancel on a recovered order: a sender that is gone never fires.
        let (_, cancel) = watch::channel(false);
        let run = Run {
            order: order.id,
            out_trade_no: order.out_trade_no.clone(),
            amount: order.total_fee,
            request: None,
            transaction_id: known_transaction_id(events),
        };
        self.drive(run, restored, Clock::resumed(elapsed), progress, cancel)
            .instrument(span)
            .await
    }

    /// The order's journaled events.
    pub async fn events(&self, order: &OrderRow) -> Result<Vec<EventRow>, EngineError> {
        let id = order.id;
        self.journal
            .run(move |journal| journal.events(id))
            .await
            .map_err(|cause| EngineError::Unknown { cause })
    }

    /// Appends an event; `sent` says whether a request may have left already.
    async fn append(
        &self,
        order: OrderId,
        record: EventRecord,
        sent: bool,
    ) -> Result<(), EngineError> {
        self.journal
            .run(move |journal| journal.append(order, &record))
            .await
            .map_err(|cause| error(cause, sent))
    }

    /// Runs the machine for a journaled order until it is done.
    async fn drive(
        &self,
        mut run: Run,
        mut machine: Machine,
        mut clock: Clock,
        progress: mpsc::UnboundedSender<Progress>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<PaymentResult, EngineError> {
        tracing::info!("order opened");
        let order = run.order;
        let mut cancel_pending = !*cancel.borrow();
        if !cancel_pending {
            self.cashier_cancel(&mut machine, order, Duration::ZERO, clock.sent().is_some())
                .await?;
        }
        let mut last_status = None;

        loop {
            // Whether a request of this order may have left the till by now.
            let sent = clock.sent().is_some();
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
                    let fields = self.request(call, &run.out_trade_no, run.request.as_ref());
                    let record = request_event(call, &fields, run.amount, clock.sent());
                    if call == Call::Micropay {
                        self.journal
                            .run(move |journal| journal.record_micropay_intent(order, &record))
                            .await
                            .map_err(EngineError::NotSent)?;
                        fault::hit(fault::Point::IntentJournaled);
                        clock.start();
                    } else {
                        self.append(order, record, true).await?;
                        if matches!(call, Call::Reverse { .. }) {
                            fault::hit(fault::Point::ReverseJournaled);
                        }
                    }
                    tracing::info!(
                        call = call.name(),
                        elapsed_ms = millis(clock.now()),
                        "request sent"
                    );
                    let send = self.gateway.post(endpoint(call), &fields);
                    tokio::pin!(send);
                    let answer = loop {
                        tokio::select! {
                            answer = &mut send => break answer,
                            () = cancelled(&mut cancel), if cancel_pending => {
                                cancel_pending = false;
                                self.cashier_cancel(&mut machine, order, clock.now(), true).await?;
                            }
                        }
                    };
                    fault::hit(fault::Point::AnswerReceived);
                    let now = clock.now();
                    let raw = answer.clone().ok();
                    let expected = Expected {
                        merchant: &self.merchant,
                        out_trade_no: &run.out_trade_no,
                        total_fee: run.amount,
                        transaction_id: run.transaction_id.as_deref(),
                    };
                    let classified = classify(call, answer, &expected);
                    let fields = raw.as_ref().map(journal_fields);
                    if let Some(id) = fields
                        .as_ref()
                        .and_then(|f| trusted_transaction_id(&classified, f))
                    {
                        run.transaction_id.get_or_insert(id);
                    }
                    let (class, reason) = describe(&classified);
                    let record = EventRecord {
                        at: OffsetDateTime::now_utc(),
                        since_t0_ms: Some(millis(now)),
                        summary: format!(
                            "{} answer: {class}{}",
                            call.name(),
                            if reason.is_empty() {
                                String::new()
                            } else {
                                format!(" — {reason}")
                            }
                        ),
                        event: Event::Answer {
                            answer: classified.clone(),
                            fields,
                        },
                    };
                    self.append(order, record, true).await?;
                    tracing::info!(call = call.name(), class, reason = %reason, elapsed_ms = millis(now), "answer");
                    fault::hit(fault::Point::AnswerJournaled);
                    feed(&mut machine, classified, now);
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
                                since_t0_ms: Some(millis(clock.now())),
                                summary: format!("timer: {what} at {} ms", at.as_millis()),
                                event: Event::Timer { due_ms: millis(at) },
                            };
                            self.append(order, record, true).await?;
                        }
                        () = cancelled(&mut cancel), if cancel_pending => {
                            cancel_pending = false;
                            self.cashier_cancel(&mut machine, order, clock.now(), true).await?;
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
                        since_t0_ms: clock.sent().map(millis),
                        summary: format!("finished: {} — {message}", record.state.as_str()),
                        event: Event::Finished {
                            state: record.state.as_str().to_string(),
                            err_code: record.err_code.clone(),
                            transaction_id: record.transaction_id.clone(),
                        },
                    };
                    let state = record.state;
                    let err_code = record.err_code.clone();
                    self.journal
                        .run(move |journal| journal.finish(order, &record, &event))
                        .await
                        .map_err(|cause| error(cause, sent))?;
                    tracing::info!(state = state.as_str(), err_code = ?err_code, "payment finished");
                    let result = PaymentResult {
                        out_trade_no: run.out_trade_no,
                        amount: run.amount,
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

    async fn cashier_cancel(
        &self,
        machine: &mut Machine,
        order: OrderId,
        now: Duration,
        sent: bool,
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
            since_t0_ms: Some(millis(now)),
            summary: summary.to_string(),
            event: Event::Cancel { accepted },
        };
        self.append(order, record, sent).await
    }
}

/// The order in flight, as the driver knows it.
struct Run {
    order: OrderId,
    out_trade_no: OutTradeNo,
    amount: Fen,
    /// The payment to send; `None` for an order taken over (never re-sent).
    request: Option<PaymentRequest>,
    /// WeChat's number for this payment, once a trusted answer named it:
    /// every later answer must name the same.
    transaction_id: Option<String>,
}

fn error(cause: JournalError, sent: bool) -> EngineError {
    if sent {
        EngineError::Unknown { cause }
    } else {
        EngineError::NotSent(cause)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
pub(super) fn journal_fields(fields: &Fields) -> JournalFields {
    fields
        .iter()
        .filter(|(k, _)| *k != "sign")
        .map(|(k, v)| {
            let v = if k == "auth_code" {
                crate::domain::mask(v)
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect()
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
        since_t0_ms: Some(millis(since_t0.unwrap_or_default())),
        summary,
        event: Event::Request {
            call,
            fields: journal_fields(fields),
        },
    }
}

fn classify(call: Call, answer: api::Answer, expected: &Expected<'_>) -> Answer {
    match call {
        Call::Micropay => Answer::Micropay(api::classify_micropay(answer, expected)),
        Call::Query => Answer::Query(api::classify_query(answer, expected)),
        Call::Reverse { .. } => Answer::Reverse(api::classify_reverse(answer, expected)),
    }
}

fn feed(machine: &mut Machine, answer: Answer, now: Duration) {
    match answer {
        Answer::Micropay(outcome) => machine.on_micropay(outcome, now),
        Answer::Query(outcome) => machine.on_query(outcome, now),
        Answer::Reverse(outcome) => machine.on_reverse(outcome, now),
    }
}

/// The transaction id an answer we trust names, if any.
fn trusted_transaction_id(answer: &Answer, fields: &JournalFields) -> Option<String> {
    let untrusted = matches!(
        answer,
        Answer::Micropay(MicropayOutcome::Unknown(Unclear::Untrusted(_)))
            | Answer::Query(QueryOutcome::Unknown(Unclear::Untrusted(_)))
            | Answer::Reverse(ReverseOutcome::Again(Unclear::Untrusted(_)))
    );
    let id = fields.get("transaction_id").filter(|id| !id.is_empty())?;
    (!untrusted).then(|| id.clone())
}

/// The transaction id the journal's trusted answers named first.
fn known_transaction_id(events: &[EventRow]) -> Option<String> {
    events.iter().find_map(|row| match &row.event {
        Event::Answer {
            answer,
            fields: Some(fields),
        } => trusted_transaction_id(answer, fields),
        _ => None,
    })
}

/// The class and the reason, as the journal and the log show them.
fn describe(answer: &Answer) -> (&'static str, String) {
    match answer {
        Answer::Micropay(MicropayOutcome::Paid(paid)) | Answer::Query(QueryOutcome::Paid(paid)) => {
            ("PAID", format!("transaction {}", paid.transaction_id))
        }
        Answer::Micropay(MicropayOutcome::Pending) => (
            "PENDING",
            "USERPAYING: the customer confirms on the phone".into(),
        ),
        Answer::Micropay(MicropayOutcome::Unknown(why))
        | Answer::Query(QueryOutcome::Unknown(why)) => ("UNKNOWN", why.to_string()),
        Answer::Micropay(MicropayOutcome::Failed(refusal)) => (
            "FAILED",
            format!("{} {}", refusal.code, refusal.description),
        ),
        Answer::Micropay(MicropayOutcome::NumberTaken(refusal)) => (
            "NUMBER_TAKEN",
            format!(
                "{} {}: an earlier request with this number was someone else's; never queried or reversed",
                refusal.code, refusal.description
            ),
        ),
        Answer::Micropay(MicropayOutcome::Unreachable(why)) => (
            "NOT_SENT",
            format!("{why}: the request never left, nobody was charged"),
        ),
        Answer::Query(QueryOutcome::NotSettled(state)) => ("NOT_SETTLED", state.clone()),
        Answer::Query(QueryOutcome::PayError(desc)) => ("PAYERROR", desc.clone()),
        Answer::Query(QueryOutcome::Closed(state)) => ("CLOSED", state.clone()),
        Answer::Query(QueryOutcome::Refunded) => ("REFUNDED", String::new()),
        Answer::Reverse(ReverseOutcome::Reversed) => ("REVERSED", "recall=N".into()),
        Answer::Reverse(ReverseOutcome::Again(why)) => ("AGAIN", why.to_string()),
        Answer::Reverse(ReverseOutcome::Refused(refusal)) => (
            "REFUSED",
            format!("{} {}", refusal.code, refusal.description),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn busy() -> JournalError {
        JournalError::Busy {
            path: PathBuf::from("j.sqlite3"),
        }
    }

    fn full() -> JournalError {
        JournalError::DiskFull {
            path: PathBuf::from("j.sqlite3"),
        }
    }

    #[test]
    fn a_journal_failure_says_whether_the_customer_may_have_been_charged() {
        for cause in [busy(), full()] {
            let before = EngineError::NotSent(cause).to_string();
            assert!(before.contains("NOT charged"), "{before}");
            assert!(!before.contains("take no other payment"), "{before}");
        }
        for cause in [busy(), full()] {
            let after = EngineError::Unknown { cause }.to_string();
            assert!(after.contains("outcome is not known"), "{after}");
            assert!(
                after.contains("take no other payment for this sale"),
                "{after}"
            );
            assert!(after.contains("scanpay replay"), "{after}");
            assert!(!after.contains("NOT charged"), "{after}");
        }
        let taken = EngineError::Unknown {
            cause: JournalError::Taken {
                out_trade_no: "T01X".into(),
                owner: "42-ABC".into(),
            },
        }
        .to_string();
        assert!(taken.contains("took the order over"), "{taken}");
        // Disk advice only where the disk is the trouble.
        assert!(
            !EngineError::Unknown { cause: busy() }
                .to_string()
                .contains("space")
        );
        assert!(
            EngineError::NotSent(full())
                .to_string()
                .contains("free some space")
        );
    }
}
