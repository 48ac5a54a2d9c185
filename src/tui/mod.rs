//! The till in the terminal (ratatui + crossterm), built like gitui and
//! ratatui's component template: one state (`app`), a loop that never
//! blocks, and background work (payments, scanner readers, journal reads,
//! the network probe) that reports back by message.
//!
//! Journal reads go through read-only connections of their own, never the
//! engine's, so a slow report never delays a payment. `scanpay journal`
//! runs the journal screen with no till at all ([`run_journal`]): no
//! gateway, simulator, scanner or recovery, and nothing written.

pub mod amount;
pub mod app;
mod big;
pub mod journal_view;
pub mod till;
mod words;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};
use ratatui::Frame;
use tokio::sync::{mpsc, watch};

use crate::config::{Gateway, Settings};
use crate::domain::Fen;
use crate::journal::{Journal, JournalError, day_bounds, unix_ms};
use crate::payment::refunding::RefundError;
use crate::scanner::{Pipeline, ScanEvent, start_reader};
use crate::startup::Running;
use app::RefundFailed;
pub use app::{App, Command, Msg, TillInfo};

/// Why the screen could not run to the end; the caller maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("cannot draw on this terminal: {0}")]
    Draw(std::io::Error),
}

/// Draws whichever screen is open.
pub fn render(app: &App, frame: &mut Frame) {
    match &app.screen {
        app::Screen::Till => till::render(app, frame),
        app::Screen::Journal(journal) => journal_view::render(app, journal, frame),
    }
}

impl TillInfo {
    pub fn from_running(running: &Running) -> Self {
        let settings = &running.settings;
        let zh = settings.language == crate::wechat::messages::Language::Chinese;
        let name = match (&settings.gateway, settings.client.sandbox, zh) {
            (Gateway::Simulator { .. }, _, true) => "模拟器",
            (Gateway::Simulator { .. }, _, false) => "simulator",
            (Gateway::Wechat, true, true) => "微信支付沙箱",
            (Gateway::Wechat, true, false) => "WeChat sandbox",
            (Gateway::Wechat, false, true) => "微信支付",
            (Gateway::Wechat, false, false) => "WeChat",
        };
        let gateway = format!("{name} {}", settings.client.base_url);
        Self::from_settings(settings, gateway)
    }

    /// `gateway` is what the status line names as the gateway.
    pub fn from_settings(settings: &Settings, gateway: String) -> Self {
        TillInfo {
            till_id: settings.till.to_string(),
            gateway,
            driver: settings.scanner.driver,
            journal_path: settings.journal_path.display().to_string(),
            max_amount: settings.max_amount,
            default_body: settings.default_body.clone(),
            language: settings.language,
            presets: settings.presets.clone(),
            bell: settings.bell,
            store_offset: settings.store_offset,
            wedge: settings.scanner.wedge.clone(),
            duplicate_window: settings.scanner.duplicate_window,
            deadline: settings.timings.deadline,
        }
    }
}

/// The store's local date now: the loop reads the clock, the app never does.
fn store_date(offset: time::UtcOffset) -> time::Date {
    time::OffsetDateTime::now_utc().to_offset(offset).date()
}

/// Runs the till until the cashier quits.
pub async fn run(running: Running) -> Result<(), TuiError> {
    let offset = running.settings.store_offset;
    let mut app = App::new(
        TillInfo::from_running(&running),
        Instant::now(),
        store_date(offset),
    );
    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    read_keys(tx.clone());
    let _reader = {
        let scanner = &running.settings.scanner;
        let (scans, mut received) = mpsc::unbounded_channel::<ScanEvent>();
        let reader = start_reader(
            scanner,
            Pipeline::new(scanner.driver, scanner.duplicate_window),
            scans,
        );
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                if tx.send(Msg::Scan(event)).is_err() {
                    break;
                }
            }
        });
        reader
    };
    probe_network(running.settings.client.base_url.clone(), tx.clone());
    let ship_now = ship_to_store(&running, tx.clone());
    recover(&running, &mut app, tx.clone());
    let mut executor = Loop {
        till: Some(&running),
        reports: Reports::of(&running.settings),
        tx,
        cancel: None,
        ship_now: None,
    };
    // The status line's first figures; the shipper's first round is already
    // under way, so this must not wake it for a second one.
    executor.execute(Command::RefreshToday);
    executor.ship_now = ship_now;
    show(app, executor, rx, Vec::new()).await
}

