//! Latency and replay metrics: one HDR histogram per operation and class.
//!
//! Recording is an `Instant` pair and one uncontended-in-practice mutex around
//! `Histogram::record` (tens of nanoseconds); `Options::metrics = false` turns it off. The
//! histograms keep two significant digits (1% resolution) from 1 ns to one hour, about 40 KiB
//! each, so each is made by the first value recorded under it: an open allocates none (ten of
//! them, zeroed, were most of the cost of opening a small store), and metrics off never do.
//!
//! Speculative appends take well under a microsecond, so timing every one would double their
//! cost (measured: median 0.07 to 0.14 us). Their latency is sampled instead: one append in
//! [`SAMPLE_EVERY`] per thread is timed; their count stays exact.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::engine::lock;

/// What a histogram measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// [`crate::Engine::append`] with [`crate::Durability::Critical`], including its sync.
    AppendCritical,
    /// [`crate::Engine::append`] with [`crate::Durability::Normal`].
    AppendNormal,
    /// [`crate::Branches::append`]: a speculative append. Timed on a sample (one in
    /// [`SAMPLE_EVERY`] per thread); counted exactly.
    AppendSpeculative,
    /// [`crate::Engine::sync`].
    Sync,
    /// [`crate::Engine::view`] of a durable version.
    View,
    /// [`crate::Branches::view`].
    ViewBranch,
    /// Writing one checkpoint file (the builder's work per file).
    CheckpointBuild,
    /// [`crate::Branches::promote`] with [`crate::Durability::Critical`].
    PromoteCritical,
    /// [`crate::Branches::promote`] with [`crate::Durability::Normal`].
    PromoteNormal,
    /// Events replayed per view (durable or branch): a count, not a time.
    ReplayedEvents,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 10] = [
        Metric::AppendCritical,
        Metric::AppendNormal,
        Metric::AppendSpeculative,
        Metric::Sync,
        Metric::View,
        Metric::ViewBranch,
        Metric::CheckpointBuild,
        Metric::PromoteCritical,
        Metric::PromoteNormal,
        Metric::ReplayedEvents,
    ];

    /// A stable snake-case name, used in reports and Prometheus names.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Metric::AppendCritical => "append_critical",
            Metric::AppendNormal => "append_normal",
            Metric::AppendSpeculative => "append_speculative",
            Metric::Sync => "sync",
            Metric::View => "view",
            Metric::ViewBranch => "view_branch",
            Metric::CheckpointBuild => "checkpoint_build",
            Metric::PromoteCritical => "promote_critical",
            Metric::PromoteNormal => "promote_normal",
            Metric::ReplayedEvents => "replayed_events",
        }
    }

    /// The unit of recorded values: `"ns"` or `"events"`.
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Metric::ReplayedEvents => "events",
            _ => "ns",
        }
    }

    fn index(self) -> usize {
        Metric::ALL
            .iter()
            .position(|m| *m == self)
            .unwrap_or_default()
    }
}

/// One histogram, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSummary {
    /// What it measures.
    pub metric: Metric,
    /// Operations recorded (exact, also for sampled metrics).
    pub count: u64,
    /// Percentiles and maximum, in [`Metric::unit`].
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// Jitter: standard deviation / mean (0 when nothing was recorded).
    pub jitter: f64,
}

/// A snapshot of every histogram, from [`crate::Inspect::metrics`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// One summary per metric, in [`Metric::ALL`] order.
    pub metrics: Vec<MetricSummary>,
}

impl MetricsSnapshot {
    /// The summary of `metric`.
    #[must_use]
    pub fn get(&self, metric: Metric) -> Option<&MetricSummary> {
        self.metrics.iter().find(|m| m.metric == metric)
    }

    /// The snapshot in the Prometheus text exposition format: one `summary` per metric, times
    /// in seconds, named `helios_<metric>_seconds` (or `helios_replayed_events`).
    #[must_use]
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        for m in &self.metrics {
            let (name, scale) = match m.metric.unit() {
                "ns" => (format!("helios_{}_seconds", m.metric.name()), 1e-9),
                _ => (format!("helios_{}", m.metric.name()), 1.0),
            };
            let _ = writeln!(
                out,
                "# HELP {name} Helios {} ({}).",
                m.metric.name(),
                m.metric.unit()
            );
            let _ = writeln!(out, "# TYPE {name} summary");
            for (q, v) in [
                ("0.5", m.p50),
                ("0.95", m.p95),
                ("0.99", m.p99),
                ("0.999", m.p999),
                ("1", m.max),
            ] {
                let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", v as f64 * scale);
            }
            let _ = writeln!(out, "{name}_sum {}", m.mean * m.count as f64 * scale);
            let _ = writeln!(out, "{name}_count {}", m.count);
        }
        out
    }
}

/// One speculative append in this many, per thread, is timed.
pub const SAMPLE_EVERY: u32 = 8;

thread_local! {
    static SAMPLE_COUNTER: Cell<u32> = const { Cell::new(0) };
}

