//! End-to-end tests of the `helios` binary: every command, its exit codes and error messages,
//! its `--json` output, offline verification of a damaged store, and two SIGKILL loops: one
//! proving that every version `helios append --durability critical` printed survives the
//! crash, one that `helios workload` (critical, normal and promoted writes, syncs) loses
//! nothing it acknowledged as durable and never shows a speculative event.
//!
//! One file on purpose: each integration test file is its own binary, and linking dominates
//! build time on two cores.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use helios::{Durability, Engine, Options, Version};

/// Segment size for tests that want several segments quickly (the engine's minimum is 4 KiB).
const SMALL_SEGMENT_SIZE_BYTES: u64 = 64 * 1024;
/// Segment size for the kill test: small enough that the store rolls segments (and creates
/// spare ones) several times across the kills.
const KILL_SEGMENT_SIZE_BYTES: u64 = 16 * 1024;
/// Name of the first segment of every store: the first LSN, zero-padded to 20 digits.
const FIRST_SEGMENT: &str = "00000000000000000001.log";
/// Segment header length in bytes; the first record frame starts here.
const SEGMENT_HEADER_LEN: u64 = 32;
/// Record header length in bytes (the frame prefix and fixed fields); the payload follows.
const RECORD_HEADER_LEN: u64 = 56;

fn helios() -> Command {
    Command::new(env!("CARGO_BIN_EXE_helios"))
}

/// Runs `helios args...` with `stdin` as its input and waits for it.
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = helios()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios");
    let mut input = child.stdin.take().expect("piped stdin");
    // A command that fails early (a locked store, a bad name) may exit before reading its
    // input: a broken pipe here is that, not a test failure; its output says the rest.
    if let Err(e) = input.write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write helios's stdin: {e}"
        );
    }
    drop(input);
    child.wait_with_output().expect("wait for helios")
}

fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let dir = dir.to_str().expect("a UTF-8 temporary path");
    let mut full = vec![args[0], dir];
    full.extend_from_slice(&args[1..]);
    run(&full, stdin)
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 stderr")
}

/// Asserts a successful run and returns its stdout.
fn ok(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "helios failed: stderr: {}\nstdout: {}",
        stderr(output),
        stdout(output)
    );
    stdout(output)
}

/// Asserts the CLI's error contract: exit code 2 and one `helios: ...` sentence on stderr that
/// contains `needle`, with no panic and no Debug dump.
fn assert_error(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected exit 2, stderr: {err}"
    );
    assert!(
        err.starts_with("helios: "),
        "stderr is not `helios: ...`: {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "stderr is not one line: {err:?}");
    assert!(
        err.contains(needle),
        "stderr {err:?} does not mention {needle:?}"
    );
    for debug in ["panicked", "RUST_BACKTRACE", " { ", "Os {", "kind:"] {
        assert!(
            !err.contains(debug),
            "stderr looks like a panic or Debug dump: {err:?}"
        );
    }
}

/// Every file under `dir` with its bytes, to prove a command changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            }
            let bytes = if path.is_dir() {
                Vec::new()
            } else {
                std::fs::read(&path).expect("read")
            };
            out.insert(path, bytes);
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

#[test]
fn append_read_inspect_and_verify_a_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");

    // Empty lines are skipped; the last line needs no newline.
    let out = run_in(
        &dir,
        &["append", "s", "--durability", "critical"],
        b"set a one\nset b two\n\nset c three",
    );
    assert_eq!(ok(&out), "1\n2\n3\n");
    let out = run_in(
        &dir,
        &["append", "s", "--expected", "3"],
        "set d four \u{2603}\ndel a\n".as_bytes(),
    );
    assert_eq!(ok(&out), "4\n5\n");
    let out = run_in(&dir, &["append", r#"we"ird\name"#], b"set x 1\n");
    assert_eq!(ok(&out), "1\n");

    let out = run_in(&dir, &["read", "s"], b"");
    assert_eq!(
        ok(&out),
        "1\tset a one\n2\tset b two\n3\tset c three\n4\tset d four \u{2603}\n5\tdel a\n"
    );
    let out = run_in(&dir, &["read", "s", "--from", "2", "--to", "3"], b"");
    assert_eq!(ok(&out), "2\tset b two\n3\tset c three\n");
    let out = run_in(&dir, &["read", "s", "--from", "5"], b"");
    assert_eq!(ok(&out), "5\tdel a\n");

    // What the CLI wrote is what the library reads, with the class asked for.
    {
        let engine = Engine::open(&dir, Options::default()).expect("open");
        let events: Vec<_> = engine
            .read("s", ..)
            .expect("read")
            .collect::<Result<_, _>>()
            .expect("events");
        assert_eq!(events.len(), 5);
        assert_eq!(events[0].payload, b"set a one");
        assert_eq!(events[0].durability, Durability::Critical);
        assert_eq!(events[4].durability, Durability::Normal);
    }

    let text = ok(&run_in(&dir, &["inspect"], b""));
    assert!(
        text.contains(FIRST_SEGMENT) && text.contains("active"),
        "{text}"
    );
    let stream_line = text
        .lines()
        .find(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "5", "s"])
        .unwrap_or_else(|| panic!("no `ID HEAD NAME` line for stream s in:\n{text}"));
    assert!(stream_line.starts_with("  "), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("torn tail") && l.ends_with(" none")),
        "{text}"
    );

    let json = ok(&run_in(&dir, &["inspect", "--json"], b""));
    assert!(json.starts_with('{') && json.ends_with("}\n"), "{json}");
    for expected in [
        "\"name\": \"s\",\n      \"head\": 5",
        r#""name": "we\"ird\\name""#,
        r#""torn_tail": null"#,
        &format!(r#""file": "{FIRST_SEGMENT}""#),
        r#""sealed": false"#,
    ] {
        assert!(json.contains(expected), "{expected} not in:\n{json}");
    }

    let before = snapshot(&dir);
    let out = run_in(&dir, &["verify"], b"");
    let summary = ok(&out);
    assert!(
        summary.contains("sound") && summary.contains("6 events"),
        "{summary}"
    );
    assert_eq!(snapshot(&dir), before, "verify changed the store");
}

