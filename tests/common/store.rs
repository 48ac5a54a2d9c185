//! What "the store is the union of the journals" means, checked the same
//! way by the library-level shipping tests (`tests/store.rs`) and the
//! many-till-processes tests (`tests/store_tills.rs`).

use std::collections::BTreeMap;
use std::path::Path;

use scanpay::journal::Journal;

use super::postgres::Postgres;

/// An order as both sides hold it: enough to tell a wrong till, amount or
/// state apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub till_id: String,
    pub total_fee: u64,
    pub state: String,
}

/// The store's orders: out_trade_no → order. Fails if a number is there
/// twice (under two merchant ids), which a map would silently merge.
pub fn store_orders(pg: &Postgres) -> BTreeMap<String, Order> {
    let mut orders = BTreeMap::new();
    let rows = pg.psql("SELECT out_trade_no, till_id, total_fee, state FROM orders");
    for row in rows.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = row.split('|').collect();
        let [no, till_id, total_fee, state] = fields[..] else {
            panic!("an orders row of {} fields: {row:?}", fields.len());
        };
        let order = Order {
            till_id: till_id.into(),
            total_fee: total_fee.parse().unwrap(),
            state: state.into(),
        };
        assert!(
            orders.insert(no.to_string(), order).is_none(),
            "order {no} is in the store twice"
        );
    }
    orders
}

/// The journal's orders: out_trade_no → order.
pub fn journal_orders(journal: &Path) -> BTreeMap<String, Order> {
    Journal::open_read_only(journal)
        .unwrap()
        .orders_between(i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|o| {
            let order = Order {
                till_id: o.till_id.as_str().into(),
                total_fee: o.total_fee.0,
                state: o.state.to_string(),
            };
            (o.out_trade_no.as_str().to_string(), order)
        })
        .collect()
}

/// The journal's installation id, which keys its till in the store. A
/// read-only connection does not read it, hence a writing one; the tills
/// may be running (a journal has many writers, one owner per process).
pub fn installation_id(journal: &Path) -> String {
    Journal::open(journal)
        .unwrap()
        .installation_id()
        .expect("a journal has an installation id")
        .to_string()
}

pub fn journal_events(journal: &Path) -> u64 {
    Journal::open_read_only(journal)
        .unwrap()
        .events_after(0)
        .unwrap()
}

/// The store equals the union of the journals (files): every order once,
/// with its till, amount and latest state; every event once; each till's
/// mark, in the store and in its journal, at its last event.
pub fn assert_store_is_union(pg: &Postgres, journals: &[&Path]) {
    let mut union = BTreeMap::new();
    for journal in journals {
        for (no, order) in journal_orders(journal) {
            assert!(
                union.insert(no.clone(), order).is_none(),
                "order {no} is in two journals"
            );
        }
    }
    assert_eq!(store_orders(pg), union);
    for journal in journals {
        let installation = installation_id(journal);
        let events = journal_events(journal);
        let count = |sql: String| -> u64 { pg.psql(&sql).trim().parse().unwrap() };
        let stored = count(format!(
            "SELECT count(*) FROM events WHERE installation_id = '{installation}'"
        ));
        assert_eq!(stored, events, "events of {}", journal.display());
        let mark = count(format!(
            "SELECT coalesce((SELECT shipped_through FROM tills WHERE installation_id = '{installation}'), 0)"
        ));
        assert_eq!(mark, events, "the store's mark of {}", journal.display());
        let own = Journal::open_read_only(journal)
            .unwrap()
            .shipped_through()
            .unwrap();
        assert_eq!(
            own as u64,
            events,
            "the journal's own mark of {}",
            journal.display()
        );
    }
}
