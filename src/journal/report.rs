//! The journal's reporting side: the manager's day view, the till's status
//! line, and exports as CSV or JSON.
//!
//! Days are the store's local days at a fixed UTC offset (`till.time_zone`),
//! and an order belongs to the day and hour it was created in, so a sale rung
//! up at 23:59 and confirmed after midnight counts on the day it was made.

use std::io::{self, Write};
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use super::store::{BUSY_TIMEOUT, classify, parsed, unsigned};
use super::{Journal, JournalError, OrderRow, OrderState, schema};
use crate::domain::{Fen, mask};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Counts and takings per state and hour, summed by SQLite in one pass over the
/// range of `orders_by_created`: no order comes back to Rust.
const SUMMARY_BETWEEN: &str = "\
    SELECT (created_at_ms - ?1) / 3600000 % 24, state, count(*), sum(total_fee) \
    FROM orders WHERE created_at_ms >= ?1 AND created_at_ms < ?2 GROUP BY 1, 2";

/// The store's local `day` as `[from_ms, to_ms)` in UTC unix milliseconds.
pub fn day_bounds(day: Date, offset: UtcOffset) -> (i64, i64) {
    let from = day.midnight().assume_offset(offset).unix_timestamp() * 1000;
    // A fixed offset has no daylight saving: every local day is 24 hours.
    (from, from + DAY_MS)
}

/// What the manager's screen shows for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayReport {
    pub day: Date,
    /// Oldest first.
    pub orders: Vec<OrderRow>,
    pub summary: DaySummary,
}

/// Orders per final state and the day's takings. Only paid orders carry money:
/// a reversed or closed order's charge, if any, went back to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DaySummary {
    pub paid_count: u64,
    pub paid_total: Fen,
    pub failed: u64,
    pub reversed: u64,
    pub closed: u64,
    pub needs_attention: u64,
    /// Still in flight, or left open by a crash until recovery resumes them.
    pub open: u64,
    /// Takings per local hour: `[0]` is 00:00–00:59 of the day the orders were created.
    pub hourly_paid: [Fen; 24],
}

impl DaySummary {
    fn add(&mut self, state: OrderState, hour: usize, count: u64, total: Fen) {
        match state {
            OrderState::Paid => {
                self.paid_count += count;
                self.paid_total.0 += total.0;
                self.hourly_paid[hour].0 += total.0;
            }
            OrderState::Failed => self.failed += count,
            OrderState::Reversed => self.reversed += count,
            OrderState::Closed => self.closed += count,
            OrderState::NeedsAttention => self.needs_attention += count,
            OrderState::Open => self.open += count,
        }
    }
}

/// The hour, counted from `from_ms` and wrapping every 24, an order created at
/// `at_ms >= from_ms` falls in (as [`SUMMARY_BETWEEN`] computes it): the local
/// hour when `from_ms` is a local midnight.
fn hour_of(at_ms: i64, from_ms: i64) -> usize {
    ((at_ms - from_ms) / HOUR_MS % 24) as usize
}

impl Journal {
    /// Opens an existing journal for reading only, as the manager's export
    /// does while the till runs: in WAL mode a reader never blocks the till's
    /// writes, and nothing here can write, create or migrate the file. A
    /// missing file is an error, never a new empty journal. Write methods on
    /// the result fail.
    pub fn open_read_only(path: &Path) -> Result<Self, JournalError> {
        let db = |e| classify(path, e);
        // Without SQLITE_OPEN_CREATE SQLite refuses a missing file.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(db)?;
        // A reader waits only while a writer recovers a WAL after a crash.
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        schema::check(&conn, path)?;
        // check() accepts a blank file, which Journal::open would set up; there
        // is nothing to read in it. Older versions read fine: reports use only
        // version-1 columns.
        if schema::user_version(&conn).map_err(db)? == 0 {
            return Err(JournalError::NotAJournal { path: path.into() });
        }
        Ok(Self {
            conn,
            path: path.into(),
            owner: None,
            installation: None,
        })
    }

