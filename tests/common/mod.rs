//! Shared set-up for the end-to-end tests: the real simulator on 127.0.0.1,
//! a real journal file in a temp dir, and timings scaled down 100 times.
#![allow(dead_code)] // each test binary uses a different part of this

pub mod hostile;
pub mod postgres;
pub mod process;
pub mod pty;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

use scanpay::domain::{AuthCode, Fen, TillId};
use scanpay::journal::{EventRow, Journal, JournalWriter, OrderRow, OrderState};
use scanpay::payment::{Engine, PaymentRequest, PaymentResult, Progress, Status, Timings};
use scanpay::simulator::{LedgerEntry, Simulator, SimulatorConfig};
use scanpay::wechat::SignType;
use scanpay::wechat::api::Merchant;
use scanpay::wechat::client::{ClientSettings, GatewayClient};
use scanpay::wechat::messages::Language;
use tokio::sync::{mpsc, watch};

/// WeChat's rules ÷ 100: query after 50 ms, every 100 ms, deadline 300 ms,
/// no reverse before 150 ms.
pub fn scaled() -> Timings {
    Timings {
        query_after_unknown: Duration::from_millis(50),
        poll_interval: Duration::from_millis(100),
        deadline: Duration::from_millis(300),
        reverse_not_before: Duration::from_millis(150),
        reverse_retry_interval: Duration::from_millis(50),
        reverse_max_attempts: 3,
    }
}

pub const READ_TIMEOUT: Duration = Duration::from_millis(150);
pub const SLOW_ANSWER: Duration = Duration::from_millis(400);

pub struct Till {
    pub simulator: Simulator,
    pub engine: Engine,
    pub dir: tempfile::TempDir,
}

pub fn demo_merchant(sign_type: SignType) -> Merchant {
    SimulatorConfig::demo().merchant(sign_type)
}

pub fn client_settings(base_url: String) -> ClientSettings {
    ClientSettings {
        base_url,
        sandbox: false,
        connect_timeout: Duration::from_millis(200),
        read_timeout: READ_TIMEOUT,
        client_identity_pem: None,
        extra_root_pem: None,
        negative_test: None,
    }
}

pub async fn start_simulator() -> Simulator {
    let config = SimulatorConfig {
        slow_answer: SLOW_ANSWER,
        ..SimulatorConfig::demo()
    };
    Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .expect("simulator starts")
}

/// A till talking to a fresh simulator with the given merchant and client settings.
pub async fn till_with(merchant: Merchant, adjust: impl FnOnce(&mut ClientSettings)) -> Till {
    let simulator = start_simulator().await;
    let mut settings = client_settings(simulator.base_url());
    adjust(&mut settings);
    till_on(simulator, GatewayClient::new(&settings).unwrap(), merchant)
}

/// A till with a fresh journal whose engine talks through `gateway` (which
/// need not be `simulator`: a hostile server, a dead port).
pub fn till_on(simulator: Simulator, gateway: GatewayClient, merchant: Merchant) -> Till {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
    let engine = Engine {
        gateway,
        merchant,
        journal: JournalWriter::spawn(journal),
        timings: scaled(),
        till: TillId::parse("T01").unwrap(),
        spbill_create_ip: "127.0.0.1".into(),
        store_offset: time::UtcOffset::from_hms(8, 0, 0).unwrap(),
        language: Language::Chinese,
    };
    Till {
        simulator,
        engine,
        dir,
    }
}

pub async fn till() -> Till {
    till_with(demo_merchant(SignType::Md5), |_| {}).await
}

/// A distinct valid payment code per call, so tests never share one.
pub fn code() -> AuthCode {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() as u64 * 1000;
    AuthCode::parse(&format!("13{:016}", n % 10_000_000_000_000_000)).unwrap()
}

impl Till {
    pub async fn pay(&self, fen: u64) -> PaymentResult {
        self.pay_with(fen, code(), None).await
    }

    /// Pays, pressing cancel `cancel_after` the micropay's answer (the
    /// customer is then paying), if given: counted from the answer, not the
    /// start, so a loaded machine cannot turn it into a cancel before sending.
    pub async fn pay_with(
        &self,
        fen: u64,
        auth_code: AuthCode,
        cancel_after: Option<Duration>,
    ) -> PaymentResult {
        let (progress, mut updates) = mpsc::unbounded_channel();
        let (cancel, cancel_rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut cancel = cancel_after.map(|after| (after, cancel));
            while let Some(update) = updates.recv().await {
                let answered = matches!(
                    update,
                    Progress::Status { ref status, .. } if *status != Status::Sending
                );
                if let Some((after, sender)) = cancel.take_if(|_| answered) {
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = sender.send(true);
                        // Keep the sender alive so the engine does not see it dropped.
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    });
                }
            }
        });
        let request = PaymentRequest {
            amount: Fen(fen),
            body: "测试商品 <&>".into(),
            auth_code,
        };
        self.engine
            .pay(request, progress, cancel_rx)
            .await
            .expect("the journal works")
    }

    /// A read-only connection of its own, as the manager's reports use.
    pub fn reader(&self) -> Journal {
        Journal::open_read_only(&self.dir.path().join("journal.sqlite3")).unwrap()
    }

    pub fn order(&self, result: &PaymentResult) -> OrderRow {
        self.reader()
            .order_by_trade_no(result.out_trade_no.as_str())
            .unwrap()
            .expect("the order is journaled")
    }

    pub fn events(&self, result: &PaymentResult) -> Vec<EventRow> {
        let order = self.order(result);
        self.reader().events(order.id).unwrap()
    }

    pub fn ledger(&self, result: &PaymentResult) -> Option<LedgerEntry> {
        self.simulator
            .ledger()
            .into_iter()
            .find(|e| e.out_trade_no == result.out_trade_no.as_str())
    }

    /// Nobody charged without a PAID order, no PAID order the gateway does
    /// not know as paid, and the transaction ids agree.
    pub fn assert_agreement(&self, result: &PaymentResult) {
        let order = self.order(result);
        for foreign in self
            .simulator
            .ledger()
            .iter()
            .filter(|e| e.foreign && e.out_trade_no == order.out_trade_no.as_str())
        {
            assert_eq!(
                (foreign.refunded, foreign.trade_state.as_str()),
                (0, "SUCCESS"),
                "{} reversed another party's order under our number: {foreign:?}",
                order.out_trade_no
            );
        }
        let entry = self.ledger(result);
        let net = entry.as_ref().map(|e| e.net_charged()).unwrap_or(0);
        match order.state {
            OrderState::Paid => {
                let entry = entry.expect("a paid order is in the ledger");
                assert_eq!(
                    net, order.total_fee.0,
                    "paid order {} not charged in full: {entry:?}",
                    order.out_trade_no
                );
                assert_eq!(entry.trade_state, "SUCCESS");
                assert_eq!(order.transaction_id, entry.transaction_id);
            }
            OrderState::Open => panic!("order {} left open", order.out_trade_no),
            _ => assert_eq!(
                net, 0,
                "order {} is {:?} but the customer is charged {net}: {entry:?}",
                order.out_trade_no, order.state
            ),
        }
    }
}
