//! The key-value workload of the random-access read bench (`benches/checkpoint_reads`) and of
//! `helios tune --workload uniform`: one stream of key-value events over a fixed key space,
//! generated from a seed, with every key's history kept as the reference answer.
//!
//! - [`KvWorkload`]: each event changes 1 to `keys_per_event_max` distinct keys (one
//!   `set KEY VALUE` or `del KEY` line per key, lines joined by `\n`); values are 32 hex
//!   characters; keys are `k0000042`. About 3% of the changes delete a live key and about 3%
//!   put back a deleted one. [`KvWorkload::generate_loaded`] starts with one event that sets
//!   many keys at once (a bulk import), for a state that holds that many keys throughout. The
//!   value of any key at any version is one binary search away ([`KvWorkload::value_at`]).
//! - [`KvBatchMachine`]: the state machine for those events (the built-in
//!   [`helios::KvMachine`] takes one line per event; this one applies each line of an event
//!   the same way). [`lines`] splits events into the built-in machine's events, so that
//!   `helios::kv::fold(lines(events))` is their state from scratch.
//!
//! The peers that read this workload (replay from the start, snapshots) are in `helios-peers`.

use std::collections::BTreeMap;

use helios::kv::{self, KvEvent};
use helios::{Rejected, StateHandle, StateMachine};

use crate::Rng;

/// Length of every value, in bytes (hex characters).
pub const VALUE_LEN: usize = 32;

/// Digits of a key's number at least (`k0000042`); more when the key space needs them.
const KEY_DIGITS_MIN: usize = 7;

/// Percent of changes that delete a live key.
const DELETE_PERCENT: u64 = 3;

/// Percent of changes that put back a key deleted earlier (when there is one).
const REPUT_PERCENT: u64 = 3;

/// One state: every key and value, in key order.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// A deterministic key-value event stream over `keys_count` keys, with every key's history.
#[derive(Clone, Debug)]
pub struct KvWorkload {
    keys_count: u64,
    key_digits: usize,
    /// Event `i` (0-based) is version `i + 1`.
    events: Vec<Vec<u8>>,
    /// Per key index, the versions that changed it, ascending, with the value from then on
    /// (`None`: deleted). Within one event a key changes at most once.
    history: Vec<Vec<(u64, Option<[u8; VALUE_LEN]>)>>,
}

impl KvWorkload {
    /// Generates `events_count` events over `keys_count` keys, each changing 1 to
    /// `keys_per_event_max` distinct keys, from `seed`. The state starts empty.
    ///
    /// # Panics
    /// If `keys_count` is 0, if `keys_per_event_max` is 0 or above `keys_count`, or if the key
    /// space does not fit in memory indices.
    #[must_use]
    pub fn generate(
        events_count: u64,
        keys_count: u64,
        keys_per_event_max: u64,
        seed: u64,
    ) -> KvWorkload {
        KvWorkload::generate_loaded(0, events_count, keys_count, keys_per_event_max, seed)
    }