    /// The store's local `day`: its orders, oldest first, and their summary.
    pub fn day(&self, day: Date, offset: UtcOffset) -> Result<DayReport, JournalError> {
        let (from, to) = day_bounds(day, offset);
        let orders = self.orders_between(from, to)?;
        // Summed from the rows just loaded, so the totals always match the list
        // even while the till is writing.
        let mut summary = DaySummary::default();
        for order in &orders {
            let hour = hour_of(order.created_at_ms, from);
            summary.add(order.state, hour, 1, order.total_fee);
        }
        Ok(DayReport {
            day,
            orders,
            summary,
        })
    }

    /// The summary of orders created in `[from_ms, to_ms)`, by SQL aggregates
    /// (for the till's status line). `hourly_paid` counts hours from `from_ms`,
    /// which are local hours when `from_ms` comes from [`day_bounds`].
    pub fn summary_between(&self, from_ms: i64, to_ms: i64) -> Result<DaySummary, JournalError> {
        let groups: Vec<_> = self
            .conn
            .prepare_cached(SUMMARY_BETWEEN)
            .and_then(|mut select| select.query_map([from_ms, to_ms], summary_group)?.collect())
            .map_err(|e| classify(&self.path, e))?;
        let mut summary = DaySummary::default();
        for (hour, state, count, total) in groups {
            summary.add(state, hour, count, total);
        }
        Ok(summary)
    }
}

/// One row of [`SUMMARY_BETWEEN`]: hour, state, order count, their total.
fn summary_group(row: &rusqlite::Row) -> rusqlite::Result<(usize, OrderState, u64, Fen)> {
    let hour: i64 = row.get(0)?;
    let hour = usize::try_from(hour)
        .ok()
        .filter(|h| *h < 24)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, hour))?;
    let state = parsed(row, 1, OrderState::parse)?;
    let count = unsigned(2, row.get(2)?)?;
    let total = Fen(unsigned(3, row.get(3)?)?);
    Ok((hour, state, count, total))
}

/// The export's columns, in order: CSV's header and JSON's keys. Scripts and
/// spreadsheets rely on them, so a column is only ever added at the end.
pub const EXPORT_COLUMNS: [&str; 11] = [
    "out_trade_no",
    "created_at",
    "till_id",
    "amount",
    "state",
    "transaction_id",
    "err_code",
    "message",
    "body",
    "auth_code",
    "finished_at",
];

/// One exported order; the field order is [`EXPORT_COLUMNS`].
#[derive(Serialize)]
struct Line<'a> {
    out_trade_no: &'a str,
    created_at: String,
    till_id: &'a str,
    /// Yuan from integer fen ("12.34"): never a float.
    amount: String,
    state: &'static str,
    transaction_id: Option<&'a str>,
    err_code: Option<&'a str>,
    message: Option<&'a str>,
    body: &'a str,
    auth_code: String,
    finished_at: Option<String>,
}

/// Local ISO-8601 to the second with the store's offset: 2026-11-22T14:03:07+08:00.
const LOCAL_TIME: &[BorrowedFormatItem<'_>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

fn local_time(ms: i64, offset: UtcOffset) -> io::Result<String> {
    let unreadable = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the journal holds an impossible time ({ms} ms)"),
        )
    };
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.checked_to_offset(offset))
        .ok_or_else(unreadable)?
        .format(LOCAL_TIME)
        .map_err(io::Error::other)
}

impl<'a> Line<'a> {
    fn of(order: &'a OrderRow, offset: UtcOffset) -> io::Result<Self> {
        Ok(Self {
            out_trade_no: order.out_trade_no.as_str(),
            created_at: local_time(order.created_at_ms, offset)?,
            till_id: order.till_id.as_str(),
            amount: order.total_fee.to_string(),
            state: order.state.as_str(),
            transaction_id: order.transaction_id.as_deref(),
            err_code: order.err_code.as_deref(),
            message: order.message.as_deref(),
            body: &order.body,
            // The journal stores only the masked code; masking again guarantees
            // an export shows at most the last four characters whatever it holds.
            auth_code: mask(&order.auth_code_masked),
            finished_at: order
                .finished_at_ms
                .map(|ms| local_time(ms, offset))
                .transpose()?,
        })
    }
}

