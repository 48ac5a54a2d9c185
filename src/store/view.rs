//! The store's days over every till, read from the store database only
//! (`scanpay store`): nothing is written, no migration is run.
//!
//! Every read here is one read-only snapshot (repeatable read), so a day's
//! list, its totals and its per-till lines agree with each other even while
//! tills ship. The rows come back as the journal's own types, [`OrderRow`]
//! and [`EventRow`], so the journal's screen and export show the store too;
//! their ids are the store's (see schema step 2), not any journal's.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use time::{Date, UtcOffset};
use tokio_postgres::{Row, Transaction};

use super::{Store, StoreError, failed};
use crate::domain::{Fen, OutTradeNo, TillId};
use crate::journal::{
    DayReport, DaySummary, EventKind, EventRow, OrderId, OrderRefunds, OrderRow, OrderState,
    RefundRow, RefundState, day_bounds,
};
use crate::payment::Event;
use crate::reconcile::JournalDay;
use crate::reconcile::read::{self, Held, HeldRefund};
use crate::wechat::bill::Bill;

/// One till's day, or the store's total.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TillDay {
    /// `till.id`; `"total"` for the store's line.
    pub till_id: String,
    /// The journal's installation id; empty on the total.
    pub installation_id: String,
    /// Orders created that day, in any state.
    pub orders: u64,
    pub paid: u64,
    /// Fen paid that day.
    #[serde(rename = "takings_fen")]
    pub takings: i64,
    /// Orders of the day still open or needing a person.
    pub unsettled: u64,
    /// Refunds issued (confirmed) that day, of orders of any day.
    pub refunds: u64,
    /// Fen refunded that day.
    #[serde(rename = "refunded_fen")]
    pub refunded: i64,
    /// The store's high-water mark for this till (events in the store);
    /// 0 on the total.
    pub shipped_through: i64,
}

/// The day over the whole store: each till that ever shipped, then the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreDay {
    pub date: String,
    pub tills: Vec<TillDay>,
    pub total: TillDay,
}

impl StoreDay {
    /// The day of `tills`, with their total.
    pub fn of(date: String, tills: Vec<TillDay>) -> Self {
        let mut total = TillDay {
            till_id: "total".into(),
            ..TillDay::default()
        };
        for t in &tills {
            total.orders += t.orders;
            total.paid += t.paid;
            total.takings += t.takings;
            total.unsettled += t.unsettled;
            total.refunds += t.refunds;
            total.refunded += t.refunded;
        }
        Self { date, tills, total }
    }
}

/// What the store's screen shows of a day: the journal screen's report over
/// every till, and a line per till.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDayReport {
    pub report: DayReport,
    pub tills: StoreDay,
}

const DAY_BY_TILL: &str = "\
    SELECT t.installation_id, t.till_id, t.shipped_through, \
      coalesce(o.orders, 0), coalesce(o.paid, 0), coalesce(o.takings, 0), coalesce(o.unsettled, 0), \
      coalesce(r.refunds, 0), coalesce(r.refunded, 0) \
    FROM tills t \
    LEFT JOIN (SELECT installation_id, count(*) AS orders, \
                 count(*) FILTER (WHERE state = 'paid') AS paid, \
                 sum(total_fee) FILTER (WHERE state = 'paid')::bigint AS takings, \
                 count(*) FILTER (WHERE state IN ('open', 'needs_attention')) AS unsettled \
               FROM orders WHERE created_at_ms >= $1 AND created_at_ms < $2 GROUP BY installation_id) o \
      ON o.installation_id = t.installation_id \
    LEFT JOIN (SELECT installation_id, count(*) AS refunds, sum(refund_fee)::bigint AS refunded \
               FROM refunds WHERE state = 'refunded' AND created_at_ms >= $1 AND created_at_ms < $2 \
               GROUP BY installation_id) r \
      ON r.installation_id = t.installation_id \
    ORDER BY t.till_id, t.installation_id";

/// An order as [`order_row`] reads it.
pub(super) const ORDER_COLUMNS: &str = "o.id, o.out_trade_no, o.till_id, o.total_fee, o.body, \
    o.auth_code_masked, o.created_at_ms, o.micropay_sent_at_ms, o.state, o.finished_at_ms, \
    o.transaction_id, o.err_code, o.message";

/// A refund as [`refund_row`] reads it, from `refunds r` joined to its order
/// `orders o` on (mch_id, out_trade_no): `order_id` is the store's orders.id.
pub(super) const REFUND_COLUMNS: &str = "r.id, o.id, r.out_refund_no, r.refund_fee, r.reason, \
    r.created_at_ms, r.state, r.refund_id, r.err_code, r.message";

