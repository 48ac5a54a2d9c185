//! A hostile gateway on 127.0.0.1: redirects, answers that never end or
//! announce hundreds of megabytes, answers that trickle; and gateway URLs
//! that only look like loopback. Every listener here is on 127.0.0.1; the
//! look-alike URLs are refused by the configuration before anything is sent
//! (and, where `unshare -n` works, inside a network namespace with no
//! network at all).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hostile::{Hostile, counting_listener, hostile, pay_at, scanpay};
use common::{Till, client_settings, demo_merchant, start_simulator};
use scanpay::domain::{Fen, OutTradeNo};
use scanpay::journal::{EventKind, OrderState};
use scanpay::wechat::api::{Expected, MicropayOutcome, Unclear, classify_micropay};
use scanpay::wechat::client::{Endpoint, GatewayClient};
use scanpay::wechat::{Fields, SignType};

fn gateway(base_url: String) -> GatewayClient {
    GatewayClient::new(&client_settings(base_url)).unwrap()
}

/// A bare micropay request: what matters is how the answer is read.
fn some_request() -> Fields {
    [
        ("appid", "wxd930ea5d5a258f4f"),
        ("auth_code", "134539517967686076"),
    ]
    .into_iter()
    .collect()
}

/// A till whose engine talks to `base_url`; `simulator` is only there to
/// see whether anything reached it.
async fn till_at(base_url: String, simulator: scanpay::simulator::Simulator) -> Till {
    common::till_on(simulator, gateway(base_url), demo_merchant(SignType::Md5))
}

#[tokio::test]
async fn a_redirect_is_an_unclear_answer_and_its_target_receives_nothing() {
    let second = counting_listener().await;
    let gateway_host = hostile(move |_| Hostile::Redirect(second.addr.port())).await;
    let answer = gateway(gateway_host.base_url())
        .post(Endpoint::Micropay, &some_request())
        .await;
    let Err(Unclear::Transport(why)) = &answer else {
        panic!("a redirect must be unclear: {answer:?}");
    };
    let target = format!("http://127.0.0.1:{}", second.addr.port());
    assert!(
        why.contains("HTTP 307") && why.contains("redirect") && why.contains(&target),
        "{why}"
    );
    assert!(
        !why.contains("auth_code") && !why.contains("LEAK") && !why.contains("/pay/micropay?"),
        "the Location's path and query must not be repeated: {why}"
    );
    let merchant = demo_merchant(SignType::Md5);
    let no = OutTradeNo::parse("T0120261123142353000001").unwrap();
    let outcome = classify_micropay(
        answer,
        &Expected {
            merchant: &merchant,
            out_trade_no: &no,
            total_fee: Fen(1),
            transaction_id: None,
        },
    );
    assert!(
        matches!(outcome, MicropayOutcome::Unknown(_)),
        "{outcome:?}"
    );

    // A whole payment: every call is redirected, none is followed.
    let till = till_at(gateway_host.base_url(), start_simulator().await).await;
    let result = till.pay(1).await;
    assert_ne!(result.state(), OrderState::Paid);
    assert_eq!(
        result.state(),
        OrderState::NeedsAttention,
        "{:?}",
        result.outcome
    );
    assert_eq!(second.accepted(), 0, "the redirect target was contacted");
    assert!(
        gateway_host.accepted() >= 3,
        "micropay, queries and reverses"
    );
    let micropay_answer = till
        .events(&result)
        .into_iter()
        .find(|e| e.kind == EventKind::Answer && e.call.as_deref() == Some("micropay"))
        .expect("the micropay's answer is journaled");
    assert!(
        format!("{micropay_answer:?}").contains("redirect"),
        "{micropay_answer:?}"
    );
}

#[tokio::test]
async fn a_redirect_to_a_gateway_that_would_charge_is_not_followed() {
    // The attack of the issue: a 307 to a host that answers PAID.
    let simulator = start_simulator().await;
    let port = simulator
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let gateway_host = hostile(move |_| Hostile::Redirect(port)).await;
    let till = till_at(gateway_host.base_url(), simulator).await;
    let result = till.pay(1).await;
    assert_ne!(result.state(), OrderState::Paid, "{:?}", result.outcome);
    assert!(
        till.simulator.ledger().is_empty(),
        "the simulator behind the redirect was reached: {:?}",
        till.simulator.ledger()
    );
}

