//! The seeded workloads that drive Helios in `helios demo`, `helios tune` and the benches,
//! defined once so that a seed and a size mean the same run everywhere.
//!
//! This crate is responsible for generating work and checking what Helios returns for it:
//!
//! - [`mcts`]: a Monte Carlo tree search over Connect Four whose positions live in an engine
//!   (speculative branches, critical moves), its ops recorded for replay on a
//!   [`mcts::Backend`], and the same search on plain boards in memory, the limit of the
//!   workload without an engine;
//! - [`kv`]: the key-value event stream of the random-access read bench and of `helios tune`,
//!   with every key's history as the reference answer;
//! - [`many_streams`]: many short key-value streams appended to in a seeded random
//!   interleaving (classic event sourcing), with every stream's state at any version as the
//!   reference answer;
//! - [`payloads`]: the event payloads of the append benches;
//! - [`latency`]: the latency histograms the workloads' own reports are written in, and
//!   [`mounts`], which file system a run's files are on.
//!
//! It is not responsible for the peers Helios is compared against (SQLite, naive durable
//! designs, snapshots, replay from the start, raw write floors: the `helios-peers` crate), for
//! timing harnesses, tables and verdicts (`helios-benches`), or for any command's output
//! (`helios-cli`). Among this workspace's crates it depends only on `helios` and
//! `helios-testkit`, and on no database, so the `helios` binary uses it without building
//! SQLite.
//!
//! Every random choice comes from [`Rng`] (defined in `helios-testkit`, re-exported here) from
//! a seed; nothing depends on time, addresses or hash order.

pub mod kv;
pub mod latency;
pub mod many_streams;
pub mod mcts;
pub mod mounts;
pub mod payloads;

/// The generator and default seed every workload draws from, defined in `helios-testkit` so
/// that a seed means the same sequence in tests, the simulator and here.
pub use helios_testkit::{DEFAULT_SEED, Rng};

/// Parses a seed as a user types one: decimal, or hexadecimal after `0x`, with `_` separators
/// allowed (`0x4865_6c69_6f73_2121`).
///
/// # Errors
/// A message for the user when `text` is not such a number.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let clean = text.replace('_', "");
    match clean.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => clean.parse(),
    }
    .map_err(|_| "a seed is a whole number, decimal or 0x-hexadecimal".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hexadecimal() {
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("0x4865_6c69_6f73_2121"), Ok(DEFAULT_SEED));
        assert_eq!(parse_seed("1_000"), Ok(1000));
        assert!(parse_seed("0xZ").is_err());
        assert!(parse_seed("-1").is_err());
    }
}
