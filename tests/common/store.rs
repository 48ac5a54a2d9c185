//! What "the store is the union of the journals" means, checked the same
//! way by the library-level shipping tests (`tests/store.rs`) and the
//! many-till-processes tests (`tests/store_tills.rs`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

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

/// `scanpay store` run as the manager does, against the store's database,
/// from `dir` (which holds no journal of a till).
pub fn store_command(pg: &Postgres, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scanpay"))
        .current_dir(dir)
        .env_remove("SCANPAY_CONFIG")
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_JOURNAL_PATH", dir.join("manager.sqlite3"))
        .env("SCANPAY_TILL_TIME_ZONE", "+08:00")
        .env("SCANPAY_STORE_DATABASE_URL", pg.url())
        .env("SCANPAY_STORE_PASSWORD", super::postgres::PASSWORD)
        .arg("store")
        .args(args)
        .output()
        .unwrap()
}

/// `scanpay journal`'s export of one till's journal: its records, header off.
fn journal_export(dir: &Path, journal: &Path, args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_scanpay"))
        .current_dir(dir)
        .env_remove("SCANPAY_CONFIG")
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_JOURNAL_PATH", journal)
        .env("SCANPAY_TILL_TIME_ZONE", "+08:00")
        .arg("journal")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    records(&out.stdout)
}

/// An export's records: CSV lines after the header, or JSON's objects (one
/// a line between the brackets, commas apart).
fn records(export: &[u8]) -> Vec<String> {
    let text = String::from_utf8(export.to_vec()).unwrap();
    if text.starts_with('[') {
        let objects = text.lines().filter(|l| l.starts_with('{'));
        objects
            .map(|l| l.trim_end_matches(',').to_string())
            .collect()
    } else {
        text.lines().skip(1).map(str::to_string).collect()
    }
}

/// The store's export of the days `range` names (`--date D [--to D2]`), in
/// CSV and in JSON, is every journal's `scanpay journal` export of them put
/// together: the same columns, each order once, whichever till it was on.
/// Returns how many orders that is.
pub fn assert_export_is_union(
    pg: &Postgres,
    dir: &Path,
    journals: &[&Path],
    range: &[&str],
) -> usize {
    let mut orders = None;
    for format in ["csv", "json"] {
        let args: Vec<&str> = range.iter().copied().chain(["--format", format]).collect();
        let out = store_command(pg, dir, &args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let mut from_store = records(&out.stdout);
        let mut from_journals: Vec<String> = journals
            .iter()
            .flat_map(|j| journal_export(dir, j, &args))
            .collect();
        from_store.sort();
        from_journals.sort();
        assert_eq!(
            from_store, from_journals,
            "the store's {format} export of {range:?}"
        );
        assert_eq!(*orders.get_or_insert(from_store.len()), from_store.len());
    }
    orders.unwrap_or_default()
}
