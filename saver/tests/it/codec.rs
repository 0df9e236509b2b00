//! Every encoding of a value decodes back to it; sizes a record states that its frame does not
//! are refused before anything is allocated for them.

use std::io::Write as _;

use helios_saver::codec::{self, Encoded, SMALL_VALUE_BYTES, SPLICE_HEAD_MAX, Tail};

use crate::support::{self, Rng};

const LEVEL: i32 = 3;

/// Decodes `encoded`, `data`'s encoding against `base`, the way the saver reads it back.
fn decode(encoded: &Encoded, data: &[u8], base: &[u8]) -> Vec<u8> {
    let len = data.len();
    match encoded {
        Encoded::Raw => data.to_vec(),
        Encoded::Zstd(frame) => codec::decode_zstd(frame, len).expect("zstd"),
        Encoded::Delta(frame) => codec::decode_delta(frame, base, len).expect("delta"),
        Encoded::Splice {
            keep_from,
            tail_from,
            tail,
        } => {
            assert_eq!(*tail_from, base.len());
            let head = &data[..*keep_from];
            let tail = match tail {
                Tail::Raw => data[*tail_from..].to_vec(),
                Tail::Zstd(frame) => codec::decode_zstd(frame, len - base.len()).expect("tail"),
            };
            codec::check_splice(head.len(), base.len(), tail.len(), len).expect("parts");
            let mut out = vec![0; len];
            codec::write_splice(&mut out, head, base, &tail);
            out
        }
    }
}

/// How a value changes from one checkpoint to the next.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    /// A serialized list that grew: its header changes, items are appended.
    Appended,
    /// A few bytes edited in the middle.
    Edited,
    /// Something else entirely.
    Replaced,
    /// Cut short.
    Shrunk,
}

fn next(rng: &mut Rng, base: &[u8], change: Change) -> Vec<u8> {
    match change {
        Change::Appended => {
            let mut data = base.to_vec();
            let head = rng.index(SPLICE_HEAD_MAX);
            data[..head.min(base.len())].copy_from_slice(&support::text(rng, head.min(base.len())));
            let grown = rng.index(3_000);
            data.extend_from_slice(&support::text(rng, grown));
            data
        }
        Change::Edited => {
            let mut data = base.to_vec();
            let at = base.len() / 2;
            data[at..at + 8].copy_from_slice(b"EDITED!!");
            data
        }
        Change::Replaced => {
            let len = rng.index(5_000);
            support::text(rng, len)
        }
        Change::Shrunk => base[..base.len() / 3].to_vec(),
    }
}

#[test]
fn every_encoding_of_a_value_decodes_back_to_it() {
    let mut rng = Rng::new(0xc0de_c001);
    let mut seen = [false; 4];
    for round in 0..400 {
        let base_len = 300 + rng.index(20_000);
        let base = support::text(&mut rng, base_len);
        let change = [
            Change::Appended,
            Change::Edited,
            Change::Replaced,
            Change::Shrunk,
        ][round % 4];
        let data = next(&mut rng, &base, change);
        let encoded = codec::encode_against(&data, &base, LEVEL).expect("encode");
        assert_eq!(
            decode(&encoded, &data, &base),
            data,
            "round {round}, {change:?}, {encoded:?}"
        );
        // The encodings the saver relies on for storage that grows with what changed.
        match (change, &encoded) {
            (Change::Appended, Encoded::Splice { .. }) => seen[0] = true,
            (Change::Edited, Encoded::Delta(_)) => seen[1] = true,
            (Change::Appended | Change::Edited, other) => {
                panic!("round {round}: {change:?} encoded as {other:?}")
            }
            _ => {}
        }
        let whole = codec::encode_full(&data, LEVEL).expect("encode");
        assert!(!matches!(whole, Encoded::Delta(_) | Encoded::Splice { .. }));
        assert_eq!(decode(&whole, &data, &[]), data);
        seen[2] |= matches!(whole, Encoded::Zstd(_));
        seen[3] |= matches!(whole, Encoded::Raw);
    }
    let small = b"tiny";
    assert!(small.len() < SMALL_VALUE_BYTES);
    assert_eq!(
        codec::encode_full(small, LEVEL).expect("encode"),
        Encoded::Raw
    );
    assert_eq!(seen[..3], [true; 3], "splice, delta, zstd each met");
}

fn frame_of(data: &[u8]) -> Vec<u8> {
    match codec::encode_full(data, LEVEL).expect("encode") {
        Encoded::Zstd(frame) => frame,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_size_the_frame_does_not_state_is_refused() {
    let data = b"0123456789".repeat(100);
    let frame = frame_of(&data);
    assert_eq!(
        codec::decode_zstd(&frame, data.len()).expect("decode"),
        data
    );
    for wrong in [0, data.len() - 1, data.len() + 1, u32::MAX as usize] {
        let err = codec::decode_zstd(&frame, wrong).expect_err("a wrong size decoded");
        assert_eq!(
            err.to_string(),
            format!(
                "a stored value's zstd frame holds {} bytes, its record says {wrong}",
                data.len()
            )
        );
        let err = codec::decode_delta(&frame, b"", wrong).expect_err("a wrong size decoded");
        assert!(err.to_string().contains("its record says"), "{err}");
    }
    // A streamed frame does not state its size: the saver never writes one, and refuses it.
    let mut streamed = zstd::stream::Encoder::new(Vec::new(), LEVEL).expect("encoder");
    streamed.write_all(&data).expect("write");
    let streamed = streamed.finish().expect("finish");
    let err = codec::decode_zstd(&streamed, data.len()).expect_err("unstated size decoded");
    assert_eq!(
        err.to_string(),
        "a stored value's zstd frame does not state its size"
    );
    for garbage in [&b""[..], b"not zstd", &frame[..3]] {
        assert!(codec::decode_zstd(garbage, 10).is_err());
        assert!(codec::decode_delta(garbage, b"base", 10).is_err());
    }
    // A frame cut after its header states the right size but ends early.
    let cut = &frame[..frame.len() - 4];
    assert!(codec::decode_zstd(cut, data.len()).is_err());
}

#[test]
fn a_splice_whose_parts_do_not_add_up_is_refused() {
    assert!(codec::check_splice(4, 10, 5, 15).is_ok());
    assert!(
        codec::check_splice(11, 10, 5, 15).is_err(),
        "head past the base"
    );
    assert!(codec::check_splice(4, 10, 5, 16).is_err(), "one byte short");
    assert!(
        codec::check_splice(4, usize::MAX, 5, 15).is_err(),
        "sizes overflow"
    );
}
