//! `scanpay replay` on a journal with thousands of unresolved orders: the
//! real command, in-process against the built-in simulator over loopback
//! HTTP, each order queried, reversed and confirmed (three calls and about
//! eight fsync'd journal writes). Prints orders/second and how much the
//! process's peak resident memory grew.
//!
//! cargo bench --bench replay

use std::time::{Duration, Instant};

use scanpay::cli::replay::{ReplayArgs, run};
use scanpay::config::Settings;
use scanpay::domain::{Fen, TillId};
use scanpay::journal::{EventRecord, FinalRecord, Journal, NewOrder, OrderState};
use scanpay::payment::{Call, Event};
use time::OffsetDateTime;

fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `count` orders left needing attention an hour ago: sent, never resolved.
fn unresolved_journal(path: &std::path::Path, count: usize) {
    let mut journal = Journal::open(path).unwrap();
    let till = TillId::parse("R1").unwrap();
    let an_hour_ago = OffsetDateTime::now_utc() - Duration::from_secs(3600);
    for i in 0..count {
        let body = format!("bench {i}");
        let new = NewOrder {
            till: &till,
            total_fee: Fen(100 + i as u64),
            body: &body,
            auth_code_masked: "**************6076".into(),
            now: an_hour_ago,
            local_offset: time::UtcOffset::UTC,
        };
        let (id, _) = journal.open_order(&new).unwrap();
        let event = |event, summary: &str| EventRecord {
            at: an_hour_ago,
            since_t0_ms: Some(0),
            summary: summary.into(),
            event,
        };
        let request = Event::Request {
            call: Call::Micropay,
            fields: Default::default(),
        };
        let parked = Event::Finished {
            state: "needs_attention".into(),
            err_code: Some("TRANSPORT".into()),
            transaction_id: None,
        };
        journal
            .record_micropay_intent(id, &event(request, "micropay sent"))
            .unwrap();
        let outcome = FinalRecord {
            state: OrderState::NeedsAttention,
            transaction_id: None,
            err_code: Some("TRANSPORT".into()),
            message: Some("outage".into()),
            at: an_hour_ago,
        };
        journal
            .finish(id, &outcome, &event(parked, "finished: needs_attention"))
            .unwrap();
    }
}

fn main() {
    let count = 3000;
    let dir = tempfile::tempdir_in(".").unwrap();
    let path = dir.path().join("journal.sqlite3");
    let built = Instant::now();
    unresolved_journal(&path, count);
    println!(
        "journal with {count} unresolved orders built in {:.1?}",
        built.elapsed()
    );
    let env = vec![
        (
            "SCANPAY_JOURNAL_PATH".to_string(),
            path.display().to_string(),
        ),
        ("SCANPAY_GATEWAY_MODE".to_string(), "simulator".to_string()),
    ];
    let settings = Settings::load(None, env).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for jobs in [1, 4, 16] {
        // Each round replays a fresh copy, so every round does the full work.
        let copy = dir.path().join(format!("round-{jobs}.sqlite3"));
        std::fs::copy(&path, &copy).unwrap();
        let mut settings = settings.clone();
        settings.journal_path = copy;
        let before = vm("VmHWM:");
        let started = Instant::now();
        let exit = runtime.block_on(async {
            let running = scanpay::startup::start(settings).await.unwrap();
            let args = ReplayArgs {
                date: None,
                to: None,
                order: None,
                dry_run: false,
                jobs,
                reverse_paid: false,
            };
            run(args, running).await
        });
        let elapsed = started.elapsed();
        assert_eq!(exit as u8, 0, "every order resolved");
        println!(
            "replay --jobs {jobs:<2}: {count} orders in {elapsed:.2?} = {:.0} orders/s; peak RSS {} KiB (grew {} KiB)",
            count as f64 / elapsed.as_secs_f64(),
            vm("VmHWM:"),
            vm("VmHWM:").saturating_sub(before)
        );
    }
}
