//! The refund of a paid order (申请退款 and 查询退款) as a pure machine, like
//! the payment's: time is an input, the driver journals and sends.
//!
//! The rules:
//! - one out_refund_no per refund, journaled before the first request and
//!   reused on every retry — WeChat refunds one out_refund_no at most once,
//!   so a retry can never refund twice ("请不要更换退款单号");
//! - SYSTEMERROR, BIZERR_NEED_RETRY or no trustworthy answer: send the same
//!   refund again after `retry_interval`, at most `send_attempts` times;
//! - any other refusal is definite (NOTENOUGH: the merchant's balance);
//! - an accepted refund is not yet money back: refundquery confirms it,
//!   every `query_interval`, at most `query_attempts` times; still
//!   PROCESSING then is left for `scanpay replay` to follow up;
//! - a refund taken over from the journal starts with a query; only a
//!   gateway that has no record of it (REFUNDNOTEXIST) gets the refund again,
//!   under the same number.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::wechat::api::{Refusal, Unclear};

/// A refund request the driver must send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundCall {
    /// Numbered from 1.
    Refund {
        attempt: u32,
    },
    Query,
}

impl RefundCall {
    pub fn name(self) -> &'static str {
        match self {
            RefundCall::Refund { .. } => "refund",
            RefundCall::Query => "refundquery",
        }
    }
}

/// What a verified refund answer says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundAnswer {
    /// result_code SUCCESS: accepted, not yet confirmed.
    Accepted { refund_id: String },
    /// SYSTEMERROR, BIZERR_NEED_RETRY, or no answer we can trust: send again.
    Again(Unclear),
    /// A definite refusal: nothing will be refunded under this number.
    Refused(Refusal),
}

/// `refund_status_$n` of refundquery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Success,
    Processing,
    /// REFUNDCLOSE: closed without paying out.
    Closed,
    /// CHANGE: the customer's card cannot take it (frozen, cancelled); the
    /// merchant platform settles it by hand.
    Change,
}

/// What a verified refundquery answer says about our out_refund_no.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundQueryAnswer {
    Status {
        status: RefundStatus,
        refund_id: Option<String>,
    },
    /// REFUNDNOTEXIST: the gateway never received this refund.
    NotFound,
    Unknown(Unclear),
}

/// How a refund ended, for now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundFinal {
    Refunded {
        refund_id: String,
    },
    Refused(Refusal),
    Closed,
    Change,
    /// Accepted, still PROCESSING at the last query: replay follows it up.
    Processing,
    /// Every attempt unclear: replay follows it up, with the same number.
    Unclear(Unclear),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundTimings {
    pub retry_interval: Duration,
    pub send_attempts: u32,
    pub query_interval: Duration,
    pub query_attempts: u32,
}

