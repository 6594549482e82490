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

/// Filters that read vectors from the very index they filter (as the engine's filters do for
/// rows that leave their vectors to the graph) while other threads insert one by one, insert
/// in batches and delete: a vector read never waits behind a writer that waits for the
/// searcher's read lock, so nothing deadlocks, and every vector read is the one inserted.
#[test]
fn filters_read_vectors_of_the_searched_index_while_it_grows() {
    let s = seed(
        "filters_read_vectors_of_the_searched_index_while_it_grows",
        5,
    );
    let mut r = rng(s);
    let dim = 8;
    let n = 12_000;
    let (data, _) = clustered(&mut r, n, dim, 10);
    let queries = queries_like(&data, dim, &mut r, 50);
    let data = Arc::new(data);
    let index = Arc::new(HnswIndex::new(dim, Metric::L2, HnswParams::default()).expect("new"));
    index
        .insert_batch(&(0..500).collect::<Vec<u64>>(), &data[..500 * dim])
        .expect("first rows");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writing = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    // One writer inserts rows one at a time (and deletes some), the other in batches of 64.
    for w in 0..2usize {
        let (index, data, done, writing) = (
            index.clone(),
            data.clone(),
            done_tx.clone(),
            writing.clone(),
        );
        std::thread::spawn(move || {
            let rows: Vec<usize> = (500 + w..n).step_by(2).collect();
            if w == 0 {
                for &i in &rows {
                    index
                        .insert(i as u64, &data[i * dim..(i + 1) * dim])
                        .expect("insert");
                    if i % 20 == 0 {
                        index.delete(i as u64 - 10);
                    }
                }
            } else {
                for chunk in rows.chunks(64) {
                    let ids: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
                    let vectors: Vec<f32> = chunk
                        .iter()
                        .flat_map(|&i| data[i * dim..(i + 1) * dim].iter().copied())
                        .collect();
                    index.insert_batch(&ids, &vectors).expect("insert_batch");
                }
            }
            writing.fetch_sub(1, Ordering::Release);
            done.send(()).expect("send");
        });
    }
    for t in 0..2usize {
        let (index, data, queries, done, writing) = (
            index.clone(),
            data.clone(),
            queries.clone(),
            done_tx.clone(),
            writing.clone(),
        );
        std::thread::spawn(move || {
            let mut searches = 0;
            while writing.load(Ordering::Acquire) > 0 || searches < 100 {
                let q = &queries[(searches % 50) * dim..(searches % 50 + 1) * dim];
                // Reads the row's vector from the index being searched (a row deleted
                // meanwhile reads nothing and is left out); keeps rows whose first component
                // is at least the query's.
                let filter = |id: u64| {
                    let mut v = Vec::new();
                    let found = if (id as usize + t).is_multiple_of(2) {
                        index.vector(id).inspect(|x| v = x.clone()).is_some()
                    } else {
                        index.vector_into(id, &mut v)
                    };
                    let want = &data[id as usize * dim..(id as usize + 1) * dim];
                    assert!(!found || v == want, "row {id} reads {v:?}");
                    found && v[0] >= q[0]
                };
                let hits = index
                    .search(q, 10, 32, Some(&filter))
                    .expect("filtered search");
                for (id, _) in hits {
                    let want = &data[id as usize * dim..(id as usize + 1) * dim];
                    assert!(want[0] >= q[0], "hit {id} fails the filter");
                }
                searches += 1;
            }
            done.send(()).expect("send");
        });
    }
    for _ in 0..4 {
        done_rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a writer or searcher is stuck (deadlock?)");
    }
}
