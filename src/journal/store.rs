//! Opening the journal, and every read and write on it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngExt;
use rusqlite::types::Type;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Params, Row, Transaction, TransactionBehavior, params,
};
use time::OffsetDateTime;
use time::macros::format_description;

use super::error::classify;
use super::owner::{self, Owner};
use super::{
    EventKind, EventRecord, EventRow, FinalRecord, JournalError, NewOrder, OrderId, OrderRow,
    OrderState, folder_of, schema,
};
use crate::domain::{Fen, OutTradeNo, TillId, holds_payment_code};
use crate::payment::Event;

/// How long a write waits for another connection's write. Ours take
/// milliseconds, so seconds of waiting means another process holds the journal.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole-file check (`PRAGMA quick_check`) that said ok is trusted.
/// The check reads every page: about 5 s for a year's journal of 500 000
/// orders (BENCHMARKS.md), too long to add to every `scanpay pay`, so the
/// first open of each day pays for it. Every open checks page 1 and the schema;
/// in between, SQLite reports a damaged page when a read or write touches it.
pub const FULL_CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// Selects whole orders, in the column order [`order_row`] reads.
macro_rules! select_orders {
    ($tail:literal) => {
        concat!(
            "SELECT id, out_trade_no, till_id, total_fee, body, auth_code_masked, created_at_ms, ",
            "micropay_sent_at_ms, state, finished_at_ms, transaction_id, err_code, message FROM orders ",
            $tail
        )
    };
}

const ORDER_BY_TRADE_NO: &str = select_orders!("WHERE out_trade_no = ?1");
const ORDER_BY_ID: &str = select_orders!("WHERE id = ?1");
// `id` breaks ties in the same millisecond; both orderings come straight from an
// index (an index entry ends with the rowid), so there is no sort.
const UNFINISHED: &str = select_orders!("WHERE state = 'open' ORDER BY created_at_ms, id");
const ORDERS_BETWEEN: &str =
    select_orders!("WHERE created_at_ms >= ?1 AND created_at_ms < ?2 ORDER BY created_at_ms, id");
const UNRESOLVED_BETWEEN: &str = select_orders!(
    "WHERE state IN ('open', 'needs_attention') AND created_at_ms >= ?1 AND created_at_ms < ?2 ORDER BY created_at_ms, id"
);
const EVENTS_OF_ORDER: &str = "SELECT id, order_id, at_ms, since_t0_ms, kind, call, summary, detail FROM events WHERE order_id = ?1 ORDER BY id";

/// The journal file, open for reading and writing (or only reading, from
/// [`Journal::open_read_only`]). Every write method commits (with a full fsync)
/// before it returns.
pub struct Journal {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// This process's ownership of the orders it drives; `None` when opened
    /// for reading only.
    pub(super) owner: Option<Owner>,
    /// The installation's random id (schema version 2 on).
    pub(super) installation: Option<String>,
}

/// What [`Journal::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The order is ours now; `previous` is the owner that was gone.
    Claimed { previous: Option<String> },
    /// A live process drives it: it is left to that process.
    Live { owner: String },
    /// It has a final state already.
    Finished(OrderState),
}

