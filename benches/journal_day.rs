//! The manager's day view on a year of data: build a journal of 500 000 orders
//! over 365 days on the project disk, then time what the closing review does.
//!
//! cargo bench --bench journal_day        (prints figures; no criterion)
//! JOURNAL_DAY_ORDERS=20000 cargo bench --bench journal_day    (a quick run)
//!
//! "Cold" opens a new read-only connection before each sample (SQLite's page
//! cache empty), as `scanpay journal` does; "disk-cold" also drops the file
//! from the OS page cache first (`dd iflag=nocache`, no root needed).

#[path = "support/timing.rs"]
mod timing;
use timing::{percentile, time_each};

use std::io::BufWriter;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::{Connection, params};
use scanpay::journal::{Journal, day_bounds, write_csv};
use serde_json::json;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+08:00 is a valid offset"),
};
const SAMPLES: usize = 30;
const BATCH: usize = 10_000;
/// Whole-file checks take seconds each at 500 000 orders.
const CHECK_SAMPLES: usize = 3;

/// Relative custom per local hour: breakfast, lunch and dinner peaks, shut at night.
const HOURLY: [u32; 24] = [
    0, 0, 0, 0, 0, 0, 1, 6, 10, 7, 6, 9, 16, 14, 7, 6, 7, 10, 15, 13, 9, 6, 3, 1,
];
/// Relative custom per weekday, Monday first: busier at the weekend.
const WEEKDAY: [u32; 7] = [9, 9, 10, 10, 12, 16, 15];