impl Default for RefundTimings {
    fn default() -> Self {
        Self {
            retry_interval: Duration::from_secs(5),
            send_attempts: 3,
            query_interval: Duration::from_secs(3),
            query_attempts: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStep {
    Send(RefundCall),
    WaitUntil(Duration),
    AwaitAnswer,
    Done(RefundFinal),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    RefundAt(Duration),
    AwaitRefund,
    QueryAt(Duration),
    AwaitQuery,
    Done(RefundFinal),
}

#[derive(Debug, Clone)]
pub struct RefundMachine {
    timings: RefundTimings,
    phase: Phase,
    sends: u32,
    queries: u32,
    refund_id: Option<String>,
}

impl RefundMachine {
    /// A new refund: its first step sends it.
    pub fn new(timings: RefundTimings) -> Self {
        Self {
            timings,
            phase: Phase::RefundAt(Duration::ZERO),
            sends: 0,
            queries: 0,
            refund_id: None,
        }
    }

    /// A refund left pending by an earlier run, taken over at `now`: ask first.
    pub fn taken_over(timings: RefundTimings, now: Duration) -> Self {
        Self {
            phase: Phase::QueryAt(now),
            ..Self::new(timings)
        }
    }

    pub fn step(&mut self, now: Duration) -> RefundStep {
        match self.phase.clone() {
            Phase::RefundAt(at) if now >= at => {
                self.sends += 1;
                self.phase = Phase::AwaitRefund;
                RefundStep::Send(RefundCall::Refund {
                    attempt: self.sends,
                })
            }
            Phase::QueryAt(at) if now >= at => {
                self.queries += 1;
                self.phase = Phase::AwaitQuery;
                RefundStep::Send(RefundCall::Query)
            }
            Phase::RefundAt(at) | Phase::QueryAt(at) => RefundStep::WaitUntil(at),
            Phase::AwaitRefund | Phase::AwaitQuery => RefundStep::AwaitAnswer,
            Phase::Done(done) => RefundStep::Done(done),
        }
    }

    pub fn on_refund(&mut self, answer: RefundAnswer, now: Duration) {
        if self.phase != Phase::AwaitRefund {
            return;
        }
        match answer {
            RefundAnswer::Accepted { refund_id } => {
                self.refund_id = Some(refund_id);
                self.phase = Phase::QueryAt(now + self.timings.query_interval);
            }
            RefundAnswer::Refused(refusal) => {
                self.phase = Phase::Done(RefundFinal::Refused(refusal))
            }
            RefundAnswer::Again(unclear) if self.sends >= self.timings.send_attempts => {
                self.phase = Phase::Done(RefundFinal::Unclear(unclear))
            }
            RefundAnswer::Again(_) => {
                self.phase = Phase::RefundAt(now + self.timings.retry_interval);
            }
        }
    }

    pub fn on_query(&mut self, answer: RefundQueryAnswer, now: Duration) {
        if self.phase != Phase::AwaitQuery {
            return;
        }
        let out_of_queries = self.queries >= self.timings.query_attempts;
        self.phase = match answer {
            RefundQueryAnswer::Status {
                status: RefundStatus::Success,
                refund_id,
            } => Phase::Done(RefundFinal::Refunded {
                refund_id: refund_id.or(self.refund_id.clone()).unwrap_or_default(),
            }),
            RefundQueryAnswer::Status {
                status: RefundStatus::Closed,
                ..
            } => Phase::Done(RefundFinal::Closed),
            RefundQueryAnswer::Status {
                status: RefundStatus::Change,
                ..
            } => Phase::Done(RefundFinal::Change),
            RefundQueryAnswer::Status {
                status: RefundStatus::Processing,
                ..
            } if out_of_queries => Phase::Done(RefundFinal::Processing),
            RefundQueryAnswer::Status {
                status: RefundStatus::Processing,
                ..
            } => Phase::QueryAt(now + self.timings.query_interval),
            // It never arrived: send it now, under the same number. An
            // accepted refund the query cannot find is asked again first.
            RefundQueryAnswer::NotFound
                if self.refund_id.is_none() && self.sends < self.timings.send_attempts =>
            {
                Phase::RefundAt(now)
            }
            RefundQueryAnswer::NotFound | RefundQueryAnswer::Unknown(_) if out_of_queries => {
                let unclear = match answer {
                    RefundQueryAnswer::Unknown(unclear) => unclear,
                    _ => Unclear::Gateway {
                        code: "REFUNDNOTEXIST".into(),
                        description: "the gateway has no record of an accepted refund".into(),
                    },
                };
                Phase::Done(RefundFinal::Unclear(unclear))
            }
            RefundQueryAnswer::NotFound | RefundQueryAnswer::Unknown(_) => {
                Phase::QueryAt(now + self.timings.query_interval)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn systemerror() -> Unclear {
        Unclear::Gateway {
            code: "SYSTEMERROR".into(),
            description: String::new(),
        }
    }

    enum A {
        R(RefundAnswer),
        Q(RefundQueryAnswer),
    }

    /// Runs the machine against scripted answers arriving at once; returns
    /// each request with its instant, and the end.
    fn run(
        mut machine: RefundMachine,
        start: f64,
        script: Vec<A>,
    ) -> (Vec<(RefundCall, f64)>, RefundFinal) {
        let mut now = s(start);
        let mut sent = Vec::new();
        let mut script = script.into_iter();
        loop {
            match machine.step(now) {
                RefundStep::Send(call) => {
                    sent.push((call, now.as_secs_f64()));
                    match (call, script.next().expect("an answer is scripted")) {
                        (RefundCall::Refund { .. }, A::R(a)) => machine.on_refund(a, now),
                        (RefundCall::Query, A::Q(a)) => machine.on_query(a, now),
                        (call, _) => panic!("{call:?} got the wrong kind of answer"),
                    }
                }
                RefundStep::WaitUntil(at) => now = at,
                RefundStep::AwaitAnswer => unreachable!(),
                RefundStep::Done(done) => return (sent, done),
            }
        }
    }

    fn status(status: RefundStatus) -> A {
        A::Q(RefundQueryAnswer::Status {
            status,
            refund_id: Some("5030".into()),
        })
    }

    fn accepted() -> A {
        A::R(RefundAnswer::Accepted {
            refund_id: "5030".into(),
        })
    }

    #[test]
    fn an_accepted_refund_is_confirmed_by_a_query() {
        let (sent, done) = run(
            RefundMachine::new(RefundTimings::default()),
            0.0,
            vec![
                accepted(),
                status(RefundStatus::Processing),
                status(RefundStatus::Success),
            ],
        );
        assert_eq!(
            sent,
            [
                (RefundCall::Refund { attempt: 1 }, 0.0),
                (RefundCall::Query, 3.0),
                (RefundCall::Query, 6.0)
            ]
        );
        assert_eq!(
            done,
            RefundFinal::Refunded {
                refund_id: "5030".into()
            }
        );
    }

    #[test]
    fn systemerror_retries_the_same_refund_then_leaves_it_for_replay() {
        let again = || A::R(RefundAnswer::Again(systemerror()));
        let (sent, done) = run(
            RefundMachine::new(RefundTimings::default()),
            0.0,
            vec![again(), again(), again()],
        );
        assert_eq!(
            sent,
            [
                (RefundCall::Refund { attempt: 1 }, 0.0),
                (RefundCall::Refund { attempt: 2 }, 5.0),
                (RefundCall::Refund { attempt: 3 }, 10.0)
            ]
        );
        assert_eq!(done, RefundFinal::Unclear(systemerror()));
        let (_, done) = run(
            RefundMachine::new(RefundTimings::default()),
            0.0,
            vec![again(), accepted(), status(RefundStatus::Success)],
        );
        assert!(matches!(done, RefundFinal::Refunded { .. }));
    }

    #[test]
    fn a_refusal_is_definite_and_processing_is_left_for_replay() {
        let notenough = Refusal {
            code: "NOTENOUGH".into(),
            description: "基本账户余额不足".into(),
        };
        let (sent, done) = run(
            RefundMachine::new(RefundTimings::default()),
            0.0,
            vec![A::R(RefundAnswer::Refused(notenough.clone()))],
        );
        assert_eq!(sent.len(), 1);
        assert_eq!(done, RefundFinal::Refused(notenough));
        let processing = || status(RefundStatus::Processing);
        let (sent, done) = run(
            RefundMachine::new(RefundTimings::default()),
            0.0,
            vec![accepted(), processing(), processing(), processing()],
        );
        assert_eq!(sent.len(), 4);
        assert_eq!(done, RefundFinal::Processing);
        let (_, done) = run(
            RefundMachine::new(RefundTimings::default()),
            0.0,
            vec![accepted(), status(RefundStatus::Change)],
        );
        assert_eq!(done, RefundFinal::Change);
    }

    #[test]
    fn taken_over_it_asks_first_and_resends_only_what_never_arrived() {
        // The answer was lost in a crash, but WeChat had it: no second refund.
        let (sent, done) = run(
            RefundMachine::taken_over(RefundTimings::default(), s(60.0)),
            60.0,
            vec![status(RefundStatus::Success)],
        );
        assert_eq!(sent, [(RefundCall::Query, 60.0)]);
        assert!(matches!(done, RefundFinal::Refunded { .. }));
        // It never arrived: the same refund (the driver keeps its number) goes now.
        let (sent, done) = run(
            RefundMachine::taken_over(RefundTimings::default(), s(60.0)),
            60.0,
            vec![
                A::Q(RefundQueryAnswer::NotFound),
                accepted(),
                status(RefundStatus::Success),
            ],
        );
        assert_eq!(
            sent,
            [
                (RefundCall::Query, 60.0),
                (RefundCall::Refund { attempt: 1 }, 60.0),
                (RefundCall::Query, 63.0)
            ]
        );
        assert!(matches!(done, RefundFinal::Refunded { .. }));
    }
}
