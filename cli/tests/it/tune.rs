//! `helios tune` (the checkpoint-setting sweep): a uniform workload within a budget, a store
//! written by `append` (left as it was), an MCTS run, and refused arguments. Every helper here
//! is prefixed `tune_`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{assert_error, ok, run, run_in, snapshot, stderr, stdout};

/// The CSV header `helios tune` documents (docs/TUNING.md), in order.
const TUNE_CSV_COLUMNS: [&str; 20] = [
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

/// Runs `helios tune` with small sizes, scratch stores under `scratch` and results in `out`.
fn tune_run(scratch: &Path, out: &Path, more: &[&str]) -> Output {
    let mut args = vec![
        "tune",
        "--samples",
        "40",
        "--reads",
        "2",
        "--scratch-dir",
        scratch.to_str().expect("a UTF-8 temporary path"),
        "--out",
        out.to_str().expect("a UTF-8 temporary path"),
    ];
    args.extend_from_slice(more);
    run(&args, b"")
}

/// One CSV row of `helios tune`, by column name.
type TuneRow = BTreeMap<String, String>;

/// Reads `tune.csv`, checking the header and that every row has every column.
fn tune_csv(out: &Path) -> Vec<TuneRow> {
    let text = std::fs::read_to_string(out.join("tune.csv")).expect("read tune.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    assert_eq!(header, TUNE_CSV_COLUMNS, "the documented header, in order");
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "a full row: {line}");
            header
                .iter()
                .zip(cells)
                .map(|(h, c)| ((*h).to_owned(), c.to_owned()))
                .collect()
        })
        .collect()
}

fn tune_num(row: &TuneRow, column: &str) -> f64 {
    let cell = &row[column];
    let value: f64 = cell
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {cell:?} is not a number"));
    assert!(value.is_finite() && value >= 0.0, "{column} = {value}");
    value
}

fn tune_int(row: &TuneRow, column: &str) -> u64 {
    let cell = &row[column];
    cell.parse()
        .unwrap_or_else(|_| panic!("{column} = {cell:?} is not a whole number"))
}

fn tune_flag(row: &TuneRow, column: &str) -> bool {
    match row[column].as_str() {
        "true" => true,
        "false" => false,
        other => panic!("{column} = {other:?} is not true or false"),
    }
}

