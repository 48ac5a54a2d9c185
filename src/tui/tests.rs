//! The till's update function driven by key sequences with explicit
//! instants, and every screen rendered to a `TestBackend` and snapshotted.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, Command, JournalScreen, Msg, Network, Phase, Screen, TillInfo};
use crate::domain::{AuthCode, Fen, OutTradeNo, TillId};
use crate::journal::{DayReport, DaySummary, EventKind, EventRow, OrderId, OrderRow, OrderState};
use crate::payment::{Attention, Final, PaymentResult, Progress, ReverseReason, Status};
use crate::scanner::wedge::WedgeSettings;
use crate::scanner::{Driver, DriverStatus, ReadTiming, Rejection, ScanEvent};
use crate::wechat::api::{Refusal, Settlement, Unclear};
use crate::wechat::messages::Language;

const CODE: &str = "134539517967686076";

fn info(language: Language, driver: Driver) -> TillInfo {
    TillInfo {
        till_id: "T01".into(),
        gateway: match language {
            Language::Chinese => "模拟器 http://127.0.0.1:8765".into(),
            Language::English => "simulator http://127.0.0.1:8765".into(),
        },
        driver,
        journal_path: "./data/journal.sqlite3".into(),
        max_amount: Fen(500_000),
        default_body: "门店消费".into(),
        language,
        presets: vec![("拿铁".into(), Fen(2200))],
        bell: true,
        store_offset: time::UtcOffset::from_hms(8, 0, 0).unwrap(),
        wedge: WedgeSettings::default(),
        duplicate_window: Duration::from_millis(1500),
        deadline: Duration::from_secs(30),
    }
}

struct Till {
    app: App,
    base: Instant,
    commands: Vec<Command>,
}

impl Till {
    /// A screen the app was made for elsewhere (the journal or the store alone).
    fn of(app: App, base: Instant) -> Self {
        Till {
            app,
            base,
            commands: Vec::new(),
        }
    }

    fn new(language: Language) -> Self {
        Self::with_driver(language, Driver::Wedge)
    }

    fn with_driver(language: Language, driver: Driver) -> Self {
        let base = Instant::now();
        let mut app = App::new(info(language, driver), base, today());
        app.network = Network::Reachable;
        app.today = Some((3, Fen(3702), Fen(0)));
        Till {
            app,
            base,
            commands: Vec::new(),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn send(&mut self, msg: Msg) {
        let commands = self.app.update(msg);
        self.commands.extend(commands);
    }

    fn key(&mut self, ms: u64, code: KeyCode) {
        self.send(Msg::Key(
            KeyEvent::new(code, KeyModifiers::NONE),
            self.at(ms),
        ));
    }

    /// Types like a person: one key every 150 ms from `start`.
    fn type_slowly(&mut self, start: u64, text: &str) -> u64 {
        let mut ms = start;
        for c in text.chars() {
            self.key(ms, KeyCode::Char(c));
            ms += 150;
        }
        self.tick(ms);
        ms
    }

    /// A wedge scanner's burst: all keys in one chunk, then Enter.
    fn scan_burst(&mut self, ms: u64, text: &str) {
        for c in text.chars() {
            self.key(ms, KeyCode::Char(c));
        }
        self.key(ms, KeyCode::Enter);
    }

    fn tick(&mut self, ms: u64) {
        self.send(Msg::Tick(self.at(ms)));
    }

    fn take(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    fn render(&self, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| super::render(&self.app, frame))
            .unwrap();
        terminal.backend().to_string()
    }

    fn paying(&mut self, amount: &str) {
        let end = self.type_slowly(0, amount);
        self.scan_burst(end + 200, CODE);
        assert!(matches!(self.take().as_slice(), [Command::Pay(_)]));
        self.send(Msg::Progress(Progress::Opened {
            out_trade_no: order_no(),
        }));
    }

    fn finish(&mut self, outcome: Final, message: &str, amount: Fen) {
        let result = PaymentResult {
            out_trade_no: order_no(),
            amount,
            outcome,
            message: message.into(),
        };
        self.send(Msg::Progress(Progress::Finished(result)));
    }
}

/// The store's date in every test: 2026-11-23.
fn today() -> time::Date {
    time::macros::date!(2026 - 11 - 23)
}

fn order_no() -> OutTradeNo {
    OutTradeNo::parse("T0120261123142353000042").unwrap()
}

fn read(text: &str) -> ReadTiming {
    let _ = text;
    ReadTiming {
        completed: Instant::now(),
        duration: Duration::from_millis(3),
    }
}

#[test]
fn typed_digits_fill_the_amount_after_the_hold() {
    let mut till = Till::new(Language::Chinese);
    till.key(0, KeyCode::Char('1'));
    assert_eq!(
        till.app.amount.text(),
        "",
        "held back while it could still be a scan"
    );
    till.tick(60);
    assert_eq!(till.app.amount.text(), "1");
    till.type_slowly(200, "2.34");
    assert_eq!(till.app.amount.value(), Ok(Fen(1234)));
    assert!(till.take().is_empty());
}

#[test]
fn a_wedge_burst_while_typing_the_amount_pays_and_never_changes_it() {
    let mut till = Till::new(Language::Chinese);
    let end = till.type_slowly(0, "12.3");
    till.scan_burst(end + 100, CODE);
    let commands = till.take();
    match commands.as_slice() {
        [Command::Pay(request)] => {
            assert_eq!(request.amount, Fen(1230));
            assert_eq!(request.auth_code.expose(), CODE);
            assert_eq!(request.body, "门店消费");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&till.app.phase, Phase::Paying(p) if p.amount == Fen(1230) && p.code == "**************6076")
    );
}

#[test]
fn a_scan_without_an_amount_asks_for_it_and_is_not_kept() {
    let mut till = Till::new(Language::English);
    till.scan_burst(0, CODE);
    assert!(till.take().is_empty());
    assert!(
        till.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Type the amount first")
    );
    till.type_slowly(3000, "5");
    assert!(till.take().is_empty(), "the earlier scan was not queued");
}

#[test]
fn a_second_scan_while_paying_is_reported_not_queued() {
    let mut till = Till::new(Language::English);
    till.paying("8");
    till.send(Msg::Scan(ScanEvent::Scan {
        driver: Driver::Serial,
        code: AuthCode::parse("124539517967686076").unwrap(),
        timing: read(""),
    }));
    assert!(till.take().is_empty());
    assert!(
        till.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Payment in progress")
    );
    assert!(matches!(&till.app.phase, Phase::Paying(p) if p.amount == Fen(800)));
}

#[test]
fn a_rejected_scan_says_why_and_keeps_the_amount() {
    let mut till = Till::new(Language::English);
    let end = till.type_slowly(0, "42");
    till.scan_burst(end + 100, "284539517967686076");
    assert!(till.take().is_empty());
    assert_eq!(till.app.amount.text(), "42");
    let notice = &till.app.notice.as_ref().unwrap().text;
    assert!(
        notice.contains("Alipay") && notice.contains("**************6076"),
        "{notice}"
    );
}

#[test]
fn keyboard_bursts_are_ignored_when_a_device_driver_reads_the_scanner() {
    let mut till = Till::with_driver(Language::English, Driver::Hid);
    let end = till.type_slowly(0, "9");
    till.scan_burst(end + 100, CODE);
    assert!(
        till.take().is_empty(),
        "a keyboard-mode HID scanner must not pay twice"
    );
    assert!(till.app.notice.as_ref().unwrap().text.contains("ignored"));
    assert_eq!(till.app.amount.text(), "9");
}

#[test]
fn esc_cancels_once_and_quitting_waits_for_the_payment() {
    let mut till = Till::new(Language::English);
    till.paying("8");
    till.key(5000, KeyCode::Char('q'));
    assert!(!till.app.quit && till.take().is_empty());
    till.key(5100, KeyCode::Esc);
    till.key(5200, KeyCode::Esc);
    assert_eq!(till.take(), [Command::Cancel]);
    till.finish(
        Final::Reversed(ReverseReason::Cancelled),
        "Reversed",
        Fen(800),
    );
    assert_eq!(till.take(), [Command::Bell, Command::RefreshToday]);
    till.key(9000, KeyCode::Char('q'));
    till.tick(9100); // a letter is held like any key until it cannot be a scan
    assert!(till.app.quit);
}

#[test]
fn typing_after_a_result_starts_the_next_sale() {
    let mut till = Till::new(Language::English);
    till.paying("8");
    let paid = Settlement {
        transaction_id: "4200000001".into(),
        time_end: None,
        cash_fee: Some(800),
    };
    till.finish(Final::Paid(paid), "Paid", Fen(800));
    assert!(matches!(till.app.phase, Phase::Done(_)));
    till.type_slowly(10_000, "3");
    assert!(matches!(till.app.phase, Phase::Entering));
    assert_eq!(till.app.amount.text(), "3");
}

#[test]
fn presets_set_amount_and_description() {
    let mut till = Till::new(Language::Chinese);
    till.key(0, KeyCode::F(1));
    till.tick(100);
    assert_eq!(till.app.amount.value(), Ok(Fen(2200)));
    assert_eq!(till.app.body, "拿铁");
    till.key(200, KeyCode::F(5));
    till.tick(300);
    assert_eq!(
        till.app.amount.value(),
        Ok(Fen(2200)),
        "an empty preset slot changes nothing"
    );
}

#[test]
fn the_journal_opens_on_today_filters_and_opens_an_order() {
    let mut till = Till::new(Language::English);
    till.key(0, KeyCode::F(12));
    till.tick(100);
    let Screen::Journal(journal) = &till.app.screen else {
        panic!("journal not open")
    };
    let day = journal.day;
    assert_eq!(till.take(), [Command::LoadDay(day)]);
    till.send(Msg::DayLoaded(Ok(report(day))));
    till.key(200, KeyCode::Char('f')); // paid only
    let Screen::Journal(journal) = &till.app.screen else {
        unreachable!()
    };
    assert_eq!(journal.visible().len(), 2);
    till.key(300, KeyCode::Down);
    till.key(400, KeyCode::Enter);
    match till.take().as_slice() {
        [Command::LoadOrder(order)] => assert_eq!(order.state, OrderState::Paid),
        other => panic!("{other:?}"),
    }
    till.key(500, KeyCode::Left);
    assert!(
        matches!(till.take().as_slice(), [Command::LoadDay(d)] if *d == day.previous_day().unwrap())
    );
    till.key(600, KeyCode::Esc);
    assert_eq!(till.app.screen, Screen::Till);
}

#[test]
fn the_journal_alone_quits_where_it_would_return_to_the_till_and_never_pays() {
    for leave in [KeyCode::Esc, KeyCode::Char('q'), KeyCode::F(12)] {
        let base = Instant::now();
        let day = time::macros::date!(2026 - 11 - 22);
        let (app, commands) = App::journal_only(info(Language::English, Driver::Wedge), base, day);
        assert_eq!(commands, [Command::LoadDay(day)]);
        let mut till = Till::of(app, base);
        till.send(Msg::DayLoaded(Ok(report(day))));
        // A scanner burst here is no payment: there is no till screen to pay on.
        till.scan_burst(100, CODE);
        till.tick(300);
        assert!(!till.app.quit);
        // The Enter asks for the selected order's detail, nothing else.
        match till.take().as_slice() {
            [Command::LoadOrder(_)] => {}
            other => panic!("the journal alone asked for {other:?}"),
        }
        let screen = till.render(110, 30);
        assert!(screen.contains("viewing the journal read-only"), "{screen}");
        assert!(screen.contains("q quit"), "{screen}");
        till.key(400, leave);
        assert!(till.app.quit, "{leave:?} did not quit");
        assert_eq!(till.take(), [Command::Quit]);
        assert!(matches!(till.app.screen, Screen::Journal(_)));
    }
}

// ---- snapshots ----

fn ms(local: &str) -> i64 {
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]"
    );
    time::OffsetDateTime::parse(&format!("{local} +08"), &format)
        .unwrap()
        .unix_timestamp()
        * 1000
}