impl Journal {
    /// Opens the journal at `path`, creating it and its folder if needed and
    /// bringing its schema up to date.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let folder = folder_of(path);
        std::fs::create_dir_all(folder).map_err(|cause| JournalError::CreateFolder {
            folder: folder.into(),
            cause,
        })?;
        // No SQLITE_OPEN_URI: a configured path is always a file name, never a
        // `file:` URI that could pick another VFS or open read-only.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
        Self::on(conn, path)
    }

    fn on(mut conn: Connection, path: &Path) -> Result<Self, JournalError> {
        let db = |e| classify(path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // Before anything is written: a foreign or newer file is left as it is.
        // This reads page 1 and the schema.
        schema::check(&conn, path)?;
        // Nor is a damaged one written: no payment starts on it.
        let now_ms = unix_ms(OffsetDateTime::now_utc());
        let check_due = full_check_due(&conn, now_ms).map_err(db)?;
        if check_due {
            quick_check(&conn, path)?;
        }
        // WAL: a commit is one append and fsync of the -wal file, and the
        // manager's review reads while the till writes. Where shared memory is
        // missing SQLite quietly keeps the old mode, hence the check.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::NotWal {
                path: path.into(),
                mode,
            });
        }
        // FULL: with NORMAL a WAL commit survives a crash of scanpay but not a
        // power cut, and a lost "micropay sent" event is a payment nobody knows
        // to recover.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        schema::migrate(&mut conn, path)?;
        let installation = Some(ensure_installation(&mut conn).map_err(db)?);
        if check_due {
            execute(
                &conn,
                "INSERT INTO checks (only, checked_at_ms) VALUES (1, ?1) \
                 ON CONFLICT (only) DO UPDATE SET checked_at_ms = excluded.checked_at_ms",
                [now_ms],
            )
            .map_err(db)?;
        }
        let owner = Owner::acquire(path).map_err(|cause| JournalError::Owner {
            path: path.into(),
            cause,
        })?;
        Ok(Self {
            conn,
            path: path.into(),
            owner: Some(owner),
            installation,
        })
    }

    /// This process's owner id, unless opened for reading only.
    pub fn owner_id(&self) -> Option<&str> {
        self.owner.as_ref().map(Owner::id)
    }

    /// The installation's random id, created with the journal.
    pub fn installation_id(&self) -> Option<&str> {
        self.installation.as_deref()
    }

    pub(super) fn me(&self) -> Result<&str, JournalError> {
        self.owner_id().ok_or_else(|| JournalError::ReadOnly {
            path: self.path.clone(),
        })
    }

    /// Takes `order` over if nobody live drives it: its owner is gone (a
    /// crash, a kill, a power cut) or it has none (parked for a person). The
    /// check and the change are one write transaction, so of two processes
    /// claiming at once exactly one gets it.
    pub fn claim(&mut self, order: OrderId) -> Result<Claim, JournalError> {
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        let (_, state, owner) = ownership(&tx, order)
            .map_err(db)?
            .ok_or(JournalError::UnknownOrder(order.0))?;
        if !matches!(state, OrderState::Open | OrderState::NeedsAttention) {
            return Ok(Claim::Finished(state));
        }
        match owner {
            Some(owner) if owner == me => {
                return Ok(Claim::Claimed {
                    previous: Some(owner),
                });
            }
            Some(owner) if owner::is_alive(&self.path, &owner) => return Ok(Claim::Live { owner }),
            _ => {}
        }
        execute(
            &tx,
            "UPDATE orders SET owner = ?2 WHERE id = ?1",
            params![order.0, me],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Claim::Claimed { previous: owner })
    }

    /// The live process driving `order`, if any; reads only (`replay --dry-run`).
    pub fn live_owner(&self, order: OrderId) -> Result<Option<String>, JournalError> {
        if !self.knows(2)? {
            return Ok(None);
        }
        let owner: Option<String> = self
            .conn
            .prepare_cached("SELECT owner FROM orders WHERE id = ?1")
            .and_then(|mut select| select.query_row([order.0], |r| r.get(0)).optional())
            .map_err(|e| classify(&self.path, e))?
            .flatten();
        Ok(owner.filter(|owner| {
            Some(owner.as_str()) != self.owner_id() && owner::is_alive(&self.path, owner)
        }))
    }

    /// The durability settings in force: `("wal", 2)`, 2 being `synchronous = FULL`.
    pub fn pragmas(&self) -> Result<(String, i64), JournalError> {
        let db = |e| classify(&self.path, e);
        let mode = self
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .map_err(db)?;
        let synchronous = self
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .map_err(db)?;
        Ok((mode, synchronous))
    }

    /// Inserts the order and mints its out_trade_no in one transaction, with an
    /// "opened" event. The row's AUTOINCREMENT id (never reused) is the
    /// number's sequence, the store's local time its stamp.
    pub fn open_order(&mut self, new: &NewOrder) -> Result<(OrderId, OutTradeNo), JournalError> {
        guard("order body", new.body)?;
        guard("masked payment code", &new.auth_code_masked)?;
        let me = self.me()?.to_string();
        let installation = self.installation.clone().unwrap_or_default();
        let stamp = new
            .now
            .to_offset(new.local_offset)
            .format(format_description!(
                "[year repr:last_two][month][day][hour][minute][second]"
            ))
            .expect(
                "a date-time has every component of the stamp, and writing a String cannot fail",
            );
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        // The number needs the id, so the row goes in with a blank number that
        // is replaced before the commit: no reader ever sees it.
        let id: i64 = tx
            .prepare_cached(
                "INSERT INTO orders (out_trade_no, till_id, total_fee, body, auth_code_masked, created_at_ms, state, owner) \
                 VALUES ('', ?1, ?2, ?3, ?4, ?5, 'open', ?6) RETURNING id",
            )
            .and_then(|mut insert| {
                let fee = signed(new.total_fee.0)?;
                let row = params![new.till.as_str(), fee, new.body, new.auth_code_masked, unix_ms(new.now), me];
                insert.query_row(row, |r| r.get(0))
            })
            .map_err(db)?;
        // AUTOINCREMENT ids start at 1.
        let no = OutTradeNo::mint(new.till, &stamp, &installation, id.unsigned_abs());
        execute(
            &tx,
            "UPDATE orders SET out_trade_no = ?2 WHERE id = ?1",
            params![id, no.as_str()],
        )
        .map_err(db)?;
        let opened = EventRecord {
            at: new.now,
            since_t0_ms: None,
            summary: format!(
                "order {no} opened: {} yuan, payment code {}",
                new.total_fee, new.auth_code_masked
            ),
            event: Event::Opened {
                till_id: new.till.as_str().to_string(),
                total_fee: new.total_fee.0,
                body: new.body.to_string(),
                auth_code_masked: new.auth_code_masked.clone(),
            },
        };
        Checked::new(&opened)?
            .insert(&tx, OrderId(id))
            .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok((OrderId(id), no))
    }

    /// Appends one event about an order this process drives, committed
    /// before this returns.
    pub fn append(&mut self, order: OrderId, event: &EventRecord) -> Result<(), JournalError> {
        let event = Checked::new(event)?;
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        check_owner(&self.path, &me, &tx, order)?;
        event.insert(&tx, order).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Appends the micropay request event and, in the same transaction, notes
    /// its time as the order's `micropay_sent_at_ms` unless one is already set
    /// (a retry of the same request keeps the first).
    pub fn record_micropay_intent(
        &mut self,
        order: OrderId,
        event: &EventRecord,
    ) -> Result<(), JournalError> {
        debug_assert_eq!(event.event.kind(), EventKind::Request);
        let event = Checked::new(event)?;
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        check_owner(&self.path, &me, &tx, order)?;
        let sql = "UPDATE orders SET micropay_sent_at_ms = coalesce(micropay_sent_at_ms, ?2) WHERE id = ?1";
        if execute(&tx, sql, params![order.0, event.at_ms]).map_err(db)? == 0 {
            return Err(JournalError::UnknownOrder(order.0));
        }
        event.insert(&tx, order).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Records how the order ended, with its "finished" event, atomically.
    ///
    /// Finishing again with the state it already has writes nothing (a retry
    /// after a lost reply is harmless). An open or needs-attention order may be
    /// finished; a paid, failed, reversed or closed one is never changed.
    pub fn finish(
        &mut self,
        order: OrderId,
        outcome: &FinalRecord,
        event: &EventRecord,
    ) -> Result<(), JournalError> {
        debug_assert_eq!(event.event.kind(), EventKind::Finished);
        let wanted = outcome.state;
        if wanted == OrderState::Open {
            return Err(JournalError::NotFinal(wanted));
        }
        let texts = [
            ("transaction id", &outcome.transaction_id),
            ("error code", &outcome.err_code),
            ("final message", &outcome.message),
        ];
        for (field, text) in texts {
            text.as_deref().map_or(Ok(()), |text| guard(field, text))?;
        }
        let event = Checked::new(event)?;
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        let (out_trade_no, current): (String, OrderState) = tx
            .prepare_cached("SELECT out_trade_no, state FROM orders WHERE id = ?1")
            .and_then(|mut select| {
                select
                    .query_row([order.0], |r| {
                        Ok((r.get(0)?, parsed(r, 1, OrderState::parse)?))
                    })
                    .optional()
            })
            .map_err(db)?
            .ok_or(JournalError::UnknownOrder(order.0))?;
        if current == wanted {
            return Ok(());
        }
        if !matches!(current, OrderState::Open | OrderState::NeedsAttention) {
            return Err(JournalError::AlreadyFinished {
                out_trade_no,
                current,
                wanted,
            });
        }
        check_owner(&self.path, &me, &tx, order)?;
        // Finished or parked, the order has no driver: replay may take it.
        let sql = "UPDATE orders SET state = ?2, finished_at_ms = ?3, transaction_id = ?4, err_code = ?5, message = ?6, owner = NULL \
                   WHERE id = ?1";
        let row = params![
            order.0,
            wanted.as_str(),
            unix_ms(outcome.at),
            outcome.transaction_id,
            outcome.err_code,
            outcome.message
        ];
        execute(&tx, sql, row).map_err(db)?;
        event.insert(&tx, order).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// The order with this out_trade_no, if the journal has one.
    pub fn order_by_trade_no(&self, no: &str) -> Result<Option<OrderRow>, JournalError> {
        self.conn
            .prepare_cached(ORDER_BY_TRADE_NO)
            .and_then(|mut select| select.query_row([no], order_row).optional())
            .map_err(|e| classify(&self.path, e))
    }

    /// The order with this journal id.
    pub fn order_by_id(&self, id: OrderId) -> Result<Option<OrderRow>, JournalError> {
        self.conn
            .prepare_cached(ORDER_BY_ID)
            .and_then(|mut select| select.query_row([id.0], order_row).optional())
            .map_err(|e| classify(&self.path, e))
    }

    /// The order's events, in the order they were written.
    pub fn events(&self, order: OrderId) -> Result<Vec<EventRow>, JournalError> {
        self.rows(EVENTS_OF_ORDER, [order.0], event_row)
    }

    /// Orders still in flight (state open), oldest first: what recovery resumes.
    pub fn unfinished(&self) -> Result<Vec<OrderRow>, JournalError> {
        self.rows(UNFINISHED, (), order_row)
    }

    /// Orders still open or needing attention, created in `[from_ms, to_ms)`,
    /// oldest first: what `scanpay replay` works on.
    pub fn unresolved_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<OrderRow>, JournalError> {
        self.rows(UNRESOLVED_BETWEEN, [from_ms, to_ms], order_row)
    }

    /// Orders created in `[from_ms, to_ms)` (unix ms), oldest first.
    pub fn orders_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<OrderRow>, JournalError> {
        self.rows(ORDERS_BETWEEN, [from_ms, to_ms], order_row)
    }

    pub(super) fn rows<T>(
        &self,
        sql: &str,
        params: impl Params,
        row: fn(&Row) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, JournalError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut select| select.query_map(params, row)?.collect())
            .map_err(|e| classify(&self.path, e))
    }
}

/// Whether the whole file is due a check: never checked (a journal from before
/// schema version 3, a new one), or last checked [`FULL_CHECK_EVERY`] ago or
/// more (or in the future: the clock was set back).
fn full_check_due(conn: &Connection, now_ms: i64) -> rusqlite::Result<bool> {
    if schema::user_version(conn)? < 3 {
        return Ok(true);
    }
    let last: Option<i64> = conn
        .query_row("SELECT checked_at_ms FROM checks", [], |r| r.get(0))
        .optional()?;
    let every = FULL_CHECK_EVERY.as_millis() as i64;
    Ok(last.is_none_or(|at| at > now_ms || now_ms - at >= every))
}

/// SQLite's `PRAGMA quick_check`: every page of every b-tree read and its
/// structure checked (not index entries against rows, which the full
/// `integrity_check` of `scanpay journal --check` adds).
fn quick_check(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let began = std::time::Instant::now();
    let rows: Vec<String> = conn
        .prepare("PRAGMA quick_check(10)")
        .and_then(|mut check| check.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| match classify(path, e) {
            JournalError::Damaged { path, problem } => JournalError::Damaged {
                path,
                problem: format!("SQLite's quick_check: {problem}"),
            },
            other => other,
        })?;
    tracing::info!(journal = %path.display(), took_ms = began.elapsed().as_millis() as u64, "journal quick_check");
    if rows.len() == 1 && rows[0] == "ok" {
        return Ok(());
    }
    let mut problem = format!("SQLite's quick_check found: {}", rows.join("; "));
    if rows.len() >= 10 {
        problem.push_str("; …");
    }
    Err(JournalError::Damaged {
        path: path.into(),
        problem,
    })
}

/// Starts a write transaction holding the write lock from the start, so a busy
/// journal fails at BEGIN (after the busy timeout) and never half-way through.
pub(super) fn begin(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Refuses a write about `order` unless `me` drives it: an order taken over
/// or finished by someone else is never written again.
fn check_owner(path: &Path, me: &str, tx: &Connection, order: OrderId) -> Result<(), JournalError> {
    let (out_trade_no, _, owner) = ownership(tx, order)
        .map_err(|e| classify(path, e))?
        .ok_or(JournalError::UnknownOrder(order.0))?;
    match owner {
        Some(owner) if owner == me => Ok(()),
        owner => Err(JournalError::Taken {
            out_trade_no,
            owner: owner.unwrap_or_else(|| "none: it was finished or set aside".into()),
        }),
    }
}

/// The owner columns of an order: (out_trade_no, state, owner).
fn ownership(
    conn: &Connection,
    order: OrderId,
) -> rusqlite::Result<Option<(String, OrderState, Option<String>)>> {
    conn.prepare_cached("SELECT out_trade_no, state, owner FROM orders WHERE id = ?1")?
        .query_row([order.0], |r| {
            Ok((r.get(0)?, parsed(r, 1, OrderState::parse)?, r.get(2)?))
        })
        .optional()
}

/// The installation id, created with the journal (or with its migration to
/// version 2): random, 12 of `0-9 A-Z` less the look-alikes I and O.
fn ensure_installation(conn: &mut Connection) -> rusqlite::Result<String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    let fresh: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let tx = begin(conn)?;
    execute(
        &tx,
        "INSERT OR IGNORE INTO installation (only, id, created_at_ms) VALUES (1, ?1, ?2)",
        params![fresh, unix_ms(OffsetDateTime::now_utc())],
    )?;
    let id = tx.query_row("SELECT id FROM installation", [], |r| r.get(0))?;
    tx.commit()?;
    Ok(id)
}

/// An event whose text passed [`guard`], as column values.
pub(super) struct Checked<'a> {
    at_ms: i64,
    since_t0_ms: Option<u64>,
    kind: EventKind,
    call: Option<&'static str>,
    summary: &'a str,
    detail: String,
}

