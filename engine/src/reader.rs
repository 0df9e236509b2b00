//! [`Reader`]: the reads every handle on a store offers, so that code which only reads (a
//! projection, a CLI command, a search worker) works with any of them. [`Engine`] implements it
//! by delegating to its own methods of the same names.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use helios_log::{Lsn, StreamId, Version};
use helios_replay::{Aggregate, View};

use crate::Engine;
use crate::error::Result;
use crate::read::{GlobalIter, ReadIter, StreamInfo, Streams};

/// What every handle on a store can read. Implemented by [`Engine`]; a read-only handle (in
/// another process) offers the same reads.
pub trait Reader {
    /// The head version of `stream`, or `None` if no such stream exists.
    fn head(&self, stream: &str) -> Option<Version>;

    /// `stream`'s id and head, if it exists.
    fn stream(&self, stream: &str) -> Option<StreamInfo>;

    /// The name of stream `id`, deleted streams included.
    fn stream_name(&self, id: StreamId) -> Option<String>;

    /// Every stream, by id, a page at a time.
    fn streams(&self) -> Streams<'_>;

    /// The events of `stream` whose versions fall in `versions`, clamped to `1..=head`.
    ///
    /// # Errors
    /// As [`Engine::read`].
    fn read(&self, stream: &str, versions: impl RangeBounds<Version>) -> Result<ReadIter<'_>>;

    /// Every event of every stream in log order, from `from`.
    ///
    /// # Errors
    /// As [`Engine::events_from`].
    fn events_from(&self, from: Lsn) -> Result<GlobalIter<'_>>;

    /// The state of `stream` at `version`.
    ///
    /// # Errors
    /// As [`Engine::view`].
    fn view(&self, stream: &str, version: Version) -> Result<View>;

    /// The whole state of `stream` at `version`, owned: every key and value in key order.
    ///
    /// # Errors
    /// As [`Engine::view`].
    fn state_at(&self, stream: &str, version: Version) -> Result<BTreeMap<Vec<u8>, Vec<u8>>> {
        Ok(self.view(stream, version)?.to_map())
    }

    /// The typed aggregate `A` of `stream` at `version`.
    ///
    /// # Errors
    /// As [`Engine::aggregate_at`].
    fn aggregate_at<A: Aggregate>(&self, stream: &str, version: Version) -> Result<A>
    where
        Self: Sized,
    {
        let view = self.view(stream, version)?;
        helios_replay::load_aggregate::<A>(&view).map_err(|source| crate::Error::Aggregate {
            stream: stream.to_owned(),
            version,
            source,
        })
    }
}

impl Reader for Engine {
    fn head(&self, stream: &str) -> Option<Version> {
        Engine::head(self, stream)
    }

    fn stream(&self, stream: &str) -> Option<StreamInfo> {
        Engine::stream(self, stream)
    }

    fn stream_name(&self, id: StreamId) -> Option<String> {
        Engine::stream_name(self, id)
    }

    fn streams(&self) -> Streams<'_> {
        Engine::streams(self)
    }

    fn read(&self, stream: &str, versions: impl RangeBounds<Version>) -> Result<ReadIter<'_>> {
        Engine::read(self, stream, versions)
    }

    fn events_from(&self, from: Lsn) -> Result<GlobalIter<'_>> {
        Engine::events_from(self, from)
    }

    fn view(&self, stream: &str, version: Version) -> Result<View> {
        Engine::view(self, stream, version)
    }
}
