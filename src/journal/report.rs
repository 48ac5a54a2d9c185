//! The journal's reporting side: the manager's day view, the till's status
//! line, and exports as CSV or JSON.
//!
//! Days are the store's local days at a fixed UTC offset (`till.time_zone`),
//! and an order belongs to the day and hour it was created in, so a sale rung
//! up at 23:59 and confirmed after midnight counts on the day it was made.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use super::error::classify;
use super::store::{BUSY_TIMEOUT, parsed, unsigned};
use super::{
    Journal, JournalError, OrderId, OrderRow, OrderState, RefundState, RefundTotals, schema,
};
use crate::domain::{Fen, mask};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Counts and takings per state and hour, summed by SQLite in one pass over the
/// range of `orders_by_created`: no order comes back to Rust.
const SUMMARY_BETWEEN: &str = "\
    SELECT (created_at_ms - ?1) / 3600000 % 24, state, count(*), sum(total_fee) \
    FROM orders WHERE created_at_ms >= ?1 AND created_at_ms < ?2 GROUP BY 1, 2";

/// The refunds of the orders created in `[?1, ?2)`, per order and state: one
/// pass over the day's range of `orders_by_created`, each order's refunds
/// found through `refunds_by_order`.
const REFUNDS_OF_ORDERS_BETWEEN: &str = "\
    SELECT r.order_id, r.state, count(*), sum(r.refund_fee) \
    FROM orders o JOIN refunds r ON r.order_id = o.id \
    WHERE o.created_at_ms >= ?1 AND o.created_at_ms < ?2 GROUP BY r.order_id, r.state";

/// The refunds opened in `[?1, ?2)`, of orders of any day, that are issued
/// (refunded) or still to be confirmed, per state, through `refunds_by_state`.
const REFUNDS_BETWEEN: &str = "\
    SELECT state, count(*), sum(refund_fee) FROM refunds \
    WHERE state IN ('refunded', 'pending', 'processing', 'unclear') \
    AND created_at_ms >= ?1 AND created_at_ms < ?2 GROUP BY state";

const NEEDS_ATTENTION: &str = "SELECT count(*), max(created_at_ms) FROM orders WHERE state = ?1";

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
    /// What the refunds of each of these orders add up to.
    pub refunds: OrderRefunds,
}

/// Each order's [`RefundTotals`]; an order without refunds has none here.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderRefunds(BTreeMap<OrderId, RefundTotals>);

impl OrderRefunds {
    /// The totals of `order`'s refunds: zero when it has none.
    pub fn of(&self, order: OrderId) -> RefundTotals {
        self.0.get(&order).copied().unwrap_or_default()
    }

    pub fn insert(&mut self, order: OrderId, totals: RefundTotals) {
        self.0.insert(order, totals);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `count` refunds of `order` in `state` worth `total` together.
    pub(crate) fn add(&mut self, order: OrderId, state: RefundState, count: u64, total: Fen) {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        self.0
            .entry(order)
            .or_default()
            .add_many(state, count, total);
    }
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
    /// Refunds issued this day: opened this day (of an order of any day)
    /// and confirmed by WeChat.
    pub refunded_count: u64,
    pub refunded_total: Fen,
    /// Refunds opened this day that WeChat has not confirmed yet (pending,
    /// processing or unclear): not issued, and not taken off the takings.
    pub refund_pending_count: u64,
    pub refund_pending_total: Fen,
}

impl DaySummary {
    /// The day's takings net of the refunds issued that day, in fen: below
    /// zero on a day that refunded more of earlier days than it took.
    pub fn net_fen(&self) -> i64 {
        let signed = |fen: Fen| i64::try_from(fen.0).unwrap_or(i64::MAX);
        signed(self.paid_total).saturating_sub(signed(self.refunded_total))
    }

    /// [`DaySummary::net_fen`] in yuan with two decimals: "12.34", "-5.00".
    pub fn net_yuan(&self) -> String {
        crate::domain::signed_yuan(self.net_fen())
    }

