//! How an engine is configured: [`Options`] (plain settings, grouped by subsystem, each default
//! documented once, on its field) and [`EngineBuilder`] (the settings plus the code an engine
//! runs: storage, state machines, classifier).
//!
//! There is one way to set each thing: settings are fields of [`Options`], pluggable behaviour
//! is a method of [`EngineBuilder`]. [`Engine::open`] is the builder with default plug-ins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use helios_checkpoint::LevelPolicy;
use helios_log::{FsStorage, LogOptions, Storage};
use helios_replay::{KvMachine, StateMachine};

use crate::Engine;
use crate::branches::BranchMemoryPolicy;
use crate::class::{Classifier, DefaultClassifier};
use crate::error::{Error, Result};

/// Default write-behind window for [`crate::Durability::Normal`] appends: 10 ms.
pub const DEFAULT_SYNC_WINDOW_MS: u64 = 10;
/// Default write-behind byte budget: 1 MiB of unsynced appends wakes the flusher early.
pub const DEFAULT_SYNC_WINDOW_BYTES: u64 = 1 << 20;

/// Default budget for speculative branches: 256 MiB.
pub const DEFAULT_BRANCH_MEMORY_BYTES: u64 = 256 << 20;

/// Default number of checkpoints kept open (validated, with their lookup indexes) at once.
pub const DEFAULT_CHECKPOINT_MAPS_MAX: usize = 65_536;

/// Default bound on the memory of the checkpoints kept open: 256 MiB of lookup indexes (about
/// 14 bytes per entry, and 512 bytes per checkpoint). A stream of 100,000 keys with the default
/// policy keeps about 190 MiB open for 100,000 events: its hundred full states alone take 140.
pub const DEFAULT_CHECKPOINT_CACHE_BYTES: u64 = 256 << 20;

/// Default size of a checkpoint pack: 64 MiB (one file per this many bytes of checkpoints).
pub const DEFAULT_CHECKPOINT_PACK_BYTES: u64 = helios_checkpoint::pack::DEFAULT_PACK_CAPACITY;

/// Smallest pack size accepted: 64 KiB.
pub const MIN_CHECKPOINT_PACK_BYTES: u64 = 64 << 10;

/// Default number of streams whose head state the checkpoint builder keeps in memory.
pub const DEFAULT_CHECKPOINT_HEADS_MAX: usize = 1024;

/// Default of [`CheckpointOptions::heavy_event_keys`]: an event that changes this many keys or
/// more gets its own full checkpoint. Replaying a change costs about 0.4 us here (a
/// 100,000-key event took 35-50 ms), so `fanout - 1 = 9` events below this size replay in about
/// 4 ms at most.
pub const DEFAULT_HEAVY_EVENT_KEYS: usize = 1024;

/// Settings of an [`Engine`], grouped by subsystem. Start from [`Options::default`] and set
/// fields:
///
/// ```
/// let mut options = helios::Options::default();
/// options.log.segment_size_bytes = 8 << 20;
/// options.write_behind.sync_window_ms = 5;
/// options.checkpoints.policy = Some(helios::LevelPolicy::new(16, 2)?);
/// # Ok::<(), helios::PolicyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// The log: segment size, write buffer, what to do with a torn tail, group-commit polling.
    /// Each field's default is documented on [`LogOptions`].
    pub log: LogOptions,
    /// When [`crate::Durability::Normal`] appends are synced.
    pub write_behind: WriteBehindOptions,
    /// When checkpoints are taken and how much of them stays in memory.
    pub checkpoints: CheckpointOptions,
    /// The memory of speculative branches.
    pub branches: BranchOptions,
    /// Whether the engine runs its background threads (the flusher, the segment preallocator
    /// and the checkpoint builder). With `false`, nothing happens behind the caller's back:
    /// normal appends are synced only by [`Engine::sync`], a critical append or a clean close,
    /// the index is written only by [`Engine::sync`] and close, and checkpoints are built only
    /// by [`crate::Checkpoints::sync`]. Meant for deterministic simulation, where every I/O
    /// operation must come from the test's own calls. Default: `true`.
    pub background_threads: bool,
    /// Whether opening may create a new store. When `false`, opening a directory that is not a
    /// store fails with [`crate::Error::NotAStore`] instead of creating one there.
    /// Default: `true`.
    pub create_if_missing: bool,
    /// Whether the engine records latency histograms ([`crate::Inspect::metrics`]).
    /// Default: `true`.
    pub metrics: bool,
}

