//! The report: every table and line `many_streams` prints on stdout (or the same as one JSON
//! object with `--json`), from what the run measured, with the targets and their verdicts.
//! Nothing here measures anything.

use helios::FileKind;
use helios_benches::args;
use helios_benches::disk::Usage;
use helios_benches::report::{mb, ratio, row, us, verdict_cell};
use helios_benches::runs::Runs;
use helios_workloads::latency::{Latencies, Summary};
use serde_json::{Value, json};

use crate::load::SQLITE_BULK_TRANSACTION_EVENTS;
use crate::loads::Loads;
use crate::opens::GET_KEY;
use crate::{Config, Measured};

/// Target: SQLite's latest-state load / Helios's, at p50 and at p99, at least this.
const TARGET_LATEST_SPEEDUP: f64 = 3.0;
/// Target: a whole warm `helios get` process, median, at most this many milliseconds.
const TARGET_GET_MS: f64 = 20.0;
/// Target: allocated bytes outside the log's segments / the log's bytes, at most this.
const TARGET_DERIVED_RATIO: f64 = 1.0;
/// Target: files in the store, at most this many.
const TARGET_FILES_MAX: u64 = 100;
/// Target: open at 10 M events / open at 1 M events, at most this (two runs compared).
const TARGET_OPEN_GROWTH: f64 = 1.5;

/// Everything the report is made of.
pub(crate) struct Report<'a> {
    pub(crate) config: &'a Config,
    pub(crate) commit: &'a str,
    pub(crate) machine: &'a helios_benches::Machine,
    pub(crate) measured: &'a Measured,
    /// The load average at the start and at the end.
    pub(crate) load_average: (String, String),
    pub(crate) run_seconds: f64,
}

/// One target: what it asks, what was measured, whether it was met (`None`: not measurable
/// in this run).
struct Verdict {
    target: String,
    measured: String,
    met: Option<bool>,
}

