//! The journal's reporting side on real SQLite files: day boundaries in the
//! store's time zone, the day summary, and the CSV and JSON exports.

use rusqlite::{Connection, TransactionBehavior};
use scanpay::domain::{AuthCode, Fen, TillId};
use scanpay::journal::{
    DaySummary, EXPORT_COLUMNS, EventRecord, ExportFormat, ExportWriter, FinalRecord, Journal,
    NewOrder, OrderState, RefundEnd, RefundState, RefundTotals, UTF8_BOM, day_bounds, excel_cell,
    write_csv, write_json,
};
use serde_json::Value;
use tempfile::TempDir;
use time::macros::{date, datetime, offset};
use time::{Duration, OffsetDateTime, UtcOffset};

const BEIJING: UtcOffset = offset!(+8);
const CODE: &str = "134539517967686076";

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

struct Fixture {
    dir: TempDir,
    journal: Journal,
    till: TillId,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
        let till = TillId::parse("T01").unwrap();
        Self { dir, journal, till }
    }

    /// Records an order created at `at` that ends in `state` a few seconds later.
    fn order(&mut self, at: OffsetDateTime, yuan: &str, state: OrderState) {
        self.order_with(
            at,
            yuan,
            state,
            "Coffee",
            AuthCode::parse(CODE).unwrap().masked(),
        );
    }

    fn order_with(
        &mut self,
        at: OffsetDateTime,
        yuan: &str,
        state: OrderState,
        body: &str,
        auth_code_masked: String,
    ) {
        let new = NewOrder {
            till: &self.till,
            total_fee: Fen::parse_yuan(yuan).unwrap(),
            body,
            auth_code_masked,
            now: at,
            local_offset: BEIJING,
        };
        let (id, _) = self.journal.open_order(&new).unwrap();
        if state == OrderState::Open {
            return;
        }
        let paid = state == OrderState::Paid;
        let outcome = FinalRecord {
            state,
            transaction_id: paid.then(|| "4200001234202611221234567890".into()),
            err_code: (state == OrderState::Failed).then(|| "NOTENOUGH".into()),
            message: Some(if paid { "支付成功" } else { "余额不足" }.into()),
            at: at + Duration::milliseconds(2_500),
        };
        let event = EventRecord {
            at: outcome.at,
            since_t0_ms: Some(2_400),
            summary: format!("finished: {state}"),
            event: scanpay::payment::Event::Finished {
                state: "paid".into(),
                err_code: None,
                transaction_id: None,
            },
        };
        self.journal.finish(id, &outcome, &event).unwrap();
    }
}

