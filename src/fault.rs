//! Crash injection for tests: `SCANPAY_FAULT=<point>[:<n>]` aborts the
//! process (no unwinding, no flush — like a power cut as far as the journal
//! is concerned) the n-th time (default: first) the payment path passes
//! that point. Unset, every check is one relaxed atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The named places on the payment path where a crash is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The order row is committed; nothing is sent.
    OrderJournaled,
    /// The micropay intent is committed; the request has not left.
    IntentJournaled,
    /// A request was sent and its answer received; the answer is not journaled.
    AnswerReceived,
    /// The answer is journaled; the machine has not acted on it.
    AnswerJournaled,
    /// A reverse request is journaled; it has not left.
    ReverseJournaled,
    /// A refund request is journaled; it has not left.
    RefundJournaled,
    /// A refund or refundquery answer arrived; it is not journaled.
    RefundAnswered,
    /// A batch of events is committed in the store database and marked
    /// shipped in the journal; the next batch has not been read.
    StoreShipped,
}

impl Point {
    pub const ALL: [Point; 8] = [
        Point::OrderJournaled,
        Point::IntentJournaled,
        Point::AnswerReceived,
        Point::AnswerJournaled,
        Point::ReverseJournaled,
        Point::RefundJournaled,
        Point::RefundAnswered,
        Point::StoreShipped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Point::OrderJournaled => "order-journaled",
            Point::IntentJournaled => "intent-journaled",
            Point::AnswerReceived => "answer-received",
            Point::AnswerJournaled => "answer-journaled",
            Point::ReverseJournaled => "reverse-journaled",
            Point::RefundJournaled => "refund-journaled",
            Point::RefundAnswered => "refund-answered",
            Point::StoreShipped => "store-shipped",
        }
    }
}

struct Armed {
    point: Point,
    at: u32,
    seen: AtomicU32,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("SCANPAY_FAULT").ok()?;
            let (name, at) = spec
                .split_once(':')
                .map_or((spec.as_str(), 1), |(n, a)| (n, a.parse().unwrap_or(1)));
            let point = Point::ALL.into_iter().find(|p| p.name() == name)?;
            tracing::warn!(
                point = name,
                at,
                "fault injection armed: the process will abort there"
            );
            Some(Armed {
                point,
                at,
                seen: AtomicU32::new(0),
            })
        })
        .as_ref()
}

/// Aborts here if `SCANPAY_FAULT` names this point and this is the n-th pass.
pub fn hit(point: Point) {
    if let Some(armed) = armed().filter(|a| a.point == point)
        && armed.seen.fetch_add(1, Ordering::Relaxed) + 1 == armed.at
    {
        eprintln!("scanpay: fault injected at {}: aborting", point.name());
        std::process::abort();
    }
}
