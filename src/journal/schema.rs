//! The journal's schema and its migrations, versioned with `PRAGMA user_version`.
//!
//! `MIGRATIONS[n]` takes a journal from version `n` to `n + 1`. Steps are only
//! ever appended: a released step is never edited, because journals already
//! carry its result.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::error::classify;
use super::{Journal, JournalError};

/// `PRAGMA application_id` of every scanpay journal ("SCPY"), so a foreign
/// SQLite file is recognised and left alone. Migration 1 writes it.
const APPLICATION_ID: i32 = i32::from_be_bytes(*b"SCPY");

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: orders and their append-only event log.
    r#"
    PRAGMA application_id = 1396920409; -- "SCPY"

    CREATE TABLE orders (
        id                  INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: it is the out_trade_no sequence
        out_trade_no        TEXT    NOT NULL UNIQUE,
        till_id             TEXT    NOT NULL,
        total_fee           INTEGER NOT NULL CHECK (total_fee > 0), -- fen
        body                TEXT    NOT NULL,
        auth_code_masked    TEXT    NOT NULL,
        created_at_ms       INTEGER NOT NULL, -- unix ms, UTC
        micropay_sent_at_ms INTEGER,          -- wall time the micropay intent was journaled
        state               TEXT    NOT NULL CHECK (state IN
                                ('open', 'paid', 'failed', 'reversed', 'closed', 'needs_attention')),
        finished_at_ms      INTEGER,
        transaction_id      TEXT,
        err_code            TEXT,
        message             TEXT,
        CHECK ((state = 'open') = (finished_at_ms IS NULL))
    ) STRICT;

    -- The manager's day view: a range over created_at_ms.
    CREATE INDEX orders_by_created ON orders (created_at_ms);
    -- Recovery (state = 'open') and the attention list, oldest first.
    CREATE INDEX orders_by_state ON orders (state, created_at_ms);

    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id    INTEGER NOT NULL REFERENCES orders (id),
        at_ms       INTEGER NOT NULL, -- unix ms, UTC
        since_t0_ms INTEGER CHECK (since_t0_ms >= 0), -- null before the micropay is sent
        kind        TEXT    NOT NULL CHECK (kind IN
                        ('opened', 'request', 'answer', 'timer', 'cashier', 'finished', 'note')),
        call        TEXT,
        summary     TEXT    NOT NULL,
        detail      TEXT    NOT NULL CHECK (json_valid(detail))
    ) STRICT;

    CREATE INDEX events_by_order ON events (order_id);

    -- The log is evidence: what was sent and answered is never rewritten.
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END;
    "#,
    // 2: who drives each order, and the installation's own random id. Event
    // details from here on are typed, versioned JSON (`payment::event`);
    // version-1 details stay as they were and are translated when read.
    r#"
    -- The live process driving the order (journal/owner.rs); NULL once it is
    -- finished or parked for a person, and for orders of version-1 journals.
    ALTER TABLE orders ADD COLUMN owner TEXT;

    -- One row, written with the journal: the part of every out_trade_no that
    -- no other installation mints, even one cloned with the same till id.
    CREATE TABLE installation (
        only          INTEGER PRIMARY KEY CHECK (only = 1),
        id            TEXT    NOT NULL CHECK (length(id) = 12),
        created_at_ms INTEGER NOT NULL
    ) STRICT;
    "#,
    // 3: when the whole file was last found sound. The check reads every page
    // (seconds on a year's journal), so it runs once a day, not at every open.
    r#"
    CREATE TABLE checks (
        only          INTEGER PRIMARY KEY CHECK (only = 1),
        checked_at_ms INTEGER NOT NULL -- unix ms, UTC, of the last PRAGMA quick_check that said ok
    ) STRICT;
    "#,
    // 4: refunds of paid orders. The out_refund_no is minted and committed
    // before the first request and reused on every retry; the events of a
    // refund go to its order's log.
    r#"
    CREATE TABLE refunds (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id       INTEGER NOT NULL REFERENCES orders (id),
        out_refund_no  TEXT    NOT NULL UNIQUE,
        refund_fee     INTEGER NOT NULL CHECK (refund_fee > 0), -- fen
        reason         TEXT,
        created_at_ms  INTEGER NOT NULL,
        -- pending: being driven by `owner`; processing / unclear: left for
        -- replay; the rest are what WeChat decided.
        state          TEXT    NOT NULL CHECK (state IN
                           ('pending', 'processing', 'unclear', 'refunded', 'refused', 'closed', 'change')),
        finished_at_ms INTEGER,
        refund_id      TEXT,
        err_code       TEXT,
        message        TEXT,
        owner          TEXT
    ) STRICT;

    CREATE INDEX refunds_by_order ON refunds (order_id);
    CREATE INDEX refunds_by_state ON refunds (state, created_at_ms);
    "#,
    // 5: each reconciliation of a day against WeChat's bill (下载交易账单),
    // with its whole result, so the journal screen can tell whether a day was
    // reconciled and how it came out. Appended, never rewritten: a day
    // reconciled again gets a new row, and the newest one counts.
    r#"
    CREATE TABLE reconciliations (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        bill_date     TEXT    NOT NULL CHECK (length(bill_date) = 10), -- YYYY-MM-DD, Beijing time
        at_ms         INTEGER NOT NULL, -- unix ms, UTC
        source        TEXT    NOT NULL CHECK (source IN ('downloaded', 'file')),
        matched       INTEGER NOT NULL CHECK (matched >= 0),
        discrepancies INTEGER NOT NULL CHECK (discrepancies >= 0),
        result        TEXT    NOT NULL CHECK (json_valid(result))
    ) STRICT;

    CREATE INDEX reconciliations_by_date ON reconciliations (bill_date, id);

    CREATE TRIGGER reconciliations_no_update BEFORE UPDATE ON reconciliations
    BEGIN SELECT RAISE(ABORT, 'journal reconciliations are append-only'); END;
    "#,
    // 6: how far the events were shipped to the store's database (src/store):
    // every event with an id up to shipped_through is committed there. Written
    // only after the store's commit, so a crash in between re-sends (which the
    // store ignores) and never skips.
    r#"
    CREATE TABLE shipping (
        only            INTEGER PRIMARY KEY CHECK (only = 1),
        shipped_through INTEGER NOT NULL CHECK (shipped_through >= 0),
        shipped_at_ms   INTEGER NOT NULL
    ) STRICT;
    "#,
];

