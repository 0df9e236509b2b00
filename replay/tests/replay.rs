//! Views built exactly as the checkpoint hierarchy builds them, checked against a `BTreeMap`
//! model; isolation of failing events; the typed `BankAccount` example; merge edge cases.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use helios_checkpoint::LevelPolicy;
use helios_replay::kv::{self, KvEvent};
use helios_replay::{
    Aggregate, AggregateMachine, Base, KvMachine, LayerInfo, MemRun, Overlay, Rejected,
    ReplayError, StateHandle, StateMachine, View, encode_event, load_aggregate, replay,
};
use quickcheck::{Gen, QuickCheck, TestResult};

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A small key space, so that events collide; keys share prefixes and end in `0xFF` bytes to
/// exercise prefix bounds.
const KEYS: [&[u8]; 8] = [
    b"a",
    b"ab",
    b"abc",
    b"b",
    b"ba",
    b"\xff",
    b"\xff\xff",
    b"\xffa",
];
/// Keys never written, read to check absence, and used with `KEYS` as range bounds and
/// prefixes.
const PROBES: [&[u8]; 7] = [b"", b"0", b"aa", b"abd", b"c", b"\xfe", b"\xff\xff\xff"];
const VALUES: [&[u8]; 4] = [b"", b"1", b"2", b"two words"];

/// How checkpoint deltas are built.
#[derive(Clone, Copy, Debug)]
enum DeltaStyle {
    /// Only keys whose value differs from the checkpoint above.
    Minimal,
    /// Every key an event touched since the checkpoint above, as the writer's dirty-key
    /// tracking produces: may hold values equal to the ones above and tombstones of keys
    /// absent above.
    Dirty,
}

/// A stream's history with its reference state at every version, built independently of the
/// crate under test.
struct History {
    events: Vec<Vec<u8>>,
    /// `states[v]` is the state after the first `v` events.
    states: Vec<State>,
    /// `touched[v - 1]` is the key event `v` wrote, when known.
    touched: Vec<Option<Vec<u8>>>,
}

impl History {
    /// The state at `version`.
    fn state(&self, version: u64) -> &State {
        &self.states[usize::try_from(version).expect("test versions fit in usize")]
    }

