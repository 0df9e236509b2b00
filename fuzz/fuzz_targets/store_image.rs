//! Recovery of a damaged store directory.
//!
//! At start (once per process) a small engine workload runs in a scratch directory and its files
//! are read back as base images: a cleanly closed store (three streams over several segments,
//! each indexed (`log/<segment>.idx`; the close indexed the active one), its catalog snapshot
//! `CATALOG` at the last record, checkpoints at two levels in one pack,
//! `checkpoints/0000000001.pack`, indexed by the close, and its published end) and a store
//! copied while still open (an unindexed tail of written but unsynced appends, a stale recovery
//! point). The first image also keeps the older `CATALOG` its store wrote mid-way (a reader that
//! opens the file just before the writer replaces it reads that one). The input picks an image
//! and describes damage (libFuzzer does not find magic bytes or CRCs by chance, so damage is
//! structure-aware):
//! - to any file: flipped bits, overwritten bytes, truncations, appended junk or zeros, swapped,
//!   copied, renamed and removed files, garbage files under names the engine parses (segments,
//!   packs, a published end, checkpoint files of older store formats) or not;
//! - to the log: record and segment-header fields set to absurd values, and forged payloads,
//!   optionally with the CRC recomputed so the damage gets past the checksum;
//! - to the packs, found with `pack::scan`: bytes of a checkpoint (header or archive) flipped or
//!   set, and checkpoint header fields set to absurd values or another checkpoint's, with the
//!   checkpoint's CRCs recomputed or not (over its bytes, or up to the pack's end); pack header
//!   fields (magic, version, number, capacity, reserved bytes) with or without the header CRC
//!   recomputed; a torn tail (the pack cut in or around a checkpoint, the published end left or
//!   moved before the cut, as a crash leaves it); a checkpoint zeroed (whole, its header, or to
//!   the pack's end); a newer copy of a checkpoint appended; one copied over another;
//! - to `checkpoints/published-end`: removed, cut or grown, or rewritten valid with another pack
//!   and end (before, at or past what is written, or absurd);
//! - garbage packs: junk, a copy of a pack, a header and zeros, or a copy renumbered for its
//!   name (a valid pack holding older copies of checkpoints);
//! - to the segment indexes: bytes flipped or set (in the header, the stream rows or anywhere),
//!   cut (to nothing, into the header, to the header alone, an entry short), removed, another
//!   segment's index (of this image or the other) copied over one's name, header, row and entry
//!   fields set to absurd values with or without the CRCs recomputed; garbage `.idx` files under
//!   the name of a sealed segment, the active one, or none (junk, a copy of an index, a header
//!   alone, an index relabelled for the name with its CRCs recomputed) and `.idx.tmp` leftovers;
//! - to `CATALOG`: a byte flipped, cut, grown or removed; header fields (the record it covers,
//!   the stream count, version, store id, reserved bytes) set with or without the header CRC
//!   recomputed; body bytes changed with both CRCs recomputed; replaced by the other image's
//!   (another store's) as it is or relabelled with this store's id and resealed, or by this
//!   store's older one; a `CATALOG.tmp` leftover.
//!
//! The files are written to a fresh directory, with or without the image's pristine fjall
//! `meta/`. A `ReadOnly` handle opens the damaged store first, as it is; then the writer opens
//! it with `create_if_missing(false)` (truncate or refuse mode, the image's segment size or
//! another), reads, views, builds checkpoints (`checkpoints().sync()`), appends, closes and
//! reopens; the reader then catches up with what the writer did (`ReadOnly::refresh`).
//!
//! What must hold:
//! - the reader's open, reads, views and refresh, and the writer's open, reads, views at several
//!   versions, `checkpoints().sync()`, an append, close, a reopen and `helios::verify` never
//!   panic (errors are fine) and never allocate without bound (libFuzzer's `-rss_limit_mb` /
//!   `-malloc_limit_mb` catch that);
//! - without forged CRCs, whatever is read is the truth: every stream's events are a prefix of
//!   what was appended, and a view that succeeds equals a `BTreeMap` fold of those events. A
//!   segment index that passes its checks but lies (forged CRCs, or another store's) does not
//!   change that: every record found through it is checked; a catalog snapshot that passes its
//!   checks but lies (forged CRCs) does, for the reader and the writer (both start from it);
//! - with the log untouched (only segment indexes, `CATALOG`, checkpoints, packs, the published
//!   end and garbage files damaged) and no index or snapshot that passes its checks lying (an
//!   older snapshot of this store does not lie: it is exact as of the record it names), the
//!   reader and the writer open, every event is there, and, unless a checkpoint's CRCs were
//!   forged, every view succeeds and is exact: the writer's before and after
//!   `checkpoints().sync()` rebuilds the damaged checkpoints, and after a reopen; the reader's
//!   before the writer opens and after it caught up. Indexes, the snapshot and checkpoints are
//!   derived data: a damaged, missing, foreign or too-new one is rebuilt or ignored; after
//!   `checkpoints().sync()` every checkpoint the policy places at or below a stream's head is
//!   listed again;
//! - a store that opened reopens after a clean close, with the same heads.
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "reseal.rs"]
mod reseal;
use reseal::{put_le, reseal_frame};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Result as ArbResult, Unstructured};
use helios::{Durability, Engine, Error, LevelPolicy, ReadOnly, Reader, RecoveryMode, Version};
use helios_checkpoint::pack::{
    self, PackEnd, PackEntry, PackHeader, pack_file_name, pack_header, parse_pack_name,
    record_offset,
};
use helios_log::format::{record, segment_header};
use helios_log::storage::ReadOnlyBytes;
use helios_log::{SegmentId, SegmentIndex};
use libfuzzer_sys::fuzz_target;

/// Segment size of the base images: small, so that a few dozen events span several segments.
const SEGMENT_BYTES: u64 = 4096;
/// Checkpoints every 4 and 16 events (full states at 16), so short streams have both levels.
const FANOUT: u64 = 4;
const LEVELS: u32 = 2;
/// Most damage operations one input applies.
const DAMAGE_OPS_MAX: usize = 8;
/// Largest file an input may grow (by junk or zero extension): bounded so one execution stays
/// fast; large enough to exceed a segment many times over.
const FILE_LEN_MAX: usize = 1 << 20;

/// Files by path relative to the store directory, with their bytes.
type Files = Vec<(String, Vec<u8>)>;

/// Per stream, its events' payloads.
type Events = BTreeMap<String, Vec<Vec<u8>>>;

/// A store's files, by path relative to the store directory.
#[derive(Clone)]
struct Image {
    /// `log/` and `checkpoints/` files: what the input damages.
    files: Files,
    /// The pristine `meta/` (fjall) files, written back when the input asks for them.
    meta: Files,
    /// Per stream, the events a pristine open reads.
    events: Events,
    /// Per stream, the events a `ReadOnly` handle on a pristine copy reads.
    reader_events: Events,
    /// Every `CATALOG` the store wrote, oldest first: each is exact as of the record it names.
    catalogs: Vec<Vec<u8>>,
    /// The index each sealed segment has (what `SegmentIndex::build` makes of it), by segment.
    indexes: BTreeMap<u64, Vec<u8>>,
}

fn policy() -> LevelPolicy {
    LevelPolicy::new(FANOUT, LEVELS).expect("a valid policy")
}

fn options() -> helios::Options {
    let mut options = helios::Options::default();
    options.log.segment_size_bytes = SEGMENT_BYTES;
    options.checkpoints.policy = Some(policy());
    options.background_threads = false;
    options
}

fn builder(dir: &Path) -> helios::EngineBuilder {
    Engine::builder(dir).options(options())
}

