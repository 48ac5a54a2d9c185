//! The store's reads over 50 tills as the store database grows from a month
//! to a year (issue 12): the store screen's day (`Store::day_report`), the
//! per-till lines (`Store::day`), one order's timeline (`Store::timeline`)
//! and a month's (and a day's) CSV export by the real `scanpay store`
//! binary, with its peak resident memory. The day view is read on an open
//! connection and cold (the server restarted, its files dropped from the OS
//! cache); at the largest size the server's plans of one day view are
//! printed (auto_explain: ANALYZE, BUFFERS).
//!
//! cargo bench --bench store_view                          (1, 3, 12 months)
//! STORE_VIEW_MONTHS=1 cargo bench --bench store_view      (a quick run)
//!
//! The data goes straight into a throwaway PostgreSQL (the tests' server,
//! `fsync=off`) by SQL, a month per transaction: shipping millions of orders
//! through tills would take hours and is measured by `store_ship`. Every row
//! is what a till ships: order numbers minted as `OutTradeNo::mint` does,
//! events whose `detail` is the JSON of typed `Event`s, because the reads
//! validate each row they return.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

#[path = "support/timing.rs"]
mod timing;
use timing::{percentile, time_each};

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use scanpay::journal::{OrderId, day_bounds};
use scanpay::payment::event::{JournalFields, RefundReply};
use scanpay::payment::refund::{RefundAnswer, RefundCall, RefundFinal};
use scanpay::payment::{Answer, Call, Event};
use scanpay::store::Store;
use scanpay::wechat::api::{
    MicropayOutcome, QueryOutcome, Refusal, ReverseOutcome, Settlement, Unclear,
};
use time::macros::date;
use time::{Date, Month, UtcOffset};

const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+08:00 is a valid offset"),
};
const FIRST_DAY: Date = date!(2026 - 01 - 01);
const TILLS: u32 = 50;
const MCH_ID: &str = "1900000109";
const DAY_MS: i64 = 86_400_000;
/// Random days read per size (each once), and random orders' timelines.
const DAY_SAMPLES: usize = 20;
const COLD_DAY_SAMPLES: usize = 10;
const TIMELINE_SAMPLES: usize = 50;
/// A till's orders per day: uniform in this range (mean 200).
const ORDERS_PER_DAY: (u32, u32) = (100, 300);
/// Numbers the event templates carry where the order's amounts go (their
/// text becomes a `format()` argument), so the templates stay typed events.
const FEE: u64 = 900_000_001;
const REFUND_FEE: u64 = 900_000_002;
/// A till's journal order id is `day * SEQ_PER_DAY + k` (gaps where a day had
/// fewer orders: nothing reads the ids' contiguity), and an event's id is
/// `order id * EVENTS_PER_ORDER + step`.
const SEQ_PER_DAY: u32 = 300;
const EVENTS_PER_ORDER: i64 = 16;
const BODIES: [&str; 6] = [
    "门店消费",
    "两杯咖啡",
    "Lunch set",
    "面包",
    "Groceries",
    "奶茶 x3",
];

struct Size {
    months: u32,
    orders: i64,
    events: i64,
    refunds: i64,
    database: i64,
    loaded_in: Duration,
    day_orders: f64,
    day_report: Vec<Duration>,
    day_report_cold: Vec<Duration>,
    tills_day: Vec<Duration>,
    timeline: Vec<Duration>,
    export: Export,
    day_export: Export,
}

struct Export {
    /// `--date` and `--to`.
    days: String,
    took: Duration,
    rows: usize,
    bytes: u64,
    peak_rss_kib: i64,
}

