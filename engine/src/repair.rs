//! Repairing a damaged store: [`repair`] keeps the longest intact prefix of the log, sets
//! everything else aside inside the store (never deleting a byte), rebuilds the metadata and
//! the checkpoints from the kept log, and says exactly what was lost.
//!
//! Steps, each safe to crash in (a crash leaves either the old layout, or the set-aside folder
//! and a log that an open or a second repair handles):
//! 1. Take the store's lock, find the intact prefix (`Log::intact_prefix`), and read what the
//!    store says was durable (the log's published end, the catalog snapshot's streams, an
//!    older store's recovery point), as far as it can be read.
//! 2. Move aside, into `repair-<UTC time>/` in the store: `meta/`, `checkpoints/`, every segment
//!    past the damage, the segment the damage is in, and leftovers of segment creation.
//! 3. Write the kept part of the damaged segment back under its name (temporary name, sync,
//!    rename, directory sync), zeros after it as in any segment.
//! 4. Open the store: recovery rebuilds the metadata from the log; build every checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use helios_log::{
    FsStorage, IntactPrefix, Log, LogError, Lsn, RecordKind, Storage, StreamId, Version,
};

use crate::engine::{LOCK_FILE, LOG_DIR, META_DIR};
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::{Engine, Options};

/// Events of one stream that a repair could not keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostVersions {
    /// The stream's name (`#ID` when no record left names it).
    pub stream: String,
    /// The first version lost.
    pub first: Version,
    /// The last version lost, as far as anything that survives says.
    pub last: Version,
}

/// What [`repair`] found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairReport {
    /// Whether anything was changed (`false`: the store was sound, or only had a torn tail,
    /// which an open removes by itself).
    pub repaired: bool,
    /// What ended the intact prefix: the file, the byte offset and why.
    pub damage: Option<(PathBuf, u64, String)>,
    /// The last LSN kept.
    pub kept_through: Lsn,
    /// The LSNs lost, `(first, last)`, as far as the metadata and the records that still
    /// decode past the damage tell; `None` when nothing that was there is lost.
    pub lost_lsns: Option<(Lsn, Lsn)>,
    /// The events lost, per stream, as far as the catalog snapshot (exact at the end of the
    /// last sealed segment) and the records that still decode past the damage tell: a record
    /// lost after the snapshot that no longer decodes counts in `lost_lsns` only.
    pub lost_versions: Vec<LostVersions>,
    /// The folder inside the store that the set-aside files were moved to.
    pub set_aside: Option<PathBuf>,
    /// The files and folders moved there, relative to the store.
    pub moved: Vec<PathBuf>,
    /// Events in the store after the repair.
    pub events_kept: u64,
}