/// The structural checks every sweep must pass: exactly the settings asked for (each first
/// interval with each fanout; none given: the fanout itself), numbers that parse and hold
/// together, a Pareto front, a JSON document that agrees with the CSV, and a well-formed SVG.
fn tune_check(
    out: &Path,
    fanouts: &[u64],
    levels: &[u64],
    firsts: &[u64],
) -> (Vec<TuneRow>, serde_json::Value) {
    let rows = tune_csv(out);
    let mut asked: Vec<(u64, u64, u64)> = fanouts
        .iter()
        .flat_map(|&f| levels.iter().map(move |&l| (f, l)))
        .flat_map(|(f, l)| {
            let firsts = if firsts.is_empty() {
                vec![f]
            } else {
                firsts.to_vec()
            };
            firsts.into_iter().map(move |g| (f, l, g))
        })
        .collect();
    asked.sort_unstable();
    let mut got: Vec<(u64, u64, u64)> = rows
        .iter()
        .map(|r| {
            (
                tune_int(r, "fanout"),
                tune_int(r, "levels"),
                tune_int(r, "first"),
            )
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, asked, "one row per setting asked for, and no other");
    for row in &rows {
        for column in TUNE_CSV_COLUMNS {
            if column != "pareto" && column != "recommended" {
                tune_num(row, column);
            }
        }
        let (p50, p99, p999, max) = (
            tune_num(row, "view_p50_us"),
            tune_num(row, "view_p99_us"),
            tune_num(row, "view_p999_us"),
            tune_num(row, "view_max_us"),
        );
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= max,
            "{row:?}"
        );
        let first = tune_num(row, "first");
        assert!(
            tune_num(row, "replayed_max") < first,
            "at most first - 1 events replayed once checkpoints are built: {row:?}"
        );
        assert!(tune_num(row, "replayed_mean") <= tune_num(row, "replayed_max"));
        let events = tune_num(row, "events");
        let bytes = tune_num(row, "log_bytes") + tune_num(row, "checkpoint_bytes");
        assert!(
            (tune_num(row, "bytes_per_event") * events - bytes).abs() <= events * 0.01,
            "bytes per event is (log + checkpoints) / events: {row:?}"
        );
        assert!(tune_num(row, "log_bytes") > 0.0);
        tune_flag(row, "recommended");
    }
    assert!(
        rows.iter().any(|r| tune_flag(r, "pareto")),
        "some setting is on the Pareto front"
    );

    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("tune.json")).expect("read tune.json"),
    )
    .expect("tune.json is JSON");
    let settings = json["settings"].as_array().expect("a settings array");
    assert_eq!(settings.len(), rows.len());
    for (setting, row) in settings.iter().zip(&rows) {
        for column in TUNE_CSV_COLUMNS {
            let value = &setting[column];
            let same = match value {
                serde_json::Value::Bool(b) => b.to_string() == row[column],
                serde_json::Value::Number(n) => {
                    n.as_f64().expect("a number") == tune_num(row, column)
                }
                other => panic!("{column} is {other} in the JSON"),
            };
            assert!(same, "{column}: JSON {value} against CSV {}", row[column]);
        }
        let by_level = setting["checkpoint_by_level"].as_array().expect("by level");
        assert_eq!(by_level.len() as f64, tune_num(row, "levels"));
        let level_bytes: u64 = by_level
            .iter()
            .map(|l| l["bytes"].as_u64().expect("bytes"))
            .sum();
        assert_eq!(level_bytes as f64, tune_num(row, "checkpoint_bytes"));
    }
    // The noise check: one of the settings, measured twice.
    let control = json["control"]["setting"]
        .as_str()
        .expect("a control setting");
    assert!(
        rows.iter().any(|r| {
            let classic = format!("{}x{}", r["fanout"], r["levels"]);
            control == classic || control == format!("{}:{classic}", r["first"])
        }),
        "{control}"
    );
    for pass in ["first", "again"] {
        let p99 = json["control"][pass]["view_p99_us"]
            .as_f64()
            .expect("a p99");
        assert!(p99 > 0.0, "{pass}: {p99}");
    }
    let front = json["pareto_front"].as_array().expect("a front");
    assert_eq!(
        front.len(),
        rows.iter().filter(|r| tune_flag(r, "pareto")).count()
    );

    let svg = std::fs::read_to_string(out.join("tune.svg")).expect("read tune.svg");
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..40.min(svg.len())]
    );
    let document = roxmltree::Document::parse(&svg).expect("tune.svg is well-formed XML");
    assert_eq!(document.root_element().tag_name().name(), "svg");
    assert!(
        document.descendants().any(|n| n.text().map(str::trim)
            == Some("Pareto front: nothing else is both faster and smaller")),
        "the plot has its legend"
    );
    (rows, json)
}

