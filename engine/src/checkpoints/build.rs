//! The checkpoint builder: follows each stream's durable, indexed events and writes the
//! checkpoint files the level policy asks for, off the append path.
//!
//! For each stream it works on, the builder keeps a [`Head`]: the full state at the last event
//! it applied, and per level the keys changed since the last checkpoint of the level above.
//! At a version `v` of level `i` it writes, from memory and without reading any file:
//! - at the top level and at the anchor (the first checkpoint), the full state;
//! - below it, a delta: every key changed since its base (`LevelPolicy::base_of`: the
//!   checkpoint of the level above, `v - v % fanout^(i+1)`, or the anchor in the first
//!   window), with its value at `v`, or a tombstone if it is deleted;
//! - and after a *heavy* event (one that changed at least `CheckpointOptions::heavy_event_keys` keys) at
//!   a version without a checkpoint, the full state at that version, at level 0
//!   ([`HEAVY_LEVEL`]), so that no view has to replay it.
//!
//! Appends never wait for it: it runs on its own thread (or inside [`Checkpoints::sync`]),
//! reads events through the index like any reader, and streams are built in parallel with
//! rayon. It only builds from events the flusher has indexed, which are durable, so no
//! checkpoint ever describes an event a crash can take back.
//!
//! Invariants:
//! - `Head::state` is exactly the stream's state at `Head::version`, and `Head::dirty[j]` holds
//!   every key changed in `(m, Head::version]` where `m` is the last multiple of
//!   `fanout^(j+2)` at or below `Head::version`, or the anchor if that multiple is 0 and the
//!   anchor is at or below `Head::version` (a superset is harmless: a delta may repeat a value
//!   the layer above already has).
//! - `Builder::built[s]` is a version up to which every checkpoint of stream `s` has been
//!   written (or queued for a rebuild). A stream without an entry has been built up to its
//!   newest checkpoint in the store (an open's gaps are queued for rebuilds).
//!
//! [`Checkpoints::sync`]: crate::Checkpoints::sync

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use helios_checkpoint::{CheckpointMeta, HEAVY_LEVEL, LevelPolicy, MemRun, encode_checkpoint};
use helios_log::{StreamId, Version};
use helios_replay::{Base, LayerInfo, Overlay, StateMachine, replay};
use rayon::prelude::*;

use crate::catalog::Ancestry;
use crate::engine::{Inner, lock};
use crate::error::{Error, Result};

/// A stream's state at the last event the builder applied.
pub(crate) struct Head {
    version: u64,
    /// The full state (no tombstones).
    state: Arc<MemRun>,
    /// `dirty[j]`: keys changed since the base of the next level-`j + 1` checkpoint.
    dirty: Vec<BTreeSet<Vec<u8>>>,
    /// The round that last used it, for eviction.
    last_used: u64,
}

impl Head {
    fn empty(policy: &LevelPolicy) -> Head {
        Head {
            version: 0,
            state: Arc::new(MemRun::new()),
            dirty: vec![BTreeSet::new(); policy.levels() as usize - 1],
            last_used: 0,
        }
    }
}

/// A stream the builder stopped on: its state machine rejected (or panicked on) an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StalledStream {
    /// The stream.
    pub stream: String,
    /// The event the machine refused.
    pub version: Version,
    /// The machine's reason.
    pub reason: String,
}

/// The builder's memory: see the module documentation.
#[derive(Default)]
pub(crate) struct Builder {
    heads: HashMap<StreamId, Head>,
    built: HashMap<StreamId, u64>,
    stalled: HashMap<StreamId, StalledStream>,
    round: u64,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("heads", &self.heads.len())
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A builder that has built nothing yet: it asks the store for each stream's newest
    /// checkpoint.
    pub(crate) fn new() -> Builder {
        Builder::default()
    }

    /// Streams stopped on an event their machine refused.
    pub(crate) fn stalled(&self) -> Vec<StalledStream> {
        let mut out: Vec<_> = self.stalled.values().cloned().collect();
        out.sort_by(|a, b| a.stream.cmp(&b.stream));
        out
    }
}

