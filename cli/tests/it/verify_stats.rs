//! `helios verify` on a store with a flipped byte in a sealed segment, `read --json` and
//! `verify --json`, and `helios stats` against the library and against its own walk of the
//! store's files.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use helios::Engine;

use crate::support::{
    FIRST_SEGMENT, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN, SMALL_SEGMENT_SIZE_BYTES, assert_error,
    json_f64, json_u64, ok, parse_json, run_in, snapshot, stderr, stdout,
};

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
        .options(helios::Options {
            background_threads: false,
            ..helios::Options::default()
        })
        .open()
        .expect("open");
    for (stream, (name, events)) in streams.iter().zip([("a", 123), ("b", 2)]) {
        assert_eq!(stream["name"], name);
        assert_eq!(json_u64(stream, &["events"]), events);
        let checkpoints = engine.checkpoints().of_stream(name).expect("checkpoints");
        assert_eq!(json_u64(stream, &["checkpoints"]), checkpoints.len() as u64);
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
                json_u64(level, &["checkpoints"]),
                of_level.len() as u64,
                "{name} L{number}"
            );
            assert_eq!(
                json_u64(level, &["bytes"]),
                of_level.iter().map(|c| c.len_bytes).sum::<u64>(),
                "{name} L{number}"
            );
        }
    }
    // Stream a has checkpoints at levels 1 and 2 (version 100), none at level 3 (1000).
    let a_levels = &streams[0]["levels"];
    assert!(
        json_u64(&a_levels[0], &["checkpoints"]) >= 1,
        "{a_levels:#}"
    );
    assert_eq!(json_u64(&a_levels[1], &["checkpoints"]), 1, "{a_levels:#}");
    assert_eq!(json_u64(&a_levels[2], &["checkpoints"]), 0, "{a_levels:#}");
    assert_eq!(json_u64(&streams[1], &["checkpoints"]), 0);

    let totals = &stats["totals"];
    assert_eq!(json_u64(totals, &["streams"]), 2);
    assert_eq!(json_u64(totals, &["events"]), 125);
    let files: u64 = streams.iter().map(|s| json_u64(s, &["checkpoints"])).sum();
    assert_eq!(json_u64(totals, &["checkpoints"]), files);
    assert_eq!(
        json_u64(totals, &["checkpoint_bytes"]),
        engine.checkpoints().stats().bytes
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

/// Files, apparent bytes and allocated bytes of one kind, as the test's own walk counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    files: u64,
    apparent_bytes: u64,
    allocated_bytes: u64,
}

/// The kinds `helios stats --json` reports under `disk`, in its order.
const KINDS: [&str; 6] = [
    "segments",
    "spare",
    "metadata",
    "checkpoints",
    "set_aside",
    "other",
];

/// The model of the classification the brief states: `log/*.log` segments, `log/*.spare` the
/// spare, under `meta/` or `index/`, the segment indexes `log/*.idx` and `CATALOG` metadata,
/// under `checkpoints/` or `packs/` checkpoints, under `repair-*/` set aside, the rest other.
fn kind_of(relative: &Path) -> &'static str {
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let top = parts[0].as_str();
    let nested = parts.len() > 1;
    let name = parts.last().expect("a path").as_str();
    if top == "log" && parts.len() == 2 && name.ends_with(".log") {
        "segments"
    } else if top == "log" && parts.len() == 2 && name.ends_with(".spare") {
        "spare"
    } else if (nested && (top == "meta" || top == "index"))
        || (top == "log" && parts.len() == 2 && name.ends_with(".idx"))
        || (!nested && (name == "CATALOG" || name == "CATALOG.tmp"))
    {
        "metadata"
    } else if nested && (top == "checkpoints" || top == "packs") {
        "checkpoints"
    } else if nested && top.starts_with("repair-") {
        "set_aside"
    } else {
        "other"
    }
}

/// Every file under `dir` (links not followed, directories not counted) by kind, with the
/// path of each file under `dir` and its usage.
fn walk_by_kind(dir: &Path) -> BTreeMap<&'static str, Vec<(PathBuf, Usage)>> {
    fn walk(root: &Path, relative: &Path, out: &mut BTreeMap<&'static str, Vec<(PathBuf, Usage)>>) {
        for entry in std::fs::read_dir(root.join(relative)).expect("read_dir") {
            let child = relative.join(entry.expect("entry").file_name());
            let metadata = std::fs::symlink_metadata(root.join(&child)).expect("lstat");
            if metadata.is_dir() {
                walk(root, &child, out);
            } else {
                let usage = Usage {
                    files: 1,
                    apparent_bytes: metadata.len(),
                    allocated_bytes: metadata.blocks() * 512,
                };
                out.entry(kind_of(&child)).or_default().push((child, usage));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, Path::new(""), &mut out);
    out
}

fn sum<'a>(usages: impl IntoIterator<Item = &'a Usage>) -> Usage {
    usages.into_iter().fold(Usage::default(), |a, u| Usage {
        files: a.files + u.files,
        apparent_bytes: a.apparent_bytes + u.apparent_bytes,
        allocated_bytes: a.allocated_bytes + u.allocated_bytes,
    })
}

