//! The till's one state and its update function. `update` is pure: it takes
//! a message (a key with its receipt instant, a scan, payment progress, a
//! tick, loaded data) and returns commands for the event loop to run. No IO,
//! no clock: tests drive it with explicit instants.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use time::Date;

use super::amount::{AmountField, Refused};
use crate::domain::{AuthCode, Fen};
use crate::journal::{DayReport, EventRow, OrderRow, OrderState};
use crate::payment::recovery::Recovered;
use crate::payment::{PaymentRequest, PaymentResult, Progress, Status};
use crate::scanner::wedge::{WedgeDecoder, WedgeOutput, WedgeSettings};
use crate::scanner::{Driver, DriverStatus, Pipeline, ScanEvent};
use crate::wechat::messages::Language;

/// What the till shows that does not change while it runs.
#[derive(Debug, Clone)]
pub struct TillInfo {
    pub till_id: String,
    pub gateway: String,
    pub driver: Driver,
    pub journal_path: String,
    pub max_amount: Fen,
    pub default_body: String,
    pub language: Language,
    pub presets: Vec<(String, Fen)>,
    pub bell: bool,
    pub store_offset: time::UtcOffset,
    pub wedge: WedgeSettings,
    pub duplicate_window: Duration,
    /// The payment deadline, for the countdown.
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent, Instant),
    Tick(Instant),
    Scan(ScanEvent),
    Progress(Progress),
    /// The engine failed (the journal): the order stays open for recovery.
    PaymentError(String),
    Today {
        paid: u64,
        total: Fen,
    },
    Network(bool),
    DayLoaded(Result<DayReport, String>),
    /// An order interrupted by a crash was resolved (or could not be).
    Recovered {
        out_trade_no: String,
        outcome: Result<Recovered, String>,
    },
    OrderLoaded(Result<(OrderRow, Vec<EventRow>), String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pay(PaymentRequest),
    Cancel,
    LoadDay(Date),
    LoadOrder(OrderRow),
    RefreshToday,
    Bell,
    Quit,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Typing the amount, waiting for a scan.
    Entering,
    Paying(Paying),
    /// The last payment's result, shown until the next sale starts.
    Done(Result<PaymentResult, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paying {
    pub amount: Fen,
    pub code: String,
    pub out_trade_no: Option<String>,
    pub status: Status,
    /// When `status` arrived, and how long after the micropay was sent.
    pub status_at: Instant,
    pub status_elapsed: Duration,
    pub cancel_requested: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub tone: Tone,
    pub until: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Unknown,
    Reachable,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    Till,
    /// Boxed: a loaded day is large, and the till screen should not pay for it.
    Journal(Box<JournalScreen>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JournalScreen {
    pub day: Date,
    pub report: Option<Result<DayReport, String>>,
    pub filter: Option<OrderState>,
    pub selected: usize,
    pub detail: Option<Result<(OrderRow, Vec<EventRow>), String>>,
}

impl JournalScreen {
    pub fn visible(&self) -> Vec<&OrderRow> {
        match &self.report {
            Some(Ok(report)) => report
                .orders
                .iter()
                .filter(|o| self.filter.is_none_or(|f| o.state == f))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The order in which the journal's state filter cycles.
const FILTERS: [Option<OrderState>; 7] = [
    None,
    Some(OrderState::Paid),
    Some(OrderState::Failed),
    Some(OrderState::Reversed),
    Some(OrderState::Closed),
    Some(OrderState::NeedsAttention),
    Some(OrderState::Open),
];

const NOTICE_FOR: Duration = Duration::from_secs(8);

/// An interrupted order being resolved in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovering {
    pub out_trade_no: String,
    pub amount: Fen,
    /// Recent enough that its customer may still be at the till: no new
    /// payment until it is resolved, or they could pay twice.
    pub blocks_new_payments: bool,
}

/// Orders younger than this hold new payments while they are recovered.
pub const RECENT: Duration = Duration::from_secs(300);

pub struct App {
    pub info: TillInfo,
    pub recovering: Vec<Recovering>,
    /// Interrupted orders resolved since start, and how many of them paid.
    pub recovered: (usize, usize),
    pub now: Instant,
    pub screen: Screen,
    pub amount: AmountField,
    pub body: String,
    pub phase: Phase,
    pub notice: Option<Notice>,
    pub scanner: DriverStatus,
    pub network: Network,
    pub today: Option<(u64, Fen)>,
    pub quit: bool,
    /// `scanpay journal`: the journal screen alone, with no till behind it
    /// (no payments, scanner or gateway); leaving it quits.
    pub journal_only: bool,
    decoder: WedgeDecoder,
    keyboard_scans: Pipeline,
}

impl App {
    pub fn new(info: TillInfo, now: Instant) -> Self {
        let decoder = WedgeDecoder::new(info.wedge.clone());
        let keyboard_scans = Pipeline::new(Driver::Wedge, info.duplicate_window);
        let scanner = match info.driver {
            Driver::Wedge => DriverStatus::Connected("keys from this terminal".into()),
            _ => DriverStatus::Disconnected("starting".into()),
        };
        let body = info.default_body.clone();
        Self {
            info,
            recovering: Vec::new(),
            recovered: (0, 0),
            now,
            screen: Screen::Till,
            amount: AmountField::default(),
            body,
            phase: Phase::Entering,
            notice: None,
            scanner,
            network: Network::Unknown,
            today: None,
            quit: false,
            journal_only: false,
            decoder,
            keyboard_scans,
        }
    }

    pub fn zh(&self) -> bool {
        self.info.language == Language::Chinese
    }

    /// The text in the configured language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.zh() { zh } else { en }
    }

    /// When the loop must wake even without input: held keys to settle.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.decoder.next_deadline()
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Command> {
        let mut commands = Vec::new();
        match msg {
            Msg::Key(key, at) => {
                self.now = self.now.max(at);
                let mut out = Vec::new();
                // Keys reach the decoder only on the till's entry screen;
                // elsewhere there is no field a burst could land in.
                if self.screen == Screen::Till {
                    self.decoder.feed(key, at, &mut out);
                } else {
                    out.push(WedgeOutput::Key(key));
                }
                self.decoded(out, &mut commands);
            }
            Msg::Tick(now) => {
                self.now = self.now.max(now);
                let mut out = Vec::new();
                self.decoder.poll(now, &mut out);
                self.decoded(out, &mut commands);
                if self.notice.as_ref().is_some_and(|n| n.until <= now) {
                    self.notice = None;
                }
            }
            Msg::Scan(event) => self.scanned(event, &mut commands),
            Msg::Progress(progress) => self.progress(progress, &mut commands),
            Msg::PaymentError(error) => {
                self.phase = Phase::Done(Err(error));
                self.ring(&mut commands);
            }
            Msg::Today { paid, total } => self.today = Some((paid, total)),
            Msg::Network(up) => {
                self.network = if up {
                    Network::Reachable
                } else {
                    Network::Unreachable
                }
            }
            Msg::DayLoaded(report) => {
                if let Screen::Journal(journal) = &mut self.screen {
                    if report.as_ref().is_ok_and(|r| r.day != journal.day) {
                        return commands; // an older request answered late
                    }
                    journal.report = Some(report);
                    journal.selected = 0;
                }
            }
            Msg::Recovered {
                out_trade_no,
                outcome,
            } => {
                self.recovering.retain(|r| r.out_trade_no != out_trade_no);
                self.recovered.0 += 1;
                match outcome {
                    Ok(Recovered::Skipped { owner }) => {
                        self.recovered.0 -= 1;
                        let text = if self.zh() {
                            format!(
                                "订单 {out_trade_no} 正由另一个 scanpay 进程（{owner}）处理，本机不动它"
                            )
                        } else {
                            format!(
                                "Order {out_trade_no} is being paid by another scanpay process ({owner}): left to it"
                            )
                        };
                        self.say(Tone::Info, text);
                    }
                    Ok(Recovered::AlreadyFinished) => self.recovered.0 -= 1,
                    Ok(Recovered::Resolved(result)) => {
                        if result.state() == OrderState::Paid {
                            self.recovered.1 += 1;
                        }
                        let text = if self.zh() {
                            format!(
                                "已恢复中断的订单 {out_trade_no}（¥{}）：{}",
                                result.amount, result.message
                            )
                        } else {
                            format!(
                                "Recovered interrupted order {out_trade_no} (¥{}): {}",
                                result.amount, result.message
                            )
                        };
                        self.say(Tone::Info, text);
                    }
                    Err(e) => self.say(Tone::Error, format!("{out_trade_no}: {e}")),
                }
                commands.push(Command::RefreshToday);
            }
            Msg::OrderLoaded(order) => {
                if let Screen::Journal(journal) = &mut self.screen {
                    journal.detail = Some(order);
                }
            }
        }
        commands
    }

    fn decoded(&mut self, out: Vec<WedgeOutput>, commands: &mut Vec<Command>) {
        for output in out {
            match output {
                WedgeOutput::Key(key) => self.key(key, commands),
                WedgeOutput::Read { text, timing } => {
                    if self.info.driver != Driver::Wedge {
                        // A keyboard-mode scanner read through HID also types
                        // here; the device driver has the read, so never pay twice.
                        self.say(
                            Tone::Info,
                            self.t(
                                "已忽略键盘扫码：扫码枪由设备驱动读取",
                                "Keyboard scan ignored: the scanner is read by its device driver",
                            ),
                        );
                        continue;
                    }
                    let event = self.keyboard_scans.read(&text, timing);
                    self.scanned(event, commands);
                }
            }
        }
    }

    fn say(&mut self, tone: Tone, text: impl Into<String>) {
        self.notice = Some(Notice {
            text: text.into(),
            tone,
            until: self.now + NOTICE_FOR,
        });
    }

    fn ring(&self, commands: &mut Vec<Command>) {
        if self.info.bell {
            commands.push(Command::Bell);
        }
    }

    fn scanned(&mut self, event: ScanEvent, commands: &mut Vec<Command>) {
        match event {
            ScanEvent::Status { status, .. } => self.scanner = status,
            ScanEvent::Rejected { reason, shown, .. } => {
                let what = self.t("不是微信付款码", "Not a WeChat payment code");
                self.say(Tone::Warning, format!("{what}: {shown} — {reason}"));
            }
            ScanEvent::Scan { code, .. } => self.pay(code, commands),
        }
    }

    fn pay(&mut self, code: AuthCode, commands: &mut Vec<Command>) {
        if matches!(self.phase, Phase::Paying(_)) {
            let text = self.t(
                "正在支付中：请等待结果或按 Esc 取消，本次扫码未使用",
                "Payment in progress: wait for it or press Esc to cancel; this scan was not used",
            );
            self.say(Tone::Warning, text);
            return;
        }
        if let Some(first) = self.recovering.iter().find(|r| r.blocks_new_payments) {
            let text = if self.zh() {
                format!(
                    "正在恢复中断的订单 {}（¥{}），完成前不能收新款；请勿向该顾客重复收款",
                    first.out_trade_no, first.amount
                )
            } else {
                format!(
                    "Finishing the interrupted order {} (¥{}) first; do not charge that customer again. This scan was not used",
                    first.out_trade_no, first.amount
                )
            };
            self.say(Tone::Warning, text);
            return;
        }
        if self.screen != Screen::Till {
            self.say(
                Tone::Warning,
                self.t(
                    "请先回到收银界面（Esc）再扫码",
                    "Go back to the till (Esc) before scanning",
                ),
            );
            return;
        }
        let amount = match (&self.phase, self.amount.value()) {
            (Phase::Entering, Ok(amount)) => amount,
            _ => {
                let text = self.t(
                    "请先输入金额，再扫描付款码",
                    "Type the amount first, then scan the payment code",
                );
                self.say(Tone::Warning, text);
                return;
            }
        };
        self.notice = None;
        self.phase = Phase::Paying(Paying {
            amount,
            code: code.masked(),
            out_trade_no: None,
            status: Status::Sending,
            status_at: self.now,
            status_elapsed: Duration::ZERO,
            cancel_requested: false,
        });
        commands.push(Command::Pay(PaymentRequest {
            amount,
            body: self.body.clone(),
            auth_code: code,
        }));
    }

    fn progress(&mut self, progress: Progress, commands: &mut Vec<Command>) {
        match progress {
            Progress::Opened { out_trade_no } => {
                if let Phase::Paying(paying) = &mut self.phase {
                    paying.out_trade_no = Some(out_trade_no.to_string());
                }
            }
            Progress::Status { status, elapsed } => {
                if let Phase::Paying(paying) = &mut self.phase {
                    paying.status = status;
                    paying.status_at = self.now;
                    paying.status_elapsed = elapsed;
                }
            }
            Progress::Finished(result) => {
                self.phase = Phase::Done(Ok(result));
                self.amount.clear();
                self.body = self.info.default_body.clone();
                self.ring(commands);
                commands.push(Command::RefreshToday);
            }
        }
    }

    fn key(&mut self, key: KeyEvent, commands: &mut Vec<Command>) {
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        // Ctrl/Alt chords are neither typing nor shortcuts: a stray LF from a
        // scanner arrives as Ctrl+J and must not act as 'j' (open the journal).
        if !ctrl_c
            && key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return;
        }
        match &mut self.screen {
            Screen::Journal(_) => self.journal_key(key, ctrl_c, commands),
            Screen::Till => self.till_key(key, ctrl_c, commands),
        }
    }

    fn till_key(&mut self, key: KeyEvent, ctrl_c: bool, commands: &mut Vec<Command>) {
        let paying = matches!(self.phase, Phase::Paying(_));
        match key.code {
            _ if ctrl_c || key.code == KeyCode::Char('q') => {
                if paying {
                    let text = self.t(
                        "正在支付中，不能退出：请等待结果或按 Esc 取消",
                        "A payment is in progress: wait for it or press Esc to cancel, then quit",
                    );
                    self.say(Tone::Warning, text);
                } else {
                    self.quit = true;
                    commands.push(Command::Quit);
                }
            }
            KeyCode::Esc => match &mut self.phase {
                Phase::Paying(paying) if !paying.cancel_requested => {
                    paying.cancel_requested = true;
                    commands.push(Command::Cancel);
                    let text = self.t("正在取消：将按规则撤销订单（支付发出15秒后）", "Cancelling: the order will be reversed as the rules allow (15 s after sending)");
                    self.say(Tone::Info, text);
                }
                Phase::Paying(_) => {}
                Phase::Done(_) => self.phase = Phase::Entering,
                Phase::Entering => {
                    self.amount.clear();
                    self.body = self.info.default_body.clone();
                    self.notice = None;
                }
            },
            KeyCode::F(2) | KeyCode::Char('j') if !paying => {
                let today = self.today_date();
                commands.extend(self.open_journal(today));
            }
            KeyCode::F(n) if (1..=9).contains(&n) && !paying => {
                if let Some((name, amount)) = self.info.presets.get(n as usize - 1).cloned() {
                    self.new_sale_from_result();
                    self.amount.set(amount);
                    self.body = name;
                }
            }
            KeyCode::Char(c @ ('0'..='9' | '.')) if !paying => {
                self.new_sale_from_result();
                if let Err(refused) = self.amount.type_char(c, self.info.max_amount) {
                    let text = self.refused_text(refused);
                    self.say(Tone::Warning, text);
                }
            }
            KeyCode::Backspace if !paying => {
                self.new_sale_from_result();
                self.amount.backspace();
            }
            KeyCode::Delete if !paying => {
                self.new_sale_from_result();
                self.amount.clear();
            }
            KeyCode::Enter if !paying && !self.amount.is_empty() => {
                let text = self.t(
                    "请扫描顾客的微信付款码",
                    "Scan the customer's WeChat payment code",
                );
                self.say(Tone::Info, text);
            }
            _ => {}
        }
    }

    /// Typing after a result starts the next sale.
    fn new_sale_from_result(&mut self) {
        if matches!(self.phase, Phase::Done(_)) {
            self.phase = Phase::Entering;
            self.amount.clear();
        }
    }

    fn refused_text(&self, refused: Refused) -> String {
        match refused {
            Refused::SecondPoint => self
                .t("金额只能有一个小数点", "An amount has one decimal point")
                .into(),
            Refused::ThirdDecimal => self
                .t("金额最多两位小数", "Amounts have at most two decimals")
                .into(),
            Refused::TooLong => self.t("金额太长", "That amount is too long").into(),
            Refused::OverMaximum(max) => {
                if self.zh() {
                    format!("超过本收银台上限 {max} 元")
                } else {
                    format!("Over this till's maximum of {max}")
                }
            }
        }
    }

    fn journal_key(&mut self, key: KeyEvent, ctrl_c: bool, commands: &mut Vec<Command>) {
        let Screen::Journal(journal) = &mut self.screen else {
            return;
        };
        let rows = journal.visible().len();
        if ctrl_c {
            self.quit = true;
            commands.push(Command::Quit);
            return;
        }
        if journal.detail.is_some() {
            if matches!(key.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Backspace) {
                journal.detail = None;
            }
            return;
        }
        match key.code {
            KeyCode::Esc | KeyCode::F(2) | KeyCode::Char('q') if self.journal_only => {
                self.quit = true;
                commands.push(Command::Quit);
            }
            KeyCode::Esc | KeyCode::F(2) | KeyCode::Char('q') => self.screen = Screen::Till,
            KeyCode::Left | KeyCode::Char('h') => {
                journal.day = journal.day.previous_day().unwrap_or(journal.day);
                journal.report = None;
                commands.push(Command::LoadDay(journal.day));
            }
            KeyCode::Right | KeyCode::Char('l') => {
                journal.day = journal.day.next_day().unwrap_or(journal.day);
                journal.report = None;
                commands.push(Command::LoadDay(journal.day));
            }
            KeyCode::Char('t') => {
                let today =
                    (time::OffsetDateTime::now_utc().to_offset(self.info.store_offset)).date();
                journal.day = today;
                journal.report = None;
                commands.push(Command::LoadDay(today));
            }
            KeyCode::Char('f') => {
                let at = FILTERS
                    .iter()
                    .position(|f| *f == journal.filter)
                    .unwrap_or(0);
                journal.filter = FILTERS[(at + 1) % FILTERS.len()];
                journal.selected = 0;
            }
            KeyCode::Down | KeyCode::Char('j') if rows > 0 => {
                journal.selected = (journal.selected + 1).min(rows - 1)
            }
            KeyCode::Up | KeyCode::Char('k') => {
                journal.selected = journal.selected.saturating_sub(1)
            }
            KeyCode::PageDown if rows > 0 => {
                journal.selected = (journal.selected + 20).min(rows - 1)
            }
            KeyCode::PageUp => journal.selected = journal.selected.saturating_sub(20),
            KeyCode::Home => journal.selected = 0,
            KeyCode::End if rows > 0 => journal.selected = rows - 1,
            KeyCode::Enter => {
                if let Some(order) = journal.visible().get(journal.selected) {
                    commands.push(Command::LoadOrder((*order).clone()));
                }
            }
            _ => {}
        }
    }

    /// The journal screen alone on `day` (`scanpay journal`): there is no
    /// till to go back to, so leaving it quits.
    pub fn journal_only(info: TillInfo, now: Instant, day: Date) -> (Self, Vec<Command>) {
        let mut app = Self::new(info, now);
        app.journal_only = true;
        let commands = app.open_journal(day);
        (app, commands)
    }

    /// Opens the manager's journal on `day`.
    pub fn open_journal(&mut self, day: Date) -> Vec<Command> {
        self.screen = Screen::Journal(Box::new(JournalScreen {
            day,
            report: None,
            filter: None,
            selected: 0,
            detail: None,
        }));
        vec![Command::LoadDay(day)]
    }

    fn today_date(&self) -> Date {
        time::OffsetDateTime::now_utc()
            .to_offset(self.info.store_offset)
            .date()
    }

    /// Seconds left to the payment deadline, as the countdown shows it.
    pub fn remaining(&self, paying: &Paying) -> Duration {
        let elapsed = paying.status_elapsed + self.now.saturating_duration_since(paying.status_at);
        match paying.status {
            Status::CustomerPaying { deadline, .. } | Status::Unclear { deadline, .. } => {
                deadline.saturating_sub(elapsed)
            }
            _ => self.info.deadline.saturating_sub(elapsed),
        }
    }
}
