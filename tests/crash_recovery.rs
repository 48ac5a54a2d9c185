//! Crash recovery, proven against the gateway's ledger. Each case runs
//! `scanpay pay` as its own process with `SCANPAY_FAULT` set, so it aborts
//! (no unwinding, no flush) at a named point of the payment path; then a new
//! `scanpay pay` starts on the same journal, which recovers before it takes
//! its own payment. A separate `scanpay simulate` process keeps the ledger.
//!
//! After every case: no order is left open or unresolved; nobody is charged
//! without a PAID order (or keeps a charge after a completed reverse); no
//! PAID order is unknown to the gateway as paid; no reverse reached the
//! gateway earlier than 15 s (scaled: 150 ms) after the micropay; and no
//! file holds a payment code or the API key.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use scanpay::journal::{Journal, OrderState};
use scanpay::simulator::LedgerEntry;

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

struct Gateway {
    process: Child,
    base_url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.env_remove("SCANPAY_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("SCANPAY_FAULT");
    cmd
}

fn start_gateway() -> Gateway {
    let mut process = binary()
        .args(["simulate", "--listen", "127.0.0.1:0", "--slow-ms", "400"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(process.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    std::thread::spawn(move || for _ in stdout.lines() {});
    let base_url = first.trim().rsplit(' ').next().unwrap().to_string();
    Gateway { process, base_url }
}

fn ledger(gateway: &Gateway) -> Vec<LedgerEntry> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let body = reqwest::get(format!("{}/_simulator/ledger", gateway.base_url))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    })
}

/// `scanpay pay` as till `id` of a merchant talking to `gateway`, timings ÷ 100.
/// Each case is its own till: order numbers are unique per till id.
fn till(id: &str, dir: &Path, gateway: &Gateway) -> Command {
    let mut cmd = binary();
    cmd.env("SCANPAY_TILL_ID", id)
        .env("SCANPAY_JOURNAL_PATH", dir.join("journal.sqlite3"))
        .env("SCANPAY_LOG_DIR", dir.join("logs"))
        .env("SCANPAY_LOG_LEVEL", "debug")
        .env("SCANPAY_GATEWAY_MODE", "wechat")
        .env("SCANPAY_GATEWAY_BASE_URL", &gateway.base_url)
        .env("SCANPAY_MERCHANT_APPID", "wxd930ea5d5a258f4f")
        .env("SCANPAY_MERCHANT_MCH_ID", "10000100")
        .env("SCANPAY_API_KEY", KEY)
        // None of these scenarios answers late: a generous timeout keeps a
        // loaded CI machine from turning the matrix into an outage test.
        .env("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "2000")
        .env("SCANPAY_PAYMENT_QUERY_AFTER_UNKNOWN_MS", "50")
        .env("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "100")
        .env("SCANPAY_PAYMENT_DEADLINE_MS", "300")
        .env("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "150")
        .env("SCANPAY_PAYMENT_REVERSE_RETRY_INTERVAL_MS", "50")
        .env("SCANPAY_PAYMENT_REVERSE_MAX_ATTEMPTS", "3");
    cmd
}

/// Checks the journal in `dir` against the ledger for every order of this
/// till; returns how many orders were checked.
fn assert_invariants(dir: &Path, ledger: &[LedgerEntry], case: &str) -> usize {
    let journal = Journal::open(&dir.join("journal.sqlite3")).unwrap();
    let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
    for order in &orders {
        let no = order.out_trade_no.as_str();
        assert!(
            !matches!(order.state, OrderState::Open | OrderState::NeedsAttention),
            "{case}: {no} left {:?}",
            order.state
        );
        let entry = ledger.iter().find(|e| e.out_trade_no == no);
        let net = entry.map_or(0, |e| e.net_charged());
        if order.state == OrderState::Paid {
            let entry = entry.unwrap_or_else(|| panic!("{case}: PAID {no} unknown to the gateway"));
            assert_eq!(
                entry.trade_state, "SUCCESS",
                "{case}: PAID {no} not paid at the gateway: {entry:?}"
            );
            assert_eq!(net, order.total_fee.0, "{case}: {no}");
            assert_eq!(order.transaction_id, entry.transaction_id, "{case}: {no}");
        } else {
            assert_eq!(
                net, 0,
                "{case}: {no} is {:?} but the customer keeps a charge: {entry:?}",
                order.state
            );
        }
        if let Some(entry) = entry {
            let sent_micropay = entry.calls.iter().any(|c| c.call == "micropay");
            for call in entry
                .calls
                .iter()
                .filter(|c| c.call == "reverse" && sent_micropay)
            {
                // 10 ms allows for the micropay's own transit on loopback.
                assert!(
                    call.after_micropay_ms + 10 >= 150,
                    "{case}: {no} reversed {} ms after the micropay",
                    call.after_micropay_ms
                );
            }
        }
    }
    orders.len()
}

fn assert_no_secrets(dir: &Path, code: &str, case: &str) {
    let mut files = vec![dir.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        for secret in [code, KEY] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{case}: {} holds {secret}",
                path.display()
            );
        }
    }
}

const POINTS: [&str; 6] = [
    "order-journaled",
    "intent-journaled",
    "answer-received",
    "answer-journaled",
    "answer-received:2",
    "reverse-journaled",
];
/// Paid at once, USERPAYING then paid, USERPAYING until reversed, SYSTEMERROR then paid.
const SCENARIOS: [&str; 4] = ["12.34", "0.40", "0.41", "0.42"];

#[test]
fn every_crash_point_in_every_main_scenario_is_recovered_without_double_charging() {
    let gateway = start_gateway();
    let cases: Vec<(usize, &str, &str)> = POINTS
        .iter()
        .flat_map(|point| SCENARIOS.iter().map(move |amount| (*point, *amount)))
        .enumerate()
        .map(|(i, (point, amount))| (i, point, amount))
        .collect();
    let dirs: Vec<tempfile::TempDir> = cases.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    // The cases are independent (own journal, own codes): four at a time.
    let work: Vec<_> = cases.iter().zip(&dirs).collect();
    for batch in work.chunks(4) {
        std::thread::scope(|scope| {
            for ((i, point, amount), dir) in batch.iter().copied() {
                let gateway = &gateway;
                scope.spawn(move || {
                    let case = format!("{amount} crashed at {point}");
                    let code = format!("13{:016}", 4_000_000 + i * 2);
                    let till_id = format!("C{i}");
                    let crashed = till(&till_id, dir.path(), gateway)
                        .env("SCANPAY_FAULT", point)
                        .args(["pay", "--amount", amount, "--auth-code", &code])
                        .output()
                        .unwrap();
                    let aborted = crashed.status.code().is_none();
                    if point.starts_with("intent-journaled") && aborted {
                        // The intent is durable before the request leaves: the
                        // journal has the order, the gateway never saw it.
                        let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
                        let orders = journal.unfinished().unwrap();
                        assert_eq!(orders.len(), 1, "{case}");
                        assert!(
                            orders[0].micropay_sent_at_ms.is_some(),
                            "{case}: the intent was not committed"
                        );
                    }
                    let next = format!("13{:016}", 4_000_000 + i * 2 + 1);
                    let restarted = till(&till_id, dir.path(), gateway)
                        .args(["pay", "--amount", "0.01", "--auth-code", &next])
                        .output()
                        .unwrap();
                    assert_eq!(
                        restarted.status.code(),
                        Some(0),
                        "{case}: the restart failed:\n{}",
                        String::from_utf8_lossy(&restarted.stderr)
                    );
                    if aborted {
                        let stderr = String::from_utf8_lossy(&restarted.stderr);
                        assert!(
                            stderr.contains("recovering 1 interrupted order"),
                            "{case}: no recovery on start:\n{stderr}"
                        );
                    }
                });
            }
        });
    }
    let ledger = ledger(&gateway);
    let mut checked = 0;
    for ((i, point, amount), dir) in cases.iter().zip(&dirs) {
        let case = format!("{amount} crashed at {point}");
        checked += assert_invariants(dir.path(), &ledger, &case);
        assert_no_secrets(dir.path(), &format!("13{:016}", 4_000_000 + i * 2), &case);
    }
    assert_eq!(
        checked,
        cases.len() * 2,
        "every case journaled its crashed order and the restart's"
    );
}
