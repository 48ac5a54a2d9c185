//! The micropay state machine of 提交付款码支付, as a pure value: no clock, no IO.
//!
//! Time is an input. Every instant is the time elapsed since t0, the moment
//! the micropay request was sent. The driver asks [`Machine::step`] what to
//! do now, performs it, and feeds answers back; tests jump straight to the
//! instant the machine asks to be woken at.
//!
//! The rules, in one place:
//! - USERPAYING: query every `poll_interval` until paid, definitely failed,
//!   or `deadline`; the last query falls on the deadline itself.
//! - unclear micropay (SYSTEMERROR, timeout, …): query after
//!   `query_after_unknown`, then on the same cadence.
//! - still unclear at the deadline, PAYERROR, or the cashier cancels:
//!   reverse, never before `reverse_not_before`; reverse again on recall=Y
//!   or errors, at most `reverse_max_attempts` times, then leave the order
//!   for replay.
//! - a verified SUCCESS at any point wins: never reverse a known-paid order.
//! - after a successful reverse, one query tells whether the customer had
//!   paid in the meantime (then the reverse refunded them).
//! - the micropay is sent once; nothing here can send it again. A machine
//!   rebuilt from the journal ([`Machine::restore`]) and taken over by another
//!   process ([`Machine::take_over`]) starts with a query, with time still
//!   counted from the original send; a customer found still typing the
//!   password then gets at least one more poll interval, whatever the wall
//!   clock said about the time since the send.
//! - ORDERPAID / OUT_TRADE_NO_USED on the one micropay of a number: the
//!   number is someone else's; end at once, never query or reverse it.

use std::time::Duration;

use super::event::{Answer, Event};
use super::policy::Timings;
use crate::wechat::api::{
    MicropayOutcome, QueryOutcome, Refusal, ReverseOutcome, Settlement, Unclear,
};

/// A request the driver must send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    Micropay,
    Query,
    /// Numbered from 1.
    Reverse {
        attempt: u32,
    },
}

impl Call {
    pub fn name(self) -> &'static str {
        match self {
            Call::Micropay => "micropay",
            Call::Query => "orderquery",
            Call::Reverse { .. } => "reverse",
        }
    }
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Send(Call),
    /// Nothing to do until this instant (or an answer, or a cancel).
    WaitUntil(Duration),
    /// A request is out; feed its answer.
    AwaitAnswer,
    Done(Final),
}

/// Why an order was reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReverseReason {
    /// The customer was seen confirming on the phone and had not finished
    /// by the deadline.
    Deadline,
    /// Every answer up to the deadline was unclear (a network or gateway
    /// fault): nothing says the customer was slow.
    Unconfirmed,
    /// The query said PAYERROR.
    PayError,
    /// The cashier cancelled.
    Cancelled,
    /// Still unclear when resumed after a crash or by replay.
    Recovered,
}

/// Why a person must look at an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attention {
    /// Every reverse attempt was unclear; the last reason is kept.
    ReverseExhausted { attempts: u32, last: Unclear },
    /// The gateway refused the reverse for good (REVERSE_EXPIRE, a signature
    /// or parameter complaint: `wechat::api::REVERSE_NEVER_SUCCEEDS`).
    ReverseRefused(Refusal),
    /// The query says the order was paid and then refunded by someone.
    Refunded,
    /// The reverse succeeded, yet the gateway then reports the order paid.
    PaidAfterReverse,
}

/// How a payment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Final {
    Paid(Settlement),
    /// A definite failure: no money moved.
    Failed(Refusal),
    /// The cashier cancelled before the micropay was sent.
    CancelledBeforeSending,
    /// The process stopped before the micropay was sent: nothing left the till.
    NotSent,
    /// The gateway says the number was used before (ORDERPAID,
    /// OUT_TRADE_NO_USED): someone else's order; this customer was not charged.
    NumberTaken(Refusal),
    /// The micropay's connection could not be opened: nothing left the
    /// till, nobody was charged.
    Unreachable(String),
    /// The gateway reports the order CLOSED or REVOKED without our reverse.
    Closed(String),
    /// Our reverse succeeded and the customer was never charged.
    Reversed(ReverseReason),
    /// Our reverse succeeded after the customer had paid: it refunded them
    /// (the race between the last query and the reverse).
    Refunded(ReverseReason),
    NeedsAttention(Attention),
}