    pub(crate) fn add_refunds(&mut self, state: RefundState, count: u64, total: Fen) {
        match state {
            RefundState::Refunded => {
                self.refunded_count += count;
                self.refunded_total.0 += total.0;
            }
            state if state.unresolved() => {
                self.refund_pending_count += count;
                self.refund_pending_total.0 += total.0;
            }
            _ => {}
        }
    }

    /// The summary of `orders` (created at or after `from_ms`), hours
    /// counted from `from_ms`. Summed from rows already read, so the totals
    /// match the list shown with them whatever was written since.
    pub(crate) fn of_orders(orders: &[OrderRow], from_ms: i64) -> Self {
        let mut summary = DaySummary::default();
        for order in orders {
            let hour = hour_of(order.created_at_ms, from_ms);
            summary.add(order.state, hour, 1, order.total_fee);
        }
        summary
    }

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
    /// Opens an existing journal for reading only, as the manager's screen and
    /// exports do while the till runs, or on a copy on a read-only medium:
    /// nothing here writes, creates or migrates a file, and it needs no write
    /// permission on the file or its folder. In WAL mode a reader never blocks
    /// the till's writes. A missing file is an error, never a new empty
    /// journal. Write methods on the result fail.
    ///
    /// Open one per report and drop it: opened while no till had the journal
    /// open, the connection does not see what a till writes after that.
    pub fn open_read_only(path: &Path) -> Result<Self, JournalError> {
        // SQLite names the -wal and -shm files after the path with symlinks
        // resolved, so they are looked for there.
        let real = std::fs::canonicalize(path)
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.into());
        let wal = sidecar(&real, "-wal");
        // How SQLite treats a read-only connection to a WAL journal (observed
        // with the bundled SQLite 3.54, in a writable folder, on a read-only
        // bind mount, and as a user without write permission):
        //
        // - No -wal file: no connection has the journal open, since the last
        //   one to close checkpoints every commit into the main file and
        //   deletes the -wal and -shm. A plain read-only connection would then
        //   create an empty -wal and a 32 KiB -shm and leave both behind, and
        //   where the folder cannot be written it fails (SQLITE_CANTOPEN on a
        //   read-only mount, SQLITE_READONLY_DIRECTORY without permission).
        //   `immutable=1` reads the main file alone, which holds everything,
        //   and creates nothing. It also takes no locks and never looks for a
        //   -wal again: a till started later writes into a new -wal this
        //   connection ignores, hence one connection per report.
        // - A -wal file: a till is running, or one crashed. Its latest orders
        //   may be in the -wal alone, which immutable would not read (it shows
        //   a crashed till's journal without them), so this is a plain
        //   read-only connection: it uses the existing -wal and -shm even when
        //   neither is writable, and creates no file.
        // - A -wal without its -shm: SQLite rebuilds the -shm, the one file
        //   this may create, or, where it cannot, fails to read. An empty -wal
        //   holds nothing, so then the main file alone is the whole journal.
        let immutable = matches!(wal.try_exists(), Ok(false));
        match connect(path, &real, immutable) {
            Err(JournalError::Unreadable { .. })
                if !immutable && matches!(sidecar(&real, "-shm").try_exists(), Ok(false)) =>
            {
                if std::fs::metadata(&wal).is_ok_and(|wal| wal.len() == 0) {
                    connect(path, &real, true)
                } else {
                    Err(JournalError::WalWithoutShm { path: path.into() })
                }
            }
            opened => opened,
        }
    }

    /// The store's local `day`: its orders, oldest first, and their summary.
    pub fn day(&self, day: Date, offset: UtcOffset) -> Result<DayReport, JournalError> {
        let (from, to) = day_bounds(day, offset);
        let orders = self.orders_between(from, to)?;
        let mut summary = DaySummary::of_orders(&orders, from);
        self.add_refunds_between(from, to, &mut summary)?;
        let refunds = self.refunds_of_orders_between(from, to)?;
        Ok(DayReport {
            day,
            orders,
            summary,
            refunds,
        })
    }

