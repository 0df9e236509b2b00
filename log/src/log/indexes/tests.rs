//! Tests of the segment indexes: building, loading, damage found at open or at the first
//! lookup, and the index a clean close writes of the active segment.

use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::log::segments::parse_segment_name;
use crate::log::{LogOptions, NewRecord};
use crate::storage::SimStorage;
use crate::types::{RecordClass, RecordKind};

/// Where each `(stream, version)` of [`log_of_many_segments`] went.
type Locations = HashMap<(u64, u64), Location>;

/// Where [`log_of_many_segments`] puts its log.
const DIR: &str = "/log";

/// Appends 600 events of 7 interleaved streams to a log of small segments in [`DIR`] on a
/// simulated storage; returns the storage, the log and where each `(stream, version)` went.
fn log_of_many_segments() -> (Arc<dyn Storage>, Log, Locations) {
    let storage: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let dir = Path::new(DIR);
    let options = LogOptions {
        segment_size_bytes: 4096,
        first_segment_size_bytes: 4096,
        ..LogOptions::default()
    };
    let (log, _) = Log::open(storage.clone(), dir, options, None, &mut |_, _| {}).expect("open");
    let mut heads = [0u64; 7];
    let mut locations = HashMap::new();
    let mut out = Vec::new();
    for i in 0..600u64 {
        let stream = (i * 5 + i / 7) % 7;
        heads[stream as usize] += 1;
        let payload = format!("event {i} of stream {stream}");
        out.clear();
        log.append(
            &[NewRecord {
                stream: StreamId(stream + 1),
                version: Version(heads[stream as usize]),
                kind: RecordKind::Event,
                payload: payload.as_bytes(),
            }],
            RecordClass::Normal,
            &mut out,
        )
        .expect("append");
        locations.insert((stream + 1, heads[stream as usize]), out[0]);
    }
    log.sync_all().expect("sync");
    (storage, log, locations)
}

fn check_locations(log: &Log, locations: &Locations, through: Location) {
    for (&(stream, version), &location) in locations {
        let found = log.locate(StreamId(stream), Version(version), Version(version));
        if location.lsn <= through.lsn {
            assert_eq!(found, [(Version(version), location)], "{stream} {version}");
        } else {
            assert!(found.is_empty(), "the active segment is not indexed");
        }
    }
}

