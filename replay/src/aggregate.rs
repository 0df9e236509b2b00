//! The typed layer for classic event sourcing: a user's state is one Rust value (an
//! *aggregate*), its events are Rust values, and neither ever touches bytes.
//!
//! [`AggregateMachine<A>`] adapts an [`Aggregate`] to the map model: the aggregate is stored
//! under one key, [`AGGREGATE_KEY`], as the rkyv archive of `A`; an event is the rkyv archive
//! of `A::Event` (made by [`encode_event`]). Applying an event loads the aggregate (or
//! `A::default()` when the key is absent), applies the event, and stores the re-archived
//! aggregate. [`load_aggregate`] reads the aggregate out of a [`View`] at any version.
//!
//! Every archive read here is validated (bytecheck) before use, never trusted: event bytes
//! come from the log and state bytes from checkpoints, both outside this crate's control.
//! Bytes not aligned for rkyv are first copied into an [`AlignedVec`].
//!
//! Cost: the whole aggregate is deserialised and re-serialised for every event, and every
//! checkpoint holds a full copy of it. That is right for small aggregates (an account, an
//! order); a large state (a catalogue, an index) belongs in the map model, one key per entity,
//! where a checkpoint delta stores only the entities that changed.
//!
//! Keep archived types deterministic (no `HashMap`): checkpoints are checksummed and compared.

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;

use rkyv::api::high::{HighDeserializer, HighSerializer, HighValidator};
use rkyv::bytecheck::CheckBytes;
use rkyv::rancor::BoxedError;
use rkyv::ser::allocator::ArenaHandle;
use rkyv::util::AlignedVec;

use crate::machine::{Rejected, StateHandle, StateMachine};
use crate::view::View;

/// The key an [`AggregateMachine`] stores its aggregate under.
pub const AGGREGATE_KEY: &[u8] = b"aggregate";

/// The alignment rkyv's own buffers use ([`AlignedVec`]'s default): archives read in place must
/// start at a multiple of it, others are copied first.
const ARCHIVE_ALIGNMENT: usize = AlignedVec::<16>::ALIGNMENT;

/// A type this crate can archive with rkyv and read back with validation.
///
/// Implemented for every type that derives rkyv's `Archive`, `Serialize` and `Deserialize`
/// (the derives also derive the `CheckBytes` validation of the archived type).
pub trait Archivable:
    Sized
    + rkyv::Archive<
        Archived: for<'a> CheckBytes<HighValidator<'a, BoxedError>>
                      + rkyv::Deserialize<Self, HighDeserializer<BoxedError>>,
    > + for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, BoxedError>>
{
}

impl<T> Archivable for T where
    T: rkyv::Archive<
            Archived: for<'a> CheckBytes<HighValidator<'a, BoxedError>>
                          + rkyv::Deserialize<T, HighDeserializer<BoxedError>>,
        > + for<'a> rkyv::Serialize<HighSerializer<AlignedVec, ArenaHandle<'a>, BoxedError>>
{
}

/// A user's state as one Rust value, changed by typed events.
///
/// `Default` is the state before the first event. Like any state machine, `apply` must be
/// deterministic.
pub trait Aggregate: Default + Archivable {
    /// The events that change the aggregate.
    type Event: Archivable;

    /// The name of the aggregate's state machine in reports and errors. Default: the type's
    /// name.
    #[must_use]
    fn name() -> &'static str {
        type_name::<Self>()
    }

    /// Applies one event.
    ///
    /// # Errors
    /// [`Rejected`] when the event is not valid for the current state (for example a
    /// withdrawal beyond the balance). The event's changes are then discarded, including any
    /// change this call made to `self` before returning the error.
    fn apply(&mut self, event: &Self::Event) -> Result<(), Rejected>;
}

/// Why an aggregate or an event cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// The bytes under [`AGGREGATE_KEY`] are not a valid archive of the aggregate.
    #[error("the state under key `aggregate` is not a valid archive of `{type_name}`")]
    InvalidState {
        /// The aggregate's type.
        type_name: &'static str,
        /// What validation found.
        #[source]
        source: BoxedError,
    },
    /// An event could not be archived.
    #[error("an event of type `{type_name}` could not be archived")]
    EncodeEvent {
        /// The event's type.
        type_name: &'static str,
        /// What rkyv reported.
        #[source]
        source: BoxedError,
    },
}

