//! Integration tests of state at any version: views over checkpoints, the builder, rebuilding
//! damaged checkpoints and state-machine errors.

use crate::support::{apply_kv, assert_view_matches, at, del, model_states, placed, set};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use helios::{
    Durability, Engine, Error, LayerInfo, LevelPolicy, Rejected, StateHandle, StateMachine, Version,
};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

const SMALL_SEGMENT: u64 = 64 * 1024;

fn open(dir: &Path, fanout: u64, levels: u32) -> Engine {
    open_policy(dir, LevelPolicy::new(fanout, levels).expect("policy"))
}

fn open_policy(dir: &Path, policy: LevelPolicy) -> Engine {
    Engine::builder(dir)
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = SMALL_SEGMENT;
            options.checkpoints.policy = Some(policy);
            options.background_threads = false;
            options
        })
        .open()
        .expect("open")
}

#[derive(Clone, Debug)]
enum Op {
    Set(u8, u8),
    Del(u8),
}

#[derive(Clone, Debug)]
struct Case {
    /// The finest level's interval: the fanout, or (half the cases) another.
    first: u64,
    fanout: u64,
    levels: u32,
    ops: Vec<Op>,
    batches: Vec<u8>,
    probes: Vec<u16>,
    reopen_at: u16,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Case {
        let len = usize::from(u16::arbitrary(g) % 400) + 1;
        // Few keys, so that overwrites, deletes and re-puts are common.
        let key_space = u8::arbitrary(g) % 12 + 1;
        let ops = (0..len)
            .map(|_| {
                if u8::arbitrary(g) % 4 == 0 {
                    Op::Del(u8::arbitrary(g) % key_space)
                } else {
                    Op::Set(u8::arbitrary(g) % key_space, u8::arbitrary(g))
                }
            })
            .collect();
        let fanout = u64::from(u8::arbitrary(g) % 9) + 2;
        Case {
            first: if bool::arbitrary(g) {
                fanout
            } else {
                u64::from(u8::arbitrary(g) % 9) + 2
            },
            fanout,
            levels: u32::from(u8::arbitrary(g) % 4) + 1,
            ops,
            batches: (0..8).map(|_| u8::arbitrary(g) % 40 + 1).collect(),
            probes: (0..12).map(|_| u16::arbitrary(g)).collect(),
            reopen_at: u16::arbitrary(g),
        }
    }
}

fn run_case(case: Case) -> TestResult {
    let Ok(policy) = LevelPolicy::with_first(case.first, case.fanout, case.levels) else {
        return TestResult::discard();
    };
    if policy.interval(case.levels) > 10_000 {
        return TestResult::discard();
    }
    let events: Vec<Vec<u8>> = case
        .ops
        .iter()
        .map(|op| match *op {
            Op::Set(k, v) => set(&format!("key-{k}"), &format!("value-{v}")),
            Op::Del(k) => del(&format!("key-{k}")),
        })
        .collect();
    let keys: Vec<Vec<u8>> = (0..12).map(|k| format!("key-{k}").into_bytes()).collect();
    let states = model_states(&events);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut engine = open_policy(dir.path(), policy);
    let reopen_at = usize::from(case.reopen_at) % events.len();
    let mut appended = 0;
    let mut batch = case.batches.iter().cycle();
    while appended < events.len() {
        let n = usize::from(*batch.next().expect("cycle")).min(events.len() - appended);
        engine
            .append(
                "s",
                &events[appended..appended + n],
                Durability::Normal,
                None,
            )
            .expect("append");
        if appended <= reopen_at && reopen_at < appended + n {
            // Checkpoints built so far must survive a reopen.
            engine.checkpoints().sync().expect("sync checkpoints");
            drop(engine);
            engine = open_policy(dir.path(), policy);
        }
        appended += n;
    }
    let head = events.len() as u64;
    // Before the builder catches up: correct, however many events it replays.
    let probe = |i: usize| u64::from(case.probes[i % case.probes.len()]) % (head + 1);
    for i in 0..3 {
        let v = probe(i);
        assert_view_matches(&engine, "s", v, at(&states, v), &keys);
    }
    engine.checkpoints().sync().expect("sync checkpoints");
    for i in 0..case.probes.len() {
        let v = probe(i);
        let replayed = assert_view_matches(&engine, "s", v, at(&states, v), &keys);
        if replayed > policy.first_interval() - 1 {
            return TestResult::error(format!(
                "version {v} replayed {replayed} events with {policy:?}"
            ));
        }
    }
    for v in [0, head] {
        assert_view_matches(&engine, "s", v, at(&states, v), &keys);
    }
    TestResult::passed()
}

