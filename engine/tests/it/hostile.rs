//! Hostile inputs on the real file system: store directories damaged, truncated, mixed up or
//! not stores at all. Each case ends in one of two documented outcomes, never a panic and never
//! a silent loss:
//! - damage to the log (the source of truth) is an error naming the file and the byte offset,
//!   at open or at the read that reaches it, and `helios::verify` reports it;
//! - damage to derived data (the fjall `meta/`, checkpoint files) is repaired: the metadata is
//!   rebuilt from the log, a damaged checkpoint is deleted, counted and rebuilt, and every view
//!   still equals a `BTreeMap` fold of the stream's events.
//!
//! One test binary on purpose: linking dominates build time on two cores. The byte offsets come
//! from the format modules (`helios_log::format`, `helios_checkpoint::format`), the one place
//! that defines them (`docs/FORMAT.md` draws them).

use crate::support::{Placed, fold, placed, set};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use helios::{
    Durability, Engine, EngineBuilder, Error, LevelPolicy, LogError, Options, Version, kv,
};
use helios_checkpoint::format::header as ckpt;
use helios_log::format::{self as log_format, record, segment_header};

const SEGMENT_BYTES: u64 = 4096;
/// Checkpoints every 4 events (deltas, level 1) and every 16 (full states, level 2).
const FANOUT: u64 = 4;
const LEVELS: u32 = 2;

fn options() -> Options {
    let mut options = Options::default();
    options.log.segment_size_bytes = SEGMENT_BYTES;
    options.checkpoints.policy = Some(LevelPolicy::new(FANOUT, LEVELS).expect("policy"));
    options.background_threads = false;
    options
}

fn builder(dir: &Path) -> EngineBuilder {
    Engine::builder(dir).options(options())
}

/// Opens an existing store (never creates one).
fn reopen(dir: &Path) -> helios::Result<Engine> {
    let mut options = options();
    options.create_if_missing = false;
    Engine::open(dir, options)
}

/// `count` key-value events over a few keys, with a delete now and then; `tag` makes the values
/// of two stores differ.
fn events(count: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let key = format!("k{}", i % 5);
            if i % 7 == 6 {
                kv::encode(&kv::KvEvent::Del {
                    key: key.as_bytes(),
                })
            } else {
                set(&key, &format!("{tag}-{i:03}"))
            }
        })
        .collect()
}

/// A store with the given streams, each appended in batches of three critical events, every
/// checkpoint built, closed cleanly. Returns each stream's events.
fn make_store(dir: &Path, streams: &[(&str, usize)], tag: &str) -> BTreeMap<String, Vec<Vec<u8>>> {
    let engine = builder(dir).open().expect("create the store");
    let mut all = BTreeMap::new();
    for &(name, count) in streams {
        let evs = events(count, &format!("{tag}-{name}"));
        for batch in evs.chunks(3) {
            engine
                .append(name, batch, Durability::Critical, None)
                .expect("append");
        }
        all.insert(name.to_owned(), evs);
    }
    engine.checkpoints().sync().expect("build checkpoints");
    engine.close().expect("close");
    all
}

/// Every view of every stream, at every version, equals the fold; and reads return the events.
fn assert_exact(engine: &Engine, streams: &BTreeMap<String, Vec<Vec<u8>>>) {
    for (name, evs) in streams {
        let read: Vec<Vec<u8>> = engine
            .read(name, ..)
            .expect("the stream exists")
            .map(|e| e.expect("a readable event").payload)
            .collect();
        assert_eq!(&read, evs, "events of {name}");
        for v in 0..=evs.len() {
            let state = engine
                .state_at(name, Version(v as u64))
                .unwrap_or_else(|e| panic!("view of {name} at {v}: {e}"));
            assert_eq!(state, fold(&evs[..v]), "view of {name} at {v}");
        }
    }
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

/// Offsets of the record frames in a segment file, up to the end of the written records.
fn frames(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut offsets = Vec::new();
    let mut at = segment_header::LEN;
    while let Ok(log_format::Frame::Record(_, len)) = log_format::decode_frame(&bytes[at..]) {
        offsets.push(at);
        at += len;
    }
    offsets
}

/// Where the written records of a segment file end (the zero fill starts).
fn written_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).expect("read segment");
    let last = *frames(path).last().expect("records");
    match log_format::decode_frame(&bytes[last..]) {
        Ok(log_format::Frame::Record(_, len)) => last + len,
        other => panic!("a valid frame at {last}: {other:?}"),
    }
}

/// Where the checkpoint of `stream` at `version` is, as the engine lists it.
fn checkpoint_path(dir: &Path, stream: &str, version: u64) -> Placed {
    let engine = reopen(dir).expect("open");
    placed(&engine, stream, version)
}

/// CRC-32 (IEEE), as the formats use, so that a test can write a well-sealed header with a
/// value no writer of this format produces.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites `len` bytes at `at` of a file with `value` (little-endian), leaving the rest.
fn patch(path: &Path, at: usize, value: &[u8]) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[at..at + value.len()].copy_from_slice(value);
    std::fs::write(path, bytes).expect("write");
}

/// The error of opening the store, or else of reading `stream` whole, or else of viewing it at
/// its head (`None` if all succeed).
fn open_or_read_error(dir: &Path, stream: &str) -> Option<Error> {
    let engine = match reopen(dir) {
        Ok(engine) => engine,
        Err(error) => return Some(error),
    };
    let read = match engine.read(stream, ..) {
        Ok(mut iter) => iter.find_map(Result::err),
        Err(error) => Some(error),
    };
    read.or_else(|| {
        let head = engine.head(stream).unwrap_or(Version::ZERO);
        engine.state_at(stream, head).err()
    })
}