fn usage_json(value: &serde_json::Value, kind: &str) -> Usage {
    Usage {
        files: json_u64(value, &["disk", kind, "files"]),
        apparent_bytes: json_u64(value, &["disk", kind, "apparent_bytes"]),
        allocated_bytes: json_u64(value, &["disk", kind, "allocated_bytes"]),
    }
}

/// `helios stats` counts every file of the store by kind from a walk of its directory: the
/// figures are those of `lstat` on each file, allocated bytes (`st_blocks * 512`) are at least
/// the length rounded up to 512 bytes for the files written in full and less than it for a
/// sparse one, what `repair` set aside is counted but kept out of the derived ratio, and the
/// ratio is the derived files' allocated bytes over the log's bytes through its last record.
#[test]
fn stats_counts_the_files_of_the_store_by_kind() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    // Several small segments (and a spare), checkpoints in 7 streams, fjall's metadata.
    let input: String = (0..3000)
        .map(|i| format!("s{}\tset k{} {i:08}\n", i / 50 % 7, i % 5))
        .collect();
    let size = SMALL_SEGMENT_SIZE_BYTES.to_string();
    ok(&run_in(
        &dir,
        &["import", "--segment-size-bytes", &size],
        input.as_bytes(),
    ));
    // What a repair sets aside, with a sparse file (1 MiB long, nothing allocated), and a file
    // the store does not know.
    let set_aside = dir.join("repair-20261206T000000Z");
    std::fs::create_dir_all(set_aside.join("log")).expect("mkdir");
    std::fs::File::create(set_aside.join("log").join(FIRST_SEGMENT))
        .and_then(|f| f.set_len(1 << 20))
        .expect("a sparse file");
    std::fs::write(set_aside.join("REPORT"), b"set aside by a test\n").expect("write");
    std::fs::write(dir.join("notes.txt"), b"not the store's\n").expect("write");

    let model = walk_by_kind(&dir);
    let stats = parse_json(&ok(&run_in(&dir, &["stats", "--json"], b"")));
    let text = ok(&run_in(&dir, &["stats"], b""));
    assert_eq!(walk_by_kind(&dir), model, "stats changed the store's files");

    let of = |kind: &str| sum(model.get(kind).into_iter().flatten().map(|(_, u)| u));
    for kind in KINDS {
        assert_eq!(
            usage_json(&stats, kind),
            of(kind),
            "{kind}: {:#}",
            stats["disk"]
        );
    }
    let total = sum(model.values().flatten().map(|(_, u)| u));
    assert_eq!(usage_json(&stats, "total"), total, "{:#}", stats["disk"]);
    let derived = sum(model
        .iter()
        .filter(|(kind, _)| !matches!(**kind, "segments" | "set_aside"))
        .flat_map(|(_, files)| files.iter().map(|(_, u)| u)));
    assert_eq!(
        usage_json(&stats, "derived"),
        derived,
        "{:#}",
        stats["disk"]
    );

    // The store as built: several segments, checkpoints, metadata; what the test added.
    assert!(of("segments").files >= 2, "{:#}", stats["disk"]);
    // However many checkpoints: one pack, its index (the close wrote it), its published end,
    // the machine table and the recorded policy.
    assert_eq!(of("checkpoints").files, 5, "{:#}", stats["disk"]);
    assert!(of("metadata").files >= 1, "{:#}", stats["disk"]);
    assert_eq!(of("set_aside").files, 2);
    assert!(
        model["other"]
            .iter()
            .any(|(p, _)| p == Path::new("notes.txt"))
            && model["other"].iter().any(|(p, _)| p == Path::new("FORMAT")),
        "{model:?}"
    );
    // Segments, the spare, checkpoints and `FORMAT` are written in full (segments are
    // preallocated with zeros): a file system allocates at least their lengths, in 512-byte
    // units. The sparse file set aside is allocated less than its length.
    for kind in ["segments", "spare", "checkpoints"] {
        for (path, usage) in model.get(kind).into_iter().flatten() {
            assert!(
                usage.allocated_bytes >= usage.apparent_bytes.div_ceil(512) * 512,
                "{}: {usage:?}",
                path.display()
            );
        }
    }
    let sparse = usage_json(&stats, "set_aside");
    assert!(
        sparse.allocated_bytes < sparse.apparent_bytes,
        "{sparse:?}: apparent bytes counted as allocated"
    );

    // The ratio: derived allocated bytes over the log's bytes through its last record.
    let log_bytes = json_u64(&stats, &["totals", "log_bytes"]);
    assert_eq!(json_u64(&stats, &["disk", "log_bytes"]), log_bytes);
    assert!(
        log_bytes > 3000 * RECORD_HEADER_LEN,
        "{:#}",
        stats["totals"]
    );
    let ratio = json_f64(&stats, &["disk", "derived_ratio"]);
    let expected = derived.allocated_bytes as f64 / log_bytes as f64;
    assert!(
        (ratio - expected).abs() <= 0.5e-4 + f64::EPSILON,
        "derived_ratio {ratio}, expected {expected} ({derived:?} / {log_bytes})"
    );

    // The text: the total and the ratio, and a table row per kind with the same figures.
    let files_line = text
        .lines()
        .find(|l| l.starts_with("files "))
        .unwrap_or_else(|| panic!("no files line in:\n{text}"));
    assert!(
        files_line.contains(&format!(" {} files, ", total.files)),
        "{files_line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("derived ") && l.contains("x the log")),
        "{text}"
    );
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("KIND "))
        .collect();
    for kind in KINDS {
        let usage = of(kind);
        let row: Vec<&str> = table
            .iter()
            .find(|l| l.split_whitespace().next() == Some(kind))
            .unwrap_or_else(|| panic!("no row {kind} in:\n{text}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            [
                kind,
                &usage.files.to_string(),
                &usage.apparent_bytes.to_string(),
                &usage.allocated_bytes.to_string()
            ],
            "{text}"
        );
    }
}

