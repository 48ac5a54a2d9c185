//! Every simulator scenario end to end through the real engine: HTTP to
//! 127.0.0.1, a real SQLite journal, timings ÷ 100. Each test checks the
//! outcome, the journal and the simulator's ledger agree.

mod common;

use std::time::Duration;

use common::{Till, code, demo_merchant, till, till_with};
use scanpay::journal::{EventKind, OrderState};
use scanpay::payment::{Attention, Final, ReverseReason};
use scanpay::wechat::{ApiKey, SignType};

fn calls(till: &Till, result: &scanpay::payment::PaymentResult) -> Vec<String> {
    till.ledger(result)
        .map(|e| {
            e.calls
                .iter()
                .map(|c| format!("{}:{}", c.call, c.answer))
                .collect()
        })
        .unwrap_or_default()
}

/// Reverses, as the journal saw them (ms since the micropay was sent).
fn reverse_times(till: &Till, result: &scanpay::payment::PaymentResult) -> Vec<u64> {
    till.events(result)
        .iter()
        .filter(|e| e.kind == EventKind::Request && e.call.as_deref() == Some("reverse"))
        .map(|e| e.since_t0_ms.unwrap())
        .collect()
}

fn assert_reversed_not_before_15s(till: &Till, result: &scanpay::payment::PaymentResult) {
    let times = reverse_times(till, result);
    assert!(!times.is_empty(), "no reverse journaled");
    assert!(
        times.iter().all(|t| *t >= 150),
        "a reverse before t0 + 150 ms: {times:?}"
    );
    // The gateway's view, allowing for the micropay's own transit on loopback.
    let entry = till.ledger(result).unwrap();
    for call in entry.calls.iter().filter(|c| c.call == "reverse") {
        assert!(
            call.after_micropay_ms + 10 >= 150,
            "the simulator saw a reverse {} ms after the micropay",
            call.after_micropay_ms
        );
    }
}

#[tokio::test]
async fn immediate_success_is_paid_with_its_transaction_id() {
    let till = till().await;
    let result = till.pay(1234).await;
    let Final::Paid(paid) = &result.outcome else {
        panic!("{:?}", result.outcome)
    };
    assert_eq!(result.state(), OrderState::Paid);
    till.assert_agreement(&result);
    assert_eq!(
        till.ledger(&result).unwrap().transaction_id.as_deref(),
        Some(paid.transaction_id.as_str())
    );
    assert_eq!(calls(&till, &result), ["micropay:SUCCESS"]);
}

#[tokio::test]
async fn sandbox_cases_1_2_3_with_coupons_are_paid() {
    let till = till().await;
    for fee in [1, 2, 3] {
        let result = till.pay(fee).await;
        assert_eq!(
            result.state(),
            OrderState::Paid,
            "{fee}: {:?}",
            result.outcome
        );
        till.assert_agreement(&result);
    }
}

#[tokio::test]
async fn case_30_userpaying_then_query_success() {
    let till = till().await;
    let result = till.pay(30).await;
    assert_eq!(result.state(), OrderState::Paid);
    assert_eq!(
        calls(&till, &result),
        ["micropay:USERPAYING", "orderquery:SUCCESS"]
    );
    till.assert_agreement(&result);
}

#[tokio::test]
async fn case_31_and_48_style_timeout_that_still_charged_is_found_paid() {
    let till = till().await;
    let result = till.pay(31).await;
    assert_eq!(result.state(), OrderState::Paid, "{:?}", result.outcome);
    till.assert_agreement(&result);
    let micropay_answer = till
        .events(&result)
        .into_iter()
        .find(|e| e.kind == EventKind::Answer)
        .unwrap();
    assert!(
        micropay_answer.summary.contains("UNKNOWN"),
        "{}",
        micropay_answer.summary
    );
}

