//! The sweep's results: the Pareto front, the recommendation for a budget, and the CSV, JSON
//! and text renderings.
//!
//! One source of truth for the columns: [`Row`]'s fields are the CSV header (in order) and the
//! first keys of each JSON setting object, so the two never disagree.

use serde::Serialize;

use super::measure::Measured;
use crate::json::round;
use crate::text::{Align, table};

/// One setting's results as the CSV row (and the JSON object's common part). Latencies in
/// microseconds, sizes in bytes, times in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// Each level above the first is `fanout` times coarser than the one below.
    pub fanout: u64,
    /// Checkpoint levels.
    pub levels: u32,
    /// Events between two level-1 checkpoints (`fanout` unless `--firsts` set it).
    pub first: u64,
    /// Checkpoints kept open (validated, indexed) at once (`Options::checkpoint_maps_max`).
    pub maps_max: usize,
    /// Events in the workload.
    pub events: u64,
    /// View plus point reads: median.
    pub view_p50_us: f64,
    /// 99th percentile.
    pub view_p99_us: f64,
    /// 99.9th percentile.
    pub view_p999_us: f64,
    /// Slowest sample.
    pub view_max_us: f64,
    /// Mean.
    pub view_mean_us: f64,
    /// Events replayed per view, mean.
    pub replayed_mean: f64,
    /// Events replayed per view, most.
    pub replayed_max: u64,
    /// Checkpoints.
    pub checkpoints: u64,
    /// Their bytes.
    pub checkpoint_bytes: u64,
    /// Bytes of the log through its last record (the same for every setting).
    pub log_bytes: u64,
    /// (log + checkpoint bytes) / events.
    pub bytes_per_event: f64,
    /// Checkpoint bytes / events.
    pub checkpoint_bytes_per_event: f64,
    /// Building every checkpoint (`Engine::sync_checkpoints`), wall time.
    pub build_ms: f64,
    /// On the Pareto front of p99 against checkpoint bytes.
    pub pareto: bool,
    /// The recommended setting for the budget given.
    pub recommended: bool,
}

/// The CSV header: [`Row`]'s field names, in order (the tests and docs/TUNING.md list them).
pub const CSV_COLUMNS: [&str; 20] = [
    "fanout",
    "levels",
    "first",
    "maps_max",
    "events",
    "view_p50_us",
    "view_p99_us",
    "view_p999_us",
    "view_max_us",
    "view_mean_us",
    "replayed_mean",
    "replayed_max",
    "checkpoints",
    "checkpoint_bytes",
    "log_bytes",
    "bytes_per_event",
    "checkpoint_bytes_per_event",
    "build_ms",
    "pareto",
    "recommended",
];

/// Files and bytes of one checkpoint level, for the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct LevelJson {
    /// The level, 1 the finest.
    pub level: u32,
    /// Its checkpoints.
    pub checkpoints: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// One setting in the JSON: the CSV row plus details.
#[derive(Clone, Debug, Serialize)]
pub struct SettingJson {
    /// The CSV columns.
    #[serde(flatten)]
    pub row: Row,
    /// Files and bytes per level.
    pub checkpoint_by_level: Vec<LevelJson>,
    /// Samples that replayed `first` events or more (the engine promises at most
    /// `first - 1` once its checkpoints are built; anything here is worth a look).
    pub replay_bound_exceeded: u64,
    /// Appending the workload and syncing it, wall time.
    pub load_ms: f64,
}

/// Microseconds with three decimals from nanoseconds.
fn us(ns: f64) -> f64 {
    round(ns / 1000.0, 3)
}

/// Milliseconds with two decimals.
fn ms(duration: std::time::Duration) -> f64 {
    round(duration.as_secs_f64() * 1000.0, 2)
}