#[test]
fn verify_names_the_file_and_offset_of_a_flipped_byte_in_a_sealed_segment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let payload_len_bytes = 400u64;
    let input: String = (0..300)
        .map(|i| {
            let event = format!(
                "set k {:0width$}",
                i,
                width = usize::try_from(payload_len_bytes).expect("small") - "set k ".len()
            );
            assert_eq!(event.len() as u64, payload_len_bytes);
            event + "\n"
        })
        .collect();
    let size = SMALL_SEGMENT_SIZE_BYTES.to_string();
    ok(&run_in(
        dir,
        &["append", "s", "--segment-size-bytes", &size],
        input.as_bytes(),
    ));
    let segments = std::fs::read_dir(dir.join("log")).expect("log dir").count();
    assert!(segments >= 3, "expected several segments, found {segments}");
    ok(&run_in(dir, &["verify"], b""));

    // The first segment holds the stream's creation record (payload "s"), then v1. Flip a bit
    // in the middle of v1's payload: the segment is sealed, so this is corruption, not a torn
    // tail, and it must be reported where it is.
    let v1_offset = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 1;
    let path = dir.join("log").join(FIRST_SEGMENT);
    let mut bytes = std::fs::read(&path).expect("read segment");
    let flip =
        usize::try_from(v1_offset + RECORD_HEADER_LEN + payload_len_bytes / 2).expect("small");
    bytes[flip] ^= 0x10;
    std::fs::write(&path, &bytes).expect("write segment");

    let before = snapshot(dir);
    let out = run_in(dir, &["verify"], b"");
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    let report = stdout(&out);
    let first = report.lines().next().expect("a finding");
    assert!(
        first.contains(&format!("{FIRST_SEGMENT} at byte {v1_offset}: ")),
        "first finding does not name the file and offset: {first}"
    );
    assert!(
        report.lines().last().expect("summary").contains("found"),
        "{report}"
    );
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(snapshot(dir), before, "verify changed the store");

    // Reading the damaged event is a loud error naming the same place.
    let out = run_in(dir, &["read", "s", "--to", "1"], b"");
    assert_error(&out, &format!("{FIRST_SEGMENT} at byte {v1_offset}"));
}

