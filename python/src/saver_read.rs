//! The saver's read path: a checkpoint with its channel values and pending writes
//! (`SaverCore::load_checkpoint`, for `get`), the writes of a checkpoint that count
//! (`SaverCore::live_writes`, which `put_writes` also uses), a checkpoint's metadata alone, the
//! checkpoints of a thread, and how its values are stored. Everything here works on bytes
//! with the GIL released; `crate::saver` turns the results into Python objects.

use std::collections::HashMap;
use std::sync::Arc;

use helios::Engine;

use crate::codec;
use crate::record::{self, BlobPtr, PREFIX_LATEST, Record, Stored};
use crate::saver::SaverCore;
use crate::saver_cache::{CHECKPOINT_SLOT, CacheKey, Cached, METADATA_SLOT, Value, ValueBytes};
use crate::saver_decode::Found;
use crate::saver_error::CoreResult;
use crate::saver_thread::{Records, Thread, corrupt};

/// A checkpoint as `get` returns it, before it becomes Python objects.
pub(crate) struct Loaded {
    /// Its id.
    pub(crate) checkpoint_id: Vec<u8>,
    /// Its parent's id, if it has one.
    pub(crate) parent_id: Option<Vec<u8>>,
    /// The checkpoint without channel values (its type tag and bytes), and its cache key.
    pub(crate) checkpoint: (CacheKey, Arc<Value>),
    /// The metadata (its type tag and bytes), and its cache key.
    pub(crate) metadata: (CacheKey, Arc<Value>),
    /// `(channel, where the cache keeps it, value)` for each channel the checkpoint has a
    /// non-empty value for.
    pub(crate) values: Vec<(Vec<u8>, CacheKey, Found)>,
    /// The pending writes, sorted as LangGraph applies them.
    pub(crate) writes: Vec<LoadedWrite>,
}

/// A pending write found in the records: where its value is, task path, task id, idx, channel.
pub(crate) type WriteRef = (BlobPtr, Vec<u8>, Vec<u8>, i64, Vec<u8>);

/// A pending write as `get` returns it.
pub(crate) struct LoadedWrite {
    /// The task's path (the first key LangGraph sorts writes by).
    pub(crate) task_path: Vec<u8>,
    /// The task's id.
    pub(crate) task_id: Vec<u8>,
    /// Its index in the task's writes (negative for special channels).
    pub(crate) idx: i64,
    /// The channel written.
    pub(crate) channel: Vec<u8>,
    /// Where the cache keeps the value.
    pub(crate) key: CacheKey,
    /// The value written.
    pub(crate) value: Arc<Value>,
}

impl SaverCore {
    /// The pending writes of a checkpoint that count, as LangGraph's `put_writes` defines them
    /// over the write records in log order: the first regular write (`idx >= 0`) of a task and
    /// index wins, a special write (`idx < 0`: error, interrupt, ...) replaces the earlier one.
    /// Each is `(where its value is, task_path, task_id, idx, channel)`.
    pub(crate) fn live_writes(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        ns: &[u8],
        cid: &[u8],
    ) -> CoreResult<Vec<WriteRef>> {
        let thread = records.thread;
        let versions: Vec<u64> = thread
            .view
            .get(&record::key_writes(ns, cid))
            .map(|v| record::decode_versions(v).collect())
            .unwrap_or_default();
        let mut live: HashMap<(Vec<u8>, i64), WriteRef> = HashMap::new();
        for version in versions {
            let Record::Writes(w) = records.record(engine, version)? else {
                return Err(corrupt(
                    thread,
                    format!("version {version} is not a write record"),
                ));
            };
            for (index, write) in w.writes.iter().enumerate() {
                let slot = (w.task_id.to_vec(), write.idx);
                if write.idx >= 0 && live.contains_key(&slot) {
                    continue;
                }
                let ptr = BlobPtr {
                    version,
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                };
                live.insert(
                    slot,
                    (
                        ptr,
                        w.task_path.to_vec(),
                        w.task_id.to_vec(),
                        write.idx,
                        write.channel.to_vec(),
                    ),
                );
            }
        }
        Ok(live.into_values().collect())
    }

