//! The catalog over a snapshot: streams read in place until changed.

use helios_log::storage::ReadOnlyBytes;
use helios_log::{RecordClass, RecordHeader, SegmentId};

use super::*;

fn record(lsn: u64, stream: u64, version: u64, kind: RecordKind) -> RecordHeader {
    RecordHeader {
        lsn: Lsn(lsn),
        stream: StreamId(stream),
        version: Version(version),
        timestamp_us: 0,
        batch_left: 0,
        kind,
        class: RecordClass::Normal,
    }
}

fn at(lsn: u64) -> Location {
    Location {
        lsn: Lsn(lsn),
        segment: SegmentId(1),
        offset: 64 * lsn,
        frame_len_bytes: 64,
    }
}

/// 1,000 streams with 3 events each in a snapshot at lsn 4,000, then records after it.
#[test]
fn streams_of_the_snapshot_stay_in_its_file_until_changed() {
    let mut writer = Catalog::default();
    let mut lsn = 0;
    for id in 1..=1000u64 {
        lsn += 1;
        let name = format!("s-{id}");
        let create = record(lsn, id, 0, RecordKind::CreateStream);
        let payload = name.as_bytes();
        writer
            .apply(
                &RecordRef {
                    header: create,
                    payload,
                },
                at(lsn),
            )
            .expect("create");
        for version in 1..=3 {
            lsn += 1;
            let event = record(lsn, id, version, RecordKind::Event);
            writer
                .apply(
                    &RecordRef {
                        header: event,
                        payload: b"e",
                    },
                    at(lsn),
                )
                .expect("event");
        }
    }
    writer.drain_indexed(at(lsn));
    let bytes = crate::catalog_snapshot::encode(&writer, 1, at(lsn), &Default::default(), 0);
    let snapshot = crate::catalog_snapshot::decode(ReadOnlyBytes::new(bytes), 1).expect("ok");
    let mut catalog = Catalog::new(PathBuf::new(), Some(Arc::new(snapshot)));
    assert_eq!((catalog.len(), catalog.in_memory().count()), (1000, 0));
    assert_eq!(catalog.lookup("s-500"), Some(StreamId(500)));
    assert_eq!(catalog.get(StreamId(500)).map(|s| s.head), Some(Version(3)));

    // After the snapshot: an event of s-5, s-7 deleted, a new s-7, a fork of s-9.
    let next = |lsn: &mut u64| {
        *lsn += 1;
        *lsn
    };
    let event = record(next(&mut lsn), 5, 4, RecordKind::Event);
    let delete = record(next(&mut lsn), 7, 3, RecordKind::DeleteStream);
    let create = record(next(&mut lsn), 1001, 0, RecordKind::CreateStream);
    let fork = record(next(&mut lsn), 1002, 2, RecordKind::ForkStream);
    let fork_payload = encode_fork(StreamId(9), "fork of s-9");
    for (header, payload) in [
        (event, &b"e"[..]),
        (delete, &b""[..]),
        (create, &b"s-7"[..]),
        (fork, &fork_payload[..]),
    ] {
        catalog
            .apply(&RecordRef { header, payload }, at(header.lsn.0))
            .expect("apply");
    }
    assert_eq!(catalog.get(StreamId(5)).map(|s| s.head), Some(Version(4)));
    assert_eq!(catalog.get(StreamId(5)).map(|s| s.recent.len()), Some(1));
    assert!(
        catalog
            .get(StreamId(7))
            .is_some_and(|s| s.deleted.is_some())
    );
    assert_eq!(catalog.lookup("s-7"), Some(StreamId(1001)), "the new one");
    assert_eq!(catalog.lookup("fork of s-9"), Some(StreamId(1002)));
    assert_eq!(
        catalog.get(StreamId(1002)).and_then(|s| s.fork),
        Some(Fork {
            source: StreamId(9),
            at: Version(2)
        })
    );
    assert_eq!(catalog.len(), 1002);
    // Only the streams the records changed, and the new ones, are held in memory.
    assert_eq!(catalog.in_memory().count(), 4);
    let reachable = catalog.reachable();
    assert_eq!(reachable.len(), 1002);
    assert_eq!((reachable[6], reachable[8]), (Version::ZERO, Version(3)));
    // A second live stream of a snapshot's name is refused.
    let again = record(next(&mut lsn), 1003, 0, RecordKind::CreateStream);
    let refused = catalog.apply(
        &RecordRef {
            header: again,
            payload: b"s-500",
        },
        at(lsn),
    );
    assert!(refused.is_err(), "{refused:?}");
    // A snapshot of the catalog over a snapshot reads back the same streams.
    catalog.drain_indexed(at(lsn));
    let bytes = crate::catalog_snapshot::encode(&catalog, 1, at(lsn), &Default::default(), 0);
    let again = crate::catalog_snapshot::decode(ReadOnlyBytes::new(bytes), 1).expect("ok");
    let reread = Catalog::new(PathBuf::new(), Some(Arc::new(again)));
    let all = |c: &Catalog| -> Vec<(StreamId, String, Version, bool)> {
        c.iter()
            .map(|(id, s)| (id, s.name.to_owned(), s.head, s.deleted.is_some()))
            .collect()
    };
    assert_eq!(all(&reread), all(&catalog));
    assert_eq!(reread.lookup("s-7"), Some(StreamId(1001)));
}