/// The [`StateMachine`] of an [`Aggregate`]: events are rkyv archives of `A::Event`, the state
/// is the rkyv archive of `A` under [`AGGREGATE_KEY`].
///
/// Rejects an event that is not a valid archive of `A::Event`, an event `A::apply` rejects,
/// and (since a state machine can only reject) a corrupt stored aggregate.
pub struct AggregateMachine<A> {
    // `fn() -> A`: the machine holds no `A`, so it is `Send + Sync` whatever `A` is.
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate> AggregateMachine<A> {
    /// The machine for `A`.
    #[must_use]
    pub fn new() -> AggregateMachine<A> {
        AggregateMachine {
            aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate> Default for AggregateMachine<A> {
    fn default() -> Self {
        AggregateMachine::new()
    }
}

impl<A> Clone for AggregateMachine<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for AggregateMachine<A> {}

impl<A> fmt::Debug for AggregateMachine<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AggregateMachine<{}>", type_name::<A>())
    }
}

impl<A: Aggregate> StateMachine for AggregateMachine<A> {
    fn name(&self) -> &str {
        A::name()
    }

    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
        let event: A::Event = decode(event).map_err(|error| {
            Rejected::new(format!(
                "the event is not a valid archive of `{}`: {error}",
                type_name::<A::Event>()
            ))
        })?;
        let mut aggregate = match state.get(AGGREGATE_KEY) {
            None => A::default(),
            Some(bytes) => decode::<A>(bytes).map_err(|error| {
                Rejected::new(format!(
                    "the stored state under key `aggregate` is not a valid archive of `{}`: \
                     {error}",
                    type_name::<A>()
                ))
            })?,
        };
        aggregate.apply(&event)?;
        let bytes = rkyv::to_bytes::<BoxedError>(&aggregate).map_err(|error| {
            Rejected::new(format!(
                "the new state of `{}` could not be archived: {error}",
                type_name::<A>()
            ))
        })?;
        state.put(AGGREGATE_KEY, &bytes);
        Ok(())
    }
}

/// The bytes of an event for an [`AggregateMachine<A>`]: the rkyv archive of `event`.
///
/// # Errors
/// [`AggregateError::EncodeEvent`] when rkyv cannot archive the event (for example an archive
/// beyond rkyv's 2 GiB relative-pointer range).
pub fn encode_event<A: Aggregate>(event: &A::Event) -> Result<Vec<u8>, AggregateError> {
    rkyv::to_bytes::<BoxedError>(event)
        .map(AlignedVec::into_vec)
        .map_err(|source| AggregateError::EncodeEvent {
            type_name: type_name::<A::Event>(),
            source,
        })
}

/// The aggregate in `view`: the one stored under [`AGGREGATE_KEY`], or `A::default()` when the
/// key is absent (no event yet).
///
/// # Errors
/// [`AggregateError::InvalidState`] when the stored bytes are not a valid archive of `A`.
pub fn load_aggregate<A: Aggregate>(view: &View) -> Result<A, AggregateError> {
    match view.get(AGGREGATE_KEY) {
        None => Ok(A::default()),
        Some(bytes) => decode(bytes).map_err(|source| AggregateError::InvalidState {
            type_name: type_name::<A>(),
            source,
        }),
    }
}

/// Validates `bytes` as an archive of `T` and deserialises it, copying the bytes into an
/// aligned buffer first when they do not start at an rkyv-aligned address.
fn decode<T: Archivable>(bytes: &[u8]) -> Result<T, BoxedError> {
    if bytes.as_ptr().addr().is_multiple_of(ARCHIVE_ALIGNMENT) {
        rkyv::from_bytes::<T, BoxedError>(bytes)
    } else {
        let mut aligned = AlignedVec::<ARCHIVE_ALIGNMENT>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        rkyv::from_bytes::<T, BoxedError>(&aligned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Base;

    #[derive(Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    struct Tally {
        total: u64,
        names: Vec<String>,
    }

    #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
    enum TallyEvent {
        Add(u64, String),
    }

    impl Aggregate for Tally {
        type Event = TallyEvent;

        fn apply(&mut self, event: &TallyEvent) -> Result<(), Rejected> {
            let TallyEvent::Add(amount, name) = event;
            self.total += amount;
            self.names.push(name.clone());
            Ok(())
        }
    }

    fn event(amount: u64, name: &str) -> Vec<u8> {
        encode_event::<Tally>(&TallyEvent::Add(amount, name.into())).expect("archivable")
    }

    #[test]
    fn misaligned_bytes_are_copied_then_validated() {
        let bytes = event(3, "x");
        let mut shifted = AlignedVec::<16>::new();
        shifted.extend_from_slice(&[0]);
        shifted.extend_from_slice(&bytes);
        let decoded: TallyEvent = decode(&shifted[1..]).expect("valid once aligned");
        let TallyEvent::Add(amount, name) = decoded;
        assert_eq!((amount, name.as_str()), (3, "x"));
    }

    #[test]
    fn garbage_events_and_states_are_rejected_not_trusted() {
        let machine = AggregateMachine::<Tally>::new();
        let error =
            View::replay(&machine, Base::new(), [&[0xAB_u8; 5][..]]).expect_err("not an archive");
        assert!(
            error.to_string().contains("is not a valid archive of"),
            "{error}"
        );

        let view = View::replay(&machine, Base::new(), [event(1, "a"), event(2, "b")])
            .expect("valid events");
        assert_eq!(
            load_aggregate::<Tally>(&view).expect("valid state"),
            Tally {
                total: 3,
                names: vec!["a".into(), "b".into()]
            }
        );

        let corrupt = View::replay(&crate::kv::KvMachine, Base::new(), ["set aggregate junk"])
            .expect("a kv event");
        let error = load_aggregate::<Tally>(&corrupt).expect_err("junk is not a Tally");
        assert!(matches!(error, AggregateError::InvalidState { .. }));
        assert!(error.to_string().contains("Tally"), "{error}");
    }

    #[test]
    fn no_event_loads_the_default() {
        let view = View::new(Base::new(), crate::Overlay::new());
        assert_eq!(
            load_aggregate::<Tally>(&view).expect("absent"),
            Tally::default()
        );
        assert!(AggregateMachine::<Tally>::new().name().ends_with("Tally"));
    }
}
