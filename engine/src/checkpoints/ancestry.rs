//! Checkpoint lookups through a fork's ancestry: the versions a fork shares with its source are
//! the source's, and so are their checkpoints (see `Catalog::ancestry`). A stream that is not a
//! fork resolves to itself, at the cost of a comparison.

use std::sync::Arc;

use helios_checkpoint::Checkpoint;
use helios_log::StreamId;

use crate::catalog::{Ancestry, Catalog, StreamRef};
use crate::engine::Inner;

impl Inner {
    /// The ancestry of stream `id`, whose state is `st`, for checkpoint lookups, read from
    /// `cat` (the caller holds the catalog lock). A fork's source counts only while it runs
    /// the same state machine.
    pub(crate) fn ancestry(&self, cat: &Catalog, id: StreamId, st: StreamRef<'_>) -> Ancestry {
        if st.fork.is_none() {
            return Ancestry::own(id);
        }
        let machine_of = |name: &str| self.plugins.machine_for(name).name().to_owned();
        let machine = machine_of(st.name);
        cat.ancestry(id, |source| machine_of(source) == machine)
    }

    /// The checkpoint holding the state of `ancestry`'s stream at `version`, mapped and
    /// validated, if one is in the catalog and sound.
    pub(crate) fn checkpoint_at(
        &self,
        ancestry: &Ancestry,
        version: u64,
    ) -> Option<Arc<Checkpoint>> {
        self.store.get(ancestry.owner(version)?, version)
    }

    /// The newest full checkpoint on the grid at or below `below`, and whose it is.
    pub(crate) fn latest_full_at_or_below(
        &self,
        ancestry: &Ancestry,
        below: u64,
    ) -> Option<(StreamId, u64)> {
        ancestry.spans().find_map(|(stream, first, last)| {
            if below < first {
                return None;
            }
            let found = self
                .store
                .latest_full_at_or_below(stream, below.min(last))?;
            (found >= first).then_some((stream, found))
        })
    }

    /// The newest checkpoint written after a heavy event at a version in `versions`, and
    /// whose it is.
    pub(crate) fn latest_heavy_in(
        &self,
        ancestry: &Ancestry,
        versions: std::ops::RangeInclusive<u64>,
    ) -> Option<(StreamId, u64)> {
        ancestry.spans().find_map(|(stream, first, last)| {
            let from = (*versions.start()).max(first);
            let to = (*versions.end()).min(last);
            if from > to {
                return None;
            }
            Some((stream, self.store.latest_heavy_in(stream, from..=to)?))
        })
    }
}
