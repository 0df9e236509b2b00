//! Store formats: the golden store of every format version this build reads, the `FORMAT`
//! file, and the migration of a format-1 store.

use std::path::{Path, PathBuf};

use helios::{Durability, Engine, Error, LevelPolicy, STORE_FORMAT_VERSION, Version};
use helios_log::format::{FORMAT_VERSION, segment_header};

use crate::support::{assert_view_matches, at, copy_dir, del, model_states, set};

/// The checkpoint files of the store in `dir`.
fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("checkpoints"))
        .expect("checkpoint dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    files.sort();
    files
}

/// The log segments of the store in `dir`, oldest first, with the format version of each.
fn segment_versions(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read a segment");
            let at = segment_header::FORMAT_VERSION;
            let version = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            (path, version)
        })
        .collect()
}

/// The committed golden store of store format 1: a log and the checkpoint files written by
/// the last build of format 1, without the fjall metadata (derived data, rebuilt on open).
/// This build writes format 2, so it cannot regenerate it: it is frozen.
fn golden_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-store-v1")
}

/// The events of the golden store's one stream, `golden`.
fn golden_events() -> Vec<Vec<u8>> {
    (0..137u32)
        .map(|i| match i % 5 {
            3 => del(&format!("key-{}", (i * 7) % 23)),
            _ => set(&format!("key-{}", (i * 7) % 23), &format!("value-{i}")),
        })
        .collect()
}

fn open_golden(dir: &Path) -> Engine {
    Engine::builder(dir)
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = 16 * 1024;
            options.checkpoints.policy = Some(LevelPolicy::new(4, 3).expect("policy"));
            options.background_threads = false;
            options.create_if_missing = false;
            options
        })
        .open()
        .expect("open the golden store")
}

#[test]
fn golden_store_of_format_1_still_reads() {
    let fixture = golden_fixture();
    let events = golden_events();
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let committed = checkpoint_files(dir.path()).len() as u64;
    assert!(
        committed > 30,
        "the fixture has its checkpoint files ({committed})"
    );
    let fixture_segment =
        std::fs::read(fixture.join("log/00000000000000000001.log")).expect("the fixture's segment");
    assert!(
        !dir.path().join("FORMAT").exists(),
        "format 1 had no FORMAT file"
    );
    let engine = open_golden(dir.path());
    // Its checkpoint files were copied into one pack, and removed.
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!((report.found, report.packs), (committed, 1), "{report:?}");
    assert_eq!(report.deleted_files, committed, "{report:?}");
    assert!(checkpoint_files(dir.path()).is_empty());
    // Opening migrated it: a FORMAT file, and the active segment (it holds records) sealed
    // unchanged, with a segment of the current format after it for whatever comes next.
    assert_eq!(engine.inspect().open_report().migrated_from, Some(1));
    assert!(dir.path().join("FORMAT").exists());
    let segments = segment_versions(dir.path());
    assert_eq!(segments.len(), 2, "{segments:?}");
    assert_eq!(segments[0].1, 1);
    assert_eq!(segments[1].1, FORMAT_VERSION);
    assert_eq!(
        std::fs::read(&segments[0].0).expect("read"),
        fixture_segment,
        "the format-1 segment is not rewritten"
    );
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..23).map(|k| format!("key-{k}").into_bytes()).collect();
    for v in 0..=events.len() as u64 {
        let replayed = assert_view_matches(&engine, "golden", v, at(&states, v), &keys);
        assert!(
            replayed <= 3,
            "version {v} replayed {replayed}: a checkpoint was not read"
        );
    }
    let stats = engine.checkpoints().stats();
    assert_eq!((stats.damaged, stats.rebuilt), (0, 0), "{stats:?}");
    // Records only format 2 has now land in the format-2 segment, and the store reopens as
    // a store of the current format.
    engine
        .fork_stream("golden", Version(50), "fork")
        .expect("fork");
    engine.delete_stream("golden").expect("delete");
    engine.close().expect("close");
    let engine = open_golden(dir.path());
    assert_eq!(engine.inspect().open_report().migrated_from, None);
    assert_eq!(engine.head("golden"), None);
    assert_eq!(engine.head("fork"), Some(Version(50)));
    assert_view_matches(&engine, "fork", 50, at(&states, 50), &keys);
}

