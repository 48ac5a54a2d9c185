//! The simulator's network faults over real HTTP on 127.0.0.1: what a client
//! sees in each mode, what the ledger says was processed and charged, that
//! `/_simulator/*` keeps answering, and that `none` brings the gateway back.

mod common;

use std::time::{Duration, Instant};

use scanpay::simulator::{DEMO_APPID, DEMO_KEY, DEMO_MCH_ID, Fault, LedgerEntry, Simulator};
use scanpay::wechat::api::nonce;
use scanpay::wechat::sign::{sign_request, verify};
use scanpay::wechat::xml::{decode, encode};
use scanpay::wechat::{ApiKey, Fields, SignType};

/// How long the simulator holds back `delay` answers, and the clients' read
/// timeout, well under it.
const SLOW: Duration = common::SLOW_ANSWER;
const READ_TIMEOUT: Duration = Duration::from_millis(150);

const CODE: &str = "134539517967686076";

async fn simulator() -> Simulator {
    common::start_simulator().await
}

/// A client that keeps connections alive between calls, as the till's does.
fn pooled() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(READ_TIMEOUT)
        .build()
        .unwrap()
}

/// A client that opens a new connection for every call.
fn fresh() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(READ_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

fn signed(extra: &[(&str, &str)]) -> String {
    let nonce = nonce();
    let mut fields: Fields = [
        ("appid", DEMO_APPID),
        ("mch_id", DEMO_MCH_ID),
        ("nonce_str", nonce.as_str()),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    sign_request(&mut fields, &ApiKey::new(DEMO_KEY), SignType::Md5);
    encode(&fields)
}

async fn post(
    http: &reqwest::Client,
    simulator: &Simulator,
    path: &str,
    body: String,
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{}{path}", simulator.base_url()))
        .body(body)
        .send()
        .await
}

async fn micropay(
    http: &reqwest::Client,
    simulator: &Simulator,
    no: &str,
    fee: u64,
) -> reqwest::Result<reqwest::Response> {
    let fee = fee.to_string();
    let body = signed(&[
        ("body", "fault test"),
        ("out_trade_no", no),
        ("total_fee", &fee),
        ("spbill_create_ip", "127.0.0.1"),
        ("auth_code", CODE),
    ]);
    post(http, simulator, "/pay/micropay", body).await
}

async fn call(
    http: &reqwest::Client,
    simulator: &Simulator,
    path: &str,
    no: &str,
) -> reqwest::Result<reqwest::Response> {
    post(http, simulator, path, signed(&[("out_trade_no", no)])).await
}

/// A whole answer, which must be signed right; its short form: the err_code,
/// `recall=…`, the trade_state, or SUCCESS.
async fn intact(response: reqwest::Result<reqwest::Response>) -> String {
    let response = response.expect("an answer");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("a whole body");
    let fields = decode(text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(
        verify(&fields, &ApiKey::new(DEMO_KEY), SignType::Md5),
        "{text}"
    );
    if fields.get("result_code") == Some("FAIL") {
        return fields.get("err_code").unwrap().to_string();
    }
    match (fields.get("recall"), fields.get("trade_state")) {
        (Some(recall), _) => format!("recall={recall}"),
        (None, Some(state)) => state.to_string(),
        (None, None) => "SUCCESS".into(),
    }
}

fn entry(simulator: &Simulator, no: &str) -> Option<LedgerEntry> {
    simulator
        .ledger()
        .into_iter()
        .find(|e| e.out_trade_no == no)
}

/// (trade_state, charged, each call's recorded answer) of a processed order.
fn book(simulator: &Simulator, no: &str) -> (String, u64, Vec<String>) {
    let entry = entry(simulator, no).unwrap_or_else(|| panic!("{no} was not processed"));
    let answers = entry.calls.iter().map(|c| c.answer.clone()).collect();
    (entry.trade_state, entry.charged, answers)
}

/// Sets a fault through the control port, as a script would.
async fn switch(simulator: &Simulator, body: &str) -> reqwest::Response {
    fresh()
        .post(format!("{}/_simulator/fault", simulator.control_url()))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// `none` brings normal, signed answers back, on the same address.
async fn back_to_normal(simulator: &Simulator, no: &str) {
    simulator.set_fault(Fault::None).await;
    let answer = intact(micropay(&pooled(), simulator, no, 1).await).await;
    assert_eq!(answer, "SUCCESS");
    assert_eq!(
        book(simulator, no),
        ("SUCCESS".into(), 1, vec!["SUCCESS".into()])
    );
}

#[tokio::test]
async fn refuse_closes_the_port_processes_nothing_and_reopens_the_same_port() {
    let simulator = simulator().await;
    let addr = simulator.base_url();
    let till = pooled();
    assert_eq!(
        intact(micropay(&till, &simulator, "R1", 1).await).await,
        "SUCCESS"
    );

    let set = switch(&simulator, r#"{"mode":"refuse"}"#).await;
    assert_eq!(set.status(), 200);
    assert_eq!(simulator.fault(), Fault::Refuse);
    // A new connection is refused: the port is closed, even to /_simulator/*.
    let error = micropay(&fresh(), &simulator, "R2", 1).await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    let health = fresh()
        .get(format!("{addr}/_simulator/health"))
        .send()
        .await;
    assert!(health.unwrap_err().is_connect());
    // The connection kept alive from R1 is cut before an answer.
    let error = micropay(&till, &simulator, "R3", 1).await.unwrap_err();
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(entry(&simulator, "R2"), None);
    assert_eq!(entry(&simulator, "R3"), None);

    // The control port answers, and switches back.
    let fault = fresh()
        .get(format!("{}/_simulator/fault", simulator.control_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(fault, r#"{"mode":"refuse"}"#);
    assert_eq!(switch(&simulator, r#"{"mode":"none"}"#).await.status(), 200);
    assert_eq!(simulator.base_url(), addr);
    // R2 again, now through: charged once.
    assert_eq!(
        intact(micropay(&till, &simulator, "R2", 1).await).await,
        "SUCCESS"
    );
    assert_eq!(
        book(&simulator, "R2"),
        ("SUCCESS".into(), 1, vec!["SUCCESS".into()])
    );
}

#[tokio::test]
async fn drop_charges_then_cuts_the_answer_short() {
    let simulator = simulator().await;
    simulator.set_fault(Fault::Drop).await;
    let response = micropay(&pooled(), &simulator, "D1", 100).await.unwrap();
    // The headers arrive, announcing more than ever comes.
    assert_eq!(response.status(), 200);
    assert!(response.content_length().unwrap() > 100);
    let error = response.bytes().await.unwrap_err();
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    assert_eq!(
        book(&simulator, "D1"),
        ("SUCCESS".into(), 100, vec!["fault:drop".into()])
    );
    // The till's next move: a query, once the network is back, finds the charge.
    simulator.set_fault(Fault::None).await;
    let query = call(&pooled(), &simulator, "/pay/orderquery", "D1").await;
    assert_eq!(intact(query).await, "SUCCESS");
    back_to_normal(&simulator, "D2").await;
}

#[tokio::test]
async fn delay_charges_and_answers_after_the_read_timeout() {
    let simulator = simulator().await;
    simulator.set_fault(Fault::Delay).await;
    let error = micropay(&pooled(), &simulator, "L1", 100)
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(
        book(&simulator, "L1"),
        ("SUCCESS".into(), 100, vec!["fault:delay".into()])
    );
    // A patient client gets the answer, after slow_answer.
    let patient = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    let query = call(&patient, &simulator, "/pay/orderquery", "L1").await;
    assert_eq!(intact(query).await, "SUCCESS");
    assert!(started.elapsed() >= SLOW);
    back_to_normal(&simulator, "L2").await;
}

#[tokio::test]
async fn http500_processes_nothing() {
    let simulator = simulator().await;
    assert_eq!(
        switch(&simulator, r#"{"mode":"http500"}"#).await.status(),
        200
    );
    let response = micropay(&pooled(), &simulator, "H1", 100).await.unwrap();
    assert_eq!(response.status(), 500);
    let page = response.text().await.unwrap();
    assert!(page.contains("500 Internal Server Error"), "{page}");
    assert!(decode(page.as_bytes()).map_or(true, |f| f.get("return_code").is_none()));
    let reverse = call(&pooled(), &simulator, "/secapi/pay/reverse", "H1").await;
    assert_eq!(reverse.unwrap().status(), 500);
    assert!(simulator.ledger().is_empty());
    back_to_normal(&simulator, "H2").await;
}

#[tokio::test]
async fn garbage_charges_and_answers_something_that_is_not_xml() {
    let simulator = simulator().await;
    simulator.set_fault(Fault::Garbage).await;
    let response = micropay(&pooled(), &simulator, "G1", 100).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.unwrap();
    assert!(decode(&body).is_err(), "{body:?}");
    assert_eq!(
        book(&simulator, "G1"),
        ("SUCCESS".into(), 100, vec!["fault:garbage".into()])
    );
    back_to_normal(&simulator, "G2").await;
}

#[tokio::test]
async fn badsign_charges_and_spoils_every_signature() {
    let simulator = simulator().await;
    simulator.set_fault(Fault::BadSign).await;
    let key = ApiKey::new(DEMO_KEY);
    // A charge and a refusal (NOTENOUGH), both readable, neither verifiable.
    for (no, fee, result) in [("B1", 100, "SUCCESS"), ("B2", 44, "FAIL")] {
        let response = micropay(&pooled(), &simulator, no, fee).await.unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let fields = decode(text.as_bytes()).unwrap();
        assert_eq!(fields.get("result_code"), Some(result), "{text}");
        assert!(!verify(&fields, &key, SignType::Md5), "{text}");
    }
    assert_eq!(
        book(&simulator, "B1"),
        ("SUCCESS".into(), 100, vec!["fault:badsign".into()])
    );
    assert_eq!(
        book(&simulator, "B2"),
        ("PAYERROR".into(), 0, vec!["fault:badsign".into()])
    );
    back_to_normal(&simulator, "B3").await;
}

#[tokio::test]
async fn flap_alternates_between_service_and_refusal() {
    let simulator = simulator().await;
    let set = switch(&simulator, r#"{"mode":"flap","up_ms":120,"down_ms":120}"#).await;
    assert_eq!(
        set.text().await.unwrap(),
        r#"{"mode":"flap","up_ms":120,"down_ms":120}"#
    );
    let client = fresh();
    let control = fresh();
    // (order, answered) per sample, every 20 ms for 4 periods.
    let mut samples = Vec::new();
    let mut refused = 0;
    let started = Instant::now();
    for n in 0.. {
        if started.elapsed() > Duration::from_millis(960) {
            break;
        }
        let no = format!("F{n}");
        let answered = match micropay(&client, &simulator, &no, 1).await {
            Ok(response) => intact(Ok(response)).await == "SUCCESS",
            // Refused, or reset when connected just before the port closed.
            Err(error) => {
                assert!(error.is_request() && error.status().is_none(), "{error:?}");
                refused += usize::from(error.is_connect());
                false
            }
        };
        samples.push((no, answered));
        let health = control
            .get(format!("{}/_simulator/health", simulator.control_url()))
            .send()
            .await;
        assert_eq!(health.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flips = samples.windows(2).filter(|w| w[0].1 != w[1].1).count();
    assert!(flips >= 4, "{samples:?}");
    assert!(refused > 0, "{samples:?}");
    // Exactly the answered orders were processed, each charged once.
    for (no, answered) in &samples {
        assert_eq!(entry(&simulator, no).is_some(), *answered, "{no}");
    }
    back_to_normal(&simulator, "F-").await;
}

#[tokio::test]
async fn simulator_paths_are_never_faulted() {
    let simulator = simulator().await;
    let ledger_at = |base: String| async move {
        let response = pooled()
            .get(format!("{base}/_simulator/ledger"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.bytes().await.unwrap();
        serde_json::from_slice::<Vec<LedgerEntry>>(&body).unwrap()
    };
    micropay(&pooled(), &simulator, "S1", 1).await.unwrap();
    for mode in ["drop", "delay", "http500", "garbage", "badsign"] {
        let body = format!(r#"{{"mode":"{mode}"}}"#);
        // Switched on the gateway's own port, read back on both.
        let set = pooled()
            .post(format!("{}/_simulator/fault", simulator.base_url()))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(set.text().await.unwrap(), body);
        for base in [simulator.base_url(), simulator.control_url()] {
            assert_eq!(ledger_at(base.clone()).await.len(), 1, "{mode} {base}");
            let fault = pooled()
                .get(format!("{base}/_simulator/fault"))
                .send()
                .await
                .unwrap();
            assert_eq!(fault.text().await.unwrap(), body);
        }
    }
    for mode in [
        Fault::Refuse,
        Fault::Flap {
            up_ms: 0,
            down_ms: 1000,
        },
    ] {
        simulator.set_fault(mode).await;
        assert_eq!(ledger_at(simulator.control_url()).await.len(), 1);
    }
    // A request the switch cannot read changes nothing.
    let refused = switch(&simulator, r#"{"mode":"slow"}"#).await;
    assert_eq!(refused.status(), 400);
    assert!(matches!(simulator.fault(), Fault::Flap { .. }));
    back_to_normal(&simulator, "S2").await;
}

#[tokio::test]
async fn a_query_after_a_reverse_says_revoked_whether_or_not_the_customer_paid() {
    let simulator = simulator().await;
    let till = pooled();
    // (order, fee, micropay answer): charged at once, never charged, and
    // charged as the reverse arrives (scenario 52). As on real WeChat the
    // query cannot tell them apart; the ledger (and the bill) can.
    let orders = [
        ("V1", 100, "SUCCESS", "REVOKED", 100),
        ("V2", 41, "USERPAYING", "REVOKED", 0),
        ("V3", 52, "USERPAYING", "REVOKED", 52),
    ];
    for (no, fee, paid, after, charged) in orders {
        assert_eq!(
            intact(micropay(&till, &simulator, no, fee).await).await,
            paid
        );
        let reverse = call(&till, &simulator, "/secapi/pay/reverse", no).await;
        assert_eq!(intact(reverse).await, "recall=N", "{no}");
        let query = call(&till, &simulator, "/pay/orderquery", no).await;
        assert_eq!(intact(query).await, after, "{no}");
        let entry = entry(&simulator, no).unwrap();
        assert_eq!(
            (
                entry.trade_state.as_str(),
                entry.charged,
                entry.net_charged()
            ),
            (after, charged, 0),
            "{no}"
        );
    }
}
