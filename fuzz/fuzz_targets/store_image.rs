//! Recovery of a damaged store directory.
//!
//! At start (once per process) a small engine workload runs in a scratch directory and its files
//! are read back as base images: a cleanly closed store (three streams over several segments,
//! checkpoints at two levels) and a store copied while still open (an unindexed tail of
//! written but unsynced appends, a stale recovery point). The input picks an image and
//! describes damage (libFuzzer does not find magic bytes or CRCs by chance, so damage is
//! structure-aware): flipped bits, overwritten bytes, truncations, appended junk, swapped,
//! copied, renamed and removed files, garbage files, and record or checkpoint header fields
//! set to absurd values, optionally with the CRC recomputed so the damage gets past the
//! checksum. The files are written to a fresh directory, with or without the image's pristine
//! fjall `meta/`, and the store is opened with `create_if_missing(false)`.
//!
//! What must hold:
//! - opening, reading every stream, views at several versions, `sync_checkpoints`, an append,
//!   a reopen and `helios::verify` never panic (errors are fine) and never allocate without
//!   bound (libFuzzer's `-rss_limit_mb` / `-malloc_limit_mb` catch that);
//! - without forged CRCs, whatever is read is the truth: every stream's events are a prefix of
//!   what was appended, and a view that succeeds equals a `BTreeMap` fold of those events;
//! - with the log untouched (only checkpoints and garbage files damaged), the store opens, every
//!   event is there, and every view succeeds and is exact, before and after the damaged
//!   checkpoints are rebuilt: checkpoints are derived data;
//! - a store that opened reopens after a clean close, with the same heads.
#![no_main]

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Result as ArbResult, Unstructured};
use helios::{Durability, Engine, Error, LevelPolicy, RecoveryMode, Version};
use helios_log::format::{record, segment_header};
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

/// A store's files, by path relative to the store directory.
#[derive(Clone)]
struct Image {
    /// `log/` and `checkpoints/` files: what the input damages.
    files: Files,
    /// The pristine `meta/` (fjall) files, written back when the input asks for them.
    meta: Files,
    /// Per stream, the events a pristine open reads.
    events: BTreeMap<String, Vec<Vec<u8>>>,
}

fn policy() -> LevelPolicy {
    LevelPolicy::new(FANOUT, LEVELS).expect("a valid policy")
}

fn options() -> helios::Options {
    let mut options = helios::Options::default();
    options.log.segment_size_bytes = SEGMENT_BYTES;
    options.checkpoints.policy = policy();
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

fn all_events(engine: &Engine) -> BTreeMap<String, Vec<Vec<u8>>> {
    engine
        .streams()
        .into_iter()
        .map(|s| {
            let events = engine
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
fn workload(engine: &Engine, rounds: usize) {
    for i in 0..rounds {
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
            workload(&engine, 60);
            engine.checkpoints().sync().expect("checkpoints");
            let events = all_events(&engine);
            engine.close().expect("close");
            let (files, meta) = snapshot(dir.path());
            images.push(Image {
                files,
                meta,
                events,
            });
        }
        // A store copied while open: checkpoints and the index cover an older head, and the
        // last appends are written (the write buffer is tiny) but not synced.
        {
            let dir = common::scratch_dir();
            let mut options = options();
            options.log.write_buffer_bytes = 64;
            let engine = Engine::open(dir.path(), options).expect("open");
            workload(&engine, 30);
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
                events: BTreeMap::new(),
            });
        }
        // What a pristine copy of each image opens to is the reference for the damaged ones.
        for image in &mut images {
            let dir = common::scratch_dir();
            write_files(dir.path(), &image.files);
            write_files(dir.path(), &image.meta);
            let mut options = options();
            options.create_if_missing = false;
            let engine = Engine::open(dir.path(), options).expect("a pristine image opens");
            let events = all_events(&engine);
            if !image.events.is_empty() {
                assert_eq!(events, image.events, "a clean close loses nothing");
            }
            image.events = events;
        }
        images
    })
}

fn write_files(dir: &Path, files: &Files) {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, bytes).expect("write");
    }
}

/// Names a garbage or renamed file may get: stray files, leftovers of interrupted writes, and
/// names the engine parses (segments and checkpoints that do not belong).
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
    "checkpoints/0000000000000001-00000000000000000004-l1.ckpt",
    "checkpoints/0000000000000001-00000000000000000016-l2.ckpt",
    "checkpoints/0000000000000002-00000000000000000008-l1.ckpt",
    "checkpoints/0000000000000003-00000000000000000016-l2.ckpt",
    "checkpoints/0000000000000009-00000000000000000004-l1.ckpt",
    "checkpoints/0000000000000001-00000000000000000005-l1.ckpt",
    "checkpoints/0000000000000001-99999999999999999999-l2.ckpt",
    "checkpoints/0000000000000001-00000000000000000004-l1.ckpt.tmp",
    "checkpoints/ffffffffffffffff-00000000000000000004-l1.ckpt",
];