/// When [`crate::Durability::Normal`] appends reach stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteBehindOptions {
    /// Longest time a normal append stays unsynced. At least 1. Default:
    /// [`DEFAULT_SYNC_WINDOW_MS`].
    pub sync_window_ms: u64,
    /// Unsynced bytes that trigger a sync before the window ends. Default:
    /// [`DEFAULT_SYNC_WINDOW_BYTES`].
    pub sync_window_bytes: u64,
}

/// When checkpoints are taken and how many the engine keeps at hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointOptions {
    /// Which versions get checkpoints: every `fanout^1, ..., fanout^levels` events (see
    /// [`LevelPolicy`]). A writer records the policy it uses in the store
    /// (`checkpoints/POLICY`). `None` (the default): the policy the store records, or, for a
    /// new store or one without a record, [`LevelPolicy::default`] (every 10, 100 and 1000
    /// events). A writer given another policy than the recorded one rebuilds the checkpoints
    /// under it and records it. A read-only handle always uses the recorded policy (it builds
    /// nothing, so another one would only lengthen its replays); this one only for a store
    /// without a record. [`crate::Checkpoints::policy`] says which one an open uses.
    pub policy: Option<LevelPolicy>,
    /// Most checkpoints kept open (validated once, with their lookup indexes in memory) at
    /// once; the least recently used are closed beyond it (read again, they are validated
    /// again). At least the policy's number of levels. Default: [`DEFAULT_CHECKPOINT_MAPS_MAX`].
    pub maps_max: usize,
    /// Most memory the open checkpoints' lookup indexes take, in bytes; the least recently
    /// used are closed beyond it. Default: [`DEFAULT_CHECKPOINT_CACHE_BYTES`].
    pub cache_bytes_max: u64,
    /// Most streams whose head state (the full state at the last event built) the builder
    /// keeps in memory; the least recently built are dropped beyond it and reloaded from their
    /// last full checkpoint when they get events again. At least 1. Default:
    /// [`DEFAULT_CHECKPOINT_HEADS_MAX`].
    pub heads_max: usize,
    /// An event that changes at least this many keys is *heavy*: unless its version already
    /// has a checkpoint, the builder writes the full state just after it (a level-0
    /// checkpoint), and views of the versions after it start there, so no view replays a heavy
    /// event. `usize::MAX` turns it off. Default: [`DEFAULT_HEAVY_EVENT_KEYS`].
    pub heavy_event_keys: usize,
    /// The size of a checkpoint pack: checkpoints are appended to one until the next does not
    /// fit, then a new one is started (a checkpoint larger than this gets a pack of its own
    /// size). Fewer, larger packs mean fewer files; smaller ones let compaction reclaim dead
    /// bytes sooner. At least [`MIN_CHECKPOINT_PACK_BYTES`]. Default:
    /// [`DEFAULT_CHECKPOINT_PACK_BYTES`].
    pub pack_bytes: u64,
}

/// The memory of speculative branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchOptions {
    /// Memory budget of all branches (events and cached states). Default:
    /// [`DEFAULT_BRANCH_MEMORY_BYTES`].
    pub memory_bytes: u64,
    /// What happens when a speculative append or a fork would exceed the budget. States that
    /// views of branches cache are admitted the same way; a state that does not fit is used for
    /// that view and not cached, so views never fail for memory. Default:
    /// [`BranchMemoryPolicy::EvictLeastRecentlyUsed`].
    pub memory_policy: BranchMemoryPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log: LogOptions::default(),
            write_behind: WriteBehindOptions::default(),
            checkpoints: CheckpointOptions::default(),
            branches: BranchOptions::default(),
            background_threads: true,
            create_if_missing: true,
            metrics: true,
        }
    }
}

