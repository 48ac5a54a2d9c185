//! The write-ahead journal: one SQLite file holding every order and an
//! append-only log of what happened to it.
//!
//! It is the single source of truth for crash recovery, the manager's review
//! and offline replay, so every write is committed with a full fsync before
//! the call returns (PROTOCOL.md invariant 4: a request is journaled before it
//! is sent, an answer before it is acted on).
//!
//! The API is synchronous; the async engine holds a [`Journal`] behind a
//! `std::sync::Mutex` and calls it through `spawn_blocking`.

mod error;
pub mod owner;
mod reconciliations;
mod refunds;
mod report;
mod schema;
mod shipping;
mod store;
mod writer;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use time::{OffsetDateTime, UtcOffset};

use crate::domain::{Fen, OutTradeNo, TillId};
use crate::payment::Event;

pub use reconciliations::{BillSource, NewReconciliation, ReconciliationRow};
pub use refunds::{
    MAX_REFUNDS_PER_ORDER, REFUND_WITHIN_MS, RefundClaim, RefundEnd, RefundRefusal, RefundRow,
    RefundState, RefundTotals, check_refund, refundable,
};
pub use report::{
    DayReport, DaySummary, EXPORT_COLUMNS, ExportFormat, ExportWriter, OrderRefunds, UTF8_BOM,
    day_bounds, excel_cell, write_csv, write_json,
};
pub use shipping::{ShipBatch, ShipEvent, ShipOrder, ShipRefund};
pub use store::{Claim, Journal, unix_ms};
pub use writer::JournalWriter;

/// What [`Journal::open_order`] needs to start an order.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub till: &'a TillId,
    pub total_fee: Fen,
    pub body: &'a str,
    /// [`crate::domain::AuthCode::masked`]; a full payment code is refused.
    pub auth_code_masked: String,
    /// Wall time, stored as unix milliseconds.
    pub now: OffsetDateTime,
    /// The store's time zone: the out_trade_no carries the local time.
    pub local_offset: UtcOffset,
}

/// The journal's id for an order (the `orders` row id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub i64);

/// Which kind of step an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Opened,
    Request,
    Answer,
    Timer,
    Cashier,
    Finished,
    Note,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Request => "request",
            Self::Answer => "answer",
            Self::Timer => "timer",
            Self::Cashier => "cashier",
            Self::Finished => "finished",
            Self::Note => "note",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "opened" => Self::Opened,
            "request" => Self::Request,
            "answer" => Self::Answer,
            "timer" => Self::Timer,
            "cashier" => Self::Cashier,
            "finished" => Self::Finished,
            "note" => Self::Note,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an order stands. `Open` is in flight; `NeedsAttention` is parked for
/// a person or offline replay and may still be resolved to one of the four
/// final states, which are never overwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderState {
    Open,
    Paid,
    Failed,
    Reversed,
    Closed,
    NeedsAttention,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Reversed => "reversed",
            Self::Closed => "closed",
            Self::NeedsAttention => "needs_attention",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "open" => Self::Open,
            "paid" => Self::Paid,
            "failed" => Self::Failed,
            "reversed" => Self::Reversed,
            "closed" => Self::Closed,
            "needs_attention" => Self::NeedsAttention,
            _ => return None,
        })
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step to append to an order's log.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub at: OffsetDateTime,
    /// Milliseconds since the micropay was sent (t0, monotonic); `None` before.
    pub since_t0_ms: Option<u64>,
    /// One line a manager can read.
    pub summary: String,
    /// What happened, typed: the machine is fed it again on recovery.
    pub event: Event,
}

/// How an order ended, for [`Journal::finish`].
#[derive(Debug, Clone)]
pub struct FinalRecord {
    pub state: OrderState,
    pub transaction_id: Option<String>,
    pub err_code: Option<String>,
    pub message: Option<String>,
    pub at: OffsetDateTime,
}

/// An order as the journal holds it. Times are unix milliseconds (UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: OrderId,
    pub out_trade_no: OutTradeNo,
    pub till_id: TillId,
    pub total_fee: Fen,
    pub body: String,
    pub auth_code_masked: String,
    pub created_at_ms: i64,
    /// When the micropay request was journaled, i.e. just before it was sent.
    pub micropay_sent_at_ms: Option<i64>,
    pub state: OrderState,
    pub finished_at_ms: Option<i64>,
    pub transaction_id: Option<String>,
    pub err_code: Option<String>,
    pub message: Option<String>,
}

