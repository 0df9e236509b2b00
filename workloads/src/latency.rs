//! Latencies as the workloads' reports and the benches record them: an HDR histogram per kind
//! of operation ([`Latencies`], summarised as [`Summary`]) and the exact mean and deviation
//! beside it ([`Jitter`]).
//!
//! They live here, not with the benches' other measuring tools, because the MCTS generator's
//! own report ([`crate::mcts::MctsReport`]) is written in them, and the generator must not
//! depend on the benches.

use std::fmt;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Per-operation latencies in an HDR histogram (1 ns to 100 s, 3 significant digits).
#[derive(Clone, Debug)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty histogram.
    #[must_use]
    pub fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("constant bounds are valid"),
        }
    }

    /// Records one latency (saturating at the upper bound).
    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos.max(1));
    }

    /// Runs `f`, records how long it took, returns its result.
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let result = f();
        self.record(start.elapsed());
        result
    }

    /// Adds every latency of `other` (for per-thread histograms).
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds always add");
    }

    /// Number of latencies recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latencies as one line of `NANOS:COUNT` pairs, one per recorded bucket (its highest
    /// equivalent value), for a parent process to read back with [`Latencies::from_line`]
    /// and pool with its other children's.
    #[must_use]
    pub fn to_line(&self) -> String {
        self.histogram
            .iter_recorded()
            .map(|v| format!("{}:{}", v.value_iterated_to(), v.count_at_value()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The latencies of a line [`Latencies::to_line`] wrote (the same to the histogram's
    /// precision), or `None` if it is not one.
    #[must_use]
    pub fn from_line(line: &str) -> Option<Latencies> {
        let mut latencies = Latencies::new();
        for pair in line.split_whitespace() {
            let (nanos, count) = pair.split_once(':')?;
            let (nanos, count): (u64, u64) = (nanos.parse().ok()?, count.parse().ok()?);
            latencies.histogram.record_n(nanos.max(1), count).ok()?;
        }
        Some(latencies)
    }

    /// Number of latencies recorded above `bound` (to the histogram's precision, 3
    /// significant digits).
    #[must_use]
    pub fn count_above(&self, bound: Duration) -> u64 {
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.len() - self.histogram.count_between(0, nanos)
    }

    /// Median, p99, p99.9, max and mean, in microseconds.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let us = |nanos: u64| nanos as f64 / 1000.0;
        Summary {
            count: self.histogram.len(),
            median_us: us(self.histogram.value_at_quantile(0.5)),
            p99_us: us(self.histogram.value_at_quantile(0.99)),
            p999_us: us(self.histogram.value_at_quantile(0.999)),
            max_us: us(self.histogram.max()),
            mean_us: self.histogram.mean() / 1000.0,
        }
    }
}

/// A summary of [`Latencies`], in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// Number of operations.
    pub count: u64,
    /// 50th percentile.
    pub median_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} median={:.1}us p99={:.1}us p99.9={:.1}us max={:.1}us",
            self.count, self.median_us, self.p99_us, self.p999_us, self.max_us
        )
    }
}

/// Mean and standard deviation of latencies, exact (Welford's algorithm), for the jitter
/// (`stddev / mean`) that an HDR histogram only approximates.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Jitter {
    count: u64,
    mean_ns: f64,
    m2: f64,
}

impl Jitter {
    /// Adds one latency.
    pub fn record(&mut self, latency: Duration) {
        let x = latency.as_nanos() as f64;
        self.count += 1;
        let delta = x - self.mean_ns;
        self.mean_ns += delta / self.count as f64;
        self.m2 += delta * (x - self.mean_ns);
    }

    /// Mean, in microseconds.
    #[must_use]
    pub fn mean_us(&self) -> f64 {
        self.mean_ns / 1000.0
    }

    /// Population standard deviation, in microseconds.
    #[must_use]
    pub fn stddev_us(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        (self.m2 / self.count as f64).sqrt() / 1000.0
    }

    /// Latencies recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the latencies recorded.
    #[must_use]
    pub fn total(&self) -> Duration {
        Duration::from_secs_f64(self.mean_ns * self.count as f64 / 1e9)
    }

    /// `stddev / mean` (0 when nothing was recorded).
    #[must_use]
    pub fn ratio(&self) -> f64 {
        if self.mean_ns > 0.0 {
            self.stddev_us() * 1000.0 / self.mean_ns
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_latencies_above_a_bound() {
        let mut latencies = Latencies::new();
        for micros in [100, 900, 4_999, 5_100, 12_000] {
            latencies.record(Duration::from_micros(micros));
        }
        assert_eq!(latencies.count_above(Duration::from_millis(5)), 2);
        assert_eq!(latencies.count_above(Duration::from_micros(50)), 5);
        assert_eq!(latencies.count_above(Duration::from_secs(1)), 0);
    }

    #[test]
    fn latencies_cross_a_process_boundary_as_a_line() {
        let mut latencies = Latencies::new();
        for us in [3u64, 5, 5, 8, 13, 21, 34, 55, 89, 1_440] {
            latencies.record(Duration::from_micros(us));
        }
        let back = Latencies::from_line(&latencies.to_line()).expect("a line");
        assert_eq!(back.count(), latencies.count());
        let (a, b) = (latencies.summary(), back.summary());
        assert_eq!(
            (a.median_us, a.p99_us, a.max_us),
            (b.median_us, b.p99_us, b.max_us)
        );
        assert!(Latencies::from_line("12:x").is_none());
        assert_eq!(Latencies::from_line("").map(|l| l.count()), Some(0));
    }

    #[test]
    fn latencies_summarise_in_microseconds() {
        let mut l = Latencies::new();
        for us in 1..=100u64 {
            l.record(Duration::from_micros(us));
        }
        let s = l.summary();
        assert_eq!(s.count, 100);
        assert!((s.median_us - 50.0).abs() < 0.5, "{s}");
        assert!((s.max_us - 100.0).abs() < 0.5, "{s}");
    }

    #[test]
    fn jitter_is_the_population_deviation_over_the_mean() {
        let mut jitter = Jitter::default();
        for us in [10, 20, 30] {
            jitter.record(Duration::from_micros(us));
        }
        assert_eq!(jitter.count(), 3);
        assert!((jitter.mean_us() - 20.0).abs() < 1e-9);
        // sqrt(200 / 3) us over a 20 us mean.
        assert!((jitter.ratio() - (200.0f64 / 3.0).sqrt() / 20.0).abs() < 1e-9);
        assert!((jitter.total().as_secs_f64() * 1e6 - 60.0).abs() < 1e-3);
    }
}