#[test]
fn sealed_segments_are_indexed_once_and_found_again() {
    let (storage, log, locations) = log_of_many_segments();
    let dir = Path::new(DIR);
    let segments = log.segments().expect("segments").len();
    assert!(segments >= 5, "{segments} segments");
    // Nothing is indexed past what the caller accounts for.
    assert_eq!(log.index_sealed(Lsn(1), true).expect("index").built, 0);
    let indexed = log.index_sealed(log.synced_lsn(), true).expect("index");
    assert_eq!(
        indexed.built,
        segments - 1,
        "every sealed segment, not the active one"
    );
    let through = indexed.through.expect("through");
    check_locations(&log, &locations, through);
    // A range across segments comes back whole and in order.
    let run = log.locate(StreamId(3), Version(1), Version(80));
    assert!(run.len() > 20);
    assert!(run.windows(2).all(|w| w[1].0.0 == w[0].0.0 + 1));
    assert_eq!(
        log.index_sealed(log.synced_lsn(), true)
            .expect("again")
            .built,
        0
    );
    drop(log);

    // A second open finds them (one is damaged, one is gone) as a writer and as a reader.
    let mut names = storage.list_files(dir).expect("list");
    names.sort();
    let index_files: Vec<&String> = names.iter().filter(|n| n.ends_with(".idx")).collect();
    assert_eq!(index_files.len(), segments - 1);
    let damaged = dir.join(index_files[1]);
    let file = storage.open(&damaged).expect("open");
    file.write_all_at(&[0xff], 100).expect("damage");
    storage
        .remove_file(&dir.join(index_files[2]))
        .expect("remove");
    let (reader, _) = reopen(&storage, dir, Access::Read);
    // A reader checks an index's tables at its first lookup, not at load: the damaged one
    // (its tables hit) loads, the missing one stops `through`.
    let found = reader.index_sealed(Lsn(u64::MAX), false).expect("load");
    assert_eq!((found.built, found.damaged.len()), (0, 0), "{found:?}");
    assert_eq!(
        found.through.map(|l| l.segment),
        log_segments(&names).get(1).copied()
    );
    let built = reader.index_sealed(Lsn(u64::MAX), true).expect("build");
    assert_eq!(built.built, 1, "built in memory: {built:?}");
    // The lookups find every event: the damaged index fails its check at its first lookup
    // and is built again, in memory.
    check_locations(&reader, &locations, built.through.expect("through"));
    let mut now = storage.list_files(dir).expect("list");
    now.sort();
    assert_eq!(
        now,
        names_without(&names, index_files[2]),
        "a reader writes nothing"
    );
    drop(reader);

    // A writer too checks at the first lookup: it builds the missing index at load, and
    // the damaged one at its first lookup, writing both.
    let (writer, _) = reopen(&storage, dir, Access::Write);
    let rebuilt = writer.index_sealed(Lsn(u64::MAX), true).expect("rebuild");
    assert_eq!((rebuilt.built, rebuilt.damaged.len()), (1, 0));
    check_locations(&writer, &locations, rebuilt.through.expect("through"));
    let mut after = storage.list_files(dir).expect("list");
    after.sort();
    assert_eq!(
        after, names,
        "the lost index is back, the damaged one replaced"
    );
    let bytes = storage.map_readonly(&damaged).expect("map");
    let id = log_segments(&names)[1];
    assert!(
        SegmentIndex::from_bytes(id, bytes).is_ok(),
        "the damaged index was written again"
    );
}

/// An index whose checksums hold but which ends before its segment's last record (built
/// from a copy of the segment cut there, as a clean close indexes the segment then active)
/// is outgrown, not trusted: a writer rebuilds it without calling it damage, and every
/// event is found. And a segment removed between two others is named.
#[test]
fn an_index_that_ends_early_is_rebuilt_and_a_removed_segment_named() {
    let (storage, log, locations) = log_of_many_segments();
    let dir = Path::new(DIR);
    let all = log.index_sealed(log.synced_lsn(), true).expect("index");
    let through = all.through.expect("through");
    let victim = log.sealed_ids()[1];
    let last = log.read_indexes()[&victim].last();
    drop(log);
    let path = dir.join(segment_name(victim));
    let mut cut = storage.map_readonly(&path).expect("map").to_vec();
    let at = usize::try_from(last.offset).expect("offset");
    cut[at..].fill(0);
    let early = SegmentIndex::build(victim, &cut).expect("an index of the cut copy");
    let file = storage
        .create(&dir.join(index_name(victim)))
        .expect("create");
    file.write_all_at(&early, 0).expect("write");
    drop(file);
    let (writer, _) = reopen(&storage, dir, Access::Write);
    let found = writer.index_sealed(Lsn(u64::MAX), true).expect("load");
    assert_eq!((found.built, found.damaged.len()), (1, 0), "{found:?}");
    check_locations(&writer, &locations, through);
    drop(writer);

    // The segment after the victim, removed: the victim's index ends before the next one.
    let next = {
        let mut ids = log_segments(&storage.list_files(dir).expect("list"));
        ids.retain(|id| *id > victim);
        ids[0]
    };
    storage
        .remove_file(&dir.join(segment_name(next)))
        .expect("remove");
    let (writer, _) = Log::open(
        storage.clone(),
        dir,
        LogOptions::default(),
        Some(through),
        &mut |_, _| {},
    )
    .expect("an open from past the hole does not read it");
    let error = writer
        .index_sealed(Lsn(u64::MAX), false)
        .expect_err("the hole is found where the indexes load");
    let text = error.to_string();
    assert!(text.contains(&segment_name(next)), "{text}");
    assert!(text.contains("this segment is missing"), "{text}");
}

