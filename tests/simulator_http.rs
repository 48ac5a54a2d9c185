//! The gateway simulator over real HTTP on 127.0.0.1: requests signed like
//! the till signs them, answers decoded and verified like the till must.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use scanpay::simulator::{
    CallRecord, DEMO_APPID, DEMO_KEY, DEMO_MCH_ID, LedgerEntry, Simulator, SimulatorConfig,
    scenario_table,
};
use scanpay::wechat::api::nonce;
use scanpay::wechat::sign::{sign_request, verify};
use scanpay::wechat::xml::{decode, encode};
use scanpay::wechat::{ApiKey, Fields, SignType};

/// How long "timing out" answers take in these tests.
const SLOW: Duration = Duration::from_millis(200);

/// A request with no parameters beyond appid, mch_id and nonce_str.
const NOTHING: &[(&str, &str)] = &[];

const MICROPAY: &str = "/pay/micropay";
const QUERY: &str = "/pay/orderquery";
const REVERSE: &str = "/secapi/pay/reverse";
const CLOSE: &str = "/pay/closeorder";

async fn simulator() -> Simulator {
    let config = SimulatorConfig {
        slow_answer: SLOW,
        ..SimulatorConfig::demo()
    };
    Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

/// The till's own gateway client, with room for a whole day's bill.
fn bill_client(simulator: &Simulator) -> scanpay::wechat::client::GatewayClient {
    scanpay::wechat::client::GatewayClient::new(&scanpay::wechat::client::ClientSettings {
        base_url: simulator.base_url(),
        sandbox: false,
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        client_identity_pem: None,
        extra_root_pem: None,
        negative_test: None,
    })
    .unwrap()
}

/// A distinct, valid payment code per number.
fn code(n: u64) -> String {
    format!("13{n:016}")
}

struct Reply {
    status: u16,
    text: String,
    elapsed: Duration,
}

impl Reply {
    fn fields(&self) -> Fields {
        assert_eq!(self.status, 200, "{}", self.text);
        decode(self.text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    /// The answer, which must carry a valid signature.
    fn signed(&self, key: &ApiKey, sign_type: SignType) -> Fields {
        let fields = self.fields();
        assert!(
            verify(&fields, key, sign_type),
            "bad signature: {}",
            self.text
        );
        fields
    }

    fn slow(&self) -> bool {
        self.elapsed >= SLOW
    }
}

/// A short name of an answer: the err_code, `recall=…`, the trade_state, or
/// SUCCESS; `FAIL:<return_msg>` for an unsigned refusal.
fn summary(fields: &Fields) -> String {
    let get = |name| fields.get(name).unwrap_or_default().to_string();
    if get("return_code") != "SUCCESS" {
        return format!("FAIL:{}", get("return_msg"));
    }
    if get("result_code") == "FAIL" {
        return get("err_code");
    }
    match (fields.get("recall"), fields.get("trade_state")) {
        (Some(recall), _) => format!("recall={recall}"),
        (None, Some(state)) => state.to_string(),
        (None, None) => "SUCCESS".into(),
    }
}

/// A till talking to one simulator path prefix with one key.
struct Till {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    sign_type: SignType,
}

impl Till {
    fn new(simulator: &Simulator) -> Self {
        Self {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: simulator.base_url(),
            key: ApiKey::new(DEMO_KEY),
            sign_type: SignType::Md5,
        }
    }

    fn request(&self, extra: &[(&str, impl AsRef<str>)]) -> Fields {
        let mut fields: Fields = [("appid", DEMO_APPID), ("mch_id", DEMO_MCH_ID)]
            .into_iter()
            .collect();
        fields.set("nonce_str", nonce());
        for (name, value) in extra {
            fields.set(name, value.as_ref());
        }
        sign_request(&mut fields, &self.key, self.sign_type);
        fields
    }

    async fn post(&self, path: &str, body: String, negative_test: Option<&str>) -> Reply {
        let started = Instant::now();
        let mut request = self.http.post(format!("{}{path}", self.base)).body(body);
        if let Some(case) = negative_test {
            request = request.header("Wechatpay-Negative-Test", case);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Reply {
            status,
            text,
            elapsed: started.elapsed(),
        }
    }

    async fn send(&self, path: &str, extra: &[(&str, impl AsRef<str>)]) -> Reply {
        self.post(path, encode(&self.request(extra)), None).await
    }

    /// A call whose answer must be signed with our key.
    async fn call(&self, path: &str, extra: &[(&str, impl AsRef<str>)]) -> Fields {
        self.send(path, extra)
            .await
            .signed(&self.key, self.sign_type)
    }

    fn micropay_fields(
        out_trade_no: &str,
        fee: &str,
        auth_code: &str,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("device_info", "T01".into()),
            ("body", "scanpay test".into()),
            ("out_trade_no", out_trade_no.into()),
            ("total_fee", fee.into()),
            ("spbill_create_ip", "127.0.0.1".into()),
            ("auth_code", auth_code.into()),
        ]
    }

    async fn micropay_with(
        &self,
        out_trade_no: &str,
        fee: u64,
        auth_code: &str,
        case: Option<&str>,
    ) -> Reply {
        let fields = Self::micropay_fields(out_trade_no, &fee.to_string(), auth_code);
        let extra: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(MICROPAY, encode(&self.request(&extra)), case)
            .await
    }

    async fn micropay(&self, out_trade_no: &str, fee: u64) -> Reply {
        self.micropay_with(out_trade_no, fee, &code(fee), None)
            .await
    }

    async fn query(&self, out_trade_no: &str) -> Reply {
        self.send(QUERY, &[("out_trade_no", out_trade_no)]).await
    }

    async fn reverse(&self, out_trade_no: &str) -> Reply {
        self.send(REVERSE, &[("out_trade_no", out_trade_no)]).await
    }

    /// What the till sees: the summary, `(bad sign)` when the signature does
    /// not verify, `html502` for the proxy page, `slow:` when it took
    /// `slow_answer`.
    fn observe(&self, reply: &Reply) -> String {
        let seen = if reply.status == 502 {
            assert!(
                reply.text.contains("<center>nginx</center>"),
                "{}",
                reply.text
            );
            "html502".to_string()
        } else {
            let fields = reply.fields();
            match verify(&fields, &self.key, self.sign_type) {
                true => summary(&fields),
                false => format!("{}(bad sign)", summary(&fields)),
            }
        };
        if reply.slow() {
            format!("slow:{seen}")
        } else {
            seen
        }
    }
}

impl Till {
    /// [`Till::observe`], with `(another order)` appended when the answer
    /// names an out_trade_no other than `out_trade_no`.
    fn observe_about(&self, reply: &Reply, out_trade_no: &str) -> String {
        let seen = self.observe(reply);
        let about = (reply.status == 200)
            .then(|| reply.fields())
            .and_then(|fields| fields.get("out_trade_no").map(str::to_string));
        match about {
            Some(other) if other != out_trade_no => format!("{seen}(another order)"),
            _ => seen,
        }
    }
}

fn entry(simulator: &Simulator, out_trade_no: &str) -> LedgerEntry {
    let ledger = simulator.ledger();
    ledger
        .iter()
        .find(|e| e.out_trade_no == out_trade_no)
        .unwrap_or_else(|| panic!("{out_trade_no} not in {ledger:?}"))
        .clone()
}

/// One scenario row: the fee; what the till sees at the micropay, at each
/// query in turn and at each reverse in turn (`slow:` = after slow_answer);
/// and the ledger's trade_state, charged and refunded at the end.
type Script = (
    u64,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    (&'static str, u64, u64),
);

#[rustfmt::skip]
const SCRIPTS: &[Script] = &[
    (1, "SUCCESS", &["SUCCESS"], &[], ("SUCCESS", 1, 0)),
    (2, "SUCCESS", &["SUCCESS"], &[], ("SUCCESS", 2, 0)),
    (3, "SUCCESS", &["SUCCESS"], &[], ("SUCCESS", 3, 0)),
    (30, "USERPAYING", &["SUCCESS", "SUCCESS"], &[], ("SUCCESS", 30, 0)),
    (31, "slow:SUCCESS", &["SUCCESS"], &[], ("SUCCESS", 31, 0)),
    (32, "slow:SYSTEMERROR", &["PAYERROR"], &["recall=N"], ("REVOKED", 0, 0)),
    (33, "slow:USERPAYING", &["slow:USERPAYING", "slow:USERPAYING"], &["recall=N"], ("REVOKED", 0, 0)),
    (34, "slow:USERPAYING", &["slow:USERPAYING"], &["recall=N"], ("REVOKED", 0, 0)),
    (40, "USERPAYING", &["USERPAYING", "SUCCESS", "SUCCESS"], &[], ("SUCCESS", 40, 0)),
    (41, "USERPAYING", &["USERPAYING", "USERPAYING", "USERPAYING"], &["recall=N"], ("REVOKED", 0, 0)),
    (42, "SYSTEMERROR", &["SUCCESS"], &[], ("SUCCESS", 42, 0)),
    (43, "SYSTEMERROR", &["ORDERNOTEXIST", "ORDERNOTEXIST"], &["recall=N"], ("REVOKED", 0, 0)),
    (44, "NOTENOUGH", &["PAYERROR"], &[], ("PAYERROR", 0, 0)),
    (45, "AUTHCODEEXPIRE", &["PAYERROR"], &[], ("PAYERROR", 0, 0)),
    (46, "USERPAYING", &["PAYERROR", "PAYERROR"], &["recall=N"], ("REVOKED", 0, 0)),
    (47, "USERPAYING", &["USERPAYING"], &["recall=Y", "recall=Y", "recall=N", "recall=N"], ("REVOKED", 0, 0)),
    (48, "USERPAYING", &["USERPAYING"], &["SYSTEMERROR", "SYSTEMERROR", "SYSTEMERROR", "SYSTEMERROR"], ("USERPAYING", 0, 0)),
    (49, "SUCCESS(bad sign)", &["SUCCESS"], &[], ("SUCCESS", 49, 0)),
    // A charge returned by a reverse: REVOKED, like one never charged; the
    // ledger's charged/refunded (and the bill) tell them apart.
    (50, "SUCCESS", &["SUCCESS"], &["recall=N"], ("REVOKED", 50, 50)),
    (51, "html502", &["ORDERNOTEXIST"], &["recall=N"], ("REVOKED", 0, 0)),
    (52, "USERPAYING", &["USERPAYING", "USERPAYING"], &["recall=N", "recall=N"], ("REVOKED", 52, 52)),
    // The number is another party's: its query and reverse reach their order;
    // this entry is our customer's, never charged.
    (53, "OUT_TRADE_NO_USED", &["SUCCESS"], &["recall=N"], ("NOTPAY", 0, 0)),
    (54, "ORDERPAID", &["SUCCESS"], &["recall=N"], ("NOTPAY", 0, 0)),
    (55, "USERPAYING", &["CLOSED(another order)", "SUCCESS"], &[], ("SUCCESS", 55, 0)),
    (56, "USERPAYING", &["USERPAYING"], &["USERPAYING", "recall=N"], ("REVOKED", 0, 0)),
    (100_001, "USERPAYING", &["SUCCESS"], &[], ("SUCCESS", 100_001, 0)),
    // Amounts off the table succeed at once.
    (1234, "SUCCESS", &["SUCCESS"], &[], ("SUCCESS", 1234, 0)),
];

#[tokio::test]
async fn every_scenario_row_plays_its_script_and_the_ledger_records_it() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    for &(fee, micropay, queries, reverses, (state, charged, refunded)) in SCRIPTS {
        let no = format!("ROW{fee}");
        let mut seen = vec![(
            "micropay",
            till.observe_about(&till.micropay(&no, fee).await, &no),
        )];
        for _ in queries {
            seen.push((
                "orderquery",
                till.observe_about(&till.query(&no).await, &no),
            ));
        }
        for _ in reverses {
            seen.push(("reverse", till.observe_about(&till.reverse(&no).await, &no)));
        }
        let expected: Vec<&str> = [micropay]
            .iter()
            .chain(queries)
            .chain(reverses)
            .copied()
            .collect();
        let answers: Vec<&str> = seen.iter().map(|(_, answer)| answer.as_str()).collect();
        assert_eq!(answers, expected, "fee {fee}");

        // The ledger recorded the same calls, a slow answer as "timeout".
        let order = entry(&simulator, &no);
        let recorded: Vec<(&str, &str)> = order
            .calls
            .iter()
            .map(|c| (c.call.as_str(), c.answer.as_str()))
            .collect();
        let sent: Vec<(&str, &str)> = seen
            .iter()
            .map(|(call, answer)| {
                (
                    *call,
                    if answer.starts_with("slow:") {
                        "timeout"
                    } else {
                        answer.as_str()
                    },
                )
            })
            .collect();
        assert_eq!(recorded, sent, "fee {fee}");
        let end = (
            order.total_fee,
            order.trade_state.as_str(),
            order.charged,
            order.refunded,
        );
        assert_eq!(end, (fee, state, charged, refunded), "fee {fee}");
        assert_eq!(order.auth_code_last4, code(fee)[14..], "fee {fee}");
    }

    // The rows above cover the whole published table (and nothing is left
    // untested when a row is added).
    let tested: BTreeSet<u64> = SCRIPTS.iter().map(|script| script.0).collect();
    let published: BTreeSet<u64> = scenario_table().iter().map(|row| row.0).collect();
    assert!(
        published.is_subset(&tested),
        "untested rows: {:?}",
        published.difference(&tested)
    );
    simulator.shutdown().await;
}

#[tokio::test]
async fn paid_answers_carry_the_documented_fields_and_echo_the_request() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let mut extra = vec![
        ("device_info", "T01"),
        ("body", "一杯咖啡"),
        ("out_trade_no", "PAID1"),
        ("total_fee", "888"),
        ("spbill_create_ip", "127.0.0.1"),
        ("auth_code", "134539517967686076"),
        ("attach", "till T01 & co"),
        ("sub_mch_id", "1900000109"),
    ];
    let request = till.request(&extra);
    let paid = till
        .post(MICROPAY, encode(&request), None)
        .await
        .signed(&till.key, SignType::Md5);
    for (name, value) in [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", DEMO_APPID),
        ("mch_id", DEMO_MCH_ID),
        ("sub_mch_id", "1900000109"),
        ("device_info", "T01"),
        ("is_subscribe", "N"),
        ("trade_type", "MICROPAY"),
        ("fee_type", "CNY"),
        ("total_fee", "888"),
        ("cash_fee", "888"),
        ("out_trade_no", "PAID1"),
        ("attach", "till T01 & co"),
    ] {
        assert_eq!(paid.get(name), Some(value), "{name}");
    }
    assert!(paid.get("openid").is_some_and(|o| !o.is_empty()));
    assert!(paid.get("bank_type").is_some_and(|b| !b.is_empty()));
    assert_ne!(paid.get("nonce_str"), request.get("nonce_str"));
    assert!(paid.get("coupon_count").is_none());
    let transaction_id = paid.get("transaction_id").unwrap().to_string();
    assert_eq!(transaction_id.len(), 28);
    assert!(transaction_id.bytes().all(|b| b.is_ascii_digit()));
    let time_end = paid.get("time_end").unwrap();
    assert_eq!(time_end.len(), 14);
    assert!(time_end.starts_with("20"));
    assert!(!simulator.ledger()[0].calls.is_empty());

    // The query by transaction_id tells the same payment.
    let query = till
        .call(QUERY, &[("transaction_id", transaction_id.as_str())])
        .await;
    assert_eq!(query.get("trade_state"), Some("SUCCESS"));
    assert_eq!(query.get("trade_state_desc"), Some("支付成功"));
    for name in [
        "transaction_id",
        "out_trade_no",
        "total_fee",
        "time_end",
        "attach",
        "openid",
    ] {
        assert_eq!(query.get(name), paid.get(name), "{name}");
    }

    // Every paid order gets its own transaction_id.
    extra[2] = ("out_trade_no", "PAID2");
    let second = till.call(MICROPAY, &extra).await;
    assert_ne!(second.get("transaction_id"), Some(transaction_id.as_str()));
    assert_eq!(simulator.ledger().len(), 2);
}

#[tokio::test]
async fn coupon_answers_sign_their_indexed_fields() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);

    let one = till
        .micropay("COUPON2", 2)
        .await
        .signed(&till.key, SignType::Md5);
    for (name, value) in [
        ("total_fee", "2"),
        ("cash_fee", "1"),
        ("coupon_fee", "1"),
        ("coupon_count", "1"),
        ("coupon_fee_0", "1"),
    ] {
        assert_eq!(one.get(name), Some(value), "{name}");
    }
    assert!(one.get("coupon_id_0").is_some_and(|id| !id.is_empty()));
    assert!(one.get("coupon_fee_1").is_none());
    // Verifying only the fields a typed struct knows would fail.
    let mut typed_only = one.clone();
    typed_only.remove("coupon_fee_0");
    typed_only.remove("coupon_id_0");
    assert!(!verify(&typed_only, &till.key, SignType::Md5));

    let all = till
        .micropay("COUPON3", 3)
        .await
        .signed(&till.key, SignType::Md5);
    for (name, value) in [
        ("total_fee", "3"),
        ("cash_fee", "0"),
        ("coupon_fee", "3"),
        ("coupon_count", "2"),
        ("coupon_fee_0", "1"),
        ("coupon_fee_1", "2"),
        ("settlement_total_fee", "1"),
    ] {
        assert_eq!(all.get(name), Some(value), "{name}");
    }
    assert_ne!(all.get("coupon_id_0"), all.get("coupon_id_1"));
    // The query of a coupon order carries the same indexed fields.
    let query = till.query("COUPON3").await.signed(&till.key, SignType::Md5);
    assert_eq!(query.get("coupon_fee_1"), Some("2"));
    assert_eq!(entry(&simulator, "COUPON3").charged, 3);
}