fn message(error: &Error) -> String {
    error.to_string()
}

/// Asserts that `error` is log corruption naming `path` at byte `offset`, and returns its
/// message.
fn assert_corrupt_at(error: &Error, path: &Path, offset: u64) -> String {
    let text = message(error);
    match error {
        // Found by a read, in a segment an open did not scan.
        Error::Log(LogError::Corrupt {
            path: p, offset: o, ..
        }) => {
            assert_eq!((p.as_path(), *o), (path, offset), "{text}");
        }
        // Found by an open, which names the way back.
        Error::Damaged {
            source: LogError::Corrupt {
                path: p, offset: o, ..
            },
            ..
        } => {
            assert_eq!((p.as_path(), *o), (path, offset), "{text}");
            assert!(text.contains("helios repair"), "{text}");
        }
        other => panic!(
            "expected corruption of {} at {offset}, got {other:?}",
            path.display()
        ),
    }
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(&format!("at byte {offset}")), "{text}");
    text
}

/// Asserts that `verify` reports damage in `path` at `offset`.
fn assert_verify_finds(dir: &Path, path: &Path, offset: u64) {
    let report = helios::verify(dir).expect("verify runs");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == path && f.offset == Some(offset)),
        "verify must report {} at {offset}: {report:?}",
        path.display()
    );
}

// ---- The log: damage is an error naming the file and the offset.

#[test]
fn a_segment_cut_inside_its_header_is_an_error_at_byte_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 10)], "a");
    let active = segments(dir.path()).pop().expect("a segment");
    let bytes = std::fs::read(&active).expect("read");
    std::fs::write(&active, &bytes[..20]).expect("truncate");
    let error = reopen(dir.path()).expect_err("a segment without a whole header");
    let text = assert_corrupt_at(&error, &active, 0);
    assert!(text.contains("shorter than its 32-byte header"), "{text}");
    // Nothing was repaired behind the caller's back.
    assert_eq!(std::fs::metadata(&active).expect("stat").len(), 20);
}

#[test]
fn a_segment_cut_inside_an_indexed_record_is_an_error_not_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 10)], "a");
    let active = segments(dir.path()).pop().expect("a segment");
    let offsets = frames(&active);
    let last = *offsets.last().expect("records");
    let bytes = std::fs::read(&active).expect("read");
    // The last record was durable (the store was closed cleanly, and published its end):
    // cutting it loses acknowledged data, which open must refuse rather than truncate, naming
    // the cut.
    std::fs::write(&active, &bytes[..last + 20]).expect("truncate");
    // Without the catalog snapshot the close took at that record, the open reads the log and
    // finds the cut.
    let scanned = tempfile::tempdir().expect("tempdir");
    crate::support::copy_dir(dir.path(), scanned.path());
    std::fs::remove_file(scanned.path().join("CATALOG")).expect("remove CATALOG");
    let error = reopen(scanned.path()).expect_err("acknowledged records are cut");
    let scanned_active = scanned
        .path()
        .join(active.strip_prefix(dir.path()).expect("in dir"));
    let text = assert_corrupt_at(&error, &scanned_active, (last + 20) as u64);
    assert!(text.contains("cut short"), "{text}");
    assert!(text.contains("acknowledged records are lost"), "{text}");
    // With it, the open starts at that record, which no longer decodes.
    let error = reopen(dir.path()).expect_err("acknowledged records are cut");
    let text = assert_corrupt_at(&error, &active, last as u64);
    assert!(text.contains("only 20 remain"), "{text}");
    assert!(text.contains("acknowledged records are lost"), "{text}");
}

#[test]
fn a_segment_without_its_preallocated_zeros_still_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut streams = make_store(dir.path(), &[("s", 10)], "a");
    let active = segments(dir.path()).pop().expect("a segment");
    let bytes = std::fs::read(&active).expect("read");
    let end = written_end(&active);
    // A copy that dropped the zero fill (a sparse-unaware tool, a filled-up disk).
    std::fs::write(&active, &bytes[..end]).expect("truncate");
    let engine = reopen(dir.path()).expect("the records are all there");
    assert_exact(&engine, &streams);
    // Appends past the file's end work, and roll to new segments when needed.
    let more = events(80, "more");
    for batch in more.chunks(4) {
        engine
            .append("s", batch, Durability::Critical, None)
            .expect("append past the short file's end");
    }
    streams.get_mut("s").expect("s").extend(more);
    drop(engine);
    let engine = reopen(dir.path()).expect("reopen");
    assert_exact(&engine, &streams);
    drop(engine);
    assert!(helios::verify(dir.path()).expect("verify").is_sound());
}

#[test]
fn a_sealed_segment_cut_short_is_reported_at_open_or_read_and_by_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 150)], "a");
    let all = segments(dir.path());
    assert!(all.len() >= 3, "several segments: {all:?}");
    let sealed = &all[1];
    let offsets = frames(sealed);
    let cut = offsets[offsets.len() / 2];
    let bytes = std::fs::read(sealed).expect("read");
    std::fs::write(sealed, &bytes[..cut + 10]).expect("truncate");
    // The segment's header records the length it was created with: open finds the cut at the
    // file's new end, without scanning the segment, and verify says the same.
    let end = (cut + 10) as u64;
    let error = open_or_read_error(dir.path(), "s").expect("the cut is reported");
    let text = assert_corrupt_at(&error, sealed, end);
    assert!(text.contains("cut short"), "{text}");
    assert_verify_finds(dir.path(), sealed, end);
    // Without the metadata and the catalog snapshot, open scans the whole log and refuses the
    // same way.
    crate::support::forget_derived(dir.path(), false);
    let error = reopen(dir.path()).expect_err("a sealed segment is cut");
    let text = assert_corrupt_at(&error, sealed, end);
    assert!(text.contains("cut short"), "{text}");
}