impl Default for WriteBehindOptions {
    fn default() -> Self {
        WriteBehindOptions {
            sync_window_ms: DEFAULT_SYNC_WINDOW_MS,
            sync_window_bytes: DEFAULT_SYNC_WINDOW_BYTES,
        }
    }
}

impl Default for CheckpointOptions {
    fn default() -> Self {
        CheckpointOptions {
            policy: None,
            maps_max: DEFAULT_CHECKPOINT_MAPS_MAX,
            cache_bytes_max: DEFAULT_CHECKPOINT_CACHE_BYTES,
            heads_max: DEFAULT_CHECKPOINT_HEADS_MAX,
            heavy_event_keys: DEFAULT_HEAVY_EVENT_KEYS,
            pack_bytes: DEFAULT_CHECKPOINT_PACK_BYTES,
        }
    }
}

impl Default for BranchOptions {
    fn default() -> Self {
        BranchOptions {
            memory_bytes: DEFAULT_BRANCH_MEMORY_BYTES,
            memory_policy: BranchMemoryPolicy::default(),
        }
    }
}

impl Options {
    /// Checks that the settings can serve `policy` (the options' or the store's).
    pub(crate) fn check_policy(&self, policy: &LevelPolicy) -> Result<()> {
        let levels = policy.levels() as usize;
        if self.checkpoints.maps_max < levels {
            return Err(Error::InvalidOptions {
                option: "checkpoints.maps_max",
                reason: format!(
                    "{} cannot hold the {levels} layers of one view of the policy {policy}",
                    self.checkpoints.maps_max
                ),
            });
        }
        Ok(())
    }

    /// Checks every setting, naming the first one out of range.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid =
            |option: &'static str, reason: String| Err(Error::InvalidOptions { option, reason });
        if self.log.segment_size_bytes < helios_log::MIN_SEGMENT_SIZE_BYTES {
            return invalid(
                "log.segment_size_bytes",
                format!(
                    "{} is below the minimum of {}",
                    self.log.segment_size_bytes,
                    helios_log::MIN_SEGMENT_SIZE_BYTES
                ),
            );
        }
        if self.log.segment_size_bytes > helios_log::format::SEGMENT_SIZE_BYTES_MAX {
            return invalid(
                "log.segment_size_bytes",
                format!(
                    "{} is above the maximum of {} (a segment header records its size in 32 bits)",
                    self.log.segment_size_bytes,
                    helios_log::format::SEGMENT_SIZE_BYTES_MAX
                ),
            );
        }
        if self.write_behind.sync_window_ms == 0 {
            return invalid("write_behind.sync_window_ms", "must be at least 1".into());
        }
        if let Some(policy) = &self.checkpoints.policy {
            self.check_policy(policy)?;
        }
        if self.checkpoints.heads_max == 0 {
            return invalid("checkpoints.heads_max", "must be at least 1".into());
        }
        if self.checkpoints.pack_bytes < MIN_CHECKPOINT_PACK_BYTES {
            return invalid(
                "checkpoints.pack_bytes",
                format!(
                    "{} is below the minimum of {MIN_CHECKPOINT_PACK_BYTES}",
                    self.checkpoints.pack_bytes
                ),
            );
        }
        Ok(())
    }
}