/// The golden store predates the anchor: its first-window deltas (versions below 64) are
/// against the empty state. Checkpoints rebuilt there now are deltas against the anchor (the
/// old file at version 4), or full states where such a delta would hold every key, and new
/// events get new checkpoints; every version still reads the model's state.
#[test]
fn golden_store_of_format_1_mixes_old_and_new_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&golden_fixture(), dir.path());
    let rebuilt = [
        "0000000000000001-00000000000000000032-l2.ckpt",
        "0000000000000001-00000000000000000036-l1.ckpt",
    ];
    for name in rebuilt {
        std::fs::remove_file(dir.path().join("checkpoints").join(name)).expect("delete");
    }
    let engine = open_golden(dir.path());
    assert_eq!(engine.inspect().open_report().checkpoints.gaps, 2);
    let mut events = golden_events();
    let more: Vec<Vec<u8>> = (137..201u32)
        .map(|i| set(&format!("key-{}", (i * 7) % 23), &format!("value-{i}")))
        .collect();
    engine
        .append("golden", &more, Durability::Critical, None)
        .expect("append");
    events.extend(more);
    let stats = engine.checkpoints().sync().expect("sync");
    assert_eq!((stats.damaged, stats.rebuilt), (0, 2), "{stats:?}");
    let listed = engine
        .checkpoints()
        .of_stream("golden")
        .expect("checkpoints");
    let base = |v: u64| listed.iter().find(|c| c.version.0 == v).map(|c| c.base.0);
    // The rebuilt level-2 checkpoint at 32 would be a delta against the anchor (4) holding
    // every key, so it is the full state; the one at 36 is a delta against it.
    assert_eq!((base(32), base(36)), (Some(0), Some(32)));
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..23).map(|k| format!("key-{k}").into_bytes()).collect();
    for v in 0..=events.len() as u64 {
        let replayed = assert_view_matches(&engine, "golden", v, at(&states, v), &keys);
        assert!(replayed <= 3, "version {v} replayed {replayed}");
    }
}

/// The committed golden store of store format 2: the format-1 fixture's stream, a fork of it
/// that goes on by itself, and a stream deleted and then created again under its name; no
/// fjall metadata. Written by the last build of format 2, which this build cannot regenerate:
/// it is frozen (its history is `write_golden`'s).
fn golden_fixture_v2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-store-v2")
}

/// The fork's own events, after version 50 of `golden`.
fn fork_events() -> Vec<Vec<u8>> {
    (0..30u32)
        .map(|i| set(&format!("key-{}", i % 5), &format!("fork-{i}")))
        .collect()
}

/// The committed golden store of store format 3 (checkpoints in packs), with the same history
/// as the one of format 2.
fn golden_fixture_v3() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-store-v3")
}

/// The committed golden store of store format 4 (segment indexes beside the sealed segments),
/// with the same history.
fn golden_fixture_v4() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-store-v4")
}

/// The committed golden store of store format 5 (no stream records in fjall), with the same
/// history. Regenerate (only while the store format is 5) with
/// `HELIOS_REGENERATE_FIXTURES=1 cargo nextest run -p helios --test it formats::golden_store_of_format_5`.
fn golden_fixture_v5() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-store-v5")
}

/// The segment index files in a store.
fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    files.sort();
    files
}

/// Writes the history of the golden stores of formats 2 to 5 into `dir`.
fn write_golden(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let engine = open_golden_with(dir, true);
    for chunk in golden_events().chunks(9) {
        engine
            .append("golden", chunk, Durability::Critical, None)
            .expect("append");
    }
    engine
        .fork_stream("golden", Version(50), "golden-fork")
        .expect("fork");
    engine
        .append("golden-fork", &fork_events(), Durability::Critical, None)
        .expect("append to the fork");
    engine
        .append(
            "gone",
            &[set("a", "1"), set("b", "2")],
            Durability::Critical,
            None,
        )
        .expect("append");
    engine.delete_stream("gone").expect("delete");
    engine
        .append("gone", &[set("c", "3")], Durability::Critical, None)
        .expect("a new stream under the name");
    engine.checkpoints().sync().expect("sync");
    engine.close().expect("close");
    std::fs::remove_dir_all(dir.join("meta")).expect("drop the derived metadata");
    std::fs::remove_file(dir.join("LOCK")).expect("drop the lock file");
}

