//! The metadata older stores kept in fjall (`meta/`): one place for every key and value
//! layout, and the few operations still needed on them. A store of the current format has no
//! `meta/`: a writer opens fjall only when the directory is there, to read what an older store
//! recorded (its recovery point, a bound on what was durable, when it migrates; and the machine
//! of each stream's checkpoints, for the checkpoints it wrote before they carried their
//! machine's number), and to delete what migrations replace. Nothing here is written any more
//! but deletions.
//!
//! Keyspaces and layouts (integers big-endian in keys so that they sort, little-endian in
//! values):
//!
//! | keyspace  | key                                   | value                                          |
//! |-----------|---------------------------------------|------------------------------------------------|
//! | `meta`    | `format_version`                      | `u32`                                          |
//! | `meta`    | `segment/` + segment id `u64 BE`      | empty: a log segment known to exist (no longer read: the log's published end, its first segment's LSN and the continuity of LSNs name a missing segment) |
//! | `meta`    | `recovery_point` (format 4 and older) | the location of the last record whose effects the stream records held |
//! | `checkpoints` | stream id `u64 BE`                | name of the state machine the stream's checkpoints were built with (read for checkpoints numbered 0) |
//! | `streams` (format 4 and older) | `b's'` + stream id `u64 BE` | the stream's durable head, creation, fork, deletion and name |
//!
//! Older still: format 2 had a `checkpoints` entry per checkpoint (key: stream id and version,
//! 16 bytes), removed by the migration to format 3; format 3 an `index` keyspace of location
//! runs, deleted by the migration to format 4; the migration to format 5 deletes `streams` and
//! `recovery_point` after reading the latter.

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use helios_log::{Location, Lsn, SegmentId, StreamId};

use crate::error::{Error, Result};

/// Format version of the metadata layouts above. Version 2 (store format 2) added the fork and
/// deletion fields of stream records and dropped the name keys (names are read from the stream
/// records). Metadata of an older version is rebuilt from the log at open.
pub const META_FORMAT_VERSION: u32 = 2;

const FORMAT_KEY: &[u8] = b"format_version";
const RECOVERY_KEY: &[u8] = b"recovery_point";

/// The largest a keyspace's memtable grows before fjall writes it out as a table. fjall's
/// default (64 MiB) let a store of 1 M events keep its whole index in memtables and an 83 MB
/// journal, which every open replayed (3.1 s at 1 M events): a smaller memtable is written out
/// in the background as the store grows, so an open replays at most about this much.
const MEMTABLE_MAX_BYTES: u64 = 8 << 20;

/// The most journal fjall keeps before it writes out the memtables that hold the oldest one
/// (its minimum; fjall's default is 512 MiB): the keyspaces written rarely (`meta`,
/// `checkpoints`) would otherwise keep every journal alive until then.
const JOURNALS_MAX_BYTES: u64 = 64 << 20;

/// Encoded length of a [`Location`].
pub const LOCATION_LEN: usize = 8 // lsn
    + 8 // segment
    + 8 // offset
    + 4; // frame_len_bytes
const _: () = assert!(LOCATION_LEN == 28);

