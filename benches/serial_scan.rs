//! The serial scanner driver: (a) what the framer alone can cut, and (b) the
//! latency from a scanner's last byte entering a real pty to the scan
//! arriving on the channel, through the reader thread and the pipeline.
//!
//! cargo bench --bench serial_scan        (prints figures; no criterion)

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use scanpay::scanner::serial::{self, SerialFramer, SerialSettings, Terminator};
use scanpay::scanner::{Driver, DriverStatus, Pipeline, ScanEvent};
use serialport::{SerialPort, TTYPort};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const CHUNK: usize = 4096;

/// A distinct valid code for each `i`, so the duplicate guard never folds.
fn code(i: usize) -> String {
    format!("13{i:016}")
}

fn throughput() {
    let codes = 100_000;
    let stream: Vec<u8> = (0..codes)
        .flat_map(|i| (code(i) + "\r").into_bytes())
        .collect();
    let mut framer = SerialFramer::new(&SerialSettings::default());
    let mut out = Vec::with_capacity(CHUNK);
    let rounds = 20;
    let mut reads = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        let at = Instant::now();
        for chunk in stream.chunks(CHUNK) {
            framer.feed(black_box(chunk), at, &mut out);
            reads += out.len();
            out.clear();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(reads, codes * rounds, "every code comes out");
    let bytes = (stream.len() * rounds) as f64;
    println!(
        "(a) framer, CR-terminated codes in {CHUNK}-byte chunks: {:.0} MB/s, {:.2} M codes/s ({} codes)",
        bytes / elapsed / 1e6,
        (codes * rounds) as f64 / elapsed / 1e6,
        codes * rounds
    );
}

/// Scans through the reader on a pty; the latency of each from the instant
/// `last` (the terminator, or with "idle" the last digit) is written.
fn latency(terminator: Terminator, scans: usize) -> Vec<Duration> {
    let (mut master, slave) = TTYPort::pair().expect("a pseudo-terminal pair");
    let settings = SerialSettings {
        port: slave.name().expect("the slave's path"),
        terminator,
        ..SerialSettings::default()
    };
    drop(slave);
    let (events, mut received) = unbounded_channel();
    let _reader = serial::spawn(
        settings,
        Pipeline::new(Driver::Serial, Duration::from_millis(1500)),
        events,
    );
    assert!(matches!(
        next(&mut received),
        ScanEvent::Status {
            status: DriverStatus::Connected(_),
            ..
        }
    ));
    (0..scans)
        .map(|i| {
            let code = code(i);
            master.write_all(code.as_bytes()).unwrap();
            let written = if terminator == Terminator::Idle {
                Instant::now()
            } else {
                // Let the digits reach the framer first, so the figure is
                // the line end's own path, as with a real scanner's burst.
                std::thread::sleep(Duration::from_millis(2));
                let written = Instant::now();
                master.write_all(b"\r").unwrap();
                written
            };
            match next(&mut received) {
                ScanEvent::Scan { code: got, .. } if got.expose() == code => written.elapsed(),
                other => panic!("expected the scan, got {other:?}"),
            }
        })
        .collect()
}

fn next(received: &mut UnboundedReceiver<ScanEvent>) -> ScanEvent {
    received.blocking_recv().expect("the reader hung up")
}

fn report(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what} ({} scans): p50 {:?}, p95 {:?}, max {:?}",
        latencies.len(),
        at(0.5),
        at(0.95),
        latencies[latencies.len() - 1]
    );
}

fn main() {
    throughput();
    report(
        "(b) CR written into the pty master -> ScanEvent::Scan received",
        latency(Terminator::Cr, 300),
    );
    report(
        "(c) terminator \"idle\": last digit written -> ScanEvent::Scan (idle_gap_ms = 50)",
        latency(Terminator::Idle, 40),
    );
}
