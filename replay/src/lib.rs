//! Replay for Helios: turning events into state, and reading a stream's state at any version
//! through layers.
//!
//! **Responsible for:**
//! - the state model: a stream's state is an ordered map of byte keys to byte values;
//! - state machines that apply one event to that map through a [`StateHandle`]: the
//!   [`StateMachine`] trait, the built-in [`KvMachine`] for the `set KEY VALUE` / `del KEY`
//!   text events of [`kv`], and the typed layer ([`Aggregate`], [`AggregateMachine`]) for a
//!   state that is one rkyv-archivable Rust value;
//! - replay with isolation ([`replay`]): each event's changes reach the [`Overlay`] only if the
//!   machine accepts the event; a rejection or a panic leaves the overlay as it was;
//! - read-only [`View`]s: the overlay on top of a [`Base`] of sorted-run layers (newest first:
//!   level-1 delta, level-2 delta, ..., full checkpoint), with point reads, ordered iteration
//!   over all keys, a range or a prefix (a k-way merge that honours tombstones), and a
//!   [`ViewReport`] of the layers used and the events replayed.
//!
//! **Not responsible for:** it never writes the log and knows no files: it does no I/O at all.
//! Events and layers are handed to it. Which checkpoints exist and which layers a version
//! reads is `helios-checkpoint`'s level policy; building, storing, mapping and validating
//! checkpoint files is `helios-checkpoint`'s too; finding the events and layers of a stream at
//! a version, and naming the stream and version in errors, is the engine's.
//!
//! # The map model: a custom state machine
//!
//! ```
//! use std::sync::Arc;
//! use helios_replay::{Base, LayerInfo, MemRun, Rejected, StateHandle, StateMachine, View};
//!
//! /// Counts page views: an event is `view PAGE`; the state maps `views/PAGE` to a count.
//! struct PageViews;
//!
//! impl StateMachine for PageViews {
//!     fn name(&self) -> &str {
//!         "page-views"
//!     }
//!
//!     fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
//!         let page = event
//!             .strip_prefix(b"view ")
//!             .ok_or_else(|| Rejected::new("expected `view PAGE`"))?;
//!         let key = [b"views/".as_slice(), page].concat();
//!         let count: u64 = match state.get(&key) {
//!             None => 0,
//!             Some(bytes) => std::str::from_utf8(bytes)
//!                 .ok()
//!                 .and_then(|text| text.parse().ok())
//!                 .ok_or_else(|| Rejected::new("a stored count is not a number"))?,
//!         };
//!         state.put(&key, (count + 1).to_string().as_bytes());
//!         Ok(())
//!     }
//! }
//!
//! // The checkpoint at version 10 (the engine maps it from a file; here it is built by hand).
//! let mut checkpoint = MemRun::new();
//! checkpoint.put(b"views/about", b"3");
//! checkpoint.put(b"views/home", b"7");
//! let base = Base::new().with_layer_below(LayerInfo::new(1, 10), Arc::new(checkpoint));
//!
//! // The state at version 13: events 11, 12 and 13 replayed on top of the checkpoint.
//! let view = View::replay(&PageViews, base, ["view home", "view pricing", "view home"])?;
//! assert_eq!(view.get(b"views/home"), Some(&b"9"[..]));
//! assert_eq!(view.get(b"views/contact"), None);
//! let pages: Vec<&[u8]> = view.prefix(b"views/").map(|(key, _value)| key).collect();
//! assert_eq!(pages, [&b"views/about"[..], b"views/home", b"views/pricing"]);
//! assert_eq!(view.report().events_replayed, 3);
//! println!("{}", view.report());
//!
//! // A bad event is an error naming the machine and the event; the view is not built.
//! let error = View::replay(&PageViews, Base::new(), ["view home", "click home"]).unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "state machine `page-views` rejected event 1 of the replay: expected `view PAGE`"
//! );
//! # Ok::<(), helios_replay::ReplayError>(())
//! ```
//!
//! # The typed layer: an aggregate
//!
//! The state and the events are Rust types deriving rkyv's `Archive`, `Serialize` and
//! `Deserialize` (with the same rkyv version as this crate, re-exported as
//! [`helios_replay::rkyv`](rkyv)). The aggregate is stored under one key and re-archived after
//! every event: right for small aggregates; a large state belongs in the map model.
//!
//! ```
//! use helios_replay::{
//!     Aggregate, AggregateMachine, Base, Rejected, View, encode_event, load_aggregate,
//! };
//!
//! #[derive(Debug, Default, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
//! struct BankAccount {
//!     balance: u64,
//! }
//!
//! #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
//! enum AccountEvent {
//!     Deposited { amount: u64 },
//!     Withdrew { amount: u64 },
//! }
//!
//! impl Aggregate for BankAccount {
//!     type Event = AccountEvent;
//!
//!     fn apply(&mut self, event: &AccountEvent) -> Result<(), Rejected> {
//!         match *event {
//!             AccountEvent::Deposited { amount } => {
//!                 self.balance = self
//!                     .balance
//!                     .checked_add(amount)
//!                     .ok_or_else(|| Rejected::new("balance overflow"))?;
//!             }
//!             AccountEvent::Withdrew { amount } => {
//!                 self.balance = self.balance.checked_sub(amount).ok_or_else(|| {
//!                     Rejected::new(format!(
//!                         "overdraft: balance {}, withdrawal {amount}",
//!                         self.balance
//!                     ))
//!                 })?;
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let events = [
//!     AccountEvent::Deposited { amount: 100 },
//!     AccountEvent::Withdrew { amount: 30 },
//!     AccountEvent::Withdrew { amount: 500 },
//! ];
//! let events: Vec<Vec<u8>> = events
//!     .iter()
//!     .map(encode_event::<BankAccount>)
//!     .collect::<Result<_, _>>()?;
//!
//! let machine = AggregateMachine::<BankAccount>::new();
//! let view = View::replay(&machine, Base::new(), &events[..2])?;
//! assert_eq!(load_aggregate::<BankAccount>(&view)?.balance, 70);
//!
//! let error = View::replay(&machine, Base::new(), &events).unwrap_err();
//! assert!(error.to_string().ends_with("overdraft: balance 70, withdrawal 500"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aggregate;
mod changes;
pub mod kv;
mod machine;
mod merge;
mod replay;
mod view;

pub use aggregate::{
    AGGREGATE_KEY, Aggregate, AggregateError, AggregateMachine, Archivable, encode_event,
    load_aggregate,
};
pub use changes::Changes;
pub use kv::KvMachine;
pub use machine::{Rejected, StateHandle, StateMachine};
pub use merge::ViewIter;
pub use replay::{Overlay, ReplayError, replay, replay_one};
pub use view::{Base, LayerInfo, LayerReport, View, ViewReport};

/// The sorted-run layer abstraction views are made of (from `helios-checkpoint`).
pub use helios_checkpoint::{Lookup, MemRun, RunEntry, SortedRun};
/// The rkyv this crate archives aggregates with: derive with the same version.
pub use rkyv;