#[test]
fn a_segment_with_wrong_magic_is_an_error_at_byte_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 10)], "a");
    let active = segments(dir.path()).pop().expect("a segment");
    patch(&active, segment_header::MAGIC, b"NOTHELIO");
    let error = reopen(dir.path()).expect_err("not a segment");
    let text = assert_corrupt_at(&error, &active, 0);
    assert!(text.contains("magic"), "{text}");
    assert_verify_finds(dir.path(), &active, 0);
}

/// A sealed segment without its index, with a damaged record: the open builds the index from
/// the segment and refuses, naming the record's offset (it used to name byte 0).
#[test]
fn a_damaged_record_found_while_indexing_a_segment_is_named_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 150)], "a");
    let first = segments(dir.path()).remove(0);
    std::fs::remove_file(first.with_extension("idx")).expect("remove its index");
    let damaged = frames(&first)[3];
    let bytes = std::fs::read(&first).expect("read");
    let at = damaged + record::HEADER_LEN;
    patch(&first, at, &[!bytes[at]]);
    let error = reopen(dir.path()).expect_err("a damaged record in a sealed segment");
    let text = assert_corrupt_at(&error, &first, damaged as u64);
    assert!(text.contains("checksum"), "{text}");
}

#[test]
fn a_sealed_segment_with_wrong_magic_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 150)], "a");
    let first = segments(dir.path()).remove(0);
    patch(&first, segment_header::MAGIC, b"NOTHELIO");
    let error = open_or_read_error(dir.path(), "s").expect("the bad header is reported");
    let text = assert_corrupt_at(&error, &first, 0);
    assert!(text.contains("magic"), "{text}");
    assert_verify_finds(dir.path(), &first, 0);
}

#[test]
fn a_segment_of_a_future_format_version_is_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 10)], "a");
    let active = segments(dir.path()).pop().expect("a segment");
    // A future writer seals its header: the next version, with a valid CRC.
    let future = helios_log::format::FORMAT_VERSION + 1;
    let mut header = std::fs::read(&active).expect("read")[..segment_header::LEN].to_vec();
    header[segment_header::FORMAT_VERSION..segment_header::FORMAT_VERSION + 4]
        .copy_from_slice(&future.to_le_bytes());
    let crc = crc32(&header[..segment_header::CRC]);
    header[segment_header::CRC..segment_header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    patch(&active, 0, &header);
    let error = reopen(dir.path()).expect_err("a future format");
    let text = assert_corrupt_at(&error, &active, 0);
    assert!(text.contains(&format!("format version {future}")), "{text}");
    assert!(text.contains("reads versions 1 to 2"), "{text}");
}

#[test]
fn a_segment_whose_header_disagrees_with_its_name_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 10)], "a");
    let active = segments(dir.path()).pop().expect("a segment");
    let mut header = std::fs::read(&active).expect("read")[..segment_header::LEN].to_vec();
    header[segment_header::FIRST_LSN..segment_header::FIRST_LSN + 8]
        .copy_from_slice(&7u64.to_le_bytes());
    let crc = crc32(&header[..segment_header::CRC]);
    header[segment_header::CRC..segment_header::CRC + 4].copy_from_slice(&crc.to_le_bytes());
    patch(&active, 0, &header);
    let error = reopen(dir.path()).expect_err("header and name disagree");
    let text = assert_corrupt_at(&error, &active, segment_header::FIRST_LSN as u64);
    assert!(text.contains("lsn 7"), "{text}");
}

#[test]
fn absurd_lengths_in_a_record_header_are_errors_not_allocations() {
    for (field, value, sealed) in [
        // body_len far past the segment (and past the format's limit).
        (record::BODY_LEN, u32::MAX, false),
        // body_len just past the payload limit.
        (record::BODY_LEN, 48 + (64 << 20) + 1, false),
        // payload_len disagreeing with body_len, with a valid CRC: a decoder that trusted it
        // would read past the frame.
        (record::PAYLOAD_LEN, u32::MAX, true),
        (record::PAYLOAD_LEN, 0, true),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        make_store(dir.path(), &[("s", 10)], "a");
        let active = segments(dir.path()).pop().expect("a segment");
        let at = frames(&active)[3];
        patch(&active, at + field, &value.to_le_bytes());
        if sealed {
            let bytes = std::fs::read(&active).expect("read");
            let body_len =
                u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let body = &bytes[at + record::PREFIX_LEN..at + record::PREFIX_LEN + body_len];
            patch(&active, at + record::CRC, &crc32(body).to_le_bytes());
        }
        let case = format!("field at {field} set to {value} (resealed: {sealed})");
        // The record is below the recovery point, which open need not scan: the read that
        // reaches it reports it.
        let error = open_or_read_error(dir.path(), "s").expect(&case);
        assert_corrupt_at(&error, &active, at as u64);
        assert_verify_finds(dir.path(), &active, at as u64);
        // Without the metadata, the snapshot and the published end (a full scan that knows
        // nothing of what was durable) the record is still damage, not a torn tail: valid
        // records follow it.
        crate::support::forget_derived(dir.path(), true);
        let error = reopen(dir.path()).expect_err(&case);
        let text = assert_corrupt_at(&error, &active, at as u64);
        assert!(text.contains("not a torn tail"), "{case}: {text}");
    }
}