#[test]
fn tune_sweeps_a_uniform_workload_and_recommends_within_a_budget() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let out = scratch.path().join("results");
    let output = tune_run(
        scratch.path(),
        &out,
        &[
            "--events",
            "300",
            "--keys",
            "40",
            "--fanouts",
            "8,4",
            "--levels",
            "1,2",
            "--max-p99-us",
            "1000000",
        ],
    );
    let table = ok(&output);
    let (rows, json) = tune_check(&out, &[4, 8], &[1, 2], &[]);
    // A budget every setting meets: the least checkpoint storage wins.
    let recommended: Vec<&TuneRow> = rows
        .iter()
        .filter(|r| tune_flag(r, "recommended"))
        .collect();
    assert_eq!(recommended.len(), 1, "{rows:?}");
    let least = rows
        .iter()
        .map(|r| tune_num(r, "checkpoint_bytes"))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(tune_num(recommended[0], "checkpoint_bytes"), least);
    assert!(
        tune_flag(recommended[0], "pareto"),
        "a recommendation is on the front"
    );
    assert_eq!(
        json["recommendation"]["fanout"].as_f64(),
        Some(tune_num(recommended[0], "fanout"))
    );
    assert_eq!(json["workload"]["kind"], "uniform");
    assert_eq!(json["measurement"]["clock"], "wall");
    assert_eq!(json["workload"]["events"], 300);
    for needle in [
        "fanout",
        "Pareto front",
        "recommendation: fanout",
        "tune.svg",
    ] {
        assert!(table.contains(needle), "stdout lacks {needle:?}: {table}");
    }
    // Scratch stores are removed: only the results directory is left.
    let left: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("read the scratch directory")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["results"], "scratch stores left behind");
}

#[test]
fn tune_sweeps_first_intervals_apart_from_the_fanout() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let out = scratch.path().join("results");
    let output = tune_run(
        scratch.path(),
        &out,
        &[
            "--events",
            "400",
            "--keys",
            "40",
            "--fanouts",
            "3,10",
            "--levels",
            "2,4",
            "--firsts",
            "10",
        ],
    );
    let table = ok(&output);
    let (rows, json) = tune_check(&out, &[3, 10], &[2, 4], &[10]);
    for row in &rows {
        // A checkpoint every 10 events whatever the fanout above: 40 for 400 events.
        assert_eq!(tune_int(row, "checkpoints"), 40, "{row:?}");
    }
    let three_by_four = rows
        .iter()
        .find(|r| tune_int(r, "fanout") == 3 && tune_int(r, "levels") == 4)
        .expect("the 10:3x4 row");
    // Levels every 10, 30, 90 and 270 events: one full state (at 270) under the deltas.
    let levels = json["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .find(|s| s["fanout"] == 3 && s["levels"] == 4)
        .expect("its JSON")["checkpoint_by_level"]
        .as_array()
        .expect("by level")
        .iter()
        .map(|l| l["checkpoints"].as_u64().expect("a count"))
        .collect::<Vec<_>>();
    assert_eq!(levels, [27, 9, 3, 1], "{three_by_four:?}");
    assert!(
        table.contains("first"),
        "the table shows the first interval: {table}"
    );
    assert!(table.contains("10:3x4") || json.to_string().contains("10:3x4"));
}

#[test]
fn tune_from_a_store_written_by_append_leaves_its_log_and_checkpoints_alone() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = dir.path().join("store");
    let cart: String = (0..120)
        .map(|i| match i % 9 {
            8 => format!("del item{}\n", i % 7),
            _ => format!("set item{} {}\n", i % 7, i),
        })
        .collect();
    ok(&run_in(&store, &["append", "cart"], cart.as_bytes()));
    let prices: String = (0..45)
        .map(|i| format!("set price{} {}\n", i % 3, i * 10))
        .collect();
    ok(&run_in(&store, &["append", "prices"], prices.as_bytes()));
    ok(&run_in(
        &store,
        &["append", "notes", "--raw"],
        b"not a key-value line\n",
    ));
    // Opening any store writes its metadata journal; the log and checkpoints must not change.
    let durable = |dir: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(dir)
            .into_iter()
            .filter(|(path, _)| !path.starts_with(dir.join("meta")))
            .collect()
    };
    let before = durable(&store);

    let out = dir.path().join("results");
    let output = tune_run(
        dir.path(),
        &out,
        &[
            "--from",
            store.to_str().expect("UTF-8"),
            "--fanouts",
            "2,4",
            "--levels",
            "1,3",
            "--json",
        ],
    );
    let printed: serde_json::Value =
        serde_json::from_str(&ok(&output)).expect("--json prints the JSON document");
    assert!(
        stderr(&output).contains("skipping stream `notes`"),
        "{}",
        stderr(&output)
    );
    let (_, json) = tune_check(&out, &[2, 4], &[1, 3], &[]);
    assert_eq!(printed, json, "stdout and tune.json are the same document");
    assert_eq!(json["workload"]["kind"], "from");
    assert_eq!(json["workload"]["events"], 165);
    assert_eq!(json["workload"]["streams"], 2);
    assert_eq!(json["workload"]["skipped_streams"][0]["stream"], "notes");
    assert_eq!(json["recommendation"], serde_json::Value::Null);
    assert_eq!(
        durable(&store),
        before,
        "tune --from changed the store's log or checkpoints"
    );

    // A budget nothing meets: exit 1, no recommended row, a reason naming the budget.
    let output = tune_run(
        dir.path(),
        &out,
        &[
            "--from",
            store.to_str().expect("UTF-8"),
            "--fanouts",
            "4",
            "--levels",
            "1",
            "--max-p99-us",
            "0.001",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains("no setting meets view p99 <= 0.001 us"),
        "{}",
        stdout(&output)
    );
    let rows = tune_csv(&out);
    assert_eq!(rows.len(), 1);
    assert!(!tune_flag(&rows[0], "recommended"));
}

