//! `helios get`: a key at every version, `--explain` (the checkpoint layers read and the
//! events replayed), `--json`, absent keys, and errors naming the stream, version and head.

use std::path::Path;
use std::process::Output;

use crate::support::{assert_error, ok, run_in, stderr, stdout};

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
    // Events 1 to 10 set keys k0 to k9; after them, event i sets key k(i % 5) to i. So the
    // anchor (version 10) holds ten keys, and every delta after it the five changed since its
    // base (a delta holding every key would be written as a full state instead).
    let events: String = (1..=125)
        .map(|i| match i {
            1..=10 => format!("set k{} {i}\n", i - 1),
            _ => format!("set k{} {i}\n", i % 5),
        })
        .collect();
    let versions: String = (1..=125).map(|i| format!("{i}\n")).collect();
    // `append` builds the checkpoints due before it exits, so the layers below are there.
    assert_eq!(
        ok(&run_in(&dir, &["append", "s"], events.as_bytes())),
        versions
    );

    // Below the first checkpoint: everything is replayed.
    assert_eq!(
        ok(&get(&dir, "s", "k3", &["--at", "8", "--explain"])),
        "4\nreplayed 8 events (8 keys changed) on top of the empty state (no checkpoint)\n"
    );
    // Version 23: the level-1 delta at 20 (the five keys changed since 10) over the anchor,
    // the full state at 10, then events 21, 22 and 23.
    assert_eq!(
        ok(&get(&dir, "s", "k3", &["--at", "23", "--explain"])),
        "23\nreplayed 3 events (3 keys changed) on top of 2 layers, newest first:\n  \
         level 1 checkpoint at version 20: 5 entries\n  \
         level 1 checkpoint at version 10: 10 entries\n"
    );
    // Version 100 is a level-2 checkpoint (a delta against the anchor): nothing to replay.
    assert_eq!(
        ok(&get(&dir, "s", "k0", &["--at", "100", "--explain"])),
        "100\nreplayed 0 events (0 keys changed) on top of 2 layers, newest first:\n  \
         level 2 checkpoint at version 100: 5 entries\n  \
         level 1 checkpoint at version 10: 10 entries\n"
    );
    // Version 123: the level-1 delta at 120 over the level-2 delta at 100 over the anchor.
    let text = ok(&get(&dir, "s", "k1", &["--at", "123", "--explain"]));
    assert_eq!(
        text,
        "121\nreplayed 3 events (3 keys changed) on top of 3 layers, newest first:\n  \
         level 1 checkpoint at version 120: 5 entries\n  \
         level 2 checkpoint at version 100: 5 entries\n  \
         level 1 checkpoint at version 10: 10 entries\n"
    );
    // An absent key still explains, on stdout, with the message on stderr.
    let out = get(&dir, "s", "kz", &["--at", "123", "--explain"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("replayed 3 events"),
        "{}",
        stdout(&out)
    );
    assert!(
        stderr(&out).starts_with("absent: key `kz`"),
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
    // Key-value events appended after it are appended, with a warning that names the raw
    // event (here from the builder, which stops on it at the checkpoint due at v10;
    // `hostile_input` checks the warning before any checkpoint is due).
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