#[tokio::test]
async fn answers_longer_than_the_limit_are_cut_unread() {
    let cases = [
        (Hostile::HugeLength, "announces 314572800 bytes"),
        (Hostile::EndlessChunked, "longer than the 65536 bytes"),
        (Hostile::EndlessUnannounced, "longer than the 65536 bytes"),
    ];
    for (how, expected) in cases {
        let server = hostile(move |_| how).await;
        let started = Instant::now();
        let answer = gateway(server.base_url())
            .post(Endpoint::OrderQuery, &some_request())
            .await;
        assert!(
            matches!(&answer, Err(Unclear::Untrusted(why)) if why.contains(expected)),
            "{how:?}: {answer:?}"
        );
        // Not a timing assertion: only that it did not wait for 300 MB.
        assert!(started.elapsed() < Duration::from_secs(30), "{how:?}");
    }
}

#[tokio::test]
async fn a_trickling_answer_is_cut_at_the_request_deadline() {
    let server = hostile(|_| Hostile::Trickle).await;
    let started = Instant::now();
    let answer = gateway(server.base_url())
        .post(Endpoint::Micropay, &some_request())
        .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(&answer, Err(Unclear::Transport(why)) if why.contains("within 150 ms")),
        "{answer:?}"
    );
    // The whole answer would take 50 s; the deadline (150 ms) ends it.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

/// Runs `cmd` inside a new network namespace when this machine allows it, so
/// that the binary could not reach any network even if it tried.
fn without_network(cmd: &Command) -> Command {
    let isolated = Command::new("unshare")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut wrapped = if isolated {
        let mut unshare = Command::new("unshare");
        unshare.arg("-n").arg(cmd.get_program());
        unshare
    } else {
        eprintln!("unshare -n is not available: relying on the exit code and the absent journal");
        Command::new(cmd.get_program())
    };
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    wrapped
}

#[test]
fn look_alike_loopback_urls_are_refused_at_start_and_nothing_is_sent() {
    let cases = [
        ("http://127.0.0.1@192.0.2.1", "user name or password"),
        ("http://localhost:1@192.0.2.1:80", "user name or password"),
        ("http://127.0.0.1.example.com", "must start with https://"),
        ("http://localhost.example.com", "must start with https://"),
        ("http://[::ffff:192.0.2.1]", "must start with https://"),
        ("http://192.0.2.1", "must start with https://"),
    ];
    for (url, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = scanpay(dir.path());
        pay_at(&mut cmd, url);
        let out = without_network(&cmd).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{url}: {stderr}");
        assert!(
            stderr.contains("gateway.base_url") && stderr.contains(reason),
            "{url}: {stderr}"
        );
        // Every request is journaled before it is sent: no journal, no request.
        assert!(
            !dir.path().join("journal.sqlite3").exists(),
            "{url}: a journal was opened"
        );
    }
}

#[test]
fn timings_that_break_wechats_rules_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, "CERT").unwrap();
    std::fs::write(&key, "KEY").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let cases = [
        (
            "SCANPAY_PAYMENT_DEADLINE_MS",
            "99999999999999",
            "payment.deadline_ms must be at most 600000",
        ),
        (
            "SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS",
            "1000",
            "payment.reverse_not_before_ms must be at least 15000 against WeChat",
        ),
    ];
    for (name, value, expected) in cases {
        // WeChat's own timings, except the one under test.
        let mut cmd = scanpay(dir.path());
        pay_at(&mut cmd, "https://api.mch.weixin.qq.com");
        cmd.env("SCANPAY_PAYMENT_QUERY_AFTER_UNKNOWN_MS", "5000")
            .env("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "10000")
            .env("SCANPAY_PAYMENT_DEADLINE_MS", "30000")
            .env("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "15000")
            .env("SCANPAY_PAYMENT_REVERSE_RETRY_INTERVAL_MS", "5000")
            .env("SCANPAY_MERCHANT_CLIENT_CERT", &cert)
            .env("SCANPAY_MERCHANT_CLIENT_KEY", &key)
            .env(name, value);
        let out = without_network(&cmd).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}={value}: {stderr}");
        assert!(stderr.contains(expected), "{name}={value}: {stderr}");
        assert!(!dir.path().join("journal.sqlite3").exists());
    }
}