/// What the cashier's screen shows while the payment runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The micropay is out.
    Sending,
    /// The customer confirms on the phone; queries continue until `deadline`.
    CustomerPaying {
        next_query_at: Duration,
        deadline: Duration,
    },
    /// The outcome is unclear; the next query is due then.
    Unclear {
        next_query_at: Duration,
        deadline: Duration,
    },
    Querying,
    /// Reversed; checking whether the customer had paid meanwhile.
    Confirming,
    /// A reverse is due at `at` (never before the 15 s rule allows).
    ReverseDue {
        at: Duration,
        attempt: u32,
    },
    /// A reverse request is out.
    Reversing {
        attempt: u32,
    },
    Done(Final),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    SendMicropay,
    AwaitMicropay,
    QueryAt(Duration),
    /// A query is out; `scheduled` is the instant it was due.
    AwaitQuery {
        scheduled: Duration,
    },
    ReverseAt(Duration),
    AwaitReverse,
    /// Reversed; the confirming query is due now.
    Confirm,
    AwaitConfirm,
    Done(Final),
}

#[derive(Debug, Clone)]
pub struct Machine {
    timings: Timings,
    /// The configured deadline, brought forward when the cashier cancels.
    deadline: Duration,
    phase: Phase,
    cancelled: bool,
    /// The customer was seen confirming on the phone (USERPAYING).
    customer_paying: bool,
    reverse_attempts: u32,
    reverse_reason: ReverseReason,
    /// A reverse was sent before: its result may show in a query.
    reversed_before: bool,
    /// A reverse answered recall=N before the interruption.
    reverse_succeeded: bool,
    /// A person chose to refund a paid order.
    refund_if_paid: bool,
    /// Taken over from the journal: the wall clock measured the time since
    /// the send, so a customer still paying gets a poll interval of our own.
    taken_over: bool,
    /// That poll interval was given.
    grace_given: bool,
    /// Ended as needs-attention by an earlier run; a take-over starts a new
    /// round of reverse attempts.
    parked: bool,
}

impl Machine {
    /// A machine about to send the micropay; its first step is `Send(Micropay)`.
    pub fn new(timings: Timings) -> Self {
        Self {
            timings,
            deadline: timings.deadline,
            phase: Phase::SendMicropay,
            cancelled: false,
            customer_paying: false,
            reverse_attempts: 0,
            reverse_reason: ReverseReason::Deadline,
            reversed_before: false,
            reverse_succeeded: false,
            refund_if_paid: false,
            taken_over: false,
            grace_given: false,
            parked: false,
        }
    }

    /// The machine as the journal left it: fed every journaled event with the
    /// time since the send at which it was written. What the original run
    /// decided is decided again the same way, so no second procedure reads
    /// the journal. An event that does not fit the phase changes nothing.
    pub fn restore<'a>(
        timings: Timings,
        events: impl IntoIterator<Item = (&'a Event, Duration)>,
    ) -> Self {
        let mut machine = Self::new(timings);
        for (event, at) in events {
            machine.replay(event, at);
        }
        machine
    }

    fn replay(&mut self, event: &Event, at: Duration) {
        match event {
            Event::Request { call, .. } => self.sent(*call, at),
            Event::Answer { answer, .. } => match answer.clone() {
                Answer::Micropay(outcome) => self.on_micropay(outcome, at),
                Answer::Query(outcome) => self.on_query(outcome, at),
                Answer::Reverse(outcome) => self.on_reverse(outcome, at),
            },
            Event::Cancel { accepted: true } => {
                self.cancel(at);
            }
            Event::Resumed {
                elapsed_ms,
                refund_paid,
                ..
            } => self.take_over(Duration::from_millis(*elapsed_ms), *refund_paid),
            Event::Finished { state, .. } if state == "needs_attention" => self.parked = true,
            Event::Opened { .. }
            | Event::Cancel { accepted: false }
            | Event::Timer { .. }
            | Event::Finished { .. }
            | Event::Note { .. }
            // A refund follows a payment's end; it has its own machine.
            | Event::RefundOpened { .. }
            | Event::RefundRequest { .. }
            | Event::RefundAnswer { .. }
            | Event::RefundFinished { .. }
            // Learnt from the bill, after the order's end.
            | Event::ReversedAfterPayment { .. } => {}
        }
    }

    /// A journaled request: it was sent (or may have been) at `at`.
    fn sent(&mut self, call: Call, at: Duration) {
        self.phase = match (call, &self.phase) {
            (Call::Micropay, Phase::SendMicropay) => Phase::AwaitMicropay,
            (Call::Query, Phase::Confirm) => Phase::AwaitConfirm,
            (Call::Query, Phase::QueryAt(scheduled)) => Phase::AwaitQuery {
                scheduled: *scheduled,
            },
            (Call::Query, _) => Phase::AwaitQuery { scheduled: at },
            (Call::Reverse { attempt }, _) => {
                self.reverse_attempts = attempt;
                self.reversed_before = true;
                Phase::AwaitReverse
            }
            (Call::Micropay, _) => return,
        };
    }

