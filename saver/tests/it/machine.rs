//! `SaverMachine` in a real engine on real files: the index a thread stream's records build,
//! read at every version from the engine's checkpoints and replay, before and after a reopen.

use helios::{Durability, Engine, Version};
use helios_saver::record::{
    self, BlobPtr, Delete, KEY_COUNT, Put, Record, SAVER_STREAM_PREFIX, SaverMachine, Stored,
    Write, Writes,
};

const STREAM: &str = "helios.langgraph/thread";

fn put<'a>(ns: &'a [u8], cid: &'a [u8], run: Option<&'a [u8]>, value: Stored<'a>) -> Vec<u8> {
    record::encode(&Record::Put(Put {
        ns,
        checkpoint_id: cid,
        parent_id: None,
        run_id: run,
        checkpoint: Stored::Raw {
            ty: b"msgpack",
            data: b"\x80",
        },
        metadata: Stored::Empty,
        versions: vec![(b"c", cid)],
        blobs: vec![(b"c", cid, value)],
    }))
    .expect("encode")
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::builder(dir)
        .stream_machine(SAVER_STREAM_PREFIX, SaverMachine)
        .open()
        .expect("open")
}

/// What the index says at one version.
#[derive(Debug, PartialEq)]
struct Index {
    applied: u64,
    latest: Option<Vec<u8>>,
    /// `(cid, version of its put, run id)` of the root namespace, in key order.
    checkpoints: Vec<(Vec<u8>, u64, Vec<u8>)>,
    /// Write record versions of checkpoint `0001`.
    writes: Vec<u64>,
    /// The channel's newest whole value and the deltas against it.
    last_blob: Option<(BlobPtr, u32)>,
    /// Checkpoints of run `r1`.
    run_r1: Vec<Vec<u8>>,
}

fn index_at(engine: &Engine, version: u64) -> Index {
    let view = engine.view(STREAM, Version(version)).expect("view");
    let prefix = record::prefix_checkpoints(b"");
    let run_prefix = record::prefix_run(b"r1");
    Index {
        applied: u64::from_le_bytes(
            view.get(KEY_COUNT)
                .expect("counter")
                .try_into()
                .expect("8 bytes"),
        ),
        latest: view.get(&record::key_latest(b"")).map(<[u8]>::to_vec),
        checkpoints: view
            .prefix(&prefix)
            .map(|(k, v)| {
                let (at, run) = record::decode_checkpoint_entry(v).expect("entry");
                (k[prefix.len()..].to_vec(), at, run.to_vec())
            })
            .collect(),
        writes: view
            .get(&record::key_writes(b"", b"0001"))
            .map(|v| record::decode_versions(v).collect())
            .unwrap_or_default(),
        last_blob: view
            .get(&record::key_last_blob(b"", b"c"))
            .and_then(record::decode_last_blob),
        run_r1: view
            .prefix(&run_prefix)
            .filter_map(|(k, _)| record::split_run_key(k, run_prefix.len()))
            .map(|(_, cid)| cid.to_vec())
            .collect(),
    }
}

#[test]
fn the_index_at_every_version_is_what_the_records_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    let raw = |data: &'static [u8]| Stored::Raw {
        ty: b"msgpack",
        data,
    };
    let splice = Stored::Splice {
        ty: b"msgpack",
        raw_len: 3,
        base: BlobPtr {
            version: 1,
            index: 0,
        },
        depth: 1,
        head: b"",
        tail_encoding: record::TAIL_RAW,
        tail: b"b",
    };
    let writes = record::encode(&Record::Writes(Writes {
        ns: b"",
        checkpoint_id: b"0001",
        task_id: b"task",
        task_path: b"",
        writes: vec![Write {
            idx: 0,
            channel: b"c",
            value: raw(b"w"),
        }],
    }))
    .expect("encode");
    let delete = |cid: &'static [u8]| {
        record::encode(&Record::Delete(Delete {
            checkpoints: vec![(b"", cid)],
        }))
        .expect("encode")
    };
    let mut events = vec![
        put(b"", b"0001", Some(b"r1"), raw(b"ab")), // 1
        writes.clone(),                             // 2
        put(b"", b"0002", Some(b"r1"), splice),     // 3
        put(b"sub", b"0009", None, raw(b"zz")),     // 4: another namespace
        delete(b"0002"),                            // 5: the latest goes back to 0001
        writes,                                     // 6
        delete(b"0404"),                            // 7: nothing to delete
    ];
    // Enough puts after them to cross the engine's checkpoints (every 10, 100 events).
    let cids: Vec<Vec<u8>> = (10..130).map(|i| format!("{i:04}").into_bytes()).collect();
    events.extend(cids.iter().map(|cid| put(b"", cid, None, raw(b"xyz"))));
    for chunk in events.chunks(9) {
        engine
            .append(STREAM, chunk, Durability::Critical, None)
            .expect("append");
    }
    let head = events.len() as u64;
    let expected = |v: u64| {
        let mut checkpoints = vec![(b"0001".to_vec(), 1, b"r1".to_vec())];
        if (3..5).contains(&v) {
            checkpoints.push((b"0002".to_vec(), 3, b"r1".to_vec()));
        }
        checkpoints.extend(
            cids.iter()
                .zip(8u64..)
                .take_while(|(_, at)| *at <= v)
                .map(|(cid, at)| (cid.clone(), at, Vec::new())),
        );
        Index {
            applied: v,
            latest: checkpoints.last().map(|(cid, _, _)| cid.clone()),
            writes: [2, 6].into_iter().filter(|&at| at <= v).collect(),
            last_blob: Some(match v {
                1..=2 => (
                    BlobPtr {
                        version: 1,
                        index: 0,
                    },
                    0,
                ),
                // The splice's base, one delta made against it.
                3..=7 => (
                    BlobPtr {
                        version: 1,
                        index: 0,
                    },
                    1,
                ),
                _ => (
                    BlobPtr {
                        version: v,
                        index: 0,
                    },
                    0,
                ),
            }),
            run_r1: checkpoints
                .iter()
                .filter(|(_, _, run)| run == b"r1")
                .map(|(cid, _, _)| cid.clone())
                .collect(),
            checkpoints,
        }
    };
    for v in 1..=head {
        assert_eq!(index_at(&engine, v), expected(v), "version {v}");
    }
    engine.close().expect("close");
    // Reopened: read from the checkpoints the engine built and the log.
    let engine = open(dir.path());
    for v in (1..=head).step_by(7).chain([head]) {
        assert_eq!(
            index_at(&engine, v),
            expected(v),
            "version {v} after a reopen"
        );
    }
    let sub = engine.view(STREAM, Version(head)).expect("view");
    assert_eq!(sub.get(&record::key_latest(b"sub")), Some(&b"0009"[..]));
}

#[test]
fn a_record_that_is_not_one_stops_views_at_its_version_and_not_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = open(dir.path());
    let good = put(b"", b"0001", None, Stored::Empty);
    // The engine appends any bytes (the log is the source of truth); the machine refuses them
    // where a view replays them.
    engine
        .append(
            STREAM,
            &[good, b"\x09junk".to_vec()],
            Durability::Critical,
            None,
        )
        .expect("append");
    let err = engine
        .view(STREAM, Version(2))
        .expect_err("a view replayed junk");
    assert!(matches!(err, helios::Error::Replay { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("not a LangGraph saver record: an unknown record kind"),
        "{err}"
    );
    assert_eq!(index_at(&engine, 1).latest.as_deref(), Some(&b"0001"[..]));
}
