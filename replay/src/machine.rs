//! The state-machine contract: how one event changes a stream's state.
//!
//! A stream's state is an ordered map of byte keys to byte values. A [`StateMachine`] applies
//! one event by reading and writing that map through a [`StateHandle`]. The handle reads through
//! the whole current view (the changes this event made so far, then the events replayed before
//! it, then every checkpoint layer, newest first) and writes only into the change set of the
//! event being applied, which replay merges into the view when, and only when, `apply` succeeds.
//!
//! Invariants of this module:
//! - A handle never exposes a way to mutate anything but its own change set: the overlay and
//!   the layers below are reachable only through shared references.
//! - A read through the handle sees the writes made earlier through the same handle.

use std::fmt;
use std::ops::Bound;

use helios_checkpoint::{HashedKey, SortedRun};

use crate::changes::Changes;
use crate::merge::{self, ViewIter};
use crate::view::Base;

/// A stream's state machine: it turns one event into changes to the stream's state.
///
/// Implementations must be deterministic (the same events on the same state give the same
/// changes: views at old versions are rebuilt by replaying events again, possibly on another
/// thread, long after the first time) and must keep all their state in the stream's map, not
/// in `self`. The trait is object safe; the engine holds an `Arc<dyn StateMachine>` per stream.
///
/// A machine that panics does not corrupt the view: replay catches the panic, discards the
/// event's changes and reports [`ReplayError::Panicked`](crate::ReplayError::Panicked). It is
/// still a bug in the machine, and the default panic hook still prints its message.
pub trait StateMachine: Send + Sync {
    /// A short name for reports and error messages, such as `"kv"`.
    fn name(&self) -> &str;

    /// Applies one event to the state behind `state`.
    ///
    /// # Errors
    /// [`Rejected`] when the event is not valid for this machine or this state (it cannot be
    /// parsed, or breaks a rule such as "no overdraft"). Replay then discards every change
    /// this call made through `state`.
    fn apply(&self, event: &[u8], state: &mut StateHandle<'_>) -> Result<(), Rejected>;
}

/// A state machine's reason for refusing an event.
///
/// It carries only the machine's own message; replay adds the event's position and the
/// machine's name, and the engine adds the stream and version.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejected {
    reason: String,
}

impl Rejected {
    /// A rejection with a human-readable reason, such as `"insufficient funds: balance 5,
    /// withdrawal 10"`.
    #[must_use]
    pub fn new(reason: impl Into<String>) -> Rejected {
        Rejected {
            reason: reason.into(),
        }
    }

    /// The reason given by the state machine.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Read-write access to a stream's state while one event is applied.
///
/// Reads go through the event's own changes first, then the view it is applied on top of.
/// Writes land in the event's change set only.
pub struct StateHandle<'a> {
    /// This event's changes: values and tombstones, read first.
    changes: &'a mut Changes,
    /// The events replayed before this one, read second.
    overlay: &'a Changes,
    /// The layers below the overlay, newest first.
    base: &'a Base,
}

impl fmt::Debug for StateHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateHandle")
            .field("changed_keys_count", &self.changes.len())
            .field("overlay_entries_count", &self.overlay.len())
            .field("base_layers_count", &self.base.len())
            .finish()
    }
}

impl<'a> StateHandle<'a> {
    /// A handle writing into `changes` and reading through `changes`, then `overlay`, then
    /// the layers of `base`.
    pub(crate) fn new(
        changes: &'a mut Changes,
        overlay: &'a Changes,
        base: &'a Base,
    ) -> StateHandle<'a> {
        StateHandle {
            changes,
            overlay,
            base,
        }
    }

    /// The current value of `key`, or `None` when the key is absent.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        merge::lookup(self.sources(), &HashedKey::new(key))
    }

    /// Whether `key` currently has a value.
    #[must_use]
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.changes.set(key, Some(value));
    }

    /// Removes `key` (a no-op on the visible state when it is already absent).
    pub fn delete(&mut self, key: &[u8]) {
        self.changes.set(key, None);
    }

    /// The live entries with keys within the bounds, in key order, as the state is now
    /// (including this event's changes so far). An inverted range is empty.
    #[must_use]
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ViewIter<'_> {
        ViewIter::new(self.sources(), start, end)
    }

    /// The live entries whose keys start with `prefix`, in key order.
    #[must_use]
    pub fn prefix(&self, prefix: &[u8]) -> ViewIter<'_> {
        ViewIter::prefix(self.sources(), prefix)
    }

    /// Newest first: this event's changes, the overlay, then the base layers.
    fn sources(&self) -> impl Iterator<Item = &dyn SortedRun> {
        [&*self.changes as &dyn SortedRun, self.overlay]
            .into_iter()
            .chain(self.base.runs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::LayerInfo;
    use helios_checkpoint::MemRun;
    use std::sync::Arc;

    #[test]
    fn handle_reads_its_own_writes_over_the_layers() {
        let mut bottom = MemRun::new();
        bottom.put(b"a", b"bottom");
        bottom.put(b"b", b"bottom");
        let mut top = MemRun::new();
        top.delete(b"b");
        top.put(b"c", b"top");
        let base = Base::new()
            .with_layer_below(LayerInfo::new(1, 10), Arc::new(top.clone()))
            .with_layer_below(LayerInfo::new(2, 0), Arc::new(bottom.clone()));
        let mut overlay = Changes::new();
        overlay.set(b"e", Some(b"overlay"));
        let mut changes = Changes::new();
        let mut handle = StateHandle::new(&mut changes, &overlay, &base);

        assert_eq!(handle.get(b"a"), Some(&b"bottom"[..]));
        assert_eq!(handle.get(b"b"), None);
        assert_eq!(handle.get(b"c"), Some(&b"top"[..]));

        handle.put(b"b", b"again");
        handle.delete(b"a");
        handle.put(b"d", b"new");
        assert_eq!(handle.get(b"a"), None);
        assert!(!handle.contains_key(b"a"));
        assert_eq!(handle.get(b"b"), Some(&b"again"[..]));
        let all: Vec<_> = handle.range(Bound::Unbounded, Bound::Unbounded).collect();
        assert_eq!(
            all,
            vec![
                (&b"b"[..], &b"again"[..]),
                (&b"c"[..], &b"top"[..]),
                (&b"d"[..], &b"new"[..]),
                (&b"e"[..], &b"overlay"[..]),
            ]
        );
        assert_eq!(handle.prefix(b"c").count(), 1);

        // Only the change set was written.
        assert_eq!(changes.len(), 3);
        assert_eq!(overlay.len(), 1);
    }

    #[test]
    fn rejected_displays_its_reason() {
        let rejected = Rejected::new("insufficient funds");
        assert_eq!(rejected.to_string(), "insufficient funds");
        assert_eq!(rejected.reason(), "insufficient funds");
    }
}
