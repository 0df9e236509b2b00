//! Views against the model: random histories, fanouts, level counts, delta styles, ranges and
//! prefixes (quickcheck), a sweep of every version of a deep hierarchy, and merge edge cases.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use helios_checkpoint::LevelPolicy;
use helios_replay::{Base, KvMachine, LayerInfo, MemRun, Overlay, View};
use quickcheck::{Gen, QuickCheck, TestResult};

use crate::support::{DeltaStyle, KEYS, PROBES, kv_history};

fn bound(kind: u8, key: &[u8]) -> Bound<&[u8]> {
    match kind % 3 {
        0 => Bound::Included(key),
        1 => Bound::Excluded(key),
        _ => Bound::Unbounded,
    }
}

fn in_bounds(key: &[u8], start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    let after_start = match start {
        Bound::Included(s) => key >= s,
        Bound::Excluded(s) => key > s,
        Bound::Unbounded => true,
    };
    let before_end = match end {
        Bound::Included(e) => key <= e,
        Bound::Excluded(e) => key < e,
        Bound::Unbounded => true,
    };
    after_start && before_end
}

fn owned<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries.map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

fn view_equals_model(
    ops: Vec<(u8, u8, u8)>,
    fanout: u8,
    levels: u8,
    version: u16,
    dirty: bool,
    ranges: Vec<(u8, u8, u8, u8)>,
    prefixes: Vec<u8>,
) -> TestResult {
    let policy = LevelPolicy::new(2 + u64::from(fanout % 5), 1 + u32::from(levels % 4))
        .expect("fanout 2..=6 and 1..=4 levels are valid");
    let history = kv_history(&ops);
    let version = u64::from(version) % (history.events.len() as u64 + 1);
    let style = if dirty {
        DeltaStyle::Dirty
    } else {
        DeltaStyle::Minimal
    };
    let view = history
        .view(&KvMachine, policy, version, style)
        .expect("kv events are valid");
    let model = history.state(version);

    // The view reads exactly the layers the policy names, and replays fewer than `fanout`.
    let (layers, replayed) = policy.layers(version);
    let report = view.report();
    assert_eq!(report.events_replayed, replayed);
    assert!(report.events_replayed < policy.first_interval());
    let reported: Vec<LayerInfo> = report.layers.iter().map(|layer| layer.info).collect();
    let expected: Vec<LayerInfo> = layers.into_iter().map(LayerInfo::from).collect();
    assert_eq!(reported, expected);

    let points: Vec<&[u8]> = KEYS.iter().chain(PROBES.iter()).copied().collect();
    for key in &points {
        assert_eq!(
            view.get(key),
            model.get(*key).map(Vec::as_slice),
            "get {key:?} at version {version}"
        );
    }
    let expected_all: Vec<(Vec<u8>, Vec<u8>)> =
        model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(
        owned(view.iter()),
        expected_all,
        "iter at version {version}"
    );
    assert_eq!(&view.to_map(), model);
    assert_eq!(owned((&view).into_iter()), expected_all);

    for (start_kind, start, end_kind, end) in ranges {
        let start = bound(start_kind, points[usize::from(start) % points.len()]);
        let end = bound(end_kind, points[usize::from(end) % points.len()]);
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| in_bounds(k, start, end))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(
            owned(view.range(start, end)),
            expected,
            "range {start:?}..{end:?}"
        );
    }
    for prefix in prefixes {
        let prefix = points[usize::from(prefix) % points.len()];
        let expected: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(owned(view.prefix(prefix)), expected, "prefix {prefix:?}");
    }
    TestResult::passed()
}

#[test]
fn views_equal_the_model_at_every_version() {
    type Property =
        fn(Vec<(u8, u8, u8)>, u8, u8, u16, bool, Vec<(u8, u8, u8, u8)>, Vec<u8>) -> TestResult;
    for seed in [1, 2] {
        QuickCheck::new()
            .tests(250)
            .rng(Gen::from_size_and_seed(300, seed))
            .quickcheck(view_equals_model as Property);
    }
}

#[test]
fn deep_hierarchies_cover_every_version() {
    // Deterministic sweep: every version of one history, three levels of fanout 3, both
    // delta styles, so every combination of skipped levels is read at least once.
    let ops: Vec<(u8, u8, u8)> = (0..120u8)
        .map(|i| (i % 7, i.wrapping_mul(5) % 11, i % 5))
        .collect();
    let history = kv_history(&ops);
    let policy = LevelPolicy::new(3, 3).expect("valid");
    for style in [DeltaStyle::Minimal, DeltaStyle::Dirty] {
        for version in 0..=history.events.len() as u64 {
            let view = history
                .view(&KvMachine, policy, version, style)
                .expect("valid");
            assert_eq!(&view.to_map(), history.state(version), "version {version}");
        }
    }
}

#[test]
fn merge_edge_cases_through_views() {
    fn full(entries: &[(&str, &str)]) -> Arc<MemRun> {
        Arc::new(
            entries
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec())))
                .collect(),
        )
    }

    // All layers empty, and an empty overlay.
    let base = Base::new()
        .with_layer_below(LayerInfo::new(1, 30), full(&[]))
        .with_layer_below(LayerInfo::new(2, 0), full(&[]));
    let view = View::new(base, Overlay::new());
    assert_eq!(view.iter().next(), None);
    assert_eq!(view.get(b"a"), None);

    // A key deleted in an upper layer and put again in the overlay; a tombstone in the
    // overlay over a full-layer value.
    let mut delta = MemRun::new();
    delta.delete(b"k");
    delta.put(b"m", b"delta");
    let base = Base::new()
        .with_layer_below(LayerInfo::new(1, 20), Arc::new(delta))
        .with_layer_below(
            LayerInfo::new(2, 0),
            full(&[("k", "full"), ("m", "full"), ("z", "full")]),
        );
    assert_eq!(
        View::new(base.clone(), Overlay::new()).to_map(),
        BTreeMap::from([
            (b"m".to_vec(), b"delta".to_vec()),
            (b"z".to_vec(), b"full".to_vec()),
        ])
    );
    let view =
        View::replay(&KvMachine, base, ["set k again", "del z", "del nothing"]).expect("valid");
    assert_eq!(view.get(b"k"), Some(&b"again"[..]));
    assert_eq!(view.get(b"z"), None);
    assert_eq!(view.get(b"nothing"), None);
    assert_eq!(
        owned(view.iter()),
        vec![
            (b"k".to_vec(), b"again".to_vec()),
            (b"m".to_vec(), b"delta".to_vec()),
        ]
    );
    assert_eq!(
        view.range(Bound::Excluded(b"k"), Bound::Unbounded).count(),
        1
    );
}