#[tokio::test]
async fn scenario_34_lets_the_same_payment_code_pay_a_new_order() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let auth_code = code(777);
    let first = till.micropay_with("S34A", 34, &auth_code, None).await;
    assert!(first.slow());
    assert_eq!(
        summary(&first.signed(&till.key, SignType::Md5)),
        "USERPAYING"
    );
    assert_eq!(till.observe(&till.reverse("S34A").await), "recall=N");

    let again = till.micropay_with("S34B", 34, &auth_code, None).await;
    assert!(!again.slow());
    let paid = again.signed(&till.key, SignType::Md5);
    assert_eq!(summary(&paid), "SUCCESS");
    assert_eq!(
        (paid.get("cash_fee"), paid.get("coupon_fee_0")),
        (Some("33"), Some("1"))
    );

    // A different customer starts at the timing-out first order again.
    assert!(
        till.micropay_with("S34C", 34, &code(778), None)
            .await
            .slow()
    );

    let scenarios: Vec<(String, String, u64)> = simulator
        .ledger()
        .into_iter()
        .map(|e| (e.net_charged(), e))
        .map(|(net, e)| (e.out_trade_no, e.scenario, net))
        .collect();
    assert_eq!(
        scenarios,
        [
            ("S34A".into(), "sandbox-coupon-retry".into(), 0),
            ("S34B".into(), "sandbox-coupon-retry-again".into(), 34),
            ("S34C".into(), "sandbox-coupon-retry".into(), 0),
        ]
    );
}