#[test]
fn errors_are_one_sentence_and_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    ok(&run_in(&dir, &["append", "s"], b"set a 1\n"));

    assert_error(
        &run_in(&dir, &["read", "nope"], b""),
        "unknown stream `nope`",
    );
    assert_error(
        &run_in(&dir, &["append", "s", "--expected", "7"], b"set b 2\n"),
        "expected head v7",
    );
    assert_error(
        &run_in(&dir, &["append", "bad\u{1}name"], b"set b 2\n"),
        "invalid stream name",
    );

    // A directory that is not a store: verify and the read-only commands refuse it, and do
    // not create a store there.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    assert_error(&run_in(&empty, &["verify"], b""), "is not a Helios store");
    let missing = tmp.path().join("missing");
    assert_error(
        &run_in(&missing, &["read", "s"], b""),
        "is not a Helios store",
    );
    assert_error(
        &run_in(&missing, &["inspect"], b""),
        "is not a Helios store",
    );
    assert!(!missing.exists(), "a read-only command created a directory");

    // A second writer.
    {
        let _engine = Engine::open(&dir, Options::default()).expect("open");
        assert_error(&run_in(&dir, &["append", "s"], b"set b 2\n"), "locked");
        assert_error(&run_in(&dir, &["read", "s"], b""), "locked");
        assert_error(&run_in(&dir, &["verify"], b""), "locked");
    }
    assert_eq!(ok(&run_in(&dir, &["read", "s"], b"")), "1\tset a 1\n");

    // Wrong arguments are clap's, with the same exit code.
    let out = run(&["append"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = run_in(&dir, &["append", "s", "--durability", "maybe"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("critical"), "{}", stderr(&out));
}

/// `helios get DIR STREAM KEY [--at V]` in `dir`: the output.
fn get(dir: &Path, stream: &str, key: &str, more: &[&str]) -> Output {
    let mut args = vec!["get", stream, key];
    args.extend_from_slice(more);
    run_in(dir, &args, b"")
}

/// Asserts that `helios get` found `key` absent: exit 1, nothing on stdout, and one line on
/// stderr naming the key, the stream and the version.
fn assert_absent(output: &Output, key: &str, stream: &str, version: u64) {
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit 1 (absent); stdout: {}, stderr: {}",
        stdout(output),
        stderr(output)
    );
    assert_eq!(stdout(output), "", "an absent key printed a value");
    assert_eq!(
        stderr(output),
        format!("absent: key `{key}` is not set in stream `{stream}` at version {version}\n")
    );
}

#[test]
fn get_reads_a_key_at_every_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let events = [
        "set a 1",
        "set b 2",
        "del a",
        "set a 3",
        "set b two words ",
        "del nothing",
        "set a ",
    ];
    let out = run_in(&dir, &["append", "s"], events.join("\n").as_bytes());
    assert_eq!(ok(&out), "1\n2\n3\n4\n5\n6\n7\n");
    ok(&run_in(&dir, &["append", "t"], b"set a other\n"));

    // The value of `a` and `b` after each version, from a fold over the events by hand.
    let expected: [(Option<&str>, Option<&str>); 8] = [
        (None, None),
        (Some("1"), None),
        (Some("1"), Some("2")),
        (None, Some("2")),
        (Some("3"), Some("2")),
        (Some("3"), Some("two words ")),
        (Some("3"), Some("two words ")),
        (Some(""), Some("two words ")),
    ];
    for (version, (a, b)) in (0u64..).zip(expected) {
        let at = version.to_string();
        for (key, value) in [("a", a), ("b", b)] {
            let out = get(&dir, "s", key, &["--at", &at]);
            match value {
                Some(value) => assert_eq!(ok(&out), format!("{value}\n"), "{key} at v{version}"),
                None => assert_absent(&out, key, "s", version),
            }
        }
    }
    // Without --at: the head. Streams do not share state.
    assert_eq!(ok(&get(&dir, "s", "b", &[])), "two words \n");
    assert_eq!(ok(&get(&dir, "s", "a", &[])), "\n");
    assert_eq!(ok(&get(&dir, "t", "a", &[])), "other\n");
    assert_absent(&get(&dir, "t", "b", &[]), "b", "t", 1);
    assert_absent(&get(&dir, "s", "nothing", &[]), "nothing", "s", 7);

    let json = ok(&get(&dir, "s", "b", &["--at", "5", "--json"]));
    assert_eq!(
        json,
        "{\n  \"stream\": \"s\",\n  \"version\": 5,\n  \"key\": \"b\",\n  \"value\": \"two words \"\n}\n"
    );
    let out = get(&dir, "s", "a", &["--at", "3", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("\"value\": null"), "{}", stdout(&out));
    assert_eq!(stderr(&out), "", "--json says `null`, not a message");
}

#[test]
fn get_explain_names_the_checkpoint_layers_and_the_events_replayed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    // Event i sets key k(i % 5) to i: after version v >= 5, every key holds one of the last
    // five versions.
    let events: String = (1..=125).map(|i| format!("set k{} {i}\n", i % 5)).collect();
    let versions: String = (1..=125).map(|i| format!("{i}\n")).collect();
    // `append` builds the checkpoints due before it exits, so the layers below are there.
    assert_eq!(
        ok(&run_in(&dir, &["append", "s"], events.as_bytes())),
        versions
    );

    // Below the first checkpoint: everything is replayed.
    assert_eq!(
        ok(&get(&dir, "s", "k3", &["--at", "8", "--explain"])),
        "8\nreplayed 8 events (5 keys changed) on top of the empty state (no checkpoint)\n"
    );
    // Version 23: the level-1 delta at 20 (the five keys changed since 10) over the anchor,
    // the full state at 10, then events 21, 22 and 23.
    assert_eq!(
        ok(&get(&dir, "s", "k3", &["--at", "23", "--explain"])),
        "23\nreplayed 3 events (3 keys changed) on top of 2 layers, newest first:\n  \
         level 1 checkpoint at version 20: 5 entries\n  \
         level 1 checkpoint at version 10: 5 entries\n"
    );
    // Version 100 is a level-2 checkpoint (a delta against the anchor): nothing to replay.
    assert_eq!(
        ok(&get(&dir, "s", "k0", &["--at", "100", "--explain"])),
        "100\nreplayed 0 events (0 keys changed) on top of 2 layers, newest first:\n  \
         level 2 checkpoint at version 100: 5 entries\n  \
         level 1 checkpoint at version 10: 5 entries\n"
    );
    // Version 123: the level-1 delta at 120 over the level-2 delta at 100 over the anchor.
    let text = ok(&get(&dir, "s", "k1", &["--at", "123", "--explain"]));
    assert_eq!(
        text,
        "121\nreplayed 3 events (3 keys changed) on top of 3 layers, newest first:\n  \
         level 1 checkpoint at version 120: 5 entries\n  \
         level 2 checkpoint at version 100: 5 entries\n  \
         level 1 checkpoint at version 10: 5 entries\n"
    );
    // An absent key still explains, on stdout, with the message on stderr.
    let out = get(&dir, "s", "k9", &["--at", "123", "--explain"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("replayed 3 events"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).starts_with("absent: key `k9`"),
        "{}",
        stderr(&out)
    );

    let json = ok(&get(
        &dir,
        "s",
        "k1",
        &["--at", "123", "--explain", "--json"],
    ));
    for expected in [
        "\"value\": \"121\"",
        "\"level\": 1,\n        \"version\": 120,\n        \"entries\": 5",
        "\"level\": 2,\n        \"version\": 100,\n        \"entries\": 5",
        "\"events_replayed\": 3",
        "\"keys_changed_by_replay\": 3",
    ] {
        assert!(json.contains(expected), "{expected} not in:\n{json}");
    }
}

#[test]
fn get_errors_name_the_stream_the_version_and_the_head() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    ok(&run_in(&dir, &["append", "s"], b"set a 1\nset a 2\n"));

    assert_error(
        &get(&dir, "s", "a", &["--at", "3"]),
        "stream `s` has no version v3: its head is v2",
    );
    assert_error(&get(&dir, "nope", "a", &[]), "unknown stream `nope`");
    assert_error(
        &get(&dir, "nope", "a", &["--at", "0"]),
        "unknown stream `nope`",
    );
    let missing = tmp.path().join("missing");
    assert_error(&get(&missing, "s", "a", &[]), "is not a Helios store");
    assert!(!missing.exists(), "`get` created a directory");

    // A version that is not a number is clap's error, with the same exit code.
    let out = get(&dir, "s", "a", &["--at", "two"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("'two'") && err.contains("--at") && err.contains("whole number"),
        "{err}"
    );

    // Raw payloads are not key-value events: reading them as state is an error naming the
    // stream and the event.
    assert_eq!(
        ok(&run_in(
            &dir,
            &["append", "r", "--raw"],
            b"set a 1\nhello world\n"
        )),
        "1\n2\n"
    );
    assert_eq!(ok(&get(&dir, "r", "a", &["--at", "1"])), "1\n");
    assert_error(&get(&dir, "r", "a", &[]), "stream `r`, event v2");
    // Key-value events appended after it are appended, with a warning once a checkpoint is
    // due (v10) and cannot be built past the raw event.
    let events: String = (3..=10).map(|i| format!("set a {i}\n")).collect();
    let out = run_in(&dir, &["append", "r"], events.as_bytes());
    let versions: String = (3..=10).map(|i| format!("{i}\n")).collect();
    assert_eq!(ok(&out), versions);
    let warning = stderr(&out);
    assert!(
        warning.starts_with("helios: warning: the state of stream `r` cannot be read from v2 on: ")
            && warning.contains("a key-value event starts with `set ` or `del `")
            && warning.lines().count() == 1,
        "{warning}"
    );
    assert_error(
        &get(&dir, "r", "a", &["--at", "10"]),
        "stream `r`, event v2",
    );
}

#[test]
fn append_refuses_a_line_that_is_not_a_key_value_event() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    // Line 3 (counting the empty line) is bad: lines 1 and 2 stay appended and printed, and
    // nothing from line 3 on is appended.
    let out = run_in(&dir, &["append", "s"], b"set a 1\n\nset a\nset b 2\n");
    assert_eq!(stdout(&out), "1\n");
    assert_error(
        &out,
        "stdin line 3 is not a key-value event: `set KEY VALUE` needs a space between the key \
         and the value",
    );
    assert_eq!(ok(&run_in(&dir, &["read", "s"], b"")), "1\tset a 1\n");

    for (line, reason) in [
        ("put a 1", "starts with `set ` or `del `"),
        ("del a b", "takes nothing after the key"),
        ("set  1", "needs a non-empty key"),
    ] {
        let out = run_in(&dir, &["append", "s"], format!("{line}\n").as_bytes());
        assert_error(&out, "stdin line 1 is not a key-value event: ");
        assert!(stderr(&out).contains(reason), "{}", stderr(&out));
    }
    // --raw appends the same lines unchecked.
    assert_eq!(
        ok(&run_in(
            &dir,
            &["append", "s", "--raw"],
            b"set a\nput a 1\n"
        )),
        "2\n3\n"
    );
    assert_eq!(
        ok(&run_in(&dir, &["read", "s"], b"")),
        "1\tset a 1\n2\tset a\n3\tput a 1\n"
    );
}