/// The till ids of merchant `$1`'s installations.
const MERCHANT_TILLS: &str = "SELECT DISTINCT till_id FROM tills WHERE mch_id = $1";

/// Merchant `$1`'s orders meeting `condition` (on `o`, with `$2` and on), oldest first.
fn merchant_orders_sql(condition: &str) -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM orders o \
         WHERE o.mch_id = $1 AND {condition} ORDER BY o.created_at_ms, o.id"
    )
}

/// Merchant `$1`'s refunds meeting `condition` (on `r`), oldest first, each
/// with its order's till and number (a refund without its order in the store
/// is no till's, as in a journal).
fn merchant_refunds_sql(condition: &str) -> String {
    format!(
        "SELECT {REFUND_COLUMNS}, o.till_id, o.out_trade_no \
         FROM refunds r JOIN orders o ON o.mch_id = r.mch_id AND o.out_trade_no = r.out_trade_no \
         WHERE r.mch_id = $1 AND {condition} ORDER BY r.created_at_ms, r.id"
    )
}

/// Orders created in `[$1, $2)` of every till, oldest first.
fn orders_between_sql() -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM orders o \
         WHERE o.created_at_ms >= $1 AND o.created_at_ms < $2 ORDER BY o.created_at_ms, o.id"
    )
}

/// The refunds of the orders created in `[$1, $2)`, per order and state.
const REFUNDS_OF_ORDERS_BETWEEN: &str = "\
    SELECT o.id, r.state, count(*), sum(r.refund_fee)::bigint \
    FROM orders o JOIN refunds r ON r.mch_id = o.mch_id AND r.out_trade_no = o.out_trade_no \
    WHERE o.created_at_ms >= $1 AND o.created_at_ms < $2 GROUP BY o.id, r.state";

/// The refunds opened in `[$1, $2)`, of orders of any day, per state.
const REFUNDS_BETWEEN: &str = "\
    SELECT state, count(*), sum(refund_fee)::bigint FROM refunds \
    WHERE created_at_ms >= $1 AND created_at_ms < $2 GROUP BY state";

/// One order's events, oldest first, from the till that made it.
const TIMELINE: &str = "\
    SELECT e.event_id, e.at_ms, e.since_t0_ms, e.kind, e.call, e.summary, e.detail::text \
    FROM orders o JOIN events e ON e.installation_id = o.installation_id AND e.out_trade_no = o.out_trade_no \
    WHERE o.id = $1 ORDER BY e.event_id";

