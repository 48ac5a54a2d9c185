//! Refunds of paid orders: each with its out_refund_no, minted and committed
//! before anything is sent, and driven — like an order — by one live owner.

use std::path::Path;

use rusqlite::{OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::error::classify;
use super::owner;
use super::store::{Checked, begin, execute, parsed, signed, unix_ms, unsigned};
use super::{EventRecord, Journal, JournalError, OrderId, OrderRow, OrderState};
use crate::domain::Fen;

/// WeChat takes at most this many refunds of one order.
pub const MAX_REFUNDS_PER_ORDER: usize = 50;

/// WeChat refunds an order within a year of its payment.
pub const REFUND_WITHIN_MS: i64 = 365 * 24 * 60 * 60 * 1000;

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundState {
    /// Being sent or confirmed by its owner.
    Pending,
    /// Accepted, still processing at the last query: replay follows it up.
    Processing,
    /// Every attempt unclear: replay follows it up with the same number.
    Unclear,
    Refunded,
    /// WeChat refused it: no money moved under this number.
    Refused,
    /// REFUNDCLOSE: closed without paying out.
    Closed,
    /// CHANGE: the customer's card could not take it; settled on the merchant platform.
    Change,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Unclear => "unclear",
            Self::Refunded => "refunded",
            Self::Refused => "refused",
            Self::Closed => "closed",
            Self::Change => "change",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "unclear" => Self::Unclear,
            "refunded" => Self::Refunded,
            "refused" => Self::Refused,
            "closed" => Self::Closed,
            "change" => Self::Change,
            _ => return None,
        })
    }

    /// Money may have gone, or will go, back to the customer: it counts
    /// against what remains refundable.
    pub fn holds_money(self) -> bool {
        !matches!(self, Self::Refused | Self::Closed)
    }

    /// Still to be followed up by replay.
    pub fn unresolved(self) -> bool {
        matches!(self, Self::Pending | Self::Processing | Self::Unclear)
    }
}

/// A refund as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub id: i64,
    pub order_id: OrderId,
    pub out_refund_no: String,
    pub refund_fee: Fen,
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub state: RefundState,
    pub refund_id: Option<String>,
    pub err_code: Option<String>,
    pub message: Option<String>,
}

/// How a refund run ended, for [`Journal::finish_refund`].
#[derive(Debug, Clone)]
pub struct RefundEnd {
    pub state: RefundState,
    pub refund_id: Option<String>,
    pub err_code: Option<String>,
    pub message: Option<String>,
    pub at: OffsetDateTime,
}

/// Why a refund cannot be opened; each says what is possible instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    #[error("order {0} is {1}, not paid: only a paid order can be refunded")]
    NotPaid(String, OrderState),
    #[error(
        "order {0} was paid more than a year ago: WeChat refunds only within a year; settle it with the customer another way"
    )]
    TooOld(String),
    #[error(
        "order {no} has ¥{remaining} left to refund (¥{total} paid, ¥{used} refunded or being refunded); ask for at most that"
    )]
    TooMuch {
        no: String,
        total: Fen,
        used: Fen,
        remaining: Fen,
    },
    #[error(
        "order {0} has had {MAX_REFUNDS_PER_ORDER} refunds, WeChat's limit: refund the rest on the merchant platform"
    )]
    TooMany(String),
}

/// What an order's refunds add up to: the export's `refunded`, what remains
/// refundable, and how many of WeChat's 50 are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefundTotals {
    /// Refunds of any state: each used one of the order's 50.
    pub count: usize,
    /// Confirmed by WeChat (state refunded): money back with the customer.
    pub refunded: Fen,
    /// Every refund that holds money ([`RefundState::holds_money`]): the
    /// refunded ones and those not yet decided, or settled by hand (CHANGE).
    pub held: Fen,
}

impl RefundTotals {
    pub fn of(refunds: &[RefundRow]) -> Self {
        let mut totals = Self::default();
        for refund in refunds {
            totals.add(refund.state, refund.refund_fee);
        }
        totals
    }

    pub(super) fn add(&mut self, state: RefundState, fee: Fen) {
        self.add_many(state, 1, fee);
    }

    /// `count` refunds of `state` together worth `total`.
    pub(crate) fn add_many(&mut self, state: RefundState, count: usize, total: Fen) {
        self.count += count;
        if state == RefundState::Refunded {
            self.refunded.0 += total.0;
        }
        if state.holds_money() {
            self.held.0 += total.0;
        }
    }

    /// What is still refundable of an order of `total`.
    pub fn remaining(&self, total: Fen) -> Fen {
        Fen(total.0.saturating_sub(self.held.0))
    }

