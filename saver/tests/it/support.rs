//! Random inputs from the workspace's seeded generator: a failure reproduces from the test's
//! seed alone.

pub(crate) use helios_testkit::Rng;

/// `len` random bytes.
pub(crate) fn bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64().to_le_bytes()[0]).collect()
}

/// `len` bytes that compress: words from a small vocabulary.
pub(crate) fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    const WORDS: [&str; 6] = ["alpha ", "beta ", "gamma ", "delta ", "{\"k\": ", "], "];
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(WORDS[rng.index(WORDS.len())].as_bytes());
    }
    out.truncate(len);
    out
}

/// A random `u32`.
pub(crate) fn u32(rng: &mut Rng) -> u32 {
    u32::try_from(rng.below(1 << 32)).expect("below 2^32")
}