#[tokio::test]
async fn the_negative_test_header_picks_the_case_for_any_amount() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let cases = [
        (
            "MICROPAY_USERPAYING",
            "USERPAYING",
            "SUCCESS",
            "sandbox-userpaying",
        ),
        (
            "MICROPAY_TIMEOUT",
            "slow:SUCCESS",
            "SUCCESS",
            "sandbox-timeout-paid",
        ),
        (
            "MICROPAY_PAYERROR",
            "slow:SYSTEMERROR",
            "PAYERROR",
            "sandbox-timeout-payerror",
        ),
        (
            "MICROPAY_PAY_QUERY_TIMEOUT",
            "slow:USERPAYING",
            "slow:USERPAYING",
            "sandbox-everything-times-out",
        ),
    ];
    for (n, (case, micropay, query, scenario)) in cases.into_iter().enumerate() {
        let no = format!("NEG{n}");
        let reply = till
            .micropay_with(&no, 500, &code(500 + n as u64), Some(case))
            .await;
        assert_eq!(till.observe(&reply), micropay, "{case}");
        // Later calls carry no header: the order remembers its scenario.
        assert_eq!(till.observe(&till.query(&no).await), query, "{case}");
        assert_eq!(entry(&simulator, &no).scenario, scenario);
    }
    // An unknown case is ignored: 500 fen is plain success.
    let reply = till
        .micropay_with("NEG9", 500, &code(509), Some("MICROPAY_SOMETHING"))
        .await;
    assert_eq!(till.observe(&reply), "SUCCESS");
}

#[tokio::test]
async fn a_reverse_stops_a_scenario_40_customer_from_ever_paying() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    assert_eq!(
        till.observe(&till.micropay("STOP40", 40).await),
        "USERPAYING"
    );
    assert_eq!(till.observe(&till.query("STOP40").await), "USERPAYING");
    assert_eq!(till.observe(&till.reverse("STOP40").await), "recall=N");
    // Without the reverse, this second query is where the customer pays.
    for _ in 0..3 {
        assert_eq!(till.observe(&till.query("STOP40").await), "REVOKED");
    }
    assert_eq!(
        till.observe(&till.micropay("STOP40", 40).await),
        "ORDERREVERSED"
    );
    let order = entry(&simulator, "STOP40");
    assert_eq!(
        (
            order.trade_state.as_str(),
            order.charged,
            order.transaction_id
        ),
        ("REVOKED", 0, None)
    );
}

#[tokio::test]
async fn a_resent_out_trade_no_is_never_charged_twice() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    assert_eq!(till.observe(&till.micropay("AGAIN1", 1).await), "SUCCESS");
    assert_eq!(till.observe(&till.micropay("AGAIN1", 1).await), "ORDERPAID");
    let order = entry(&simulator, "AGAIN1");
    assert_eq!((order.charged, order.calls.len()), (1, 2));

    assert_eq!(
        till.observe(&till.micropay("AGAIN41", 41).await),
        "USERPAYING"
    );
    assert_eq!(
        till.observe(&till.micropay("AGAIN41", 41).await),
        "OUT_TRADE_NO_USED"
    );
    assert_eq!(
        till.observe(&till.send(CLOSE, &[("out_trade_no", "AGAIN41")]).await),
        "SUCCESS"
    );
    assert_eq!(
        till.observe(&till.micropay("AGAIN41", 41).await),
        "ORDERCLOSED"
    );
    assert_eq!(till.observe(&till.query("AGAIN41").await), "CLOSED");
    assert_eq!(entry(&simulator, "AGAIN41").trade_state, "CLOSED");

    // Closing what is paid or closed is refused.
    assert_eq!(
        till.observe(&till.send(CLOSE, &[("out_trade_no", "AGAIN1")]).await),
        "ORDERPAID"
    );
    assert_eq!(
        till.observe(&till.send(CLOSE, &[("out_trade_no", "AGAIN41")]).await),
        "ORDERCLOSED"
    );
    assert_eq!(
        till.observe(&till.send(CLOSE, &[("out_trade_no", "NEVER")]).await),
        "ORDERNOTEXIST"
    );

    let err = till
        .micropay("AGAIN1", 1)
        .await
        .signed(&till.key, SignType::Md5);
    assert_eq!(err.get("err_code_des"), Some("订单已支付"));
}