fn csv_of(journal: &Journal, day: time::Date) -> String {
    let report = journal.day(day, BEIJING).unwrap();
    let mut out = Vec::new();
    write_csv(&report, BEIJING, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn json_of(journal: &Journal, day: time::Date) -> String {
    let report = journal.day(day, BEIJING).unwrap();
    let mut out = Vec::new();
    write_json(&report, BEIJING, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn a_day_is_the_stores_local_day() {
    let (from, to) = day_bounds(date!(2026 - 11 - 23), BEIJING);
    assert_eq!(from, ms(datetime!(2026-11-22 16:00 UTC)));
    assert_eq!(to, ms(datetime!(2026-11-23 16:00 UTC)));
    let (from, to) = day_bounds(date!(2026 - 11 - 23), offset!(-5));
    assert_eq!(
        (from, to),
        (
            ms(datetime!(2026-11-23 05:00 UTC)),
            ms(datetime!(2026-11-24 05:00 UTC))
        )
    );

    let mut f = Fixture::new();
    f.order(
        datetime!(2026-11-22 15:59:59.999 UTC),
        "1",
        OrderState::Paid,
    );
    f.order(datetime!(2026-11-22 16:00 UTC), "2", OrderState::Paid);
    f.order(datetime!(2026-11-22 16:30 UTC), "4", OrderState::Paid);
    f.order(
        datetime!(2026-11-23 15:59:59.999 UTC),
        "8",
        OrderState::Paid,
    );
    f.order(datetime!(2026-11-23 16:00 UTC), "16", OrderState::Paid);

    let on_22 = f.journal.day(date!(2026 - 11 - 22), BEIJING).unwrap();
    assert_eq!(on_22.summary.paid_total, Fen(100));
    assert_eq!(on_22.summary.hourly_paid[23], Fen(100));

    let on_23 = f.journal.day(date!(2026 - 11 - 23), BEIJING).unwrap();
    assert_eq!(on_23.day, date!(2026 - 11 - 23));
    let amounts: Vec<_> = on_23.orders.iter().map(|o| o.total_fee.0).collect();
    assert_eq!(
        amounts,
        [200, 400, 800],
        "oldest first, 16:00Z included, next 16:00Z not"
    );
    // 16:00Z and 16:30Z are 00:00 and 00:30 in Beijing; 15:59Z the next day is 23:59.
    assert_eq!(on_23.summary.hourly_paid[0], Fen(600));
    assert_eq!(on_23.summary.hourly_paid[23], Fen(800));

    let csv = csv_of(&f.journal, date!(2026 - 11 - 23));
    let (_, rows) = parse_csv(&csv);
    assert_eq!(rows[2][1], "2026-11-23T23:59:59+08:00");
}

#[test]
fn the_summary_counts_every_state_and_sums_paid_takings_per_local_hour() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    // Local times, Beijing.
    let at = |h: u8, m: u8| day.with_hms(h, m, 0).unwrap().assume_offset(BEIJING);
    f.order(at(9, 5), "12.34", OrderState::Paid);
    f.order(at(9, 59), "0.01", OrderState::Paid);
    f.order(at(12, 30), "1000.00", OrderState::Paid);
    f.order(at(12, 31), "5.00", OrderState::Failed);
    f.order(at(12, 32), "6.00", OrderState::Failed);
    f.order(at(13, 0), "7.00", OrderState::Reversed);
    f.order(at(14, 0), "8.00", OrderState::Closed);
    f.order(at(15, 0), "9.00", OrderState::NeedsAttention);
    f.order(at(21, 45), "10.00", OrderState::Open);
    // Neighbouring days are not counted.
    f.order(at(0, 0) - Duration::milliseconds(1), "99", OrderState::Paid);
    f.order(at(0, 0) + Duration::days(1), "99", OrderState::Paid);

    let mut hourly_paid = [Fen(0); 24];
    hourly_paid[9] = Fen(1235);
    hourly_paid[12] = Fen(100_000);
    let expected = DaySummary {
        paid_count: 3,
        paid_total: Fen(101_235),
        failed: 2,
        reversed: 1,
        closed: 1,
        needs_attention: 1,
        open: 1,
        hourly_paid,
        refunded_count: 0,
        refunded_total: Fen(0),
        refund_pending_count: 0,
        refund_pending_total: Fen(0),
    };
    let report = f.journal.day(day, BEIJING).unwrap();
    assert_eq!(report.summary, expected);
    assert_eq!(report.orders.len(), 9);
    let (from, to) = day_bounds(day, BEIJING);
    assert_eq!(f.journal.summary_between(from, to).unwrap(), expected);
    assert_eq!(
        f.journal.summary_between(from, from).unwrap(),
        DaySummary::default()
    );
}

#[test]
fn csv_has_the_documented_header_and_exact_rows() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    f.order(
        datetime!(2026-11-22 14:03:07.250 +8),
        "0.01",
        OrderState::Paid,
    );
    f.order_with(
        datetime!(2026-11-22 15:00 +8),
        "1000",
        OrderState::Failed,
        "两杯咖啡, \"大杯\"\nto go",
        AuthCode::parse(CODE).unwrap().masked(),
    );
    f.order(datetime!(2026-11-22 16:00 +8), "12.3", OrderState::Open);

    let text = csv_of(&f.journal, day);
    assert!(text.starts_with(
        "out_trade_no,created_at,till_id,amount,state,transaction_id,err_code,message,body,auth_code,finished_at,refunded\n"
    ));
    let (header, rows) = parse_csv(&text);
    assert_eq!(header, EXPORT_COLUMNS);
    let orders = f.journal.day(day, BEIJING).unwrap().orders;
    let no = |i: usize| orders[i].out_trade_no.to_string();
    let masked = "**************6076";
    assert_eq!(
        rows,
        [
            vec![
                no(0).as_str(),
                "2026-11-22T14:03:07+08:00",
                "T01",
                "0.01",
                "paid",
                "4200001234202611221234567890",
                "",
                "支付成功",
                "Coffee",
                masked,
                "2026-11-22T14:03:09+08:00",
                "0.00",
            ],
            vec![
                no(1).as_str(),
                "2026-11-22T15:00:00+08:00",
                "T01",
                "1000.00",
                "failed",
                "",
                "NOTENOUGH",
                "余额不足",
                "两杯咖啡, \"大杯\"\nto go",
                masked,
                "2026-11-22T15:00:02+08:00",
                "0.00",
            ],
            vec![
                no(2).as_str(),
                "2026-11-22T16:00:00+08:00",
                "T01",
                "12.30",
                "open",
                "",
                "",
                "",
                "Coffee",
                masked,
                "",
                "0.00",
            ],
        ]
    );
    assert!(no(0).starts_with("T01261122140307"), "{}", no(0));
}

#[test]
fn json_has_the_same_keys_and_values_as_csv() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    f.order(datetime!(2026-11-22 09:00 +8), "1000.00", OrderState::Paid);
    f.order(
        datetime!(2026-11-22 10:00 +8),
        "0.01",
        OrderState::NeedsAttention,
    );
    f.order(datetime!(2026-11-22 11:00 +8), "3", OrderState::Open);

    let text = json_of(&f.journal, day);
    // One object per line, keys in the documented order.
    assert_eq!(text.lines().count(), 5, "{text}");
    let second = text.lines().nth(2).unwrap();
    let at: Vec<_> = EXPORT_COLUMNS
        .iter()
        .map(|column| second.find(&format!("\"{column}\":")).unwrap())
        .collect();
    assert!(at.is_sorted(), "keys out of order in {second}");

    let objects: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&text).unwrap();
    let (_, rows) = parse_csv(&csv_of(&f.journal, day));
    assert_eq!(objects.len(), 3);
    for (object, row) in objects.iter().zip(&rows) {
        assert_eq!(object.len(), EXPORT_COLUMNS.len());
        for (column, field) in EXPORT_COLUMNS.iter().zip(row) {
            match &object[*column] {
                Value::String(text) => assert_eq!(text, field, "{column}"),
                Value::Null => assert_eq!(field, "", "{column}"),
                other => panic!("{column} is {other}: every value is a string or null"),
            }
        }
    }
    assert_eq!(objects[0]["amount"], "1000.00");
    assert_eq!(objects[1]["amount"], "0.01");
    assert_eq!(objects[1]["state"], "needs_attention");
    assert_eq!(objects[2]["finished_at"], Value::Null);
    assert_eq!(objects[2]["transaction_id"], Value::Null);
}

