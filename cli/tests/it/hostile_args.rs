//! Every numeric option of every command, given hostile numbers: nan, infinity, -1, 2^64,
//! 2^64 - 1, 1e30 and a value too large for the memory or time it implies. Each run is under
//! `ulimit -v` (an allocation bomb fails the test, not the machine) and a deadline (a run that
//! would never end fails it too). Most values are refused before anything runs: exit status
//! 2, and clap's `invalid value 'VALUE' for '--OPTION ...'` with the accepted range. The few
//! an option's range holds (2^64 - 1 is a valid version, seed or fanout) run to a status a
//! script can read, never a panic or an abort.

use crate::support::{HOSTILE_MEMORY_KIB, assert_no_crash, run_limited};

/// Values no numeric option takes.
const ALWAYS_REFUSED: [&str; 5] = ["nan", "inf", "-1", "18446744073709551616", "1e30"];
/// 2^64 - 1: the largest u64, valid only where the range is the whole type.
const U64_MAX: &str = "18446744073709551615";

/// What a value given to an option must lead to.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Refused by the option's parser: exit 2, the option and the value named, the range given.
    Refused,
    /// Accepted by the parser; the run ends with this exit status and a stderr holding this
    /// text (empty: anything).
    Runs(i32, &'static str),
}

/// One numeric option: the command line around it (`{}` is `--option=value`; a default of the
/// same option there is dropped), the option, its stdin, and what 2^64 - 1 and its own
/// too-large value lead to.
struct Row {
    args: &'static [&'static str],
    option: &'static str,
    stdin: &'static [u8],
    u64_max: Expect,
    /// A value too large for what it implies, and what it leads to.
    too_large: (&'static str, Expect),
}

/// Placeholders in `Row::args`: the store (with stream `s` at v1 holding `a`), a fresh
/// directory, the tune output and scratch directories.
const STORE: &str = "STORE";
const FRESH: &str = "FRESH";
const OUT: &str = "OUT";
const SCRATCH: &str = "SCRATCH";

const DEMO: &[&str] = &[
    "demo",
    "--dir",
    FRESH,
    "--simulations",
    "30",
    "--reads",
    "3",
    "--peer-seconds",
    "0",
    "{}",
];
const TUNE: &[&str] = &[
    "tune",
    "--events",
    "40",
    "--fanouts",
    "4",
    "--levels",
    "1",
    "--samples",
    "5",
    "--out",
    OUT,
    "--scratch-dir",
    SCRATCH,
    "{}",
];
const TUNE_MCTS: &[&str] = &[
    "tune",
    "--workload",
    "mcts",
    "--simulations",
    "30",
    "--fanouts",
    "4",
    "--levels",
    "1",
    "--samples",
    "5",
    "--out",
    OUT,
    "--scratch-dir",
    SCRATCH,
    "{}",
];