/// Every view equals the model, for random events, fanouts, level counts and versions, and
/// replays at most `fanout - 1` events once the builder has caught up.
#[test]
fn views_match_a_btreemap_model() {
    let cases = std::env::var("HELIOS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    QuickCheck::new()
        .tests(cases)
        .max_tests(cases * 4)
        .quickcheck(run_case as fn(Case) -> TestResult);
}

/// Appends `count` events `set key-{i % keys} value-{i}` to `stream`.
fn append_sets(engine: &Engine, stream: &str, count: usize, keys: usize) -> Vec<Vec<u8>> {
    let events: Vec<Vec<u8>> = (0..count)
        .map(|i| set(&format!("key-{}", i % keys), &format!("value-{i}")))
        .collect();
    for chunk in events.chunks(7) {
        engine
            .append(stream, chunk, Durability::Normal, None)
            .expect("append");
    }
    events
}

#[test]
fn checkpoints_survive_reopen_and_are_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 3);
    let events = append_sets(&engine, "s", 2345, 50);
    let stats = engine.checkpoints().sync().expect("sync");
    // 234 checkpoints: 2 full (1000, 2000), 21 level-2, 211 level-1.
    assert_eq!(stats.count, 234, "{stats:?}");
    assert_eq!(stats.by_level[2].count, 2);
    assert_eq!(stats.by_level[1].count, 21);
    assert_eq!(stats.written, 234);
    assert_eq!(stats.packs, 1, "one pack holds them all");
    drop(engine);

    let engine = open(dir.path(), 10, 3);
    let report = &engine.inspect().open_report().checkpoints;
    assert_eq!(
        (
            report.found,
            report.dropped,
            report.gaps,
            report.damage.len()
        ),
        (234, 0, 0, 0)
    );
    let states = model_states(&events);
    let view = engine.view("s", Version(2345)).expect("view");
    let layers: Vec<(u32, u64)> = view
        .report()
        .layers
        .iter()
        .map(|l| (l.info.level, l.info.version))
        .collect();
    // The level-2 checkpoint at 2300 covers 300 events of 50 keys: as a delta it would hold
    // every key, so it is the full state, and the view stops there.
    assert_eq!(layers, vec![(1, 2340), (2, 2300)]);
    assert_eq!(view.report().events_replayed, 5);
    let keys: Vec<Vec<u8>> = (0..50).map(|k| format!("key-{k}").into_bytes()).collect();
    assert_view_matches(&engine, "s", 2345, &states[2345], &keys);
    let stats = engine.checkpoints().sync().expect("sync");
    assert_eq!((stats.written, stats.rebuilt), (0, 0), "nothing to redo");
}

#[test]
fn a_view_past_a_checkpoint_not_built_yet_starts_from_the_one_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 3);
    let mut events = append_sets(&engine, "s", 115, 40);
    // Checkpoints up to 110 (level 1 at 10..=90 and 110, level 2 at 100); none after.
    engine.checkpoints().sync().expect("sync");
    let more: Vec<Vec<u8>> = (115..135)
        .map(|i| set(&format!("key-{}", i % 40), &format!("value-{i}")))
        .collect();
    engine
        .append("s", &more, Durability::Normal, None)
        .expect("append");
    events.extend(more);
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..40).map(|k| format!("key-{k}").into_bytes()).collect();
    let layers = |version: u64| -> (Vec<(u32, u64)>, u64) {
        let view = engine.view("s", Version(version)).expect("view");
        let report = view.report();
        (
            report
                .layers
                .iter()
                .map(|l| (l.info.level, l.info.version))
                .collect(),
            report.events_replayed,
        )
    };
    // 125 calls for the level-1 checkpoint at 120, not built: the one at 110 and 15 events,
    // not the level-2 one at 100 and 25.
    assert_eq!(layers(125), (vec![(1, 110), (2, 100)], 15));
    // 134 calls for 130; 120 is missing too, 110 is two steps back: 24 events, not 34.
    assert_eq!(layers(134), (vec![(1, 110), (2, 100)], 24));
    for version in 111..=135 {
        assert_view_matches(&engine, "s", version, at(&states, version), &keys);
    }
    // Once built, each version reads its own layers again.
    engine.checkpoints().sync().expect("sync");
    assert_eq!(layers(125), (vec![(1, 120), (2, 100)], 5));
}

#[test]
fn damaged_and_deleted_checkpoints_are_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 2);
    let events = append_sets(&engine, "s", 250, 30);
    engine.checkpoints().sync().expect("sync");
    drop(engine);
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..30).map(|k| format!("key-{k}").into_bytes()).collect();

    // Flip one byte in the middle of the full checkpoint at 200 and of the delta at 240.
    let engine = open(dir.path(), 10, 2);
    let (full, delta) = (placed(&engine, "s", 200), placed(&engine, "s", 240));
    drop(engine);
    let bytes = full.read();
    full.damage_archive();
    delta.damage_archive();

    let engine = open(dir.path(), 10, 2);
    // Correct results while the damage is there: the view falls back to the full state at
    // 100 and replays from there.
    let replayed = assert_view_matches(&engine, "s", 245, &states[245], &keys);
    assert!(
        replayed > 9,
        "fell back past the damaged layers, replayed {replayed}"
    );
    let stats = engine.checkpoints().stats();
    assert!((1..=2).contains(&stats.damaged), "{stats:?}");
    let stats = engine.checkpoints().sync().expect("sync");
    assert_eq!((stats.rebuilt, stats.damaged), (2, 2), "{stats:?}");
    for v in [200, 240, 245, 250] {
        let replayed = assert_view_matches(&engine, "s", v, at(&states, v), &keys);
        assert!(replayed <= 9, "version {v} replayed {replayed}");
    }
    let rebuilt = placed(&engine, "s", 200);
    assert_ne!(
        rebuilt.offset, full.offset,
        "the rebuilt checkpoint is a new one"
    );
    assert_eq!(rebuilt.read(), bytes, "with the bytes of the undamaged one");
}

