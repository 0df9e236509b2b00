//! A read-only handle beside a writer (`ReadOnly::refresh`): it sees what the writer made
//! durable and published, no more, through segment rolls, new streams, forks and deletions;
//! its views match a model at random versions.

use std::collections::BTreeMap;
use std::path::Path;

use helios::{Durability, Engine, Options, ReadOnly, Version};
use helios_testkit::Rng;

use crate::support::{del, model_states, set};

fn options() -> Options {
    let mut options = Options::default();
    options.log.segment_size_bytes = 16 * 1024; // Rolls every few dozen events.
    options.background_threads = false; // Syncs happen when the test says.
    options
}

fn writer(dir: &Path) -> Engine {
    Engine::open(dir, options()).expect("open the writer")
}

fn reader_of(dir: &Path) -> ReadOnly {
    ReadOnly::open(dir, options()).expect("open read-only")
}

/// The reader's state of `stream` at `version` against the model's.
fn check_view(reader: &ReadOnly, stream: &str, version: u64, events: &[Vec<u8>]) {
    let states = model_states(events);
    let view = reader.view(stream, Version(version)).expect("view");
    let got: BTreeMap<Vec<u8>, Vec<u8>> =
        view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert_eq!(
        &got,
        &states[usize::try_from(version).expect("small")],
        "{stream} at {version}"
    );
}

#[test]
fn a_refreshed_reader_sees_what_the_writer_made_durable_and_nothing_more() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    let first: Vec<Vec<u8>> = (0..20)
        .map(|i| set(&format!("k{}", i % 6), &i.to_string()))
        .collect();
    writer
        .append("a", &first, Durability::Critical, None)
        .expect("append");
    let reader = reader_of(dir.path());
    assert_eq!(reader.head("a"), Some(Version(20)));

    // Normal appends, written out but not synced: not published, not seen.
    let more: Vec<Vec<u8>> = (20..140)
        .map(|i| set(&format!("k{}", i % 6), &format!("{i}-{}", "v".repeat(200))))
        .collect();
    writer
        .append("a", &more, Durability::Normal, None)
        .expect("append");
    let _ = writer
        .events_from(helios::Lsn(1))
        .expect("write out")
        .count();
    let refreshed = reader.refresh().expect("refresh");
    assert_eq!(
        refreshed.from, refreshed.to,
        "nothing durable was published"
    );
    assert_eq!(reader.head("a"), Some(Version(20)));

    // Synced: published, seen, across the segment rolls 120 large events cause.
    writer.sync().expect("sync");
    let refreshed = reader.refresh().expect("refresh");
    assert_eq!(refreshed.events, 120);
    assert_eq!(reader.head("a"), Some(Version(140)));
    assert!(
        writer.inspect().segments().expect("segments").len() > 1,
        "the log rolled"
    );
    let all: Vec<Vec<u8>> = first.iter().chain(&more).cloned().collect();
    for version in [0, 1, 19, 20, 21, 45, 99, 140] {
        check_view(&reader, "a", version, &all);
    }

    // A new stream, a fork and a deletion.
    writer
        .append("b", &[set("x", "1"), del("x")], Durability::Critical, None)
        .expect("append");
    writer.fork_stream("a", Version(30), "c").expect("fork");
    writer
        .append("c", &[set("k0", "fork")], Durability::Critical, None)
        .expect("append");
    writer.delete_stream("b").expect("delete");
    reader.refresh().expect("refresh");
    assert_eq!(reader.head("b"), None, "deleted");
    assert_eq!(reader.head("c"), Some(Version(31)));
    let forked: Vec<Vec<u8>> = all[..30]
        .iter()
        .cloned()
        .chain([set("k0", "fork")])
        .collect();
    check_view(&reader, "c", 31, &forked);
    check_view(&reader, "c", 12, &forked);
    let payloads: Vec<Vec<u8>> = reader
        .read("c", Version(29)..)
        .expect("read")
        .map(|e| e.expect("event").payload)
        .collect();
    assert_eq!(payloads, forked[28..]);
}