/// `scanpay journal`: the manager's journal screen at `day` and nothing
/// else, reading the journal read-only, until the manager quits. There is no
/// engine: nothing is sent, recovered or written.
pub async fn run_journal(settings: &Settings, day: time::Date) -> Result<(), TuiError> {
    let info = TillInfo::from_settings(settings, "none (read-only journal)".into());
    let (mut app, mut commands) = App::journal_only(info, Instant::now(), day);
    app.update(Msg::Date(store_date(settings.store_offset)));
    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    read_keys(tx.clone());
    let executor = Loop {
        till: None,
        reports: Reports::of(settings),
        tx,
        cancel: None,
        ship_now: None,
    };
    commands.insert(0, Command::RefreshToday);
    show(app, executor, rx, commands).await
}

/// The store's screen alone (`scanpay store`): every till's orders from the
/// store database, read-only; no engine, gateway or journal.
pub async fn run_store(
    settings: &Settings,
    store: crate::config::StoreSettings,
    day: time::Date,
) -> Result<(), TuiError> {
    let mut info = TillInfo::from_settings(settings, "none (read-only store)".into());
    info.journal_path = store.database_url.clone();
    let (mut app, mut commands) = App::store_only(info, Instant::now(), day);
    app.update(Msg::Date(store_date(settings.store_offset)));
    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
    read_keys(tx.clone());
    let mut reports = Reports::of(settings);
    reports.store = Some(StoreReader {
        settings: store,
        connection: Default::default(),
    });
    let executor = Loop {
        till: None,
        reports,
        tx,
        cancel: None,
        ship_now: None,
    };
    commands.insert(0, Command::RefreshToday);
    show(app, executor, rx, commands).await
}

/// The screen and its loop: draws, waits for a message, runs the commands
/// the update returns, until the app quits or a stop signal arrives.
async fn show(
    mut app: App,
    mut executor: Loop<'_>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    mut commands: Vec<Command>,
) -> Result<(), TuiError> {
    // SIGTERM (shutdown) or SIGHUP (the terminal went away): restore and
    // leave; a payment in flight is durable in the journal and recovered.
    let mut stopped = stop_signals();
    let mut terminal = ratatui::init(); // raw mode, alternate screen, and a panic hook that restores both
    if let Ok(size) = terminal.size() {
        app.update(Msg::Resize {
            width: size.width,
            height: size.height,
        });
    }
    let offset = executor.reports.offset;
    loop {
        for command in commands.drain(..) {
            executor.execute(command);
        }
        if app.quit {
            break;
        }
        if let Err(e) = terminal.draw(|frame| render(&app, frame)) {
            ratatui::restore();
            return Err(TuiError::Draw(e));
        }
        let wake = app
            .next_deadline()
            .unwrap_or_else(|| Instant::now() + Duration::from_millis(250));
        tokio::select! {
            Some(msg) = rx.recv() => commands.extend(app.update(msg)),
            () = tokio::time::sleep_until(wake.into()) => commands.extend(app.update(Msg::Tick(Instant::now()))),
            Some(signal) = stopped.recv() => {
                tracing::warn!(signal, "stopping on a signal");
                break;
            }
        }
        let date = store_date(offset);
        if date != app.date {
            commands.extend(app.update(Msg::Date(date)));
        }
        // Take everything already waiting before the next frame.
        while let Ok(msg) = rx.try_recv() {
            commands.extend(app.update(msg));
        }
    }
    ratatui::restore();
    Ok(())
}

/// Resolves the orders a crash left unfinished, in the background, each
/// reported by message as it ends.
fn recover(running: &Running, app: &mut App, tx: mpsc::UnboundedSender<Msg>) {
    if running.unfinished.is_empty() {
        return;
    }
    let now = time::OffsetDateTime::now_utc();
    let now_ms = unix_ms(now);
    app.recovering = running
        .unfinished
        .iter()
        .map(|order| app::Recovering {
            out_trade_no: order.out_trade_no.to_string(),
            amount: order.total_fee,
            blocks_new_payments: now_ms.saturating_sub(order.created_at_ms)
                < app::RECENT.as_millis() as i64,
        })
        .collect();
    let (done, mut outcomes) = mpsc::unbounded_channel();
    crate::payment::recovery::resolve_all(
        &running.engine,
        running.unfinished.clone(),
        now_ms,
        done,
    );
    tokio::spawn(async move {
        while let Some((order, outcome)) = outcomes.recv().await {
            if let Err(e) = &outcome {
                // The screen says it will be tried again; the cause is here.
                tracing::error!(order = %order.out_trade_no, error = %e, "an interrupted order could not be resolved");
            }
            let _ = tx.send(Msg::Recovered {
                out_trade_no: order.out_trade_no.to_string(),
                outcome,
            });
        }
    });
}

