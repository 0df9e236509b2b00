//! Read-only views of a stream's state at one version: an overlay of replayed events on top of
//! a stack of checkpoint layers.
//!
//! ```text
//! overlay (events b1+1 ..= v)  ->  level-1 delta at b1  ->  level-2 delta at b2  ->  full at b3
//! newest                                                                             oldest
//! ```
//!
//! The first layer, from the newest, that has an entry for a key decides it: a value, or a
//! tombstone that hides the key in every layer below.
//!
//! Invariants of this module:
//! - A [`View`] never changes after it is built: it owns its overlay and shares its layers
//!   through `Arc`s, so it stays valid however the engine moves on, and it is `Send + Sync`.
//! - A view's report describes exactly the layers and overlay the view reads.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use helios_checkpoint::{HashedKey, SortedRun};

use crate::machine::StateMachine;
use crate::merge::{self, ViewIter};
use crate::replay::{Overlay, ReplayError, replay};

/// What a layer is, as the caller describes it: used only in reports and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerInfo {
    /// The checkpoint level (1 is the finest; the highest level holds full states); 0 for a
    /// state held in memory (a speculative branch's).
    pub level: u32,
    /// The version of the stream the layer reflects.
    pub version: u64,
}

impl LayerInfo {
    /// A layer of `level` at `version`.
    #[must_use]
    pub fn new(level: u32, version: u64) -> LayerInfo {
        LayerInfo { level, version }
    }
}

impl From<helios_checkpoint::Layer> for LayerInfo {
    fn from(layer: helios_checkpoint::Layer) -> LayerInfo {
        LayerInfo {
            level: layer.level,
            version: layer.base,
        }
    }
}

impl fmt::Display for LayerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.level == 0 {
            // Level 0 is not a checkpoint level: the engine uses it for in-memory states.
            return write!(f, "in-memory state at version {}", self.version);
        }
        write!(
            f,
            "level {} checkpoint at version {}",
            self.level, self.version
        )
    }
}

/// One layer of a [`Base`]: its description and its entries.
#[derive(Clone)]
struct BaseLayer {
    info: LayerInfo,
    run: Arc<dyn SortedRun>,
}

/// The stack of checkpoint layers a view or a replay starts from, newest first.
///
/// An empty base is the empty state (version 0). The layers are shared (`Arc`), so cloning a
/// base is cheap and a memory-mapped checkpoint can back many views at once.
#[derive(Clone, Default)]
pub struct Base {
    /// Newest (finest) first, the bottom (usually a full checkpoint) last.
    layers: Vec<BaseLayer>,
}

impl Base {
    /// An empty base: the state at version 0.
    #[must_use]
    pub fn new() -> Base {
        Base::default()
    }

    /// An empty base with room for `layers` layers.
    #[must_use]
    pub fn with_capacity(layers: usize) -> Base {
        Base {
            layers: Vec::with_capacity(layers),
        }
    }

    /// Adds `run` below every layer added so far. Layers are added newest first, in the order
    /// `LevelPolicy::layers` lists them: finest level first, the bottom last.
    pub fn push_below(&mut self, info: LayerInfo, run: Arc<dyn SortedRun>) {
        self.layers.push(BaseLayer { info, run });
    }

    /// [`Base::push_below`], by value, for building a base in one expression.
    #[must_use]
    pub fn with_layer_below(mut self, info: LayerInfo, run: Arc<dyn SortedRun>) -> Base {
        self.push_below(info, run);
        self
    }

    /// A copy of this base with `run` added above every layer (it becomes the newest). The
    /// layers are shared, so this costs one `Arc` clone per layer.
    #[must_use]
    pub fn with_layer_above(&self, info: LayerInfo, run: Arc<dyn SortedRun>) -> Base {
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        layers.push(BaseLayer { info, run });
        layers.extend(self.layers.iter().cloned());
        Base { layers }
    }

    /// The number of layers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether the base has no layer (it is the empty state).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The layers, newest first.
    #[must_use]
    pub fn layers(&self) -> impl ExactSizeIterator<Item = (LayerInfo, &dyn SortedRun)> {
        self.layers.iter().map(|layer| (layer.info, &*layer.run))
    }

    /// The runs, newest first.
    pub(crate) fn runs(&self) -> impl Iterator<Item = &dyn SortedRun> {
        self.layers
            .iter()
            .map(|layer| &*layer.run as &dyn SortedRun)
    }
}

impl fmt::Debug for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.layers.iter().map(|layer| layer.info))
            .finish()
    }
}

/// One layer a view reads, as reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerReport {
    /// The caller's description of the layer.
    pub info: LayerInfo,
    /// The layer's entries, values and tombstones.
    pub entries_count: usize,
}

