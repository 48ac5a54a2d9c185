//! The till's one state and its update function. `update` is pure: it takes
//! a message (a key with its receipt instant, a scan, payment progress, a
//! tick, the store's date, loaded data) and returns commands for the event
//! loop to run. No IO, no clock: the loop passes instants and the date in,
//! and tests drive it with explicit ones. Each screen's keys are handled in
//! its own module ([`till_keys`], [`journal_keys`]).

mod journal_keys;
mod till_keys;

use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, KeyModifiers};
use time::Date;

use super::amount::AmountField;
use super::words;
use crate::domain::{AuthCode, Fen};
use crate::journal::{
    DayReport, EventRow, OrderRow, OrderState, ReconciliationRow, RefundRefusal, RefundTotals,
};
use crate::payment::recovery::Recovered;
use crate::payment::refunding::RefundResult;
use crate::payment::{Final, PaymentRequest, PaymentResult, Progress, Status};
use crate::scanner::wedge::{WedgeDecoder, WedgeOutput, WedgeSettings};
use crate::scanner::{Driver, DriverStatus, Pipeline, Rejection, ScanEvent};
use crate::store::StoreDay;
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
    /// The store's local date: sent by the loop at start and whenever it changes.
    Date(Date),
    /// The terminal's size, for scrolling by pages.
    Resize {
        width: u16,
        height: u16,
    },
    Scan(ScanEvent),
    Progress(Progress),
    /// The engine failed (the journal): the order stays open for recovery.
    /// `detail` is for the log; the cashier reads a sentence.
    PaymentError {
        nothing_sent: bool,
        detail: String,
    },
    Today {
        paid: u64,
        total: Fen,
        /// Refunds issued today (confirmed), of orders of any day.
        refunded: Fen,
        /// Orders of any day that need a person, and the newest one's day.
        attention: u64,
        attention_day: Option<Date>,
    },
    Network(bool),
    /// Events of the journal not yet in the store database, as the
    /// background shipper last counted (`[store]` set only).
    StoreBehind(u64),
    DayLoaded(Result<DayReport, String>),
    /// The store screen's day per till, read with its orders.
    StoreTills(StoreDay),
    /// The newest reconciliation against WeChat's bill of a day (`None`:
    /// never reconciled), read with the day.
    DayReconciled(Date, Option<ReconciliationRow>),
    /// An order interrupted by a crash was resolved (or could not be).
    Recovered {
        out_trade_no: String,
        outcome: Result<Recovered, String>,
    },
    OrderLoaded(Result<(OrderRow, Vec<EventRow>), String>),
    /// A refund asked for on the journal screen ended (or did not start).
    RefundDone(Result<RefundResult, RefundFailed>),
}

/// Why a refund asked for on the journal screen did not get an answer from
/// WeChat; the loop logs the detail, the screen words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundFailed {
    /// Refused by the journal's checks before anything was sent (another
    /// refund of the order got there first, say).
    Refused(RefundRefusal),
    /// The journal could not record it: nothing was sent.
    NotSent,
    /// Journaled and maybe sent, then a step could not be recorded:
    /// `scanpay replay` follows it up under the same number.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Pay(PaymentRequest),
    Cancel,
    LoadDay(Date),
    LoadOrder(OrderRow),
    /// Refund `amount` of a paid order (till mode only).
    Refund {
        order: OrderRow,
        amount: Fen,
    },
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
    Done(Done),
}

/// How the last payment ended, as the till shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub amount: Fen,
    pub result: Result<PaymentResult, Fault>,
    /// The answers before the end were unclear (network or gateway trouble),
    /// not a customer still typing the password.
    pub after_unclear: bool,
}

/// The engine could not record a step (the cause is in the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub nothing_sent: bool,
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
    /// How many queries have gone out.
    pub queries: u32,
    /// Some answer was unclear (network or gateway trouble).
    pub unclear: bool,
    /// The network check said the gateway was unreachable when the scan came.
    pub network_down: bool,
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
    /// The first timeline row shown in the detail.
    pub scroll: usize,
    /// The refund form, over the list or the detail.
    pub refund: Option<RefundForm>,
    /// The store screen's lines per till, of the day they name.
    pub tills: Option<StoreDay>,
    /// The store screen's till filter (Tab): only this till's orders.
    pub till: Option<String>,
}

