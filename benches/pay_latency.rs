//! From the engine deciding to send a micropay to the request reaching the
//! simulator, over real HTTP on 127.0.0.1 with a real journal on disk. Most
//! of it is the journal's fsync: the intent must be durable before sending.
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
        "{name:<44} n={:<4} p50={:>9.3?} p95={:>9.3?} max={:>9.3?} mean={:>9.3?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.95),
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
        simulator.shutdown().await;
        let marks = stamps.0.lock().unwrap().clone();
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
    });
}
