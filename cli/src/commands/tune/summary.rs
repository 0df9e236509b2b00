//! What a sweep found, as the JSON document (`tune.json`, and stdout with `--json`) and as the
//! text report on stdout: the rows marked with the Pareto front and the recommendation, the
//! noise check, and the notes a reader of the numbers needs.

use std::fmt::Write as _;
use std::path::Path;

use helios_workloads::mounts::describe_mount;
use serde::Serialize;

use super::measure::{self, Clock, Measured, Setting};
use super::report::{self, Budget, Recommendation, SettingJson};
use super::sweep::{control_index, varies_maps};
use super::workload::Workload;
use super::{Args, CSV_FILE, JSON_FILE, SVG_FILE};
use crate::json;

/// The JSON document (`tune.json`, and stdout with `--json`).
#[derive(Clone, Serialize)]
pub(super) struct TuneJson {
    workload: WorkloadJson,
    measurement: MeasurementJson,
    budget: Budget,
    /// One object per setting, in grid order.
    settings: Vec<SettingJson>,
    /// The front's settings, least storage first (`FANOUTxLEVELS`).
    pareto_front: Vec<String>,
    /// `null` without a budget.
    recommendation: Option<Recommendation>,
    /// One setting measured again after the sweep: how much the machine alone moved the
    /// numbers.
    control: ControlJson,
    /// Things worth knowing to read the numbers.
    notes: Vec<String>,
}

#[derive(Clone, Serialize)]
struct WorkloadJson {
    kind: &'static str,
    description: String,
    streams: usize,
    events: u64,
    payload_bytes: u64,
    longest_stream_events: u64,
    skipped_streams: Vec<SkippedJson>,
}

#[derive(Clone, Serialize)]
struct SkippedJson {
    stream: String,
    reason: String,
}

#[derive(Clone, Serialize)]
struct MeasurementJson {
    samples: u64,
    reads_per_sample: u64,
    seed: u64,
    what_is_timed: &'static str,
    /// `wall` or `thread-cpu`.
    clock: &'static str,
    scratch_dir: String,
    scratch_fs: String,
    segment_size_bytes: u64,
}

/// What the clock covers, for the JSON and the text output.
const WHAT_IS_TIMED: &str = "Engine::view at a random version plus the point reads, warm: \
    after an untimed pass over the same samples, with every file in the page cache";

/// The clock's name, as `--clock` spells it.
pub(super) fn clock_name(clock: Clock) -> &'static str {
    match clock {
        Clock::Wall => "wall",
        Clock::ThreadCpu => "thread-cpu",
    }
}

/// The noise check in the JSON: one setting's view latency in the sweep and at its end.
#[derive(Clone, Serialize)]
struct ControlJson {
    /// The setting measured twice (`FANOUTxLEVELS`).
    setting: String,
    /// In the sweep.
    first: LatencyJson,
    /// Measured again after the sweep.
    again: LatencyJson,
}

/// View latency percentiles, in microseconds.
#[derive(Clone, Serialize)]
struct LatencyJson {
    view_p50_us: f64,
    view_p99_us: f64,
    view_p999_us: f64,
}

impl LatencyJson {
    fn of(measured: &Measured) -> LatencyJson {
        let us = |ns: u64| json::round(ns as f64 / 1000.0, 3);
        LatencyJson {
            view_p50_us: us(measured.view_p50_ns),
            view_p99_us: us(measured.view_p99_ns),
            view_p999_us: us(measured.view_p999_ns),
        }
    }
}