    /// As [`KvWorkload::generate`], after a first event that sets keys `0..initial_keys` (one
    /// `set` line each: a bulk import): the stream has `events_count + 1` events when
    /// `initial_keys > 0`, and its state holds about `initial_keys` keys throughout.
    ///
    /// # Panics
    /// As [`KvWorkload::generate`], and if `initial_keys` is above `keys_count`.
    #[must_use]
    pub fn generate_loaded(
        initial_keys: u64,
        events_count: u64,
        keys_count: u64,
        keys_per_event_max: u64,
        seed: u64,
    ) -> KvWorkload {
        assert!(keys_count > 0, "the workload needs at least one key");
        assert!(
            initial_keys <= keys_count,
            "initial keys must be at most {keys_count}, got {initial_keys}"
        );
        assert!(
            (1..=keys_count).contains(&keys_per_event_max),
            "keys per event must be in 1..={keys_count}, got {keys_per_event_max}"
        );
        let keys_len = usize::try_from(keys_count).expect("the key space fits in memory");
        let key_digits = (keys_count - 1).to_string().len().max(KEY_DIGITS_MIN);
        let mut rng = Rng::new(seed);
        let mut history: Vec<Vec<(u64, Option<[u8; VALUE_LEN]>)>> = vec![Vec::new(); keys_len];
        // Live keys, for picking one to delete in O(1): `live[live_slot[k]] == k`.
        let mut live: Vec<u64> = Vec::new();
        let mut live_slot: Vec<usize> = vec![usize::MAX; keys_len];
        // Keys deleted and not put back since, for re-puts.
        let mut deleted: Vec<u64> = Vec::new();

        let mut events = Vec::with_capacity(usize::try_from(events_count + 1).unwrap_or(0));
        let mut event = Vec::new();
        if initial_keys > 0 {
            for key in 0..initial_keys {
                let value = random_value(&mut rng);
                let index = key_index(key);
                live_slot[index] = live.len();
                live.push(key);
                history[index].push((1, Some(value)));
                if !event.is_empty() {
                    event.push(b'\n');
                }
                let key_bytes = format_key(key, key_digits);
                event.extend_from_slice(&kv::encode(&KvEvent::Set {
                    key: &key_bytes,
                    value: &value,
                }));
            }
            events.push(std::mem::take(&mut event));
        }
        let first_version = events.len() as u64 + 1;
        let mut touched: Vec<u64> = Vec::new();
        for version in first_version..first_version + events_count {
            let changes = 1 + rng.below(keys_per_event_max);
            touched.clear();
            event.clear();
            while (touched.len() as u64) < changes {
                let roll = rng.below(100);
                let (key, value) = if roll < DELETE_PERCENT && !live.is_empty() {
                    (live[rng.index(live.len())], None)
                } else if roll < DELETE_PERCENT + REPUT_PERCENT && !deleted.is_empty() {
                    (
                        deleted[rng.index(deleted.len())],
                        Some(random_value(&mut rng)),
                    )
                } else {
                    (rng.below(keys_count), Some(random_value(&mut rng)))
                };
                if touched.contains(&key) {
                    continue;
                }
                touched.push(key);
                let index = key_index(key);
                match value {
                    Some(_) if live_slot[index] == usize::MAX => {
                        live_slot[index] = live.len();
                        live.push(key);
                        if let Some(at) = deleted.iter().position(|&k| k == key) {
                            deleted.swap_remove(at);
                        }
                    }
                    Some(_) => {}
                    None => {
                        let slot = live_slot[index];
                        live.swap_remove(slot);
                        if let Some(&moved) = live.get(slot) {
                            live_slot[key_index(moved)] = slot;
                        }
                        live_slot[index] = usize::MAX;
                        deleted.push(key);
                    }
                }
                history[index].push((version, value));
                if !event.is_empty() {
                    event.push(b'\n');
                }
                let key_bytes = format_key(key, key_digits);
                let line = match &value {
                    Some(value) => kv::encode(&KvEvent::Set {
                        key: &key_bytes,
                        value,
                    }),
                    None => kv::encode(&KvEvent::Del { key: &key_bytes }),
                };
                event.extend_from_slice(&line);
            }
            events.push(event.clone());
        }
        KvWorkload {
            keys_count,
            key_digits,
            events,
            history,
        }
    }

    /// The events; event `i` is version `i + 1`.
    #[must_use]
    pub fn events(&self) -> &[Vec<u8>] {
        &self.events
    }

    /// Number of events (the last version).
    #[must_use]
    pub fn events_count(&self) -> u64 {
        self.events.len() as u64
    }

    /// Number of keys in the key space.
    #[must_use]
    pub fn keys_count(&self) -> u64 {
        self.keys_count
    }

    /// The bytes of key number `index` (`k0000042`).
    #[must_use]
    pub fn key(&self, index: u64) -> Vec<u8> {
        format_key(index, self.key_digits)
    }

    /// Reference answer: the value of key number `index` at `version`, from the key's
    /// history.
    #[must_use]
    pub fn value_at(&self, index: u64, version: u64) -> Option<&[u8]> {
        let changes = &self.history[key_index(index)];
        let after = changes.partition_point(|&(v, _)| v <= version);
        let (_, value) = changes.get(after.checked_sub(1)?)?;
        value.as_ref().map(<[u8; VALUE_LEN]>::as_slice)
    }

    /// Total changes (lines) over all events.
    #[must_use]
    pub fn changes_count(&self) -> u64 {
        self.history.iter().map(|h| h.len() as u64).sum()
    }

    /// Number of keys present at the last version.
    #[must_use]
    pub fn live_keys_at_end(&self) -> u64 {
        self.history
            .iter()
            .filter(|h| h.last().is_some_and(|(_, value)| value.is_some()))
            .count() as u64
    }
}

