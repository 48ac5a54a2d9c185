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
        gateway: "simulator http://127.0.0.1:8765".into(),
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
    fn new(language: Language) -> Self {
        Self::with_driver(language, Driver::Wedge)
    }

    fn with_driver(language: Language, driver: Driver) -> Self {
        let base = Instant::now();
        let mut app = App::new(info(language, driver), base);
        app.network = Network::Reachable;
        app.today = Some((3, Fen(3702)));
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
    till.key(0, KeyCode::F(2));
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
    for leave in [KeyCode::Esc, KeyCode::Char('q'), KeyCode::F(2)] {
        let base = Instant::now();
        let day = time::macros::date!(2026 - 11 - 22);
        let (app, commands) = App::journal_only(info(Language::English, Driver::Wedge), base, day);
        assert_eq!(commands, [Command::LoadDay(day)]);
        let mut till = Till {
            app,
            base,
            commands: Vec::new(),
        };
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
        },
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
    broken.send(Msg::PaymentError(
        "the journal could not be written (disk full)".into(),
    ));
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
        day,
        report: Some(Ok(report(day))),
        filter: None,
        selected: 1,
        detail: None,
    }));
    snapshot("journal_day_en", &till);
    let mut chinese = Till::new(Language::Chinese);
    chinese.app.screen = Screen::Journal(Box::new(JournalScreen {
        day,
        report: Some(Ok(report(day))),
        filter: Some(OrderState::Paid),
        selected: 0,
        detail: None,
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
        day,
        report: Some(Ok(report(day))),
        filter: None,
        selected: 3,
        detail: Some(Ok((order, events))),
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