#[tokio::test]
async fn a_reverse_of_an_unknown_order_blocks_its_late_micropay() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    assert_eq!(till.observe(&till.query("LATE1").await), "ORDERNOTEXIST");
    assert!(
        simulator.ledger().is_empty(),
        "a query alone creates nothing"
    );
    assert_eq!(till.observe(&till.reverse("LATE1").await), "recall=N");
    assert_eq!(
        till.observe(&till.micropay("LATE1", 1).await),
        "ORDERREVERSED"
    );
    let order = entry(&simulator, "LATE1");
    assert_eq!(
        (
            order.trade_state.as_str(),
            order.charged,
            order.scenario.as_str()
        ),
        ("REVOKED", 0, "no-micropay")
    );
    let calls: Vec<&str> = order.calls.iter().map(|c| c.call.as_str()).collect();
    assert_eq!(calls, ["reverse", "micropay"]);
    assert_eq!(
        till.observe(
            &till
                .send(
                    REVERSE,
                    &[("transaction_id", "4200000000000000000000000000")]
                )
                .await
        ),
        "INVALID_TRANSACTIONID"
    );
}

#[tokio::test]
async fn reversing_a_paid_order_refunds_it() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    till.micropay("REFUND1", 1500)
        .await
        .signed(&till.key, SignType::Md5);
    let before = entry(&simulator, "REFUND1");
    assert_eq!(
        (before.charged, before.refunded, before.net_charged()),
        (1500, 0, 1500)
    );
    assert_eq!(till.observe(&till.reverse("REFUND1").await), "recall=N");
    let after = entry(&simulator, "REFUND1");
    assert_eq!(
        (
            after.trade_state.as_str(),
            after.charged,
            after.refunded,
            after.net_charged()
        ),
        ("REVOKED", 1500, 1500, 0)
    );
    // The query says REVOKED, as for an order never charged, and names no payment.
    let query = till.call(QUERY, &[("out_trade_no", "REFUND1")]).await;
    assert_eq!(
        (query.get("trade_state"), query.get("transaction_id")),
        (Some("REVOKED"), None)
    );
    assert_eq!(after.transaction_id, before.transaction_id);
}

#[tokio::test]
async fn the_misreported_fee_is_on_every_success_answer() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let paid = till
        .micropay("FEE50", 50)
        .await
        .signed(&till.key, SignType::Md5);
    let query = till.query("FEE50").await.signed(&till.key, SignType::Md5);
    assert_eq!(
        (paid.get("total_fee"), query.get("total_fee")),
        (Some("51"), Some("51"))
    );
    assert_eq!(entry(&simulator, "FEE50").charged, 50);
}

#[tokio::test]
async fn the_tampered_answer_differs_in_its_sign_only() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let answer = till.micropay("SIGN49", 49).await.fields();
    assert!(!verify(&answer, &till.key, SignType::Md5));
    let sign = answer.get("sign").unwrap();
    let mut resigned = answer.clone();
    sign_request(&mut resigned, &till.key, SignType::Md5);
    let good = resigned.get("sign").unwrap();
    let differing = sign
        .chars()
        .zip(good.chars())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!((sign.len(), differing), (good.len(), 1));
    assert_eq!(answer.get("result_code"), Some("SUCCESS"));
}

#[tokio::test]
async fn a_slow_answer_outlasts_the_tills_timeout_but_the_money_moved() {
    let simulator = simulator().await;
    let mut till = Till::new(&simulator);
    till.http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let request = till.request(&Till::micropay_fields("SLOW31", "31", &code(31)));
    let error = till
        .http
        .post(format!("{}{MICROPAY}", till.base))
        .body(encode(&request))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(entry(&simulator, "SLOW31").charged, 31);
    assert_eq!(till.observe(&till.query("SLOW31").await), "SUCCESS");
    let calls = entry(&simulator, "SLOW31").calls;
    assert_eq!(
        calls[0],
        CallRecord {
            call: "micropay".into(),
            after_micropay_ms: 0,
            answer: "timeout".into()
        }
    );
    assert_eq!(calls[1].answer, "SUCCESS");
}

#[tokio::test]
async fn calls_are_timed_from_the_first_micropay() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    till.micropay("TIME33", 33).await;
    till.query("TIME33").await;
    till.reverse("TIME33").await;
    let calls = entry(&simulator, "TIME33").calls;
    let ms: Vec<u64> = calls.iter().map(|c| c.after_micropay_ms).collect();
    // Each slow answer delays the next call by at least slow_answer.
    assert_eq!(ms[0], 0);
    assert!(ms[1] >= 200 && ms[2] >= 400, "{ms:?}");
}

#[tokio::test]
async fn hmac_sha256_requests_get_hmac_sha256_answers() {
    let simulator = simulator().await;
    let mut till = Till::new(&simulator);
    till.sign_type = SignType::HmacSha256;
    let reply = till.micropay("HMAC1", 1).await;
    let paid = reply.signed(&till.key, SignType::HmacSha256);
    assert_eq!(summary(&paid), "SUCCESS");
    assert!(!verify(&paid, &till.key, SignType::Md5));
    assert_eq!(
        summary(
            &till
                .query("HMAC1")
                .await
                .signed(&till.key, SignType::HmacSha256)
        ),
        "SUCCESS"
    );
}

#[tokio::test]
async fn a_bad_signature_is_refused_unsigned_and_charges_nothing() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let mut request = till.request(&Till::micropay_fields("BADSIGN", "1", &code(1)));
    request.set("total_fee", "2"); // changed after signing
    let refused = till.post(MICROPAY, encode(&request), None).await.fields();
    assert_eq!(summary(&refused), "FAIL:签名失败");
    assert!(refused.get("sign").is_none());

    let wrong_key = Till {
        key: ApiKey::new("0123456789abcdef0123456789abcdef"),
        ..Till::new(&simulator)
    };
    assert_eq!(
        summary(&wrong_key.micropay("BADSIGN", 1).await.fields()),
        "FAIL:签名失败"
    );
    assert!(simulator.ledger().is_empty());
}

#[tokio::test]
async fn malformed_requests_get_wechats_errors() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let url = format!("{}{MICROPAY}", till.base);

    let get = till.http.get(&url).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 200);
    assert_eq!(
        summary(&decode(get.text().await.unwrap().as_bytes()).unwrap()),
        "FAIL:请使用post方法"
    );
    let not_xml = till
        .post(MICROPAY, "{\"total_fee\": 1}".into(), None)
        .await
        .fields();
    assert_eq!(summary(&not_xml), "FAIL:XML格式错误");

    // One field changed (or, when empty, left out) at a time.
    let cases = [
        ("auth_code", "", "LACK_PARAMS", "缺少参数"),
        ("body", "", "LACK_PARAMS", "缺少参数"),
        (
            "auth_code",
            "284539517967686076",
            "AUTH_CODE_INVALID",
            "授权码检验错误",
        ),
        (
            "auth_code",
            "13453951796768607",
            "AUTH_CODE_INVALID",
            "授权码检验错误",
        ),
        ("total_fee", "1.00", "PARAM_ERROR", "参数错误"),
        ("total_fee", "0", "PARAM_ERROR", "参数错误"),
        (
            "out_trade_no",
            "no spaces allowed",
            "PARAM_ERROR",
            "参数错误",
        ),
        (
            "appid",
            "wx0000000000000000",
            "APPID_MCHID_NOT_MATCH",
            "appid和mch_id不匹配",
        ),
        ("mch_id", "1900000109", "MCHID_NOT_EXIST", "MCHID不存在"),
    ];
    for (name, value, err_code, description) in cases {
        let mut extra = Till::micropay_fields("BAD1", "1", &code(1));
        extra.retain(|(n, _)| *n != name);
        extra.push((name, value.to_string()));
        let answer = till.call(MICROPAY, &extra).await;
        let got = (summary(&answer), answer.get("err_code_des"));
        assert_eq!(
            got,
            (err_code.to_string(), Some(description)),
            "{name}={value:?}"
        );
    }
    assert_eq!(
        till.observe(&till.send(QUERY, NOTHING).await),
        "LACK_PARAMS"
    );
    assert!(simulator.ledger().is_empty());
}

