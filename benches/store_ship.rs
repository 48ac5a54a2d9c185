//! Events per second shipped to the store's PostgreSQL database: one till's
//! journal with a backlog (a till that was offline), shipped by the real
//! `store::sync` to a throwaway PostgreSQL server on 127.0.0.1 (the Debian
//! package's, as the tests start it), for a few batch sizes. Each size ships
//! into a fresh database, so every event is an insert.
//!
//! cargo bench --bench store_ship

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use scanpay::domain::{Fen, TillId};
use scanpay::journal::{EventRecord, FinalRecord, Journal, JournalWriter, NewOrder, OrderState};
use scanpay::payment::Event;
use scanpay::store::{self, Till};
use time::OffsetDateTime;

const ORDERS: usize = 4000;

fn backlog(path: &std::path::Path) {
    let mut journal = Journal::open(path).unwrap();
    let till = TillId::parse("B1").unwrap();
    for i in 0..ORDERS {
        let now = OffsetDateTime::now_utc();
        let new = NewOrder {
            till: &till,
            total_fee: Fen(100 + i as u64),
            body: "bench",
            auth_code_masked: "**************6076".into(),
            now,
            local_offset: time::UtcOffset::UTC,
        };
        let (id, _) = journal.open_order(&new).unwrap();
        let note = EventRecord {
            at: now,
            since_t0_ms: None,
            summary: format!("note {i}"),
            event: Event::Note {
                text: format!("note {i}"),
            },
        };
        journal.append(id, &note).unwrap();
        let outcome = FinalRecord {
            state: OrderState::Paid,
            transaction_id: Some("4200001234202611221234567890".into()),
            err_code: None,
            message: Some("支付成功".into()),
            at: now,
        };
        let finished = EventRecord {
            at: now,
            since_t0_ms: Some(1),
            summary: "finished: paid".into(),
            event: Event::Finished {
                state: "paid".into(),
                err_code: None,
                transaction_id: outcome.transaction_id.clone(),
            },
        };
        journal.finish(id, &outcome, &finished).unwrap();
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.sqlite3");
    backlog(&template);
    for batch in [100u32, 1000, 5000] {
        let pg = postgres::Postgres::start();
        // A copy per run: its shipping mark starts at 0.
        let path = dir.path().join(format!("till-{batch}.sqlite3"));
        std::fs::copy(&template, &path).unwrap();
        let journal = Journal::open(&path).unwrap();
        let till = Till {
            installation_id: journal.installation_id().unwrap().to_string(),
            till_id: "B1".into(),
            mch_id: "1900000109".into(),
        };
        let writer = JournalWriter::spawn(journal);
        let reader = Arc::new(Mutex::new(Journal::open_read_only(&path).unwrap()));
        let settings = pg.settings(batch);
        let began = Instant::now();
        let report = runtime
            .block_on(store::sync(&settings, &reader, &writer, &till))
            .unwrap();
        let took = began.elapsed();
        writer.close();
        println!(
            "batch {batch:>5}: {} events ({ORDERS} orders) in {:.2} s = {:.0} events/s",
            report.shipped,
            took.as_secs_f64(),
            report.shipped as f64 / took.as_secs_f64()
        );
    }
}
