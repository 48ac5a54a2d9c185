//! The state machine in virtual time: every test feeds explicit instants and
//! asserts the exact instant of each request.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;

use super::event::{Answer, Event};
use super::machine::{Attention, Call, Final, Machine, ReverseReason, Status, Step};
use super::policy::Timings;
use crate::wechat::api::{
    MicropayOutcome, QueryOutcome, Refusal, ReverseOutcome, Settlement, Unclear,
};

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

/// One scripted answer and how long it takes to arrive.
#[derive(Debug, Clone)]
enum Reply {
    Micropay(MicropayOutcome),
    Query(QueryOutcome),
    Reverse(ReverseOutcome),
}

struct Run {
    /// Each request with the instant it was sent.
    sent: Vec<(Call, Duration)>,
    done: Final,
    done_at: Duration,
}

/// Drives a machine through `script`, each answer arriving `latency` after
/// its request; `cancel_at` presses the cashier's cancel key at that instant.
fn drive(
    timings: Timings,
    script: Vec<Reply>,
    latency: Duration,
    cancel_at: Option<Duration>,
) -> Run {
    let mut machine = Machine::new(timings);
    let mut script: VecDeque<Reply> = script.into();
    let mut now = Duration::ZERO;
    let mut sent = Vec::new();
    let mut cancel_at = cancel_at;
    for _ in 0..1000 {
        match machine.step(now) {
            Step::Send(call) => {
                sent.push((call, now));
                let arrives = now + latency;
                if let Some(at) = cancel_at.filter(|at| *at <= arrives) {
                    machine.cancel(at.max(now));
                    cancel_at = None;
                }
                now = arrives;
                match (
                    call,
                    script
                        .pop_front()
                        .unwrap_or_else(|| panic!("no answer scripted for {call:?} at {now:?}")),
                ) {
                    (Call::Micropay, Reply::Micropay(o)) => machine.on_micropay(o, now),
                    (Call::Query, Reply::Query(o)) => machine.on_query(o, now),
                    (Call::Reverse { .. }, Reply::Reverse(o)) => machine.on_reverse(o, now),
                    (call, reply) => panic!("{call:?} got {reply:?}"),
                }
            }
            Step::WaitUntil(at) => {
                assert!(at >= now, "asked to wake in the past: {at:?} < {now:?}");
                match cancel_at.filter(|c| *c < at) {
                    Some(c) => {
                        now = now.max(c);
                        machine.cancel(now);
                        cancel_at = None;
                    }
                    None => now = at,
                }
            }
            Step::AwaitAnswer => unreachable!("the harness always answers at once"),
            Step::Done(done) => {
                assert!(script.is_empty(), "unused answers: {script:?}");
                return Run {
                    sent,
                    done,
                    done_at: now,
                };
            }
        }
    }
    panic!("the machine did not finish in 1000 steps");
}

fn at(run: &Run) -> Vec<(&'static str, f64)> {
    run.sent
        .iter()
        .map(|(c, t)| (c.name(), (t.as_secs_f64() * 1000.0).round() / 1000.0))
        .collect()
}

fn paid() -> Settlement {
    Settlement {
        transaction_id: "4200000001".into(),
        time_end: None,
        cash_fee: Some(1),
    }
}
fn refusal(code: &str) -> Refusal {
    Refusal {
        code: code.into(),
        description: String::new(),
    }
}
fn systemerror() -> Unclear {
    Unclear::Gateway {
        code: "SYSTEMERROR".into(),
        description: String::new(),
    }
}
fn revoked() -> QueryOutcome {
    QueryOutcome::Closed("REVOKED".into())
}
fn userpaying() -> QueryOutcome {
    QueryOutcome::NotSettled("USERPAYING".into())
}
use Reply::{Micropay as M, Query as Q, Reverse as R};

const FAST: Duration = Duration::from_millis(0);

#[test]
fn paid_at_once_sends_nothing_else() {
    let run = drive(
        Timings::default(),
        vec![M(MicropayOutcome::Paid(paid()))],
        FAST,
        None,
    );
    assert_eq!(at(&run), [("micropay", 0.0)]);
    assert_eq!(run.done, Final::Paid(paid()));
}

#[test]
fn a_definite_failure_ends_without_query_or_reverse() {
    let run = drive(
        Timings::default(),
        vec![M(MicropayOutcome::Failed(refusal("NOTENOUGH")))],
        FAST,
        None,
    );
    assert_eq!(at(&run), [("micropay", 0.0)]);
    assert_eq!(run.done, Final::Failed(refusal("NOTENOUGH")));
}

#[test]
fn userpaying_is_queried_every_10_s_and_paid_on_success() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(QueryOutcome::Paid(paid())),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 10.0),
            ("orderquery", 20.0)
        ]
    );
    assert_eq!(run.done, Final::Paid(paid()));
}

#[test]
fn userpaying_until_the_deadline_is_queried_at_30_s_then_reversed() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(userpaying()),
        Q(userpaying()),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 10.0),
            ("orderquery", 20.0),
            ("orderquery", 30.0),
            ("reverse", 30.0),
            ("orderquery", 30.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::Deadline));
}

#[test]
fn systemerror_is_queried_after_5_s_then_every_10_s_and_the_deadline() {
    let unclear = || Q(QueryOutcome::Unknown(systemerror()));
    let script = vec![
        M(MicropayOutcome::Unknown(systemerror())),
        unclear(),
        unclear(),
        unclear(),
        unclear(),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 5.0),
            ("orderquery", 15.0),
            ("orderquery", 25.0),
            ("orderquery", 30.0),
            ("reverse", 30.0),
            ("orderquery", 30.0)
        ]
    );
}

