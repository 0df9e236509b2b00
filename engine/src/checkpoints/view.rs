//! Reading a stream's state at any version: views over memory-mapped checkpoint layers plus a
//! short replay from the log.

use std::collections::BTreeMap;
use std::sync::Arc;

use helios_checkpoint::{CheckpointKind, HEAVY_LEVEL, Layer, SortedRun};
use helios_log::Version;
use helios_replay::{Aggregate, Base, LayerInfo, Overlay, View, replay_one};

use crate::Engine;
use crate::engine::lock;
use crate::error::{Error, Result};
use crate::reader::Reader;

/// How many earlier checkpoints of the finest level a view tries when the one its version
/// calls for is missing: each try costs a few lookups in the checkpoint catalog, and the replay
/// it saves shrinks with each step back.
const SIBLINGS_TRIED: usize = 2;

impl Engine {
    /// A read-only view of `stream`'s state at `version` (0 is the empty state).
    ///
    /// The view stacks the memory-mapped checkpoints the level policy names for `version`
    /// and replays the few events after the finest of them (at most `fanout - 1` once the
    /// checkpoint builder has caught up; more while it is behind, or while a damaged
    /// checkpoint is being rebuilt: then from an earlier checkpoint of the finest level whose
    /// layers are all there, if one of the last two is, else from the layers above). [`View::report`] says which layers it used and how many
    /// events it replayed. Views are `Send + Sync`, own what they read, and stay valid while
    /// appends continue.
    ///
    /// # Errors
    /// [`crate::Error::UnknownStream`], [`crate::Error::VersionPastHead`],
    /// [`crate::Error::Replay`] when the stream's state machine rejects or panics on an event,
    /// log errors.
    pub fn view(&self, stream: &str, version: Version) -> Result<View> {
        let start = self.inner.metrics.start();
        let view = self.view_unmeasured(stream, version)?;
        let metrics = &self.inner.metrics;
        metrics.finish(crate::Metric::View, start);
        metrics.record(crate::Metric::ReplayedEvents, view.report().events_replayed);
        Ok(view)
    }