/// Random appends to random streams with both classes, syncs and refreshes in between: after
/// each refresh the reader has exactly the writer's durable heads, and its views and reads at
/// random versions match the model.
#[test]
fn a_reader_follows_random_appends_and_matches_the_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    writer
        .append("s0", &[set("k", "0")], Durability::Critical, None)
        .expect("append");
    let mut model: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    model.insert("s0".into(), vec![set("k", "0")]);
    follow_random_appends(&writer, dir.path(), model, &mut Rng::new(17));
}

/// As above, on a store a clean close left with an index of its active segment and a catalog
/// snapshot inside that segment: the reader starts from both, and follows the writer as it
/// seals that segment and indexes it whole.
#[test]
fn a_reader_follows_appends_past_the_index_a_close_left_on_the_active_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(29);
    let writer = writer(dir.path());
    let mut model: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut durable = model.clone();
    for round in 0..4 {
        random_round(&writer, &mut model, &mut durable, round, &mut rng);
    }
    writer.close().expect("close");
    let writer = self::writer(dir.path());
    assert_eq!(
        writer.inspect().open_report().reindexed,
        0,
        "the close indexed the active segment"
    );
    follow_random_appends(&writer, dir.path(), model, &mut rng);
}

/// One round of random appends to four streams, critical or normal, sometimes synced:
/// `durable` follows what a reader may see.
fn random_round(
    writer: &Engine,
    model: &mut BTreeMap<String, Vec<Vec<u8>>>,
    durable: &mut BTreeMap<String, Vec<Vec<u8>>>,
    round: usize,
    rng: &mut Rng,
) {
    for _ in 0..1 + rng.next_u64() % 8 {
        let stream = format!("s{}", rng.next_u64() % 4);
        let events: Vec<Vec<u8>> = (0..1 + rng.next_u64() % 5)
            .map(|_| {
                let key = format!("k{}", rng.next_u64() % 5);
                if rng.next_u64().is_multiple_of(6) {
                    del(&key)
                } else {
                    set(
                        &key,
                        &format!("{round}-{}", "x".repeat((rng.next_u64() % 300) as usize)),
                    )
                }
            })
            .collect();
        let class = if rng.next_u64().is_multiple_of(2) {
            Durability::Critical
        } else {
            Durability::Normal
        };
        writer
            .append(&stream, &events, class, None)
            .expect("append");
        model.entry(stream).or_default().extend(events);
        if class == Durability::Critical {
            // A critical sync makes everything before it durable too.
            *durable = model.clone();
        }
    }
    if rng.next_u64().is_multiple_of(3) {
        writer.sync().expect("sync");
        *durable = model.clone();
    }
}

/// Opens a reader of `dir` (whose writer is `writer` and whose durable streams are `model`),
/// then 40 rounds of random appends, each followed by a refresh and a check of every stream's
/// head and a view at a random version.
fn follow_random_appends(
    writer: &Engine,
    dir: &Path,
    mut model: BTreeMap<String, Vec<Vec<u8>>>,
    rng: &mut Rng,
) {
    let reader = reader_of(dir);
    let mut durable = model.clone();
    for round in 0..40 {
        random_round(writer, &mut model, &mut durable, round, rng);
        reader.refresh().expect("refresh");
        for (stream, events) in &durable {
            assert_eq!(
                reader.head(stream),
                Some(Version(events.len() as u64)),
                "{stream} after round {round}"
            );
            let version = rng.next_u64() % (events.len() as u64 + 1);
            check_view(&reader, stream, version, events);
        }
    }
}

/// The checkpoints the writer builds after the reader opened are adopted by a refresh: views
/// of the new versions replay at most `fanout - 1` events, as the writer's do.
#[test]
fn a_refresh_adopts_the_checkpoints_the_writer_built_since() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    let events: Vec<Vec<u8>> = (0..600)
        .map(|i| set(&format!("k{}", i % 40), &i.to_string()))
        .collect();
    writer
        .append("a", &events[..5], Durability::Critical, None)
        .expect("append");
    let reader = reader_of(dir.path());
    for chunk in events[5..].chunks(50) {
        writer
            .append("a", chunk, Durability::Critical, None)
            .expect("append");
    }
    writer.checkpoints().sync().expect("build checkpoints");
    reader.refresh().expect("refresh");
    let fanout = reader.checkpoints().policy().first_interval();
    for version in [599, 600, 455, 101] {
        check_view(&reader, "a", version, &events);
        let view = reader.view("a", Version(version)).expect("view");
        assert!(
            view.report().events_replayed < fanout,
            "{} events replayed at {version}",
            view.report().events_replayed
        );
    }
}