    /// The checkpoint of `level` at `version`, as the hierarchy stores it: a full state at the
    /// top level and at the anchor, else a cumulative delta against its base (the checkpoint
    /// of the level above, or the anchor in the first window).
    fn checkpoint(
        &self,
        policy: LevelPolicy,
        level: u32,
        version: u64,
        style: DeltaStyle,
    ) -> MemRun {
        let state = self.state(version);
        let above_version = policy.base_of(version, level);
        if above_version == 0 {
            return state
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
        }
        let above = self.state(above_version);
        let keys: BTreeSet<Vec<u8>> = match style {
            DeltaStyle::Minimal => state
                .iter()
                .filter(|(k, v)| above.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .chain(above.keys().filter(|k| !state.contains_key(*k)).cloned())
                .collect(),
            DeltaStyle::Dirty => {
                let start = usize::try_from(above_version).expect("fits");
                let end = usize::try_from(version).expect("fits");
                self.touched[start..end]
                    .iter()
                    .map(|key| key.clone().expect("dirty deltas need touched keys"))
                    .collect()
            }
        };
        keys.into_iter()
            .map(|k| {
                let value = state.get(&k).cloned();
                (k, value)
            })
            .collect()
    }

    /// The view at `version` as the engine reads it: the layers the policy names, then the
    /// events after the finest one replayed through `machine`.
    fn view(
        &self,
        machine: &dyn StateMachine,
        policy: LevelPolicy,
        version: u64,
        style: DeltaStyle,
    ) -> Result<View, ReplayError> {
        let (layers, replayed) = policy.layers(version);
        let mut base = Base::new();
        for layer in &layers {
            base.push_below(
                LayerInfo::from(*layer),
                Arc::new(self.checkpoint(policy, layer.level, layer.base, style)),
            );
        }
        let first = usize::try_from(version - replayed).expect("fits");
        let last = usize::try_from(version).expect("fits");
        View::replay(machine, base, &self.events[first..last])
    }
}

/// A key-value history from random `(op, key, value)` triples: three sets for one delete.
fn kv_history(ops: &[(u8, u8, u8)]) -> History {
    let mut events = Vec::with_capacity(ops.len());
    let mut touched = Vec::with_capacity(ops.len());
    for &(op, key, value) in ops {
        let key = KEYS[usize::from(key) % KEYS.len()];
        let event = if op % 4 == 3 {
            KvEvent::Del { key }
        } else {
            KvEvent::Set {
                key,
                value: VALUES[usize::from(value) % VALUES.len()],
            }
        };
        events.push(kv::encode(&event));
        touched.push(Some(key.to_vec()));
    }
    // The reference: `kv::fold`, independent of views and replay.
    let states = (0..=events.len())
        .map(|v| kv::fold(events[..v].iter().map(Vec::as_slice)).expect("valid events"))
        .collect();
    History {
        events,
        states,
        touched,
    }
}

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
    assert!(report.events_replayed < policy.fanout());
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

/// The kv machine, except that it panics on `set boom ...`.
struct Fragile;

impl StateMachine for Fragile {
    fn name(&self) -> &str {
        "fragile"
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        KvMachine.apply(event, state)?;
        // The panic comes after the machine wrote through the handle.
        assert!(!event.starts_with(b"set boom "), "boom");
        Ok(())
    }
}

#[test]
fn failing_events_leave_the_view_unchanged() {
    let ops: Vec<(u8, u8, u8)> = (0..20u8).map(|i| (i % 4, i % 8, i)).collect();
    let history = kv_history(&ops);
    let policy = LevelPolicy::new(4, 2).expect("valid");
    let view = history
        .view(&Fragile, policy, 18, DeltaStyle::Minimal)
        .expect("valid");
    let before = view.to_map();
    let base = view.base().clone();
    let mut overlay = view.overlay().clone();

    // A rejected event: the overlay, and so the view, is as before, and the error says which
    // event and why.
    let error =
        replay(&Fragile, &base, &mut overlay, ["set a 9", "del"]).expect_err("`del` without a key");
    assert_eq!(
        error,
        ReplayError::Rejected {
            event_index: 1,
            machine: "fragile".into(),
            reason: Rejected::new(kv::KvError::UnknownCommand.to_string()),
        }
    );
    let mut expected = before.clone();
    expected.insert(b"a".to_vec(), b"9".to_vec());
    assert_eq!(View::new(base.clone(), overlay.clone()).to_map(), expected);

    // A panic after the machine wrote: nothing of the event is kept.
    let error = replay(&Fragile, &base, &mut overlay, ["set boom 1"]).expect_err("panics");
    let ReplayError::Panicked {
        event_index,
        machine,
        message,
    } = &error
    else {
        panic!("expected a panic error, got {error}");
    };
    assert_eq!((*event_index, machine.as_str()), (0, "fragile"));
    assert_eq!(message, "boom");
    let after = View::new(base, overlay);
    assert_eq!(after.to_map(), expected);
    assert_eq!(after.get(b"boom"), None);
    assert_eq!(after.report().events_replayed, 3);
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

/// The typed example: deposits and withdrawals, overdrafts rejected.
#[derive(Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
struct BankAccount {
    balance: u64,
    transactions_count: u32,
}

#[derive(Clone, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
enum AccountEvent {
    Deposited { amount: u64 },
    Withdrew { amount: u64 },
}

impl Aggregate for BankAccount {
    type Event = AccountEvent;

    fn name() -> &'static str {
        "bank-account"
    }

    fn apply(&mut self, event: &AccountEvent) -> Result<(), Rejected> {
        self.transactions_count += 1;
        match *event {
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrew { amount } => {
                self.balance = self.balance.checked_sub(amount).ok_or_else(|| {
                    Rejected::new(format!(
                        "overdraft: balance {}, withdrawal {amount}",
                        self.balance
                    ))
                })?;
            }
        }
        Ok(())
    }
}

/// A history of valid account events and the balance after each.
fn account_history() -> (History, Vec<u64>) {
    let mut balances = vec![0];
    let mut events = Vec::new();
    for i in 0..40u64 {
        let balance = balances[balances.len() - 1];
        let event = if i % 3 == 2 && balance >= 7 * i / 2 {
            AccountEvent::Withdrew { amount: 7 * i / 2 }
        } else {
            AccountEvent::Deposited { amount: i + 1 }
        };
        balances.push(match event {
            AccountEvent::Deposited { amount } => balance + amount,
            AccountEvent::Withdrew { amount } => balance - amount,
        });
        events.push(encode_event::<BankAccount>(&event).expect("archivable"));
    }
    // Checkpoint contents come from replaying from scratch; what is checked below is the
    // balance, computed above without the crate.
    let machine = AggregateMachine::<BankAccount>::new();
    let states = (0..=events.len())
        .map(|v| {
            View::replay(&machine, Base::new(), &events[..v])
                .expect("valid")
                .to_map()
        })
        .collect();
    let touched = vec![None; events.len()];
    (
        History {
            events,
            states,
            touched,
        },
        balances,
    )
}

#[test]
fn bank_account_balance_at_every_version() {
    let (history, balances) = account_history();
    let machine = AggregateMachine::<BankAccount>::new();
    let policy = LevelPolicy::new(3, 2).expect("valid");
    for (version, &balance) in (0u64..).zip(&balances) {
        let view = history
            .view(&machine, policy, version, DeltaStyle::Minimal)
            .expect("valid");
        let account = load_aggregate::<BankAccount>(&view).expect("a valid archive");
        assert_eq!(
            account,
            BankAccount {
                balance,
                transactions_count: u32::try_from(version).expect("small"),
            },
            "version {version}"
        );
        assert!(view.report().events_replayed < 3);
    }
}

#[test]
fn bank_account_overdraft_is_rejected_and_changes_nothing() {
    let (history, balances) = account_history();
    let machine = AggregateMachine::<BankAccount>::new();
    let policy = LevelPolicy::new(3, 2).expect("valid");
    let view = history
        .view(&machine, policy, 20, DeltaStyle::Minimal)
        .expect("valid");
    let mut overlay = view.overlay().clone();
    let overdraft = balances[20] + 1;
    let events = [
        encode_event::<BankAccount>(&AccountEvent::Deposited { amount: 0 }).expect("archivable"),
        encode_event::<BankAccount>(&AccountEvent::Withdrew { amount: overdraft })
            .expect("archivable"),
    ];
    let error = replay(&machine, view.base(), &mut overlay, &events).expect_err("overdraft");
    assert_eq!(
        error.to_string(),
        format!(
            "state machine `bank-account` rejected event 1 of the replay: \
             overdraft: balance {}, withdrawal {overdraft}",
            balances[20]
        )
    );
    let after = View::new(view.base().clone(), overlay);
    let account = load_aggregate::<BankAccount>(&after).expect("valid");
    assert_eq!(account.balance, balances[20]);
    assert_eq!(account.transactions_count, 21, "the zero deposit was kept");
}