    /// Reads one checkpoint and everything `get_tuple` needs with it.
    pub(crate) fn load_checkpoint(
        &self,
        engine: &Engine,
        thread: &Thread,
        ns: &str,
        checkpoint_id: Option<&str>,
    ) -> CoreResult<Option<Loaded>> {
        let ns = ns.as_bytes();
        let cid: Vec<u8> = match checkpoint_id {
            Some(cid) => cid.as_bytes().to_vec(),
            None => match thread.view.get(&record::key_latest(ns)) {
                Some(cid) => cid.to_vec(),
                None => return Ok(None),
            },
        };
        let Some(entry) = thread.view.get(&record::key_checkpoint(ns, &cid)) else {
            return Ok(None);
        };
        let (version, _) = record::decode_checkpoint_entry(entry)
            .ok_or_else(|| corrupt(thread, "a checkpoint index entry is not 8 bytes or more"))?;
        let mut records = Records::new(thread);
        let (parent_id, blob_ptrs) = {
            let Record::Put(put) = records.record(engine, version)? else {
                return Err(corrupt(
                    thread,
                    format!("version {version} is not a checkpoint"),
                ));
            };
            let mut ptrs = Vec::with_capacity(put.versions.len());
            for (channel, channel_version) in &put.versions {
                if let Some(ptr) = thread
                    .view
                    .get(&record::key_blob(ns, channel, channel_version))
                    .and_then(BlobPtr::decode)
                {
                    ptrs.push((channel.to_vec(), channel_version.to_vec(), ptr));
                }
            }
            (put.parent_id.map(<[u8]>::to_vec), ptrs)
        };
        let mut loaded = Loaded {
            checkpoint_id: cid.clone(),
            parent_id,
            checkpoint: self.whole_cached(engine, &mut records, version, CHECKPOINT_SLOT)?,
            metadata: self.whole_cached(engine, &mut records, version, METADATA_SLOT)?,
            values: Vec::new(),
            writes: Vec::new(),
        };
        for (channel, channel_version, ptr) in blob_ptrs {
            // Blob keys hold a hash of the version: check the version stored with the value.
            let stored_version_matches = match records.record(engine, ptr.version)? {
                Record::Put(p) => p.blobs.get(ptr.index as usize).is_some_and(|(c, v, _)| {
                    *c == channel.as_slice() && *v == channel_version.as_slice()
                }),
                _ => false,
            };
            if !stored_version_matches {
                return Err(corrupt(
                    thread,
                    format!(
                        "the index of channel {:?} version {:?} points at another value",
                        text(&channel),
                        text(&channel_version)
                    ),
                ));
            }
            let value = self.find(engine, &mut records, ptr)?;
            if value.ty().is_some() {
                loaded
                    .values
                    .push((channel, (thread.id.0, ptr.version, ptr.index), value));
            }
        }
        for (ptr, task_path, task_id, idx, channel) in
            self.live_writes(engine, &mut records, ns, &cid)?
        {
            let value = self.load(engine, &mut records, ptr)?;
            loaded.writes.push(LoadedWrite {
                task_path,
                task_id,
                idx,
                channel,
                key: (thread.id.0, ptr.version, ptr.index),
                value,
            });
        }
        // LangGraph's `writes_sort_key`: (task_path, task_id, idx).
        loaded.writes.sort_by(|a, b| {
            (&a.task_path, &a.task_id, a.idx).cmp(&(&b.task_path, &b.task_id, b.idx))
        });
        Ok(Some(loaded))
    }
}

impl SaverCore {
    /// The checkpoint (`CHECKPOINT_SLOT`) or metadata (`METADATA_SLOT`) of the put record at
    /// `version`, from the cache, or read, decoded and cached.
    fn whole_cached(
        &self,
        engine: &Engine,
        records: &mut Records<'_>,
        version: u64,
        slot: u32,
    ) -> CoreResult<(CacheKey, Arc<Value>)> {
        let thread = records.thread;
        let key = (thread.id.0, version, slot);
        if let Some(Cached::Value(value)) = self.cache().get(key) {
            return Ok((key, value));
        }
        let (ty, data) = match records.record(engine, version)? {
            Record::Put(p) if slot == CHECKPOINT_SLOT => whole(thread, &p.checkpoint)?,
            Record::Put(p) => whole(thread, &p.metadata)?,
            _ => {
                return Err(corrupt(
                    thread,
                    format!("version {version} is not a checkpoint"),
                ));
            }
        };
        let value = Arc::new(Value {
            ty: Some(ty),
            data: ValueBytes::Rust(data),
        });
        self.cache()
            .insert(key, Cached::Value(value.clone()), false);
        Ok((key, value))
    }

