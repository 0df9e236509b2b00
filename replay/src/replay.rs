//! Replaying events with isolation: each event's changes reach the overlay only if the state
//! machine accepts the event.
//!
//! For each event, replay gives the machine a [`StateHandle`] over an empty change set
//! (reading through that change set, the overlay, then the base layers), calls
//! [`StateMachine::apply`] under [`std::panic::catch_unwind`], and merges the change set into
//! the overlay only when `apply` returns `Ok`. A rejection or a panic discards the change set
//! and stops the replay with a [`ReplayError`].
//!
//! Invariants of this module:
//! - After an error, the overlay is exactly as it was before the failing event: every earlier
//!   event's changes are in it, and nothing of the failing one.
//! - `Overlay::events_replayed` counts exactly the events whose changes were merged.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::changes::Changes;
use crate::machine::{Rejected, StateHandle, StateMachine};
use crate::view::Base;

/// The changes made by replayed events, newest layer of a view: values and tombstones.
#[derive(Clone, Debug)]
pub struct Overlay {
    changes: Changes,
    events_replayed: u64,
    /// The change set of the event being applied, kept between events so that its buffers
    /// are reused; empty between calls.
    scratch: Changes,
}

impl Overlay {
    /// An empty overlay: no event replayed.
    #[must_use]
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// The number of events whose changes the overlay holds.
    #[must_use]
    pub fn events_replayed(&self) -> u64 {
        self.events_replayed
    }

    /// The changes: the value each changed key ends with, or a tombstone for a deleted key.
    #[must_use]
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The changes, by value (for example to write them out as a delta).
    #[must_use]
    pub fn into_changes(self) -> Changes {
        self.changes
    }
}

impl Default for Overlay {
    fn default() -> Overlay {
        Overlay {
            changes: Changes::new(),
            events_replayed: 0,
            scratch: Changes::unsorted(),
        }
    }
}

impl PartialEq for Overlay {
    /// The same changes from the same number of events.
    fn eq(&self, other: &Overlay) -> bool {
        self.events_replayed == other.events_replayed && self.changes == other.changes
    }
}

impl Eq for Overlay {}

/// Why a replay stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The state machine refused an event.
    #[error("state machine `{machine}` rejected event {event_index} of the replay: {reason}")]
    Rejected {
        /// The event's position among the events given to this replay, from 0.
        event_index: u64,
        /// The machine's name.
        machine: String,
        /// The machine's reason.
        reason: Rejected,
    },
    /// The state machine panicked on an event.
    #[error(
        "state machine `{machine}` panicked applying event {event_index} of the replay: {message}"
    )]
    Panicked {
        /// The event's position among the events given to this replay, from 0.
        event_index: u64,
        /// The machine's name.
        machine: String,
        /// The panic message, when the payload is a string.
        message: String,
    },
}

impl ReplayError {
    /// The failing event's position among the events given to the replay, from 0. With the
    /// overlay's starting version `b`, the event is version `b + event_index + 1`.
    #[must_use]
    pub fn event_index(&self) -> u64 {
        match self {
            ReplayError::Rejected { event_index, .. }
            | ReplayError::Panicked { event_index, .. } => *event_index,
        }
    }
}

/// Applies `events`, in order, through `machine` on top of `base` and `overlay`, merging each
/// accepted event's changes into `overlay`.
///
/// Each event runs in isolation: its writes go to a scratch change set that is merged only if
/// `apply` returns `Ok`. A rejected event, or one on which `apply` panics, leaves `overlay`
/// exactly as it was before that event, and stops the replay; the events before it stay
/// applied, and [`ReplayError::event_index`] says which event failed.
///
/// Panics are caught with [`catch_unwind`], so they are only isolated in builds that unwind
/// (`panic = "abort"` ends the process). The closure is wrapped in [`AssertUnwindSafe`]: the
/// only state it mutates is the scratch change set, which is cleared unread after a panic; the
/// overlay and the base are reachable from the handle only through shared references, and
/// `SortedRun` implementations are read-only. State a machine hides in `self` behind interior
/// mutability is the machine's own, and may be left inconsistent by its panic.
///
/// # Errors
/// [`ReplayError::Rejected`] or [`ReplayError::Panicked`] for the first event that fails.
pub fn replay<E: AsRef<[u8]>>(
    machine: &dyn StateMachine,
    base: &Base,
    overlay: &mut Overlay,
    events: impl IntoIterator<Item = E>,
) -> Result<(), ReplayError> {
    for (event_index, event) in (0u64..).zip(events) {
        replay_one(machine, base, overlay, event.as_ref(), event_index)?;
    }
    Ok(())
}

