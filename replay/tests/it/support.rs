//! The reference the integration tests check views against: a stream's history with its
//! state at every version, and its checkpoints built as the hierarchy builds them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use helios_checkpoint::LevelPolicy;
use helios_replay::kv::{self, KvEvent};
use helios_replay::{Base, LayerInfo, MemRun, ReplayError, StateMachine, View};

/// A stream's state: its keys and their values.
pub(crate) type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A small key space, so that events collide; keys share prefixes and end in `0xFF` bytes to
/// exercise prefix bounds.
pub(crate) const KEYS: [&[u8]; 8] = [
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
pub(crate) const PROBES: [&[u8]; 7] = [b"", b"0", b"aa", b"abd", b"c", b"\xfe", b"\xff\xff\xff"];
const VALUES: [&[u8]; 4] = [b"", b"1", b"2", b"two words"];

/// How checkpoint deltas are built.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DeltaStyle {
    /// Only keys whose value differs from the checkpoint above.
    Minimal,
    /// Every key an event touched since the checkpoint above, as the writer's dirty-key
    /// tracking produces: may hold values equal to the ones above and tombstones of keys
    /// absent above.
    Dirty,
}

/// A stream's history with its reference state at every version, built independently of the
/// crate under test.
pub(crate) struct History {
    /// The events, oldest first: event `v` is `events[v - 1]`.
    pub(crate) events: Vec<Vec<u8>>,
    /// `states[v]` is the state after the first `v` events.
    pub(crate) states: Vec<State>,
    /// `touched[v - 1]` is the key event `v` wrote, when known.
    pub(crate) touched: Vec<Option<Vec<u8>>>,
}

impl History {
    /// The state at `version`.
    pub(crate) fn state(&self, version: u64) -> &State {
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
    pub(crate) fn view(
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
pub(crate) fn kv_history(ops: &[(u8, u8, u8)]) -> History {
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
