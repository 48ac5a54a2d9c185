//! Frame render time: the till while paying (countdown, gauge, big digits)
//! and the manager's journal day view on a busy day.
//!
//! cargo bench --bench till_render
//!
//! The journal view only builds the rows on screen, so its cost depends on
//! the terminal's size and the day's totals, not on the journal's size; the
//! day here has 3 000 orders, about twice the busiest day of a 500 000-order
//! year. Loading that day from a 500 000-order journal is `journal_day`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use scanpay::domain::{Fen, OutTradeNo, TillId};
use scanpay::journal::{DayReport, DaySummary, OrderId, OrderRow, OrderState};
use scanpay::payment::{Progress, Status};
use scanpay::scanner::wedge::WedgeSettings;
use scanpay::scanner::{Driver, ReadTiming, ScanEvent};
use scanpay::tui::app::{JournalScreen, Screen};
use scanpay::tui::{App, Msg, TillInfo, render};
use scanpay::wechat::messages::Language;

fn info() -> TillInfo {
    TillInfo {
        till_id: "T01".into(),
        gateway: "simulator http://127.0.0.1:8765".into(),
        driver: Driver::Serial,
        journal_path: "./data/journal.sqlite3".into(),
        max_amount: Fen(500_000),
        default_body: "门店消费".into(),
        language: Language::Chinese,
        presets: Vec::new(),
        bell: false,
        store_offset: time::UtcOffset::from_hms(8, 0, 0).unwrap(),
        wedge: WedgeSettings::default(),
        duplicate_window: Duration::from_millis(1500),
        deadline: Duration::from_secs(30),
    }
}

fn paying_app() -> App {
    let now = Instant::now();
    let mut app = App::new(info(), now, time::macros::date!(2026 - 11 - 23));
    app.amount.type_char('8', Fen(500_000)).unwrap();
    app.amount.type_char('8', Fen(500_000)).unwrap();
    let code = scanpay::domain::AuthCode::parse("134539517967686076").unwrap();
    app.update(Msg::Scan(ScanEvent::Scan {
        driver: Driver::Serial,
        code,
        timing: ReadTiming {
            completed: now,
            duration: Duration::ZERO,
        },
    }));
    app.update(Msg::Progress(Progress::Status {
        status: Status::CustomerPaying {
            next_query_at: Duration::from_secs(20),
            deadline: Duration::from_secs(30),
        },
        elapsed: Duration::from_secs(12),
    }));
    app
}

fn busy_day(orders: usize) -> DayReport {
    let day = time::Date::from_calendar_date(2026, time::Month::November, 23).unwrap();
    let start = time::PrimitiveDateTime::new(day, time::Time::MIDNIGHT)
        .assume_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    let states = [
        OrderState::Paid,
        OrderState::Paid,
        OrderState::Paid,
        OrderState::Failed,
        OrderState::Reversed,
    ];
    let orders: Vec<OrderRow> = (0..orders)
        .map(|i| {
            let state = states[i % states.len()];
            OrderRow {
                id: OrderId(i as i64 + 1),
                out_trade_no: OutTradeNo::parse(&format!("T0120261123{:06}{:06}", i, i)).unwrap(),
                till_id: TillId::parse("T01").unwrap(),
                total_fee: Fen(100 + (i as u64 * 37) % 50_000),
                body: "门店消费".into(),
                auth_code_masked: "**************6076".into(),
                created_at_ms: (start + time::Duration::seconds(8 * 3600 + i as i64 * 14))
                    .unix_timestamp()
                    * 1000,
                micropay_sent_at_ms: None,
                state,
                finished_at_ms: None,
                transaction_id: (state == OrderState::Paid)
                    .then(|| format!("4200001212282111030178{i:06}")),
                err_code: (state == OrderState::Failed).then(|| "NOTENOUGH".to_string()),
                message: None,
            }
        })
        .collect();
    let mut summary = DaySummary::default();
    for order in &orders {
        if order.state == OrderState::Paid {
            summary.paid_count += 1;
            summary.paid_total = Fen(summary.paid_total.0 + order.total_fee.0);
        }
    }
    DayReport {
        day,
        orders,
        summary,
        refunds: Default::default(),
    }
}

fn frames(c: &mut Criterion) {
    let mut terminal = Terminal::new(TestBackend::new(110, 32)).unwrap();
    let till = paying_app();
    c.bench_function("till frame while paying (110x32)", |b| {
        b.iter(|| terminal.draw(|f| render(&till, f)).unwrap().area)
    });

    let mut journal = App::new(info(), Instant::now(), time::macros::date!(2026 - 11 - 23));
    let report = busy_day(3000);
    let day = report.day;
    journal.screen = Screen::Journal(Box::new(JournalScreen {
        day,
        report: Some(Ok(report)),
        filter: None,
        selected: 1500,
        detail: None,
        scroll: 0,
        refund: None,
        tills: None,
        till: None,
    }));
    c.bench_function("journal day view frame, 3000 orders (110x32)", |b| {
        b.iter(|| terminal.draw(|f| render(&journal, f)).unwrap().area)
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
