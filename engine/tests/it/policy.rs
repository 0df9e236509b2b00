//! The level policy the store records (`checkpoints/POLICY`): later opens that name none use
//! it, readers always; a writer that names another one rebuilds under it and records it; a
//! damaged record is reported and replaced.

use std::collections::BTreeMap;
use std::path::Path;

use helios::{Durability, Engine, LevelPolicy, Options, ReadOnly, Version};

use crate::support::{model_states, set};

/// Every 10 events, fanout 3 above, 4 levels: checkpoints where the default policy has none
/// (30, 90, 270).
fn custom() -> LevelPolicy {
    LevelPolicy::with_first(10, 3, 4).expect("policy")
}

fn options(policy: Option<LevelPolicy>) -> Options {
    let mut options = Options::default();
    options.checkpoints.policy = policy;
    options.background_threads = false;
    options
}

/// 1,000 events over 500 keys in stream "s", checkpoints built, the writer closed.
fn written_with(dir: &Path, policy: Option<LevelPolicy>) -> Vec<Vec<u8>> {
    let events: Vec<Vec<u8>> = (0..1000)
        .map(|i| set(&format!("k{}", i % 500), &i.to_string()))
        .collect();
    let engine = Engine::open(dir, options(policy)).expect("open");
    for chunk in events.chunks(100) {
        engine
            .append("s", chunk, Durability::Critical, None)
            .expect("append");
    }
    engine.checkpoints().sync().expect("build");
    engine.close().expect("close");
    events
}

/// Checks a view's whole state against the model's at `version`.
fn assert_state(view: &helios::View, states: &[BTreeMap<Vec<u8>, Vec<u8>>], version: usize) {
    let got: BTreeMap<Vec<u8>, Vec<u8>> =
        view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert_eq!(got, states[version], "at version {version}");
}

/// The most events a view of "s" replays, over versions across the history.
fn most_replayed(view: &dyn Fn(Version) -> helios::View) -> u64 {
    [999u64, 998, 810, 811, 543, 271, 89, 31]
        .into_iter()
        .map(|v| view(Version(v)).report().events_replayed)
        .max()
        .expect("versions")
}

#[test]
fn opens_that_name_no_policy_use_the_one_the_store_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = written_with(dir.path(), Some(custom()));
    let states = model_states(&events);

    // A reader told nothing, and one told the default: both read the recorded policy's
    // checkpoints (with the default's grid, a view at 999 replays 989 events).
    for told in [None, Some(LevelPolicy::default())] {
        let reader = ReadOnly::open(dir.path(), options(told)).expect("reader");
        assert_eq!(reader.checkpoints().policy(), custom(), "told {told:?}");
        let view = |v| reader.view("s", v).expect("view");
        assert!(most_replayed(&view) <= 9, "told {told:?}");
        assert_state(&view(Version(811)), &states, 811);
    }

    // `verify` judges the checkpoints' places by the recorded policy; by another, they are
    // misplaced.
    let report = helios::verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{:?}", report.findings);
    let other = helios::verify_with_policy(dir.path(), &LevelPolicy::default()).expect("verify");
    assert!(
        other
            .findings
            .iter()
            .any(|f| f.reason.contains("where the level policy")),
        "{:?}",
        other.findings
    );

    // A writer told nothing keeps the checkpoints: nothing to rebuild or build.
    let engine = Engine::open(dir.path(), options(None)).expect("reopen");
    assert_eq!(engine.checkpoints().policy(), custom());
    let report = engine.checkpoints().build().expect("build");
    assert_eq!((report.written, report.rebuilt), (0, 0), "{report:?}");
    let view = |v| engine.view("s", v).expect("view");
    assert!(most_replayed(&view) <= 9);
    engine.close().expect("close");
}

#[test]
fn a_writer_that_names_another_policy_rebuilds_under_it_and_readers_follow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = written_with(dir.path(), Some(custom()));
    let states = model_states(&events);

    let engine = Engine::open(dir.path(), options(Some(LevelPolicy::default()))).expect("open");
    assert_eq!(engine.checkpoints().policy(), LevelPolicy::default());
    let report = engine.checkpoints().build().expect("build");
    assert!(report.written + report.rebuilt > 0, "{report:?}");
    engine.close().expect("close");

    let reader = ReadOnly::open(dir.path(), options(Some(custom()))).expect("reader");
    assert_eq!(reader.checkpoints().policy(), LevelPolicy::default());
    let view = |v| reader.view("s", v).expect("view");
    assert!(most_replayed(&view) <= 9);
    assert_state(&view(Version(543)), &states, 543);
}

#[test]
fn a_store_without_a_record_is_read_with_the_options_policy_and_gets_one_from_its_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = written_with(dir.path(), Some(custom()));
    let states = model_states(&events);
    let record = dir.path().join("checkpoints").join("POLICY");
    std::fs::remove_file(&record).expect("remove the record");

    // As a store written before the record existed: the options' policy, else the default.
    let reader = ReadOnly::open(dir.path(), options(Some(custom()))).expect("reader");
    assert_eq!(reader.checkpoints().policy(), custom());
    let view = |v| reader.view("s", v).expect("view");
    assert!(most_replayed(&view) <= 9);
    let reader = ReadOnly::open(dir.path(), options(None)).expect("reader");
    assert_eq!(reader.checkpoints().policy(), LevelPolicy::default());
    assert_state(&reader.view("s", Version(999)).expect("view"), &states, 999);
    assert!(!record.exists(), "a reader wrote the record");

    let engine = Engine::open(dir.path(), options(Some(custom()))).expect("open");
    engine.close().expect("close");
    let reader = ReadOnly::open(dir.path(), options(None)).expect("reader");
    assert_eq!(reader.checkpoints().policy(), custom());
}

#[test]
fn a_damaged_record_is_reported_and_the_writer_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = written_with(dir.path(), Some(custom()));
    let states = model_states(&events);
    let record = dir.path().join("checkpoints").join("POLICY");
    let mut bytes = std::fs::read(&record).expect("read");
    bytes[20] ^= 0x01;
    std::fs::write(&record, &bytes).expect("damage");

    let reader = ReadOnly::open(dir.path(), options(None)).expect("reader");
    assert_eq!(reader.checkpoints().policy(), LevelPolicy::default());
    let damage = &reader.inspect().open_report().checkpoints.damage;
    assert!(
        damage
            .iter()
            .any(|d| d.contains("POLICY") && d.contains("checksum")),
        "{damage:?}"
    );
    assert_state(&reader.view("s", Version(999)).expect("view"), &states, 999);
    assert_eq!(
        std::fs::read(&record).expect("read"),
        bytes,
        "a reader wrote"
    );
    drop(reader);
    let report = helios::verify(dir.path()).expect("verify");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == record && f.reason.contains("checksum")),
        "{:?}",
        report.findings
    );

    let engine = Engine::open(dir.path(), options(Some(custom()))).expect("open");
    assert!(
        engine
            .inspect()
            .open_report()
            .checkpoints
            .damage
            .iter()
            .any(|d| d.contains("POLICY"))
    );
    engine.close().expect("close");
    let reader = ReadOnly::open(dir.path(), options(None)).expect("reader");
    assert_eq!(reader.checkpoints().policy(), custom());
    assert!(reader.inspect().open_report().checkpoints.damage.is_empty());
}
