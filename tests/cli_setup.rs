//! What an installer meets before the first customer: the help, `scanpay
//! config`, `scanpay check` against `scanpay simulate` on 127.0.0.1, and that
//! looking creates nothing. The real binary throughout.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::process::{KEY, binary, start_gateway, till};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The binary in `cwd`, with no SCANPAY_* variable of the caller's.
fn scanpay_in(cwd: &Path) -> Command {
    let mut cmd = binary();
    for (name, _) in std::env::vars() {
        if name.starts_with("SCANPAY_") {
            cmd.env_remove(name);
        }
    }
    cmd.current_dir(cwd);
    cmd
}

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay_in(dir.path())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

const SUBCOMMANDS: &[&str] = &[
    "till",
    "pay",
    "scan-test",
    "journal",
    "replay",
    "reconcile",
    "simulate",
    "config",
    "check",
];

#[test]
fn every_subcommand_has_examples_in_its_help() {
    assert!(help(&[]).contains("Examples:"));
    for sub in SUBCOMMANDS {
        let text = help(&[sub]);
        let examples = text
            .split_once("Examples:")
            .unwrap_or_else(|| panic!("{sub} --help has no examples:\n{text}"))
            .1;
        assert!(
            examples.contains(&format!("scanpay {sub}"))
                || examples.contains(&format!("scanpay --config till.toml {sub}"))
                || examples.contains(&format!("scanpay --config /etc/scanpay/till.toml {sub}")),
            "{sub}: the examples do not run it:\n{text}"
        );
        // -h is the short form and keeps the examples too.
        let dir = tempfile::tempdir().unwrap();
        let short = scanpay_in(dir.path()).args([sub, "-h"]).output().unwrap();
        assert!(text_of(&short).contains("Examples:"), "{sub} -h");
    }
}

fn text_of(out: &Output) -> String {
    text(&out.stdout)
}

#[test]
fn pay_help_lists_every_exit_code() {
    let text = help(&["pay"]);
    let codes = text
        .split_once("Exit codes:")
        .expect("an exit code section")
        .1;
    for (code, words) in [
        (0, "paid"),
        (1, "internal error"),
        (2, "bad input"),
        (3, "configuration error"),
        (4, "failed"),
        (5, "reversed or closed"),
        (6, "needs attention"),
        (8, "the journal could not record"),
    ] {
        assert!(
            codes.contains(&format!("  {code}  {words}")),
            "exit {code} ({words}) missing:\n{codes}"
        );
    }
    assert!(text.contains("1345 3951 7967 6860 76"), "{text}");
}

/// What `simulate --help` tells a till to set is what the tests themselves
/// set to point a till at `scanpay simulate`.
#[test]
fn simulate_help_says_how_to_point_a_till_at_it() {
    let text = help(&["simulate"]);
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway();
    let configured = till("T01", dir.path(), &gateway);
    for (name, value) in configured.get_envs() {
        let name = name.to_str().unwrap();
        let value = value.and_then(|v| v.to_str()).unwrap_or("");
        if matches!(
            name,
            "SCANPAY_GATEWAY_MODE"
                | "SCANPAY_MERCHANT_APPID"
                | "SCANPAY_MERCHANT_MCH_ID"
                | "SCANPAY_API_KEY"
        ) {
            assert!(
                text.contains(&format!("{name}={value}")),
                "{name}={value} missing:\n{text}"
            );
        }
    }
    assert!(text.contains("SCANPAY_GATEWAY_BASE_URL=http://127.0.0.1:8765"));
    for key in [
        "gateway.mode",
        "gateway.base_url",
        "merchant.appid",
        "merchant.mch_id",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
}

#[test]
fn config_prints_the_effective_settings_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay_in(dir.path())
        .env("SCANPAY_API_KEY", KEY)
        .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
        .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
        .env("SCANPAY_GATEWAY_BASE_URL", "http://127.0.0.1:9")
        .env("SCANPAY_PAYMENT_DEADLINE_MS", "45000")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains(KEY) && !text(&out.stderr).contains(KEY),
        "{stdout}"
    );
    assert!(
        stdout.contains("API key: the SCANPAY_API_KEY environment variable (set, 32 characters)"),
        "{stdout}"
    );
    let table: toml::Table = stdout.parse().expect("the output is TOML");
    assert_eq!(table["payment"]["deadline_ms"].as_integer(), Some(45000));
    assert_eq!(table["merchant"]["mch_id"].as_str(), Some("10000100"));

    // A wrong setting: still printed, then named, exit 3.
    let bad = scanpay_in(dir.path())
        .env("SCANPAY_TILL_ID", "T-1")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    assert!(text(&bad.stdout).contains("id = \"T-1\""));
    assert!(
        text(&bad.stderr).contains("till.id"),
        "{}",
        text(&bad.stderr)
    );
    let typo = scanpay_in(dir.path())
        .env("SCANPAY_PAYMENT_DEDLINE_MS", "1")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(typo.status.code(), Some(3));
    assert!(
        text(&typo.stderr).contains("did you mean payment.deadline_ms?"),
        "{}",
        text(&typo.stderr)
    );
}

