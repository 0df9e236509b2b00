//! Recovery of an arbitrary active segment: the input is turned into a segment image made of
//! valid record batches interleaved with raw bytes (libFuzzer does not find valid CRCs by
//! chance), which is then opened. Opening must never panic; when it succeeds, the recovered
//! records are a prefix of the valid batches written, appending works, and a reopen sees the
//! same log plus the new record.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use helios_log::format::{self, RecordHeader};
use helios_log::{
    Log, LogOptions, Lsn, NewRecord, RecordClass, RecordKind, SimStorage, Storage, StreamId,
    Version,
};
use libfuzzer_sys::fuzz_target;

const SEGMENT_BYTES: u64 = 8192;

fuzz_target!(|data: &[u8]| {
    let sim = SimStorage::new();
    let dir = Path::new("/store/log");
    sim.create_dir_all(dir).expect("mkdir");
    let mut image = format::encode_segment_header(Lsn(1), SEGMENT_BYTES).to_vec();
    let mut lsn = 1u64;
    let mut valid_prefix = Some(0u64);
    let chunks = data.chunks(17);
    for chunk in chunks {
        let (tag, rest) = chunk.split_first().unwrap_or((&0, &[]));
        if tag % 4 != 0 {
            let count = u32::from(tag % 3) + 1;
            for i in 0..count {
                let header = RecordHeader {
                    lsn: Lsn(lsn),
                    stream: StreamId(1),
                    version: Version(lsn),
                    timestamp_us: 0,
                    batch_left: count - 1 - i,
                    kind: RecordKind::Event,
                    class: RecordClass::Normal,
                };
                format::encode_record(&mut image, &header, rest);
                lsn += 1;
            }
            if let Some(p) = valid_prefix.as_mut() {
                *p = lsn - 1;
            }
        } else {
            image.extend_from_slice(rest);
            valid_prefix = None;
        }
    }
    if image.len() as u64 > SEGMENT_BYTES {
        return;
    }
    image.resize(SEGMENT_BYTES as usize, 0);
    let file = sim
        .create(&dir.join(format!("{:020}.log", 1)))
        .expect("create");
    file.write_all_at(&image, 0).expect("write");
    file.sync_data().expect("sync");

    let storage: Arc<dyn Storage> = Arc::new(sim.clone());
    let options = LogOptions {
        segment_size_bytes: SEGMENT_BYTES,
        ..LogOptions::default()
    };
    let mut seen = Vec::new();
    let Ok((log, report)) = Log::open(storage.clone(), dir, options.clone(), None, &mut |r, _| {
        seen.push(r.header.lsn.0)
    }) else {
        return;
    };
    assert!(
        seen.iter().copied().eq(1..=seen.len() as u64),
        "recovered LSNs are dense from 1"
    );
    if let Some(valid) = valid_prefix {
        assert_eq!(
            report.end.lsn.0, valid,
            "an image of only valid batches is recovered whole"
        );
    }
    let mut locations = Vec::new();
    let record = NewRecord {
        stream: StreamId(1),
        version: Version(0),
        kind: RecordKind::Event,
        payload: b"after",
    };
    if log
        .append(&[record], RecordClass::Critical, &mut locations)
        .is_ok()
    {
        log.sync_all().expect("sync");
        drop(log);
        let mut again = 0u64;
        let (_, report2) = Log::open(storage, dir, options, None, &mut |_, _| again += 1)
            .unwrap_or_else(|e| panic!("a log this process wrote must reopen: {e}"));
        assert_eq!(report2.end.lsn.0, report.end.lsn.0 + 1);
        assert_eq!(again, report.end.lsn.0 + 1);
    }
});
