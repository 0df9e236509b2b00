//! Streams that share history (`Engine::fork_stream`) and streams that are deleted
//! (`Engine::delete_stream`): reads, views, checkpoints, reopen, and crashes at every I/O step.

use std::path::Path;
use std::sync::Arc;

use helios::{
    CrashFault, Durability, Engine, Error, Fork, LevelPolicy, Options, SimStorage, Version,
};

use crate::support::{assert_view_matches, at, model_states, payloads, set};

const FANOUT: u64 = 10;

fn options() -> Options {
    let mut options = Options::default();
    options.log.segment_size_bytes = 16 * 1024;
    options.checkpoints.policy = Some(LevelPolicy::new(FANOUT, 2).expect("policy"));
    options.background_threads = false;
    options
}

fn open(dir: &Path) -> Engine {
    Engine::open(dir, options()).expect("open")
}

/// `count` events over 7 keys, tagged so that two streams' values differ.
fn events(tag: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| set(&format!("k{}", i % 7), &format!("{tag}-{i}")))
        .collect()
}

fn keys() -> Vec<Vec<u8>> {
    (0..7).map(|k| format!("k{k}").into_bytes()).collect()
}

#[test]
fn a_fork_shares_its_source_history_and_then_goes_its_own_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    let source = events("src", 35);
    engine
        .append("src", &source, Durability::Critical, None)
        .expect("append");
    engine
        .checkpoints()
        .sync()
        .expect("checkpoints of the source");
    let id = engine.fork_stream("src", Version(23), "dst").expect("fork");
    let src_id = engine.stream("src").expect("src").id;
    assert_eq!(engine.head("dst"), Some(Version(23)));
    assert_eq!(
        engine.stream("dst").expect("dst").fork,
        Some(Fork {
            source: src_id,
            at: Version(23)
        })
    );
    // The shared versions read as the fork's own events.
    let read: Vec<_> = engine
        .read("dst", ..)
        .expect("read")
        .map(|e| e.expect("event"))
        .collect();
    assert_eq!(read.len(), 23);
    assert!(read.iter().all(|e| e.stream == id));
    assert_eq!(
        read.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(),
        source[..23]
    );

    // The two go their own ways.
    let own = events("dst", 17);
    engine
        .append("dst", &own, Durability::Normal, Some(Version(23)))
        .expect("append to the fork");
    let more = events("src-more", 5);
    engine
        .append("src", &more, Durability::Normal, Some(Version(35)))
        .expect("append to the source");
    let stats = engine.checkpoints().sync().expect("checkpoints");
    let dst: Vec<Vec<u8>> = source[..23].iter().chain(&own).cloned().collect();
    let src: Vec<Vec<u8>> = source.iter().chain(&more).cloned().collect();
    assert_eq!(payloads(&engine, "dst"), dst);
    assert_eq!(payloads(&engine, "src"), src);

    // The fork writes checkpoints only past its fork point; below it, its views read the
    // source's.
    let listed = engine.checkpoints().of_stream("dst").expect("checkpoints");
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|c| c.version > Version(23)), "{listed:?}");
    assert_eq!((stats.damaged, stats.rebuilt), (0, 0));

    let check = |engine: &Engine| {
        let (dst_states, src_states) = (model_states(&dst), model_states(&src));
        for v in 0..=dst.len() as u64 {
            let replayed = assert_view_matches(engine, "dst", v, at(&dst_states, v), &keys());
            assert!(replayed < FANOUT, "dst {v} replayed {replayed}");
        }
        for v in 0..=src.len() as u64 {
            let replayed = assert_view_matches(engine, "src", v, at(&src_states, v), &keys());
            assert!(replayed < FANOUT, "src {v} replayed {replayed}");
        }
    };
    check(&engine);
    drop(engine);
    let engine = open(dir.path());
    check(&engine);
    // A fork of a fork reads through both.
    engine
        .fork_stream("dst", Version(30), "third")
        .expect("fork of a fork");
    let third_states = model_states(&dst[..30]);
    for v in 0..=30 {
        assert_view_matches(&engine, "third", v, at(&third_states, v), &keys());
    }
}