impl SettingJson {
    /// The results of `measured` on a workload of `events` events (not yet marked).
    pub fn new(measured: &Measured, events: u64) -> SettingJson {
        let per_event = |bytes: u64| round(bytes as f64 / events.max(1) as f64, 2);
        SettingJson {
            row: Row {
                fanout: measured.setting.fanout,
                levels: measured.setting.levels,
                first: measured.setting.first,
                maps_max: measured.setting.maps_max,
                events,
                view_p50_us: us(measured.view_p50_ns as f64),
                view_p99_us: us(measured.view_p99_ns as f64),
                view_p999_us: us(measured.view_p999_ns as f64),
                view_max_us: us(measured.view_max_ns as f64),
                view_mean_us: us(measured.view_mean_ns),
                replayed_mean: round(measured.replayed_mean, 2),
                replayed_max: measured.replayed_max,
                checkpoints: measured.checkpoints,
                checkpoint_bytes: measured.checkpoint_bytes,
                log_bytes: measured.log_bytes,
                bytes_per_event: per_event(measured.log_bytes + measured.checkpoint_bytes),
                checkpoint_bytes_per_event: per_event(measured.checkpoint_bytes),
                build_ms: ms(measured.build),
                pareto: false,
                recommended: false,
            },
            checkpoint_by_level: measured
                .by_level
                .iter()
                .zip(1u32..)
                .map(|(stats, level)| LevelJson {
                    level,
                    checkpoints: stats.count,
                    bytes: stats.bytes,
                })
                .collect(),
            replay_bound_exceeded: measured.replay_bound_exceeded,
            load_ms: ms(measured.load),
        }
    }
}

/// For each point `(p99, bytes)`, whether it is on the Pareto front: no other point is at
/// least as good on both and better on one. Equal points are all on it.
pub fn pareto_front(points: &[(u64, u64)]) -> Vec<bool> {
    points
        .iter()
        .map(|&(p99, bytes)| {
            !points.iter().any(|&(q99, qbytes)| {
                q99 <= p99 && qbytes <= bytes && (q99 < p99 || qbytes < bytes)
            })
        })
        .collect()
}

/// A budget from the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Budget {
    /// Highest acceptable view p99, in microseconds.
    pub max_p99_us: Option<f64>,
    /// Highest acceptable bytes per event (log and checkpoints).
    pub max_bytes_per_event: Option<f64>,
}

impl Budget {
    /// Whether any limit was given.
    pub fn is_set(&self) -> bool {
        self.max_p99_us.is_some() || self.max_bytes_per_event.is_some()
    }

    fn admits(&self, row: &Row) -> bool {
        self.max_p99_us.is_none_or(|max| row.view_p99_us <= max)
            && self
                .max_bytes_per_event
                .is_none_or(|max| row.bytes_per_event <= max)
    }

    /// The rule applied, in words.
    fn rule(&self) -> &'static str {
        match (self.max_p99_us, self.max_bytes_per_event) {
            (Some(_), None) => {
                "the setting with the least checkpoint storage within the latency budget"
            }
            (None, Some(_)) => "the fastest setting (view p99) within the space budget",
            _ => "the fastest setting (view p99) within both budgets",
        }
    }
}

/// The outcome of a budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// Index into the rows of the recommended setting; `None` when no setting fits.
    #[serde(skip)]
    pub index: Option<usize>,
    /// The setting's fanout, levels, first interval and map cache, when one fits.
    pub fanout: Option<u64>,
    /// Its levels.
    pub levels: Option<u32>,
    /// Its first interval.
    pub first: Option<u64>,
    /// Its map cache.
    pub maps_max: Option<usize>,
    /// Why, in one sentence.
    pub reason: String,
}

