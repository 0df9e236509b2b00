//! The saver's cache of decoded channel values: `Value` (a value's bytes, held by Rust or as a
//! Python `bytes` object), `SpliceParts` (a value stored as a splice, cached as its parts), and
//! `ValueCache`, two LRUs bounded by bytes so that whole values (the bases deltas decode
//! against) are not evicted by the values decoded from deltas.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use lru::LruCache;
use pyo3::pybacked::PyBackedBytes;

use crate::record::BlobPtr;

/// A decoded value: its serializer type tag (`None`: LangGraph's empty marker) and bytes.
#[derive(Debug)]
pub(crate) struct Value {
    /// The serializer's type tag; `None` for LangGraph's empty marker.
    pub(crate) ty: Option<Vec<u8>>,
    /// The serialized bytes.
    pub(crate) data: ValueBytes,
}

/// A value stored as a splice over a whole base value, cached as its parts: the head that
/// replaces the base's first bytes, and the tail appended after the base (decompressed).
#[derive(Debug)]
pub(crate) struct SpliceParts {
    /// The serializer's type tag.
    pub(crate) ty: Option<Vec<u8>>,
    /// Where the base is (a whole value, cached on its own).
    pub(crate) base: BlobPtr,
    /// The bytes that replace the base's first bytes.
    pub(crate) head: Vec<u8>,
    /// The bytes after the base.
    pub(crate) tail: Vec<u8>,
    /// The value's length.
    pub(crate) raw_len: usize,
}

/// What the cache holds for a value: its bytes, or a splice's parts. A splice does not hold
/// its base, so that evicting a base frees it.
#[derive(Clone, Debug)]
pub(crate) enum Cached {
    /// The value's bytes.
    Value(Arc<Value>),
    /// A splice's parts.
    Splice(Arc<SpliceParts>),
}

impl Cached {
    fn size_bytes(&self) -> usize {
        match self {
            Cached::Value(value) => value.size_bytes(),
            Cached::Splice(parts) => {
                parts.head.len() + parts.tail.len() + parts.ty.as_ref().map_or(0, Vec::len) + 64
            }
        }
    }
}

/// A value's bytes: decoded in Rust, or a Python `bytes` object (what a put was given, or what
/// a get handed out). Python's `bytes` are immutable, so the cache hands the same object to
/// every get without copying it; a value decoded in Rust is swapped for its `bytes` object at
/// its first get, so the cache holds one copy either way.
pub(crate) enum ValueBytes {
    /// Decoded by the saver, not yet handed to Python.
    Rust(Vec<u8>),
    /// A Python `bytes` object, read without the GIL (it never changes).
    Python(PyBackedBytes),
}

impl Deref for ValueBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ValueBytes::Rust(v) => v,
            ValueBytes::Python(b) => b,
        }
    }
}

impl fmt::Debug for ValueBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            ValueBytes::Rust(_) => "Rust",
            ValueBytes::Python(_) => "Python",
        };
        write!(f, "ValueBytes::{kind}({} bytes)", self.len())
    }
}

impl Value {
    fn size_bytes(&self) -> usize {
        self.data.len() + self.ty.as_ref().map_or(0, Vec::len) + 64
    }
}

/// Decoded values by `(stream id, record version, index)`, in two LRUs bounded by bytes: whole
/// values (the bases every delta decodes against: few, and worth keeping) and the rest (values
/// decoded from deltas, splices as their parts, and the newest values puts leave behind), so
/// that a scan of old checkpoints never evicts the bases. Keyed by stream id, not name: a
/// thread deleted and written again, or a copy, is a different stream with its own versions.
#[derive(Debug)]
pub(crate) struct ValueCache {
    bases: Lru,
    others: Lru,
    budget_bytes: usize,
    bases_budget_bytes: usize,
}

/// `(stream id, record version, index of the value in the record)`.
pub(crate) type CacheKey = (u64, u64, u32);

/// The index a put record's checkpoint is cached under (a record's values never reach it).
pub(crate) const CHECKPOINT_SLOT: u32 = u32::MAX;
/// The index a put record's metadata is cached under.
pub(crate) const METADATA_SLOT: u32 = u32::MAX - 1;

/// One LRU of decoded values and the bytes they hold.
#[derive(Debug)]
struct Lru {
    lru: LruCache<CacheKey, Cached>,
    bytes: usize,
}

impl Lru {
    fn new() -> Lru {
        Lru {
            lru: LruCache::unbounded(),
            bytes: 0,
        }
    }

    fn put(&mut self, key: CacheKey, value: Cached) {
        self.bytes += value.size_bytes();
        if let Some(old) = self.lru.put(key, value) {
            self.bytes -= old.size_bytes();
        }
    }

    /// Evicts least recently used values until at most `budget_bytes` are held.
    fn evict_to(&mut self, budget_bytes: usize) {
        while self.bytes > budget_bytes {
            match self.lru.pop_lru() {
                Some((_, evicted)) => self.bytes -= evicted.size_bytes(),
                None => break,
            }
        }
    }
}

impl ValueCache {
    /// Whole values may take up to three quarters of `budget_bytes`; the others take what the
    /// whole values leave.
    pub(crate) fn new(budget_bytes: usize) -> ValueCache {
        ValueCache {
            bases: Lru::new(),
            others: Lru::new(),
            budget_bytes,
            bases_budget_bytes: budget_bytes / 4 * 3,
        }
    }

    /// The value under `key`, if cached (and marks it recently used).
    pub(crate) fn get(&mut self, key: CacheKey) -> Option<Cached> {
        if let Some(v) = self.bases.lru.get(&key) {
            return Some(v.clone());
        }
        self.others.lru.get(&key).cloned()
    }

    /// Caches `value`; `whole`: stored whole (a base), not as a delta.
    pub(crate) fn insert(&mut self, key: CacheKey, value: Cached, whole: bool) {
        let size = value.size_bytes();
        if whole {
            if size > self.bases_budget_bytes {
                return;
            }
            self.bases.put(key, value);
            self.bases.evict_to(self.bases_budget_bytes);
        } else {
            if size > self.budget_bytes - self.bases.bytes {
                return;
            }
            self.others.put(key, value);
        }
        self.others
            .evict_to(self.budget_bytes.saturating_sub(self.bases.bytes));
    }

    /// Puts `value` in place of the value under `key` (the same bytes, held another way), if
    /// that is still cached; it keeps its place in the LRU order.
    pub(crate) fn replace(&mut self, key: CacheKey, value: Arc<Value>) {
        for lru in [&mut self.bases, &mut self.others] {
            if let Some(slot) = lru.lru.peek_mut(&key) {
                let old = std::mem::replace(slot, Cached::Value(value));
                lru.bytes = lru.bytes + slot.size_bytes() - old.size_bytes();
                return;
            }
        }
    }

    /// Drops every value.
    pub(crate) fn clear(&mut self) {
        self.bases = Lru::new();
        self.others = Lru::new();
    }

    /// Bytes of decoded values held, and how many.
    pub(crate) fn stats(&self) -> (usize, usize) {
        (
            self.bases.bytes + self.others.bytes,
            self.bases.lru.len() + self.others.lru.len(),
        )
    }
}
