//! End-to-end tests of the `helios` binary: every command, its exit codes and error messages,
//! offline verification of a damaged store, and a SIGKILL loop proving that every version
//! `helios append --durability critical` printed survives the crash.
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
    // Version 23: the level-1 checkpoint at 20 (a delta against the empty state: all five
    // keys), then events 21, 22 and 23.
    assert_eq!(
        ok(&get(&dir, "s", "k3", &["--at", "23", "--explain"])),
        "23\nreplayed 3 events (3 keys changed) on top of 1 layer, newest first:\n  \
         level 1 checkpoint at version 20: 5 entries\n"
    );
    // Version 100 is a level-2 checkpoint: nothing to replay.
    assert_eq!(
        ok(&get(&dir, "s", "k0", &["--at", "100", "--explain"])),
        "100\nreplayed 0 events (0 keys changed) on top of 1 layer, newest first:\n  \
         level 2 checkpoint at version 100: 5 entries\n"
    );
    // Version 123: the level-1 delta at 120 over the level-2 checkpoint at 100.
    let text = ok(&get(&dir, "s", "k1", &["--at", "123", "--explain"]));
    assert_eq!(
        text,
        "121\nreplayed 3 events (3 keys changed) on top of 2 layers, newest first:\n  \
         level 1 checkpoint at version 120: 5 entries\n  \
         level 2 checkpoint at version 100: 5 entries\n"
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
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "round {round}: the child was not killed by SIGKILL ({status}); stderr: {err}"
    );
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

#[test]
fn demo_checks_what_it_wrote_and_can_run_again_on_the_same_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let dir_arg = dir.to_str().expect("UTF-8 path");
    let args = [
        "demo",
        "--dir",
        dir_arg,
        "--events",
        "300",
        "--critical-events",
        "7",
        "--segment-size-bytes",
        "65536",
    ];
    let first = ok(&run(&args, b""));
    for expected in [
        "normal",
        "critical",
        "p99.9",
        "reopen",
        "log bytes",
        "read-back",
    ] {
        assert!(first.contains(expected), "{expected} not in:\n{first}");
    }
    assert!(
        first.contains("307 events checked byte for byte"),
        "{first}"
    );
    // A second run appends after the first one's events and checks only its own.
    let second = ok(&run(&args, b""));
    assert!(
        second.contains("307 events checked byte for byte"),
        "{second}"
    );
    let streams = ok(&run_in(&dir, &["inspect"], b""));
    assert!(streams.contains("demo-critical"), "{streams}");
    assert!(
        streams
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["5", "14", "demo-critical"]),
        "{streams}"
    );
    ok(&run_in(&dir, &["verify"], b""));
}