#[test]
fn views_stay_exact_while_the_map_cache_evicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::builder(dir.path())
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = SMALL_SEGMENT;
            options.checkpoints.policy = Some(LevelPolicy::new(10, 3).expect("policy"));
            options.background_threads = false;
            // The smallest cache the policy allows: every view's layers evict earlier maps.
            options.checkpoints.maps_max = 3;
            options
        })
        .open()
        .expect("open");
    let events = append_sets(&engine, "s", 2345, 50);
    engine.checkpoints().sync().expect("sync");
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..50).map(|k| format!("key-{k}").into_bytes()).collect();
    // Views kept alive across evictions keep their maps: read them all again at the end.
    let mut held = Vec::new();
    for version in (7..=2345).step_by(97) {
        let replayed = assert_view_matches(&engine, "s", version, at(&states, version), &keys);
        assert!(
            replayed <= 9,
            "version {version} replayed {replayed} events"
        );
        held.push((version, engine.view("s", Version(version)).expect("view")));
    }
    for (version, view) in &held {
        let all: BTreeMap<Vec<u8>, Vec<u8>> =
            view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(&all, at(&states, *version), "held view at {version}");
    }
    // Nothing was treated as damaged: evicting a map only drops it.
    let stats = engine.checkpoints().sync().expect("sync");
    assert_eq!(
        (stats.written, stats.rebuilt, stats.damaged),
        (234, 0, 0),
        "{stats:?}"
    );
}

#[test]
fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 2);
    append_sets(&engine, "s", 12, 3);
    match engine.view("s", Version(13)) {
        Err(Error::VersionPastHead {
            stream,
            version,
            head,
        }) => {
            assert_eq!(
                (stream.as_str(), version, head),
                ("s", Version(13), Version(12))
            );
        }
        other => panic!("expected VersionPastHead, got {:?}", other.map(|_| ())),
    }
    let message = engine
        .view("nope", Version(1))
        .map(|_| ())
        .expect_err("unknown")
        .to_string();
    assert!(message.contains("unknown stream `nope`"), "{message}");

    // An event the kv machine rejects: views before it work, views at or after it name it.
    engine
        .append("s", &[b"frobnicate x".to_vec()], Durability::Normal, None)
        .expect("append");
    append_sets(&engine, "s", 20, 3);
    assert!(engine.view("s", Version(12)).is_ok());
    let error = engine
        .view("s", Version(20))
        .map(|_| ())
        .expect_err("rejected");
    match &error {
        Error::Replay {
            stream, version, ..
        } => {
            assert_eq!((stream.as_str(), *version), ("s", Version(13)));
        }
        other => panic!("expected Replay, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("stream `s`, event v13: state machine `kv` rejected it"),
        "{error}"
    );
    let stats = engine.checkpoints().sync().expect("sync");
    assert_eq!(stats.stalled.len(), 1, "{stats:?}");
    assert_eq!(stats.stalled[0].version, Version(13));
    // The builder still wrote the checkpoint before the bad event.
    assert!(
        engine
            .checkpoints()
            .of_stream("s")
            .expect("list")
            .iter()
            .any(|c| c.version == Version(10))
    );
}

/// Panics on `boom`, counts everything else.
struct Fragile;

impl StateMachine for Fragile {
    fn name(&self) -> &str {
        "fragile"
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        assert!(event != b"boom", "fragile machine hit a bomb");
        let count = state.get(b"count").map_or(0, |b| b.len());
        state.put(b"count", &vec![b'x'; count + 1]);
        Ok(())
    }
}

/// Views near the head, in the index group the index is still filling (versions 257-512 of
/// 256-version groups), read exactly while the index grows under them: the cached prefix of
/// that group is replaced by a longer one when a view needs more.
#[test]
fn views_near_the_head_follow_the_index_as_it_grows() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No builder runs (no background threads, no `checkpoints().sync()`): views replay from
    // the start, through the locations the index holds and those still in memory.
    let engine = open(dir.path(), 25, 1);
    let events: Vec<Vec<u8>> = (0..400u32)
        .map(|i| set(&format!("key-{}", i % 13), &format!("value-{i}")))
        .collect();
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..13).map(|k| format!("key-{k}").into_bytes()).collect();
    let mut head = 0u64;
    for chunk in events.chunks(7) {
        engine
            .append("s", chunk, Durability::Normal, None)
            .expect("append");
        engine.sync().expect("sync: the new events are indexed");
        head += chunk.len() as u64;
        for v in [
            head,
            head.saturating_sub(3),
            head.saturating_sub(8),
            257.min(head),
        ] {
            assert_view_matches(&engine, "s", v, at(&states, v), &keys);
        }
    }
}