/// Every version of the golden stores of formats 2 to 5 reads the model's state, the fork's
/// from its checkpoints.
fn check_golden(engine: &Engine) {
    let events = golden_events();
    let fork: Vec<Vec<u8>> = events[..50].iter().cloned().chain(fork_events()).collect();
    let keys: Vec<Vec<u8>> = (0..23).map(|k| format!("key-{k}").into_bytes()).collect();
    let states = model_states(&events);
    for v in 0..=events.len() as u64 {
        assert_view_matches(engine, "golden", v, at(&states, v), &keys);
    }
    let fork_states = model_states(&fork);
    for v in 0..=fork.len() as u64 {
        let replayed = assert_view_matches(engine, "golden-fork", v, at(&fork_states, v), &keys);
        assert!(replayed <= 3, "fork version {v} replayed {replayed}");
    }
    let fork_info = engine.stream("golden-fork").expect("the fork");
    assert_eq!(fork_info.fork.map(|f| f.at), Some(Version(50)));
    let gone = engine
        .stream("gone")
        .expect("the stream made again under the name");
    assert_eq!(gone.head, Version(1));
    assert_eq!(
        engine.state_at("gone", Version(1)).expect("state"),
        crate::support::fold(&[set("c", "3")])
    );
    let names: Vec<String> = engine.streams().map(|s| s.name).collect();
    assert_eq!(names, ["golden", "golden-fork", "gone"]);
    let stats = engine.checkpoints().stats();
    assert_eq!((stats.damaged, stats.rebuilt), (0, 0), "{stats:?}");
}

/// The golden store of format 2 (one file per checkpoint) migrates: its checkpoint files go
/// into a pack, and nothing is rebuilt.
#[test]
fn golden_store_of_format_2_migrates_its_checkpoints_into_packs() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&golden_fixture_v2(), dir.path());
    let committed = checkpoint_files(dir.path()).len() as u64;
    assert!(committed > 30, "the fixture has its checkpoint files");
    let engine = open_golden_with(dir.path(), false);
    assert_eq!(engine.inspect().open_report().migrated_from, Some(2));
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!((report.found, report.packs), (committed, 1), "{report:?}");
    assert_eq!(report.deleted_files, committed, "{report:?}");
    assert!(checkpoint_files(dir.path()).is_empty());
    assert!(segment_versions(dir.path()).iter().all(|(_, v)| *v == 2));
    check_golden(&engine);
    engine.close().expect("close");
    let engine = open_golden_with(dir.path(), false);
    assert_eq!(engine.inspect().open_report().migrated_from, None);
    assert_eq!(engine.inspect().open_report().checkpoints.found, committed);
    check_golden(&engine);
}

/// A reader leaves a store of format 2 as it is: it reads its events, without its checkpoint
/// files, and changes nothing.
#[test]
fn a_reader_reads_a_store_of_format_2_as_it_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&golden_fixture_v2(), dir.path());
    let before = checkpoint_files(dir.path());
    let reader = helios::ReadOnly::open(dir.path(), helios::Options::default()).expect("read");
    assert_eq!(reader.inspect().open_report().store_format, 2);
    let events = golden_events();
    let states = model_states(&events);
    let head = reader
        .state_at("golden", Version(events.len() as u64))
        .expect("state");
    assert_eq!(&head, at(&states, events.len() as u64));
    drop(reader);
    assert_eq!(checkpoint_files(dir.path()), before, "nothing moved");
}

/// The golden store of format 3 migrates: the segment indexes are written, and every version
/// still reads.
#[test]
fn golden_store_of_format_3_migrates_to_segment_indexes() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&golden_fixture_v3(), dir.path());
    assert!(index_files(dir.path()).is_empty());
    let engine = open_golden_with(dir.path(), false);
    assert_eq!(engine.inspect().open_report().migrated_from, Some(3));
    let sealed = engine.inspect().segments().expect("segments").len() - 1;
    assert_eq!(
        index_files(dir.path()).len(),
        sealed,
        "one index per sealed segment"
    );
    check_golden(&engine);
    drop(engine);
    let engine = open_golden_with(dir.path(), false);
    assert_eq!(engine.inspect().open_report().migrated_from, None);
    check_golden(&engine);
}

