//! The many-stream workload of classic event sourcing (the `many_streams` bench): many short
//! streams, each a small key-value aggregate, appended to in a random interleaving.
//!
//! [`ManyStreams`] names a run: `streams` streams (`order-000000`, `order-000001`, ...) of
//! `events_per_stream` events each, over `keys_per_stream` keys per stream (`k0`..`k7` by
//! default), from a seed. Each event is one text event of the built-in key-value machine
//! ([`helios::KvMachine`]): `set kN VALUE` with a value of [`VALUE_LEN_MIN`] to
//! [`VALUE_LEN_MAX`] bytes, or, one time in [`DELETE_ONE_IN`], `del kN` (which may delete a key
//! that is already absent: the machine accepts it and nothing changes). The order of all events
//! is a seeded shuffle that keeps each stream's own events in version order ([`Cursor`]).
//!
//! Invariants:
//!
//! - a stream's events depend only on the seed and the stream's index, never on the
//!   interleaving, so [`ManyStreams::stream_events`] regenerates any stream on its own and
//!   [`ManyStreams::state_at`] gives the reference state of any stream at any version (the
//!   reference fold, [`helios::kv::fold`], over its first events);
//! - the [`Cursor`] yields every event exactly once, each stream's events in version order
//!   (versions 1, 2, ... in the order they come), and the same sequence for the same
//!   configuration on every machine.

use std::collections::BTreeMap;
use std::fmt;

use helios::Version;
use helios::kv::{self, KvEvent};

use crate::Rng;

/// Shortest value a `set` event writes, in bytes.
pub const VALUE_LEN_MIN: usize = 40;
/// Longest value a `set` event writes, in bytes.
pub const VALUE_LEN_MAX: usize = 60;
/// One event in this many deletes a key instead of setting one.
pub const DELETE_ONE_IN: u64 = 10;
/// Events of every stream, by default.
pub const DEFAULT_EVENTS_PER_STREAM: u32 = 50;
/// Keys of every stream, by default (`k0`..`k7`).
pub const DEFAULT_KEYS_PER_STREAM: u32 = 8;
/// Prefix of every stream name (`order-000123`).
pub const STREAM_PREFIX: &str = "order-";
/// Digits of a stream's number at least (`order-000123`); more when the count needs them.
const STREAM_DIGITS_MIN: usize = 6;
/// Added to the seed before the per-stream seeds are drawn, so that the streams' sequences
/// and the shuffle's (drawn from the seed itself) are not the same splitmix64 sequence.
const STREAM_SEED_SALT: u64 = 0x6d61_6e79_2d73_7472;

/// The bytes a value is made of: printable, without spaces or newlines, so that every event
/// is one line that `helios append` could have written.
const VALUE_ALPHABET: &[u8; 64] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";

/// A stream of the workload, by its index (`0..streams`): `order-{index:06}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamIndex(pub u32);

/// One state: every key and value, in key order (what [`helios::Engine::state_at`] returns).
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// The many-stream workload's configuration; every event follows from it (see the module
/// documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManyStreams {
    /// Number of streams.
    pub streams: u32,
    /// Events of every stream.
    pub events_per_stream: u32,
    /// Keys of every stream (`k0`, `k1`, ...).
    pub keys_per_stream: u32,
    /// The seed of every random choice.
    pub seed: u64,
}

impl fmt::Display for ManyStreams {
    /// The name a bench prints for a run:
    /// `ManyStreams { streams: 100000, events_per_stream: 50, keys_per_stream: 8, seed: 0x... }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ManyStreams {{ streams: {}, events_per_stream: {}, keys_per_stream: {}, seed: {:#x} }}",
            self.streams, self.events_per_stream, self.keys_per_stream, self.seed
        )
    }
}

impl ManyStreams {
    /// `streams` streams of [`DEFAULT_EVENTS_PER_STREAM`] events over
    /// [`DEFAULT_KEYS_PER_STREAM`] keys each, from `seed`.
    #[must_use]
    pub fn new(streams: u32, seed: u64) -> ManyStreams {
        ManyStreams {
            streams,
            events_per_stream: DEFAULT_EVENTS_PER_STREAM,
            keys_per_stream: DEFAULT_KEYS_PER_STREAM,
            seed,
        }
    }

