//! The report: every table and line `checkpoint_reads` prints on stdout, in order, from what
//! the run measured. Each part is one method of [`Report`]; none measures anything.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use helios::{CheckpointInfo, CheckpointStats, Position, SegmentInfo};
use helios_benches::report::{mib, one_decimal, percentile_cells, ratio, row, verdict};
use helios_peers::snapshot::SnapshotPeer;
use helios_workloads::kv::KvWorkload;
use helios_workloads::latency::Summary;

use crate::floors::DiskFloor;
use crate::measure::{BLOCK_BYTES, Measured};
use crate::{
    APPEND_BATCH, Build, Config, ROUND_HEAD, TARGET_BYTES_VS_FULL, TARGET_COLD_P99_US,
    TARGET_COLD_PAGES, TARGET_SPEEDUP_VS_SNAPSHOTS, TARGET_WARM_P99_US,
};

/// One row of the reads table.
struct Row<'a> {
    workload: &'a str,
    reads: usize,
    latency: Summary,
}

impl fmt::Display for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cells = vec![
            self.workload.to_owned(),
            self.latency.count.to_string(),
            self.reads.to_string(),
        ];
        cells.extend(percentile_cells(&self.latency, one_decimal));
        f.write_str(&row(&cells))
    }
}

/// Bytes the log holds for the workload's events: one record frame per event (header plus
/// payload), segment headers and the stream's creation record not counted.
fn log_frame_bytes(workload: &KvWorkload) -> u64 {
    workload
        .events()
        .iter()
        .map(|e| helios_log::format::frame_len(e.len()) as u64)
        .sum()
}

/// Everything the report is made of.
#[derive(Clone, Copy)]
pub(crate) struct Report<'a> {
    pub(crate) config: &'a Config,
    pub(crate) workload: &'a KvWorkload,
    pub(crate) build: &'a Build,
    /// The checkpoint stats right after `sync_checkpoints`.
    pub(crate) stats: &'a CheckpointStats,
    /// The same after the reads (equal, unless something was rebuilt meanwhile).
    pub(crate) stats_after: &'a CheckpointStats,
    pub(crate) snapshots: &'a SnapshotPeer,
    pub(crate) measured: &'a Measured,
    pub(crate) segments: &'a [SegmentInfo],
    pub(crate) log_end: Position,
    pub(crate) checkpoints: &'a [CheckpointInfo],
}