/// The kv machine, plus `import N`: one event that sets `k0 ..= k{N-1}` to `imported`.
struct Importer;

impl StateMachine for Importer {
    fn name(&self) -> &str {
        "importer"
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        if let Some(count) = event.strip_prefix(b"import ") {
            let count: u32 = std::str::from_utf8(count)
                .ok()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| Rejected::new("import needs a count"))?;
            for i in 0..count {
                state.put(format!("k{i}").as_bytes(), b"imported");
            }
            return Ok(());
        }
        helios::kv::KvMachine.apply(event, state)
    }
}

/// A stream that starts with a bulk import, and imports again at version 1505:
/// - the first window's checkpoints are deltas against the anchor (the full state at version
///   `fanout`), not full copies of the import each;
/// - each import is a heavy event: the builder writes the full state just after it (level 0),
///   and no view replays it.
#[test]
fn bulk_imports_are_copied_once_and_never_replayed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || {
        Engine::builder(dir.path())
            .options({
                let mut options = helios::Options::default();
                options.log.segment_size_bytes = SMALL_SEGMENT;
                options.background_threads = false;
                options
            })
            .stream_machine("bulk", Importer)
            .open()
            .expect("open")
    };
    let engine = open();
    let imported = 5_000;
    let import = format!("import {imported}").into_bytes();
    let mut events = vec![import.clone()];
    events.extend((1..1_600u32).map(|i| match i {
        1504 => import.clone(),
        _ if i % 7 == 3 => del(&format!("k{}", i * 13 % 5_100)),
        _ => set(&format!("k{}", i * 13 % 5_100), &format!("v{i}")),
    }));
    for chunk in events.chunks(100) {
        engine
            .append("bulk", chunk, Durability::Critical, None)
            .expect("append");
    }
    engine.checkpoints().sync().expect("sync");

    // The anchor (version 10) holds the whole state; every other checkpoint below the first
    // full one (version 1000) is a delta against it, holding only the keys changed since (at
    // most 989 of the 5,000), where a delta against the empty state would hold them all.
    let checkpoints = engine.checkpoints().of_stream("bulk").expect("checkpoints");
    let find = |v: u64| {
        checkpoints
            .iter()
            .find(|c| c.version.0 == v)
            .unwrap_or_else(|| panic!("no checkpoint at {v}: {checkpoints:?}"))
    };
    let anchor = find(10);
    assert_eq!((anchor.level, anchor.base), (1, Version(0)));
    let first_window: Vec<_> = checkpoints
        .iter()
        .filter(|c| c.version.0 > 10 && c.version.0 < 1000)
        .collect();
    assert_eq!(first_window.len(), 98, "{checkpoints:?}");
    for c in &first_window {
        assert!(c.base.0 >= 10, "{c:?}");
        assert!(
            c.len_bytes * 4 < anchor.len_bytes,
            "{c:?} is not a small delta against the anchor {anchor:?}"
        );
    }
    // The full states after the two imports, and no other off-grid checkpoint.
    let heavy: Vec<(u64, u32, u64)> = checkpoints
        .iter()
        .filter(|c| c.version.0 % 10 != 0)
        .map(|c| (c.version.0, c.level, c.base.0))
        .collect();
    assert_eq!(heavy, vec![(1, 0, 0), (1505, 0, 0)]);
    assert_eq!(engine.checkpoints().stats().after_heavy_events.count, 2);

    // Every version reads the model's state, through at most three layers, and no view
    // replays an import: before and after a reopen, and with the anchor and the state after
    // the second import deleted (then rebuilt).
    let mut states = vec![BTreeMap::new()];
    let mut state = BTreeMap::new();
    for event in &events {
        if *event == import {
            for k in 0..imported {
                state.insert(format!("k{k}").into_bytes(), b"imported".to_vec());
            }
        } else {
            apply_kv(&mut state, event);
        }
        states.push(state.clone());
    }
    let keys: Vec<Vec<u8>> = (0..5_100)
        .step_by(97)
        .map(|k| format!("k{k}").into_bytes())
        .collect();
    let check = |engine: &Engine| {
        let versions = (0..=events.len() as u64)
            .step_by(7)
            .chain([1, 9, 10, 20, 100, 999, 1000])
            .chain(1500..1520);
        for v in versions {
            let replayed = assert_view_matches(engine, "bulk", v, at(&states, v), &keys);
            let view = engine.view("bulk", Version(v)).expect("view");
            let report = view.report();
            assert!(replayed < 10, "version {v} replayed {replayed}");
            assert!(report.layers.len() <= 3, "version {v}: {report:?}");
            assert!(
                report.overlay_entries_count < 100,
                "version {v} replayed an import: {report}"
            );
            if (1505..1510).contains(&v) {
                assert_eq!(report.layers.len(), 1, "version {v}: {report}");
                assert_eq!(report.layers[0].info, LayerInfo::new(0, 1505));
            }
        }
    };
    check(&engine);
    let damaged = [placed(&engine, "bulk", 10), placed(&engine, "bulk", 1505)];
    engine.close().expect("close");
    for checkpoint in &damaged {
        checkpoint.damage_archive();
    }
    let engine = open();
    // Exact while damaged (views read around them, longer, and find them), then rebuilt.
    for v in [9, 10, 14, 1504, 1505, 1509] {
        assert_view_matches(&engine, "bulk", v, at(&states, v), &keys);
    }
    let stats = engine.checkpoints().sync().expect("rebuild");
    assert_eq!((stats.damaged, stats.rebuilt), (2, 2), "{stats:?}");
    check(&engine);
}