impl<'a> Checked<'a> {
    pub(super) fn new(event: &'a EventRecord) -> Result<Self, JournalError> {
        let detail = event.event.to_stored().to_string();
        guard("event summary", &event.summary)?;
        guard("event detail", &detail)?;
        Ok(Self {
            at_ms: unix_ms(event.at),
            since_t0_ms: event.since_t0_ms,
            kind: event.event.kind(),
            call: event.event.call_name(),
            summary: &event.summary,
            detail,
        })
    }

    pub(super) fn insert(&self, conn: &Connection, order: OrderId) -> rusqlite::Result<()> {
        let sql = "INSERT INTO events (order_id, at_ms, since_t0_ms, kind, call, summary, detail) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
        let since_t0_ms = self.since_t0_ms.map(signed).transpose()?;
        let row = params![
            order.0,
            self.at_ms,
            since_t0_ms,
            self.kind.as_str(),
            self.call,
            self.summary,
            self.detail
        ];
        execute(conn, sql, row).map(drop)
    }
}

/// Refuses text holding a full payment code, before anything is written. The
/// code is the customer's bearer token for one payment; the journal is kept
/// for years and exported, so a code that slipped into a summary or a dump of
/// the micropay request must stop here.
fn guard(field: &'static str, text: &str) -> Result<(), JournalError> {
    if holds_payment_code(text) {
        return Err(JournalError::PaymentCode { field });
    }
    Ok(())
}