fn main() {
    let orders: usize = std::env::var("JOURNAL_DAY_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500_000);
    // target/tmp: on the project disk, like a till's ./data (not a tmpfs).
    let dir = tempfile::TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("journal.sqlite3");
    let today = OffsetDateTime::now_utc().to_offset(BEIJING).date();
    let start = (today - time::Duration::days(364))
        .midnight()
        .assume_offset(BEIJING);

    let began = Instant::now();
    generate_year(&path, orders, start, 2026);
    let generated = began.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    let (events, busiest, busiest_count): (i64, Date, usize) = {
        let journal = Journal::open_read_only(&path).unwrap();
        let (from, _) = day_bounds(start.date(), BEIJING);
        let (_, to) = day_bounds(today, BEIJING);
        let all = journal.summary_between(from, to).unwrap();
        let total = all.paid_count + all.failed + all.reversed + all.closed + all.needs_attention;
        assert_eq!(total + all.open, orders as u64);
        let counts =
            days(start.date(), today).map(|d| (journal.day(d, BEIJING).unwrap().orders.len(), d));
        let (count, day) = counts.max().unwrap();
        let conn = Connection::open(&path).unwrap();
        let events = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        (events, day, count)
    };
    println!(
        "journal_day: {orders} orders, {events} events over 365 days in {}",
        path.display()
    );
    println!("  generate (batches of {BATCH}, one transaction each): {generated:.1?}");
    println!("  file size: {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    println!("  busiest day: {busiest}, {busiest_count} orders");

    let mut rng = StdRng::seed_from_u64(7);
    let mut sample_days: Vec<Date> = (0..SAMPLES)
        .map(|_| start.date() + time::Duration::days(rng.random_range(0..365)))
        .collect();
    sample_days[0] = busiest;
    let mut loaded = 0;

    let cold = time_each(&sample_days, |day| {
        let journal = Journal::open_read_only(&path).unwrap();
        loaded += journal.day(day, BEIJING).unwrap().orders.len();
    });
    report("open read-only + day(), cold", &cold);
    println!(
        "    {:.0} orders per day on average",
        loaded as f64 / SAMPLES as f64
    );

    let journal = Journal::open_read_only(&path).unwrap();
    let open = time_each(&sample_days, |day| {
        journal.day(day, BEIJING).unwrap();
    });
    report("day() on an open journal (the till's screen)", &open);

    let (from, to) = day_bounds(today, BEIJING);
    let status = time_each(&[today; 100], |_| {
        journal.summary_between(from, to).unwrap();
    });
    report("summary_between(today) on an open journal, x100", &status);
    let status_cold = time_each(&sample_days, |_| {
        let journal = Journal::open_read_only(&path).unwrap();
        journal.summary_between(from, to).unwrap();
    });
    report(
        "open read-only + summary_between(today), cold",
        &status_cold,
    );

    let busy = journal.day(busiest, BEIJING).unwrap();
    let mut csv = Vec::new();
    let write = time_each(&[busiest; SAMPLES], |_| {
        csv.clear();
        write_csv(&busy, BEIJING, &mut csv).unwrap();
    });
    report(
        &format!(
            "write_csv of the busiest day to memory ({} KiB)",
            csv.len() / 1024
        ),
        &write,
    );
    let out = dir.path().join("day.csv");
    let export = time_each(&sample_days, |day| {
        let journal = Journal::open_read_only(&path).unwrap();
        let report = journal.day(day, BEIJING).unwrap();
        let mut file = BufWriter::new(std::fs::File::create(&out).unwrap());
        write_csv(&report, BEIJING, &mut file).unwrap();
        file.into_inner().unwrap().sync_all().unwrap();
    });
    report(
        "export a day: open read-only, load, CSV to a file, fsync",
        &export,
    );

    // The damaged-journal checks (issue 9): what a check at open would cost.
    let check = |pragma: &str| {
        let conn = Connection::open(&path).unwrap();
        let verdict: String = conn
            .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(verdict, "ok", "{pragma} on the generated journal");
    };
    let quick = time_each(&[(); CHECK_SAMPLES], |()| check("quick_check"));
    report("PRAGMA quick_check, whole journal, OS cache warm", &quick);
    let full = time_each(&[(); CHECK_SAMPLES], |()| check("integrity_check"));
    report(
        "PRAGMA integrity_check, whole journal, OS cache warm",
        &full,
    );
    let opens = time_each(&[(); SAMPLES], |()| drop(Journal::open(&path).unwrap()));
    report(
        "Journal::open, whole-file check done today (page 1 and schema only)",
        &opens,
    );
    let day_old = || {
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE checks SET checked_at_ms = 0", [])
            .unwrap();
    };
    let due = time_each(&[(); CHECK_SAMPLES], |()| {
        day_old();
        drop(Journal::open(&path).unwrap());
    });
    report(
        "Journal::open, first of the day (runs quick_check), OS cache warm",
        &due,
    );

    // Last: it leaves the file out of the OS cache.
    let dropped = drop_from_os_cache(&path);
    if dropped {
        let disk_cold = time_each(&sample_days, |day| {
            drop_from_os_cache(&path);
            let journal = Journal::open_read_only(&path).unwrap();
            journal.day(day, BEIJING).unwrap();
        });
        report("open read-only + day(), disk-cold", &disk_cold);
        let quick_cold = time_each(&[(); CHECK_SAMPLES], |()| {
            drop_from_os_cache(&path);
            check("quick_check");
        });
        report("PRAGMA quick_check, disk-cold", &quick_cold);
        let open_cold = time_each(&[(); SAMPLES], |()| {
            drop_from_os_cache(&path);
            drop(Journal::open(&path).unwrap());
        });
        report("Journal::open, check done today, disk-cold", &open_cold);
    } else {
        println!("  (dd iflag=nocache unavailable: no disk-cold figures)");
    }
}

/// The local days `first..=last`.
fn days(first: Date, last: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(first), |d| d.next_day()).take_while(move |d| *d <= last)
}

fn report(what: &str, samples: &[Duration]) {
    println!(
        "  {what}: p50 {:.2?}, p95 {:.2?}, max {:.2?} (n={})",
        percentile(samples, 50),
        percentile(samples, 95),
        percentile(samples, 100),
        samples.len()
    );
}

/// Asks the kernel to forget the journal's cached pages (posix_fadvise
/// DONTNEED through GNU dd). False if dd is missing or refuses.
fn drop_from_os_cache(path: &Path) -> bool {
    let mut input = std::ffi::OsString::from("if=");
    input.push(path);
    Command::new("dd")
        .args([
            input.as_os_str(),
            "iflag=nocache".as_ref(),
            "count=0".as_ref(),
            "status=none".as_ref(),
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// Fills a new journal at `path` with `orders` realistic orders spread over the
/// 365 days from `start` with a daytime peak. The schema comes from
/// `Journal::open`; the rows go in through a bulk connection, 10 000 orders per
/// transaction, because the payment path's one fsync per write would take
/// minutes here. The durable path is not what this bench measures.
fn generate_year(path: &Path, orders: usize, start: OffsetDateTime, seed: u64) {
    drop(Journal::open(path).unwrap());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut times: Vec<i64> = (0..orders).map(|_| order_time(&mut rng, start)).collect();
    // Ids follow time, as they do on a till.
    times.sort_unstable();

    let mut conn = Connection::open(path).unwrap();
    // Synthetic data: no fsync per batch. (journal_mode stays WAL.)
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let stamp = format_description!("[year][month][day][hour][minute][second]");
    for (batch, chunk) in times.chunks(BATCH).enumerate() {
        let tx = conn.transaction().unwrap();
        {
            let mut order = tx
                .prepare_cached(
                    "INSERT INTO orders (id, out_trade_no, till_id, total_fee, body, auth_code_masked, \
                     created_at_ms, micropay_sent_at_ms, state, finished_at_ms, transaction_id, err_code, message) \
                     VALUES (?1, ?2, 'T01', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .unwrap();
            let mut event = tx
                .prepare_cached(
                    "INSERT INTO events (order_id, at_ms, since_t0_ms, kind, call, summary, detail) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .unwrap();
            for (i, &created) in chunk.iter().enumerate() {
                let id = (batch * BATCH + i + 1) as i64;
                let local = OffsetDateTime::from_unix_timestamp(created / 1000)
                    .unwrap()
                    .to_offset(BEIJING);
                let no = format!("T01{}{:06}", local.format(stamp).unwrap(), id % 1_000_000);
                let o = Outcome::pick(&mut rng);
                let fee = amount(&mut rng);
                let masked = format!("**************{:04}", rng.random_range(0..10_000));
                let body = BODIES[rng.random_range(0..BODIES.len())];
                let sent = created + rng.random_range(3..40);
                let took = rng.random_range(o.took_ms.0..o.took_ms.1);
                let finished = sent + took;
                let transaction_id = (o.state == "paid")
                    .then(|| format!("4200{:024}", rng.random_range(0..10u128.pow(24))));
                order
                    .execute(params![
                        id,
                        no,
                        fee,
                        body,
                        masked,
                        created,
                        sent,
                        o.state,
                        finished,
                        transaction_id,
                        o.err_code,
                        o.message
                    ])
                    .unwrap();
                let steps = o.steps(rng.random_range(0..3));
                let count = steps.len() as i64;
                for (n, (kind, call, summary)) in steps.into_iter().enumerate() {
                    let n = n as i64;
                    let at = if n == 0 {
                        created
                    } else {
                        sent + took * (n - 1) / (count - 2).max(1)
                    };
                    let since_t0 = (n > 0).then(|| at - sent);
                    let detail = json!({
                        "appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "T01",
                        "out_trade_no": no, "total_fee": fee, "body": body, "auth_code": masked,
                        "nonce_str": format!("{:032x}", rng.random::<u128>()),
                        "sign": format!("{:032X}", rng.random::<u128>()),
                        "result_code": if kind == "answer" { o.result } else { "" },
                    });
                    event
                        .execute(params![
                            id,
                            at,
                            since_t0,
                            kind,
                            call,
                            summary,
                            detail.to_string()
                        ])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
}

const BODIES: [&str; 6] = [
    "Coffee",
    "两杯咖啡",
    "Lunch set",
    "面包",
    "Groceries",
    "奶茶 x3",
];

/// A random moment in the year: a day weighted by weekday, an hour by the
/// daily pattern, then uniform within the hour.
fn order_time(rng: &mut StdRng, start: OffsetDateTime) -> i64 {
    let weight = |day: i64| {
        WEEKDAY[(start + time::Duration::days(day))
            .weekday()
            .number_days_from_monday() as usize]
    };
    let day = loop {
        let day = rng.random_range(0..365);
        if rng.random_range(0..16) < weight(day) {
            break day;
        }
    };
    let total: u32 = HOURLY.iter().sum();
    let mut pick = rng.random_range(0..total);
    let mut hour = 0;
    while pick >= HOURLY[hour] {
        pick -= HOURLY[hour];
        hour += 1;
    }
    let at = start + time::Duration::days(day) + time::Duration::hours(hour as i64);
    (at.unix_timestamp() + rng.random_range(0..3600)) * 1000 + rng.random_range(0..1000)
}

/// 1 to 500 yuan, log-uniform: many small sales, a few large ones.
fn amount(rng: &mut StdRng) -> i64 {
    let ln = rng.random_range((100f64).ln()..(50_000f64).ln());
    ln.exp().round() as i64
}

/// How an order ends, with its share and its shape in the event log.
struct Outcome {
    state: &'static str,
    result: &'static str,
    err_code: Option<&'static str>,
    message: Option<&'static str>,
    took_ms: (i64, i64),
}

impl Outcome {
    fn pick(rng: &mut StdRng) -> Self {
        let (state, result, err_code, message, took_ms) = match rng.random_range(0..1000) {
            0..940 => ("paid", "SUCCESS", None, Some("支付成功"), (300, 20_000)),
            940..975 => (
                "failed",
                "FAIL",
                Some("NOTENOUGH"),
                Some("余额不足"),
                (300, 2_000),
            ),
            975..990 => (
                "reversed",
                "FAIL",
                Some("USERPAYING"),
                Some("已撤销"),
                (15_000, 31_000),
            ),
            990..996 => (
                "closed",
                "FAIL",
                Some("ORDERCLOSED"),
                Some("订单已关闭"),
                (500, 3_000),
            ),
            _ => (
                "needs_attention",
                "FAIL",
                Some("SYSTEMERROR"),
                Some("仍不确定"),
                (30_000, 60_000),
            ),
        };
        Self {
            state,
            result,
            err_code,
            message,
            took_ms,
        }
    }

    /// opened, the micropay, `queries` query rounds (more for unclear
    /// orders, with reverses), finished.
    fn steps(&self, queries: usize) -> Vec<(&'static str, Option<&'static str>, String)> {
        let mut steps = vec![
            ("opened", None, "order opened".to_string()),
            ("request", Some("micropay"), "sending micropay".into()),
            (
                "answer",
                Some("micropay"),
                format!("micropay: {}", self.result),
            ),
        ];
        let extra = match self.state {
            "paid" | "failed" => queries.saturating_sub(1),
            _ => queries + 2,
        };
        for _ in 0..extra {
            steps.push(("request", Some("orderquery"), "querying".into()));
            steps.push((
                "answer",
                Some("orderquery"),
                "orderquery: USERPAYING".into(),
            ));
        }
        if matches!(self.state, "reversed" | "needs_attention") {
            steps.push(("request", Some("reverse"), "reverse 1".into()));
            steps.push(("answer", Some("reverse"), "reverse: recall=N".into()));
        }
        steps.push(("finished", None, format!("finished: {}", self.state)));
        steps
    }
}
