//! Damage to the log on the real file system: for every kind, `verify` and an open give the
//! same diagnosis, the open changes nothing, and `repair` keeps exactly the intact prefix, sets
//! everything else aside without deleting a byte, and says what was lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use helios::{Durability, Engine, Error, Lsn, Options, Version};
use helios_log::format::{self, Frame};

use crate::support::set;

const STREAMS: [&str; 3] = ["alpha", "beta", "gamma"];

fn options() -> Options {
    let mut options = Options::default();
    options.log.segment_size_bytes = 64 << 10;
    options.log.first_segment_size_bytes = 16 << 10;
    options.background_threads = false;
    options
}

/// One appended event: its stream, version, LSN and payload.
#[derive(Clone, Debug)]
struct Appended {
    stream: &'static str,
    version: Version,
    lsn: Lsn,
    payload: Vec<u8>,
}

/// 2,500 critical events, one per append, over three streams, in several segments; every
/// checkpoint built; closed cleanly.
fn make_store(dir: &Path) -> Vec<Appended> {
    let engine = Engine::open(dir, options()).expect("create");
    let mut appended = Vec::new();
    for i in 0..2_500u32 {
        let stream = STREAMS[(i % 3) as usize];
        let payload = set(&format!("k{}", i % 11), &format!("value-{i}"));
        let done = engine
            .append(stream, &[&payload], Durability::Critical, None)
            .expect("append");
        appended.push(Appended {
            stream,
            version: done.last,
            lsn: done.lsn,
            payload,
        });
    }
    engine.checkpoints().sync().expect("checkpoints");
    engine.close().expect("close");
    appended
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

/// The first LSN of a segment, from its name.
fn first_lsn(segment: &Path) -> u64 {
    segment
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("a segment name")
}

/// `(end of the frame, LSN, records left in its batch)` of every record of a segment.
fn records(bytes: &[u8]) -> Vec<(usize, u64, u32)> {
    let mut out = Vec::new();
    let mut at = format::segment_header::LEN;
    while let Ok(Frame::Record(record, len)) = format::decode_frame(&bytes[at..]) {
        at += len;
        out.push((at, record.header.lsn.0, record.header.batch_left));
    }
    out
}

/// Every file under `dir` with its bytes, relative paths.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).expect("inside").to_path_buf();
                out.insert(relative, std::fs::read(&path).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Damages the store with `damage`, then checks the whole contract: an open is refused with
/// `phrase` and the repair hint and changes nothing; verify reports `phrase`; the repair keeps
/// exactly the events up to `kept` and sets aside every byte it does not keep.
fn check(damage: impl FnOnce(&Path), phrase: &str, kept: impl FnOnce(&Path) -> u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = make_store(dir.path());
    assert!(segments(dir.path()).len() >= 4, "several segments");
    let expected_kept = kept(dir.path());
    damage(dir.path());
    let before = files(dir.path());

    let error = Engine::open(dir.path(), options()).expect_err("a damaged store is refused");
    let text = error.to_string();
    assert!(matches!(error, Error::Damaged { .. }), "{error:?}");
    assert!(text.contains(phrase), "open: {text}");
    assert!(text.contains("helios repair"), "{text}");
    let mut after_open = files(dir.path());
    after_open.remove(Path::new("LOCK"));
    let mut before_open = before.clone();
    before_open.remove(Path::new("LOCK"));
    // fjall may touch its own files on open; the log and checkpoints are left as they were.
    after_open.retain(|p, _| !p.starts_with("meta"));
    before_open.retain(|p, _| !p.starts_with("meta"));
    assert_eq!(after_open, before_open, "the refused open changed nothing");

    let report = helios::verify(dir.path()).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.to_string().contains(phrase)),
        "verify agrees with the open ({phrase}): {:?}",
        report.findings
    );

    let repaired = helios::repair(dir.path()).expect("repair");
    assert!(repaired.repaired, "{repaired:?}");
    assert_eq!(repaired.kept_through, Lsn(expected_kept), "{repaired:?}");
    let lost: Vec<&Appended> = appended
        .iter()
        .filter(|a| a.lsn.0 > expected_kept)
        .collect();
    if let Some(first) = lost.first() {
        // The range runs to the end the log last published (a clean close wrote it).
        let (from, to) = repaired.lost_lsns.expect("the lost range");
        assert!(from.0 <= first.lsn.0, "{repaired:?}");
        assert_eq!(to, appended.last().expect("appended").lsn, "{repaired:?}");
        // A stream is named where the catalog snapshot or a record that still decodes says it
        // lost events, and then from its first lost version; never one that lost nothing.
        for stream in STREAMS {
            let first_lost = lost.iter().find(|a| a.stream == stream).map(|a| a.version);
            let reported = repaired
                .lost_versions
                .iter()
                .find(|l| l.stream == stream)
                .map(|l| l.first);
            assert!(
                reported.is_none() || reported == first_lost,
                "{stream}: {:?}",
                repaired.lost_versions
            );
        }
    }

    // Nothing was deleted: every byte is in the store or in the set-aside folder.
    let aside = repaired.set_aside.expect("a set-aside folder");
    let relative_aside = aside.strip_prefix(dir.path()).expect("inside the store");
    let now = files(dir.path());
    for (path, bytes) in &before {
        if path.starts_with("meta") || path == Path::new("LOCK") {
            continue;
        }
        let kept_in_place = now.get(path) == Some(bytes);
        let set_aside = now.get(&relative_aside.join(path)) == Some(bytes);
        assert!(kept_in_place || set_aside, "{} was lost", path.display());
    }

    // The store opens, and holds exactly the events of the intact prefix.
    let engine = Engine::open(dir.path(), options()).expect("open after the repair");
    for stream in STREAMS {
        let want: Vec<Vec<u8>> = appended
            .iter()
            .filter(|a| a.stream == stream && a.lsn.0 <= expected_kept)
            .map(|a| a.payload.clone())
            .collect();
        let got: Vec<Vec<u8>> = engine
            .read(stream, ..)
            .expect("read")
            .map(|e| e.expect("event").payload)
            .collect();
        assert_eq!(got, want, "{stream}");
    }
    assert_eq!(
        repaired.events_kept,
        appended.iter().filter(|a| a.lsn.0 <= expected_kept).count() as u64
    );
    drop(engine);
    assert!(helios::verify(dir.path()).expect("verify").is_sound());
}

