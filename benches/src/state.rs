//! The random-access state-read workload of `benches/checkpoint_reads.rs`, its reference
//! answers, and the two peers Helios's views are compared against.
//!
//! - [`KvWorkload`]: one stream of key-value events over a fixed key space, generated from a
//!   seed. Each event changes 1 to `keys_per_event_max` distinct keys (one `set KEY VALUE` or
//!   `del KEY` line per key, lines joined by `\n`); values are 32 hex characters; keys are
//!   `k0000042`. About 3% of the changes delete a live key and about 3% put back a deleted one.
//!   [`KvWorkload::generate_loaded`] starts with one event that sets many keys at once (a bulk
//!   import), for a state that holds that many keys throughout.
//!   The workload also keeps every key's history, so the value of any key at any version is
//!   one binary search away: the reference every read path is checked against.
//! - [`KvBatchMachine`]: the state machine for those events (the built-in
//!   [`helios::KvMachine`] takes one line per event; this one applies each line of an event
//!   the same way).
//! - [`fold_events`]: replay from the start into a `BTreeMap`, the peer without checkpoints.
//! - [`SnapshotPeer`]: what typical event-sourcing libraries do: a full snapshot of the state
//!   every N events, archived with rkyv into its own file; a read at `v` loads the snapshot at
//!   `v - v % N` (validated and deserialised into an owned `BTreeMap`) and replays the rest.
//! - [`ThreadIo`] and [`evict_files_under`]: page faults and blocks read by the calling thread
//!   (`getrusage(RUSAGE_THREAD)`), and dropping files from the page cache
//!   (`posix_fadvise(DONTNEED)`), for cold reads.
//!
//! Nothing here is timed; the harness decides what goes inside its clock.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use helios::kv::{self, KvEvent};
use helios::{Rejected, StateHandle, StateMachine};
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use nix::sys::resource::{UsageWho, getrusage};
use rkyv::rancor;
use rkyv::util::AlignedVec;

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

    /// Bytes the log holds for these events: one record frame per event (header plus
    /// payload), segment headers and the stream's creation record not counted.
    #[must_use]
    pub fn log_frame_bytes(&self) -> u64 {
        self.events
            .iter()
            .map(|e| helios_log::format::frame_len(e.len()) as u64)
            .sum()
    }

    /// The state at `version`, replayed from the start: the peer without checkpoints.
    ///
    /// # Panics
    /// If `version` is past the last event.
    #[must_use]
    pub fn fold(&self, version: u64) -> State {
        let mut state = State::new();
        fold_events(&mut state, &self.events[..version_index(version)]);
        state
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

/// A version as a count of events (the version was checked against the event count by the
/// slice that uses it).
fn version_index(version: u64) -> usize {
    usize::try_from(version).expect("versions fit in usize")
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

/// Applies `events` ([`KvBatchMachine`] events) to `state` in order.
///
/// # Panics
/// On an event that does not parse: every event here comes from [`KvWorkload`].
pub fn fold_events<E: AsRef<[u8]>>(state: &mut State, events: &[E]) {
    for event in events {
        for line in event.as_ref().split(|&b| b == b'\n') {
            match kv::parse(line).expect("workload events parse") {
                KvEvent::Set { key, value } => {
                    state.insert(key.to_vec(), value.to_vec());
                }
                KvEvent::Del { key } => {
                    state.remove(key);
                }
            }
        }
    }
}

/// The snapshot peer: a full state every `interval` events, each archived with rkyv
/// (`BTreeMap<Vec<u8>, Vec<u8>>`) in its own file and fsynced; a read loads, validates and
/// deserialises the snapshot below the version and replays the events after it from memory.
#[derive(Debug)]
pub struct SnapshotPeer {
    dir: PathBuf,
    interval: u64,
    files_count: u64,
    bytes: u64,
}

impl SnapshotPeer {
    /// Folds `workload` from the start and writes the snapshot of every multiple of
    /// `interval` into `dir` (created if needed).
    ///
    /// # Errors
    /// I/O errors, or an rkyv serialisation error (as [`io::Error::other`]).
    ///
    /// # Panics
    /// If `interval` is 0.
    pub fn build(dir: &Path, workload: &KvWorkload, interval: u64) -> io::Result<SnapshotPeer> {
        assert!(interval > 0, "snapshot interval must be positive");
        std::fs::create_dir_all(dir)?;
        let mut peer = SnapshotPeer {
            dir: dir.to_path_buf(),
            interval,
            files_count: 0,
            bytes: 0,
        };
        let mut state = State::new();
        let step = version_index(interval);
        for (chunk_index, chunk) in workload.events().chunks(step).enumerate() {
            fold_events(&mut state, chunk);
            if chunk.len() < step {
                break;
            }
            let version = (chunk_index as u64 + 1) * interval;
            let bytes = rkyv::to_bytes::<rancor::Error>(&state).map_err(io::Error::other)?;
            let mut file = File::create(peer.path(version))?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            peer.files_count += 1;
            peer.bytes += bytes.len() as u64;
        }
        File::open(dir)?.sync_all()?;
        Ok(peer)
    }

    /// The snapshot file of `version` (a multiple of the interval).
    fn path(&self, version: u64) -> PathBuf {
        self.dir.join(format!("{version:020}.rkyv"))
    }

    /// The state at `version`: the snapshot at `version - version % interval` read into an
    /// aligned buffer, validated and deserialised, then the remaining events replayed from
    /// `workload`.
    ///
    /// # Errors
    /// I/O errors, or a snapshot that fails validation (as [`io::Error::other`]).
    ///
    /// # Panics
    /// If `version` is past the last event.
    pub fn state_at(&self, workload: &KvWorkload, version: u64) -> io::Result<State> {
        let base = version - version % self.interval;
        let mut state = if base == 0 {
            State::new()
        } else {
            let mut file = File::open(self.path(base))?;
            let len = usize::try_from(file.metadata()?.len()).map_err(io::Error::other)?;
            let mut bytes = AlignedVec::<16>::with_capacity(len);
            bytes.extend_from_reader(&mut file)?;
            rkyv::from_bytes::<State, rancor::Error>(&bytes).map_err(io::Error::other)?
        };
        fold_events(
            &mut state,
            &workload.events()[version_index(base)..version_index(version)],
        );
        Ok(state)
    }

    /// Reads every snapshot file once, so that the warm reads find them in the page cache.
    ///
    /// # Errors
    /// I/O errors.
    pub fn warm_page_cache(&self) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let _ = std::fs::read(entry?.path())?;
        }
        Ok(())
    }

    /// Snapshot files written.
    #[must_use]
    pub fn files_count(&self) -> u64 {
        self.files_count
    }

    /// Their total length.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Events between two snapshots.
    #[must_use]
    pub fn interval(&self) -> u64 {
        self.interval
    }
}

