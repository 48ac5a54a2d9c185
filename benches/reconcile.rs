//! `scanpay reconcile` without the network: a month of a busy till (2 000
//! orders a day, 5 % refunded in part, a few reversed after payment and a few
//! charges the till gave up on) in a real journal file on the project disk,
//! and each day's bill as WeChat writes it (the simulator's renderer: this
//! till's rows and 1 000 of another till's), gzipped as downloaded.
//!
//! cargo bench --bench reconcile           (prints figures; no criterion)
//! RECONCILE_DAY_ORDERS=500 cargo bench --bench reconcile    (a quick run)
//!
//! Per day it times what the command does once the bill's bytes are in:
//! unpack and parse the bill, read this till's side of the day from the
//! journal (a fresh read-only connection), match, write the JSON and text
//! reports, and record the reconciliation (one fsync'd transaction).

use std::io::Write;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use scanpay::journal::{BillSource, Journal, NewReconciliation};
use scanpay::reconcile::{read, reconcile, report};
use scanpay::simulator::{BillLine, BillState, render_bill};
use scanpay::wechat::bill::parse_bill;
use time::{Date, OffsetDateTime};

const DAYS: usize = 30;
const OTHER_TILL_ROWS: usize = 1_000;
const SAMPLES: usize = 15;

struct Day {
    date: Date,
    gzipped: Vec<u8>,
    plain_len: usize,
    rows: usize,
}

