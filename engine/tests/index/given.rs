//! Cosine graphs keep vectors as given (with one inverse norm per node): `vector()` returns
//! them bit for bit, and distances equal the normalised computation up to rounding.

use super::common::{clustered, queries_like, rng, seed};
use vela_engine::index::distance::{normalize, scalar, unit_cosine_distance};
use vela_engine::index::{HnswIndex, HnswParams, Metric};

const DIM: usize = 12;

/// Clustered rows at scales from subnormal-sized to huge, with a zero row and a negative scale.
fn scaled_rows(s: u64, n: usize) -> Vec<f32> {
    let mut r = rng(s);
    let (mut data, _) = clustered(&mut r, n, DIM, 5);
    let scales = [1.0f32, 1e-3, 250.0, -7.5, 1e-41, 1e-20, 1e15, 3e37];
    for (i, row) in data.chunks_exact_mut(DIM).enumerate() {
        let scale = scales[i % scales.len()];
        row.iter_mut().for_each(|x| *x *= scale);
        if i == 17 {
            row.fill(0.0);
        }
    }
    assert!(data.iter().all(|x| x.is_finite()));
    data
}

fn params(seed: u64) -> HnswParams {
    HnswParams {
        m: 8,
        ef_construction: 80,
        seed,
        ..HnswParams::default()
    }
}

#[test]
fn cosine_vectors_come_back_bit_for_bit() {
    let s = seed("cosine_vectors_come_back_bit_for_bit", 6);
    let data = scaled_rows(s, 600);
    let ids: Vec<u64> = (0..600).collect();
    // Half through the parallel build, half one by one, a few through a second batch.
    let index = HnswIndex::build(
        DIM,
        Metric::Cosine,
        params(s),
        &ids[..300],
        &data[..300 * DIM],
    )
    .expect("build");
    for (&id, v) in ids[300..500]
        .iter()
        .zip(data[300 * DIM..500 * DIM].chunks_exact(DIM))
    {
        index.insert(id, v).expect("insert");
    }
    index
        .insert_batch(&ids[500..], &data[500 * DIM..])
        .expect("batch");
    assert!(index.holds_given());
    let loaded = HnswIndex::from_bytes(&index.to_bytes()).expect("round trip");
    assert!(loaded.holds_given());
    let mut out = Vec::new();
    for (&id, v) in ids.iter().zip(data.chunks_exact(DIM)) {
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for idx in [&index, &loaded] {
            assert_eq!(bits(&idx.vector(id).expect("live")), bits(v), "row {id}");
            assert!(idx.vector_into(id, &mut out));
            assert_eq!(bits(&out), bits(v), "row {id} (vector_into)");
        }
    }
}

#[test]
fn cosine_distances_match_the_normalised_computation() {
    let s = seed("cosine_distances_match_the_normalised_computation", 8);
    let data = scaled_rows(s, 400);
    let ids: Vec<u64> = (0..400).collect();
    let index = HnswIndex::build(DIM, Metric::Cosine, params(s), &ids, &data).expect("build");
    let mut r = rng(s ^ 1);
    let mut queries = queries_like(&data[..DIM * 8], DIM, &mut r, 30);
    queries.extend_from_slice(&[0.0; DIM]); // a zero query: every distance is 1
    let unit = |v: &[f32]| {
        let mut u = v.to_vec();
        normalize(&mut u);
        u
    };
    for q in queries.chunks_exact(DIM) {
        let qn = unit(q);
        let exact = index.search_exact(q, 400, None).expect("exact");
        assert_eq!(exact.len(), 400);
        for &(id, d) in &exact {
            let x = &data[id as usize * DIM..(id as usize + 1) * DIM];
            // What the index computed before: both sides normalised, then 1 − dot.
            let before = unit_cosine_distance(&qn, &unit(x));
            let reference = scalar::cosine_distance(q, x);
            assert!((d - before).abs() <= 5e-6, "row {id}: {d} vs {before}");
            assert!(
                (d - reference).abs() <= 5e-6,
                "row {id}: {d} vs {reference}"
            );
            if q.iter().all(|&c| c == 0.0) || x.iter().all(|&c| c == 0.0) {
                assert_eq!(d, 1.0, "row {id}: the zero-vector rule");
            }
        }
        // The graph search returns the same distances for the rows it finds.
        for (id, d) in index.search(q, 10, 100, None).expect("search") {
            let e = exact.iter().find(|h| h.0 == id).expect("listed").1;
            assert_eq!(d, e, "row {id}");
        }
    }
}
