//! Engine options, with documented defaults, and the builder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use helios_checkpoint::LevelPolicy;
use helios_log::{FsStorage, LogOptions, RecoveryMode, Storage};
use helios_replay::{KvMachine, StateMachine};

use crate::Engine;
use crate::branch::BranchMemoryPolicy;
use crate::class::{Classifier, DefaultClassifier};
use crate::error::{Error, Result};

/// Default write-behind window for [`crate::Durability::Normal`] appends: 10 ms.
pub const DEFAULT_SYNC_WINDOW_MS: u64 = 10;
/// Default write-behind byte budget: 1 MiB of unsynced appends wakes the flusher early.
pub const DEFAULT_SYNC_WINDOW_BYTES: u64 = 1 << 20;

/// Default budget for speculative branches: 256 MiB.
pub const DEFAULT_BRANCH_MEMORY_BYTES: u64 = 256 << 20;

/// Default number of checkpoint files kept memory-mapped at once.
pub const DEFAULT_CHECKPOINT_MAPS_MAX: usize = 16_384;

/// Default number of streams whose head state the checkpoint builder keeps in memory.
pub const DEFAULT_CHECKPOINT_HEADS_MAX: usize = 1024;

/// Default of [`Options::heavy_event_keys`]: an event that changes this many keys or more gets
/// its own full checkpoint. Replaying a change costs about 0.4 us here (a 100,000-key event
/// took 35-50 ms), so `fanout - 1 = 9` events below this size replay in about 4 ms at most.
pub const DEFAULT_HEAVY_EVENT_KEYS: usize = 1024;