#[test]
fn a_missing_segment_is_an_error_naming_it() {
    for index in [0, 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        make_store(dir.path(), &[("s", 150)], "a");
        let missing = segments(dir.path()).remove(index);
        std::fs::remove_file(&missing).expect("rm");
        // Events (and, for the first segment, the stream's creation record) are gone: opening,
        // or reading them, must say so and name the missing file. A store that opens and reads
        // as if its history had a hole, or began later, loses data without saying where.
        let error = open_or_read_error(dir.path(), "s").expect("the missing segment is reported");
        let text = message(&error);
        assert!(
            text.contains(&missing.display().to_string()),
            "segment {index} missing: {text}"
        );
        let report = helios::verify(dir.path()).expect("verify runs");
        assert!(
            report.findings.iter().any(|f| f.path == missing),
            "{report:?}"
        );
    }
}

#[test]
fn a_log_that_starts_after_lsn_1_is_an_error_naming_the_missing_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 150)], "a");
    let first = segments(dir.path()).remove(0);
    std::fs::remove_file(&first).expect("rm");
    // Without the metadata and the snapshot, open scans the log from its first segment: one
    // that starts past LSN 1 has lost its beginning (the log is never trimmed).
    crate::support::forget_derived(dir.path(), false);
    let error = reopen(dir.path()).expect_err("the log's beginning is missing");
    let text = message(&error);
    assert!(text.contains(&first.display().to_string()), "{text}");
}

/// Every segment gone, and with them `FORMAT` and the published end (what else says the log
/// held records): the segment indexes left behind say it did. The writer refuses to start an
/// empty log beside them (found by `store_image`: it opened as a migration from format 1,
/// appended, and its reopen refused the log as missing acknowledged records).
#[test]
fn a_log_whose_segments_are_all_gone_is_refused_while_their_indexes_remain() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 150)], "a");
    for segment in segments(dir.path()) {
        std::fs::remove_file(&segment).expect("rm");
    }
    std::fs::remove_file(dir.path().join("FORMAT")).expect("rm FORMAT");
    std::fs::remove_file(dir.path().join("log/published-end")).expect("rm published end");
    std::fs::remove_file(dir.path().join("CATALOG")).expect("rm CATALOG");
    let index = dir.path().join("log/00000000000000000001.idx");
    assert!(index.exists(), "the first segment was sealed and indexed");
    let error = reopen(dir.path()).expect_err("the indexes say records were");
    let text = message(&error);
    assert!(text.contains(&index.display().to_string()), "{text}");
    assert!(text.contains("holds no segment"), "{text}");
    assert!(segments(dir.path()).is_empty(), "no new log was started");
    assert!(!dir.path().join("FORMAT").exists(), "no FORMAT was written");
}

/// Every segment gone with their indexes, `FORMAT` and the published end; `CATALOG` left, which
/// says how far the log reached. The writer refuses to start an empty log, whether nothing in
/// `log/` looks like a segment (a new store's path) or a file there only looks like one (a
/// migration's: a format-1 store has segments and no `FORMAT`). Found by `store_image`: the
/// writer started an empty log, and its reopen refused the log as missing acknowledged records.
#[test]
fn a_store_whose_log_is_gone_is_refused_while_its_catalog_remains() {
    for junk in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        make_store(dir.path(), &[("s", 150)], "a");
        for segment in segments(dir.path()) {
            std::fs::remove_file(&segment).expect("rm");
            let _ = std::fs::remove_file(segment.with_extension("idx"));
        }
        std::fs::remove_file(dir.path().join("FORMAT")).expect("rm FORMAT");
        std::fs::remove_file(dir.path().join("log/published-end")).expect("rm published end");
        let fake = dir.path().join("log/99999999999999999999.log");
        if junk {
            std::fs::write(&fake, vec![0u8; 4096]).expect("a file named like a segment");
        }
        let error = reopen(dir.path()).expect_err("CATALOG says the log held records");
        let text = message(&error);
        assert!(matches!(error, Error::Damaged { .. }), "{text}");
        assert!(text.contains("helios repair"), "{text}");
        if junk {
            assert!(text.contains("were durable"), "{text}");
        } else {
            assert!(text.contains("lost its log"), "{text}");
            let catalog = dir.path().join("CATALOG");
            assert!(text.contains(&catalog.display().to_string()), "{text}");
        }
        let expected: Vec<PathBuf> = if junk { vec![fake] } else { Vec::new() };
        assert_eq!(segments(dir.path()), expected, "no new log was started");
        assert!(!dir.path().join("FORMAT").exists(), "no FORMAT was written");
    }
}

// ---- Not a store.

#[test]
fn a_directory_that_is_not_a_store_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Empty, holding someone else's files, and holding a `log` that is a file.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), b"not a store").expect("write");
    let log_file = dir.path().join("log-file");
    std::fs::create_dir(&log_file).expect("mkdir");
    std::fs::write(log_file.join("log"), b"a file, not a directory").expect("write");
    for target in [&empty, &other, &log_file, &dir.path().join("missing")] {
        let before = listing(target);
        let error = reopen(target).expect_err("not a store");
        let text = message(&error);
        match error {
            Error::NotAStore { path } => assert_eq!(&path, target),
            other => panic!("{}: expected NotAStore, got {other:?}", target.display()),
        }
        assert!(text.contains(&target.display().to_string()), "{text}");
        assert_eq!(
            listing(target),
            before,
            "{}: nothing was created",
            target.display()
        );
        match helios::verify(target) {
            Err(Error::NotAStore { path }) => assert_eq!(&path, target),
            other => panic!(
                "verify {}: expected NotAStore, got {other:?}",
                target.display()
            ),
        }
    }
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries.map(|e| e.expect("entry").path()).collect();
    names.sort();
    names
}