/// Words of exactly 18 digits starting 10–15: what a WeChat payment code looks like.
fn payment_codes(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 18 && w.starts_with('1') && (b'0'..=b'5').contains(&w.as_bytes()[1]))
        .collect()
}

#[test]
fn exports_show_only_the_last_four_digits_of_a_payment_code() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    f.order(datetime!(2026-11-22 09:00 +8), "1", OrderState::Paid);
    // Whatever a journal holds in the column, the export masks it again.
    f.order_with(
        datetime!(2026-11-22 09:01 +8),
        "1",
        OrderState::Paid,
        "Tea",
        "9876543210".into(),
    );
    for text in [csv_of(&f.journal, day), json_of(&f.journal, day)] {
        assert!(text.contains("**************6076"), "{text}");
        assert!(text.contains("******3210"), "{text}");
        assert!(!text.contains("9876543210"), "{text}");
        assert!(!text.contains("4539517967"), "{text}");
        assert_eq!(payment_codes(&text), Vec::<&str>::new());
    }
    // The check itself finds a code.
    assert_eq!(payment_codes(&format!("x,{CODE},y")), [CODE]);
}

#[test]
fn a_day_without_orders_exports_a_header_or_an_empty_array() {
    let mut f = Fixture::new();
    f.order(datetime!(2026-11-21 12:00 +8), "1", OrderState::Paid);
    let empty = date!(2026 - 11 - 22);
    assert_eq!(
        csv_of(&f.journal, empty),
        format!("{}\n", EXPORT_COLUMNS.join(","))
    );
    assert_eq!(json_of(&f.journal, empty), "[]\n");
    let report = f.journal.day(empty, BEIJING).unwrap();
    assert!(report.orders.is_empty());
    assert_eq!(report.summary, DaySummary::default());
}