/// Applies one event as [`replay`] does, for callers that hand events over one at a time
/// (for example straight from a read buffer, without collecting them first). `event_index` is
/// the event's position in the caller's sequence, used in the error.
///
/// # Errors
/// [`ReplayError::Rejected`] or [`ReplayError::Panicked`]; `overlay` is then unchanged.
pub fn replay_one(
    machine: &dyn StateMachine,
    base: &Base,
    overlay: &mut Overlay,
    event: &[u8],
    event_index: u64,
) -> Result<(), ReplayError> {
    let Overlay {
        changes,
        events_replayed,
        scratch,
    } = overlay;
    let outcome = {
        let mut handle = StateHandle::new(scratch, changes, base);
        catch_unwind(AssertUnwindSafe(|| machine.apply(event, &mut handle)))
    };
    if matches!(outcome, Ok(Ok(()))) {
        changes.absorb(scratch);
        *events_replayed += 1;
    } else {
        scratch.clear();
    }
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(ReplayError::Rejected {
            event_index,
            machine: machine.name().to_owned(),
            reason,
        }),
        Err(payload) => Err(ReplayError::Panicked {
            event_index,
            machine: machine.name().to_owned(),
            message: panic_message(payload.as_ref()),
        }),
    }
}

/// The message of a panic payload: `panic!` produces a `&str` or a `String`.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(the panic payload is not a string)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvMachine;
    use crate::view::{LayerInfo, View};
    use helios_checkpoint::MemRun;
    use std::sync::Arc;

    /// Puts `key` then fails in the way the event says: `ok KEY`, `reject KEY`, `panic KEY`,
    /// `panic-any KEY` (a non-string payload).
    struct Moody;

    impl StateMachine for Moody {
        fn name(&self) -> &str {
            "moody"
        }

        fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected> {
            let text = std::str::from_utf8(event).map_err(|e| Rejected::new(e.to_string()))?;
            let (what, key) = text.split_once(' ').ok_or(Rejected::new("no key"))?;
            state.put(key.as_bytes(), what.as_bytes());
            state.delete(b"base");
            match what {
                "ok" => Ok(()),
                "reject" => Err(Rejected::new(format!("no {key} today"))),
                "panic" => panic!("moody about {key}"),
                "panic-any" => std::panic::panic_any(7_u32),
                _ => Err(Rejected::new("unknown mood")),
            }
        }
    }

    fn base() -> Base {
        let mut full = MemRun::new();
        full.put(b"base", b"1");
        Base::new().with_layer_below(LayerInfo::new(1, 10), Arc::new(full))
    }

    #[test]
    fn accepted_events_are_merged_in_order() {
        let mut overlay = Overlay::new();
        replay(&Moody, &base(), &mut overlay, ["ok a", "ok b"]).expect("both accepted");
        assert_eq!(overlay.events_replayed(), 2);
        assert_eq!(overlay.changes().len(), 3);
        let view = View::new(base(), overlay);
        assert_eq!(view.get(b"a"), Some(&b"ok"[..]));
        assert_eq!(view.get(b"base"), None);
    }

    #[test]
    fn failing_events_leave_the_overlay_as_before() {
        for (event, expected) in [
            (
                "reject x",
                ReplayError::Rejected {
                    event_index: 1,
                    machine: "moody".into(),
                    reason: Rejected::new("no x today"),
                },
            ),
            (
                "panic x",
                ReplayError::Panicked {
                    event_index: 1,
                    machine: "moody".into(),
                    message: "moody about x".into(),
                },
            ),
            (
                "panic-any x",
                ReplayError::Panicked {
                    event_index: 1,
                    machine: "moody".into(),
                    message: "(the panic payload is not a string)".into(),
                },
            ),
        ] {
            let base = base();
            let mut overlay = Overlay::new();
            let before = {
                let mut before = Overlay::new();
                replay(&Moody, &base, &mut before, ["ok a"]).expect("accepted");
                before
            };
            let error = replay(&Moody, &base, &mut overlay, ["ok a", event, "ok b"])
                .expect_err("the second event fails");
            assert_eq!(error, expected);
            assert_eq!(error.event_index(), 1);
            assert_eq!(overlay, before, "after {event}");
            let view = View::new(base, overlay.clone());
            assert_eq!(view.get(b"x"), None);
            assert_eq!(view.get(b"b"), None, "replay stops at the failure");
            assert_eq!(view.report().events_replayed, 1);

            // The same overlay takes more events, and nothing of the failed one comes back
            // with them (the change set's buffers are reused from event to event).
            replay(&Moody, &self::base(), &mut overlay, ["ok b"]).expect("accepted");
            let view = View::new(self::base(), overlay);
            assert_eq!(
                view.get(b"x"),
                None,
                "after {event}, then an accepted event"
            );
            assert_eq!(view.get(b"b"), Some(&b"ok"[..]));
            assert_eq!(view.report().events_replayed, 2);
        }
    }

    #[test]
    fn errors_say_what_happened() {
        let error = replay(
            &KvMachine,
            &Base::new(),
            &mut Overlay::new(),
            ["set a 1", "put a 2"],
        )
        .expect_err("not a kv event");
        assert_eq!(
            error.to_string(),
            "state machine `kv` rejected event 1 of the replay: \
             a key-value event starts with `set ` or `del `"
        );
        let error =
            replay(&Moody, &Base::new(), &mut Overlay::new(), ["panic z"]).expect_err("panics");
        assert_eq!(
            error.to_string(),
            "state machine `moody` panicked applying event 0 of the replay: moody about z"
        );
    }
}
