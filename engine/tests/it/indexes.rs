//! Segment and pack indexes: a sealed segment gets `<segment>.idx` and a full pack
//! `<seq>.pidx` (the active pack too, at a clean close, up to its end), which opens read
//! instead of scanning; a damaged or missing index is read around (and written again by a
//! writer), with the same events, catalog and states, and `verify` names a damaged one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use helios::{Durability, Engine, LevelPolicy, Options, ReadOnly, Version};

use crate::support::{at, model_states, payloads, set};

fn options() -> Options {
    let mut options = Options::default();
    options.checkpoints.policy = Some(LevelPolicy::new(4, 2).expect("policy"));
    options.checkpoints.pack_bytes = helios::MIN_CHECKPOINT_PACK_BYTES;
    options.background_threads = false;
    options
}

/// [`options`] with the smallest segments, so that a few hundred events seal many of them.
fn small_segments() -> Options {
    let mut options = options();
    options.log.segment_size_bytes = helios_log::MIN_SEGMENT_SIZE_BYTES;
    options
}

fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join("checkpoints"))
        .expect("checkpoints dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort();
    found
}

/// A stream's state.
type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Every stream's state at a few versions, from `read`, against the model.
fn check(model: &BTreeMap<String, Vec<Vec<u8>>>, read: &dyn Fn(&str, u64) -> State) {
    for (name, events) in model {
        let states = model_states(events);
        for v in (0..=events.len() as u64).step_by(5) {
            assert_eq!(&read(name, v), at(&states, v), "{name} at {v}");
        }
    }
}

#[test]
fn full_packs_are_indexed_and_opens_read_the_indexes_or_around_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), options()).expect("open");
    let mut model: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for round in 0..40 {
        for s in 0..8 {
            let name = format!("s{s}");
            // Values of a few hundred bytes, so that checkpoints fill 64 KiB packs quickly.
            let events: Vec<Vec<u8>> = (0..6)
                .map(|k| set(&format!("k{}", (round * 6 + k) % 40), &"v".repeat(200 + k)))
                .collect();
            engine
                .append(&name, &events, Durability::Normal, None)
                .expect("append");
            model.entry(name).or_default().extend(events);
        }
    }
    let built = engine.checkpoints().sync().expect("sync");
    assert!(built.packs >= 4, "{built:?}");
    drop(engine);
    let packs = files(dir.path(), "pack");
    let indexes = files(dir.path(), "pidx");
    assert_eq!(
        indexes.len(),
        packs.len(),
        "every pack, the active one up to its end at the close: {indexes:?}"
    );

    // The writer reads `indexed` packs from their indexes (and indexes the others), then a
    // reader reads them all from their indexes.
    let reopen = |what: &str, indexed: u64, (found, dropped): (u64, u64), rebuilt: u64| {
        let engine = Engine::open(dir.path(), options()).expect("reopen");
        let report = engine.inspect().open_report().checkpoints.clone();
        assert_eq!(
            (
                report.found,
                report.dropped,
                report.gaps,
                report.damage.len()
            ),
            (found, dropped, 0, 0),
            "{what}: {report:?}"
        );
        assert_eq!(
            (report.packs, report.indexed_packs),
            (packs.len() as u64, indexed),
            "{what}: {report:?}"
        );
        check(&model, &|name, v| {
            engine.state_at(name, Version(v)).expect("state")
        });
        let synced = engine.checkpoints().sync().expect("sync");
        assert_eq!(synced.rebuilt, rebuilt, "{what}: {synced:?}");
        drop(engine);
        let reader = ReadOnly::open(dir.path(), options()).expect("a reader");
        let report = reader.inspect().open_report().checkpoints.clone();
        assert_eq!(
            report.indexed_packs,
            packs.len() as u64,
            "{what}: {report:?}"
        );
        assert_eq!(reader.checkpoints().stats().count, built.count, "{what}");
        check(&model, &|name, v| {
            reader.state_at(name, Version(v)).expect("state")
        });
    };
    let count = built.count;
    reopen("with every index", indexes.len() as u64, (count, 0), 0);

    // A missing index: its pack is scanned instead, and indexed again.
    std::fs::remove_file(&indexes[1]).expect("remove");
    reopen(
        "with a missing index",
        indexes.len() as u64 - 1,
        (count, 0),
        0,
    );
    assert!(indexes[1].exists(), "written again");

    // An index whose entries are damaged (the first one's length made to reach past the
    // index's end): an open reads its header only, and its entries are hints, so the
    // checkpoint it hides is found missing where its stream is taken in (a gap, rebuilt by
    // the writer, into another pack) and read around meanwhile. Only `verify` names the index.
    let mut bytes = std::fs::read(&indexes[0]).expect("read");
    bytes[64 + 36] ^= 0x40;
    std::fs::write(&indexes[0], &bytes).expect("damage");
    let named = |path: &Path| {
        let report = helios::verify(dir.path()).expect("verify");
        report.findings.iter().any(|f| f.path == path)
    };
    assert!(named(&indexes[0]), "verify names the damaged index");
    reopen("with a damaged index", indexes.len() as u64, (count, 0), 1);
    assert!(named(&indexes[0]), "an index is never rewritten in place");

    // An index of another pack's number, copied over, is not that pack's: the pack is scanned,
    // and of the hidden checkpoint's two copies the rebuilt one wins.
    std::fs::copy(&indexes[2], &indexes[0]).expect("copy");
    reopen(
        "with a copied index",
        indexes.len() as u64 - 1,
        (count + 1, 1),
        0,
    );
}