/// Repairs the store in `dir` (see the module documentation). A sound store is left as it is.
///
/// # Errors
/// [`Error::NotAStore`], [`Error::Locked`] while a writer holds the store, I/O errors naming
/// the file, and the errors of the open that rebuilds the store.
pub fn repair(dir: &Path) -> Result<RepairReport> {
    let log_dir = dir.join(LOG_DIR);
    if !log_dir.is_dir() {
        return Err(Error::NotAStore {
            path: dir.to_path_buf(),
        });
    }
    let storage = FsStorage;
    let lock_path = dir.join(LOCK_FILE);
    let lock = storage.lock_exclusive(&lock_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                path: lock_path.clone(),
            }
        } else {
            LogError::io("lock", &lock_path, e).into()
        }
    })?;
    let prefix = Log::intact_prefix(&storage, &log_dir)?;
    let durable = what_was_durable(dir);
    let recovery_point = durable.recovery_point;

    let mut report = RepairReport {
        repaired: false,
        damage: prefix.damage.clone(),
        kept_through: prefix.end,
        lost_lsns: None,
        lost_versions: lost_versions(&prefix, &durable),
        set_aside: None,
        moved: Vec::new(),
        events_kept: 0,
    };
    let last_known = prefix
        .lost
        .iter()
        .map(|h| h.lsn)
        .max()
        .unwrap_or(Lsn::ZERO)
        .max(recovery_point);
    if last_known > prefix.end {
        report.lost_lsns = Some((Lsn(prefix.end.0 + 1), last_known));
    }
    // A torn tail that held nothing acknowledged is an open's job, as is a sound log; a repair
    // is for what an open refuses.
    let only_a_torn_tail = prefix.after.is_empty()
        && prefix
            .cut
            .is_some_and(|(id, _, _)| Some(&id) == last_segment(&prefix).as_ref())
        && recovery_point <= prefix.end
        && prefix
            .damage
            .as_ref()
            .is_some_and(|(_, _, reason)| !reason.contains("after its end"));
    let meta_is_sound = meta_opens(&dir.join(META_DIR));
    let sound =
        prefix.damage.is_none() && prefix.trimmed.is_empty() && recovery_point <= prefix.end;
    if report.damage.is_none() && recovery_point > prefix.end {
        report.damage = Some((
            log_dir.clone(),
            0,
            format!(
                "acknowledged records are lost: records up to {recovery_point} were durable, \
                 but the log ends at {}",
                prefix.end
            ),
        ));
    }
    if (sound || only_a_torn_tail) && meta_is_sound {
        report.lost_lsns = None;
        report.lost_versions.clear();
        drop(lock);
        return Ok(report);
    }

    let aside = dir.join(format!("repair-{}", utc_stamp()));
    std::fs::create_dir_all(aside.join(LOG_DIR))
        .map_err(|e| LogError::io("create directory", &aside, e))?;
    let mut move_aside = |relative: &Path| -> Result<()> {
        let from = dir.join(relative);
        if !from.exists() {
            return Ok(());
        }
        let to = aside.join(relative);
        std::fs::rename(&from, &to).map_err(|e| LogError::io("move aside", &from, e))?;
        report.moved.push(relative.to_path_buf());
        Ok(())
    };
    move_aside(Path::new(META_DIR))?;
    move_aside(Path::new(crate::checkpoints::CHECKPOINT_DIR))?;
    // The catalog snapshot may describe records past the damage; the segment indexes (moved
    // with the other files of the log directory below) may index segments that change.
    move_aside(Path::new(crate::catalog_snapshot::CATALOG_FILE))?;
    for id in &prefix.after {
        move_aside(&Path::new(LOG_DIR).join(helios_log::segment_name(*id)))?;
    }
    let leftovers: Vec<String> = std::fs::read_dir(&log_dir)
        .map_err(|e| LogError::io("list", &log_dir, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| !name.ends_with(".log"))
        .collect();
    for name in leftovers {
        move_aside(&Path::new(LOG_DIR).join(name))?;
    }
    // The segment the damage is in, and sealed segments grown past their size: the original
    // goes aside, its kept part back under its name.
    for &(id, keep, capacity) in prefix.cut.iter().chain(&prefix.trimmed) {
        let name = helios_log::segment_name(id);
        move_aside(&Path::new(LOG_DIR).join(&name))?;
        write_kept_part(
            &aside.join(LOG_DIR).join(&name),
            &log_dir.join(&name),
            keep,
            capacity,
        )?;
    }
    storage
        .sync_dir(&log_dir)
        .and_then(|()| storage.sync_dir(dir))
        .map_err(|e| LogError::io("fsync directory", dir, e))?;
    report.set_aside = Some(aside);
    report.repaired = true;
    drop(lock);

    // The metadata is gone: the open re-indexes the whole kept log; then every checkpoint.
    let options = Options {
        background_threads: false,
        create_if_missing: false,
        ..Options::default()
    };
    let engine = Engine::open(dir, options)?;
    engine.checkpoints().sync()?;
    report.events_kept = engine.streams().map(|s| s.head.0).sum();
    engine.close()?;
    Ok(report)
}

/// The last segment a prefix saw.
fn last_segment(prefix: &IntactPrefix) -> Option<helios_log::SegmentId> {
    prefix
        .after
        .last()
        .copied()
        .or(prefix.cut.map(|(id, _, _)| id))
        .or(prefix.whole.last().copied())
}

/// What the store recorded as durable: the last LSN (the log's published end, the catalog
/// snapshot's record, and an older store's recovery point in fjall), and each stream's name,
/// head and, for a fork, the version it shares up to, as of the catalog snapshot.
struct Durable {
    recovery_point: Lsn,
    streams: BTreeMap<StreamId, (String, Version, Version)>,
}

