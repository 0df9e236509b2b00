//! `helios import`: a round trip against `helios read` for many streams, the batches it leaves
//! in the log (read back with `helios-log`), every kind of bad line named by its number with
//! the lines before it kept, an over-long line refused unread, the durability flag, the
//! checkpoints built before it exits, and raw events as `helios tail` will print them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use helios_log::{FsStorage, LogOptions, RecordKind};
use helios_testkit::Rng;

use crate::support::{assert_error, json_u64, ok, parse_json, run_in, snapshot, stdout};

/// A frame's header in the log: 56 bytes before each payload.
const RECORD_HEADER_LEN: u64 = crate::support::RECORD_HEADER_LEN;

/// Each stream's events, as `helios read` prints them (`VERSION<TAB>PAYLOAD` lines).
fn read_all(dir: &Path, streams: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    streams
        .keys()
        .map(|name| (name.clone(), ok(&run_in(dir, &["read", name], b""))))
        .collect()
}

/// What `helios read` must print for each stream of `model`.
fn expected(model: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    model
        .iter()
        .map(|(name, events)| {
            let text: String = events
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{}\t{e}\n", i + 1))
                .collect();
            (name.clone(), text)
        })
        .collect()
}

/// Seeded input: runs of 1 to 8 lines of one stream, among `stream_count` streams; returns the
/// input, each stream's events in order, and the number of runs (maximal runs of consecutive
/// lines of one stream).
fn generate(
    seed: u64,
    stream_count: usize,
    line_count: usize,
) -> (String, BTreeMap<String, Vec<String>>, u64) {
    let mut rng = Rng::new(seed);
    let names: Vec<String> = (0..stream_count)
        .map(|i| match i % 3 {
            0 => format!("stream-{i}"),
            1 => format!("with space {i} \u{2603}"),
            _ => format!("q\"uote{i}\\"),
        })
        .collect();
    let mut input = String::new();
    let mut model: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut runs = 0;
    let mut lines = 0;
    let mut previous: Option<usize> = None;
    while lines < line_count {
        let stream = rng.index(stream_count);
        if previous != Some(stream) {
            runs += 1;
        }
        previous = Some(stream);
        for _ in 0..=rng.index(8) {
            let key = rng.below(5);
            let event = if rng.chance(1, 5) {
                format!("del k{key}")
            } else {
                format!("set k{key} value {} with spaces", rng.below(1000))
            };
            input.push_str(&format!("{}\t{event}\n", names[stream]));
            lines += 1;
            model.entry(names[stream].clone()).or_default().push(event);
        }
    }
    (input, model, runs)
}

#[test]
fn import_round_trips_many_streams_against_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let (input, model, runs) = generate(7, 60, 3000);
    let events = input.lines().count() as u64;
    let summary = parse_json(&ok(&run_in(&dir, &["import", "--json"], input.as_bytes())));
    assert_eq!(json_u64(&summary, &["events"]), events, "{summary:#}");
    assert_eq!(
        json_u64(&summary, &["streams"]),
        model.len() as u64,
        "{summary:#}"
    );
    // No run of 8 short lines reaches the 32 KiB cap: one batch per run.
    assert_eq!(json_u64(&summary, &["batches"]), runs, "{summary:#}");
    assert!(summary["seconds"].as_f64().is_some_and(|s| s >= 0.0));
    assert_eq!(read_all(&dir, &model), expected(&model));

    // A second import appends after what is there, to old and new streams alike.
    let first = model.keys().next().expect("a stream").clone();
    let more = format!("{first}\tset k0 again\nnew\tdel k1\n");
    let out = ok(&run_in(&dir, &["import"], more.as_bytes()));
    assert!(
        out.starts_with("imported 2 events into 2 streams in ") && out.ends_with(" s\n"),
        "{out:?}"
    );
    let mut model = model;
    model
        .get_mut(&first)
        .expect("first")
        .push("set k0 again".into());
    model.insert("new".into(), vec!["del k1".into()]);
    assert_eq!(read_all(&dir, &model), expected(&model));
}

