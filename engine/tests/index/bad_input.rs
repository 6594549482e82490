//! Typed errors for every kind of bad input.

use vela_engine::index::{HnswIndex, HnswParams, Metric};
use vela_engine::EngineError;

#[test]
fn bad_vectors_and_k() {
    let index = HnswIndex::new(3, Metric::L2, HnswParams::default()).expect("new");
    assert!(matches!(
        index.insert(1, &[1.0, 2.0]),
        Err(EngineError::DimensionMismatch {
            expected: 3,
            got: 2
        })
    ));
    assert!(matches!(
        index.insert(1, &[1.0, f32::NAN, 0.0]),
        Err(EngineError::NonFiniteComponent { index: 1, .. })
    ));
    assert!(matches!(
        index.insert(1, &[f32::INFINITY, 0.0, 0.0]),
        Err(EngineError::NonFiniteComponent { index: 0, .. })
    ));
    index.insert(1, &[1.0, 2.0, 3.0]).expect("insert");
    assert_eq!(
        index.insert(1, &[1.0, 2.0, 3.0]),
        Err(EngineError::DuplicateRowId(1))
    );
    assert_eq!(
        index.search(&[1.0, 2.0, 3.0], 0, 0, None),
        Err(EngineError::ZeroK)
    );
    assert!(matches!(
        index.search(&[1.0; 4], 1, 0, None),
        Err(EngineError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.search(&[1.0, f32::NEG_INFINITY, 0.0], 1, 0, None),
        Err(EngineError::NonFiniteComponent { .. })
    ));
    assert!(matches!(
        index.insert_batch(&[2, 3], &[1.0; 5]),
        Err(EngineError::BulkLengthMismatch { .. })
    ));
    assert_eq!(
        index.insert_batch(&[2, 2], &[1.0; 6]),
        Err(EngineError::DuplicateRowId(2))
    );
    assert!(matches!(
        index.insert_batch(&[2, 3], &[1.0, 1.0, 1.0, 1.0, f32::NAN, 1.0]),
        Err(EngineError::NonFiniteComponent { .. })
    ));
    assert_eq!(index.len(), 1, "failed batches add nothing");
    // Huge (but finite) values do not panic.
    index
        .insert(5, &[f32::MAX, -f32::MAX, f32::MAX])
        .expect("insert");
    let got = index
        .search(&[f32::MAX, f32::MAX, 0.0], 5, 0, None)
        .expect("search");
    assert_eq!(got.len(), 2);
}

#[test]
fn bad_parameters() {
    let p = HnswParams::default();
    for bad in [
        HnswParams { m: 1, ..p },
        HnswParams { m: 0, ..p },
        HnswParams { m: 257, ..p },
        HnswParams {
            ef_construction: 0,
            ..p
        },
        HnswParams {
            ef_construction: 10_001,
            ..p
        },
        HnswParams { ef_search: 0, ..p },
        HnswParams {
            ef_search: usize::MAX,
            ..p
        },
    ] {
        assert!(
            matches!(
                HnswIndex::new(8, Metric::L2, bad),
                Err(EngineError::InvalidParameter { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        HnswIndex::new(0, Metric::L2, p),
        Err(EngineError::InvalidParameter { name: "dim", .. })
    ));
    assert!(matches!(
        HnswIndex::new(1 << 20, Metric::L2, p),
        Err(EngineError::InvalidParameter { name: "dim", .. })
    ));
    // An absurd capacity hint is capped, not allocated.
    let index = HnswIndex::with_capacity(4, Metric::L2, HnswParams { m: 2, ..p }, usize::MAX)
        .expect("capped");
    index.insert(0, &[0.0; 4]).expect("insert");
    assert_eq!(index.len(), 1);
}
