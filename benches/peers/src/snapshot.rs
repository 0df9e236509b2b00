//! Snapshots every N events, what typical event-sourcing libraries do: [`SnapshotPeer`], a
//! full state archived with rkyv into its own file every `interval` events; a read at `v`
//! loads the snapshot at `v - v % interval` (validated and deserialised into an owned map) and
//! replays the events after it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use helios::kv;
use helios_workloads::kv::{KvWorkload, State, lines};
use rkyv::rancor;
use rkyv::util::AlignedVec;

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
            apply(&mut state, chunk);
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
        apply(
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

/// Applies `events` ([`helios_workloads::kv::KvBatchMachine`] events) to `state`, which holds
/// the state before them, with the reference fold `helios::kv::fold_into`: a snapshot read
/// starts from the snapshot, and folding the events on top of it is the peer's whole point.
///
/// # Panics
/// On an event that does not parse: every event here comes from [`KvWorkload`].
fn apply(state: &mut State, events: &[Vec<u8>]) {
    for line in lines(events) {
        kv::fold_into(state, line).expect("workload events parse");
    }
}

/// A version as a count of events (the version was checked against the event count by the
/// slice that uses it).
fn version_index(version: u64) -> usize {
    usize::try_from(version).expect("versions fit in usize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay;

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
                replay::kv_state_at(&workload, version),
                "version {version}"
            );
        }
    }
}
