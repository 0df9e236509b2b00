//! How the saver stores a value's bytes: as is, as a zstd frame, or as a zstd frame made with
//! the channel's previous value as a raw prefix (a delta: a value that grew by appending
//! compresses to about the size of what was appended).
//!
//! zstd (the `zstd` crate, bindings to the reference library) was chosen over a hand-written
//! binary diff: a raw-content prefix gives copy/insert deltas for any edit, not only appends,
//! and the same library compresses full values.

use std::cell::RefCell;
use std::io;

thread_local! {
    /// One compression context per thread, reused: making one per value costs its allocation
    /// and table initialisation every time (a measurable share of a put).
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// The same for decompression: creating a context per frame was a tenth of the CPU of
    /// random `get_tuple` calls (`ZSTD_createDCtx` in a profile), most of it for the small tails
    /// of splices.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Runs `f` with this thread's compressor at `level`.
fn with_compressor<T>(
    level: i32,
    f: impl FnOnce(&mut zstd::bulk::Compressor<'static>) -> io::Result<T>,
) -> io::Result<T> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        match slot.as_mut() {
            Some((_, compressor)) => f(compressor),
            None => Err(io::Error::other("no zstd compressor")),
        }
    })
}

/// Values shorter than this are stored as they are: a zstd frame would not pay for its header.
pub const SMALL_VALUE_BYTES: usize = 64;

/// A value encoded for a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// The bytes as they are.
    Raw,
    /// A zstd frame of the whole value.
    Zstd(Vec<u8>),
    /// A zstd frame compressed with the base value as its prefix.
    Delta(Vec<u8>),
    /// The value is the base with its first `keep_from` bytes replaced by the value's first
    /// `keep_from` bytes, and `tail` (the value's bytes past the base's length) appended: what
    /// a list that grew by appending looks like once serialized (its header changes, its
    /// items stay where they were). Found with one `memcmp`, decoded with two copies.
    Splice {
        /// How many leading bytes of the base the value replaces.
        keep_from: usize,
        /// Where the appended bytes start in the value: the base's length.
        tail_from: usize,
        /// The appended bytes' encoding.
        tail: Tail,
    },
}

/// The appended bytes of a [`Encoded::Splice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// As they are.
    Raw,
    /// A zstd frame of them.
    Zstd(Vec<u8>),
}

/// A splice replaces at most this many leading bytes of its base (a serialized container's
/// header); a value that differs from its base further in is encoded another way.
pub const SPLICE_HEAD_MAX: usize = 64;

/// Bases shorter than this are not worth splicing against.
const SPLICE_BASE_MIN: usize = 256;

/// Where `data` stops differing from `base` if `data` is `base` with at most
/// [`SPLICE_HEAD_MAX`] leading bytes changed and bytes appended: the length of the changed
/// head.
fn splice_point(data: &[u8], base: &[u8]) -> Option<usize> {
    if base.len() < SPLICE_BASE_MIN || data.len() < base.len() {
        return None;
    }
    let from = SPLICE_HEAD_MAX;
    if base[from..] != data[from..base.len()] {
        return None;
    }
    let mut keep_from = from;
    while keep_from > 0 && base[keep_from - 1] == data[keep_from - 1] {
        keep_from -= 1;
    }
    Some(keep_from)
}

/// Compresses `data` alone; `Raw` when that does not save bytes.
///
/// # Errors
/// zstd's (out of memory, in practice).
pub fn encode_full(data: &[u8], level: i32) -> io::Result<Encoded> {
    if data.len() < SMALL_VALUE_BYTES {
        return Ok(Encoded::Raw);
    }
    let frame = with_compressor(level, |c| c.compress(data))?;
    Ok(if frame.len() < data.len() {
        Encoded::Zstd(frame)
    } else {
        Encoded::Raw
    })
}

