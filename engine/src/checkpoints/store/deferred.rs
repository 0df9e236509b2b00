//! Checkpoints taken into the catalog one stream at a time: at its first use, not at open. A
//! reader that looks at one stream (`helios get`) then never builds the catalog of every
//! checkpoint of every stream, which was most of its open at 100,000 streams; nor does a writer
//! that opens a cleanly closed store (see `open.rs` of the engine for when it may).
//!
//! A writer's stream also gets its gaps (checkpoints missing below its newest) queued for a
//! rebuild when it is taken in, as the eager open queues every stream's.
//!
//! Invariant: a stream's entry in the catalog is read or changed only after its deferred
//! checkpoints were taken in ([`Store::take_in_stream`]), so the catalog holds, for every stream
//! it is asked about, what an open that took everything in would hold.
//!
//! Lock order: `deferred` before `followed`, `machines` and the catalog.

use std::collections::HashSet;

use helios_log::StreamId;

use super::super::packs::PackContents;
use super::open::{Keep, gaps};
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
    /// A writer's: its streams' gaps are queued for rebuilds, and nothing is set aside for a
    /// head to come.
    writer: bool,
}

/// A stream as an open found it.
pub(crate) struct Opened {
    pub(crate) head: u64,
    pub(crate) live: bool,
    /// Its configured state machine.
    pub(crate) machine: std::sync::Arc<dyn helios_replay::StateMachine>,
    /// For a fork, its fork point: its checkpoints up to there are its source's.
    pub(crate) shared: u64,
}

/// Stream `id` as the open found it, if it existed.
pub(crate) type StreamsAtOpen = Box<dyn Fn(StreamId) -> Option<Opened> + Send>;

impl Deferred {
    /// Keeps `packs` for the streams `at_open` describes, for a writer's store or a reader's.
    pub(super) fn new(
        mut packs: Vec<PackContents>,
        at_open: StreamsAtOpen,
        writer: bool,
    ) -> Deferred {
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
            writer,
        }
    }

    /// Every checkpoint of the streams not taken in yet, each index decoded (its entries before
    /// the pack's scanned ones: lower offsets, so that of two copies the later one wins). An
    /// index whose entries do not decode is noted in `damage`: its checkpoints are then gaps,
    /// rebuilt.
    pub(super) fn into_contents(self, damage: &mut Vec<String>) -> Vec<PackContents> {
        let taken = &self.taken;
        self.packs
            .into_iter()
            .map(|pack| {
                let mut entries = match &pack.index {
                    Some(index) => index.decode_all().unwrap_or_else(|| {
                        damage.push(format!(
                            "the index of pack {}: its entries do not decode",
                            pack.seq
                        ));
                        Vec::new()
                    }),
                    None => Vec::new(),
                };
                entries.extend(pack.entries);
                entries.retain(|e| !taken.contains(&StreamId(e.meta.stream_id)));
                PackContents {
                    seq: pack.seq,
                    index: None,
                    entries,
                }
            })
            .collect()
    }

    /// The bytes of the pack indexes read in place.
    pub(super) fn index_bytes(&self) -> Vec<helios_log::storage::ReadOnlyBytes> {
        self.packs
            .iter()
            .filter_map(|p| p.index.as_ref().map(|i| i.bytes().clone()))
            .collect()
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
        self.take_in_stream_counted(stream, &mut CheckpointOpenReport::default());
    }

    /// Takes in, at a writer's open, every stream with checkpoints that a pack's index does
    /// not cover (written after a close indexed the pack, or by a writer that stopped without
    /// one): few, and the ones a crash or damage would have touched, so that the open report
    /// counts what of them is dropped or missing.
    pub(crate) fn take_in_scanned(&self, report: &mut CheckpointOpenReport) {
        let mut ids: Vec<u64> = match lock(&self.deferred).as_ref() {
            Some(d) => d
                .packs
                .iter()
                .flat_map(|p| p.entries.iter().map(|e| e.meta.stream_id))
                .collect(),
            None => return,
        };
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.take_in_stream_counted(StreamId(id), report);
        }
    }

    /// [`Store::take_in_stream`], counting what it drops and the gaps it queues in `report`.
    fn take_in_stream_counted(&self, stream: StreamId, report: &mut CheckpointOpenReport) {
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
        let Some(opened) = (d.at_open)(stream) else {
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
            stream: &|id| (id == stream).then_some((opened.head, opened.machine.name())),
            // No fjall (deferring opens never read one): a checkpoint written before the
            // machine table is read.
            legacy: &|_| true,
        };
        let mut pending = Vec::new();
        let mut counted = CheckpointOpenReport::default();
        self.take_in(
            contents,
            &keep,
            &mut counted,
            (!d.writer).then_some(&mut pending),
        );
        report.dropped += counted.dropped;
        if d.writer {
            let (gaps, newest): (Vec<(StreamId, u64)>, Option<u64>) = {
                let catalog = self.read_catalog();
                let versions = catalog.get(&stream);
                let missing = versions
                    .map(|v| gaps(v, opened.shared, self.policy.first_interval()))
                    .unwrap_or_default();
                let newest = versions.and_then(|v| v.last_key_value().map(|(v, _)| *v));
                (missing.into_iter().map(|v| (stream, v)).collect(), newest)
            };
            report.gaps += gaps.len() as u64;
            // Due by its head at open: its checkpoints are gone (a pack lost), or the open did
            // not know it was due. The builder's next round builds it.
            if self.due_past(newest, opened.shared, opened.head, opened.live) {
                lock(&self.found_due).push(stream);
            }
            if !gaps.is_empty() {
                lock(&self.lost).extend(gaps.iter().copied());
                lock(&self.rebuild).extend(gaps);
            }
        } else if opened.live {
            // A deleted stream gets no more checkpoints: none of its waits for a head.
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
