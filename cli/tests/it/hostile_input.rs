//! Bad paths and bad input on the real file system, each answered with a message that says
//! what is wrong and where, and an exit status a script can trust: a store path that is a file,
//! a directory of other files (left untouched), permission denied, a loop of symbolic links, a
//! 70 KB stream name (cut in the message), stdin lines too long for an event or a segment and a
//! key that is not UTF-8 (each named by line number), `read --from` past the head, the warning
//! after `--raw` events, and `append` when building checkpoints fails after the appends.

use std::os::unix::fs::{PermissionsExt as _, symlink};

use crate::support::{
    assert_error, ok, permission_checked_prefix, run, run_in, run_prefixed, snapshot, stderr,
    stdout,
};

#[test]
fn a_store_path_that_is_a_file_or_a_loop_is_named_as_such() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, b"mine").expect("write");
    let expected = format!("{} is a file, not a directory", file.display());
    assert_error(&run_in(&file, &["append", "s"], b"set a 1\n"), &expected);
    assert_error(&run_in(&file, &["read", "s"], b""), &expected);
    assert_error(&run_in(&file, &["stats"], b""), &expected);
    // A directory on the way that is a file: the file is named.
    assert_error(
        &run_in(&file.join("store"), &["append", "s"], b"set a 1\n"),
        &expected,
    );
    assert_eq!(std::fs::read(&file).expect("read"), b"mine");

    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    symlink(&b, &a).expect("symlink");
    symlink(&a, &b).expect("symlink");
    let expected = format!(
        "{} cannot be reached: the symbolic links on its way form a loop",
        a.display()
    );
    assert_error(&run_in(&a, &["append", "s"], b"set a 1\n"), &expected);
    assert_error(&run_in(&a, &["get", "s", "k"], b""), &expected);
}

#[test]
fn append_refuses_a_directory_of_other_files_and_leaves_it_untouched() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("2024")).expect("mkdir");
    std::fs::write(photos.join("cat.jpg"), b"jpeg").expect("write");
    let before = snapshot(&photos);
    let out = run_in(&photos, &["append", "s"], b"set a 1\n");
    assert_error(
        &out,
        &format!(
            "{} is not empty and is not a Helios store",
            photos.display()
        ),
    );
    assert!(
        stderr(&out).contains("a new store is created only in an empty or missing directory"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "", "nothing was appended");
    assert_eq!(snapshot(&photos), before, "the directory was changed");
    // Reading commands call it what it is for them: not a store.
    assert_error(
        &run_in(&photos, &["read", "s"], b""),
        "is not a Helios store",
    );
    assert_eq!(snapshot(&photos), before);
}

#[test]
fn permission_denied_is_named_as_such() {
    let prefix = match permission_checked_prefix() {
        Ok(prefix) => prefix,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).expect("mkdir");
    let locked_text = locked.to_str().expect("UTF-8").to_owned();
    let inner = locked.join("store");
    let inner_text = inner.to_str().expect("UTF-8").to_owned();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let cases = [
        (
            run_prefixed(&prefix, &["read", &locked_text, "s"], b""),
            format!("permission denied: cannot list directory {locked_text}"),
        ),
        (
            run_prefixed(&prefix, &["append", &locked_text, "s"], b"set a 1\n"),
            format!("permission denied: cannot list directory {locked_text}"),
        ),
        (
            run_prefixed(&prefix, &["append", &inner_text, "s"], b"set a 1\n"),
            format!("permission denied: cannot look up {inner_text}"),
        ),
    ];
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (out, expected) in &cases {
        assert_error(out, expected);
        assert!(
            !stderr(out).contains("not a Helios store"),
            "{}",
            stderr(out)
        );
    }
    assert_eq!(snapshot(&locked).len(), 0, "something was created");
}