/// The golden store of format 4 migrates: the open reads the whole log once (fjall's stream
/// records are not used), and every version still reads, before and after a reopen that
/// starts from the catalog snapshot.
#[test]
fn golden_store_of_format_4_migrates_to_catalog_snapshot_opens() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&golden_fixture_v4(), dir.path());
    let engine = open_golden_with(dir.path(), false);
    let report = engine.inspect().open_report().clone();
    assert_eq!(report.migrated_from, Some(4));
    assert_eq!(
        report.catalog_snapshot, None,
        "a migration reads the whole log"
    );
    check_golden(&engine);
    drop(engine);
    let engine = open_golden_with(dir.path(), false);
    let report = engine.inspect().open_report().clone();
    assert_eq!(report.migrated_from, None);
    assert!(report.catalog_snapshot.is_some(), "{report:?}");
    check_golden(&engine);
}

#[test]
fn golden_store_of_format_5_reads_forks_and_deletions() {
    let fixture = golden_fixture_v5();
    if std::env::var_os("HELIOS_REGENERATE_FIXTURES").is_some() {
        assert_eq!(STORE_FORMAT_VERSION, 5, "this fixture is of format 5");
        write_golden(&fixture);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, dir.path());
    let indexes = index_files(dir.path());
    assert!(indexes.len() >= 2, "{indexes:?}");
    // The fixture's `CATALOG` has the first layout of the snapshot, which this build reads as
    // absent: the first open reads the whole log and writes a snapshot of its own.
    let engine = open_golden_with(dir.path(), false);
    let report = engine.inspect().open_report().clone();
    assert_eq!(report.catalog_snapshot, None, "{report:?}");
    check_golden(&engine);
    drop(engine);
    let engine = open_golden_with(dir.path(), false);
    let report = engine.inspect().open_report().clone();
    assert_eq!(report.migrated_from, None);
    assert!(
        report.catalog_snapshot.is_some(),
        "the writer starts from the snapshot the first open wrote"
    );
    assert_eq!(
        (
            report.checkpoints.packs,
            report.checkpoints.gaps,
            report.checkpoints.damage.len()
        ),
        (1, 0, 0),
        "{report:?}"
    );
    check_golden(&engine);
    // A reader reads it through the same indexes.
    drop(engine);
    let reader = helios::ReadOnly::open(dir.path(), helios::Options::default()).expect("read");
    let events = golden_events();
    let states = model_states(&events);
    for v in [1, 17, 50, events.len() as u64] {
        assert_eq!(
            &reader.state_at("golden", Version(v)).expect("state"),
            at(&states, v)
        );
    }
}

fn open_golden_with(dir: &Path, create: bool) -> Engine {
    let mut options = helios::Options::default();
    // The smallest segments, so that the golden history spans several (the fixtures of formats
    // 2 and 3 were written with 16 KiB ones, and hold one).
    options.log.segment_size_bytes = helios_log::MIN_SEGMENT_SIZE_BYTES;
    options.checkpoints.policy = Some(LevelPolicy::new(4, 3).expect("policy"));
    options.background_threads = false;
    options.create_if_missing = create;
    Engine::open(dir, options).expect("open a golden store")
}

#[test]
fn a_new_store_states_its_format_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), helios::Options::default()).expect("create");
    assert_eq!(engine.inspect().open_report().migrated_from, None);
    let bytes = std::fs::read(dir.path().join("FORMAT")).expect("a FORMAT file");
    assert_eq!(&bytes[..8], b"HELIOSFM");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")),
        STORE_FORMAT_VERSION
    );
    assert!(
        segment_versions(dir.path())
            .iter()
            .all(|(_, v)| *v == FORMAT_VERSION)
    );
}

#[test]
fn a_store_of_a_newer_format_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Engine::open(dir.path(), helios::Options::default()).expect("create"));
    let path = dir.path().join("FORMAT");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[8..12].copy_from_slice(&(STORE_FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32fast::hash(&bytes[..16]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    match Engine::open(dir.path(), helios::Options::default()) {
        Err(Error::NewerStoreFormat {
            path: named,
            found,
            supported,
        }) => {
            assert_eq!(named, path);
            assert_eq!(
                (found, supported),
                (STORE_FORMAT_VERSION + 1, STORE_FORMAT_VERSION)
            );
        }
        other => panic!("expected NewerStoreFormat, got {other:?}"),
    }
    // Damage is not mistaken for a newer format.
    bytes[12] = 1;
    std::fs::write(&path, &bytes).expect("write");
    let error = Engine::open(dir.path(), helios::Options::default()).expect_err("damaged");
    let text = error.to_string();
    assert!(
        text.contains("FORMAT") && text.contains("checksum"),
        "{text}"
    );
}

/// Bytes the files under `dir` take on disk: allocated blocks, not apparent sizes.
fn allocated_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("list") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            allocated_bytes(&entry.path())
        } else {
            meta.blocks() * 512
        };
    }
    total
}