/// Every regular file under `dir`, relative paths in order, skipping the lock file.
fn read_tree(root: &Path, dir: &Path, out: &mut Files) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_tree(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("inside root");
            let rel = rel.to_string_lossy().into_owned();
            if rel != "LOCK" {
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
}

fn snapshot(dir: &Path) -> (Files, Files) {
    let mut all = Vec::new();
    read_tree(dir, dir, &mut all);
    all.into_iter()
        .partition(|(rel, _)| !rel.starts_with("meta/"))
}

fn all_events(store: &impl Reader) -> Events {
    store
        .streams()
        .map(|s| {
            let events = store
                .read(&s.name, ..)
                .expect("read")
                .map(|e| e.expect("event").payload)
                .collect();
            (s.name, events)
        })
        .collect()
}

/// The deterministic workload behind both images: key-value events on three streams, in
/// batches of one to three, critical and normal.
fn workload(engine: &Engine, rounds: std::ops::Range<usize>) {
    for i in rounds {
        let stream = ["alpha", "beta", "gamma"][i % 3];
        let count = 1 + i % 3;
        let events: Vec<String> = (0..count)
            .map(|j| match (i + j) % 5 {
                4 => format!("del k{}", (i * 7 + j) % 6),
                _ => format!("set k{} value-{i}-{j}", (i * 3 + j) % 6),
            })
            .collect();
        let class = if i % 4 == 0 {
            Durability::Critical
        } else {
            Durability::Normal
        };
        engine.append(stream, &events, class, None).expect("append");
    }
}

fn images() -> &'static [Image] {
    static IMAGES: OnceLock<Vec<Image>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let mut images = Vec::new();
        // A cleanly closed store with every checkpoint built.
        {
            let dir = common::scratch_dir();
            let engine = builder(dir.path()).open().expect("open");
            workload(&engine, 0..30);
            // The first segment is sealed by now: a sync indexes it and writes a `CATALOG` that
            // covers it, the older snapshot kept.
            engine.sync().expect("sync");
            let older = std::fs::read(dir.path().join(CATALOG)).expect("an older CATALOG");
            workload(&engine, 30..60);
            engine.checkpoints().sync().expect("checkpoints");
            let events = all_events(&engine);
            engine.close().expect("close");
            let (files, meta) = snapshot(dir.path());
            images.push(Image {
                files,
                meta,
                events,
                reader_events: Events::new(),
                catalogs: vec![older],
                indexes: BTreeMap::new(),
            });
        }
        // A store copied while open: checkpoints and the index cover an older head, and the
        // last appends are written (the write buffer is tiny) but not synced.
        {
            let dir = common::scratch_dir();
            let mut options = options();
            options.log.write_buffer_bytes = 64;
            let engine = Engine::open(dir.path(), options).expect("open");
            workload(&engine, 0..30);
            engine.checkpoints().sync().expect("checkpoints");
            for i in 0..6 {
                let event = format!("set tail{i} t");
                engine
                    .append("beta", &[event], Durability::Normal, None)
                    .expect("append");
            }
            let (files, meta) = snapshot(dir.path());
            drop(engine);
            images.push(Image {
                files,
                meta,
                events: Events::new(),
                reader_events: Events::new(),
                catalogs: Vec::new(),
                indexes: BTreeMap::new(),
            });
        }
        // What a pristine copy of each image opens to is the reference for the damaged ones.
        for image in &mut images {
            // Its snapshots, and the index each segment has: every sealed one's is there, built
            // from its segment, and so is the active one's after a clean close (up to its last
            // record, which is the segment's).
            let catalog = file(&image.files, CATALOG).expect("an image has a CATALOG");
            image.catalogs.push(catalog.to_vec());
            let segments: Vec<(u64, &Vec<u8>)> = image
                .files
                .iter()
                .filter_map(|(name, bytes)| Some((segment_of(name, ".log")?, bytes)))
                .collect();
            for (k, &(id, bytes)) in segments.iter().enumerate() {
                let name = format!("log/{id:020}.idx");
                let active = k + 1 == segments.len();
                if active && file(&image.files, &name).is_none() {
                    continue; // Copied while open: no close indexed it.
                }
                let built = SegmentIndex::build(SegmentId(id), bytes).expect("a whole segment");
                assert_eq!(
                    file(&image.files, &name),
                    Some(&built[..]),
                    "{name} is not its segment's index"
                );
                image.indexes.insert(id, built);
            }
            let dir = common::scratch_dir();
            write_files(dir.path(), &image.files);
            write_files(dir.path(), &image.meta);
            let reader = ReadOnly::open(dir.path(), options()).expect("a reader opens an image");
            image.reader_events = all_events(&reader);
            drop(reader);
            let mut options = options();
            options.create_if_missing = false;
            let engine = Engine::open(dir.path(), options).expect("a pristine image opens");
            let events = all_events(&engine);
            if !image.events.is_empty() {
                assert_eq!(events, image.events, "a clean close loses nothing");
            }
            image.events = events;
            engine.checkpoints().sync().expect("checkpoints");
            check_checkpoints_complete(&engine);
        }
        images
    })
}

fn write_files(dir: &Path, files: &Files) {
    // Each directory is made once (`log/`, `checkpoints/`), not checked again for every file.
    let mut made = std::collections::BTreeSet::new();
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent()
            && made.insert(parent.to_path_buf())
        {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write");
    }
}

/// The directory of checkpoint packs, and the published end in it.
const PACK_DIR: &str = "checkpoints/";
const PUBLISHED_END: &str = "checkpoints/published-end";
/// The catalog snapshot and the store's identity (`engine/src/catalog_snapshot.rs`,
/// `engine/src/store_id.rs`; `docs/FORMAT.md`).
const CATALOG: &str = "CATALOG";
const STORE_ID: &str = "STORE-ID";

/// The bytes of the file `name`, if there is one.
fn file<'f>(files: &'f Files, name: &str) -> Option<&'f [u8]> {
    files
        .iter()
        .find(|(rel, _)| rel == name)
        .map(|(_, bytes)| &bytes[..])
}

/// The segment a file of the log is named after (`log/<20 digits><suffix>`), as the log parses
/// names: `.log` for segments, `.idx` for their indexes.
fn segment_of(name: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix("log/")?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The store id a `STORE-ID` file holds, as the engine reads it.
fn store_id(bytes: &[u8]) -> Option<u64> {
    let valid = bytes.len() == 24
        && bytes[..8] == *b"HELIOSID"
        && bytes[20..] == [0; 4]
        && crc32fast::hash(&bytes[..16]) == le32(bytes, 16);
    let id = le64(bytes.get(..16)?, 8);
    (valid && id != 0).then_some(id)
}

/// The `CATALOG` header (128 bytes, version 3): field offsets.
mod catalog {
    pub const VERSION: usize = 8;
    pub const RESERVED: usize = 12;
    pub const STREAMS: usize = 16;
    pub const STORE_ID: usize = 24;
    pub const LSN: usize = 32;
    pub const SEGMENT: usize = 40;
    pub const OFFSET: usize = 48;
    pub const FRAME_LEN: usize = 56;
    pub const RESERVED_2: usize = 60;
    pub const NAMES_LEN: usize = 64;
    /// The CRC-32 of the block checksums (version 4).
    pub const BLOCKS_CRC: usize = 72;
    pub const DUE: usize = 76;
    pub const CONFIG: usize = 84;
    pub const RESERVED_3: usize = 92;
    pub const CRC: usize = 124;
    pub const LEN: usize = 128;
    /// The body (records to due list) is checked in blocks of this many bytes.
    pub const BLOCK: usize = 512;
    pub const RECORD: u64 = 48;
    pub const HASH: u64 = 16;
}

/// Where the body of this snapshot ends (its block checksums start), from its header's counts,
/// if the file's length agrees.
fn catalog_body_end(bytes: &[u8]) -> Option<usize> {
    let head = bytes.get(..catalog::LEN)?;
    let body = le64(head, catalog::STREAMS)
        .checked_mul(catalog::RECORD + catalog::HASH)?
        .checked_add(le64(head, catalog::NAMES_LEN))?
        .checked_add(le64(head, catalog::DUE).checked_mul(8)?)?;
    let body = usize::try_from(body).ok()?;
    let end = catalog::LEN.checked_add(body)?;
    let blocks = body.div_ceil(catalog::BLOCK);
    (end.checked_add(blocks.checked_mul(4)?)? == bytes.len()).then_some(end)
}

/// Whether every block of the snapshot's body matches its checksum.
fn catalog_blocks_whole(bytes: &[u8]) -> bool {
    let Some(end) = catalog_body_end(bytes) else {
        return false;
    };
    bytes[catalog::LEN..end]
        .chunks(catalog::BLOCK)
        .enumerate()
        .all(|(k, block)| crc32fast::hash(block) == le32(bytes, end + 4 * k))
}

/// Whether a reader of the store whose id is `store` would load this snapshot: its magic,
/// version, store id, reserved bytes, length, header CRC and the CRC of its block checksums
/// right (its blocks are checked where they are read; the body's structure is not checked: one
/// that fails only that counts as usable, which only makes the oracle expect less).
fn catalog_usable(bytes: &[u8], store: Option<u64>) -> bool {
    let Some(head) = bytes.get(..catalog::LEN) else {
        return false;
    };
    head[..8] == *b"HLXCATLG"
        && crc32fast::hash(&head[..catalog::CRC]) == le32(head, catalog::CRC)
        && le32(head, catalog::VERSION) == 4
        && Some(le64(head, catalog::STORE_ID)) == store
        && head[catalog::RESERVED..catalog::STREAMS] == [0; 4]
        && head[catalog::RESERVED_2..catalog::NAMES_LEN] == [0; 4]
        && head[catalog::RESERVED_3..catalog::CRC].iter().all(|&b| b == 0)
        && catalog_body_end(bytes)
            .is_some_and(|end| crc32fast::hash(&bytes[end..]) == le32(head, catalog::BLOCKS_CRC))
}

/// Recomputes the snapshot's header CRC and (if `body`, and its length agrees with its header)
/// its block checksums and their CRC.
fn reseal_catalog(bytes: &mut [u8], body: bool) {
    if body && let Some(end) = catalog_body_end(bytes) {
        let blocks: Vec<u8> = bytes[catalog::LEN..end]
            .chunks(catalog::BLOCK)
            .flat_map(|block| crc32fast::hash(block).to_le_bytes())
            .collect();
        bytes[end..].copy_from_slice(&blocks);
        put_le(bytes, catalog::BLOCKS_CRC, 4, u64::from(crc32fast::hash(&blocks)));
    }
    reseal::reseal(bytes, catalog::LEN, catalog::BLOCKS_CRC, catalog::CRC, false);
}

/// The segment index header (64 bytes; `docs/FORMAT.md`): field offsets and widths, and the
/// sizes of a stream row and an entry.
mod index {
    pub const FIELDS: &[(usize, usize)] = &[
        (0, 8),  // magic
        (8, 4),  // version
        (12, 4), // stream rows
        (16, 8), // segment
        (24, 8), // last record: lsn
        (32, 8), // offset
        (40, 4), // frame length
        (44, 4), // entries
        (48, 4), // body CRC
        (52, 8), // reserved
    ];
    pub const STREAMS: usize = 12;
    pub const SEGMENT: usize = 16;
    pub const BODY_CRC: usize = 48;
    pub const CRC: usize = 60;
    pub const LEN: usize = 64;
    pub const ROW: usize = 24;
    pub const ENTRY: usize = 16;
}

fn reseal_index(bytes: &mut [u8], body: bool) {
    reseal::reseal(bytes, index::LEN, index::BODY_CRC, index::CRC, body);
}

/// Names a garbage or renamed file may get: stray files, leftovers of interrupted writes, and
/// names the engine parses (segments and packs that do not belong, a published end, checkpoint
/// files of store formats 1 and 2).
const NAMES: &[&str] = &[
    "log/junk",
    "log/00000000000000000001.log.tmp",
    "log/next-segment.spare",
    "log/00000000000000000001.log",
    "log/00000000000000000002.log",
    "log/00000000000000000050.log",
    "log/00000000000000009999.log",
    "log/99999999999999999999.log",
    "log/18446744073709551615.log",
    "checkpoints/notes.txt",
    "checkpoints/0000000000.pack",
    "checkpoints/0000000001.pack",
    "checkpoints/0000000002.pack",
    "checkpoints/0000000003.pack",
    "checkpoints/9999999999.pack",
    "checkpoints/00000000002.pack",
    "checkpoints/2.pack",
    "checkpoints/0000000001.pack.tmp",
    "checkpoints/0000000002.pack.tmp",
    "checkpoints/published-end",
    "checkpoints/published-end.tmp",
    "checkpoints/0000000000000001-00000000000000000004-l1.ckpt",
    "checkpoints/0000000000000002-00000000000000000016-l2.ckpt",
];

/// Names of packs that a garbage pack may get.
const PACK_NAMES: &[u64] = &[0, 1, 2, 3, 7, 9_999_999_999];

/// Values that lengths, LSNs, versions and ids are set to: absurd ones, and small ones that
/// name another stream, version or level of the image.
const ABSURD: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    8,
    12,
    16,
    20,
    47,
    48,
    49,
    64,
    4096,
    (48 + (64 << 20)) as u64,
    (48 + (64 << 20) + 1) as u64,
    u32::MAX as u64,
    i32::MAX as u64,
    u64::MAX,
    u64::MAX / 2,
    u64::MAX - 15,
];