fn main() {
    let began = Instant::now();
    let sizes: Vec<u32> = std::env::var("STORE_VIEW_MONTHS")
        .unwrap_or_else(|_| "1,3,12".into())
        .split(',')
        .map(|m| {
            m.trim()
                .parse()
                .expect("STORE_VIEW_MONTHS: months, e.g. 1,3,12")
        })
        .collect();
    assert!(
        sizes.windows(2).all(|w| w[0] < w[1]) && sizes.iter().all(|m| (1..=12).contains(m)),
        "STORE_VIEW_MONTHS: increasing, 1 to 12"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pg = postgres::Postgres::start();
    let settings = pg.settings(1000);
    // The schema as a till makes it: connect migrates.
    drop(runtime.block_on(Store::connect(&settings)).unwrap());
    pg.psql(&format!(
        "INSERT INTO tills (installation_id, till_id, mch_id, shipped_through, shipped_at) \
         SELECT upper(substr(md5('bench till ' || n), 1, 12)), 'T' || lpad(n::text, 2, '0'), '{MCH_ID}', 0, now() \
         FROM generate_series(1, {TILLS}) n"
    ));
    let steps = steps_sql();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let mut results = Vec::new();
    let mut loaded = 0;
    for &months in &sizes {
        let load = Instant::now();
        for month in loaded..months {
            let (from, to) = (month_start(month), month_start(month + 1));
            pg.psql(&month_sql(&steps, day_index(from), day_index(to)));
        }
        // As autovacuum would have by then; and so it does not run during
        // the reads.
        pg.psql("VACUUM (ANALYZE)");
        let loaded_in = load.elapsed();
        loaded = months;
        let count = |table: &str| -> i64 {
            pg.psql(&format!("SELECT count(*) FROM {table}"))
                .trim()
                .parse()
                .unwrap()
        };
        let (orders, events, refunds) = (count("orders"), count("events"), count("refunds"));
        let database: i64 = pg
            .psql("SELECT pg_database_size(current_database())")
            .trim()
            .parse()
            .unwrap();
        println!(
            "{}: {orders} orders, {events} events, {refunds} refunds, {:.2} GiB, loaded in {:.0?}",
            months_text(months),
            database as f64 / GIB,
            loaded_in
        );
        let last_day = day_index(month_start(months));
        let days: Vec<Date> = (0..DAY_SAMPLES)
            .map(|_| FIRST_DAY + time::Duration::days(rng.random_range(0..last_day)))
            .collect();
        let mut store = runtime
            .block_on(Store::connect_read_only(&settings))
            .unwrap();
        let mut day_orders = 0;
        let day_report = time_each(&days, |day| {
            let report = runtime.block_on(store.day_report(day, BEIJING)).unwrap();
            assert_eq!(report.report.orders.len() as u64, report.tills.total.orders);
            day_orders += report.report.orders.len();
        });
        let tills_day = time_each(&days, |day| {
            let tills = runtime.block_on(store.day(day, BEIJING)).unwrap();
            assert_eq!(tills.tills.len(), TILLS as usize);
        });
        let ids: Vec<i64> = (0..TIMELINE_SAMPLES)
            .map(|_| rng.random_range(1..=orders))
            .collect();
        let timeline = time_each(&ids, |id| {
            let events = runtime.block_on(store.timeline(OrderId(id))).unwrap();
            assert!((4..=11).contains(&events.len()), "order {id}: {events:?}");
            // Each detail read back as the typed event it was made from (an
            // unreadable one comes back as a note).
            assert!(
                events
                    .iter()
                    .all(|e| !matches!(e.event, Event::Note { .. })),
                "order {id}: {events:?}"
            );
        });
        drop(store);
        let first = month_start(months - 1);
        let last = month_start(months).previous_day().unwrap();
        let month_export = export(&pg, dir.path(), first, last);
        let (from, _) = day_bounds(first, BEIJING);
        let (_, to) = day_bounds(last, BEIJING);
        let in_month: usize = pg
            .psql(&format!(
                "SELECT count(*) FROM orders WHERE created_at_ms >= {from} AND created_at_ms < {to}"
            ))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            month_export.rows, in_month,
            "the export has every order of the month"
        );
        // Its last day alone: what the export holds in memory at a time.
        let day_export = export(&pg, dir.path(), last, last);
        if months == *sizes.last().unwrap() {
            explain(&pg, &runtime, &settings, days[0], ids[0], false);
            explain(&pg, &runtime, &settings, days[0], ids[0], true);
        }
        // Last: it leaves the server's cache and the OS's without the store.
        let cold_days: Vec<Date> = (0..COLD_DAY_SAMPLES)
            .map(|_| FIRST_DAY + time::Duration::days(rng.random_range(0..last_day)))
            .collect();
        let day_report_cold: Vec<Duration> = cold_days
            .iter()
            .map(|&day| {
                cold_start(&pg);
                // A new connection, as `scanpay store` makes one.
                let began = Instant::now();
                let mut store = runtime
                    .block_on(Store::connect_read_only(&settings))
                    .unwrap();
                runtime.block_on(store.day_report(day, BEIJING)).unwrap();
                began.elapsed()
            })
            .collect();
        results.push(Size {
            months,
            orders,
            events,
            refunds,
            database,
            loaded_in,
            day_orders: day_orders as f64 / DAY_SAMPLES as f64,
            day_report,
            day_report_cold,
            tills_day,
            timeline,
            export: month_export,
            day_export,
        });
    }
    print_table(&results);
    println!(
        "\nwhole bench: {:.0?}; load average at the end: {}",
        began.elapsed(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn months_text(n: u32) -> String {
    format!("{n} month{}", if n == 1 { "" } else { "s" })
}

/// The first day of the `n`th month from [`FIRST_DAY`].
fn month_start(n: u32) -> Date {
    let year = FIRST_DAY.year() + (n / 12) as i32;
    Date::from_calendar_date(year, Month::January.nth_next((n % 12) as u8), 1).unwrap()
}

fn day_index(day: Date) -> i64 {
    (day - FIRST_DAY).whole_days()
}

/// `(h & max)`: a hash of `key` never below zero (`abs` fails on i64::MIN).
fn hash(key: &str, salt: u32) -> String {
    format!("(hashint8extended({key}, {salt}) & 9223372036854775807)")
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What the templates' placeholders stand for, as the columns of `gen` (an
/// order) and `refund` (a refund, with its order's columns) hold them; a
/// placeholder becomes `%n$s` of `format()`, one pass per row.
const PLACEHOLDERS: [(&str, &str); 14] = [
    ("900000001", "g.fee"),
    ("@NO@", "g.no"),
    ("@TILL@", "g.till_id"),
    ("@BODY@", "g.body"),
    ("@CODE@", "g.masked"),
    ("@NONCE@", "g.nonce"),
    ("@OPENID@", "g.openid"),
    ("@TIME@", "g.time_end"),
    ("@YUAN@", "g.yuan"),
    ("@TX@", "g.tx"),
    ("900000002", "g.refund_fee"),
    ("@REFUND@", "g.refund_no"),
    ("@RYUAN@", "g.refund_yuan"),
    ("@RID@", "g.refund_id"),
];
/// The placeholders a refund's steps have (the last ones).
const REFUND_PLACEHOLDERS: usize = 4;

/// `template` (a step's summary or detail) as a `format()` string.
fn format_string(template: &str) -> String {
    assert_eq!(FEE.to_string(), PLACEHOLDERS[0].0);
    assert_eq!(REFUND_FEE.to_string(), PLACEHOLDERS[10].0);
    PLACEHOLDERS.iter().enumerate().fold(
        template.replace('%', "%%"),
        |text, (i, (placeholder, _))| text.replace(placeholder, &format!("%{}$s", i + 1)),
    )
}

/// `format(template, …)` with the values of an order's (or a refund's) row.
fn fill(template: &str, refund: bool) -> String {
    let values: Vec<&str> = PLACEHOLDERS
        .iter()
        .enumerate()
        .map(|(i, (_, column))| {
            if refund || i < PLACEHOLDERS.len() - REFUND_PLACEHOLDERS {
                column
            } else {
                "NULL"
            }
        })
        .collect();
    format!("format({template}, {})", values.join(", "))
}

/// One step of an order's log as the till journals it, `at_ms` after the
/// order opened (a refund's steps: after the refund opened).
struct Step {
    path: &'static str,
    at_ms: i64,
    since_t0_ms: Option<i64>,
    summary: String,
    event: Event,
}

fn fields(pairs: &[(&str, &str)]) -> JournalFields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The steps of each way an order goes, as typed events. `paid`: paid at
/// once; `paid_wait`: the customer confirms on the phone, a query finds it
/// paid; `failed`: refused; `reversed`: no answer, reversed; `attention`: no
/// answer to anything, left for a person; `refund`: a refund of a paid order.
fn steps() -> Vec<Step> {
    let fee = FEE.to_string();
    let identity = [
        ("appid", "wx2421b1c4370ec43b"),
        ("mch_id", MCH_ID),
        ("nonce_str", "@NONCE@"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut all = identity.to_vec();
        all.extend_from_slice(extra);
        fields(&all)
    };
    let opened = Event::Opened {
        till_id: "@TILL@".into(),
        total_fee: FEE,
        body: "@BODY@".into(),
        auth_code_masked: "@CODE@".into(),
    };
    let micropay = Event::Request {
        call: Call::Micropay,
        fields: with(&[
            ("auth_code", "@CODE@"),
            ("body", "@BODY@"),
            ("device_info", "@TILL@"),
            ("fee_type", "CNY"),
            ("out_trade_no", "@NO@"),
            ("spbill_create_ip", "192.168.1.20"),
            ("total_fee", &fee),
        ]),
    };
    let settled = Settlement {
        transaction_id: "@TX@".into(),
        time_end: Some("@TIME@".into()),
        cash_fee: Some(FEE),
    };
    let paid_fields = |extra: &[(&str, &str)]| {
        let mut all = vec![
            ("return_code", "SUCCESS"),
            ("return_msg", "OK"),
            ("result_code", "SUCCESS"),
            ("device_info", "@TILL@"),
            ("openid", "@OPENID@"),
            ("is_subscribe", "N"),
            ("trade_type", "MICROPAY"),
            ("bank_type", "CMB_DEBIT"),
            ("fee_type", "CNY"),
            ("total_fee", &fee),
            ("cash_fee_type", "CNY"),
            ("cash_fee", &fee),
            ("transaction_id", "@TX@"),
            ("out_trade_no", "@NO@"),
            ("time_end", "@TIME@"),
        ];
        all.extend_from_slice(extra);
        with(&all)
    };
    let refused = |code: &str, description: &str| {
        with(&[
            ("return_code", "SUCCESS"),
            ("return_msg", "OK"),
            ("result_code", "FAIL"),
            ("err_code", code),
            ("err_code_des", description),
        ])
    };
    let query = Event::Request {
        call: Call::Query,
        fields: with(&[("out_trade_no", "@NO@")]),
    };
    let reverse = Event::Request {
        call: Call::Reverse { attempt: 1 },
        fields: with(&[("out_trade_no", "@NO@")]),
    };
    let timed_out = Unclear::Transport("no answer within 10 s".into());
    let finished =
        |state: &str, err_code: Option<&str>, transaction_id: Option<&str>| Event::Finished {
            state: state.into(),
            err_code: err_code.map(Into::into),
            transaction_id: transaction_id.map(Into::into),
        };
    let step = |path, at_ms, since_t0_ms: Option<i64>, summary: &str, event| Step {
        path,
        at_ms,
        since_t0_ms,
        summary: summary.into(),
        event,
    };
    let opened_summary = "order @NO@ opened: @YUAN@ yuan, payment code @CODE@";
    let sent_summary = "micropay sent: @YUAN@ yuan, code @CODE@";
    let mut all = Vec::new();
    for path in ["paid", "paid_wait", "failed", "reversed", "attention"] {
        all.push(step(path, 0, None, opened_summary, opened.clone()));
        all.push(step(path, 40, Some(0), sent_summary, micropay.clone()));
    }
    all.extend([
        step(
            "paid",
            1240,
            Some(1200),
            "micropay answer: PAID — transaction @TX@",
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Paid(settled.clone())),
                fields: Some(paid_fields(&[])),
            },
        ),
        step(
            "paid",
            1250,
            Some(1210),
            "finished: paid — 支付成功",
            finished("paid", None, Some("@TX@")),
        ),
        step(
            "paid_wait",
            900,
            Some(860),
            "micropay answer: PENDING — USERPAYING: the customer confirms on the phone",
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Pending),
                fields: Some(refused("USERPAYING", "需要用户输入支付密码")),
            },
        ),
        step(
            "paid_wait",
            5040,
            Some(5000),
            "timer: query due at 5000 ms",
            Event::Timer { due_ms: 5000 },
        ),
        step("paid_wait", 5045, Some(5005), "orderquery sent", query.clone()),
        step(
            "paid_wait",
            5260,
            Some(5220),
            "orderquery answer: PAID — transaction @TX@",
            Event::Answer {
                answer: Answer::Query(QueryOutcome::Paid(settled)),
                fields: Some(paid_fields(&[
                    ("trade_state", "SUCCESS"),
                    ("trade_state_desc", "支付成功"),
                ])),
            },
        ),
        step(
            "paid_wait",
            5270,
            Some(5230),
            "finished: paid — 支付成功",
            finished("paid", None, Some("@TX@")),
        ),
        step(
            "failed",
            700,
            Some(660),
            "micropay answer: FAILED — NOTENOUGH 余额不足",
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Failed(Refusal {
                    code: "NOTENOUGH".into(),
                    description: "余额不足".into(),
                })),
                fields: Some(refused("NOTENOUGH", "余额不足")),
            },
        ),
        step(
            "failed",
            710,
            Some(670),
            "finished: failed — 支付失败（NOTENOUGH），请用户重新支付",
            finished("failed", Some("NOTENOUGH"), None),
        ),
        step(
            "reversed",
            10040,
            Some(10000),
            "micropay answer: UNKNOWN — no answer within 10 s",
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Unknown(timed_out.clone())),
                fields: None,
            },
        ),
        step(
            "reversed",
            10045,
            Some(10005),
            "timer: reverse due at 10005 ms",
            Event::Timer { due_ms: 10005 },
        ),
        step(
            "reversed",
            10050,
            Some(10010),
            "reverse attempt 1 sent",
            reverse,
        ),
        step(
            "reversed",
            10400,
            Some(10360),
            "reverse answer: REVERSED — recall=N",
            Event::Answer {
                answer: Answer::Reverse(ReverseOutcome::Reversed),
                fields: Some(with(&[
                    ("return_code", "SUCCESS"),
                    ("result_code", "SUCCESS"),
                    ("recall", "N"),
                ])),
            },
        ),
        step(
            "reversed",
            10410,
            Some(10370),
            "finished: reversed — 微信支付在时限内未能确认结果（网络或网关故障，不是顾客的问题），订单已撤销，顾客未被扣款",
            finished("reversed", None, None),
        ),
        step(
            "attention",
            10040,
            Some(10000),
            "micropay answer: UNKNOWN — no answer within 10 s",
            Event::Answer {
                answer: Answer::Micropay(MicropayOutcome::Unknown(timed_out)),
                fields: None,
            },
        ),
        step(
            "attention",
            15040,
            Some(15000),
            "timer: query due at 15000 ms",
            Event::Timer { due_ms: 15000 },
        ),
        step("attention", 15045, Some(15005), "orderquery sent", query),
        step(
            "attention",
            15300,
            Some(15260),
            "orderquery answer: UNKNOWN — SYSTEMERROR 系统错误",
            Event::Answer {
                answer: Answer::Query(QueryOutcome::Unknown(Unclear::Gateway {
                    code: "SYSTEMERROR".into(),
                    description: "系统错误".into(),
                })),
                fields: Some(refused("SYSTEMERROR", "系统错误")),
            },
        ),
        step(
            "attention",
            15310,
            Some(15270),
            "finished: needs_attention — 结果未明，请稍后用 scanpay replay 查询",
            finished("needs_attention", Some("SYSTEMERROR"), None),
        ),
        step(
            "refund",
            0,
            None,
            "refund @REFUND@ opened: @RYUAN@ yuan",
            Event::RefundOpened {
                out_refund_no: "@REFUND@".into(),
                refund_fee: REFUND_FEE,
                reason: Some("顾客退货".into()),
            },
        ),
        step(
            "refund",
            30,
            None,
            "refund sent",
            Event::RefundRequest {
                out_refund_no: "@REFUND@".into(),
                call: RefundCall::Refund { attempt: 1 },
                fields: with(&[
                    ("out_trade_no", "@NO@"),
                    ("out_refund_no", "@REFUND@"),
                    ("total_fee", &fee),
                    ("refund_fee", &REFUND_FEE.to_string()),
                    ("refund_fee_type", "CNY"),
                    ("refund_desc", "顾客退货"),
                ]),
            },
        ),
        step(
            "refund",
            450,
            None,
            "refund answer: Refund(Accepted { refund_id: \"@RID@\" })",
            Event::RefundAnswer {
                out_refund_no: "@REFUND@".into(),
                answer: RefundReply::Refund(RefundAnswer::Accepted {
                    refund_id: "@RID@".into(),
                }),
                fields: Some(with(&[
                    ("return_code", "SUCCESS"),
                    ("return_msg", "OK"),
                    ("result_code", "SUCCESS"),
                    ("transaction_id", "@TX@"),
                    ("out_trade_no", "@NO@"),
                    ("out_refund_no", "@REFUND@"),
                    ("refund_id", "@RID@"),
                    ("refund_fee", &REFUND_FEE.to_string()),
                    ("total_fee", &fee),
                    ("cash_fee", &fee),
                ])),
            },
        ),
        step(
            "refund",
            460,
            None,
            "refund @REFUND@ refunded: 退款成功",
            Event::RefundFinished {
                out_refund_no: "@REFUND@".into(),
                outcome: RefundFinal::Refunded {
                    refund_id: "@RID@".into(),
                },
            },
        ),
    ]);
    all
}