/// Where the screens' reports come from: a read-only connection opened for
/// each request and dropped after it, never the engine's journal. A report
/// waits for no payment (and no payment for a report), and a connection that
/// found no till running (see [`Journal::open_read_only`]) never goes stale.
///
/// On the store screen they come from the store database instead, on one
/// read-only connection kept between requests (a PostgreSQL reader sees
/// every commit, and each read is a transaction of its own), opened again
/// when it broke.
#[derive(Clone)]
struct Reports {
    path: PathBuf,
    store: Option<StoreReader>,
    offset: time::UtcOffset,
}

/// One read of the store screen, on the connection it is given.
type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, crate::store::StoreError>> + Send + 'a>>;

#[derive(Clone)]
struct StoreReader {
    settings: crate::config::StoreSettings,
    connection: std::sync::Arc<tokio::sync::Mutex<Option<crate::store::Store>>>,
}

impl Reports {
    fn of(settings: &Settings) -> Self {
        Self {
            path: settings.journal_path.clone(),
            store: None,
            offset: settings.store_offset,
        }
    }

    /// Runs one read on a fresh read-only connection; blocking.
    fn read<T>(&self, read: impl FnOnce(&Journal) -> Result<T, JournalError>) -> Result<T, String> {
        Journal::open_read_only(&self.path)
            .and_then(|journal| read(&journal))
            .map_err(|e| e.to_string())
    }

    /// Runs one read on the store's read-only connection. A read that fails
    /// on the kept connection (the server restarted, or went away) is run
    /// once more on a fresh one, so what the screen says is what a new
    /// connection finds, as when each request had its own.
    async fn read_store<T>(
        store: &StoreReader,
        read: impl Fn(&mut crate::store::Store) -> StoreFuture<'_, T>,
    ) -> Result<T, String> {
        let mut slot = store.connection.lock().await;
        if let Some(kept) = slot.as_mut()
            && let Ok(value) = read(kept).await
        {
            return Ok(value);
        }
        *slot = None;
        let fresh = crate::store::Store::connect_read_only(&store.settings)
            .await
            .map_err(|e| e.to_string())?;
        let result = read(slot.insert(fresh)).await;
        if result.is_err() {
            *slot = None;
        }
        result.map_err(|e| e.to_string())
    }

    /// The store screen's requests; `false`: not the store screen, the
    /// journal's reads answer.
    fn store_command(&self, command: &Command, tx: &mpsc::UnboundedSender<Msg>) -> bool {
        let Some(store) = self.store.clone() else {
            return false;
        };
        let offset = self.offset;
        let tx = tx.clone();
        match command.clone() {
            Command::LoadDay(day) => {
                tokio::spawn(async move {
                    let read = Self::read_store(&store, |s| Box::pin(s.day_report(day, offset)));
                    match read.await {
                        Ok(day) => {
                            let _ = tx.send(Msg::StoreTills(day.tills));
                            let _ = tx.send(Msg::DayLoaded(Ok(day.report)));
                        }
                        Err(e) => {
                            let _ = tx.send(Msg::DayLoaded(Err(e)));
                        }
                    }
                });
            }
            Command::LoadOrder(order) => {
                tokio::spawn(async move {
                    let events = Self::read_store(&store, |s| Box::pin(s.timeline(order.id))).await;
                    let _ = tx.send(Msg::OrderLoaded(events.map(|events| (order, events))));
                });
            }
            Command::RefreshToday => {
                tokio::spawn(async move {
                    let today = store_date(offset);
                    let read = Self::read_store(&store, |s| Box::pin(s.day(today, offset)));
                    if let Ok(day) = read.await {
                        let total = &day.total;
                        let _ = tx.send(Msg::Today {
                            paid: total.paid,
                            total: Fen(total.takings.unsigned_abs()),
                            refunded: Fen(total.refunded.unsigned_abs()),
                            attention: total.unsettled,
                            attention_day: (total.unsettled > 0).then_some(today),
                        });
                    }
                });
            }
            _ => return false,
        }
        true
    }
}

/// The event loop's side of the commands.
struct Loop<'a> {
    /// The till taking payments; `None` on the journal screen alone.
    till: Option<&'a Running>,
    reports: Reports,
    tx: mpsc::UnboundedSender<Msg>,
    cancel: Option<watch::Sender<bool>>,
    /// Wakes the store shipper (`[store]` set): after a payment or refund
    /// ends, so the store hears of it without waiting for the interval.
    ship_now: Option<std::sync::Arc<tokio::sync::Notify>>,
}

