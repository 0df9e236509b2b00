//! The text summary of `helios demo`, rendered from the JSON summary's struct.

use std::fmt::Write as _;

use super::ratio;
use super::summary::{DemoSummary, Percentiles};
use crate::text::{Align, bytes, pairs, table, thousands, thousands_f64, times, us};

fn latency_cells(p: &Percentiles) -> Vec<String> {
    let f = |ns: u64| us(ns as f64);
    vec![f(p.p50), f(p.p99), f(p.p999), f(p.max)]
}

/// The summary as text: what `helios demo` prints without `--json`.
pub(super) fn to_text(s: &DemoSummary) -> String {
    let mut out = String::new();
    let search = &s.search;
    let _ = writeln!(
        out,
        "helios demo: a Monte Carlo tree search over Connect Four, every position in the store\n\
         store {} ({})\n",
        s.dir,
        if s.kept {
            "kept"
        } else {
            "temporary, removed at exit"
        }
    );
    let moves: u64 = s
        .classes
        .iter()
        .filter(|c| c.class == "critical")
        .map(|c| c.events)
        .sum();
    let _ = writeln!(
        out,
        "{} simulations in {:.1} s (seed {:#x}, a move every {} simulations): {} games, {} moves \
         played, {} commits/s\n",
        thousands(search.simulations),
        search.seconds,
        search.seed,
        search.promote_every,
        thousands(search.games_started),
        thousands(moves),
        thousands_f64(search.commits_per_second),
    );

    let mut rows = Vec::new();
    for c in &s.classes {
        let mut row = vec![
            format!("  {}", c.class),
            thousands(c.commits),
            thousands(c.events),
            format!("{:.1}%", c.commit_share * 100.0),
        ];
        row.extend(latency_cells(&c.latency));
        rows.push(row);
    }
    out.push_str(&table(
        0,
        &[
            ("commits (latency in us)", Align::Left),
            ("COMMITS", Align::Right),
            ("EVENTS", Align::Right),
            ("SHARE", Align::Right),
            ("p50", Align::Right),
            ("p99", Align::Right),
            ("p99.9", Align::Right),
            ("max", Align::Right),
        ],
        &rows,
    ));

    let st = &s.storage;
    let levels: Vec<String> = st
        .checkpoint_levels
        .iter()
        .map(|l| format!("L{} {}", l.level, bytes(l.bytes)))
        .collect();
    out.push_str("\non disk (what this run added)\n");
    out.push_str(&pairs(
        2,
        &[
            (
                "log",
                format!(
                    "{} for {} moves and the game streams' creation; no speculative event",
                    bytes(st.log_bytes),
                    thousands(st.durable_events)
                ),
            ),
            (
                "checkpoints",
                format!(
                    "{} in {} checkpoints ({}); sync_checkpoints after the search: {:.1} ms",
                    bytes(st.checkpoint_bytes),
                    thousands(st.checkpoints),
                    levels.join(", "),
                    st.checkpoint_sync_seconds * 1000.0
                ),
            ),
        ],
    ));

    let r = &s.reads;
    let _ = writeln!(
        out,
        "\nrandom-access state reads, warm ({} of each; branch nodes from {} live branches)",
        thousands(r.samples),
        thousands(r.live_branches)
    );
    let mut durable_row = vec!["  durable version (Engine::view)".to_owned()];
    durable_row.extend(latency_cells(&r.durable));
    let mut branch_row = vec!["  branch node (Engine::view_branch)".to_owned()];
    branch_row.extend(latency_cells(&r.branch));
    out.push_str(&table(
        0,
        &[
            ("  latency in us", Align::Left),
            ("p50", Align::Right),
            ("p99", Align::Right),
            ("p99.9", Align::Right),
            ("max", Align::Right),
        ],
        &[durable_row, branch_row],
    ));
    let replayed = |p: &Percentiles| {
        format!(
            "p50 {}, p99 {}, max {}, mean {:.1}",
            p.p50, p.p99, p.max, p.mean
        )
    };
    out.push_str(&pairs(
        2,
        &[
            ("events replayed per read", replayed(&r.replayed_events)),
            (
                "  during the search",
                replayed(&r.replayed_events_during_search),
            ),
            (
                "checked",
                format!(
                    "{} reads, each equal to a replay from the first event",
                    thousands(r.checked)
                ),
            ),
        ],
    ));

    let d = &s.peers.every_commit_durable;
    let p = &s.peers.replay_from_start;
    let _ = writeln!(out, "\nagainst naive designs, in this run");
    let row = |what: &str, helios: String, naive: String, ratio: f64| {
        vec![format!("  {what}"), helios, naive, times(ratio)]
    };
    let micro = |ns: u64| format!("{} us", us(ns as f64));
    let mean = |p: &Percentiles| format!("{} us", us(p.mean));
    let rows = vec![
        row(
            &format!(
                "every commit durable, first {} commits: mean",
                thousands(d.commits)
            ),
            mean(&d.helios),
            mean(&d.naive),
            d.time_ratio,
        ),
        row(
            "  p99",
            micro(d.helios.p99),
            micro(d.naive.p99),
            ratio(d.naive.p99, d.helios.p99),
        ),
        row(
            "  log bytes per commit",
            format!("{:.1}", d.helios_log_bytes_per_commit),
            format!("{:.1}", d.naive_log_bytes_per_commit),
            d.bytes_ratio,
        ),
        row(
            "read by replay from the start: durable p50",
            micro(s.reads.durable.p50),
            micro(p.durable.p50),
            p.durable_p50_ratio,
        ),
        row(
            "  durable p99",
            micro(s.reads.durable.p99),
            micro(p.durable.p99),
            p.durable_p99_ratio,
        ),
        row(
            "  branch node p50",
            micro(s.reads.branch.p50),
            micro(p.branch.p50),
            p.branch_p50_ratio,
        ),
        row(
            "  branch node p99",
            micro(s.reads.branch.p99),
            micro(p.branch.p99),
            p.branch_p99_ratio,
        ),
    ];
    out.push_str(&table(
        0,
        &[
            ("", Align::Left),
            ("HELIOS", Align::Right),
            ("NAIVE", Align::Right),
            ("NAIVE/HELIOS", Align::Right),
        ],
        &rows,
    ));

    let ro = &s.reopen;
    let _ = writeln!(
        out,
        "\nreopen: close {:.1} ms, open {:.1} ms; {} games read back, {} events, each the move \
         promoted\nwall time {:.1} s",
        ro.close_seconds * 1000.0,
        ro.reopen_seconds * 1000.0,
        thousands(ro.games),
        thousands(ro.events_checked),
        s.wall_seconds
    );
    out
}