/// Options of an [`Engine`]. Build with [`Options::default`] and set fields, or use
/// [`Engine::builder`].
#[derive(Clone)]
pub struct Options {
    /// Size of each log segment, preallocated with zeros. Default: 64 MiB
    /// ([`helios_log::DEFAULT_SEGMENT_SIZE_BYTES`]).
    pub segment_size_bytes: u64,
    /// Bytes of appends buffered in memory before they are written to the segment file.
    /// Default: 256 KiB ([`helios_log::DEFAULT_WRITE_BUFFER_BYTES`]).
    pub write_buffer_bytes: usize,
    /// Longest time a [`crate::Durability::Normal`] append stays unsynced. Default:
    /// [`DEFAULT_SYNC_WINDOW_MS`].
    pub sync_window_ms: u64,
    /// Unsynced bytes that trigger a sync before the window ends. Default:
    /// [`DEFAULT_SYNC_WINDOW_BYTES`].
    pub sync_window_bytes: u64,
    /// What to do with a torn tail found on open. Default: [`RecoveryMode::Truncate`].
    pub recovery_mode: RecoveryMode,
    /// How long around a sync's expected end the threads waiting for it poll instead of
    /// sleeping; see [`helios_log::LogOptions::sync_poll_window_us`]. 0 disables. Default:
    /// [`helios_log::DEFAULT_SYNC_POLL_WINDOW_US`] (60).
    pub sync_poll_window_us: u64,
    /// Whether the engine runs its background threads (the flusher and the segment
    /// preallocator). With `false`, nothing happens behind the caller's back: normal appends
    /// are synced only by [`Engine::sync`], a critical append or a clean close, and the index
    /// is written only by [`Engine::sync`] and close. Meant for deterministic simulation, where
    /// every I/O operation must come from the test's own calls. Default: `true`.
    pub background_threads: bool,
    /// Whether [`Engine::open`] may create a new store. When `false`, opening a directory that
    /// is not a store fails with [`crate::Error::NotAStore`] instead of creating one there.
    /// Default: `true`.
    pub create_if_missing: bool,
    /// Where the log's files live. The fjall metadata always lives on the real file system, in
    /// the store directory. Default: [`FsStorage`].
    pub storage: Arc<dyn Storage>,
    /// The state machine of every stream that no entry of [`Options::stream_machines`]
    /// matches. Default: [`KvMachine`] (events `set KEY VALUE` and `del KEY`).
    pub state_machine: Arc<dyn StateMachine>,
    /// State machines by stream-name prefix: a stream uses the machine of the longest prefix
    /// that matches its name, or [`Options::state_machine`]. Default: empty.
    pub stream_machines: Vec<(String, Arc<dyn StateMachine>)>,
    /// When checkpoints are taken: every `fanout^1, ..., fanout^levels` events. Default:
    /// fanout 10, 3 levels (every 10, 100 and 1000 events).
    pub checkpoint_policy: LevelPolicy,
    /// Most checkpoint files kept memory-mapped (and validated) at once; the least recently
    /// used are unmapped beyond it. Default: [`DEFAULT_CHECKPOINT_MAPS_MAX`].
    pub checkpoint_maps_max: usize,
    /// Most streams whose head state (the full state at the last event built) the
    /// checkpoint builder keeps in memory; the least recently built are dropped beyond it and
    /// reloaded from their last full checkpoint when they get events again. Default:
    /// [`DEFAULT_CHECKPOINT_HEADS_MAX`].
    pub checkpoint_heads_max: usize,
    /// An event that changes at least this many keys is *heavy*: unless its version already
    /// has a checkpoint, the builder writes the full state just after it (a level-0
    /// checkpoint), and views of the versions after it start there, so no view replays a
    /// heavy event. Default: [`DEFAULT_HEAVY_EVENT_KEYS`]; `usize::MAX` turns it off.
    pub heavy_event_keys: usize,
    /// Memory budget of all speculative branches (events and cached states). Default:
    /// [`DEFAULT_BRANCH_MEMORY_BYTES`].
    pub branch_memory_bytes: u64,
    /// What happens when a speculative append or a fork would exceed the budget. Default:
    /// evict the least recently used unpinned branches. States that views of branches cache
    /// are admitted the same way; a state that does not fit is used for that view and not
    /// cached, so views never fail for memory.
    pub branch_memory_policy: BranchMemoryPolicy,
    /// Maps commit kinds to classes for [`Engine::commit`]. Default: [`DefaultClassifier`].
    pub classifier: Arc<dyn Classifier>,
    /// Whether the engine records latency histograms ([`Engine::metrics`]). Default: `true`.
    pub metrics: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("segment_size_bytes", &self.segment_size_bytes)
            .field("write_buffer_bytes", &self.write_buffer_bytes)
            .field("sync_window_ms", &self.sync_window_ms)
            .field("sync_window_bytes", &self.sync_window_bytes)
            .field("recovery_mode", &self.recovery_mode)
            .field("sync_poll_window_us", &self.sync_poll_window_us)
            .field("background_threads", &self.background_threads)
            .field("create_if_missing", &self.create_if_missing)
            .field("state_machine", &self.state_machine.name())
            .field(
                "stream_machines",
                &self
                    .stream_machines
                    .iter()
                    .map(|(prefix, m)| (prefix.as_str(), m.name()))
                    .collect::<Vec<_>>(),
            )
            .field("checkpoint_policy", &self.checkpoint_policy)
            .field("checkpoint_maps_max", &self.checkpoint_maps_max)
            .field("checkpoint_heads_max", &self.checkpoint_heads_max)
            .field("heavy_event_keys", &self.heavy_event_keys)
            .field("branch_memory_bytes", &self.branch_memory_bytes)
            .field("branch_memory_policy", &self.branch_memory_policy)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        let log = LogOptions::default();
        Options {
            segment_size_bytes: log.segment_size_bytes,
            write_buffer_bytes: log.write_buffer_bytes,
            sync_window_ms: DEFAULT_SYNC_WINDOW_MS,
            sync_window_bytes: DEFAULT_SYNC_WINDOW_BYTES,
            recovery_mode: log.recovery_mode,
            sync_poll_window_us: log.sync_poll_window_us,
            background_threads: true,
            create_if_missing: true,
            storage: Arc::new(FsStorage),
            state_machine: Arc::new(KvMachine),
            stream_machines: Vec::new(),
            checkpoint_policy: LevelPolicy::default(),
            checkpoint_maps_max: DEFAULT_CHECKPOINT_MAPS_MAX,
            checkpoint_heads_max: DEFAULT_CHECKPOINT_HEADS_MAX,
            heavy_event_keys: DEFAULT_HEAVY_EVENT_KEYS,
            branch_memory_bytes: DEFAULT_BRANCH_MEMORY_BYTES,
            branch_memory_policy: BranchMemoryPolicy::default(),
            classifier: Arc::new(DefaultClassifier),
            metrics: true,
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.segment_size_bytes < helios_log::MIN_SEGMENT_SIZE_BYTES {
            return Err(Error::InvalidOptions {
                option: "segment_size_bytes",
                reason: format!(
                    "{} is below the minimum of {}",
                    self.segment_size_bytes,
                    helios_log::MIN_SEGMENT_SIZE_BYTES
                ),
            });
        }
        if self.sync_window_ms == 0 {
            return Err(Error::InvalidOptions {
                option: "sync_window_ms",
                reason: "must be at least 1".into(),
            });
        }
        if self.checkpoint_maps_max < self.checkpoint_policy.levels() as usize {
            return Err(Error::InvalidOptions {
                option: "checkpoint_maps_max",
                reason: format!(
                    "{} cannot hold the {} layers of one view",
                    self.checkpoint_maps_max,
                    self.checkpoint_policy.levels()
                ),
            });
        }
        if self.checkpoint_heads_max == 0 {
            return Err(Error::InvalidOptions {
                option: "checkpoint_heads_max",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The state machine of `stream`: the longest matching prefix's, or the default.
    #[must_use]
    pub fn machine_for(&self, stream: &str) -> &Arc<dyn StateMachine> {
        self.stream_machines
            .iter()
            .filter(|(prefix, _)| stream.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(&self.state_machine, |(_, machine)| machine)
    }

    pub(crate) fn log_options(&self) -> LogOptions {
        LogOptions {
            segment_size_bytes: self.segment_size_bytes,
            write_buffer_bytes: self.write_buffer_bytes,
            recovery_mode: self.recovery_mode,
            sync_poll_window_us: self.sync_poll_window_us,
        }
    }
}

/// Builds an [`Engine`]: `Engine::builder(dir).sync_window_ms(5).open()`.
#[derive(Clone, Debug)]
pub struct EngineBuilder {
    dir: PathBuf,
    options: Options,
}

impl EngineBuilder {
    pub(crate) fn new(dir: &Path) -> EngineBuilder {
        EngineBuilder {
            dir: dir.to_path_buf(),
            options: Options::default(),
        }
    }

    /// Sets [`Options::segment_size_bytes`].
    #[must_use]
    pub fn segment_size_bytes(mut self, bytes: u64) -> Self {
        self.options.segment_size_bytes = bytes;
        self
    }

    /// Sets [`Options::write_buffer_bytes`].
    #[must_use]
    pub fn write_buffer_bytes(mut self, bytes: usize) -> Self {
        self.options.write_buffer_bytes = bytes;
        self
    }

    /// Sets [`Options::sync_window_ms`].
    #[must_use]
    pub fn sync_window_ms(mut self, ms: u64) -> Self {
        self.options.sync_window_ms = ms;
        self
    }

    /// Sets [`Options::sync_window_bytes`].
    #[must_use]
    pub fn sync_window_bytes(mut self, bytes: u64) -> Self {
        self.options.sync_window_bytes = bytes;
        self
    }

    /// Sets [`Options::recovery_mode`].
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.options.recovery_mode = mode;
        self
    }

    /// Sets [`Options::sync_poll_window_us`].
    #[must_use]
    pub fn sync_poll_window_us(mut self, us: u64) -> Self {
        self.options.sync_poll_window_us = us;
        self
    }

    /// Sets [`Options::background_threads`].
    #[must_use]
    pub fn background_threads(mut self, run: bool) -> Self {
        self.options.background_threads = run;
        self
    }

    /// Sets [`Options::create_if_missing`].
    #[must_use]
    pub fn create_if_missing(mut self, create: bool) -> Self {
        self.options.create_if_missing = create;
        self
    }

    /// Sets [`Options::storage`].
    #[must_use]
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.options.storage = storage;
        self
    }

    /// Sets [`Options::state_machine`], the machine of every stream without a prefix match.
    #[must_use]
    pub fn state_machine(mut self, machine: impl StateMachine + 'static) -> Self {
        self.options.state_machine = Arc::new(machine);
        self
    }

    /// Adds to [`Options::stream_machines`]: streams whose names start with `prefix` use
    /// `machine` (the longest matching prefix wins).
    #[must_use]
    pub fn stream_machine(
        mut self,
        prefix: impl Into<String>,
        machine: impl StateMachine + 'static,
    ) -> Self {
        self.options
            .stream_machines
            .push((prefix.into(), Arc::new(machine)));
        self
    }

    /// Sets [`Options::checkpoint_policy`]; build one with [`LevelPolicy::new`].
    #[must_use]
    pub fn checkpoint_policy(mut self, policy: LevelPolicy) -> Self {
        self.options.checkpoint_policy = policy;
        self
    }

    /// Sets [`Options::checkpoint_maps_max`].
    #[must_use]
    pub fn checkpoint_maps_max(mut self, maps: usize) -> Self {
        self.options.checkpoint_maps_max = maps;
        self
    }

    /// Sets [`Options::heavy_event_keys`].
    #[must_use]
    pub fn heavy_event_keys(mut self, keys: usize) -> Self {
        self.options.heavy_event_keys = keys;
        self
    }

    /// Sets [`Options::checkpoint_heads_max`].
    #[must_use]
    pub fn checkpoint_heads_max(mut self, heads: usize) -> Self {
        self.options.checkpoint_heads_max = heads;
        self
    }

    /// Sets [`Options::branch_memory_bytes`].
    #[must_use]
    pub fn branch_memory_bytes(mut self, bytes: u64) -> Self {
        self.options.branch_memory_bytes = bytes;
        self
    }

    /// Sets [`Options::branch_memory_policy`].
    #[must_use]
    pub fn branch_memory_policy(mut self, policy: BranchMemoryPolicy) -> Self {
        self.options.branch_memory_policy = policy;
        self
    }

    /// Sets [`Options::classifier`] (a closure `|stream, kind| -> Durability` works).
    #[must_use]
    pub fn classifier(mut self, classifier: impl Classifier + 'static) -> Self {
        self.options.classifier = Arc::new(classifier);
        self
    }

    /// Sets [`Options::metrics`].
    #[must_use]
    pub fn metrics(mut self, record: bool) -> Self {
        self.options.metrics = record;
        self
    }

    /// Opens the engine.
    ///
    /// # Errors
    /// As [`Engine::open`].
    pub fn open(self) -> Result<Engine> {
        Engine::open(&self.dir, self.options)
    }
}