fn rows() -> Vec<Row> {
    use Expect::{Refused, Runs};
    let row = |args, option, u64_max, too_large| Row {
        args,
        option,
        stdin: b"",
        u64_max,
        too_large,
    };
    vec![
        Row {
            stdin: b"set a 2\n",
            ..row(
                &["append", STORE, "s", "{}"],
                "--expected",
                Runs(2, "conflict on stream `s`"),
                ("4294967296", Runs(2, "conflict on stream `s`")),
            )
        },
        Row {
            stdin: b"set a 2\n",
            ..row(
                &["append", FRESH, "s", "{}"],
                "--segment-size-bytes",
                Refused,
                ("4294967296", Refused),
            )
        },
        Row {
            stdin: b"s\tset a 2\n",
            ..row(
                &["import", FRESH, "{}"],
                "--segment-size-bytes",
                Refused,
                ("4294967296", Refused),
            )
        },
        row(
            &["read", STORE, "s", "{}"],
            "--from",
            Runs(2, "its head is v1"),
            ("4294967296", Runs(2, "its head is v1")),
        ),
        row(
            &["read", STORE, "s", "{}"],
            "--to",
            Runs(0, ""),
            ("4294967296", Runs(0, "")),
        ),
        row(
            &["read", STORE, "s", "{}"],
            "--segment-size-bytes",
            Refused,
            ("4294967296", Refused),
        ),
        row(
            &["get", STORE, "s", "a", "{}"],
            "--at",
            Runs(2, "its head is v1"),
            ("4294967296", Runs(2, "its head is v1")),
        ),
        row(
            &["get", STORE, "s", "a", "{}"],
            "--segment-size-bytes",
            Refused,
            ("4294967296", Refused),
        ),
        row(
            &["inspect", STORE, "{}"],
            "--segment-size-bytes",
            Refused,
            ("4294967296", Refused),
        ),
        row(
            &["stats", STORE, "{}"],
            "--segment-size-bytes",
            Refused,
            ("4294967296", Refused),
        ),
        row(
            &["workload", FRESH, "{}"],
            "--seconds",
            Refused,
            ("1e20", Refused),
        ),
        row(
            &["workload", FRESH, "--seconds", "0", "{}"],
            "--streams",
            Refused,
            ("4294967296", Refused),
        ),
        row(
            &["workload", FRESH, "--seconds", "0", "{}"],
            "--seed",
            Runs(0, ""),
            ("0xffffffffffffffff", Runs(0, "")),
        ),
        row(
            &["workload", FRESH, "--seconds", "0", "{}"],
            "--segment-size-bytes",
            Refused,
            ("4294967296", Refused),
        ),
        row(
            &[
                "demo",
                "--seconds",
                "1",
                "--reads",
                "3",
                "--peer-seconds",
                "0",
                "{}",
            ],
            "--simulations",
            Refused,
            ("4294967296", Refused),
        ),
        row(DEMO, "--seconds", Refused, ("1e19", Refused)),
        row(DEMO, "--peer-seconds", Refused, ("1e19", Refused)),
        row(DEMO, "--reads", Refused, ("4294967296", Refused)),
        row(DEMO, "--promote-every", Refused, ("4294967296", Refused)),
        row(
            DEMO,
            "--seed",
            Runs(0, ""),
            ("0xffffffffffffffff", Runs(0, "")),
        ),
        row(
            DEMO,
            "--segment-size-bytes",
            Refused,
            ("4294967296", Refused),
        ),
        row(TUNE, "--events", Refused, ("4294967296", Refused)),
        row(TUNE, "--keys", Refused, ("4294967296", Refused)),
        row(TUNE, "--keys-per-event", Refused, ("4294967296", Refused)),
        row(
            TUNE,
            "--seed",
            Runs(0, ""),
            ("0xffffffffffffffff", Runs(0, "")),
        ),
        row(TUNE, "--fanouts", Refused, ("4294967296", Refused)),
        row(TUNE, "--levels", Refused, ("4294967296", Refused)),
        row(TUNE, "--maps-max", Refused, ("4294967296", Refused)),
        row(TUNE, "--samples", Refused, ("4294967296", Refused)),
        row(TUNE, "--reads", Refused, ("4294967296", Refused)),
        row(TUNE, "--max-p99-us", Refused, ("1e19", Refused)),
        row(TUNE, "--max-bytes-per-event", Refused, ("1e19", Refused)),
        row(TUNE_MCTS, "--simulations", Refused, ("4294967296", Refused)),
        row(
            TUNE_MCTS,
            "--promote-every",
            Refused,
            ("4294967296", Refused),
        ),
    ]
}

