//! Group commit: appended records made durable with one `fdatasync` per group of waiting
//! threads rather than one per thread.
//!
//! A thread that needs durability registers its LSN. If no sync is running it becomes the
//! leader: it gathers (see [`Log::sync_to`]), writes out the buffer under the writer lock,
//! syncs outside it, publishes the durable LSN in an atomic and unparks exactly the threads it
//! covered, plus one uncovered waiter to lead next. The others wait as `Log::wait_near`
//! describes.
//!
//! Invariants:
//! - The durable LSN only grows, and only to an LSN whose bytes a successful `fdatasync` has
//!   covered (this leader's, or a roll's, which syncs the segment it seals).
//! - A waiter returns `Ok` only once a sync covers its LSN. What was durable before a failure
//!   stays durable, so coverage is checked before poisoning.
//! - A failed `fdatasync` poisons the log and wakes every waiter, so that all of them see it.
//! - The leader never holds `sync` while it takes `writer` (the lock order is in `mod.rs`).

use std::sync::atomic::Ordering;
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::{Log, lock};
use crate::error::{LogError, Result};
use crate::format;
use crate::types::{Lsn, Position};

/// Longest time a group-commit leader waits for more waiters before it syncs.
pub const GATHER_MAX: Duration = Duration::from_micros(200);

/// The group commit's state, behind the `sync` lock.
#[derive(Debug, Default)]
pub(super) struct SyncState {
    leader_active: bool,
    /// Threads inside `sync_to` whose LSN no completed sync covers yet, each parked until a
    /// leader covers it or hands it the leadership.
    waiting: Vec<(Lsn, Thread)>,
    /// How many waiters the last sync covered: the group size the next leader gathers for.
    last_group: usize,
    /// How long the last fdatasync took.
    last_sync: Duration,
    /// When the running sync started (`None` while its leader still gathers, or when idle).
    sync_started: Option<Instant>,
}

impl Log {
    /// The last LSN known durable.
    #[must_use]
    pub fn synced_lsn(&self) -> Lsn {
        Lsn(self.synced.load(Ordering::Acquire))
    }

