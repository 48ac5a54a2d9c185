//! `scanpay pay` and `scanpay simulate` as a script would run them: the real
//! binary, its exit codes and output, the journal it leaves behind.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::process::{binary, scaled_timings};
use scanpay::journal::{Journal, OrderState};

const CODE: &str = "134539517967686076";

/// The binary with WeChat's timings ÷ 100 and its data in `dir`.
fn scanpay(dir: &Path) -> Command {
    let mut cmd = binary();
    scaled_timings(&mut cmd);
    cmd.env_remove("SCANPAY_API_KEY")
        .env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"))
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "150")
        .env("SCANPAY_GATEWAY_SIMULATOR_SLOW_ANSWER_MS", "400");
    cmd
}

fn pay(dir: &Path, amount: &str, code: &str, extra: &[&str]) -> Output {
    scanpay(dir)
        .args(["pay", "--amount", amount, "--auth-code", code])
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}): {}",
            text(&output.stdout)
        )
    })
}

#[test]
fn malformed_amounts_are_refused_before_anything_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("0", "more than 0.00"),
        ("-1", "not an amount"),
        ("1.234", "more than two decimals"),
        ("abc", "not an amount"),
        ("5000.01", "over this till's maximum of 5000.00"),
        ("", "no amount given"),
    ];
    for (amount, reason) in cases {
        let out = pay(dir.path(), amount, CODE, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{amount:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--amount") && stderr.contains(reason),
            "{amount:?}: {stderr}"
        );
    }
    assert!(
        !dir.path().join("journal.sqlite3").exists(),
        "nothing may be journaled for bad input"
    );
}

#[test]
fn malformed_payment_codes_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("13453951796768607", "has 18 digits, this one has 17"),
        ("13453951796768607X", "not a digit"),
        (
            "164539517967686076",
            "starts with 10 to 15, this one starts with 16",
        ),
        ("284539517967686076", "Alipay"),
    ];
    for (code, reason) in cases {
        let out = pay(dir.path(), "12.34", code, &[]);
        assert_eq!(out.status.code(), Some(2), "{code}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--auth-code") && stderr.contains(reason),
            "{code}: {stderr}"
        );
        assert!(
            !stderr.contains(&code[..14]),
            "the code must not be echoed: {stderr}"
        );
    }
}

