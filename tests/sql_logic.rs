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

/// Filters pushed into an index search after a reopen, when the rows of sealed segments keep
/// their vectors only in the graphs: a filter on a scalar column must not need them, and a
/// filter reading the vector column must see the real values (the query layer tells the
/// engine which columns its filter reads). Results equal brute force over the same rows.
#[test]
fn filtered_searches_after_a_reopen_see_the_vectors_they_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut options = vela::Options::default();
    options.engine.seal_rows = 200;
    let vector = |i: i64| {
        [
            (i % 7) as f32,
            (i % 11) as f32,
            (i % 13) as f32,
            (i / 100) as f32,
        ]
    };
    // (id, cat, emb)
    type TestRow = (i64, i64, [f32; 4]);
    let rows: Vec<TestRow> = (0..1_000).map(|i| (i, i % 5, vector(i))).collect();
    {
        let db = vela::Database::open_with(tmp.path(), options.clone()).expect("open");
        let mut c = db.connect();
        c.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, cat BIGINT, emb VECTOR(4)) WITH (shards = 1);
             CREATE INDEX ON t USING hnsw (emb vector_l2_ops)",
            &[],
        )
        .expect("schema");
        for chunk in rows.chunks(100) {
            let values: Vec<String> = chunk
                .iter()
                .map(|(id, cat, v)| {
                    format!("({id}, {cat}, '[{},{},{},{}]')", v[0], v[1], v[2], v[3])
                })
                .collect();
            c.execute(&format!("INSERT INTO t VALUES {}", values.join(",")), &[])
                .expect("insert");
        }
        db.close().expect("close");
    }
    let db = vela::Database::open_with(tmp.path(), options).expect("reopen");
    let mut c = db.connect();
    let q = [1.0f32, 2.0, 3.0, 4.0];
    let l2_squared = |v: &[f32; 4], to: &[f32; 4]| -> f32 {
        v.iter().zip(to).map(|(a, b)| (a - b) * (a - b)).sum()
    };
    let dist = |v: &[f32; 4]| l2_squared(v, &q);
    let norm = |v: &[f32; 4]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
    let expect = |keep: &dyn Fn(&TestRow) -> bool| {
        let mut hits: Vec<(f32, i64)> = rows
            .iter()
            .filter(|r| keep(r))
            .map(|r| (dist(&r.2), r.0))
            .collect();
        hits.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        hits.iter()
            .take(5)
            .map(|h| h.1.to_string())
            .collect::<Vec<_>>()
    };
    let ids = |c: &mut vela::Connection, sql: &str| -> Vec<String> {
        let batches = c.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        batches
            .iter()
            .flat_map(|b| {
                (0..b.num_rows()).filter_map(|r| vela_query::cell_text(b.column(0).as_ref(), r))
            })
            .collect()
    };
    let by_cat = ids(
        &mut c,
        "SELECT id FROM t WHERE cat = 3 ORDER BY emb <-> '[1,2,3,4]' LIMIT 5",
    );
    assert_eq!(by_cat, expect(&|r| r.1 == 3));
    let by_norm = ids(
        &mut c,
        "SELECT id FROM t WHERE vector_norm(emb) > 12 ORDER BY emb <-> '[1,2,3,4]' LIMIT 5",
    );
    assert_eq!(by_norm, expect(&|r| norm(&r.2) > 12.0));
    let both = ids(
        &mut c,
        "SELECT id FROM t WHERE cat = 1 AND emb <-> '[6,10,12,9]' < 30 ORDER BY emb <-> '[1,2,3,4]' LIMIT 5",
    );
    let far = [6.0f32, 10.0, 12.0, 9.0];
    let l2 = |v: &[f32; 4]| l2_squared(v, &far).sqrt();
    assert_eq!(both, expect(&|r| r.1 == 1 && l2(&r.2) < 30.0));
}