/// The code an engine runs, as opposed to its settings: where its log lives, how events become
/// state, how commit kinds map to classes.
#[derive(Clone)]
pub(crate) struct Plugins {
    /// Where the store's files live (an older store's fjall metadata, read at open, always lives
    /// on the real file system).
    pub(crate) storage: Arc<dyn Storage>,
    /// The state machine of every stream that no entry of `stream_machines` matches.
    pub(crate) state_machine: Arc<dyn StateMachine>,
    /// State machines by stream-name prefix; the longest matching prefix wins.
    pub(crate) stream_machines: Vec<(String, Arc<dyn StateMachine>)>,
    /// Maps commit kinds to classes for [`Engine::commit`].
    pub(crate) classifier: Arc<dyn Classifier>,
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            storage: Arc::new(FsStorage),
            state_machine: Arc::new(KvMachine),
            stream_machines: Vec::new(),
            classifier: Arc::new(DefaultClassifier),
        }
    }
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("state_machine", &self.state_machine.name())
            .field(
                "stream_machines",
                &self
                    .stream_machines
                    .iter()
                    .map(|(prefix, m)| (prefix.as_str(), m.name()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Plugins {
    /// The state machine of `stream`: the longest matching prefix's, or the default.
    /// A hash of what decides which checkpoints a stream keeps: the level policy and which
    /// machine each stream name gets. Two opens with equal fingerprints keep the same ones.
    pub(crate) fn checkpoint_config(&self, policy: &helios_checkpoint::LevelPolicy) -> u64 {
        let mut prefixes: Vec<(&str, &str)> = self
            .stream_machines
            .iter()
            .map(|(prefix, machine)| (prefix.as_str(), machine.name()))
            .collect();
        prefixes.sort_unstable();
        let mut text = format!(
            "{} {} {} {}",
            policy.first_interval(),
            policy.fanout(),
            policy.levels(),
            self.state_machine.name()
        );
        for (prefix, machine) in prefixes {
            text.push_str(&format!("\0{prefix}\0{machine}"));
        }
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    }

    pub(crate) fn machine_for(&self, stream: &str) -> &Arc<dyn StateMachine> {
        self.stream_machines
            .iter()
            .filter(|(prefix, _)| stream.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(&self.state_machine, |(_, machine)| machine)
    }
}

/// Opens an [`Engine`] with settings and plug-ins:
///
/// ```
/// # let dir = tempfile::tempdir().expect("temporary directory");
/// let mut options = helios::Options::default();
/// options.write_behind.sync_window_ms = 5;
/// let engine = helios::Engine::builder(dir.path())
///     .options(options)
///     .stream_machine("counter-", helios::KvMachine)
///     .open()?;
/// # Ok::<(), helios::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    dir: PathBuf,
    options: Options,
    plugins: Plugins,
}

impl EngineBuilder {
    pub(crate) fn new(dir: &Path) -> EngineBuilder {
        EngineBuilder {
            dir: dir.to_path_buf(),
            options: Options::default(),
            plugins: Plugins::default(),
        }
    }

    /// The engine's settings. Default: [`Options::default`].
    #[must_use]
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// Where the store's files live: the real file system, or a simulated one for fault
    /// injection (`SimStorage`, with the `sim` feature). Only the fjall metadata of a store
    /// migrated from format 4 or older, which an open reads, is always on the real file
    /// system. Default: [`FsStorage`].
    #[must_use]
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.plugins.storage = storage;
        self
    }

    /// The state machine of every stream that no [`EngineBuilder::stream_machine`] prefix
    /// matches. Default: [`KvMachine`] (events `set KEY VALUE` and `del KEY`).
    #[must_use]
    pub fn state_machine(mut self, machine: impl StateMachine + 'static) -> Self {
        self.plugins.state_machine = Arc::new(machine);
        self
    }

    /// Streams whose names start with `prefix` use `machine` (the longest matching prefix
    /// wins). Default: none.
    #[must_use]
    pub fn stream_machine(
        mut self,
        prefix: impl Into<String>,
        machine: impl StateMachine + 'static,
    ) -> Self {
        self.plugins
            .stream_machines
            .push((prefix.into(), Arc::new(machine)));
        self
    }

    /// Maps commit kinds to classes for [`Engine::commit`] (a closure
    /// `|stream, kind| -> Durability` works). Default: [`DefaultClassifier`].
    #[must_use]
    pub fn classifier(mut self, classifier: impl Classifier + 'static) -> Self {
        self.plugins.classifier = Arc::new(classifier);
        self
    }

    /// The directory, options and plug-ins, for the opens of other modules.
    pub(crate) fn into_parts(self) -> (PathBuf, Options, Plugins) {
        (self.dir, self.options, self.plugins)
    }

    /// Opens (or creates) the store; see [`Engine::open`].
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open(self) -> Result<Engine> {
        Engine::open_with(&self.dir, self.options, self.plugins)
    }
}