#[test]
fn messages_cut_a_long_stream_name_or_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let long = "n".repeat(70_000);
    let cut = format!("{}… (70000 bytes)", "n".repeat(64));

    let out = run_in(&dir, &["append", &long], b"set a 1\n");
    assert_error(
        &out,
        &format!("appending stdin line 1 failed: invalid stream name `{cut}`"),
    );
    assert!(stderr(&out).len() < 300, "{}", stderr(&out));
    let out = run_in(&dir, &["read", &long], b"");
    assert!(stderr(&out).len() < 300, "{}", stderr(&out));
    assert_error(&out, &format!("unknown stream `{cut}`"));

    // A long valid name and a long absent key, in `get`'s absent message.
    let name = "s".repeat(1000);
    assert_eq!(ok(&run_in(&dir, &["append", &name], b"set a 1\n")), "1\n");
    let key = "k".repeat(70_000);
    let out = run_in(&dir, &["get", &name, &key], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.len() < 300
            && err.contains(&format!("key `{}… (70000 bytes)`", "k".repeat(64)))
            && err.contains(&format!("stream `{}… (1000 bytes)`", "s".repeat(64))),
        "{err}"
    );
}

#[test]
fn append_takes_a_line_bigger_than_a_segment_and_names_the_line_of_a_key_not_utf8() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");

    // A line bigger than the 4 KiB segments asked for gets a segment of its own size: every
    // event up to the payload limit fits (longer lines are refused, see the next test).
    let mut input = b"set a 1\nset b ".to_vec();
    input.extend(std::iter::repeat_n(b'v', 5000));
    input.extend_from_slice(b"\nset c 3\n");
    let out = run_in(
        &dir,
        &["append", "s", "--segment-size-bytes", "4096"],
        &input,
    );
    assert_eq!(ok(&out), "1\n2\n3\n");

    // A key that is not UTF-8 (`helios get` takes its key as a string): line 3, counting
    // the empty line; the value may be any bytes.
    let out = run_in(
        &dir,
        &["append", "s"],
        b"set b \xff\n\nset \xffkey v\nset c 3\n",
    );
    assert_error(&out, "stdin line 3 has a key that is not UTF-8");
    assert_eq!(stdout(&out), "4\n");
    // The value is any bytes: `get` prints them as they are.
    let out = run_in(&dir, &["get", "s", "b"], b"");
    assert_eq!(out.stdout, b"\xff\n");
}

/// A line longer than the largest event (64 MiB) is refused as soon as it passes that length:
/// `helios` exits without reading the rest of stdin, so the writer of a 160 MiB line sees a
/// broken pipe long before its end.
#[test]
fn an_over_long_line_is_refused_without_reading_the_rest_of_it() {
    const MIB: usize = 1 << 20;
    const LINE_BYTES: usize = 160 * MIB;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let (out, written) = crate::support::run_with_a_long_line(
        &["append", dir.to_str().expect("UTF-8"), "s", "--raw"],
        b"first line\n",
        LINE_BYTES,
    );
    assert!(
        written < 80 * MIB,
        "helios read {written} bytes of a {LINE_BYTES}-byte line before refusing it"
    );
    assert_error(
        &out,
        "stdin line 2 is longer than 67108864 bytes, the largest event the log takes",
    );
    assert_eq!(stdout(&out), "1\n");
}

#[test]
fn read_from_past_the_head_is_an_error_naming_the_head() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    assert_eq!(
        ok(&run_in(&dir, &["append", "s"], b"set a 1\nset a 2\n")),
        "1\n2\n"
    );
    assert_error(
        &run_in(&dir, &["read", "s", "--from", "3"], b""),
        "stream `s` has no version v3: its head is v2",
    );
    // The same rule as `get --at`.
    assert_error(
        &run_in(&dir, &["get", "s", "a", "--at", "3"], b""),
        "stream `s` has no version v3: its head is v2",
    );
    assert_eq!(
        ok(&run_in(&dir, &["read", "s", "--from", "2"], b"")),
        "2\tset a 2\n"
    );
    assert_eq!(
        ok(&run_in(
            &dir,
            &["read", "s", "--from", "0", "--to", "1"],
            b""
        )),
        "1\tset a 1\n"
    );
    // --to past the head reads to the head.
    assert_eq!(
        ok(&run_in(&dir, &["read", "s", "--to", "9"], b""))
            .lines()
            .count(),
        2
    );
    assert_error(
        &run_in(&dir, &["read", "s", "--from", "2", "--to", "1"], b""),
        "--to 1 is before --from 2",
    );
}

