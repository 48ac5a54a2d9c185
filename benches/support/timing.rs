//! Timing for the `--release` harnesses that print figures.

use std::time::{Duration, Instant};

/// How long `f` takes on each of `items`, one sample each.
pub fn time_each<T: Copy>(items: &[T], mut f: impl FnMut(T)) -> Vec<Duration> {
    items
        .iter()
        .map(|&item| {
            let began = Instant::now();
            f(item);
            began.elapsed()
        })
        .collect()
}

/// The `p`th percentile of `samples`, nearest rank.
pub fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
}