#[test]
fn a_panicking_machine_does_not_harm_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::builder(dir.path())
        .options({
            let mut options = helios::Options::default();
            options.log.segment_size_bytes = SMALL_SEGMENT;
            options.background_threads = false;
            options
        })
        .stream_machine("fragile-", Fragile)
        .open()
        .expect("open");
    let events: Vec<&[u8]> = vec![b"a", b"b", b"boom", b"c"];
    engine
        .append("fragile-1", &events, Durability::Critical, None)
        .expect("append");
    assert_eq!(
        engine
            .view("fragile-1", Version(2))
            .expect("view")
            .get(b"count"),
        Some(&b"xx"[..])
    );
    let error = engine
        .view("fragile-1", Version(4))
        .map(|_| ())
        .expect_err("panicked");
    assert!(error.to_string().contains("panicked"), "{error}");
    // The engine goes on: other streams, appends, views, checkpoints.
    append_sets(&engine, "kv", 30, 4);
    engine.checkpoints().sync().expect("sync");
    assert_eq!(
        engine.view("kv", Version(30)).expect("view").get(b"key-1"),
        Some(&b"value-29"[..])
    );
}

#[test]
fn views_are_send_and_outlive_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Arc::new(
        Engine::builder(dir.path())
            .options({
                let mut options = helios::Options::default();
                options.log.segment_size_bytes = SMALL_SEGMENT;
                options
            })
            .open()
            .expect("open"),
    );
    let events = append_sets(&engine, "s", 300, 20);
    let states = Arc::new(model_states(&events));
    let view = engine.view("s", Version(150)).expect("view");
    let writer = {
        let engine = engine.clone();
        std::thread::spawn(move || append_sets(&engine, "s", 500, 20))
    };
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let engine = engine.clone();
            let states = states.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    let v = (i * 37 + t * 11) % 300;
                    let view = engine.view("s", Version(v)).expect("view");
                    let all: BTreeMap<Vec<u8>, Vec<u8>> =
                        view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
                    assert_eq!(all, states[v as usize], "version {v}");
                }
            })
        })
        .collect();
    let moved = std::thread::spawn(move || view.to_map());
    assert_eq!(moved.join().expect("join"), states[150]);
    writer.join().expect("writer");
    for reader in readers {
        reader.join().expect("reader");
    }
}

/// Regression (found by the crash simulator): a damaged checkpoint that the forward build of
/// its stream also passes through was rebuilt by two jobs of one round at once, which wrote
/// the same temporary file (the second rename failed), and the rewrite counted as "written",
/// not "rebuilt".
#[test]
fn a_damaged_checkpoint_on_the_forward_path_is_rebuilt_once_and_counted_as_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 2);
    let mut events = append_sets(&engine, "s", 125, 13);
    engine.checkpoints().sync().expect("sync");
    drop(engine);
    let engine = open(dir.path(), 10, 2);
    let damaged = placed(&engine, "s", 120);
    drop(engine);
    damaged.damage_archive();
    // Reopened, the builder keeps no head: the next forward build starts from the full state
    // at 100 and passes 120 on its way to 140; a view finds 120 damaged meanwhile.
    let engine = open(dir.path(), 10, 2);
    events.extend(append_sets(&engine, "s", 20, 13));
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = (0..13).map(|k| format!("key-{k}").into_bytes()).collect();
    assert_view_matches(&engine, "s", 123, at(&states, 123), &keys);
    assert_eq!(engine.checkpoints().stats().damaged, 1);
    let stats = engine.checkpoints().sync().expect("one rebuild, no clash");
    assert_eq!((stats.rebuilt, stats.damaged), (1, 1), "{stats:?}");
    assert_eq!(stats.written, 2, "140 and 130: {stats:?}");
    for v in [120, 123, 140, 145] {
        let replayed = assert_view_matches(&engine, "s", v, at(&states, v), &keys);
        assert!(replayed <= 9, "version {v} replayed {replayed}");
    }
}

/// A stream's whole state.
type State = BTreeMap<Vec<u8>, Vec<u8>>;

