//! A simulated, in-memory file system for fault injection.
//!
//! Every file keeps its durable bytes (as of the last `sync_data`) and the ordered list of writes
//! since. [`SimStorage::crash`] decides what of those unsynced writes survives (nothing, a prefix,
//! a torn last write, a flipped bit, everything), kills every open handle and lock, and leaves
//! the storage ready to be opened again as if after a reboot. Between crashes it can run out of
//! space and fail `fsync` on demand. Runs are deterministic for a given seed.
//!
//! Simplification: directory operations (create, rename, remove) are durable at once; the log
//! syncs the directory after each of them anyway.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use helios_testkit::Rng;

use super::{LockGuard, ReadOnlyBytes, Storage, StorageFile};

/// What survives of the unsynced writes when the simulated machine crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashFault {
    /// Every unsynced write survives (a process crash: the OS kept its page cache).
    KeepAll,
    /// No unsynced write survives.
    LoseUnsynced,
    /// The unsynced writes survive in order up to a random byte count, the last one cut.
    KeepPrefix,
    /// All unsynced writes but the last survive; the last is torn at a random byte.
    TearLast,
    /// Every unsynced write survives, and one random bit in them is flipped.
    FlipBit,
}

#[derive(Debug, Default)]
struct FileData {
    durable: Vec<u8>,
    current: Vec<u8>,
    unsynced: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct State {
    epoch: u64,
    next_file_id: u64,
    names: BTreeMap<PathBuf, u64>,
    files: HashMap<u64, FileData>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    capacity_bytes: Option<u64>,
    syncs_until_failure: Option<u64>,
    io_ops: u64,
    /// Mutating operations allowed before the simulated machine stops (every later one fails,
    /// as if the process had died at that instant), until [`SimStorage::crash`].
    ops_until_crash: Option<u64>,
}

impl State {
    /// Counts one mutating operation; fails it if the simulated crash point has passed.
    fn mutating_op(&mut self) -> io::Result<()> {
        if let Some(left) = self.ops_until_crash {
            if left == 0 {
                return Err(io::Error::other("simulated crash point reached"));
            }
            self.ops_until_crash = Some(left - 1);
        }
        self.io_ops += 1;
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        self.names
            .values()
            .filter_map(|id| self.files.get(id))
            .map(|f| f.current.len() as u64)
            .sum()
    }
}

/// In-memory [`Storage`] with fault injection. Cloning shares the same simulated disk.
#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    state: Arc<Mutex<State>>,
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash: this handle died with its process")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such file: {}", path.display()),
    )
}

fn apply_write(target: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let Ok(start) = usize::try_from(offset) else {
        return;
    };
    let end = start + bytes.len();
    if target.len() < end {
        target.resize(end, 0);
    }
    target[start..end].copy_from_slice(bytes);
}

impl SimStorage {
    /// A new, empty simulated disk.
    #[must_use]
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from a bug in this module; the state is
        // still structurally valid, so keep going rather than cascade the panic.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Limits the total bytes of all files; writes past it fail with `StorageFull` after writing
    /// the part that fits. `None` removes the limit.
    pub fn set_capacity_bytes(&self, capacity: Option<u64>) {
        self.lock().capacity_bytes = capacity;
    }

    /// Makes the sync after `count` more successful syncs fail (0: the next one). `None` stops
    /// failing syncs.
    pub fn fail_sync_after(&self, count: Option<u64>) {
        self.lock().syncs_until_failure = count;
    }

    /// Lets `count` more mutating operations (writes, syncs, creations, renames, removals)
    /// succeed, then fails every later one, as if the machine stopped at that instant; call
    /// [`SimStorage::crash`] to decide what of the unsynced writes survives. Enumerating `count`
    /// over a workload's operations visits every crash point. `None` removes the limit.
    pub fn crash_after_ops(&self, count: Option<u64>) {
        self.lock().ops_until_crash = count;
    }

    /// How many mutating operations (writes, syncs, creations, renames, removals) ran so far.
    #[must_use]
    pub fn io_op_count(&self) -> u64 {
        self.lock().io_ops
    }

    /// Total bytes written but not yet synced, over all files.
    #[must_use]
    pub fn unsynced_bytes(&self) -> u64 {
        let st = self.lock();
        st.files
            .values()
            .flat_map(|f| f.unsynced.iter())
            .map(|(_, b)| b.len() as u64)
            .sum()
    }

