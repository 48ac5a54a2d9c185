//! What `scanpay reconcile` reads and records: the refunds of a span of
//! time, and each reconciliation of a day against WeChat's bill (下载交易账单)
//! with its result; the journal screen shows the newest one of its day.

use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::error::classify;
use super::refunds::{SELECT_REFUNDS, refund_row};
use super::store::{Checked, begin, execute, signed, unix_ms, unsigned};
use super::{EventRecord, Journal, JournalError, OrderId, RefundRow};

/// Where the reconciled bill came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillSource {
    /// Asked of WeChat (`/pay/downloadbill`).
    Downloaded,
    /// A file saved from the merchant platform (`--bill FILE`).
    File,
}

impl BillSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Downloaded => "downloaded",
            Self::File => "file",
        }
    }
}

/// A reconciliation to record.
#[derive(Debug, Clone)]
pub struct NewReconciliation {
    /// The bill's day, YYYY-MM-DD (Beijing time).
    pub bill_date: String,
    pub at: OffsetDateTime,
    pub source: BillSource,
    pub matched: u64,
    pub discrepancies: u64,
    /// The report as `scanpay reconcile --json` prints it.
    pub result: serde_json::Value,
}

/// A recorded reconciliation, as the journal screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciliationRow {
    pub bill_date: String,
    pub at_ms: i64,
    pub source: String,
    pub matched: u64,
    pub discrepancies: u64,
}

impl Journal {
    /// Refunds opened in `[from_ms, to_ms)`, oldest first.
    pub fn refunds_between(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RefundRow>, JournalError> {
        self.rows(
            &format!(
                "{SELECT_REFUNDS} WHERE created_at_ms >= ?1 AND created_at_ms < ?2 ORDER BY created_at_ms, id"
            ),
            [from_ms, to_ms],
            refund_row,
        )
    }

    /// The refund with this out_refund_no, if the journal has it.
    pub fn refund_by_no(&self, out_refund_no: &str) -> Result<Option<RefundRow>, JournalError> {
        self.conn
            .prepare_cached(&format!("{SELECT_REFUNDS} WHERE out_refund_no = ?1"))
            .and_then(|mut select| select.query_row([out_refund_no], refund_row).optional())
            .map_err(|e| classify(&self.path, e))
    }

    /// Records a reconciliation and, in the same transaction, appends to each
    /// of `returned` (reversed orders the bill shows charged and returned)
    /// its event, unless an earlier reconciliation already did. The orders'
    /// rows are not touched: a final state is never overwritten, and an
    /// order still reversed is what the event says. Returns how many orders
    /// got the event now.
    pub fn record_reconciliation(
        &mut self,
        record: &NewReconciliation,
        returned: &[(OrderId, EventRecord)],
    ) -> Result<usize, JournalError> {
        let checked: Vec<_> = returned
            .iter()
            .map(|(order, event)| Ok((*order, Checked::new(event)?)))
            .collect::<Result<_, JournalError>>()?;
        let result = record.result.to_string();
        let db = |e| classify(&self.path, e);
        let tx = begin(&mut self.conn).map_err(db)?;
        execute(
            &tx,
            "INSERT INTO reconciliations (bill_date, at_ms, source, matched, discrepancies, result) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                record.bill_date,
                unix_ms(record.at),
                record.source.as_str(),
                signed(record.matched).map_err(db)?,
                signed(record.discrepancies).map_err(db)?,
                result
            ],
        )
        .map_err(db)?;
        let mut added = 0;
        for (order, event) in &checked {
            let already: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM events WHERE order_id = ?1 \
                     AND json_extract(detail, '$.type') = 'reversed_after_payment') \
                     OR NOT EXISTS (SELECT 1 FROM orders WHERE id = ?1 AND state = 'reversed')",
                    [order.0],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if !already {
                event.insert(&tx, *order).map_err(db)?;
                added += 1;
            }
        }
        tx.commit().map_err(db)?;
        Ok(added)
    }

    /// The newest reconciliation of `bill_date` (YYYY-MM-DD), if any. A
    /// journal from before reconciliations (opened read-only, so not
    /// migrated) has none.
    pub fn reconciliation_of(
        &self,
        bill_date: &str,
    ) -> Result<Option<ReconciliationRow>, JournalError> {
        if !self.knows(5)? {
            return Ok(None);
        }
        self.conn
            .prepare_cached(
                "SELECT bill_date, at_ms, source, matched, discrepancies FROM reconciliations \
                 WHERE bill_date = ?1 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut select| {
                select
                    .query_row([bill_date], |r| {
                        Ok(ReconciliationRow {
                            bill_date: r.get(0)?,
                            at_ms: r.get(1)?,
                            source: r.get(2)?,
                            matched: unsigned(3, r.get(3)?)?,
                            discrepancies: unsigned(4, r.get(4)?)?,
                        })
                    })
                    .optional()
            })
            .map_err(|e| classify(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Fen, TillId};
    use crate::journal::{FinalRecord, NewOrder, OrderState};
    use crate::payment::Event;

    fn note(event: Event) -> EventRecord {
        EventRecord {
            at: OffsetDateTime::now_utc(),
            since_t0_ms: None,
            summary: "reversed after payment".into(),
            event,
        }
    }

    #[test]
    fn a_reconciliation_is_recorded_and_a_returned_charge_noted_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite3");
        let mut journal = Journal::open(&path).unwrap();
        let till = TillId::parse("T01").unwrap();
        let now = OffsetDateTime::now_utc();
        let (id, _) = journal
            .open_order(&NewOrder {
                till: &till,
                total_fee: Fen(52),
                body: "Tea",
                auth_code_masked: "**************6076".into(),
                now,
                local_offset: time::UtcOffset::UTC,
            })
            .unwrap();
        let finished = note(Event::Finished {
            state: "reversed".into(),
            err_code: None,
            transaction_id: None,
        });
        let end = FinalRecord {
            state: OrderState::Reversed,
            transaction_id: None,
            err_code: None,
            message: None,
            at: now,
        };
        journal.finish(id, &end, &finished).unwrap();
        assert_eq!(journal.reconciliation_of("2026-11-22").unwrap(), None);
        let record = |discrepancies| NewReconciliation {
            bill_date: "2026-11-22".into(),
            at: now,
            source: BillSource::Downloaded,
            matched: 1,
            discrepancies,
            result: serde_json::json!({"discrepancies": []}),
        };
        let event = note(Event::ReversedAfterPayment {
            bill_date: "2026-11-22".into(),
            total_fee: 52,
            transaction_id: Some("4200".into()),
        });
        let returned = [(id, event)];
        assert_eq!(
            journal
                .record_reconciliation(&record(0), &returned)
                .unwrap(),
            1
        );
        assert_eq!(
            journal
                .record_reconciliation(&record(2), &returned)
                .unwrap(),
            0
        );
        let events = journal.events(id).unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e.event, Event::ReversedAfterPayment { .. }))
                .count(),
            1
        );
        assert_eq!(
            journal.order_by_id(id).unwrap().unwrap().state,
            OrderState::Reversed
        );
        drop(journal);
        let reader = Journal::open_read_only(&path).unwrap();
        let newest = reader.reconciliation_of("2026-11-22").unwrap().unwrap();
        assert_eq!((newest.matched, newest.discrepancies), (1, 2));
        assert_eq!(reader.reconciliation_of("2026-11-21").unwrap(), None);
    }
}
