//! Round trips and corrupt input.

use proptest::prelude::*;

use super::common::{build, clustered, queries_like, rng, seed};
use vela_engine::index::{HnswIndex, HnswParams, Metric};
use vela_engine::EngineError;

fn sample_index(s: u64, n: usize) -> (HnswIndex, Vec<f32>) {
    let mut r = rng(s);
    let (data, _) = clustered(&mut r, n, 12, 6);
    let index = build(
        &data,
        12,
        Metric::Cosine,
        HnswParams {
            m: 6,
            seed: s,
            ..HnswParams::default()
        },
    );
    for row in (0..n as u64).step_by(7) {
        index.delete(row);
    }
    let q = queries_like(&data, 12, &mut r, 20);
    (index, q)
}

#[test]
fn round_trip_gives_identical_answers_and_bytes() {
    let s = seed("round_trip_gives_identical_answers_and_bytes", 17);
    let (index, queries) = sample_index(s, 1_500);
    let bytes = index.to_bytes();
    let loaded = HnswIndex::from_bytes(&bytes).expect("load");
    assert_eq!(loaded.to_bytes(), bytes);
    assert_eq!(loaded.len(), index.len());
    assert_eq!(loaded.params(), index.params());
    assert_eq!(loaded.metric(), Metric::Cosine);
    for q in queries.chunks_exact(12) {
        assert_eq!(
            index.search(q, 10, 40, None).expect("a"),
            loaded.search(q, 10, 40, None).expect("b")
        );
    }
    // The loaded index keeps accepting inserts and deletes.
    loaded.insert(1_000_000, &queries[..12]).expect("insert");
    assert_eq!(
        loaded.search(&queries[..12], 1, 40, None).expect("s")[0].0,
        1_000_000
    );
    assert!(loaded.delete(1));
    let empty = HnswIndex::new(3, Metric::L1, HnswParams::default()).expect("new");
    let e = HnswIndex::from_bytes(&empty.to_bytes()).expect("empty round trip");
    assert!(e.is_empty());
}

#[test]
fn truncation_and_flips_are_typed_errors() {
    let s = seed("truncation_and_flips_are_typed_errors", 4);
    let (index, _) = sample_index(s, 200);
    let bytes = index.to_bytes();
    for len in (0..bytes.len()).step_by(7) {
        assert!(matches!(
            HnswIndex::from_bytes(&bytes[..len]),
            Err(EngineError::CorruptIndex(_))
        ));
    }
    for i in (0..bytes.len()).step_by(13) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        assert!(
            matches!(HnswIndex::from_bytes(&b), Err(EngineError::CorruptIndex(_))),
            "flip at {i}"
        );
    }
}

/// Recomputes the CRC so corruption reaches the structural checks behind it.
fn with_fixed_crc(mut b: Vec<u8>) -> Vec<u8> {
    let body = b.len() - 4;
    let crc = crc32(&b[..body]);
    b[body..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn crc32(data: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), independent of crc32fast.
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

proptest! {
    #![proptest_config(super::common::proptest_config("serialize proptests", 2, 64))]

    #[test]
    fn corrupt_bytes_with_valid_crc_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (index, queries) = sample_index(9, 120);
        let mut b = index.to_bytes();
        for (at, val) in &edits {
            let i = at.index(b.len() - 4);
            b[i] = *val;
        }
        if truncate {
            let keep = cut.index(b.len()).max(4);
            b.truncate(keep);
        }
        let b = with_fixed_crc(b);
        match HnswIndex::from_bytes(&b) {
            Ok(loaded) => {
                // Whatever decoded must be searchable without panicking.
                for q in queries.chunks_exact(12).take(3) {
                    let _ = loaded.search(q, 5, 20, None);
                }
            }
            Err(e) => prop_assert!(matches!(e, EngineError::CorruptIndex(_)), "{e:?}"),
        }
    }

    #[test]
    fn random_bytes_are_rejected(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut b = b"VELAHNSW".to_vec();
        b.extend_from_slice(&bytes);
        let b = if b.len() >= 4 { with_fixed_crc(b) } else { b };
        prop_assert!(HnswIndex::from_bytes(&b).is_err());
    }
}