#[test]
fn systemerror_then_paid_is_paid() {
    let script = vec![
        M(MicropayOutcome::Unknown(systemerror())),
        Q(QueryOutcome::Paid(paid())),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(at(&run), [("micropay", 0.0), ("orderquery", 5.0)]);
    assert_eq!(run.done, Final::Paid(paid()));
}

#[test]
fn payerror_is_reversed_but_not_before_15_s() {
    let script = vec![
        M(MicropayOutcome::Unknown(systemerror())),
        Q(QueryOutcome::PayError("支付失败".into())),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 5.0),
            ("reverse", 15.0),
            ("orderquery", 15.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::PayError));
}

#[test]
fn a_slow_micropay_answer_moves_the_first_query_but_not_past_the_deadline() {
    // Read timeout 10 s: the UNKNOWN arrives at 10 s, the query at 15 s.
    let timings = Timings::default();
    let mut machine = Machine::new(timings);
    assert_eq!(machine.step(s(0.0)), Step::Send(Call::Micropay));
    machine.on_micropay(
        MicropayOutcome::Unknown(Unclear::Transport("timed out".into())),
        s(10.0),
    );
    assert_eq!(machine.step(s(10.0)), Step::WaitUntil(s(15.0)));
    // An answer after the deadline is followed by a query at once, then the reverse.
    let mut late = Machine::new(timings);
    late.step(s(0.0));
    late.on_micropay(
        MicropayOutcome::Unknown(Unclear::Transport("timed out".into())),
        s(41.0),
    );
    assert_eq!(late.step(s(41.0)), Step::Send(Call::Query));
    late.on_query(QueryOutcome::Unknown(systemerror()), s(42.0));
    assert_eq!(late.step(s(42.0)), Step::Send(Call::Reverse { attempt: 1 }));
}

#[test]
fn slow_queries_keep_the_cadence_of_scheduled_instants() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(userpaying()),
        Q(userpaying()),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, s(3.0), None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 13.0),
            ("orderquery", 23.0),
            ("orderquery", 30.0),
            ("reverse", 33.0),
            ("orderquery", 36.0)
        ]
    );
}

#[test]
fn recall_y_and_errors_reverse_again_up_to_the_limit() {
    let again = || {
        R(ReverseOutcome::Again(Unclear::Gateway {
            code: "RECALL".into(),
            description: String::new(),
        }))
    };
    let timings = Timings {
        reverse_max_attempts: 3,
        ..Timings::default()
    };
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(QueryOutcome::PayError(String::new())),
        again(),
        again(),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(timings, script, FAST, None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 10.0),
            ("reverse", 15.0),
            ("reverse", 20.0),
            ("reverse", 25.0),
            ("orderquery", 25.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::PayError));

    let exhausted = vec![
        M(MicropayOutcome::Pending),
        Q(QueryOutcome::PayError(String::new())),
        again(),
        again(),
        again(),
    ];
    let run = drive(timings, exhausted, FAST, None);
    assert_eq!(
        run.sent
            .iter()
            .filter(|(c, _)| matches!(c, Call::Reverse { .. }))
            .count(),
        3
    );
    assert!(matches!(
        run.done,
        Final::NeedsAttention(Attention::ReverseExhausted { attempts: 3, .. })
    ));
    assert_eq!(run.done_at, s(25.0));
}

/// A signed reverse answer `result_code=FAIL` with this error, classified
/// by the real classifier.
fn reverse_error(code: &str, description: &str) -> ReverseOutcome {
    use crate::domain::{Fen, OutTradeNo};
    use crate::wechat::api::{Expected, Merchant, classify_reverse};
    use crate::wechat::{ApiKey, Fields, SignType, sign::sign};
    let merchant = Merchant {
        appid: "wxd930ea5d5a258f4f".into(),
        mch_id: "10000100".into(),
        sub_appid: None,
        sub_mch_id: None,
        key: ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
        sign_type: SignType::Md5,
    };
    let no = OutTradeNo::parse("T0120261123142353000001").unwrap();
    let mut fields: Fields = [
        ("return_code", "SUCCESS"),
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("nonce_str", "n"),
        ("result_code", "FAIL"),
        ("err_code", code),
        ("err_code_des", description),
    ]
    .into_iter()
    .collect();
    let signature = sign(&fields, &merchant.key, SignType::Md5);
    fields.set("sign", signature);
    classify_reverse(
        Ok(fields),
        &Expected {
            merchant: &merchant,
            out_trade_no: &no,
            total_fee: Fen(1),
            transaction_id: None,
        },
    )
}

#[test]
fn a_reverse_refused_while_the_customer_pays_is_asked_again_after_the_interval() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(userpaying()),
        Q(userpaying()),
        R(reverse_error("USERPAYING", "正在支付中不能发起撤销")),
        R(reverse_error("SYSTEMERROR", "接口返回错误")),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 10.0),
            ("orderquery", 20.0),
            ("orderquery", 30.0),
            ("reverse", 30.0),
            ("reverse", 35.0),
            ("reverse", 40.0),
            ("orderquery", 40.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::Deadline));
}