#[tokio::test]
async fn case_32_timeout_then_payerror_is_reversed() {
    let till = till().await;
    let result = till.pay(32).await;
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::PayError));
    assert_reversed_not_before_15s(&till, &result);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn case_33_everything_times_out_and_is_reversed() {
    let till = till().await;
    let result = till.pay(33).await;
    // Every answer timed out: the gateway's fault, not a slow customer.
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::Unconfirmed));
    assert!(
        result.message.contains("不是顾客的问题"),
        "{}",
        result.message
    );
    assert_reversed_not_before_15s(&till, &result);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn case_34_reversed_then_a_new_order_with_the_same_code_pays() {
    let till = till().await;
    let auth_code = code();
    let first = till.pay_with(34, auth_code.clone(), None).await;
    assert_eq!(first.state(), OrderState::Reversed);
    let second = till.pay_with(34, auth_code, None).await;
    assert_eq!(second.state(), OrderState::Paid);
    assert_ne!(first.out_trade_no, second.out_trade_no);
    till.assert_agreement(&first);
    till.assert_agreement(&second);
}

#[tokio::test]
async fn customer_pays_at_the_second_query() {
    let till = till().await;
    let result = till.pay(40).await;
    assert_eq!(result.state(), OrderState::Paid);
    assert_eq!(
        calls(&till, &result),
        [
            "micropay:USERPAYING",
            "orderquery:USERPAYING",
            "orderquery:SUCCESS"
        ]
    );
    till.assert_agreement(&result);
}

#[tokio::test]
async fn userpaying_until_the_deadline_is_reversed_after_three_queries() {
    let till = till().await;
    let result = till.pay(41).await;
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::Deadline));
    assert_eq!(
        calls(&till, &result),
        [
            "micropay:USERPAYING",
            "orderquery:USERPAYING",
            "orderquery:USERPAYING",
            "orderquery:USERPAYING",
            "reverse:recall=N",
            "orderquery:REVOKED",
        ],
        "queries at 100, 200 and 300 ms, the reverse, then the query that shows nothing was charged"
    );
    assert_reversed_not_before_15s(&till, &result);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn systemerror_then_paid_and_systemerror_then_order_not_exist() {
    let till = till().await;
    let paid = till.pay(42).await;
    assert_eq!(paid.state(), OrderState::Paid);
    till.assert_agreement(&paid);

    let missing = till.pay(43).await;
    assert_eq!(missing.outcome, Final::Reversed(ReverseReason::Unconfirmed));
    assert_reversed_not_before_15s(&till, &missing);
    till.assert_agreement(&missing);
}

#[tokio::test]
async fn definite_failures_tell_the_cashier_what_to_do() {
    let till = till().await;
    let notenough = till.pay(44).await;
    assert!(matches!(&notenough.outcome, Final::Failed(r) if r.code == "NOTENOUGH"));
    assert_eq!(notenough.message, "余额不足，请用户换卡支付");
    assert_eq!(calls(&till, &notenough), ["micropay:NOTENOUGH"]);
    till.assert_agreement(&notenough);

    let expired = till.pay(45).await;
    assert!(matches!(&expired.outcome, Final::Failed(r) if r.code == "AUTHCODEEXPIRE"));
    let order = till.order(&expired);
    assert_eq!(order.err_code.as_deref(), Some("AUTHCODEEXPIRE"));
    assert!(order.message.unwrap().contains("刷新"));
}

#[tokio::test]
async fn userpaying_then_payerror_is_reversed() {
    let till = till().await;
    let result = till.pay(46).await;
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::PayError));
    assert_reversed_not_before_15s(&till, &result);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn recall_y_is_reversed_again_until_recall_n() {
    let till = till().await;
    let result = till.pay(47).await;
    assert_eq!(result.state(), OrderState::Reversed);
    let reverses: Vec<String> = calls(&till, &result)
        .into_iter()
        .filter(|c| c.starts_with("reverse"))
        .collect();
    assert_eq!(reverses.len(), 3, "{reverses:?}");
    till.assert_agreement(&result);
}