/// The measured settings as rows, marked: the Pareto front and the recommendation.
pub(super) struct Sweep {
    /// One per setting, in grid order.
    settings: Vec<SettingJson>,
    /// The same rows without the JSON-only details.
    pub(super) rows: Vec<report::Row>,
    /// `FANOUTxLEVELS` (and `/mMAPS` when the grid varies the map cache), per setting.
    pub(super) labels: Vec<String>,
    /// Whether labels name the map cache.
    with_maps: bool,
    /// Indices of the front's settings, least checkpoint storage first.
    front: Vec<usize>,
    /// The budget's outcome, if one was given.
    pub(super) recommendation: Option<Recommendation>,
    /// The log's bytes per event (the same in every setting).
    pub(super) log_bytes_per_event: f64,
    /// The noise check.
    control: ControlJson,
}

impl Sweep {
    pub(super) fn new(
        workload: &Workload,
        measured: &[Measured],
        control: &Measured,
        budget: &Budget,
    ) -> Sweep {
        let events = workload.events_count();
        let mut settings: Vec<SettingJson> = measured
            .iter()
            .map(|m| SettingJson::new(m, events))
            .collect();
        let points: Vec<(u64, u64)> = measured
            .iter()
            .map(|m| (m.view_p99_ns, m.checkpoint_bytes))
            .collect();
        for (setting, on_front) in settings.iter_mut().zip(report::pareto_front(&points)) {
            setting.row.pareto = on_front;
        }
        let rows: Vec<report::Row> = settings.iter().map(|s| s.row.clone()).collect();
        let recommendation = report::recommend(&rows, budget);
        if let Some(index) = recommendation.as_ref().and_then(|r| r.index) {
            settings[index].row.recommended = true;
        }
        let rows: Vec<report::Row> = settings.iter().map(|s| s.row.clone()).collect();
        let all: Vec<Setting> = measured.iter().map(|m| m.setting).collect();
        let with_maps = varies_maps(&all);
        let labels: Vec<String> = all.iter().map(|s| s.label(with_maps)).collect();
        let mut front: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].pareto).collect();
        front.sort_by_key(|&i| (measured[i].checkpoint_bytes, measured[i].view_p99_ns));
        let log_bytes = measured.first().map_or(0, |m| m.log_bytes);
        let control_at = control_index(&all);
        let control = ControlJson {
            setting: labels[control_at].clone(),
            first: LatencyJson::of(&measured[control_at]),
            again: LatencyJson::of(control),
        };
        Sweep {
            settings,
            rows,
            labels,
            with_maps,
            front,
            recommendation,
            log_bytes_per_event: log_bytes as f64 / events.max(1) as f64,
            control,
        }
    }

    /// The JSON document.
    pub(super) fn document(
        &self,
        args: &Args,
        workload: &Workload,
        measured: &[Measured],
        scratch: &Path,
        budget: Budget,
    ) -> TuneJson {
        TuneJson {
            workload: WorkloadJson {
                kind: workload.kind,
                description: workload.description.clone(),
                streams: workload.streams.len(),
                events: workload.events_count(),
                payload_bytes: workload.payload_bytes(),
                longest_stream_events: workload.longest_stream_events(),
                skipped_streams: workload
                    .skipped
                    .iter()
                    .map(|(stream, reason)| SkippedJson {
                        stream: stream.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
            },
            measurement: MeasurementJson {
                samples: args.samples,
                reads_per_sample: args.reads,
                seed: args.seed,
                what_is_timed: WHAT_IS_TIMED,
                clock: clock_name(args.clock),
                scratch_dir: scratch.display().to_string(),
                scratch_fs: describe_mount(scratch),
                segment_size_bytes: measure::SCRATCH_SEGMENT_SIZE_BYTES,
            },
            budget,
            settings: self.settings.clone(),
            pareto_front: self.front.iter().map(|&i| self.labels[i].clone()).collect(),
            recommendation: self.recommendation.clone(),
            notes: notes(workload, measured, self.with_maps),
            control: self.control.clone(),
        }
    }
}

/// What a reader of the numbers should know: levels the workload never fills, engine promises
/// not kept.
fn notes(workload: &Workload, measured: &[Measured], with_maps: bool) -> Vec<String> {
    let longest = workload.longest_stream_events();
    let mut notes = Vec::new();
    let mut unfilled: Vec<String> = Vec::new();
    let mut overflowing: Vec<String> = Vec::new();
    for m in measured {
        let setting = m.setting;
        if m.checkpoints > setting.maps_max as u64 {
            overflowing.push(format!(
                "{} ({} checkpoints)",
                setting.label(with_maps),
                m.checkpoints
            ));
        }
        let policy = setting.policy().ok();
        let top = policy.map_or(u64::MAX, |p| p.interval(setting.levels));
        if top > longest {
            let filled = (1..=setting.levels)
                .take_while(|&level| policy.is_some_and(|p| p.interval(level) <= longest))
                .count();
            unfilled.push(format!("{} ({filled} used)", setting.label(with_maps)));
        }
        if m.replay_bound_exceeded > 0 {
            notes.push(format!(
                "{}: {} of the samples replayed {} events or more after every checkpoint was \
                 built (the engine promises at most the first interval - 1 = {})",
                setting.label(with_maps),
                m.replay_bound_exceeded,
                setting.first,
                setting.first - 1
            ));
        }
    }
    if !overflowing.is_empty() {
        notes.insert(
            0,
            format!(
                "some settings have more checkpoints than the engine keeps open \
                 (--maps-max, Options::checkpoint_maps_max): views that need a closed one \
                 validate it again, so their latency depends on how much of the history is \
                 read, not only on the setting: {}",
                overflowing.join(", ")
            ),
        );
    }
    if !unfilled.is_empty() {
        notes.insert(
            0,
            format!(
                "the longest stream has {longest} events, so some settings never take a \
                 checkpoint at their top level (first x fanout^(levels - 1) events) and behave like fewer \
                 levels, with one full state (the first checkpoint) under growing deltas: {}",
                unfilled.join(", ")
            ),
        );
    }
    notes
}

/// The table and what follows it, for stdout.
pub(super) fn text_report(
    document: &TuneJson,
    sweep: &Sweep,
    settings: &[Setting],
    out_dir: &Path,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "workload: {}", document.workload.description);
    let _ = writeln!(
        out,
        "timed: {} samples per setting, view + {} point reads at random versions, warm (after an \
         untimed pass over the same samples), {} clock\n",
        document.measurement.samples,
        document.measurement.reads_per_sample,
        document.measurement.clock
    );
    let defaults: Vec<bool> = settings.iter().map(Setting::is_engine_default).collect();
    out.push_str(&report::text_table(&sweep.rows, &defaults, sweep.with_maps));
    let front: Vec<&str> = sweep
        .front
        .iter()
        .map(|&i| sweep.labels[i].as_str())
        .collect();
    let _ = writeln!(
        out,
        "\nPareto front (view p99 against checkpoint bytes), least storage first: {}",
        front.join(", ")
    );
    match &document.recommendation {
        Some(recommendation) => {
            let _ = writeln!(out, "recommendation: {}", recommendation.reason);
        }
        None => {
            let _ = writeln!(
                out,
                "recommendation: none without a budget (--max-p99-us US or \
                 --max-bytes-per-event BYTES)"
            );
        }
    }
    let control = &document.control;
    let _ = writeln!(
        out,
        "noise check: {} measured again after the sweep: p50 {:.1} -> {:.1} us, p99 {:.1} -> \
         {:.1} us, p99.9 {:.1} -> {:.1} us",
        control.setting,
        control.first.view_p50_us,
        control.again.view_p50_us,
        control.first.view_p99_us,
        control.again.view_p99_us,
        control.first.view_p999_us,
        control.again.view_p999_us,
    );
    for note in &document.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(
        out,
        "wrote {}, {} and {}",
        out_dir.join(CSV_FILE).display(),
        out_dir.join(JSON_FILE).display(),
        out_dir.join(SVG_FILE).display()
    );
    out
}