/// Appends `rounds` rounds of events to 8 streams, recording them in `model`.
fn append_rounds(engine: &Engine, model: &mut BTreeMap<String, Vec<Vec<u8>>>, rounds: usize) {
    for round in 0..rounds {
        for s in 0..8 {
            let name = format!("s{s}");
            let events: Vec<Vec<u8>> = (0..5)
                .map(|k| {
                    set(
                        &format!("k{}", (round * 5 + k) % 12),
                        &format!("{round}-{k}"),
                    )
                })
                .collect();
            engine
                .append(&name, &events, Durability::Normal, None)
                .expect("append");
            model.entry(name).or_default().extend(events);
        }
    }
}

#[test]
fn the_active_packs_index_covers_it_up_to_the_close_and_what_follows_is_scanned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let engine = Engine::open(dir.path(), options()).expect("open");
    append_rounds(&engine, &mut model, 4);
    engine.checkpoints().sync().expect("sync");
    engine.close().expect("close");
    let (packs, indexes) = (files(dir.path(), "pack"), files(dir.path(), "pidx"));
    assert_eq!(
        (packs.len(), indexes.len()),
        (1, 1),
        "the one pack is indexed"
    );

    // A writer appends checkpoints after the index's end, and stops without its close: a copy
    // of the store taken while it runs is what a crash leaves.
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    assert_eq!(
        engine.inspect().open_report().checkpoints.indexed_packs,
        1,
        "the active pack is read from its index"
    );
    append_rounds(&engine, &mut model, 4);
    let built = engine.checkpoints().sync().expect("sync");
    assert_eq!(built.packs, 1, "the checkpoints went after the index's end");
    let crashed = tempfile::tempdir().expect("tempdir");
    crate::support::copy_dir(dir.path(), crashed.path());
    engine.close().expect("close");

    for (what, store) in [("crashed", crashed.path()), ("closed", dir.path())] {
        let engine = Engine::open(store, options()).expect("open");
        let report = engine.inspect().open_report().checkpoints.clone();
        assert_eq!(
            (
                report.found,
                report.gaps,
                report.indexed_packs,
                report.damage.len()
            ),
            (built.count, 0, 1, 0),
            "{what}: every checkpoint found, those past the index's end by the scan: {report:?}"
        );
        check(&model, &|name, v| {
            engine.state_at(name, Version(v)).expect("state")
        });
        drop(engine);
        // The writer's close indexed the pack up to its end, appends or not: 48 bytes an entry
        // after a 64-byte header, and a bitmap of the 8 streams (one byte).
        let index = std::fs::metadata(&files(store, "pidx")[0])
            .expect("index")
            .len();
        assert_eq!(index, 64 + 48 * built.count + 1, "{what}");
        let reader = ReadOnly::open(store, options()).expect("a reader");
        assert_eq!(reader.checkpoints().stats().count, built.count, "{what}");
        check(&model, &|name, v| {
            reader.state_at(name, Version(v)).expect("state")
        });
    }
}