#[test]
fn a_read_only_journal_reads_while_the_till_holds_the_write_lock_and_cannot_write() {
    let mut f = Fixture::new();
    let path = f.dir.path().join("journal.sqlite3");
    f.order(datetime!(2026-11-22 09:00 +8), "1", OrderState::Paid);
    // The till, mid-write.
    let mut till = Connection::open(&path).unwrap();
    let write = till
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();

    let started = std::time::Instant::now();
    let reader = Journal::open_read_only(&path).unwrap();
    let report = reader.day(date!(2026 - 11 - 22), BEIJING).unwrap();
    assert_eq!(report.summary.paid_count, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "waited for the writer"
    );
    drop(write);

    // And the till keeps writing while the reader is open.
    f.order(datetime!(2026-11-22 10:00 +8), "2", OrderState::Paid);
    let day = date!(2026 - 11 - 22);
    assert_eq!(reader.day(day, BEIJING).unwrap().orders.len(), 2);

    let mut reader = reader;
    let new = NewOrder {
        till: &f.till,
        total_fee: Fen(1),
        body: "Coffee",
        auth_code_masked: "**************6076".into(),
        now: datetime!(2026-11-22 11:00 +8),
        local_offset: BEIJING,
    };
    assert!(reader.open_order(&new).is_err());
    assert_eq!(f.journal.day(day, BEIJING).unwrap().orders.len(), 2);
}