impl Store {
    /// A read-only snapshot: everything read in it is of one moment.
    async fn snapshot(&mut self) -> Result<Transaction<'_>, StoreError> {
        let target = self.target.clone();
        self.client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(|e| failed(&target, &e))
    }

    /// The local `day` (at `offset`) of every till, per till and in total.
    pub async fn day(&mut self, day: Date, offset: UtcOffset) -> Result<StoreDay, StoreError> {
        let target = self.target.clone();
        let tx = self.snapshot().await?;
        tills_day(&tx, &target, day, offset).await
    }

    /// The store screen's `day`: every till's orders, their summary and
    /// refunds, and the per-till lines, in one snapshot.
    pub async fn day_report(
        &mut self,
        day: Date,
        offset: UtcOffset,
    ) -> Result<StoreDayReport, StoreError> {
        let target = self.target.clone();
        let tx = self.snapshot().await?;
        let (from, to) = day_bounds(day, offset);
        let (orders, refunds) = orders_between(&tx, &target, from, to).await?;
        let mut summary = DaySummary::of_orders(&orders, from);
        for row in query(&tx, &target, REFUNDS_BETWEEN, from, to).await? {
            let state = parse(&row, 0, RefundState::parse)?;
            summary.add_refunds(state, count(&row, 1)?, fen(&row, 2)?);
        }
        let tills = tills_day(&tx, &target, day, offset).await?;
        Ok(StoreDayReport {
            report: DayReport {
                day,
                orders,
                summary,
                refunds,
            },
            tills,
        })
    }

    /// Every till's orders created in `[from_ms, to_ms)`, oldest first, and
    /// what their refunds add up to: a piece of `scanpay store`'s export.
    pub async fn orders_between(
        &mut self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<(Vec<OrderRow>, OrderRefunds), StoreError> {
        let target = self.target.clone();
        let tx = self.snapshot().await?;
        orders_between(&tx, &target, from_ms, to_ms).await
    }

    /// The store's side of merchant `mch_id`'s bill of `date` for each of its
    /// tills, by till id: what `reconcile::read::journal_day` reads from that
    /// till's journal, from the store's copy of every journal, in one
    /// snapshot. The tills are those the store lists for the merchant and any
    /// other id its orders carry (a till whose `till.id` was changed shipped
    /// its older orders under the id they were paid with, which the bill has).
    pub async fn bill_day(
        &mut self,
        mch_id: &str,
        date: Date,
        bill: &Bill,
    ) -> Result<BTreeMap<String, JournalDay>, StoreError> {
        let target = self.target.clone();
        let tx = self.snapshot().await?;
        let bounds = read::bill_day(date);
        let (from, to) = read::window(bounds);
        // Every number the bill names, whichever till: `till_day` keeps a
        // till's own.
        let order_nos: Vec<&str> = bill.rows.iter().map(|r| r.out_trade_no.as_str()).collect();
        let refund_nos: Vec<&str> = bill
            .rows
            .iter()
            .filter_map(|r| r.out_refund_no.as_deref())
            .collect();
        let in_window = "o.created_at_ms >= $2 AND o.created_at_ms < $3";
        let orders = run(
            &tx,
            &target,
            &merchant_orders_sql(in_window),
            &[&mch_id, &from, &to],
        )
        .await?;
        // The window's rows are held already: only the numbers outside it.
        let named_orders = run(
            &tx,
            &target,
            &merchant_orders_sql(
                "o.out_trade_no = ANY($2) AND NOT (o.created_at_ms >= $3 AND o.created_at_ms < $4)",
            ),
            &[&mch_id, &order_nos, &from, &to],
        )
        .await?;
        let in_window = "r.created_at_ms >= $2 AND r.created_at_ms < $3";
        let refunds = run(
            &tx,
            &target,
            &merchant_refunds_sql(in_window),
            &[&mch_id, &from, &to],
        )
        .await?;
        let named_refunds = run(
            &tx,
            &target,
            &merchant_refunds_sql(
                "r.out_refund_no = ANY($2) AND NOT (r.created_at_ms >= $3 AND r.created_at_ms < $4)",
            ),
            &[&mch_id, &refund_nos, &from, &to],
        )
        .await?;
        let tills = run(&tx, &target, MERCHANT_TILLS, &[&mch_id]).await?;
        let held = Held {
            orders: orders.iter().map(order_row).collect::<Result<_, _>>()?,
            named_orders: named_orders
                .iter()
                .map(order_row)
                .collect::<Result<_, _>>()?,
            refunds: refunds.iter().map(held_refund).collect::<Result<_, _>>()?,
            named_refunds: named_refunds
                .iter()
                .map(held_refund)
                .collect::<Result<_, _>>()?,
        };
        let mut till_ids: BTreeSet<String> =
            tills.iter().map(|r| get(r, 0)).collect::<Result<_, _>>()?;
        till_ids.extend(
            held.orders
                .iter()
                .chain(&held.named_orders)
                .map(|o| o.till_id.to_string()),
        );
        Ok(till_ids
            .into_iter()
            .map(|till| {
                let day = read::till_day(bounds, &till, &read::named(bill, &till), &held);
                (till, day)
            })
            .collect())
    }

    /// One order's events, oldest first (`order` is a store id from
    /// [`Store::day_report`]); empty for an order the store does not have.
    pub async fn timeline(&mut self, order: OrderId) -> Result<Vec<EventRow>, StoreError> {
        let target = self.target.clone();
        let rows = self
            .client
            .query(TIMELINE, &[&order.0])
            .await
            .map_err(|e| failed(&target, &e))?;
        rows.iter().map(|row| event_row(row, order)).collect()
    }
}