/// Refunding one paid order from the journal screen: the amount (the
/// refundable remainder unless typed), a confirmation, then the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundForm {
    pub order: OrderRow,
    /// What the order's refunds added up to when the form opened.
    pub totals: RefundTotals,
    /// Empty means all that remains.
    pub amount: AmountField,
    pub step: RefundStep,
    /// Why the typed amount cannot be refunded.
    pub error: Option<String>,
}

impl RefundForm {
    /// What may still be refunded, as of when the form opened.
    pub fn remaining(&self) -> Fen {
        self.totals.remaining(self.order.total_fee)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStep {
    Amount,
    /// Enter or `y` refunds this, Esc cancels.
    Confirm(Fen),
    Running(Fen),
    Done(Result<RefundResult, RefundFailed>),
}

impl JournalScreen {
    /// The screen on `day` before the day's orders have arrived.
    pub fn loading(day: Date) -> Self {
        Self {
            day,
            report: None,
            filter: None,
            selected: 0,
            detail: None,
            scroll: 0,
            refund: None,
            tills: None,
            till: None,
        }
    }

    pub fn visible(&self) -> Vec<&OrderRow> {
        match &self.report {
            Some(Ok(report)) => report
                .orders
                .iter()
                .filter(|o| self.filter.is_none_or(|f| o.state == f))
                .filter(|o| self.till.as_ref().is_none_or(|t| o.till_id.as_str() == t))
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
    /// Journal events not yet shipped to the store database (0: none, or no store).
    pub store_behind: u64,
    /// Today's paid orders, takings, and refunds issued.
    pub today: Option<(u64, Fen, Fen)>,
    /// Orders needing a person (any day) and the newest one's day.
    pub attention: (u64, Option<Date>),
    /// The store's local date, as the loop last said.
    pub date: Date,
    /// The terminal's size.
    pub size: (u16, u16),
    pub quit: bool,
    /// `scanpay journal`: the journal screen alone, with no till behind it
    /// (no payments, scanner or gateway); leaving it quits.
    pub journal_only: bool,
    /// `scanpay store`: the journal screen alone over every till's orders,
    /// read from the store database (`journal_only` too).
    pub store_view: bool,
    /// Whether the journal screen's day was reconciled (`scanpay
    /// reconcile`), once read: the day, and its newest reconciliation.
    pub reconciled: Option<(Date, Option<ReconciliationRow>)>,
    decoder: WedgeDecoder,
    keyboard_scans: Pipeline,
}

impl App {
    pub fn new(info: TillInfo, now: Instant, date: Date) -> Self {
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
            store_behind: 0,
            today: None,
            attention: (0, None),
            date,
            size: (110, 32),
            quit: false,
            journal_only: false,
            store_view: false,
            reconciled: None,
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

    /// A sentence of the catalog in the configured language.
    pub fn words(&self, key: &str, fields: &[(&str, &dyn std::fmt::Display)]) -> String {
        words::text(self.info.language, key, fields)
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
            Msg::Date(date) => self.date = date,
            Msg::Resize { width, height } => self.size = (width, height),
            Msg::Scan(event) => self.scanned(event, &mut commands),
            Msg::Progress(progress) => self.progress(progress, &mut commands),
            Msg::PaymentError {
                nothing_sent,
                // Logged where it happened; the cashier reads a sentence.
                detail: _,
            } => {
                let (amount, after_unclear) = match &self.phase {
                    Phase::Paying(paying) => (paying.amount, paying.unclear),
                    _ => (self.amount.value().unwrap_or_default(), false),
                };
                if !nothing_sent {
                    // It may be charged: nothing invites a second payment.
                    self.clear_sale();
                }
                self.phase = Phase::Done(Done {
                    amount,
                    result: Err(Fault { nothing_sent }),
                    after_unclear,
                });
                self.ring(&mut commands);
                commands.push(Command::RefreshToday);
            }
            Msg::Today {
                paid,
                total,
                refunded,
                attention,
                attention_day,
            } => {
                self.today = Some((paid, total, refunded));
                self.attention = (attention, attention_day);
            }
            Msg::Network(up) => {
                self.network = if up {
                    Network::Reachable
                } else {
                    Network::Unreachable
                }
            }
            Msg::StoreBehind(n) => self.store_behind = n,
            Msg::StoreTills(tills) => {
                // Like the day itself: an older request answering late is dropped.
                if let Screen::Journal(journal) = &mut self.screen
                    && tills.date == journal.day.to_string()
                {
                    journal.tills = Some(tills);
                }
            }
            Msg::DayLoaded(report) => {
                if let Screen::Journal(journal) = &mut self.screen {
                    if report.as_ref().is_ok_and(|r| r.day != journal.day) {
                        return commands; // an older request answered late
                    }
                    // The same day read again (after a refund): the same
                    // order stays selected.
                    let kept = journal.visible().get(journal.selected).map(|o| o.id);
                    journal.report = Some(report);
                    journal.selected = kept
                        .and_then(|id| journal.visible().iter().position(|o| o.id == id))
                        .unwrap_or(0);
                }
            }
            Msg::DayReconciled(day, row) => {
                if matches!(&self.screen, Screen::Journal(journal) if journal.day == day) {
                    self.reconciled = Some((day, row));
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
                        let text = self.words(
                            "till.recovered_elsewhere",
                            &[("order", &out_trade_no), ("owner", &owner)],
                        );
                        self.say(Tone::Info, text);
                    }
                    Ok(Recovered::AlreadyFinished) => self.recovered.0 -= 1,
                    Ok(Recovered::Resolved(result)) => {
                        if result.state() == OrderState::Paid {
                            self.recovered.1 += 1;
                        }
                        let message = self.result_sentence(&result, false);
                        let text = self.words(
                            "till.recovered",
                            &[
                                ("order", &out_trade_no),
                                ("amount", &result.amount),
                                ("message", &message),
                            ],
                        );
                        self.say(Tone::Info, text);
                    }
                    Err(_) => {
                        // The loop logs the cause; the cashier gets a sentence.
                        let text = self.words("till.recovery_failed", &[("order", &out_trade_no)]);
                        self.say(Tone::Error, text);
                    }
                }
                commands.push(Command::RefreshToday);
            }
            Msg::OrderLoaded(order) => {
                if let Screen::Journal(journal) = &mut self.screen {
                    journal.detail = Some(order);
                    journal.scroll = 0;
                }
            }
            Msg::RefundDone(result) => self.refund_done(result, &mut commands),
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

    fn key(&mut self, key: KeyEvent, commands: &mut Vec<Command>) {
        let ctrl_c = key.code == crossterm::event::KeyCode::Char('c')
            && key.modifiers.contains(KeyModifiers::CONTROL);
        // Ctrl/Alt chords are neither typing nor shortcuts: a stray LF from a
        // scanner arrives as Ctrl+J and must not act as 'j' (open the journal).
        if !ctrl_c
            && key
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return;
        }
        match &self.screen {
            Screen::Journal(_) => self.journal_key(key, ctrl_c, commands),
            Screen::Till => self.till_key(key, ctrl_c, commands),
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
            ScanEvent::Rejected {
                reason: Rejection::Duplicate,
                ..
            } => {
                let text = self.words("till.duplicate", &[]);
                self.say(Tone::Warning, text);
            }
            ScanEvent::Rejected { reason, shown, .. } => {
                let reason = self.rejection(&reason);
                let shown = if self.zh() { zh_count(&shown) } else { shown };
                let text = self.words("till.rejected", &[("shown", &shown), ("reason", &reason)]);
                self.say(Tone::Warning, text);
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
            let text = self.words(
                "till.recovering_blocks",
                &[("order", &first.out_trade_no), ("amount", &first.amount)],
            );
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
        // After a result the amount is kept only when nothing was charged:
        // a scan then retries the sale with another code.
        let amount = match (&self.phase, self.amount.value()) {
            (Phase::Entering | Phase::Done(_), Ok(amount)) => amount,
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
        let network_down = self.network == Network::Unreachable;
        if network_down {
            // Sent anyway: the probe may be wrong, and a connection that
            // cannot open fails at once with nothing charged.
            let text = self.words("till.network_warning", &[]);
            self.say(Tone::Warning, text);
        }
        self.phase = Phase::Paying(Paying {
            amount,
            code: code.masked(),
            out_trade_no: None,
            status: Status::Sending,
            status_at: self.now,
            status_elapsed: Duration::ZERO,
            cancel_requested: false,
            queries: 0,
            unclear: false,
            network_down,
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
                    match status {
                        Status::Querying => paying.queries += 1,
                        Status::Unclear { .. } => paying.unclear = true,
                        _ => {}
                    }
                    paying.status = status;
                    paying.status_at = self.now;
                    paying.status_elapsed = elapsed;
                }
            }
            Progress::Finished(result) => {
                let after_unclear = match &self.phase {
                    Phase::Paying(paying) => paying.unclear,
                    _ => false,
                };
                match result.state() {
                    // Not charged: the amount stays for a retry with another code.
                    OrderState::Failed | OrderState::Reversed | OrderState::Closed => {}
                    OrderState::Paid | OrderState::NeedsAttention | OrderState::Open => {
                        self.clear_sale()
                    }
                }
                self.phase = Phase::Done(Done {
                    amount: result.amount,
                    result: Ok(result),
                    after_unclear,
                });
                self.ring(commands);
                commands.push(Command::RefreshToday);
            }
        }
    }

    fn clear_sale(&mut self) {
        self.amount.clear();
        self.body = self.info.default_body.clone();
    }

    /// What the cashier reads about a result. The till words the outcomes
    /// where the engine's sentence would mislead the cashier: a reverse at the
    /// deadline after unclear answers is gateway trouble, not a slow customer,
    /// and an unclear order says what to do about the customer standing there
    /// (the technical detail is in the journal's timeline and the log).
    /// Everything else, outcomes added later included, is the engine's own.
    pub fn result_sentence(&self, result: &PaymentResult, after_unclear: bool) -> String {
        match &result.outcome {
            Final::Reversed(
                crate::payment::ReverseReason::Deadline
                | crate::payment::ReverseReason::Unconfirmed,
            ) if after_unclear => self.words("till.reversed_after_unclear", &[]),
            Final::NeedsAttention(_) => self.words("till.needs_attention", &[]),
            _ => result.message.clone(),
        }
    }

    /// A rejected read's reason in the cashier's language.
    fn rejection(&self, reason: &Rejection) -> String {
        use crate::domain::AuthCodeError as E;
        #[allow(unreachable_patterns)] // the scanner may learn new reasons
        match reason {
            Rejection::Code(E::Empty) => self.words("till.code_empty", &[]),
            Rejection::Code(E::NotDigits { .. }) => self.words("till.code_not_digits", &[]),
            Rejection::Code(E::WrongLength { len }) => {
                self.words("till.code_length", &[("len", len)])
            }
            Rejection::Code(E::Alipay { prefix }) => {
                self.words("till.code_alipay", &[("prefix", prefix)])
            }
            Rejection::Code(E::WrongPrefix { prefix }) => {
                self.words("till.code_prefix", &[("prefix", prefix)])
            }
            Rejection::KeyboardLayout { layout } => {
                let layout = match (self.zh(), layout.starts_with("shifted")) {
                    (false, _) => (*layout).to_string(),
                    (true, true) => "上档键（Shift）".into(),
                    (true, false) => layout.replace("French", "法语"),
                };
                self.words("till.scanner_layout", &[("layout", &layout)])
            }
            Rejection::Noise { bytes } => self.words("till.scanner_noise", &[("bytes", bytes)]),
            Rejection::Overlong { bytes } => {
                self.words("till.scanner_overlong", &[("bytes", bytes)])
            }
            Rejection::Duplicate => self.words("till.duplicate", &[]),
            other => other.to_string(),
        }
    }

    /// The journal screen alone on `day` (`scanpay journal`): there is no
    /// till to go back to, so leaving it quits.
    pub fn journal_only(info: TillInfo, now: Instant, day: Date) -> (Self, Vec<Command>) {
        let mut app = Self::new(info, now, day);
        app.journal_only = true;
        let commands = app.open_journal(day);
        (app, commands)
    }

    /// Opens the manager's journal on `day`.
    pub fn open_journal(&mut self, day: Date) -> Vec<Command> {
        self.screen = Screen::Journal(Box::new(JournalScreen::loading(day)));
        vec![Command::LoadDay(day)]
    }

    /// The store's screen alone on `day` (`scanpay store`): the journal
    /// screen over every till, read-only.
    pub fn store_only(info: TillInfo, now: Instant, day: Date) -> (Self, Vec<Command>) {
        let (mut app, commands) = Self::journal_only(info, now, day);
        app.store_view = true;
        (app, commands)
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

/// A masked read's "(7 chars)" in Chinese.
fn zh_count(shown: &str) -> String {
    match shown
        .strip_suffix(" chars)")
        .and_then(|s| s.rsplit_once(" ("))
    {
        Some((code, count)) => format!("{code}（{count} 个字符）"),
        None => shown.to_string(),
    }
}
