//! The embedded API end to end: Arrow in and out, error codes, the directory lock, durability
//! across reopen, backups (keeping the last N) opened as databases, metrics.

mod common;

use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use vela::{ColumnType, Database, Key, Metric, Options, ScalarType, TableSchema, Value};

use common::keys;

fn schema() -> TableSchema {
    common::table(
        "docs",
        &[
            ("id", ColumnType::Scalar(ScalarType::BigInt)),
            ("title", ColumnType::Scalar(ScalarType::Text)),
            ("price", ColumnType::Scalar(ScalarType::Double)),
            ("embedding", ColumnType::Vector { dim: 2 }),
        ],
        Some(("embedding", Metric::L2)),
    )
}

fn batch(ids: &[i64]) -> RecordBatch {
    let vectors = common::vectors(ids.iter().map(|&i| vec![i as f32, 0.5]), 2);
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("title", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("embedding", vectors.data_type().clone(), true),
        ])),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())),
            Arc::new(StringArray::from(
                ids.iter().map(|i| format!("doc {i}")).collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                ids.iter().map(|&i| i as f64 * 1.5).collect::<Vec<_>>(),
            )),
            Arc::new(vectors),
        ],
    )
    .unwrap()
}

#[test]
fn arrow_round_trip_error_codes_lock_reopen_and_backups() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let opts = Options {
        keep_backups: 2,
        ..Options::default()
    };
    {
        let db = Database::open_with(dir.path(), opts.clone()).unwrap();
        db.create_table(schema()).unwrap();
        assert_eq!(db.create_table(schema()).unwrap_err().code(), "42P07");
        let out = db.insert("docs", &batch(&[1, 2, 3, 4])).unwrap();
        assert_eq!(out.inserted, 4);
        assert_eq!(
            db.insert("docs", &batch(&[5, 2])).unwrap_err().code(),
            "23505"
        );
        assert!(
            db.get("docs", 5).unwrap().is_none(),
            "a rejected batch is all or nothing"
        );
        assert_eq!(db.insert("nope", &batch(&[9])).unwrap_err().code(), "42P01");
        assert_eq!(
            db.search("docs", "embedding", &[1.0], 1, None)
                .unwrap_err()
                .code(),
            "22000"
        );
        assert_eq!(
            db.search("docs", "nope", &[1.0, 1.0], 1, None)
                .unwrap_err()
                .code(),
            "42703"
        );
        // A second open of the same directory is refused while the first is alive.
        let locked = Database::open(dir.path()).unwrap_err();
        assert_eq!(locked.code(), "55006", "{locked}");

        let hits = db
            .search("docs", "embedding", &[3.1, 0.5], 2, None)
            .unwrap();
        assert_eq!(hits[0].row.key(), Key::BigInt(3));
        let cheap = |r: &[Value]| matches!(r[2], Value::Double(p) if p < 3.0);
        let hits = db
            .search("docs", "embedding", &[3.1, 0.5], 2, Some(&cheap))
            .unwrap();
        assert!(hits.iter().all(|h| cheap(&h.row.values)));

        let rows = db.scan("docs", None).unwrap();
        let out = db.rows_to_batch("docs", &rows).unwrap();
        assert_eq!(out.num_rows(), 4);
        assert_eq!(
            out.schema().field(3).data_type(),
            batch(&[1]).schema().field(3).data_type()
        );

        db.delete("docs", &batch(&[4])).unwrap();
        db.upsert("docs", &batch(&[2, 7])).unwrap();
        for _ in 0..3 {
            db.backup(backups.path()).unwrap();
        }
        let kept = std::fs::read_dir(backups.path()).unwrap().count();
        assert_eq!(kept, 2, "keeps the last N backups");
        db.insert("docs", &batch(&[8])).unwrap();
        let m = db.metrics();
        assert_eq!(m.tables[0].live_rows, 5);
        assert!(m.tables[0].write_latency.count >= 4);
    }
    // Reopen: every acknowledged row is back.
    let db = Database::open(dir.path()).unwrap();
    assert_eq!(keys(&db, "docs"), [1, 2, 3, 7, 8].map(Key::BigInt).to_vec());
    // The newest backup opens as a database, without the row written after it.
    let mut all: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    let b = Database::open(all.last().unwrap()).unwrap();
    assert_eq!(keys(&b, "docs"), [1, 2, 3, 7].map(Key::BigInt).to_vec());
    let hits = b.search("docs", "embedding", &[7.0, 0.5], 1, None).unwrap();
    assert_eq!(hits[0].row.key(), Key::BigInt(7));
}

#[test]
fn database_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Database>();
}