fn order(id: i64, at: &str, fee: u64, state: OrderState, code: Option<&str>) -> OrderRow {
    OrderRow {
        id: OrderId(id),
        out_trade_no: OutTradeNo::parse(&format!("T0120261123{}{:06}", at.replace(':', ""), id))
            .unwrap(),
        till_id: TillId::parse("T01").unwrap(),
        total_fee: Fen(fee),
        body: "门店消费".into(),
        auth_code_masked: "**************6076".into(),
        created_at_ms: ms(&format!("2026-11-23 {at}")),
        micropay_sent_at_ms: Some(ms(&format!("2026-11-23 {at}"))),
        state,
        finished_at_ms: Some(ms(&format!("2026-11-23 {at}")) + 900),
        transaction_id: (state == OrderState::Paid)
            .then(|| format!("42000012122821110301784457{id:02}")),
        err_code: code.map(str::to_string),
        message: None,
    }
}

fn report(day: time::Date) -> DayReport {
    let orders = vec![
        order(1, "09:15:02", 1800, OrderState::Paid, None),
        order(2, "12:31:44", 2200, OrderState::Paid, None),
        order(3, "12:40:10", 4500, OrderState::Failed, Some("NOTENOUGH")),
        order(
            4,
            "18:02:55",
            12000,
            OrderState::NeedsAttention,
            Some("SYSTEMERROR"),
        ),
    ];
    let mut hourly_paid = [Fen(0); 24];
    hourly_paid[9] = Fen(1800);
    hourly_paid[12] = Fen(2200);
    DayReport {
        day,
        orders,
        summary: DaySummary {
            paid_count: 2,
            paid_total: Fen(4000),
            failed: 1,
            reversed: 0,
            closed: 0,
            needs_attention: 1,
            open: 0,
            hourly_paid,
            ..DaySummary::default()
        },
        refunds: Default::default(),
    }
}

fn snapshot(name: &str, till: &Till) {
    insta::assert_snapshot!(name, till.render(100, 30));
}

#[test]
fn snapshot_idle_and_amount_entered() {
    let mut till = Till::new(Language::Chinese);
    snapshot("till_idle_zh", &till);
    till.type_slowly(0, "12.34");
    snapshot("till_amount_entered_zh", &till);
    let mut english = Till::new(Language::English);
    english.type_slowly(0, "1000.5");
    snapshot("till_amount_entered_en", &english);
}

#[test]
fn snapshot_paying_with_countdown() {
    let mut till = Till::new(Language::Chinese);
    till.paying("12.34");
    let now = till.at(20_000);
    till.send(Msg::Progress(Progress::Status {
        status: Status::CustomerPaying {
            next_query_at: Duration::from_secs(20),
            deadline: Duration::from_secs(30),
        },
        elapsed: Duration::from_secs(10),
    }));
    till.app.now = now;
    if let Phase::Paying(paying) = &mut till.app.phase {
        paying.status_at = now - Duration::from_secs(2);
    }
    snapshot("till_paying_password_zh", &till);
    till.send(Msg::Progress(Progress::Status {
        status: Status::ReverseDue {
            at: Duration::from_secs(15),
            attempt: 1,
        },
        elapsed: Duration::from_secs(11),
    }));
    till.key(20_100, KeyCode::Esc);
    snapshot("till_paying_reverse_due_cancelled_zh", &till);
}