/// What damage an input did, which decides what the oracle can expect.
#[derive(Default)]
struct Damage {
    /// Any change under `log/` (or to `FORMAT`).
    log: bool,
    /// A CRC recomputed over changed log bytes: the log can say anything.
    log_forged: bool,
    /// A checkpoint's CRCs recomputed over changed bytes: a checkpoint in a pack may claim to
    /// be another, or hold other entries.
    checkpoint_forged: bool,
    /// A segment index passes its checks under its segment's name (a sealed one, or the active
    /// one a clean close indexed) but is not that segment's (its CRCs recomputed over changed bytes, or another store's): reads through it
    /// may fail (each record found is checked), never lie. Decided from the files by `assess`.
    index_lies: bool,
    /// `CATALOG` passes its checks (this store's id) but is none this store wrote: the streams
    /// of the reader and the writer that load it may be anything (both start from it). Decided
    /// by `assess`.
    catalog_lies: bool,
    /// `CATALOG` passes the checks of an open but a block of its body fails its checksum: the
    /// streams it holds are errors where they are read (never absent, never wrong) until a
    /// writer's close removes it. Decided by `assess`.
    catalog_blocks_damaged: bool,
}

/// What one handle, the reader or the writer, must show after the damage.
#[derive(Clone, Copy, Debug)]
struct Expect {
    /// Every event read is its stream's, a prefix of what was appended: no CRC over log bytes
    /// was forged and `CATALOG` does not lie.
    truthful: bool,
    /// Views that succeed are the fold of the events read: truthful, and no checkpoint forged.
    folds: bool,
    /// It opens and every event is there (and, when it folds, every view succeeds): the log is
    /// untouched, no segment index lies and `CATALOG` does not lie.
    whole: bool,
}

impl Damage {
    fn expect(&self) -> Expect {
        let truthful = !self.log_forged && !self.catalog_lies;
        Expect {
            truthful,
            folds: truthful && !self.checkpoint_forged,
            whole: !self.log
                && !self.index_lies
                && !self.catalog_lies
                && !self.catalog_blocks_damaged,
        }
    }

    /// Decides from the damaged files whether a segment index or `CATALOG` that passes its
    /// checks lies (see `index_lies`, `catalog_lies`). An index of a segment the image has no
    /// index of (the active segment of a copy taken while open) or of none is not used, and a
    /// snapshot of another store is not read: neither lies.
    fn assess(&mut self, image: &Image, files: &Files) {
        for (name, bytes) in files {
            if let Some(id) = segment_of(name, ".idx")
                && let Some(own) = image.indexes.get(&id)
                && own != bytes
                && SegmentIndex::from_bytes(SegmentId(id), ReadOnlyBytes::new(bytes.clone()))
                    .is_ok()
            {
                common::trace(|| format!("{name} passes its checks but is not its segment's"));
                self.index_lies = true;
            }
        }
        if let Some(bytes) = file(files, CATALOG) {
            let store = file(files, STORE_ID).and_then(store_id);
            if catalog_usable(bytes, store) && !image.catalogs.iter().any(|c| c == bytes) {
                if catalog_blocks_whole(bytes) {
                    common::trace(|| "CATALOG passes its checks but is none this store wrote".into());
                    self.catalog_lies = true;
                } else {
                    common::trace(|| "CATALOG opens, but a block of its body is damaged".into());
                    self.catalog_blocks_damaged = true;
                }
            }
        }
    }
}

/// Offsets of the record frames of a segment image (walking until the first invalid frame).
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = segment_header::LEN;
    while at < bytes.len() {
        match helios_log::format::decode_frame(&bytes[at..]) {
            Ok(helios_log::format::Frame::Record(_, len)) => {
                offsets.push(at);
                at += len;
            }
            _ => break,
        }
    }
    offsets
}

/// The checkpoints in a pack's bytes, as a writer's open finds them.
fn pack_entries(bytes: &[u8]) -> Vec<PackEntry> {
    if bytes.len() < pack_header::LEN {
        return Vec::new();
    }
    pack::scan(
        Path::new("pack"),
        bytes,
        pack_header::LEN as u64,
        bytes.len() as u64,
    )
    .entries
}

fn is_pack(name: &str) -> bool {
    name.strip_prefix(PACK_DIR)
        .is_some_and(|n| parse_pack_name(n).is_some())
}

fn reseal_segment_header(bytes: &mut [u8]) {
    if bytes.len() >= segment_header::LEN {
        let crc = crc32fast::hash(&bytes[..segment_header::CRC]);
        put_le(bytes, segment_header::CRC, 4, u64::from(crc));
    }
}

fn reseal_pack_header(bytes: &mut [u8]) {
    if bytes.len() >= pack_header::LEN {
        let crc = crc32fast::hash(&bytes[..pack_header::HEADER_CRC]);
        put_le(bytes, pack_header::HEADER_CRC, 4, u64::from(crc));
    }
}

/// How a damaged checkpoint's CRCs are recomputed.
#[derive(Clone, Copy, Debug)]
enum Reseal {
    /// Not: the damage is caught by a checksum.
    No,
    /// Its header CRC only: the header gets past the scan, the archive CRC fails.
    Header,
    /// Both, over its own bytes: the damage reaches validation.
    Both,
    /// Both, over the rest of the pack: a longer archive length covers what follows.
    ToPackEnd,
}

