//! The engine over the real storage layer (RocksDB segment store + WAL), and concurrency.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vela_engine::storage_impl::open_storage;
use vela_engine::{Engine, Key, Op, SearchRequest, Value};
use vela_storage::{StoreOptions, WalOptions};

use super::common::*;

fn open(dir: &std::path::Path) -> (Engine, vela_engine::storage_impl::OpenedStorage) {
    let st = open_storage(dir, WalOptions::default(), &StoreOptions::default(), true).unwrap();
    let e = Engine::open(st.log.clone(), st.store.clone(), test_options(64)).unwrap();
    (e, st)
}

/// Reopens `dir` and checks that it holds the rows `before` and that the nearest neighbour of
/// `[id, version, 1]` is row `id`.
fn reopen_and_check(
    dir: &std::path::Path,
    before: &[Arc<vela_engine::Row>],
    id: i64,
    version: i64,
) -> (Engine, vela_engine::storage_impl::OpenedStorage) {
    let (e, st) = open(dir);
    assert_eq!(e.scan("docs", None).unwrap(), before);
    let q = [id as f32, version as f32, 1.0];
    let hits = e.search("docs", &SearchRequest::new("v", &q, 1)).unwrap();
    assert_eq!(hits[0].row.key(), Key::BigInt(id));
    (e, st)
}

fn row(id: i64, version: i64) -> Vec<Value> {
    vec![
        Value::BigInt(id),
        Value::Double(version as f64),
        Value::Text(format!("g{}", id / 4)),
        Value::Vector(vec![id as f32, version as f32, 1.0]),
    ]
}

#[test]
fn rocks_round_trip_with_checkpoints_sealing_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let (e, st) = open(dir.path());
        e.create_table(docs_schema("docs", 3, 2, true)).unwrap();
        for b in 0..20 {
            let ops = (0..25).map(|i| Op::Upsert(row(b * 25 + i, b))).collect();
            e.write("docs", ops).unwrap();
            if b % 7 == 6 {
                e.checkpoint().unwrap();
            }
        }
        e.run_maintenance().unwrap();
        e.write(
            "docs",
            (0..100).map(|i| Op::Delete(Key::BigInt(i * 3))).collect(),
        )
        .unwrap();
        // A second opener of the same directory is refused.
        assert!(matches!(
            open_storage(
                dir.path(),
                WalOptions::default(),
                &StoreOptions::default(),
                true
            ),
            Err(vela_engine::EngineError::Storage(_))
        ));
        before = e.scan("docs", None).unwrap();
        // No close: the last batches are only in the WAL and RocksDB memtables.
        drop(e);
        drop(st);
    }
    let (e, _st) = reopen_and_check(dir.path(), &before, 301, 12);
    e.close().unwrap();
    drop(e);
    drop(_st);
    let (e, _st) = open(dir.path());
    assert_eq!(e.scan("docs", None).unwrap(), before);
    assert!(e.metrics().tables[0].shards.iter().all(|s| s.segments >= 1));
}

/// 4 writers each rewrite whole groups of 4 rows (spread over shards) in one batch; 4 readers
/// scan and search meanwhile and must never see a group with mixed versions (half a batch).
#[test]
fn four_writers_four_readers_see_whole_batches() {
    let (e, _, _) = mem_engine(200);
    e.create_table(docs_schema("docs", 3, 4, true)).unwrap();
    let groups = 16i64;
    e.write(
        "docs",
        (0..groups * 4).map(|id| Op::Insert(row(id, 0))).collect(),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                let mut version = 1;
                while Instant::now() < deadline {
                    let g = (version * 7 + w) % groups;
                    let ops = (0..4)
                        .map(|i| Op::Upsert(row(g * 4 + i, version * 10 + w)))
                        .collect();
                    e.write("docs", ops).unwrap();
                    version += 1;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let e = e.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut checks = 0;
                while !stop.load(Ordering::Relaxed) {
                    let rows = e.scan("docs", None).unwrap();
                    assert_eq!(rows.len() as i64, groups * 4);
                    for g in rows.chunks(4) {
                        assert!(
                            g.iter().all(|x| x.values[1] == g[0].values[1]),
                            "half a batch: {g:?}"
                        );
                    }
                    let q = [r as f32, 3.0, 1.0];
                    let hits = e.search("docs", &SearchRequest::new("v", &q, 8)).unwrap();
                    assert_eq!(hits.len(), 8);
                    checks += 1;
                }
                checks
            })
        })
        .collect();
    let written: usize = writers.into_iter().map(|t| t.join().unwrap()).sum();
    stop.store(true, Ordering::Relaxed);
    let checks: usize = readers.into_iter().map(|t| t.join().unwrap()).sum();
    println!("4 writers: {written} batches; 4 readers: {checks} consistent scans+searches");
    assert!(written > 0 && checks > 0);
    let m = e.metrics();
    assert!(m.tables[0].write_latency.count > 0 && m.tables[0].search_latency.p99_us > 0);
}

/// Over RocksDB: chunks of a rewrite that crashed before its manifest (here written and flushed
/// by hand: one beyond the blob's run, three in the other chunk slot) are skipped by the load
/// and deleted by the segment's next persist.
#[test]
fn rocks_load_skips_a_crashed_rewrites_chunks_and_the_next_persist_deletes_them() {
    use vela_engine::{Cf, StoreBackend, StoreWrite};
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let (e, st) = open(dir.path());
        e.create_table(docs_schema("docs", 3, 1, true)).unwrap();
        e.write("docs", (0..50).map(|i| Op::Upsert(row(i, 1))).collect())
            .unwrap();
        e.link_tails().unwrap();
        e.checkpoint().unwrap();
        let mut manifests = Vec::new();
        st.store
            .scan_prefix(Cf::Index, &[], &mut |k, v| {
                if k.len() == 16 {
                    manifests.push((k.to_vec(), v.to_vec()));
                }
                Ok(true)
            })
            .unwrap();
        assert_eq!(manifests.len(), 1);
        let (key, m) = &manifests[0];
        assert_eq!(m.len(), 21, "manifest with its first chunk");
        let chunks = u32::from_le_bytes(m[5..9].try_into().unwrap());
        let mut batch = StoreWrite {
            lsn: st.store.flushed_lsn(),
            ..StoreWrite::default()
        };
        for c in [chunks, 1 << 31, (1 << 31) + 1, (1 << 31) + 2] {
            let mut k = key.clone();
            k.extend_from_slice(&u32::to_be_bytes(c));
            batch.put(Cf::Index, k, vec![0xAB; 100]);
        }
        st.store.write(batch).unwrap();
        st.store.flush(st.store.flushed_lsn()).unwrap();
        assert_eq!(chunks_in_and_out_of_runs(&*st.store), (chunks as usize, 4));
        before = e.scan("docs", None).unwrap();
        drop(e);
        drop(st);
    }
    let (e, st) = reopen_and_check(dir.path(), &before, 17, 1);
    // A new version makes the segment unpersisted: the checkpoint rewrites it.
    e.write("docs", vec![Op::Upsert(row(50, 1))]).unwrap();
    e.link_tails().unwrap();
    e.checkpoint().unwrap();
    let (in_run, strays) = chunks_in_and_out_of_runs(&*st.store);
    assert_eq!(strays, 0);
    assert!(in_run >= 1);
    let after = e.scan("docs", None).unwrap();
    assert_eq!(after.len(), 51);
    e.close().unwrap();
    drop(e);
    drop(st);
    reopen_and_check(dir.path(), &after, 50, 1);
}