fn u64_le(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn u64_be(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
/// Encodes a location.
#[must_use]
pub fn encode_location(location: &Location) -> [u8; LOCATION_LEN] {
    let mut out = [0u8; LOCATION_LEN];
    out[0..8].copy_from_slice(&location.lsn.0.to_le_bytes());
    out[8..16].copy_from_slice(&location.segment.0.to_le_bytes());
    out[16..24].copy_from_slice(&location.offset.to_le_bytes());
    out[24..28].copy_from_slice(&location.frame_len_bytes.to_le_bytes());
    out
}

/// Decodes a location.
///
/// # Errors
/// [`Error::CorruptMeta`] if the bytes are not a location.
pub fn decode_location(keyspace: &'static str, bytes: &[u8]) -> Result<Location> {
    let bad = || Error::CorruptMeta {
        keyspace,
        reason: format!(
            "a location must be {LOCATION_LEN} bytes, found {}",
            bytes.len()
        ),
    };
    if bytes.len() != LOCATION_LEN {
        return Err(bad());
    }
    let frame = bytes
        .get(24..28)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(bad)?;
    Ok(Location {
        lsn: Lsn(u64_le(bytes, 0).ok_or_else(bad)?),
        segment: SegmentId(u64_le(bytes, 8).ok_or_else(bad)?),
        offset: u64_le(bytes, 16).ok_or_else(bad)?,
        frame_len_bytes: frame,
    })
}

/// The fjall database and its keyspaces.
pub struct Meta {
    /// The database.
    pub db: Database,
    meta: Keyspace,
    checkpoints: Keyspace,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Meta")
    }
}

impl Meta {
    /// Opens (or creates) the metadata store in `path`. Metadata of an older format version is
    /// derived data of a layout this build no longer writes: it is deleted, and the store
    /// opened empty, so that recovery rebuilds it from the log. Returns the older version when
    /// that happened.
    ///
    /// # Errors
    /// fjall errors; [`Error::UnsupportedFormat`] for a newer format version.
    pub fn open(path: &std::path::Path) -> Result<(Meta, Option<u32>)> {
        let meta = Meta::open_as_is(path)?;
        match meta.format_version()? {
            Some(found) if found < META_FORMAT_VERSION => {
                drop(meta);
                std::fs::remove_dir_all(path).map_err(|e| {
                    Error::Log(helios_log::LogError::Io {
                        op: "remove metadata of an older format",
                        path: path.to_path_buf(),
                        source: e,
                    })
                })?;
                let meta = Meta::open_as_is(path)?;
                meta.write_format_version()?;
                Ok((meta, Some(found)))
            }
            Some(META_FORMAT_VERSION) => Ok((meta, None)),
            Some(found) => Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                found,
                supported: META_FORMAT_VERSION,
            }),
            None => {
                meta.write_format_version()?;
                Ok((meta, None))
            }
        }
    }

    /// Opens the metadata store in `path` as it is, whatever its format version.
    ///
    /// # Errors
    /// fjall errors.
    pub fn open_as_is(path: &std::path::Path) -> Result<Meta> {
        let db = Database::builder(path)
            .worker_threads(1)
            .max_journaling_size(JOURNALS_MAX_BYTES)
            .open()
            .map_err(Error::meta("opening the database"))?;
        let keyspace = |name: &'static str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_MAX_BYTES)
            })
            .map_err(Error::meta("opening a keyspace"))
        };
        Ok(Meta {
            meta: keyspace("meta")?,
            checkpoints: keyspace("checkpoints")?,
            db,
        })
    }

    /// The format version the metadata states, if it states one (a new store does not yet).
    ///
    /// # Errors
    /// fjall errors, a value that is not a version.
    pub fn format_version(&self) -> Result<Option<u32>> {
        self.meta
            .get(FORMAT_KEY)
            .map_err(Error::meta("reading the format version"))?
            .map(|v| {
                <[u8; 4]>::try_from(&*v)
                    .map(u32::from_le_bytes)
                    .map_err(|_| Error::CorruptMeta {
                        keyspace: "meta",
                        reason: format!("format_version must be 4 bytes, found {}", v.len()),
                    })
            })
            .transpose()
    }

    fn write_format_version(&self) -> Result<()> {
        self.meta
            .insert(FORMAT_KEY, META_FORMAT_VERSION.to_le_bytes())
            .map_err(Error::meta("writing the format version"))
    }

    /// The recovery point of a store of format 4 or older: the location of the last record
    /// whose effects its stream records held. Every record up to it was durable.
    ///
    /// # Errors
    /// fjall errors, undecodable values.
    pub fn recovery_point(&self) -> Result<Option<Location>> {
        self.meta
            .get(RECOVERY_KEY)
            .map_err(Error::meta("reading the recovery point"))?
            .map(|v| decode_location("meta", &v))
            .transpose()
    }

    /// The state machine each stream's checkpoints were built with, as stores of format 4 and
    /// older recorded it (their checkpoints carry no machine number; see
    /// `checkpoints/machines.rs` for the machine table that replaced these records).
    ///
    /// # Errors
    /// fjall errors, undecodable entries.
    pub fn checkpoint_machines(&self) -> Result<Vec<(StreamId, String)>> {
        let mut out = Vec::new();
        for guard in self.checkpoints.iter() {
            let (key, value) = guard
                .into_inner()
                .map_err(Error::meta("reading checkpoints"))?;
            let bad = |what: &str| Error::CorruptMeta {
                keyspace: "checkpoints",
                reason: format!("entry {key:?}: {what}"),
            };
            match key.len() {
                8 => out.push((
                    StreamId(u64_be(&key, 0).ok_or_else(|| bad("short key"))?),
                    std::str::from_utf8(&value)
                        .map_err(|_| bad("machine name is not UTF-8"))?
                        .to_owned(),
                )),
                _ => return Err(bad("key is not 8 bytes")),
            }
        }
        Ok(out)
    }

    /// Removes the per-checkpoint entries of store format 2 (see the module documentation).
    ///
    /// # Errors
    /// fjall errors.
    pub fn remove_checkpoint_entries(&self) -> Result<()> {
        let mut batch = self.db.batch();
        for guard in self.checkpoints.iter() {
            let key = guard.key().map_err(Error::meta("reading checkpoints"))?;
            if key.len() == 16 {
                batch.remove(&self.checkpoints, key.to_vec());
            }
        }
        batch
            .commit()
            .map_err(Error::meta("removing checkpoint entries"))
    }

    /// Deletes the `index` keyspace of store format 3 (location runs, which the log's segment
    /// indexes replace), if it is there.
    ///
    /// # Errors
    /// fjall errors.
    pub fn drop_index_keyspace(&self) -> Result<()> {
        if !self.db.keyspace_exists("index") {
            return Ok(());
        }
        let index = self
            .db
            .keyspace("index", KeyspaceCreateOptions::default)
            .map_err(Error::meta("opening the old index"))?;
        self.db
            .delete_keyspace(index)
            .map_err(Error::meta("deleting the old index"))
    }

    /// Deletes what stores of format 4 and older kept per stream: the `streams` keyspace and
    /// the recovery point (the catalog snapshot and the log replace them).
    ///
    /// # Errors
    /// fjall errors.
    pub fn drop_stream_records(&self) -> Result<()> {
        self.meta
            .remove(RECOVERY_KEY)
            .map_err(Error::meta("removing the recovery point"))?;
        if !self.db.keyspace_exists("streams") {
            return Ok(());
        }
        let streams = self
            .db
            .keyspace("streams", KeyspaceCreateOptions::default)
            .map_err(Error::meta("opening the old stream records"))?;
        self.db
            .delete_keyspace(streams)
            .map_err(Error::meta("deleting the old stream records"))
    }

    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// fjall errors.
    pub fn persist(&self) -> Result<()> {
        self.db
            .persist(fjall::PersistMode::SyncAll)
            .map_err(Error::meta("persisting"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip() {
        let location = Location {
            lsn: Lsn(9),
            segment: SegmentId(3),
            offset: 4096,
            frame_len_bytes: 77,
        };
        assert_eq!(
            decode_location("index", &encode_location(&location)).ok(),
            Some(location)
        );
        assert!(decode_location("index", &[1, 2, 3]).is_err());
    }
}
