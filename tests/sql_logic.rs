//! Runs `tests/sql/*.slt` through the facade's SQL entry point against the real engine (RocksDB
//! store and WAL in a temporary directory), each file in a fresh database. The query crate runs
//! the same files against its in-memory engine.

#[path = "../query/tests/support/slt_db.rs"]
mod slt_db;

use std::path::PathBuf;
use std::sync::Arc;

use vela_query::Session;

#[test]
fn slt_files_pass_on_the_real_engine() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    slt_db::run_slt_dir(&dir, |file| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let db = vela::Database::open(tmp.path()).expect("open database");
        slt_db::run_slt_file(file, "vela", move || {
            Session::new(Arc::new(vela::EngineAdapter::new(db.clone())))
        })
    });
}

/// EXPLAIN ANALYZE on the real engine: per-node rows and times from the executor's spans, and
/// the engine's own `search` span as a stage of its own.
#[test]
fn explain_analyze_reads_the_engines_search_span() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = vela::Database::open(tmp.path()).expect("open database");
    let mut c = db.connect();
    c.execute(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, emb VECTOR(2));
         INSERT INTO t VALUES (1, '[0,0]'), (2, '[1,0]'), (3, '[0,2]');
         CREATE INDEX ON t USING hnsw (emb vector_l2_ops)",
        &[],
    )
    .expect("schema");
    let batches = c
        .query(
            "EXPLAIN ANALYZE SELECT id FROM t ORDER BY emb <-> '[0,0]' LIMIT 2",
            &[],
        )
        .expect("explain analyze");
    let lines: Vec<String> = batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).filter_map(|r| vela_query::cell_text(b.column(0).as_ref(), r))
        })
        .collect();
    let index = lines
        .iter()
        .find(|l| l.contains("Index Scan using"))
        .expect("an index scan");
    assert!(index.contains("rows=2)"), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("Engine Search Time: ")),
        "{lines:#?}"
    );
}

/// A prepared statement follows a schema change made through the engine API, not SQL: the
/// plan cache's check (the engine's catalog version) sees it.
#[test]
fn prepared_statements_see_schema_changes_made_through_the_api() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = vela::Database::open(tmp.path()).expect("open database");
    let mut c = db.connect();
    c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, a TEXT)", &[])
        .expect("create");
    let prepared = c.prepare("SELECT * FROM t").expect("prepare");
    let width = |c: &mut vela::Connection| {
        c.execute_prepared(&prepared, &[]).expect("run")[0]
            .schema
            .fields()
            .len()
    };
    assert_eq!(width(&mut c), 2);
    let before = db.engine().catalog_version();
    db.execute("INSERT INTO t VALUES (1, 'x')", &[])
        .expect("insert");
    assert_eq!(db.engine().catalog_version(), before, "a write moved it");
    db.drop_table("t").expect("drop");
    let mut schema = db
        .connect()
        .execute(
            "CREATE TABLE u (id BIGINT PRIMARY KEY, a TEXT, b BIGINT)",
            &[],
        )
        .map(|_| db.schema("u").expect("schema u"))
        .expect("create u");
    schema.name = "t".into();
    db.create_table(schema).expect("create t through the API");
    assert_eq!(width(&mut c), 3);
}
