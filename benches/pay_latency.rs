//! From the engine deciding to send a micropay to the request reaching the
//! simulator, over real HTTP on 127.0.0.1 with a real journal on disk. Most
//! of it is the journal's fsync: the intent must be durable before sending.
//!
//! Then the journal shared: 24 payments at once through one engine (one
//! writer thread), and 24 `scanpay pay` processes at once on one journal.
//!
//! cargo bench --bench pay_latency        (prints figures; no criterion)

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scanpay::domain::{AuthCode, Fen, TillId};
use scanpay::journal::{Journal, JournalWriter};
use scanpay::payment::{Engine, PaymentRequest, Timings};
use scanpay::simulator::{Simulator, SimulatorConfig};
use scanpay::wechat::api::Merchant;
use scanpay::wechat::client::{ClientSettings, GatewayClient};
use scanpay::wechat::messages::Language;
use tokio::sync::{mpsc, watch};
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Stamps the three moments of each payment as their events are emitted.
#[derive(Default, Clone)]
struct Stamps(Arc<Mutex<Vec<(&'static str, Instant)>>>);

struct Message(String);
impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "call" && value == "micropay" {
            self.0.push_str(" micropay");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Stamps {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let now = Instant::now();
        let mut message = Message(String::new());
        event.record(&mut message);
        let mark = if message.0.starts_with("request due") && message.0.ends_with("micropay") {
            "decided"
        } else if message.0.starts_with("request sent") && message.0.ends_with("micropay") {
            "journaled"
        } else if message.0.starts_with("answered") && message.0.ends_with("micropay") {
            "received"
        } else {
            return;
        };
        self.0.lock().unwrap().push((mark, now));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{name:<44} n={:<4} p50={:>9.3?} p95={:>9.3?} p99={:>9.3?} max={:>9.3?} mean={:>9.3?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
        mean
    );
}

fn main() {
    let stamps = Stamps::default();
    let filter = tracing_subscriber::EnvFilter::new("scanpay=debug");
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(stamps.clone().with_filter(filter)),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let demo = SimulatorConfig::demo();
        let simulator = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), demo.clone())
            .await
            .unwrap();
        let dir = tempfile::tempdir_in(".").unwrap();
        let journal = Journal::open(&dir.path().join("journal.sqlite3")).unwrap();
        let engine = Engine {
            gateway: GatewayClient::new(&ClientSettings {
                base_url: simulator.base_url(),
                sandbox: false,
                connect_timeout: Duration::from_secs(3),
                read_timeout: Duration::from_secs(10),
                client_identity_pem: None,
                extra_root_pem: None,
                negative_test: None,
            })
            .unwrap(),
            merchant: Merchant {
                appid: demo.appid,
                mch_id: demo.mch_id,
                sub_appid: None,
                sub_mch_id: None,
                key: demo.key,
                sign_type: Default::default(),
            },
            journal: JournalWriter::spawn(journal),
            timings: Timings::default(),
            till: TillId::parse("BENCH").unwrap(),
            spbill_create_ip: "127.0.0.1".into(),
            store_offset: time::UtcOffset::UTC,
            language: Language::English,
        };
        let rounds = 300;
        let mut whole = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let (progress, mut updates) = mpsc::unbounded_channel();
            let (_cancel, cancel_rx) = watch::channel(false);
            let request = PaymentRequest {
                amount: Fen(1234),
                body: "bench".into(),
                auth_code: AuthCode::parse(&format!("134{:015}", i)).unwrap(),
            };
            let started = Instant::now();
            let result = engine.pay(request, progress, cancel_rx).await.unwrap();
            whole.push(started.elapsed());
            assert_eq!(result.state().as_str(), "paid");
            while updates.try_recv().is_ok() {}
        }
        let marks = stamps.0.lock().unwrap().clone();
        stamps.0.lock().unwrap().clear();

        // 24 at once through the one writer thread, 10 waves.
        let started = Instant::now();
        let mut concurrent = Vec::new();
        for wave in 0..10 {
            let payments: Vec<_> = (0..24)
                .map(|i| {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        let (progress, _updates) = mpsc::unbounded_channel();
                        let (_cancel, cancel_rx) = watch::channel(false);
                        let request = PaymentRequest {
                            amount: Fen(1234),
                            body: "bench".into(),
                            auth_code: AuthCode::parse(&format!("135{:015}", wave * 100 + i))
                                .unwrap(),
                        };
                        let started = Instant::now();
                        let result = engine.pay(request, progress, cancel_rx).await.unwrap();
                        assert_eq!(result.state().as_str(), "paid");
                        started.elapsed()
                    })
                })
                .collect();
            for payment in payments {
                concurrent.push(payment.await.unwrap());
            }
        }
        let elapsed = started.elapsed();
        let in_process = concurrent.len() as f64 / elapsed.as_secs_f64();

        // 24 processes at once, each its own `scanpay pay`, on one journal.
        let processes = tempfile::tempdir_in(".").unwrap();
        let demo = SimulatorConfig::demo();
        let mut process_runs = Vec::new();
        for wave in 0..3 {
            let started = Instant::now();
            let children: Vec<_> = (0..24)
                .map(|i| {
                    std::process::Command::new(env!("CARGO_BIN_EXE_scanpay"))
                        .env_remove("SCANPAY_CONFIG")
                        .env("SCANPAY_TILL_ID", "BENCH")
                        .env("SCANPAY_JOURNAL_PATH", processes.path().join("journal.sqlite3"))
                        .env("SCANPAY_LOG_DIR", processes.path().join("logs"))
                        .env("SCANPAY_GATEWAY_MODE", "wechat")
                        .env("SCANPAY_GATEWAY_BASE_URL", simulator.base_url())
                        .env("SCANPAY_MERCHANT_APPID", &demo.appid)
                        .env("SCANPAY_MERCHANT_MCH_ID", &demo.mch_id)
                        // The docs' public example key, the simulator's demo merchant's.
                        .env("SCANPAY_API_KEY", "192006250b4c09247ec02edce69f6a2d")
                        .args(["pay", "--amount", "12.34", "--auth-code"])
                        .arg(format!("136{:015}", wave * 100 + i))
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let exits: Vec<_> = children
                .into_iter()
                .map(|mut child| child.wait().unwrap().code())
                .collect();
            process_runs.push(started.elapsed());
            let paid = exits.iter().filter(|c| **c == Some(0)).count();
            assert_eq!(paid, 24, "every process paid: {exits:?}");
        }
        simulator.shutdown().await;
        let (mut to_wire, mut journal_share) = (Vec::new(), Vec::new());
        for chunk in marks.chunks(3) {
            if let [("decided", d), ("journaled", j), ("received", r)] = chunk {
                to_wire.push(*r - *d);
                journal_share.push(*j - *d);
            }
        }
        assert_eq!(to_wire.len(), rounds, "every payment left its three marks");
        println!(
            "journal on {}",
            std::fs::canonicalize(dir.path()).unwrap().display()
        );
        report("decided to send -> request at the simulator", to_wire);
        report("  of which: journal the intent (fsync)", journal_share);
        report("whole paid-at-once payment (open..finished)", whole);
        report("24 at once, one engine: each payment", concurrent);
        println!(
            "24 at once, one engine: {in_process:.0} payments/s ({} in {elapsed:.2?})",
            10 * 24
        );
        let best = process_runs.iter().min().unwrap();
        println!(
            "24 `scanpay pay` processes at once, one journal: all paid; wall time per wave {:?} (best {best:.2?}, {:.0} payments/s)",
            process_runs,
            24.0 / best.as_secs_f64()
        );
    });
}
