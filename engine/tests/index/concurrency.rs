//! Inserts while searches run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::common::{clustered, queries_like, recall, rng, seed};
use vela_engine::index::{HnswIndex, HnswParams, Metric};

#[test]
fn inserts_and_deletes_while_searching() {
    let s = seed("inserts_and_deletes_while_searching", 21);
    let mut r = rng(s);
    let dim = 16;
    let n = 6_000;
    let (data, _) = clustered(&mut r, n, dim, 20);
    let queries = queries_like(&data, dim, &mut r, 100);
    let index = Arc::new(
        HnswIndex::new(
            dim,
            Metric::L2,
            HnswParams {
                seed: s,
                ..HnswParams::default()
            },
        )
        .expect("new"),
    );
    let done = Arc::new(AtomicBool::new(false));
    let searcher = {
        let (index, done, queries) = (index.clone(), done.clone(), queries.clone());
        std::thread::spawn(move || {
            let mut searches = 0usize;
            while !done.load(Ordering::Acquire) {
                for q in queries.chunks_exact(dim) {
                    let got = index.search(q, 10, 32, None).expect("search");
                    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
                    searches += 1;
                }
            }
            searches
        })
    };
    let data = Arc::new(data);
    let writers: Vec<_> = (0..2)
        .map(|t| {
            let (index, data) = (index.clone(), data.clone());
            std::thread::spawn(move || {
                for i in (t..n).step_by(2) {
                    index
                        .insert(i as u64, &data[i * dim..(i + 1) * dim])
                        .expect("insert");
                    if i % 10 == 9 {
                        index.delete(i as u64 - 4);
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, Ordering::Release);
    let searches = searcher.join().expect("searcher");
    println!("{searches} searches ran during the inserts");
    assert_eq!(index.node_count(), n);
    let rec = recall(&index, &queries, dim, 10, 64, None);
    println!("recall@10 after concurrent build: {rec:.4}");
    assert!(rec >= 0.95, "recall {rec}");
}

#[test]
fn batch_insert_into_a_growing_index() {
    let s = seed("batch_insert_into_a_growing_index", 8);
    let mut r = rng(s);
    let dim = 24;
    let (data, _) = clustered(&mut r, 4_000, dim, 10);
    let queries = queries_like(&data, dim, &mut r, 50);
    let index = HnswIndex::new(dim, Metric::InnerProduct, HnswParams::default()).expect("new");
    for (c, chunk) in data.chunks(1_000 * dim).enumerate() {
        let ids: Vec<u64> = (c as u64 * 1_000..c as u64 * 1_000 + 1_000).collect();
        index.insert_batch(&ids, chunk).expect("batch");
    }
    assert_eq!(index.len(), 4_000);
    let rec = recall(&index, &queries, dim, 10, 64, None);
    println!("recall@10 {rec:.4}");
    assert!(rec >= 0.9, "recall {rec}");
}