impl Report<'_> {
    /// Prints the whole report as Markdown.
    pub(crate) fn print(&self) {
        self.header();
        self.appends();
        self.bytes();
        self.opens();
        self.loads();
        self.targets();
        println!();
        println!(
            "load average: {} -> {}; run {:.0} s",
            self.load_average.0, self.load_average.1, self.run_seconds
        );
    }

    fn header(&self) {
        let Report { config, commit, .. } = self;
        println!(
            "command: {}",
            args::command_line("many_streams", &config.args)
        );
        println!("commit: {commit}");
        println!("machine: {}", self.machine);
        println!(
            "workload: {} ({} events; `set kN VALUE` with 40-60 byte values, 1 in 10 `del kN`)",
            config.workload,
            config.workload.events_count()
        );
    }

    fn appends(&self) {
        let Some(loaded) = &self.measured.loaded else {
            println!();
            println!("Appends: not measured (--reopen-only).");
            return;
        };
        println!();
        println!(
            "Appends (bulk load: every event but the last {} of the run; critical sample: \
             those last events, one durable append each, the stores taking turns):",
            self.config.critical
        );
        println!();
        println!(
            "| store | bulk load | events | events/s (calls) | events/s (durable) | critical \
             appends | p50 us | p99 us |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        let critical = |latencies: Option<&Latencies>| {
            latencies.map_or_else(
                || ["-".to_owned(), "-".to_owned(), "-".to_owned()],
                |l| {
                    let s = l.summary();
                    [s.count.to_string(), us(s.median_us), us(s.p99_us)]
                },
            )
        };
        let helios = &loaded.helios;
        let mut cells = vec![
            "helios".to_owned(),
            "one `Durability::Normal` append per event, then `Engine::sync`".to_owned(),
            helios.events.to_string(),
            format!("{:.0}", helios.events_per_s()),
            format!("{:.0}", helios.durable_events_per_s()),
        ];
        cells.extend(critical(Some(&loaded.critical.helios)));
        println!("{}", row(&cells));
        if let Some(sqlite) = &loaded.sqlite {
            let mut cells = vec![
                "sqlite".to_owned(),
                format!(
                    "transactions of {SQLITE_BULK_TRANSACTION_EVENTS} events, WAL, \
                     `synchronous=FULL`"
                ),
                sqlite.events.to_string(),
                format!("{:.0}", sqlite.events_per_s()),
                format!("{:.0}", sqlite.durable_events_per_s()),
            ];
            cells.extend(critical(loaded.critical.sqlite.as_ref()));
            println!("{}", row(&cells));
        }
        println!();
        println!(
            "Checkpoints built by `engine.checkpoints().sync()` in {:.2} s; `Engine::close` \
             {:.1} ms; SQLite wrote {} snapshot rows.",
            loaded.checkpoint_sync_seconds, loaded.close_ms, loaded.sqlite_snapshots
        );
    }

    fn bytes(&self) {
        let m = self.measured;
        println!();
        println!(
            "Bytes on disk (Helios closed; SQLite as its load left it, WAL included), MB = 10^6 \
             bytes:"
        );
        println!();
        println!("| files | count | apparent MB | allocated MB |");
        println!("|---|---:|---:|---:|");
        let usage_row = |label: &str, u: Usage| {
            row(&[
                label.to_owned(),
                u.files.to_string(),
                format!("{:.1}", mb(u.apparent_bytes as f64)),
                format!("{:.1}", mb(u.allocated_bytes as f64)),
            ])
        };
        for kind in FileKind::ALL {
            println!("{}", usage_row(kind_label(kind), m.disk.of(kind).into()));
        }
        println!("{}", usage_row("**helios total**", m.disk.total().into()));
        if let Some(sqlite) = m.sqlite_disk {
            println!(
                "{}",
                usage_row("sqlite (`events.db`, `-wal`, `-shm`)", sqlite)
            );
        }
        println!();
        let levels: Vec<String> = m
            .checkpoints
            .by_level
            .iter()
            .enumerate()
            .map(|(i, l)| {
                format!(
                    "level {}: {} checkpoints, {:.1} MB",
                    i + 1,
                    l.count,
                    mb(l.bytes as f64)
                )
            })
            .collect();
        println!(
            "Log through its last record: {:.1} MB; derived bytes (allocated outside the log's \
             segments) / log: {}. Checkpoints: {}, {:.1} MB ({}{}).",
            mb(m.log_used_bytes as f64),
            ratio(
                m.disk.derived().allocated_bytes as f64,
                m.log_used_bytes as f64
            ),
            m.checkpoints.count,
            mb(m.checkpoints.bytes as f64),
            levels.join("; "),
            match m.checkpoints.after_heavy_events.count {
                0 => String::new(),
                count => format!("; after heavy events: {count}"),
            }
        );
    }

    fn opens(&self) {
        let m = self.measured;
        println!();
        println!("Open, page cache warm (milliseconds):");
        println!();
        println!("| what | runs | median ms | p99 ms | min ms | max ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        // Two decimals: an open is well under a millisecond now, and the 10 M / 1 M ratio is
        // read from these medians.
        let runs_row = |label: &str, runs: &Runs| {
            let ms = |v: f64| format!("{v:.2}");
            row(&[
                label.to_owned(),
                runs.count().to_string(),
                ms(runs.median_ms()),
                ms(runs.quantile_ms(0.99)),
                ms(runs.min_ms()),
                ms(runs.max_ms()),
            ])
        };
        println!("{}", runs_row("`Engine::open` in process", &m.opens.open));
        println!("{}", runs_row("`Engine::close` after it", &m.opens.close));
        println!(
            "{}",
            runs_row(
                &format!("`helios get DIR STREAM {GET_KEY}`, whole process"),
                &m.gets.runs
            )
        );
        println!();
        println!(
            "Every `helios get` answer checked against the reference: {} values, {} absent.",
            m.gets.present, m.gets.absent
        );
    }

    fn loads(&self) {
        let m = self.measured;
        println!();
        println!(
            "Loads of a random stream's state, warm (microseconds; every answer checked \
             against the generator's reference state):"
        );
        println!();
        println!("| load | store | samples | p50 us | p99 us | p99.9 us | max us |");
        println!("|---|---|---:|---:|---:|---:|---:|");
        for (label, helios_call, loads) in [
            ("latest state", "helios `head` + `state_at`", &m.latest),
            (
                "state at a random version",
                "helios `state_at`",
                &m.at_version,
            ),
        ] {
            let helios = loads.helios.summary();
            println!("{}", load_row(label, helios_call, &helios));
            if let Some(sqlite) = &loads.sqlite {
                println!(
                    "{}",
                    load_row(
                        label,
                        "sqlite newest snapshot + events after it",
                        &sqlite.summary()
                    )
                );
            }
        }
        println!();
        println!(
            "Answers checked: {} latest, {} at a version (warm-up included).",
            m.latest.checked, m.at_version.checked
        );
    }

    /// The targets and their verdicts.
    fn verdicts(&self) -> Vec<Verdict> {
        let m = self.measured;
        let mut verdicts = Vec::new();
        let speedups = speedups(&m.latest);
        for (name, speedup) in [("p50", speedups.0), ("p99", speedups.1)] {
            verdicts.push(Verdict {
                target: format!(
                    "latest-state load, SQLite / Helios at {name} >= {TARGET_LATEST_SPEEDUP}x"
                ),
                measured: speedup
                    .map_or_else(|| "- (no SQLite)".to_owned(), |s| format!("{s:.2}x")),
                met: speedup.map(|s| s >= TARGET_LATEST_SPEEDUP),
            });
        }
        let get = m.gets.runs.median_ms();
        verdicts.push(Verdict {
            target: format!("`helios get` whole process, warm, median <= {TARGET_GET_MS} ms"),
            measured: format!("{get:.1} ms (p99 {:.1} ms)", m.gets.runs.quantile_ms(0.99)),
            met: Some(get <= TARGET_GET_MS),
        });
        let derived = m.disk.derived().allocated_bytes as f64
            / (m.log_used_bytes as f64).max(f64::MIN_POSITIVE);
        verdicts.push(Verdict {
            target: format!("derived bytes / log <= {TARGET_DERIVED_RATIO}x"),
            measured: format!("{derived:.2}x"),
            met: Some(derived <= TARGET_DERIVED_RATIO),
        });
        let files = m.disk.total().files;
        verdicts.push(Verdict {
            target: format!("files in the store <= {TARGET_FILES_MAX}"),
            measured: files.to_string(),
            met: Some(files <= TARGET_FILES_MAX),
        });
        verdicts.push(Verdict {
            target: format!("open at 10 M events <= {TARGET_OPEN_GROWTH}x open at 1 M"),
            measured: format!(
                "open here: {:.2} ms at {} events (compare two runs)",
                m.opens.open.median_ms(),
                self.config.workload.events_count()
            ),
            met: None,
        });
        verdicts
    }

    fn targets(&self) {
        println!();
        println!("Targets:");
        println!();
        println!("| target | measured | verdict |");
        println!("|---|---|---|");
        for v in self.verdicts() {
            println!(
                "{}",
                row(&[
                    v.target.as_str(),
                    v.measured.as_str(),
                    v.met.map_or("not in one run", verdict_cell),
                ])
            );
        }
    }

    /// The whole report as one JSON object.
    pub(crate) fn json(&self) -> Value {
        let m = self.measured;
        let config = self.config;
        let usage = |u: Usage| serde_json::to_value(u).unwrap_or(Value::Null);
        json!({
            "command": args::command_line("many_streams", &config.args),
            "commit": self.commit,
            "machine": self.machine.to_string(),
            "workload": {
                "name": config.workload.to_string(),
                "streams": config.workload.streams,
                "events_per_stream": config.workload.events_per_stream,
                "keys_per_stream": config.workload.keys_per_stream,
                "seed": config.workload.seed,
                "events": config.workload.events_count(),
            },
            "appends": m.loaded.as_ref().map(|l| json!({
                "helios_bulk": l.helios,
                "sqlite_bulk": l.sqlite,
                "sqlite_bulk_transaction_events": SQLITE_BULK_TRANSACTION_EVENTS,
                "helios_critical": summary_json(&l.critical.helios.summary()),
                "sqlite_critical": l.critical.sqlite.as_ref().map(|s| summary_json(&s.summary())),
                "checkpoint_sync_seconds": l.checkpoint_sync_seconds,
                "close_ms": l.close_ms,
                "sqlite_snapshots": l.sqlite_snapshots,
            })),
            "disk": {
                "by_kind": FileKind::ALL.iter().map(|&k| json!({
                    "kind": k.name(),
                    "usage": usage(m.disk.of(k).into()),
                })).collect::<Vec<_>>(),
                "total": usage(m.disk.total().into()),
                "directories": m.disk.directories(),
                "log_used_bytes": m.log_used_bytes,
                "derived_allocated_bytes": m.disk.derived().allocated_bytes,
                "sqlite": m.sqlite_disk.map(usage),
                "checkpoints": m.checkpoints.count,
                "checkpoint_packs": m.checkpoints.packs,
                "checkpoint_bytes": m.checkpoints.bytes,
                "checkpoint_levels": m.checkpoints.by_level.iter()
                    .map(|l| json!({"checkpoints": l.count, "bytes": l.bytes}))
                    .collect::<Vec<_>>(),
            },
            "opens": m.opens,
            "helios_get": m.gets,
            "loads": {
                "latest": loads_json(&m.latest),
                "random_version": loads_json(&m.at_version),
            },
            "targets": self.verdicts().iter().map(|v| json!({
                "target": v.target,
                "measured": v.measured,
                "met": v.met,
            })).collect::<Vec<_>>(),
            "load_average": [self.load_average.0, self.load_average.1],
            "run_seconds": self.run_seconds,
        })
    }
}