    /// Held but not (yet) confirmed: pending, processing, unclear or CHANGE.
    pub fn unconfirmed(&self) -> Fen {
        Fen(self.held.0.saturating_sub(self.refunded.0))
    }
}

/// Whether `order`, whose refunds add up to `totals`, can be refunded at all
/// at `now_ms`: paid, within a year, something left and fewer than 50
/// refunds. Returns what remains refundable. The checks of `scanpay refund`
/// and of the journal screen, and again of [`Journal::open_refund`] inside
/// its transaction.
pub fn refundable(
    order: &OrderRow,
    totals: &RefundTotals,
    now_ms: i64,
) -> Result<Fen, RefundRefusal> {
    let no = || order.out_trade_no.to_string();
    if order.state != OrderState::Paid {
        return Err(RefundRefusal::NotPaid(no(), order.state));
    }
    if now_ms.saturating_sub(order.created_at_ms) > REFUND_WITHIN_MS {
        return Err(RefundRefusal::TooOld(no()));
    }
    if totals.count >= MAX_REFUNDS_PER_ORDER {
        return Err(RefundRefusal::TooMany(no()));
    }
    let remaining = totals.remaining(order.total_fee);
    if remaining.0 == 0 {
        return Err(too_much(order, totals));
    }
    Ok(remaining)
}

/// [`refundable`], and `amount` within what remains.
pub fn check_refund(
    order: &OrderRow,
    totals: &RefundTotals,
    amount: Fen,
    now_ms: i64,
) -> Result<(), RefundRefusal> {
    let remaining = refundable(order, totals, now_ms)?;
    if amount.0 == 0 || amount > remaining {
        return Err(too_much(order, totals));
    }
    Ok(())
}

fn too_much(order: &OrderRow, totals: &RefundTotals) -> RefundRefusal {
    RefundRefusal::TooMuch {
        no: order.out_trade_no.to_string(),
        total: order.total_fee,
        used: totals.held,
        remaining: totals.remaining(order.total_fee),
    }
}

pub(super) const SELECT_REFUNDS: &str = "SELECT id, order_id, out_refund_no, refund_fee, reason, created_at_ms, state, refund_id, err_code, message FROM refunds";

pub(super) fn refund_row(row: &Row) -> rusqlite::Result<RefundRow> {
    Ok(RefundRow {
        id: row.get(0)?,
        order_id: OrderId(row.get(1)?),
        out_refund_no: row.get(2)?,
        refund_fee: Fen(unsigned(3, row.get(3)?)?),
        reason: row.get(4)?,
        created_at_ms: row.get(5)?,
        state: parsed(row, 6, RefundState::parse)?,
        refund_id: row.get(7)?,
        err_code: row.get(8)?,
        message: row.get(9)?,
    })
}

/// What a claim of a refund found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundClaim {
    Claimed,
    Live { owner: String },
    Finished(RefundState),
}

impl Journal {
    /// Whether this journal has the refunds table (schema version 4): a
    /// read-only connection to an older journal has none, and no refunds.
    pub(super) fn knows_refunds(&self) -> Result<bool, JournalError> {
        self.knows(4)
    }

    /// The refunds of `order`, oldest first.
    pub fn refunds_of(&self, order: OrderId) -> Result<Vec<RefundRow>, JournalError> {
        if !self.knows_refunds()? {
            return Ok(Vec::new());
        }
        self.rows(
            &format!("{SELECT_REFUNDS} WHERE order_id = ?1 ORDER BY id"),
            [order.0],
            refund_row,
        )
    }

    /// Refunds not yet decided by WeChat, oldest first: what replay follows up.
    pub fn unresolved_refunds(&self) -> Result<Vec<RefundRow>, JournalError> {
        self.rows(
            &format!(
                "{SELECT_REFUNDS} WHERE state IN ('pending', 'processing', 'unclear') ORDER BY created_at_ms, id"
            ),
            [],
            refund_row,
        )
    }