#[test]
fn tune_records_the_moves_of_an_mcts_run() {
    let scratch = tempfile::tempdir().expect("temporary directory");
    let out = scratch.path().join("results");
    let output = tune_run(
        scratch.path(),
        &out,
        &[
            "--workload",
            "mcts",
            "--simulations",
            "160",
            "--fanouts",
            "4",
            "--levels",
            "1,2",
            "--clock",
            "thread-cpu",
            "--max-bytes-per-event",
            "100000",
        ],
    );
    ok(&output);
    let (rows, json) = tune_check(&out, &[4], &[1, 2], &[]);
    assert_eq!(json["workload"]["kind"], "mcts");
    assert_eq!(json["measurement"]["clock"], "thread-cpu");
    let events = json["workload"]["events"].as_u64().expect("events");
    assert!(
        events >= 10,
        "160 simulations at a move every 8 play about 20 moves: {events}"
    );
    assert!(json["workload"]["streams"].as_u64().expect("streams") >= 1);
    // The fastest within a space budget every setting meets.
    let recommended: Vec<&TuneRow> = rows
        .iter()
        .filter(|r| tune_flag(r, "recommended"))
        .collect();
    assert_eq!(recommended.len(), 1);
    let fastest = rows
        .iter()
        .map(|r| tune_num(r, "view_p99_us"))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(tune_num(recommended[0], "view_p99_us"), fastest);
}

#[test]
fn tune_refuses_bad_grids_and_misplaced_flags_before_running() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("results");
    // clap refuses these (its own usage message, exit 2).
    for args in [
        &["--fanouts", "1"][..],
        &["--levels", "0"],
        &["--max-p99-us", "-3"],
        &["--workload", "mcts", "--from", "somewhere"],
    ] {
        let output = tune_run(dir.path(), &out, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    for (args, needle) in [
        (
            &["--workload", "mcts", "--keys", "5"][..],
            "--keys does not apply to --workload mcts",
        ),
        (
            &["--simulations", "5"],
            "--simulations does not apply to --workload uniform",
        ),
        (
            &["--keys", "3", "--keys-per-event", "4"],
            "--keys-per-event 4 is more than the 3 keys",
        ),
        (
            &["--levels", "3", "--maps-max", "2"],
            "cannot hold the 3 layers",
        ),
        (&["--fanouts", "25", "--levels", "14"], "is not valid"),
    ] {
        assert_error(&tune_run(dir.path(), &out, args), needle);
    }
    let missing = dir.path().join("no-store");
    assert_error(
        &tune_run(
            dir.path(),
            &out,
            &["--from", missing.to_str().expect("UTF-8")],
        ),
        "no-store",
    );
    assert!(
        !out.exists(),
        "nothing is written when the arguments are refused"
    );
    assert!(!missing.exists(), "--from never creates a store");
}
