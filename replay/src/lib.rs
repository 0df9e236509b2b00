//! Replay for Helios: turning events into state.
//!
//! This crate is responsible for the state model (a stream's state is an ordered map of byte
//! keys to byte values), the state machines that apply events to it, and (as the checkpoint
//! issue lands) layered views over checkpoints and reconstruction at any version. It never
//! writes the log; it reads events handed to it.
//!
//! What exists today is the built-in key-value state machine's event format, the one
//! `helios append` will write by default, and its reference fold into a `BTreeMap`.

pub mod kv;