    /// Returns once every record up to `lsn` is durable. Concurrent callers share syncs: one of
    /// them (the leader) writes out and syncs everything appended so far while the others wait,
    /// so N threads waiting at once cost about one fdatasync.
    ///
    /// Before syncing, a leader gathers: it waits until as many threads wait as the previous
    /// sync covered, for at most the previous sync's duration (and never more than
    /// [`GATHER_MAX`]). Without this, threads woken by a sync reach their next append only
    /// after the fastest one has already started the next sync alone, and the group splits in
    /// two halves that alternate. A lone thread never waits (its previous group was itself).
    ///
    /// # Errors
    /// [`LogError::Poisoned`] if this or an earlier sync failed.
    pub fn sync_to(&self, lsn: Lsn) -> Result<()> {
        if self.synced_lsn() >= lsn {
            return Ok(());
        }
        let mut st = lock(&self.sync);
        st.waiting.push((lsn, std::thread::current()));
        // Wake a gathering leader only when its group is complete: one wake-up per group.
        if st.leader_active && st.waiting.len() >= st.last_group {
            self.arrival_cv.notify_one();
        }
        loop {
            // Durable before any failure is durable: check coverage before poisoning.
            if self.synced_lsn() >= lsn {
                return Ok(());
            }
            if let Err(e) = self.check_poison() {
                let me = std::thread::current().id();
                st.waiting.retain(|(l, t)| !(*l == lsn && t.id() == me));
                return Err(e);
            }
            if st.leader_active {
                // While the leader still gathers, its sync starts about now: the group is
                // complete or nearly so when waiters arrive.
                let started = st.sync_started.unwrap_or_else(Instant::now);
                let expected_end = started + st.last_sync;
                drop(st);
                self.wait_near(expected_end, lsn);
                // `wait_near` may have consumed the wake-up of a leader that finished early (its
                // `park_timeout` takes the same token): look again, under the lock, before
                // parking. With no leader left, this thread leads (or is covered) at the top of
                // the loop instead of parking with nobody to wake it.
                st = lock(&self.sync);
                if self.synced_lsn() < lsn && !self.is_poisoned() && st.leader_active {
                    // Parked until the running leader covers this LSN or hands it the
                    // leadership. The leader unparks after releasing `sync`, so a wake-up sent
                    // before this park leaves a token and the park returns at once; a spurious
                    // wake-up just checks again.
                    drop(st);
                    std::thread::park();
                    st = lock(&self.sync);
                }
                continue;
            }
            st.leader_active = true;
            let deadline = Instant::now() + st.last_sync.min(GATHER_MAX);
            while st.waiting.len() < st.last_group {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .arrival_cv
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            let started = Instant::now();
            st.sync_started = Some(started);
            drop(st);
            let result = self.sync_now();
            let took = started.elapsed();
            st = lock(&self.sync);
            st.leader_active = false;
            st.sync_started = None;
            let wake: Vec<Thread> = match result {
                Ok(end) => {
                    let covered = self.mark_synced(&mut st, end.lsn);
                    st.last_group = covered.len();
                    st.last_sync = took;
                    // One uncovered waiter becomes the next leader, unless a newcomer is first.
                    let next = st.waiting.first().map(|(_, t)| t.clone());
                    covered.into_iter().chain(next).collect()
                }
                // Everybody must see the poisoning.
                Err(_) => st.waiting.drain(..).map(|(_, t)| t).collect(),
            };
            drop(st);
            for thread in wake {
                thread.unpark();
            }
            // After the waiters are on their way: readers elsewhere learn of it a few
            // microseconds later, and no acknowledgement waits for them.
            self.publish(result?);
            st = lock(&self.sync);
        }
    }

    /// Waits for the running sync (expected to end at `end`) to cover `lsn`: sleeps until
    /// shortly before `end`, then polls, yielding the CPU, until shortly after it.
    ///
    /// Why poll: a thread parked in the kernel is woken through the scheduler, and on a small
    /// VM waking an idle vCPU costs tens of microseconds per thread; with a group of eight, the
    /// wake-ups alone took about as long as the fdatasync. A waiter that is already running
    /// when the durable LSN moves goes straight back to its next append. The polling window is
    /// bounded ([`LogOptions::sync_poll_window_us`](super::LogOptions::sync_poll_window_us)
    /// each side of the expected end), so a waiter burns at most twice that in CPU, and only
    /// while concurrent critical appends wait on a sync.
    fn wait_near(&self, end: Instant, lsn: Lsn) {
        let window = Duration::from_micros(self.options.sync_poll_window_us);
        if window.is_zero() {
            return;
        }
        let now = Instant::now();
        if let Some(wake_at) = end.checked_sub(window)
            && now < wake_at
        {
            std::thread::park_timeout(wake_at - now);
        }
        let stop = end + window;
        while self.synced_lsn() < lsn && !self.is_poisoned() && Instant::now() < stop {
            std::thread::yield_now();
        }
    }

    /// Records that everything up to `target` is durable and removes the waiters that covers,
    /// returning their threads (to be unparked once the lock is released).
    pub(super) fn mark_synced(&self, st: &mut SyncState, target: Lsn) -> Vec<Thread> {
        self.synced.fetch_max(target.0, Ordering::AcqRel);
        // Pairs with the fence in `wait_synced_past`: either that waiter sees the new LSN, or
        // this sees the waiter and wakes it.
        std::sync::atomic::fence(Ordering::SeqCst);
        let watch = &self.durable_watch;
        if watch.waiters.load(Ordering::Relaxed) > 0 {
            let _guard = lock(&watch.lock);
            watch.cv.notify_all();
        }
        let mut covered = Vec::new();
        st.waiting.retain(|(lsn, thread)| {
            let done = *lsn <= target;
            if done {
                covered.push(thread.clone());
            }
            !done
        });
        covered
    }

    /// Waits until the durable LSN is past `lsn`, or `timeout` passes, or the log is poisoned;
    /// returns the durable LSN then. For followers of the log (subscriptions): a sync wakes
    /// them, and no write ever waits for them.
    pub fn wait_synced_past(&self, lsn: Lsn, timeout: Duration) -> Lsn {
        if self.synced_lsn() > lsn {
            return self.synced_lsn();
        }
        let deadline = Instant::now().checked_add(timeout);
        let watch = &self.durable_watch;
        watch.waiters.fetch_add(1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        let mut guard = lock(&watch.lock);
        while self.synced_lsn() <= lsn && !self.is_poisoned() {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                break;
            }
            guard = watch
                .cv
                .wait_timeout(guard, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        drop(guard);
        watch.waiters.fetch_sub(1, Ordering::Relaxed);
        self.synced_lsn()
    }

    /// Syncs everything appended so far; returns the durable LSN.
    ///
    /// # Errors
    /// As [`Log::sync_to`].
    pub fn sync_all(&self) -> Result<Lsn> {
        let target = self.appended_lsn();
        self.sync_to(target)?;
        Ok(target)
    }

    /// One leader's sync: write out under the writer lock, fdatasync outside it. Returns the
    /// position just past the last record synced.
    fn sync_now(&self) -> Result<Position> {
        let (file, path, end) = {
            let mut w = lock(&self.writer);
            self.check_poison()?;
            self.write_out(&mut w)?;
            self.unsynced_bytes.store(0, Ordering::Relaxed);
            (
                w.active.file.clone(),
                w.active.path.clone(),
                Position {
                    lsn: Lsn(w.next_lsn.0 - 1),
                    segment: w.active.id,
                    offset: w.flushed_end,
                },
            )
        };
        if let Err(e) = file.sync_data() {
            let error = LogError::io("fdatasync", &*path, e);
            return Err(self.poison(error.to_string()));
        }
        Ok(end)
    }

    /// Publishes `end` (durable) to readers in other processes: rewrites the published end's
    /// file in place if `end` is past what it says. Not synced: after a crash the file says
    /// less, never more, than what survived. A failure only leaves readers behind (the log's
    /// durability does not depend on it), so it is not an error of the sync.
    pub(super) fn publish(&self, end: Position) {
        let mut published = lock(&self.published);
        if end.lsn <= published.lsn {
            return;
        }
        let path = self.dir.join(format::PUBLISHED_END_FILE_NAME);
        if published.file.is_none() {
            let opened = match self.storage.open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.storage.create(&path),
                other => other,
            };
            published.file = opened.ok();
        }
        let Some(file) = &published.file else {
            return;
        };
        if file
            .write_all_at(&format::encode_published_end(end), 0)
            .is_ok()
        {
            published.lsn = end.lsn;
        }
    }
}