impl Report<'_> {
    /// Prints the whole report.
    pub(crate) fn print(&self) {
        self.reads();
        self.warm_time();
        self.bytes();
        self.building();
        self.targets();
    }

    /// Bytes of the top level's checkpoints (the full states).
    fn full_bytes(&self) -> f64 {
        self.stats.by_level.last().map_or(0, |l| l.bytes) as f64
    }

    /// The latency table of every workload and floor, their ratios and the machine's noise.
    fn reads(&self) {
        let Report {
            config, measured, ..
        } = *self;
        let warm = measured.helios_warm.summary();
        let floor = measured.floor.summary();
        let memory_floor = measured.memory_floor.summary();
        let wide_floor = measured.wide_floor.summary();
        let file_floor = measured.file_floor.summary();
        let wide_mib = mib(measured.wide_floor_bytes);
        let cold = measured.helios_cold.summary();
        let disk_floor = measured.cold.disk_floor.summary();
        let snap = measured.snapshots.summary();
        let replay = measured.replay.summary();
        let reads = config.reads;
        println!();
        println!("Reads at uniformly random versions (latency per sample, in microseconds):");
        println!();
        println!("| workload | samples | point reads | median us | p99 us | p99.9 us | max us |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let every = config.snapshot_every;
        let rows = [
            Row {
                workload: "helios warm: view + point reads",
                reads,
                latency: warm,
            },
            Row {
                workload: "noise floor: fixed CPU work of the warm median, after each warm sample",
                reads: 0,
                latency: floor,
            },
            Row {
                workload: "memory floor: dependent random loads of the warm median over 64 MiB, after each",
                reads: 0,
                latency: memory_floor,
            },
            Row {
                workload: &format!(
                    "memory floor over {wide_mib:.0} MiB (the checkpoint files' size), after each"
                ),
                reads: 0,
                latency: wide_floor,
            },
            Row {
                workload: &format!(
                    "memory floor over a {wide_mib:.0} MiB file map (page cache, MADV_RANDOM), after each"
                ),
                reads: 0,
                latency: file_floor,
            },
            Row {
                workload: "helios cold: evict, then view + point read",
                reads: 1,
                latency: cold,
            },
            Row {
                workload: &format!(
                    "disk floor: evict, then {} dependent random 4 KiB preads of a 64 MiB file, \
                 after each cold sample",
                    DiskFloor::READS
                ),
                reads: 0,
                latency: disk_floor,
            },
            Row {
                workload: &format!("peer: rkyv snapshot every {every} events + replay"),
                reads,
                latency: snap,
            },
            Row {
                workload: "peer: replay from the start (in memory)",
                reads,
                latency: replay,
            },
        ];
        for row in &rows {
            println!("{row}");
        }
        println!();
        println!(
            "Ratios: snapshot peer / helios warm: median {}, p99 {}, p99.9 {}; replay peer / \
         helios warm: median {}, p99 {}.",
            ratio(snap.median_us, warm.median_us),
            ratio(snap.p99_us, warm.p99_us),
            ratio(snap.p999_us, warm.p999_us),
            ratio(replay.median_us, warm.median_us),
            ratio(replay.p99_us, warm.p99_us),
        );
        println!(
            "Machine noise, p99 / median: Helios warm {}; noise floor {} (interrupts and the \
         hypervisor: +{:.1} us at p99); memory floor over 64 MiB {} (memory latency shared \
         with the host's other tenants: +{:.1} us at p99, {} loads per sample); over \
         {wide_mib:.0} MiB {} (+{:.1} us at p99, {} loads per sample); over the file map {} \
         (+{:.1} us at p99, {} loads per sample).",
            ratio(warm.p99_us, warm.median_us),
            ratio(floor.p99_us, floor.median_us),
            floor.p99_us - floor.median_us,
            ratio(memory_floor.p99_us, memory_floor.median_us),
            memory_floor.p99_us - memory_floor.median_us,
            measured.memory_floor_loads,
            ratio(wide_floor.p99_us, wide_floor.median_us),
            wide_floor.p99_us - wide_floor.median_us,
            measured.wide_floor_loads,
            ratio(file_floor.p99_us, file_floor.median_us),
            file_floor.p99_us - file_floor.median_us,
            measured.file_floor_loads,
        );
    }

    /// Where the warm Helios time goes, page faults, the slowest sample, what was checked and
    /// what the cold samples read.
    fn warm_time(&self) {
        let Report {
            config, measured, ..
        } = *self;
        let reads = config.reads;
        println!();
        println!("Where the warm Helios time goes (the same samples, split):");
        println!();
        println!("| part | samples | median us | p99 us | p99.9 us | max us |");
        println!("|---|---:|---:|---:|---:|---:|");
        let parts = &measured.warm_breakdown;
        for (part, latencies) in [
            ("Engine::view alone", &parts.view),
            (
                &*format!("{reads} point reads on the view alone"),
                &parts.reads,
            ),
            ("whole sample, view replayed 0 events", &parts.no_replay),
            (
                "whole sample, view replayed 1 or more events",
                &parts.replay,
            ),
            (
                &*format!("whole sample, first {ROUND_HEAD} of its round"),
                &parts.round_head,
            ),
            ("whole sample, the rest of its round", &parts.round_rest),
        ] {
            let s = latencies.summary();
            let mut cells = vec![part.to_owned(), s.count.to_string()];
            cells.extend(percentile_cells(&s, one_decimal));
            println!("{}", row(&cells));
        }
        println!();
        println!(
            "Page faults during the warm rounds: {} minor, {} major ({:.2} per sample).",
            parts.faults.minor_faults,
            parts.faults.major_faults,
            (parts.faults.minor_faults + parts.faults.major_faults) as f64
                / parts.view.count().max(1) as f64
        );
        if let Some((time, index, version, report)) = &parts.slowest {
            println!();
            println!(
                "Slowest warm sample: {:.1} us, sample {} of {}, version {version}: {report}",
                time.as_secs_f64() * 1e6,
                index + 1,
                parts.view.count()
            );
        }
        println!();
        let checks = &measured.checks;
        println!(
            "Checked: {} Helios views ({} point reads, {:.0}% found), every one against the \
         workload's history; {} peer point reads against Helios at the same version. Events \
         replayed per view: mean {:.2}, max {} (bound: first interval - 1 = {}); layers per view: mean \
         {:.2}.",
            checks.views,
            checks.reads,
            100.0 * checks.hits as f64 / checks.reads.max(1) as f64,
            measured.peer_reads_checked,
            checks.mean_events_replayed(),
            checks.events_replayed_max,
            config.replay_max(),
            checks.mean_layers(),
        );
        let io = &measured.cold;
        let evict_engine = io.evict_engine.summary();
        let evict_files = io.evict_files.summary();
        println!(
            "Cold samples: major page faults per sample mean {:.2} (max {}); read from disk per \
         sample mean {:.1} KiB = {:.1} pages (max {:.1} KiB), from ru_inblock. Before each \
         sample, Engine::evict_cached_pages took median {:.2} ms (p99 {:.2} ms), then \
         posix_fadvise(DONTNEED) of the store's {} files median {:.2} ms (p99 {:.2} ms). \
         The disk floor read {:.1} pages per sample.",
            io.mean_major_faults(),
            io.major_faults_max,
            io.blocks_read_sum as f64 * BLOCK_BYTES / 1024.0 / io.samples.max(1) as f64,
            io.mean_pages_read(),
            io.blocks_read_max as f64 * BLOCK_BYTES / 1024.0,
            evict_engine.median_us / 1000.0,
            evict_engine.p99_us / 1000.0,
            io.files_advised,
            evict_files.median_us / 1000.0,
            evict_files.p99_us / 1000.0,
            io.disk_floor_mean_pages_read(),
        );
    }

    /// The bytes table: log, checkpoints per level, snapshots; entries per level.
    fn bytes(&self) {
        let Report {
            config,
            workload,
            build,
            stats,
            stats_after,
            snapshots,
            measured,
            segments,
            log_end,
            checkpoints,
        } = *self;
        let every = config.snapshot_every;
        println!();
        println!("Bytes:");
        println!();
        println!("| what | files | bytes | MiB | / helios full checkpoints | / log |");
        println!("|---|---:|---:|---:|---:|---:|");
        let full = self.full_bytes();
        let log = log_frame_bytes(workload);
        let line = |what: &str, files: u64, bytes: u64| {
            println!(
                "| {what} | {files} | {bytes} | {:.1} | {} | {} |",
                mib(bytes),
                ratio(bytes as f64, full),
                ratio(bytes as f64, log as f64)
            );
        };
        line(
            "log: record frames of the stream's events",
            segments.len() as u64,
            log,
        );
        line("helios checkpoints, all levels", stats.count, stats.bytes);
        for (index, level) in stats.by_level.iter().enumerate() {
            let number = index + 1;
            let kind = if number == stats.by_level.len() {
                "full states"
            } else if number == 1 {
                "deltas, and the anchor's full state at the first checkpoint"
            } else {
                "deltas"
            };
            let interval = config
                .policy()
                .map_or(0, |p| p.interval(u32::try_from(number).unwrap_or(u32::MAX)));
            line(
                &format!("helios level {number} ({kind}, every {interval} events)"),
                level.count,
                level.bytes,
            );
        }
        let heavy = stats.after_heavy_events;
        if heavy.count > 0 {
            line(
                "helios level 0 (full states after heavy events, such as the import)",
                heavy.count,
                heavy.bytes,
            );
        }
        // The first window (below the first top-level checkpoint) has the anchor's full state on
        // top of its deltas: with a bulk import (--initial-keys) first, one more full state.
        let top = config.policy().map_or(0, |p| p.interval(p.levels()));
        let (steady_files, steady_bytes) = checkpoints
            .iter()
            .filter(|c| c.version.0 >= top)
            .fold((0, 0), |(files, bytes), c| (files + 1, bytes + c.len_bytes));
        line(
            &format!("helios checkpoints at versions >= {top} (from the first full state on)"),
            steady_files,
            steady_bytes,
        );
        line(
            &format!("peer: rkyv snapshots every {every} events"),
            snapshots.files_count(),
            snapshots.bytes(),
        );
        println!();
        println!(
            "Log: {} segment(s), {} bytes preallocated; the log ends at offset {} of segment {} \
         (headers and the stream's creation record included). Checkpoint bytes / rkyv \
         snapshots: {}.",
            segments.len(),
            segments.iter().map(|s| s.file_len_bytes).sum::<u64>(),
            log_end.offset,
            log_end.segment.0,
            ratio(stats.bytes as f64, snapshots.bytes() as f64),
        );
        let mut entries_by_level: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for (&(level, _), &entries) in &measured.layer_entries {
            let (files, sum) = entries_by_level.entry(level).or_default();
            *files += 1;
            *sum += entries as u64;
        }
        let top_entries = entries_by_level
            .get(&config.levels)
            .map_or(0, |&(_, sum)| sum);
        let delta_entries: u64 = (1..config.levels)
            .filter_map(|level| entries_by_level.get(&level))
            .map(|&(_, sum)| sum)
            .sum();
        println!(
            "Entries (values and tombstones) per level, from the warm-up's views: {}. Level 1 to {} \
         / level {}: {}, the bytes ratio an encoding with the same cost per entry at every level \
         would reach (the anchor's full state is counted with level 1).",
            entries_by_level
                .iter()
                .map(|(level, (files, sum))| format!("level {level}: {sum} in {files} checkpoints"))
                .collect::<Vec<_>>()
                .join("; "),
            config.levels - 1,
            config.levels,
            ratio((top_entries + delta_entries) as f64, top_entries as f64),
        );
        if *stats_after != *stats {
            println!(
                "Note: the checkpoint stats changed during the reads: {stats_after:?} (after sync: \
             {stats:?})."
            );
        }
        let fg = &build.foreground_stats;
        if fg.count != stats.count || fg.bytes != stats.bytes {
            println!(
                "Note: the foreground build made {} files / {} bytes, the background one {} / {}.",
                fg.count, fg.bytes, stats.count, stats.bytes
            );
        }
    }

    /// The building table: generating, loading and building checkpoints, and the snapshots.
    fn building(&self) {
        let Report {
            config,
            workload,
            build,
            stats,
            snapshots,
            ..
        } = *self;
        let every = config.snapshot_every;
        let fg = &build.foreground_stats;
        println!();
        println!("Building:");
        println!();
        println!("| step | seconds | events/s | checkpoints written |");
        println!("|---|---:|---:|---:|");
        let events = workload.events_count() as f64;
        let secs = |d: Duration| d.as_secs_f64();
        println!(
            "| generate the workload | {:.2} | - | - |",
            secs(build.generate)
        );
        println!(
            "| background threads off: append (normal, {APPEND_BATCH} per call) | {:.2} | {:.0} | {} |",
            secs(build.foreground_load),
            events / secs(build.foreground_load),
            build.foreground_written_before_sync
        );
        println!(
            "| background threads off: sync_checkpoints builds every checkpoint | {:.2} | {:.0} | {} |",
            secs(build.foreground_sync),
            events / secs(build.foreground_sync),
            fg.written - build.foreground_written_before_sync
        );
        println!(
            "| default engine: append (normal, {APPEND_BATCH} per call), builder in the background | {:.2} | {:.0} | {} |",
            secs(build.background_load),
            events / secs(build.background_load),
            build.background_written_at_last_append
        );
        println!(
            "| default engine: sync_checkpoints right after the last append | {:.2} | - | {} |",
            secs(build.background_sync),
            stats.written - build.background_written_at_last_append
        );
        println!(
            "| peer: fold + rkyv + write + fsync every {every} events | {:.2} | {:.0} | {} |",
            secs(build.snapshots),
            events / secs(build.snapshots),
            snapshots.files_count()
        );
        if stats.damaged > 0 || stats.rebuilt > 0 || !stats.stalled.is_empty() {
            println!(
                "Note: damaged {}, rebuilt {}, stalled streams {:?}.",
                stats.damaged, stats.rebuilt, stats.stalled
            );
        }
    }

    /// Each target with its verdict.
    fn targets(&self) {
        let Report {
            config,
            stats,
            measured,
            ..
        } = *self;
        let warm = measured.helios_warm.summary();
        let floor = measured.floor.summary();
        let memory_floor = measured.memory_floor.summary();
        let wide_floor = measured.wide_floor.summary();
        let file_floor = measured.file_floor.summary();
        let wide_mib = mib(measured.wide_floor_bytes);
        let cold = measured.helios_cold.summary();
        let disk_floor = measured.cold.disk_floor.summary();
        let snap = measured.snapshots.summary();
        let reads = config.reads;
        let io = &measured.cold;
        let full = self.full_bytes();
        println!();
        println!("Targets:");
        println!();
        println!(
            "- warm view + {reads} point reads p99 < {TARGET_WARM_P99_US} us: {:.1} us -> {} \
         (floors of the same median in the same run, p99: arithmetic {:.1} us, memory over \
         64 MiB {:.1} us, over {wide_mib:.0} MiB {:.1} us, over a file map of that size \
         {:.1} us)",
            warm.p99_us,
            verdict(warm.p99_us < TARGET_WARM_P99_US),
            floor.p99_us,
            memory_floor.p99_us,
            wide_floor.p99_us,
            file_floor.p99_us,
        );
        println!(
            "- cold view + 1 point read p99 < {} ms: {:.2} ms -> {} ({} of {} samples over {0} ms; \
         the disk floor in the same run, {} page reads and nothing else: p99 {:.2} ms, {} \
         samples over {0} ms)",
            TARGET_COLD_P99_US / 1000.0,
            cold.p99_us / 1000.0,
            verdict(cold.p99_us < TARGET_COLD_P99_US),
            measured
                .helios_cold
                .count_above(Duration::from_secs_f64(TARGET_COLD_P99_US / 1e6)),
            cold.count,
            DiskFloor::READS,
            disk_floor.p99_us / 1000.0,
            measured
                .cold
                .disk_floor
                .count_above(Duration::from_secs_f64(TARGET_COLD_P99_US / 1e6)),
        );
        println!(
            "- cold: at most {TARGET_COLD_PAGES} pages faulted in per sample on average: {:.2} \
         major faults, {:.1} pages read from disk (the larger counts) -> {}",
            io.mean_major_faults(),
            io.mean_pages_read(),
            verdict(io.mean_major_faults().max(io.mean_pages_read()) <= TARGET_COLD_PAGES)
        );
        println!(
            "- at least {TARGET_SPEEDUP_VS_SNAPSHOTS}x faster than the snapshot peer at p99, warm: \
         {:.1} us / {:.1} us = {} -> {}",
            snap.p99_us,
            warm.p99_us,
            ratio(snap.p99_us, warm.p99_us),
            verdict(snap.p99_us >= TARGET_SPEEDUP_VS_SNAPSHOTS * warm.p99_us)
        );
        println!(
            "- checkpoint bytes at most {TARGET_BYTES_VS_FULL}x the full checkpoints (every {} \
         events) alone: {} / {} = {} -> {}",
            config.policy().map_or(0, |p| p.interval(config.levels)),
            stats.bytes,
            full,
            ratio(stats.bytes as f64, full),
            verdict(stats.bytes as f64 <= TARGET_BYTES_VS_FULL * full)
        );
    }
}