#[test]
fn snapshot_each_result() {
    let cases = [
        (
            "till_paid_zh",
            Final::Paid(Settlement {
                transaction_id: "4200001212282111030178445712".into(),
                time_end: None,
                cash_fee: Some(1234),
            }),
            "支付成功",
        ),
        (
            "till_failed_notenough_zh",
            Final::Failed(Refusal {
                code: "NOTENOUGH".into(),
                description: "余额不足".into(),
            }),
            "余额不足，请用户换卡支付",
        ),
        (
            "till_reversed_zh",
            Final::Reversed(ReverseReason::Deadline),
            "用户未在规定时间内完成支付，订单已撤销，如已扣款将退回用户；请用户重新支付",
        ),
        (
            "till_needs_attention_zh",
            Final::NeedsAttention(Attention::ReverseExhausted {
                attempts: 5,
                last: Unclear::Transport("reset".into()),
            }),
            "结果未明，请勿重复收款；已记录，网络恢复后由店长运行 scanpay replay 处理",
        ),
    ];
    for (name, outcome, message) in cases {
        let mut till = Till::new(Language::Chinese);
        till.paying("12.34");
        till.finish(outcome, message, Fen(1234));
        snapshot(name, &till);
    }
    let mut english = Till::new(Language::English);
    english.paying("12.34");
    english.finish(
        Final::Failed(Refusal {
            code: "AUTHCODEEXPIRE".into(),
            description: String::new(),
        }),
        "The payment code has expired: ask the customer to refresh it, then scan again",
        Fen(1234),
    );
    snapshot("till_failed_expired_en", &english);
    let mut broken = Till::new(Language::English);
    broken.paying("12.34");
    broken.send(Msg::PaymentError {
        nothing_sent: false,
        detail: "the journal could not be written (disk full)".into(),
    });
    snapshot("till_journal_error_en", &broken);
}

#[test]
fn snapshot_rejected_scan_and_scanner_lost() {
    let mut till = Till::new(Language::Chinese);
    till.type_slowly(0, "42");
    till.send(Msg::Scan(ScanEvent::Rejected {
        driver: Driver::Serial,
        reason: Rejection::KeyboardLayout {
            layout: "French AZERTY",
        },
        shown: "**************è-".into(),
        timing: read(""),
    }));
    till.send(Msg::Scan(ScanEvent::Status {
        driver: Driver::Serial,
        status: DriverStatus::Disconnected("unplugged".into()),
    }));
    till.app.network = Network::Unreachable;
    snapshot("till_rejected_scan_zh", &till);
}

#[test]
fn snapshot_journal_day_and_order_detail() {
    let mut till = Till::new(Language::English);
    let day = time::Date::from_calendar_date(2026, time::Month::November, 23).unwrap();
    till.app.screen = Screen::Journal(Box::new(JournalScreen {
        report: Some(Ok(report(day))),
        selected: 1,
        ..JournalScreen::loading(day)
    }));
    snapshot("journal_day_en", &till);
    let mut chinese = Till::new(Language::Chinese);
    chinese.app.screen = Screen::Journal(Box::new(JournalScreen {
        report: Some(Ok(report(day))),
        filter: Some(OrderState::Paid),
        ..JournalScreen::loading(day)
    }));
    snapshot("journal_day_paid_only_zh", &chinese);

    let order = order(
        4,
        "18:02:55",
        12000,
        OrderState::NeedsAttention,
        Some("SYSTEMERROR"),
    );
    let event =
        |id: i64, offset_ms: i64, since: Option<u64>, kind: EventKind, summary: &str| EventRow {
            id,
            order_id: order.id,
            at_ms: order.created_at_ms + offset_ms,
            since_t0_ms: since,
            kind,
            call: None,
            summary: summary.into(),
            event: crate::payment::Event::Note {
                text: summary.into(),
            },
        };
    let events = vec![
        event(1, 0, None, EventKind::Opened, "order opened"),
        event(
            2,
            5,
            Some(0),
            EventKind::Request,
            "micropay sent: 120.00 yuan, code **************6076",
        ),
        event(
            3,
            10_005,
            Some(10_000),
            EventKind::Answer,
            "micropay answer: UNKNOWN — no answer from /pay/micropay within 10000 ms",
        ),
        event(
            4,
            15_005,
            Some(15_000),
            EventKind::Timer,
            "timer: query due at 15000 ms",
        ),
        event(
            5,
            15_020,
            Some(15_015),
            EventKind::Request,
            "orderquery sent",
        ),
        event(
            6,
            15_400,
            Some(15_395),
            EventKind::Answer,
            "orderquery answer: UNKNOWN — gateway says SYSTEMERROR",
        ),
        event(
            7,
            60_000,
            Some(59_995),
            EventKind::Finished,
            "finished: needs_attention — 结果未明，请勿重复收款",
        ),
    ];
    till.app.screen = Screen::Journal(Box::new(JournalScreen {
        report: Some(Ok(report(day))),
        selected: 3,
        detail: Some(Ok((order, events))),
        ..JournalScreen::loading(day)
    }));
    snapshot("journal_order_detail_en", &till);
}

#[test]
fn a_recent_interrupted_order_holds_new_payments_until_it_is_resolved() {
    let mut till = Till::new(Language::English);
    till.app.recovering = vec![super::app::Recovering {
        out_trade_no: order_no().to_string(),
        amount: Fen(1234),
        blocks_new_payments: true,
    }];
    let end = till.type_slowly(0, "12.34");
    till.scan_burst(end + 100, CODE);
    assert!(
        till.take().is_empty(),
        "no second charge while the first is unresolved"
    );
    assert!(
        till.app
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("Finishing the interrupted order")
    );
    assert_eq!(till.app.amount.text(), "12.34", "the amount is kept");

    let result = PaymentResult {
        out_trade_no: order_no(),
        amount: Fen(1234),
        outcome: Final::Reversed(ReverseReason::Recovered),
        message: "Reversed".into(),
    };
    till.send(Msg::Recovered {
        out_trade_no: order_no().to_string(),
        outcome: Ok(crate::payment::recovery::Recovered::Resolved(result)),
    });
    assert!(till.app.recovering.is_empty());
    assert_eq!(till.app.recovered, (1, 0));
    assert_eq!(till.take(), [Command::RefreshToday]);
    till.scan_burst(end + 5000, CODE);
    assert!(
        matches!(till.take().as_slice(), [Command::Pay(_)]),
        "resolved: the till takes payments again"
    );
}

#[test]
fn a_stray_line_feed_is_not_the_journal_key() {
    let mut till = Till::new(Language::English);
    till.type_slowly(0, "7");
    // A scanner's LF without a burst before it arrives as Ctrl+J.
    till.send(Msg::Key(
        KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL),
        till.at(1000),
    ));
    till.send(Msg::Key(
        KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL),
        till.at(1100),
    ));
    till.tick(1200);
    assert_eq!(till.app.screen, Screen::Till);
    assert!(!till.app.quit);
    assert_eq!(till.app.amount.text(), "7");
    assert!(till.take().is_empty());
}

// ---- issue 10: the till under pressure, the journal at 80×24 ----

fn with_presets(language: Language) -> Till {
    let mut till = Till::new(language);
    till.app.info.presets = vec![
        ("拿铁".into(), Fen(2200)),
        ("美式".into(), Fen(1800)),
        ("可颂".into(), Fen(1500)),
    ];
    till
}