#[tokio::test]
async fn reverse_errors_exhaust_the_attempts_and_need_attention() {
    let till = till().await;
    let result = till.pay(48).await;
    assert!(
        matches!(
            result.outcome,
            Final::NeedsAttention(Attention::ReverseExhausted { attempts: 3, .. })
        ),
        "{:?}",
        result.outcome
    );
    assert_eq!(till.order(&result).state, OrderState::NeedsAttention);
    assert!(
        result.message.contains("请勿重复收款"),
        "{}",
        result.message
    );
    till.assert_agreement(&result);
}

#[tokio::test]
async fn a_reverse_refused_while_the_customer_pays_is_asked_again_and_reverses() {
    let till = till().await;
    let result = till.pay(56).await;
    assert_eq!(result.state(), OrderState::Reversed, "{:?}", result.outcome);
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::Deadline));
    let reverses: Vec<String> = calls(&till, &result)
        .into_iter()
        .filter(|c| c.starts_with("reverse"))
        .collect();
    assert_eq!(reverses, ["reverse:USERPAYING", "reverse:recall=N"]);
    // The journal kept the gateway's own words for the refused attempt.
    let answers: Vec<String> = till
        .events(&result)
        .into_iter()
        .filter(|e| e.kind == EventKind::Answer && e.call.as_deref() == Some("reverse"))
        .map(|e| format!("{:?}", e))
        .collect();
    assert!(
        answers[0].contains("USERPAYING") && answers[0].contains("正在支付中不能发起撤销"),
        "{answers:?}"
    );
    // The second attempt waited the retry interval (50 ms, scaled).
    let times = reverse_times(&till, &result);
    assert_eq!(times.len(), 2, "{times:?}");
    assert!(times[1] >= times[0] + 50, "{times:?}");
    assert_reversed_not_before_15s(&till, &result);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn a_tampered_signature_is_not_trusted_but_the_query_finds_it_paid() {
    let till = till().await;
    let result = till.pay(49).await;
    assert_eq!(result.state(), OrderState::Paid);
    let answers: Vec<String> = till
        .events(&result)
        .into_iter()
        .filter(|e| e.kind == EventKind::Answer)
        .map(|e| e.summary)
        .collect();
    assert!(
        answers[0].contains("UNKNOWN") && answers[0].contains("signature"),
        "{answers:?}"
    );
    till.assert_agreement(&result);
}

#[tokio::test]
async fn a_wrong_total_fee_is_never_paid_and_the_charge_is_reversed() {
    let till = till().await;
    let result = till.pay(50).await;
    assert_eq!(result.state(), OrderState::Reversed, "{:?}", result.outcome);
    let entry = till.ledger(&result).unwrap();
    assert_eq!((entry.charged, entry.refunded), (50, 50));
    till.assert_agreement(&result);
}

#[tokio::test]
async fn an_html_502_is_unclear_and_reversed() {
    let till = till().await;
    let result = till.pay(51).await;
    assert_eq!(result.state(), OrderState::Reversed);
    let first_answer = till
        .events(&result)
        .into_iter()
        .find(|e| e.kind == EventKind::Answer)
        .unwrap();
    assert!(
        first_answer.summary.contains("HTTP 502"),
        "{}",
        first_answer.summary
    );
    till.assert_agreement(&result);
}

#[tokio::test]
async fn the_customer_paying_at_the_reverse_is_refunded_and_journaled_reversed() {
    // The race WeChat warns about: the customer completes payment between
    // the last query and the reverse, which then refunds them. As on real
    // WeChat, the confirming query answers REVOKED whether or not the
    // customer had paid, so the till cannot tell this from a customer who
    // never paid: it journals a plain reverse (nobody is left charged
    // either way). Only the day's bill tells: its REVOKED row is a charge
    // the reverse returned, which reconciliation reports.
    let till = till().await;
    let result = till.pay(52).await;
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::Deadline));
    let entry = till.ledger(&result).unwrap();
    assert_eq!(
        (entry.charged, entry.refunded, entry.trade_state.as_str()),
        (52, 52, "REVOKED")
    );
    till.assert_agreement(&result);
    let finished = till
        .events(&result)
        .iter()
        .filter(|e| e.kind == EventKind::Finished)
        .count();
    assert_eq!(finished, 1);
    let order = till.order(&result);
    assert_eq!(order.state, OrderState::Reversed);
    assert_eq!(order.err_code.as_deref(), Some("TIMEOUT"));
    assert!(
        order.message.as_deref().unwrap().contains("已撤销"),
        "{:?}",
        order.message
    );
}

