//! kill -9 crash test of the engine through the public API: a child process (this test binary,
//! re-run with `VELA_CRASH_CHILD` set) runs 4 concurrent writers under `synchronous = full`,
//! printing every acknowledged batch; the parent SIGKILLs it at a random moment, reopens the
//! database and checks that every acknowledged batch is present and that no batch is partial.
//! Background sealing, persisting and checkpoints run meanwhile (small thresholds).
//!
//! `VELA_TEST_SEED` replays the kill timings; `VELA_CRASH_ROUNDS` sets the rounds (default 20).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use vela::{
    ColumnDef, ColumnType, Database, EngineOptions, HnswConfig, Key, Metric, Op, Options,
    ScalarType, TableSchema, Value, VectorIndexDef,
};

const ROWS_PER_BATCH: i64 = 5;
const WRITERS: i64 = 4;
const DIM: usize = 8;

fn options() -> Options {
    Options {
        engine: EngineOptions {
            seal_rows: 150,
            default_shards: 2,
            checkpoint_interval: Some(Duration::from_millis(150)),
            background_interval: Duration::from_millis(20),
            merge_below_rows: 400,
            ..EngineOptions::default()
        },
        ..Options::default()
    }
}

fn schema() -> TableSchema {
    TableSchema {
        name: "crash".into(),
        columns: vec![
            ColumnDef {
                name: "id".into(),
                ty: ColumnType::Scalar(ScalarType::BigInt),
                nullable: false,
            },
            ColumnDef {
                name: "batch".into(),
                ty: ColumnType::Scalar(ScalarType::BigInt),
                nullable: false,
            },
            ColumnDef {
                name: "v".into(),
                ty: ColumnType::Vector { dim: DIM as u32 },
                nullable: false,
            },
        ],
        primary_key: 0,
        shards: 2,
        indexes: vec![VectorIndexDef {
            name: "crash_v".into(),
            column: "v".into(),
            metric: Metric::L2,
            hnsw: HnswConfig {
                m: 8,
                ef_construction: 32,
            },
        }],
    }
}

/// A batch id: round, writer, sequence number.
fn batch_id(round: i64, writer: i64, seq: i64) -> i64 {
    round * 100_000_000 + writer * 10_000_000 + seq
}

#[test]
fn child_writer() {
    let Ok(dir) = std::env::var("VELA_CRASH_CHILD") else {
        return;
    };
    let round: i64 = std::env::var("VELA_CRASH_ROUND").unwrap().parse().unwrap();
    let db = Database::open_with(&dir, options()).unwrap();
    if db.schema("crash").is_err() {
        db.create_table(schema()).unwrap();
        println!("CREATED");
    }
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = db.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for seq in 0.. {
                    let b = batch_id(round, w, seq);
                    let ops = (0..ROWS_PER_BATCH)
                        .map(|i| {
                            let v: Vec<f32> =
                                (0..DIM).map(|d| ((b + i + d as i64) % 97) as f32).collect();
                            Op::Insert(vec![
                                Value::BigInt(b * 10 + i),
                                Value::BigInt(b),
                                Value::Vector(v),
                            ])
                        })
                        .collect();
                    db.write("crash", ops).unwrap();
                    if seq % 7 == 3 {
                        // Delete one row of an earlier batch of ours: deletes are batches too.
                        let victim = batch_id(round, w, seq - 3) * 10;
                        db.write("crash", vec![Op::Delete(Key::BigInt(victim))])
                            .unwrap();
                        writeln!(out.lock().unwrap(), "DEL {victim}").unwrap();
                    }
                    writeln!(out.lock().unwrap(), "ACK {b}").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn kill_9_loses_no_acknowledged_batch() {
    if std::env::var("VELA_CRASH_CHILD").is_ok() {
        return;
    }
    let seed: u64 = std::env::var("VELA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("kill_9_loses_no_acknowledged_batch: VELA_TEST_SEED={seed}");
    let rounds: i64 = std::env::var("VELA_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: HashSet<i64> = HashSet::new();
    let mut deleted: HashSet<i64> = HashSet::new();
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env("VELA_CRASH_CHILD", dir.path())
            .env("VELA_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push(line);
                }
            })
        };
        // Wait until the child acknowledged something (or a bounded time), then a random delay.
        for _ in 0..400 {
            if lines.lock().unwrap().iter().any(|l| l.starts_with("ACK")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..250)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let lines = lines.lock().unwrap().clone();
        let mut round_acks = 0;
        for l in &lines {
            if let Some(b) = l.strip_prefix("ACK ") {
                acked.insert(b.parse().unwrap());
                round_acks += 1;
            } else if let Some(k) = l.strip_prefix("DEL ") {
                deleted.insert(k.parse().unwrap());
            }
        }

        let db = Database::open_with(dir.path(), options()).unwrap();
        let rows = db.scan("crash", None).unwrap();
        let mut per_batch: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
        for r in &rows {
            let (Value::BigInt(id), Value::BigInt(b)) = (&r.values[0], &r.values[1]) else {
                panic!("bad row {r:?}")
            };
            per_batch.entry(*b).or_default().insert(*id);
        }
        // Row 0 of a batch with seq % 7 == 0 is deleted later by its writer (its own batch,
        // acknowledged or not); every other row of an acknowledged batch must be there.
        let deletable = |b: i64, i: i64| i == 0 && (b % 10_000_000) % 7 == 0;
        for b in &acked {
            for i in 0..ROWS_PER_BATCH {
                let id = b * 10 + i;
                let present = per_batch.get(b).is_some_and(|s| s.contains(&id));
                assert!(
                    present || deleted.contains(&id) || deletable(*b, i),
                    "round {round}: row {id} of acknowledged batch {b} is missing (seed {seed})"
                );
            }
        }
        for (b, ids) in &per_batch {
            for i in 0..ROWS_PER_BATCH {
                assert!(
                    ids.contains(&(b * 10 + i)) || deletable(*b, i),
                    "round {round}: batch {b} is partial: {ids:?} (seed {seed})"
                );
            }
        }
        // Search works over what was recovered and sees only live rows.
        if !rows.is_empty() {
            let q = vec![1.0f32; DIM];
            let hits = db.search("crash", "v", &q, 10, None).unwrap();
            assert_eq!(hits.len(), rows.len().min(10));
        }
        println!(
            "round {round}: {round_acks} acks, {} rows recovered, {} acknowledged batches in total",
            rows.len(),
            acked.len()
        );
        db.close().unwrap();
        drop(db);
    }
}
