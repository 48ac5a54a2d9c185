//! What the store's shipper (`crate::store`) reads from the journal and the
//! one thing it writes: how far the events were shipped.
//!
//! A batch is read in one read transaction, so its events and the order and
//! refund rows they touched are one consistent picture of the journal. The
//! shipped mark is written (through the writer thread) only after the store's
//! database committed the batch: a crash in between sends the batch again,
//! which the store recognises and ignores.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::error::classify;
use super::store::{execute, unix_ms};
use super::{Journal, JournalError};

/// One event as stored, with its order's number: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipEvent {
    /// The journal's `events.id`: with the installation id, the store's key.
    pub id: i64,
    pub order_id: i64,
    pub out_trade_no: String,
    pub at_ms: i64,
    pub since_t0_ms: Option<i64>,
    pub kind: String,
    pub call: Option<String>,
    pub summary: String,
    /// The typed event's JSON exactly as the journal holds it.
    pub detail: String,
}

/// An order's current row. `version` is the id of its latest event: every
/// change of an order row comes with an event, so a higher version is a
/// later state, and the store keeps the highest it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipOrder {
    pub out_trade_no: String,
    pub till_id: String,
    pub total_fee: i64,
    pub body: String,
    pub auth_code_masked: String,
    pub created_at_ms: i64,
    pub micropay_sent_at_ms: Option<i64>,
    pub state: String,
    pub finished_at_ms: Option<i64>,
    pub transaction_id: Option<String>,
    pub err_code: Option<String>,
    pub message: Option<String>,
    pub version: i64,
}

/// A refund's current row; `version` as for [`ShipOrder`] (a refund's events
/// go to its order's log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipRefund {
    pub out_refund_no: String,
    pub out_trade_no: String,
    pub refund_fee: i64,
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub state: String,
    pub finished_at_ms: Option<i64>,
    pub refund_id: Option<String>,
    pub err_code: Option<String>,
    pub message: Option<String>,
    pub version: i64,
}

/// The events after a mark, oldest first, with the rows they touched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipBatch {
    pub events: Vec<ShipEvent>,
    pub orders: Vec<ShipOrder>,
    pub refunds: Vec<ShipRefund>,
}

impl ShipBatch {
    /// The id of the batch's last event: the mark once it is shipped.
    pub fn through(&self) -> Option<i64> {
        self.events.last().map(|e| e.id)
    }
}

const EVENTS_AFTER: &str = "SELECT e.id, e.order_id, o.out_trade_no, e.at_ms, e.since_t0_ms, e.kind, e.call, e.summary, e.detail \
     FROM events e JOIN orders o ON o.id = e.order_id WHERE e.id > ?1 ORDER BY e.id LIMIT ?2";

const ORDERS_OF_RANGE: &str = "SELECT o.out_trade_no, o.till_id, o.total_fee, o.body, o.auth_code_masked, o.created_at_ms, \
     o.micropay_sent_at_ms, o.state, o.finished_at_ms, o.transaction_id, o.err_code, o.message, \
     (SELECT max(v.id) FROM events v WHERE v.order_id = o.id) \
     FROM orders o WHERE o.id IN (SELECT order_id FROM events WHERE id > ?1 AND id <= ?2) ORDER BY o.id";

const REFUNDS_OF_RANGE: &str = "SELECT r.out_refund_no, o.out_trade_no, r.refund_fee, r.reason, r.created_at_ms, r.state, \
     r.finished_at_ms, r.refund_id, r.err_code, r.message, \
     (SELECT max(v.id) FROM events v WHERE v.order_id = r.order_id) \
     FROM refunds r JOIN orders o ON o.id = r.order_id \
     WHERE r.order_id IN (SELECT order_id FROM events WHERE id > ?1 AND id <= ?2) ORDER BY r.id";

