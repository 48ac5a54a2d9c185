//! The real binary as separate processes: a `scanpay simulate` gateway whose
//! ledger outlives every till, tills configured like a real merchant's, and
//! the checks that the journal and the ledger agree.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use scanpay::journal::{Journal, OrderState};
use scanpay::simulator::LedgerEntry;

pub const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

pub struct Gateway {
    process: Child,
    pub base_url: String,
    /// `/_simulator/*`, reachable whatever the fault (even `refuse`).
    pub control_url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scanpay"));
    cmd.env_remove("SCANPAY_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("SCANPAY_FAULT");
    cmd
}

/// WeChat's payment timings ÷ 100: query 50 ms after an unclear answer, poll
/// every 100 ms up to 300 ms, reverse never before 150 ms.
pub fn scaled_timings(cmd: &mut Command) -> &mut Command {
    cmd.env("SCANPAY_PAYMENT_QUERY_AFTER_UNKNOWN_MS", "50")
        .env("SCANPAY_PAYMENT_POLL_INTERVAL_MS", "100")
        .env("SCANPAY_PAYMENT_DEADLINE_MS", "300")
        .env("SCANPAY_PAYMENT_REVERSE_NOT_BEFORE_MS", "150")
        .env("SCANPAY_PAYMENT_REVERSE_RETRY_INTERVAL_MS", "50")
        .env("SCANPAY_PAYMENT_REVERSE_MAX_ATTEMPTS", "3")
}

pub fn start_gateway() -> Gateway {
    let mut process = binary()
        .args(["simulate", "--listen", "127.0.0.1:0", "--slow-ms", "400"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(process.stdout.take().unwrap());
    let mut url = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim().rsplit(' ').next().unwrap().to_string()
    };
    let (base_url, control_url) = (url(), url());
    std::thread::spawn(move || for _ in stdout.lines() {});
    Gateway {
        process,
        base_url,
        control_url,
    }
}

pub fn ledger(gateway: &Gateway) -> Vec<LedgerEntry> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let body = reqwest::get(format!("{}/_simulator/ledger", gateway.control_url))
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
pub fn till(id: &str, dir: &Path, gateway: &Gateway) -> Command {
    let mut cmd = binary();
    scaled_timings(&mut cmd);
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
        .env("SCANPAY_GATEWAY_READ_TIMEOUT_MS", "2000");
    cmd
}

/// Checks the journal in `dir` against the ledger for every order of this
/// till; returns how many orders were checked.
pub fn assert_invariants(dir: &Path, ledger: &[LedgerEntry], case: &str) -> usize {
    let journal = Journal::open(&dir.join("journal.sqlite3")).unwrap();
    let orders = journal.orders_between(i64::MIN, i64::MAX).unwrap();
    for order in &orders {
        let no = order.out_trade_no.as_str();
        assert!(
            !matches!(order.state, OrderState::Open | OrderState::NeedsAttention),
            "{case}: {no} left {:?}",
            order.state
        );
        for foreign in ledger.iter().filter(|e| e.foreign && e.out_trade_no == no) {
            assert_eq!(
                foreign.refunded, 0,
                "{case}: {no} reversed another party's order under our number: {foreign:?}"
            );
        }
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

pub fn assert_no_secrets(dir: &Path, code: &str, case: &str) {
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

/// Switches the gateway's network fault (`{"mode": "refuse"}` and so on).
pub fn set_fault(gateway: &Gateway, fault: serde_json::Value) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/_simulator/fault", gateway.control_url))
            .header("content-type", "application/json")
            .body(fault.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "the simulator refused the fault {fault}"
        );
    });
}

/// A command's stdout as JSON; fails with both its streams if it is not.
pub fn json_of(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Pays `amount` as till `id` (its journal in `dir`) with `scanpay pay
/// --json`, payment code `13` and `code` in 16 digits: (exit code, out_trade_no).
pub fn pay(
    id: &str,
    dir: &Path,
    gateway: &Gateway,
    amount: &str,
    code: u64,
) -> (Option<i32>, String) {
    let output = till(id, dir, gateway)
        .args(["pay", "--json", "--amount", amount, "--auth-code"])
        .arg(format!("13{code:016}"))
        .output()
        .unwrap();
    let no = json_of(&output)["out_trade_no"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (output.status.code(), no)
}

/// Today in Beijing: the day of the simulator's bill.
pub fn bill_today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .date()
}
