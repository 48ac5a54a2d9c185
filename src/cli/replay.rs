//! `scanpay replay`: resolves orders left open or unclear — by an outage, by
//! reverse attempts that ran out, by a crash — for the store manager or an
//! installer. It queries each, reverses what is still unclear, never sends a
//! micropay, and never reverses an order the gateway reports paid unless told
//! to with `--reverse-paid`: a paid order the till gave up on is a decision
//! for a person, so those are listed on their own.

use std::io::IsTerminal;
use std::sync::Arc;

use time::{Date, OffsetDateTime, UtcOffset};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::Exit;
use std::time::Duration;

use crate::journal::{OrderRow, OrderState, RefundClaim, day_bounds, unix_ms};
use crate::payment::recovery::{self, Recovered};
use crate::payment::refund::RefundMachine;
use crate::payment::refunding::refund_timings;
use crate::payment::{Final, PaymentResult, Status};
use crate::startup::Running;

pub struct ReplayArgs {
    pub date: Option<String>,
    pub to: Option<String>,
    pub order: Option<String>,
    pub dry_run: bool,
    pub jobs: usize,
    pub reverse_paid: bool,
}

pub async fn run(args: ReplayArgs, running: Running) -> Exit {
    let offset = running.settings.store_offset;
    let orders = match select(&args, &running, offset).await {
        Ok(orders) => orders,
        Err((exit, message)) => {
            eprintln!("scanpay replay: {message}");
            return exit;
        }
    };
    let refunds = if args.dry_run {
        Exit::OK
    } else {
        follow_up_refunds(&args, &running).await
    };
    if refunds != Exit::OK {
        return refunds;
    }
    if orders.is_empty() {
        println!(
            "nothing to replay: no order is open or needs attention{}",
            scope(&args)
        );
        return Exit::OK;
    }
    let now_ms = unix_ms(OffsetDateTime::now_utc());
    if args.dry_run {
        println!(
            "{} orders would be replayed{} (nothing is sent with --dry-run):",
            orders.len(),
            scope(&args)
        );
        for order in &orders {
            let (events, live) = match dry_run_facts(&running, order).await {
                Ok(facts) => facts,
                Err(e) => {
                    eprintln!("scanpay replay: {e}");
                    return Exit::Internal;
                }
            };
            let timings = &running.engine.timings;
            let elapsed = recovery::elapsed_since_send(order, now_ms, timings);
            let machine = recovery::plan(order, &events, now_ms, timings, args.reverse_paid);
            let action = match (live, machine.status()) {
                (Some(owner), _) => format!("skip: another scanpay process ({owner}) is paying it"),
                (None, Status::Done(outcome)) => format!(
                    "finish as {} from the journal: {}",
                    outcome.state().as_str(),
                    outcome.message(running.engine.language)
                ),
                (None, Status::Confirming) => {
                    "query whether the customer had paid before the earlier reverse".to_string()
                }
                (None, _) if args.reverse_paid => format!(
                    "query, then reverse even if paid ({:.0} s since sent)",
                    elapsed.as_secs_f64()
                ),
                (None, _) => format!(
                    "query, then reverse if still unclear ({:.0} s since sent)",
                    elapsed.as_secs_f64()
                ),
            };
            println!(
                "  {} {:>10}  {:<15} {action}",
                order.out_trade_no,
                order.total_fee.to_string(),
                order.state.as_str()
            );
        }
        return Exit::OK;
    }

    let total = orders.len();
    let permits = Arc::new(Semaphore::new(args.jobs.max(1)));
    let mut tasks = JoinSet::new();
    for order in orders {
        let engine = running.engine.clone();
        let permits = permits.clone();
        let refund = args.reverse_paid;
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = recovery::resolve(&engine, &order, now_ms, refund)
                .await
                .map_err(|e| e.to_string());
            (order, result)
        });
    }
    let progress = std::io::stderr().is_terminal();
    let mut done: Vec<(OrderRow, Result<Recovered, String>)> = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcome) => done.push(outcome),
            Err(e) => eprintln!("scanpay replay: a replay task failed: {e}"),
        }
        if progress {
            let filled = done.len() * 30 / total;
            eprint!(
                "\r[{}{}] {}/{total}",
                "#".repeat(filled),
                " ".repeat(30 - filled),
                done.len()
            );
        }
    }
    if progress {
        eprintln!();
    }
    done.sort_by(|a, b| a.0.out_trade_no.cmp(&b.0.out_trade_no));
    summarise(&done)
}