/// An open reads the last record an index names (a page fault into its segment) only for
/// the newest index and for one the next segment does not follow: a forged last-record
/// offset in an older index whose LSNs line up is taken (its reads check every record they
/// find), the same forgery in the newest one is found at open and the index rebuilt.
#[test]
fn an_open_reads_the_last_record_only_of_the_newest_index_and_of_a_gap() {
    let (storage, log, locations) = log_of_many_segments();
    let dir = Path::new(DIR);
    let through = log
        .index_sealed(log.synced_lsn(), true)
        .expect("index")
        .through
        .expect("through");
    let ids = log.sealed_ids();
    drop(log);
    let forge = |id: SegmentId| {
        let path = dir.join(index_name(id));
        let mut bytes = storage.map_readonly(&path).expect("map").to_vec();
        let offset = u64::from_le_bytes(bytes[32..40].try_into().expect("8 bytes"));
        bytes[32..40].copy_from_slice(&(offset + 8).to_le_bytes());
        let crc = crc32fast::hash(&bytes[..60]);
        bytes[60..64].copy_from_slice(&crc.to_le_bytes());
        let file = storage.create(&path).expect("create");
        file.write_all_at(&bytes, 0).expect("write");
    };
    forge(ids[1]);
    forge(*ids.last().expect("sealed segments"));
    let (writer, _) = reopen(&storage, dir, Access::Write);
    let found = writer.index_sealed(Lsn(u64::MAX), true).expect("load");
    assert_eq!(found.damaged.len(), 1, "{found:?}");
    assert_eq!(found.damaged[0].segment, *ids.last().expect("newest"));
    assert_eq!(found.built, 1, "the newest rebuilt");
    check_locations(&writer, &locations, through);
}

/// The active segment's index a clean close wrote is used at the next open without
/// reading its tables: a damaged one is found at its first lookup and built again from the
/// segment up to the record it ends at, and every event up to there is found.
#[test]
fn a_damaged_tail_index_is_found_at_its_first_lookup() {
    let (storage, log, locations) = log_of_many_segments();
    let dir = Path::new(DIR);
    log.index_sealed(log.synced_lsn(), true).expect("index");
    let through = log
        .write_tail_index()
        .expect("tail")
        .expect("an active segment");
    drop(log);
    let path = dir.join(index_name(through.segment));
    let len = storage.map_readonly(&path).expect("map").len();
    let file = storage.open(&path).expect("open");
    // A byte of its tables (past the 64-byte header), not its header.
    file.write_all_at(&[0xff], (len - 5) as u64)
        .expect("damage");
    drop(file);
    for access in [Access::Read, Access::Write] {
        let (log, _) = reopen(&storage, dir, access);
        log.index_sealed(Lsn(u64::MAX), true).expect("load");
        assert!(
            log.load_tail_index(through).expect("tail"),
            "the file is used: its header and last record hold"
        );
        for (&(stream, version), &location) in &locations {
            let found = log.locate(StreamId(stream), Version(version), Version(version));
            assert_eq!(found, [(Version(version), location)], "{stream} {version}");
        }
    }
}

/// Which open [`reopen`] makes.
#[derive(Clone, Copy)]
enum Access {
    Write,
    Read,
}

/// Opens the log in `dir` again, as a writer or read-only, with the default options.
fn reopen(storage: &Arc<dyn Storage>, dir: &Path, access: Access) -> (Log, crate::RecoveryReport) {
    let open = match access {
        Access::Write => Log::open,
        Access::Read => Log::open_read_only,
    };
    open(
        storage.clone(),
        dir,
        LogOptions::default(),
        None,
        &mut |_, _| {},
    )
    .expect("reopen")
}

fn log_segments(names: &[String]) -> Vec<SegmentId> {
    let mut ids: Vec<SegmentId> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    ids.sort_unstable();
    ids
}

fn names_without(names: &[String], gone: &str) -> Vec<String> {
    names.iter().filter(|n| *n != gone).cloned().collect()
}
