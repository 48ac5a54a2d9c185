//! `scanpay pay`: one payment, headless, the way a script or another POS
//! program integrates scanpay.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Exit, err, out, scan};
use crate::config::Settings;
use crate::domain::{AuthCode, Fen, check_body};
use crate::journal::OrderState;
use crate::payment::recovery::Recovered;
use crate::payment::{PaymentRequest, Progress, Status};
use crate::startup;

pub struct PayArgs {
    pub amount: String,
    /// The code given on the command line; `None` means: read it from the scanner.
    pub auth_code: Option<String>,
    /// How long to wait for a scan.
    pub scan_timeout: Duration,
    pub body: Option<String>,
    pub json: bool,
}

/// The code as the cashier gave it, made ready for [`AuthCode::parse`]: the
/// ASCII spaces of a code typed as the phone shows it (`1345 3951 7967 6860
/// 76`) are dropped. Full-width digits (a Chinese input method in full-width
/// mode) are refused with how to fix it, rather than as "not a digit".
pub fn typed_code(input: &str) -> Result<String, String> {
    let full_width = |c: char| matches!(c, '\u{FF10}'..='\u{FF19}' | '\u{3000}');
    if input.chars().any(full_width) {
        return Err(
            "the payment code was typed with full-width digits (全角, like １２３): switch the input method to half-width (半角, Shift+Space in most Chinese input methods) and type the code again"
                .into(),
        );
    }
    Ok(input.chars().filter(|c| *c != ' ').collect())
}

/// Checks the input before anything is journaled or sent.
pub fn validate(
    args: &PayArgs,
    settings: &Settings,
    auth_code: &str,
) -> Result<PaymentRequest, String> {
    let amount = Fen::parse_yuan_within(&args.amount, settings.max_amount)
        .map_err(|e| format!("--amount {:?}: {e}", args.amount))?;
    let auth_code = typed_code(auth_code)
        .and_then(|code| AuthCode::parse(&code).map_err(|e| e.to_string()))
        .map_err(|e| format!("--auth-code: {e}"))?;
    let body = match &args.body {
        Some(body) => {
            check_body(body).map_err(|e| format!("--body: {e}"))?;
            body.clone()
        }
        // Checked when the configuration was loaded.
        None => settings.default_body.clone(),
    };
    Ok(PaymentRequest {
        amount,
        body,
        auth_code,
    })
}

/// What `scanpay pay` says at the end: with `--json` one object on stdout,
/// whatever happened (bad input and configuration errors too), so a script
/// reads the same keys every time; the fields not known are null.
#[derive(Debug, Default)]
pub struct Report {
    pub out_trade_no: Option<String>,
    pub state: Option<&'static str>,
    pub amount: Option<Fen>,
    pub transaction_id: Option<String>,
    pub err_code: Option<String>,
}

impl Report {
    pub fn json(&self, exit: Exit, message: &str) -> serde_json::Value {
        serde_json::json!({
            "exit": exit as u8,
            "message": message,
            "out_trade_no": self.out_trade_no,
            "state": self.state,
            "amount": self.amount.map(|a| a.to_string()),
            "transaction_id": self.transaction_id,
            "err_code": self.err_code,
        })
    }
}

/// Ends `scanpay pay` on an error: the message on stderr, and with `--json`
/// the object on stdout. Returns `exit`.
pub fn fail(json: bool, exit: Exit, report: &Report, message: &str) -> Exit {
    err(format_args!("scanpay pay: {message}"));
    if json {
        out(report.json(exit, message));
    }
    exit
}