/// The steps as SQL rows `(path, step, kind, call, at_ms, since_t0_ms,
/// summary, detail)`; a path's steps are numbered in time order, a refund's
/// after its order's (they come later in the journal).
fn steps_sql() -> String {
    let mut steps = steps();
    steps.sort_by_key(|s| (s.path, s.at_ms));
    let mut rows = Vec::new();
    let mut numbered: Option<(&str, i64)> = None;
    for s in &steps {
        let j = match numbered {
            Some((path, j)) if path == s.path => j + 1,
            _ if s.path == "refund" => 12,
            _ => 0,
        };
        numbered = Some((s.path, j));
        assert!(j < EVENTS_PER_ORDER);
        rows.push(format!(
            "({}, {j}, {}, {}, {}, {}, {}, {})",
            quote(s.path),
            quote(s.event.kind().as_str()),
            s.event.call_name().map_or("NULL".into(), quote),
            s.at_ms,
            s.since_t0_ms.map_or("NULL".into(), |ms| ms.to_string()),
            quote(&format_string(&s.summary)),
            quote(&format_string(&s.event.to_stored().to_string())),
        ));
    }
    rows.join(",\n")
}

/// One transaction loading the local days `[d0, d1)` of every till: orders,
/// their events and refunds, and the tills' marks.
fn month_sql(steps: &str, d0: i64, d1: i64) -> String {
    let (base, _) = day_bounds(FIRST_DAY, BEIJING);
    let (lo, hi) = ORDERS_PER_DAY;
    let span = hi - lo + 1;
    // Opening hours 08:00–22:00 local, a day's orders spread evenly over them.
    let open_ms = 8 * 3_600_000;
    let hours_ms = 14 * 3_600_000;
    let bodies = BODIES.map(quote).join(", ");
    let local = |ms: &str, format: &str| {
        format!(
            "to_char(to_timestamp(({ms}) / 1000.0) AT TIME ZONE 'UTC' + interval '8 hours', '{format}')"
        )
    };
    let stamp = local("o.created", "YYMMDDHH24MISS");
    let time_end = local("o.created + 1200", "YYYYMMDDHH24MISS");
    let till_day = hash("t.n * 1000 + d", 1);
    let in_slot = hash("b.key", 2);
    let path = hash("o.key", 3);
    let refunded = hash("g.key", 4);
    let refund_delay = hash("g.key", 5);
    let body = hash("o.key", 6);
    let code = hash("o.key", 7);
    let tx = hash("o.key", 8);
    let events_of = |from: &str, at: &str, where_: &str| {
        let refund = from == "refund";
        let (summary, detail) = (fill("s.summary", refund), fill("s.detail", refund));
        format!(
            "INSERT INTO events (installation_id, event_id, order_id, out_trade_no, at_ms, since_t0_ms, kind, call, summary, detail, payload_sha256) \
             SELECT installation_id, event_id, order_id, no, at_ms, since_t0_ms, kind, call, summary, detail::jsonb, \
               sha256(convert_to(summary || detail, 'UTF8')) \
             FROM (SELECT g.installation_id, g.seq * {EVENTS_PER_ORDER} + s.j AS event_id, g.seq AS order_id, g.no, \
                     {at} + s.at_ms AS at_ms, s.since_t0_ms, s.kind, s.call, {summary} AS summary, {detail} AS detail \
                   FROM {from} g JOIN steps s ON {where_}) e;"
        )
    };
    let order_events = events_of("gen", "g.created", "s.path = g.path");
    let refund_events = events_of("refund", "g.refund_at", "s.path = 'refund'");
    format!(
        "CREATE TEMP TABLE steps (path, j, kind, call, at_ms, since_t0_ms, summary, detail) AS VALUES {steps};
         CREATE TEMP TABLE gen AS
         SELECT o.*, o.till_id || {stamp} || substr(o.installation_id, 1, 6) || lpad((o.seq % 1000000)::text, 6, '0') AS no,
           (ARRAY[{bodies}])[1 + {body} % {n_bodies}] AS body,
           '**************' || lpad(({code} % 10000)::text, 4, '0') AS masked,
           '4200' || lpad(({tx} % 100000000000000)::text, 24, '0') AS tx,
           {time_end} AS time_end,
           md5(o.key::text) AS nonce,
           'oUpF8u' || substr(md5(o.key::text || 'openid'), 1, 22) AS openid,
           CASE WHEN {path} % 1000 < 860 THEN 'paid' WHEN {path} % 1000 < 955 THEN 'paid_wait'
                WHEN {path} % 1000 < 980 THEN 'failed' WHEN {path} % 1000 < 996 THEN 'reversed'
                ELSE 'attention' END AS path,
           to_char(o.fee / 100.0, 'FM999990.00') AS yuan
         FROM (SELECT b.*, 100 + {fee} % 19901 AS fee, {base} + b.d::bigint * {DAY_MS} + {open_ms} + ((b.k - 1) * {hours_ms}::bigint + {in_slot} % {hours_ms}) / b.count AS created
               FROM (SELECT dt.installation_id, dt.till_id, dt.d, dt.count, k, (dt.n::bigint * 1000 + dt.d) * 1000 + k AS key,
                       dt.d * {SEQ_PER_DAY} + k AS seq
                     FROM (SELECT t.installation_id, t.till_id, t.n, d, {lo} + {till_day} % {span} AS count
                           FROM (SELECT installation_id, till_id, substr(till_id, 2)::int AS n FROM tills) t,
                                generate_series({d0}, {d1} - 1) d) dt,
                          generate_series(1, dt.count) k) b) o
         ORDER BY o.created, o.installation_id;
         INSERT INTO orders (mch_id, out_trade_no, installation_id, till_id, total_fee, body, auth_code_masked, created_at_ms,
           micropay_sent_at_ms, state, finished_at_ms, transaction_id, err_code, message, version)
         SELECT '{MCH_ID}', g.no, g.installation_id, g.till_id, g.fee, g.body, g.masked, g.created, g.created + 40,
           CASE g.path WHEN 'paid_wait' THEN 'paid' WHEN 'attention' THEN 'needs_attention' ELSE g.path END,
           g.created + f.at_ms,
           CASE WHEN g.path IN ('paid', 'paid_wait') THEN g.tx END,
           CASE g.path WHEN 'failed' THEN 'NOTENOUGH' WHEN 'attention' THEN 'SYSTEMERROR' END,
           CASE g.path WHEN 'failed' THEN '支付失败（NOTENOUGH），请用户重新支付'
             WHEN 'reversed' THEN '微信支付在时限内未能确认结果（网络或网关故障，不是顾客的问题），订单已撤销，顾客未被扣款'
             WHEN 'attention' THEN '结果未明，请稍后用 scanpay replay 查询' ELSE '支付成功' END,
           g.seq * {EVENTS_PER_ORDER} + {EVENTS_PER_ORDER} - 1
         FROM gen g JOIN (SELECT path, max(at_ms) AS at_ms FROM steps GROUP BY path) f USING (path);
         {order_events}
         CREATE TEMP TABLE refund AS
         SELECT r.*, r.no || 'R01' AS refund_no, to_char(r.refund_fee / 100.0, 'FM999990.00') AS refund_yuan
         FROM (SELECT g.*, g.created + CASE WHEN {refund_delay} % 10 < 6 THEN 600000 + {refund_delay} % 14400000
                                      ELSE {refund_delay} % (7 * {DAY_MS}) END AS refund_at,
           CASE WHEN {refund_delay} % 10 < 7 THEN g.fee ELSE g.fee / 2 END AS refund_fee,
           '5030' || lpad((g.key % 10000000000000)::text, 25, '0') AS refund_id
               FROM gen g WHERE g.path IN ('paid', 'paid_wait') AND {refunded} % 1000 < 10) r
         ORDER BY r.refund_at;
         INSERT INTO refunds (mch_id, out_refund_no, out_trade_no, installation_id, refund_fee, reason, created_at_ms, state,
           finished_at_ms, refund_id, err_code, message, version)
         SELECT '{MCH_ID}', g.refund_no, g.no, g.installation_id, g.refund_fee, '顾客退货', g.refund_at, 'refunded',
           g.refund_at + 460, g.refund_id, NULL, '退款成功', g.seq * {EVENTS_PER_ORDER} + {EVENTS_PER_ORDER} - 1
         FROM refund g;
         {refund_events}
         UPDATE tills t SET shipped_through = GREATEST(t.shipped_through, m.through), shipped_at = now()
         FROM (SELECT installation_id, max(seq) * {EVENTS_PER_ORDER} + {EVENTS_PER_ORDER} - 1 AS through
               FROM gen GROUP BY installation_id) m
         WHERE m.installation_id = t.installation_id;",
        n_bodies = BODIES.len(),
        fee = hash("b.key", 9),
    )
}

