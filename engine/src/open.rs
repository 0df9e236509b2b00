//! Opening a store: its format (and the migration of an older one, whose fjall metadata is
//! read), the lock, the catalog, the checkpoint store's reconciliation, and the background
//! threads.
//!
//! Writers and readers find the streams the same way: the catalog snapshot (`CATALOG`, exact
//! at the end of the newest indexed segment) and the log's records after it, applied as the
//! log's recovery reads them; the segment indexes locate the events before it. Without a
//! usable snapshot they read the whole log. So an open reads at most the segments no index
//! covers yet, whatever the store's history.
//!
//! A writer's open also refuses, as damaged and unchanged (for `helios repair`), a log that
//! lost what was durable: one that ends before the snapshot's record or before the end the
//! log last published after a sync (`log/published-end`), or that lacks a segment (the
//! first, the published end's, or one between two whose indexes say they do not meet).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};

use helios_checkpoint::LevelPolicy;
use helios_log::{Log, LogError, Lsn, RecordKind, RecoveryReport, StreamId};

use crate::background::{BuilderSignal, FlusherSignal};
use crate::catalog::Catalog;
use crate::catalog_snapshot;
use crate::checkpoints::Builder;
use crate::checkpoints::recorded_policy::{self, Recorded};
use crate::checkpoints::{
    CHECKPOINT_DIR, CheckpointOpenReport, Opened, Store, StoreSizes, StreamAtOpen,
};
use crate::engine::{Engine, Inner, LOCK_FILE, LOG_DIR, META_DIR};
use crate::error::{Error, Result};
use crate::meta::Meta;
use crate::options::{EngineBuilder, Options, Plugins};
use crate::store_format;

/// What opening the engine found and repaired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The log's own recovery.
    pub log: RecoveryReport,
    /// Events read from the log: those after the catalog snapshot's record (every event
    /// without a usable snapshot). The segment indexes locate the others.
    pub reindexed: u64,
    /// What reconciling the checkpoint files with their catalog did.
    pub checkpoints: CheckpointOpenReport,
    /// The store format this open migrated the store from, if it did (see
    /// [`STORE_FORMAT_VERSION`](crate::STORE_FORMAT_VERSION)).
    pub migrated_from: Option<u32>,
    /// The store's format as opened: the current one after a writer's open (which migrates an
    /// older store), the one found on disk after a reader's.
    pub store_format: u32,
    /// When the open started from the catalog snapshot (`CATALOG`), the last record it
    /// covered: the log was read only after it. `None` when it read the whole log (no
    /// snapshot, one it could not use, or a migration).
    pub catalog_snapshot: Option<Lsn>,
}

impl Engine {
    /// Starts configuring an engine for `dir`: its [`Options`] and its plug-ins (storage,
    /// state machines, classifier).
    pub fn builder(dir: impl AsRef<Path>) -> EngineBuilder {
        EngineBuilder::new(dir.as_ref())
    }

