//! The store's day over every till, read from the store database only
//! (`scanpay store`): nothing is written, no migration is run.

use serde::Serialize;

use super::{Store, StoreError};

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

impl Store {
    /// The day `[from_ms, to_ms)` of every till, in one snapshot.
    pub async fn day(
        &mut self,
        date: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<StoreDay, StoreError> {
        let tx = self
            .client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await
            .map_err(|e| StoreError::Database {
                target: self.target.clone(),
                cause: super::cause(&e),
            })?;
        let rows = tx.query(DAY_BY_TILL, &[&from_ms, &to_ms]).await;
        let rows = rows.map_err(|e| StoreError::Database {
            target: self.target.clone(),
            cause: super::cause(&e),
        })?;
        let count = |n: i64| n.unsigned_abs();
        let tills: Vec<TillDay> = rows
            .iter()
            .map(|r| TillDay {
                installation_id: r.get(0),
                till_id: r.get(1),
                shipped_through: r.get(2),
                orders: count(r.get(3)),
                paid: count(r.get(4)),
                takings: r.get(5),
                unsettled: count(r.get(6)),
                refunds: count(r.get(7)),
                refunded: r.get(8),
            })
            .collect();
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
        Ok(StoreDay {
            date: date.into(),
            tills,
            total,
        })
    }
}
