//! Writing fields into a file's bytes and resealing its checksums, for the targets that forge
//! fields of Helios' files (`segment_index`, `store_image`).

use helios_log::format::record;

/// Writes the low `width` bytes of `value` at `at`, little-endian, if they fit.
pub fn put_le(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    if let Some(slot) = bytes.get_mut(at..at.saturating_add(width)) {
        slot.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// Recomputes the CRCs of a file laid out as a header of `header_len` bytes whose CRC-32 of
/// bytes `0..crc_at` sits at `crc_at`, and (if `body`) whose CRC-32 of everything after the
/// header sits at `body_crc_at`: the segment index and `CATALOG` are.
pub fn reseal(bytes: &mut [u8], header_len: usize, body_crc_at: usize, crc_at: usize, body: bool) {
    if bytes.len() < header_len {
        return;
    }
    if body {
        let crc = crc32fast::hash(&bytes[header_len..]);
        put_le(bytes, body_crc_at, 4, u64::from(crc));
    }
    let crc = crc32fast::hash(&bytes[..crc_at]);
    put_le(bytes, crc_at, 4, u64::from(crc));
}

/// Recomputes the CRC of the log record frame at `at` over its body, as the header's `body_len`
/// says (clamped to the bytes).
pub fn reseal_frame(bytes: &mut [u8], at: usize) {
    let Some(prefix) = bytes.get(at..at + record::PREFIX_LEN) else {
        return;
    };
    let body_len = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as usize;
    let start = at + record::PREFIX_LEN;
    let end = start.saturating_add(body_len).min(bytes.len());
    let crc = crc32fast::hash(&bytes[start..end]);
    put_le(bytes, at + record::CRC, 4, u64::from(crc));
}