    /// This process takes the order over at `now` (the time since the send,
    /// by the journal's wall clock) from one that is gone. A request whose
    /// answer was never journaled may or may not have been answered; every
    /// order whose outcome is not already decided starts again with a query
    /// (after a successful reverse, the confirming one), so a reverse only
    /// ever goes to an order the gateway does not report paid.
    /// `refund_paid` is a person's decision to reverse it even if paid; once
    /// journaled it stays.
    pub fn take_over(&mut self, now: Duration, refund_paid: bool) {
        self.refund_if_paid |= refund_paid;
        match self.phase {
            // Decided by a journaled answer; a needs-attention end is not a decision.
            Phase::Done(_) if !self.parked => return,
            Phase::SendMicropay => return self.finish(Final::NotSent),
            _ => {}
        }
        self.taken_over = true;
        self.grace_given = false;
        self.reverse_reason = ReverseReason::Recovered;
        if self.parked {
            self.parked = false;
            self.reverse_attempts = 0;
        }
        self.phase = if self.reverse_succeeded {
            Phase::Confirm
        } else {
            Phase::QueryAt(now)
        };
    }

    /// What to do at `now`. Returning `Send` marks the request as sent.
    pub fn step(&mut self, now: Duration) -> Step {
        match self.phase.clone() {
            Phase::SendMicropay => {
                self.phase = Phase::AwaitMicropay;
                Step::Send(Call::Micropay)
            }
            Phase::AwaitMicropay
            | Phase::AwaitQuery { .. }
            | Phase::AwaitReverse
            | Phase::AwaitConfirm => Step::AwaitAnswer,
            Phase::Confirm => {
                self.phase = Phase::AwaitConfirm;
                Step::Send(Call::Query)
            }
            Phase::QueryAt(at) if now >= at => {
                self.phase = Phase::AwaitQuery { scheduled: at };
                Step::Send(Call::Query)
            }
            Phase::ReverseAt(at) if now >= at => {
                self.reverse_attempts += 1;
                self.phase = Phase::AwaitReverse;
                Step::Send(Call::Reverse {
                    attempt: self.reverse_attempts,
                })
            }
            Phase::QueryAt(at) | Phase::ReverseAt(at) => Step::WaitUntil(at),
            Phase::Done(done) => Step::Done(done),
        }
    }

    pub fn on_micropay(&mut self, outcome: MicropayOutcome, now: Duration) {
        if self.phase != Phase::AwaitMicropay {
            return;
        }
        match outcome {
            MicropayOutcome::Paid(paid) => self.finish(Final::Paid(paid)),
            MicropayOutcome::Failed(refusal) => self.finish(Final::Failed(refusal)),
            MicropayOutcome::NumberTaken(refusal) => self.finish(Final::NumberTaken(refusal)),
            MicropayOutcome::Unreachable(why) => self.finish(Final::Unreachable(why)),
            MicropayOutcome::Pending => {
                self.customer_paying = true;
                self.query_at(now + self.timings.poll_interval, now);
            }
            MicropayOutcome::Unknown(_) => {
                self.query_at(now + self.timings.query_after_unknown, now)
            }
        }
    }

    pub fn on_query(&mut self, outcome: QueryOutcome, now: Duration) {
        if self.phase == Phase::AwaitConfirm {
            return self.confirmed(outcome);
        }
        let Phase::AwaitQuery { scheduled } = self.phase else {
            return;
        };
        match outcome {
            QueryOutcome::Paid(_) if self.refund_if_paid => {
                self.reverse(ReverseReason::Recovered, now)
            }
            QueryOutcome::Paid(paid) => self.finish(Final::Paid(paid)),
            // Our own earlier reverse, finished before the interruption.
            QueryOutcome::Refunded | QueryOutcome::Closed(_) if self.reversed_before => {
                self.confirmed(outcome)
            }
            QueryOutcome::Closed(state) => self.finish(Final::Closed(state)),
            QueryOutcome::Refunded => self.finish(Final::NeedsAttention(Attention::Refunded)),
            QueryOutcome::PayError(_) => self.reverse(ReverseReason::PayError, now),
            // Taken over, the time since the send came from a wall clock that
            // may have jumped: a customer typing the password gets one more
            // poll interval, measured here, before anything is reversed.
            QueryOutcome::NotSettled(state)
                if state == "USERPAYING" && self.taken_over && !self.grace_given =>
            {
                self.customer_paying = true;
                self.grace_given = true;
                self.phase = Phase::QueryAt(now + self.timings.poll_interval);
            }
            QueryOutcome::NotSettled(state) => {
                self.customer_paying |= state == "USERPAYING";
                self.query_again_or_reverse(scheduled, now);
            }
            QueryOutcome::Unknown(_) => self.query_again_or_reverse(scheduled, now),
        }
    }