/// Values that lengths, LSNs, versions and ids are set to.
const ABSURD: &[u64] = &[
    0,
    1,
    2,
    47,
    48,
    49,
    4096,
    (48 + (64 << 20)) as u64,
    (48 + (64 << 20) + 1) as u64,
    u32::MAX as u64,
    i32::MAX as u64,
    u64::MAX,
    u64::MAX / 2,
];

/// What damage an input did, which decides what the oracle can expect.
#[derive(Default)]
struct Damage {
    /// Any change under `log/`.
    log: bool,
    /// A CRC recomputed over changed log bytes: the log can say anything.
    log_forged: bool,
    /// A checkpoint header CRC recomputed: a checkpoint may claim to be another.
    checkpoint_forged: bool,
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

fn put_le(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    let le = value.to_le_bytes();
    if let Some(slot) = bytes.get_mut(at..at + width) {
        slot.copy_from_slice(&le[..width]);
    }
}

/// Recomputes the CRC of the frame at `at` over its body, as the header's `body_len` says
/// (clamped to the file).
fn reseal_frame(bytes: &mut [u8], at: usize) {
    let Some(prefix) = bytes.get(at..at + record::PREFIX_LEN) else {
        return;
    };
    let body_len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
    let start = at + record::PREFIX_LEN;
    let end = start.saturating_add(body_len).min(bytes.len());
    let crc = crc32fast::hash(&bytes[start..end]);
    put_le(bytes, at + record::CRC, 4, u64::from(crc));
}

fn reseal_segment_header(bytes: &mut [u8]) {
    if bytes.len() >= segment_header::LEN {
        let crc = crc32fast::hash(&bytes[..segment_header::CRC]);
        put_le(bytes, segment_header::CRC, 4, u64::from(crc));
    }
}

fn reseal_checkpoint_header(bytes: &mut [u8]) {
    use helios_checkpoint::format::header as h;
    if bytes.len() >= h::LEN {
        let crc = crc32fast::hash(&bytes[..h::HEADER_CRC]);
        put_le(bytes, h::HEADER_CRC, 4, u64::from(crc));
    }
}

fn pick_file(u: &mut Unstructured<'_>, files: &Files) -> ArbResult<Option<usize>> {
    if files.is_empty() {
        return Ok(None);
    }
    Ok(Some(u.choose_index(files.len())?))
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

/// Applies one damage operation described by the input.
fn damage_once(u: &mut Unstructured<'_>, files: &mut Files, damage: &mut Damage) -> ArbResult<()> {
    let op = u.int_in_range(0u8..=11)?;
    let Some(i) = pick_file(u, files)? else {
        return Ok(());
    };
    // The store's FORMAT file is read before the log: damage to it may refuse the store, as
    // damage to the log may.
    let touches_log = |name: &str| name.starts_with("log/") || name == "FORMAT";
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
        8 | 9 => {
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
            files.retain(|(rel, _)| *rel != name);
            files.push((name, bytes));
            return Ok(());
        }
        // An absurd value in a record header field or a segment header field.
        10 => {
            let reseal = u.arbitrary()?;
            let value = if u.ratio(3, 4)? {
                *u.choose(ABSURD)?
            } else {
                u.arbitrary()?
            };
            let (name, bytes) = &mut files[i];
            if name.ends_with(".log") {
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
                        format!(
                            "segment header of {name}: byte {at} = {value} (resealed: {reseal})"
                        )
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
                        format!(
                            "record at {at} of {name}: field {field} = {value} (resealed: {reseal})"
                        )
                    });
                    if reseal {
                        reseal_frame(bytes, at);
                    }
                }
                damage.log = true;
                damage.log_forged |= reseal;
            } else {
                use helios_checkpoint::format::header as h;
                let (at, width) = *u.choose(&[
                    (h::FORMAT_VERSION, 4),
                    (h::KIND, 1),
                    (h::LEVEL, 1),
                    (h::STREAM_ID, 8),
                    (h::VERSION, 8),
                    (h::BASE_VERSION, 8),
                    (h::ENTRY_COUNT, 8),
                    (h::ARCHIVE_LEN, 8),
                ])?;
                put_le(bytes, at, width, value);
                common::trace(|| {
                    format!("checkpoint header of {name}: byte {at} = {value} (resealed: {reseal})")
                });
                if reseal {
                    reseal_checkpoint_header(bytes);
                }
                damage.checkpoint_forged |= reseal;
                damage.log |= touches_log(name);
            }
            return Ok(());
        }
        // A record's payload replaced (same length) and resealed: a forged but valid log.
        _ => {
            if files[i].0.ends_with(".log") {
                let frames = frame_offsets(&files[i].1);
                if !frames.is_empty() {
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
                    common::trace(|| {
                        format!("forged payload of the record at {at} of {}", files[i].0)
                    });
                    damage.log = true;
                    damage.log_forged = true;
                }
            }
            return Ok(());
        }
    }
    damage.log |= touches_log(&files[i].0);
    Ok(())
}