    /// What the refunds of each order created in `[from_ms, to_ms)` add up
    /// to, in one query (for the export's `refunded` and the day view).
    /// Nothing on a journal older than the refunds table.
    pub fn refunds_of_orders_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<OrderRefunds, JournalError> {
        let mut refunds = OrderRefunds::default();
        if !self.knows_refunds()? {
            return Ok(refunds);
        }
        let groups = self.rows(REFUNDS_OF_ORDERS_BETWEEN, [from_ms, to_ms], |row| {
            Ok((
                row.get(0)?,
                parsed(row, 1, RefundState::parse)?,
                unsigned(2, row.get(2)?)?,
                Fen(unsigned(3, row.get(3)?)?),
            ))
        })?;
        for (order, state, count, total) in groups {
            refunds.add(OrderId(order), state, count, total);
        }
        Ok(refunds)
    }

    /// Adds the refunds opened in `[from_ms, to_ms)` to `summary`.
    fn add_refunds_between(
        &self,
        from_ms: i64,
        to_ms: i64,
        summary: &mut DaySummary,
    ) -> Result<(), JournalError> {
        if !self.knows_refunds()? {
            return Ok(());
        }
        let groups = self.rows(REFUNDS_BETWEEN, [from_ms, to_ms], |row| {
            Ok((
                parsed(row, 0, RefundState::parse)?,
                unsigned(1, row.get(1)?)?,
                Fen(unsigned(2, row.get(2)?)?),
            ))
        })?;
        for (state, count, total) in groups {
            summary.add_refunds(state, count, total);
        }
        Ok(())
    }

    /// The summary of orders created in `[from_ms, to_ms)`, by SQL aggregates
    /// (for the till's status line). `hourly_paid` counts hours from `from_ms`,
    /// which are local hours when `from_ms` comes from [`day_bounds`].
    pub fn summary_between(&self, from_ms: i64, to_ms: i64) -> Result<DaySummary, JournalError> {
        let groups = self.rows(SUMMARY_BETWEEN, [from_ms, to_ms], summary_group)?;
        let mut summary = DaySummary::default();
        for (hour, state, count, total) in groups {
            summary.add(state, hour, count, total);
        }
        self.add_refunds_between(from_ms, to_ms, &mut summary)?;
        Ok(summary)
    }

    /// How many orders, of any day, wait for a person (`needs_attention`),
    /// and when the newest of them was created: the till's status line counts
    /// them from start-up and opens the journal on that day.
    pub fn needs_attention(&self) -> Result<(u64, Option<i64>), JournalError> {
        self.conn
            .prepare_cached(NEEDS_ATTENTION)
            .and_then(|mut select| {
                select.query_row([OrderState::NeedsAttention.as_str()], |row| {
                    let count: i64 = row.get(0)?;
                    Ok((unsigned(0, count)?, row.get::<_, Option<i64>>(1)?))
                })
            })
            .map_err(|e| classify(&self.path, e))
    }
}

impl Journal {
    /// SQLite's full `PRAGMA integrity_check` (every page, every index entry
    /// against its row): the problems it lists, none when the journal is
    /// sound. Reads the whole file; writes nothing.
    ///
    /// On a page it cannot parse at all (4 KiB of zeros, say) SQLite stops
    /// the check with "database disk image is malformed" rather than listing
    /// it; then each table is checked on its own, so the report still says
    /// which tables (and so which exports) are affected.
    pub fn integrity_problems(&self) -> Result<Vec<String>, JournalError> {
        let check = |pragma: &str| -> rusqlite::Result<Vec<String>> {
            let rows: Vec<String> = self
                .conn
                .prepare(pragma)?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows.into_iter().filter(|row| row != "ok").collect())
        };
        let corrupt = |e: &rusqlite::Error| {
            e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseCorrupt)
        };
        match check("PRAGMA integrity_check") {
            Ok(problems) => return Ok(problems),
            Err(e) if corrupt(&e) => {}
            Err(e) => return Err(classify(&self.path, e)),
        }
        let tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .and_then(|mut select| select.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| classify(&self.path, e))?;
        let mut problems = Vec::new();
        for table in tables {
            // A quoted identifier: the name comes from the file being checked.
            let pragma = format!("PRAGMA integrity_check(\"{}\")", table.replace('"', "\"\""));
            match check(&pragma) {
                Ok(found) => problems.extend(found.into_iter().map(|p| format!("{table}: {p}"))),
                Err(e) if corrupt(&e) => problems.push(format!("{table}: {e}")),
                Err(e) => return Err(classify(&self.path, e)),
            }
        }
        if problems.is_empty() {
            problems.push("database disk image is malformed".into());
        }
        Ok(problems)
    }
}