/// The last LSN of the segment before the last one.
fn end_of_second_last(dir: &Path) -> u64 {
    let all = segments(dir);
    first_lsn(&all[all.len() - 1]) - 1
}

#[test]
fn the_active_segment_cut_to_half_keeps_its_complete_batches() {
    let half = |dir: &Path| {
        let active = segments(dir).pop().expect("a segment");
        let bytes = std::fs::read(&active).expect("read");
        let written = records(&bytes).last().expect("records").0;
        (active, bytes, written / 2)
    };
    check(
        |dir| {
            let (active, bytes, cut) = half(dir);
            std::fs::write(&active, &bytes[..cut]).expect("truncate");
        },
        "acknowledged records are lost",
        |dir| {
            let (_, bytes, cut) = half(dir);
            records(&bytes)
                .iter()
                .filter(|(end, _, left)| *end <= cut && *left == 0)
                .map(|(_, lsn, _)| *lsn)
                .next_back()
                .unwrap_or_else(|| end_of_second_last(dir))
        },
    );
}

#[test]
fn the_active_segment_emptied_keeps_the_segments_before_it() {
    check(
        |dir| {
            let active = segments(dir).pop().expect("a segment");
            std::fs::write(&active, b"").expect("empty");
        },
        "cut short or emptied",
        end_of_second_last,
    );
}

#[test]
fn the_active_segment_cut_inside_its_header_keeps_the_segments_before_it() {
    check(
        |dir| {
            let active = segments(dir).pop().expect("a segment");
            let bytes = std::fs::read(&active).expect("read");
            std::fs::write(&active, &bytes[..10]).expect("truncate");
        },
        "cut short or emptied",
        end_of_second_last,
    );
}

#[test]
fn the_newest_segment_removed_keeps_the_segments_before_it() {
    check(
        |dir| {
            let active = segments(dir).pop().expect("a segment");
            std::fs::remove_file(active).expect("remove");
        },
        "missing",
        end_of_second_last,
    );
}

#[test]
fn a_middle_segment_removed_keeps_what_precedes_the_gap() {
    let middle = |dir: &Path| segments(dir)[1].clone();
    check(
        |dir| std::fs::remove_file(middle(dir)).expect("remove"),
        "missing",
        |dir| first_lsn(&middle(dir)) - 1,
    );
}

#[test]
fn a_sealed_segment_grown_with_garbage_is_trimmed_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let appended = make_store(dir.path());
    let sealed = segments(dir.path())[1].clone();
    let original = std::fs::read(&sealed).expect("read");
    let mut grown = original.clone();
    grown.extend_from_slice(&[0xAB; 5000]);
    std::fs::write(&sealed, &grown).expect("grow");

    let error = Engine::open(dir.path(), options()).expect_err("a grown segment is refused");
    let text = error.to_string();
    assert!(text.contains("added after its end"), "{text}");
    assert!(text.contains("helios repair"), "{text}");
    let report = helios::verify(dir.path()).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.reason.contains("added after its end")),
        "{:?}",
        report.findings
    );

    let repaired = helios::repair(dir.path()).expect("repair");
    assert!(repaired.repaired);
    assert_eq!(repaired.lost_lsns, None, "{repaired:?}");
    assert!(repaired.lost_versions.is_empty());
    let aside = repaired.set_aside.expect("a folder");
    let name = sealed.file_name().expect("name");
    assert_eq!(
        std::fs::read(aside.join("log").join(name)).expect("read"),
        grown
    );
    assert_eq!(
        std::fs::read(&sealed).expect("read"),
        original,
        "trimmed back"
    );
    let engine = Engine::open(dir.path(), options()).expect("open");
    let total: u64 = STREAMS
        .iter()
        .map(|s| engine.head(s).expect("stream").0)
        .sum();
    assert_eq!(total, appended.len() as u64);
    drop(engine);
    assert!(helios::verify(dir.path()).expect("verify").is_sound());
}

#[test]
fn a_sound_store_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path());
    let before = files(dir.path());
    let repaired = helios::repair(dir.path()).expect("repair");
    assert!(!repaired.repaired);
    assert_eq!(repaired.set_aside, None);
    let mut after = files(dir.path());
    after.retain(|p, _| !p.starts_with("meta"));
    let mut before = before;
    before.retain(|p, _| !p.starts_with("meta"));
    assert_eq!(after, before);
}