#[test]
fn a_bad_setting_is_a_configuration_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay(dir.path())
        .env("SCANPAY_TILL_ID", "T-1")
        .args(["pay", "--amount", "1", "--auth-code", CODE])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("till.id"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn paid_prints_one_json_object_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = pay(dir.path(), "12.34", CODE, &["--json", "--body", "两杯咖啡"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result = json(&out);
    assert_eq!(result["state"], "paid");
    assert_eq!(result["amount"], "12.34");
    assert_eq!(result["err_code"], serde_json::Value::Null);
    let out_trade_no = result["out_trade_no"].as_str().unwrap();
    assert!(out_trade_no.starts_with("T01"));
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let order = journal.order_by_trade_no(out_trade_no).unwrap().unwrap();
    assert_eq!(order.state, OrderState::Paid);
    assert_eq!(order.total_fee.0, 1234);
    assert_eq!(order.body, "两杯咖啡");
    assert_eq!(
        order.transaction_id.as_deref(),
        result["transaction_id"].as_str()
    );
    assert_eq!(order.auth_code_masked, "**************6076");
}

#[test]
fn each_outcome_has_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    for (amount, exit, state, err_code) in [
        ("0.44", 4, "failed", "NOTENOUGH"),
        ("0.41", 5, "reversed", "TIMEOUT"),
        ("0.48", 6, "needs_attention", "SYSTEMERROR"),
    ] {
        let out = pay(dir.path(), amount, CODE, &["--json"]);
        assert_eq!(
            out.status.code(),
            Some(exit),
            "{amount}: {}",
            text(&out.stderr)
        );
        let result = json(&out);
        assert_eq!(result["state"], state, "{amount}");
        assert_eq!(result["err_code"], err_code, "{amount}");
        assert!(!result["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn the_human_output_shows_each_step() {
    let dir = tempfile::tempdir().unwrap();
    let out = pay(dir.path(), "0.40", CODE, &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for step in [
        "opened",
        "sending micropay",
        "waiting for the customer's password",
        "querying",
        "PAID ¥0.40 · order T01",
        " · transaction 42",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
}

/// The last line of the plain output: state word, amount, order and
/// transaction id, as a cashier or a log reader wants them.
#[test]
fn the_plain_result_gives_the_amount_and_the_transaction_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = pay(dir.path(), "12.34", CODE, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
    let order = &orders[0];
    let expected = format!(
        "PAID ¥12.34 · order {} · transaction {} — ",
        order.out_trade_no,
        order.transaction_id.as_deref().unwrap()
    );
    assert!(last.starts_with(&expected), "{last}");
    let failed = pay(dir.path(), "0.44", CODE, &[]);
    assert_eq!(failed.status.code(), Some(4));
    let last = text(&failed.stdout).lines().last().unwrap().to_string();
    assert!(
        last.starts_with("FAILED ¥0.44 · order T01") && last.contains(" · NOTENOUGH — "),
        "{last}"
    );
}

/// The object every `--json` run prints when it ends before a payment.
fn assert_json_error(out: &Output, exit: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(exit), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "one object, one line: {stdout}");
    let object = json(out);
    assert_eq!(object["exit"], exit, "{object}");
    let message = object["message"].as_str().unwrap();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
    assert!(
        !message.contains(&CODE[..14]),
        "the code is not echoed: {message}"
    );
    for key in [
        "out_trade_no",
        "state",
        "amount",
        "transaction_id",
        "err_code",
    ] {
        assert!(object.get(key).is_some(), "{key} missing in {object}");
    }
}

#[test]
fn every_json_ending_is_one_object_with_exit_and_message() {
    let dir = tempfile::tempdir().unwrap();
    assert_json_error(
        &pay(dir.path(), "1.234", CODE, &["--json"]),
        2,
        "--amount \"1.234\"",
    );
    assert_json_error(
        &pay(dir.path(), "1", "13453951796768607X", &["--json"]),
        2,
        "--auth-code",
    );
    let full_width = pay(
        dir.path(),
        "1",
        "１３４５３９５１７９６７６８６０７６",
        &["--json"],
    );
    assert_json_error(&full_width, 2, "full-width");
    let message = json(&full_width)["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("half-width") && message.contains("半角"),
        "{message}"
    );
    // A configuration error happens before the payment starts: JSON all the same.
    let config = scanpay(dir.path())
        .env("SCANPAY_PAYMENT_DEADLINE_MS", "30s")
        .args(["pay", "--json", "--amount", "1", "--auth-code", CODE])
        .output()
        .unwrap();
    assert_json_error(
        &config,
        3,
        "payment.deadline_ms must be a number of milliseconds, e.g. 30000",
    );
    // Arguments clap refuses: a missing --amount, an unknown flag.
    let missing = scanpay(dir.path())
        .args(["pay", "--json", "--auth-code", CODE])
        .output()
        .unwrap();
    assert_json_error(&missing, 2, "--amount");
    let unknown = scanpay(dir.path())
        .args([
            "pay",
            "--json",
            "--amount",
            "1",
            "--auth-code",
            CODE,
            "--tip",
            "1",
        ])
        .output()
        .unwrap();
    assert_json_error(&unknown, 2, "--tip");
    let file = scanpay(dir.path())
        .args(["--config", "/nonexistent/till.toml"])
        .args(["pay", "--json", "--amount", "1", "--auth-code", CODE])
        .output()
        .unwrap();
    assert_json_error(&file, 3, "cannot read the configuration file");
    assert!(
        !dir.path().join("journal.sqlite3").exists(),
        "nothing may be journaled for bad input"
    );
    // A definite failure carries the order's fields as well as exit and message.
    let failed = pay(dir.path(), "0.44", CODE, &["--json"]);
    let object = json(&failed);
    assert_eq!(object["exit"], 4);
    assert_eq!(object["err_code"], "NOTENOUGH");
    assert_eq!(object["amount"], "0.44");
}

#[test]
fn a_code_typed_with_spaces_as_the_phone_shows_it_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let out = pay(dir.path(), "12.34", "1345 3951 7967 6860 76", &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let result = json(&out);
    assert_eq!(result["state"], "paid");
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let order = journal
        .order_by_trade_no(result["out_trade_no"].as_str().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(order.auth_code_masked, "**************6076");
}

/// A till configured as for a real merchant, talking to `scanpay simulate`
/// in another process: the journal and the simulator's ledger agree.
#[test]
fn pay_against_a_separate_simulator_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut simulator = scanpay(dir.path())
        .args(["simulate", "--listen", "127.0.0.1:0", "--slow-ms", "400"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(simulator.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let base_url = first_line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base_url.starts_with("http://127.0.0.1:"), "{first_line}");

    let mut outcomes = Vec::new();
    for amount in ["12.34", "0.40", "0.41", "0.49"] {
        let out = scanpay(dir.path())
            .env("SCANPAY_GATEWAY_MODE", "wechat")
            .env("SCANPAY_GATEWAY_BASE_URL", &base_url)
            .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
            .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
            .env("SCANPAY_API_KEY", "192006250b4c09247ec02edce69f6a2d")
            .args(["pay", "--json", "--amount", amount, "--auth-code", CODE])
            .output()
            .unwrap();
        outcomes.push((amount, out.status.code(), json(&out)));
    }
    let ledger: Vec<scanpay::simulator::LedgerEntry> =
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let body = reqwest::get(format!("{base_url}/_simulator/ledger"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            serde_json::from_slice(&body).unwrap()
        });
    simulator.kill().unwrap();
    simulator.wait().unwrap();

    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    for (amount, exit, result) in outcomes {
        let no = result["out_trade_no"].as_str().unwrap();
        let order = journal.order_by_trade_no(no).unwrap().unwrap();
        let entry = ledger
            .iter()
            .find(|e| e.out_trade_no == no)
            .unwrap_or_else(|| panic!("{no} not in the ledger"));
        let paid = order.state == OrderState::Paid;
        assert_eq!(exit, Some(if paid { 0 } else { 5 }), "{amount}");
        assert_eq!(
            entry.net_charged() > 0,
            paid,
            "{amount}: journal {:?}, ledger {entry:?}",
            order.state
        );
        if paid {
            assert_eq!(order.transaction_id, entry.transaction_id);
        }
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay(dir.path()).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    assert!(
        help.contains("6 needs attention") && help.contains("pay") && help.contains("simulate"),
        "{help}"
    );
}

/// Everything a run leaves on disk (journal, its WAL, the logs), searched for
/// the full payment code and the API key.
#[test]
fn nothing_on_disk_holds_the_payment_code_or_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = "192006250b4c09247ec02edce69f6a2d";
    for amount in ["12.34", "0.40", "0.44", "0.49", "0.51"] {
        let out = scanpay(dir.path())
            .env("SCANPAY_LOG_LEVEL", "trace")
            .args(["pay", "--amount", amount, "--auth-code", CODE])
            .output()
            .unwrap();
        assert!(out.status.code().is_some());
        for stream in [&out.stdout, &out.stderr] {
            let printed = text(stream);
            assert!(
                !printed.contains(CODE) && !printed.contains(key),
                "{amount} printed a secret:\n{printed}"
            );
        }
    }
    let mut files = vec![dir.path().to_path_buf()];
    let mut searched = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        searched += bytes.len();
        for secret in [CODE, key] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds {secret}",
                path.display()
            );
        }
    }
    let logs = std::fs::read_dir(dir.path().join("logs")).unwrap().count();
    assert!(
        logs > 0 && searched > 10_000,
        "the logs and journal were written ({logs} log files, {searched} bytes)"
    );
}

/// The manager's export of the day a payment was taken, as CSV through a
/// pipe (no --format needed when stdout is not a terminal) and as JSON.
#[test]
fn the_journal_exports_the_day_as_csv_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let paid = json(&pay(dir.path(), "12.34", CODE, &["--json"]));
    let failed = json(&pay(dir.path(), "0.44", CODE, &["--json"]));
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .date()
        .to_string();

    let csv = scanpay(dir.path())
        .args(["journal", "--date", &today])
        .output()
        .unwrap();
    assert_eq!(csv.status.code(), Some(0), "{}", text(&csv.stderr));
    let csv = text(&csv.stdout);
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("out_trade_no,created_at,till_id,amount,state"),
        "{csv}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].starts_with(paid["out_trade_no"].as_str().unwrap())
            && rows[0].contains(",12.34,paid,"),
        "{csv}"
    );
    assert!(
        rows[1].contains(",0.44,failed,") && rows[1].contains("NOTENOUGH"),
        "{csv}"
    );
    assert!(!csv.contains(CODE), "the export holds no payment code");

    let out = dir.path().join("day.json");
    let export = scanpay(dir.path())
        .args(["journal", "--date", &today, "--format", "json", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0), "{}", text(&export.stderr));
    let orders: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(orders[1]["out_trade_no"], failed["out_trade_no"]);
    assert_eq!(orders[0]["amount"], "12.34");
    assert_eq!(orders[0]["transaction_id"], paid["transaction_id"]);

    let excel = scanpay(dir.path())
        .args(["journal", "--date", &today, "--format", "csv", "--excel"])
        .output()
        .unwrap();
    assert_eq!(excel.status.code(), Some(0), "{}", text(&excel.stderr));
    assert!(excel.stdout.starts_with(b"\xEF\xBB\xBFout_trade_no,"));
    let transaction = paid["transaction_id"].as_str().unwrap();
    assert!(
        text(&excel.stdout).contains(&format!(",\"=\"\"{transaction}\"\"\",")),
        "{}",
        text(&excel.stdout)
    );

    let json_excel = scanpay(dir.path())
        .args(["journal", "--date", &today, "--format", "json", "--excel"])
        .output()
        .unwrap();
    assert_eq!(json_excel.status.code(), Some(2));
    assert!(json_excel.stdout.is_empty());

    let bad = scanpay(dir.path())
        .args(["journal", "--date", "2026-13-01", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("YYYY-MM-DD"),
        "{}",
        text(&bad.stderr)
    );
}
