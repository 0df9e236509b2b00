//! `helios demo` at a tiny size, as JSON and as text, twice on one kept store.

use crate::support::{json_f64, json_u64, ok, parse_json, run, run_in};

/// Checks a distribution of the demo's JSON: every field a number, the unit the expected one,
/// and p50 <= p95 <= p99 <= p99.9 <= max, with a mean within [0, max]. Returns the count.
fn assert_percentiles(p: &serde_json::Value, unit: &str, what: &str) -> u64 {
    assert_eq!(p["unit"], unit, "{what}: {p:#}");
    let count = json_u64(p, &["count"]);
    let q: Vec<u64> = ["p50", "p95", "p99", "p999", "max"]
        .iter()
        .map(|k| json_u64(p, &[k]))
        .collect();
    assert!(
        q.windows(2).all(|w| w[0] <= w[1]),
        "{what}: percentiles out of order: {p:#}"
    );
    let mean = json_f64(p, &["mean"]);
    assert!(
        mean >= 0.0 && mean <= q[4] as f64,
        "{what}: mean {mean} past max: {p:#}"
    );
    if count > 0 && unit == "ns" {
        assert!(q[0] > 0, "{what}: a latency of 0 ns: {p:#}");
    }
    count
}

/// The demo at a tiny size, as JSON, twice on one kept store: the fields parse, percentiles are
/// ordered, the classes add up, nothing speculative reached the log, and every game read back
/// is what was promoted; the second run adds its own games, and the store verifies.
#[test]
fn demo_json_is_complete_and_ordered_and_runs_again_on_the_same_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let dir_arg = dir.to_str().expect("UTF-8 path");
    let args = [
        "demo",
        "--dir",
        dir_arg,
        "--simulations",
        "120",
        "--reads",
        "50",
        "--peer-seconds",
        "0.2",
        "--segment-size-bytes",
        "65536",
    ];
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let text = ok(&run(&json_args, b""));
    let demo = parse_json(&text);

    let search = &demo["search"];
    assert_eq!(search["stream_prefix"], "demo-r1");
    let simulations = json_u64(search, &["simulations"]);
    assert!(simulations >= 120, "{search:#}");
    assert!(json_u64(search, &["games_started"]) >= 1, "{search:#}");
    assert!(json_f64(search, &["commits_per_second"]) > 0.0);
    assert_eq!(demo["kept"], true);

    // Two classes; the speculative one dominates; the engine counted every commit.
    let classes = demo["classes"].as_array().expect("classes");
    let class = |name: &str| {
        classes
            .iter()
            .find(|c| c["class"] == name)
            .unwrap_or_else(|| panic!("no class {name} in {classes:?}"))
    };
    let (speculative, critical) = (class("speculative"), class("critical"));
    let critical_events = json_u64(critical, &["events"]);
    assert!(critical_events >= 1, "{critical:#}");
    let share = json_f64(speculative, &["commit_share"]);
    assert!(share > 0.9 && share < 1.0, "speculative share {share}");
    for c in [speculative, critical] {
        let count = assert_percentiles(&c["latency"], "ns", "commit latency");
        assert_eq!(count, json_u64(c, &["commits"]), "{c:#}");
    }

    // Only the promoted moves reached the log.
    let storage = &demo["storage"];
    assert_eq!(json_u64(storage, &["durable_events"]), critical_events);
    assert!(json_u64(storage, &["log_bytes"]) > 0);
    let levels = storage["checkpoint_levels"].as_array().expect("levels");
    let level_files: u64 = levels.iter().map(|l| json_u64(l, &["checkpoints"])).sum();
    assert_eq!(level_files, json_u64(storage, &["checkpoints"]));

    // Reads: both kinds measured, each compared with a replay from the start.
    let reads = &demo["reads"];
    let durable = assert_percentiles(&reads["durable"], "ns", "durable view");
    let branch = assert_percentiles(&reads["branch"], "ns", "branch view");
    assert_eq!(durable, 50);
    assert!(json_u64(reads, &["live_branches"]) >= 1, "{reads:#}");
    assert_eq!(branch, 50);
    let replayed = assert_percentiles(&reads["replayed_events"], "events", "replayed");
    assert_eq!(replayed, durable + branch);
    assert!(
        json_u64(&reads["replayed_events"], &["max"]) <= 9,
        "{reads:#}"
    );
    assert_percentiles(&reads["replayed_events_during_search"], "events", "live");
    assert_eq!(json_u64(reads, &["checked"]), 2 * (durable + branch));

    // Peers: the same commits made durable one by one, the same reads replayed.
    let peer = &demo["peers"]["every_commit_durable"];
    let peer_commits = json_u64(peer, &["commits"]);
    assert!(peer_commits >= 1, "{peer:#}");
    assert_eq!(
        assert_percentiles(&peer["naive"], "ns", "naive commit"),
        peer_commits
    );
    assert_eq!(
        assert_percentiles(&peer["helios"], "ns", "helios commit"),
        peer_commits
    );
    for key in ["time_ratio", "bytes_ratio", "naive_log_bytes_per_commit"] {
        assert!(json_f64(peer, &[key]) > 0.0, "{key}: {peer:#}");
    }
    let replay = &demo["peers"]["replay_from_start"];
    assert_eq!(
        assert_percentiles(&replay["durable"], "ns", "replay"),
        durable
    );
    assert_eq!(
        assert_percentiles(&replay["branch"], "ns", "replay"),
        branch
    );
    for key in [
        "durable_p50_ratio",
        "durable_p99_ratio",
        "branch_p50_ratio",
        "branch_p99_ratio",
    ] {
        assert!(json_f64(replay, &[key]) > 0.0, "{key}: {replay:#}");
    }

    let reopen = &demo["reopen"];
    assert_eq!(json_u64(reopen, &["events_checked"]), critical_events);
    assert_eq!(
        json_u64(reopen, &["games"]),
        json_u64(search, &["games_started"])
    );
    assert!(json_f64(&demo, &["wall_seconds"]) > 0.0);

    // Again, as text, on the same store: a second set of games next to the first.
    let second = ok(&run(&args, b""));
    for expected in [
        "speculative",
        "critical",
        "p99.9",
        "every commit durable",
        "replay from the start",
        "reopen",
    ] {
        assert!(second.contains(expected), "{expected} not in:\n{second}");
    }
    let stats = parse_json(&ok(&run_in(&dir, &["stats", "--json"], b"")));
    let names: Vec<&str> = stats["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s["name"].as_str().expect("a name"))
        .collect();
    assert!(
        names.contains(&"demo-r1-g1") && names.contains(&"demo-r2-g1"),
        "{names:?}"
    );
    ok(&run_in(&dir, &["verify"], b""));
}