pub async fn run(args: PayArgs, settings: Settings) -> Exit {
    let json = args.json;
    let mut report = Report::default();
    // The amount and description are checked before waiting for a scan: a
    // typo must not cost a scan.
    if let Err(e) = Fen::parse_yuan_within(&args.amount, settings.max_amount) {
        let message = format!("--amount {:?}: {e}", args.amount);
        return fail(json, Exit::BadInput, &report, &message);
    }
    if let Some(Err(e)) = args.body.as_deref().map(check_body) {
        return fail(json, Exit::BadInput, &report, &format!("--body: {e}"));
    }
    let auth_code = match &args.auth_code {
        Some(code) => code.clone(),
        None => match scan::one_code(&settings.scanner, args.scan_timeout).await {
            Ok(code) => code.expose().to_string(),
            Err((exit, message)) => return fail(json, exit, &report, &message),
        },
    };
    let request = match validate(&args, &settings, &auth_code) {
        Ok(request) => request,
        Err(message) => return fail(json, Exit::BadInput, &report, &message),
    };
    report.amount = Some(request.amount);
    let running = match startup::start(settings).await {
        Ok(running) => running,
        Err(e) => return fail(json, e.exit(), &report, &e.to_string()),
    };
    if !running.unfinished.is_empty() && !recover(&running).await {
        let message = "could not recover the orders an earlier run left unfinished (see above): nothing was sent for this payment";
        return fail(json, Exit::Internal, &report, message);
    }
    let deadline = running.settings.timings.deadline;
    // With --json, stdout carries only the result object.
    // Printing never stops the payment (see `out`): it ends and is journaled
    // whether or not anyone still reads.
    let say = |line: String| {
        if json { err(line) } else { out(line) }
    };
    let (progress, mut updates) = mpsc::unbounded_channel();
    let (cancel, cancel_rx) = watch::channel(false);
    let engine = running.engine.clone();
    let mut payment = tokio::spawn(async move { engine.pay(request, progress, cancel_rx).await });
    let mut ctrl_c_seen = false;
    let mut opened = |update: &Progress| {
        if let Progress::Opened { out_trade_no } = update {
            report.out_trade_no = Some(out_trade_no.to_string());
        }
    };
    // Ctrl-C is the cashier's cancel: the engine reverses as the rules allow.
    let joined = loop {
        tokio::select! {
            Some(update) = updates.recv() => {
                opened(&update);
                if let Some(line) = describe(&update, deadline) { say(line) }
            }
            _ = tokio::signal::ctrl_c(), if !ctrl_c_seen => {
                ctrl_c_seen = true;
                err("cancelling: the order will be reversed as soon as the rules allow");
                let _ = cancel.send(true);
            }
            joined = &mut payment => break joined,
        }
    };
    while let Ok(update) = updates.try_recv() {
        opened(&update);
        if let Some(line) = describe(&update, deadline) {
            say(line)
        }
    }
    let outcome = match joined {
        Ok(Ok(result)) => result,
        Ok(Err(e)) if e.nothing_sent() => {
            return fail(json, Exit::JournalUnavailable, &report, &e.to_string());
        }
        Ok(Err(e)) => {
            report.state = Some(OrderState::NeedsAttention.as_str());
            return fail(json, Exit::NeedsAttention, &report, &e.to_string());
        }
        Err(e) => {
            report.state = Some(OrderState::NeedsAttention.as_str());
            let message = format!(
                "the payment task failed ({e}): the outcome is not known — take no other payment for this sale; `scanpay replay` settles it"
            );
            return fail(json, Exit::NeedsAttention, &report, &message);
        }
    };
    let state = outcome.state();
    let exit = match state {
        OrderState::Paid => Exit::Paid,
        OrderState::Failed => Exit::Failed,
        OrderState::Reversed | OrderState::Closed => Exit::Reversed,
        OrderState::NeedsAttention | OrderState::Open => Exit::NeedsAttention,
    };
    let report = Report {
        out_trade_no: Some(outcome.out_trade_no.to_string()),
        state: Some(state.as_str()),
        amount: Some(outcome.amount),
        transaction_id: outcome.outcome.transaction_id().map(str::to_string),
        err_code: outcome.outcome.err_code().map(|c| c.to_string()),
    };
    if json {
        out(report.json(exit, &outcome.message));
    } else {
        out(summary(&report, &outcome.message));
    }
    exit
}

/// The last line of the plain output, state word first:
/// `PAID ¥12.34 · order T01… · transaction 4200… — 支付成功`.
fn summary(report: &Report, message: &str) -> String {
    let mut line = report.state.unwrap_or("unknown").to_uppercase();
    if let Some(amount) = report.amount {
        line += &format!(" ¥{amount}");
    }
    if let Some(no) = &report.out_trade_no {
        line += &format!(" · order {no}");
    }
    if let Some(id) = &report.transaction_id {
        line += &format!(" · transaction {id}");
    }
    if let Some(code) = &report.err_code {
        line += &format!(" · {code}");
    }
    format!("{line} — {message}")
}

/// Resolves the orders an earlier run left unfinished, before taking a new
/// one, and leaves alone those another live scanpay is paying; says what
/// became of each on stderr. False if the journal failed.
async fn recover(running: &startup::Running) -> bool {
    let orders = running.unfinished.clone();
    let now_ms = crate::journal::unix_ms(time::OffsetDateTime::now_utc());
    let (done, mut outcomes) = mpsc::unbounded_channel();
    crate::payment::recovery::resolve_all(&running.engine, orders, now_ms, done);
    let mut healthy = true;
    while let Some((order, result)) = outcomes.recv().await {
        match result {
            Ok(Recovered::Resolved(result)) => err(format_args!(
                "recovered interrupted order {}: {} — {}",
                order.out_trade_no,
                result.state().as_str(),
                result.message
            )),
            Ok(Recovered::Skipped { owner }) => err(format_args!(
                "skipped {}: another scanpay process ({owner}) is paying it",
                order.out_trade_no
            )),
            Ok(Recovered::AlreadyFinished) => {}
            Err(e) => {
                err(format_args!(
                    "could not recover {}: {e}",
                    order.out_trade_no
                ));
                healthy = false;
            }
        }
    }
    healthy
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// One line per step for the operator.
fn describe(update: &Progress, deadline: Duration) -> Option<String> {
    Some(match update {
        Progress::Opened { out_trade_no } => format!("order {out_trade_no} opened"),
        Progress::Status { status, elapsed } => match status {
            Status::Sending => "sending micropay".to_string(),
            Status::CustomerPaying { next_query_at, .. } => format!(
                "waiting for the customer's password, {} left; next query at {}",
                secs(deadline.saturating_sub(*elapsed)),
                secs(*next_query_at)
            ),
            Status::Unclear { next_query_at, .. } => {
                format!("outcome unclear; querying at {}", secs(*next_query_at))
            }
            Status::Querying => format!("querying ({} since sending)", secs(*elapsed)),
            Status::ReverseDue { at, attempt } => format!("reverse {attempt} due at {}", secs(*at)),
            Status::Reversing { attempt } => format!("reversing (attempt {attempt})"),
            Status::Confirming => "reversed; checking whether the customer had paid".to_string(),
            Status::Done(_) => return None,
        },
        Progress::Finished(_) => return None,
    })
}