/// One event as the journal holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub order_id: OrderId,
    pub at_ms: i64,
    pub since_t0_ms: Option<u64>,
    pub kind: EventKind,
    /// `micropay`, `orderquery`, `reverse`… for requests and answers.
    pub call: Option<String>,
    pub summary: String,
    pub event: Event,
}

/// Every message says what to do about it: the cashier or manager reads these.
/// A cause is part of the message (the CLI prints messages only), not a
/// `source()`, so error-chain printers do not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "cannot create the journal folder {folder} ({cause}): create it and let the user running scanpay write to it, e.g. `mkdir -p '{folder}' && chown \"$USER\" '{folder}'`"
    )]
    CreateFolder { folder: PathBuf, cause: io::Error },
    #[error(
        "cannot open the journal {path} for writing ({cause}): it must be a file the user running scanpay may read and write, in a folder it may write, e.g. `chown \"$USER\" '{folder}' '{path}' && chmod u+rwx '{folder}' && chmod u+rw '{path}'`",
        folder = folder_of(path).display()
    )]
    Access {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error(
        "the journal {path} stayed locked by another program for 5 s: wait for it to finish (a long export or a copy of the file), then try again"
    )]
    Busy { path: PathBuf },
    #[error(
        "{path} is not a scanpay journal: point journal.path at the journal file, or move this file away to start a new journal there"
    )]
    NotAJournal { path: PathBuf },
    #[error(
        "the journal {path} was written by a newer scanpay (schema version {found}, this build knows up to {known}): upgrade scanpay; the journal was left untouched"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: usize,
    },
    #[error(
        "the journal {path} cannot use write-ahead logging (SQLite stayed in {mode:?} mode), usually because its folder is on a network or virtual filesystem without shared memory: put the journal on a local disk"
    )]
    NotWal { path: PathBuf, mode: String },
    /// A read-only open failed for lack of access (`open_read_only`).
    #[error(
        "cannot read the journal {path} ({cause}): the user running scanpay must be allowed to read the file and its folder"
    )]
    Unreadable {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error(
        "the journal {path} has writes in its -wal file that SQLite cannot read without the -shm file beside it, which is missing and cannot be created here (the folder is read-only): copy every file of the journal's folder somewhere writable and point journal.path at the copy"
    )]
    WalWithoutShm { path: PathBuf },
    #[error(
        "the disk holding the journal {path} is full: free some space; no payment can be taken until the journal can be written"
    )]
    DiskFull { path: PathBuf },
    #[error("journal {path}: {cause}")]
    Sqlite {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    // The offending text is deliberately not part of the error: it would carry
    // the code into logs.
    #[error(
        "refusing to journal the {field}: it holds a full WeChat payment code (18 digits starting 10 to 15), which must never be stored; journal AuthCode::masked() instead"
    )]
    PaymentCode { field: &'static str },
    #[error("the journal has no order with id {0}: it was not opened by this journal")]
    UnknownOrder(i64),
    #[error(
        "order {out_trade_no} is now driven by another scanpay process ({owner}): this one stops touching it and leaves it to that process"
    )]
    Taken { out_trade_no: String, owner: String },
    #[error(
        "cannot take ownership of orders in the journal {path} ({cause}): the folder beside the journal must be writable by the user running scanpay"
    )]
    Owner { path: PathBuf, cause: io::Error },
    #[error(
        "the journal {path} was opened for reading only (a report or export): it cannot record payments"
    )]
    ReadOnly { path: PathBuf },
    #[error(
        "the journal's writer thread has stopped: restart scanpay; unfinished orders are recovered from the journal"
    )]
    WriterGone,
    #[error(
        "order {out_trade_no} is already {current}; refusing to record it as {wanted}, because a final state is never overwritten: review the order in the journal"
    )]
    AlreadyFinished {
        out_trade_no: String,
        current: OrderState,
        wanted: OrderState,
    },
    #[error(
        "an order cannot be finished as {0}: finish it as paid, failed, reversed, closed or needs_attention"
    )]
    NotFinal(OrderState),
    /// SQLite found the file damaged: at open (`quick_check`), or on a page a
    /// read or write touched.
    #[error(
        "the journal {path} is damaged ({problem}): no payment is taken on it. Keep the file as it is (copy it, with any {path}-wal and -shm, somewhere safe), then restore the latest backup, or recover what SQLite can still read with `sqlite3 '{path}' \".recover\" > recovered.sql`, and point journal.path at a new file (scanpay starts a new journal there); `scanpay journal --check` lists the damage, and days it does not touch can still be exported"
    )]
    Damaged { path: PathBuf, problem: String },
}

/// The folder holding `path`; `.` for a bare file name.
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|f| !f.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