#[test]
fn a_damaged_segment_index_is_named_by_verify_and_rebuilt_by_a_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_segments();
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    let events: Vec<Vec<u8>> = (0..300)
        .map(|i| set(&format!("k{}", i % 9), &format!("{i}")))
        .collect();
    for chunk in events.chunks(3) {
        engine
            .append("s", chunk, Durability::Normal, None)
            .expect("append");
    }
    engine.sync().expect("sync");
    drop(engine);
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(dir.path().join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    indexes.sort();
    assert!(indexes.len() >= 3, "{indexes:?}");
    let report = helios::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{report:?}");
    // The close indexed the active segment too, up to its last record.
    assert_eq!(
        (report.index_entries, report.unindexed_events),
        (300, 0),
        "{report:?}"
    );

    // A flipped byte in the middle of one index's tables.
    let victim = &indexes[1];
    let mut bytes = std::fs::read(victim).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(victim, &bytes).expect("damage");
    let report = helios::verify(dir.path()).expect("verify");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].path, *victim, "{report:?}");

    // A reader reads around it (builds that index in memory) and writes nothing.
    let reader = ReadOnly::open(dir.path(), options.clone()).expect("a reader");
    let states = model_states(&events);
    for v in [1, 100, 150, 299, 300] {
        assert_eq!(
            &reader.state_at("s", Version(v)).expect("state"),
            at(&states, v)
        );
    }
    drop(reader);
    assert_eq!(
        std::fs::read(victim).expect("read"),
        bytes,
        "the reader wrote nothing"
    );

    // A writer's open writes it again; every event reads back.
    let engine = Engine::open(dir.path(), options).expect("reopen");
    assert_eq!(payloads(&engine, "s"), events);
    drop(engine);
    let report = helios::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{report:?}");
}

