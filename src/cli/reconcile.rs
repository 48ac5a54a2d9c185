//! `scanpay reconcile`: the day's books of this till against WeChat's daily
//! bill (下载交易账单), downloaded or saved from the merchant platform. The
//! matching is `crate::reconcile`; this reads the bill and the journal,
//! records the result in the journal, and reports it.
//!
//! `--store`: the same bill against every till of the store at once, each
//! till's side read from the store database. It runs on any machine with the
//! store's settings (a back office may have no till journal): it opens no
//! journal, starts no recovery, and records nothing.

use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};

use super::journal::{ExportError, parse_date, text_to_output};
use super::{Exit, err};
use crate::config::Settings;
use crate::journal::{BillSource, EventRecord, JournalError, NewReconciliation};
use crate::payment::Event;
use crate::reconcile::store::{StoreReconciliation, reconcile_store};
use crate::reconcile::{JournalDay, Reconciliation, read, reconcile, report};
use crate::startup::{self, Running};
use crate::store::Store;
use crate::wechat::api::{Merchant, download_bill_request};
use crate::wechat::bill::{Bill, BillAnswer, MAX_BILL_TEXT, classify_download, parse_bill};
use crate::wechat::client::GatewayClient;

pub struct ReconcileArgs {
    /// YYYY-MM-DD.
    pub date: String,
    /// A bill saved from the merchant platform, plain or gzipped.
    pub bill: Option<PathBuf>,
    pub json: bool,
    pub output: Option<PathBuf>,
    /// Every till of the store, from the store database, instead of this till.
    pub store: bool,
}

pub async fn run(args: ReconcileArgs, settings: Settings) -> Exit {
    let date = match parse_date("date", &args.date) {
        Ok(date) => date,
        Err(e) => return fail(Exit::BadInput, e.to_string()),
    };
    // A saved file that is not a bill is refused before anything starts.
    let saved = match &args.bill {
        Some(path) => match read_bill(path) {
            Ok(bill) => Some(bill),
            Err(message) => return fail(Exit::BadInput, message),
        },
        None => None,
    };
    if args.store {
        return store(&args, settings, date, saved).await;
    }
    let running = match startup::start(settings).await {
        Ok(running) => running,
        Err(e) => return fail(e.exit(), e.to_string()),
    };
    let (bill, source) = match saved {
        Some(bill) => (bill, BillSource::File),
        None => match download(&running.engine.gateway, &running.engine.merchant, date).await {
            Ok(bill) => (bill, BillSource::Downloaded),
            Err((exit, message)) => return fail(exit, message),
        },
    };
    let till = running.settings.till.as_str().to_string();
    let day = match load(&running, date, &till, &bill).await {
        Ok(day) => day,
        Err(e) => return fail(Exit::Internal, format!("reading the journal: {e}")),
    };
    let result = reconcile(&till, &day, &bill);
    let date_text = date.to_string();
    let json = report::to_json(&date_text, &till, source.as_str(), &result);
    let recorded = record(&running, &date_text, source, &result, &json).await;
    let text = if args.json {
        format!("{json}\n")
    } else {
        report::to_text(&date_text, &till, source.as_str(), &result)
    };
    if let Err(exit) = emit(&args, &text, || verdict(&result)) {
        return exit;
    }
    if let Err(e) = recorded {
        return fail(
            Exit::Internal,
            format!("the reconciliation could not be recorded in the journal: {e}"),
        );
    }
    if result.discrepancies.is_empty() {
        Exit::OK
    } else {
        Exit::Discrepancies
    }
}