#[test]
fn a_small_store_is_small_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), helios::Options::default()).expect("create");
    let few: Vec<Vec<u8>> = (0..5).map(|i| set(&format!("k{i}"), "v")).collect();
    engine
        .append("s", &few, Durability::Critical, None)
        .expect("append");
    engine.close().expect("close");
    let bytes = allocated_bytes(dir.path());
    assert!(
        bytes <= 1 << 20,
        "a store of five events takes {bytes} bytes"
    );

    // Once the first segment is a quarter full, the preallocator prepares the next one as a
    // spare: the store still fits in a megabyte with it.
    let engine = Engine::open(dir.path(), helios::Options::default()).expect("reopen");
    let quarter: Vec<Vec<u8>> = (0..400)
        .map(|i| set(&format!("k{i}"), &"v".repeat(60)))
        .collect();
    engine
        .append("s", &quarter, Durability::Critical, None)
        .expect("append");
    let segment = engine.inspect().segments().expect("segments")[0].file_len_bytes;
    assert!(segment <= 256 << 10, "the first segment is {segment} bytes");
    let spare = dir.path().join("log/next-segment.spare");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !spare.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no spare was prepared"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // Wait for the spare's zeros to be written: its size settles.
    let mut last = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let now = allocated_bytes(dir.path());
        if now == last {
            break;
        }
        last = now;
    }
    assert!(last <= 1 << 20, "{last} bytes with a spare");
    engine.close().expect("close");
    // A closed store keeps no spare: the next open would remove it anyway.
    assert!(!spare.exists(), "the spare outlived the close");
    let closed = allocated_bytes(dir.path());
    assert!(
        closed < last,
        "{closed} bytes after close, {last} with the spare"
    );
}

/// A store whose creation was cut short after its `FORMAT` file (found by the CLI's kill test):
/// the next open finishes creating it, rather than taking it for a directory of other files.
#[test]
fn a_creation_cut_short_after_the_format_file_is_finished_by_the_next_open() {
    let fresh = tempfile::tempdir().expect("tempdir");
    drop(Engine::open(fresh.path(), helios::Options::default()).expect("create"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fresh.path().join("FORMAT"), dir.path().join("FORMAT")).expect("copy");
    let engine = Engine::open(dir.path(), helios::Options::default()).expect("finish the store");
    engine
        .append("s", &[set("a", "1")], Durability::Critical, None)
        .expect("append");
}

/// A writer that reopens a store whose log has rolled prepares no spare segment until its
/// active segment is a quarter full: a short-lived writer (a command-line append) does not
/// write a whole segment of zeros that its close would remove.
#[test]
fn a_reopened_writer_prepares_no_spare_until_its_segment_is_a_quarter_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = helios::Options::default();
    options.log.segment_size_bytes = helios_log::MIN_SEGMENT_SIZE_BYTES;
    let engine = Engine::open(dir.path(), options.clone()).expect("create");
    // Events until the log has rolled a few times, stopping right after a roll: the active
    // segment then holds one event.
    let segments = || engine.inspect().segments().expect("segments").len();
    let mut i = 0;
    while segments() < 4 {
        let before = segments();
        while segments() == before {
            i += 1;
            engine
                .append(
                    "s",
                    &[set(&format!("k{i}"), &"v".repeat(200))],
                    Durability::Normal,
                    None,
                )
                .expect("append");
        }
    }
    engine.close().expect("close");

    let engine = Engine::open(dir.path(), options).expect("reopen");
    engine
        .append("s", &[set("k", "v")], Durability::Critical, None)
        .expect("append");
    // The preallocator is woken by appends; give it time to act if it wanted to.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let spare = dir.path().join("log/next-segment.spare");
    assert!(
        !spare.exists(),
        "a spare for a segment that is nearly empty"
    );
    engine.close().expect("close");
}
