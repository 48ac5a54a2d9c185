//! `scanpay store`: every till's orders from the store database, read-only:
//! the journal screen over the whole store, the same export as `scanpay
//! journal` over every till, or a day's lines per till (`--tills`).

use std::path::PathBuf;

use time::Date;

use super::journal::{Days, ExportError, Format, text_to_output};
use super::{Exit, err};
use crate::config::{Settings, StoreSettings};
use crate::domain::signed_yuan;
use crate::store::{Store, StoreDay, TillDay};

pub struct StoreArgs {
    /// The (first) day, YYYY-MM-DD; `None` is today in the store's time zone.
    pub date: Option<String>,
    /// The last day of an export, inclusive.
    pub to: Option<String>,
    pub format: Format,
    pub excel: bool,
    pub output: Option<PathBuf>,
}

/// The per-till CSV's columns; amounts in yuan.
pub const COLUMNS: [&str; 10] = [
    "till_id",
    "installation_id",
    "orders",
    "paid",
    "takings",
    "refunds",
    "refunded",
    "net",
    "unsettled",
    "shipped_through",
];

/// `[store]`, or the message (from `command`) and exit code of its absence.
pub fn settings<'a>(settings: &'a Settings, command: &str) -> Result<&'a StoreSettings, Exit> {
    settings.store.as_ref().ok_or_else(|| {
        err(format_args!(
            "{command}: store.database_url is not set: set it in the [store] section of the configuration (or SCANPAY_STORE_DATABASE_URL), e.g. postgres://scanpay@127.0.0.1:5432/store"
        ));
        Exit::Config
    })
}

/// The day the store screen opens on, once the store database is known to
/// answer: what is wrong is said in plain text, before the screen takes the
/// terminal.
pub async fn screen_day(settings: &Settings, date: Option<&str>) -> Result<Date, Exit> {
    let store = self::settings(settings, "scanpay store")?;
    let days = Days::of(date, None, settings.store_offset, false).map_err(|e| said(&e))?;
    if let Err(e) = Store::connect_read_only(store).await {
        err(format_args!("scanpay store: {e}"));
        return Err(Exit::Internal);
    }
    Ok(days.first)
}

fn said(e: &ExportError) -> Exit {
    err(format_args!("scanpay store: {e}"));
    e.exit()
}

/// Every till's orders of the days asked, in the journal export's columns.
/// 0: written; 1: the store failed or the output could not be written; 2: a
/// bad date; 3: `[store]` is not set.
pub async fn export(settings: &Settings, args: StoreArgs) -> Exit {
    let store_settings = match self::settings(settings, "scanpay store") {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let days = match Days::of(
        args.date.as_deref(),
        args.to.as_deref(),
        settings.store_offset,
        args.excel,
    ) {
        Ok(days) => days,
        Err(e) => return said(&e),
    };
    let mut store = match Store::connect_read_only(store_settings).await {
        Ok(store) => store,
        Err(e) => {
            err(format_args!("scanpay store: {e}"));
            return Exit::Internal;
        }
    };
    // The export writes synchronously (to a temporary file renamed into
    // place); the store is read a day at a time from that thread.
    let runtime = tokio::runtime::Handle::current();
    let output = args.output.clone();
    let written = tokio::task::spawn_blocking(move || {
        let read = |from, to| {
            runtime
                .block_on(store.orders_between(from, to))
                .map_err(|e| e.to_string())
        };
        days.to_output(read, args.format, output.as_deref())
    })
    .await;
    match written {
        Ok(Ok(count)) => {
            if let Some(path) = &args.output {
                err(format_args!(
                    "scanpay store: {count} orders of every till written to {}",
                    path.display()
                ));
            }
            Exit::OK
        }
        Ok(Err(e)) => said(&e),
        Err(_) => {
            err("scanpay store: the export stopped half-way; nothing was written to --output");
            Exit::Internal
        }
    }
}

/// One day's line per till and the total. 0: printed; 1: the store is
/// unreachable or failed, or the output could not be written; 2: a bad date;
/// 3: `[store]` is not set.
pub async fn tills(settings: &Settings, args: StoreArgs) -> Exit {
    let store = match self::settings(settings, "scanpay store") {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let day = match Days::of(args.date.as_deref(), None, settings.store_offset, false) {
        Ok(days) => days.first,
        Err(e) => return said(&e),
    };
    let read = async {
        let mut store = Store::connect_read_only(store).await?;
        store.day(day, settings.store_offset).await
    };
    let report = match read.await {
        Ok(report) => report,
        Err(e) => {
            err(format_args!("scanpay store: {e}"));
            return Exit::Internal;
        }
    };
    let text = match args.format {
        Format::Csv => to_csv(&report),
        Format::Json => format!(
            "{}\n",
            serde_json::to_string(&report).expect("plain data serialises")
        ),
    };
    if let Err(e) = text_to_output(&text, args.output.as_deref()) {
        return said(&e);
    }
    if let Some(path) = &args.output {
        err(format_args!(
            "scanpay store: {} tills, {} paid ¥{} · written to {}",
            report.tills.len(),
            report.total.paid,
            signed_yuan(report.total.takings),
            path.display()
        ));
    }
    Exit::OK
}

/// One line per till, then the total.
pub fn to_csv(report: &StoreDay) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    let line = |out: &mut csv::Writer<Vec<u8>>, t: &TillDay| {
        out.write_record([
            t.till_id.clone(),
            t.installation_id.clone(),
            t.orders.to_string(),
            t.paid.to_string(),
            signed_yuan(t.takings),
            t.refunds.to_string(),
            signed_yuan(t.refunded),
            signed_yuan(t.takings - t.refunded),
            t.unsettled.to_string(),
            t.shipped_through.to_string(),
        ])
        .expect("writing to memory");
    };
    out.write_record(COLUMNS).expect("writing to memory");
    for t in &report.tills {
        line(&mut out, t);
    }
    line(&mut out, &report.total);
    String::from_utf8(out.into_inner().expect("writing to memory")).expect("UTF-8 in, UTF-8 out")
}
