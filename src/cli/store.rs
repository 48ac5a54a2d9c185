//! `scanpay store --date D`: the day of every till from the store database
//! (per till and in total: orders, takings, refunds), read-only.

use std::io::Write;
use std::path::PathBuf;

use super::journal::{Format, parse_date, write_atomically};
use super::{Exit, err};
use crate::config::Settings;
use crate::journal::day_bounds;
use crate::store::{Store, StoreDay, TillDay};

pub struct StoreArgs {
    pub date: String,
    pub format: Format,
    pub output: Option<PathBuf>,
}

/// The CSV's columns; amounts in yuan.
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

/// 0: printed; 1: the store is unreachable or failed, or the output could
/// not be written; 2: a bad date; 3: `[store]` is not set.
pub async fn run(settings: &Settings, args: StoreArgs) -> Exit {
    let Some(store) = &settings.store else {
        err(
            "scanpay store: store.database_url is not set: set it in the [store] section of the configuration (or SCANPAY_STORE_DATABASE_URL), e.g. postgres://scanpay@127.0.0.1:5432/store",
        );
        return Exit::Config;
    };
    let day = match parse_date("--date", &args.date) {
        Ok(day) => day,
        Err(e) => {
            err(format_args!("scanpay store: {e}"));
            return e.exit();
        }
    };
    let (from, to) = day_bounds(day, settings.store_offset);
    let read = async {
        let mut store = Store::connect_read_only(store).await?;
        store.day(&day.to_string(), from, to).await
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
    match &args.output {
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                err(format_args!("scanpay store: cannot print the day: {e}"));
                return Exit::Internal;
            }
        }
        Some(path) => {
            let written = write_atomically(path, |mut file, failed| {
                file.write_all(text.as_bytes()).map_err(failed)?;
                Ok((report.tills.len(), file))
            });
            if let Err(e) = written {
                err(format_args!("scanpay store: {e}"));
                return e.exit();
            }
            err(format_args!(
                "scanpay store: {} tills, {} paid ¥{} · written to {}",
                report.tills.len(),
                report.total.paid,
                yuan(report.total.takings),
                path.display()
            ));
        }
    }
    Exit::OK
}

/// Fen as yuan with two decimals, a minus sign when negative.
fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let fen = fen.unsigned_abs();
    format!("{sign}{}.{:02}", fen / 100, fen % 100)
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
            yuan(t.takings),
            t.refunds.to_string(),
            yuan(t.refunded),
            yuan(t.takings - t.refunded),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_signed() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(3702), "37.02");
        assert_eq!(yuan(-105), "-1.05");
    }
}