#[test]
fn a_reverse_that_can_never_succeed_stops_at_once() {
    for code in ["REVERSE_EXPIRE", "INVALID_TRANSACTIONID", "SIGNERROR"] {
        let script = vec![
            M(MicropayOutcome::Pending),
            Q(QueryOutcome::PayError(String::new())),
            R(reverse_error(code, "")),
        ];
        let run = drive(Timings::default(), script, FAST, None);
        assert_eq!(
            run.done,
            Final::NeedsAttention(Attention::ReverseRefused(refusal(code))),
            "{code}"
        );
    }
}

#[test]
fn a_refused_reverse_needs_a_person() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(QueryOutcome::PayError(String::new())),
        R(ReverseOutcome::Refused(refusal("REVERSE_EXPIRE"))),
    ];
    let run = drive(Timings::default(), script, FAST, None);
    assert_eq!(
        run.done,
        Final::NeedsAttention(Attention::ReverseRefused(refusal("REVERSE_EXPIRE")))
    );
}

#[test]
fn closed_and_refunded_orders_end_without_reverse() {
    let closed = drive(
        Timings::default(),
        vec![
            M(MicropayOutcome::Pending),
            Q(QueryOutcome::Closed("REVOKED".into())),
        ],
        FAST,
        None,
    );
    assert_eq!(closed.done, Final::Closed("REVOKED".into()));
    let refunded = drive(
        Timings::default(),
        vec![M(MicropayOutcome::Pending), Q(QueryOutcome::Refunded)],
        FAST,
        None,
    );
    assert_eq!(refunded.done, Final::NeedsAttention(Attention::Refunded));
}

#[test]
fn cancel_while_the_customer_pays_reverses_at_15_s_after_one_last_query() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(userpaying()),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, FAST, Some(s(3.0)));
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 10.0),
            ("orderquery", 15.0),
            ("reverse", 15.0),
            ("orderquery", 15.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::Cancelled));
}

#[test]
fn cancel_after_15_s_queries_once_and_reverses_at_once() {
    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(userpaying()),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, FAST, Some(s(17.0)));
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 10.0),
            ("orderquery", 17.0),
            ("reverse", 17.0),
            ("orderquery", 17.0)
        ]
    );
}