impl Journal {
    /// Up to `limit` events after `after`, with the current rows of their
    /// orders and refunds, read as one snapshot.
    pub fn ship_batch(&self, after: i64, limit: usize) -> Result<ShipBatch, JournalError> {
        let db = |e| classify(&self.path, e);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let tx = self.conn.unchecked_transaction().map_err(db)?;
        let events: Vec<ShipEvent> = tx
            .prepare_cached(EVENTS_AFTER)
            .and_then(|mut select| {
                select
                    .query_map(params![after, limit], |r| {
                        Ok(ShipEvent {
                            id: r.get(0)?,
                            order_id: r.get(1)?,
                            out_trade_no: r.get(2)?,
                            at_ms: r.get(3)?,
                            since_t0_ms: r.get(4)?,
                            kind: r.get(5)?,
                            call: r.get(6)?,
                            summary: r.get(7)?,
                            detail: r.get(8)?,
                        })
                    })?
                    .collect()
            })
            .map_err(db)?;
        let Some(through) = events.last().map(|e| e.id) else {
            return Ok(ShipBatch::default());
        };
        let orders = tx
            .prepare_cached(ORDERS_OF_RANGE)
            .and_then(|mut select| {
                select
                    .query_map(params![after, through], |r| {
                        Ok(ShipOrder {
                            out_trade_no: r.get(0)?,
                            till_id: r.get(1)?,
                            total_fee: r.get(2)?,
                            body: r.get(3)?,
                            auth_code_masked: r.get(4)?,
                            created_at_ms: r.get(5)?,
                            micropay_sent_at_ms: r.get(6)?,
                            state: r.get(7)?,
                            finished_at_ms: r.get(8)?,
                            transaction_id: r.get(9)?,
                            err_code: r.get(10)?,
                            message: r.get(11)?,
                            version: r.get(12)?,
                        })
                    })?
                    .collect()
            })
            .map_err(db)?;
        // tx is a transaction on self.conn: this reads the batch's snapshot too.
        let refunds = if self.knows_refunds()? {
            tx.prepare_cached(REFUNDS_OF_RANGE)
                .and_then(|mut select| {
                    select
                        .query_map(params![after, through], |r| {
                            Ok(ShipRefund {
                                out_refund_no: r.get(0)?,
                                out_trade_no: r.get(1)?,
                                refund_fee: r.get(2)?,
                                reason: r.get(3)?,
                                created_at_ms: r.get(4)?,
                                state: r.get(5)?,
                                finished_at_ms: r.get(6)?,
                                refund_id: r.get(7)?,
                                err_code: r.get(8)?,
                                message: r.get(9)?,
                                version: r.get(10)?,
                            })
                        })?
                        .collect()
                })
                .map_err(db)?
        } else {
            Vec::new()
        };
        tx.finish().map_err(db)?;
        Ok(ShipBatch {
            events,
            orders,
            refunds,
        })
    }

    /// How many events are after `after`: the "behind by N" of the till.
    pub fn events_after(&self, after: i64) -> Result<u64, JournalError> {
        let count: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM events WHERE id > ?1")
            .and_then(|mut select| select.query_row([after], |r| r.get(0)))
            .map_err(|e| classify(&self.path, e))?;
        Ok(count.unsigned_abs())
    }

    /// The id of the last event known shipped (0: none yet).
    pub fn shipped_through(&self) -> Result<i64, JournalError> {
        if !self.knows(6)? {
            return Ok(0);
        }
        let mark: Option<i64> = self
            .conn
            .prepare_cached("SELECT shipped_through FROM shipping")
            .and_then(|mut select| select.query_row([], |r| r.get(0)).optional())
            .map_err(|e| classify(&self.path, e))?;
        Ok(mark.unwrap_or(0))
    }

    /// Records that every event up to `through` is committed in the store.
    /// The mark only moves forward: two shippers (the till and a cron
    /// `scanpay sync`) finishing out of order cannot set it back.
    pub fn mark_shipped(&mut self, through: i64) -> Result<(), JournalError> {
        self.me()?;
        execute(
            &self.conn,
            "INSERT INTO shipping (only, shipped_through, shipped_at_ms) VALUES (1, ?1, ?2) \
             ON CONFLICT (only) DO UPDATE SET shipped_through = max(shipped_through, excluded.shipped_through), \
             shipped_at_ms = excluded.shipped_at_ms",
            params![through, unix_ms(OffsetDateTime::now_utc())],
        )
        .map(drop)
        .map_err(|e| classify(&self.path, e))
    }
}