    pub fn on_reverse(&mut self, outcome: ReverseOutcome, now: Duration) {
        if self.phase != Phase::AwaitReverse {
            return;
        }
        match outcome {
            ReverseOutcome::Reversed => {
                self.reverse_succeeded = true;
                self.phase = Phase::Confirm
            }
            ReverseOutcome::Refused(refusal) => {
                self.finish(Final::NeedsAttention(Attention::ReverseRefused(refusal)))
            }
            ReverseOutcome::Again(last)
                if self.reverse_attempts >= self.timings.reverse_max_attempts =>
            {
                let attempts = self.reverse_attempts;
                self.finish(Final::NeedsAttention(Attention::ReverseExhausted {
                    attempts,
                    last,
                }))
            }
            ReverseOutcome::Again(_) => {
                let at = (now + self.timings.reverse_retry_interval)
                    .max(self.timings.reverse_not_before);
                self.phase = Phase::ReverseAt(at);
            }
        }
    }

    /// The query after a successful reverse: REFUND means the customer had
    /// paid and got the money back; anything unclear leaves it at "reversed".
    fn confirmed(&mut self, outcome: QueryOutcome) {
        let reason = self.reverse_reason;
        self.finish(match outcome {
            QueryOutcome::Refunded => Final::Refunded(reason),
            QueryOutcome::Paid(_) => Final::NeedsAttention(Attention::PaidAfterReverse),
            _ => Final::Reversed(reason),
        });
    }

    /// The cashier cancels. Before the micropay is sent that ends the order;
    /// after, the deadline is brought forward to the earliest reverse time,
    /// so the order gets one last query there and is then reversed (unless
    /// that query finds it paid). Returns false when it is too late to cancel.
    pub fn cancel(&mut self, now: Duration) -> bool {
        match self.phase {
            Phase::Done(_)
            | Phase::ReverseAt(_)
            | Phase::AwaitReverse
            | Phase::Confirm
            | Phase::AwaitConfirm => {
                return false;
            }
            Phase::SendMicropay => {
                self.finish(Final::CancelledBeforeSending);
                return true;
            }
            _ if self.cancelled => return false,
            _ => {}
        }
        self.cancelled = true;
        self.reverse_reason = ReverseReason::Cancelled;
        self.deadline = self.deadline.min(now.max(self.timings.reverse_not_before));
        if let Phase::QueryAt(at) = self.phase {
            self.phase = Phase::QueryAt(at.min(self.deadline).max(now));
        }
        true
    }

    pub fn status(&self) -> Status {
        let deadline = self.deadline;
        match &self.phase {
            Phase::SendMicropay | Phase::AwaitMicropay => Status::Sending,
            Phase::QueryAt(at) if self.customer_paying => Status::CustomerPaying {
                next_query_at: *at,
                deadline,
            },
            Phase::QueryAt(at) => Status::Unclear {
                next_query_at: *at,
                deadline,
            },
            Phase::AwaitQuery { .. } => Status::Querying,
            Phase::ReverseAt(at) => Status::ReverseDue {
                at: *at,
                attempt: self.reverse_attempts + 1,
            },
            Phase::AwaitReverse => Status::Reversing {
                attempt: self.reverse_attempts,
            },
            Phase::Confirm | Phase::AwaitConfirm => Status::Confirming,
            Phase::Done(done) => Status::Done(done.clone()),
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Schedules a query at `candidate`, but not after the deadline (the last
    /// query falls on it) and not in the past.
    fn query_at(&mut self, candidate: Duration, now: Duration) {
        self.phase = Phase::QueryAt(candidate.min(self.deadline).max(now));
    }

    /// After an unclear query: the next on the cadence of scheduled instants
    /// (so a slow answer does not drift the schedule), or reverse once the
    /// query on the deadline has been answered.
    fn query_again_or_reverse(&mut self, scheduled: Duration, now: Duration) {
        if scheduled >= self.deadline || now >= self.deadline {
            let reason = match self.reverse_reason {
                ReverseReason::Deadline if !self.customer_paying => ReverseReason::Unconfirmed,
                reason => reason,
            };
            self.reverse(reason, now);
        } else {
            self.query_at(scheduled + self.timings.poll_interval, now);
        }
    }

    fn reverse(&mut self, reason: ReverseReason, now: Duration) {
        self.reverse_reason = reason;
        self.phase = Phase::ReverseAt(now.max(self.timings.reverse_not_before));
    }

    fn finish(&mut self, done: Final) {
        self.phase = Phase::Done(done);
    }
}
