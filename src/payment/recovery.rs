//! Orders the journal shows unfinished — a crash, a power cut, an outage —
//! and how each is taken to its end without charging anyone twice.
//!
//! Only an order whose owner is gone is taken ([`Engine::claim`]); one a live
//! process drives is skipped and named. A taken order is rebuilt by feeding
//! the machine its journaled events ([`Machine::restore`]) and the machine
//! decides: a journaled verified answer is final, a micropay whose intent was
//! never written was never sent, and everything else starts again with a
//! query — never a second micropay, and the 15 s rule counted from the
//! original send by the journal's wall clock.

use std::time::Duration;

use super::driver::{Engine, EngineError, PaymentResult};
use super::machine::Machine;
use super::policy::Timings;
use crate::journal::{Claim, EventRow, OrderRow};

/// What became of one order given to [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    Resolved(PaymentResult),
    /// A live scanpay process drives it; it was left alone.
    Skipped {
        owner: String,
    },
    /// Someone finished it between selection and claim.
    AlreadyFinished,
}

/// The intent is journaled just before the request leaves; counting the send
/// this much later keeps every "not before" rule on the safe side of the
/// fsync-to-send gap (1 s with WeChat's 15 s).
fn send_margin(timings: &Timings) -> Duration {
    timings.reverse_not_before / 15
}

/// The time since the order's micropay was sent, by the journal's wall
/// clock. A clock that went backwards gives 0: the rules then wait their
/// full time.
pub fn elapsed_since_send(order: &OrderRow, now_ms: i64, timings: &Timings) -> Duration {
    let sent_ms = order.micropay_sent_at_ms.unwrap_or(now_ms);
    let since = u64::try_from(now_ms.saturating_sub(sent_ms)).unwrap_or(0);
    Duration::from_millis(since).saturating_sub(send_margin(timings))
}

/// The machine the journal describes, taken over now: what this process
/// will do with the order. Pure; `replay --dry-run` shows it.
pub fn plan(
    order: &OrderRow,
    events: &[EventRow],
    now_ms: i64,
    timings: &Timings,
    refund_paid: bool,
) -> Machine {
    let mut machine = Machine::restore(
        *timings,
        events.iter().map(|row| {
            let at = Duration::from_millis(row.since_t0_ms.unwrap_or(0));
            (&row.event, at)
        }),
    );
    machine.take_over(elapsed_since_send(order, now_ms, timings), refund_paid);
    machine
}

/// Takes one unfinished or unclear order to its end, if nobody live drives
/// it. `refund_paid` is a person's decision to reverse it even if the
/// gateway reports it paid.
pub async fn resolve(
    engine: &Engine,
    order: &OrderRow,
    now_ms: i64,
    refund_paid: bool,
) -> Result<Recovered, EngineError> {
    match engine.claim(order).await? {
        Claim::Live { owner } => return Ok(Recovered::Skipped { owner }),
        Claim::Finished(_) => return Ok(Recovered::AlreadyFinished),
        Claim::Claimed { .. } => {}
    }
    let events = engine.events(order).await?;
    let machine = plan(order, &events, now_ms, &engine.timings, refund_paid);
    let elapsed = elapsed_since_send(order, now_ms, &engine.timings);
    let (progress, _) = tokio::sync::mpsc::unbounded_channel();
    engine
        .resume(order, &events, machine, elapsed, refund_paid, progress)
        .await
        .map(Recovered::Resolved)
}

/// Resolves `orders` concurrently, sending each outcome as it comes.
pub fn resolve_all(
    engine: &Engine,
    orders: Vec<OrderRow>,
    now_ms: i64,
    done: tokio::sync::mpsc::UnboundedSender<(OrderRow, Result<Recovered, String>)>,
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
