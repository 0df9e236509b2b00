//! `helios append`, `read` and `inspect` on a new store, what the library reads back, the
//! refusal of lines that are not key-value events, and the error contract (one sentence on
//! stderr, exit status 2).

use helios::{Durability, Engine, Options};

use crate::support::{FIRST_SEGMENT, assert_error, ok, run, run_in, snapshot, stderr, stdout};

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

    // No policy named: the default, which the writer recorded.
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("checkpoint policy")
                && l.ends_with(" every 10 events, fanout 10, 3 levels")),
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
        "\"checkpoint_policy\": {\n    \"first_interval\": 10,\n    \"fanout\": 10,\n    \"levels\": 3\n  }",
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

    // A second writer is refused; the reading commands read beside the writer, which they
    // never stop from writing.
    {
        let engine = Engine::open(&dir, Options::default()).expect("open");
        assert_error(&run_in(&dir, &["append", "s"], b"set b 2\n"), "locked");
        assert_eq!(ok(&run_in(&dir, &["read", "s"], b"")), "1\tset a 1\n");
        let verified = ok(&run_in(&dir, &["verify"], b""));
        assert!(verified.contains("sound"), "{verified}");
        let inspected = ok(&run_in(&dir, &["inspect"], b""));
        assert!(
            inspected
                .lines()
                .any(|l| l.trim_start().starts_with("writer")
                    && l.contains("another process holds the store")),
            "{inspected}"
        );
        engine
            .append("s", &["set b 2"], helios::Durability::Critical, None)
            .expect("the writer writes while readers read");
    }
    assert_eq!(
        ok(&run_in(&dir, &["read", "s"], b"")),
        "1\tset a 1\n2\tset b 2\n"
    );

    // Wrong arguments are clap's, with the same exit code.
    let out = run(&["append"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = run_in(&dir, &["append", "s", "--durability", "maybe"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("critical"), "{}", stderr(&out));
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