#[test]
fn cancel_while_the_micropay_is_out_still_honours_its_answer() {
    let paid_anyway = drive(
        Timings::default(),
        vec![M(MicropayOutcome::Paid(paid()))],
        s(2.0),
        Some(s(1.0)),
    );
    assert_eq!(paid_anyway.done, Final::Paid(paid()));

    let script = vec![
        M(MicropayOutcome::Pending),
        Q(userpaying()),
        Q(userpaying()),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive(Timings::default(), script, s(2.0), Some(s(1.0)));
    assert_eq!(
        at(&run),
        [
            ("micropay", 0.0),
            ("orderquery", 12.0),
            ("orderquery", 15.0),
            ("reverse", 17.0),
            ("orderquery", 19.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::Cancelled));
}

#[test]
fn a_query_that_finds_it_paid_after_cancel_wins() {
    let script = vec![M(MicropayOutcome::Pending), Q(QueryOutcome::Paid(paid()))];
    let run = drive(Timings::default(), script, FAST, Some(s(1.0)));
    assert_eq!(run.done, Final::Paid(paid()));
}

#[test]
fn cancel_before_sending_sends_nothing_and_cancel_is_refused_when_too_late() {
    let mut machine = Machine::new(Timings::default());
    assert!(machine.cancel(s(0.0)));
    assert_eq!(
        machine.step(s(0.0)),
        Step::Done(Final::CancelledBeforeSending)
    );

    let mut done = Machine::new(Timings::default());
    done.step(s(0.0));
    done.on_micropay(MicropayOutcome::Paid(paid()), s(1.0));
    assert!(!done.cancel(s(2.0)));
    assert_eq!(done.step(s(2.0)), Step::Done(Final::Paid(paid())));
}

#[test]
fn answers_out_of_turn_are_ignored() {
    let mut machine = Machine::new(Timings::default());
    machine.step(s(0.0));
    machine.on_query(QueryOutcome::Paid(paid()), s(1.0));
    machine.on_reverse(ReverseOutcome::Reversed, s(1.0));
    assert_eq!(machine.step(s(1.0)), Step::AwaitAnswer);
}

#[test]
fn status_tells_the_cashier_what_is_happening() {
    let mut machine = Machine::new(Timings::default());
    assert_eq!(machine.status(), Status::Sending);
    machine.step(s(0.0));
    assert_eq!(machine.status(), Status::Sending);
    machine.on_micropay(MicropayOutcome::Pending, s(0.5));
    assert_eq!(
        machine.status(),
        Status::CustomerPaying {
            next_query_at: s(10.5),
            deadline: s(30.0)
        }
    );
    machine.step(s(10.5));
    assert_eq!(machine.status(), Status::Querying);
    machine.on_query(QueryOutcome::PayError(String::new()), s(11.0));
    assert_eq!(
        machine.status(),
        Status::ReverseDue {
            at: s(15.0),
            attempt: 1
        }
    );
    machine.step(s(15.0));
    assert_eq!(machine.status(), Status::Reversing { attempt: 1 });

    let mut unclear = Machine::new(Timings::default());
    unclear.step(s(0.0));
    unclear.on_micropay(MicropayOutcome::Unknown(systemerror()), s(1.0));
    assert_eq!(
        unclear.status(),
        Status::Unclear {
            next_query_at: s(6.0),
            deadline: s(30.0)
        }
    );
}

// ---- invariants under random answers and timings ----

fn settlement() -> impl Strategy<Value = Settlement> {
    Just(paid())
}
fn unclear() -> impl Strategy<Value = Unclear> {
    prop_oneof![
        Just(systemerror()),
        Just(Unclear::Transport("reset".into())),
        Just(Unclear::Untrusted("bad sign".into())),
        Just(Unclear::Gateway {
            code: "ORDERNOTEXIST".into(),
            description: String::new()
        }),
    ]
}
fn micropay_outcome() -> impl Strategy<Value = MicropayOutcome> {
    prop_oneof![
        settlement().prop_map(MicropayOutcome::Paid),
        Just(MicropayOutcome::Pending),
        unclear().prop_map(MicropayOutcome::Unknown),
        Just(MicropayOutcome::Failed(refusal("NOTENOUGH"))),
    ]
}
fn query_outcome() -> impl Strategy<Value = QueryOutcome> {
    prop_oneof![
        1 => settlement().prop_map(QueryOutcome::Paid),
        4 => Just(userpaying()),
        1 => Just(QueryOutcome::PayError(String::new())),
        1 => Just(QueryOutcome::Closed("CLOSED".into())),
        3 => unclear().prop_map(QueryOutcome::Unknown),
    ]
}
fn reverse_outcome() -> impl Strategy<Value = ReverseOutcome> {
    prop_oneof![
        2 => Just(ReverseOutcome::Reversed),
        3 => unclear().prop_map(ReverseOutcome::Again),
        1 => Just(ReverseOutcome::Refused(refusal("REVERSE_EXPIRE"))),
    ]
}

/// An adversarial gateway: each answer is random and takes a random time.
#[derive(Debug, Clone)]
struct World {
    micropay: MicropayOutcome,
    queries: Vec<QueryOutcome>,
    reverses: Vec<ReverseOutcome>,
    latencies_ms: Vec<u64>,
    cancel_at_ms: Option<u64>,
}

fn world() -> impl Strategy<Value = World> {
    (
        micropay_outcome(),
        proptest::collection::vec(query_outcome(), 8),
        proptest::collection::vec(reverse_outcome(), 8),
        proptest::collection::vec(0u64..12_000, 24),
        proptest::option::of(0u64..40_000),
    )
        .prop_map(
            |(micropay, queries, reverses, latencies_ms, cancel_at_ms)| World {
                micropay,
                queries,
                reverses,
                latencies_ms,
                cancel_at_ms,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_four_invariants_hold_whatever_the_gateway_answers(w in world()) {
        let timings = Timings::default();
        let mut machine = Machine::new(timings);
        let mut now = Duration::ZERO;
        let mut sent: Vec<(Call, Duration)> = Vec::new();
        let (mut queries, mut reverses) = (w.queries.clone().into_iter(), w.reverses.clone().into_iter());
        let mut latencies = w.latencies_ms.iter().cycle().map(|ms| Duration::from_millis(*ms));
        let mut cancel_at = w.cancel_at_ms.map(Duration::from_millis);
        let mut seen_paid = false;
        let mut seen_failure = false;
        let done = loop {
            prop_assert!(sent.len() < 64, "runaway: {sent:?}");
            if let Some(c) = cancel_at.filter(|c| *c <= now) {
                machine.cancel(now.max(c));
                cancel_at = None;
            }
            match machine.step(now) {
                Step::Send(call) => {
                    sent.push((call, now));
                    now += latencies.next().unwrap();
                    match call {
                        Call::Micropay => {
                            seen_paid |= matches!(w.micropay, MicropayOutcome::Paid(_));
                            seen_failure |= matches!(w.micropay, MicropayOutcome::Failed(_));
                            machine.on_micropay(w.micropay.clone(), now)
                        }
                        Call::Query => {
                            let outcome = queries.next().unwrap_or(userpaying());
                            // A "paid" after our reverse is the gateway contradicting itself, not a payment.
                            let reversed = sent.iter().any(|(c, _)| matches!(c, Call::Reverse { .. }));
                            seen_paid |= !reversed && matches!(outcome, QueryOutcome::Paid(_));
                            machine.on_query(outcome, now)
                        }
                        Call::Reverse { .. } => machine.on_reverse(reverses.next().unwrap_or(ReverseOutcome::Reversed), now),
                    }
                }
                Step::WaitUntil(at) => {
                    prop_assert!(at >= now);
                    now = match cancel_at { Some(c) if c < at => c.max(now), _ => at };
                }
                Step::AwaitAnswer => prop_assert!(false, "awaiting with no request out"),
                Step::Done(done) => break done,
            }
        };
        // A cancel before the first step: nothing was sent at all.
        if done == Final::CancelledBeforeSending {
            prop_assert!(sent.is_empty(), "{sent:?}");
            return Ok(());
        }
        // 1. PAID only on a verified SUCCESS.
        prop_assert_eq!(matches!(done, Final::Paid(_)), seen_paid, "{:?}", done);
        // 2. FAILED only on a definite failure.
        if matches!(done, Final::Failed(_)) { prop_assert!(seen_failure); }
        // 3. One micropay, always first; no reverse before 15 s; every reverse
        //    preceded by a query; after a reverse only more reverses, and one
        //    confirming query once a reverse succeeded.
        prop_assert_eq!(sent.iter().filter(|(c, _)| *c == Call::Micropay).count(), 1);
        prop_assert_eq!(sent[0].0, Call::Micropay);
        let first_reverse = sent.iter().position(|(c, _)| matches!(c, Call::Reverse { .. }));
        if let Some(i) = first_reverse {
            prop_assert!(sent[..i].iter().any(|(c, _)| *c == Call::Query), "reverse without a query: {sent:?}");
            let after = &sent[i..];
            let (reverses, confirm) = match after.last() {
                Some((Call::Query, _)) => (&after[..after.len() - 1], 1),
                _ => (after, 0),
            };
            prop_assert!(reverses.iter().all(|(c, t)| matches!(c, Call::Reverse { .. }) && *t >= timings.reverse_not_before), "{sent:?}");
            prop_assert!(reverses.len() as u32 <= timings.reverse_max_attempts);
            prop_assert_eq!(confirm == 1, matches!(done, Final::Reversed(_) | Final::Refunded(_) | Final::NeedsAttention(Attention::PaidAfterReverse)), "{:?} {:?}", done, sent);
        }
        // Every unclear order is queried and, while still unclear, reversed:
        // no query is sent after the deadline unless the micropay answer
        // itself came late, and an order that was never settled ends by reverse.
        let undecided = !seen_paid && !seen_failure && !matches!(done, Final::Closed(_) | Final::NeedsAttention(Attention::Refunded));
        if undecided {
            prop_assert!(first_reverse.is_some(), "unclear order not reversed: {done:?} {sent:?}");
            prop_assert!(matches!(done, Final::Reversed(_) | Final::Refunded(_) | Final::NeedsAttention(_)));
        }
    }
}

/// What the journal holds of an order interrupted after its micropay went
/// out unclear; with `reversed`, a reverse had been sent too.
fn interrupted(reversed: bool, now: f64) -> Vec<(Event, Duration)> {
    let mut events = vec![
        (micropay_request(), s(0.0)),
        (
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Unknown(systemerror())),
                fields: None,
            },
            s(0.5),
        ),
    ];
    if reversed {
        events.push((request(Call::Reverse { attempt: 1 }), s(now * 0.9)));
    }
    events
}

fn micropay_request() -> Event {
    request(Call::Micropay)
}

fn request(call: Call) -> Event {
    Event::Request {
        call,
        fields: Default::default(),
    }
}

/// The machine the journal describes, taken over at `now`.
fn taken_over(events: &[(Event, Duration)], now: f64, refund_paid: bool) -> Machine {
    let mut machine = Machine::restore(Timings::default(), events.iter().map(|(e, at)| (e, *at)));
    machine.take_over(s(now), refund_paid);
    machine
}

/// Drives an interrupted order taken over at `now` with the scripted answers.
fn drive_resumed(reversed: bool, now: f64, script: Vec<Reply>) -> Run {
    drive_machine(
        taken_over(&interrupted(reversed, now), now, false),
        now,
        script,
    )
}

fn drive_machine(mut machine: Machine, now: f64, script: Vec<Reply>) -> Run {
    let mut script: VecDeque<Reply> = script.into();
    let mut now = s(now);
    let mut sent = Vec::new();
    loop {
        match machine.step(now) {
            Step::Send(call) => {
                sent.push((call, now));
                match (call, script.pop_front().expect("an answer is scripted")) {
                    (Call::Query, Reply::Query(o)) => machine.on_query(o, now),
                    (Call::Reverse { .. }, Reply::Reverse(o)) => machine.on_reverse(o, now),
                    (call, reply) => panic!("{call:?} got {reply:?}"),
                }
            }
            Step::WaitUntil(at) => now = at,
            Step::AwaitAnswer => unreachable!(),
            Step::Done(done) => {
                return Run {
                    sent,
                    done,
                    done_at: now,
                };
            }
        }
    }
}

#[test]
fn an_old_order_resumed_after_a_crash_is_queried_then_reversed_at_once() {
    let unclear = Q(QueryOutcome::Unknown(systemerror()));
    let run = drive_resumed(
        false,
        3600.0,
        vec![unclear, R(ReverseOutcome::Reversed), Q(revoked())],
    );
    assert_eq!(
        at(&run),
        [
            ("orderquery", 3600.0),
            ("reverse", 3600.0),
            ("orderquery", 3600.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::Recovered));
    assert!(
        run.sent.iter().all(|(c, _)| *c != Call::Micropay),
        "a resumed order never sends a micropay"
    );
}

#[test]
fn a_quick_restart_keeps_the_original_clock() {
    // Restarted 3 s after the send: queries keep the cadence, the reverse waits for 15 s.
    let script = vec![
        Q(userpaying()),
        Q(userpaying()),
        Q(userpaying()),
        Q(userpaying()),
        R(ReverseOutcome::Reversed),
        Q(revoked()),
    ];
    let run = drive_resumed(false, 3.0, script);
    assert_eq!(
        at(&run),
        [
            ("orderquery", 3.0),
            ("orderquery", 13.0),
            ("orderquery", 23.0),
            ("orderquery", 30.0),
            ("reverse", 30.0),
            ("orderquery", 30.0)
        ]
    );
    // A reverse had gone out before the crash: the query comes first, and
    // its REFUND is that reverse's result, not someone else's refund.
    let refunded = drive_resumed(true, 5.0, vec![Q(QueryOutcome::Refunded)]);
    assert_eq!(at(&refunded), [("orderquery", 5.0)]);
    assert_eq!(refunded.done, Final::Refunded(ReverseReason::Recovered));
    let unclear = drive_resumed(
        true,
        5.0,
        vec![
            Q(userpaying()),
            Q(userpaying()),
            Q(userpaying()),
            Q(userpaying()),
            R(ReverseOutcome::Reversed),
            Q(revoked()),
        ],
    );
    assert_eq!(
        unclear
            .sent
            .iter()
            .find(|(c, _)| matches!(c, Call::Reverse { .. }))
            .unwrap()
            .1,
        s(30.0)
    );
    assert_eq!(unclear.done, Final::Reversed(ReverseReason::Recovered));
    let found_paid = drive_resumed(false, 3.0, vec![Q(QueryOutcome::Paid(paid()))]);
    assert_eq!(found_paid.done, Final::Paid(paid()));
}

#[test]
fn the_query_after_a_reverse_tells_a_refund_from_nothing_charged() {
    let base = vec![
        M(MicropayOutcome::Pending),
        Q(QueryOutcome::PayError(String::new())),
        R(ReverseOutcome::Reversed),
    ];
    let with = |confirm: QueryOutcome| {
        let mut script = base.clone();
        script.push(Q(confirm));
        drive(Timings::default(), script, FAST, None).done
    };
    assert_eq!(
        with(QueryOutcome::Refunded),
        Final::Refunded(ReverseReason::PayError)
    );
    assert_eq!(with(revoked()), Final::Reversed(ReverseReason::PayError));
    assert_eq!(
        with(QueryOutcome::Unknown(systemerror())),
        Final::Reversed(ReverseReason::PayError)
    );
    assert_eq!(
        with(QueryOutcome::Paid(paid())),
        Final::NeedsAttention(Attention::PaidAfterReverse)
    );
}

#[test]
fn a_person_can_refund_an_order_the_gateway_reports_paid() {
    let script = vec![
        Q(QueryOutcome::Paid(paid())),
        R(ReverseOutcome::Reversed),
        Q(QueryOutcome::Refunded),
    ];
    let refunding = taken_over(&interrupted(false, 7200.0), 7200.0, true);
    let run = drive_machine(refunding, 7200.0, script);
    assert_eq!(
        at(&run),
        [
            ("orderquery", 7200.0),
            ("reverse", 7200.0),
            ("orderquery", 7200.0)
        ]
    );
    assert_eq!(run.done, Final::Refunded(ReverseReason::Recovered));
    let untouched = drive_resumed(false, 7200.0, vec![Q(QueryOutcome::Paid(paid()))]);
    assert_eq!(
        untouched.done,
        Final::Paid(paid()),
        "without the person's decision a paid order stays paid"
    );
}

/// A run of the machine against `w`, journaled as the driver journals it:
/// each request before it is sent, each answer before the machine sees it,
/// each cashier cancel. Returns the journal and the final outcome.
fn journaled_run(w: &World, timings: Timings) -> (Vec<(Event, Duration)>, Final) {
    let mut machine = Machine::new(timings);
    let mut journal = Vec::new();
    let mut now = Duration::ZERO;
    let (mut queries, mut reverses) = (
        w.queries.clone().into_iter(),
        w.reverses.clone().into_iter(),
    );
    let mut latencies = w
        .latencies_ms
        .iter()
        .cycle()
        .map(|ms| Duration::from_millis(*ms));
    let mut cancel_at = w.cancel_at_ms.map(Duration::from_millis);
    for _ in 0..64 {
        if let Some(c) = cancel_at.filter(|c| *c <= now) {
            let accepted = machine.cancel(now.max(c));
            journal.push((Event::Cancel { accepted }, now));
            cancel_at = None;
        }
        match machine.step(now) {
            Step::Send(call) => {
                journal.push((request(call), now));
                now += latencies.next().unwrap();
                let answer = match call {
                    Call::Micropay => Answer::Micropay(w.micropay.clone()),
                    Call::Query => Answer::Query(queries.next().unwrap_or(userpaying())),
                    Call::Reverse { .. } => {
                        Answer::Reverse(reverses.next().unwrap_or(ReverseOutcome::Reversed))
                    }
                };
                journal.push((
                    Event::Answer {
                        answer: answer.clone(),
                        fields: None,
                    },
                    now,
                ));
                match answer {
                    Answer::Micropay(o) => machine.on_micropay(o, now),
                    Answer::Query(o) => machine.on_query(o, now),
                    Answer::Reverse(o) => machine.on_reverse(o, now),
                }
            }
            Step::WaitUntil(at) => {
                now = match cancel_at {
                    Some(c) if c < at => c.max(now),
                    _ => at,
                }
            }
            Step::AwaitAnswer => unreachable!(),
            Step::Done(done) => return (journal, done),
        }
    }
    panic!("runaway machine");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A crash after any journaled event, then a take-over by another
    /// process at any later time (a wall clock that may have jumped), keeps
    /// the four invariants over everything sent before and after.
    #[test]
    fn any_journal_prefix_recovered_keeps_the_four_invariants(
        w in world(),
        later in world(),
        cut in 0usize..40,
        gap_ms in 0u64..120_000,
    ) {
        let timings = Timings::default();
        let (journal, _) = journaled_run(&w, timings);
        let prefix = &journal[..cut.min(journal.len())];
        let last = prefix.last().map_or(Duration::ZERO, |(_, at)| *at);
        let resumed_at = last + Duration::from_millis(gap_ms);
        let mut machine = Machine::restore(timings, prefix.iter().map(|(e, at)| (e, *at)));
        machine.take_over(resumed_at, false);

        // What the prefix proves.
        let journaled_requests: Vec<(Call, Duration)> = prefix.iter().filter_map(|(e, at)| match e {
            Event::Request { call, .. } => Some((*call, *at)),
            _ => None,
        }).collect();
        // Each request with its answer, if one was journaled before the cut.
        let mut exchanges: Vec<(Call, Option<Answer>)> = Vec::new();
        for (event, _) in prefix {
            match event {
                Event::Request { call, .. } => exchanges.push((*call, None)),
                Event::Answer { answer, .. } => exchanges.last_mut().expect("an answer follows its request").1 = Some(answer.clone()),
                _ => {}
            }
        }
        let restored = Machine::restore(timings, prefix.iter().map(|(e, at)| (e, *at)));
        let micropay_sent = journaled_requests.iter().any(|(c, _)| *c == Call::Micropay);

        // The take-over runs against another adversarial gateway.
        let mut now = resumed_at;
        let mut after: Vec<(Call, Duration)> = Vec::new();
        let mut userpaying_seen_at: Option<Duration> = None;
        let (mut queries, mut reverses) = (later.queries.clone().into_iter(), later.reverses.clone().into_iter());
        let mut latencies = later.latencies_ms.iter().cycle().map(|ms| Duration::from_millis(*ms));
        let done = loop {
            prop_assert!(after.len() < 64, "runaway after take-over: {after:?}");
            match machine.step(now) {
                Step::Send(call) => {
                    after.push((call, now));
                    prop_assert!(call != Call::Micropay, "a micropay sent again after a take-over");
                    if matches!(call, Call::Reverse { .. }) && let Some(seen) = userpaying_seen_at {
                        prop_assert!(now >= seen + timings.poll_interval, "reversed {now:?} while the customer was seen paying at {seen:?}");
                    }
                    now += latencies.next().unwrap();
                    let answer = match call {
                        Call::Micropay => unreachable!(),
                        Call::Query => {
                            let outcome = queries.next().unwrap_or(userpaying());
                            if outcome == userpaying() && userpaying_seen_at.is_none() {
                                userpaying_seen_at = Some(now);
                            }
                            Answer::Query(outcome)
                        }
                        Call::Reverse { .. } => Answer::Reverse(reverses.next().unwrap_or(ReverseOutcome::Reversed)),
                    };
                    exchanges.push((call, Some(answer.clone())));
                    match answer {
                        Answer::Query(o) => machine.on_query(o, now),
                        Answer::Reverse(o) => machine.on_reverse(o, now),
                        Answer::Micropay(_) => unreachable!(),
                    }
                }
                Step::WaitUntil(at) => { prop_assert!(at >= now); now = at; }
                Step::AwaitAnswer => prop_assert!(false, "awaiting with no request out"),
                Step::Done(done) => break done,
            }
        };
        let all: Vec<(Call, Duration)> = journaled_requests.iter().chain(&after).copied().collect();

        // 3. One micropay at most, never after the take-over; no reverse before 15 s.
        prop_assert!(all.iter().filter(|(c, _)| *c == Call::Micropay).count() <= 1);
        prop_assert!(all.iter().filter(|(c, _)| matches!(c, Call::Reverse { .. })).all(|(_, t)| *t >= timings.reverse_not_before), "{all:?}");
        if !micropay_sent {
            prop_assert!(matches!(done, Final::NotSent | Final::CancelledBeforeSending), "{:?}", done);
            prop_assert!(after.is_empty());
            return Ok(());
        }
        // 1. PAID only on a verified SUCCESS that no successful reverse of
        //    ours came before. (A reverse whose answer was lost may not have
        //    arrived: a SUCCESS after it is the gateway's word that it did not.)
        let mut reversed = false;
        let mut paid_answer = false;
        let mut definite = false;
        for (_, answer) in &exchanges {
            reversed |= matches!(answer, Some(Answer::Reverse(ReverseOutcome::Reversed)));
            match answer {
                Some(Answer::Micropay(MicropayOutcome::Paid(_))) => paid_answer = true,
                Some(Answer::Query(QueryOutcome::Paid(_))) if !reversed => paid_answer = true,
                Some(Answer::Micropay(MicropayOutcome::Failed(_))) => definite = true,
                _ => {}
            }
        }
        if matches!(done, Final::Paid(_)) { prop_assert!(paid_answer, "{done:?} {exchanges:?}"); }
        if paid_answer { prop_assert!(!after.iter().any(|(c, _)| matches!(c, Call::Reverse { .. })), "a paid order reversed: {all:?}"); }
        // 2. FAILED only on a definite failure.
        if matches!(done, Final::Failed(_)) { prop_assert!(definite); }
        // A decided order is not asked again; an undecided one is queried first.
        if let Status::Done(decided) = restored.status() {
            prop_assert!(after.is_empty(), "a decided order was asked again: {after:?}");
            prop_assert_eq!(&done, &decided);
        } else {
            prop_assert!(matches!(after.first(), Some((Call::Query, _))), "taken over without a query first: {after:?}");
        }
    }
}

#[test]
fn a_paid_answer_followed_by_our_reverse_is_asked_again_not_recorded_paid() {
    // replay --reverse-paid: query PAID, reverse sent, then the process died.
    let journal = vec![
        (micropay_request(), s(0.0)),
        (
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Unknown(systemerror())),
                fields: None,
            },
            s(0.5),
        ),
        (
            Event::Resumed {
                owner: "1-A".into(),
                elapsed_ms: 3_600_000,
                refund_paid: true,
            },
            s(3600.0),
        ),
        (request(Call::Query), s(3600.0)),
        (
            Event::Answer {
                answer: Answer::Query(QueryOutcome::Paid(paid())),
                fields: None,
            },
            s(3600.1),
        ),
        (request(Call::Reverse { attempt: 1 }), s(3600.1)),
    ];
    // A later plain replay: the refund decision stands, and the order is asked first.
    let run = drive_machine(
        taken_over(&journal, 7200.0, false),
        7200.0,
        vec![Q(QueryOutcome::Refunded)],
    );
    assert_eq!(at(&run), [("orderquery", 7200.0)]);
    assert_eq!(run.done, Final::Refunded(ReverseReason::Recovered));
    // Still paid at the gateway (the reverse never arrived): the person's
    // decision to refund is journaled, so it is carried out.
    let run = drive_machine(
        taken_over(&journal, 7200.0, false),
        7200.0,
        vec![
            Q(QueryOutcome::Paid(paid())),
            R(ReverseOutcome::Reversed),
            Q(QueryOutcome::Refunded),
        ],
    );
    assert_eq!(
        at(&run),
        [
            ("orderquery", 7200.0),
            ("reverse", 7200.0),
            ("orderquery", 7200.0)
        ]
    );
    assert_eq!(run.done, Final::Refunded(ReverseReason::Recovered));
}

#[test]
fn a_journaled_decisive_answer_is_final_without_asking_again() {
    let paid_then_crash = vec![
        (micropay_request(), s(0.0)),
        (
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Paid(paid())),
                fields: None,
            },
            s(0.3),
        ),
    ];
    let machine = taken_over(&paid_then_crash, 60.0, false);
    assert_eq!(machine.status(), Status::Done(Final::Paid(paid())));
    let taken = vec![
        (micropay_request(), s(0.0)),
        (
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::NumberTaken(refusal("ORDERPAID"))),
                fields: None,
            },
            s(0.3),
        ),
    ];
    assert_eq!(
        taken_over(&taken, 60.0, false).status(),
        Status::Done(Final::NumberTaken(refusal("ORDERPAID")))
    );
    // No intent journaled: nothing left the till.
    assert_eq!(
        taken_over(&[], 60.0, false).status(),
        Status::Done(Final::NotSent)
    );
    // A reverse answered recall=N, then the crash: only the confirming query is left.
    let reversed = vec![
        (micropay_request(), s(0.0)),
        (
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Pending),
                fields: None,
            },
            s(0.3),
        ),
        (request(Call::Query), s(10.0)),
        (
            Event::Answer {
                answer: Answer::Query(QueryOutcome::PayError(String::new())),
                fields: None,
            },
            s(10.2),
        ),
        (request(Call::Reverse { attempt: 1 }), s(15.0)),
        (
            Event::Answer {
                answer: Answer::Reverse(ReverseOutcome::Reversed),
                fields: None,
            },
            s(15.2),
        ),
    ];
    let run = drive_machine(
        taken_over(&reversed, 20.0, false),
        20.0,
        vec![Q(QueryOutcome::Paid(paid()))],
    );
    assert_eq!(at(&run), [("orderquery", 20.0)]);
    assert_eq!(run.done, Final::NeedsAttention(Attention::PaidAfterReverse));
}