#[test]
fn checkpoints_of_deleted_streams_are_reclaimed_by_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 2);
    let mut kept = BTreeMap::new();
    let mut deleted = Vec::new();
    for s in 0..60 {
        let name = format!("s{s}");
        let events = append_sets(&engine, &name, 200, 20);
        if s % 6 == 0 {
            kept.insert(name, events);
        } else {
            deleted.push(name);
        }
    }
    let before = engine.checkpoints().sync().expect("sync");
    assert_eq!((before.count, before.packs), (60 * 20, 1), "{before:?}");
    // A fork of a deleted stream keeps the checkpoints it shares (up to its fork point).
    engine
        .fork_stream(&deleted[0], Version(100), "fork")
        .expect("fork");
    let fork_events: Vec<Vec<u8>> = {
        let source: Vec<Vec<u8>> = engine
            .read(&deleted[0], ..=Version(100))
            .expect("read")
            .map(|e| e.expect("event").payload)
            .collect();
        let more = append_sets(&engine, "fork", 15, 20);
        source.into_iter().chain(more).collect()
    };
    kept.insert("fork".to_owned(), fork_events);
    for name in &deleted {
        engine.delete_stream(name).expect("delete");
    }
    engine.checkpoints().sync().expect("sync");
    drop(engine);
    // A reader that opened before the compaction reads on across it.
    let reader = helios::ReadOnly::open(
        dir.path(),
        helios::Options {
            checkpoints: helios::CheckpointOptions {
                policy: Some(LevelPolicy::new(10, 2).expect("policy")),
                ..helios::CheckpointOptions::default()
            },
            ..helios::Options::default()
        },
    )
    .expect("a reader");

    let engine = open(dir.path(), 10, 2);
    let report = engine.inspect().open_report().checkpoints.clone();
    // A cleanly closed store's open takes each stream's checkpoints in at its first use: it
    // drops none. The compaction takes them all in, and drops the deleted streams' (except the
    // fork's shared ten of s1): it moves only the others.
    assert_eq!(report.dropped, 0, "{report:?}");
    let compacted = engine.checkpoints().compact().expect("compact");
    assert_eq!(compacted.packs, 1, "{compacted:?}");
    assert_eq!(compacted.moved, 10 * 20 + 10 + 1, "{compacted:?}");
    let after = engine.checkpoints().stats();
    assert_eq!(
        (after.count, after.packs),
        (10 * 20 + 10 + 1, 1),
        "{after:?}"
    );
    assert!(
        after.pack_bytes * 4 < before.pack_bytes,
        "{} bytes of packs after, {} before",
        after.pack_bytes,
        before.pack_bytes
    );
    assert_eq!(
        engine.checkpoints().compact().expect("again"),
        helios::CompactReport::default(),
        "nothing left to reclaim"
    );
    let keys: Vec<Vec<u8>> = (0..20).map(|k| format!("key-{k}").into_bytes()).collect();
    let check = |read: &dyn Fn(&str, u64) -> State| {
        for (name, events) in &kept {
            let states = model_states(events);
            for v in (0..=events.len() as u64).step_by(7) {
                assert_eq!(&read(name, v), at(&states, v), "{name} at {v}");
            }
        }
    };
    check(&|name, v| engine.state_at(name, Version(v)).expect("state"));
    for (name, events) in &kept {
        let states = model_states(events);
        let v = events.len() as u64;
        let replayed = assert_view_matches(&engine, name, v, at(&states, v), &keys);
        assert!(replayed <= 9, "{name} replayed {replayed}");
    }
    check(&|name, v| {
        reader
            .state_at(name, Version(v))
            .expect("the reader's state")
    });
    drop(engine);
    let engine = open(dir.path(), 10, 2);
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(
        (report.found, report.dropped, report.packs),
        (10 * 20 + 10 + 1, 0, 1),
        "{report:?}"
    );
    check(&|name, v| engine.state_at(name, Version(v)).expect("state"));
}

#[test]
fn a_delta_that_would_hold_every_key_is_written_as_the_full_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 3);
    // Eight keys, each set every 8 events: by version 20 every key changed since the anchor.
    let small = append_sets(&engine, "small", 50, 8);
    // A hundred keys: the deltas below version 100 hold at most the 40 changed since 10.
    let large = append_sets(&engine, "large", 50, 100);
    engine.checkpoints().sync().expect("sync");
    let bases = |stream: &str| -> Vec<(u64, u64)> {
        engine
            .checkpoints()
            .of_stream(stream)
            .expect("checkpoints")
            .iter()
            .map(|c| (c.version.0, c.base.0))
            .collect()
    };
    assert_eq!(
        bases("small"),
        [(10, 0), (20, 0), (30, 0), (40, 0), (50, 0)]
    );
    assert_eq!(
        bases("large"),
        [(10, 0), (20, 10), (30, 10), (40, 10), (50, 10)]
    );
    for (stream, events, layers) in [("small", &small, 1), ("large", &large, 2)] {
        let states = model_states(events);
        let keys: Vec<Vec<u8>> = (0..100).map(|k| format!("key-{k}").into_bytes()).collect();
        for v in 0..=50 {
            let replayed = assert_view_matches(&engine, stream, v, at(&states, v), &keys);
            assert!(replayed <= 9, "{stream} at {v} replayed {replayed}");
            let view = engine.view(stream, Version(v)).expect("view");
            if v >= 20 {
                assert_eq!(view.report().layers.len(), layers, "{stream} at {v}");
            }
        }
    }
    let report = helios::verify_with_policy(dir.path(), &LevelPolicy::new(10, 3).expect("policy"))
        .expect("verify");
    assert!(report.is_sound(), "{:?}", report.findings);
    // Reopened, the full states are read as such.
    drop(engine);
    let engine = open(dir.path(), 10, 3);
    let view = engine.view("small", Version(45)).expect("view");
    assert_eq!(view.report().layers.len(), 1, "{}", view.report());
    assert_eq!(view.report().events_replayed, 5);
}