    /// Events over all streams.
    #[must_use]
    pub fn events_count(&self) -> u64 {
        u64::from(self.streams) * u64::from(self.events_per_stream)
    }

    /// Every stream, in index order.
    pub fn stream_indices(&self) -> impl Iterator<Item = StreamIndex> + use<> {
        (0..self.streams).map(StreamIndex)
    }

    /// The name of `stream`: `order-000123` (more digits when there are more than a million
    /// streams).
    #[must_use]
    pub fn stream_name(&self, stream: StreamIndex) -> String {
        let digits = self
            .streams
            .saturating_sub(1)
            .to_string()
            .len()
            .max(STREAM_DIGITS_MIN);
        format!("{STREAM_PREFIX}{:0digits$}", stream.0)
    }

    /// Every stream's name, by index: what the benches look names up in, so that no name is
    /// formatted inside a timed loop.
    #[must_use]
    pub fn stream_names(&self) -> Vec<String> {
        self.stream_indices().map(|s| self.stream_name(s)).collect()
    }

    /// The name of key number `key` (`k0`..`k7`).
    #[must_use]
    pub fn key_name(key: u32) -> Vec<u8> {
        format!("k{key}").into_bytes()
    }

    /// The events of `stream`, in version order: event `i` is version `i + 1`.
    ///
    /// # Panics
    /// If `stream` is not below [`ManyStreams::streams`].
    #[must_use]
    pub fn stream_events(&self, stream: StreamIndex) -> Vec<Vec<u8>> {
        assert!(
            stream.0 < self.streams,
            "stream {} is not below the workload's {} streams",
            stream.0,
            self.streams
        );
        let mut rng = self.stream_rng(stream);
        (0..self.events_per_stream)
            .map(|_| {
                let mut event = Vec::new();
                self.next_event(&mut rng, &mut event);
                event
            })
            .collect()
    }

    /// Reference answer: the state of `stream` at `version` (0 is the empty state), folded by
    /// the reference fold from the stream's first `version` events.
    ///
    /// # Panics
    /// If `stream` is out of range or `version` is past [`ManyStreams::events_per_stream`].
    #[must_use]
    pub fn state_at(&self, stream: StreamIndex, version: Version) -> State {
        assert!(
            version.0 <= u64::from(self.events_per_stream),
            "version {} is past the {} events of a stream",
            version.0,
            self.events_per_stream
        );
        let events = self.stream_events(stream);
        let upto = usize::try_from(version.0).expect("a version below events_per_stream");
        kv::fold(events[..upto].iter().map(Vec::as_slice))
            .expect("the workload's events are key-value events")
    }

    /// A cursor over every event in the run's order (the seeded shuffle).
    #[must_use]
    pub fn cursor(&self) -> Cursor {
        Cursor::new(*self)
    }

    /// The generator of `stream`'s events, from the seed and the stream's index only.
    fn stream_rng(&self, stream: StreamIndex) -> Rng {
        let mut seeder = Rng::new(
            self.seed
                .wrapping_add(STREAM_SEED_SALT)
                .wrapping_add(u64::from(stream.0)),
        );
        Rng::new(seeder.next_u64())
    }

    /// Appends the next event of a stream whose generator is `rng` to `out`.
    fn next_event(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        let key = Self::key_name(
            u32::try_from(rng.below(u64::from(self.keys_per_stream)))
                .expect("a key below keys_per_stream"),
        );
        if rng.chance(1, DELETE_ONE_IN) {
            out.extend_from_slice(&kv::encode(&KvEvent::Del { key: &key }));
            return;
        }
        let spread = (VALUE_LEN_MAX - VALUE_LEN_MIN + 1) as u64;
        let len = VALUE_LEN_MIN + rng.index(usize::try_from(spread).expect("a small spread"));
        let mut value = Vec::with_capacity(len);
        while value.len() < len {
            // Ten characters from each draw: six bits each.
            let mut bits = rng.next_u64();
            for _ in 0..10 {
                if value.len() == len {
                    break;
                }
                value.push(VALUE_ALPHABET[usize::from((bits & 0x3f) as u8)]);
                bits >>= 6;
            }
        }
        out.extend_from_slice(&kv::encode(&KvEvent::Set {
            key: &key,
            value: &value,
        }));
    }
}