/// Reads what the store recorded as durable, from whatever of it can be read: a repair works
/// without any of it, from the log alone.
fn what_was_durable(dir: &Path) -> Durable {
    let storage = FsStorage;
    let published = helios_log::published_end_in(&storage, &dir.join(LOG_DIR))
        .ok()
        .flatten()
        .map_or(Lsn::ZERO, |p| p.lsn);
    let snapshot = crate::store_id::read(&storage, dir)
        .and_then(|id| crate::catalog_snapshot::read(&storage, dir, id));
    let recorded = meta_recovery_point(&dir.join(META_DIR)).unwrap_or(Lsn::ZERO);
    let mut durable = Durable {
        recovery_point: published.max(recorded),
        streams: BTreeMap::new(),
    };
    if let Some(snapshot) = snapshot {
        durable.recovery_point = durable.recovery_point.max(snapshot.through.lsn);
        for id in (1..=snapshot.len()).map(StreamId) {
            let Some(stream) = snapshot.stream(id) else {
                continue;
            };
            let shared = stream.fork.map_or(Version::ZERO, |f| f.at);
            durable
                .streams
                .insert(id, (stream.name.to_owned(), stream.head, shared));
        }
    }
    durable
}

/// The recovery point fjall recorded in a store of format 4 or older.
fn meta_recovery_point(meta_dir: &Path) -> Option<Lsn> {
    if !meta_dir.is_dir() {
        return None;
    }
    let meta = Meta::open_as_is(meta_dir).ok()?;
    Some(meta.recovery_point().ok()??.lsn)
}

/// Whether the metadata opens (or there is none, as after a repair's move).
fn meta_opens(meta_dir: &Path) -> bool {
    !meta_dir.exists() || Meta::open_as_is(meta_dir).is_ok()
}

/// The events past the prefix, per stream: from the index (what was acknowledged) and from the
/// records that still decode after the damage.
fn lost_versions(prefix: &IntactPrefix, durable: &Durable) -> Vec<LostVersions> {
    let mut lost: BTreeMap<StreamId, (Version, Version)> = BTreeMap::new();
    let mut note = |stream: StreamId, version: Version| {
        let entry = lost.entry(stream).or_insert((version, version));
        entry.0 = entry.0.min(version);
        entry.1 = entry.1.max(version);
    };
    // Versions recorded as durable past what the prefix keeps of the stream.
    for (&stream, &(_, head, shared)) in &durable.streams {
        let kept = prefix
            .heads
            .get(&stream)
            .copied()
            .unwrap_or(shared)
            .max(shared);
        if head > kept {
            note(stream, Version(kept.0 + 1));
            note(stream, head);
        }
    }
    for header in &prefix.lost {
        if header.kind == RecordKind::Event && header.lsn > prefix.end {
            note(header.stream, header.version);
        }
    }
    let name_of = |stream: StreamId| {
        prefix
            .names
            .iter()
            .find(|(id, _)| *id == stream)
            .map(|(_, name)| name.clone())
            .or_else(|| Some(durable.streams.get(&stream)?.0.clone()))
            .unwrap_or_else(|| format!("#{}", stream.0))
    };
    lost.into_iter()
        .map(|(stream, (first, last))| LostVersions {
            stream: name_of(stream),
            first,
            last,
        })
        .collect()
}

/// Writes bytes `0..keep` of the segment at `original` to `target` (through a temporary name,
/// synced), with zeros after them up to `len` bytes, as a segment is created.
fn write_kept_part(original: &Path, target: &Path, keep: u64, len: u64) -> Result<()> {
    let bytes = std::fs::read(original).map_err(|e| LogError::io("read", original, e))?;
    let keep = usize::try_from(keep).unwrap_or(usize::MAX).min(bytes.len());
    let mut kept = bytes[..keep].to_vec();
    kept.resize(usize::try_from(len).unwrap_or(usize::MAX).max(keep), 0);
    let tmp = target.with_extension("log.tmp");
    let storage = FsStorage;
    let file = storage
        .create(&tmp)
        .map_err(|e| LogError::io("create", &tmp, e))?;
    file.write_all_at(&kept, 0)
        .and_then(|()| file.sync_data())
        .map_err(|e| LogError::io("write", &tmp, e))?;
    drop(file);
    storage
        .rename(&tmp, target)
        .map_err(|e| LogError::io("rename", &tmp, e))?;
    Ok(())
}

/// The current UTC time as `YYYY-MM-DDTHH-MM-SSZ` (no `:`, so that it is a portable file name).
fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}-{:02}-{:02}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_is_a_date() {
        let stamp = utc_stamp();
        assert_eq!(stamp.len(), "2026-12-06T01-02-03Z".len(), "{stamp}");
        assert!(stamp.starts_with("20"), "{stamp}");
        assert!(stamp.ends_with('Z'));
    }
}
