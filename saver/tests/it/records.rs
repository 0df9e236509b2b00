//! Records encode and decode back exactly; a cut, a trailing byte or an unknown tag is refused.

use helios_saver::record::{
    self, BlobPtr, Delete, Put, Record, Stored, TAIL_RAW, TAIL_ZSTD, Write, Writes,
};

use crate::support::{self, Rng};

/// Byte strings for records to borrow their fields from.
fn arena(rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..64)
        .map(|_| {
            let len = rng.index(40);
            support::bytes(rng, len)
        })
        .collect()
}

fn pick<'a>(rng: &mut Rng, arena: &'a [Vec<u8>]) -> &'a [u8] {
    &arena[rng.index(arena.len())]
}

fn stored<'a>(rng: &mut Rng, arena: &'a [Vec<u8>]) -> Stored<'a> {
    let base = BlobPtr {
        version: rng.next_u64(),
        index: support::u32(rng),
    };
    match rng.below(5) {
        0 => Stored::Empty,
        1 => Stored::Raw {
            ty: pick(rng, arena),
            data: pick(rng, arena),
        },
        2 => Stored::Zstd {
            ty: pick(rng, arena),
            raw_len: support::u32(rng),
            frame: pick(rng, arena),
        },
        3 => Stored::Delta {
            ty: pick(rng, arena),
            raw_len: support::u32(rng),
            base,
            depth: support::u32(rng),
            frame: pick(rng, arena),
        },
        _ => Stored::Splice {
            ty: pick(rng, arena),
            raw_len: support::u32(rng),
            base,
            depth: support::u32(rng),
            head: pick(rng, arena),
            tail_encoding: if rng.below(2) == 0 {
                TAIL_RAW
            } else {
                TAIL_ZSTD
            },
            tail: pick(rng, arena),
        },
    }
}

fn random_record<'a>(rng: &mut Rng, arena: &'a [Vec<u8>]) -> Record<'a> {
    let maybe = |rng: &mut Rng| (rng.below(2) == 0).then(|| pick(rng, arena));
    match rng.below(3) {
        0 => Record::Put(Put {
            ns: pick(rng, arena),
            checkpoint_id: pick(rng, arena),
            parent_id: maybe(rng),
            run_id: maybe(rng),
            checkpoint: stored(rng, arena),
            metadata: stored(rng, arena),
            versions: (0..rng.below(4))
                .map(|_| (pick(rng, arena), pick(rng, arena)))
                .collect(),
            blobs: (0..rng.below(4))
                .map(|_| (pick(rng, arena), pick(rng, arena), stored(rng, arena)))
                .collect(),
        }),
        1 => Record::Writes(Writes {
            ns: pick(rng, arena),
            checkpoint_id: pick(rng, arena),
            task_id: pick(rng, arena),
            task_path: pick(rng, arena),
            writes: (0..rng.below(4))
                .map(|_| Write {
                    idx: i64::from_le_bytes(rng.next_u64().to_le_bytes()),
                    channel: pick(rng, arena),
                    value: stored(rng, arena),
                })
                .collect(),
        }),
        _ => Record::Delete(Delete {
            checkpoints: (0..rng.below(4))
                .map(|_| (pick(rng, arena), pick(rng, arena)))
                .collect(),
        }),
    }
}

#[test]
fn every_record_decodes_back_and_every_cut_of_it_is_refused() {
    let mut rng = Rng::new(0x5a7e_0001);
    let arena = arena(&mut rng);
    for _ in 0..500 {
        let record = random_record(&mut rng, &arena);
        let bytes = record::encode(&record).expect("fields fit u32 lengths");
        assert_eq!(record::decode(&bytes), Ok(record.clone()));
        for cut in 0..bytes.len() {
            assert!(
                record::decode(&bytes[..cut]).is_err(),
                "a record cut to {cut} of {} bytes decoded",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            record::decode(&longer).map_err(|e| e.0),
            Err("trailing bytes")
        );
    }
}

/// A delete record of one checkpoint, with `ns` and `cid` one byte each: kind, count, then
/// two length-prefixed fields.
fn one_delete() -> Vec<u8> {
    record::encode(&Record::Delete(Delete {
        checkpoints: vec![(b"n", b"c")],
    }))
    .expect("encode")
}

#[test]
fn unknown_tags_are_refused() {
    let mut kind = one_delete();
    for tag in [0u8, 4, 0xff] {
        kind[0] = tag;
        assert_eq!(
            record::decode(&kind).map_err(|e| e.0),
            Err("an unknown record kind")
        );
    }
    let put = |checkpoint: Stored<'static>| {
        record::encode(&Record::Put(Put {
            ns: b"",
            checkpoint_id: b"1",
            parent_id: None,
            run_id: None,
            checkpoint,
            metadata: Stored::Empty,
            versions: Vec::new(),
            blobs: Vec::new(),
        }))
        .expect("encode")
    };
    // kind, ns (4 + 0), id (4 + 1), parent tag, run tag: the checkpoint's tag is at 12.
    let mut value = put(Stored::Empty);
    value[12] = 5;
    assert_eq!(
        record::decode(&value).map_err(|e| e.0),
        Err("an unknown value encoding")
    );
    let mut option = put(Stored::Empty);
    option[10] = 2;
    assert_eq!(
        record::decode(&option).map_err(|e| e.0),
        Err("a bad option tag")
    );
    let mut splice = put(Stored::Splice {
        ty: b"",
        raw_len: 0,
        base: BlobPtr {
            version: 1,
            index: 0,
        },
        depth: 1,
        head: b"",
        tail_encoding: TAIL_RAW,
        tail: b"",
    });
    // After the tag: ty (4), raw_len (4), base (12), depth (4), head (4): the tail's tag.
    splice[12 + 1 + 28] = 2;
    assert_eq!(
        record::decode(&splice).map_err(|e| e.0),
        Err("an unknown splice tail encoding")
    );
}

#[test]
fn a_count_the_bytes_cannot_hold_is_refused_before_anything_is_allocated() {
    let mut bytes = one_delete();
    // The count of checkpoints, at 1..5: 4 billion entries of at least 8 bytes each.
    bytes[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(record::decode(&bytes).is_err());
    // A field length past the end.
    let mut field = one_delete();
    field[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(record::decode(&field).is_err());
}