/// The setting `budget` recommends among `rows`: with only a latency budget, the smallest
/// checkpoint storage within it (ties: lower p99); otherwise the lowest p99 within every
/// limit given (ties: less storage). `None` without a budget.
pub fn recommend(rows: &[Row], budget: &Budget) -> Option<Recommendation> {
    if !budget.is_set() {
        return None;
    }
    let fits = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| budget.admits(row));
    let best = if budget.max_bytes_per_event.is_none() {
        fits.min_by(|(_, a), (_, b)| {
            a.checkpoint_bytes
                .cmp(&b.checkpoint_bytes)
                .then(a.view_p99_us.total_cmp(&b.view_p99_us))
        })
    } else {
        fits.min_by(|(_, a), (_, b)| {
            a.view_p99_us
                .total_cmp(&b.view_p99_us)
                .then(a.checkpoint_bytes.cmp(&b.checkpoint_bytes))
        })
    };
    let limits = describe_budget(budget);
    Some(match best {
        Some((index, row)) => Recommendation {
            index: Some(index),
            fanout: Some(row.fanout),
            levels: Some(row.levels),
            first: Some(row.first),
            maps_max: Some(row.maps_max),
            reason: format!(
                "{} is {} ({limits}): view p99 {:.1} us, {} of checkpoints, {:.1} bytes per event",
                setting_name(row),
                budget.rule(),
                row.view_p99_us,
                human_bytes(row.checkpoint_bytes),
                row.bytes_per_event
            ),
        },
        None => {
            let fastest = rows
                .iter()
                .min_by(|a, b| a.view_p99_us.total_cmp(&b.view_p99_us));
            let smallest = rows
                .iter()
                .min_by(|a, b| a.bytes_per_event.total_cmp(&b.bytes_per_event));
            let mut reason = format!("no setting meets {limits}");
            if let (Some(fastest), Some(smallest)) = (fastest, smallest) {
                reason.push_str(&format!(
                    "; the fastest is {} (p99 {:.1} us, {:.1} bytes per event), the smallest {} \
                     (p99 {:.1} us, {:.1} bytes per event)",
                    setting_name(fastest),
                    fastest.view_p99_us,
                    fastest.bytes_per_event,
                    setting_name(smallest),
                    smallest.view_p99_us,
                    smallest.bytes_per_event
                ));
            }
            Recommendation {
                index: None,
                fanout: None,
                levels: None,
                first: None,
                maps_max: None,
                reason,
            }
        }
    })
}

/// A setting in words: `fanout 10 with 3 levels` (with `, every 10 events first` when the
/// first interval is not the fanout), plus the map cache when it is not the engine's default.
fn setting_name(row: &Row) -> String {
    let plural = if row.levels == 1 { "" } else { "s" };
    let mut name = format!("fanout {} with {} level{plural}", row.fanout, row.levels);
    if row.first != row.fanout {
        name.push_str(&format!(", every {} events first", row.first));
    }
    if row.maps_max != helios::DEFAULT_CHECKPOINT_MAPS_MAX {
        name.push_str(&format!(" and {} open checkpoints", row.maps_max));
    }
    name
}

fn describe_budget(budget: &Budget) -> String {
    let mut parts = Vec::new();
    if let Some(max) = budget.max_p99_us {
        parts.push(format!("view p99 <= {max} us"));
    }
    if let Some(max) = budget.max_bytes_per_event {
        parts.push(format!("<= {max} bytes per event"));
    }
    parts.join(" and ")
}