/// How a view was made: which layers it reads and how many events were replayed on top.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ViewReport {
    /// The base layers, newest first; empty when the view starts from the empty state.
    pub layers: Vec<LayerReport>,
    /// The events replayed into the overlay.
    pub events_replayed: u64,
    /// The keys the overlay changed (values and tombstones).
    pub overlay_entries_count: usize,
}

impl fmt::Display for ViewReport {
    /// Several lines, for `helios get --explain`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |count: usize| if count == 1 { "" } else { "s" };
        let events_replayed = self.events_replayed;
        write!(
            f,
            "replayed {events_replayed} event{} ({} key{} changed) on top of ",
            if events_replayed == 1 { "" } else { "s" },
            self.overlay_entries_count,
            plural(self.overlay_entries_count),
        )?;
        if self.layers.is_empty() {
            return write!(f, "the empty state (no checkpoint)");
        }
        write!(
            f,
            "{} layer{}, newest first:",
            self.layers.len(),
            plural(self.layers.len())
        )?;
        for layer in &self.layers {
            write!(
                f,
                "\n  {}: {} entr{}",
                layer.info,
                layer.entries_count,
                if layer.entries_count == 1 { "y" } else { "ies" }
            )?;
        }
        Ok(())
    }
}

/// A read-only view of a stream's state at one version.
///
/// Made of an [`Overlay`] of replayed events on top of a [`Base`] of layers. Owned and
/// `Send + Sync`: it can move to and be shared between threads, and many views can share the
/// same checkpoint layers.
pub struct View {
    overlay: Overlay,
    base: Base,
    report: ViewReport,
}

impl View {
    /// The view of `overlay` on top of `base`.
    #[must_use]
    pub fn new(base: Base, overlay: Overlay) -> View {
        let report = ViewReport {
            layers: base
                .layers()
                .map(|(info, run)| LayerReport {
                    info,
                    entries_count: run.len(),
                })
                .collect(),
            events_replayed: overlay.events_replayed(),
            overlay_entries_count: overlay.changes().len(),
        };
        View {
            overlay,
            base,
            report,
        }
    }

    /// Replays `events` through `machine` on top of `base` (see [`replay`]) and returns the
    /// view of the result.
    ///
    /// # Errors
    /// The first event the machine rejects or panics on.
    pub fn replay<E: AsRef<[u8]>>(
        machine: &dyn StateMachine,
        base: Base,
        events: impl IntoIterator<Item = E>,
    ) -> Result<View, ReplayError> {
        let mut overlay = Overlay::new();
        replay(machine, &base, &mut overlay, events)?;
        Ok(View::new(base, overlay))
    }

    /// This view with `events`, the stream's next events in order, replayed on top: the
    /// state they lead to, on the same base. For a writer that follows its own appends
    /// without a new view per append. The overlay keeps growing (a view from the engine starts
    /// from a newer checkpoint instead), so the caller bounds how far it extends one:
    /// `report().events_replayed` counts every event on top of the base.
    ///
    /// # Errors
    /// The first event the machine rejects or panics on.
    pub fn extended<E: AsRef<[u8]>>(
        &self,
        machine: &dyn StateMachine,
        events: impl IntoIterator<Item = E>,
    ) -> Result<View, ReplayError> {
        let mut overlay = self.overlay.clone();
        replay(machine, &self.base, &mut overlay, events)?;
        Ok(View::new(self.base.clone(), overlay))
    }

    /// The value of `key`, or `None` when the key is absent.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        // Every layer's first cache miss at once, rather than one after the other as the
        // lookup goes down the layers.
        let key = HashedKey::new(key);
        for run in self.base.runs() {
            run.prefetch(&key);
        }
        merge::lookup(self.runs(), &key)
    }

    /// Whether `key` has a value.
    #[must_use]
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Every live entry, in key order.
    #[must_use]
    pub fn iter(&self) -> ViewIter<'_> {
        self.range(Bound::Unbounded, Bound::Unbounded)
    }

    /// The live entries with keys within the bounds, in key order. An inverted range is
    /// empty.
    #[must_use]
    pub fn range(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> ViewIter<'_> {
        ViewIter::new(self.runs(), start, end)
    }

    /// The live entries whose keys start with `prefix`, in key order.
    #[must_use]
    pub fn prefix(&self, prefix: &[u8]) -> ViewIter<'_> {
        ViewIter::prefix(self.runs(), prefix)
    }

    /// Which layers the view reads and how many events it replayed.
    #[must_use]
    pub fn report(&self) -> &ViewReport {
        &self.report
    }

    /// The overlay of replayed events.
    #[must_use]
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    /// The layers below the overlay.
    #[must_use]
    pub fn base(&self) -> &Base {
        &self.base
    }

    /// The whole state as an owned map (copies every live entry).
    #[must_use]
    pub fn to_map(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.iter()
            .map(|(key, value)| (key.to_vec(), value.to_vec()))
            .collect()
    }

    /// Newest first: the overlay, then the base layers.
    fn runs(&self) -> impl Iterator<Item = &dyn SortedRun> {
        std::iter::once(self.overlay.changes() as &dyn SortedRun).chain(self.base.runs())
    }
}