    /// Simulates a machine crash: decides what of each file's unsynced writes survives according
    /// to `fault` and `seed`, invalidates every open handle and lock, and clears injected
    /// failures. The disk can then be opened again.
    pub fn crash(&self, fault: CrashFault, seed: u64) {
        let mut st = self.lock();
        let mut rng = Rng::new(seed);
        st.epoch += 1;
        st.locks.clear();
        st.syncs_until_failure = None;
        st.capacity_bytes = None;
        st.ops_until_crash = None;
        let mut ids: Vec<u64> = st.files.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(file) = st.files.get_mut(&id) else {
                continue;
            };
            let writes = std::mem::take(&mut file.unsynced);
            let mut survivor = file.durable.clone();
            let total: u64 = writes.iter().map(|(_, b)| b.len() as u64).sum();
            match fault {
                CrashFault::LoseUnsynced => {}
                CrashFault::KeepAll | CrashFault::FlipBit => {
                    for (offset, bytes) in &writes {
                        apply_write(&mut survivor, *offset, bytes);
                    }
                    if fault == CrashFault::FlipBit && total > 0 {
                        let mut target = rng.below(total);
                        for (offset, bytes) in &writes {
                            let len = bytes.len() as u64;
                            if target < len {
                                if let Ok(at) = usize::try_from(offset + target) {
                                    let bit = rng.below(8);
                                    survivor[at] ^= 1 << bit;
                                }
                                break;
                            }
                            target -= len;
                        }
                    }
                }
                CrashFault::KeepPrefix => {
                    let mut keep = rng.below(total + 1);
                    for (offset, bytes) in &writes {
                        let len = bytes.len() as u64;
                        let take = keep.min(len);
                        #[expect(clippy::cast_possible_truncation, reason = "take <= len")]
                        apply_write(&mut survivor, *offset, &bytes[..take as usize]);
                        keep -= take;
                        if keep == 0 {
                            break;
                        }
                    }
                }
                CrashFault::TearLast => {
                    if let Some(((last_offset, last), rest)) = writes.split_last() {
                        for (offset, bytes) in rest {
                            apply_write(&mut survivor, *offset, bytes);
                        }
                        #[expect(clippy::cast_possible_truncation, reason = "below len")]
                        let cut = rng.below(last.len() as u64) as usize;
                        apply_write(&mut survivor, *last_offset, &last[..cut]);
                    }
                }
            }
            file.current = survivor.clone();
            file.durable = survivor;
        }
    }

    fn file_at(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let st = self.lock();
        let id = *st.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(SimFile {
            storage: self.clone(),
            id,
            epoch: st.epoch,
        }))
    }
}

#[derive(Debug)]
struct SimFile {
    storage: SimStorage,
    id: u64,
    epoch: u64,
}

impl SimFile {
    fn with<T>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<T>) -> io::Result<T> {
        let mut st = self.storage.lock();
        if st.epoch != self.epoch {
            return Err(crashed());
        }
        f(&mut st, self.id)
    }
}