impl Loop<'_> {
    fn execute(&mut self, command: Command) {
        if self.reports.store_command(&command, &self.tx) {
            return;
        }
        let tx = self.tx.clone();
        let reports = self.reports.clone();
        let offset = reports.offset;
        match command {
            Command::Pay(request) => {
                // Only the till screen pays, and the journal screen alone has none.
                let Some(running) = self.till else {
                    tracing::error!("a payment was asked for without a till; ignored");
                    return;
                };
                let (cancel, cancel_rx) = watch::channel(false);
                self.cancel = Some(cancel);
                let engine = running.engine.clone();
                let (progress, mut updates) = mpsc::unbounded_channel();
                let forward = tx.clone();
                tokio::spawn(async move {
                    while let Some(update) = updates.recv().await {
                        let _ = forward.send(Msg::Progress(update));
                    }
                });
                tokio::spawn(async move {
                    if let Err(e) = engine.pay(request, progress, cancel_rx).await {
                        tracing::error!(error = %e, "the payment could not be recorded");
                        let _ = tx.send(Msg::PaymentError {
                            nothing_sent: e.nothing_sent(),
                            detail: e.to_string(),
                        });
                    }
                });
            }
            Command::Refund { order, amount } => {
                // The journal screen alone has no engine: it never asks.
                let Some(running) = self.till else {
                    tracing::error!("a refund was asked for without a till; ignored");
                    return;
                };
                let engine = running.engine.clone();
                tokio::spawn(async move {
                    let result = engine.refund(&order, amount, None).await;
                    let result = result.map_err(|e| {
                        tracing::warn!(order = %order.out_trade_no, error = %e, "the refund from the journal screen did not finish");
                        match e {
                            RefundError::Refused(refusal) => RefundFailed::Refused(refusal),
                            RefundError::NotOpened(_) => RefundFailed::NotSent,
                            RefundError::Interrupted(_) => RefundFailed::Interrupted,
                        }
                    });
                    let _ = tx.send(Msg::RefundDone(result));
                });
            }
            Command::Cancel => {
                if let Some(cancel) = &self.cancel {
                    let _ = cancel.send(true);
                }
            }
            Command::LoadDay(day) => {
                tokio::task::spawn_blocking(move || {
                    // One connection for both reads. The header's
                    // "reconciled?" only: a journal that cannot tell shows nothing.
                    let read = reports.read(|journal| {
                        let report = journal.day(day, offset).map_err(|e| e.to_string());
                        Ok((report, journal.reconciliation_of(&day.to_string()).ok()))
                    });
                    let (report, reconciled) = match read {
                        Ok(read) => read,
                        Err(e) => (Err(e), None),
                    };
                    let _ = tx.send(Msg::DayLoaded(report));
                    if let Some(row) = reconciled {
                        let _ = tx.send(Msg::DayReconciled(day, row));
                    }
                });
            }
            Command::LoadOrder(order) => {
                tokio::task::spawn_blocking(move || {
                    let events = reports.read(|journal| journal.events(order.id));
                    let _ = tx.send(Msg::OrderLoaded(events.map(|events| (order, events))));
                });
            }
            Command::RefreshToday => {
                // Asked for whenever the day's figures change: a payment or
                // refund ended, or one was recovered.
                if let Some(ship_now) = &self.ship_now {
                    ship_now.notify_one();
                }
                tokio::task::spawn_blocking(move || {
                    let today = store_date(offset);
                    let (from, to) = day_bounds(today, offset);
                    let read = reports.read(|journal| {
                        Ok((
                            journal.summary_between(from, to)?,
                            journal.needs_attention()?,
                        ))
                    });
                    if let Ok((summary, (attention, newest))) = read {
                        let attention_day = newest
                            .and_then(|ms| {
                                time::OffsetDateTime::from_unix_timestamp_nanos(
                                    i128::from(ms) * 1_000_000,
                                )
                                .ok()
                            })
                            .map(|at| at.to_offset(offset).date());
                        let _ = tx.send(Msg::Today {
                            paid: summary.paid_count,
                            total: summary.paid_total,
                            refunded: summary.refunded_total,
                            attention,
                            attention_day,
                        });
                    }
                });
            }
            Command::Bell => {
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = out.write_all(b"\x07");
                let _ = out.flush();
            }
            Command::Quit => {}
        }
    }
}

/// SIGTERM and SIGHUP, by name.
fn stop_signals() -> mpsc::UnboundedReceiver<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::unbounded_channel();
    for (kind, name) in [
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ] {
        if let Ok(mut stream) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                if stream.recv().await.is_some() {
                    let _ = tx.send(name);
                }
            });
        }
    }
    rx
}