/// An empty store has no ratio: `derived_ratio` is null, and the text says `-`.
#[test]
fn stats_of_an_empty_store_has_no_ratio() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    ok(&run_in(&dir, &["import"], b""));
    let stats = parse_json(&ok(&run_in(&dir, &["stats", "--json"], b"")));
    // The log is its first segment's header: no record, so no ratio.
    assert_eq!(
        json_u64(&stats, &["disk", "log_bytes"]),
        SEGMENT_HEADER_LEN,
        "{stats:#}"
    );
    assert!(stats["disk"]["derived_ratio"].is_null(), "{stats:#}");
    assert!(
        json_u64(&stats, &["disk", "total", "files"]) >= 1,
        "{stats:#}"
    );
    let text = ok(&run_in(&dir, &["stats"], b""));
    assert!(
        text.lines()
            .any(|l| l.starts_with("derived ") && l.contains(" - the log")),
        "{text}"
    );
}

/// A deleted stream's events are dead bytes: counted in `stats`, text and JSON, with what a
/// live fork still shares left out.
#[test]
fn stats_counts_the_dead_bytes_of_deleted_streams() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    let payloads: Vec<String> = (0..6)
        .map(|i| format!("set k{i} {}", "v".repeat(i * 10)))
        .collect();
    {
        let engine = Engine::open(&dir, helios::Options::default()).expect("open");
        engine
            .append("gone", &payloads, helios::Durability::Critical, None)
            .expect("append");
        engine
            .fork_stream("gone", helios::Version(2), "fork")
            .expect("fork");
        engine
            .append("kept", &["set a 1"], helios::Durability::Critical, None)
            .expect("append");
        engine.delete_stream("gone").expect("delete");
        engine.close().expect("close");
    }
    let stats = parse_json(&ok(&run_in(&dir, &["stats", "--json"], b"")));
    // The fork still reads versions 1 and 2: versions 3 to 6 are dead.
    let dead_bytes: u64 = payloads[2..]
        .iter()
        .map(|p| RECORD_HEADER_LEN + p.len() as u64)
        .sum();
    assert_eq!(
        json_u64(&stats, &["totals", "dead", "deleted_streams"]),
        1,
        "{stats:#}"
    );
    assert_eq!(
        json_u64(&stats, &["totals", "dead", "events"]),
        4,
        "{stats:#}"
    );
    assert_eq!(
        json_u64(&stats, &["totals", "dead", "bytes"]),
        dead_bytes,
        "{stats:#}"
    );
    let text = ok(&run_in(&dir, &["stats"], b""));
    assert!(
        text.lines()
            .any(|l| l.starts_with("dead ") && l.contains("in 4 events of 1 deleted stream")),
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