impl Reseal {
    fn pick(u: &mut Unstructured<'_>) -> ArbResult<Reseal> {
        Ok(*u.choose(&[Reseal::No, Reseal::Header, Reseal::Both, Reseal::ToPackEnd])?)
    }

    /// Reseals the checkpoint `entry` of the pack `bytes`; whether its bytes may now be
    /// accepted as something they are not.
    fn apply(self, bytes: &mut [u8], entry: &PackEntry) -> bool {
        use helios_checkpoint::format::header as h;
        let start = usize::try_from(entry.offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = usize::try_from(entry.offset + entry.len).unwrap_or(usize::MAX);
        match self {
            Reseal::No => false,
            Reseal::Header => {
                if let Some(head) = bytes.get_mut(start..start + h::LEN) {
                    let crc = crc32fast::hash(&head[..h::HEADER_CRC]);
                    put_le(head, h::HEADER_CRC, 4, u64::from(crc));
                }
                true
            }
            Reseal::Both => {
                let end = end.min(bytes.len());
                helios_checkpoint::format::reseal_crcs(&mut bytes[start..end]);
                true
            }
            Reseal::ToPackEnd => {
                helios_checkpoint::format::reseal_crcs(&mut bytes[start..]);
                true
            }
        }
    }
}

fn pick_file(u: &mut Unstructured<'_>, files: &Files) -> ArbResult<Option<usize>> {
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(u.choose_index(files.len())?))
}

/// One of the files whose name `wanted` accepts, if any.
fn pick_named(
    u: &mut Unstructured<'_>,
    files: &Files,
    wanted: impl Fn(&str) -> bool,
) -> ArbResult<Option<usize>> {
    let found: Vec<usize> = (0..files.len()).filter(|&i| wanted(&files[i].0)).collect();
    if found.is_empty() {
        return Ok(None);
    }
    Ok(Some(found[u.choose_index(found.len())?]))
}

fn offset_in(u: &mut Unstructured<'_>, len: usize) -> ArbResult<usize> {
    if len == 0 {
        return Ok(0);
    }
    // Mostly near the start, where headers and the written records are.
    if u.ratio(3, 4)? {
        Ok(u.int_in_range(0..=len.min(1024) - 1)?)
    } else {
        Ok(u.int_in_range(0..=len - 1)?)
    }
}

fn value(u: &mut Unstructured<'_>) -> ArbResult<u64> {
    if u.ratio(3, 4)? {
        Ok(*u.choose(ABSURD)?)
    } else {
        u.arbitrary()
    }
}

/// Writes (or replaces) the file `name`.
fn put_file(files: &mut Files, name: &str, bytes: Vec<u8>) {
    files.retain(|(rel, _)| rel != name);
    files.push((name.to_owned(), bytes));
}

/// The store's FORMAT file is read before the log: damage to it may refuse the store, as
/// damage to the log may. Segment indexes (`.idx`, and `.idx.tmp` leftovers) are derived data
/// beside the segments, not the log.
fn touches_log(name: &str) -> bool {
    (name.starts_with("log/") && !name.ends_with(".idx") && !name.ends_with(".idx.tmp"))
        || name == "FORMAT"
}

/// Applies one damage operation described by the input; `image` is the one damaged, `other`
/// the other base image.
fn damage_once(
    u: &mut Unstructured<'_>,
    files: &mut Files,
    damage: &mut Damage,
    image: &Image,
    other: &Image,
) -> ArbResult<()> {
    match u.int_in_range(0u8..=18)? {
        op @ 0..=9 => damage_file(u, op, files, damage),
        10 => damage_record_field(u, files, damage),
        11 => forge_payload(u, files, damage),
        12 => damage_checkpoint(u, files, damage),
        13 => damage_checkpoint_header(u, files, damage),
        14 => damage_pack(u, files),
        15 => damage_published_end(u, files),
        16 => add_garbage_pack(u, files),
        17 => damage_index(u, files, other),
        _ => damage_catalog(u, files, image, other),
    }
}

/// Damage to any file, blind to its format.
fn damage_file(
    u: &mut Unstructured<'_>,
    op: u8,
    files: &mut Files,
    damage: &mut Damage,
) -> ArbResult<()> {
    let Some(i) = pick_file(u, files)? else {
        return Ok(());
    };
    match op {
        // Flip one bit.
        0 => {
            let len = files[i].1.len();
            if len > 0 {
                let at = offset_in(u, len)?;
                let bit = u.int_in_range(0..=7)?;
                files[i].1[at] ^= 1 << bit;
                common::trace(|| format!("flip bit {bit} of byte {at} of {}", files[i].0));
            }
        }
        // Overwrite a few bytes.
        1 => {
            let len = files[i].1.len();
            let at = offset_in(u, len)?;
            let bytes: Vec<u8> = (0..u.int_in_range(1..=16)?)
                .map(|_| u.arbitrary())
                .collect::<ArbResult<_>>()?;
            common::trace(|| format!("set bytes {at}.. of {} to {bytes:02x?}", files[i].0));
            for (k, b) in bytes.into_iter().enumerate() {
                if let Some(slot) = files[i].1.get_mut(at + k) {
                    *slot = b;
                }
            }
        }
        // Truncate: to nothing, into the header, or anywhere.
        2 => {
            let len = files[i].1.len();
            let to = match u.int_in_range(0..=3)? {
                0 => 0,
                1 => u.int_in_range(0..=64)?.min(len),
                _ => offset_in(u, len)?,
            };
            files[i].1.truncate(to);
            common::trace(|| format!("truncate {} to {to} bytes (from {len})", files[i].0));
        }
        // Append junk, or grow with zeros.
        3 | 4 => {
            let room = FILE_LEN_MAX.saturating_sub(files[i].1.len());
            if op == 3 {
                let n = u.int_in_range(0..=256usize)?.min(room);
                common::trace(|| format!("append {n} junk bytes to {}", files[i].0));
                for _ in 0..n {
                    let b = u.arbitrary()?;
                    files[i].1.push(b);
                }
            } else {
                let n = u.int_in_range(0..=room)?;
                common::trace(|| format!("append {n} zeros to {}", files[i].0));
                let len = files[i].1.len() + n;
                files[i].1.resize(len, 0);
            }
        }
        // Swap two files' contents.
        5 => {
            let j = u.choose_index(files.len())?;
            common::trace(|| format!("swap {} and {}", files[i].0, files[j].0));
            let (a, b) = (files[i].1.clone(), files[j].1.clone());
            files[i].1 = b;
            files[j].1 = a;
            damage.log |= touches_log(&files[i].0) || touches_log(&files[j].0);
        }
        // Copy one file over another.
        6 => {
            let j = u.choose_index(files.len())?;
            common::trace(|| format!("copy {} over {}", files[i].0, files[j].0));
            files[j].1 = files[i].1.clone();
            damage.log |= touches_log(&files[j].0);
        }
        // Remove a file.
        7 => {
            damage.log |= touches_log(&files[i].0);
            common::trace(|| format!("remove {}", files[i].0));
            files.remove(i);
            return Ok(());
        }
        // Rename (or add a copy under) a name from the list.
        _ => {
            let name = (*u.choose(NAMES)?).to_owned();
            damage.log |= touches_log(&name) || touches_log(&files[i].0);
            let bytes = if op == 8 {
                files.remove(i).1
            } else {
                // A garbage file: junk, or a copy of this one.
                if u.arbitrary()? {
                    files[i].1.clone()
                } else {
                    let n = u.int_in_range(0..=512usize)?;
                    (0..n).map(|_| u.arbitrary()).collect::<ArbResult<_>>()?
                }
            };
            common::trace(|| {
                format!(
                    "{} {} ({} bytes)",
                    if op == 8 { "rename to" } else { "add" },
                    name,
                    bytes.len()
                )
            });
            put_file(files, &name, bytes);
            return Ok(());
        }
    }
    damage.log |= touches_log(&files[i].0);
    Ok(())
}

/// An absurd value in a record header field or a segment header field, with or without the
/// CRC recomputed.
fn damage_record_field(
    u: &mut Unstructured<'_>,
    files: &mut Files,
    damage: &mut Damage,
) -> ArbResult<()> {
    let Some(i) = pick_named(u, files, |name| name.ends_with(".log"))? else {
        return Ok(());
    };
    let reseal = u.arbitrary()?;
    let value = value(u)?;
    let (name, bytes) = &mut files[i];
    let frames = frame_offsets(bytes);
    if frames.is_empty() || u.ratio(1, 5)? {
        let (at, width) = *u.choose(&[
            (segment_header::FORMAT_VERSION, 4),
            (segment_header::CAPACITY_BYTES, 4),
            (segment_header::FIRST_LSN, 8),
            (segment_header::MAGIC, 8),
        ])?;
        put_le(bytes, at, width, value);
        common::trace(|| {
            format!("segment header of {name}: byte {at} = {value} (resealed: {reseal})")
        });
        if reseal {
            reseal_segment_header(bytes);
        }
    } else {
        let at = frames[u.choose_index(frames.len())?];
        let (field, width) = *u.choose(&[
            (record::BODY_LEN, 4),
            (record::LSN, 8),
            (record::STREAM, 8),
            (record::VERSION, 8),
            (record::PAYLOAD_LEN, 4),
            (record::BATCH_LEFT, 4),
            (record::KIND, 1),
            (record::CLASS, 1),
        ])?;
        put_le(bytes, at + field, width, value);
        common::trace(|| {
            format!("record at {at} of {name}: field {field} = {value} (resealed: {reseal})")
        });
        if reseal {
            reseal_frame(bytes, at);
        }
    }
    damage.log = true;
    damage.log_forged |= reseal;
    Ok(())
}

