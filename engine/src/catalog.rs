//! The in-memory stream catalog.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use helios_log::{Location, LogError, Lsn, RecordKind, RecordRef, StreamId, Version};

use crate::error::{Error, Result};

/// Longest stream name, in bytes.
pub const STREAM_NAME_LEN_MAX: usize = 1024;

#[derive(Debug)]
pub(crate) struct StreamState {
    pub(crate) name: Arc<str>,
    pub(crate) created: Lsn,
    pub(crate) head: Version,
    pub(crate) indexed_head: Version,
    /// The branch node the head is, when a promotion made it (`None` after a plain append).
    pub(crate) lineage: Option<crate::branches::Lineage>,
    pub(crate) recent: VecDeque<Location>,
    pub(crate) persisted: bool,
    pub(crate) dirty: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub(crate) by_name: HashMap<Arc<str>, StreamId>,
    /// Stream `id` is at index `id - 1`: ids are dense, assigned in LSN order.
    pub(crate) streams: Vec<StreamState>,
    pub(crate) dirty: Vec<StreamId>,
    /// The log's directory, for naming files in errors.
    pub(crate) log_dir: PathBuf,
    /// Location of the last record of each batch not yet covered by the recovery point.
    pub(crate) batch_ends: VecDeque<Location>,
    pub(crate) scratch: Vec<Location>,
}

impl Catalog {
    pub(crate) fn get(&self, id: StreamId) -> Option<&StreamState> {
        usize::try_from(id.0)
            .ok()?
            .checked_sub(1)
            .and_then(|i| self.streams.get(i))
    }

    pub(crate) fn get_mut(&mut self, id: StreamId) -> Option<&mut StreamState> {
        usize::try_from(id.0)
            .ok()?
            .checked_sub(1)
            .and_then(|i| self.streams.get_mut(i))
    }

    pub(crate) fn next_id(&self) -> StreamId {
        StreamId(self.streams.len() as u64 + 1)
    }

    pub(crate) fn mark_dirty(&mut self, id: StreamId) {
        if let Some(st) = self.get_mut(id)
            && !st.dirty
        {
            st.dirty = true;
            self.dirty.push(id);
        }
    }

    pub(crate) fn add_stream(
        &mut self,
        id: StreamId,
        name: &str,
        created: Lsn,
        head: Version,
        persisted: bool,
    ) {
        debug_assert_eq!(id, self.next_id(), "stream ids are dense");
        let name: Arc<str> = Arc::from(name);
        self.by_name.insert(name.clone(), id);
        self.streams.push(StreamState {
            name,
            created,
            head,
            indexed_head: head,
            lineage: None,
            recent: VecDeque::new(),
            persisted,
            dirty: false,
        });
    }

    /// Applies one recovered or appended record.
    pub(crate) fn apply(&mut self, record: &RecordRef<'_>, location: Location) -> Result<()> {
        let header = record.header;
        match header.kind {
            RecordKind::CreateStream => {
                if self.get(header.stream).is_some() {
                    return Ok(()); // Already known from fjall.
                }
                if header.stream != self.next_id() {
                    return Err(corrupt_record(
                        &self.log_dir,
                        &location,
                        format!(
                            "creates {} but the next stream id is {}",
                            header.stream,
                            self.next_id()
                        ),
                    ));
                }
                let name = std::str::from_utf8(record.payload).map_err(|_| {
                    corrupt_record(&self.log_dir, &location, "stream name is not UTF-8".into())
                })?;
                self.add_stream(header.stream, name, header.lsn, Version::ZERO, false);
                self.mark_dirty(header.stream);
            }
            RecordKind::Event => {
                let Some(st) = self.get_mut(header.stream) else {
                    return Err(corrupt_record(
                        &self.log_dir,
                        &location,
                        format!("event of unknown {}", header.stream),
                    ));
                };
                if header.version <= st.head {
                    return Ok(()); // Already indexed.
                }
                if header.version.0 != st.head.0 + 1 {
                    let reason = format!(
                        "{} of {} follows head {}",
                        header.version, header.stream, st.head
                    );
                    return Err(corrupt_record(&self.log_dir, &location, reason));
                }
                st.head = header.version;
                st.recent.push_back(location);
                self.mark_dirty(header.stream);
            }
        }
        if header.batch_left == 0 {
            self.batch_ends.push_back(location);
        }
        Ok(())
    }
}

pub(crate) fn corrupt_record(log_dir: &Path, location: &Location, reason: String) -> Error {
    Error::Log(LogError::Corrupt {
        path: log_dir.join(helios_log::segment_name(location.segment)),
        offset: location.offset,
        reason: format!("{}: {reason}", location.lsn),
    })
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > STREAM_NAME_LEN_MAX {
        "it is longer than 1024 bytes"
    } else if name.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(Error::InvalidStreamName {
        stream: name.to_owned(),
        reason,
    })
}