#[test]
fn deleting_a_stream_frees_its_name_and_keeps_its_forks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    let old = events("old", 25);
    engine
        .append("a", &old, Durability::Critical, None)
        .expect("append");
    engine.fork_stream("a", Version(12), "b").expect("fork");
    let branch = engine.branches().fork("a", Version(25)).expect("branch");
    engine.delete_stream("a").expect("delete");

    assert_eq!(engine.head("a"), None);
    assert!(matches!(
        engine.read("a", ..),
        Err(Error::UnknownStream { .. })
    ));
    assert!(matches!(
        engine.view("a", Version(1)),
        Err(Error::UnknownStream { .. })
    ));
    assert!(matches!(
        engine.branches().info(branch),
        Err(Error::UnknownBranch { .. })
    ));
    assert!(matches!(
        engine.delete_stream("a"),
        Err(Error::UnknownStream { .. })
    ));
    let names: Vec<String> = engine.streams().map(|s| s.name).collect();
    assert_eq!(names, ["b"]);
    // The fork keeps the history it shares.
    assert_eq!(payloads(&engine, "b"), old[..12]);

    // The name starts a new stream.
    let appended = engine
        .append(
            "a",
            &[set("fresh", "1")],
            Durability::Critical,
            Some(Version::ZERO),
        )
        .expect("a new stream under the name");
    assert_eq!(appended.first, Version(1));
    engine.checkpoints().sync().expect("checkpoints");

    let check = |engine: &Engine| {
        assert_eq!(engine.head("a"), Some(Version(1)));
        assert_eq!(payloads(engine, "a"), [set("fresh", "1")]);
        let states = model_states(&old[..12]);
        for v in 0..=12 {
            assert_view_matches(engine, "b", v, at(&states, v), &keys());
        }
        let names: Vec<String> = engine.streams().map(|s| s.name).collect();
        assert_eq!(names, ["b", "a"]);
    };
    check(&engine);
    drop(engine);
    // The deletion is in the log: a reopen, and a reopen that reads the whole log, keep it.
    check(&open(dir.path()));
    crate::support::forget_derived(dir.path(), false);
    check(&open(dir.path()));
}

/// What a deleted stream's events cost once no live stream reads them, and how a fork keeps
/// the history it shares alive.
#[test]
fn dead_bytes_are_the_events_no_live_stream_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    let a = events("a", 25);
    let b = events("b", 5);
    let c = events("c", 7);
    engine
        .append("a", &a, Durability::Critical, None)
        .expect("a");
    engine.fork_stream("a", Version(12), "b").expect("fork");
    engine
        .append("b", &b, Durability::Critical, None)
        .expect("b");
    engine
        .append("c", &c, Durability::Critical, None)
        .expect("c");
    let frames = |payloads: &[Vec<u8>]| -> u64 {
        payloads
            .iter()
            .map(|p| (helios_log::format::record::HEADER_LEN + p.len()) as u64)
            .sum()
    };
    let dead = |engine: &Engine| engine.inspect().dead_bytes().expect("dead bytes");
    assert_eq!(dead(&engine), helios::DeadBytes::default());

    // `b` still reads a's versions 1..=12: only 13..=25 are dead.
    engine.delete_stream("a").expect("delete a");
    let expected = helios::DeadBytes {
        deleted_streams: 1,
        events: 13,
        bytes: frames(&a[12..]),
    };
    assert_eq!(dead(&engine), expected);

    // Without `b`, all of `a` and `b`'s own events are dead; `c` is not.
    engine.delete_stream("b").expect("delete b");
    let expected = helios::DeadBytes {
        deleted_streams: 2,
        events: 30,
        bytes: frames(&a) + frames(&b),
    };
    assert_eq!(dead(&engine), expected);
    drop(engine);
    // The same from the metadata after a reopen, and from a read-only scan of the log.
    assert_eq!(dead(&open(dir.path())), expected);
    let reader = helios::ReadOnly::open(dir.path(), options()).expect("read-only");
    assert_eq!(reader.inspect().dead_bytes().expect("dead bytes"), expected);
}