    /// Opens (or creates) the store in `dir`, recovering from a crash if needed: a torn tail of
    /// the log is removed (or refused, per
    /// [`LogOptions::recovery_mode`](helios_log::LogOptions::recovery_mode)) and the records
    /// past the catalog snapshot are read into the catalog. A log that lost records known to
    /// be durable (see the module documentation) is refused with [`Error::Damaged`] and left
    /// as it is (see [`crate::repair`]).
    ///
    /// # Errors
    /// [`Error::Locked`] if another writer has the store open, [`Error::Damaged`] naming the file
    /// and offset, I/O and metadata errors, invalid options.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        Engine::builder(dir).options(options).open()
    }

    /// [`Engine::open`] with the plug-ins of an [`EngineBuilder`].
    pub(crate) fn open_with(dir: &Path, options: Options, plugins: Plugins) -> Result<Engine> {
        Engine::open_as(dir, options, plugins, Access::Write)
    }

    /// Opens the store for writing, or (for [`crate::ReadOnly`]) to read it without changing
    /// anything: no lock, no fjall, no recovery that writes, no migration, no background
    /// thread; the catalog is loaded from the snapshot and the log after it, as a writer's.
    pub(crate) fn open_as(
        dir: &Path,
        mut options: Options,
        plugins: Plugins,
        access: Access,
    ) -> Result<Engine> {
        let dir = dir.to_path_buf();
        let writing = access == Access::Write;
        if !writing {
            options.create_if_missing = false;
            options.background_threads = false;
        }
        options.validate()?;
        let storage = plugins.storage.clone();
        crate::dir_check::check(&dir, options.create_if_missing, &*storage)?;
        let lock_guard = if writing {
            std::fs::create_dir_all(&dir).map_err(|e| LogError::Io {
                op: "create directory",
                path: dir.clone(),
                source: e,
            })?;
            storage.create_dir_all(&dir).map_err(|e| LogError::Io {
                op: "create directory",
                path: dir.clone(),
                source: e,
            })?;
            let lock_path = dir.join(LOCK_FILE);
            Some(storage.lock_exclusive(&lock_path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::WouldBlock {
                    Error::Locked {
                        path: lock_path.clone(),
                    }
                } else {
                    Error::Log(LogError::Io {
                        op: "lock",
                        path: lock_path.clone(),
                        source: e,
                    })
                }
            })?)
        } else {
            None
        };
        // The format first: nothing else is read before this build knows it can read it.
        let found = store_format::read(storage.as_ref(), &dir)?;
        let store_format_found = match found {
            store_format::Found::Missing if !writing => 1,
            store_format::Found::Older(version) if !writing => version,
            _ => crate::STORE_FORMAT_VERSION,
        };
        let migrate_from = match found {
            store_format::Found::Current => None,
            // A reader reads an older store as it is (without its checkpoints, which are in
            // files of the old layout); a writer migrates it.
            store_format::Found::Older(version) => writing.then_some(version),
            // A reader reads a format-1 store as it is; a writer migrates it.
            store_format::Found::Missing if has_segments(storage.as_ref(), &dir) => {
                writing.then_some(1)
            }
            store_format::Found::Missing if !writing => {
                return Err(Error::NotAStore { path: dir });
            }
            store_format::Found::Missing => {
                // A new store: its format is written before anything else. A directory with
                // neither but with what a store writes later (a segment index, `CATALOG`,
                // `STORE-ID`) lost its log, and is refused with nothing written (found by
                // fuzzing: a writer started an empty log beside the old `CATALOG`, and its
                // reopen refused the log).
                refuse_lost_log(storage.as_ref(), &dir)?;
                store_format::write(storage.as_ref(), &dir)?;
                None
            }
        };
        // fjall holds nothing a store of this format writes: it is opened only to read what an
        // older store kept there (its recovery point, and the machines of its checkpoints).
        let meta = if writing && dir.join(META_DIR).is_dir() {
            Some(Meta::open(&dir.join(META_DIR))?.0)
        } else {
            None
        };
        // Beside a live writer, a reader reads only what the writer published as durable: the
        // records past it may be taken back by a crash.
        let cap = if writing || !crate::read_only::writer_holds(&dir) {
            None
        } else {
            // Nothing published yet: the writer has made nothing durable for readers.
            Some(
                helios_log::read_published_end(&dir.join(LOG_DIR))
                    .map_err(Error::from)?
                    .unwrap_or(helios_log::Position {
                        lsn: Lsn::ZERO,
                        segment: helios_log::SegmentId(1),
                        offset: helios_log::format::segment_header::LEN as u64,
                    }),
            )
        };
        // The store's identity, stamped in its catalog snapshot and checkpoint packs (a writer
        // makes one below if the store has none: then it has neither).
        let store_id = crate::store_id::read(storage.as_ref(), &dir);
        // Both start from the catalog snapshot, if the store has one they can use, and read
        // the log only after it. A migration reads the whole log.
        let snapshot = if migrate_from.is_some() {
            None
        } else {
            store_id
                .and_then(|id| catalog_snapshot::read(storage.as_ref(), &dir, id))
                .filter(|s| cap.is_none_or(|cap| s.through.lsn <= cap.lsn))
                .map(Arc::new)
        };
        let start = snapshot.as_ref().map(|s| s.through);
        // What a writer knows was durable, which the log must reach: the end it published
        // after its last sync, and the recovery point an older store's metadata recorded.
        let durable = if writing {
            let published = helios_log::published_end_in(storage.as_ref(), &dir.join(LOG_DIR))
                .map_err(Error::from)?;
            let recorded = match (&meta, migrate_from) {
                (Some(meta), Some(_)) => meta.recovery_point()?.map(|l| helios_log::Position {
                    lsn: l.lsn,
                    segment: l.segment,
                    offset: l.end(),
                }),
                _ => None,
            };
            // A migration reads the whole log, not from a snapshot; but one found here (an
            // interrupted migration wrote it, or the store lost its `FORMAT`) still says how
            // far the log reached: a log that ends before it lost records (found by fuzzing).
            let snapshot_end = migrate_from
                .and(store_id)
                .and_then(|id| catalog_snapshot::read(storage.as_ref(), &dir, id))
                .map(|s| helios_log::Position {
                    lsn: s.through.lsn,
                    segment: s.through.segment,
                    offset: s.through.end(),
                });
            published
                .into_iter()
                .chain(recorded)
                .chain(snapshot_end)
                .max_by_key(|p| p.lsn)
        } else {
            None
        };

        let mut catalog = Catalog::new(dir.join(LOG_DIR), snapshot.clone());

        let mut apply_error: Option<Error> = None;
        let mut reindexed = 0u64;
        let mut visit = |record: helios_log::RecordRef<'_>, location| {
            if cap.is_some_and(|cap| record.header.lsn > cap.lsn) {
                return;
            }
            if apply_error.is_none() {
                match catalog.apply(&record, location) {
                    Ok(()) => reindexed += u64::from(record.header.kind == RecordKind::Event),
                    Err(e) => apply_error = Some(e),
                }
            }
        };
        let (log_dir, log_options) = (dir.join(LOG_DIR), options.log.clone());
        let (log, log_report) = match (writing, cap) {
            (true, _) => Log::open_durable(
                storage.clone(),
                &log_dir,
                log_options,
                start,
                durable,
                &mut visit,
            ),
            // Beside a live writer, nothing past its published end is read: its bytes there
            // are in flux (appends, a torn tail its recovery is zeroing).
            (false, Some(cap)) => Log::open_read_only_until(
                storage.clone(),
                &log_dir,
                log_options,
                start,
                cap,
                &mut visit,
            ),
            (false, None) => {
                Log::open_read_only(storage.clone(), &log_dir, log_options, start, &mut visit)
            }
        }
        .map_err(|e| Error::from(e).damage_in(&dir))?;
        if let Some(e) = apply_error {
            return Err(e.damage_in(&dir));
        }
        if snapshot.is_some() && log_report.start_was_past_end {
            // The log ends before the snapshot does (a damaged or cut store): what the
            // snapshot says past the end is not in the log. Read the whole log instead.
            catalog = Catalog::new(dir.join(LOG_DIR), None);
            for record in log.iter_from(Lsn(1))? {
                let record = record.map_err(|e| Error::from(e).damage_in(&dir))?;
                if cap.is_some_and(|cap| record.header.lsn > cap.lsn) {
                    break;
                }
                let bytes = helios_log::RecordRef {
                    header: record.header,
                    payload: &record.payload,
                };
                catalog
                    .apply(&bytes, record.location)
                    .map_err(|e| e.damage_in(&dir))?;
            }
        }
        // Everything read is durable: a writer's log synced it at open, and a reader reads no
        // further than the writer published.
        catalog.mark_durable();
        if let Some(cap) = cap {
            log.cap_read_only(cap)
                .map_err(|e| Error::from(e).damage_in(&dir))?;
        }
        if migrate_from == Some(1) {
            // Records of the kinds format 2 added must never land in a format-1 segment.
            log.upgrade_active_segment()?;
        }
        let store_id = match store_id {
            None if writing => Some(crate::store_id::read_or_create(
                plugins.storage.as_ref(),
                &dir,
            )?),
            found => found,
        };
        if let (Some(from), Some(store_id)) = (migrate_from, store_id) {
            if from < 3 {
                // Format 3: checkpoints move into packs.
                crate::checkpoints::migrate_checkpoint_files(
                    &dir.join(CHECKPOINT_DIR),
                    &plugins.storage,
                    store_id,
                )?;
            }
            if let Some(meta) = &meta {
                if from < 3 {
                    meta.remove_checkpoint_entries()?;
                }
                // Format 4: the log's segment indexes replace fjall's (the flush below writes
                // them).
                meta.drop_index_keyspace()?;
                // Format 5: the catalog snapshot and the log replace fjall's stream records
                // (the open read the recovery point first, as a bound on what was durable).
                meta.drop_stream_records()?;
            }
        }
        // The catalog keeps in memory only the locations the segment indexes do not hold. A
        // snapshot's streams need the indexes up to its end: any missing or damaged one is
        // built (a writer writes it, a reader keeps it in memory). Past that, whatever valid
        // index there is is loaded, and no other is built here (a writer's flush below builds
        // the rest once they are durable).
        if let Some(snapshot) = snapshot.as_ref().filter(|_| !log_report.start_was_past_end) {
            log.index_sealed(snapshot.through.lsn, true)
                .map_err(|e| Error::from(e).damage_in(&dir))?;
            // A snapshot a clean close took inside the then active segment: that segment's
            // index up to it (the close wrote it; built in memory if it is not usable).
            if log.indexed_through() != Some(snapshot.through) {
                log.load_tail_index(snapshot.through)
                    .map_err(|e| Error::from(e).damage_in(&dir))?;
            }
        }
        let indexed = log
            .index_sealed(Lsn(u64::MAX), false)
            .map_err(|e| Error::from(e).damage_in(&dir))?;
        if let Some(through) = indexed.through {
            catalog.drain_indexed(through);
        }

        let catalog_snapshot = snapshot
            .as_ref()
            .filter(|_| !log_report.start_was_past_end)
            .map(|s| s.through.lsn);
        let mut open_report = OpenReport {
            log: log_report,
            reindexed,
            checkpoints: CheckpointOpenReport::default(),
            migrated_from: migrate_from,
            store_format: store_format_found,
            catalog_snapshot,
        };

        let sizes = StoreSizes {
            count: options.checkpoints.maps_max,
            bytes: options.checkpoints.cache_bytes_max,
            pack_bytes: options.checkpoints.pack_bytes,
        };
        // The level policy: a reader's is always the one the store's writer recorded (it builds
        // nothing, so any other would only lengthen its replays); a writer's is the one its
        // options name, else the recorded one. Without a record, the options' or the default.
        let ckpt_dir = dir.join(CHECKPOINT_DIR);
        let recorded = recorded_policy::read(storage.as_ref(), &ckpt_dir);
        let policy = match (&recorded, options.checkpoints.policy) {
            (Recorded::Policy(recorded), _) if !writing => *recorded,
            (_, Some(named)) => named,
            (Recorded::Policy(recorded), None) => *recorded,
            (Recorded::Missing | Recorded::Damaged(_), None) => LevelPolicy::default(),
        };
        options.check_policy(&policy)?;
        options.checkpoints.policy = Some(policy);
        let config = plugins.checkpoint_config(&policy);
        let streams_at_open = |catalog: &Catalog| -> crate::checkpoints::StreamsAtOpen {
            let at_open = catalog.at_open();
            let machines = plugins.clone();
            Box::new(move |id| {
                let s = at_open.stream(id)?;
                Some(Opened {
                    head: s.head.0,
                    live: s.live,
                    machine: machines.machine_for(s.name).clone(),
                    shared: s.shared,
                })
            })
        };
        let (store, mut checkpoints_report) = if writing {
            Store::open(
                ckpt_dir.clone(),
                plugins.storage.clone(),
                store_id.unwrap_or(0),
                policy,
                sizes,
                streams_at_open(&catalog),
            )?
        } else {
            Store::open_read_only(
                ckpt_dir.clone(),
                plugins.storage.clone(),
                store_id,
                policy,
                sizes,
                streams_at_open(&catalog),
            )?
        };
        // Each stream's checkpoints are taken in at its first use (a reader's always), when the
        // writer knows which streams may have a checkpoint due without reading them all: the
        // snapshot lists them (see `catalog_snapshot.rs`), for undamaged packs and an unchanged
        // configuration. The streams with checkpoints past a pack's index are taken in now
        // (few; a crash's). Otherwise (damage, a cut pack tail, another policy or machine, a
        // store with fjall metadata, whose older checkpoints need the machines fjall recorded)
        // the writer takes everything in now, and queues every gap: its open report then
        // counts what it kept and dropped.
        let due_listed = snapshot.as_ref().filter(|s| {
            writing
                && catalog_snapshot.is_some()
                && meta.is_none()
                && s.config == config
                && checkpoints_report.damage.is_empty()
                && checkpoints_report.cut_bytes == 0
        });
        if writing && due_listed.is_none() {
            // Checkpoints past what live streams can read (those of deleted streams that no
            // live fork shares) are dropped: their bytes are dead, for compaction to reclaim.
            let reachable = catalog.reachable();
            let at_open: Vec<StreamAtOpen<'_>> = catalog
                .iter()
                .map(|(id, st)| StreamAtOpen {
                    id,
                    head: reachable[usize::try_from(id.0 - 1).unwrap_or(0)],
                    shared: st.fork.map_or(0, |f| f.at.0),
                    machine: plugins.machine_for(st.name).name(),
                })
                .collect();
            store.take_in_everything(meta.as_ref(), &at_open, &mut checkpoints_report)?;
        } else if writing {
            store.take_in_scanned(&mut checkpoints_report);
        }
        // Recorded before the builder (started below) writes a checkpoint under it.
        if let Recorded::Damaged(why) = &recorded {
            checkpoints_report.damage.push(format!(
                "{}: {why}; read with the policy {policy}{}",
                ckpt_dir.join(recorded_policy::POLICY_FILE).display(),
                if writing { ", now recorded" } else { "" }
            ));
        }
        if writing && recorded != Recorded::Policy(policy) {
            recorded_policy::write(plugins.storage.as_ref(), &ckpt_dir, &policy)?;
        }
        open_report.checkpoints = checkpoints_report;
        // Every checkpoint up to a stream's newest one is there (or queued for a rebuild);
        // streams with a checkpoint due past it are queued for the builder: of those the
        // snapshot lists and those the log changed after it, or of every stream. A reader
        // builds nothing.
        let candidates: Vec<StreamId> = match due_listed {
            Some(snapshot) => {
                let mut ids: Vec<StreamId> =
                    snapshot.due().chain(catalog.in_memory_ids()).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            }
            None if writing => catalog.iter().map(|(id, _)| id).collect(),
            None => Vec::new(),
        };
        let queue: Vec<StreamId> = candidates
            .into_iter()
            .filter(|&id| catalog.get(id).is_some_and(|st| store.is_due(id, &st)))
            .collect();
        let wake = !queue.is_empty() || store.has_rebuilds();
        let record_metrics = options.metrics;
        // The snapshot the catalog came from. A writer that read the whole log instead (a
        // migration, a snapshot it could not use) writes its own at the first chance: the one
        // on disk may say otherwise than the log it read, and the next open would believe it.
        let snapshot_through = snapshot.as_ref().map(|s| s.through);
        let inner = Arc::new(Inner {
            dir,
            options,
            plugins,
            log,
            meta,
            store_id: store_id.unwrap_or(0),
            snapshot_through: Mutex::new(snapshot_through),
            catalog: Mutex::new(catalog),
            store,
            branches: crate::branches::BranchTable::new(),
            metrics: crate::metrics::Metrics::new(record_metrics),
            due: Mutex::new(queue.iter().copied().collect()),
            config,
            snapshot_stale: AtomicBool::new(writing && snapshot.is_some() && due_listed.is_none()),
            builder: Mutex::new(Builder::new()),
            stalled: Mutex::new(Vec::new()),
            builder_signal: Mutex::new(BuilderSignal {
                queue,
                wake,
                shutdown: false,
            }),
            builder_cv: Condvar::new(),
            signal: Mutex::new(FlusherSignal::default()),
            signal_cv: Condvar::new(),
            prealloc_cv: Condvar::new(),
            flush_lock: Mutex::new(()),
            last_flush_error: Mutex::new(None),
            normal_pending: AtomicBool::new(false),
            open_report,
            read_only: !writing,
            _lock: lock_guard,
        });
        if writing {
            // Everything recovery found is durable (the log's open synced it): index the
            // sealed segments now, and write the catalog snapshot.
            inner.flush_round(true)?;
            inner.index_sealed_segments(inner.log.synced_lsn())?;
            if let Some(meta) = &inner.meta {
                meta.persist()?;
            }
        }
        if migrate_from.is_some() {
            // Last: until this file exists, the next open migrates again.
            store_format::write(inner.plugins.storage.as_ref(), &inner.dir)?;
        }
        let spawn = |name: &str, body: fn(&Inner)| {
            let worker = inner.clone();
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&worker))
                .map_err(|e| LogError::Io {
                    op: "spawn a background thread",
                    path: PathBuf::from(name),
                    source: e,
                })
        };
        let threads = if inner.options.background_threads {
            vec![
                spawn("helios-flusher", Inner::flusher_loop)?,
                spawn("helios-prealloc", Inner::preallocator_loop)?,
                spawn("helios-checkpoints", Inner::builder_loop)?,
            ]
        } else {
            Vec::new()
        };
        Ok(Engine {
            inner,
            threads,
            open: true,
        })
    }
}