#[test]
fn a_key_value_append_after_raw_events_warns_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    assert_eq!(
        ok(&run_in(&dir, &["append", "r", "--raw"], b"hello\n")),
        "1\n"
    );
    // One key-value line: no checkpoint is due yet, and the warning comes all the same.
    let out = run_in(&dir, &["append", "r"], b"set a 1\n");
    assert_eq!(ok(&out), "2\n");
    let warning = stderr(&out);
    assert!(
        warning.starts_with("helios: warning: the state of stream `r` cannot be read from v1 on: ")
            && warning.contains("a key-value event starts with `set ` or `del `")
            && warning.lines().count() == 1,
        "{warning:?}"
    );
    // A stream whose state reads is not warned about.
    let out = run_in(&dir, &["append", "k"], b"set a 1\n");
    assert_eq!(ok(&out), "1\n");
    assert_eq!(stderr(&out), "");
}

/// Checkpoints are derived data: when building them fails after every line was appended,
/// `append` exits 0 (a script that retries on failure must not append the lines twice) with a
/// warning that says why, and reads stay exact.
#[test]
fn append_exits_0_with_a_warning_when_building_checkpoints_fails() {
    let prefix = match permission_checked_prefix() {
        Ok(prefix) => prefix,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let dir_text = dir.to_str().expect("UTF-8").to_owned();
    assert_eq!(ok(&run(&["append", &dir_text, "s"], b"set a 0\n")), "1\n");
    let checkpoints = dir.join("checkpoints");
    std::fs::set_permissions(&checkpoints, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // Versions 2..=25: checkpoints are due at 10 and 20, and none can be written.
    let lines: String = (2..=25).map(|i| format!("set a {i}\n")).collect();
    let out = run_prefixed(&prefix, &["append", &dir_text, "s"], lines.as_bytes());
    std::fs::set_permissions(&checkpoints, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let versions: String = (2..=25).map(|i| format!("{i}\n")).collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the appends were acknowledged, yet the exit status says failure: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), versions);
    let warning = stderr(&out);
    assert!(
        warning.starts_with("helios: warning: every event was appended to stream `s`, but ")
            && warning.contains("Permission denied")
            && warning.contains("reads stay exact"),
        "{warning:?}"
    );
    assert_eq!(ok(&run(&["get", &dir_text, "s", "a"], b"")), "25\n");
    assert_eq!(
        ok(&run(&["get", &dir_text, "s", "a", "--at", "17"], b"")),
        "17\n"
    );
}

/// `tune`'s own directories are checked before the sweep runs, and a file in their way is
/// named.
#[test]
fn tune_names_an_output_path_that_is_a_file_before_sweeping() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, b"mine").expect("write");
    let file_text = file.to_str().expect("UTF-8");
    let below = file.join("out");
    for (option, path) in [
        ("--out", file.clone()),
        ("--out", below.clone()),
        ("--scratch-dir", below.clone()),
    ] {
        let started = std::time::Instant::now();
        let out = run(&["tune", option, path.to_str().expect("UTF-8")], b"");
        assert_error(
            &out,
            &format!(
                "{option} {} cannot be created: {file_text} is not a directory",
                path.display()
            ),
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the sweep ran before the path was checked"
        );
    }
    assert_eq!(std::fs::read(&file).expect("read"), b"mine");
}
