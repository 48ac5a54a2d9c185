//! `scanpay pay`: one payment, headless, the way a script or another POS
//! program integrates scanpay.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Exit, err, out, scan};
use crate::app;
use crate::config::Settings;
use crate::domain::{AuthCode, Fen, check_body};
use crate::journal::OrderState;
use crate::payment::recovery::Recovered;
use crate::payment::{PaymentRequest, Progress, Status};

pub struct PayArgs {
    pub amount: String,
    /// The code given on the command line; `None` means: read it from the scanner.
    pub auth_code: Option<String>,
    /// How long to wait for a scan.
    pub scan_timeout: Duration,
    pub body: Option<String>,
    pub json: bool,
}

/// Checks the input before anything is journaled or sent.
pub fn validate(
    args: &PayArgs,
    settings: &Settings,
    auth_code: &str,
) -> Result<PaymentRequest, String> {
    let amount = Fen::parse_yuan_within(&args.amount, settings.max_amount)
        .map_err(|e| format!("--amount {:?}: {e}", args.amount))?;
    let auth_code = AuthCode::parse(auth_code).map_err(|e| format!("--auth-code: {e}"))?;
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

pub async fn run(args: PayArgs, settings: Settings) -> Exit {
    // The amount and description are checked before waiting for a scan: a
    // typo must not cost a scan.
    if let Err(e) = Fen::parse_yuan_within(&args.amount, settings.max_amount) {
        err(format_args!("scanpay pay: --amount {:?}: {e}", args.amount));
        return Exit::BadInput;
    }
    if let Some(Err(e)) = args.body.as_deref().map(check_body) {
        err(format_args!("scanpay pay: --body: {e}"));
        return Exit::BadInput;
    }
    let auth_code = match &args.auth_code {
        Some(code) => code.clone(),
        None => match scan::one_code(&settings.scanner, args.scan_timeout).await {
            Ok(code) => code.expose().to_string(),
            Err((exit, message)) => {
                err(format_args!("scanpay pay: {message}"));
                return exit;
            }
        },
    };
    let request = match validate(&args, &settings, &auth_code) {
        Ok(request) => request,
        Err(message) => {
            err(format_args!("scanpay pay: {message}"));
            return Exit::BadInput;
        }
    };
    let running = match app::start(settings).await {
        Ok(running) => running,
        Err(e) => {
            err(format_args!("scanpay pay: {e}"));
            return e.exit();
        }
    };
    if !running.unfinished.is_empty() && !recover(&running).await {
        return Exit::Internal;
    }
    let deadline = running.settings.timings.deadline;
    let json = args.json;
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
    // Ctrl-C is the cashier's cancel: the engine reverses as the rules allow.
    let joined = loop {
        tokio::select! {
            Some(update) = updates.recv() => {
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
        if let Some(line) = describe(&update, deadline) {
            say(line)
        }
    }
    let outcome = match joined {
        Ok(Ok(result)) => result,
        Ok(Err(e)) if e.nothing_sent() => {
            err(format_args!("scanpay pay: {e}"));
            return Exit::JournalUnavailable;
        }
        Ok(Err(e)) => {
            err(format_args!("scanpay pay: {e}"));
            return Exit::NeedsAttention;
        }
        Err(e) => {
            err(format_args!(
                "scanpay pay: the payment task failed ({e}): the outcome is not known — take no other payment for this sale; `scanpay replay` settles it"
            ));
            return Exit::NeedsAttention;
        }
    };
    let state = outcome.state();
    if json {
        let object = serde_json::json!({
            "out_trade_no": outcome.out_trade_no.as_str(),
            "state": state.as_str(),
            "amount": outcome.amount.to_string(),
            "transaction_id": outcome.outcome.transaction_id(),
            "err_code": outcome.outcome.err_code(),
            "message": outcome.message,
        });
        out(object);
    } else {
        out(format_args!(
            "{}: {} — {}",
            state.as_str().to_uppercase(),
            outcome.out_trade_no,
            outcome.message
        ));
    }
    match state {
        OrderState::Paid => Exit::Paid,
        OrderState::Failed => Exit::Failed,
        OrderState::Reversed | OrderState::Closed => Exit::Reversed,
        OrderState::NeedsAttention | OrderState::Open => Exit::NeedsAttention,
    }
}

/// Resolves the orders an earlier run left unfinished, before taking a new
/// one, and leaves alone those another live scanpay is paying; says what
/// became of each on stderr. False if the journal failed.
async fn recover(running: &app::Running) -> bool {
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