/// Reads every stream and checks what was read against the image's events.
fn check_reads(engine: &Engine, image: &Image, damage: &Damage) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut read = BTreeMap::new();
    for info in engine.streams() {
        let mut events = Vec::new();
        if let Ok(iter) = engine.read(&info.name, ..) {
            for event in iter {
                match event {
                    Ok(event) => events.push(event.payload),
                    Err(_) => break,
                }
            }
        }
        if !damage.log_forged {
            let truth = image.events.get(&info.name);
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
            if !damage.log {
                assert_eq!(&events, truth, "stream {}: the log is untouched", info.name);
            }
        }
        read.insert(info.name, events);
    }
    if !damage.log {
        assert_eq!(
            read.len(),
            image.events.len(),
            "the log is untouched: every stream is there"
        );
    }
    read
}

/// Views of every stream read at 0, 1, half the head, the head, a version `extra` picks and one
/// past the head (which must be refused); checks those that succeed against the fold of the
/// events read, and, with the log untouched and no checkpoint forged, that they all succeed.
fn check_views(
    engine: &Engine,
    read: &BTreeMap<String, Vec<Vec<u8>>>,
    damage: &Damage,
    extra: u64,
) {
    for (name, events) in read {
        let head = engine.head(name).map_or(0, |v| v.0);
        let mut versions = vec![0, 1, head / 2, head, extra % (head + 1), head + 1];
        versions.sort_unstable();
        versions.dedup();
        for v in versions {
            let view = engine.state_at(name, Version(v));
            if v > head {
                assert!(
                    matches!(view, Err(Error::VersionPastHead { .. })),
                    "stream {name}: a view past the head must be refused"
                );
                continue;
            }
            let trusted = !damage.log_forged && !damage.checkpoint_forged;
            let Some(prefix) = events.get(..usize::try_from(v).unwrap_or(usize::MAX)) else {
                continue; // Not every event could be read: nothing to compare with.
            };
            match view {
                Ok(state) if trusted => {
                    let want = common::kv_fold(prefix).expect("the workload writes valid events");
                    assert_eq!(
                        state, want,
                        "stream {name} at {v}: view differs from the fold"
                    );
                }
                Ok(_) => {}
                Err(e) if trusted && !damage.log => {
                    panic!("stream {name} at {v}: only checkpoints are damaged, yet: {e}")
                }
                Err(_) => {}
            }
        }
    }
}

fn run(data: &[u8]) -> ArbResult<()> {
    let mut u = Unstructured::new(data);
    let images = images();
    let image = &images[u.choose_index(images.len())?];
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
    let mut damage = Damage::default();
    let ops = u.int_in_range(0..=DAMAGE_OPS_MAX)?;
    for _ in 0..ops {
        damage_once(&mut u, &mut files, &mut damage)?;
    }
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
    let open = || {
        let mut options = options();
        options.log.segment_size_bytes = segment_bytes;
        options.log.recovery_mode = mode;
        options.create_if_missing = false;
        Engine::open(dir.path(), options)
    };
    let engine = match open() {
        Ok(engine) => engine,
        Err(e) => {
            common::trace(|| format!("open failed: {e}"));
            assert!(damage.log, "the log is untouched, yet opening failed: {e}");
            // An error is fine; verify must not panic either way.
            let _ = helios::verify(dir.path());
            return Ok(());
        }
    };
    common::trace(|| format!("opened: {:?}", engine.inspect().open_report()));
    let read = check_reads(&engine, image, &damage);
    check_views(&engine, &read, &damage, view_extra);
    let _ = engine.checkpoints().of_stream("alpha");
    let rebuilt = engine.checkpoints().sync();
    if !damage.log
        && !damage.checkpoint_forged
        && let Err(e) = &rebuilt
    {
        panic!("only checkpoints are damaged, yet rebuilding them failed: {e}");
    }
    check_views(&engine, &read, &damage, view_extra / 3);
    common::trace(|| format!("checkpoints: {:?}", engine.checkpoints().stats()));
    let appended = engine
        .append("alpha", &["set after 1"], Durability::Critical, None)
        .is_ok();
    let heads: Vec<(String, Version)> = engine
        .streams()
        .into_iter()
        .map(|s| (s.name, s.head))
        .collect();
    let closed = engine.close();
    let _ = helios::verify(dir.path());
    if reopen && appended && closed.is_ok() {
        let engine = open().unwrap_or_else(|e| panic!("a store that opened must reopen: {e}"));
        let again: Vec<(String, Version)> = engine
            .streams()
            .into_iter()
            .map(|s| (s.name, s.head))
            .collect();
        assert_eq!(again, heads, "heads after a clean close and reopen");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