/// `scanpay store --date first --to last --format csv --output FILE` as the
/// manager runs it: its wall time and its peak resident memory (the kernel's
/// `ru_maxrss` of the process, from wait4).
#[expect(
    clippy::zombie_processes,
    reason = "reaped by wait4, which std's wait does not give the rusage of"
)]
fn export(pg: &postgres::Postgres, dir: &Path, first: Date, last: Date) -> Export {
    let output = dir.join(format!("{first}-{last}.csv"));
    let began = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_scanpay"))
        .current_dir(dir)
        .env_remove("SCANPAY_CONFIG")
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_JOURNAL_PATH", dir.join("manager.sqlite3"))
        .env("SCANPAY_TILL_TIME_ZONE", "+08:00")
        .env("SCANPAY_STORE_DATABASE_URL", pg.url())
        .env("SCANPAY_STORE_PASSWORD", postgres::PASSWORD)
        .args([
            "store",
            "--date",
            &first.to_string(),
            "--to",
            &last.to_string(),
        ])
        .args(["--format", "csv", "--output"])
        .arg(&output)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our unwaited child; both pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let took = began.elapsed();
    assert_eq!(pid, child.id() as i32);
    let mut said = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "scanpay store: {said}"
    );
    // "scanpay store: N orders of every till written to FILE"
    let rows = said
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("scanpay store said {said:?}"));
    Export {
        days: format!("{first} to {last}"),
        took,
        rows,
        bytes: std::fs::metadata(&output).unwrap().len(),
        // ru_maxrss is in KiB on Linux.
        peak_rss_kib: usage.ru_maxrss,
    }
}

