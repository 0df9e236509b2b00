//! Feeds arbitrary bytes to the record and segment-header decoders: they must never panic, and
//! whatever they accept must re-encode to the same bytes.
#![no_main]

use helios_log::format::{self, Frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = format::decode_segment_header(data);
    if let Ok(Frame::Record(record, len)) = format::decode_frame(data) {
        let mut again = Vec::new();
        format::encode_record(&mut again, &record.header, record.payload);
        assert_eq!(&again[..], &data[..len], "accepted bytes must be canonical");
    }
});