#[tokio::test]
async fn over_1000_yuan_asks_for_the_password_then_pays() {
    let till = till().await;
    let result = till.pay(100_001).await;
    assert_eq!(result.state(), OrderState::Paid);
    assert_eq!(calls(&till, &result)[0], "micropay:USERPAYING");
    till.assert_agreement(&result);
}

#[tokio::test]
async fn cashier_cancel_while_the_customer_pays_reverses_no_earlier_than_15s() {
    let till = till().await;
    let result = till
        .pay_with(41, code(), Some(Duration::from_millis(10)))
        .await;
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::Cancelled));
    assert_reversed_not_before_15s(&till, &result);
    let events = till.events(&result);
    assert!(
        events.iter().any(|e| e.kind == EventKind::Cashier),
        "the cancel is journaled"
    );
    // The cancel brought the deadline forward: reversed near 150 ms, not 300.
    assert!(
        reverse_times(&till, &result)[0] < 300,
        "{:?}",
        reverse_times(&till, &result)
    );
    till.assert_agreement(&result);
}

#[tokio::test]
async fn a_wrong_key_is_a_definite_signerror() {
    let mut merchant = demo_merchant(SignType::Md5);
    merchant.key = ApiKey::new("00000000000000000000000000000000");
    let till = till_with(merchant, |_| {}).await;
    let result = till.pay(1234).await;
    assert!(
        matches!(&result.outcome, Final::Failed(r) if r.code == "SIGNERROR"),
        "{:?}",
        result.outcome
    );
    assert!(result.message.contains("API密钥"), "{}", result.message);
    assert!(till.ledger(&result).is_none_or(|e| e.charged == 0));
}

#[tokio::test]
async fn hmac_sha256_merchants_pay_too() {
    let till = till_with(demo_merchant(SignType::HmacSha256), |_| {}).await;
    let result = till.pay(40).await;
    assert_eq!(result.state(), OrderState::Paid, "{:?}", result.outcome);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn the_sandbox_key_is_fetched_and_used() {
    let mut till = till_with(demo_merchant(SignType::Md5), |s| s.sandbox = true).await;
    let sandbox_key = till
        .engine
        .gateway
        .sandbox_sign_key(&till.engine.merchant)
        .await
        .unwrap();
    assert_ne!(sandbox_key, till.engine.merchant.key);
    till.engine.merchant.key = sandbox_key;
    let result = till.pay(30).await;
    assert_eq!(result.state(), OrderState::Paid, "{:?}", result.outcome);
    till.assert_agreement(&result);
}

#[tokio::test]
async fn the_negative_test_header_picks_the_sandbox_case() {
    let till = till_with(demo_merchant(SignType::Md5), |s| {
        s.negative_test = Some("MICROPAY_PAYERROR".into())
    })
    .await;
    let result = till.pay(1234).await;
    assert_eq!(result.outcome, Final::Reversed(ReverseReason::PayError));
    till.assert_agreement(&result);
}

#[tokio::test]
async fn a_gateway_that_cannot_be_reached_fails_at_once_with_nobody_charged() {
    let till = till().await;
    let dead = {
        // A port that refuses connections: bind, note it, close.
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap()
    };
    let Till {
        mut engine, dir, ..
    } = till;
    engine.gateway = scanpay::wechat::client::GatewayClient::new(&common::client_settings(
        format!("http://{dead}"),
    ))
    .unwrap();
    let down = Till {
        engine,
        simulator: common::start_simulator().await,
        dir,
    };
    let result = down.pay(1234).await;
    // The connection never opened: no byte of the micropay left the till.
    assert!(
        matches!(&result.outcome, Final::Unreachable(why) if why.contains("could not connect")),
        "{:?}",
        result.outcome
    );
    assert_eq!(result.state(), OrderState::Failed);
    assert!(result.message.contains("未扣款"), "{}", result.message);
    let events = down.events(&result);
    let requests: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Request)
        .map(|e| e.call.clone().unwrap())
        .collect();
    assert_eq!(requests, ["micropay"], "nothing is queried or reversed");
    assert_eq!(down.order(&result).err_code.as_deref(), Some("UNREACHABLE"));
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::Opened));
    assert_eq!(kinds.last(), Some(&EventKind::Finished));
    // Each request is followed by its answer before anything else is sent.
    let mut out = 0;
    for kind in &kinds {
        match kind {
            EventKind::Request => {
                assert_eq!(out, 0, "two requests out at once: {kinds:?}");
                out += 1
            }
            EventKind::Answer => {
                assert_eq!(out, 1, "an answer with no request: {kinds:?}");
                out -= 1
            }
            _ => {}
        }
    }
    assert!(
        events
            .iter()
            .any(|e| e.summary.contains("could not connect")),
        "the reason is journaled"
    );
}

