//! The saver's cache of decoded channel values: `Value` (a decoded value) and `ValueCache`,
//! two LRUs bounded by bytes so that whole values (the bases deltas decode against) are not
//! evicted by the values decoded from deltas.

use std::sync::Arc;

use lru::LruCache;

/// A decoded value: its serializer type tag (`None`: LangGraph's empty marker) and bytes.
#[derive(Debug)]
pub(crate) struct Value {
    /// The serializer's type tag; `None` for LangGraph's empty marker.
    pub(crate) ty: Option<Vec<u8>>,
    /// The serialized bytes.
    pub(crate) data: Vec<u8>,
}

impl Value {
    fn size_bytes(&self) -> usize {
        self.data.len() + self.ty.as_ref().map_or(0, Vec::len) + 64
    }
}

/// Decoded values by `(stream id, record version, index)`, in two LRUs bounded by bytes: whole
/// values (the bases every delta decodes against: few, and worth keeping) and the rest (values
/// decoded from deltas, and the newest values puts leave behind), so that a scan of old
/// checkpoints never evicts the bases. Keyed by stream id, not name: a thread deleted and
/// written again, or a copy, is a different stream with its own versions.
#[derive(Debug)]
pub(crate) struct ValueCache {
    bases: Lru,
    others: Lru,
}

/// `(stream id, record version, index of the value in the record)`.
pub(crate) type CacheKey = (u64, u64, u32);

/// One LRU of decoded values, evicted beyond a byte budget.
#[derive(Debug)]
struct Lru {
    lru: LruCache<CacheKey, Arc<Value>>,
    bytes: usize,
    budget_bytes: usize,
}

impl Lru {
    fn new(budget_bytes: usize) -> Lru {
        Lru {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget_bytes,
        }
    }

    fn insert(&mut self, key: CacheKey, value: Arc<Value>) {
        let size = value.size_bytes();
        if size > self.budget_bytes {
            return;
        }
        if let Some(old) = self.lru.put(key, value) {
            self.bytes -= old.size_bytes();
        }
        self.bytes += size;
        while self.bytes > self.budget_bytes {
            match self.lru.pop_lru() {
                Some((_, evicted)) => self.bytes -= evicted.size_bytes(),
                None => break,
            }
        }
    }
}

impl ValueCache {
    /// Three quarters of the budget for whole values, the rest for the others.
    pub(crate) fn new(budget_bytes: usize) -> ValueCache {
        let bases = budget_bytes / 4 * 3;
        ValueCache {
            bases: Lru::new(bases),
            others: Lru::new(budget_bytes - bases),
        }
    }

    /// The value under `key`, if cached (and marks it recently used).
    pub(crate) fn get(&mut self, key: CacheKey) -> Option<Arc<Value>> {
        if let Some(v) = self.bases.lru.get(&key) {
            return Some(v.clone());
        }
        self.others.lru.get(&key).cloned()
    }

    /// Caches `value`; `whole`: stored whole (a base), not as a delta.
    pub(crate) fn insert(&mut self, key: CacheKey, value: Arc<Value>, whole: bool) {
        if whole {
            self.bases.insert(key, value);
        } else {
            self.others.insert(key, value);
        }
    }

    /// Bytes of decoded values held, and how many.
    pub(crate) fn stats(&self) -> (usize, usize) {
        (
            self.bases.bytes + self.others.bytes,
            self.bases.lru.len() + self.others.lru.len(),
        )
    }
}