/// One event of a [`Chunk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRef<'c> {
    /// The stream it belongs to.
    pub stream: StreamIndex,
    /// Its version in that stream (1 for the stream's first event).
    pub version: Version,
    /// Its bytes: one key-value event.
    pub payload: &'c [u8],
}

/// A run of consecutive events of the workload's order, generated ahead of a timed loop so
/// that the loop times the store and not the generator.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    /// Per event: stream, version, end of its payload in `bytes`.
    events: Vec<(StreamIndex, u32, usize)>,
    /// The payloads back to back.
    bytes: Vec<u8>,
}

impl Chunk {
    /// Events in the chunk.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether the chunk holds no event (the cursor was at the end).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Bytes of all payloads in the chunk.
    #[must_use]
    pub fn payload_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The events, in the workload's order.
    pub fn iter(&self) -> impl Iterator<Item = EventRef<'_>> {
        let mut start = 0;
        self.events.iter().map(move |&(stream, version, end)| {
            let payload = &self.bytes[start..end];
            start = end;
            EventRef {
                stream,
                version: Version(u64::from(version)),
                payload,
            }
        })
    }

    /// The event at `index`.
    ///
    /// # Panics
    /// If `index` is not below [`Chunk::len`].
    #[must_use]
    pub fn get(&self, index: usize) -> EventRef<'_> {
        let (stream, version, end) = self.events[index];
        let start = index.checked_sub(1).map_or(0, |i| self.events[i].2);
        EventRef {
            stream,
            version: Version(u64::from(version)),
            payload: &self.bytes[start..end],
        }
    }
}

/// The workload's events in its order: every stream's events interleaved by a seeded shuffle
/// (Fisher-Yates over a list holding each stream `events_per_stream` times; the k-th time a
/// stream comes up, it gets its version k). It keeps one generator and one version per stream
/// (12 bytes) and the shuffled list (4 bytes per event), not the events.
#[derive(Clone, Debug)]
pub struct Cursor {
    workload: ManyStreams,
    order: Vec<StreamIndex>,
    position: usize,
    rngs: Vec<Rng>,
    versions: Vec<u32>,
}

impl Cursor {
    fn new(workload: ManyStreams) -> Cursor {
        let total = usize::try_from(workload.events_count()).expect("the order fits in memory");
        let mut order = Vec::with_capacity(total);
        for stream in workload.stream_indices() {
            order.extend(std::iter::repeat_n(
                stream,
                usize::try_from(workload.events_per_stream).expect("a small count"),
            ));
        }
        let mut rng = Rng::new(workload.seed);
        for i in (1..order.len()).rev() {
            let j = rng.index(i + 1);
            order.swap(i, j);
        }
        Cursor {
            workload,
            order,
            position: 0,
            rngs: workload
                .stream_indices()
                .map(|s| workload.stream_rng(s))
                .collect(),
            versions: vec![0; usize::try_from(workload.streams).expect("a stream count")],
        }
    }