/// I/O counters of the calling thread, from `getrusage(RUSAGE_THREAD)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadIo {
    /// Page faults that had to read from the disk.
    pub major_faults: i64,
    /// Page faults served without the disk (a page already in the page cache, mapped into
    /// this process for the first time).
    pub minor_faults: i64,
    /// 512-byte blocks the file systems read for this thread (read calls and faults,
    /// read-ahead included).
    pub blocks_read: i64,
}

impl ThreadIo {
    /// The counters now.
    ///
    /// # Errors
    /// The errno of `getrusage`.
    pub fn now() -> nix::Result<ThreadIo> {
        let usage = getrusage(UsageWho::RUSAGE_THREAD)?;
        Ok(ThreadIo {
            major_faults: usage.major_page_faults(),
            minor_faults: usage.minor_page_faults(),
            blocks_read: usage.block_reads(),
        })
    }

    /// Both counts added up (for totals over several intervals).
    #[must_use]
    pub fn plus(self, other: ThreadIo) -> ThreadIo {
        ThreadIo {
            major_faults: self.major_faults + other.major_faults,
            minor_faults: self.minor_faults + other.minor_faults,
            blocks_read: self.blocks_read + other.blocks_read,
        }
    }

    /// What happened between `earlier` and `self`.
    #[must_use]
    pub fn since(self, earlier: ThreadIo) -> ThreadIo {
        ThreadIo {
            major_faults: self.major_faults - earlier.major_faults,
            minor_faults: self.minor_faults - earlier.minor_faults,
            blocks_read: self.blocks_read - earlier.blocks_read,
        }
    }
}

/// Asks the kernel to drop the cached pages of every regular file under `dir`, recursively
/// (`posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file). Dirty pages and pages mapped
/// by a process stay. Returns the number of files advised.
///
/// # Errors
/// I/O errors while walking, and the errno of `posix_fadvise` (as an [`io::Error`]).
pub fn evict_files_under(dir: &Path) -> io::Result<u64> {
    let mut files_count = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                // A file removed since the listing (a replaced checkpoint) is simply skipped.
                let Ok(file) = File::open(entry.path()) else {
                    continue;
                };
                posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
                    .map_err(io::Error::from)?;
                files_count += 1;
            }
        }
    }
    Ok(files_count)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let state = a.fold(version);
            for index in 0..a.keys_count() {
                let key = a.key(index);
                assert_eq!(
                    state.get(&key).map(Vec::as_slice),
                    a.value_at(index, version),
                    "key {index} at {version}"
                );
            }
        }
        assert_eq!(a.live_keys_at_end(), a.fold(2_000).len() as u64);
    }

    #[test]
    fn machine_applies_like_the_fold() {
        let workload = KvWorkload::generate(300, 50, 4, 3);
        let view = helios::View::replay(
            &KvBatchMachine,
            helios_replay::Base::new(),
            workload.events().iter(),
        )
        .expect("workload events are valid");
        assert_eq!(view.to_map(), workload.fold(300));
    }

    #[test]
    fn snapshot_peer_reads_every_version_right() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let workload = KvWorkload::generate(250, 40, 4, 11);
        let peer = SnapshotPeer::build(dir.path(), &workload, 100).expect("build");
        assert_eq!(peer.files_count(), 2);
        assert!(peer.bytes() > 0);
        for version in [0, 1, 99, 100, 101, 200, 250] {
            assert_eq!(
                peer.state_at(&workload, version).expect("read"),
                workload.fold(version),
                "version {version}"
            );
        }
    }

    #[test]
    fn thread_io_and_eviction_work() {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a"), b"a").expect("write");
        std::fs::write(dir.path().join("sub/b"), b"b").expect("write");
        assert_eq!(evict_files_under(dir.path()).expect("evict"), 2);
        let before = ThreadIo::now().expect("getrusage");
        let after = ThreadIo::now().expect("getrusage");
        let delta = after.since(before);
        assert!(delta.major_faults >= 0 && delta.blocks_read >= 0);
    }
}
