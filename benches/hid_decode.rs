//! The raw HID decoders as the CPU sees them: reports per second for a
//! keyboard-mode scan (18 digits with a key-up after each, then Enter: 38
//! reports) and for HID POS scans (one 64-byte report; a code continued over
//! two). A scanner sends at most 1000 reports/s, so anything in the millions
//! leaves the decoder invisible next to USB.
//!
//! cargo bench --bench hid_decode

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scanpay::scanner::hid::{BootDecoder, PosDecoder};

const CODE: &[u8] = b"134539517967686076";

/// Timestamps 4 ms apart, as a scanner at full speed sends them.
fn stamped(reports: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Instant)> {
    let base = Instant::now();
    reports
        .into_iter()
        .enumerate()
        .map(|(i, report)| (report, base + Duration::from_millis(4 * i as u64)))
        .collect()
}

fn keyboard_scan() -> Vec<(Vec<u8>, Instant)> {
    let key = |usage: u8| vec![0, 0, usage, 0, 0, 0, 0, 0];
    let mut reports = Vec::new();
    for &digit in CODE {
        reports.push(key(if digit == b'0' {
            0x27
        } else {
            0x1E + digit - b'1'
        }));
        reports.push(key(0));
    }
    reports.push(key(0x28));
    reports.push(key(0));
    stamped(reports)
}

fn pos_report(data: &[u8], more: bool) -> Vec<u8> {
    let mut report = vec![0u8; 64];
    report[0] = 0x02;
    report[1] = data.len() as u8;
    report[2..5].copy_from_slice(b"]E0");
    report[5..5 + data.len()].copy_from_slice(data);
    report[63] = u8::from(more);
    report
}

fn decoders(c: &mut Criterion) {
    let gap = Duration::from_millis(100);
    let mut group = c.benchmark_group("hid_decode");
    let mut out = Vec::with_capacity(4);

    let scan = keyboard_scan();
    group.throughput(Throughput::Elements(scan.len() as u64));
    group.bench_function("boot keyboard, 18 digits with key-ups", |b| {
        let mut decoder = BootDecoder::new(gap);
        b.iter(|| {
            for (report, at) in &scan {
                decoder.feed(black_box(report), *at, &mut out);
            }
            assert_eq!(out.len(), 1);
            black_box(out.drain(..).next());
        })
    });

    for (name, scan) in [
        (
            "HID POS, one report",
            stamped(vec![pos_report(CODE, false)]),
        ),
        (
            "HID POS, continued over two",
            stamped(vec![
                pos_report(&CODE[..10], true),
                pos_report(&CODE[10..], false),
            ]),
        ),
    ] {
        group.throughput(Throughput::Elements(scan.len() as u64));
        group.bench_function(name, |b| {
            let mut decoder = PosDecoder::new(gap);
            b.iter(|| {
                for (report, at) in &scan {
                    decoder.feed(black_box(report), *at, &mut out);
                }
                assert_eq!(out.len(), 1);
                black_box(out.drain(..).next());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