fn scope(args: &ReplayArgs) -> String {
    match (&args.order, &args.date, &args.to) {
        (Some(no), _, _) => format!(" for order {no}"),
        (None, Some(from), Some(to)) => format!(" from {from} to {to}"),
        (None, Some(day), None) => format!(" on {day}"),
        _ => String::new(),
    }
}

type Refusal = (Exit, String);

/// The order's events and the live process driving it, if any: what
/// `--dry-run` needs, read without claiming anything.
async fn dry_run_facts(
    running: &Running,
    order: &OrderRow,
) -> Result<(Vec<crate::journal::EventRow>, Option<String>), crate::journal::JournalError> {
    let id = order.id;
    running
        .engine
        .journal
        .run(move |journal| Ok((journal.events(id)?, journal.live_owner(id)?)))
        .await
}

/// The orders to replay: one by number, or the unresolved ones of a day, a
/// range of days, or (by default) all time.
async fn select(
    args: &ReplayArgs,
    running: &Running,
    offset: UtcOffset,
) -> Result<Vec<OrderRow>, Refusal> {
    let journal = &running.engine.journal;
    let failed = |e: crate::journal::JournalError| (Exit::Internal, e.to_string());
    if let Some(no) = &args.order {
        let wanted = no.clone();
        let order = journal
            .run(move |journal| journal.order_by_trade_no(&wanted))
            .await
            .map_err(failed)?;
        return match order {
            None => Err((
                Exit::BadInput,
                format!(
                    "no order {no} in the journal: check the number (scanpay journal shows them)"
                ),
            )),
            Some(order) if matches!(order.state, OrderState::Open | OrderState::NeedsAttention) => {
                Ok(vec![order])
            }
            Some(order) if args.reverse_paid && order.state == OrderState::Paid => Err((
                Exit::BadInput,
                format!(
                    "order {no} is recorded paid; a recorded payment is refunded on the merchant platform, not by replay"
                ),
            )),
            Some(order) => {
                println!(
                    "order {no} is already {}: nothing to do",
                    order.state.as_str()
                );
                Ok(Vec::new())
            }
        };
    }
    let parse = |flag: &'static str, text: &str| {
        super::journal::parse_date(flag, text).map_err(|e| (e.exit(), e.to_string()))
    };
    let (from_ms, to_ms) = match (&args.date, &args.to) {
        (None, None) => (i64::MIN, i64::MAX),
        (Some(day), to) => {
            let first: Date = parse("date", day)?;
            let last = match to {
                Some(to) => parse("to", to)?,
                None => first,
            };
            if last < first {
                return Err((
                    Exit::BadInput,
                    "--to is before --date: give the first day with --date and the last with --to"
                        .into(),
                ));
            }
            (day_bounds(first, offset).0, day_bounds(last, offset).1)
        }
        (None, Some(_)) => {
            return Err((
                Exit::BadInput,
                "--to needs --date for the first day of the range".into(),
            ));
        }
    };
    journal
        .run(move |journal| journal.unresolved_between(from_ms, to_ms))
        .await
        .map_err(failed)
}