/// A refresh validates the new checkpoints of the streams the reader reads (not the first
/// view of each): one damaged after the writer published it is found by the refresh, forgotten,
/// and read around; those of a stream the reader never read wait for a view.
#[test]
fn a_refresh_validates_the_new_checkpoints_of_the_streams_the_reader_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    let events: Vec<Vec<u8>> = (0..60).map(|i| set("k", &i.to_string())).collect();
    for stream in ["read", "unread"] {
        writer
            .append(stream, &events[..30], Durability::Critical, None)
            .expect("append");
    }
    writer.checkpoints().sync().expect("build checkpoints");
    let reader = reader_of(dir.path());
    check_view(&reader, "read", 30, &events);
    for stream in ["read", "unread"] {
        writer
            .append(stream, &events[30..], Durability::Critical, None)
            .expect("append");
    }
    writer.checkpoints().sync().expect("build checkpoints");
    // Damage the checkpoint at 50 of both streams, after the writer published them.
    for stream in ["read", "unread"] {
        let at_50 = writer
            .checkpoints()
            .of_stream(stream)
            .expect("checkpoints")
            .into_iter()
            .find(|c| c.version == Version(50))
            .expect("a checkpoint at 50");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&at_50.pack)
            .expect("the pack");
        std::os::unix::fs::FileExt::write_all_at(
            &file,
            b"damage",
            at_50.offset + at_50.len_bytes - 8,
        )
        .expect("damage");
    }
    reader.refresh().expect("refresh");
    assert_eq!(
        reader.checkpoints().stats().damaged,
        1,
        "found by the refresh"
    );
    check_view(&reader, "read", 55, &events);
    check_view(&reader, "unread", 55, &events);
    assert_eq!(reader.checkpoints().stats().damaged, 2, "found by the view");
}

/// Opened beside a live writer, a reader reads only up to the end the writer published: the
/// records written but not synced yet are left out until a refresh after their sync. With no
/// writer, it reads everything the log holds.
#[test]
fn a_reader_opened_beside_a_writer_reads_only_its_published_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    let events: Vec<Vec<u8>> = (0..15).map(|i| set("k", &i.to_string())).collect();
    writer
        .append("a", &events[..10], Durability::Critical, None)
        .expect("append");
    writer
        .append("a", &events[10..], Durability::Normal, None)
        .expect("append");
    let _ = writer
        .events_from(helios::Lsn(1))
        .expect("write out")
        .count();
    let reader = reader_of(dir.path());
    assert_eq!(
        reader.head("a"),
        Some(Version(10)),
        "unsynced records left out"
    );
    let read: Vec<Version> = reader
        .events_from(helios::Lsn(1))
        .expect("events")
        .map(|e| e.expect("event").version)
        .collect();
    assert_eq!(
        read.len(),
        10,
        "the log ends at the published end: {read:?}"
    );
    writer.sync().expect("sync");
    reader.refresh().expect("refresh");
    assert_eq!(reader.head("a"), Some(Version(15)));
    check_view(&reader, "a", 15, &events);
    drop(writer);
    assert_eq!(reader_of(dir.path()).head("a"), Some(Version(15)));
}

