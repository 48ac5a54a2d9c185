//! `scanpay sync`: ship the journal to the store database once and report,
//! for installers (is the store reachable from this till?) and cron.

use std::sync::{Arc, Mutex};

use super::{Exit, err, out};
use crate::config::Settings;
use crate::journal::{Journal, JournalWriter};
use crate::store::{self, Till};

/// 0: the store has every event; 1: unreachable, or a batch was refused;
/// 3: `[store]` is not set, or the journal cannot be opened.
pub async fn run(settings: &Settings) -> Exit {
    let store = match super::store::settings(settings, "scanpay sync") {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let path = &settings.journal_path;
    if !path.exists() {
        err(format_args!(
            "scanpay sync: there is no journal at {} (journal.path): nothing to ship",
            path.display()
        ));
        return Exit::Config;
    }
    let opened = Journal::open(path).and_then(|journal| {
        let reader = Journal::open_read_only(path)?;
        Ok((journal, reader))
    });
    let (journal, reader) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            err(format_args!("scanpay sync: {e}"));
            return Exit::Config;
        }
    };
    // A journal without an installation id is refused by `store::sync`.
    let till = Till {
        installation_id: journal.installation_id().unwrap_or_default().to_string(),
        till_id: settings.till.as_str().to_string(),
        mch_id: settings.merchant.mch_id.clone(),
    };
    let writer = JournalWriter::spawn(journal);
    let reader = Arc::new(Mutex::new(reader));
    let result = store::sync(store, &reader, &writer, &till).await;
    writer.close();
    match result {
        Ok(report) => {
            out(format_args!(
                "shipped {} events, store is at event {} for till {} (installation {})",
                report.shipped, report.through, till.till_id, till.installation_id
            ));
            if report.behind > 0 {
                // Written while this ran: the next sync takes them.
                out(format_args!(
                    "{} events were written meanwhile; the next sync ships them",
                    report.behind
                ));
            }
            Exit::OK
        }
        Err(e) => {
            err(format_args!("scanpay sync: {e}"));
            Exit::Internal
        }
    }
}