/// A record's payload replaced (same length) and resealed: a forged but valid log.
fn forge_payload(
    u: &mut Unstructured<'_>,
    files: &mut Files,
    damage: &mut Damage,
) -> ArbResult<()> {
    let Some(i) = pick_named(u, files, |name| name.ends_with(".log"))? else {
        return Ok(());
    };
    let frames = frame_offsets(&files[i].1);
    if frames.is_empty() {
        return Ok(());
    }
    let at = frames[u.choose_index(frames.len())?];
    let start = at + record::HEADER_LEN;
    let bytes = &mut files[i].1;
    let payload_len = u32::from_le_bytes(
        bytes[at + record::PAYLOAD_LEN..at + record::PAYLOAD_LEN + 4]
            .try_into()
            .expect("4 bytes"),
    ) as usize;
    for k in 0..payload_len {
        if let Some(slot) = bytes.get_mut(start + k) {
            *slot = u.arbitrary()?;
        }
    }
    reseal_frame(bytes, at);
    common::trace(|| format!("forged payload of the record at {at} of {}", files[i].0));
    damage.log = true;
    damage.log_forged = true;
    Ok(())
}

/// A pack and one of the checkpoints in it, if any.
fn pick_checkpoint(
    u: &mut Unstructured<'_>,
    files: &Files,
) -> ArbResult<Option<(usize, PackEntry)>> {
    let Some(i) = pick_named(u, files, is_pack)? else {
        return Ok(None);
    };
    let entries = pack_entries(&files[i].1);
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some((i, entries[u.choose_index(entries.len())?])))
}

fn describe(entry: &PackEntry) -> String {
    let m = entry.meta;
    format!(
        "checkpoint of stream {} at {} (level {}) at {}..{}",
        m.stream_id,
        m.version,
        m.level,
        entry.offset,
        entry.offset + entry.len
    )
}

/// Bytes of a checkpoint in a pack flipped or set, in its header or its archive, with its CRCs
/// recomputed or not.
fn damage_checkpoint(
    u: &mut Unstructured<'_>,
    files: &mut Files,
    damage: &mut Damage,
) -> ArbResult<()> {
    use helios_checkpoint::format::header as h;
    let Some((i, entry)) = pick_checkpoint(u, files)? else {
        return Ok(());
    };
    let start = usize::try_from(entry.offset).unwrap_or(usize::MAX);
    let len = usize::try_from(entry.len).unwrap_or(usize::MAX);
    // A header resealed with an archive length of 0 (an earlier damage) leaves a checkpoint
    // with no archive: then only its header has bytes to damage.
    let at = start
        + if len <= h::LEN || u.arbitrary()? {
            u.int_in_range(0..=h::LEN - 1)?
        } else {
            u.int_in_range(h::LEN..=len - 1)?
        };
    let (name, bytes) = &mut files[i];
    let set: u8 = u.arbitrary()?;
    let flip = u.arbitrary()?;
    if flip {
        bytes[at] ^= set.max(1);
    } else {
        bytes[at] = set;
    }
    let reseal = Reseal::pick(u)?;
    common::trace(|| {
        format!(
            "{} of {name}: byte {at} {} {set:#04x}, resealed: {reseal:?}",
            describe(&entry),
            if flip { "^=" } else { "=" }
        )
    });
    damage.checkpoint_forged |= reseal.apply(bytes, &entry);
    Ok(())
}

/// An absurd (or another checkpoint's) value in a checkpoint header field, with its CRCs
/// recomputed or not.
fn damage_checkpoint_header(
    u: &mut Unstructured<'_>,
    files: &mut Files,
    damage: &mut Damage,
) -> ArbResult<()> {
    use helios_checkpoint::format::header as h;
    let Some((i, entry)) = pick_checkpoint(u, files)? else {
        return Ok(());
    };
    let (field, width) = *u.choose(&[
        (h::MAGIC, 8),
        (h::FORMAT_VERSION, 4),
        (h::KIND, 1),
        (h::LEVEL, 1),
        (h::MACHINE, 2),
        (h::STREAM_ID, 8),
        (h::VERSION, 8),
        (h::BASE_VERSION, 8),
        (h::ENTRY_COUNT, 8),
        (h::ARCHIVE_LEN, 8),
        (h::ARCHIVE_CRC, 4),
    ])?;
    let value = value(u)?;
    let reseal = Reseal::pick(u)?;
    let (name, bytes) = &mut files[i];
    let at = usize::try_from(entry.offset).unwrap_or(usize::MAX) + field;
    put_le(bytes, at, width, value);
    common::trace(|| {
        format!(
            "{} of {name}: header byte {field} = {value}, resealed: {reseal:?}",
            describe(&entry)
        )
    });
    damage.checkpoint_forged |= reseal.apply(bytes, &entry);
    Ok(())
}

/// Damage to a pack's structure: its header, a torn tail (optionally with the published end
/// before it, as a crash leaves it), a checkpoint zeroed, a newer copy of a checkpoint
/// appended, a checkpoint copied over another.
fn damage_pack(u: &mut Unstructured<'_>, files: &mut Files) -> ArbResult<()> {
    let Some(i) = pick_named(u, files, is_pack)? else {
        return Ok(());
    };
    let entries = pack_entries(&files[i].1);
    let entry = if entries.is_empty() {
        None
    } else {
        Some(entries[u.choose_index(entries.len())?])
    };
    let seq = files[i]
        .0
        .strip_prefix(PACK_DIR)
        .and_then(parse_pack_name)
        .unwrap_or(0);
    let op = u.int_in_range(0..=4)?;
    let (name, bytes) = &mut files[i];
    let name = name.clone();
    let span = |e: &PackEntry| {
        let start = usize::try_from(e.offset).unwrap_or(usize::MAX);
        (start, start + usize::try_from(e.len).unwrap_or(usize::MAX))
    };
    match (op, entry) {
        // A header field; its CRC recomputed or not.
        (0, _) => {
            let (field, width) = *u.choose(&[
                (pack_header::MAGIC, 8),
                (pack_header::FORMAT_VERSION, 4),
                (pack_header::RESERVED_A, 4),
                (pack_header::SEQ, 8),
                (pack_header::CAPACITY, 8),
                (pack_header::RESERVED_B, 8),
            ])?;
            let value = if field == pack_header::CAPACITY && u.arbitrary()? {
                // Aligned, as a decoder accepts: below, at or past the pack's length.
                let len = bytes.len() as u64;
                *u.choose(&[64, 4096, len & !15, (len + 15) & !15, len + 4096, 1 << 40])?
            } else {
                value(u)?
            };
            let reseal = u.arbitrary()?;
            put_le(bytes, field, width, value);
            if reseal {
                reseal_pack_header(bytes);
            }
            common::trace(|| {
                format!("pack header of {name}: byte {field} = {value} (resealed: {reseal})")
            });
        }
        // A torn tail: cut inside a checkpoint, at its start or end; the published end left
        // as it is or moved before the cut (what a crash leaves: the writer had not published
        // the checkpoints being written).
        (1, Some(e)) => {
            let (start, end) = span(&e);
            let to = match u.int_in_range(0..=2)? {
                0 => u.int_in_range(start..=end)?,
                1 => start,
                _ => end,
            };
            bytes.truncate(to);
            let republish = u.arbitrary()?;
            common::trace(|| {
                format!(
                    "{name} cut at {to}, in or around the {}; published end moved before it: {republish}",
                    describe(&e)
                )
            });
            if republish {
                let before = entries
                    .iter()
                    .map(|e| e.offset + e.len)
                    .filter(|&end| end <= to as u64)
                    .last()
                    .unwrap_or(pack_header::LEN as u64);
                let end = PackEnd { seq, end: before };
                put_file(files, PUBLISHED_END, end.encode().to_vec());
            }
        }
        // Zeros over a checkpoint, its header, or from it to the end (the file's length kept).
        (2, Some(e)) => {
            let (start, end) = span(&e);
            let end = match u.int_in_range(0..=2)? {
                0 => end,
                1 => start + helios_checkpoint::format::header::LEN,
                _ => bytes.len(),
            };
            bytes[start..end].fill(0);
            common::trace(|| {
                format!(
                    "{name}: zeros over {start}..{end}, from the {}",
                    describe(&e)
                )
            });
        }
        // A copy of a checkpoint appended where the writer would put it: a newer copy.
        (3, Some(e)) => {
            let (start, end) = span(&e);
            let copy = bytes[start..end].to_vec();
            let at = record_offset(bytes.len() as u64, e.len);
            bytes.resize(usize::try_from(at).unwrap_or(usize::MAX), 0);
            bytes.extend_from_slice(&copy);
            common::trace(|| format!("{name}: a copy of the {} appended at {at}", describe(&e)));
        }
        // A checkpoint copied over another's place.
        (_, Some(e)) => {
            let other = entries[u.choose_index(entries.len())?];
            let (start, end) = span(&e);
            let copy = bytes[start..end].to_vec();
            let (to, _) = span(&other);
            let n = copy.len().min(bytes.len() - to);
            bytes[to..to + n].copy_from_slice(&copy[..n]);
            common::trace(|| {
                format!(
                    "{name}: the {} copied over the {}",
                    describe(&e),
                    describe(&other)
                )
            });
        }
        (_, None) => {}
    }
    Ok(())
}

