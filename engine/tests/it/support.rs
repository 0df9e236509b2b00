//! Helpers shared by the integration tests.

use std::collections::BTreeMap;
use std::path::Path;

use helios::{Engine, Version, kv};

/// The reference state after `events`: the key-value machine's `BTreeMap` fold.
pub fn fold<E: AsRef<[u8]>>(events: &[E]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    kv::fold(events.iter().map(AsRef::as_ref)).expect("test events parse")
}

/// A key-value `set KEY VALUE` event.
pub fn set(key: &str, value: &str) -> Vec<u8> {
    kv::encode(&kv::KvEvent::Set {
        key: key.as_bytes(),
        value: value.as_bytes(),
    })
}

pub fn del(key: &str) -> Vec<u8> {
    kv::encode(&kv::KvEvent::Del {
        key: key.as_bytes(),
    })
}

/// The model of one key-value event: folds it into `state`.
pub fn apply_kv(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, event: &[u8]) {
    kv::fold_into(state, event).expect("test events parse");
}

/// The model: every version's state, folded into `BTreeMap`s.
pub fn model_states(events: &[Vec<u8>]) -> Vec<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut states = vec![BTreeMap::new()];
    let mut state = BTreeMap::new();
    for event in events {
        apply_kv(&mut state, event);
        states.push(state.clone());
    }
    states
}

/// The model's state at version `v`.
pub fn at(states: &[BTreeMap<Vec<u8>, Vec<u8>>], v: u64) -> &BTreeMap<Vec<u8>, Vec<u8>> {
    &states[usize::try_from(v).expect("small version")]
}

/// Checks a view against the model: point reads of every key ever used, and full iteration.
pub fn assert_view_matches(
    engine: &Engine,
    stream: &str,
    version: u64,
    expected: &BTreeMap<Vec<u8>, Vec<u8>>,
    keys: &[Vec<u8>],
) -> u64 {
    let view = engine.view(stream, Version(version)).expect("view");
    for key in keys {
        assert_eq!(
            view.get(key),
            expected.get(key).map(Vec::as_slice),
            "key {:?} at version {version}",
            String::from_utf8_lossy(key)
        );
    }
    let all: BTreeMap<Vec<u8>, Vec<u8>> =
        view.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    assert_eq!(&all, expected, "full iteration at version {version}");
    view.report().events_replayed
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("fixture directory") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Where a checkpoint is in its pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub pack: std::path::PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl Placed {
    /// Its bytes, read from the pack.
    pub fn read(&self) -> Vec<u8> {
        let bytes = std::fs::read(&self.pack).expect("read the pack");
        let start = usize::try_from(self.offset).expect("small");
        let end = start + usize::try_from(self.len).expect("small");
        bytes[start..end].to_vec()
    }

    /// Overwrites `value.len()` bytes at `at` (from the checkpoint's start) in the pack.
    pub fn patch(&self, at: u64, value: &[u8]) {
        use std::os::unix::fs::FileExt as _;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.pack)
            .expect("open the pack");
        file.write_all_at(value, self.offset + at).expect("patch");
    }

    /// Flips a byte in the middle of its archive: its header still scans, and it is found
    /// damaged when first read (the archive's CRC).
    pub fn damage_archive(&self) {
        let at = self.len / 2 + 32;
        let mut byte = [0u8; 1];
        {
            use std::os::unix::fs::FileExt as _;
            let file = std::fs::File::open(&self.pack).expect("open");
            file.read_exact_at(&mut byte, self.offset + at)
                .expect("read");
        }
        self.patch(at, &[byte[0] ^ 0x40]);
    }
}

/// Where the engine's checkpoint of `stream` at `version` is.
pub fn placed(engine: &helios::Engine, stream: &str, version: u64) -> Placed {
    let info = engine
        .checkpoints()
        .of_stream(stream)
        .expect("stream")
        .into_iter()
        .find(|c| c.version == helios::Version(version))
        .unwrap_or_else(|| panic!("{stream} has a checkpoint at {version}"));
    Placed {
        pack: info.pack,
        offset: info.offset,
        len: info.len_bytes,
    }
}

/// Every event of `stream`, in order.
pub fn payloads(engine: &helios::Engine, stream: &str) -> Vec<Vec<u8>> {
    engine
        .read(stream, ..)
        .expect("read")
        .map(|e| e.expect("event").payload)
        .collect()
}

/// Removes what lets an open skip reading the log (the fjall metadata and the catalog
/// snapshot), so that the next open reads every segment; with `durable`, also what says which
/// records were durable (the log's published end), so that it must tell a torn tail from
/// damage by the log alone.
pub fn forget_derived(dir: &Path, durable: bool) {
    let _ = std::fs::remove_dir_all(dir.join("meta"));
    let _ = std::fs::remove_file(dir.join("CATALOG"));
    if durable {
        let _ = std::fs::remove_file(dir.join("log").join("published-end"));
    }
}