/// An engine whose `m-` streams have the `Fragile` machine, or the default one.
fn open_machines(dir: &std::path::Path, fragile: bool) -> Engine {
    let mut builder = Engine::builder(dir).options({
        let mut options = helios::Options::default();
        options.log.segment_size_bytes = SMALL_SEGMENT;
        options.background_threads = false;
        options
    });
    if fragile {
        builder = builder.stream_machine("m-", Fragile);
    }
    builder.open().expect("open")
}

#[test]
fn checkpoints_built_by_another_state_machine_are_dropped_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open_with = |fragile: bool| open_machines(dir.path(), fragile);
    let engine = open_with(false);
    append_sets(&engine, "m-1", 30, 4);
    // A stream that keeps the default machine throughout keeps its checkpoints throughout.
    append_sets(&engine, "plain", 30, 4);
    assert_eq!(engine.checkpoints().sync().expect("sync").count, 6);
    drop(engine);
    // The stream's events now mean something else: its key-value checkpoints are not its state.
    let engine = open_with(true);
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!((report.found, report.dropped), (3, 3), "{report:?}");
    let count = |engine: &Engine, v: u64| {
        engine
            .view("m-1", Version(v))
            .expect("view")
            .get(b"count")
            .map(<[u8]>::len)
    };
    assert_eq!(count(&engine, 25), Some(25));
    engine
        .checkpoints()
        .sync()
        .expect("rebuild with the new machine");
    drop(engine);
    // The same configuration again, after a clean close: each stream's checkpoints are taken
    // in at its first use, and the other machine's three are not kept then.
    let engine = open_with(true);
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!((report.found, report.dropped), (9, 0), "{report:?}");
    assert_eq!(engine.checkpoints().stats().count, 6);
    assert_eq!(count(&engine, 30), Some(30));
    let replayed = |engine: &Engine, stream: &str| {
        engine
            .view(stream, Version(30))
            .expect("view")
            .report()
            .events_replayed
    };
    assert_eq!(replayed(&engine, "m-1"), 0);
    drop(engine);
    // And back: each checkpoint says which machine built it, so the key-value ones are
    // m-1's state again, and the other machine's are not read.
    let engine = open_with(false);
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!((report.found, report.dropped), (6, 3), "{report:?}");
    assert_eq!(replayed(&engine, "plain"), 0);
    assert_eq!(replayed(&engine, "m-1"), 0);
    assert_eq!(
        count(&engine, 30),
        None,
        "the key-value state has no `count` key"
    );
}

/// Regression (found by `views_match_a_btreemap_model`): while the finest layer is not built,
/// a view stacks the coarser ones; a full state written where a delta was due holds no
/// tombstones, so nothing under it may show through (a key deleted before it came back).
#[test]
fn a_key_deleted_under_a_full_state_stays_deleted_while_finer_layers_are_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 4, 3);
    let mut events = vec![
        set("a", "1"),
        set("b", "1"),
        set("c", "1"),
        set("d", "1"),
        del("a"),
    ];
    for i in 0..11 {
        events.push(set(["b", "c", "d"][i % 3], &format!("v{i}")));
    }
    engine
        .append("s", &events, Durability::Normal, None)
        .expect("append");
    engine.checkpoints().sync().expect("sync");
    // The anchor at 4 holds a to d; the level-2 checkpoint at 16 is the full state b, c, d.
    let level2 = engine
        .checkpoints()
        .of_stream("s")
        .expect("checkpoints")
        .into_iter()
        .find(|c| c.version == Version(16))
        .expect("the checkpoint at 16");
    assert_eq!((level2.level, level2.base), (2, Version(0)));
    // Events 17 to 21 with no builder run: the level-1 checkpoint at 20 is missing.
    let more = vec![
        set("b", "x"),
        set("c", "x"),
        set("d", "x"),
        set("b", "y"),
        set("c", "y"),
    ];
    engine
        .append("s", &more, Durability::Normal, None)
        .expect("append");
    events.extend(more);
    let states = model_states(&events);
    let keys: Vec<Vec<u8>> = ["a", "b", "c", "d"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    for v in 16..=21 {
        assert_view_matches(&engine, "s", v, at(&states, v), &keys);
    }
}

