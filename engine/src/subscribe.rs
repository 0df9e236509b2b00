//! Catch-up subscriptions: [`Subscription`], from [`Engine::subscribe`] (every event of the
//! store, in log order) and [`Engine::subscribe_stream`] (one stream's events, in version
//! order). A subscription delivers every durable event after its starting position, in order,
//! then waits for new ones.
//!
//! Invariants:
//! - Only durable events are delivered (LSN at or below the log's synced LSN): a subscriber
//!   never sees an event that a crash could take back.
//! - Delivery is gap-free and exactly once per subscription: each event delivered is the one
//!   right after the previous (by LSN for the store, by version for a stream). Resuming from
//!   the last position a consumer persisted delivers the next event first.
//! - A subscription pulls: it reads the log (or the stream's index) at its own pace, holding at
//!   most [`PENDING_EVENTS_MAX`] events or [`PENDING_BYTES_MAX`] bytes of payload (or one
//!   bigger event) read ahead. The writer never waits for it and keeps nothing for it; a sync
//!   only wakes the subscriptions that wait.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use helios_log::{Location, Lsn, RecordKind, StreamId, Version};

use crate::Engine;
use crate::engine::lock;
use crate::error::{Error, Result};
use crate::read::Event;

/// Most events a subscription reads ahead of its consumer.
pub const PENDING_EVENTS_MAX: usize = 1024;

/// Most payload bytes a subscription reads ahead of its consumer (one bigger event is read on
/// its own).
pub const PENDING_BYTES_MAX: usize = 4 << 20;

/// A catch-up subscription (see the module documentation). Borrow of the engine: the engine
/// cannot close while one is alive.
#[derive(Debug)]
pub struct Subscription<'e> {
    engine: &'e Engine,
    source: Source,
    pending: VecDeque<Event>,
}

#[derive(Debug)]
enum Source {
    /// Every event of the store; `next` is the first LSN not read yet, `resume` the location
    /// of the record before it, once known.
    All { next: Lsn, resume: Option<Location> },
    /// One stream's events; `next` is the first version not read yet. The stream is looked up
    /// by name until it exists, then followed by id.
    Stream {
        name: Arc<str>,
        id: Option<StreamId>,
        next: Version,
    },
}

impl Engine {
    /// Subscribes to every event of the store after LSN `after` (use [`Lsn::ZERO`] for the
    /// beginning; to resume, the LSN of the last event processed), in log order.
    #[must_use]
    pub fn subscribe(&self, after: Lsn) -> Subscription<'_> {
        Subscription {
            engine: self,
            source: Source::All {
                next: Lsn(after.0.saturating_add(1)),
                resume: None,
            },
            pending: VecDeque::new(),
        }
    }

    /// Subscribes to the events of `stream` after version `after` (use [`Version::ZERO`] for
    /// the beginning; to resume, the version of the last event processed), in version order.
    /// The stream need not exist yet: the subscription waits for it. If it is deleted, the
    /// subscription ends with [`Error::UnknownStream`].
    #[must_use]
    pub fn subscribe_stream(&self, stream: &str, after: Version) -> Subscription<'_> {
        Subscription {
            engine: self,
            source: Source::Stream {
                name: Arc::from(stream),
                id: None,
                next: Version(after.0.saturating_add(1)),
            },
            pending: VecDeque::new(),
        }
    }
}

impl Subscription<'_> {
    /// The next event, if a durable one is there now; never waits.
    ///
    /// # Errors
    /// Log and index errors; [`Error::UnknownStream`] once a followed stream is deleted.
    pub fn try_next(&mut self) -> Result<Option<Event>> {
        if self.pending.is_empty() {
            self.fill()?;
        }
        Ok(self.pending.pop_front())
    }

    /// The next event, waiting for it up to `timeout`; `None` if none became durable by then.
    ///
    /// # Errors
    /// As [`Subscription::try_next`]; [`Error::Log`] when the log was poisoned by a failed
    /// write (no event will come).
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            // Read the durable LSN before looking: whatever becomes durable after it wakes
            // the wait below.
            let durable = self.engine.inner.log.synced_lsn();
            if let Some(event) = self.try_next()? {
                return Ok(Some(event));
            }
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Ok(None);
            }
            self.engine.inner.log.check_poison()?;
            self.engine.inner.log.wait_synced_past(durable, left);
        }
    }

    /// Reads ahead: the next durable events, within the read-ahead bounds.
    fn fill(&mut self) -> Result<()> {
        let durable = self.engine.inner.log.synced_lsn();
        match &mut self.source {
            Source::All { next, resume } => {
                if *next > durable {
                    return Ok(());
                }
                let mut bytes = 0;
                for record in self.engine.inner.log.iter_durable(*next, *resume) {
                    let record = record?;
                    *next = Lsn(record.header.lsn.0 + 1);
                    *resume = Some(record.location);
                    if record.header.kind == RecordKind::Event {
                        bytes += record.payload.len();
                        self.pending.push_back(record.into());
                        if self.pending.len() >= PENDING_EVENTS_MAX || bytes >= PENDING_BYTES_MAX {
                            break;
                        }
                    }
                }
            }
            Source::Stream { name, id, next } => {
                let inner = &self.engine.inner;
                let head = {
                    let cat = lock(&inner.catalog);
                    let found = cat.lookup(name);
                    match (*id, found) {
                        (None, None) => return Ok(()),
                        (None, Some(found)) => *id = Some(found),
                        (Some(bound), found) if found != Some(bound) => {
                            return Err(Error::UnknownStream {
                                stream: name.to_string(),
                            });
                        }
                        _ => {}
                    }
                    let Some(st) = id.and_then(|id| cat.get(id)) else {
                        return Ok(());
                    };
                    st.head
                };
                let Some(stream) = *id else {
                    return Ok(());
                };
                if *next > head {
                    return Ok(());
                }
                let last = Version(head.0.min(next.0 + PENDING_EVENTS_MAX as u64 - 1));
                let mut bytes = 0;
                for event in inner.events_of(stream, *next, last) {
                    let event = event?;
                    if event.lsn > durable {
                        break;
                    }
                    *next = Version(event.version.0 + 1);
                    bytes += event.payload.len();
                    self.pending.push_back(event);
                    if bytes >= PENDING_BYTES_MAX {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}