/// One record of the log, as the batching test reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Frame {
    kind: RecordKind,
    stream: u64,
    payload_len_bytes: u64,
    batch_left: u32,
}

/// Every record of the store's log, in LSN order, split into its atomic batches.
fn log_batches(dir: &Path) -> Vec<Vec<Frame>> {
    let mut frames = Vec::new();
    let (_log, _report) = helios_log::Log::open_read_only(
        Arc::new(FsStorage),
        &dir.join("log"),
        LogOptions::default(),
        None,
        &mut |record, _| {
            frames.push(Frame {
                kind: record.header.kind,
                stream: record.header.stream.get(),
                payload_len_bytes: record.payload.len() as u64,
                batch_left: record.header.batch_left,
            });
        },
    )
    .expect("read the log");
    let mut batches = vec![Vec::new()];
    for frame in frames {
        let ends = frame.batch_left == 0;
        batches.last_mut().expect("a batch").push(frame);
        if ends {
            batches.push(Vec::new());
        }
    }
    assert_eq!(batches.pop(), Some(Vec::new()), "the log ends with a batch");
    batches
}

/// Consecutive lines of one stream are one atomic batch in the log (its stream-creation record
/// first when it creates the stream); a run past the cap is split into batches that each stay
/// within it.
#[test]
fn consecutive_lines_of_one_stream_share_one_atomic_batch() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    // Runs: a x3, b x1, a x2, c x40. With 4 KiB segments the cap is 1 KiB: frames of 56 + 10
    // bytes, 15 to a batch, so c's 40 lines are batches of 15, 15 and 10.
    let mut input = String::new();
    let mut push = |stream: &str, count: usize| {
        for i in 0..count {
            input.push_str(&format!("{stream}\tset k {i:04}\n"));
        }
    };
    push("a", 3);
    push("b", 1);
    push("a", 2);
    push("c", 40);
    let summary = parse_json(&ok(&run_in(
        &dir,
        &["import", "--json", "--segment-size-bytes", "4096"],
        input.as_bytes(),
    )));
    assert_eq!(json_u64(&summary, &["batches"]), 6, "{summary:#}");
    let shapes: Vec<(Option<u64>, usize)> = log_batches(&dir)
        .into_iter()
        .map(|batch| {
            let created = (batch[0].kind == RecordKind::CreateStream).then_some(batch[0].stream);
            let events: Vec<&Frame> = batch
                .iter()
                .filter(|f| f.kind == RecordKind::Event)
                .collect();
            assert!(
                batch.iter().all(|f| f.stream == batch[0].stream),
                "a batch of one stream: {batch:?}"
            );
            assert!(
                batch[1..].iter().all(|f| f.kind == RecordKind::Event),
                "{batch:?}"
            );
            let frame_bytes: u64 = events
                .iter()
                .map(|f| RECORD_HEADER_LEN + f.payload_len_bytes)
                .sum();
            assert!(frame_bytes <= 1024, "a batch past the cap: {batch:?}");
            (created, events.len())
        })
        .collect();
    // Stream ids: a = 1, b = 2, c = 3; each stream's first batch creates it.
    assert_eq!(
        shapes,
        [
            (Some(1), 3),
            (Some(2), 1),
            (None, 2),
            (Some(3), 15),
            (None, 15),
            (None, 10)
        ]
    );
    let read = ok(&run_in(&dir, &["read", "c"], b""));
    assert_eq!(read.lines().count(), 40);
    assert!(read.ends_with("40\tset k 0039\n"), "{read}");
}