/// The published end removed, cut, or rewritten valid (its CRC right) with another pack or
/// end: before, at or past what is written, or absurd.
fn damage_published_end(u: &mut Unstructured<'_>, files: &mut Files) -> ArbResult<()> {
    let ends: Vec<u64> = files
        .iter()
        .filter(|(name, _)| is_pack(name))
        .flat_map(|(_, bytes)| {
            let entries = pack_entries(bytes);
            let len = bytes.len() as u64;
            entries
                .into_iter()
                .flat_map(|e| [e.offset, e.offset + e.len])
                .chain([len, len + 16])
        })
        .collect();
    match u.int_in_range(0..=3)? {
        0 => {
            common::trace(|| "published end removed".to_owned());
            files.retain(|(name, _)| name != PUBLISHED_END);
        }
        1 => {
            let n = u.int_in_range(0..=pack::published_end::LEN + 8)?;
            let mut bytes = PackEnd { seq: 1, end: 64 }.encode().to_vec();
            bytes.resize(n, 0);
            common::trace(|| format!("published end {n} bytes long"));
            put_file(files, PUBLISHED_END, bytes);
        }
        _ => {
            let seq = if u.ratio(3, 4)? {
                *u.choose(PACK_NAMES)?
            } else {
                value(u)?
            };
            let end = if !ends.is_empty() && u.ratio(3, 4)? {
                *u.choose(&ends)?
            } else {
                value(u)?
            };
            let published = PackEnd { seq, end };
            common::trace(|| format!("published end {published:?}"));
            put_file(files, PUBLISHED_END, published.encode().to_vec());
        }
    }
    Ok(())
}

/// A garbage pack: junk, a copy of a pack (its header naming the other), a header alone, or a
/// copy whose header is rewritten for its new name (a valid pack holding older copies of some
/// checkpoints).
fn add_garbage_pack(u: &mut Unstructured<'_>, files: &mut Files) -> ArbResult<()> {
    let seq = *u.choose(PACK_NAMES)?;
    let name = format!("{PACK_DIR}{}", pack_file_name(seq));
    let source = pick_named(u, files, is_pack)?.map(|i| files[i].1.clone());
    let (what, bytes) = match (u.int_in_range(0..=3)?, source) {
        (0, _) | (_, None) => {
            let n = u.int_in_range(0..=512usize)?;
            let junk = (0..n).map(|_| u.arbitrary()).collect::<ArbResult<_>>()?;
            ("junk", junk)
        }
        (1, Some(source)) => ("a copy of another pack", source),
        (2, Some(_)) => {
            let capacity = *u.choose(&[64, 4096, pack::DEFAULT_PACK_CAPACITY])?;
            let mut bytes = PackHeader {
                seq,
                capacity,
                store_id: 0,
            }
            .encode()
            .to_vec();
            bytes.resize(bytes.len() + u.int_in_range(0..=8192usize)?, 0);
            ("a header and zeros", bytes)
        }
        (_, Some(mut source)) => {
            if source.len() >= pack_header::LEN {
                put_le(&mut source, pack_header::SEQ, 8, seq);
                reseal_pack_header(&mut source);
            }
            let keep = u.int_in_range(0..=source.len())?;
            source.truncate(keep);
            ("a copy of another pack, renumbered", source)
        }
    };
    common::trace(|| format!("add {name}: {what} ({} bytes)", bytes.len()));
    put_file(files, &name, bytes);
    Ok(())
}

fn is_index(name: &str) -> bool {
    segment_of(name, ".idx").is_some()
}

/// An offset in a segment index: in its header, its stream rows, or anywhere.
fn index_offset(u: &mut Unstructured<'_>, bytes: &[u8]) -> ArbResult<usize> {
    let len = bytes.len();
    if len == 0 {
        return Ok(0);
    }
    let rows = bytes
        .get(index::STREAMS..index::STREAMS + 4)
        .map_or(0, |b| {
            u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
        });
    let rows_end = index::LEN
        .saturating_add(rows.saturating_mul(index::ROW))
        .min(len);
    let at = match u.int_in_range(0..=2)? {
        0 => u.int_in_range(0..=index::LEN - 1)?,
        1 if rows_end > index::LEN => u.int_in_range(index::LEN..=rows_end - 1)?,
        _ => u.int_in_range(0..=len - 1)?,
    };
    Ok(at.min(len - 1))
}

/// Damage to a segment index (`log/<segment>.idx`): bytes flipped or set, a cut, the file
/// removed, another segment's index copied over it, a header, row or entry field set with or
/// without its CRCs recomputed; or a garbage index under a segment's name. Indexes are derived
/// data: `Damage::assess` decides afterwards whether one that passes its checks lies.
fn damage_index(u: &mut Unstructured<'_>, files: &mut Files, other: &Image) -> ArbResult<()> {
    let target = pick_named(u, files, is_index)?;
    match (u.int_in_range(0..=7)?, target) {
        // A byte flipped.
        (0, Some(i)) => {
            let at = index_offset(u, &files[i].1)?;
            let mask = u.int_in_range(1..=255)?;
            if let Some(b) = files[i].1.get_mut(at) {
                *b ^= mask;
            }
            common::trace(|| format!("{}: byte {at} ^= {mask:#04x}", files[i].0));
        }
        // Bytes set.
        (1, Some(i)) => {
            let at = index_offset(u, &files[i].1)?;
            let n = u.int_in_range(1..=8)?;
            for k in 0..n {
                let b = u.arbitrary()?;
                if let Some(slot) = files[i].1.get_mut(at + k) {
                    *slot = b;
                }
            }
            common::trace(|| format!("{}: {n} bytes set at {at}", files[i].0));
        }
        // Cut: to nothing, into the header, to the header alone, an entry short.
        (2, Some(i)) => {
            let len = files[i].1.len();
            let to = match u.int_in_range(0..=3)? {
                0 => 0,
                1 => u.int_in_range(1..=index::LEN - 1)?,
                2 => index::LEN,
                _ => len.saturating_sub(index::ENTRY),
            };
            files[i].1.truncate(to);
            common::trace(|| format!("{} cut to {to} bytes (from {len})", files[i].0));
        }
        // Removed.
        (3, Some(i)) => {
            common::trace(|| format!("remove {}", files[i].0));
            files.remove(i);
        }
        // Another segment's index (of this image or the other) copied over this one.
        (4, Some(i)) => {
            let source = if u.arbitrary()? {
                &other.files
            } else {
                &*files
            };
            if let Some(j) = pick_named(u, source, is_index)? {
                let (name, bytes) = source[j].clone();
                common::trace(|| {
                    format!(
                        "{name} (of the other image too?) copied over {}",
                        files[i].0
                    )
                });
                files[i].1 = bytes;
            }
        }
        // A header, stream row or entry field set to an absurd value; the CRCs recomputed (the
        // body's and the header's, or the header's only) or not.
        (5, Some(i)) => {
            let bytes = &mut files[i].1;
            let rows = bytes
                .get(index::STREAMS..index::STREAMS + 4)
                .map_or(0, |b| {
                    u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
                });
            let rows_end = index::LEN + rows * index::ROW;
            let (at, width) = match u.int_in_range(0..=2)? {
                0 => *u.choose(index::FIELDS)?,
                1 if rows > 0 => {
                    let row = index::LEN + u.choose_index(rows)? * index::ROW;
                    let (field, width) = *u.choose(&[(0, 8), (8, 8), (16, 4), (20, 4)])?;
                    (row + field, width)
                }
                _ if bytes.len() >= rows_end + index::ENTRY => {
                    let entries = (bytes.len() - rows_end) / index::ENTRY;
                    let entry = rows_end + u.choose_index(entries)? * index::ENTRY;
                    let (field, width) = *u.choose(&[(0, 8), (8, 4), (12, 4)])?;
                    (entry + field, width)
                }
                _ => (index::SEGMENT, 8),
            };
            let value = value(u)?;
            put_le(bytes, at, width, value);
            let reseal = u.int_in_range(0..=2)?;
            if reseal > 0 {
                reseal_index(bytes, reseal == 2);
            }
            common::trace(|| {
                format!(
                    "{}: byte {at} ({width} bytes) = {value}, resealed: {}",
                    files[i].0,
                    ["no", "header", "both"][reseal]
                )
            });
        }
        // A garbage index under a segment's name: a sealed segment's, the active one's, or
        // none's; or an `.idx.tmp` leftover of an interrupted write.
        _ => {
            let mut ids: Vec<u64> = files
                .iter()
                .filter_map(|(name, _)| segment_of(name, ".log"))
                .collect();
            ids.extend([2, u64::MAX]);
            let id = ids[u.choose_index(ids.len())?];
            let name = if u.ratio(1, 8)? {
                format!("log/{id:020}.idx.tmp")
            } else {
                format!("log/{id:020}.idx")
            };
            let source = pick_named(u, files, is_index)?.map(|j| files[j].1.clone());
            let (what, bytes) = match (u.int_in_range(0..=3)?, source) {
                (0, _) | (_, None) => {
                    let n = u.int_in_range(0..=256usize)?;
                    let junk = (0..n).map(|_| u.arbitrary()).collect::<ArbResult<_>>()?;
                    ("junk", junk)
                }
                (1, Some(source)) => ("a copy of another index", source),
                (2, Some(_)) => {
                    // A header alone, valid: no event, the last record absurd or the segment's
                    // first.
                    let mut bytes = vec![0u8; index::LEN];
                    bytes[..8].copy_from_slice(b"HLXINDEX");
                    put_le(&mut bytes, 8, 4, 1);
                    put_le(&mut bytes, index::SEGMENT, 8, id);
                    let last = if u.arbitrary()? { id } else { value(u)? };
                    put_le(&mut bytes, 24, 8, last);
                    put_le(&mut bytes, 32, 8, segment_header::LEN as u64);
                    put_le(&mut bytes, 40, 4, value(u)?);
                    reseal_index(&mut bytes, true);
                    ("a valid header alone", bytes)
                }
                (_, Some(mut source)) => {
                    put_le(&mut source, index::SEGMENT, 8, id);
                    reseal_index(&mut source, false);
                    ("another index relabelled for it", source)
                }
            };
            common::trace(|| format!("add {name}: {what} ({} bytes)", bytes.len()));
            put_file(files, &name, bytes);
        }
    }
    Ok(())
}