/// With `refresh_every`, reads follow the writer by themselves; without it, a handle shows
/// what it read until it is refreshed.
#[test]
fn a_reader_refreshes_by_itself_when_asked_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    writer
        .append("a", &[set("k", "1")], Durability::Critical, None)
        .expect("append");
    let manual = reader_of(dir.path());
    let auto = reader_of(dir.path());
    auto.refresh_every(Some(std::time::Duration::ZERO));
    writer
        .append("a", &[set("k", "2")], Durability::Critical, None)
        .expect("append");
    writer
        .append("b", &[set("x", "1")], Durability::Critical, None)
        .expect("append");
    assert_eq!(manual.head("a"), Some(Version(1)));
    assert_eq!(manual.head("b"), None);
    assert_eq!(auto.head("a"), Some(Version(2)));
    assert_eq!(auto.stream("b").map(|s| s.head), Some(Version(1)));
    writer
        .append("a", &[set("k", "3")], Durability::Critical, None)
        .expect("append");
    let view = auto
        .view("a", Version(3))
        .expect("a version the writer just made durable");
    assert_eq!(view.get(b"k"), Some(&b"3"[..]));
    auto.refresh_every(None);
    writer
        .append("a", &[set("k", "4")], Durability::Critical, None)
        .expect("append");
    assert_eq!(auto.head("a"), Some(Version(3)), "no longer by itself");
}

/// A reader opened at any point of a writer's history starts from the catalog snapshot the
/// writer keeps (once a segment is sealed and indexed), reads only the log after it, and reads
/// what a reader of the whole log reads: heads, forks, deletions and states at random versions.
/// A damaged snapshot is read around.
#[test]
fn a_reader_starts_from_the_catalog_snapshot_and_reads_what_the_log_says() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = writer(dir.path());
    let mut rng = Rng::new(23);
    let mut model: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let mut used_snapshot = 0;
    for round in 0..30u64 {
        for _ in 0..20 {
            let stream = format!("s{}", rng.next_u64() % 6);
            let events: Vec<Vec<u8>> = (0..1 + rng.next_u64() % 4)
                .map(|k| set(&format!("k{}", rng.next_u64() % 7), &format!("{round}-{k}")))
                .collect();
            writer
                .append(&stream, &events, Durability::Normal, None)
                .expect("append");
            model.entry(stream).or_default().extend(events);
        }
        if round % 7 == 3 {
            // A deletion, and a fork of another stream, land between snapshots.
            let gone = format!("s{}", rng.next_u64() % 6);
            if model.remove(&gone).is_some() {
                writer.delete_stream(&gone).expect("delete");
            }
            if let Some((source, events)) = model.iter().next().map(|(s, e)| (s.clone(), e.clone()))
            {
                let name = format!("fork{round}");
                let at = events.len() as u64 / 2;
                writer
                    .fork_stream(&source, Version(at), &name)
                    .expect("fork");
                model.insert(name, events[..at as usize].to_vec());
            }
        }
        writer.sync().expect("sync");
        let reader = reader_of(dir.path());
        let report = reader.inspect().open_report().clone();
        if let Some(covered) = report.catalog_snapshot {
            used_snapshot += 1;
            assert!(
                report.log.records_scanned < writer.inspect().last_lsn().0 - covered.0 + 1 + 1,
                "read only after the snapshot: {report:?}"
            );
        }
        let mut names: Vec<String> = reader.streams().map(|s| s.name).collect();
        names.sort();
        let mut want: Vec<String> = model.keys().cloned().collect();
        want.sort();
        assert_eq!(names, want, "round {round}");
        for (stream, events) in &model {
            assert_eq!(
                reader.head(stream),
                Some(Version(events.len() as u64)),
                "{stream}"
            );
            let version = rng.next_u64() % (events.len() as u64 + 1);
            check_view(&reader, stream, version, events);
        }
    }
    assert!(
        used_snapshot >= 20,
        "the snapshot was used {used_snapshot} times of 30"
    );

    // A damaged snapshot is not used: the reader reads the whole log, and the same states.
    let path = dir.path().join("CATALOG");
    let mut bytes = std::fs::read(&path).expect("the writer keeps a snapshot");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).expect("damage it");
    let reader = reader_of(dir.path());
    assert_eq!(reader.inspect().open_report().catalog_snapshot, None);
    for (stream, events) in &model {
        assert_eq!(
            reader.head(stream),
            Some(Version(events.len() as u64)),
            "{stream}"
        );
        check_view(&reader, stream, events.len() as u64, events);
    }
}