/// Every kind of bad line stops the import with its line number (empty lines counted), and
/// every line before it is in the store; none from it on.
#[test]
fn every_kind_of_bad_line_is_named_and_the_lines_before_it_stay() {
    let long_line = format!("{}\tset k 3\n", "n".repeat(1025));
    let cases: Vec<(Vec<u8>, u64, &str)> = vec![
        (
            b"a\tset k 1\na\tset k 2\nb set k 3\nc\tset k 4\n".to_vec(),
            3,
            "stdin line 3 has no tab",
        ),
        (
            b"a\tset k 1\n\n\tset k 2\nc\tset k 4\n".to_vec(),
            3,
            "stdin line 3 has an empty stream name",
        ),
        (
            b"a\tset k 1\na\tset k 2\nb\x01x\tset k 3\nb\x01x\tset k 4\nc\tset k 5\n".to_vec(),
            3,
            // Messages escape control characters: the name reads `b\u{1}x`.
            "appending stdin line 3 failed: invalid stream name `b\\u{1}x`: it contains \
             control characters",
        ),
        (
            b"a\tset k 1\na\r\tset k 2\n".to_vec(),
            2,
            "appending stdin line 2 failed: invalid stream name",
        ),
        (
            [&b"a\tset k 1\nb\tset k 2\n"[..], long_line.as_bytes()].concat(),
            3,
            "appending stdin line 3 failed: invalid stream name",
        ),
        (
            b"a\tset k 1\n\xffb\tset k 2\n".to_vec(),
            2,
            "stdin line 2 has a stream name that is not UTF-8",
        ),
        (
            b"a\tset k 1\na\tset k 2\na\tput k 3\n".to_vec(),
            3,
            "stdin line 3 is not a key-value event: ",
        ),
        (
            b"a\tset k 1\nb\tset \xff 2\n".to_vec(),
            2,
            "stdin line 2 has a key that is not UTF-8",
        ),
        (
            b"a\t\n".to_vec(),
            1,
            "stdin line 1 is not a key-value event",
        ),
    ];
    for (index, (input, bad, needle)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("store");
        let lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let out = run_in(&dir, &["import"], &input);
        assert_error(&out, needle);
        assert_eq!(stdout(&out), "", "case {index}: no summary after an error");
        // What must be in the store: every line before the bad one.
        let bad_index = usize::try_from(bad - 1).expect("small");
        let mut model: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in lines[..bad_index].iter().filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).expect("good lines are UTF-8");
            let (stream, event) = text.split_once('\t').expect("good lines have a tab");
            model
                .entry(stream.to_owned())
                .or_default()
                .push(event.to_owned());
        }
        assert_eq!(
            read_all(&dir, &model),
            expected(&model),
            "case {index}: {needle}"
        );
        let events: usize = model.values().map(Vec::len).sum();
        let verified = ok(&run_in(&dir, &["verify", "--json"], b""));
        assert_eq!(
            json_u64(&parse_json(&verified), &["events"]),
            events as u64,
            "case {index}: nothing from the bad line on is in the log: {verified}"
        );
    }
}

/// A line longer than a 1024-byte stream name, a tab and a 64 MiB event is refused as soon as
/// it passes that length: the writer of a 160 MiB line sees a broken pipe long before its end,
/// and the line before it is imported.
#[test]
fn an_over_long_line_is_refused_without_reading_the_rest_of_it() {
    const MIB: usize = 1 << 20;
    const LINE_BYTES: usize = 160 * MIB;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let (out, written) = crate::support::run_with_a_long_line(
        &["import", dir.to_str().expect("UTF-8"), "--raw"],
        b"a\tfirst line\ns\t",
        LINE_BYTES,
    );
    assert!(
        written < 100 * MIB,
        "helios read {written} bytes of a {LINE_BYTES}-byte line before refusing it"
    );
    assert_error(&out, "stdin line 2 is longer than 67109889 bytes");
    assert_eq!(ok(&run_in(&dir, &["read", "a"], b"")), "1\tfirst line\n");
}