/// Wall-clock time as the journal stores it: unix milliseconds, UTC.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    at.unix_timestamp() * 1000 + i64::from(at.millisecond())
}

// SQLite integers are i64, and rusqlite maps u64 only with a feature this crate
// does not enable. The schema's CHECKs keep the unsigned columns non-negative.
pub(super) fn signed(value: u64) -> rusqlite::Result<i64> {
    i64::try_from(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

pub(super) fn unsigned(idx: usize, value: i64) -> rusqlite::Result<u64> {
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

/// Reads a text column through a validating parser, so a damaged value is an
/// error rather than a wrong answer.
pub(super) fn parsed<T>(
    row: &Row,
    idx: usize,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

pub(super) fn order_row(row: &Row) -> rusqlite::Result<OrderRow> {
    Ok(OrderRow {
        id: OrderId(row.get(0)?),
        out_trade_no: parsed(row, 1, |s| OutTradeNo::parse(s).ok())?,
        till_id: parsed(row, 2, |s| TillId::parse(s).ok())?,
        total_fee: Fen(unsigned(3, row.get(3)?)?),
        body: row.get(4)?,
        auth_code_masked: row.get(5)?,
        created_at_ms: row.get(6)?,
        micropay_sent_at_ms: row.get(7)?,
        state: parsed(row, 8, OrderState::parse)?,
        finished_at_ms: row.get(9)?,
        transaction_id: row.get(10)?,
        err_code: row.get(11)?,
        message: row.get(12)?,
    })
}

fn event_row(row: &Row) -> rusqlite::Result<EventRow> {
    let kind_text: String = row.get(4)?;
    let call: Option<String> = row.get(5)?;
    let summary: String = row.get(6)?;
    let detail: serde_json::Value = parsed(row, 7, |s| serde_json::from_str(s).ok())?;
    Ok(EventRow {
        id: row.get(0)?,
        order_id: OrderId(row.get(1)?),
        at_ms: row.get(2)?,
        since_t0_ms: row
            .get::<_, Option<i64>>(3)?
            .map(|v| unsigned(3, v))
            .transpose()?,
        kind: parsed(row, 4, EventKind::parse)?,
        event: Event::from_stored(&kind_text, call.as_deref(), &summary, &detail),
        call,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rusqlite::OpenFlags;
    use serde_json::{Value, json};

    use crate::payment::{Answer, Call};
    use crate::wechat::api::MicropayOutcome;
    use tempfile::TempDir;
    use time::Duration as Span;
    use time::macros::{datetime, offset};

    use crate::domain::AuthCode;
    use crate::journal::schema::MIGRATIONS;

    const CODE: &str = "134539517967686076";

    fn till() -> TillId {
        TillId::parse("T01").unwrap()
    }

    /// 2026-11-23 14:23:53 in Beijing, plus `ms`.
    fn at(ms: i64) -> OffsetDateTime {
        datetime!(2026-11-23 06:23:53 UTC) + Span::milliseconds(ms)
    }

    fn new_order(till: &TillId, now: OffsetDateTime) -> NewOrder<'_> {
        NewOrder {
            till,
            total_fee: Fen(1234),
            body: "Coffee",
            auth_code_masked: AuthCode::parse(CODE).unwrap().masked(),
            now,
            local_offset: offset!(+8),
        }
    }

    /// An event of `kind` whose stored JSON carries `detail`'s text.
    fn event(kind: EventKind, summary: &str, detail: Value) -> EventRecord {
        let text = detail.to_string();
        let event = match kind {
            EventKind::Request => Event::Request {
                call: Call::Micropay,
                fields: [("detail".to_string(), text)].into(),
            },
            EventKind::Finished => Event::Finished {
                state: "paid".into(),
                err_code: Some(text),
                transaction_id: None,
            },
            _ => Event::Note { text },
        };
        EventRecord {
            at: at(1),
            since_t0_ms: None,
            summary: summary.into(),
            event,
        }
    }

    fn final_record(state: OrderState) -> FinalRecord {
        FinalRecord {
            state,
            transaction_id: Some("4200001234202611231234567890".into()),
            err_code: None,
            message: None,
            at: at(5_000),
        }
    }

    fn finished() -> EventRecord {
        event(EventKind::Finished, "finished", json!({}))
    }

    fn count(journal: &Journal, table: &str) -> i64 {
        journal
            .conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn fresh() -> (TempDir, Journal) {
        let dir = TempDir::new().unwrap();
        let journal = Journal::open(&dir.path().join("journal.db")).unwrap();
        (dir, journal)
    }

    #[test]
    fn can_be_moved_to_a_blocking_thread() {
        // The engine keeps it in a Mutex and uses it from spawn_blocking.
        fn send<T: Send + 'static>() {}
        send::<Journal>();
    }

    #[test]
    fn opens_durable_in_a_new_folder() {
        let dir = TempDir::new().unwrap();
        let journal = Journal::open(&dir.path().join("data/till/journal.db")).unwrap();
        assert_eq!(journal.pragmas().unwrap(), ("wal".to_string(), 2));
        let foreign_keys: i64 = journal
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(foreign_keys, 1);
    }

    #[test]
    fn refuses_a_filesystem_without_shared_memory() {
        // The unix-dotfile VFS has no shared memory, like many network
        // filesystems: SQLite answers the WAL pragma with the old mode.
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.db");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(&path, flags, c"unix-dotfile").unwrap();
        let err = Journal::on(conn, &path).err().unwrap();
        assert!(
            matches!(&err, JournalError::NotWal { mode, .. } if mode == "delete"),
            "{err}"
        );
        assert!(err.to_string().contains("put the journal on a local disk"));
    }

    #[test]
    fn directory_in_place_of_the_file_says_how_to_fix_access() {
        let dir = TempDir::new().unwrap();
        let err = Journal::open(dir.path()).err().unwrap();
        assert!(matches!(err, JournalError::Access { .. }), "{err:?}");
        assert!(err.to_string().contains("chmod"), "{err}");
    }

    #[test]
    fn a_version_1_journal_is_migrated_and_its_open_order_recovered_through_the_machine() {
        // What an earlier scanpay left: schema version 1, an order whose
        // micropay was answered unclear, a reverse sent, then a crash.
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute_batch(
            "INSERT INTO orders (out_trade_no, till_id, total_fee, body, auth_code_masked, created_at_ms, micropay_sent_at_ms, state) \
             VALUES ('T0120261123142353000001', 'T01', 1234, 'Coffee', '**************6076', 1000000, 1000000, 'open');
             INSERT INTO events (order_id, at_ms, since_t0_ms, kind, call, summary, detail) VALUES
               (1, 1000000, NULL, 'opened', NULL, 'order opened', '{\"till_id\":\"T01\",\"total_fee\":1234,\"body\":\"Coffee\",\"auth_code_masked\":\"**************6076\"}'),
               (1, 1000000, 0, 'request', 'micropay', 'micropay sent', '{\"fields\":{}}'),
               (1, 1000500, 500, 'answer', 'micropay', 'micropay answer: UNKNOWN', '{\"class\":\"UNKNOWN\",\"reason\":\"SYSTEMERROR\",\"fields\":{\"err_code\":\"SYSTEMERROR\"}}'),
               (1, 1030000, 30000, 'request', 'reverse', 'reverse attempt 1 sent', '{\"fields\":{}}');",
        )
        .unwrap();
        drop(old);

        let mut journal = Journal::open(&path).unwrap();
        assert_eq!(
            schema::user_version(&journal.conn).unwrap(),
            MIGRATIONS.len() as i64
        );
        assert!(journal.installation_id().is_some_and(|id| id.len() == 12));
        let order = journal.unfinished().unwrap().remove(0);
        // Version-1 orders have no owner: they are free to take.
        assert_eq!(
            journal.claim(order.id).unwrap(),
            Claim::Claimed { previous: None }
        );
        let events = journal.events(order.id).unwrap();
        assert!(matches!(
            events[3].event,
            Event::Request {
                call: Call::Reverse { attempt: 1 },
                ..
            }
        ));
        // The machine, fed the old events, asks first: the reverse's result may show.
        let machine = crate::payment::recovery::plan(
            &order,
            &events,
            1_060_000,
            &crate::payment::Timings::default(),
            false,
        );
        assert!(
            matches!(machine.status(), crate::payment::Status::Unclear { next_query_at, .. } if next_query_at == std::time::Duration::from_secs(59)),
            "{:?}",
            machine.status()
        );
    }

    #[test]
    fn reopening_keeps_the_data_and_migrates_nothing_twice() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.db");
        let (id, no) = {
            let mut journal = Journal::open(&path).unwrap();
            journal.open_order(&new_order(&till(), at(0))).unwrap()
        };
        // Applying step 1 again would fail on CREATE TABLE, so this open
        // succeeding with the version unchanged shows nothing ran twice.
        let journal = Journal::open(&path).unwrap();
        assert_eq!(
            schema::user_version(&journal.conn).unwrap(),
            MIGRATIONS.len() as i64
        );
        let row = journal.order_by_trade_no(no.as_str()).unwrap().unwrap();
        assert_eq!(row.id, id);
        assert_eq!(journal.events(id).unwrap().len(), 1);
    }

    /// The file's bytes, to prove a refused file was not touched.
    fn bytes(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    /// A closed journal of 300 finished orders with 4 KiB of zeros written over
    /// a leaf page of `table` in the middle of its b-tree, and the last whole-file
    /// check set `checked_ago` in the past.
    fn damaged(table: &str, checked_ago: std::time::Duration) -> (TempDir, PathBuf) {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.db");
        {
            let mut journal = Journal::open(&path).unwrap();
            for i in 0..300 {
                let (id, _) = journal.open_order(&new_order(&till(), at(i))).unwrap();
                journal
                    .finish(id, &final_record(OrderState::Paid), &finished())
                    .unwrap();
            }
        }
        let conn = Connection::open(&path).unwrap();
        let checked_at = unix_ms(OffsetDateTime::now_utc()) - checked_ago.as_millis() as i64;
        conn.execute("UPDATE checks SET checked_at_ms = ?1", [checked_at])
            .unwrap();
        let pages: Vec<i64> = conn
            .prepare(
                "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY path",
            )
            .unwrap()
            .query_map([table], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        drop(conn);
        assert!(pages.len() >= 3, "{table} has {} leaf pages", pages.len());
        let mut file = bytes(&path);
        let page = pages[pages.len() / 2] as usize;
        file[(page - 1) * 4096..page * 4096].fill(0);
        std::fs::write(&path, &file).unwrap();
        (dir, path)
    }

    #[test]
    fn a_damaged_journal_is_refused_at_open_untouched() {
        let (_dir, path) = damaged("events", FULL_CHECK_EVERY);
        let before = bytes(&path);
        let e = Journal::open(&path)
            .err()
            .expect("a damaged journal must not open");
        let JournalError::Damaged { problem, .. } = &e else {
            panic!("{e}");
        };
        assert!(problem.contains("quick_check"), "{problem}");
        let message = e.to_string();
        for advice in [
            "Keep the file",
            "backup",
            ".recover",
            "journal.path",
            "--check",
        ] {
            assert!(message.contains(advice), "{advice}: {message}");
        }
        assert_eq!(bytes(&path), before, "nothing may be written to it");
    }

    #[test]
    fn the_whole_file_is_checked_once_a_day_and_a_touched_damaged_page_is_reported() {
        // Checked an hour ago: this open trusts it, and reads only page 1, the
        // schema and what it needs.
        let (_dir, path) = damaged("events", std::time::Duration::from_secs(3600));
        let journal = Journal::open(&path).unwrap();
        // A read that reaches the damaged page says so, with the same advice.
        let e = (1..=300)
            .find_map(|id| journal.events(OrderId(id)).err())
            .expect("some order's events are on the damaged page");
        assert!(matches!(e, JournalError::Damaged { .. }), "{e}");
        drop(journal);
        // A day after the last check, the next open checks the whole file.
        let (_dir, path) = damaged("orders", FULL_CHECK_EVERY);
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::Damaged { .. })
        ));
    }

    #[test]
    fn a_passed_check_is_recorded_and_not_repeated_within_the_day() {
        let (_dir, journal) = fresh();
        let checked: i64 = journal
            .conn
            .query_row("SELECT checked_at_ms FROM checks", [], |r| r.get(0))
            .unwrap();
        let now = unix_ms(OffsetDateTime::now_utc());
        assert!(now - checked < 60_000);
        assert!(!full_check_due(&journal.conn, now).unwrap());
        let every = FULL_CHECK_EVERY.as_millis() as i64;
        assert!(full_check_due(&journal.conn, checked + every).unwrap());
        // A clock set back is no reason to trust an old check.
        assert!(full_check_due(&journal.conn, checked - 1).unwrap());
    }

    #[test]
    fn refuses_a_newer_journal_untouched() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.db");
        drop(Journal::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let before = bytes(&path);
        let err = Journal::open(&path).err().unwrap();
        assert!(
            matches!(err, JournalError::TooNew { found: 99, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("upgrade scanpay"), "{err}");
        assert_eq!(bytes(&path), before);
    }

    #[test]
    fn refuses_a_file_that_is_not_a_journal_untouched() {
        let dir = TempDir::new().unwrap();
        let text = dir.path().join("notes.txt");
        std::fs::write(
            &text,
            "this is not a database, it is a shopping list\n".repeat(100),
        )
        .unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE recipes (name TEXT)")
            .unwrap();
        for path in [text, other] {
            let before = bytes(&path);
            let err = Journal::open(&path).err().unwrap();
            assert!(matches!(err, JournalError::NotAJournal { .. }), "{err:?}");
            assert!(
                err.to_string().contains("is not a scanpay journal"),
                "{err}"
            );
            assert_eq!(bytes(&path), before);
        }
    }

    #[test]
    fn a_held_write_lock_reports_another_scanpay() {
        let (dir, mut journal) = fresh();
        let (id, _) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let other = Connection::open(dir.path().join("journal.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        journal
            .conn
            .busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let err = journal
            .append(id, &event(EventKind::Note, "note", json!({})))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("stayed locked by another program"),
            "{err}"
        );
    }

    #[test]
    fn mints_distinct_valid_numbers_across_reopen() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("journal.db");
        let till = till();
        let mut numbers = Vec::new();
        for _ in 0..2 {
            let mut journal = Journal::open(&path).unwrap();
            for _ in 0..3 {
                // The same second every time: only the sequence tells them apart.
                numbers.push(journal.open_order(&new_order(&till, at(0))).unwrap().1);
            }
        }
        // 06:23:53 UTC is 14:23:53 in the store's zone (+8).
        let installation =
            &Journal::open(&path).unwrap().installation_id().unwrap()[..6].to_string();
        assert_eq!(
            numbers[0].as_str(),
            format!("T01261123142353{installation}000001")
        );
        assert_eq!(
            numbers[5].as_str(),
            format!("T01261123142353{installation}000006")
        );
        for no in &numbers {
            assert_eq!(OutTradeNo::parse(no.as_str()).as_ref(), Ok(no));
        }
        let mut distinct = numbers.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), numbers.len());
    }

    #[test]
    fn open_order_stores_the_order_and_an_opened_event() {
        let (_dir, mut journal) = fresh();
        let till = till();
        let (id, no) = journal.open_order(&new_order(&till, at(0))).unwrap();
        let row = journal.order_by_trade_no(no.as_str()).unwrap().unwrap();
        let expected = OrderRow {
            id,
            out_trade_no: no,
            till_id: till,
            total_fee: Fen(1234),
            body: "Coffee".into(),
            auth_code_masked: "**************6076".into(),
            created_at_ms: at(0).unix_timestamp() * 1000,
            micropay_sent_at_ms: None,
            state: OrderState::Open,
            finished_at_ms: None,
            transaction_id: None,
            err_code: None,
            message: None,
        };
        assert_eq!(row, expected);
        let events = journal.events(id).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Opened);
        assert!(
            events[0].summary.contains("12.34 yuan"),
            "{}",
            events[0].summary
        );
        assert!(
            matches!(&events[0].event, Event::Opened { total_fee: 1234, till_id, .. } if till_id == "T01"),
            "{:?}",
            events[0].event
        );
        assert_eq!(
            journal
                .order_by_trade_no("T0199999999999999999999")
                .unwrap(),
            None
        );
    }

    #[test]
    fn events_come_back_in_order_with_their_json() {
        let (_dir, mut journal) = fresh();
        let (id, _) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let (other, _) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let request = EventRecord {
            at: at(10),
            since_t0_ms: Some(0),
            summary: "micropay sent".into(),
            event: Event::Request {
                call: Call::Micropay,
                fields: [
                    ("total_fee".to_string(), "1234".to_string()),
                    ("auth_code".to_string(), "**************6076".to_string()),
                ]
                .into(),
            },
        };
        journal.record_micropay_intent(id, &request).unwrap();
        journal
            .append(other, &event(EventKind::Note, "another order", json!(null)))
            .unwrap();
        let answer = EventRecord {
            at: at(900),
            since_t0_ms: Some(890),
            summary: "USERPAYING: the customer is entering the password".into(),
            event: Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Pending),
                fields: Some(
                    [
                        ("err_code".to_string(), "USERPAYING".to_string()),
                        ("coupon_fee_0".to_string(), "1".to_string()),
                    ]
                    .into(),
                ),
            },
        };
        journal.append(id, &answer).unwrap();
        let events = journal.events(id).unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventKind::Opened, EventKind::Request, EventKind::Answer]
        );
        assert!(events.windows(2).all(|w| w[0].id < w[1].id));
        let last = &events[2];
        assert_eq!(
            (last.order_id, last.at_ms, last.since_t0_ms),
            (id, at(900).unix_timestamp() * 1000 + 900, Some(890))
        );
        assert_eq!(last.call.as_deref(), Some("micropay"));
        assert_eq!(last.summary, answer.summary);
        assert_eq!(last.event, answer.event);
        assert_eq!(events[1].event, request.event);
    }

    #[test]
    fn micropay_intent_keeps_the_first_send_time() {
        let (_dir, mut journal) = fresh();
        let (id, no) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let mut request = event(EventKind::Request, "micropay sent", json!({}));
        request.at = at(10);
        journal.record_micropay_intent(id, &request).unwrap();
        request.at = at(7_000);
        journal.record_micropay_intent(id, &request).unwrap();
        let row = journal.order_by_trade_no(no.as_str()).unwrap().unwrap();
        assert_eq!(
            row.micropay_sent_at_ms,
            Some(at(10).unix_timestamp() * 1000 + 10)
        );
        assert_eq!(journal.events(id).unwrap().len(), 3);
        let err = journal
            .record_micropay_intent(OrderId(999), &request)
            .err()
            .unwrap();
        assert!(matches!(err, JournalError::UnknownOrder(999)), "{err:?}");
    }

    #[test]
    fn events_are_append_only() {
        let (_dir, mut journal) = fresh();
        let (id, _) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let before = journal.events(id).unwrap();
        for sql in [
            "UPDATE events SET summary = 'rewritten'",
            "DELETE FROM events",
        ] {
            let err = journal.conn.execute(sql, []).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
        assert_eq!(journal.events(id).unwrap(), before);
    }

    #[test]
    fn append_to_an_unknown_order_is_refused() {
        let (_dir, mut journal) = fresh();
        let err = journal
            .append(OrderId(42), &event(EventKind::Note, "note", json!({})))
            .err()
            .unwrap();
        assert!(matches!(err, JournalError::UnknownOrder(42)), "{err:?}");
        assert_eq!(count(&journal, "events"), 0);
    }

    #[test]
    fn finish_records_the_outcome_with_its_event() {
        let (_dir, mut journal) = fresh();
        let (id, no) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        journal
            .finish(id, &final_record(OrderState::Paid), &finished())
            .unwrap();
        let row = journal.order_by_trade_no(no.as_str()).unwrap().unwrap();
        assert_eq!(row.state, OrderState::Paid);
        assert_eq!(row.finished_at_ms, Some(at(5_000).unix_timestamp() * 1000));
        assert_eq!(
            row.transaction_id.as_deref(),
            Some("4200001234202611231234567890")
        );
        assert_eq!(
            journal.events(id).unwrap().last().unwrap().kind,
            EventKind::Finished
        );
    }

    #[test]
    fn finish_is_atomic() {
        let (_dir, mut journal) = fresh();
        let (id, no) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        // Make the event insert fail after the order row was updated.
        journal
            .conn
            .execute_batch(
                "CREATE TEMP TRIGGER fail_finished BEFORE INSERT ON events WHEN NEW.kind = 'finished' \
                 BEGIN SELECT RAISE(ABORT, 'disk trouble'); END",
            )
            .unwrap();
        assert!(
            journal
                .finish(id, &final_record(OrderState::Paid), &finished())
                .is_err()
        );
        let row = journal.order_by_trade_no(no.as_str()).unwrap().unwrap();
        assert_eq!(
            (row.state, row.finished_at_ms, row.transaction_id),
            (OrderState::Open, None, None)
        );
        assert_eq!(journal.events(id).unwrap().len(), 1);
    }

    #[test]
    fn finish_is_idempotent_and_never_overwrites_a_final_state() {
        let (_dir, mut journal) = fresh();
        let (id, no) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        journal
            .finish(id, &final_record(OrderState::Paid), &finished())
            .unwrap();
        journal
            .finish(id, &final_record(OrderState::Paid), &finished())
            .unwrap();
        assert_eq!(
            journal.events(id).unwrap().len(),
            2,
            "the repeat wrote nothing"
        );
        let err = journal
            .finish(id, &final_record(OrderState::Reversed), &finished())
            .err()
            .unwrap();
        assert!(
            matches!(
                err,
                JournalError::AlreadyFinished {
                    current: OrderState::Paid,
                    wanted: OrderState::Reversed,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(no.as_str()), "{err}");
        assert_eq!(
            journal
                .order_by_trade_no(no.as_str())
                .unwrap()
                .unwrap()
                .state,
            OrderState::Paid
        );
        assert_eq!(journal.events(id).unwrap().len(), 2);
        let err = journal
            .finish(OrderId(999), &final_record(OrderState::Paid), &finished())
            .err()
            .unwrap();
        assert!(matches!(err, JournalError::UnknownOrder(999)), "{err:?}");
    }

    #[test]
    fn needs_attention_can_still_be_resolved_but_not_reopened() {
        let (_dir, mut journal) = fresh();
        let (id, no) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let err = journal
            .finish(id, &final_record(OrderState::Open), &finished())
            .err()
            .unwrap();
        assert!(
            matches!(err, JournalError::NotFinal(OrderState::Open)),
            "{err:?}"
        );
        journal
            .finish(id, &final_record(OrderState::NeedsAttention), &finished())
            .unwrap();
        // Parked, it has no driver: whoever resolves it claims it first.
        let err = journal
            .finish(id, &final_record(OrderState::Reversed), &finished())
            .err()
            .unwrap();
        assert!(matches!(err, JournalError::Taken { .. }), "{err:?}");
        assert!(matches!(
            journal.claim(id).unwrap(),
            Claim::Claimed { previous: None }
        ));
        journal
            .finish(id, &final_record(OrderState::Reversed), &finished())
            .unwrap();
        assert_eq!(
            journal
                .order_by_trade_no(no.as_str())
                .unwrap()
                .unwrap()
                .state,
            OrderState::Reversed
        );
        assert_eq!(journal.events(id).unwrap().len(), 3);
    }

    #[test]
    fn unfinished_lists_only_open_orders_oldest_first() {
        let (_dir, mut journal) = fresh();
        let till = till();
        let (newer, _) = journal.open_order(&new_order(&till, at(2_000))).unwrap();
        let (paid, _) = journal.open_order(&new_order(&till, at(0))).unwrap();
        let (older, _) = journal.open_order(&new_order(&till, at(1_000))).unwrap();
        let (parked, _) = journal.open_order(&new_order(&till, at(500))).unwrap();
        journal
            .finish(paid, &final_record(OrderState::Paid), &finished())
            .unwrap();
        journal
            .finish(
                parked,
                &final_record(OrderState::NeedsAttention),
                &finished(),
            )
            .unwrap();
        let ids: Vec<_> = journal.unfinished().unwrap().iter().map(|o| o.id).collect();
        assert_eq!(ids, [older, newer]);
    }

    #[test]
    fn orders_between_includes_from_and_excludes_to() {
        let (_dir, mut journal) = fresh();
        let till = till();
        let ids: Vec<_> = [3_000, 1_000, 2_000, 999]
            .map(|ms| journal.open_order(&new_order(&till, at(ms))).unwrap().0)
            .into();
        let from = at(1_000).unix_timestamp() * 1000;
        let between: Vec<_> = journal
            .orders_between(from, from + 2_000)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(between, [ids[1], ids[2]]);
        assert!(journal.orders_between(from, from).unwrap().is_empty());
    }

    #[test]
    fn orders_between_reads_the_created_index() {
        let (_dir, journal) = fresh();
        let mut explain = journal
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {ORDERS_BETWEEN}"))
            .unwrap();
        let plan: Vec<String> = explain
            .query_map([0, 1], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("orders_by_created"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "sorts instead of reading in index order: {plan}"
        );
    }

    #[test]
    fn a_payment_code_anywhere_is_refused_and_nothing_is_written() {
        let (_dir, mut journal) = fresh();
        let till = till();
        let (id, _) = journal.open_order(&new_order(&till, at(0))).unwrap();
        let (orders, events) = (count(&journal, "orders"), count(&journal, "events"));

        let in_body = NewOrder {
            body: &format!("Coffee {CODE}"),
            ..new_order(&till, at(0))
        };
        let in_masked = NewOrder {
            auth_code_masked: CODE.into(),
            ..new_order(&till, at(0))
        };
        for order in [in_body, in_masked] {
            let err = journal.open_order(&order).err().unwrap();
            assert!(matches!(err, JournalError::PaymentCode { .. }), "{err:?}");
            assert!(
                !err.to_string().contains(CODE),
                "the error must not carry the code: {err}"
            );
        }

        // (summary, detail): each written as a note, a request and a finish.
        let leaks = [
            (format!("scanned {CODE}"), json!({})),
            (
                "micropay".to_string(),
                json!({"fields": {"auth_code": CODE}}),
            ),
            (
                "micropay".to_string(),
                json!({"auth_code": 134_539_517_967_686_076_u64}),
            ),
            (
                "micropay".to_string(),
                json!({"xml": format!("<auth_code><![CDATA[{CODE}]]></auth_code>")}),
            ),
            (
                "micropay".to_string(),
                json!({"signed": format!("auth_code={CODE}&body=Coffee")}),
            ),
            (
                "付款码".to_string(),
                json!({"text": format!("付款码{CODE}")}),
            ),
        ];
        for (summary, detail) in &leaks {
            let leak = event(EventKind::Note, summary, detail.clone());
            let err = journal.append(id, &leak).err().unwrap();
            assert!(
                matches!(err, JournalError::PaymentCode { .. }),
                "{leak:?}: {err:?}"
            );
            let request = event(EventKind::Request, summary, detail.clone());
            assert!(journal.record_micropay_intent(id, &request).is_err());
            let finished = event(EventKind::Finished, summary, detail.clone());
            assert!(
                journal
                    .finish(id, &final_record(OrderState::Paid), &finished)
                    .is_err()
            );
        }
        let leaky_final = FinalRecord {
            message: Some(format!("paid with {CODE}")),
            ..final_record(OrderState::Paid)
        };
        assert!(journal.finish(id, &leaky_final, &finished()).is_err());

        assert_eq!(
            (count(&journal, "orders"), count(&journal, "events")),
            (orders, events)
        );
        let row = &journal.orders_between(i64::MIN, i64::MAX).unwrap()[0];
        assert_eq!(
            (row.state, row.micropay_sent_at_ms),
            (OrderState::Open, None)
        );
    }

    #[test]
    fn look_alikes_of_a_payment_code_are_accepted() {
        let (_dir, mut journal) = fresh();
        let (id, _) = journal.open_order(&new_order(&till(), at(0))).unwrap();
        let fine = [
            "13453951796768607",                               // 17 digits
            "1345395179676860761",                             // 19 digits
            "**************6076",                              // the masked form
            "164539517967686076",                              // 18 digits, not 10–15
            "4200001234202611231234567890",                    // a transaction_id
            "134539517967686076ABCDEF0123456789ABCDEF0123456", // a hex sign starting with 18 digits
        ];
        for text in fine {
            journal
                .append(id, &event(EventKind::Note, text, json!({ "value": text })))
                .unwrap();
        }
        assert_eq!(journal.events(id).unwrap().len(), 1 + fine.len());
    }

    proptest! {
        #[test]
        fn finds_a_code_between_any_separators(
            code in "1[0-5][0-9]{16}",
            before in "(.*[^0-9A-Za-z])?",
            after in "([^0-9A-Za-z].*)?",
        ) {
            let text = format!("{before}{code}{after}");
            prop_assert!(holds_payment_code(&text), "{}", text);
        }

        #[test]
        fn ignores_other_digit_runs(
            short in "[0-9]{1,17}",
            long in "[0-9]{19,40}",
            other_prefix in "(0[0-9]|1[6-9]|[2-9][0-9])[0-9]{16}",
            words in "[ :=,\"]*",
        ) {
            let text = format!("{short}{words} {long}{words} {other_prefix}");
            prop_assert!(!holds_payment_code(&text), "{}", text);
        }

        #[test]
        fn ignores_hex_signatures_and_masked_codes(sign in "[0-9A-F]{32}|[0-9A-F]{64}", code in "1[0-5][0-9]{16}") {
            let text = format!("sign={sign}&masked={}", AuthCode::parse(&code).unwrap().masked());
            prop_assert!(!holds_payment_code(&text), "{}", text);
        }
    }
}