    /// Mints the refund's out_refund_no (`<out_trade_no>R<nn>`, unique because
    /// the order number is) and commits it with the amount, owned by this
    /// process, before anything is sent. The order's paid amount, what its
    /// earlier refunds hold and WeChat's 50-refund limit are checked in the
    /// same transaction, so two refunds at once cannot overdraw it.
    pub fn open_refund(
        &mut self,
        order: &OrderRow,
        refund_fee: Fen,
        reason: Option<&str>,
        event: impl FnOnce(&str) -> EventRecord,
        now: OffsetDateTime,
    ) -> Result<Result<RefundRow, RefundRefusal>, JournalError> {
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        let state: String = tx
            .query_row(
                "SELECT state FROM orders WHERE id = ?1",
                [order.id.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(db)?
            .ok_or(JournalError::UnknownOrder(order.id.0))?;
        let state = OrderState::parse(&state).unwrap_or(OrderState::Open);
        let earlier: Vec<(i64, String)> = tx
            .prepare("SELECT refund_fee, state FROM refunds WHERE order_id = ?1")
            .and_then(|mut select| {
                select
                    .query_map([order.id.0], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(db)?;
        let mut totals = RefundTotals::default();
        for (fee, state) in &earlier {
            // An unreadable state holds money: never refund beyond the order.
            let state = RefundState::parse(state).unwrap_or(RefundState::Unclear);
            totals.add(state, Fen(fee.unsigned_abs()));
        }
        let fresh = OrderRow {
            state,
            ..order.clone()
        };
        if let Err(refusal) = check_refund(&fresh, &totals, refund_fee, unix_ms(now)) {
            return Ok(Err(refusal));
        }
        let no = order.out_trade_no.to_string();
        let out_refund_no = format!("{no}R{:02}", earlier.len() + 1);
        let record = event(&out_refund_no);
        let checked = Checked::new(&record)?;
        let id: i64 = tx
            .query_row(
                "INSERT INTO refunds (order_id, out_refund_no, refund_fee, reason, created_at_ms, state, owner) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6) RETURNING id",
                params![order.id.0, out_refund_no, signed(refund_fee.0).map_err(db)?, reason, unix_ms(now), me],
                |r| r.get(0),
            )
            .map_err(db)?;
        checked.insert(&tx, order.id).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Ok(RefundRow {
            id,
            order_id: order.id,
            out_refund_no,
            refund_fee,
            reason: reason.map(str::to_string),
            created_at_ms: unix_ms(now),
            state: RefundState::Pending,
            refund_id: None,
            err_code: None,
            message: None,
        }))
    }

    /// Takes a refund over if nobody live drives it (see [`Journal::claim`]).
    pub fn claim_refund(&mut self, refund: i64) -> Result<RefundClaim, JournalError> {
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        let (state, owner): (String, Option<String>) = tx
            .query_row(
                "SELECT state, owner FROM refunds WHERE id = ?1",
                [refund],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db)?;
        let state = RefundState::parse(&state).unwrap_or(RefundState::Unclear);
        if !state.unresolved() {
            return Ok(RefundClaim::Finished(state));
        }
        match owner {
            Some(owner) if owner == me => return Ok(RefundClaim::Claimed),
            Some(owner) if owner::is_alive(&self.path, &owner) => {
                return Ok(RefundClaim::Live { owner });
            }
            _ => {}
        }
        execute(
            &tx,
            "UPDATE refunds SET owner = ?2, state = 'pending' WHERE id = ?1",
            params![refund, me],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(RefundClaim::Claimed)
    }

    /// Appends an event of a refund this process drives to its order's log.
    pub fn append_refund_event(
        &mut self,
        refund: &RefundRow,
        event: &EventRecord,
    ) -> Result<(), JournalError> {
        let checked = Checked::new(event)?;
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        check_refund_owner(&self.path, &me, &tx, refund)?;
        checked.insert(&tx, refund.order_id).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Records where the refund ended up, with its event; the refund has no
    /// driver afterwards (replay may take one left processing or unclear).
    pub fn finish_refund(
        &mut self,
        refund: &RefundRow,
        end: &RefundEnd,
        event: &EventRecord,
    ) -> Result<(), JournalError> {
        let checked = Checked::new(event)?;
        let me = self.me()?.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        check_refund_owner(&self.path, &me, &tx, refund)?;
        execute(
            &tx,
            "UPDATE refunds SET state = ?2, finished_at_ms = ?3, refund_id = coalesce(?4, refund_id), \
             err_code = ?5, message = ?6, owner = NULL WHERE id = ?1",
            params![
                refund.id,
                end.state.as_str(),
                unix_ms(end.at),
                end.refund_id,
                end.err_code,
                end.message
            ],
        )
        .map_err(db)?;
        checked.insert(&tx, refund.order_id).map_err(db)?;
        tx.commit().map_err(db)
    }
}

/// Refuses a write about a refund this process does not drive.
fn check_refund_owner(
    path: &Path,
    me: &str,
    tx: &rusqlite::Connection,
    refund: &RefundRow,
) -> Result<(), JournalError> {
    let owner: Option<String> = tx
        .query_row(
            "SELECT owner FROM refunds WHERE id = ?1",
            [refund.id],
            |r| r.get(0),
        )
        .map_err(|e| classify(path, e))?;
    match owner {
        Some(owner) if owner == me => Ok(()),
        owner => Err(JournalError::Taken {
            out_trade_no: refund.out_refund_no.clone(),
            owner: owner.unwrap_or_else(|| "none: it was finished".into()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TillId;
    use crate::journal::{FinalRecord, NewOrder};
    use crate::payment::Event;

    fn paid_order(journal: &mut Journal) -> OrderRow {
        let till = TillId::parse("T01").unwrap();
        let now = OffsetDateTime::now_utc();
        let new = NewOrder {
            till: &till,
            total_fee: Fen(1000),
            body: "Coffee",
            auth_code_masked: "**************6076".into(),
            now,
            local_offset: time::UtcOffset::UTC,
        };
        let (id, no) = journal.open_order(&new).unwrap();
        let finished = EventRecord {
            at: now,
            since_t0_ms: None,
            summary: "paid".into(),
            event: Event::Finished {
                state: "paid".into(),
                err_code: None,
                transaction_id: Some("4200000001".into()),
            },
        };
        let record = FinalRecord {
            state: OrderState::Paid,
            transaction_id: Some("4200000001".into()),
            err_code: None,
            message: None,
            at: now,
        };
        journal.finish(id, &record, &finished).unwrap();
        journal.order_by_trade_no(no.as_str()).unwrap().unwrap()
    }

    fn open(journal: &mut Journal, order: &OrderRow, fen: u64) -> Result<RefundRow, RefundRefusal> {
        journal
            .open_refund(
                order,
                Fen(fen),
                Some("退货"),
                |no| EventRecord {
                    at: OffsetDateTime::now_utc(),
                    since_t0_ms: None,
                    summary: format!("refund {no} opened"),
                    event: Event::RefundOpened {
                        out_refund_no: no.into(),
                        refund_fee: fen,
                        reason: None,
                    },
                },
                OffsetDateTime::now_utc(),
            )
            .unwrap()
    }

    #[test]
    fn refunds_never_exceed_the_order_and_each_has_its_own_number() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.sqlite3")).unwrap();
        let order = paid_order(&mut journal);
        let first = open(&mut journal, &order, 600).unwrap();
        assert_eq!(first.out_refund_no, format!("{}R01", order.out_trade_no));
        assert!(matches!(
            open(&mut journal, &order, 401),
            Err(RefundRefusal::TooMuch {
                remaining: Fen(400),
                ..
            })
        ));
        // A refused refund gives its amount back to what remains.
        let end = RefundEnd {
            state: RefundState::Refused,
            refund_id: None,
            err_code: Some("NOTENOUGH".into()),
            message: None,
            at: OffsetDateTime::now_utc(),
        };
        let note = EventRecord {
            at: end.at,
            since_t0_ms: None,
            summary: "refused".into(),
            event: Event::Note {
                text: "refused".into(),
            },
        };
        journal.finish_refund(&first, &end, &note).unwrap();
        let second = open(&mut journal, &order, 1000).unwrap();
        assert_eq!(second.out_refund_no, format!("{}R02", order.out_trade_no));
        // Finished, the refund has no driver: writing about it again is refused.
        assert!(matches!(
            journal.append_refund_event(&first, &note),
            Err(JournalError::Taken { .. })
        ));
        assert_eq!(journal.refunds_of(order.id).unwrap().len(), 2);
        assert_eq!(journal.unresolved_refunds().unwrap(), [second]);
    }

    #[test]
    fn only_a_paid_order_is_refunded_and_at_most_fifty_times() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(&dir.path().join("j.sqlite3")).unwrap();
        let order = paid_order(&mut journal);
        for _ in 0..MAX_REFUNDS_PER_ORDER {
            open(&mut journal, &order, 1).unwrap();
        }
        assert!(matches!(
            open(&mut journal, &order, 1),
            Err(RefundRefusal::TooMany(_))
        ));
        let till = TillId::parse("T01").unwrap();
        let (id, no) = journal
            .open_order(&NewOrder {
                till: &till,
                total_fee: Fen(1000),
                body: "Tea",
                auth_code_masked: "**************6076".into(),
                now: OffsetDateTime::now_utc(),
                local_offset: time::UtcOffset::UTC,
            })
            .unwrap();
        let open_order = journal.order_by_id(id).unwrap().unwrap();
        assert_eq!(open_order.out_trade_no, no);
        assert!(matches!(
            open(&mut journal, &open_order, 1),
            Err(RefundRefusal::NotPaid(_, OrderState::Open))
        ));
    }
}