#[test]
fn deleting_streams_frees_their_checkpoints_for_compaction_without_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 2);
    for s in 0..30 {
        append_sets(&engine, &format!("s{s}"), 200, 20);
    }
    engine
        .fork_stream("s0", Version(100), "fork")
        .expect("fork");
    let fork_more = append_sets(&engine, "fork", 15, 20);
    let before = engine.checkpoints().sync().expect("sync");
    for s in 0..29 {
        engine.delete_stream(&format!("s{s}")).expect("delete");
    }
    // s0's first ten checkpoints still serve its fork; the rest of the deleted streams' are
    // dead at once.
    let after_delete = engine.checkpoints().stats();
    assert_eq!(
        after_delete.count,
        before.count - 29 * 20 + 10,
        "{after_delete:?}"
    );
    let compacted = engine.checkpoints().compact().expect("compact");
    assert_eq!(compacted.packs, 1, "{compacted:?}");
    let after = engine.checkpoints().stats();
    assert!(
        after.pack_bytes * 5 < before.pack_bytes,
        "{} bytes of packs after, {} before",
        after.pack_bytes,
        before.pack_bytes
    );
    let source: Vec<Vec<u8>> = (0..100)
        .map(|i| set(&format!("key-{}", i % 20), &format!("value-{i}")))
        .collect();
    let fork_events: Vec<Vec<u8>> = source.into_iter().chain(fork_more).collect();
    let states = model_states(&fork_events);
    let keys: Vec<Vec<u8>> = (0..20).map(|k| format!("key-{k}").into_bytes()).collect();
    for v in 0..=fork_events.len() as u64 {
        let replayed = assert_view_matches(&engine, "fork", v, at(&states, v), &keys);
        assert!(replayed <= 9, "fork at {v} replayed {replayed}");
    }
    drop(engine);
    let engine = open(dir.path(), 10, 2);
    let report = engine.inspect().open_report().checkpoints.clone();
    assert_eq!(
        (report.found, report.dropped),
        (after.count, 0),
        "{report:?}"
    );
}

/// Regression: a stream whose machine changed had its checkpoints dropped at that open, but
/// they stayed in the packs; closed before they were rebuilt, the next open read them again as
/// the stream's state (fjall now recorded the new machine). Each checkpoint now carries the
/// number of the machine that built it.
#[test]
fn another_machines_checkpoints_stay_unread_when_closed_before_the_rebuild() {
    let dir = tempfile::tempdir().expect("tempdir");
    let open_with = |fragile: bool| open_machines(dir.path(), fragile);
    let engine = open_with(false);
    append_sets(&engine, "m-1", 30, 4);
    engine.checkpoints().sync().expect("sync");
    drop(engine);
    // The first open with the new machine takes every checkpoint in (the catalog snapshot was
    // written with the old one) and drops the other machine's. The second, after a clean close,
    // takes each stream's in at its first use, and drops them then.
    for (open, at_open) in [
        ("after the change", (0, 3)),
        ("again, nothing rebuilt", (3, 0)),
    ] {
        let engine = open_with(true);
        let report = engine.inspect().open_report().checkpoints.clone();
        assert_eq!(
            (report.found, report.dropped),
            at_open,
            "{open}: {report:?}"
        );
        assert_eq!(engine.checkpoints().stats().count, 0, "{open}");
        let view = engine.view("m-1", Version(25)).expect("view");
        assert_eq!(
            view.get(b"count").map(<[u8]>::len),
            Some(25),
            "{open}: {}",
            view.report()
        );
    }
}

/// A writer's open of a cleanly closed store takes no stream's checkpoints in: it learns from
/// the catalog snapshot which streams may have a checkpoint due, and the builder still builds
/// exactly those, across opens that build nothing and opens that append nothing.
#[test]
fn a_clean_store_opens_without_its_checkpoints_and_builds_what_is_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path(), 10, 3);
    let quiet = append_sets(&engine, "quiet", 25, 4);
    let mut busy = append_sets(&engine, "busy", 25, 4);
    engine.checkpoints().sync().expect("sync");
    // Due at 30 and 40, not built before the close (no background builder).
    busy.extend(append_sets(&engine, "busy", 15, 4));
    drop(engine);
    let replayed = |engine: &Engine, stream: &str, v: u64| {
        let view = engine.view(stream, Version(v)).expect("view");
        view.report().events_replayed
    };
    // Closed twice more without building: an open that appends nothing keeps the list.
    for _ in 0..2 {
        let engine = open(dir.path(), 10, 3);
        let report = engine.inspect().open_report().checkpoints.clone();
        assert!(report.deferred, "{report:?}");
        assert_eq!((report.found, report.dropped), (4, 0), "{report:?}");
        assert!(replayed(&engine, "busy", 40) > 9, "not built yet");
        drop(engine);
    }
    let engine = open(dir.path(), 10, 3);
    let built = engine.checkpoints().sync().expect("sync");
    assert_eq!(built.count, 6, "{built:?}");
    assert_eq!(engine.checkpoints().stats().written, 2);
    assert_eq!(replayed(&engine, "busy", 40), 0);
    assert_eq!(replayed(&engine, "quiet", 25), 5);
    let states = model_states(&busy);
    assert_eq!(
        &engine.state_at("busy", Version(40)).expect("state"),
        at(&states, 40)
    );
    let states = model_states(&quiet);
    assert_eq!(
        &engine.state_at("quiet", Version(25)).expect("state"),
        at(&states, 25)
    );
}