/// Whether an open may change the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// A writer's open: it takes the lock, recovers, migrates, indexes and builds.
    Write,
    /// A reader's open ([`crate::ReadOnly`]): it changes nothing.
    Read,
}

/// Refuses a directory without `FORMAT` and segments that holds a segment index, a catalog
/// snapshot or a store id: a store that lost its log, not a new one.
fn refuse_lost_log(storage: &dyn helios_log::Storage, dir: &Path) -> Result<()> {
    let log_dir = dir.join(LOG_DIR);
    let index = storage
        .list_files(&log_dir)
        .ok()
        .and_then(|names| names.into_iter().filter(|n| n.ends_with(".idx")).min())
        .map(|name| log_dir.join(name));
    let left = index.or_else(|| {
        [
            catalog_snapshot::CATALOG_FILE,
            crate::store_id::STORE_ID_FILE,
        ]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|path| storage.open_read_only(path).is_ok())
    });
    match left {
        None => Ok(()),
        Some(path) => Err(Error::from(LogError::corrupt(
            dir.join(store_format::FORMAT_FILE),
            0,
            format!(
                "this file is missing and the log directory holds no segment, yet {} is \
                 here: a store that lost its log, not a new one (restore the files; nothing \
                 was written)",
                path.display()
            ),
        ))
        .damage_in(dir)),
    }
}

/// Whether the store's log directory holds a segment: a store written before the `FORMAT` file
/// existed (format 1), as opposed to a new one.
fn has_segments(storage: &dyn helios_log::Storage, dir: &Path) -> bool {
    storage
        .list_files(&dir.join(LOG_DIR))
        .is_ok_and(|names| names.iter().any(|n| n.ends_with(".log")))
}

/// The ids of the segment files in `log_dir` (named after their first LSN).
pub(crate) fn segment_ids(log_dir: &Path) -> std::collections::HashSet<u64> {
    std::fs::read_dir(log_dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name();
                    name.to_str()?.strip_suffix(".log")?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default()
}
