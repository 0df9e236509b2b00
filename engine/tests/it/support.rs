//! Helpers shared by the integration tests.

use std::collections::BTreeMap;

use helios::kv;

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