// ---- Derived data: rebuilt, views exact.

#[test]
fn a_damaged_machine_table_is_named_by_verify_and_its_checkpoints_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("a", 40), ("b", 150)], "a");
    let table = dir.path().join("checkpoints").join("MACHINES");
    let mut bytes = std::fs::read(&table).expect("a machine table");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&table, &bytes).expect("damage");
    // verify names the table (once, not each checkpoint it numbered).
    let report = helios::verify(dir.path()).expect("verify");
    assert!(
        report.findings.iter().any(|f| f.path == table),
        "{report:?}"
    );
    assert_eq!(report.findings.len(), 1, "{report:?}");
    // A writer reads none of them, gives its machine a new number, rebuilds, and views stay
    // exact; the store is sound again.
    let engine = reopen(dir.path()).expect("open");
    let opened = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(opened.found, 0, "{opened:?}");
    engine.checkpoints().sync().expect("rebuild");
    assert_exact(&engine, &streams);
    drop(engine);
    let engine = reopen(dir.path()).expect("reopen");
    assert!(engine.inspect().open_report().checkpoints.found > 0);
    assert_exact(&engine, &streams);
    drop(engine);
    // The old copies stay in the pack until a compaction, dead: no open reads them, and
    // verify finds the store sound.
    let report = helios::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{report:?}");
}

#[test]
fn deleted_metadata_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("a", 40), ("b", 150), ("c", 7)], "a");
    let checkpoints = reopen(dir.path())
        .expect("open")
        .checkpoints()
        .stats()
        .count;
    crate::support::forget_derived(dir.path(), false);
    let engine = reopen(dir.path()).expect("open rebuilds the metadata");
    let report = engine.inspect().open_report();
    assert_eq!(report.reindexed, 40 + 150 + 7, "{report:?}");
    // The packs are the checkpoints' catalog: they are found again, not rebuilt.
    assert_eq!(report.checkpoints.found, checkpoints, "{report:?}");
    assert_exact(&engine, &streams);
    assert_eq!(engine.checkpoints().stats().damaged, 0);
    drop(engine);
    assert!(helios::verify(dir.path()).expect("verify").is_sound());
    let engine = reopen(dir.path()).expect("reopen");
    let report = engine.inspect().open_report();
    assert!(
        report.catalog_snapshot.is_some() && report.log.segments_scanned <= 2,
        "the rebuilt snapshot and indexes were kept: {report:?}"
    );
    assert!(report.reindexed < 40 + 150 + 7, "{report:?}");
    assert_exact(&engine, &streams);
}

#[test]
fn leftover_temporary_files_are_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    let full = checkpoint_path(dir.path(), "s", 16);
    // A pack creation and a segment creation cut short by a crash.
    let pack_tmp = full.pack.with_extension("pack.tmp");
    std::fs::write(&pack_tmp, &full.read()[..100]).expect("write");
    let log_tmp = dir.path().join("log").join("00000000000000009999.log.tmp");
    std::fs::write(&log_tmp, [0u8; 64]).expect("write");
    let engine = reopen(dir.path()).expect("open");
    assert!(!pack_tmp.exists() && !log_tmp.exists());
    assert!(engine.inspect().open_report().checkpoints.deleted_files >= 1);
    assert_exact(&engine, &streams);
    assert_eq!(engine.checkpoints().stats().damaged, 0);
}

/// How checkpoint damage is found: when a checkpoint is first read (its archive fails its
/// CRC), or when the open scans the packs' checkpoint headers (a header that fails stops the
/// scan: the checkpoints from there on are not listed, and come back as gaps to rebuild).
#[derive(Clone, Copy, Debug)]
enum Found {
    OnRead(u64),
    AtOpen,
}

/// Opens a store whose checkpoints were damaged while it was closed and checks the repair:
/// views are exact at once (coarser layers and longer replays stand in for damaged ones), the
/// damage is found as `found` says and rebuilt by `sync_checkpoints`, and a fresh open finds
/// the rebuilt checkpoints sound.
///
/// A checkpoint is validated when a view first reads it, and a view stops at the first
/// missing layer, so a damaged delta under a damaged full state is found only once the full
/// state is rebuilt: hence the rounds.
///
/// It checks a copy without the packs' indexes first (as a writer that stopped before its
/// close indexed the active pack leaves it: the open scans the headers), then the store as the
/// clean close left it, whose indexes cover the packs: the open reads no checkpoint header
/// there, so damage found at open in the copy is found when first read instead.
///
/// Returns the copy, repaired.
fn assert_checkpoint_damage_repaired(
    dir: &Path,
    streams: &BTreeMap<String, Vec<Vec<u8>>>,
    found_as: Found,
) -> tempfile::TempDir {
    let scanned = tempfile::tempdir().expect("tempdir");
    crate::support::copy_dir(dir, scanned.path());
    let mut removed = 0;
    for entry in std::fs::read_dir(scanned.path().join("checkpoints")).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "pidx") {
            std::fs::remove_file(&path).expect("remove a pack index");
            removed += 1;
        }
    }
    assert!(removed > 0, "a clean close indexes the active pack");
    assert_damage_repaired_in(scanned.path(), streams, found_as);
    let on_read = match found_as {
        Found::AtOpen => Found::OnRead(1),
        found => found,
    };
    assert_damage_repaired_in(dir, streams, on_read);
    scanned
}