/// The summary table, and the orders a person must look at. Exit 0 when all
/// were resolved, 6 when some are still unresolved, 1 on journal errors.
fn summarise(done: &[(OrderRow, Result<Recovered, String>)]) -> Exit {
    let skipped: Vec<(&OrderRow, &str)> = done
        .iter()
        .filter_map(|(order, r)| match r {
            Ok(Recovered::Skipped { owner }) => Some((order, owner.as_str())),
            _ => None,
        })
        .collect();
    let done: Vec<(OrderRow, Result<PaymentResult, String>)> = done
        .iter()
        .filter_map(|(order, r)| match r {
            Ok(Recovered::Resolved(result)) => Some((order.clone(), Ok(result.clone()))),
            Ok(_) => None,
            Err(e) => Some((order.clone(), Err(e.clone()))),
        })
        .collect();
    let count = |f: &dyn Fn(&Final) -> bool| {
        done.iter()
            .filter(|(_, r)| r.as_ref().is_ok_and(|p| f(&p.outcome)))
            .count()
    };
    let paid = count(&|f| matches!(f, Final::Paid(_)));
    let reversed = count(&|f| matches!(f, Final::Reversed(_)));
    let refunded = count(&|f| matches!(f, Final::Refunded(_)));
    let closed = count(&|f| matches!(f, Final::Closed(_)));
    let failed = count(&|f| {
        matches!(
            f,
            Final::Failed(_)
                | Final::CancelledBeforeSending
                | Final::NotSent
                | Final::NumberTaken(_)
        )
    });
    let unresolved = count(&|f| matches!(f, Final::NeedsAttention(_)));
    let errors = done.iter().filter(|(_, r)| r.is_err()).count();
    println!("replayed {} orders", done.len());
    println!("  paid (the customer was charged)          {paid:>6}");
    println!("  reversed (nothing charged)               {reversed:>6}");
    println!("  reversed after payment (refunded)        {refunded:>6}");
    println!("  closed                                   {closed:>6}");
    println!("  failed or never sent (nothing charged)   {failed:>6}");
    println!("  still unresolved                         {unresolved:>6}");
    if errors > 0 {
        println!("  not replayed: journal errors             {errors:>6}");
    }
    if !skipped.is_empty() {
        println!(
            "  skipped: a live scanpay is paying them    {:>6}",
            skipped.len()
        );
        for (order, owner) in &skipped {
            println!(
                "    {}  ¥{:>10}  driven by scanpay process {owner}",
                order.out_trade_no,
                order.total_fee.to_string()
            );
        }
    }
    if paid > 0 {
        println!();
        println!(
            "PAID, BUT THE TILL HAD NOT SEEN IT: these customers were charged and the journal now says PAID."
        );
        println!(
            "Hand over the goods, or refund them on the WeChat Pay merchant platform. (To reverse such orders"
        );
        println!(
            "instead of recording them paid, replay them with --reverse-paid before they are resolved.)"
        );
        for (order, result) in &done {
            if let Ok(PaymentResult {
                outcome: Final::Paid(settlement),
                ..
            }) = result
            {
                println!(
                    "  {}  ¥{:>10}  transaction {}",
                    order.out_trade_no,
                    order.total_fee.to_string(),
                    settlement.transaction_id
                );
            }
        }
    }
    if unresolved + errors > 0 {
        println!();
        println!(
            "STILL UNRESOLVED: run replay again later; if it stays, contact WeChat Pay support with the order number:"
        );
        for (order, result) in &done {
            match result {
                Ok(p) if matches!(p.outcome, Final::NeedsAttention(_)) => {
                    println!(
                        "  {}  ¥{:>10}  {}",
                        order.out_trade_no,
                        order.total_fee.to_string(),
                        p.message
                    )
                }
                Err(e) => println!(
                    "  {}  ¥{:>10}  {e}",
                    order.out_trade_no,
                    order.total_fee.to_string()
                ),
                _ => {}
            }
        }
    }
    match (errors, unresolved) {
        (0, 0) => Exit::OK,
        (0, _) => Exit::NeedsAttention,
        _ => Exit::Internal,
    }
}

/// Refunds left pending, processing or unclear (a crash, an outage, a slow
/// bank) whose owner is gone: each is asked about first and sent again only
/// under its own number, so none is ever refunded twice. Exit 6 while any
/// is still unresolved, 1 on journal errors.
async fn follow_up_refunds(args: &ReplayArgs, running: &Running) -> Exit {
    let journal = &running.engine.journal;
    let refunds = match journal.run(|j| j.unresolved_refunds()).await {
        Ok(refunds) => refunds,
        Err(e) => {
            eprintln!("scanpay replay: {e}");
            return Exit::Internal;
        }
    };
    let mut exit = Exit::OK;
    for refund in refunds {
        let (id, order_id) = (refund.id, refund.order_id);
        let wanted = args.order.clone();
        let claimed = journal
            .run(move |j| {
                let order = j.order_by_id(order_id)?;
                // With --order, only that order's refunds are taken.
                let other = |o: &OrderRow| {
                    wanted
                        .as_deref()
                        .is_some_and(|no| no != o.out_trade_no.as_str())
                };
                match order {
                    Some(order) if !other(&order) => Ok(Some((j.claim_refund(id)?, order))),
                    _ => Ok(None),
                }
            })
            .await;
        let order = match claimed {
            Ok(Some((RefundClaim::Claimed, order))) => order,
            Ok(Some((RefundClaim::Live { owner }, _))) => {
                println!(
                    "refund {} skipped: another scanpay process ({owner}) is driving it",
                    refund.out_refund_no
                );
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                eprintln!("scanpay replay: {e}");
                exit = Exit::Internal;
                continue;
            }
        };
        let machine =
            RefundMachine::taken_over(refund_timings(&running.engine.timings), Duration::ZERO);
        match running.engine.drive_refund(&order, refund, machine).await {
            Ok(result) => {
                println!(
                    "refund {} of order {}: {} — {}",
                    result.out_refund_no,
                    order.out_trade_no,
                    result.state().as_str(),
                    result.message
                );
                if result.state().unresolved() && exit == Exit::OK {
                    exit = Exit::NeedsAttention;
                }
            }
            Err(e) => {
                eprintln!("scanpay replay: {e}");
                exit = Exit::Internal;
            }
        }
    }
    exit
}