#[test]
fn a_read_only_open_never_creates_a_journal() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("journal.sqlite3");
    assert!(Journal::open_read_only(&path).is_err());
    assert!(!path.exists());
    // A blank file is not a journal to read either.
    std::fs::write(&path, "").unwrap();
    let err = Journal::open_read_only(&path).err().unwrap();
    assert!(
        err.to_string().contains("is not a scanpay journal"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

fn excel_of(journal: &Journal, day: time::Date) -> Vec<u8> {
    let report = journal.day(day, BEIJING).unwrap();
    let mut export =
        ExportWriter::with_excel(ExportFormat::Csv, true, BEIJING, Vec::new()).unwrap();
    export.write(&report.orders, &report.refunds).unwrap();
    export.finish().unwrap()
}

/// `--excel`: a BOM so a Chinese Excel reads UTF-8, and ids as `="…"` so a
/// 28-digit transaction id is not shown as 4.2E+27; the plain CSV is unchanged.
#[test]
fn the_excel_export_has_a_bom_and_keeps_ids_as_text() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    f.order(datetime!(2026-11-22 14:03:07 +8), "0.01", OrderState::Paid);
    f.order_with(
        datetime!(2026-11-22 15:00 +8),
        "12.30",
        OrderState::Failed,
        "=HYPERLINK(\"http://x\")",
        AuthCode::parse(CODE).unwrap().masked(),
    );
    let bytes = excel_of(&f.journal, day);
    assert!(bytes.starts_with(UTF8_BOM), "{:?}", &bytes[..8]);
    let text = std::str::from_utf8(&bytes[UTF8_BOM.len()..]).unwrap();
    let (header, rows) = parse_csv(text);
    assert_eq!(header, EXPORT_COLUMNS);
    let orders = f.journal.day(day, BEIJING).unwrap().orders;
    assert_eq!(rows[0][0], format!("=\"{}\"", orders[0].out_trade_no));
    assert_eq!(rows[0][2], "=\"T01\"");
    assert_eq!(rows[0][5], "=\"4200001234202611221234567890\"");
    assert_eq!(rows[0][3], "0.01");
    assert_eq!(rows[0][7], "支付成功");
    assert_eq!(rows[1][5], "", "an absent id stays empty");
    // A description Excel would run as a formula is shown as the text it is.
    assert_eq!(rows[1][8], "=\"=HYPERLINK(\"\"http://x\"\")\"");
    assert_eq!(rows[1][9], "**************6076");
    // Plain CSV: no BOM, ids bare, as before.
    let plain = csv_of(&f.journal, day);
    assert!(
        plain.starts_with("out_trade_no,") && !plain.contains("=\""),
        "{plain}"
    );
    assert_eq!(excel_cell("", true), "");
    assert_eq!(excel_cell("42", false), "42");
    assert_eq!(excel_cell("-1", false), "=\"-1\"");
}

/// A refund of `order` opened at `at` and left in `state` (pending stays as opened).
fn refund(
    journal: &mut Journal,
    order: &scanpay::journal::OrderRow,
    yuan: &str,
    state: RefundState,
    at: OffsetDateTime,
) {
    let fee = Fen::parse_yuan(yuan).unwrap();
    let note = |text: &str| EventRecord {
        at,
        since_t0_ms: None,
        summary: text.into(),
        event: scanpay::payment::Event::Note { text: text.into() },
    };
    let row = journal
        .open_refund(order, fee, None, |_| note("refund opened"), at)
        .unwrap()
        .unwrap();
    if state == RefundState::Pending {
        return;
    }
    let end = RefundEnd {
        state,
        refund_id: (state == RefundState::Refunded).then(|| "50000000012026112212345678".into()),
        err_code: None,
        message: None,
        at: at + Duration::seconds(3),
    };
    journal
        .finish_refund(&row, &end, &note("refund finished"))
        .unwrap();
}

#[test]
fn the_export_says_what_each_order_had_refunded_and_the_day_nets_its_refunds() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    f.order(datetime!(2026-11-21 20:00 +8), "50.00", OrderState::Paid);
    f.order(datetime!(2026-11-22 09:00 +8), "100.00", OrderState::Paid);
    f.order(datetime!(2026-11-22 10:00 +8), "30.00", OrderState::Paid);
    f.order(datetime!(2026-11-22 11:00 +8), "8.00", OrderState::Paid);
    f.order(datetime!(2026-11-22 12:00 +8), "5.00", OrderState::Paid);
    let yesterday = f.journal.day(date!(2026 - 11 - 21), BEIJING).unwrap();
    let orders = f.journal.day(day, BEIJING).unwrap().orders;
    let at = datetime!(2026-11-22 15:00 +8);
    // The first order of the day: two refunds confirmed (and a third one
    // tomorrow), one refused, one closed, one still processing: the export
    // counts the confirmed ones, whenever they were made.
    for (yuan, state) in [
        ("10.00", RefundState::Refunded),
        ("2.50", RefundState::Refunded),
        ("5.00", RefundState::Refused),
        ("6.00", RefundState::Closed),
        ("7.00", RefundState::Processing),
    ] {
        refund(&mut f.journal, &orders[0], yuan, state, at);
    }
    // The second: whole, confirmed; the third: asked, not answered yet
    // (nothing refunded); the fourth: none.
    refund(
        &mut f.journal,
        &orders[1],
        "30.00",
        RefundState::Refunded,
        at,
    );
    refund(&mut f.journal, &orders[2], "1.00", RefundState::Pending, at);
    // Yesterday's order refunded today counts in today's refunds, in
    // yesterday's export row.
    refund(
        &mut f.journal,
        &yesterday.orders[0],
        "4.00",
        RefundState::Refunded,
        at,
    );
    // Tomorrow's refund of today's order: not today's.
    let tomorrow = datetime!(2026-11-23 09:00 +8);
    refund(
        &mut f.journal,
        &orders[0],
        "1.00",
        RefundState::Refunded,
        tomorrow,
    );

    let (header, rows) = parse_csv(&csv_of(&f.journal, day));
    assert_eq!(header.last().unwrap(), "refunded");
    let refunded: Vec<_> = rows.iter().map(|r| r.last().unwrap().as_str()).collect();
    assert_eq!(refunded, ["13.50", "30.00", "0.00", "0.00"]);
    let json: Vec<Value> = serde_json::from_str(&json_of(&f.journal, day)).unwrap();
    assert_eq!(json[0]["refunded"], "13.50");
    assert_eq!(json[2]["refunded"], "0.00");
    let (_, rows) = parse_csv(&csv_of(&f.journal, date!(2026 - 11 - 21)));
    assert_eq!(rows[0].last().unwrap(), "4.00");
    // --excel keeps the column, as a plain amount.
    let excel = excel_of(&f.journal, day);
    let (_, rows) = parse_csv(std::str::from_utf8(&excel[UTF8_BOM.len()..]).unwrap());
    assert_eq!(rows[0].last().unwrap(), "13.50");

    let report = f.journal.day(day, BEIJING).unwrap();
    let s = report.summary;
    assert_eq!((s.paid_count, s.paid_total), (4, Fen(14_300)));
    // Issued today: 10.00 + 2.50 + 30.00 + yesterday's 4.00.
    assert_eq!((s.refunded_count, s.refunded_total), (4, Fen(4_650)));
    assert_eq!(s.net_fen(), 9_650);
    assert_eq!(s.net_yuan(), "96.50");
    // Processing 7.00 and pending 1.00: not issued until WeChat confirms.
    assert_eq!(
        (s.refund_pending_count, s.refund_pending_total),
        (2, Fen(800))
    );
    let (from, to) = day_bounds(day, BEIJING);
    assert_eq!(f.journal.summary_between(from, to).unwrap(), s);
    // Per order: what remains refundable counts every refund that holds money.
    let first = report.refunds.of(report.orders[0].id);
    assert_eq!(first.count, 6);
    assert_eq!(first.refunded, Fen(1_250 + 100));
    assert_eq!(first.held, Fen(1_250 + 700 + 100));
    assert_eq!(
        first.remaining(report.orders[0].total_fee),
        Fen(10_000 - 2_050)
    );
    assert_eq!(
        report.refunds.of(report.orders[3].id),
        RefundTotals::default()
    );
    // A day of refunds alone: its net takings are below zero.
    let next = f.journal.day(date!(2026 - 11 - 23), BEIJING).unwrap();
    assert_eq!(next.summary.net_yuan(), "-1.00");
}