/// The export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// UTF-8 CSV with a header row; an absent value is an empty field.
    Csv,
    /// A JSON array with one object per order on its own line; an absent value is null.
    Json,
}

/// Writes an export in pieces, so exporting a year holds one day's orders in
/// memory at a time. Call [`ExportWriter::finish`]: without it a JSON export
/// lacks its closing bracket.
pub struct ExportWriter<W: Write> {
    offset: UtcOffset,
    sink: Sink<W>,
}

enum Sink<W: Write> {
    // Boxed: the csv writer carries a buffer and state of ~350 bytes.
    Csv(Box<csv::Writer<W>>),
    Json { out: W, empty: bool },
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export, writing the CSV header or the JSON array's opening.
    pub fn new(format: ExportFormat, offset: UtcOffset, mut out: W) -> io::Result<Self> {
        let sink = match format {
            ExportFormat::Csv => {
                // The header is written here, not by serialize(), so an empty
                // export still has it.
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                csv.write_record(EXPORT_COLUMNS)?;
                Sink::Csv(Box::new(csv))
            }
            ExportFormat::Json => {
                out.write_all(b"[")?;
                Sink::Json { out, empty: true }
            }
        };
        Ok(Self { offset, sink })
    }

    pub fn write(&mut self, orders: &[OrderRow]) -> io::Result<()> {
        for order in orders {
            let line = Line::of(order, self.offset)?;
            match &mut self.sink {
                Sink::Csv(csv) => csv.serialize(line)?,
                Sink::Json { out, empty } => {
                    out.write_all(if *empty { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *out, &line)?;
                    *empty = false;
                }
            }
        }
        Ok(())
    }

    /// Ends the export and flushes it; returns the writer.
    pub fn finish(self) -> io::Result<W> {
        match self.sink {
            Sink::Csv(csv) => csv.into_inner().map_err(|e| e.into_error()),
            Sink::Json { mut out, empty } => {
                out.write_all(if empty { b"]\n" } else { b"\n]\n" })?;
                out.flush()?;
                Ok(out)
            }
        }
    }
}

/// Writes `orders` as CSV (see [`EXPORT_COLUMNS`]), times at `offset`.
pub fn write_csv(orders: &[OrderRow], offset: UtcOffset, w: impl Write) -> io::Result<()> {
    write_export(ExportFormat::Csv, orders, offset, w)
}

/// Writes `orders` as a JSON array of objects keyed by [`EXPORT_COLUMNS`].
pub fn write_json(orders: &[OrderRow], offset: UtcOffset, w: impl Write) -> io::Result<()> {
    write_export(ExportFormat::Json, orders, offset, w)
}

fn write_export(
    format: ExportFormat,
    orders: &[OrderRow],
    offset: UtcOffset,
    w: impl Write,
) -> io::Result<()> {
    let mut export = ExportWriter::new(format, offset, w)?;
    export.write(orders)?;
    export.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite picks with no statistics, as on every till (scanpay
    /// never runs ANALYZE).
    fn plan(journal: &Journal, sql: &str) -> String {
        let mut explain = journal
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let steps: Vec<String> = explain
            .query_map([0, 1], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        steps.join("\n")
    }

    #[test]
    fn the_summary_searches_the_created_index_and_never_scans_orders() {
        let dir = tempfile::TempDir::new().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let plan = plan(&journal, SUMMARY_BETWEEN);
        assert!(
            plan.contains(
                "SEARCH orders USING INDEX orders_by_created (created_at_ms>? AND created_at_ms<?)"
            ),
            "{plan}"
        );
        assert!(!plan.contains("SCAN orders"), "{plan}");
    }
}