fn assert_damage_repaired_in(
    dir: &Path,
    streams: &BTreeMap<String, Vec<Vec<u8>>>,
    found_as: Found,
) {
    let engine = reopen(dir).expect("derived damage never stops an open");
    let report = engine.inspect().open_report().checkpoints.clone();
    if let Found::AtOpen = found_as {
        // Reported as damage, or (a header that reads as another level's) dropped.
        assert_eq!(report.damage.len() as u64 + report.dropped, 1, "{report:?}");
    }
    assert_exact(&engine, streams);
    let mut found = engine.checkpoints().stats().damaged;
    let mut rebuilt = 0;
    for _round in 0..LEVELS {
        rebuilt = engine.checkpoints().sync().expect("rebuild").rebuilt;
        assert_exact(&engine, streams);
        let now = engine.checkpoints().stats().damaged;
        if now == found {
            break;
        }
        found = now;
    }
    let expected = match found_as {
        Found::OnRead(n) => n,
        Found::AtOpen => 0,
    };
    assert_eq!(found, expected, "damaged checkpoints found on read");
    let lost = expected.max(report.gaps);
    assert!(
        rebuilt >= lost,
        "every damaged checkpoint is rebuilt ({rebuilt} rebuilt, {lost} lost)"
    );
    // Every checkpoint the policy asks for is there again.
    let due: u64 = streams.values().map(|evs| evs.len() as u64 / FANOUT).sum();
    assert_eq!(engine.checkpoints().stats().count, due);
    drop(engine);
    let engine = reopen(dir).expect("reopen");
    assert_exact(&engine, streams);
    assert_eq!(
        engine.checkpoints().stats().damaged,
        0,
        "rebuilt checkpoints are sound"
    );
    assert_eq!(engine.inspect().open_report().checkpoints.gaps, 0);
    assert_eq!(engine.checkpoints().stats().count, due);
}

#[test]
fn a_checkpoint_of_a_future_format_version_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    let full = checkpoint_path(dir.path(), "s", 32);
    let mut header = full.read()[..ckpt::LEN].to_vec();
    header[ckpt::FORMAT_VERSION..ckpt::FORMAT_VERSION + 4].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32(&header[..ckpt::HEADER_CRC]);
    header[ckpt::HEADER_CRC..ckpt::HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    full.patch(0, &header);
    assert_checkpoint_damage_repaired(dir.path(), &streams, Found::AtOpen);
    let rebuilt = checkpoint_path(dir.path(), "s", 32).read();
    assert_eq!(
        &rebuilt[ckpt::FORMAT_VERSION..ckpt::FORMAT_VERSION + 4],
        &1u32.to_le_bytes(),
        "rebuilt in this build's format"
    );
}

#[test]
fn absurd_checkpoint_header_fields_are_rebuilt() {
    for (field, width) in [
        (ckpt::ARCHIVE_LEN, 8),
        (ckpt::ENTRY_COUNT, 8),
        (ckpt::LEVEL, 1),
        (ckpt::KIND, 1),
        (ckpt::BASE_VERSION, 8),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let streams = make_store(dir.path(), &[("s", 40)], "a");
        let delta = checkpoint_path(dir.path(), "s", 36);
        let mut header = delta.read()[..ckpt::LEN].to_vec();
        header[field..field + width].copy_from_slice(&u64::MAX.to_le_bytes()[..width]);
        let crc = crc32(&header[..ckpt::HEADER_CRC]);
        header[ckpt::HEADER_CRC..ckpt::HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        delta.patch(0, &header);
        // An entry count the header alone cannot refute is found when the archive is read.
        let found = if field == ckpt::ENTRY_COUNT {
            Found::OnRead(1)
        } else {
            Found::AtOpen
        };
        assert_checkpoint_damage_repaired(dir.path(), &streams, found);
    }
}

#[test]
fn a_checkpoint_damaged_in_its_archive_is_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    checkpoint_path(dir.path(), "s", 16).damage_archive();
    checkpoint_path(dir.path(), "s", 20).damage_archive();
    assert_checkpoint_damage_repaired(dir.path(), &streams, Found::OnRead(2));
}

#[test]
fn a_zeroed_checkpoint_is_damage_before_the_published_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    // As if the pack lost a checkpoint's pages: the packs end early, before what the writer
    // published, and nothing is appended over what readers may have read.
    let delta = checkpoint_path(dir.path(), "s", 20);
    delta.patch(0, &vec![0u8; usize::try_from(delta.len).expect("small")]);
    let scanned = assert_checkpoint_damage_repaired(dir.path(), &streams, Found::AtOpen);
    let packs = |dir: &Path| reopen(dir).expect("open").checkpoints().stats().packs;
    assert_eq!(
        packs(scanned.path()),
        2,
        "an open that scanned the pack found the zeros: a new pack took the rebuilt checkpoints"
    );
    assert_eq!(
        packs(dir.path()),
        1,
        "an open that read the pack's index did not read the zeros: the rebuilt checkpoint \
         went after the others, in the same pack"
    );
}