/// A journal written before refunds existed (schema version 3) has no
/// refunds table: read-only, it still shows and exports, refunding nothing.
#[test]
fn a_version_3_journal_without_refunds_still_exports_read_only() {
    let mut f = Fixture::new();
    let day = date!(2026 - 11 - 22);
    f.order(datetime!(2026-11-22 09:00 +8), "12.34", OrderState::Paid);
    let path = f.dir.path().join("journal.sqlite3");
    let Fixture { dir, journal, .. } = f;
    drop(journal);
    let old = Connection::open(&path).unwrap();
    old.execute_batch(
        "DROP INDEX refunds_by_order; DROP INDEX refunds_by_state; DROP TABLE refunds; \
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(old);
    let before = std::fs::read(&path).unwrap();
    let reader = Journal::open_read_only(&path).unwrap();
    let (header, rows) = parse_csv(&csv_of(&reader, day));
    assert_eq!(header, EXPORT_COLUMNS);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][3], "12.34");
    assert_eq!(rows[0].last().unwrap(), "0.00");
    let report = reader.day(day, BEIJING).unwrap();
    assert_eq!(report.summary.refunded_total, Fen(0));
    assert_eq!(report.summary.net_yuan(), "12.34");
    assert!(report.refunds.is_empty());
    assert!(reader.refunds_of(report.orders[0].id).unwrap().is_empty());
    let (from, to) = day_bounds(day, BEIJING);
    assert_eq!(reader.summary_between(from, to).unwrap(), report.summary);
    drop(reader);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "read-only: untouched"
    );
    drop(dir);
}