/// The plans of one `day_report` and one `timeline`, as the server ran them
/// (auto_explain with ANALYZE, BUFFERS and the time spent reading, on a new
/// connection), printed; `cold`: after [`cold_start`].
fn explain(
    pg: &postgres::Postgres,
    runtime: &tokio::runtime::Runtime,
    settings: &scanpay::config::StoreSettings,
    day: Date,
    order: i64,
    cold: bool,
) {
    let log = pg.socket_dir().join("server.log");
    let start = std::fs::metadata(&log).unwrap().len() as usize;
    pg.psql(
        "ALTER DATABASE store SET session_preload_libraries = 'auto_explain'; \
         ALTER DATABASE store SET auto_explain.log_min_duration = 0; \
         ALTER DATABASE store SET auto_explain.log_analyze = on; \
         ALTER DATABASE store SET auto_explain.log_buffers = on; \
         ALTER DATABASE store SET track_io_timing = on",
    );
    if cold {
        cold_start(pg);
    }
    let mut store = runtime
        .block_on(Store::connect_read_only(settings))
        .unwrap();
    runtime.block_on(store.day_report(day, BEIJING)).unwrap();
    runtime.block_on(store.timeline(OrderId(order))).unwrap();
    drop(store);
    pg.psql("ALTER DATABASE store RESET ALL");
    let text = std::fs::read_to_string(&log).unwrap();
    println!(
        "\nplans of day_report({day}) and timeline({order}), {}, auto_explain:",
        if cold { "cold" } else { "warm" }
    );
    for line in text[start..].lines() {
        // The plans only: not the connections' and statements' lines.
        if line.contains("duration:") || line.starts_with(['\t', ' ']) {
            println!("{line}");
        }
    }
}