/// Damage to the catalog snapshot `CATALOG`: a byte flipped, a cut, the file removed or grown,
/// a header field set with or without the header CRC recomputed, body bytes changed with both
/// CRCs recomputed; or replaced by the other image's (another store's) as it is or relabelled
/// with this store's id, by an older one of this store; or a `CATALOG.tmp` leftover.
fn damage_catalog(
    u: &mut Unstructured<'_>,
    files: &mut Files,
    image: &Image,
    other: &Image,
) -> ArbResult<()> {
    let at = files.iter().position(|(name, _)| name == CATALOG);
    match (u.int_in_range(0..=8)?, at) {
        // A byte flipped: in the header, or anywhere.
        (0, Some(i)) => {
            let len = files[i].1.len();
            if len > 0 {
                let at = if u.arbitrary()? {
                    u.int_in_range(0..=catalog::LEN.min(len) - 1)?
                } else {
                    u.int_in_range(0..=len - 1)?
                };
                let mask = u.int_in_range(1..=255)?;
                files[i].1[at] ^= mask;
                common::trace(|| format!("CATALOG: byte {at} ^= {mask:#04x}"));
            }
        }
        // Cut: to nothing, into the header, to the header alone, a byte short.
        (1, Some(i)) => {
            let len = files[i].1.len();
            let to = match u.int_in_range(0..=3)? {
                0 => 0,
                1 => u.int_in_range(1..=catalog::LEN - 1)?,
                2 => catalog::LEN,
                _ => len.saturating_sub(1),
            };
            files[i].1.truncate(to);
            common::trace(|| format!("CATALOG cut to {to} bytes (from {len})"));
        }
        (2, Some(i)) => {
            common::trace(|| "remove CATALOG".into());
            files.remove(i);
        }
        // Grown: junk or zeros after the body.
        (3, Some(i)) => {
            let n = u.int_in_range(1..=64)?;
            let zeros: bool = u.arbitrary()?;
            for _ in 0..n {
                let b = if zeros { 0 } else { u.arbitrary()? };
                files[i].1.push(b);
            }
            common::trace(|| format!("CATALOG: {n} bytes appended (zeros: {zeros})"));
        }
        // A header field set: the record it covers, the stream count, the names' length, the
        // due streams' count, the configuration, the version (a newer one), the store id, the
        // reserved bytes; the header CRC recomputed or not.
        (4, Some(i)) => {
            let (field, width) = *u.choose(&[
                (catalog::LSN, 8),
                (catalog::SEGMENT, 8),
                (catalog::OFFSET, 8),
                (catalog::FRAME_LEN, 4),
                (catalog::STREAMS, 8),
                (catalog::NAMES_LEN, 8),
                (catalog::DUE, 8),
                (catalog::CONFIG, 8),
                (catalog::VERSION, 4),
                (catalog::STORE_ID, 8),
                (catalog::RESERVED, 4),
                (catalog::RESERVED_2, 4),
                (catalog::RESERVED_3, 8),
            ])?;
            let value = if field == catalog::VERSION && u.arbitrary()? {
                4
            } else {
                value(u)?
            };
            let reseal: bool = u.arbitrary()?;
            put_le(&mut files[i].1, field, width, value);
            if reseal {
                reseal_catalog(&mut files[i].1, false);
            }
            common::trace(|| {
                format!("CATALOG: header byte {field} = {value} (resealed: {reseal})")
            });
        }
        // Body bytes changed, both CRCs recomputed.
        (5, Some(i)) => {
            let len = files[i].1.len();
            if len > catalog::LEN {
                let at = u.int_in_range(catalog::LEN..=len - 1)?;
                let mask = u.int_in_range(1..=255)?;
                files[i].1[at] ^= mask;
                reseal_catalog(&mut files[i].1, true);
                common::trace(|| format!("CATALOG: body byte {at} ^= {mask:#04x}, resealed"));
            }
        }
        // The other image's: another store's as it is, or relabelled with this store's id
        // (from its STORE-ID) and resealed.
        (6, _) => {
            if let Some(theirs) = file(&other.files, CATALOG) {
                let mut bytes = theirs.to_vec();
                let relabel = u.arbitrary()?;
                if relabel && let Some(id) = file(files, STORE_ID).and_then(store_id) {
                    put_le(&mut bytes, catalog::STORE_ID, 8, id);
                    reseal_catalog(&mut bytes, false);
                }
                common::trace(|| format!("CATALOG: the other image's (relabelled: {relabel})"));
                put_file(files, CATALOG, bytes);
            }
        }
        // An older snapshot of this store (one it wrote before the last).
        (7, _) => {
            let k = u.choose_index(image.catalogs.len())?;
            common::trace(|| format!("CATALOG: this store's snapshot {k} (oldest first)"));
            put_file(files, CATALOG, image.catalogs[k].clone());
        }
        // A leftover of an interrupted write: a copy of the snapshot, or a cut one.
        _ => {
            let mut bytes = file(files, CATALOG).unwrap_or_default().to_vec();
            let keep = u.int_in_range(0..=bytes.len())?;
            bytes.truncate(keep);
            common::trace(|| format!("add CATALOG.tmp ({keep} bytes)"));
            put_file(files, "CATALOG.tmp", bytes);
        }
    }
    Ok(())
}

/// Reads every stream of `store` (the writer or a reader) and checks what was read: when it is
/// truthful, a prefix of what `truth` says each stream holds; when it must be whole, exactly
/// what `exact` says (`truth` if `None`).
fn check_reads(
    store: &impl Reader,
    truth: &Events,
    exact: Option<&Events>,
    expect: Expect,
) -> Events {
    let mut read = BTreeMap::new();
    for info in store.streams() {
        let mut events = Vec::new();
        if let Ok(iter) = store.read(&info.name, ..) {
            for event in iter {
                match event {
                    Ok(event) => events.push(event.payload),
                    Err(_) => break,
                }
            }
        }
        if expect.truthful {
            let truth = truth.get(&info.name);
            let truth = truth.unwrap_or_else(|| {
                panic!(
                    "stream {:?} is not in the image and no CRC was forged",
                    info.name
                )
            });
            assert!(
                truth.starts_with(&events),
                "stream {}: events read are not a prefix of the events appended",
                info.name
            );
        }
        read.insert(info.name, events);
    }
    if expect.whole {
        assert!(
            read == *exact.unwrap_or(truth),
            "the log is untouched, yet the events read differ from a pristine open's"
        );
    }
    read
}