fn notice(till: &Till) -> String {
    till.app
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

fn failed(code: &str) -> Final {
    Final::Failed(Refusal {
        code: code.into(),
        description: String::new(),
    })
}

#[test]
fn f2_with_a_preset_sets_that_preset_and_the_journal_is_on_f12_and_j() {
    let mut till = with_presets(Language::Chinese);
    till.key(0, KeyCode::F(2));
    till.tick(100);
    assert_eq!(
        till.app.screen,
        Screen::Till,
        "F2 is preset 2, not the journal"
    );
    assert_eq!(till.app.amount.value(), Ok(Fen(1800)));
    assert_eq!(till.app.body, "美式");
    assert!(till.take().is_empty());
    let screen = till.render(100, 30);
    assert!(screen.contains("F1 拿铁 ¥22.00"), "{screen}");
    assert!(screen.contains("F2 美式 ¥18.00") && screen.contains("F3 可颂 ¥15.00"));
    assert!(screen.contains("F12/j 账本"), "{screen}");
    for key in [KeyCode::F(12), KeyCode::Char('j')] {
        till.key(1000, key);
        till.tick(1100);
        assert!(matches!(till.app.screen, Screen::Journal(_)), "{key:?}");
        assert_eq!(till.take(), [Command::LoadDay(today())]);
        till.key(1200, KeyCode::Esc);
        assert_eq!(till.app.screen, Screen::Till);
    }
    snapshot("till_presets_zh", &till);
}

#[test]
fn after_failed_the_amount_stays_and_another_code_retries_it() {
    let mut till = Till::new(Language::Chinese);
    till.paying("12.34");
    till.finish(failed("NOTENOUGH"), "余额不足，请用户换卡支付", Fen(1234));
    assert_eq!(till.app.amount.text(), "12.34", "kept for the retry");
    assert!(till.render(100, 30).contains("金额已保留"));
    till.take();
    till.send(Msg::Scan(ScanEvent::Scan {
        driver: Driver::Serial,
        code: AuthCode::parse("124539517967686076").unwrap(),
        timing: read(""),
    }));
    match till.take().as_slice() {
        [Command::Pay(request)] => assert_eq!(request.amount, Fen(1234)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn after_paid_or_unclear_the_amount_is_cleared_so_nothing_invites_a_second_charge() {
    for outcome in [
        Final::Paid(Settlement {
            transaction_id: "4200000001".into(),
            time_end: None,
            cash_fee: Some(1234),
        }),
        Final::NeedsAttention(Attention::ReverseExhausted {
            attempts: 5,
            last: Unclear::Transport("reset".into()),
        }),
    ] {
        let mut till = Till::new(Language::English);
        till.paying("12.34");
        till.finish(outcome, "…", Fen(1234));
        assert!(till.app.amount.is_empty());
        match &till.app.phase {
            Phase::Done(done) => assert_eq!(done.amount, Fen(1234), "the big figure"),
            other => panic!("{other:?}"),
        }
        till.take();
        till.scan_burst(60_000, "124539517967686076");
        assert!(till.take().is_empty(), "no payment without a new amount");
    }
}

#[test]
fn a_rescan_of_the_same_code_at_once_is_called_a_duplicate() {
    let mut till = Till::new(Language::Chinese);
    let end = till.type_slowly(0, "8");
    till.scan_burst(end + 100, CODE);
    assert!(matches!(till.take().as_slice(), [Command::Pay(_)]));
    till.scan_burst(end + 600, CODE);
    assert!(till.take().is_empty());
    let text = notice(&till);
    assert!(text.contains("重复扫码"), "{text}");
    assert!(!text.contains("不是微信付款码"), "{text}");
}

#[test]
fn a_scan_while_the_network_check_fails_warns_on_screen_and_still_tries() {
    let mut till = Till::new(Language::Chinese);
    till.send(Msg::Network(false));
    till.paying("12.34");
    let screen = till.render(100, 30);
    assert!(screen.contains("网络不通"), "{screen}");
    assert!(notice(&till).contains("未扣款"), "{}", notice(&till));
    snapshot("till_paying_network_down_zh", &till);
    let mut english = Till::new(Language::English);
    english.send(Msg::Network(false));
    english.paying("12.34");
    assert!(english.render(100, 30).contains("Network down"));
}

/// A payment at `elapsed` into its life, the status arriving then.
fn status(till: &mut Till, status: Status, elapsed_s: u64, now_ms: u64) {
    till.app.now = till.at(now_ms);
    till.send(Msg::Progress(Progress::Status {
        status,
        elapsed: Duration::from_secs(elapsed_s),
    }));
}

#[test]
fn esc_says_the_payment_is_being_cancelled_and_when_it_is_reversed() {
    let mut till = Till::new(Language::Chinese);
    till.paying("12.34");
    status(
        &mut till,
        Status::CustomerPaying {
            next_query_at: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
        },
        8,
        8_000,
    );
    till.key(8_000, KeyCode::Esc);
    // The engine brings the deadline forward to the first reverse instant.
    status(
        &mut till,
        Status::CustomerPaying {
            next_query_at: Duration::from_secs(10),
            deadline: Duration::from_secs(15),
        },
        9,
        9_000,
    );
    let screen = till.render(100, 30);
    assert!(screen.contains("正在取消：6 秒后撤销订单"), "{screen}");
    assert!(!screen.contains("输入密码"), "{screen}");
    snapshot("till_cancelling_zh", &till);
}

#[test]
fn the_querying_step_shows_and_counts() {
    let mut till = Till::new(Language::English);
    till.paying("12.34");
    status(&mut till, Status::Querying, 5, 5_000);
    assert!(
        till.render(100, 30)
            .contains("Querying the result (query 1)"),
        "{}",
        till.render(100, 30)
    );
    status(
        &mut till,
        Status::CustomerPaying {
            next_query_at: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
        },
        5,
        5_100,
    );
    assert!(till.render(100, 30).contains("1 queries so far"));
}

#[test]
fn a_reverse_at_the_deadline_after_unclear_answers_does_not_blame_the_customer() {
    let mut till = Till::new(Language::Chinese);
    till.paying("12.34");
    status(
        &mut till,
        Status::Unclear {
            next_query_at: Duration::from_secs(15),
            deadline: Duration::from_secs(30),
        },
        10,
        10_000,
    );
    till.finish(
        Final::Reversed(ReverseReason::Deadline),
        "用户未在规定时间内完成支付，订单已撤销，未扣款；请用户重新支付",
        Fen(1234),
    );
    let screen = till.render(100, 30);
    assert!(!screen.contains("用户未在规定时间内"), "{screen}");
    assert!(screen.contains("不是顾客的问题"), "{screen}");
    snapshot("till_reversed_after_unclear_zh", &till);
    // A customer who never typed the password: the engine's sentence stands.
    let mut slow = Till::new(Language::Chinese);
    slow.paying("12.34");
    slow.finish(
        Final::Reversed(ReverseReason::Deadline),
        "用户未在规定时间内完成支付，订单已撤销，未扣款；请用户重新支付",
        Fen(1234),
    );
    assert!(slow.render(100, 30).contains("用户未在规定时间内"));
}

#[test]
fn needs_attention_says_what_to_do_about_the_customer_and_no_error_chain() {
    let mut till = Till::new(Language::Chinese);
    till.paying("12.34");
    let outcome = Final::NeedsAttention(Attention::ReverseExhausted {
        attempts: 5,
        last: Unclear::Transport(
            "error sending request for url (http://127.0.0.1:1/pay/micropay): client error (Connect): tcp connect error".into(),
        ),
    });
    let message = outcome.message(Language::Chinese);
    till.finish(outcome, &message, Fen(1234));
    let screen = till.render(100, 30);
    assert!(screen.contains("请勿重复收款"), "{screen}");
    assert!(screen.contains("留下联系方式"), "{screen}");
    assert!(!screen.contains("error sending"), "{screen}");
    // A system error shows a sentence; the cause is for the log.
    let mut broken = Till::new(Language::Chinese);
    broken.paying("12.34");
    broken.send(Msg::PaymentError {
        nothing_sent: false,
        detail: "the payment could not be recorded: disk I/O error".into(),
    });
    let screen = broken.render(100, 30);
    assert!(!screen.contains("disk I/O"), "{screen}");
    assert!(screen.contains("请勿重复收款"), "{screen}");
    assert!(broken.app.amount.is_empty());
}

#[test]
fn orders_needing_attention_are_counted_and_a_opens_them() {
    let mut till = Till::new(Language::Chinese);
    let day = time::macros::date!(2026 - 11 - 20);
    till.send(Msg::Today {
        paid: 3,
        total: Fen(3702),
        refunded: Fen(0),
        attention: 2,
        attention_day: Some(day),
    });
    let screen = till.render(100, 30);
    assert!(screen.contains("待处理 2 笔（按 a 查看）"), "{screen}");
    snapshot("till_attention_count_zh", &till);
    till.key(0, KeyCode::Char('a'));
    till.tick(100);
    assert_eq!(till.take(), [Command::LoadDay(day)]);
    let Screen::Journal(journal) = &till.app.screen else {
        panic!("the journal did not open")
    };
    assert_eq!(journal.filter, Some(OrderState::NeedsAttention));
}

#[test]
fn the_journal_header_counts_the_filtered_rows_and_right_stops_at_today() {
    let mut till = Till::new(Language::English);
    till.key(0, KeyCode::F(12));
    till.tick(100);
    till.take();
    till.send(Msg::DayLoaded(Ok(report(today()))));
    till.key(200, KeyCode::Char('f')); // paid only
    let screen = till.render(100, 30);
    assert!(screen.contains("filter paid · 2 orders"), "{screen}");
    till.key(300, KeyCode::Right);
    assert!(till.take().is_empty(), "no day after today");
    till.key(400, KeyCode::Left);
    till.take();
    till.key(500, KeyCode::Right);
    assert_eq!(till.take(), [Command::LoadDay(today())]);
}

/// Three orders created within one minute, in today's number format.
fn one_minute() -> DayReport {
    let no = |seconds: &str, seq: u32| {
        OutTradeNo::parse(&format!("T01261123{}K3F9XQ{seq:06}", seconds)).unwrap()
    };
    let row = |id: i64, at: &str, state, code: Option<&str>| {
        let mut o = order(id, at, 1234 + id as u64, state, code);
        o.out_trade_no = no(&format!("14{}", at[3..].replace(':', "")), id as u32);
        o.out_trade_no = OutTradeNo::parse(&format!(
            "T0126112314{}K3F9XQ{id:06}",
            at[3..].replace(':', "")
        ))
        .unwrap();
        o.transaction_id = (state == OrderState::Paid)
            .then(|| format!("42000012122611231423{:08}", 10_000_000 + id * 1_111));
        o
    };
    let _ = no;
    let orders = vec![
        row(17, "14:23:05", OrderState::Paid, None),
        row(18, "14:23:31", OrderState::Failed, Some("AUTHCODEEXPIRE")),
        row(19, "14:23:58", OrderState::Paid, None),
    ];
    DayReport {
        day: today(),
        summary: DaySummary {
            paid_count: 2,
            paid_total: Fen(2489),
            failed: 1,
            ..DaySummary::default()
        },
        orders,
        refunds: Default::default(),
    }
}

fn journal_on(till: &mut Till, report: DayReport, selected: usize) {
    till.app.screen = Screen::Journal(Box::new(JournalScreen {
        report: Some(Ok(report)),
        selected,
        ..JournalScreen::loading(today())
    }));
}

#[test]
fn at_80_by_24_the_journal_tells_three_orders_of_one_minute_apart() {
    for language in [Language::English, Language::Chinese] {
        let mut till = Till::new(language);
        journal_on(&mut till, one_minute(), 0);
        let screen = till.render(80, 24);
        for tail in ["000017", "000018", "000019"] {
            assert!(screen.contains(tail), "{tail} missing:\n{screen}");
        }
        // The transaction ids differ only at the end: their tails are shown.
        for tail in ["10018887", "10021109"] {
            assert!(screen.contains(tail), "{tail} missing:\n{screen}");
        }
        let name = match language {
            Language::Chinese => "journal_80x24_one_minute_zh",
            Language::English => "journal_80x24_one_minute_en",
        };
        insta::assert_snapshot!(name, screen);
    }
    // A wide terminal shows every number whole.
    let mut wide = Till::new(Language::English);
    journal_on(&mut wide, one_minute(), 0);
    let screen = wide.render(130, 30);
    assert!(screen.contains("T01261123142305K3F9XQ000017"), "{screen}");
    assert!(screen.contains("4200001212261123142310018887"), "{screen}");
}

fn long_timeline(language: Language) -> Till {
    let mut till = Till::new(language);
    let order = order(
        4,
        "18:02:55",
        12000,
        OrderState::NeedsAttention,
        Some("SYSTEMERROR"),
    );
    let mut events = vec![EventRow {
        id: 1,
        order_id: order.id,
        at_ms: order.created_at_ms,
        since_t0_ms: None,
        kind: EventKind::Opened,
        call: None,
        summary: "order opened".into(),
        event: crate::payment::Event::Opened {
            till_id: "T01".into(),
            total_fee: 12000,
            body: "门店消费".into(),
            auth_code_masked: "**************6076".into(),
        },
    }];
    for i in 1..=12u64 {
        let at = i * 5_000;
        events.push(EventRow {
            id: 2 * i as i64,
            order_id: order.id,
            at_ms: order.created_at_ms + at as i64,
            since_t0_ms: Some(at),
            kind: EventKind::Request,
            call: Some("orderquery".into()),
            summary: format!("orderquery sent (query {i})"),
            event: crate::payment::Event::Request {
                call: crate::payment::Call::Query,
                fields: Default::default(),
            },
        });
        events.push(EventRow {
            id: 2 * i as i64 + 1,
            order_id: order.id,
            at_ms: order.created_at_ms + at as i64 + 300,
            since_t0_ms: Some(at + 300),
            kind: EventKind::Answer,
            call: Some("orderquery".into()),
            summary: format!(
                "orderquery answer {i}: UNKNOWN — error sending request for url (http://127.0.0.1:1/pay/orderquery)"
            ),
            event: crate::payment::Event::Answer {
                answer: crate::payment::Answer::Query(crate::wechat::api::QueryOutcome::Unknown(
                    Unclear::Transport("error sending request".into()),
                )),
                fields: None,
            },
        });
    }
    events.push(EventRow {
        id: 99,
        order_id: order.id,
        at_ms: order.created_at_ms + 70_000,
        since_t0_ms: Some(70_000),
        kind: EventKind::Finished,
        call: None,
        summary: "finished: needs_attention — LAST EVENT".into(),
        event: crate::payment::Event::Finished {
            state: "needs_attention".into(),
            err_code: Some("TRANSPORT".into()),
            transaction_id: None,
        },
    });
    till.app.size = (80, 24);
    till.app.screen = Screen::Journal(Box::new(JournalScreen {
        report: Some(Ok(report(today()))),
        selected: 3,
        detail: Some(Ok((order, events))),
        ..JournalScreen::loading(today())
    }));
    till
}

#[test]
fn the_order_timeline_scrolls_to_its_last_event() {
    let mut till = long_timeline(Language::English);
    let top = till.render(80, 24);
    assert!(
        top.contains("order opened") && !top.contains("LAST EVENT"),
        "{top}"
    );
    assert!(top.contains("timeline 1–12/26"), "{top}");
    till.key(0, KeyCode::End);
    let bottom = till.render(80, 24);
    assert!(
        bottom.contains("LAST EVENT") && !bottom.contains("order opened"),
        "{bottom}"
    );
    assert!(bottom.contains("15–26/26"), "{bottom}");
    insta::assert_snapshot!("journal_timeline_end_en", bottom);
    till.key(100, KeyCode::Down); // already at the end: stays
    assert_eq!(till.render(80, 24), bottom);
    till.key(200, KeyCode::Up);
    assert!(till.render(80, 24).contains("14–25/26"));
    till.key(300, KeyCode::PageUp);
    assert!(till.render(80, 24).contains("2–13/26"));
    till.key(400, KeyCode::Home);
    assert_eq!(till.render(80, 24), top);
    till.key(500, KeyCode::PageDown);
    assert!(till.render(80, 24).contains("13–24/26"));
    till.key(600, KeyCode::Esc);
    let Screen::Journal(journal) = &till.app.screen else {
        unreachable!()
    };
    assert!(journal.detail.is_none(), "Esc closes the detail");
}

#[test]
fn the_zh_timeline_is_in_chinese() {
    let mut till = long_timeline(Language::Chinese);
    till.key(0, KeyCode::End);
    let screen = till.render(80, 24);
    assert!(
        screen.contains("查询应答：结果未明（网络错误，未收到应答）"),
        "{screen}"
    );
    assert!(screen.contains("结束：待处理（TRANSPORT）"), "{screen}");
    assert!(!screen.contains("error sending"), "{screen}");
    insta::assert_snapshot!("journal_timeline_end_zh", screen);
}

/// ASCII words of three letters or more on a zh screen that are not codes or names.
fn english_words(screen: &str) -> Vec<String> {
    const ALLOWED: &[&str] = &[
        // names: the program, its commands, key caps
        "scanpay",
        "replay",
        "refund",
        "Esc",
        "Backspace",
        "Enter",
        "PgUp",
        "PgDn",
        "Home",
        "End",
        "Shift",
        // the journal path and gateway address in the status line
        "data",
        "journal",
        "sqlite",
        "UTC",
        "http",
        // codes
        "AZERTY",
        "NOTENOUGH",
        "AUTHCODEEXPIRE",
        "SYSTEMERROR",
        "TRANSPORT",
    ];
    let mut words = Vec::new();
    for line in screen.lines() {
        // TestBackend notes where wide characters hide cells: not on screen.
        let line = line
            .split(" Hidden by multi-width symbols")
            .next()
            .unwrap_or(line);
        for word in line.split(|c: char| !c.is_ascii_alphabetic()) {
            if word.len() >= 3 && !ALLOWED.contains(&word) {
                words.push(word.to_string());
            }
        }
    }
    words
}

#[test]
fn a_zh_till_shows_no_english_word_besides_codes_and_names() {
    let mut screens = Vec::new();
    let mut idle = with_presets(Language::Chinese);
    idle.app.attention = (2, Some(today()));
    screens.push(idle.render(100, 30));
    idle.type_slowly(0, "12.34");
    screens.push(idle.render(100, 30));
    for reason in [
        Rejection::KeyboardLayout {
            layout: "French AZERTY",
        },
        Rejection::KeyboardLayout {
            layout: "shifted (AZERTY-configured scanner on a US)",
        },
        Rejection::Noise { bytes: 7 },
        Rejection::Overlong { bytes: 90 },
        Rejection::Duplicate,
        Rejection::Code(crate::domain::AuthCodeError::WrongLength { len: 7 }),
        Rejection::Code(crate::domain::AuthCodeError::Alipay {
            prefix: "28".into(),
        }),
        Rejection::Code(crate::domain::AuthCodeError::WrongPrefix {
            prefix: "99".into(),
        }),
        Rejection::Code(crate::domain::AuthCodeError::NotDigits { found: 'x' }),
        Rejection::Code(crate::domain::AuthCodeError::Empty),
    ] {
        let mut till = Till::new(Language::Chinese);
        till.send(Msg::Scan(ScanEvent::Rejected {
            driver: Driver::Serial,
            reason,
            shown: "***1234 (7 chars)".into(),
            timing: read(""),
        }));
        screens.push(till.render(100, 30));
    }
    let mut paying = Till::new(Language::Chinese);
    paying.send(Msg::Network(false));
    paying.paying("12.34");
    screens.push(paying.render(100, 30));
    for s in [
        Status::Sending,
        Status::Querying,
        Status::Unclear {
            next_query_at: Duration::from_secs(15),
            deadline: Duration::from_secs(30),
        },
        Status::ReverseDue {
            at: Duration::from_secs(15),
            attempt: 1,
        },
        Status::Reversing { attempt: 2 },
        Status::Confirming,
    ] {
        status(&mut paying, s, 10, 10_000);
        screens.push(paying.render(100, 30));
    }
    paying.key(10_100, KeyCode::Esc);
    screens.push(paying.render(100, 30));
    let outcomes = [
        Final::Paid(Settlement {
            transaction_id: "4200001212282111030178445712".into(),
            time_end: None,
            cash_fee: Some(1234),
        }),
        failed("NOTENOUGH"),
        Final::Reversed(ReverseReason::Deadline),
        Final::Reversed(ReverseReason::Cancelled),
        Final::NeedsAttention(Attention::ReverseExhausted {
            attempts: 5,
            last: Unclear::Transport("error sending request for url".into()),
        }),
        Final::NeedsAttention(Attention::ReverseRefused(Refusal {
            code: "REVERSE_EXPIRE".into(),
            description: "reverse expired".into(),
        })),
        Final::NotSent,
        Final::Closed("REVOKED".into()),
    ];
    for outcome in outcomes {
        let mut till = Till::new(Language::Chinese);
        till.paying("12.34");
        let message = outcome.message(Language::Chinese);
        till.finish(outcome, &message, Fen(1234));
        screens.push(till.render(100, 30));
    }
    for nothing_sent in [true, false] {
        let mut till = Till::new(Language::Chinese);
        till.paying("12.34");
        till.send(Msg::PaymentError {
            nothing_sent,
            detail: "database or disk is full".into(),
        });
        screens.push(till.render(100, 30));
    }
    for screen in screens {
        let words = english_words(&screen);
        assert!(
            words.is_empty(),
            "English on a zh till: {words:?}\n{screen}"
        );
    }
}

#[test]
fn the_journal_header_tells_whether_the_day_was_reconciled() {
    let day = time::Date::from_calendar_date(2026, time::Month::November, 23).unwrap();
    let row = |discrepancies| crate::journal::ReconciliationRow {
        bill_date: day.to_string(),
        at_ms: 0,
        source: "downloaded".into(),
        matched: 12,
        discrepancies,
    };
    for (language, reconciled, shown) in [
        (Language::English, None, "not reconciled"),
        (
            Language::English,
            Some(row(2)),
            "reconciled: 2 discrepancies",
        ),
        (
            Language::English,
            Some(row(0)),
            "reconciled: the books agree",
        ),
        (Language::Chinese, Some(row(0)), "已对账，一致"),
        (Language::Chinese, Some(row(3)), "3 处不一致"),
    ] {
        let mut till = Till::new(language);
        till.key(0, KeyCode::F(12));
        let Screen::Journal(journal) = &mut till.app.screen else {
            panic!("journal not open")
        };
        journal.day = day;
        till.send(Msg::DayLoaded(Ok(report(day))));
        assert!(!till.render(120, 30).contains("reconciled"), "not read yet");
        till.send(Msg::DayReconciled(day, reconciled));
        let screen = till.render(120, 30).replace(' ', "");
        assert!(screen.contains(&shown.replace(' ', "")), "{screen}");
        // Another day's answer, arriving late, says nothing about this one.
        till.send(Msg::DayReconciled(day.next_day().unwrap(), None));
        assert!(!till.render(120, 30).contains("not reconciled") || shown == "not reconciled");
        let screen = till.render(120, 30).replace(' ', "");
        assert!(screen.contains(&shown.replace(' ', "")), "{screen}");
    }
}

// ---- refunds on the journal screen ----

/// [`report`] after refunds: the 18.00 order refunded whole, the 22.00 one
/// 5.00 confirmed and 2.00 still processing.
fn report_with_refunds() -> DayReport {
    use crate::journal::RefundTotals;
    let mut day = report(today());
    day.refunds.insert(
        OrderId(1),
        RefundTotals {
            count: 1,
            refunded: Fen(1800),
            held: Fen(1800),
        },
    );
    day.refunds.insert(
        OrderId(2),
        RefundTotals {
            count: 3,
            refunded: Fen(500),
            held: Fen(700),
        },
    );
    day.summary.refunded_count = 2;
    day.summary.refunded_total = Fen(2300);
    day.summary.refund_pending_count = 1;
    day.summary.refund_pending_total = Fen(200);
    day
}

fn journal_screen(till: &Till) -> &JournalScreen {
    match &till.app.screen {
        Screen::Journal(journal) => journal,
        Screen::Till => panic!("the journal is not open"),
    }
}

fn form(till: &Till) -> &super::app::RefundForm {
    journal_screen(till)
        .refund
        .as_ref()
        .expect("the refund form is open")
}

fn refunded(amount: Fen) -> crate::payment::refunding::RefundResult {
    crate::payment::refunding::RefundResult {
        out_refund_no: format!(
            "{}R04",
            order(2, "12:31:44", 2200, OrderState::Paid, None).out_trade_no
        ),
        amount,
        outcome: crate::payment::refund::RefundFinal::Refunded {
            refund_id: "50000000012026112312345678".into(),
        },
        message: "Refunded".into(),
    }
}

#[test]
fn r_asks_the_amount_then_a_confirmation_then_refunds_and_esc_cancels() {
    use super::app::RefundStep;
    let mut till = Till::new(Language::English);
    journal_on(&mut till, report_with_refunds(), 1);
    till.key(0, KeyCode::Char('r'));
    assert_eq!(
        form(&till).remaining(),
        Fen(1500),
        "22.00 less 5.00 and 2.00"
    );
    assert_eq!(form(&till).step, RefundStep::Amount);
    // Enter on an empty amount: all that remains, to confirm.
    till.key(100, KeyCode::Enter);
    assert_eq!(form(&till).step, RefundStep::Confirm(Fen(1500)));
    assert!(
        till.take().is_empty(),
        "nothing is refunded before the confirmation"
    );
    // Esc cancels, at either step.
    till.key(200, KeyCode::Esc);
    assert!(journal_screen(&till).refund.is_none());
    till.key(300, KeyCode::Char('r'));
    till.key(400, KeyCode::Esc);
    assert!(journal_screen(&till).refund.is_none());
    assert!(till.take().is_empty());

    // A typed amount: above what remains is refused as it is typed.
    till.key(500, KeyCode::Char('r'));
    for (ms, c) in [(600, '2'), (700, '0')] {
        till.key(ms, KeyCode::Char(c));
    }
    assert_eq!(form(&till).amount.text(), "2");
    assert!(
        form(&till)
            .error
            .as_deref()
            .unwrap()
            .contains("at most the ¥15.00"),
        "{:?}",
        form(&till).error
    );
    for (ms, c) in [(800, '.'), (900, '5')] {
        till.key(ms, KeyCode::Char(c));
    }
    till.key(1000, KeyCode::Enter);
    assert_eq!(form(&till).step, RefundStep::Confirm(Fen(250)));
    // n goes back to the amount, Enter again to the confirmation.
    till.key(1100, KeyCode::Char('n'));
    assert_eq!(form(&till).step, RefundStep::Amount);
    till.key(1200, KeyCode::Enter);
    till.key(1300, KeyCode::Char('y'));
    let expected = order(2, "12:31:44", 2200, OrderState::Paid, None);
    assert_eq!(
        till.take(),
        [Command::Refund {
            order: expected,
            amount: Fen(250)
        }]
    );
    assert_eq!(form(&till).step, RefundStep::Running(Fen(250)));
    till.key(1400, KeyCode::Esc);
    assert!(
        journal_screen(&till).refund.is_some(),
        "the refund in flight stays on screen"
    );
    // The answer: shown, the day and today's totals read again.
    till.send(Msg::RefundDone(Ok(refunded(Fen(250)))));
    assert!(matches!(&form(&till).step, RefundStep::Done(Ok(_))));
    let commands = till.take();
    assert!(
        commands.contains(&Command::LoadDay(today())),
        "{commands:?}"
    );
    assert!(commands.contains(&Command::RefreshToday), "{commands:?}");
    let screen = till.render(100, 30);
    assert!(screen.contains("Refunded · ¥2.50"), "{screen}");
    till.key(1500, KeyCode::Enter);
    assert!(journal_screen(&till).refund.is_none());
    // The day read again keeps the order selected.
    till.send(Msg::DayLoaded(Ok(report_with_refunds())));
    assert_eq!(journal_screen(&till).selected, 1);
}

#[test]
fn an_order_that_cannot_be_refunded_says_why_and_opens_no_form() {
    let mut till = Till::new(Language::English);
    // The failed order: not paid.
    journal_on(&mut till, report_with_refunds(), 2);
    till.key(0, KeyCode::Char('r'));
    assert!(journal_screen(&till).refund.is_none());
    let said = notice(&till);
    assert!(said.contains("only a paid order can be refunded"), "{said}");
    assert!(till.render(100, 30).contains("only a paid order"));
    // The order refunded whole: nothing left.
    journal_on(&mut till, report_with_refunds(), 0);
    till.key(100, KeyCode::Char('r'));
    assert!(journal_screen(&till).refund.is_none());
    assert!(
        notice(&till).contains("¥0.00 left to refund"),
        "{}",
        notice(&till)
    );
    assert!(till.take().is_empty());

    // `scanpay journal` alone has no till to refund with.
    let base = Instant::now();
    let (app, _) = App::journal_only(info(Language::English, Driver::Wedge), base, today());
    let mut alone = Till::of(app, base);
    alone.send(Msg::DayLoaded(Ok(report_with_refunds())));
    alone.key(0, KeyCode::Down);
    alone.key(100, KeyCode::Char('r'));
    assert!(journal_screen(&alone).refund.is_none());
    let said = notice(&alone);
    assert!(said.contains("scanpay refund --order"), "{said}");
    assert!(alone.take().is_empty());
}

#[test]
fn snapshot_journal_with_refunds_and_the_refund_form() {
    let mut screens = Vec::new();
    for language in [Language::English, Language::Chinese] {
        let lang = match language {
            Language::English => "en",
            Language::Chinese => "zh",
        };
        let mut till = Till::new(language);
        till.app.today = Some((3, Fen(3702), Fen(2300)));
        journal_on(&mut till, report_with_refunds(), 1);
        let day = till.render(100, 30);
        insta::assert_snapshot!(format!("journal_day_refunds_{lang}"), day);
        screens.push(day);
        till.key(0, KeyCode::Char('r'));
        for (ms, c) in [(100, '1'), (200, '0')] {
            till.key(ms, KeyCode::Char(c));
        }
        let amount = till.render(100, 30);
        insta::assert_snapshot!(format!("journal_refund_form_{lang}"), amount);
        screens.push(amount);
        till.key(300, KeyCode::Enter);
        let confirm = till.render(100, 30);
        insta::assert_snapshot!(format!("journal_refund_confirm_{lang}"), confirm);
        screens.push(confirm);
        till.key(400, KeyCode::Enter);
        let mut done = refunded(Fen(1000));
        if language == Language::Chinese {
            done.message = "退款成功".into();
        }
        till.send(Msg::RefundDone(Ok(done)));
        let result = till.render(100, 30);
        insta::assert_snapshot!(format!("journal_refund_done_{lang}"), result);
        screens.push(result);
    }
    for screen in &screens[4..] {
        let words = english_words(screen);
        assert!(
            words.is_empty(),
            "English on a zh screen: {words:?}\n{screen}"
        );
    }
}

#[test]
fn the_timeline_of_a_refunded_order_shows_its_refunds_in_chinese() {
    use crate::payment::Event;
    use crate::payment::event::RefundReply;
    use crate::payment::refund::{
        RefundAnswer, RefundCall, RefundFinal, RefundQueryAnswer, RefundStatus,
    };
    let mut till = Till::new(Language::Chinese);
    let order = order(2, "12:31:44", 2200, OrderState::Paid, None);
    let no = format!("{}R01", order.out_trade_no);
    let events: Vec<EventRow> = [
        (
            EventKind::Note,
            Event::RefundOpened {
                out_refund_no: no.clone(),
                refund_fee: 500,
                reason: Some("退货".into()),
            },
        ),
        (
            EventKind::Request,
            Event::RefundRequest {
                out_refund_no: no.clone(),
                call: RefundCall::Refund { attempt: 1 },
                fields: Default::default(),
            },
        ),
        (
            EventKind::Answer,
            Event::RefundAnswer {
                out_refund_no: no.clone(),
                answer: RefundReply::Refund(RefundAnswer::Accepted {
                    refund_id: "50000000012026112312345678".into(),
                }),
                fields: None,
            },
        ),
        (
            EventKind::Request,
            Event::RefundRequest {
                out_refund_no: no.clone(),
                call: RefundCall::Query,
                fields: Default::default(),
            },
        ),
        (
            EventKind::Answer,
            Event::RefundAnswer {
                out_refund_no: no.clone(),
                answer: RefundReply::Query(RefundQueryAnswer::Status {
                    status: RefundStatus::Success,
                    refund_id: None,
                }),
                fields: None,
            },
        ),
        (
            EventKind::Note,
            Event::RefundFinished {
                out_refund_no: no.clone(),
                outcome: RefundFinal::Refunded {
                    refund_id: "50000000012026112312345678".into(),
                },
            },
        ),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (kind, event))| EventRow {
        id: i as i64 + 10,
        order_id: order.id,
        at_ms: order.created_at_ms + 3_600_000 + i as i64 * 400,
        since_t0_ms: None,
        kind,
        call: None,
        summary: "refund in English".into(),
        event,
    })
    .collect();
    till.app.screen = Screen::Journal(Box::new(JournalScreen {
        report: Some(Ok(report_with_refunds())),
        selected: 1,
        detail: Some(Ok((order, events))),
        ..JournalScreen::loading(today())
    }));
    let screen = till.render(100, 30);
    for words in [
        "申请退款",
        "已发送退款请求",
        "退款应答：已受理",
        "退款查询应答：退款成功",
        "退款成功",
        "已退 ¥5.00 · 可退 ¥15.00 · 退款中",
    ] {
        assert!(screen.contains(words), "{words} missing:\n{screen}");
    }
    assert!(!screen.contains("English"), "{screen}");
    insta::assert_snapshot!("journal_order_refunded_zh", screen);
}

#[test]
fn snapshot_store_sync_behind() {
    for (language, name, words) in [
        (
            Language::English,
            "till_store_behind_en",
            "store sync behind by 17 events",
        ),
        (
            Language::Chinese,
            "till_store_behind_zh",
            "门店同步落后 17 条",
        ),
    ] {
        let mut till = Till::new(language);
        assert!(!till.render(140, 30).contains(words));
        till.send(Msg::StoreBehind(17));
        let screen = till.render(140, 30);
        assert!(screen.contains(words), "{screen}");
        insta::assert_snapshot!(name, screen);
        till.send(Msg::StoreBehind(0));
        assert!(!till.render(140, 30).contains(words));
    }
}

/// `n` tills' lines of the store's `day`: till `T0k` paid `k` orders of
/// ¥10.00 each, T01 refunded ¥5.00 and has one order unsettled.
fn store_tills(day: time::Date, n: u64) -> crate::store::StoreDay {
    use crate::store::TillDay;
    let tills: Vec<TillDay> = (1..=n)
        .map(|k| TillDay {
            till_id: format!("T{k:02}"),
            installation_id: format!("inst{k:02}abcdef"),
            orders: k + u64::from(k == 1),
            paid: k,
            takings: 1000 * k as i64,
            unsettled: u64::from(k == 1),
            refunds: u64::from(k == 1),
            refunded: if k == 1 { 500 } else { 0 },
            shipped_through: 40 * k as i64,
        })
        .collect();
    crate::store::StoreDay::of(day.to_string(), tills)
}

/// `scanpay store`: the journal screen over every till, a line per till
/// above the hours, and orders of both tills in one list.
#[test]
fn snapshot_store_screen_with_a_line_per_till() {
    let day = time::macros::date!(2026 - 11 - 23);
    for (language, name) in [
        (Language::English, "store_day_en"),
        (Language::Chinese, "store_day_zh"),
    ] {
        let base = Instant::now();
        let (app, commands) = App::store_only(info(language, Driver::Wedge), base, day);
        assert_eq!(commands, vec![Command::LoadDay(day)]);
        let mut store = Till::of(app, base);
        let mut report = report(day);
        let mut other = order(5, "13:05:00", 990, OrderState::Paid, None);
        other.till_id = TillId::parse("T02").unwrap();
        other.out_trade_no = OutTradeNo::parse("T0220261123130500abcdef000001").unwrap();
        report.orders.insert(3, other);
        store.send(Msg::StoreTills(store_tills(day, 2)));
        store.send(Msg::DayLoaded(Ok(report)));
        insta::assert_snapshot!(name, store.render(110, 36));
    }
}

/// More tills than the screen gives room for: the first eight, how many
/// more, and the total of them all; lines of another day are not shown.
#[test]
fn the_store_screen_lists_eight_tills_and_counts_the_rest() {
    let day = time::macros::date!(2026 - 11 - 23);
    let base = Instant::now();
    let (app, _) = App::store_only(info(Language::English, Driver::Wedge), base, day);
    let mut store = Till::of(app, base);
    store.send(Msg::StoreTills(store_tills(day, 10)));
    store.send(Msg::DayLoaded(Ok(report(day))));
    let text = store.render(110, 40);
    assert!(text.contains("T08 (inst08abcdef)"), "{text}");
    assert!(!text.contains("T09 (inst09"), "{text}");
    assert!(
        text.contains("… 2 more tills, in the total: scanpay store --tills"),
        "{text}"
    );
    // 10 tills of ¥10.00 × k: ¥550.00 in 55 payments, less T01's ¥5.00.
    assert!(text.contains("55 ¥550.00"), "{text}");
    assert!(text.contains("¥545.00"), "{text}");

    // The next day's list arrives before its lines: the old day's are gone.
    let next = day.next_day().unwrap();
    store.send(Msg::Date(next));
    store.key(0, KeyCode::Right);
    assert_eq!(store.take(), vec![Command::LoadDay(next)]);
    let mut next_report = report(next);
    next_report.day = next;
    store.send(Msg::DayLoaded(Ok(next_report)));
    let text = store.render(110, 40);
    assert!(!text.contains("T01 (inst01"), "{text}");
    // A short terminal keeps the order list and drops the lines.
    store.send(Msg::StoreTills(store_tills(next, 10)));
    assert!(store.render(110, 40).contains("T01 (inst01"));
    assert!(!store.render(110, 24).contains("T01 (inst01"));
    // The old day's lines, answering late, do not take the new day's place.
    store.send(Msg::StoreTills(store_tills(day, 2)));
    let text = store.render(110, 40);
    assert!(text.contains("more tills, in the total"), "{text}");
}

/// Tab on the store screen shows one till's orders, then the next till's,
/// then all again; the heading names the till and its line is marked.
#[test]
fn tab_on_the_store_screen_filters_the_list_by_till() {
    let day = time::macros::date!(2026 - 11 - 23);
    let base = Instant::now();
    let (app, _) = App::store_only(info(Language::English, Driver::Wedge), base, day);
    let mut store = Till::of(app, base);
    let mut listed = report(day);
    let mut other = order(5, "13:05:00", 990, OrderState::Paid, None);
    other.till_id = TillId::parse("T02").unwrap();
    other.out_trade_no = OutTradeNo::parse("T0220261123130500abcdef000001").unwrap();
    listed.orders.push(other);
    store.send(Msg::StoreTills(store_tills(day, 3)));
    store.send(Msg::DayLoaded(Ok(listed)));
    let tills_of = |store: &Till| -> Vec<String> {
        let journal = journal_screen(store);
        journal
            .visible()
            .iter()
            .map(|o| o.till_id.to_string())
            .collect()
    };
    assert_eq!(tills_of(&store).len(), 5);
    store.key(0, KeyCode::Tab);
    assert_eq!(tills_of(&store), ["T01"; 4]);
    assert!(!store.render(110, 40).contains("5 orders"));
    assert!(store.render(110, 40).contains("4 orders · till T01"));
    store.key(100, KeyCode::Tab);
    assert_eq!(tills_of(&store), ["T02"]);
    // T03 has no orders in the list: none shown, and Enter opens nothing.
    store.key(200, KeyCode::Tab);
    assert!(tills_of(&store).is_empty());
    store.key(300, KeyCode::Enter);
    assert!(store.take().is_empty());
    store.key(400, KeyCode::Tab);
    assert_eq!(tills_of(&store).len(), 5);
    assert!(journal_screen(&store).till.is_none());

    // The journal screen of one till has no till filter.
    let (app, _) = App::journal_only(info(Language::English, Driver::Wedge), base, day);
    let mut alone = Till::of(app, base);
    alone.send(Msg::DayLoaded(Ok(report(day))));
    alone.key(0, KeyCode::Tab);
    assert!(journal_screen(&alone).till.is_none());
}
