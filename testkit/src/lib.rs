//! Deterministic helpers shared by Helios' simulated storage, its tests, fuzz targets and
//! workloads, defined here once so that a seed means the same thing everywhere.
//!
//! This crate is responsible for the seeded pseudo-random generator ([`Rng`]) and the seed
//! constants that name a reproducible run. It is not responsible for any Helios type: it
//! depends on nothing, so the lowest crate (`helios-log`, for its simulated storage) can use
//! it. The reference model of the key-value machine is `helios::kv::fold`, next to the machine
//! it checks; tests use that one.
//!
//! `tests/single_definitions.rs` fails when the generator or a shared constant is defined a
//! second time anywhere in the workspace.

/// The seed of every bench workload and of the demo unless one is given: "Helios!!" in ASCII.
pub const DEFAULT_SEED: u64 = 0x4865_6c69_6f73_2121;

/// A deterministic pseudo-random generator (splitmix64): the same seed gives the same sequence
/// on every machine, in every run. Small and fast; not for anything that needs unpredictability.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator started from `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; 0 when `bound` is 0, without advancing the generator (so that
    /// fault injection with an empty range leaves the rest of a seed's sequence unchanged).
    /// The modulo bias is below `bound / 2^64`, far below anything a test could notice.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }

    /// A number in `0..bound`, as an index; 0 when `bound` is 0.
    pub fn index(&mut self, bound: usize) -> usize {
        // The result is below `bound`, which is a usize, so it converts back.
        usize::try_from(self.below(bound as u64)).unwrap_or(0)
    }

    /// `true` with probability `numerator / denominator` (never when `denominator` is 0).
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        denominator > 0 && self.below(denominator) < numerator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_splitmix64() {
        // The first outputs of splitmix64 from seed 0, as published with the algorithm.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn below_zero_does_not_advance() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.below(0), 0);
        assert_eq!(a.next_u64(), b.next_u64());
        for bound in 1..100 {
            assert!(a.below(bound) < bound);
        }
        assert!(!a.chance(1, 0));
        assert!(a.chance(5, 5));
    }
}