/// Where the last checkpoint written to the packs of stream `s` of a store `make_store` made
/// with 40 events lies.
fn last_checkpoint_of_s(dir: &Path) -> Placed {
    let engine = reopen(dir).expect("open");
    (1..=40 / FANOUT)
        .map(|i| placed(&engine, "s", i * FANOUT))
        .max_by_key(|p| p.offset)
        .expect("checkpoints")
}

/// Cuts the pack holding `checkpoint` in the middle of it.
fn cut_inside(checkpoint: &Placed) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&checkpoint.pack)
        .expect("open the pack");
    file.set_len(checkpoint.offset + checkpoint.len / 2)
        .expect("cut the pack");
}

#[test]
fn a_torn_pack_tail_is_cut_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    // The last checkpoint in the pack half written, past the published end: a crash while
    // writing it.
    let last = last_checkpoint_of_s(dir.path());
    let published = dir.path().join("checkpoints").join("published-end");
    let mut end = std::fs::read(&published).expect("published end");
    end[16..24].copy_from_slice(&last.offset.to_le_bytes());
    let crc = crc32(&end[..24]);
    end[24..28].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&published, &end).expect("publish less");
    cut_inside(&last);
    let engine = reopen(dir.path()).expect("open");
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(
        report.damage,
        Vec::<String>::new(),
        "a torn tail is not damage"
    );
    assert!(
        report.cut_bytes >= last.len / 2 && report.cut_bytes < last.len / 2 + 16,
        "{report:?}"
    );
    assert_eq!(
        report.gaps, 0,
        "the newest checkpoint is built forward again"
    );
    assert_exact(&engine, &streams);
    engine.checkpoints().sync().expect("rebuild");
    drop(engine);
    let engine = reopen(dir.path()).expect("reopen");
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!((report.gaps, report.cut_bytes), (0, 0), "{report:?}");
    assert_eq!(
        engine.checkpoints().stats().packs,
        1,
        "appended in place of the tail"
    );
    assert_eq!(engine.checkpoints().stats().count, 40 / FANOUT);
    assert_exact(&engine, &streams);
}

/// A pack cut inside its last checkpoint, below the end its index (the close's) names: the
/// index is not used and the pack is scanned, by a reader as by a writer, so nothing is read
/// through the map past the file's end (found by `store_image`: a bus error).
#[test]
fn a_pack_cut_below_its_index_is_scanned_not_read_past_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    let last = last_checkpoint_of_s(dir.path());
    cut_inside(&last);
    let reader = helios::ReadOnly::open(dir.path(), options()).expect("a reader");
    assert_eq!(
        reader.inspect().open_report().checkpoints.indexed_packs,
        0,
        "the index reaches past the pack's end"
    );
    for (name, events) in &streams {
        for v in 0..=events.len() {
            let state = reader.state_at(name, Version(v as u64)).expect("a view");
            assert_eq!(state, fold(&events[..v]), "{name} at {v}");
        }
    }
    drop(reader);
    let engine = reopen(dir.path()).expect("a writer");
    assert_eq!(engine.inspect().open_report().checkpoints.indexed_packs, 0);
    assert_exact(&engine, &streams);
}

#[test]
fn garbage_in_the_checkpoint_directory_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    let ckpt_dir = dir.path().join("checkpoints");
    // Not ours (names the engine does not parse): left alone.
    let foreign = [
        ckpt_dir.join("notes.txt"),
        ckpt_dir.join("7.pack"),
        ckpt_dir.join("0000000001.pack-backup"),
    ];
    for path in &foreign {
        std::fs::write(path, b"someone else's file").expect("write");
    }
    std::fs::create_dir(ckpt_dir.join("subdir")).expect("mkdir");
    let engine = reopen(dir.path()).expect("open");
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(
        (report.damage.len(), report.deleted_files),
        (0, 0),
        "{report:?}"
    );
    assert_exact(&engine, &streams);
    drop(engine);
    for path in &foreign {
        assert!(path.exists(), "{} is not ours: left alone", path.display());
    }
}

#[test]
fn a_pack_with_a_damaged_header_is_reported_and_its_checkpoints_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    let pack = checkpoint_path(dir.path(), "s", 16).pack;
    let mut bytes = std::fs::read(&pack).expect("read");
    bytes[20] ^= 1;
    std::fs::write(&pack, &bytes).expect("write");
    let engine = reopen(dir.path()).expect("derived damage never stops an open");
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(report.damage.len(), 1, "{report:?}");
    assert!(
        report.damage[0].contains(&pack.display().to_string()),
        "{report:?}"
    );
    assert_exact(&engine, &streams);
    engine.checkpoints().sync().expect("rebuild");
    let stats = engine.checkpoints().stats();
    assert_eq!(stats.count, 40 / FANOUT, "{stats:?}");
    drop(engine);
    assert_eq!(std::fs::read(&pack).expect("read"), bytes, "left as found");
    let engine = reopen(dir.path()).expect("reopen");
    assert_exact(&engine, &streams);
}

#[test]
fn a_checkpoint_directory_that_is_a_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("s", 10)], "a");
    let ckpt_dir = dir.path().join("checkpoints");
    std::fs::remove_dir_all(&ckpt_dir).expect("rm");
    std::fs::write(&ckpt_dir, b"not a directory").expect("write");
    let error = reopen(dir.path()).expect_err("checkpoints/ is a file");
    let text = message(&error);
    assert!(text.contains(&ckpt_dir.display().to_string()), "{text}");
}