fn main() {
    let per_day: usize = std::env::var("RECONCILE_DAY_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::TempDir::new_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("journal.sqlite3");
    drop(Journal::open(&path).unwrap());
    let first = Date::from_calendar_date(2026, time::Month::October, 1).unwrap();
    let began = Instant::now();
    let days = generate(&path, first, per_day);
    println!(
        "generated {DAYS} days × {per_day} orders ({} MiB journal) and their bills in {:.1} s",
        std::fs::metadata(&path).unwrap().len() / (1 << 20),
        began.elapsed().as_secs_f64()
    );
    let busy = &days[DAYS / 2];
    println!(
        "one day's bill: {} rows, {} KiB of text, {} KiB gzipped",
        busy.rows,
        busy.plain_len / 1024,
        busy.gzipped.len() / 1024
    );

    // A busy day, stage by stage, median of SAMPLES.
    let mut stages: [Vec<Duration>; 6] = Default::default();
    let mut found = 0;
    for _ in 0..SAMPLES {
        let [parse, load, matching, reports, record, total] = &mut stages;
        let (discrepancies, times) = one_day(&path, busy);
        found = discrepancies;
        parse.push(times[0]);
        load.push(times[1]);
        matching.push(times[2]);
        reports.push(times[3]);
        record.push(times[4]);
        total.push(times.iter().sum());
    }
    println!(
        "\nbusy day ({per_day} orders of this till, {found} discrepancies found), median of {SAMPLES}:"
    );
    for (name, times) in [
        "unpack + parse the bill",
        "read the day from the journal",
        "match",
        "JSON + text reports",
        "open for writing + record (fsync)",
        "total",
    ]
    .iter()
    .zip(stages.iter_mut())
    {
        times.sort();
        println!(
            "  {name:<32} {:>8.2} ms   (max {:.2} ms)",
            ms(times[times.len() / 2]),
            ms(*times.last().unwrap())
        );
    }

    // The month: each day reconciled in turn, as a manager catching up would.
    let mut month = Vec::new();
    for _ in 0..3 {
        let began = Instant::now();
        let mut discrepancies = 0;
        for day in &days {
            discrepancies += one_day(&path, day).0;
        }
        month.push((began.elapsed(), discrepancies));
    }
    month.sort();
    let (median, discrepancies) = month[1];
    println!(
        "\nthe month ({DAYS} days, {} orders, {discrepancies} discrepancies), median of 3 runs: {:.2} s ({:.1} ms a day)",
        DAYS * per_day,
        median.as_secs_f64(),
        ms(median) / DAYS as f64
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Reconciles one day as the command does; the discrepancies found and the
/// time of each stage.
fn one_day(path: &std::path::Path, day: &Day) -> (usize, [Duration; 5]) {
    let t0 = Instant::now();
    let bill = parse_bill(&day.gzipped).unwrap();
    let t1 = Instant::now();
    let journal = Journal::open_read_only(path).unwrap();
    let named = read::named(&bill, "T01");
    let side = read::journal_day(&journal, read::bill_day(day.date), "T01", &named).unwrap();
    drop(journal);
    let t2 = Instant::now();
    let result = reconcile("T01", &side, &bill);
    let t3 = Instant::now();
    let date = day.date.to_string();
    let json = report::to_json(&date, "T01", "downloaded", &result);
    let text = report::to_text(&date, "T01", "downloaded", &result);
    std::hint::black_box((json.to_string(), text));
    let t4 = Instant::now();
    let mut journal = Journal::open(path).unwrap();
    let record = NewReconciliation {
        bill_date: date,
        at: OffsetDateTime::now_utc(),
        source: BillSource::Downloaded,
        matched: result.matched,
        discrepancies: result.discrepancies.len() as u64,
        result: json,
    };
    journal.record_reconciliation(&record, &[]).unwrap();
    drop(journal);
    let t5 = Instant::now();
    (
        result.discrepancies.len(),
        [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4],
    )
}

/// The journal (direct inserts, one transaction a day) and each day's bill.
fn generate(path: &std::path::Path, first: Date, per_day: usize) -> Vec<Day> {
    let mut conn = Connection::open(path).unwrap();
    let mut days = Vec::new();
    let mut id: i64 = 0;
    let mut refund_id: i64 = 0;
    for d in 0..DAYS {
        let date = first + time::Duration::days(d as i64);
        let (from, _) = read::bill_day(date);
        let tx = conn.transaction().unwrap();
        let mut lines = Vec::with_capacity(per_day + OTHER_TILL_ROWS + per_day / 20);
        for i in 0..per_day {
            id += 1;
            // Opening hours 08:00–22:00, evenly.
            let created = from + 8 * 3_600_000 + (i as i64 * 14 * 3_600_000) / per_day as i64;
            let fee = 100 + (id * 7_919 % 20_000) as u64;
            let no = format!("T01{d:02}{i:06}BENCH");
            // 1 % reversed after payment, 0.5 % charged but given up on, 1 % failed.
            let (state, charged) = match id % 200 {
                0 | 1 => ("reversed", Some(BillState::Revoked)),
                2 => ("needs_attention", Some(BillState::Success)),
                3 | 4 => ("failed", None),
                _ => ("paid", Some(BillState::Success)),
            };
            tx.execute(
                "INSERT INTO orders (id, out_trade_no, till_id, total_fee, body, auth_code_masked, \
                 created_at_ms, micropay_sent_at_ms, state, finished_at_ms, transaction_id) \
                 VALUES (?1, ?2, 'T01', ?3, '咖啡', '**************6076', ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    no,
                    fee as i64,
                    created,
                    created + 20,
                    state,
                    created + 900,
                    (state == "paid").then(|| format!("4200{id:012}"))
                ],
            )
            .unwrap();
            let time =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(created + 500) * 1_000_000)
                    .unwrap()
                    .to_offset(read::BEIJING);
            if let Some(bill_state) = charged {
                let returned = if bill_state == BillState::Revoked {
                    fee
                } else {
                    0
                };
                lines.push(BillLine {
                    refund_fee: returned,
                    refund_requested: returned,
                    refund_status: if returned > 0 { "SUCCESS" } else { "" },
                    ..line("T01", &no, time, bill_state, fee)
                });
            }
            // 5 % of the paid orders refunded in part, an hour later.
            if state == "paid" && id % 20 == 7 {
                refund_id += 1;
                let refund_no = format!("{no}R01");
                let refund_fee = fee / 3;
                tx.execute(
                    "INSERT INTO refunds (order_id, out_refund_no, refund_fee, created_at_ms, state, \
                     finished_at_ms, refund_id) VALUES (?1, ?2, ?3, ?4, 'refunded', ?5, ?6)",
                    params![
                        id,
                        refund_no,
                        refund_fee as i64,
                        created + 3_600_000,
                        created + 3_601_000,
                        format!("5030{refund_id:012}")
                    ],
                )
                .unwrap();
                lines.push(BillLine {
                    refund_id: format!("5030{refund_id:012}"),
                    out_refund_no: refund_no,
                    refund_fee,
                    refund_requested: refund_fee,
                    refund_status: "SUCCESS",
                    settlement_fee: 0,
                    total_fee: 0,
                    ..line(
                        "T01",
                        &no,
                        time + time::Duration::hours(1),
                        BillState::Refund,
                        0,
                    )
                });
            }
        }
        tx.commit().unwrap();
        for i in 0..OTHER_TILL_ROWS {
            let time = OffsetDateTime::from_unix_timestamp_nanos(
                i128::from(from + 9 * 3_600_000 + i as i64 * 40_000) * 1_000_000,
            )
            .unwrap()
            .to_offset(read::BEIJING);
            let no = format!("T02{d:02}{i:06}BENCH");
            lines.push(line("T02", &no, time, BillState::Success, 1_000 + i as u64));
        }
        lines.sort_by_key(|l| l.time);
        let text = render_bill(&lines, "wxd930ea5d5a258f4f", "10000100");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        days.push(Day {
            date,
            gzipped: gz.finish().unwrap(),
            plain_len: text.len(),
            rows: lines.len(),
        });
    }
    days
}

fn line(device: &str, no: &str, time: OffsetDateTime, state: BillState, fee: u64) -> BillLine {
    BillLine::charge(device, no, format!("4200{no}"), time, state, fee)
}