#[tokio::test]
async fn the_journal_never_holds_a_full_payment_code() {
    let till = till().await;
    let auth_code = code();
    for fee in [1234, 40, 41, 44, 51] {
        till.pay_with(fee, auth_code.clone(), None).await;
    }
    let digits = auth_code.expose().as_bytes().to_vec();
    let mut files = Vec::new();
    let mut folders = vec![till.dir.path().to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= 2,
        "the journal and its owner lock: {files:?}"
    );
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(digits.len()).any(|w| w == digits),
            "{} holds the payment code",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_number_someone_else_paid_with_fails_at_once_and_is_never_queried_or_reversed() {
    let till = till().await;
    for (fee, code) in [(53, "OUT_TRADE_NO_USED"), (54, "ORDERPAID")] {
        let result = till.pay(fee).await;
        let Final::NumberTaken(refusal) = &result.outcome else {
            panic!("{fee}: {:?}", result.outcome)
        };
        assert_eq!(refusal.code, code);
        assert_eq!(result.state(), OrderState::Failed);
        assert!(result.message.contains("till.id"), "{}", result.message);
        // Only the one micropay reached the gateway: no query, no reverse of
        // the other party's order.
        assert_eq!(calls(&till, &result), [format!("micropay:{code}")], "{fee}");
        let requests: Vec<_> = till
            .events(&result)
            .iter()
            .filter(|e| e.kind == EventKind::Request)
            .map(|e| e.call.clone().unwrap())
            .collect();
        assert_eq!(requests, ["micropay"], "{fee}");
        till.assert_agreement(&result);
        let order = till.order(&result);
        assert_eq!(order.err_code.as_deref(), Some(code));
    }
}

#[tokio::test]
async fn a_signed_answer_about_another_order_is_not_ours_and_the_payment_is_found() {
    let till = till().await;
    let result = till.pay(55).await;
    // The first query's CLOSED was about another order: had it counted, the
    // order would be "closed" while the customer is charged.
    assert!(
        matches!(result.outcome, Final::Paid(_)),
        "{:?}",
        result.outcome
    );
    let answers: Vec<_> = till
        .events(&result)
        .iter()
        .filter(|e| e.kind == EventKind::Answer && e.call.as_deref() == Some("orderquery"))
        .map(|e| e.summary.clone())
        .collect();
    assert!(
        answers[0].contains("UNKNOWN") && answers[0].contains("another order"),
        "{answers:?}"
    );
    till.assert_agreement(&result);
}