#[test]
fn config_defaults_prints_the_built_in_file_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Even a broken configuration does not stand in the way of the defaults.
    let out = scanpay_in(dir.path())
        .env("SCANPAY_TILL_ID", "T-1")
        .args(["config", "--defaults"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), scanpay::config::DEFAULT_TOML);
    assert_eq!(
        text(&out.stdout),
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
            .unwrap()
    );
}

fn check(dir: &Path, gateway: &common::process::Gateway, key: &str) -> Output {
    till("T01", dir, gateway)
        .env("SCANPAY_API_KEY", key)
        .current_dir(dir)
        .arg("check")
        .output()
        .unwrap()
}

#[test]
fn check_proves_the_merchant_against_the_simulator() {
    let gateway = start_gateway();
    let dir = tempfile::tempdir().unwrap();
    let right = check(dir.path(), &gateway, KEY);
    let stdout = text(&right.stdout);
    assert_eq!(
        right.status.code(),
        Some(0),
        "{stdout}{}",
        text(&right.stderr)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ok   key, appid, mch_id:") && l.contains("ORDERNOTEXIST")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("skip client certificate: loopback gateway")),
        "{stdout}"
    );

    let wrong = check(dir.path(), &gateway, "0123456789abcdef0123456789ABCDEF");
    let stdout = text(&wrong.stdout);
    assert_eq!(wrong.status.code(), Some(3), "{stdout}");
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL key:"))
        .unwrap_or_else(|| panic!("the key is not named:\n{stdout}"));
    assert!(fail.contains("API key"), "{fail}");
    assert!(
        !stdout.contains("0123456789abcdef"),
        "the key is not printed"
    );

    let mch = till("T01", dir.path(), &gateway)
        .env("SCANPAY_MERCHANT_MCH_ID", "10000999")
        .current_dir(dir.path())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(mch.status.code(), Some(3));
    assert!(text(&mch.stdout).contains("FAIL mch_id: merchant.mch_id 10000999"));

    // No money moved, nothing journaled: the ledger holds no micropay or
    // reverse, and no journal or log was created.
    let ledger = common::process::ledger(&gateway);
    assert!(
        ledger
            .iter()
            .all(|e| e.calls.iter().all(|c| c.call == "orderquery")),
        "{ledger:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A gateway nobody answers at is a reach problem, not a wrong API.
#[test]
fn check_against_a_closed_port_says_to_check_the_way_there() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = scanpay_in(dir.path())
        .env("SCANPAY_GATEWAY_MODE", "wechat")
        .env("SCANPAY_GATEWAY_BASE_URL", format!("http://{closed}"))
        .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
        .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
        .env("SCANPAY_API_KEY", KEY)
        .arg("check")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL gateway:"))
        .unwrap_or_else(|| panic!("no gateway finding:\n{stdout}"));
    assert!(
        fail.contains("check gateway.base_url, the network and any proxy"),
        "{fail}"
    );
    assert!(!fail.contains("WeChat Pay's API?"), "{fail}");
}

#[test]
fn check_without_a_merchant_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = scanpay_in(dir.path()).arg("check").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).starts_with("FAIL merchant: none is configured"));
}

/// Looking creates nothing: not the data folder, not a log.
#[test]
fn read_only_commands_create_no_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let runs: &[&[&str]] = &[
        &["--help"],
        &["pay", "--help"],
        &["simulate", "--help"],
        &["config"],
        &["config", "--defaults"],
        &["check"],
        &["journal", "--format", "csv"],
        &["journal", "--check"],
        &["scan-test", "--list"],
    ];
    for args in runs {
        let out = scanpay_in(dir.path()).args(*args).output().unwrap();
        assert!(out.status.code().is_some(), "{args:?}");
        let created: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(created.is_empty(), "{args:?} created {created:?}");
    }
    // The merchant-configured check, against a gateway that is not there.
    let out = scanpay_in(dir.path())
        .env("SCANPAY_GATEWAY_MODE", "wechat")
        .env("SCANPAY_GATEWAY_BASE_URL", "http://127.0.0.1:9")
        .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
        .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
        .env("SCANPAY_API_KEY", KEY)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("FAIL gateway:"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A scanner problem is said once: by scan-test's own line, not again by the
/// log on stderr.
#[test]
fn scan_test_prints_each_problem_once() {
    let dir = tempfile::tempdir().unwrap();
    let beijing = time::UtcOffset::from_hms(8, 0, 0).unwrap();
    let before = scanpay::logging::file_name(time::OffsetDateTime::now_utc(), beijing);
    let out = scanpay_in(dir.path())
        .env("SCANPAY_LOG_DIR", dir.path().join("logs"))
        .args(["scan-test", "--port", "/nonexistent/ttyACM9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(
        all.matches("/nonexistent/ttyACM9 does not exist").count(),
        1,
        "{all}"
    );
    // The log file still has it, named by the store's day.
    let logs: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let after = scanpay::logging::file_name(time::OffsetDateTime::now_utc(), beijing);
    assert!(logs == [before.clone()] || logs == [after], "{logs:?}");
}
