//! Feeds arbitrary bytes to the LangGraph saver's record decoder and value codec, as a read
//! of a damaged log would: nothing may panic or allocate what the bytes merely claim, and every
//! accepted record re-encodes to the same bytes.
#![no_main]

use helios_saver::codec;
use helios_saver::record::{self, Record, Stored, TAIL_ZSTD};
use libfuzzer_sys::fuzz_target;

/// The values a record holds.
fn values<'r, 'a>(record: &'r Record<'a>) -> Vec<&'r Stored<'a>> {
    match record {
        Record::Put(p) => [&p.checkpoint, &p.metadata]
            .into_iter()
            .chain(p.blobs.iter().map(|(_, _, v)| v))
            .collect(),
        Record::Writes(w) => w.writes.iter().map(|w| &w.value).collect(),
        Record::Delete(_) => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    // The index's values are read from a stream's state, which a damaged checkpoint could fill
    // with anything.
    let _ = record::decode_checkpoint_entry(data);
    let _ = record::decode_last_blob(data);
    let _ = record::decode_versions(data).count();
    let _ = record::split_run_key(data, data.first().map_or(0, |&b| usize::from(b)));
    let Ok(decoded) = record::decode(data) else {
        return;
    };
    let again = record::encode(&decoded).expect("a decoded record's fields fit their lengths");
    assert_eq!(again, data, "accepted bytes must be canonical");
    // Each value decoded as a read does, against a base made of the record's own bytes (a
    // delta's base is another record's value; any bytes will do to exercise the decoder).
    for value in values(&decoded) {
        match value {
            Stored::Empty | Stored::Raw { .. } => {}
            Stored::Zstd { raw_len, frame, .. } => {
                let _ = codec::decode_zstd(frame, *raw_len as usize);
            }
            Stored::Delta { raw_len, frame, .. } => {
                let _ = codec::decode_delta(frame, data, *raw_len as usize);
            }
            Stored::Splice {
                raw_len,
                head,
                tail_encoding,
                tail,
                ..
            } => {
                let base = data;
                let Some(tail_len) = (*raw_len as usize).checked_sub(base.len()) else {
                    continue;
                };
                let tail = if *tail_encoding == TAIL_ZSTD {
                    match codec::decode_zstd(tail, tail_len) {
                        Ok(tail) => tail,
                        Err(_) => continue,
                    }
                } else {
                    tail.to_vec()
                };
                if codec::check_splice(head.len(), base.len(), tail.len(), *raw_len as usize)
                    .is_ok()
                {
                    let mut out = vec![0; *raw_len as usize];
                    codec::write_splice(&mut out, head, base, &tail);
                }
            }
        }
    }
});