/// A writer's open reads none of the indexed segments: after a clean close it starts from the
/// catalog snapshot and reads only the events of the segments without an index (here the
/// active one), however long the history.
#[test]
fn a_writer_open_reads_only_the_segments_without_an_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_segments();
    let mut appended = 0u64;
    for round in 0..3 {
        let engine = Engine::open(dir.path(), options.clone()).expect("open");
        let report = engine.inspect().open_report().clone();
        let segments = engine.inspect().segments().expect("segments");
        // Events in the active segment: those past the last sealed one's end.
        let sealed_events = engine
            .read("s", ..)
            .map(|events| {
                events
                    .filter(|e| {
                        e.as_ref()
                            .is_ok_and(|e| e.lsn.0 < segments.last().expect("active").id.0)
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        assert!(
            report.reindexed <= appended - sealed_events,
            "round {round}: read {} of {appended} events, {sealed_events} in sealed segments",
            report.reindexed
        );
        assert_eq!(
            report.catalog_snapshot.is_some(),
            segments.len() > 1,
            "round {round}: a snapshot once a segment is sealed"
        );
        for i in 0..400 {
            engine
                .append(
                    "s",
                    &[set(&format!("k{}", i % 7), &format!("{round}-{i}"))],
                    Durability::Normal,
                    None,
                )
                .expect("append");
        }
        appended += 400;
        engine.close().expect("close");
    }
    let engine = Engine::open(dir.path(), options).expect("open");
    let segments = engine.inspect().segments().expect("segments").len();
    assert!(segments > 10, "{segments} segments");
    let report = engine.inspect().open_report();
    assert!(report.catalog_snapshot.is_some());
    assert!(report.reindexed < appended / 4, "{}", report.reindexed);
}

/// The segment indexes are written before the catalog snapshot that covers them: after a crash
/// between the two, the snapshot lies behind segments that already have an index. An open then
/// starts from the older snapshot, uses those indexes and still finds every event (here: the
/// snapshot of an earlier close put back under later indexes).
#[test]
fn indexes_past_the_catalog_snapshot_are_used_and_every_event_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_segments();
    let mut events = Vec::new();
    let mut append = |engine: &Engine, count: usize| {
        for i in 0..count {
            let event = set(&format!("k{}", i % 11), &format!("{}", events.len()));
            engine
                .append("s", std::slice::from_ref(&event), Durability::Normal, None)
                .expect("append");
            events.push(event);
        }
    };
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    append(&engine, 200);
    engine.close().expect("close");
    let early = std::fs::read(dir.path().join("CATALOG")).expect("a snapshot after 200 events");
    let engine = Engine::open(dir.path(), options.clone()).expect("reopen");
    append(&engine, 600);
    engine.close().expect("close");
    std::fs::write(dir.path().join("CATALOG"), &early).expect("put back");

    let engine = Engine::open(dir.path(), options).expect("open with the early snapshot");
    let report = engine.inspect().open_report().clone();
    assert!(report.catalog_snapshot.is_some(), "{report:?}");
    assert!(
        report.reindexed >= 600,
        "the open read the log past the early snapshot: {report:?}"
    );
    assert_eq!(payloads(&engine, "s"), events);
    let states = model_states(&events);
    for v in [1, 150, 201, 555, 800] {
        assert_eq!(
            &engine.state_at("s", Version(v)).expect("state"),
            at(&states, v)
        );
    }
}

/// Appends `events` to stream `s` in critical batches of 3, recording them in `model`.
fn append_critical(engine: &Engine, model: &mut Vec<Vec<u8>>, events: std::ops::Range<usize>) {
    let batch: Vec<Vec<u8>> = events
        .map(|i| set(&format!("k{}", i % 9), &format!("value-{i}")))
        .collect();
    for chunk in batch.chunks(3) {
        engine
            .append("s", chunk, Durability::Critical, None)
            .expect("append");
    }
    model.extend(batch);
}

fn segment_count(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("log"))
        .expect("log dir")
        .filter(|e| {
            e.as_ref()
                .expect("entry")
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

#[test]
fn a_clean_close_indexes_the_active_segment_and_the_next_open_reads_no_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_segments();
    let mut model = Vec::new();
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    append_critical(&engine, &mut model, 0..150);
    engine.close().expect("close");
    let states = |model: &[Vec<u8>]| BTreeMap::from([("s".to_owned(), model.to_vec())]);

    // Neither a writer nor a reader reads a record: the close's snapshot is at the last one,
    // and the active segment's index locates its events.
    let engine = Engine::open(dir.path(), options.clone()).expect("reopen");
    let report = engine.inspect().open_report().clone();
    assert_eq!(
        (report.reindexed, report.log.records_scanned),
        (0, 0),
        "{report:?}"
    );
    assert_eq!(
        report.catalog_snapshot,
        Some(helios::Lsn(151)),
        "{report:?}"
    );
    check(&states(&model), &|name, v| {
        engine.state_at(name, Version(v)).expect("state")
    });
    let reader = ReadOnly::open(dir.path(), options.clone()).expect("a reader");
    let report = reader.inspect().open_report().clone();
    assert_eq!(
        (report.reindexed, report.log.records_scanned),
        (0, 0),
        "{report:?}"
    );
    check(&states(&model), &|name, v| {
        reader.state_at(name, Version(v)).expect("state")
    });
    drop(reader);

    // Appends past that index roll its segment; a copy taken before any index of the sealed
    // segment is written is what a crash leaves: a prefix index of a sealed segment, and a
    // snapshot inside it.
    let segments = segment_count(dir.path());
    append_critical(&engine, &mut model, 150..400);
    assert!(
        segment_count(dir.path()) > segments,
        "the indexed segment was sealed"
    );
    let crashed = tempfile::tempdir().expect("tempdir");
    crate::support::copy_dir(dir.path(), crashed.path());
    engine.close().expect("close");

    for (what, store) in [("crashed", crashed.path()), ("closed", dir.path())] {
        let report = helios::verify(store).expect("verify");
        assert!(report.is_sound(), "{what}: {report:?}");
        let reader = ReadOnly::open(store, options.clone()).expect("a reader");
        check(&states(&model), &|name, v| {
            reader.state_at(name, Version(v)).expect("state")
        });
        drop(reader);
        let engine = Engine::open(store, options.clone()).expect("a writer");
        let report = engine.inspect().open_report().clone();
        if what == "crashed" {
            // The events after the snapshot were read, those before located by the index.
            assert_eq!(report.reindexed, 250, "{what}: {report:?}");
        } else {
            assert_eq!(report.reindexed, 0, "{what}: {report:?}");
        }
        check(&states(&model), &|name, v| {
            engine.state_at(name, Version(v)).expect("state")
        });
        drop(engine);
        let report = helios::verify(store).expect("verify");
        assert!(report.is_sound(), "{what}, after a writer: {report:?}");
        assert_eq!(report.unindexed_events, 0, "{what}: {report:?}");
    }
}

/// A close whose records past the catalog snapshot are fewer bytes than the snapshot leaves
/// both as they are (the next open reads those records: cheaper than writing every stream
/// again); past that, it indexes the active segment and takes the snapshot at its end.
#[test]
fn a_close_takes_a_new_snapshot_only_when_the_records_after_the_old_one_outweigh_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options();
    let catalog = dir.path().join("CATALOG");
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    // Many streams: a snapshot bigger than one small append.
    for s in 0..200 {
        engine
            .append(
                &format!("stream-{s:04}"),
                &[set("k", "v")],
                Durability::Normal,
                None,
            )
            .expect("append");
    }
    engine.close().expect("close");
    let taken = std::fs::read(&catalog).expect("a snapshot");
    let reopen = || Engine::open(dir.path(), options.clone()).expect("reopen");
    assert_eq!(reopen().inspect().open_report().reindexed, 0);

    let engine = reopen();
    engine
        .append("stream-0007", &[set("k", "w")], Durability::Critical, None)
        .expect("append");
    engine.close().expect("close");
    assert_eq!(
        std::fs::read(&catalog).expect("a snapshot"),
        taken,
        "left as it was"
    );
    let engine = reopen();
    assert_eq!(
        engine.inspect().open_report().reindexed,
        1,
        "the one event is read"
    );
    let state = engine.state_at("stream-0007", Version(2)).expect("state");
    assert_eq!(state.get(&b"k"[..]).map(Vec::as_slice), Some(&b"w"[..]));

    // Enough records to outweigh the snapshot: the close takes a new one.
    let events: Vec<Vec<u8>> = (0..100).map(|i| set("k", &"x".repeat(100 + i))).collect();
    engine
        .append("stream-0007", &events, Durability::Normal, None)
        .expect("append");
    engine.close().expect("close");
    assert_ne!(
        std::fs::read(&catalog).expect("a snapshot"),
        taken,
        "taken again"
    );
    assert_eq!(reopen().inspect().open_report().reindexed, 0);
}

/// A close that appended fewer checkpoint bytes past the active pack's index than the index
/// weighs leaves the index as it is: the next open scans those few checkpoints.
#[test]
fn a_close_reindexes_the_active_pack_only_when_what_follows_the_index_outweighs_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let engine = Engine::open(dir.path(), options()).expect("open");
    append_rounds(&engine, &mut model, 6);
    let built = engine.checkpoints().sync().expect("sync");
    engine.close().expect("close");
    let index = files(dir.path(), "pidx");
    assert_eq!(index.len(), 1);
    let before = std::fs::read(&index[0]).expect("the index");

    // One more checkpoint: 4 events of stream s0 (the policy checkpoints every 4).
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    let events: Vec<Vec<u8>> = (0..4).map(|k| set("k0", &format!("more-{k}"))).collect();
    engine
        .append("s0", &events, Durability::Normal, None)
        .expect("append");
    model.entry("s0".into()).or_default().extend(events);
    let count = engine.checkpoints().sync().expect("sync").count;
    assert!(count > built.count, "a checkpoint was built");
    engine.close().expect("close");
    assert_eq!(
        std::fs::read(&index[0]).expect("the index"),
        before,
        "left as it was"
    );
    let engine = Engine::open(dir.path(), options()).expect("reopen");
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(
        (report.found, report.indexed_packs),
        (count, 1),
        "{report:?}"
    );
    check(&model, &|name, v| {
        engine.state_at(name, Version(v)).expect("state")
    });
}

/// `CATALOG` is checked in 512-byte blocks, each where it is first read, not whole at open. A
/// damaged block makes what it holds unreadable, never absent: reads of its streams are
/// errors naming `CATALOG` and the block's offset (a reader's and a writer's), an append does
/// not take the stream for a new one, `verify` names the block, and a writer's close removes
/// the snapshot instead of writing one from it, so that the next open reads the log: every
/// stream and event is there.
#[test]
fn a_damaged_block_of_the_catalog_snapshot_is_an_error_where_it_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options();
    let catalog = dir.path().join("CATALOG");
    let name = |s: usize| format!("stream-{s:04}");
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    for s in 0..200 {
        let events = [set("k", &format!("{s}-a")), set("j", &format!("{s}-b"))];
        engine
            .append(&name(s), &events, Durability::Normal, None)
            .expect("append");
    }
    engine.close().expect("close");
    // Stream 100 is id 101: its record lies at 128 + 48 * 100 = 4928, in the block at 4736
    // (128 + 9 * 512), which holds the records of ids 97 to 107.
    let mut bytes = std::fs::read(&catalog).expect("a snapshot");
    bytes[4928 + 32] ^= 0x01; // Its head.
    std::fs::write(&catalog, &bytes).expect("damage");
    let named = |e: &helios::Error| {
        let text = e.to_string();
        assert!(text.contains("CATALOG") && text.contains("4736"), "{text}");
    };
    let found = helios::verify(dir.path()).expect("verify");
    assert!(
        found
            .findings
            .iter()
            .any(|f| f.path == catalog && f.reason.contains("4736")),
        "{:?}",
        found.findings
    );

    let reader = ReadOnly::open(dir.path(), options.clone()).expect("a reader");
    named(
        &reader
            .state_at(&name(100), Version(2))
            .expect_err("damaged"),
    );
    assert_eq!(reader.head(&name(0)), Some(Version(2)), "another block");
    drop(reader);

    let engine = Engine::open(dir.path(), options.clone()).expect("the header holds");
    assert_eq!(engine.head(&name(199)), Some(Version(2)));
    named(
        &engine
            .state_at(&name(100), Version(2))
            .expect_err("damaged"),
    );
    named(
        &engine
            .append(&name(100), &[set("k", "x")], Durability::Critical, None)
            .expect_err("not a new stream"),
    );
    named(
        &engine
            .create_stream(&name(101))
            .expect_err("not a new stream"),
    );
    engine
        .append(&name(3), &[set("k", "y")], Durability::Critical, None)
        .expect("another block's stream");
    engine.close().expect("close");
    assert!(!catalog.exists(), "removed, not written from a damaged one");

    let engine = Engine::open(dir.path(), options).expect("reopen");
    assert_eq!(engine.inspect().open_report().catalog_snapshot, None);
    for s in 0..200 {
        let head = if s == 3 { 3 } else { 2 };
        assert_eq!(engine.head(&name(s)), Some(Version(head)), "{}", name(s));
    }
    let state = engine.state_at(&name(100), Version(2)).expect("state");
    assert_eq!(state.get(&b"j"[..]).map(Vec::as_slice), Some(&b"100-b"[..]));
    engine
        .append(&name(100), &[set("k", "z")], Durability::Critical, None)
        .expect("append");
    assert_eq!(engine.head(&name(100)), Some(Version(3)));
}