/// A read-only connection to the journal at `real` (`path` as configured, for
/// messages); `immutable` reads the main file alone, taking no locks.
fn connect(path: &Path, real: &Path, immutable: bool) -> Result<Journal, JournalError> {
    let db = |e| read_only(classify(path, e));
    // Without SQLITE_OPEN_CREATE SQLite refuses a missing file.
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut uri = file_uri(real);
    if immutable {
        uri.push_str("?immutable=1");
    }
    let conn = Connection::open_with_flags(&uri, flags).map_err(db)?;
    // A reader waits only while a writer recovers a WAL after a crash.
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    // SQLite opens lazily: this first read is where a missing -shm shows.
    schema::check(&conn, path).map_err(read_only)?;
    // check() accepts a blank file, which Journal::open would set up; there
    // is nothing to read in it. Older versions read fine: reports use only
    // version-1 columns.
    if schema::user_version(&conn).map_err(db)? == 0 {
        return Err(JournalError::NotAJournal { path: path.into() });
    }
    Ok(Journal {
        conn,
        path: path.into(),
        owner: None,
        installation: None,
    })
}

/// A failure to open for lack of access, worded for reading.
fn read_only(error: JournalError) -> JournalError {
    match error {
        JournalError::Access { path, cause } => JournalError::Unreadable { path, cause },
        other => other,
    }
}

/// `path` with `suffix` appended to its file name, as SQLite names the
/// journal's -wal and -shm files.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// An absolute path as an SQLite `file:` URI. Every byte but unreserved ones
/// is percent-encoded: `?` and `#` would end the path, `%` starts an escape,
/// and a path starting `//` must not read as an authority, so the authority
/// is always given, empty.
fn file_uri(path: &Path) -> String {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file://");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri
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
pub const EXPORT_COLUMNS: [&str; 12] = [
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
    "refunded",
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
    /// Yuan confirmed refunded of this order ("0.00" when none).
    refunded: String,
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
    /// The row for `--excel`, in [`EXPORT_COLUMNS`] order.
    fn excel_record(&self) -> [String; 12] {
        let text = |value: &str| excel_cell(value, false);
        let id = |value: Option<&str>| excel_cell(value.unwrap_or(""), true);
        [
            id(Some(self.out_trade_no)),
            text(&self.created_at),
            // A till id of digits ("01") would lose its leading zero.
            id(Some(self.till_id)),
            self.amount.clone(),
            self.state.to_string(),
            id(self.transaction_id),
            text(self.err_code.unwrap_or("")),
            text(self.message.unwrap_or("")),
            text(self.body),
            text(&self.auth_code),
            text(self.finished_at.as_deref().unwrap_or("")),
            self.refunded.clone(),
        ]
    }

    fn of(order: &'a OrderRow, refunded: Fen, offset: UtcOffset) -> io::Result<Self> {
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
            refunded: refunded.to_string(),
        })
    }
}