/// One row of the loads table.
fn load_row(label: &str, store: &str, s: &Summary) -> String {
    row(&[
        label.to_owned(),
        store.to_owned(),
        s.count.to_string(),
        us(s.median_us),
        us(s.p99_us),
        us(s.p999_us),
        us(s.max_us),
    ])
}

/// SQLite's latency over Helios's at p50 and at p99 (above 1: Helios is faster).
fn speedups(loads: &Loads) -> (Option<f64>, Option<f64>) {
    let helios = loads.helios.summary();
    let Some(sqlite) = loads.sqlite.as_ref().map(Latencies::summary) else {
        return (None, None);
    };
    let over = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    (
        over(sqlite.median_us, helios.median_us),
        over(sqlite.p99_us, helios.p99_us),
    )
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "count": s.count,
        "p50_us": s.median_us,
        "p99_us": s.p99_us,
        "p999_us": s.p999_us,
        "max_us": s.max_us,
        "mean_us": s.mean_us,
    })
}

fn loads_json(loads: &Loads) -> Value {
    json!({
        "helios": summary_json(&loads.helios.summary()),
        "sqlite": loads.sqlite.as_ref().map(|s| summary_json(&s.summary())),
        "checked": loads.checked,
    })
}

/// A kind of store file's row name in the bytes table.
fn kind_label(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Segments => "log segments (`log/*.log`)",
        FileKind::Spare => "spare segment (`log/*.spare`)",
        FileKind::Metadata => "metadata (`meta/`, `log/*.idx`)",
        FileKind::Checkpoints => "checkpoints (`checkpoints/`, `packs/`)",
        FileKind::SetAside => "set aside by a repair (`repair-*/`)",
        FileKind::Other => "other (`FORMAT`, `LOCK`, ...)",
    }
}
