//! Latency percentiles: nearest rank on the sorted samples, in milliseconds. The Celery
//! script (`scripts/celery_bench.py`) computes them the same way, so the two compare.

use std::time::Duration;

use serde::Serialize;

/// p50, p95 and p99 of a set of round trips, in milliseconds (three decimals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl Percentiles {
    /// `None` for no samples: a phase that delivered nothing has no percentiles.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: usize| {
            // Nearest rank: the smallest sample with at least p% of samples at or below it.
            let index = (sorted.len() * p).div_ceil(100).max(1) - 1;
            millis(sorted[index.min(sorted.len() - 1)])
        };
        Some(Percentiles {
            p50_ms: rank(50),
            p95_ms: rank(95),
            p99_ms: rank(99),
        })
    }
}

/// Milliseconds, rounded to the microsecond.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Per second, rounded to a tenth.
pub fn rate(count: usize, over: Duration) -> f64 {
    let secs = over.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    (count as f64 / secs * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_on_a_hundred_samples_is_the_sample_of_that_rank() {
        let p = Percentiles::of(&ms((1..=100).rev())).unwrap();
        assert_eq!((p.p50_ms, p.p95_ms, p.p99_ms), (50.0, 95.0, 99.0));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let p = Percentiles::of(&ms([7])).unwrap();
        assert_eq!((p.p50_ms, p.p95_ms, p.p99_ms), (7.0, 7.0, 7.0));
        assert_eq!(Percentiles::of(&[]), None);
    }

    #[test]
    fn rates_and_millis_are_rounded_for_reading() {
        assert_eq!(rate(1000, Duration::from_millis(300)), 3333.3);
        assert_eq!(millis(Duration::from_micros(1234)), 1.234);
    }
}