/// What `--excel` writes first: the UTF-8 byte order mark.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A cell as Excel must show it, for `--excel`. Ids (order number,
/// transaction id) become `="…"` formulas: Excel shows the text as it is,
/// where a bare 28-digit transaction id would become 4.2E+27 and lose its
/// last digits (Excel keeps 15). Any other text that Excel would run as a
/// formula (starting with `=`, `+`, `-` or `@`, e.g. a hostile gateway's
/// message) is made a string the same way. Empty stays empty.
pub fn excel_cell(text: &str, id: bool) -> String {
    let formula_like = text.starts_with(['=', '+', '-', '@']);
    if text.is_empty() || !(id || formula_like) {
        return text.to_string();
    }
    format!("=\"{}\"", text.replace('"', "\"\""))
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
    Csv {
        csv: Box<csv::Writer<W>>,
        excel: bool,
    },
    Json {
        out: W,
        empty: bool,
    },
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export, writing the CSV header or the JSON array's opening.
    pub fn new(format: ExportFormat, offset: UtcOffset, out: W) -> io::Result<Self> {
        Self::with_excel(format, false, offset, out)
    }

    /// [`ExportWriter::new`]; with `excel` (CSV only) the file is made for a
    /// double-click in Excel, see [`excel_cell`].
    pub fn with_excel(
        format: ExportFormat,
        excel: bool,
        offset: UtcOffset,
        mut out: W,
    ) -> io::Result<Self> {
        let sink = match format {
            ExportFormat::Csv => {
                if excel {
                    // Without the BOM, Excel reads UTF-8 as the system's code
                    // page (GBK on a Chinese Windows) and garbles every 汉字.
                    out.write_all(UTF8_BOM)?;
                }
                // The header is written here, not by serialize(), so an empty
                // export still has it.
                let mut csv = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                csv.write_record(EXPORT_COLUMNS)?;
                Sink::Csv {
                    csv: Box::new(csv),
                    excel,
                }
            }
            ExportFormat::Json => {
                out.write_all(b"[")?;
                Sink::Json { out, empty: true }
            }
        };
        Ok(Self { offset, sink })
    }

    /// Writes `orders`, each with what `refunds` says was refunded of it.
    pub fn write(&mut self, orders: &[OrderRow], refunds: &OrderRefunds) -> io::Result<()> {
        for order in orders {
            let line = Line::of(order, refunds.of(order.id).refunded, self.offset)?;
            match &mut self.sink {
                Sink::Csv { csv, excel: false } => csv.serialize(line)?,
                Sink::Csv { csv, excel: true } => csv.write_record(line.excel_record())?,
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
            Sink::Csv { csv, .. } => csv.into_inner().map_err(|e| e.into_error()),
            Sink::Json { mut out, empty } => {
                out.write_all(if empty { b"]\n" } else { b"\n]\n" })?;
                out.flush()?;
                Ok(out)
            }
        }
    }
}

/// Writes a day's orders as CSV (see [`EXPORT_COLUMNS`]), times at `offset`.
pub fn write_csv(report: &DayReport, offset: UtcOffset, w: impl Write) -> io::Result<()> {
    write_export(ExportFormat::Csv, report, offset, w)
}

/// Writes a day's orders as a JSON array of objects keyed by [`EXPORT_COLUMNS`].
pub fn write_json(report: &DayReport, offset: UtcOffset, w: impl Write) -> io::Result<()> {
    write_export(ExportFormat::Json, report, offset, w)
}

fn write_export(
    format: ExportFormat,
    report: &DayReport,
    offset: UtcOffset,
    w: impl Write,
) -> io::Result<()> {
    let mut export = ExportWriter::new(format, offset, w)?;
    export.write(&report.orders, &report.refunds)?;
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

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn add_order(journal: &mut Journal) {
        let till = crate::domain::TillId::parse("T01").unwrap();
        let new = crate::journal::NewOrder {
            till: &till,
            total_fee: Fen(100),
            body: "Coffee",
            auth_code_masked: "**************6076".into(),
            now: OffsetDateTime::now_utc(),
            local_offset: UtcOffset::UTC,
        };
        journal.open_order(&new).unwrap();
    }

    fn count(journal: &Journal) -> usize {
        journal.orders_between(i64::MIN, i64::MAX).unwrap().len()
    }

    #[test]
    fn a_closed_journal_is_read_without_creating_a_file_even_in_an_awkward_folder() {
        let dir = tempfile::TempDir::new().unwrap();
        // Each of these would end or garble the path in a file: URI unescaped.
        let folder = dir.path().join("a?b#c%41 d&e=f");
        std::fs::create_dir(&folder).unwrap();
        let path = folder.join("journal.sqlite3");
        let mut till = Journal::open(&path).unwrap();
        add_order(&mut till);
        add_order(&mut till);
        drop(till);
        assert_eq!(files_in(&folder), ["journal.sqlite3"]);
        let before = std::fs::read(&path).unwrap();

        let reader = Journal::open_read_only(&path).unwrap();
        assert_eq!(count(&reader), 2);
        drop(reader);
        assert_eq!(files_in(&folder), ["journal.sqlite3"]);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_running_tills_uncheckpointed_orders_are_read_and_no_file_is_added() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("journal #1.sqlite3");
        let mut till = Journal::open(&path).unwrap();
        add_order(&mut till);
        let files = files_in(dir.path());
        assert_eq!(
            files,
            [
                "journal #1.sqlite3",
                "journal #1.sqlite3-shm",
                "journal #1.sqlite3-wal",
                "journal #1.sqlite3.owners",
            ]
        );
        // The order is in the -wal alone: the main file does not have it yet.
        let reader = Journal::open_read_only(&path).unwrap();
        assert_eq!(count(&reader), 1);
        add_order(&mut till);
        assert_eq!(count(&Journal::open_read_only(&path).unwrap()), 2);
        drop(reader);
        assert_eq!(files_in(dir.path()), files);
    }

    #[test]
    fn a_copy_with_its_wal_but_no_shm_still_shows_the_orders_in_the_wal() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let mut till = Journal::open(&path).unwrap();
        add_order(&mut till);
        // A copy taken while the till ran (or after it crashed), minus the -shm.
        let copy = tempfile::TempDir::new().unwrap();
        let copied = copy.path().join("journal.sqlite3");
        std::fs::copy(&path, &copied).unwrap();
        std::fs::copy(sidecar(&path, "-wal"), sidecar(&copied, "-wal")).unwrap();
        assert_eq!(count(&Journal::open_read_only(&copied).unwrap()), 1);
        drop(till);
    }

    #[test]
    fn needs_attention_counts_every_day_and_names_the_newest() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("journal.sqlite3");
        let mut till = Journal::open(&path).unwrap();
        for _ in 0..3 {
            add_order(&mut till);
        }
        let reader = Journal::open_read_only(&path).unwrap();
        assert_eq!(reader.needs_attention().unwrap(), (0, None));
        till.conn
            .execute(
                "UPDATE orders SET state = 'needs_attention', created_at_ms = id * 1000, \
                 finished_at_ms = id * 1000 + 1 WHERE id < 3",
                [],
            )
            .unwrap();
        assert_eq!(reader.needs_attention().unwrap(), (2, Some(2000)));
    }

    #[test]
    fn file_uris_escape_everything_sqlite_would_read_as_syntax() {
        assert_eq!(
            file_uri(Path::new("/srv/till data/a?b#c%d/j.sqlite3")),
            "file:///srv/till%20data/a%3Fb%23c%25d/j.sqlite3"
        );
        assert_eq!(file_uri(Path::new("//host/x")), "file:////host/x");
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

    #[test]
    fn the_refund_totals_search_their_indexes_and_never_scan_a_table() {
        let dir = tempfile::TempDir::new().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        let by_state = plan(&journal, REFUNDS_BETWEEN);
        assert!(
            by_state.contains("SEARCH refunds USING INDEX refunds_by_state"),
            "{by_state}"
        );
        assert!(!by_state.contains("SCAN"), "{by_state}");
        let by_order = plan(&journal, REFUNDS_OF_ORDERS_BETWEEN);
        assert!(
            by_order.contains("SEARCH o USING") && by_order.contains("orders_by_created"),
            "{by_order}"
        );
        assert!(by_order.contains("refunds_by_order"), "{by_order}");
        assert!(
            !by_order.contains("SCAN o") && !by_order.contains("SCAN r"),
            "{by_order}"
        );
    }
}