/// Keys are read on their own thread and stamped the moment they arrive:
/// crossterm events carry no time, and the wedge decoder needs it.
fn read_keys(tx: mpsc::UnboundedSender<Msg>) {
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || {
            while let Ok(event) = event::read() {
                let sent = match event {
                    Event::Key(key) => tx.send(Msg::Key(key, Instant::now())),
                    Event::Resize(width, height) => tx.send(Msg::Resize { width, height }),
                    _ => Ok(()),
                };
                if sent.is_err() {
                    break;
                }
            }
        })
        .expect("the key reader thread starts");
}

/// With `[store]` set, ships the journal to the store database at start,
/// after each payment or refund, and every `store.interval_ms`, on a
/// connection of its own, and tells the screen how
/// many events are still to ship. Nothing here is on a payment's path: the
/// events are read on a read-only journal connection, the journal's mark is
/// one small write queued behind the payments', and a store that is down
/// costs only a warning in the log and a growing count on the status line.
///
/// Returns what wakes the shipper before the interval is up; `None`: no store.
fn ship_to_store(
    running: &Running,
    tx: mpsc::UnboundedSender<Msg>,
) -> Option<std::sync::Arc<tokio::sync::Notify>> {
    let settings = running.settings.store.clone()?;
    let path = running.settings.journal_path.clone();
    let reader = match Journal::open_read_only(&path) {
        Ok(reader) => reader,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the journal to ship it to the store; not shipping");
            return None;
        }
    };
    let till_id = running.settings.till.to_string();
    let mch_id = running.settings.merchant.mch_id.clone();
    let reader = std::sync::Arc::new(std::sync::Mutex::new(reader));
    let writer = running.engine.journal.clone();
    let ship_now = std::sync::Arc::new(tokio::sync::Notify::new());
    let woken = std::sync::Arc::clone(&ship_now);
    tokio::spawn(async move {
        // From the writing connection: a read-only one does not read the
        // installation id, and under an empty one every till of the store
        // would ship as the same installation.
        let installation = writer
            .run(|j| Ok(j.installation_id().map(str::to_string)))
            .await;
        let Ok(Some(installation_id)) = installation else {
            tracing::error!(
                ?installation,
                "cannot read the journal's installation id to ship it to the store; not shipping"
            );
            return;
        };
        let till = crate::store::Till {
            installation_id,
            till_id,
            mch_id,
        };
        let mut store: Option<crate::store::Store> = None;
        let mut failing = false;
        loop {
            let shipped = async {
                if store.is_none() {
                    store = Some(crate::store::Store::connect(&settings).await?);
                }
                let connected = store.as_mut().expect("connected just above");
                crate::store::ship_all(
                    connected,
                    &reader,
                    &writer,
                    &till,
                    settings.batch_events as usize,
                )
                .await
            }
            .await;
            let behind = match shipped {
                Ok(report) => {
                    if failing {
                        tracing::info!(through = report.through, "shipping to the store again");
                        failing = false;
                    }
                    report.behind
                }
                Err(e) => {
                    // Connect afresh next time; say it once per outage.
                    store = None;
                    if !failing {
                        tracing::warn!(error = %e, "cannot ship the journal to the store now; trying again every interval");
                        failing = true;
                    }
                    crate::store::read(&reader, |journal| {
                        journal
                            .shipped_through()
                            .and_then(|mark| journal.events_after(mark))
                    })
                    .await
                    .unwrap_or(0)
                }
            };
            if tx.send(Msg::StoreBehind(behind)).is_err() {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(settings.interval) => {}
                () = woken.notified() => {}
            }
        }
    });
    Some(ship_now)
}

/// Whether the gateway's host answers a TCP connect, every 15 s. A connect
/// is enough to tell "network down" apart, and costs the gateway nothing.
fn probe_network(base_url: String, tx: mpsc::UnboundedSender<Msg>) {
    let Ok(url) = reqwest::Url::parse(&base_url) else {
        return;
    };
    let (Some(host), Some(port)) = (
        url.host_str().map(str::to_string),
        url.port_or_known_default(),
    ) else {
        return;
    };
    tokio::spawn(async move {
        loop {
            let connect = tokio::net::TcpStream::connect((host.as_str(), port));
            let up = matches!(
                tokio::time::timeout(Duration::from_secs(3), connect).await,
                Ok(Ok(_))
            );
            if tx.send(Msg::Network(up)).is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
}

#[cfg(test)]
mod tests;