/// The rows as CSV, header first.
pub fn csv(rows: &[Row]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    if rows.is_empty() {
        writer.write_record(CSV_COLUMNS)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// Bytes as `12.3 MiB`, `4.0 KiB` or `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The rows as an aligned text table.
///
/// `defaults[i]` says whether row `i` is the engine's default setting, which the last column
/// names. The first interval has a column when a row's is not its fanout.
pub fn text_table(rows: &[Row], defaults: &[bool], with_maps: bool) -> String {
    let with_firsts = rows.iter().any(|row| row.first != row.fanout);
    let mut header = vec![("fanout", Align::Right), ("levels", Align::Right)];
    if with_firsts {
        header.push(("first", Align::Right));
    }
    if with_maps {
        header.push(("maps", Align::Right));
    }
    header.extend([
        ("p50 us", Align::Right),
        ("p99 us", Align::Right),
        ("p99.9 us", Align::Right),
        ("replayed", Align::Right),
        ("max", Align::Right),
        ("checkpoints", Align::Right),
        ("ckpt bytes", Align::Right),
        ("bytes/event", Align::Right),
        ("build ms", Align::Right),
        ("pareto", Align::Left),
    ]);
    let lines: Vec<Vec<String>> = rows
        .iter()
        .zip(defaults.iter().chain(std::iter::repeat(&false)))
        .map(|(row, &default)| {
            let mut cells = vec![row.fanout.to_string(), row.levels.to_string()];
            if with_firsts {
                cells.push(row.first.to_string());
            }
            if with_maps {
                cells.push(row.maps_max.to_string());
            }
            let mark = match (row.pareto, row.recommended) {
                (true, true) => "yes, recommended",
                (true, false) => "yes",
                (false, _) => "no",
            };
            let mark = if default {
                format!("{mark} (engine default)")
            } else {
                mark.to_owned()
            };
            cells.extend([
                format!("{:.1}", row.view_p50_us),
                format!("{:.1}", row.view_p99_us),
                format!("{:.1}", row.view_p999_us),
                format!("{:.1}", row.replayed_mean),
                row.replayed_max.to_string(),
                row.checkpoints.to_string(),
                human_bytes(row.checkpoint_bytes),
                format!("{:.1}", row.bytes_per_event),
                format!("{:.0}", row.build_ms),
                mark,
            ]);
            cells
        })
        .collect();
    table(0, &header, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fanout: u64, p99_us: f64, checkpoint_bytes: u64, bytes_per_event: f64) -> Row {
        Row {
            fanout,
            levels: 2,
            first: fanout,
            maps_max: 4096,
            events: 100,
            view_p50_us: p99_us / 2.0,
            view_p99_us: p99_us,
            view_p999_us: p99_us,
            view_max_us: p99_us,
            view_mean_us: p99_us / 2.0,
            replayed_mean: 1.0,
            replayed_max: 1,
            checkpoints: 1,
            checkpoint_bytes,
            log_bytes: 0,
            bytes_per_event,
            checkpoint_bytes_per_event: bytes_per_event,
            build_ms: 1.0,
            pareto: false,
            recommended: false,
        }
    }

    #[test]
    fn pareto_front_keeps_undominated_points_and_ties() {
        let points = [(10, 100), (5, 200), (20, 50), (10, 150), (5, 200), (30, 60)];
        assert_eq!(
            pareto_front(&points),
            [true, true, true, false, true, false],
            "(10, 150) is dominated by (10, 100), (30, 60) by (20, 50); equal points both stay"
        );
        assert_eq!(pareto_front(&[]), Vec::<bool>::new());
        assert_eq!(pareto_front(&[(1, 1)]), [true]);
    }

    #[test]
    fn csv_header_is_the_row_fields() {
        let text = String::from_utf8(csv(&[row(4, 1.0, 1, 1.0)]).expect("csv")).expect("utf-8");
        let header = text.lines().next().expect("a header");
        assert_eq!(header, CSV_COLUMNS.join(","));
        let empty = String::from_utf8(csv(&[]).expect("csv")).expect("utf-8");
        assert_eq!(empty.trim_end(), CSV_COLUMNS.join(","));
    }

    #[test]
    fn budgets_pick_the_smallest_within_latency_or_the_fastest_within_space() {
        let rows = [
            row(4, 5.0, 1000, 50.0),
            row(8, 8.0, 400, 20.0),
            row(16, 12.0, 200, 10.0),
            row(32, 12.0, 300, 15.0),
        ];
        let pick = |budget: Budget| recommend(&rows, &budget).and_then(|r| r.fanout);
        assert_eq!(pick(Budget::default()), None);
        let latency = |max| Budget {
            max_p99_us: Some(max),
            max_bytes_per_event: None,
        };
        let space = |max| Budget {
            max_p99_us: None,
            max_bytes_per_event: Some(max),
        };
        assert_eq!(pick(latency(10.0)), Some(8));
        assert_eq!(pick(latency(12.0)), Some(16));
        assert_eq!(pick(latency(5.0)), Some(4));
        assert_eq!(pick(space(20.0)), Some(8));
        assert_eq!(pick(space(15.0)), Some(16), "p99 ties broken by storage");
        assert_eq!(pick(space(100.0)), Some(4));
        let both = Budget {
            max_p99_us: Some(10.0),
            max_bytes_per_event: Some(60.0),
        };
        assert_eq!(pick(both), Some(4));
        let none = recommend(&rows, &latency(1.0)).expect("a budget gives an answer");
        assert_eq!(none.index, None);
        assert!(
            none.reason.starts_with("no setting meets view p99 <= 1 us"),
            "{}",
            none.reason
        );
    }

    #[test]
    fn bytes_are_humanised() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    }
}