#[test]
fn a_wall_clock_jump_never_reverses_a_customer_still_typing_the_password() {
    // The journal's wall clock says an hour passed (a clock stepped forward
    // after a reboot); the customer is in fact still entering the password.
    let events = interrupted(false, 3600.0);
    let run = drive_machine(
        taken_over(&events, 3600.0, false),
        3600.0,
        vec![Q(userpaying()), Q(QueryOutcome::Paid(paid()))],
    );
    assert_eq!(at(&run), [("orderquery", 3600.0), ("orderquery", 3610.0)]);
    assert_eq!(run.done, Final::Paid(paid()));
    // Still typing at the extra poll: the reverse comes only then, a full
    // poll interval after the first USERPAYING.
    let run = drive_machine(
        taken_over(&events, 3600.0, false),
        3600.0,
        vec![
            Q(userpaying()),
            Q(userpaying()),
            R(ReverseOutcome::Reversed),
            Q(revoked()),
        ],
    );
    assert_eq!(
        at(&run),
        [
            ("orderquery", 3600.0),
            ("orderquery", 3610.0),
            ("reverse", 3610.0),
            ("orderquery", 3610.0)
        ]
    );
}

#[test]
fn a_parked_order_gets_a_new_round_of_reverse_attempts_on_replay() {
    let mut events = interrupted(false, 60.0);
    let timings = Timings::default();
    for attempt in 1..=timings.reverse_max_attempts {
        events.push((
            request(Call::Reverse { attempt }),
            s(30.0 + f64::from(attempt)),
        ));
        events.push((
            Event::Answer {
                answer: Answer::Reverse(ReverseOutcome::Again(systemerror())),
                fields: None,
            },
            s(30.5 + f64::from(attempt)),
        ));
    }
    events.push((
        Event::Finished {
            state: "needs_attention".into(),
            err_code: Some("SYSTEMERROR".into()),
            transaction_id: None,
        },
        s(40.0),
    ));
    let run = drive_machine(
        taken_over(&events, 600.0, false),
        600.0,
        vec![
            Q(QueryOutcome::Unknown(systemerror())),
            R(ReverseOutcome::Reversed),
            Q(revoked()),
        ],
    );
    assert_eq!(
        at(&run),
        [
            ("orderquery", 600.0),
            ("reverse", 600.0),
            ("orderquery", 600.0)
        ]
    );
    assert_eq!(run.done, Final::Reversed(ReverseReason::Recovered));
}
