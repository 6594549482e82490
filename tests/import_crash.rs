//! Atomicity of `vela import` under kill -9 (issue 6, item 4).
//!
//! A child `vela import` loads a generated Parquet file into an indexed table in fixed batches
//! of `BATCH` rows; the parent SIGKILLs it at a random moment (seeded: `VELA_TEST_SEED`), then
//! reopens the database and checks that it opens and that the table holds exactly file rows
//! `0..n` for some `n` that is a whole number of batches (or the whole file), every row intact.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vela::{ColumnType, Database, Key, Metric, ScalarType, Value};

const VELA: &str = env!("CARGO_BIN_EXE_vela");
const ROWS: usize = 12_000;
const BATCH: usize = 300;
const DIM: usize = 8;
const ROUNDS: usize = 10;

fn vector(i: usize) -> Vec<f32> {
    (0..DIM).map(|j| i as f32 * 0.25 + j as f32).collect()
}

fn text(i: usize) -> String {
    format!("row {i}")
}

fn write_file(path: &Path) {
    let batches: Vec<RecordBatch> = (0..ROWS)
        .step_by(4096)
        .map(|start| {
            let ids: Vec<usize> = (start..(start + 4096).min(ROWS)).collect();
            let vectors = common::vectors(ids.iter().map(|&i| vector(i)), DIM);
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("text", DataType::Utf8, true),
                Field::new("embedding", vectors.data_type().clone(), true),
            ]));
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(ids.iter().map(|&i| i as i64))),
                Arc::new(StringArray::from_iter_values(ids.iter().map(|&i| text(i)))),
                Arc::new(vectors),
            ];
            RecordBatch::try_new(schema, columns).unwrap()
        })
        .collect();
    common::write_parquet(path, &batches, 8192);
}

fn create_table(dir: &Path) {
    let db = Database::open(dir).unwrap();
    db.create_table(common::table(
        "t",
        &[
            ("id", ColumnType::Scalar(ScalarType::BigInt)),
            ("text", ColumnType::Scalar(ScalarType::Text)),
            ("embedding", ColumnType::Vector { dim: DIM as u32 }),
        ],
        Some(("embedding", Metric::L2)),
    ))
    .unwrap();
    db.close().unwrap();
}

/// Reopens the database and checks the table: rows `0..n`, `n` a whole number of batches.
fn check(dir: &Path, round: usize) -> usize {
    let db = Database::open(dir)
        .unwrap_or_else(|e| panic!("round {round}: the database does not open: {e}"));
    let rows = db.scan("t", None).unwrap();
    let n = rows.len();
    assert!(
        n.is_multiple_of(BATCH) || n == ROWS,
        "round {round}: {n} rows is not a whole number of {BATCH}-row batches"
    );
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(
            row.key(),
            Key::BigInt(i as i64),
            "round {round}: rows are not 0..{n}"
        );
        assert_eq!(
            row.values.to_vec(),
            vec![
                Value::BigInt(i as i64),
                Value::Text(text(i)),
                Value::Vector(vector(i))
            ],
            "round {round}: row {i} is not intact"
        );
    }
    if n > 0 {
        // The index works after recovery: the nearest neighbour of a loaded row is itself.
        let probe = n / 2;
        let hits = db
            .search("t", "embedding", &vector(probe), 1, None)
            .unwrap();
        assert_eq!(
            hits[0].row.key(),
            Key::BigInt(probe as i64),
            "round {round}"
        );
    }
    db.close().unwrap();
    n
}

fn import(dir: &Path, file: &Path) -> std::process::Child {
    Command::new(VELA)
        .arg("import")
        .arg(dir)
        .args(["--table", "t"])
        .arg(file)
        .args(["--batch-rows", &BATCH.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("VELA_LOG")
        .spawn()
        .expect("spawn vela import")
}

#[test]
fn kill_9_during_import_leaves_whole_batches() {
    let mut rng = StdRng::seed_from_u64(common::seed("kill_9_during_import_leaves_whole_batches"));
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("rows.parquet");
    write_file(&file);

    // A full run first: it succeeds, and its duration bounds the kill times.
    let dir = work.path().join("full");
    create_table(&dir);
    let started = Instant::now();
    let status = import(&dir, &file).wait().unwrap();
    let full = started.elapsed();
    assert!(
        status.success(),
        "the uninterrupted import failed: {status:?}"
    );
    assert_eq!(check(&dir, 0), ROWS);
    eprintln!("full import: {full:?}");

    let mut seen = Vec::new();
    for round in 1..=ROUNDS {
        let dir = work.path().join(format!("round{round}"));
        create_table(&dir);
        let delay = full.mul_f64(rng.random_range(0.0..0.9));
        let mut child = import(&dir, &file);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; the child may already have finished.
        let status = child.wait().unwrap();
        let n = check(&dir, round);
        eprintln!("round {round}: killed after {delay:?} ({status:?}): {n} rows");
        seen.push(n);
    }
    // The kills landed at different points (not all before the first or after the last batch).
    assert!(
        seen.iter().any(|&n| n > 0 && n < ROWS),
        "no kill landed mid-import: {seen:?}"
    );
}
