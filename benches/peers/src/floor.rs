//! The raw durable-write floor: what one durable append costs on this disk with none of an
//! engine's work, the number every durable path (Helios's critical appends and promotions, the
//! naive designs) is compared with.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use helios_workloads::payloads::PAYLOAD_LEN;

/// Bytes the engine writes to its log per event of [`PAYLOAD_LEN`] bytes (record header plus
/// payload): the raw floor writes this many bytes per event, so both move the same data.
pub const FRAME_LEN: usize = helios_log::format::frame_len(PAYLOAD_LEN);

/// Size of the raw floor's preallocated file: the engine's default segment size, 64 MiB.
pub const RAW_FLOOR_FILE_BYTES: u64 = helios_log::DEFAULT_SEGMENT_SIZE_BYTES;

/// The floor of a durable append: per event, one `pwrite` of a [`FRAME_LEN`]-byte frame at the
/// next offset of a file that was preallocated with real zeros (written, then fsynced), then
/// one `fdatasync`. Because the blocks already exist, the sync flushes only data, never file
/// size or block-allocation metadata: this is what the engine's log does with its pre-zeroed
/// segments, minus all of its CPU work (framing, CRC, index, locks).
///
/// When the file is full the offset wraps to zero, so any number of appends stays within the
/// preallocated blocks.
#[derive(Debug)]
pub struct RawFloor {
    file: File,
    path: PathBuf,
    capacity_bytes: u64,
    offset: u64,
    sequence: u64,
    frame: Vec<u8>,
}

impl RawFloor {
    /// Creates `path` (which must not exist) and preallocates `capacity_bytes` of zeros in it,
    /// then fsyncs it and its directory.
    ///
    /// # Errors
    /// I/O errors.
    pub fn create(path: &Path, capacity_bytes: u64) -> io::Result<RawFloor> {
        let mut file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = capacity_bytes;
        while left > 0 {
            let n = left.min(zeros.len() as u64);
            file.write_all(&zeros[..usize::try_from(n).unwrap_or(zeros.len())])?;
            left -= n;
        }
        file.sync_all()?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(RawFloor {
            file,
            path: path.to_path_buf(),
            capacity_bytes,
            offset: 0,
            sequence: 0,
            frame: Vec::with_capacity(FRAME_LEN),
        })
    }

    /// Writes one frame holding `payload` at the next offset and waits for `fdatasync`.
    ///
    /// # Errors
    /// I/O errors.
    pub fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        let frame_len = helios_log::format::frame_len(payload.len());
        let header_len = frame_len - payload.len();
        self.sequence += 1;
        self.frame.clear();
        // A length prefix and a sequence number, zero-padded to the engine's header size.
        self.frame
            .extend_from_slice(&u32::try_from(frame_len).unwrap_or(u32::MAX).to_le_bytes());
        self.frame.extend_from_slice(&self.sequence.to_le_bytes());
        self.frame.resize(header_len, 0);
        self.frame.extend_from_slice(payload);
        if self.offset + frame_len as u64 > self.capacity_bytes {
            self.offset = 0;
        }
        self.file.write_all_at(&self.frame, self.offset)?;
        self.file.sync_data()?;
        self.offset += frame_len as u64;
        Ok(())
    }

    /// The preallocated file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use helios_workloads::payloads::Payloads;

    use super::*;

    #[test]
    fn raw_floor_writes_frames_and_wraps() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("floor");
        let capacity = 3 * FRAME_LEN as u64 + 10;
        let mut floor = RawFloor::create(&path, capacity).expect("create");
        let payloads = Payloads::default();
        for i in 0..4 {
            floor.append(payloads.get(i)).expect("append");
        }
        let bytes = std::fs::read(floor.path()).expect("read back");
        assert_eq!(bytes.len() as u64, capacity, "the file never grows");
        // The fourth frame wrapped to offset 0.
        assert_eq!(&bytes[FRAME_LEN - PAYLOAD_LEN..FRAME_LEN], payloads.get(3));
        assert_eq!(
            &bytes[2 * FRAME_LEN - PAYLOAD_LEN..2 * FRAME_LEN],
            payloads.get(1)
        );
    }
}