/// `--store`: the bill against every till of the store. 0: every till agrees
/// and every row is a till's; 7: discrepancies; 1: the store or the download
/// failed; 3: `[store]` is not set, or there is no merchant to download for.
async fn store(args: &ReconcileArgs, settings: Settings, date: Date, saved: Option<Bill>) -> Exit {
    let store_settings = match super::store::settings(&settings, "scanpay reconcile") {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    if saved.is_none() && settings.is_simulated() {
        return fail(
            Exit::Config,
            "no merchant is configured, so there is no WeChat to download the bill from (scanpay's built-in simulator knows none of the store's trades): set merchant.appid, merchant.mch_id and the API key (SCANPAY_API_KEY or merchant.api_key_file), or give the bill saved from the merchant platform with --bill FILE".into(),
        );
    }
    // Reachable and up to date before WeChat is asked for anything.
    let mut store = match Store::connect_read_only(store_settings).await {
        Ok(store) => store,
        Err(e) => return fail(Exit::Internal, e.to_string()),
    };
    let (bill, source) = match saved {
        Some(bill) => (bill, BillSource::File),
        None => match download_for_store(&settings, date).await {
            Ok(bill) => (bill, BillSource::Downloaded),
            Err((exit, message)) => return fail(exit, message),
        },
    };
    let mch_id = settings.merchant.mch_id.as_str();
    let tills = match store.bill_day(mch_id, date, &bill).await {
        Ok(tills) => tills,
        Err(e) => return fail(Exit::Internal, e.to_string()),
    };
    let result = reconcile_store(&tills, &bill);
    let date = date.to_string();
    let text = if args.json {
        format!(
            "{}\n",
            report::store_to_json(&date, mch_id, source.as_str(), &result)
        )
    } else {
        report::store_to_text(&date, mch_id, source.as_str(), &result)
    };
    if let Err(exit) = emit(args, &text, || store_verdict(&result)) {
        return exit;
    }
    if result.discrepancy_count() == 0 {
        Exit::OK
    } else {
        Exit::Discrepancies
    }
}

/// The bill for `--store`, with only what downloading needs: the gateway
/// client and the merchant (its sandbox key when gateway.sandbox is on).
async fn download_for_store(settings: &Settings, date: Date) -> Result<Bill, (Exit, String)> {
    let (gateway, merchant) = startup::gateway(settings)
        .await
        .map_err(|e| (e.exit(), e.to_string()))?;
    download(&gateway, &merchant, date).await
}

/// Prints `text`, or writes it to `--output` and says `verdict` on stderr.
fn emit(args: &ReconcileArgs, text: &str, verdict: impl FnOnce() -> String) -> Result<(), Exit> {
    match text_to_output(text, args.output.as_deref()) {
        // The exit code still gives the verdict.
        Err(ExportError::Stdout(e)) => {
            tracing::warn!(error = %e, "cannot print the reconciliation");
        }
        Err(e) => {
            err(format_args!("scanpay reconcile: {e}"));
            return Err(e.exit());
        }
        Ok(()) => {
            if let Some(path) = &args.output {
                err(format_args!(
                    "scanpay reconcile: {} · report written to {}",
                    verdict(),
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

fn fail(exit: Exit, message: String) -> Exit {
    err(format_args!("scanpay reconcile: {message}"));
    exit
}

fn verdict(result: &Reconciliation) -> String {
    match result.discrepancies.len() {
        0 => format!("the books agree ({} orders matched)", result.matched),
        n => format!("{n} discrepancies, each with what to do"),
    }
}

fn store_verdict(result: &StoreReconciliation) -> String {
    match result.discrepancy_count() {
        0 => format!(
            "the books of {} tills agree ({} orders matched)",
            result.tills.len(),
            result.matched()
        ),
        n => format!("{n} discrepancies, each with what to do"),
    }
}

/// A bill saved from the merchant platform: plain CSV or gzip.
fn read_bill(path: &Path) -> Result<Bill, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "--bill {}: cannot read it ({e}): give the path of the bill saved from the WeChat Pay merchant platform",
            path.display()
        )
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_BILL_TEXT as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("--bill {}: cannot read it ({e})", path.display()))?;
    parse_bill(&bytes).map_err(|e| {
        format!(
            "--bill {} is not a WeChat Pay daily bill (下载交易账单, CSV or gzip): {e}",
            path.display()
        )
    })
}

/// The day's ALL bill from WeChat, gzipped on the wire. "No Bill Exist" is
/// a bill without rows.
async fn download(
    gateway: &GatewayClient,
    merchant: &Merchant,
    date: Date,
) -> Result<Bill, (Exit, String)> {
    let fields = download_bill_request(merchant, date, true);
    let body = gateway.download_bill(&fields).await.map_err(|e| {
        (
            Exit::Internal,
            format!(
                "the bill of {date} could not be downloaded ({e}): nothing was recorded; try again"
            ),
        )
    })?;
    match classify_download(&body) {
        Ok(BillAnswer::Bill(bill)) => Ok(bill),
        Ok(BillAnswer::NoBill) => Ok(Bill::default()),
        Ok(BillAnswer::NotYet) => Err((
            Exit::Failed,
            format!(
                "WeChat has not built the bill of {date} yet (Bill Creating): it builds a day's bill from 09:00 Beijing time the next day; ask again after 10:00"
            ),
        )),
        Ok(BillAnswer::Failed(why)) => Err((
            Exit::Failed,
            format!("WeChat gave no bill of {date}: {why}"),
        )),
        Err(e) => Err((
            Exit::Internal,
            format!("WeChat's bill of {date} cannot be read: {e}"),
        )),
    }
}

/// This till's side of the day, read on the journal's writer thread.
async fn load(
    running: &Running,
    date: Date,
    till: &str,
    bill: &Bill,
) -> Result<JournalDay, JournalError> {
    let bounds = read::bill_day(date);
    let named = read::named(bill, till);
    let till = till.to_string();
    running
        .engine
        .journal
        .run(move |j| read::journal_day(j, bounds, &till, &named))
        .await
}

/// Records the reconciliation, and *reversed after payment* on each
/// reversed order the bill shows charged and returned.
async fn record(
    running: &Running,
    date: &str,
    source: BillSource,
    result: &Reconciliation,
    json: &serde_json::Value,
) -> Result<usize, JournalError> {
    let now = OffsetDateTime::now_utc();
    let returned: Vec<_> = result
        .returned
        .iter()
        .map(|r| {
            let event = EventRecord {
                at: now,
                since_t0_ms: None,
                summary: format!(
                    "reversed after payment: WeChat's bill of {date} shows ¥{} charged and returned (REVOKED)",
                    r.total_fee
                ),
                event: Event::ReversedAfterPayment {
                    bill_date: date.to_string(),
                    total_fee: r.total_fee.0,
                    transaction_id: r.transaction_id.clone(),
                },
            };
            (r.order, event)
        })
        .collect();
    let record = NewReconciliation {
        bill_date: date.to_string(),
        at: now,
        source,
        matched: result.matched,
        discrepancies: result.discrepancies.len() as u64,
        result: json.clone(),
    };
    let added = running
        .engine
        .journal
        .run(move |j| j.record_reconciliation(&record, &returned))
        .await?;
    if added > 0 {
        err(format_args!(
            "recorded in the journal: {added} reversed orders were reversed after payment (charged and returned)"
        ));
    }
    Ok(added)
}