/// SplitMix64, for deterministic "random" delays without a rand dependency.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The `n`th line (0-based) the kill test feeds to the child of `round`: a key-value event,
/// distinct, with a length that varies so records straddle buffer and segment boundaries
/// differently (and with a few keys, so the checkpoints the engine builds meanwhile hold
/// overwritten keys).
fn kill_line(round: u64, n: u64) -> String {
    let pad = usize::try_from((n * 37 + round * 11) % 97).expect("small");
    format!("set k{} {round}-{n}-{}", n % 7, "p".repeat(pad))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Opens the store in `dir` with the library and checks stream `s` against `expected`
/// (version `i + 1` has payload `expected[i]`) for every version up to the head, which must be
/// at least `durable`. Returns the head.
fn check_store(dir: &Path, expected: &[String], durable: u64) -> u64 {
    let engine = Engine::builder(dir)
        .segment_size_bytes(KILL_SEGMENT_SIZE_BYTES)
        .open()
        .expect("open after the crash");
    let head = engine.head("s").unwrap_or(Version::ZERO).get();
    assert!(
        head >= durable,
        "head {head} lost printed (durable) version {durable}"
    );
    let mut next = 1;
    for event in engine.read("s", ..).expect("read") {
        let event = event.expect("event");
        assert_eq!(
            event.version.get(),
            next,
            "versions are not contiguous from 1"
        );
        let index = usize::try_from(next - 1).expect("small");
        let want = expected.get(index).unwrap_or_else(|| {
            panic!(
                "v{next} exists but only {} lines were ever sent",
                expected.len()
            )
        });
        assert_eq!(
            String::from_utf8_lossy(&event.payload),
            want.as_str(),
            "v{next} holds the wrong payload"
        );
        assert_eq!(event.durability, Durability::Critical);
        next += 1;
    }
    assert_eq!(next - 1, head, "read stopped before the head");
    engine.close().expect("close");
    head
}

/// Spawns `helios append --durability critical` on `dir`, feeds it lines and SIGKILLs it after
/// `delay_ms` (counted from its first printed version when `after_first_ack`, else from the
/// spawn, which may kill it while it recovers). Returns the printed versions, in order.
fn append_and_kill(dir: &Path, round: u64, delay_ms: u64, after_first_ack: bool) -> Vec<u64> {
    let size = KILL_SEGMENT_SIZE_BYTES.to_string();
    let dir_arg = dir.to_str().expect("UTF-8 path");
    let mut child: Child = helios()
        .args([
            "append",
            dir_arg,
            "s",
            "--durability",
            "critical",
            "--segment-size-bytes",
            &size,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios append");
    let spawned = Instant::now();
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = thread::spawn(move || {
        // Writes until the child dies (EPIPE: the test runner ignores SIGPIPE, as every Rust
        // program does).
        for n in 0.. {
            if writeln!(stdin, "{}", kill_line(round, n)).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().expect("stdout");
    let (first_ack, first_ack_rx) = mpsc::channel();
    let collector = thread::spawn(move || {
        let mut versions = Vec::new();
        for line in BufReader::new(stdout).lines() {
            // A line cut by the kill is not an acknowledgement; only whole lines count.
            let Ok(line) = line else { break };
            versions.push(line.parse::<u64>().expect("a version per line"));
            if versions.len() == 1 {
                let _ = first_ack.send(());
            }
        }
        versions
    });

    if after_first_ack && first_ack_rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("round {round}: the child printed no version within 20 s");
    }
    let start = if after_first_ack {
        Instant::now()
    } else {
        spawned
    };
    thread::sleep(Duration::from_millis(delay_ms).saturating_sub(start.elapsed()));
    sigkill(&mut child, &format!("round {round}"));
    feeder.join().expect("feeder thread");
    collector.join().expect("collector thread")
}

/// Kills `helios append --durability critical` at random moments, over and over on one store,
/// and checks after each kill that every version it printed is durable with the payload sent.
///
/// The check runs on a copy of the crashed store, so the original is left exactly as the kill
/// left it and the next child must recover it itself. Opening the copy runs the same recovery
/// on the same bytes, so the copy's head is the head the next child starts from.
#[test]
fn every_printed_critical_version_survives_sigkill() {
    const ROUNDS: u64 = 30;
    const SEED: u64 = 0x4865_6c69_6f73_4b31;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let started = Instant::now();
    // expected[i] is the payload of version i + 1.
    let mut expected: Vec<String> = Vec::new();
    let mut acknowledged_total = 0usize;
    let mut rounds_with_acks = 0;
    for round in 0..ROUNDS {
        let mut rng = SEED ^ round;
        let delay_ms = 5 + splitmix64(&mut rng) % 76;
        // One round in four is killed counting from the spawn: often during recovery.
        let after_first_ack = round % 4 != 3;
        let head_before = u64::try_from(expected.len()).expect("small");
        let printed = append_and_kill(&dir, round, delay_ms, after_first_ack);

        for (k, &version) in printed.iter().enumerate() {
            let k = u64::try_from(k).expect("small");
            assert_eq!(
                version,
                head_before + k + 1,
                "round {round}: versions printed out of order"
            );
        }
        acknowledged_total += printed.len();
        rounds_with_acks += usize::from(!printed.is_empty());

        // Every line this child could have appended, in order, after what earlier rounds left.
        let sent = (0..).map(|n| kill_line(round, n));
        let durable = printed.last().copied().unwrap_or(head_before);
        let check = tmp.path().join(format!("check-{round}"));
        copy_dir(&dir, &check);
        let mut candidates = expected.clone();
        candidates.extend(sent.take(printed.len() + 1));
        let head = check_store(&check, &candidates, durable);
        // The child appends one line at a time, so at most the append it was in when killed
        // can have survived unprinted (check_store fails on a version past `candidates`).
        assert!(
            head <= durable + 1,
            "round {round}: head {head} is past {durable} + 1"
        );
        std::fs::remove_dir_all(&check).expect("remove the check copy");
        expected.truncate(usize::try_from(head_before).expect("small"));
        expected.extend((0..head - head_before).map(|n| kill_line(round, n)));
    }
    assert!(
        rounds_with_acks >= usize::try_from(ROUNDS / 2).expect("small"),
        "only {rounds_with_acks} of {ROUNDS} children acknowledged anything"
    );
    assert!(acknowledged_total > 0);

    // The last crash is recovered by this open; then the whole store must verify clean.
    let head = check_store(
        &dir,
        &expected,
        u64::try_from(expected.len()).expect("small"),
    );
    assert_eq!(head, u64::try_from(expected.len()).expect("small"));
    let out = run_in(&dir, &["verify"], b"");
    let summary = ok(&out);
    assert!(summary.contains("sound"), "{summary}");
    eprintln!(
        "{ROUNDS} kills, {acknowledged_total} acknowledged critical appends, head v{head}, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// -------------------------------------------------------------------------------------------
// `helios demo`, `helios stats` and `--json`.

/// Parses `text` as one JSON value, naming the text when it is not JSON.
fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// `value[path...]` as a u64, failing with the path when it is missing or not one.
fn json_u64(value: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(value, |v, key| &v[*key])
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not an unsigned integer in:\n{value:#}"))
}

/// `value[path...]` as a finite f64.
fn json_f64(value: &serde_json::Value, path: &[&str]) -> f64 {
    let x = path
        .iter()
        .fold(value, |v, key| &v[*key])
        .as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in:\n{value:#}"));
    assert!(x.is_finite(), "{path:?} = {x}");
    x
}

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
    let level_files: u64 = levels.iter().map(|l| json_u64(l, &["files"])).sum();
    assert_eq!(level_files, json_u64(storage, &["checkpoint_files"]));

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

/// `helios stats`: per stream its events and checkpoint files per level, totals for the store;
/// the JSON agrees with the library, and the text table has a column per level.
#[test]
fn stats_reports_events_and_checkpoints_per_stream_and_level() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let events: String = (1..=123).map(|i| format!("set k{} {i}\n", i % 7)).collect();
    ok(&run_in(&dir, &["append", "a"], events.as_bytes()));
    ok(&run_in(&dir, &["append", "b"], b"set x 1\nset y 2\n"));

    // What stats must leave alone: the log and the checkpoints (opening the store may touch
    // fjall's own files).
    let on_disk = |dir: &Path| {
        let mut files = snapshot(&dir.join("log"));
        files.extend(snapshot(&dir.join("checkpoints")));
        files
    };
    let before = on_disk(&dir);
    let stats = parse_json(&ok(&run_in(&dir, &["stats", "--json"], b"")));
    let text = ok(&run_in(&dir, &["stats"], b""));
    assert_eq!(
        on_disk(&dir),
        before,
        "stats changed the log or the checkpoints"
    );
    assert_eq!(
        stats["dir"].as_str(),
        dir.to_str(),
        "the store directory: {stats:#}"
    );
    let level_count = json_u64(&stats, &["levels"]);
    assert_eq!(level_count, 3, "the default policy has 3 levels");
    let streams = stats["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 2);

    // The library's view of the same store, after the command closed it.
    let engine = Engine::builder(&dir)
        .background_threads(false)
        .open()
        .expect("open");
    for (stream, (name, events)) in streams.iter().zip([("a", 123), ("b", 2)]) {
        assert_eq!(stream["name"], name);
        assert_eq!(json_u64(stream, &["events"]), events);
        let checkpoints = engine.checkpoints(name).expect("checkpoints");
        assert_eq!(
            json_u64(stream, &["checkpoint_files"]),
            checkpoints.len() as u64
        );
        let levels = stream["levels"].as_array().expect("levels");
        assert_eq!(levels.len() as u64, level_count);
        for (i, level) in levels.iter().enumerate() {
            let number = i as u64 + 1;
            assert_eq!(json_u64(level, &["level"]), number, "finest first");
            let of_level: Vec<_> = checkpoints
                .iter()
                .filter(|c| u64::from(c.level) == number)
                .collect();
            assert_eq!(
                json_u64(level, &["files"]),
                of_level.len() as u64,
                "{name} L{number}"
            );
            assert_eq!(
                json_u64(level, &["bytes"]),
                of_level.iter().map(|c| c.file_len_bytes).sum::<u64>(),
                "{name} L{number}"
            );
        }
    }
    // Stream a has checkpoints at levels 1 and 2 (version 100), none at level 3 (1000).
    let a_levels = &streams[0]["levels"];
    assert!(json_u64(&a_levels[0], &["files"]) >= 1, "{a_levels:#}");
    assert_eq!(json_u64(&a_levels[1], &["files"]), 1, "{a_levels:#}");
    assert_eq!(json_u64(&a_levels[2], &["files"]), 0, "{a_levels:#}");
    assert_eq!(json_u64(&streams[1], &["checkpoint_files"]), 0);

    let totals = &stats["totals"];
    assert_eq!(json_u64(totals, &["streams"]), 2);
    assert_eq!(json_u64(totals, &["events"]), 125);
    let files: u64 = streams
        .iter()
        .map(|s| json_u64(s, &["checkpoint_files"]))
        .sum();
    assert_eq!(json_u64(totals, &["checkpoint_files"]), files);
    assert_eq!(
        json_u64(totals, &["checkpoint_bytes"]),
        engine.checkpoint_stats().bytes
    );
    let log_bytes = json_u64(totals, &["log_bytes"]);
    assert!(log_bytes > 125 * 7, "{totals:#}");
    assert!(
        json_u64(totals, &["segment_file_bytes"]) >= log_bytes,
        "{totals:#}"
    );
    assert!(json_u64(totals, &["log_segments"]) >= 1);
    engine.close().expect("close");

    let header = text
        .lines()
        .find(|l| l.contains("EVENTS"))
        .unwrap_or_else(|| panic!("no table header in:\n{text}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "ID", "EVENTS", "L1_FILES", "L1_BYTES", "L2_FILES", "L2_BYTES", "L3_FILES", "L3_BYTES",
            "NAME"
        ]
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().next_back() == Some("a") && l.contains(" 123 ")),
        "{text}"
    );
}

/// `read --json` is one object per event and line; `verify --json` says sound or lists the
/// findings, with the same exit status as the text.
#[test]
fn read_and_verify_speak_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    ok(&run_in(
        &dir,
        &["append", "s", "--durability", "critical"],
        "set a \"quoted\" \u{2603}\ndel a\n".as_bytes(),
    ));
    let lines = ok(&run_in(&dir, &["read", "s", "--json"], b""));
    let events: Vec<serde_json::Value> = lines.lines().map(parse_json).collect();
    assert_eq!(events.len(), 2, "{lines}");
    assert_eq!(events[0]["version"], 1);
    assert_eq!(events[0]["payload"], "set a \"quoted\" \u{2603}");
    assert_eq!(events[0]["durability"], "critical");
    assert!(json_u64(&events[1], &["lsn"]) > json_u64(&events[0], &["lsn"]));
    assert!(json_u64(&events[0], &["timestamp_us"]) > 0);

    let verify = parse_json(&ok(&run_in(&dir, &["verify", "--json"], b"")));
    assert_eq!(verify["sound"], true);
    assert_eq!(json_u64(&verify, &["events"]), 2);
    assert_eq!(verify["findings"], serde_json::json!([]));

    // A flipped byte in the active segment's first event (the torn-tail rules do not apply:
    // a valid record follows it).
    let path = dir.join("log").join(FIRST_SEGMENT);
    let mut bytes = std::fs::read(&path).expect("read segment");
    let flip = usize::try_from(SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 1 + RECORD_HEADER_LEN + 2)
        .expect("small");
    bytes[flip] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write segment");
    let out = run_in(&dir, &["verify", "--json"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let verify = parse_json(&stdout(&out));
    assert_eq!(verify["sound"], false);
    let finding = &verify["findings"][0];
    assert!(
        finding["path"]
            .as_str()
            .is_some_and(|p| p.ends_with(FIRST_SEGMENT)),
        "{verify:#}"
    );
    assert!(finding["offset"].is_u64(), "{verify:#}");
    assert!(finding["reason"].is_string(), "{verify:#}");
}

// -------------------------------------------------------------------------------------------
// `helios workload` under SIGKILL.

/// Streams `helios workload` writes by default (`workload-0`, ...).
const WORKLOAD_STREAMS: usize = 3;
/// Kills one store takes before the kill test starts a new one.
const WORKLOAD_ROUNDS_PER_STORE: u64 = 10;

/// One line `helios workload` printed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ack {
    /// `KIND STREAM FIRST LAST TAG`.
    Write {
        kind: String,
        stream: String,
        first: u64,
        last: u64,
        /// `SEED-SEQ`: `seq` is the write's place in the run, which is its place in the log.
        seq: u64,
    },
    /// `sync`: every write printed before it is durable.
    Sync,
}

impl Ack {
    fn parse(line: &str, seed: u64) -> Ack {
        if line == "sync" {
            return Ack::Sync;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let [kind, stream, first, last, tag] = fields[..] else {
            panic!("not a workload line: {line:?}");
        };
        assert!(
            ["critical", "normal", "promote-critical", "promote-normal"].contains(&kind),
            "unknown kind in {line:?}"
        );
        let (tag_seed, seq) = tag.split_once('-').expect("a SEED-SEQ tag");
        assert_eq!(tag_seed, seed.to_string(), "{line:?}");
        let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{line:?}"));
        let (first, last) = (number(first), number(last));
        assert!(first >= 1 && first <= last, "{line:?}");
        Ack::Write {
            kind: kind.to_owned(),
            stream: stream.to_owned(),
            first,
            last,
            seq: number(seq),
        }
    }

    /// Whether the write must survive any crash: critical ones at once, normal ones once a
    /// `sync` line follows (`synced`).
    fn durable(&self, synced: bool) -> bool {
        match self {
            Ack::Write { kind, .. } => synced || !kind.ends_with("normal"),
            Ack::Sync => false,
        }
    }
}

/// The payload `helios workload` writes for event `i` of a write of `kind` tagged `seed-seq`.
fn workload_payload(kind: &str, seed: u64, seq: u64, i: u64) -> String {
    format!("set k{i} {kind}-{seed}-{seq}-{i}")
}

/// Parses a payload `set k<i> <KIND>-<SEED>-<SEQ>-<i>` into (kind, seed, seq, i), checking that
/// both `i` agree.
fn parse_workload_payload(payload: &str) -> (String, u64, u64, u64) {
    let parsed = (|| {
        let rest = payload.strip_prefix("set k")?;
        let (key_i, value) = rest.split_once(' ')?;
        let mut parts = value.rsplitn(4, '-');
        let i: u64 = parts.next()?.parse().ok()?;
        let seq: u64 = parts.next()?.parse().ok()?;
        let seed: u64 = parts.next()?.parse().ok()?;
        let kind = parts.next()?.to_owned();
        (key_i.parse::<u64>().ok()? == i).then_some((kind, seed, seq, i))
    })();
    parsed.unwrap_or_else(|| panic!("not a workload payload: {payload:?}"))
}

/// Spawns `helios workload` on `dir` with `seed`, SIGKILLs it `delay_ms` after the spawn, and
/// returns the lines it printed (a line cut by the kill is not one).
fn workload_and_kill(dir: &Path, seed: u64, delay_ms: u64) -> Vec<Ack> {
    let size = KILL_SEGMENT_SIZE_BYTES.to_string();
    let seed_arg = seed.to_string();
    let mut child: Child = helios()
        .args([
            "workload",
            dir.to_str().expect("UTF-8 path"),
            "--seed",
            &seed_arg,
            "--segment-size-bytes",
            &size,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn helios workload");
    let spawned = Instant::now();
    let stdout = child.stdout.take().expect("stdout");
    let collector = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut BufReader::new(stdout), &mut text);
        text
    });
    thread::sleep(Duration::from_millis(delay_ms).saturating_sub(spawned.elapsed()));
    sigkill(&mut child, &format!("seed {seed}"));
    let text = collector.join().expect("collector thread");
    let text = String::from_utf8(text).expect("UTF-8 stdout");
    // Only whole lines count: the kill may cut the last one.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    whole.lines().map(|line| Ack::parse(line, seed)).collect()
}

/// What the workload's streams held after the last check: `events[stream][v - 1]` is the
/// payload of version `v`.
type WorkloadModel = BTreeMap<String, Vec<String>>;

/// Opens the (copied, crashed) store in `dir` with the library and checks it against `model`
/// (what survived earlier rounds) and `acks` (what this round's child, run with `seed`,
/// printed). Returns the new model and the number of this round's writes that survived.
fn check_workload_store(
    dir: &Path,
    model: &WorkloadModel,
    acks: &[Ack],
    seed: u64,
) -> (WorkloadModel, u64) {
    // What each acknowledged write put where, and which writes must have survived.
    let last_sync = acks.iter().rposition(|a| *a == Ack::Sync);
    let mut expected: BTreeMap<(String, u64), String> = BTreeMap::new();
    let mut must: BTreeMap<String, u64> = BTreeMap::new();
    let mut acked_seqs = Vec::new();
    for (index, ack) in acks.iter().enumerate() {
        let Ack::Write {
            kind,
            stream,
            first,
            last,
            seq,
        } = ack
        else {
            continue;
        };
        acked_seqs.push(*seq);
        for (i, version) in (*first..=*last).enumerate() {
            let payload = workload_payload(kind, seed, *seq, i as u64);
            expected.insert((stream.clone(), version), payload);
        }
        if ack.durable(last_sync.is_some_and(|s| index < s)) {
            let head = must.entry(stream.clone()).or_default();
            *head = (*head).max(*last);
        }
    }
    assert!(
        acked_seqs.iter().enumerate().all(|(i, &s)| s == i as u64),
        "seed {seed}: writes not printed in order: {acked_seqs:?}"
    );

    // Without background threads: recovery runs as in any open, and nothing else (the
    // checkpoint builder would spend the test's time catching up on every copy).
    let engine = Engine::builder(dir)
        .segment_size_bytes(KILL_SEGMENT_SIZE_BYTES)
        .background_threads(false)
        .open()
        .expect("open after the crash");
    let mut next_model = WorkloadModel::new();
    // This round's surviving writes: seq -> (events seen, events the write has).
    let mut survivors: BTreeMap<u64, (u64, Option<u64>)> = BTreeMap::new();
    for index in 0..WORKLOAD_STREAMS {
        let stream = format!("workload-{index}");
        let before = model.get(&stream).map_or(&[][..], Vec::as_slice);
        let mut events = Vec::new();
        if engine.head(&stream).is_some() {
            for (n, event) in engine.read(&stream, ..).expect("read").enumerate() {
                let event = event.expect("an intact event");
                let version = event.version.get();
                assert_eq!(
                    version,
                    n as u64 + 1,
                    "seed {seed}: {stream} has a gap at v{version}"
                );
                let payload = String::from_utf8(event.payload).expect("a UTF-8 payload");
                assert!(
                    !payload.contains("spec-"),
                    "seed {seed}: {stream} v{version} is a speculative event: {payload}"
                );
                if let Some(earlier) = before.get(n) {
                    assert_eq!(
                        &payload, earlier,
                        "seed {seed}: {stream} v{version} changed"
                    );
                } else {
                    let (kind, payload_seed, seq, _) = parse_workload_payload(&payload);
                    assert!(
                        ["critical", "normal", "promote-critical", "promote-normal"]
                            .contains(&kind.as_str()),
                        "seed {seed}: {stream} v{version}: {payload}"
                    );
                    assert_eq!(payload_seed, seed, "{stream} v{version}: {payload}");
                    if let Some(want) = expected.get(&(stream.clone(), version)) {
                        assert_eq!(&payload, want, "seed {seed}: {stream} v{version}");
                    } else {
                        // Not printed: only the write in flight at the kill can be here.
                        assert_eq!(
                            seq,
                            acked_seqs.len() as u64,
                            "seed {seed}: {stream} v{version} ({payload}) was never printed \
                             and is not the write in flight"
                        );
                    }
                    survivors.entry(seq).or_insert((0, None)).0 += 1;
                }
                events.push(payload);
            }
        }
        assert!(
            events.len() >= before.len(),
            "seed {seed}: {stream} lost events of earlier rounds: {} < {}",
            events.len(),
            before.len()
        );
        let head = events.len() as u64;
        let required = must.get(&stream).copied().unwrap_or(0);
        assert!(
            head >= required,
            "seed {seed}: {stream} has v{head}, but v{required} was acknowledged durable"
        );
        next_model.insert(stream, events);
    }
    engine.close().expect("close");

    // The survivors are a prefix of the run's writes (the log keeps a prefix), and each is
    // whole (a write is one atomic batch).
    for ack in acks {
        if let Ack::Write {
            seq, first, last, ..
        } = ack
            && let Some(entry) = survivors.get_mut(seq)
        {
            entry.1 = Some(last - first + 1);
        }
    }
    let survived = survivors.len() as u64;
    for (position, (&seq, &(seen, size))) in survivors.iter().enumerate() {
        assert_eq!(
            seq, position as u64,
            "seed {seed}: write {seq} survived but write {position} did not: {survivors:?}"
        );
        if let Some(size) = size {
            assert_eq!(seen, size, "seed {seed}: write {seq} survived in part");
        }
    }
    (next_model, survived)
}

/// Copies a store's log and metadata, not its checkpoints: they are derived (an open rebuilds
/// a missing one when a view needs it), the workload's checks read events only, and copying
/// thousands of small checkpoint files would dominate the test's time.
fn copy_store_without_checkpoints(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() != "checkpoints" {
                copy_dir(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Kills `helios workload` (critical and normal appends, critical and normal promotions of
/// speculative branches, syncs) at random moments, over and over, and checks after each kill:
/// every acknowledged critical write and promotion is there byte for byte, every normal one
/// printed before a `sync` line too, nothing speculative is visible, each stream is gapless,
/// the round's survivors are a prefix of its writes, each of them whole, and `helios verify`
/// finds the recovered store sound.
///
/// A store takes [`WORKLOAD_ROUNDS_PER_STORE`] kills in a row (each child recovers what the
/// previous one left), then the next round starts a new one, so that the checks, which read
/// every event, stay short. As in the append test, the checks run on a copy, so the next child
/// recovers the crashed store itself.
#[test]
fn workload_survives_sigkill_with_every_acknowledged_write() {
    const ROUNDS: u64 = 50;
    const SEED: u64 = 0x776f_726b_6c6f_6164;
    let tmp = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut model = WorkloadModel::new();
    let mut rounds_with_acks = 0;
    let mut seen_kinds = BTreeMap::<String, u64>::new();
    let mut syncs = 0;
    let mut survived_total = 0;
    let mut events_total = 0;
    for round in 0..ROUNDS {
        let dir = tmp
            .path()
            .join(format!("store-{}", round / WORKLOAD_ROUNDS_PER_STORE));
        if round % WORKLOAD_ROUNDS_PER_STORE == 0 {
            model = WorkloadModel::new();
        }
        let mut rng = SEED ^ round;
        let delay_ms = 50 + splitmix64(&mut rng) % 251;
        let seed = 1000 + round;
        let acks = workload_and_kill(&dir, seed, delay_ms);
        rounds_with_acks += usize::from(!acks.is_empty());
        for ack in &acks {
            match ack {
                Ack::Write { kind, .. } => *seen_kinds.entry(kind.clone()).or_default() += 1,
                Ack::Sync => syncs += 1,
            }
        }
        let check = tmp.path().join(format!("check-{round}"));
        copy_store_without_checkpoints(&dir, &check);
        let (next, survived) = check_workload_store(&check, &model, &acks, seed);
        model = next;
        survived_total += survived;
        let summary = ok(&run_in(&check, &["verify"], b""));
        assert!(summary.contains("sound"), "round {round}: {summary}");
        std::fs::remove_dir_all(&check).expect("remove the check copy");

        if (round + 1) % WORKLOAD_ROUNDS_PER_STORE == 0 || round + 1 == ROUNDS {
            // The store's last crash, recovered here by the library on the store itself; then
            // the whole store verifies.
            let (last, _) = check_workload_store(&dir, &model, &[], 0);
            assert_eq!(
                last, model,
                "round {round}: opening the store again changed it"
            );
            ok(&run_in(&dir, &["verify"], b""));
            events_total += model.values().map(Vec::len).sum::<usize>();
        }
    }
    assert!(
        rounds_with_acks >= usize::try_from(ROUNDS / 2).expect("small"),
        "only {rounds_with_acks} of {ROUNDS} children acknowledged anything"
    );
    for kind in ["critical", "normal", "promote-critical", "promote-normal"] {
        assert!(
            seen_kinds.get(kind).is_some_and(|&n| n > 0),
            "no `{kind}` line in {ROUNDS} rounds: {seen_kinds:?}"
        );
    }
    assert!(syncs > 0, "no `sync` line in {ROUNDS} rounds");
    eprintln!(
        "{ROUNDS} kills, {seen_kinds:?} acknowledged, {syncs} syncs, {survived_total} writes \
         survived, {events_total} events in the end, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// -------------------------------------------------------------------------------------------
// `helios tune` (the checkpoint-setting sweep). Every helper below is prefixed `tune_`.

/// The CSV header `helios tune` documents (docs/TUNING.md), in order.
const TUNE_CSV_COLUMNS: [&str; 19] = [
    "fanout",
    "levels",
    "maps_max",
    "events",
    "view_p50_us",
    "view_p99_us",
    "view_p999_us",
    "view_max_us",
    "view_mean_us",
    "replayed_mean",
    "replayed_max",
    "checkpoint_files",
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

/// The structural checks every sweep must pass: exactly the settings asked for, numbers that
/// parse and hold together, a Pareto front, a JSON document that agrees with the CSV, and a
/// well-formed SVG.
fn tune_check(out: &Path, fanouts: &[u64], levels: &[u64]) -> (Vec<TuneRow>, serde_json::Value) {
    let rows = tune_csv(out);
    let mut asked: Vec<(u64, u64)> = fanouts
        .iter()
        .flat_map(|&f| levels.iter().map(move |&l| (f, l)))
        .collect();
    asked.sort_unstable();
    let mut got: Vec<(u64, u64)> = rows
        .iter()
        .map(|r| (tune_int(r, "fanout"), tune_int(r, "levels")))
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
        let fanout = tune_num(row, "fanout");
        assert!(
            tune_num(row, "replayed_max") < fanout,
            "at most fanout - 1 events replayed once checkpoints are built: {row:?}"
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
        rows.iter()
            .any(|r| format!("{}x{}", r["fanout"], r["levels"]) == control),
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
    let (rows, json) = tune_check(&out, &[4, 8], &[1, 2]);
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
    let (_, json) = tune_check(&out, &[2, 4], &[1, 3]);
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
    let (rows, json) = tune_check(&out, &[4], &[1, 2]);
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
        (
            &["--fanouts", "4294967296", "--levels", "3"],
            "is not valid",
        ),
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

/// SIGKILLs `child`, waits for it, and checks that SIGKILL is what ended it (`what` names the
/// round in the failure message, with the child's stderr).
fn sigkill(child: &mut std::process::Child, what: &str) {
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "{what}: the child was not killed by SIGKILL ({status}); stderr: {err}"
    );
}
