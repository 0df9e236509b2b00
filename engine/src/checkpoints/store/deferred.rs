//! A reader's checkpoints, taken into the catalog one stream at a time: at its first use, not at
//! open. A reader that looks at one stream (`helios get`) then never builds the catalog of every
//! checkpoint of every stream, which was most of its open at 100,000 streams.
//!
//! Invariant: a stream's entry in the catalog is read or changed only after its deferred
//! checkpoints were taken in ([`Store::take_in_stream`]), so the catalog holds, for every stream
//! it is asked about, what an open that took everything in would hold.
//!
//! Lock order: `deferred` before `followed`, `machines` and the catalog.

use std::collections::HashSet;

use helios_log::StreamId;

use super::super::packs::PackContents;
use super::open::Keep;
use super::{CheckpointOpenReport, Store};
use crate::engine::lock;

/// What a reader's open read from the packs and has not taken into the catalog yet.
pub(super) struct Deferred {
    /// Each pack's checkpoints: its index, read in place, and those read by a scan (past the
    /// index's end, or the whole pack), sorted by (stream, version, offset).
    packs: Vec<PackContents>,
    /// Each stream as the open found it, asked at its first use (so the open reads no stream).
    at_open: StreamsAtOpen,
    /// The streams taken in.
    taken: HashSet<StreamId, foldhash::fast::FixedState>,
}

/// Stream `id` as a reader's open found it, if it existed: its head, whether it is live, and
/// the name of its configured state machine.
pub(crate) type StreamsAtOpen = Box<dyn Fn(StreamId) -> Option<(u64, bool, String)> + Send>;

impl Deferred {
    /// Keeps `packs` for the streams `at_open` describes.
    pub(super) fn new(mut packs: Vec<PackContents>, at_open: StreamsAtOpen) -> Deferred {
        for pack in &mut packs {
            // A scan reads a pack in pack order.
            if !pack
                .entries
                .is_sorted_by_key(|e| (e.meta.stream_id, e.meta.version, e.offset))
            {
                pack.entries
                    .sort_unstable_by_key(|e| (e.meta.stream_id, e.meta.version, e.offset));
            }
        }
        Deferred {
            packs,
            at_open,
            taken: HashSet::default(),
        }
    }

    /// The checkpoints in the packs.
    pub(super) fn count(&self) -> u64 {
        self.packs
            .iter()
            .map(|p| (p.index.as_ref().map_or(0, |i| i.len()) + p.entries.len()) as u64)
            .sum()
    }
}

impl Store {
    /// Takes `stream`'s deferred checkpoints into the catalog, if it has any not taken yet.
    pub(super) fn take_in_stream(&self, stream: StreamId) {
        if !self.has_deferred() {
            return;
        }
        let mut deferred = lock(&self.deferred);
        let Some(d) = deferred.as_mut() else {
            return;
        };
        if !d.taken.insert(stream) {
            return;
        }
        let Some((head, live, machine)) = (d.at_open)(stream) else {
            return;
        };
        let contents: Vec<PackContents> = d
            .packs
            .iter()
            .filter_map(|pack| {
                // The index's entries come before the scanned ones: lower offsets, so that of
                // two copies of a checkpoint the later one wins.
                let mut entries: Vec<_> = pack
                    .index
                    .iter()
                    .flat_map(|index| index.entries_of(stream.0))
                    .collect();
                let from = pack
                    .entries
                    .partition_point(|e| e.meta.stream_id < stream.0);
                let to = pack
                    .entries
                    .partition_point(|e| e.meta.stream_id <= stream.0);
                entries.extend_from_slice(&pack.entries[from..to]);
                (!entries.is_empty()).then_some(PackContents {
                    seq: pack.seq,
                    index: None,
                    entries,
                })
            })
            .collect();
        if contents.is_empty() {
            return;
        }
        let keep = Keep {
            stream: &|id| (id == stream).then_some((head, machine.as_str())),
            // A reader has no fjall: a checkpoint written before the machine table is read.
            legacy: &|_| true,
        };
        let mut pending = Vec::new();
        self.take_in(
            contents,
            &keep,
            &mut CheckpointOpenReport::default(),
            Some(&mut pending),
        );
        // A deleted stream gets no more checkpoints: none of its waits for a head.
        if live {
            lock(&self.followed).waiting.extend(pending);
        }
    }

    /// Takes every deferred checkpoint into the catalog (before anything that reads the whole
    /// catalog, or adds checkpoints a refresh found).
    pub(super) fn take_in_all(&self) {
        if !self.has_deferred() {
            return;
        }
        let ids: Vec<StreamId> = {
            let deferred = lock(&self.deferred);
            let Some(d) = deferred.as_ref() else {
                return;
            };
            let mut ids: Vec<u64> = d
                .packs
                .iter()
                .flat_map(|p| {
                    let indexed = p
                        .index
                        .iter()
                        .flat_map(|i| (0..i.len()).map(|k| i.stream_at(k)));
                    indexed.chain(p.entries.iter().map(|e| e.meta.stream_id))
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.into_iter().map(StreamId).collect()
        };
        for id in ids {
            self.take_in_stream(id);
        }
        *lock(&self.deferred) = None;
        self.deferred_left
            .store(false, std::sync::atomic::Ordering::Release);
    }

    fn has_deferred(&self) -> bool {
        self.deferred_left
            .load(std::sync::atomic::Ordering::Acquire)
    }
}