#[test]
fn one_sync_checkpoints_repairs_every_damaged_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40)], "a");
    // A full state and the delta above it, both damaged.
    for version in [16, 20] {
        checkpoint_path(dir.path(), "s", version).damage_archive();
    }
    let engine = reopen(dir.path()).expect("open");
    assert_exact(&engine, &streams);
    engine.checkpoints().sync().expect("rebuild");
    // `sync_checkpoints` promises that when it returns, a view of any version replays at most
    // `fanout - 1` events: the delta at 20 must not still be waiting to be found damaged.
    for v in 0..=40 {
        let view = engine.view("s", Version(v)).expect("view");
        assert!(
            view.report().events_replayed < FANOUT,
            "version {v}: {} events replayed after sync_checkpoints ({})",
            view.report().events_replayed,
            view.report()
        );
    }
}

#[test]
fn verify_checks_every_checkpoint_in_the_packs_and_names_the_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_store(dir.path(), &[("a", 40), ("b", 17)], "a");
    let policy = LevelPolicy::new(FANOUT, LEVELS).expect("policy");
    let sound = helios::verify_with_policy(dir.path(), &policy).expect("verify");
    assert!(sound.is_sound(), "{:?}", sound.findings);
    assert_eq!(
        (sound.packs, sound.checkpoints),
        (1, 40 / FANOUT + 17 / FANOUT)
    );
    // Against another policy, every checkpoint off its grid is named.
    let other = LevelPolicy::new(FANOUT * 2, LEVELS).expect("policy");
    let off = helios::verify_with_policy(dir.path(), &other).expect("verify");
    assert!(!off.is_sound());
    // A damaged archive is named with its pack and offset; the store is not changed.
    let victim = checkpoint_path(dir.path(), "a", 20);
    victim.damage_archive();
    let before = std::fs::read(&victim.pack).expect("read");
    let report = helios::verify_with_policy(dir.path(), &policy).expect("verify");
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    let finding = &report.findings[0];
    assert_eq!(
        (&finding.path, finding.offset),
        (&victim.pack, Some(victim.offset))
    );
    assert!(finding.reason.contains("checksum"), "{finding}");
    assert_eq!(std::fs::read(&victim.pack).expect("read"), before);
    // A damaged pack header is named too.
    let mut bytes = before;
    bytes[17] ^= 1;
    std::fs::write(&victim.pack, &bytes).expect("write");
    let report = helios::verify(dir.path()).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == victim.pack && f.offset == Some(0)),
        "{:?}",
        report.findings
    );
}

#[test]
fn a_pack_copied_from_another_store_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let other = tempfile::tempdir().expect("tempdir");
    // Same stream name, same stream id, same number of events, same lengths: different values.
    let streams = make_store(dir.path(), &[("s", 40)], "ours");
    make_store(other.path(), &[("s", 40)], "them");
    let ours = checkpoint_path(dir.path(), "s", 16).pack;
    let theirs = checkpoint_path(other.path(), "s", 16).pack;
    assert_eq!(ours.file_name(), theirs.file_name());
    std::fs::copy(&theirs, &ours).expect("copy");
    // Checkpoints are derived data; one from another store describes other events, and a view
    // built on it would be wrong without any error. It must be detected and rebuilt, never used.
    let report = helios::verify(dir.path()).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == ours && f.reason.contains("another store")),
        "{:?}",
        report.findings
    );
    let engine = reopen(dir.path()).expect("derived damage never stops an open");
    let checkpoints = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(
        (checkpoints.found, checkpoints.damage.len()),
        (0, 1),
        "{checkpoints:?}"
    );
    assert!(
        checkpoints.damage[0].contains("another store"),
        "{checkpoints:?}"
    );
    assert_exact(&engine, &streams);
    engine.checkpoints().sync().expect("rebuild");
    assert_eq!(engine.checkpoints().stats().count, 40 / FANOUT);
    drop(engine);
    let engine = reopen(dir.path()).expect("reopen");
    assert_exact(&engine, &streams);
    // A reader reads around it too.
    let reader = helios::ReadOnly::open(dir.path(), options()).expect("a reader");
    for (v, upto) in (0..=40u64).zip(0..) {
        assert_eq!(
            reader.state_at("s", Version(v)).expect("state"),
            fold(&streams["s"][..upto])
        );
    }
}

/// A pack lost after a clean close (deleted, or renamed away): the published end names it, so
/// the writer's open reports it and reads every stream's checkpoints instead of trusting the
/// catalog snapshot's list of what is due; everything is rebuilt.
#[test]
fn a_lost_pack_is_damage_and_its_checkpoints_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = make_store(dir.path(), &[("s", 40), ("t", 25)], "a");
    let packs = dir.path().join("checkpoints");
    for entry in std::fs::read_dir(&packs).expect("list") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".pack") || name.ends_with(".pidx") {
            std::fs::remove_file(&path).expect("remove");
        }
    }
    let engine = reopen(dir.path()).expect("a lost pack never stops an open");
    let report = engine.inspect().open_report().checkpoints.clone();
    assert!(
        report
            .damage
            .iter()
            .any(|d| d.contains(".pack") && d.contains("missing")),
        "{report:?}"
    );
    assert!(!report.deferred, "{report:?}");
    assert_exact(&engine, &streams);
    engine.checkpoints().build().expect("build");
    assert_eq!(
        engine.checkpoints().stats().count,
        40 / FANOUT + 25 / FANOUT
    );
    let view = engine.view("s", Version(40)).expect("view");
    assert!(view.report().events_replayed < FANOUT, "{}", view.report());
}