    /// Events not yet taken.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        (self.order.len() - self.position) as u64
    }

    /// Takes the next `count` events (fewer at the end) into `chunk`, replacing what it held.
    pub fn next_chunk(&mut self, count: usize, chunk: &mut Chunk) {
        chunk.events.clear();
        chunk.bytes.clear();
        let end = self.order.len().min(self.position.saturating_add(count));
        for &stream in &self.order[self.position..end] {
            let slot = usize::try_from(stream.0).expect("a stream index");
            self.versions[slot] += 1;
            self.workload
                .next_event(&mut self.rngs[slot], &mut chunk.bytes);
            chunk
                .events
                .push((stream, self.versions[slot], chunk.bytes.len()));
        }
        self.position = end;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn names_and_display_name_the_run() {
        let workload = ManyStreams::new(3_000, 7);
        assert_eq!(workload.stream_name(StreamIndex(123)), "order-000123");
        assert_eq!(
            ManyStreams::new(2_000_000, 7).stream_name(StreamIndex(5)),
            "order-0000005"
        );
        assert_eq!(
            workload.to_string(),
            "ManyStreams { streams: 3000, events_per_stream: 50, keys_per_stream: 8, seed: 0x7 }"
        );
        assert_eq!(workload.events_count(), 150_000);
    }

    #[test]
    fn events_are_key_value_events_of_the_stated_shape() {
        let workload = ManyStreams::new(200, 11);
        let mut deletes = 0;
        let mut total = 0;
        for stream in workload.stream_indices() {
            for event in workload.stream_events(stream) {
                total += 1;
                match kv::parse(&event).expect("a key-value event") {
                    KvEvent::Set { key, value } => {
                        assert!((VALUE_LEN_MIN..=VALUE_LEN_MAX).contains(&value.len()));
                        assert!(value.iter().all(|b| VALUE_ALPHABET.contains(b)));
                        assert!((0..8).any(|k| key == ManyStreams::key_name(k)));
                    }
                    KvEvent::Del { key: deleted } => {
                        deletes += 1;
                        assert!((0..8).any(|k| deleted == ManyStreams::key_name(k)));
                    }
                }
            }
        }
        assert_eq!(total, 10_000);
        // One in ten, give or take the noise of 10,000 draws.
        assert!((800..1_200).contains(&deletes), "{deletes} deletes");
    }

    #[test]
    fn the_cursor_yields_every_event_once_in_stream_order() {
        let workload = ManyStreams::new(40, 3);
        let mut cursor = workload.cursor();
        let mut chunk = Chunk::default();
        let mut seen: HashMap<StreamIndex, Vec<Vec<u8>>> = HashMap::new();
        let mut order = Vec::new();
        while cursor.remaining() > 0 {
            cursor.next_chunk(7, &mut chunk);
            assert!(!chunk.is_empty());
            for (i, event) in chunk.iter().enumerate() {
                assert_eq!(chunk.get(i), event);
                let events = seen.entry(event.stream).or_default();
                assert_eq!(event.version, Version(events.len() as u64 + 1));
                events.push(event.payload.to_vec());
                order.push(event.stream);
            }
        }
        cursor.next_chunk(7, &mut chunk);
        assert!(chunk.is_empty());
        assert_eq!(order.len(), 2_000);
        for stream in workload.stream_indices() {
            assert_eq!(seen[&stream], workload.stream_events(stream), "{stream:?}");
        }
        // Interleaved, not stream after stream.
        let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(switches > 1_500, "{switches} switches");
        // The same configuration gives the same order; another seed another.
        let again: Vec<_> = {
            let mut cursor = workload.cursor();
            cursor.next_chunk(2_000, &mut chunk);
            chunk.iter().map(|e| e.stream).collect()
        };
        assert_eq!(again, order);
        let mut other = ManyStreams::new(40, 4).cursor();
        other.next_chunk(2_000, &mut chunk);
        assert_ne!(chunk.iter().map(|e| e.stream).collect::<Vec<_>>(), order);
    }

    #[test]
    fn reference_states_hold_each_keys_last_write() {
        // Not a second fold (the reference fold is defined once, in `helios::kv`): at each
        // version, a key holds the value of the last event that touched it, if that was a set.
        let workload = ManyStreams::new(30, 5);
        for stream in workload.stream_indices() {
            let events = workload.stream_events(stream);
            assert!(workload.state_at(stream, Version::ZERO).is_empty());
            for version in 1..=events.len() {
                let state = workload.state_at(stream, Version(version as u64));
                for k in 0..8 {
                    let key = ManyStreams::key_name(k);
                    let last = events[..version].iter().rev().find_map(|event| {
                        match kv::parse(event).expect("a key-value event") {
                            KvEvent::Set {
                                key: touched,
                                value,
                            } if touched == key => Some(Some(value.to_vec())),
                            KvEvent::Del { key: touched } if touched == key => Some(None),
                            _ => None,
                        }
                    });
                    assert_eq!(
                        state.get(&key).cloned(),
                        last.flatten(),
                        "{stream:?} at {version}, key {key:?}"
                    );
                }
                assert!(state.len() <= 8);
            }
        }
    }
}