    /// A checkpoint's metadata alone (its type tag and bytes) and its cache key, or `None` if
    /// the thread has no such checkpoint.
    pub(crate) fn metadata_of(
        &self,
        engine: &Engine,
        thread_id: &str,
        checkpoint_ns: &str,
        checkpoint_id: &str,
    ) -> CoreResult<Option<(CacheKey, Arc<Value>)>> {
        let Some(thread) = self.thread(engine, thread_id)? else {
            return Ok(None);
        };
        let key = record::key_checkpoint(checkpoint_ns.as_bytes(), checkpoint_id.as_bytes());
        let Some((version, _)) = thread
            .view
            .get(&key)
            .and_then(record::decode_checkpoint_entry)
        else {
            return Ok(None);
        };
        let mut records = Records::new(&thread);
        self.whole_cached(engine, &mut records, version, METADATA_SLOT)
            .map(Some)
    }
}

/// The type and bytes of a value stored whole (`Raw` or `Zstd`): a checkpoint or metadata.
fn whole(thread: &Thread, stored: &Stored<'_>) -> CoreResult<(Vec<u8>, Vec<u8>)> {
    match stored {
        Stored::Raw { ty, data } => Ok((ty.to_vec(), data.to_vec())),
        Stored::Zstd { ty, raw_len, frame } => Ok((
            ty.to_vec(),
            codec::decode_zstd(frame, *raw_len as usize)
                .map_err(|e| corrupt(thread, format!("a checkpoint or its metadata: {e}")))?,
        )),
        _ => Err(corrupt(
            thread,
            "a checkpoint or its metadata stored as a delta",
        )),
    }
}

/// `bytes` as text (invalid UTF-8 replaced): ids, names and type tags for Python.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The checkpoints of a thread as `(checkpoint_ns, checkpoint_id)`, newest id first, in one
/// namespace or all of them, only ids below `before` if given.
pub(crate) fn list(
    thread: &Thread,
    checkpoint_ns: Option<&str>,
    before: Option<&str>,
) -> Vec<(String, String)> {
    let namespaces: Vec<Vec<u8>> = match checkpoint_ns {
        Some(ns) => vec![ns.as_bytes().to_vec()],
        None => thread
            .view
            .prefix(PREFIX_LATEST)
            .map(|(k, _)| k[PREFIX_LATEST.len()..].to_vec())
            .collect(),
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for ns in namespaces {
        let prefix = record::prefix_checkpoints(&ns);
        for (key, _) in thread.view.prefix(&prefix) {
            let cid = &key[prefix.len()..];
            if before.is_some_and(|b| cid >= b.as_bytes()) {
                continue;
            }
            out.push((text(&ns), text(cid)));
        }
    }
    // Newest first across namespaces, as SQL savers order by checkpoint id.
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// How the values of `stream` (a thread's) are stored, counted over all its put records.
pub(crate) fn value_encodings(
    engine: &Engine,
    stream: &str,
) -> CoreResult<HashMap<&'static str, u64>> {
    let mut counts: HashMap<&'static str, u64> = ["empty", "raw", "zstd", "delta", "splice"]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
    if engine.head(stream).is_none() {
        return Ok(counts);
    }
    for event in engine.read(stream, ..)? {
        let event = event?;
        let Ok(Record::Put(p)) = record::decode(&event.payload) else {
            continue;
        };
        for (_, _, stored) in &p.blobs {
            let kind = match stored {
                Stored::Empty => "empty",
                Stored::Raw { .. } => "raw",
                Stored::Zstd { .. } => "zstd",
                Stored::Delta { .. } => "delta",
                Stored::Splice { .. } => "splice",
            };
            *counts.entry(kind).or_default() += 1;
        }
    }
    Ok(counts)
}
