//! Validation of a checkpoint's block structure, and the in-memory lookup indexes built from it
//! (split from `file.rs`, which reads through them): every block decodes to whole entries with
//! strictly increasing keys inside the archive, the padding between blocks is zeros, and the
//! entry counts agree with the header. What it returns is what `Checkpoint` keeps for lookups.

use std::path::Path;

use crate::error::{CheckpointError, Result};
use crate::file::{BlockSpan, PREFIX_MAX, RESTART_INTERVAL, Restart, search_key};
use crate::format::{self, ArchivedBody, PAD_LEN_MAX, header};
use crate::points::PointIndex;

/// The in-memory index validation builds: block ranges and restart points.
pub(crate) struct Index {
    pub(crate) blocks: Vec<BlockSpan>,
    pub(crate) prefix: [u8; PREFIX_MAX],
    pub(crate) prefix_len: usize,
    pub(crate) restart_keys: Vec<u64>,
    pub(crate) restarts: Vec<Restart>,
    pub(crate) points: PointIndex,
}

impl Index {
    /// Checks the block structure of a validated archive and copies out what lookups need.
    /// `file` is the whole file and `body` the archive's root inside it.
    pub(crate) fn build(
        path: &Path,
        file: &[u8],
        body: &ArchivedBody,
        entry_count: u64,
    ) -> Result<Index> {
        let corrupt = |offset: usize, reason: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let data = body.data.as_slice();
        // rkyv validation checked that `data` lies inside the archive; find where.
        let data_start = data
            .as_ptr()
            .addr()
            .checked_sub(file.as_ptr().addr())
            .filter(|&start| start >= header::LEN && start + data.len() <= file.len())
            .ok_or_else(|| corrupt(header::LEN, "block data lies outside the archive".into()))?;
        if body.blocks.len() != body.fences.len() {
            return Err(corrupt(
                header::LEN,
                format!(
                    "{} blocks but {} fences",
                    body.blocks.len(),
                    body.fences.len()
                ),
            ));
        }
        let check_gap = |from: usize, to: usize| -> Result<()> {
            if to - from > PAD_LEN_MAX {
                return Err(corrupt(
                    data_start + from,
                    format!(
                        "gap of {} bytes between blocks exceeds {PAD_LEN_MAX}",
                        to - from
                    ),
                ));
            }
            if let Some(i) = data[from..to].iter().position(|&b| b != 0) {
                return Err(corrupt(
                    data_start + from + i,
                    "non-zero padding between blocks".into(),
                ));
            }
            Ok(())
        };
        let mut index = Index {
            blocks: Vec::with_capacity(body.blocks.len()),
            prefix: [0; PREFIX_MAX],
            prefix_len: 0,
            restart_keys: Vec::new(),
            restarts: Vec::new(),
            points: PointIndex::with_capacity(0),
        };
        // Every key and its entry's file offset, for the point index (sized once the entries
        // are counted: the header's count is not trusted with an allocation before then).
        let mut keys: Vec<(&[u8], u32)> = Vec::new();
        // The keys of the restarts; their search keys need the common prefix, known at the end.
        let mut restart_keys_full: Vec<&[u8]> = Vec::new();
        let mut previous_end = 0usize;
        let mut previous_key: Option<&[u8]> = None;
        let mut total: u64 = 0;
        for (i, (block, fence)) in body.blocks.iter().zip(body.fences.iter()).enumerate() {
            let offset = usize::try_from(block.offset.to_native()).unwrap_or(usize::MAX);
            let len = block.len.to_native() as usize;
            let count = block.entry_count.to_native();
            let end = offset.checked_add(len).filter(|&end| end <= data.len());
            let (Some(end), true) = (end, offset >= previous_end) else {
                return Err(corrupt(
                    data_start + previous_end,
                    format!(
                        "block {i} at data offset {offset} (+{len} bytes) overlaps the block \
                         before or runs past the data ({} bytes)",
                        data.len()
                    ),
                ));
            };
            if count == 0 || len == 0 {
                return Err(corrupt(data_start + offset, format!("block {i} is empty")));
            }
            check_gap(previous_end, offset)?;
            // Room for the block's entries at once; its count is bounded by its bytes before it
            // sizes anything (an entry takes at least one).
            let bounded = usize::try_from(count).unwrap_or(usize::MAX).min(len);
            keys.reserve(bounded);
            restart_keys_full.reserve(bounded.div_ceil(RESTART_INTERVAL as usize));
            index
                .restarts
                .reserve(bounded.div_ceil(RESTART_INTERVAL as usize));
            let block_bytes = &data[..end];
            let mut at = offset;
            for n in 0..count {
                if at >= end {
                    return Err(corrupt(
                        data_start + at,
                        format!("block {i} ends after {n} of its {count} entries"),
                    ));
                }
                let (key, _, next) = format::get_entry(block_bytes, at)
                    .map_err(|(bad, reason)| corrupt(data_start + bad, reason.into()))?;
                if let Some(previous) = previous_key
                    && previous >= key
                {
                    return Err(corrupt(
                        data_start + at,
                        "keys are not in strictly increasing order".into(),
                    ));
                }
                if n == 0 && key != fence.as_slice() {
                    return Err(corrupt(
                        data_start + at,
                        format!("block {i}'s first key differs from its fence"),
                    ));
                }
                // Cannot truncate: the file is at most header::LEN + ARCHIVE_LEN_MAX bytes.
                let entry_offset = u32::try_from(data_start + at).unwrap_or(u32::MAX);
                if n % RESTART_INTERVAL == 0 {
                    index.restarts.push(Restart {
                        offset: entry_offset,
                        end: u32::try_from(data_start + end).unwrap_or(u32::MAX),
                    });
                    restart_keys_full.push(key);
                }
                previous_key = Some(key);
                keys.push((key, entry_offset));
                at = next;
            }
            if at != end {
                return Err(corrupt(
                    data_start + at,
                    format!("block {i} has bytes after its {count} entries"),
                ));
            }
            total += u64::from(count);
            index.blocks.push(BlockSpan {
                start: data_start + offset,
                end: data_start + end,
            });
            previous_end = end;
        }
        check_gap(previous_end, data.len())?;
        // Keys strictly increase (checked above), so the prefix shared by the first and the
        // last key is shared by every key.
        if let (Some(first), Some(last)) = (restart_keys_full.first(), previous_key) {
            let shared = first
                .iter()
                .zip(last)
                .take(PREFIX_MAX)
                .take_while(|(a, b)| a == b)
                .count();
            index.prefix[..shared].copy_from_slice(&first[..shared]);
            index.prefix_len = shared;
        }
        let shared = index.prefix_len;
        index.restart_keys = restart_keys_full
            .iter()
            .map(|key| search_key(&key[shared..]))
            .collect();
        index.points = PointIndex::with_capacity(keys.len());
        for &(key, offset) in &keys {
            index.points.insert(key, offset);
        }
        if total != entry_count {
            return Err(CheckpointError::InvalidHeader {
                path: path.to_path_buf(),
                offset: header::ENTRY_COUNT as u64,
                reason: format!("header says {entry_count} entries, the blocks hold {total}"),
            });
        }
        Ok(index)
    }
}