/// Views of every stream read at 0, 1, half the head, the head, a version `extra` picks and one
/// past the head (which must be refused); checks those that succeed against the fold of the
/// events read (when it folds), and, when it must also be whole, that they all succeed.
fn check_views(store: &impl Reader, read: &Events, expect: Expect, extra: u64) {
    for (name, events) in read {
        let head = store.head(name).map_or(0, |v| v.0);
        let mut versions = vec![0, 1, head / 2, head, extra % (head + 1), head + 1];
        versions.sort_unstable();
        versions.dedup();
        for v in versions {
            let view = store.state_at(name, Version(v));
            if v > head {
                // Refused: as past the head, or (a `CATALOG` that lies, say about its name
                // table) as a stream it cannot find by name.
                assert!(
                    matches!(view, Err(Error::VersionPastHead { .. }))
                        || (!expect.truthful && view.is_err()),
                    "stream {name}: a view past the head must be refused"
                );
                continue;
            }
            let Some(prefix) = events.get(..usize::try_from(v).unwrap_or(usize::MAX)) else {
                continue; // Not every event could be read: nothing to compare with.
            };
            match view {
                Ok(state) if expect.folds => {
                    let want = common::kv_fold(prefix).expect("the workload writes valid events");
                    assert_eq!(
                        state, want,
                        "stream {name} at {v}: view differs from the fold"
                    );
                }
                Ok(_) => {}
                Err(e) if expect.folds && expect.whole => {
                    panic!("stream {name} at {v}: only derived files are damaged, yet: {e}")
                }
                Err(_) => {}
            }
        }
    }
}

/// After `checkpoints().sync()`: every checkpoint the policy places at or below a stream's head
/// is listed (damaged and lost ones were rebuilt).
fn check_checkpoints_complete(engine: &Engine) {
    for info in engine.streams() {
        let listed: Vec<u64> = engine
            .checkpoints()
            .of_stream(&info.name)
            .expect("a listed stream")
            .iter()
            .map(|c| c.version.0)
            .collect();
        let missing: Vec<u64> = (1..=info.head.0 / FANOUT)
            .map(|k| k * FANOUT)
            .filter(|v| !listed.contains(v))
            .collect();
        assert!(
            missing.is_empty(),
            "stream {} (head {}): after checkpoints().sync(), no checkpoint at {missing:?}",
            info.name,
            info.head.0
        );
    }
}

fn options_for(segment_bytes: u64, mode: RecoveryMode) -> helios::Options {
    let mut options = options();
    options.log.segment_size_bytes = segment_bytes;
    options.log.recovery_mode = mode;
    options.create_if_missing = false;
    options
}

fn run(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let images = images();
    let pick = u.choose_index(images.len())?;
    let (image, other) = (&images[pick], &images[(pick + 1) % images.len()]);
    let with_meta: bool = u.arbitrary()?;
    let mode = if u.ratio(1, 4)? {
        RecoveryMode::Refuse
    } else {
        RecoveryMode::Truncate
    };
    let segment_bytes = *u.choose(&[SEGMENT_BYTES, SEGMENT_BYTES, 8192, 1 << 16])?;
    let view_extra: u64 = u.arbitrary()?;
    let reopen: bool = u.arbitrary()?;

    common::trace(|| {
        let index = images
            .iter()
            .position(|i| std::ptr::eq(i, image))
            .unwrap_or(0);
        format!(
            "image {index}, meta: {with_meta}, {mode:?}, segment size {segment_bytes}, reopen: {reopen}"
        )
    });
    let mut files = image.files.clone();
    common::trace(|| {
        let names: Vec<String> = files
            .iter()
            .map(|(name, bytes)| format!("{name} ({} bytes)", bytes.len()))
            .collect();
        format!("files: {names:?}")
    });
    let mut damage = Damage::default();
    let ops = u.int_in_range(0..=DAMAGE_OPS_MAX)?;
    for _ in 0..ops {
        damage_once(&mut u, &mut files, &mut damage, image, other)?;
    }
    damage.assess(image, &files);
    if segment_bytes != SEGMENT_BYTES {
        // Sealed segments of another size than the options say are the log's business, but
        // the oracle's expectations of an untouched log assume the image's own size.
        damage.log = true;
    }

    let dir = common::scratch_dir();
    write_files(dir.path(), &files);
    if with_meta {
        write_files(dir.path(), &image.meta);
    }
    let options = || options_for(segment_bytes, mode);
    let (by_reader, by_writer) = (damage.expect(), damage.expect());

    // A reader first, on the damaged files as they are.
    let reader = match ReadOnly::open(dir.path(), options()) {
        Ok(reader) => {
            common::trace(|| format!("reader opened: {:?}", reader.inspect().open_report()));
            let read = check_reads(
                &reader,
                &image.events,
                Some(&image.reader_events),
                by_reader,
            );
            check_views(&reader, &read, by_reader, view_extra / 5);
            Some(reader)
        }
        Err(e) => {
            common::trace(|| format!("reader's open failed: {e}"));
            assert!(
                !by_reader.whole,
                "the log is untouched, yet a reader's open failed: {e}"
            );
            None
        }
    };

    let engine = match Engine::open(dir.path(), options()) {
        Ok(engine) => engine,
        Err(e) => {
            common::trace(|| format!("open failed: {e}"));
            assert!(
                !by_writer.whole,
                "the log is untouched, yet opening failed: {e}"
            );
            // An error is fine; verify must not panic either way.
            let _ = helios::verify(dir.path());
            return Ok(());
        }
    };
    common::trace(|| format!("opened: {:?}", engine.inspect().open_report()));
    let read = check_reads(&engine, &image.events, None, by_writer);
    check_views(&engine, &read, by_writer, view_extra);
    let _ = engine.checkpoints().of_stream("alpha");
    let rebuilt = engine.checkpoints().sync();
    if by_writer.whole && by_writer.folds {
        if let Err(e) = &rebuilt {
            panic!("only derived files are damaged, yet rebuilding checkpoints failed: {e}");
        }
        check_checkpoints_complete(&engine);
    }
    check_views(&engine, &read, by_writer, view_extra / 3);
    common::trace(|| format!("checkpoints: {:?}", engine.checkpoints().stats()));
    let appended = engine
        .append("alpha", &["set after 1"], Durability::Critical, None)
        .is_ok();
    // What every stream holds now, when the log was untouched.
    let mut after = image.events.clone();
    if appended && let Some(alpha) = after.get_mut("alpha") {
        alpha.push(b"set after 1".to_vec());
    }
    let heads: Vec<(String, Version)> = engine.streams().map(|s| (s.name, s.head)).collect();

    // The reader catches up with what the writer appended and built.
    if let Some(reader) = &reader
        && !damage.log
    {
        let refreshed = reader.refresh();
        common::trace(|| format!("reader refreshed: {refreshed:?}"));
        if let Err(e) = &refreshed
            && by_reader.whole
        {
            panic!("the log is untouched, yet a reader's refresh failed: {e}");
        }
        let read = check_reads(reader, &after, None, by_reader);
        check_views(reader, &read, by_reader, view_extra / 7);
    }
    drop(reader);

    let closed = engine.close();
    let _ = helios::verify(dir.path());
    if damage.catalog_blocks_damaged && !damage.log && closed.is_ok() {
        // The damaged snapshot is removed at the close, not written again from what could be
        // read of it: the next open reads the log, and, the log untouched, every event is there.
        assert!(
            !dir.path().join(CATALOG).exists(),
            "a close left a snapshot with a damaged block"
        );
        let engine = Engine::open(dir.path(), options())
            .unwrap_or_else(|e| panic!("a store that opened must reopen: {e}"));
        let expect = Damage {
            catalog_blocks_damaged: false,
            ..damage
        }
        .expect();
        let read = check_reads(&engine, &after, None, expect);
        check_views(&engine, &read, expect, view_extra / 11);
        return Ok(());
    }
    if reopen && appended && closed.is_ok() {
        let engine = Engine::open(dir.path(), options())
            .unwrap_or_else(|e| panic!("a store that opened must reopen: {e}"));
        let again: Vec<(String, Version)> = engine.streams().map(|s| (s.name, s.head)).collect();
        assert_eq!(again, heads, "heads after a clean close and reopen");
        if !damage.log {
            let read = check_reads(&engine, &after, None, by_writer);
            check_views(&engine, &read, by_writer, view_extra / 11);
        }
    }
    Ok(())
}

fuzz_target!(init: common::init_malloc_limit(), |data: &[u8]| {
    let _ = run(data);
});