impl StorageFile for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with(|st, id| {
            let file = st.files.get(&id).ok_or_else(crashed)?;
            let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
            let end = start + buf.len();
            if end > file.current.len() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.copy_from_slice(&file.current[start..end]);
            Ok(())
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(|st, id| {
            st.mutating_op()?;
            let used = st.used_bytes();
            let capacity = st.capacity_bytes;
            let file = st.files.get_mut(&id).ok_or_else(crashed)?;
            let end = offset + buf.len() as u64;
            let growth = end.saturating_sub(file.current.len() as u64);
            let mut len = buf.len();
            let mut full = false;
            if let Some(cap) = capacity {
                let room = cap.saturating_sub(used);
                if growth > room {
                    full = true;
                    let short = growth - room;
                    #[expect(clippy::cast_possible_truncation, reason = "short <= buf.len()")]
                    {
                        len = buf.len().saturating_sub(short as usize);
                    }
                }
            }
            if len > 0 {
                apply_write(&mut file.current, offset, &buf[..len]);
                file.unsynced.push((offset, buf[..len].to_vec()));
            }
            if full {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "simulated disk is full",
                ));
            }
            Ok(())
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(|st, id| {
            st.mutating_op()?;
            if let Some(left) = st.syncs_until_failure {
                if left == 0 {
                    return Err(io::Error::other("simulated fsync failure"));
                }
                st.syncs_until_failure = Some(left - 1);
            }
            let file = st.files.get_mut(&id).ok_or_else(crashed)?;
            for (offset, bytes) in std::mem::take(&mut file.unsynced) {
                apply_write(&mut file.durable, offset, &bytes);
            }
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(|st, id| {
            let file = st.files.get(&id).ok_or_else(crashed)?;
            Ok(file.current.len() as u64)
        })
    }
}

#[derive(Debug)]
struct SimLock {
    storage: SimStorage,
    path: PathBuf,
    epoch: u64,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.storage.lock();
        if st.epoch == self.epoch {
            st.locks.remove(&self.path);
        }
    }
}

impl Storage for SimStorage {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        for ancestor in path.ancestors() {
            st.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn list_files(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = self.lock();
        if !st.dirs.contains(path) {
            return Err(not_found(path));
        }
        Ok(st
            .names
            .keys()
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect())
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        self.file_at(path)
    }

    fn create(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        {
            let mut st = self.lock();
            let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
            if !st.dirs.contains(&parent) {
                return Err(not_found(&parent));
            }
            st.mutating_op()?;
            let id = st.next_file_id;
            st.next_file_id += 1;
            st.files.insert(id, FileData::default());
            if let Some(old) = st.names.insert(path.to_path_buf(), id) {
                st.files.remove(&old);
            }
        }
        self.file_at(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.mutating_op()?;
        let id = st.names.remove(from).ok_or_else(|| not_found(from))?;
        if let Some(old) = st.names.insert(to.to_path_buf(), id) {
            st.files.remove(&old);
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        st.mutating_op()?;
        let id = st.names.remove(path).ok_or_else(|| not_found(path))?;
        st.files.remove(&id);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let st = self.lock();
        if st.dirs.contains(path) {
            Ok(())
        } else {
            Err(not_found(path))
        }
    }

    fn map_readonly(&self, path: &Path) -> io::Result<ReadOnlyBytes> {
        let st = self.lock();
        let id = st.names.get(path).ok_or_else(|| not_found(path))?;
        let file = st.files.get(id).ok_or_else(|| not_found(path))?;
        Ok(ReadOnlyBytes::new(file.current.clone()))
    }

    fn lock_exclusive(&self, path: &Path) -> io::Result<LockGuard> {
        let mut st = self.lock();
        if !st.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the lock is held by another writer",
            ));
        }
        Ok(Box::new(SimLock {
            storage: self.clone(),
            path: path.to_path_buf(),
            epoch: st.epoch,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SimStorage, Arc<dyn StorageFile>) {
        let sim = SimStorage::new();
        sim.create_dir_all(Path::new("/d")).expect("mkdir");
        let f = sim.create(Path::new("/d/f")).expect("create");
        (sim, f)
    }

    fn durable(sim: &SimStorage) -> Vec<u8> {
        let f = sim.open(Path::new("/d/f")).expect("open");
        let mut buf = vec![0u8; usize::try_from(f.len().expect("len")).expect("fits")];
        f.read_exact_at(&mut buf, 0).expect("read");
        buf
    }

    #[test]
    fn synced_bytes_survive_and_unsynced_are_lost() {
        let (sim, f) = setup();
        f.write_all_at(b"hello", 0).expect("write");
        f.sync_data().expect("sync");
        f.write_all_at(b" world", 5).expect("write");
        sim.crash(CrashFault::LoseUnsynced, 1);
        assert_eq!(durable(&sim), b"hello");
        assert!(f.write_all_at(b"x", 0).is_err(), "old handle must be dead");
    }

    #[test]
    fn keep_prefix_keeps_a_prefix() {
        for seed in 0..50 {
            let (sim, f) = setup();
            f.write_all_at(b"abc", 0).expect("write");
            f.write_all_at(b"defgh", 3).expect("write");
            sim.crash(CrashFault::KeepPrefix, seed);
            let got = durable(&sim);
            assert!(b"abcdefgh".starts_with(&got), "seed {seed}: {got:?}");
        }
    }

    #[test]
    fn flip_bit_changes_exactly_one_bit() {
        let (sim, f) = setup();
        f.write_all_at(&[0u8; 32], 0).expect("write");
        sim.crash(CrashFault::FlipBit, 7);
        let ones: u32 = durable(&sim).iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 1);
    }

    #[test]
    fn capacity_and_sync_failures_are_reported() {
        let (sim, f) = setup();
        sim.set_capacity_bytes(Some(4));
        let err = f.write_all_at(b"too long", 0).expect_err("full");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(f.len().expect("len"), 4, "the part that fits is written");
        sim.fail_sync_after(Some(0));
        assert!(f.sync_data().is_err());
    }

    #[test]
    fn locks_are_exclusive_until_dropped_or_crashed() {
        let sim = SimStorage::new();
        let p = Path::new("/LOCK");
        let g = sim.lock_exclusive(p).expect("first");
        assert!(sim.lock_exclusive(p).is_err());
        drop(g);
        let _g = sim.lock_exclusive(p).expect("after drop");
        sim.crash(CrashFault::KeepAll, 0);
        let _g2 = sim.lock_exclusive(p).expect("after crash");
    }
}