/// The engine's histograms.
pub(crate) struct Metrics {
    enabled: bool,
    /// One histogram per metric, in [`Metric::ALL`] order; `None` until a value is recorded
    /// under it (an empty histogram and `None` summarize the same).
    histograms: Vec<Mutex<Option<Histogram<u64>>>>,
    /// Exact counts of the sampled metrics (the others count in their histograms).
    sampled_counts: Vec<AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// One hour in nanoseconds: the largest value a histogram tracks (larger ones are clamped).
const MAX_VALUE: u64 = 3_600_000_000_000;

impl Metrics {
    pub(crate) fn new(enabled: bool) -> Metrics {
        Metrics {
            enabled,
            histograms: Metric::ALL.iter().map(|_| Mutex::new(None)).collect(),
            sampled_counts: Metric::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A start time for a sampled metric: counts the operation, and times one in
    /// [`SAMPLE_EVERY`] per thread.
    pub(crate) fn start_sampled(&self, metric: Metric) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        self.sampled_counts[metric.index()].fetch_add(1, Ordering::Relaxed);
        SAMPLE_COUNTER.with(|counter| {
            let n = counter.get().wrapping_add(1);
            counter.set(n);
            n.is_multiple_of(SAMPLE_EVERY).then(Instant::now)
        })
    }

    /// A start time, or `None` when metrics are off (so no clock is read).
    pub(crate) fn start(&self) -> Option<Instant> {
        self.enabled.then(Instant::now)
    }

    /// Records the time since `start` under `metric`.
    pub(crate) fn finish(&self, metric: Metric, start: Option<Instant>) {
        if let Some(start) = start {
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.record(metric, ns);
        }
    }

    /// Records `value` under `metric`.
    pub(crate) fn record(&self, metric: Metric, value: u64) {
        if self.enabled {
            let mut histogram = lock(&self.histograms[metric.index()]);
            histogram
                .get_or_insert_with(|| {
                    Histogram::new_with_bounds(1, MAX_VALUE, 2)
                        .expect("constant bounds: 1 <= 1 hour, 2 significant digits")
                })
                .saturating_record(value.min(MAX_VALUE));
        }
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let metrics = Metric::ALL
            .iter()
            .map(|&metric| {
                let histogram = lock(&self.histograms[metric.index()]);
                // One never made and an empty one summarize as zeros.
                let h = histogram.as_ref().filter(|h| !h.is_empty());
                let sampled = self.sampled_counts[metric.index()].load(Ordering::Relaxed);
                let count = if sampled > 0 {
                    sampled
                } else {
                    h.map_or(0, |h| h.len())
                };
                let (mean, stddev) = h.map_or((0.0, 0.0), |h| (h.mean(), h.stdev()));
                let q = |q: f64| h.map_or(0, |h| h.value_at_quantile(q));
                MetricSummary {
                    metric,
                    count,
                    p50: q(0.5),
                    p95: q(0.95),
                    p99: q(0.99),
                    p999: q(0.999),
                    max: h.map_or(0, |h| h.max()),
                    mean,
                    stddev,
                    jitter: if mean > 0.0 { stddev / mean } else { 0.0 },
                }
            })
            .collect();
        MetricsSnapshot { metrics }
    }

    pub(crate) fn reset(&self) {
        for h in &self.histograms {
            if let Some(h) = lock(h).as_mut() {
                h.reset();
            }
        }
        for count in &self.sampled_counts {
            count.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let metrics = Metrics::new(true);
        // 1..=1000 ns, once each: p50 500, p99 990, max 1000, within 1%.
        for v in 1..=1000 {
            metrics.record(Metric::View, v);
        }
        let snapshot = metrics.snapshot();
        let view = snapshot.get(Metric::View).expect("view");
        assert_eq!(view.count, 1000);
        let close = |got: u64, want: u64| got.abs_diff(want) * 100 <= want;
        assert!(close(view.p50, 500), "{view:?}");
        assert!(close(view.p95, 950), "{view:?}");
        assert!(close(view.p99, 990), "{view:?}");
        assert!(close(view.p999, 999), "{view:?}");
        assert!(close(view.max, 1000), "{view:?}");
        assert!((view.mean - 500.5).abs() < 5.0, "{view:?}");
        // Uniform on 1..=1000: stddev 288.7, jitter 0.577.
        assert!((view.jitter - 0.577).abs() < 0.01, "{view:?}");
        let empty = snapshot.get(Metric::Sync).expect("sync");
        assert_eq!((empty.count, empty.p99, empty.jitter), (0, 0, 0.0));
        let text = snapshot.to_prometheus();
        assert!(
            text.contains("# TYPE helios_view_seconds summary"),
            "{text}"
        );
        assert!(text.contains("helios_view_seconds_count 1000"), "{text}");
        assert!(text.contains("helios_replayed_events_count 0"), "{text}");
        metrics.reset();
        assert_eq!(
            metrics.snapshot().get(Metric::View).map(|m| m.count),
            Some(0)
        );
    }

    /// How many histograms have been made (allocated).
    fn made(metrics: &Metrics) -> usize {
        metrics
            .histograms
            .iter()
            .filter(|h| lock(h).is_some())
            .count()
    }

    #[test]
    fn disabled_metrics_record_nothing() {
        let metrics = Metrics::new(false);
        assert!(metrics.start().is_none());
        metrics.record(Metric::View, 5);
        assert_eq!(
            metrics.snapshot().get(Metric::View).map(|m| m.count),
            Some(0)
        );
        assert_eq!(made(&metrics), 0, "metrics off allocate no histogram");
    }

    #[test]
    fn a_histogram_is_made_by_its_first_value() {
        let metrics = Metrics::new(true);
        assert_eq!(made(&metrics), 0, "a new engine allocates no histogram");
        let snapshot = metrics.snapshot();
        assert!(snapshot.metrics.iter().all(|m| m.count == 0 && m.max == 0));
        metrics.record(Metric::Sync, 7);
        assert_eq!(made(&metrics), 1);
        let sync = metrics.snapshot().get(Metric::Sync).cloned().expect("sync");
        assert_eq!((sync.count, sync.max), (1, 7));
        metrics.reset();
        assert_eq!(
            metrics.snapshot().get(Metric::Sync).map(|m| m.count),
            Some(0)
        );
    }
}