/// The store as after the server machine's restart: the server restarted
/// (its shared buffers empty) and the database's files out of the OS cache.
fn cold_start(pg: &postgres::Postgres) {
    pg.psql("CHECKPOINT");
    pg.kill9();
    drop_from_os_cache(&pg.socket_dir().join("data"));
    pg.restart();
}

/// Writes back, then asks the kernel to forget, every file under `dir`.
fn drop_from_os_cache(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            drop_from_os_cache(&path);
        } else if let Ok(file) = std::fs::File::open(&path) {
            // Dirty pages are not dropped: with fsync=off nothing wrote them.
            file.sync_all().unwrap();
            // SAFETY: a valid open descriptor; the advice has no memory effects.
            unsafe {
                libc::posix_fadvise(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    0,
                    0,
                    libc::POSIX_FADV_DONTNEED,
                )
            };
        }
    }
}

fn print_table(sizes: &[Size]) {
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let spread = |samples: &[Duration]| {
        format!(
            "{} / {}",
            ms(percentile(samples, 50)),
            ms(percentile(samples, 95))
        )
    };
    println!(
        "\n| store holds | orders | events | refunds | database | loaded + VACUUM ANALYZE in |"
    );
    println!("|---|---|---|---|---|---|");
    for s in sizes {
        println!(
            "| {} | {} | {} | {} | {:.2} GiB | {:.0} s |",
            months_text(s.months),
            s.orders,
            s.events,
            s.refunds,
            s.database as f64 / GIB,
            s.loaded_in.as_secs_f64(),
        );
    }
    println!(
        "\n| store holds | day view (~{:.0} orders), p50 / p95 | day view, server restarted + OS cache dropped (n={COLD_DAY_SAMPLES}), p50 / p95 \
         | per-till lines, p50 / p95 | one order's timeline (n={TIMELINE_SAMPLES}), p50 / p95 |",
        sizes.iter().map(|s| s.day_orders).sum::<f64>() / sizes.len() as f64
    );
    println!("|---|---|---|---|---|");
    for s in sizes {
        println!(
            "| {} | {} | {} | {} | {} |",
            months_text(s.months),
            spread(&s.day_report),
            spread(&s.day_report_cold),
            spread(&s.tills_day),
            spread(&s.timeline),
        );
    }
    println!(
        "\n| store holds | `scanpay store --format csv --output` | rows | CSV | took | peak RSS |"
    );
    println!("|---|---|---|---|---|---|");
    for s in sizes {
        for e in [&s.export, &s.day_export] {
            println!(
                "| {} | {} | {} | {:.1} MiB | {:.2} s | {:.1} MiB |",
                months_text(s.months),
                e.days,
                e.rows,
                e.bytes as f64 / (1024.0 * 1024.0),
                e.took.as_secs_f64(),
                e.peak_rss_kib as f64 / 1024.0,
            );
        }
    }
}