#[test]
fn forks_and_deletions_refuse_what_cannot_be() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    engine
        .append("a", &events("a", 3), Durability::Critical, None)
        .expect("append");
    engine
        .append("b", &events("b", 3), Durability::Critical, None)
        .expect("append");
    assert!(matches!(
        engine.fork_stream("a", Version(4), "c"),
        Err(Error::VersionPastHead { .. })
    ));
    assert!(matches!(
        engine.fork_stream("a", Version(1), "b"),
        Err(Error::StreamExists { .. })
    ));
    assert!(matches!(
        engine.fork_stream("nope", Version(0), "c"),
        Err(Error::UnknownStream { .. })
    ));
    assert!(matches!(
        engine.fork_stream("a", Version(1), ""),
        Err(Error::InvalidStreamName { .. })
    ));
    // A fork at 0 shares nothing: an empty stream that starts at version 1.
    engine
        .fork_stream("a", Version(0), "empty")
        .expect("fork at 0");
    assert_eq!(engine.head("empty"), Some(Version::ZERO));
    assert_eq!(payloads(&engine, "empty"), Vec::<Vec<u8>>::new());
    let appended = engine
        .append(
            "empty",
            &[set("x", "y")],
            Durability::Normal,
            Some(Version::ZERO),
        )
        .expect("append");
    assert_eq!(appended.first, Version(1));
}

/// One step of a workload.
type Step = dyn Fn(&Engine) -> helios::Result<()>;

/// A workload of appends, forks and deletions on `SimStorage`, crashed after every I/O step
/// in turn: after the reopen, every acknowledged fork and deletion is there, and each stream
/// reads a prefix of what was appended to it.
#[test]
fn forks_and_deletions_survive_a_crash_at_every_step() {
    let run = |sim: &SimStorage, dir: &Path| -> Vec<&'static str> {
        let mut acknowledged = Vec::new();
        let Ok(engine) = Engine::builder(dir)
            .options(options())
            .storage(Arc::new(sim.clone()))
            .open()
        else {
            return acknowledged;
        };
        let steps: [(&'static str, &Step); 5] = [
            ("append", &|e| {
                e.append("s", &events("s", 14), Durability::Critical, None)
                    .map(drop)
            }),
            ("fork", &|e| e.fork_stream("s", Version(9), "f").map(drop)),
            ("append to the fork", &|e| {
                e.append("f", &events("f", 4), Durability::Critical, None)
                    .map(drop)
            }),
            ("delete", &|e| e.delete_stream("s")),
            ("reuse the name", &|e| {
                e.append("s", &events("new", 2), Durability::Critical, None)
                    .map(drop)
            }),
        ];
        for (name, step) in steps {
            if step(&engine).is_err() {
                break;
            }
            acknowledged.push(name);
        }
        acknowledged
    };
    // Count the steps of a run without a crash.
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = SimStorage::new();
    let full = run(&sim, dir.path());
    assert_eq!(full.len(), 5);
    let ops = sim.io_op_count();
    let mut crashes = 0;
    for at_op in 1..ops {
        let dir = tempfile::tempdir().expect("tempdir");
        let sim = SimStorage::new();
        sim.crash_after_ops(Some(at_op));
        let acknowledged = run(&sim, dir.path());
        sim.crash(CrashFault::LoseUnsynced, at_op);
        sim.crash_after_ops(None);
        crashes += 1;
        let engine = Engine::builder(dir.path())
            .options(options())
            .storage(Arc::new(sim.clone()))
            .open()
            .expect("reopen after the crash");
        let done = |step: &str| acknowledged.contains(&step);
        let s = engine.head("s");
        if done("reuse the name") {
            assert_eq!(payloads(&engine, "s"), events("new", 2), "crash at {at_op}");
        } else if done("delete") {
            assert_eq!(
                s, None,
                "an acknowledged deletion survives (crash at {at_op})"
            );
        } else if done("append") {
            assert_eq!(payloads(&engine, "s"), events("s", 14), "crash at {at_op}");
        }
        if done("fork") {
            let mut expected = events("s", 14)[..9].to_vec();
            if done("append to the fork") {
                expected.extend(events("f", 4));
            }
            assert_eq!(payloads(&engine, "f"), expected, "crash at {at_op}");
            let states = model_states(&expected);
            let last = expected.len() as u64;
            assert_view_matches(&engine, "f", last, at(&states, last), &keys());
        }
        // Whatever survived is a consistent store: every live stream reads and views.
        for info in engine.streams() {
            let read = payloads(&engine, &info.name);
            assert_eq!(read.len() as u64, info.head.0, "crash at {at_op}");
            engine.view(&info.name, info.head).expect("view");
        }
    }
    assert!(
        crashes >= 10,
        "only {crashes} crash points in {ops} operations"
    );
}