/// Looks at a file before anything is written to it: it must be empty or a
/// scanpay journal this build understands. A foreign or newer file is left
/// exactly as it is.
pub(super) fn check(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let db = |e| classify(path, e);
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(db)?;
    let version = user_version(conn).map_err(db)?;
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(db)?;
    let blank = application_id == 0 && version == 0 && objects == 0;
    if application_id != APPLICATION_ID && !blank {
        return Err(JournalError::NotAJournal { path: path.into() });
    }
    known_version(version, path).map(drop)
}

/// Applies the missing steps, each in its own transaction together with its
/// version bump. The version is re-read under the write lock, so two tills
/// opening a new journal at once cannot both apply a step.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let db = |e| classify(path, e);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let found = user_version(&tx).map_err(db)?;
        let Some(step) = MIGRATIONS.get(known_version(found, path)?) else {
            return Ok(());
        };
        tx.execute_batch(step).map_err(db)?;
        tx.pragma_update(None, "user_version", found + 1)
            .map_err(db)?;
        tx.commit().map_err(db)?;
        tracing::info!(journal = %path.display(), version = found + 1, "journal schema migrated");
    }
}

pub(super) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

impl Journal {
    /// Whether this journal has what migration `version` adds: a read-only
    /// connection to an older journal is not migrated.
    pub(super) fn knows(&self, version: i64) -> Result<bool, JournalError> {
        user_version(&self.conn)
            .map(|found| found >= version)
            .map_err(|e| classify(&self.path, e))
    }
}

/// The version as a step index, if this build can work with it.
fn known_version(found: i64, path: &Path) -> Result<usize, JournalError> {
    let known = MIGRATIONS.len();
    match usize::try_from(found) {
        Ok(version) if version <= known => Ok(version),
        // SQLite allows any 32-bit user_version; scanpay never writes a negative one.
        Err(_) => Err(JournalError::NotAJournal { path: path.into() }),
        Ok(_) => Err(JournalError::TooNew {
            path: path.into(),
            found,
            known,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_id_in_the_sql_is_scpy() {
        assert_eq!(APPLICATION_ID, 1_396_920_409);
        assert!(MIGRATIONS[0].contains(&format!("application_id = {APPLICATION_ID};")));
    }
}