async fn tills_day(
    tx: &Transaction<'_>,
    target: &str,
    day: Date,
    offset: UtcOffset,
) -> Result<StoreDay, StoreError> {
    let (from, to) = day_bounds(day, offset);
    let rows = query(tx, target, DAY_BY_TILL, from, to).await?;
    let tills = rows
        .iter()
        .map(|r| {
            Ok(TillDay {
                installation_id: get(r, 0)?,
                till_id: get(r, 1)?,
                shipped_through: get(r, 2)?,
                orders: count(r, 3)?,
                paid: count(r, 4)?,
                takings: get(r, 5)?,
                unsettled: count(r, 6)?,
                refunds: count(r, 7)?,
                refunded: get(r, 8)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(StoreDay::of(day.to_string(), tills))
}

async fn orders_between(
    tx: &Transaction<'_>,
    target: &str,
    from: i64,
    to: i64,
) -> Result<(Vec<OrderRow>, OrderRefunds), StoreError> {
    let orders = query(tx, target, &orders_between_sql(), from, to)
        .await?
        .iter()
        .map(order_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut refunds = OrderRefunds::default();
    for row in query(tx, target, REFUNDS_OF_ORDERS_BETWEEN, from, to).await? {
        let state = parse(&row, 1, RefundState::parse)?;
        refunds.add(
            OrderId(get(&row, 0)?),
            state,
            count(&row, 2)?,
            fen(&row, 3)?,
        );
    }
    Ok((orders, refunds))
}

/// Runs `sql` over the range `[from, to)`.
async fn query(
    tx: &Transaction<'_>,
    target: &str,
    sql: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Row>, StoreError> {
    run(tx, target, sql, &[&from, &to]).await
}

/// Runs `sql` with `params`.
async fn run(
    tx: &Transaction<'_>,
    target: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    tx.query(sql, params).await.map_err(|e| failed(target, &e))
}

/// An order read with [`ORDER_COLUMNS`].
pub(super) fn order_row(r: &Row) -> Result<OrderRow, StoreError> {
    Ok(OrderRow {
        id: OrderId(get(r, 0)?),
        out_trade_no: parse(r, 1, |s| OutTradeNo::parse(s).ok())?,
        till_id: parse(r, 2, |s| TillId::parse(s).ok())?,
        total_fee: fen(r, 3)?,
        body: get(r, 4)?,
        auth_code_masked: get(r, 5)?,
        created_at_ms: get(r, 6)?,
        micropay_sent_at_ms: get(r, 7)?,
        state: parse(r, 8, OrderState::parse)?,
        finished_at_ms: get(r, 9)?,
        transaction_id: get(r, 10)?,
        err_code: get(r, 11)?,
        message: get(r, 12)?,
    })
}

/// A refund read with [`REFUND_COLUMNS`].
pub(super) fn refund_row(r: &Row) -> Result<RefundRow, StoreError> {
    Ok(RefundRow {
        id: get(r, 0)?,
        order_id: OrderId(get(r, 1)?),
        out_refund_no: get(r, 2)?,
        refund_fee: fen(r, 3)?,
        reason: get(r, 4)?,
        created_at_ms: get(r, 5)?,
        state: parse(r, 6, RefundState::parse)?,
        refund_id: get(r, 7)?,
        err_code: get(r, 8)?,
        message: get(r, 9)?,
    })
}

/// A refund read with [`REFUND_COLUMNS`], then its order's till and number.
fn held_refund(r: &Row) -> Result<HeldRefund, StoreError> {
    Ok(HeldRefund {
        refund: refund_row(r)?,
        till_id: get(r, 10)?,
        out_trade_no: get(r, 11)?,
    })
}

fn event_row(r: &Row, order: OrderId) -> Result<EventRow, StoreError> {
    let kind: String = get(r, 3)?;
    let call: Option<String> = get(r, 4)?;
    let summary: String = get(r, 5)?;
    let detail: serde_json::Value = parse(r, 6, |s| serde_json::from_str(s).ok())?;
    let since: Option<i64> = get(r, 2)?;
    Ok(EventRow {
        id: get(r, 0)?,
        order_id: order,
        at_ms: get(r, 1)?,
        since_t0_ms: since.and_then(|ms| u64::try_from(ms).ok()),
        kind: parse(r, 3, EventKind::parse)?,
        event: Event::from_stored(&kind, call.as_deref(), &summary, &detail),
        call,
        summary,
    })
}

/// A column of the type it must have; a store that holds something else was
/// changed by hand, and says so rather than showing a wrong figure.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, idx: usize) -> Result<T, StoreError> {
    r.try_get(idx).map_err(|e| StoreError::Unreadable {
        what: format!("column {} ({e})", column(r, idx)),
    })
}

/// A text column through a validating parser.
fn parse<T>(r: &Row, idx: usize, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, StoreError> {
    let text: String = get(r, idx)?;
    parse(&text).ok_or_else(|| StoreError::Unreadable {
        what: format!("column {} holds {text:?}", column(r, idx)),
    })
}

/// A count or an amount in fen, never below zero.
fn count(r: &Row, idx: usize) -> Result<u64, StoreError> {
    let n: i64 = get(r, idx)?;
    u64::try_from(n).map_err(|_| StoreError::Unreadable {
        what: format!("column {} holds {n}", column(r, idx)),
    })
}

fn fen(r: &Row, idx: usize) -> Result<Fen, StoreError> {
    count(r, idx).map(Fen)
}

fn column(r: &Row, idx: usize) -> &str {
    r.columns().get(idx).map_or("?", |c| c.name())
}