fn random_value(rng: &mut Rng) -> [u8; VALUE_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut value = [0u8; VALUE_LEN];
    for chunk in value.chunks_mut(16) {
        let mut bits = rng.next_u64();
        for byte in chunk {
            *byte = HEX[usize::from((bits & 0xf) as u8)];
            bits >>= 4;
        }
    }
    value
}

fn format_key(index: u64, digits: usize) -> Vec<u8> {
    format!("k{index:0digits$}").into_bytes()
}

/// A key number as an index into per-key vectors (key numbers are below the key count, which
/// was checked to fit in `usize`).
fn key_index(key: u64) -> usize {
    usize::try_from(key).expect("key numbers fit in usize")
}

/// The state machine of [`KvWorkload`] events: every `\n`-separated line of an event is a
/// [`helios::kv`] event (`set KEY VALUE` or `del KEY`), applied in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvBatchMachine;

impl KvBatchMachine {
    /// The machine's name in reports and errors.
    pub const NAME: &'static str = "kv-batch";
}

impl StateMachine for KvBatchMachine {
    fn name(&self) -> &str {
        KvBatchMachine::NAME
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        for line in event.split(|&b| b == b'\n') {
            match kv::parse(line).map_err(|error| Rejected::new(error.to_string()))? {
                KvEvent::Set { key, value } => state.put(key, value),
                KvEvent::Del { key } => state.delete(key),
            }
        }
        Ok(())
    }
}

/// The lines of `events` ([`KvBatchMachine`] events), in order: each one an event of the
/// built-in key-value machine, as `helios::kv::fold` takes them.
pub fn lines<E: AsRef<[u8]>>(events: &[E]) -> impl Iterator<Item = &[u8]> {
    events
        .iter()
        .flat_map(|event| event.as_ref().split(|&b| b == b'\n'))
}

#[cfg(test)]
mod tests {
    use helios::{Engine, Version};

    use super::*;

    /// The state at `version`, folded from the first event with the reference fold.
    fn fold(workload: &KvWorkload, version: u64) -> State {
        let events = &workload.events()[..usize::try_from(version).expect("a small version")];
        helios::kv::fold(lines(events)).expect("workload events parse")
    }

    #[test]
    fn workload_is_deterministic_and_matches_its_history() {
        let a = KvWorkload::generate(2_000, 300, 4, 7);
        let b = KvWorkload::generate(2_000, 300, 4, 7);
        assert_eq!(a.events(), b.events());
        assert_eq!(a.key(42), b"k0000042");
        // Every event changes 1 to 4 keys.
        for event in a.events() {
            let lines = event.split(|&b| b == b'\n').count();
            assert!((1..=4).contains(&lines), "{lines} lines");
        }
        // Deletes and re-puts both happen.
        let text = a.events().concat();
        assert!(text.windows(4).any(|w| w == b"del "));
        // The history answers what a fold from the start answers, at several versions.
        for version in [0, 1, 17, 999, 1_000, 2_000] {
            let state = fold(&a, version);
            for index in 0..a.keys_count() {
                let key = a.key(index);
                assert_eq!(
                    state.get(&key).map(Vec::as_slice),
                    a.value_at(index, version),
                    "key {index} at {version}"
                );
            }
        }
        assert_eq!(a.live_keys_at_end(), fold(&a, 2_000).len() as u64);
    }

    #[test]
    fn a_loaded_workload_starts_with_the_import() {
        let workload = KvWorkload::generate_loaded(50, 100, 60, 3, 9);
        assert_eq!(workload.events_count(), 101);
        assert_eq!(lines(&workload.events()[..1]).count(), 50);
        for index in 0..50 {
            assert!(workload.value_at(index, 1).is_some(), "key {index}");
        }
        assert_eq!(workload.value_at(50, 1), None);
    }

    #[test]
    fn machine_applies_like_the_fold() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let workload = KvWorkload::generate(300, 50, 4, 3);
        let engine = Engine::builder(dir.path())
            .state_machine(KvBatchMachine)
            .open()
            .expect("open");
        engine
            .append("s", workload.events(), helios::Durability::Normal, None)
            .expect("append");
        for version in [1, 150, 300] {
            let view = engine.view("s", Version(version)).expect("view");
            assert_eq!(view.to_map(), fold(&workload, version), "version {version}");
        }
    }
}
