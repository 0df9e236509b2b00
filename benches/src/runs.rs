//! Durations of a handful of runs (process starts, store opens), kept exactly: with tens of
//! samples a histogram's buckets would blur them, and every run is printed.

use std::time::Duration;

/// Durations of a handful of runs, in the order they ran, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Runs {
    /// Every run, in milliseconds.
    pub ms: Vec<f64>,
}

impl Runs {
    /// Records one run.
    pub fn push(&mut self, duration: Duration) {
        self.ms.push(duration.as_secs_f64() * 1e3);
    }

    /// Number of runs.
    #[must_use]
    pub fn count(&self) -> usize {
        self.ms.len()
    }

    /// The `quantile` (0 to 1) by the nearest-rank rule: the smallest run that at least that
    /// share of the runs do not exceed (so p99 of 20 runs is the slowest); NaN without runs.
    #[must_use]
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        let mut sorted = self.ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a rank between 0 and the run count (a handful), clamped below"
        )]
        let rank = (quantile.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The median by the nearest-rank rule (the lower middle run for an even count).
    #[must_use]
    pub fn median_ms(&self) -> f64 {
        self.quantile_ms(0.5)
    }

    /// The fastest run (NaN without runs).
    #[must_use]
    pub fn min_ms(&self) -> f64 {
        self.ms.iter().copied().reduce(f64::min).unwrap_or(f64::NAN)
    }

    /// The slowest run (NaN without runs).
    #[must_use]
    pub fn max_ms(&self) -> f64 {
        self.ms.iter().copied().reduce(f64::max).unwrap_or(f64::NAN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_the_nearest_rank_rule() {
        let mut runs = Runs::default();
        assert!(runs.median_ms().is_nan() && runs.max_ms().is_nan());
        for ms in [5, 1, 4, 2, 3] {
            runs.push(Duration::from_millis(ms));
        }
        assert_eq!(runs.count(), 5);
        assert_eq!(runs.median_ms(), 3.0);
        assert_eq!(runs.quantile_ms(0.99), 5.0);
        assert_eq!(runs.quantile_ms(0.0), 1.0);
        assert_eq!((runs.min_ms(), runs.max_ms()), (1.0, 5.0));
        runs.push(Duration::from_millis(6));
        // Six runs: the lower middle one.
        assert_eq!(runs.median_ms(), 3.0);
        let twenty = Runs {
            ms: (1..=20).map(f64::from).collect(),
        };
        assert_eq!(twenty.quantile_ms(0.99), 20.0);
        assert_eq!(twenty.quantile_ms(0.95), 19.0);
    }
}
