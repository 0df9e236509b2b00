//! The measuring kit of the bench programs (`benches/*`): what every harness needs to time
//! Helios and its peers the same way and to report them in one format.
//!
//! This crate is responsible for measurement and reports:
//!
//! - [`disk`]: a store directory's bytes on disk, its files classified (log segments, spare,
//!   metadata, checkpoints, other), and the log's bytes through its last record;
//! - [`scratch`]: where the benches put their files ([`scratch_dir`]: never on tmpfs, where
//!   `fdatasync` is free), and [`open_engine`], an engine opened as a user would;
//! - [`machine`]: what a run ran on ([`Machine`]) and how busy it was ([`load_average`]);
//! - [`thread_io`]: page faults and blocks read per thread, and dropping files from the page
//!   cache, for cold reads;
//! - [`report`]: verdicts, ratios, units and latency table rows, shared by every report;
//! - [`runs`]: exact durations and percentiles of a handful of runs (opens, processes);
//! - [`args`]: the programs' command lines (clap), with cargo's `--bench` accepted.
//!
//! It is not responsible for the workloads (`helios-workloads`: the MCTS search, the key-value
//! stream, payloads, and the latency histograms `helios_workloads::latency::Latencies` the
//! reports are written in) or for the peers (`helios-peers`, which the programs use with its
//! `sqlite` feature). The bench programs themselves are `benches/*.rs`,
//! `benches/checkpoint_reads/`, `benches/mixed_workload/` and `benches/many_streams/`.

pub mod args;
pub mod cli_bin;
pub mod disk;
pub mod machine;
pub mod report;
pub mod runs;
pub mod scratch;
pub mod thread_io;

pub use machine::{Machine, load_average, source_commit};
pub use scratch::{open_engine, scratch_dir, scratch_root};
pub use thread_io::{ThreadIo, evict_files_under};