#[test]
fn every_numeric_option_refuses_hostile_numbers_without_a_panic() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("store");
    let store_text = store.to_str().expect("UTF-8 path").to_owned();
    let out = run_limited(
        &["append", &store_text, "s"],
        b"set a 1\n",
        HOSTILE_MEMORY_KIB,
        60,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let mut runs = 0;
    for (index, row) in rows().iter().enumerate() {
        let mut values: Vec<(&str, Expect)> = ALWAYS_REFUSED
            .iter()
            .map(|&value| (value, Expect::Refused))
            .collect();
        values.push((U64_MAX, row.u64_max));
        values.push(row.too_large);
        for (value_index, (value, expect)) in values.into_iter().enumerate() {
            // Every run that may create something gets directories of its own.
            let case = tmp.path().join(format!("case-{index}-{value_index}"));
            let path = |name: &str| case.join(name).to_str().expect("UTF-8").to_owned();
            let option_value = format!("{}={value}", row.option);
            // The row's own option replaces any default the command line around it gives.
            let mut around: Vec<&str> = Vec::new();
            let mut base = row.args.iter();
            while let Some(&arg) = base.next() {
                if arg == row.option {
                    base.next();
                } else {
                    around.push(arg);
                }
            }
            let args: Vec<String> = around
                .iter()
                .map(|&arg| match arg {
                    STORE => store_text.clone(),
                    FRESH => path("fresh"),
                    OUT => path("out"),
                    SCRATCH => path("scratch"),
                    "{}" => option_value.clone(),
                    other => other.to_owned(),
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let what = format!("helios {}", args.join(" "));
            let output = run_limited(&args, row.stdin, HOSTILE_MEMORY_KIB, 120);
            runs += 1;
            assert_no_crash(&output, &what);
            let err = String::from_utf8_lossy(&output.stderr);
            match expect {
                Expect::Refused => {
                    assert_eq!(output.status.code(), Some(2), "{what}: {err}");
                    let named = format!("invalid value '{value}' for '{} <", row.option);
                    assert!(
                        err.contains(&named) && err.contains("expected "),
                        "{what}: the message does not name the option, the value and the \
                         range: {err}"
                    );
                    assert!(
                        output.stdout.is_empty() && !case.join("fresh").exists(),
                        "{what}: a refused run did something"
                    );
                }
                Expect::Runs(code, needle) => {
                    assert_eq!(output.status.code(), Some(code), "{what}: {err}");
                    assert!(err.contains(needle), "{what}: {err:?} lacks {needle:?}");
                }
            }
        }
    }
    assert_eq!(runs, rows().len() * 7);
}

/// A negative number given as its own argument (`--seconds -1`) reaches the parser, which
/// names the option, rather than clap's splitter calling `-1` an unexpected argument.
#[test]
fn a_negative_number_after_a_space_is_refused_by_the_option() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let dir = dir.to_str().expect("UTF-8");
    for args in [
        vec!["workload", dir, "--seconds", "-1"],
        vec!["workload", dir, "--seconds", "-0.5"],
        vec!["tune", "--keys", "-1"],
        vec!["demo", "--peer-seconds", "-3"],
    ] {
        let output = run_limited(&args, b"", HOSTILE_MEMORY_KIB, 60);
        assert_no_crash(&output, &args.join(" "));
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("for '{} <", args[args.len() - 2]))
                && err.contains("it is negative"),
            "{args:?}: {err}"
        );
    }
}

/// Each option alone may be in range and the sweep still too large for memory: refused
/// before anything is generated, naming the limit and the options that take the most.
#[test]
fn tune_refuses_a_sweep_too_large_for_memory_before_generating_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let out = out.to_str().expect("UTF-8");
    for (args, largest) in [
        (
            vec!["--events", "2000000", "--keys-per-event", "100"],
            "--events and --keys-per-event",
        ),
        (
            vec!["--samples", "1000000", "--reads", "1000"],
            "--samples and --reads",
        ),
        (vec!["--keys", "20000000", "--events", "2000000"], "--keys"),
    ] {
        let mut full = vec!["tune", "--out", out];
        full.extend_from_slice(&args);
        let output = run_limited(&full, b"", HOSTILE_MEMORY_KIB, 60);
        assert_no_crash(&output, &full.join(" "));
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{full:?}: {err}");
        assert!(
            err.contains("more than its limit of 2.0 GiB") && err.contains(largest),
            "{full:?}: {err}"
        );
    }
}