/// The first version after `after` at which the policy takes a checkpoint.
fn next_checkpoint(policy: &LevelPolicy, after: u64) -> u64 {
    let f = policy.first_interval();
    (after / f + 1) * f
}

/// One stream's work in a round.
struct Job {
    id: StreamId,
    name: Arc<str>,
    machine: Arc<dyn StateMachine>,
    /// The machine's number in the store's machine table, stamped in each checkpoint.
    machine_number: u16,
    /// Whose checkpoints hold the states the stream shares with its sources, if it is a fork.
    ancestry: Ancestry,
    target: u64,
    head: Option<Head>,
    rebuild: bool,
}

/// What a job did.
struct Done {
    id: StreamId,
    name: Arc<str>,
    target: u64,
    rebuild: bool,
    head: Option<Head>,
    outcome: Result<()>,
}

impl Inner {
    /// Builds every checkpoint due for the streams queued since the last round, and rebuilds
    /// the missing or damaged ones. Returns whether there was anything to do.
    pub(crate) fn checkpoint_round(&self, builder: &mut Builder) -> Result<bool> {
        builder.round += 1;
        let round = builder.round;
        let policy = *self.store.policy();
        let queued = self.take_checkpoint_queue();
        let rebuilds = self.store.take_rebuilds();
        if queued.is_empty() && rebuilds.is_empty() {
            return Ok(false);
        }
        let mut jobs = Vec::new();
        let mut deferred = Vec::new();
        {
            let cat = lock(&self.catalog);
            for id in queued {
                let Some(st) = cat.get(id) else { continue };
                // A fork's checkpoints up to its fork point are its source's.
                let shared = st.fork.map_or(0, |f| f.at.0);
                // A stream not built this session: its newest checkpoint (an open lists none).
                let built = match builder.built.get(&id) {
                    Some(&built) => built,
                    None => self.store.latest(id).unwrap_or(0),
                }
                .max(shared);
                let target = st.durable_head.0;
                // A deleted stream gets no new checkpoints (its old ones serve its forks).
                if builder.stalled.contains_key(&id) || target <= built || st.deleted.is_some() {
                    continue;
                }
                let cached = builder.heads.contains_key(&id);
                if !cached && next_checkpoint(&policy, built) > target {
                    // Nothing due yet; loading the head can wait until something is.
                    continue;
                }
                jobs.push(Job {
                    id,
                    name: Arc::from(st.name),
                    machine: self.plugins.machine_for(st.name).clone(),
                    machine_number: 0,
                    ancestry: self.ancestry(&cat, id, st),
                    target,
                    head: builder.heads.remove(&id),
                    rebuild: false,
                });
            }
            for (id, version) in rebuilds {
                let Some(st) = cat.get(id) else { continue };
                if builder.stalled.contains_key(&id) || self.store.contains(id, version) {
                    continue;
                }
                // One job per stream per round: two jobs of one stream could write the same
                // checkpoint at once.
                if version > st.durable_head.0 || jobs.iter().any(|j: &Job| j.id == id) {
                    deferred.push((id, version));
                    continue;
                }
                jobs.push(Job {
                    id,
                    name: Arc::from(st.name),
                    machine: self.plugins.machine_for(st.name).clone(),
                    machine_number: 0,
                    ancestry: self.ancestry(&cat, id, st),
                    target: version,
                    head: None,
                    rebuild: true,
                });
            }
        }
        self.store.requeue_rebuilds(deferred);
        if jobs.is_empty() {
            return Ok(false);
        }
        // Which machine builds each checkpoint, numbered in the store's machine table before
        // any is written: an open with another machine for the stream does not read them.
        for job in &mut jobs {
            job.machine_number = self.store.machine_number(job.machine.name())?;
        }
        // A single job (a small store's usual round: one stream crossed a checkpoint) runs on
        // this thread: handing it to the rayon pool would cost two thread wake-ups and gain
        // nothing to run beside it.
        let done: Vec<Done> = if jobs.len() == 1 {
            jobs.into_iter()
                .map(|job| self.run_job(job, &policy))
                .collect()
        } else {
            jobs.into_par_iter()
                .map(|job| self.run_job(job, &policy))
                .collect()
        };
        // Readers in other processes see this round's checkpoints from here.
        let published = self.store.publish();
        let mut first_error = None;
        for done in done {
            match done.outcome {
                Ok(()) => {
                    if done.rebuild {
                        // What is stacked on the rebuilt checkpoint: up to the next one of
                        // its level or above.
                        let level = policy.level_at(done.target).unwrap_or(1);
                        let next = policy.dependents_end(done.target, level);
                        self.store.probe(done.id, done.target + 1..next);
                    } else {
                        builder.built.insert(done.id, done.target);
                    }
                }
                Err(Error::Replay {
                    version, source, ..
                }) => {
                    builder.stalled.insert(
                        done.id,
                        StalledStream {
                            stream: done.name.to_string(),
                            version,
                            reason: source.to_string(),
                        },
                    );
                }
                Err(e) => {
                    if done.rebuild {
                        self.store.requeue_rebuilds([(done.id, done.target)]);
                    } else {
                        self.queue_for_checkpoints([done.id]);
                    }
                    first_error.get_or_insert(e);
                }
            }
            if let Some(mut head) = done.head
                && !done.rebuild
            {
                head.last_used = round;
                builder.heads.insert(done.id, head);
            }
        }
        published?;
        evict_heads(builder, self.options.checkpoints.heads_max);
        *lock(&self.stalled) = builder.stalled();
        match first_error {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    fn run_job(&self, mut job: Job, policy: &LevelPolicy) -> Done {
        let mut head = job.head.take();
        let head_ref = match &mut head {
            Some(h) if h.version <= job.target => h,
            slot => slot.insert(self.load_head(&job.ancestry, job.target, policy)),
        };
        let outcome = self.build_forward(&job, head_ref).map_err(|e| match e {
            Error::Replay {
                version, source, ..
            } => Error::Replay {
                stream: job.name.to_string(),
                version,
                source,
            },
            e => e,
        });
        Done {
            id: job.id,
            name: job.name,
            target: job.target,
            rebuild: job.rebuild,
            head,
            outcome,
        }
    }

    /// The head at the newest valid full checkpoint at or below `at` (or the empty state); for
    /// a fork, possibly one of its source's.
    fn load_head(&self, ancestry: &Ancestry, at: u64, policy: &LevelPolicy) -> Head {
        let mut below = at;
        while let Some((owner, version)) = self.latest_full_at_or_below(ancestry, below) {
            // A damaged file leaves the catalog in `get`, so the next lookup finds an older one.
            if let Some(checkpoint) = self.store.get(owner, version) {
                use helios_checkpoint::SortedRun as _;
                let state: MemRun = checkpoint
                    .range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                    .filter_map(|(k, v)| Some((k.to_vec(), Some(v?.to_vec()))))
                    .collect();
                let mut head = Head::empty(policy);
                head.version = version;
                head.state = Arc::new(state);
                return head;
            }
            if version == 0 {
                break;
            }
            below = version - 1;
        }
        Head::empty(policy)
    }

    /// Applies events `head.version + 1..=target` to `head`, writing every checkpoint on the
    /// way that the catalog does not have yet (a fork's, only past its fork point).
    fn build_forward(&self, job: &Job, head: &mut Head) -> Result<()> {
        let (id, machine, target) = (job.id, &*job.machine, job.target);
        let shared = job.ancestry.shared_until();
        let policy = *self.store.policy();
        while head.version < target {
            let to = next_checkpoint(&policy, head.version).min(target);
            let events = self
                .events_of(id, Version(head.version + 1), Version(to))
                .map(|e| e.map(|e| e.payload))
                .collect::<Result<Vec<_>>>()?;
            // One event at a time, to see how many keys each changes.
            for event in &events {
                let changed = apply(machine, head, std::slice::from_ref(event))?;
                let at = head.version;
                if changed >= self.options.checkpoints.heavy_event_keys
                    && policy.level_at(at).is_none()
                    && at > shared
                {
                    self.write_missing(job, head, HEAVY_LEVEL, &policy)?;
                }
            }
            if let Some(level) = policy.level_at(to)
                && to > shared
            {
                self.write_missing(job, head, level, &policy)?;
            }
            if let Some(level) = policy.level_at(to) {
                // `to` is a multiple of fanout^level: the sets of the levels below restart,
                // and all of them at the anchor, the base of every delta of the first window.
                let restart = if policy.anchor() == Some(to) {
                    policy.levels()
                } else {
                    level
                };
                for (j, keys) in head.dirty.iter_mut().enumerate() {
                    if j + 2 <= restart as usize {
                        keys.clear();
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the checkpoint of `level` at the head's version unless the catalog has it, and
    /// records it.
    fn write_missing(
        &self,
        job: &Job,
        head: &Head,
        level: u32,
        policy: &LevelPolicy,
    ) -> Result<()> {
        let (id, at) = (job.id, head.version);
        if self.store.contains(id, at) {
            return Ok(());
        }
        let start = self.metrics.start();
        let (bytes, base) = encode(id, job.machine_number, head, level, policy)?;
        self.store
            .write(id, at, level, base, job.machine_number, &bytes)?;
        self.metrics.finish(crate::Metric::CheckpointBuild, start);
        self.store.count_written(id, at);
        Ok(())
    }
}

/// Encodes the checkpoint of `level` at the head's version: its full state, or a delta of the
/// keys changed since the version its level's deltas are against. Returns the bytes and the
/// base they are a delta against (0 for a full state).
fn encode(
    id: StreamId,
    machine: u16,
    head: &Head,
    level: u32,
    policy: &LevelPolicy,
) -> Result<(Vec<u8>, u64)> {
    let version = head.version;
    let level_byte = u8::try_from(level).unwrap_or(u8::MAX);
    let state = head.state.entries();
    // Level 0 (after a heavy event) and the top level have no dirty set: full states.
    let changed = level
        .checked_sub(1)
        .and_then(|l| head.dirty.get(l as usize));
    // A delta that would hold every key of the state is written as the full state instead:
    // no larger, and a view of its version then reads this one layer, not those under it.
    let base = match changed {
        Some(changed) if state.len() > changed.len() => policy.base_of(version, level),
        _ => 0,
    };
    let bytes = match changed {
        Some(changed) if base != 0 => {
            let meta = CheckpointMeta::delta(id.0, version, level_byte, base).with_machine(machine);
            let entries = changed
                .iter()
                .map(|k| (k, state.get(k).and_then(Option::as_ref)));
            encode_checkpoint(meta, entries)?
        }
        _ => {
            let meta = CheckpointMeta::full(id.0, version, level_byte).with_machine(machine);
            encode_checkpoint(meta, state.iter().map(|(k, v)| (k, v.as_ref())))?
        }
    };
    Ok((bytes, base))
}

/// Replays `events` into `head`; on a refused event, keeps the events before it applied and
/// reports it with its version. Returns how many keys the events changed.
fn apply(machine: &dyn StateMachine, head: &mut Head, events: &[Vec<u8>]) -> Result<usize> {
    let base = Base::new().with_layer_below(LayerInfo::new(0, head.version), head.state.clone());
    let mut overlay = Overlay::new();
    let outcome = replay(machine, &base, &mut overlay, events);
    drop(base);
    let state = Arc::make_mut(&mut head.state);
    for (key, value) in overlay.changes().iter() {
        match value {
            Some(value) => state.put(key, value),
            None => state.remove(key),
        }
        for keys in &mut head.dirty {
            keys.insert(key.to_vec());
        }
    }
    head.version += overlay.events_replayed();
    outcome.map_err(|source| Error::Replay {
        stream: String::new(),
        version: Version(head.version + 1),
        source,
    })?;
    Ok(overlay.changes().len())
}

/// Drops the least recently used heads beyond `max`.
fn evict_heads(builder: &mut Builder, max: usize) {
    if builder.heads.len() <= max {
        return;
    }
    let mut by_age: Vec<(u64, StreamId)> = builder
        .heads
        .iter()
        .map(|(id, h)| (h.last_used, *id))
        .collect();
    by_age.sort_unstable();
    let excess = builder.heads.len() - max;
    for (_, id) in by_age.into_iter().take(excess) {
        builder.heads.remove(&id);
    }
}
