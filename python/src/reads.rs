//! The reads `Store` and `Reader` share, over the engine's read trait (which both
//! `helios::Engine` and `helios::ReadOnly` implement); the callers run them with the GIL
//! released.

use helios::{Reader, Version};

use crate::results::StreamInfo;
use crate::view::View;

/// `version`, or the stream's head when `None`.
pub(crate) fn version_or_head(
    reader: &impl Reader,
    stream: &str,
    version: Option<u64>,
) -> helios::Result<u64> {
    match version {
        Some(v) => Ok(v),
        None => reader
            .head(stream)
            .map(|h| h.0)
            .ok_or_else(|| helios::Error::UnknownStream {
                stream: stream.to_owned(),
            }),
    }
}

/// Every stream, by id.
pub(crate) fn streams(reader: &impl Reader) -> Vec<StreamInfo> {
    reader
        .streams()
        .map(|s| StreamInfo {
            name: s.name,
            id: s.id.0,
            head: s.head.0,
        })
        .collect()
}

/// The events of `stream` with versions `start..=end` (`end` defaults to the head).
pub(crate) fn events(
    reader: &impl Reader,
    stream: &str,
    start: u64,
    end: Option<u64>,
) -> helios::Result<Vec<helios::Event>> {
    let end = version_or_head(reader, stream, end)?;
    reader
        .read(stream, Version(start)..=Version(end))?
        .collect()
}

/// The state of `stream` at `version` (default: its head).
pub(crate) fn view(
    reader: &impl Reader,
    stream: &str,
    version: Option<u64>,
) -> helios::Result<View> {
    let version = version_or_head(reader, stream, version)?;
    Ok(View {
        view: reader.view(stream, Version(version))?,
        version,
    })
}

/// The value of `key` in `stream`'s state at `version` (default: its head).
pub(crate) fn value(
    reader: &impl Reader,
    stream: &str,
    key: &[u8],
    version: Option<u64>,
) -> helios::Result<Option<Vec<u8>>> {
    Ok(view(reader, stream, version)?
        .view
        .get(key)
        .map(<[u8]>::to_vec))
}
