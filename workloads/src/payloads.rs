//! The event payloads of the append benches: [`PAYLOAD_LEN`] bytes each, from a seed, so that
//! every peer and every run appends the same bytes.

use crate::{DEFAULT_SEED, Rng};

/// Payload size of every event the append benches write, in bytes.
pub const PAYLOAD_LEN: usize = 100;

/// Number of distinct payloads in a [`Payloads`] ring.
const RING_LEN: usize = 1024;

/// Deterministic event payloads of [`PAYLOAD_LEN`] bytes: a ring of 1024 pseudo-random payloads
/// generated from a seed, so that a run never pays for generation inside a timed region and two
/// runs (or two peers) append the same bytes.
#[derive(Clone, Debug)]
pub struct Payloads {
    ring: Vec<[u8; PAYLOAD_LEN]>,
}

impl Payloads {
    /// Generates the ring from `seed`: each payload is the generator's next words, little
    /// endian, the last one cut to fit.
    #[must_use]
    pub fn new(seed: u64) -> Payloads {
        let mut rng = Rng::new(seed);
        let ring = (0..RING_LEN)
            .map(|_| {
                let mut payload = [0u8; PAYLOAD_LEN];
                for chunk in payload.chunks_mut(8) {
                    let word = rng.next_u64().to_le_bytes();
                    chunk.copy_from_slice(&word[..chunk.len()]);
                }
                payload
            })
            .collect();
        Payloads { ring }
    }

    /// The payload of event number `index` (the ring repeats every 1024 events).
    #[must_use]
    pub fn get(&self, index: u64) -> &[u8; PAYLOAD_LEN] {
        // The remainder is below RING_LEN, so it fits any usize.
        let slot = usize::try_from(index % RING_LEN as u64).unwrap_or(0);
        &self.ring[slot]
    }
}

impl Default for Payloads {
    /// The ring for [`DEFAULT_SEED`].
    fn default() -> Self {
        Payloads::new(DEFAULT_SEED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_deterministic_and_distinct() {
        let a = Payloads::new(DEFAULT_SEED);
        let b = Payloads::new(DEFAULT_SEED);
        assert_eq!(a.get(7), b.get(7));
        assert_ne!(a.get(7), a.get(8));
        assert_eq!(a.get(3), a.get(3 + RING_LEN as u64));
        assert_eq!(a.get(0).len(), PAYLOAD_LEN);
    }

    #[test]
    fn the_ring_is_the_one_every_bench_run_has_appended() {
        // Golden bytes, computed with the benches' own splitmix64 before the generator moved to
        // helios-testkit: a change here changes what every append bench writes.
        let payloads = Payloads::default();
        assert_eq!(
            payloads.get(0)[..8],
            [0x1a, 0x8e, 0xd6, 0x43, 0xa3, 0x1f, 0xae, 0x82]
        );
        assert_eq!(
            payloads.get(1023)[PAYLOAD_LEN - 4..],
            [0xb7, 0xa1, 0x86, 0xb4]
        );
    }
}
