//! A thread's stream as one saver call sees it: `Thread` (its name, id and the view of its
//! index at the head, reused by later reads while the head stays) and `Records` (the records
//! the call reads, each read from the log once and decoded on demand), with the stream name of
//! a thread.

use std::collections::HashMap;
use std::sync::Arc;

use helios::{Appended, Engine, REPLAY_MAX, StreamId, StreamInfo, Version, View};

use crate::record::{self, Record, SAVER_STREAM_PREFIX, SaverMachine};
use crate::saver::SaverCore;
use crate::saver_error::{CoreError, CoreResult};

/// A thread's stream as of one read: its name, id, head and the view of its index there.
pub(crate) struct Thread {
    /// Its stream's name.
    pub(crate) name: String,
    /// Its stream's id (the cache's key: a recreated thread is another stream).
    pub(crate) id: StreamId,
    /// The version `view` is at: the stream's head when it was read.
    pub(crate) head: Version,
    /// The saver's index of the thread at its head.
    pub(crate) view: View,
}

/// The records of one thread read during one call, each read from the log once.
pub(crate) struct Records<'t> {
    /// The thread read.
    pub(crate) thread: &'t Thread,
    payloads: HashMap<u64, Vec<u8>>,
}

impl<'t> Records<'t> {
    /// A set of records of `thread`, none read yet: each is read on first use.
    pub(crate) fn new(thread: &'t Thread) -> Records<'t> {
        Records {
            thread,
            payloads: HashMap::new(),
        }
    }

    /// The payload of the record at `version`, read from the log on first use.
    fn payload(&mut self, engine: &Engine, version: u64) -> CoreResult<&[u8]> {
        if !self.payloads.contains_key(&version) {
            let mut events = engine.read(&self.thread.name, Version(version)..=Version(version))?;
            let event = match events.next() {
                Some(event) => event?,
                None => {
                    return Err(CoreError::Corrupt(format!(
                        "the index of stream `{}` points at version {version}, which it does not have",
                        self.thread.name
                    )));
                }
            };
            self.payloads.insert(version, event.payload);
        }
        Ok(self.payloads.get(&version).map_or(&[][..], Vec::as_slice))
    }

    /// The record at `version`, decoded.
    pub(crate) fn record(&mut self, engine: &Engine, version: u64) -> CoreResult<Record<'_>> {
        let name = self.thread.name.clone();
        let payload = self.payload(engine, version)?;
        record::decode(payload)
            .map_err(|e| CoreError::Corrupt(format!("stream `{name}`, version {version}: {e}")))
    }
}

/// A `CoreError::Corrupt` naming the thread's stream.
pub(crate) fn corrupt(thread: &Thread, what: impl std::fmt::Display) -> CoreError {
    CoreError::Corrupt(format!("stream `{}`: {what}", thread.name))
}

/// The stream of a thread.
pub(crate) fn stream_name(thread_id: &str) -> String {
    format!("{SAVER_STREAM_PREFIX}{thread_id}")
}

impl Thread {
    /// The thread's stream at its head, or `None` if it has no event.
    pub(crate) fn at_head(engine: &Engine, thread_id: &str) -> CoreResult<Option<Thread>> {
        let name = stream_name(thread_id);
        match engine.stream(&name) {
            Some(info) => Thread::at(engine, name, &info),
            None => Ok(None),
        }
    }

    /// The stream `info` describes (named `name`) at its head, or `None` if it has no event.
    fn at(engine: &Engine, name: String, info: &StreamInfo) -> CoreResult<Option<Thread>> {
        if info.head == Version::ZERO {
            return Ok(None);
        }
        let view = engine.view(&name, info.head)?;
        Ok(Some(Thread {
            name,
            id: info.id,
            head: info.head,
            view,
        }))
    }
}

impl SaverCore {
    /// The thread's stream at its head, or `None` if it has no event: the one an earlier call
    /// built if the stream (same id) has not moved since, so that reads of a thread between
    /// two writes build its view once. A view is the state at one version, so an unmoved head
    /// means an unchanged view.
    pub(crate) fn thread(
        &self,
        engine: &Engine,
        thread_id: &str,
    ) -> CoreResult<Option<Arc<Thread>>> {
        let name = stream_name(thread_id);
        let Some(info) = engine.stream(&name) else {
            return Ok(None);
        };
        let cached = self.thread_views().get(&name).cloned();
        if let Some(thread) = cached.filter(|t| t.id == info.id && t.head == info.head) {
            return Ok(Some(thread));
        }
        let Some(thread) = Thread::at(engine, name.clone(), &info)? else {
            return Ok(None);
        };
        let thread = Arc::new(thread);
        self.thread_views().put(name, thread.clone());
        Ok(Some(thread))
    }

    /// Keeps the view of `thread` after this call appended `payload` as the stream's next
    /// event (`appended`): the same view with that event replayed on top, so that the next
    /// call on the thread (a put follows a put) builds none. Nothing is kept when another event
    /// came first (the stream was no longer at `thread.head`), or when the view already carries
    /// `REPLAY_MAX` events over its checkpoints: the next read builds one from the engine,
    /// which starts from a newer checkpoint.
    pub(crate) fn thread_appended(&self, thread: &Thread, appended: &Appended, payload: &[u8]) {
        let next = Version(thread.head.0 + 1);
        if appended.stream != thread.id || appended.first != next || appended.last != next {
            return;
        }
        if thread.view.report().events_replayed >= REPLAY_MAX {
            return;
        }
        // The engine applied the same machine to the same bytes when it took the append, so
        // this cannot fail; if it did, the next read would build the view from the engine.
        let Ok(view) = thread.view.extended(&SaverMachine, [payload]) else {
            return;
        };
        let kept = Thread {
            name: thread.name.clone(),
            id: thread.id,
            head: next,
            view,
        };
        self.thread_views().put(kept.name.clone(), Arc::new(kept));
    }
}