#[test]
fn durability_is_the_class_of_every_event() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = b"a\tset k 1\na\tset k 2\nb\tdel k\n";
    for (args, class) in [
        (&["import"][..], "normal"),
        (&["import", "--durability", "normal"][..], "normal"),
        (&["import", "--durability", "critical"][..], "critical"),
    ] {
        let dir = tmp.path().join(class).join(args.len().to_string());
        ok(&run_in(&dir, args, input));
        for (stream, count) in [("a", 2), ("b", 1)] {
            let lines = ok(&run_in(&dir, &["read", stream, "--json"], b""));
            let events: Vec<serde_json::Value> = lines.lines().map(parse_json).collect();
            assert_eq!(events.len(), count, "{lines}");
            for event in &events {
                assert_eq!(event["durability"], class, "{args:?}: {event}");
            }
        }
    }
    let out = run_in(
        &tmp.path().join("x"),
        &["import", "--durability", "maybe"],
        input,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Before it exits, a key-value import builds the checkpoints due (`helios stats` counts them)
/// and warns about a stream that held a raw event before; a raw import builds none.
#[test]
fn checkpoints_are_built_before_it_exits() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    // A stream with a raw event first: its state cannot be read, and the import says so.
    assert_eq!(
        ok(&run_in(&dir, &["append", "r", "--raw"], b"hello\n")),
        "1\n"
    );
    // Three streams of 25 events in runs of 5: checkpoints are due at versions 10 and 20.
    let mut input = String::new();
    for round in 0..5 {
        for stream in ["a", "b", "c"] {
            for i in 0..5 {
                input.push_str(&format!("{stream}\tset k{} {}\n", i % 3, round * 5 + i));
            }
        }
    }
    input.push_str("r\tset a 1\n");
    let out = run_in(&dir, &["import"], input.as_bytes());
    assert!(
        ok(&out).starts_with("imported 76 events into 4 streams in "),
        "{}",
        stdout(&out)
    );
    let warning = crate::support::stderr(&out);
    assert!(
        warning.starts_with("helios: warning: the state of stream `r` cannot be read from v1 on")
            && warning.lines().count() == 1,
        "{warning:?}"
    );
    let stats = parse_json(&ok(&run_in(&dir, &["stats", "--json"], b"")));
    let streams = stats["streams"].as_array().expect("streams");
    for name in ["a", "b", "c"] {
        let stream = streams
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no stream {name} in {stats:#}"));
        assert_eq!(json_u64(stream, &["events"]), 25);
        assert!(
            json_u64(stream, &["checkpoints"]) >= 2,
            "{name}: the checkpoints due at 10 and 20 were not built: {stats:#}"
        );
    }
    assert_eq!(
        ok(&run_in(&dir, &["get", "b", "k1", "--at", "22"], b"")),
        "21\n"
    );
}

/// With `--raw`, an event is any bytes after the first tab, as `helios tail` will print it:
/// empty, holding tabs, or with a carriage return.
#[test]
fn raw_events_are_the_rest_of_the_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let input = b"a\t\na\tb\tc\na\tset k v\r\nb\t\xff\xfe\n";
    let summary = parse_json(&ok(&run_in(&dir, &["import", "--raw", "--json"], input)));
    assert_eq!(json_u64(&summary, &["events"]), 4);
    assert_eq!(json_u64(&summary, &["batches"]), 2);
    let lines = ok(&run_in(&dir, &["read", "a", "--json"], b""));
    let payloads: Vec<String> = lines
        .lines()
        .map(|l| {
            parse_json(l)["payload"]
                .as_str()
                .expect("payload")
                .to_owned()
        })
        .collect();
    assert_eq!(payloads, ["", "b\tc", "set k v\r"]);
    let engine = helios::ReadOnly::open(&dir, helios::Options::default()).expect("open");
    let events: Vec<_> = engine
        .read("b", ..)
        .expect("read")
        .collect::<Result<_, _>>()
        .expect("events");
    assert_eq!(events[0].payload, b"\xff\xfe");
}

/// The same rules as `append`: a store is created only in an empty or missing directory, and
/// a directory of other files is left as it was.
#[test]
fn import_refuses_a_directory_of_other_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).expect("mkdir");
    std::fs::write(photos.join("cat.jpg"), b"jpeg").expect("write");
    let before = snapshot(&photos);
    let out = run_in(&photos, &["import"], b"a\tset k 1\n");
    assert_error(&out, "is not empty and is not a Helios store");
    assert_eq!(snapshot(&photos), before);
    // An empty input on a missing directory creates an empty store, as `append` does.
    let fresh = tmp.path().join("fresh");
    assert!(
        ok(&run_in(&fresh, &["import"], b"")).starts_with("imported 0 events into 0 streams in ")
    );
    assert!(ok(&run_in(&fresh, &["verify"], b"")).contains("sound"));
}