#[tokio::test]
async fn the_sandbox_signs_with_the_key_from_getsignkey() {
    let simulator = simulator().await;
    let live = Till::new(&simulator);
    let answer = live.call("/sandboxnew/pay/getsignkey", NOTHING).await;
    let sandbox_key = answer.get("sandbox_signkey").unwrap().to_string();
    assert_eq!(sandbox_key.len(), 32);
    assert!(
        sandbox_key
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_ne!(sandbox_key, DEMO_KEY);
    // The same merchant always gets the same sandbox key.
    assert_eq!(
        live.call("/sandboxnew/pay/getsignkey", NOTHING)
            .await
            .get("sandbox_signkey"),
        Some(sandbox_key.as_str())
    );

    let sandbox = Till {
        key: ApiKey::new(sandbox_key),
        base: format!("{}/sandboxnew", simulator.base_url()),
        ..Till::new(&simulator)
    };
    let paid = sandbox
        .micropay("SANDBOX1", 1)
        .await
        .signed(&sandbox.key, SignType::Md5);
    assert_eq!(summary(&paid), "SUCCESS");
    assert!(
        !verify(&paid, &live.key, SignType::Md5),
        "sandbox answers are signed with the sandbox key"
    );
    assert_eq!(
        summary(
            &sandbox
                .query("SANDBOX1")
                .await
                .signed(&sandbox.key, SignType::Md5)
        ),
        "SUCCESS"
    );

    // The live key is refused in the sandbox, and the sandbox key outside it.
    let live_in_sandbox = Till {
        base: sandbox.base.clone(),
        ..Till::new(&simulator)
    };
    assert_eq!(
        summary(&live_in_sandbox.query("SANDBOX1").await.fields()),
        "FAIL:签名失败"
    );
    let sandbox_outside = Till {
        base: simulator.base_url(),
        key: sandbox.key.clone(),
        ..Till::new(&simulator)
    };
    assert_eq!(
        summary(&sandbox_outside.query("SANDBOX1").await.fields()),
        "FAIL:签名失败"
    );

    // Sandbox scenarios play there too.
    let late = sandbox.micropay("SANDBOX31", 31).await;
    assert_eq!(sandbox.observe(&late), "slow:SUCCESS");
}

#[tokio::test]
async fn the_ledger_is_served_as_json() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    till.micropay("JSON2", 2).await;
    till.micropay("JSON1", 52).await;
    till.reverse("JSON1").await;

    let health = till
        .http
        .get(format!("{}/_simulator/health", till.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (health.status().as_u16(), health.text().await.unwrap()),
        (200, "ok".to_string())
    );

    let response = till
        .http
        .get(format!("{}/_simulator/ledger", till.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let served: Vec<LedgerEntry> = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(served, simulator.ledger());
    let summary: Vec<(&str, &str, u64, u64)> = served
        .iter()
        .map(|e| {
            (
                e.out_trade_no.as_str(),
                e.trade_state.as_str(),
                e.charged,
                e.refunded,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [("JSON1", "REVOKED", 52, 52), ("JSON2", "SUCCESS", 2, 0)]
    );
    assert_eq!(served[0].auth_code_last4, "0052");
    let text = serde_json::to_string(&served).unwrap();
    assert!(
        !text.contains(&code(52)),
        "the ledger never holds a full payment code"
    );
}

/// (foreign, total_fee, trade_state, charged, refunded) of every entry for
/// `out_trade_no`, in ledger order.
fn entries_for(ledger: &[LedgerEntry], out_trade_no: &str) -> Vec<(bool, u64, String, u64, u64)> {
    ledger
        .iter()
        .filter(|e| e.out_trade_no == out_trade_no)
        .map(|e| {
            (
                e.foreign,
                e.total_fee,
                e.trade_state.clone(),
                e.charged,
                e.refunded,
            )
        })
        .collect()
}

fn answers(entry: &LedgerEntry) -> Vec<(&str, &str)> {
    entry
        .calls
        .iter()
        .map(|c| (c.call.as_str(), c.answer.as_str()))
        .collect()
}

#[tokio::test]
async fn a_number_another_party_paid_answers_about_their_order_and_never_charges_ours() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    // A normal payment, for the openid of this till's customers.
    let ours_paid = till
        .call(MICROPAY, &Till::micropay_fields("OWN1", "1", &code(1)))
        .await;
    let our_openid = ours_paid.get("openid").unwrap().to_string();

    for (fee, err_code, description) in [
        (53, "OUT_TRADE_NO_USED", "商户订单号重复"),
        (54, "ORDERPAID", "订单已支付"),
    ] {
        let no = format!("TAKEN{fee}");
        let theirs = fee + 1000;

        let micropay = till
            .micropay(&no, fee)
            .await
            .signed(&till.key, till.sign_type);
        let business: Vec<Option<&str>> =
            ["return_code", "result_code", "err_code", "err_code_des"]
                .iter()
                .map(|name| micropay.get(name))
                .collect();
        assert_eq!(
            business,
            [
                Some("SUCCESS"),
                Some("FAIL"),
                Some(err_code),
                Some(description)
            ],
            "fee {fee}"
        );
        assert_eq!(micropay.get("transaction_id"), None, "fee {fee}");
        assert_eq!(
            entries_for(&simulator.ledger(), &no),
            [
                (false, fee, "NOTPAY".to_string(), 0, 0),
                (true, theirs, "SUCCESS".to_string(), theirs, 0)
            ],
            "fee {fee}: the other party's order is paid, ours is not"
        );

        // To WeChat the number is theirs: the query answers about their order.
        let query = till.call(QUERY, &[("out_trade_no", no.as_str())]).await;
        let foreign = simulator
            .ledger()
            .into_iter()
            .find(|e| e.out_trade_no == no && e.foreign)
            .unwrap();
        let about: Vec<Option<&str>> = ["result_code", "trade_state", "out_trade_no", "total_fee"]
            .iter()
            .map(|name| query.get(name))
            .collect();
        assert_eq!(
            about,
            [
                Some("SUCCESS"),
                Some("SUCCESS"),
                Some(no.as_str()),
                Some(theirs.to_string().as_str())
            ],
            "fee {fee}"
        );
        assert_eq!(
            query.get("transaction_id"),
            foreign.transaction_id.as_deref()
        );
        assert!(query.get("transaction_id").is_some(), "fee {fee}");
        assert_ne!(query.get("openid"), Some(our_openid.as_str()), "fee {fee}");

        // Reversing the number refunds the other party's customer; the
        // query then says REVOKED and no longer shows their payment.
        let reverse = till.call(REVERSE, &[("out_trade_no", no.as_str())]).await;
        assert_eq!(
            (reverse.get("result_code"), reverse.get("recall")),
            (Some("SUCCESS"), Some("N"))
        );
        let after = till.call(QUERY, &[("out_trade_no", no.as_str())]).await;
        assert_eq!(
            (after.get("trade_state"), after.get("total_fee")),
            (Some("REVOKED"), None)
        );

        let ledger = simulator.ledger();
        assert_eq!(
            entries_for(&ledger, &no),
            [
                (false, fee, "NOTPAY".to_string(), 0, 0),
                (true, theirs, "REVOKED".to_string(), theirs, theirs)
            ],
            "fee {fee}: the reverse took the other customer's money back, ours was never charged"
        );
        let mine = ledger.iter().find(|e| e.out_trade_no == no).unwrap();
        assert!(!mine.foreign, "a lookup by number finds our customer first");
        assert_eq!(
            (mine.net_charged(), mine.transaction_id.as_deref()),
            (0, None)
        );
        assert_eq!(mine.auth_code_last4, code(fee)[14..]);
        assert_eq!(
            answers(mine),
            [
                ("micropay", err_code),
                ("orderquery", "SUCCESS"),
                ("reverse", "recall=N"),
                ("orderquery", "REVOKED")
            ]
        );
        let foreign = ledger
            .iter()
            .find(|e| e.out_trade_no == no && e.foreign)
            .unwrap();
        assert_eq!(
            answers(foreign),
            [
                ("orderquery", "SUCCESS"),
                ("reverse", "recall=N"),
                ("orderquery", "REVOKED")
            ]
        );
        assert_ne!(foreign.auth_code_last4, mine.auth_code_last4);
    }

    // Tests running the binary read the same through the control port.
    let response = till
        .http
        .get(format!("{}/_simulator/ledger", simulator.control_url()))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let served: Vec<LedgerEntry> = serde_json::from_str(&text).unwrap();
    assert_eq!(served, simulator.ledger());
    assert_eq!(served.iter().filter(|e| e.foreign).count(), 2, "{text}");
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(raw[0]["out_trade_no"], "OWN1");
    assert_eq!(raw[0]["foreign"], false);
    assert_eq!(raw[2]["out_trade_no"], "TAKEN53");
    assert_eq!(raw[2]["foreign"], true);
    assert_eq!(raw[2]["refunded"], 1053);
    simulator.shutdown().await;
}

#[tokio::test]
async fn scenario_55s_first_query_is_a_signed_answer_about_another_order() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let no = "MISROUTED55";
    let micropay = till
        .micropay(no, 55)
        .await
        .signed(&till.key, till.sign_type);
    assert_eq!(micropay.get("err_code"), Some("USERPAYING"));

    let first = till.call(QUERY, &[("out_trade_no", no)]).await;
    let first_about: Vec<Option<&str>> = ["return_code", "result_code", "trade_state"]
        .iter()
        .map(|name| first.get(name))
        .collect();
    assert_eq!(
        first_about,
        [Some("SUCCESS"), Some("SUCCESS"), Some("CLOSED")]
    );
    let other = first.get("out_trade_no").unwrap();
    assert_ne!(other, no, "the answer is about another order");
    assert!(first.get("transaction_id").is_some());
    // The payment landed meanwhile: a till believing "closed" leaves a charge.
    let paid = entry(&simulator, no);
    assert_eq!((paid.trade_state.as_str(), paid.charged), ("SUCCESS", 55));
    assert!(simulator.ledger().iter().all(|e| e.out_trade_no != other));

    let second = till.call(QUERY, &[("out_trade_no", no)]).await;
    let second_about: Vec<Option<&str>> =
        ["result_code", "trade_state", "out_trade_no", "total_fee"]
            .iter()
            .map(|name| second.get(name))
            .collect();
    assert_eq!(
        second_about,
        [Some("SUCCESS"), Some("SUCCESS"), Some(no), Some("55")]
    );
    assert_eq!(second.get("transaction_id"), paid.transaction_id.as_deref());
    assert_ne!(first.get("transaction_id"), second.get("transaction_id"));

    let order = entry(&simulator, no);
    assert_eq!(
        (
            order.foreign,
            order.trade_state.as_str(),
            order.charged,
            order.refunded
        ),
        (false, "SUCCESS", 55, 0)
    );
    assert_eq!(
        answers(&order),
        [
            ("micropay", "USERPAYING"),
            ("orderquery", "CLOSED(another order)"),
            ("orderquery", "SUCCESS")
        ]
    );
    assert_eq!(simulator.ledger().len(), 1);
    simulator.shutdown().await;
}

#[tokio::test]
async fn shutdown_cuts_slow_answers_short_and_stops_listening() {
    let config = SimulatorConfig {
        slow_answer: Duration::from_secs(30),
        ..SimulatorConfig::demo()
    };
    let simulator = Simulator::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let till = Till::new(&simulator);
    let base = till.base.clone();
    let hanging = tokio::spawn(async move { till.micropay("HANG33", 33).await });
    while simulator.ledger().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    simulator.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let cut_short = hanging.await.unwrap();
    assert!(cut_short.elapsed < Duration::from_secs(5));
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/_simulator/health"))
        .send()
        .await;
    assert!(refused.is_err());
}

const REFUND: &str = "/secapi/pay/refund";
const REFUND_QUERY: &str = "/pay/refundquery";
const DOWNLOAD_BILL: &str = "/pay/downloadbill";

impl Till {
    /// A paid micropay from till `device_info`.
    async fn pay_at(&self, device_info: &str, out_trade_no: &str, fee: u64) -> Fields {
        let mut fields = Self::micropay_fields(out_trade_no, &fee.to_string(), &code(fee));
        fields[0].1 = device_info.to_string();
        let extra: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(MICROPAY, encode(&self.request(&extra)), None)
            .await
            .signed(&self.key, self.sign_type)
    }

    async fn refund(
        &self,
        out_trade_no: &str,
        out_refund_no: &str,
        total: u64,
        fee: u64,
    ) -> Fields {
        self.call(
            REFUND,
            &[
                ("out_trade_no", out_trade_no),
                ("out_refund_no", out_refund_no),
                ("total_fee", &total.to_string()),
                ("refund_fee", &fee.to_string()),
                ("refund_desc", "退货"),
            ],
        )
        .await
    }

    async fn refund_query(&self, by: &str, value: &str) -> Fields {
        self.call(REFUND_QUERY, &[(by, value)]).await
    }
}

/// A refund answer in short: the err_code, or the refund_status of a
/// refundquery, or SUCCESS.
fn refund_summary(fields: &Fields) -> String {
    match fields.get("refund_status_0") {
        Some(status) if fields.get("result_code") == Some("SUCCESS") => status.to_string(),
        _ => summary(fields),
    }
}

#[tokio::test]
async fn one_out_refund_no_refunds_once_and_never_more_than_the_order() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let paid = till.pay_at("T01", "RF-ORDER1", 1000).await;

    let first = till.refund("RF-ORDER1", "RF-1", 1000, 600).await;
    assert_eq!(summary(&first), "SUCCESS");
    for (name, value) in [
        ("out_trade_no", "RF-ORDER1"),
        ("out_refund_no", "RF-1"),
        ("refund_fee", "600"),
        ("total_fee", "1000"),
        ("cash_fee", "1000"),
        ("appid", DEMO_APPID),
        ("mch_id", DEMO_MCH_ID),
    ] {
        assert_eq!(first.get(name), Some(value), "{name}");
    }
    assert_eq!(first.get("transaction_id"), paid.get("transaction_id"));
    let refund_id = first.get("refund_id").unwrap().to_string();
    assert_eq!(refund_id.len(), 28);

    // The same out_refund_no again: the same refund, not a second one.
    let again = till.refund("RF-ORDER1", "RF-1", 1000, 600).await;
    assert_eq!(again.get("refund_id"), Some(refund_id.as_str()));
    // Another amount under that number is refused, and so is more than remains.
    let changed = till.refund("RF-ORDER1", "RF-1", 1000, 500).await;
    assert_eq!(summary(&changed), "INVALID_REQUEST");
    let over = till.refund("RF-ORDER1", "RF-2", 1000, 401).await;
    assert_eq!(
        (summary(&over).as_str(), over.get("err_code_des")),
        ("INVALID_REQUEST", Some("申请退款金额超过订单可退金额"))
    );
    let wrong_total = till.refund("RF-ORDER1", "RF-2", 999, 400).await;
    assert_eq!(summary(&wrong_total), "INVALID_REQUEST");
    let rest = till.refund("RF-ORDER1", "RF-2", 1000, 400).await;
    assert_eq!(summary(&rest), "SUCCESS");
    assert_ne!(rest.get("refund_id"), Some(refund_id.as_str()));

    let entry = entry(&simulator, "RF-ORDER1");
    let refunds: Vec<_> = entry
        .refunds
        .iter()
        .map(|r| {
            (
                r.out_refund_no.as_str(),
                r.refund_fee,
                r.refund_status.as_str(),
            )
        })
        .collect();
    assert_eq!(
        refunds,
        [("RF-1", 600, "SUCCESS"), ("RF-2", 400, "SUCCESS")]
    );
    assert_eq!(
        (entry.trade_state.as_str(), entry.charged, entry.refunded),
        ("REFUND", 1000, 1000)
    );
    assert_eq!(entry.device_info, "T01");
    let query = till.call(QUERY, &[("out_trade_no", "RF-ORDER1")]).await;
    assert_eq!(query.get("trade_state"), Some("REFUND"));

    // Orders that cannot be refunded, and requests of the wrong form.
    assert_eq!(
        summary(&till.refund("NO-SUCH-ORDER", "RF-3", 1, 1).await),
        "ORDERNOTEXIST"
    );
    till.micropay("RF-REVERSED", 41).await;
    till.reverse("RF-REVERSED").await;
    let reversed = till.refund("RF-REVERSED", "RF-4", 41, 1).await;
    assert_eq!(
        (summary(&reversed).as_str(), reversed.get("err_code_des")),
        ("INVALID_REQUEST", Some("订单已撤销，不能退款"))
    );
    let long = "R".repeat(65);
    assert_eq!(
        summary(&till.refund("RF-ORDER1", &long, 1000, 1).await),
        "PARAM_ERROR"
    );
    assert_eq!(
        summary(&till.refund("RF-ORDER1", "RF-5", 1000, 0).await),
        "PARAM_ERROR"
    );
    let lacking = till
        .call(
            REFUND,
            &[("out_trade_no", "RF-ORDER1"), ("total_fee", "1000")],
        )
        .await;
    assert_eq!(summary(&lacking), "LACK_PARAMS");
    // Signed like every other call: a wrong key is refused unsigned.
    let forged = Till {
        key: ApiKey::new("not the key"),
        ..Till::new(&simulator)
    };
    let refused = forged
        .send(
            REFUND,
            &[
                ("out_trade_no", "RF-ORDER1"),
                ("out_refund_no", "RF-6"),
                ("total_fee", "1000"),
                ("refund_fee", "1"),
            ],
        )
        .await;
    assert_eq!(summary(&refused.fields()), "FAIL:签名失败");
    assert_eq!(entry_refunds(&simulator, "RF-ORDER1"), 2);
    simulator.shutdown().await;
}

fn entry_refunds(simulator: &Simulator, out_trade_no: &str) -> usize {
    entry(simulator, out_trade_no).refunds.len()
}

/// (refund_fee, the refund's answer, its retry with the same out_refund_no,
/// the refundquery answers in turn, counted in `refunded`).
type RefundScript = (
    u64,
    &'static str,
    &'static str,
    &'static [&'static str],
    bool,
);

#[rustfmt::skip]
const REFUND_SCRIPTS: &[RefundScript] = &[
    (7, "SUCCESS", "SUCCESS", &["PROCESSING", "SUCCESS", "SUCCESS"], true),
    (8, "SYSTEMERROR", "SUCCESS", &["SUCCESS"], true),
    (9, "NOTENOUGH", "NOTENOUGH", &["REFUNDNOTEXIST"], false),
    (10, "SUCCESS", "SUCCESS", &["CHANGE", "CHANGE"], true),
    (11, "SUCCESS", "SUCCESS", &["REFUNDCLOSE"], false),
    (25, "SUCCESS", "SUCCESS", &["SUCCESS"], true),
];

#[tokio::test]
async fn every_refund_fee_row_plays_its_script() {
    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let scripted: BTreeSet<u64> = REFUND_SCRIPTS.iter().map(|s| s.0).collect();
    for (fee, _, _) in scanpay::simulator::refund_scenario_table() {
        assert!(
            scripted.contains(fee),
            "refund fee {fee} has no script here"
        );
    }
    for &(fee, answer, retry, queries, counted) in REFUND_SCRIPTS {
        let no = format!("RS{fee}");
        let refund_no = format!("RS{fee}-1");
        till.pay_at("T01", &no, 100).await;
        let first = till.refund(&no, &refund_no, 100, fee).await;
        assert_eq!(summary(&first), answer, "fee {fee}");
        let second = till.refund(&no, &refund_no, 100, fee).await;
        assert_eq!(summary(&second), retry, "fee {fee}: retry");
        if retry == "SUCCESS" && answer == "SUCCESS" {
            assert_eq!(first.get("refund_id"), second.get("refund_id"), "fee {fee}");
        }
        let seen: Vec<String> = refund_queries(&till, &refund_no, queries.len()).await;
        assert_eq!(seen, queries, "fee {fee}");
        let entry = entry(&simulator, &no);
        assert_eq!(
            entry.refunded,
            if counted { fee } else { 0 },
            "fee {fee}: {entry:?}"
        );
        assert!(entry.refunds.len() <= 1, "fee {fee}: one refund at most");
    }
    // By order, refundquery lists every refund of it; by refund_id, one.
    till.pay_at("T01", "RS-MANY", 300).await;
    let a = till.refund("RS-MANY", "RS-MANY-A", 300, 100).await;
    till.refund("RS-MANY", "RS-MANY-B", 300, 7).await;
    let all = till.refund_query("out_trade_no", "RS-MANY").await;
    let listed: Vec<_> = (0..2)
        .map(|n| {
            (
                all.get(&format!("out_refund_no_{n}")).unwrap().to_string(),
                all.get(&format!("refund_fee_{n}")).unwrap().to_string(),
                all.get(&format!("refund_status_{n}")).unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(all.get("refund_count"), Some("2"));
    assert_eq!(all.get("total_fee"), Some("300"));
    assert_eq!(
        listed,
        [
            ("RS-MANY-A".into(), "100".into(), "SUCCESS".into()),
            ("RS-MANY-B".into(), "7".into(), "PROCESSING".into())
        ]
    );
    let by_id = till
        .refund_query("refund_id", a.get("refund_id").unwrap())
        .await;
    assert_eq!(
        (by_id.get("refund_count"), by_id.get("out_refund_no_0")),
        (Some("1"), Some("RS-MANY-A"))
    );
    assert!(by_id.get("refund_success_time_0").is_some());
    assert_eq!(
        refund_summary(&till.refund_query("out_trade_no", "RS25").await),
        "SUCCESS"
    );
    assert_eq!(
        refund_summary(&till.refund_query("out_refund_no", "NEVER").await),
        "REFUNDNOTEXIST"
    );
    simulator.shutdown().await;
}

/// The refundquery answers about `out_refund_no`, `count` times in turn.
async fn refund_queries(till: &Till, out_refund_no: &str, count: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..count {
        let answer = till.refund_query("out_refund_no", out_refund_no).await;
        if answer.get("result_code") == Some("SUCCESS") {
            assert_eq!(answer.get("refund_count"), Some("1"));
            assert_eq!(answer.get("out_refund_no_0"), Some(out_refund_no));
        }
        seen.push(refund_summary(&answer));
    }
    seen
}

fn beijing_today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+8))
        .date()
}

fn bill_date(date: time::Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A day of two tills: paid, refunded, reversed after the charge, reversed
/// before any charge. None when the day (Beijing) changed meanwhile.
async fn a_day_of_two_tills(simulator: &Simulator, till: &Till) -> Option<time::Date> {
    let day = beijing_today();
    till.pay_at("T01", "BILL-A", 1234).await;
    till.refund("BILL-A", "BILL-A-R1", 1234, 500).await;
    // Scenario 3: paid by two coupons, one of them 免充值.
    till.pay_at("T02", "BILL-B", 3).await;
    // Scenario 52: the customer pays just as the reverse arrives.
    let mut fields = Till::micropay_fields("BILL-C", "52", &code(52));
    fields[0].1 = "T02".into();
    let extra: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    till.post(MICROPAY, encode(&till.request(&extra)), None)
        .await;
    till.reverse("BILL-C").await;
    // Never charged: not in the bill.
    till.micropay("BILL-D", 41).await;
    till.reverse("BILL-D").await;
    let entry = entry(simulator, "BILL-C");
    assert_eq!((entry.charged, entry.refunded), (52, 52));
    (beijing_today() == day).then_some(day)
}

async fn download(till: &Till, extra: &[(&str, &str)]) -> Vec<u8> {
    let response = till
        .http
        .post(format!("{}{DOWNLOAD_BILL}", till.base))
        .body(encode(&till.request(extra)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn the_days_bill_covers_every_till_and_matches_the_ledger() {
    use scanpay::wechat::{BillAnswer, TradeState, classify_download, parse_bill};

    let mut day = None;
    let mut simulator = None;
    for _ in 0..2 {
        let fresh = self::simulator().await;
        let till = Till::new(&fresh);
        day = a_day_of_two_tills(&fresh, &till).await;
        simulator = Some(fresh);
        if day.is_some() {
            break;
        }
    }
    let (simulator, day) = (
        simulator.unwrap(),
        day.expect("a day that did not change twice"),
    );
    let till = Till::new(&simulator);
    let date = bill_date(day);

    let text = download(&till, &[("bill_date", &date), ("bill_type", "ALL")]).await;
    let plain = String::from_utf8(text.clone()).unwrap();
    assert!(plain.starts_with(scanpay::simulator::ALL_HEADER), "{plain}");
    assert!(plain.contains(scanpay::simulator::SUMMARY_HEADER));
    assert!(plain.ends_with("\r\n") && !plain.replace("\r\n", "").contains('\n'));
    for line in plain
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("总交易单数"))
    {
        assert!(
            line.trim_end_matches('\r').split(",`").count() >= 7 && line.starts_with('`'),
            "every field of a row starts with a backtick: {line}"
        );
    }

    let bill = parse_bill(&text).unwrap();
    let ledger = simulator.ledger();
    let tx = |no: &str| {
        ledger
            .iter()
            .find(|e| e.out_trade_no == no)
            .and_then(|e| e.transaction_id.clone())
    };
    let refund_id = entry(&simulator, "BILL-A").refunds[0].refund_id.clone();
    let rows: Vec<_> = bill
        .rows
        .iter()
        .map(|r| {
            (
                r.out_trade_no.as_str(),
                r.device_info.as_deref(),
                r.trade_state.clone(),
                r.total_fee.0,
                r.settlement_fee.map(|f| f.0),
                r.coupon_fee.map(|f| f.0),
                r.refund_fee.map(|f| f.0),
                r.out_refund_no.as_deref(),
                r.refund_id.clone(),
                r.transaction_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "BILL-A",
                Some("T01"),
                TradeState::Success,
                1234,
                Some(1234),
                Some(0),
                Some(0),
                None,
                None,
                tx("BILL-A")
            ),
            (
                "BILL-A",
                Some("T01"),
                TradeState::Refund,
                0,
                Some(0),
                Some(0),
                Some(500),
                Some("BILL-A-R1"),
                Some(refund_id),
                tx("BILL-A")
            ),
            (
                "BILL-B",
                Some("T02"),
                TradeState::Success,
                3,
                Some(1),
                Some(3),
                Some(0),
                None,
                None,
                tx("BILL-B")
            ),
            (
                "BILL-C",
                Some("T02"),
                TradeState::Revoked,
                52,
                Some(52),
                Some(0),
                Some(52),
                None,
                None,
                tx("BILL-C")
            ),
        ]
    );
    assert_eq!(bill.rows[1].refund_status.as_deref(), Some("SUCCESS"));
    assert_eq!(bill.rows[0].body.as_deref(), Some("scanpay test"));
    assert!(bill.rows.iter().all(|r| r.trade_time.starts_with(&format!(
        "{:04}-{:02}-{:02} ",
        day.year(),
        u8::from(day.month()),
        day.day()
    ))));
    // The bill's net is the ledger's: what the customers paid, less what they got back.
    let summary = bill.summary.clone().unwrap();
    let net: u64 = ledger.iter().map(|e| e.net_charged()).sum();
    assert_eq!(summary.trade_count, 4);
    assert_eq!(
        summary.order_total.unwrap().0 - summary.refund_total.0,
        net,
        "{summary:?}"
    );
    assert_eq!(
        (summary.settlement_total.0, summary.refund_total.0),
        (1234 + 1 + 52, 500 + 52)
    );

    // GZIP: the same bill, through the till's own client.
    let client = bill_client(&simulator);
    let merchant = SimulatorConfig::demo().merchant(SignType::HmacSha256);
    let request = scanpay::wechat::api::download_bill_request(&merchant, day, true);
    let gzipped = client.download_bill(&request).await.unwrap();
    assert_eq!(&gzipped[..2], &[0x1f, 0x8b]);
    assert_eq!(
        classify_download(&gzipped).unwrap(),
        BillAnswer::Bill(bill.clone())
    );

    // SUCCESS and REFUND bills hold those rows only.
    for (kind, state) in [
        ("SUCCESS", TradeState::Success),
        ("REFUND", TradeState::Refund),
    ] {
        let only = parse_bill(&download(&till, &[("bill_date", &date), ("bill_type", kind)]).await)
            .unwrap();
        assert!(
            !only.rows.is_empty() && only.rows.iter().all(|r| r.trade_state == state),
            "{kind}"
        );
    }

    // A day without trades, a malformed day, and a bill not built yet.
    let yesterday = bill_date(day.previous_day().unwrap());
    let none = download(&till, &[("bill_date", &yesterday), ("bill_type", "ALL")]).await;
    let fields = decode(&none).unwrap();
    assert_eq!(
        (
            fields.get("return_code"),
            fields.get("return_msg"),
            fields.get("error_code")
        ),
        (Some("FAIL"), Some("No Bill Exist"), Some("20002"))
    );
    let no_bill =
        scanpay::wechat::api::download_bill_request(&merchant, day.previous_day().unwrap(), false);
    assert_eq!(
        classify_download(&client.download_bill(&no_bill).await.unwrap()).unwrap(),
        BillAnswer::NoBill
    );
    assert_eq!(
        classify_download(&download(&till, &[("bill_date", "2025-03-01")]).await).unwrap(),
        BillAnswer::Failed("invalid bill_date".into())
    );
    let switched = till
        .http
        .post(format!("{}/_simulator/bill", simulator.control_url()))
        .body(r#"{"creating": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status().as_u16(), 200);
    assert_eq!(
        classify_download(&client.download_bill(&request).await.unwrap()).unwrap(),
        BillAnswer::NotYet
    );
    simulator.set_bill_creating(false);
    assert!(matches!(
        classify_download(&client.download_bill(&request).await.unwrap()).unwrap(),
        BillAnswer::Bill(_)
    ));
    simulator.shutdown().await;
}

#[tokio::test]
async fn a_bill_larger_than_any_xml_answer_is_read_whole_by_the_client() {
    use scanpay::wechat::{BillAnswer, classify_download};
    // About 240 bytes a row: well over the 64 KiB cap of XML answers.
    const ORDERS: u64 = 400;

    let simulator = simulator().await;
    let till = Till::new(&simulator);
    let day = beijing_today();
    for n in 0..ORDERS {
        till.pay_at("T03", &format!("BIG{n:04}"), 100 + n).await;
    }
    let client = bill_client(&simulator);
    let merchant = SimulatorConfig::demo().merchant(SignType::Md5);
    // Every day the orders fell on: one, unless the test ran across midnight in Beijing.
    let days: BTreeSet<_> = [day, beijing_today()].into_iter().collect();
    let mut rows = 0;
    for &date in &days {
        let request = scanpay::wechat::api::download_bill_request(&merchant, date, false);
        let body = client.download_bill(&request).await.unwrap();
        if days.len() == 1 {
            assert!(
                body.len() > scanpay::wechat::xml::MAX_BODY,
                "{}",
                body.len()
            );
        }
        if let BillAnswer::Bill(bill) = classify_download(&body).unwrap() {
            rows += bill.rows.len();
        }
    }
    assert_eq!(rows, ORDERS as usize);
    simulator.shutdown().await;
}
