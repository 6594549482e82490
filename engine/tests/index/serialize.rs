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

/// Rewrites a format-2 blob of a cosine index built from *normalised* vectors into the format-1
/// layout: version 1, no header flags, no inverse-norm section (the last `n × 4` bytes before
/// the CRC), a fresh CRC. That is byte for byte what version 1 wrote for such an index.
fn as_format_1(v2: &[u8], n: usize) -> Vec<u8> {
    assert_eq!(&v2[8..12], &2u32.to_le_bytes(), "a format-2 blob");
    assert_eq!(v2[12], 1, "cosine");
    assert_eq!(v2[13], 1, "flag: held as given");
    let body_end = v2.len() - 4 - n * 4;
    let mut b = v2[..body_end].to_vec();
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b[13] = 0;
    b.extend_from_slice(&[0; 4]);
    with_fixed_crc(b)
}

#[test]
fn format_1_cosine_blob_loads_as_normalised_graph() {
    let s = seed("format_1_cosine_blob_loads_as_normalised_graph", 23);
    let mut r = rng(s);
    let n = 800;
    let (mut data, _) = clustered(&mut r, n, 12, 6);
    for row in data.chunks_exact_mut(12) {
        vela_engine::index::distance::normalize(row);
    }
    let params = HnswParams {
        m: 6,
        seed: s,
        ..HnswParams::default()
    };
    let original = build(&data, 12, Metric::Cosine, params);
    original.delete(3);
    let old = as_format_1(&original.to_bytes(), n);
    let loaded = HnswIndex::from_bytes(&old).expect("format 1 loads");
    assert!(
        !loaded.holds_given(),
        "an old cosine graph holds normalised vectors"
    );
    assert!(original.holds_given());
    assert_eq!(loaded.len(), n - 1);
    // Same graph, same vectors, norms computed from the same vectors: identical answers.
    let queries = queries_like(&data, 12, &mut r, 20);
    for q in queries.chunks_exact(12) {
        assert_eq!(
            original.search(q, 10, 40, None).expect("a"),
            loaded.search(q, 10, 40, None).expect("b")
        );
    }
    // Inserting into it keeps its vectors normalised, and the row is found.
    let v: Vec<f32> = queries[..12].iter().map(|x| x * 40.0).collect();
    loaded.insert(5_000, &v).expect("insert");
    let stored = loaded.vector(5_000).expect("live");
    let len2: f32 = stored.iter().map(|x| x * x).sum();
    assert!((len2 - 1.0).abs() < 1e-5, "normalised: |v|² = {len2}");
    let hit = loaded.search(&v, 1, 40, None).expect("s")[0];
    assert_eq!(hit.0, 5_000);
    assert!(hit.1 < 1e-5, "{hit:?}");
    // Saved again (format 2) it stays an old-style graph; a version-1 blob with flags is corrupt.
    let again = HnswIndex::from_bytes(&loaded.to_bytes()).expect("reload");
    assert!(!again.holds_given());
    assert_eq!(again.to_bytes(), loaded.to_bytes());
    let mut flagged = old.clone();
    flagged[13] = 1;
    assert!(matches!(
        HnswIndex::from_bytes(&with_fixed_crc(flagged)),
        Err(EngineError::CorruptIndex(_))
    ));
}

#[test]
fn format_2_cosine_blob_round_trips_its_norms() {
    let s = seed("format_2_cosine_blob_round_trips_its_norms", 29);
    let (index, queries) = sample_index(s, 500);
    let bytes = index.to_bytes();
    let n = index.node_count();
    // Header, the sections of format 1, then one f32 per node: 1 / |v| of the vector as given.
    let norms = &bytes[bytes.len() - 4 - n * 4..bytes.len() - 4];
    for (node, c) in norms.chunks_exact(4).enumerate().take(50) {
        let inv = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        assert!(inv.is_finite() && inv > 0.0, "node {node}: {inv}");
    }
    let loaded = HnswIndex::from_bytes(&bytes).expect("load");
    assert!(loaded.holds_given());
    assert_eq!(loaded.to_bytes(), bytes);
    for q in queries.chunks_exact(12) {
        assert_eq!(
            index.search(q, 10, 40, None).expect("a"),
            loaded.search(q, 10, 40, None).expect("b")
        );
    }
    // An unknown header flag, or a negative inverse norm, is corrupt input.
    let mut b = bytes.clone();
    b[13] |= 2;
    assert!(matches!(
        HnswIndex::from_bytes(&with_fixed_crc(b)),
        Err(EngineError::CorruptIndex(_))
    ));
    let mut b = bytes.clone();
    let at = bytes.len() - 4 - 4;
    b[at..at + 4].copy_from_slice(&(-1.0f32).to_le_bytes());
    assert!(matches!(
        HnswIndex::from_bytes(&with_fixed_crc(b)),
        Err(EngineError::CorruptIndex(_))
    ));
}
