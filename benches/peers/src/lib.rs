//! The peers Helios is compared against, all in one place: what a user could use instead, or
//! the floor no design can go below. Each is measured by a bench program (`helios-benches`) or
//! by `helios demo` in the same process as Helios, on the same workload.
//!
//! This crate is responsible for the peers themselves and for making each one do what its
//! design does, no more and no less:
//!
//! - [`floor`]: the raw durable write, `pwrite` + `fdatasync` of one engine-sized frame into a
//!   preallocated file ([`floor::RawFloor`]);
//! - [`naive`]: every commit durable on its own, as an MCTS [`Backend`](helios_workloads::mcts::Backend)
//!   over the raw floor and as a second Helios store with a critical append per commit;
//! - [`snapshot`]: a full state archived with rkyv every N events;
//! - [`replay`]: state by replay from the first event;
//! - `sqlite` (with the `sqlite` feature): SQLite in WAL mode, as an event table and as the whole
//!   MCTS workload;
//! - `sqlite_event_store` (with the `sqlite` feature): SQLite as an event store for many
//!   key-value streams, with a snapshot every 10 events of a stream (the `many_streams` bench).
//!
//! It is not responsible for generating the workloads (`helios-workloads`) or for timing and
//! reporting (`helios-benches`, `helios demo`): nothing here reads a clock. SQLite is behind the
//! `sqlite` feature, which the bench programs enable and the `helios` binary does not, so the
//! product never compiles SQLite.

pub mod floor;
pub mod naive;
pub mod replay;
pub mod snapshot;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "sqlite")]
pub mod sqlite_event_store;