/// Encodes `data` against `base`: the delta when it is clearly smaller than compressing `data`
/// alone would be, else as [`encode_full`] does.
///
/// # Errors
/// zstd's.
pub fn encode_against(data: &[u8], base: &[u8], level: i32) -> io::Result<Encoded> {
    if data.len() < SMALL_VALUE_BYTES {
        return Ok(Encoded::Raw);
    }
    if let Some(keep_from) = splice_point(data, base) {
        let tail = match encode_full(&data[base.len()..], level)? {
            Encoded::Zstd(frame) => Tail::Zstd(frame),
            _ => Tail::Raw,
        };
        return Ok(Encoded::Splice {
            keep_from,
            tail_from: base.len(),
            tail,
        });
    }
    let delta = with_compressor(level, |c| c.compress_with_prefix(data, base))?;
    // A delta much smaller than the value is a delta worth its chain; otherwise compare it
    // with the value compressed alone, which starts a new chain.
    if delta.len() * 4 <= data.len() {
        return Ok(Encoded::Delta(delta));
    }
    let full = encode_full(data, level)?;
    let full_len = match &full {
        Encoded::Zstd(frame) => frame.len(),
        _ => data.len(),
    };
    Ok(if delta.len() * 2 < full_len {
        Encoded::Delta(delta)
    } else {
        full
    })
}

/// Decompresses a whole-value frame of `raw_len` bytes.
///
/// # Errors
/// When the frame is damaged or does not decompress to exactly `raw_len` bytes.
pub fn decode_zstd(frame: &[u8], raw_len: usize) -> io::Result<Vec<u8>> {
    check_frame_size(frame, raw_len)?;
    let out = DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(decompressor) => decompressor.decompress(frame, raw_len),
            None => Err(io::Error::other("no zstd decompressor")),
        }
    })?;
    check_len(out, raw_len)
}

/// Decompresses a delta frame against its base value.
///
/// # Errors
/// As [`decode_zstd`].
pub fn decode_delta(frame: &[u8], base: &[u8], raw_len: usize) -> io::Result<Vec<u8>> {
    check_frame_size(frame, raw_len)?;
    let mut dctx = zstd::zstd_safe::DCtx::create();
    dctx.ref_prefix(base).map_err(zstd_error)?;
    let mut out = Vec::with_capacity(raw_len);
    dctx.decompress(&mut out, frame).map_err(zstd_error)?;
    check_len(out, raw_len)
}

/// Checks that a splice of `head` over a `base_len`-byte base, then a `tail_len`-byte tail,
/// makes a value of `raw_len` bytes; `write_splice` then cannot fail.
///
/// # Errors
/// When `head` is longer than the base or the parts do not add up to `raw_len` bytes.
pub fn check_splice(
    head_len: usize,
    base_len: usize,
    tail_len: usize,
    raw_len: usize,
) -> io::Result<()> {
    if head_len > base_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a splice replaces {head_len} bytes of a {base_len}-byte base"),
        ));
    }
    if base_len.checked_add(tail_len) != Some(raw_len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a stored value decompressed to {} bytes, its record says {raw_len}",
                base_len.saturating_add(tail_len)
            ),
        ));
    }
    Ok(())
}

/// Writes a spliced value into `out`: `head`, then `base` past `head.len()`, then `tail`
/// (already decompressed). The parts must have passed `check_splice` for `out.len()`.
pub fn write_splice(out: &mut [u8], head: &[u8], base: &[u8], tail: &[u8]) {
    let (start, rest) = out.split_at_mut(head.len());
    start.copy_from_slice(head);
    let (middle, end) = rest.split_at_mut(base.len() - head.len());
    middle.copy_from_slice(&base[head.len()..]);
    end.copy_from_slice(tail);
}

/// Checks the size a frame's header states against the size its record states, before
/// anything is allocated for it: a delta's output buffer is sized from the record, which a
/// damaged record could make 4 GiB. Every frame this module writes states its size (zstd's
/// one-shot compression writes it by default).
fn check_frame_size(frame: &[u8], raw_len: usize) -> io::Result<()> {
    let stated = zstd::zstd_safe::get_frame_content_size(frame).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "a stored value's zstd frame has a damaged header",
        )
    })?;
    match stated {
        Some(n) if n == raw_len as u64 => Ok(()),
        Some(n) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a stored value's zstd frame holds {n} bytes, its record says {raw_len}"),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a stored value's zstd frame does not state its size",
        )),
    }
}

fn check_len(out: Vec<u8>, raw_len: usize) -> io::Result<Vec<u8>> {
    if out.len() == raw_len {
        Ok(out)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a stored value decompressed to {} bytes, its record says {raw_len}",
                out.len()
            ),
        ))
    }
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(zstd::zstd_safe::get_error_name(code))
}