impl<'a> IntoIterator for &'a View {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = ViewIter<'a>;

    fn into_iter(self) -> ViewIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View")
            .field("base", &self.base)
            .field("events_replayed", &self.report.events_replayed)
            .finish_non_exhaustive()
    }
}

// Views cross threads: the engine hands them out while appends continue.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<View>();
    send_sync::<Base>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use helios_checkpoint::MemRun;

    fn layer(entries: &[(&str, Option<&str>)]) -> Arc<dyn SortedRun> {
        Arc::new(
            entries
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
                .collect::<MemRun>(),
        )
    }

    #[test]
    fn all_layers_empty() {
        let base = Base::new()
            .with_layer_below(LayerInfo::new(1, 10), layer(&[]))
            .with_layer_below(LayerInfo::new(3, 0), layer(&[]));
        let view = View::new(base, Overlay::new());
        assert_eq!(view.get(b"a"), None);
        assert_eq!(view.iter().count(), 0);
        assert_eq!(view.prefix(b"").count(), 0);
        assert!(view.to_map().is_empty());
        assert_eq!(view.report().layers.len(), 2);
        assert_eq!(view.report().events_replayed, 0);

        let nothing = View::new(Base::new(), Overlay::new());
        assert_eq!(nothing.iter().count(), 0);
        assert_eq!(
            nothing.report().to_string(),
            "replayed 0 events (0 keys changed) on top of the empty state (no checkpoint)"
        );
    }

    #[test]
    fn report_lists_layers_newest_first() {
        let base = Base::new()
            .with_layer_below(LayerInfo::new(1, 990), layer(&[("a", None)]))
            .with_layer_below(
                LayerInfo::from(helios_checkpoint::Layer { level: 3, base: 0 }),
                layer(&[("a", Some("1")), ("b", Some("2"))]),
            );
        let view = View::new(base, Overlay::new());
        assert_eq!(
            view.report().layers,
            vec![
                LayerReport {
                    info: LayerInfo::new(1, 990),
                    entries_count: 1
                },
                LayerReport {
                    info: LayerInfo::new(3, 0),
                    entries_count: 2
                },
            ]
        );
        assert_eq!(
            view.report().to_string(),
            "replayed 0 events (0 keys changed) on top of 2 layers, newest first:\n  \
             level 1 checkpoint at version 990: 1 entry\n  \
             level 3 checkpoint at version 0: 2 entries"
        );
        assert!(format!("{view:?}").contains("990"));
    }

    #[test]
    fn an_extended_view_is_the_replay_of_every_event() {
        let base = Base::new().with_layer_below(
            LayerInfo::new(1, 10),
            layer(&[("a", Some("1")), ("b", Some("2"))]),
        );
        let events = ["set a 3", "del b", "set c 4", "set a 5"];
        let whole = View::replay(&crate::kv::KvMachine, base.clone(), events).expect("replay");
        let first = View::replay(&crate::kv::KvMachine, base, &events[..1]).expect("replay");
        let extended = first
            .extended(&crate::kv::KvMachine, &events[1..])
            .expect("extend");
        assert_eq!(extended.to_map(), whole.to_map());
        assert_eq!(extended.report().events_replayed, 4);
        assert_eq!(
            first.get(b"b"),
            Some(&b"2"[..]),
            "the view extended is unchanged"
        );
        assert!(first.extended(&crate::kv::KvMachine, ["junk"]).is_err());
    }

    #[test]
    fn view_is_shared_across_threads() {
        let base = Base::new().with_layer_below(LayerInfo::new(1, 10), layer(&[("k", Some("v"))]));
        let view = Arc::new(View::new(base, Overlay::new()));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let view = Arc::clone(&view);
                std::thread::spawn(move || view.get(b"k").map(<[u8]>::to_vec))
            })
            .collect();
        for handle in handles {
            assert_eq!(
                handle.join().expect("reader thread does not panic"),
                Some(b"v".to_vec())
            );
        }
    }
}