    pub(crate) fn view_unmeasured(&self, stream: &str, version: Version) -> Result<View> {
        let inner = &self.inner;
        let (id, head, ancestry) = {
            let cat = lock(&inner.catalog);
            let (id, st) = Self::known(&cat, stream)?;
            (id, st.head, inner.ancestry(&cat, id, st))
        };
        if version > head {
            return Err(Error::VersionPastHead {
                stream: stream.to_owned(),
                version,
                head,
            });
        }
        let store = &inner.store;
        let policy = store.policy();
        let (layers, _) = policy.layers(version.0);
        let mut used: Vec<(LayerInfo, Arc<dyn SortedRun>)> = Vec::new();
        // The layers of a read at `at`, coarsest first, if every one is there: finest first,
        // down to the first full state (a delta that would have held every key was written
        // as the full state, `build.rs`, and then nothing under it is read).
        let complete_chain = |layers: &[Layer]| -> Option<Vec<(LayerInfo, Arc<dyn SortedRun>)>> {
            let mut chain: Vec<(LayerInfo, Arc<dyn SortedRun>)> = Vec::with_capacity(layers.len());
            for layer in layers {
                let checkpoint = inner.checkpoint_at(&ancestry, layer.base)?;
                let full = checkpoint.meta().kind == CheckpointKind::Full;
                chain.push((LayerInfo::new(layer.level, layer.base), checkpoint));
                if full {
                    break;
                }
            }
            chain.reverse();
            (!chain.is_empty()).then_some(chain)
        };
        let complete = match complete_chain(&layers) {
            Some(chain) => {
                used = chain;
                true
            }
            None => false,
        };
        // Otherwise coarsest first: each finer layer is a delta against the ones above it, so
        // the stack stops at the first layer that is missing (not built yet, or damaged).
        let mut broken = false;
        if !complete {
            used.reserve(layers.len());
        }
        for layer in layers.iter().rev().filter(|_| !complete) {
            if broken {
                // Not usable above a missing layer, but checked now: damage in it is then
                // found and queued with the layer above, not one rebuild later.
                let _ = inner.checkpoint_at(&ancestry, layer.base);
                continue;
            }
            match inner.checkpoint_at(&ancestry, layer.base) {
                Some(checkpoint) => {
                    // A full state (where a delta was due) holds no tombstones: nothing under
                    // it may show through.
                    if checkpoint.meta().kind == CheckpointKind::Full {
                        used.clear();
                    }
                    used.push((LayerInfo::new(layer.level, layer.base), checkpoint));
                }
                None => broken = true,
            }
        }
        // The finest layer not built yet (a version just past a checkpoint, before the builder
        // wrote it, or a reader adopted it), or damaged: an earlier checkpoint of the finest
        // level whose layers are all there replays fewer events than the layers above alone
        // (at most `2 x first interval - 1` when only the newest is missing).
        if !complete && let Some(finest) = layers.first() {
            let reached = used.last().map_or(0, |(info, _)| info.version);
            let step = policy.first_interval();
            let mut at = finest.base;
            for _ in 0..SIBLINGS_TRIED {
                at = match at.checked_sub(step) {
                    Some(earlier) if earlier > reached => earlier,
                    _ => break,
                };
                if let Some(chain) = complete_chain(&policy.layers(at).0) {
                    used = chain;
                    break;
                }
            }
        }
        if used.is_empty() && !layers.is_empty() {
            // No usable top layer: start from an older full checkpoint if one is valid.
            let mut below = version.0;
            while let Some((owner, full)) = inner.latest_full_at_or_below(&ancestry, below) {
                if let Some(checkpoint) = store.get(owner, full) {
                    let level = store.policy().level_at(full).unwrap_or(1);
                    used.push((LayerInfo::new(level, full), checkpoint));
                    break;
                }
                if full == 0 {
                    break;
                }
                below = full - 1;
            }
        }
        if store.has_rebuilds() {
            inner.wake_builder();
        }
        let mut start = used.last().map_or(0, |(info, _)| info.version);
        // A heavy event among the ones to replay: start from the full state written just
        // after the newest of them instead.
        if start < version.0
            && let Some((owner, heavy)) = inner.latest_heavy_in(&ancestry, start + 1..=version.0)
            && let Some(checkpoint) = store.get(owner, heavy)
        {
            used.clear();
            used.push((LayerInfo::new(HEAVY_LEVEL, heavy), checkpoint));
            start = heavy;
        }
        let mut base = Base::with_capacity(used.len());
        for (info, run) in used.into_iter().rev() {
            base.push_below(info, run);
        }
        // Replay each event as it is read, from the read buffer: no copy of the payloads.
        let machine = inner.plugins.machine_for(stream);
        let mut overlay = Overlay::new();
        let mut replayed = Ok(());
        let mut index = 0;
        inner.for_each_payload(id, Version(start + 1), version, |payload| {
            if replayed.is_ok() {
                replayed = replay_one(&**machine, &base, &mut overlay, payload, index);
                index += 1;
            }
        })?;
        replayed.map_err(|source| Error::Replay {
            stream: stream.to_owned(),
            version: Version(start + 1 + source.event_index()),
            source,
        })?;
        Ok(View::new(base, overlay))
    }

    /// The whole state of `stream` at `version`, owned: every key and value in key order.
    ///
    /// # Errors
    /// As [`Engine::view`].
    pub fn state_at(&self, stream: &str, version: Version) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        Reader::state_at(self, stream, version)
    }

    /// The typed aggregate `A` of `stream` at `version` (the stream's machine must be
    /// [`helios_replay::AggregateMachine<A>`]; an empty state gives `A::default()`).
    ///
    /// # Errors
    /// As [`Engine::view`], and [`crate::Error::Aggregate`] when the stored state is not an
    /// archive of `A`.
    pub fn aggregate_at<A: Aggregate>(&self, stream: &str, version: Version) -> Result<A> {
        Reader::aggregate_at(self, stream, version)
    }
}
