//! Keyboard-wedge decoding: one 18-digit scan plus Enter, and one 18-key
//! stretch of human typing, fed with their receipt instants.
//!
//! cargo bench --bench wedge_decode

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use scanpay::scanner::wedge::{WedgeDecoder, WedgeOutput, WedgeSettings};

fn keys(text: &str, step: Duration, base: Instant) -> Vec<(KeyEvent, Instant)> {
    let mut keys: Vec<(KeyEvent, Instant)> = text
        .chars()
        .enumerate()
        .map(|(i, c)| {
            (
                KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
                base + step * i as u32,
            )
        })
        .collect();
    keys.push((
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
        base + step * text.len() as u32,
    ));
    keys
}

fn decode(c: &mut Criterion) {
    let base = Instant::now();
    let mut group = c.benchmark_group("wedge");
    group.throughput(Throughput::Elements(19));
    for (name, step) in [
        ("scan burst (19 keys)", Duration::ZERO),
        ("human typing (19 keys)", Duration::from_millis(120)),
    ] {
        let input = keys("134539517967686076", step, base);
        group.bench_function(name, |b| {
            let mut decoder = WedgeDecoder::new(WedgeSettings::default());
            let mut out: Vec<WedgeOutput> = Vec::with_capacity(32);
            b.iter(|| {
                out.clear();
                for (key, at) in &input {
                    decoder.feed(*key, *at, &mut out);
                }
                decoder.poll(base + Duration::from_secs(10), &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
