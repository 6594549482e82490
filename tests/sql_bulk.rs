//! SQL at scale against the real engine: recall@10 through SQL (HNSW and the exact top-k, with
//! and without a WHERE filter, as prepared statements), and COPY's streaming, progress hook and
//! atomicity (whole batches only; errors naming the file row and the rows committed).
//!
//! Randomised tests print their seed and take `VELA_TEST_SEED` to replay it.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use arrow::record_batch::RecordBatch;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vela::{Connection, Database, Value};

use common::seed;

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column(0).as_primitive::<Int64Type>();
        for i in 0..col.len() {
            out.push(col.value(i));
        }
    }
    out
}

fn count(conn: &mut Connection, table: &str) -> i64 {
    let batches = conn
        .query(&format!("SELECT count(*) FROM {table}"), &[])
        .expect("count");
    ids(&batches)[0]
}

fn explain(conn: &mut Connection, sql: &str, params: &[Value]) -> String {
    let batches = conn
        .query(&format!("EXPLAIN {sql}"), params)
        .expect("explain");
    let mut out = String::new();
    for b in &batches {
        let col = b.column(0).as_string::<i32>();
        for i in 0..col.len() {
            out.push_str(col.value(i));
            out.push('\n');
        }
    }
    out
}

fn vector_text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// `n` points of dimension `dim` around `clusters` centres; `(id, cat, vector)`.
fn clustered(rng: &mut StdRng, n: usize, dim: usize, clusters: usize) -> Vec<(i64, i64, Vec<f32>)> {
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect();
    (0..n)
        .map(|i| {
            let c = &centres[rng.random_range(0..clusters)];
            let v = c
                .iter()
                .map(|x| x + rng.random_range(-0.15f32..0.15))
                .collect();
            (i as i64, (i % 10) as i64, v)
        })
        .collect()
}

fn write_csv(path: &Path, rows: &[(i64, i64, Vec<f32>)]) {
    let mut text = String::from("id,cat,embedding\n");
    for (id, cat, v) in rows {
        text.push_str(&format!("{id},{cat},\"{}\"\n", vector_text(v)));
    }
    std::fs::write(path, text).expect("write csv");
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn brute_force(
    rows: &[(i64, i64, Vec<f32>)],
    q: &[f32],
    k: usize,
    keep: impl Fn(i64) -> bool,
) -> Vec<i64> {
    let mut d: Vec<(f32, i64)> = rows
        .iter()
        .filter(|r| keep(r.1))
        .map(|r| (l2(&r.2, q), r.0))
        .collect();
    d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    d.into_iter().take(k).map(|x| x.1).collect()
}

/// Mean recall@10 of `sql` (parameters: the query vector, then `extra`) against brute force.
fn recall(
    conn: &mut Connection,
    sql: &str,
    extra: &[Value],
    rows: &[(i64, i64, Vec<f32>)],
    queries: &[Vec<f32>],
    keep: impl Fn(i64) -> bool + Copy,
) -> f64 {
    let stmt = conn.prepare(sql).expect("prepare");
    let mut found = 0usize;
    let mut wanted = 0usize;
    for q in queries {
        let mut params = vec![Value::Vector(q.clone())];
        params.extend_from_slice(extra);
        let result = conn.execute_prepared(&stmt, &params).expect("query");
        let got: HashSet<i64> = ids(&result[0].batches).into_iter().collect();
        let truth = brute_force(rows, q, 10, keep);
        wanted += truth.len();
        found += truth.iter().filter(|id| got.contains(id)).count();
    }
    found as f64 / wanted.max(1) as f64
}

#[test]
fn recall_at_10_through_sql() {
    let seed = seed("recall_at_10_through_sql");
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = clustered(&mut rng, 5000, 32, 40);
    let queries: Vec<Vec<f32>> = (0..50)
        .map(|_| {
            let base = &rows[rng.random_range(0..rows.len())].2;
            base.iter()
                .map(|x| x + rng.random_range(-0.1f32..0.1))
                .collect()
        })
        .collect();

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    let mut conn = db.connect();
    conn.execute(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, cat BIGINT, embedding VECTOR(32)) WITH (shards = 2)",
        &[],
    )
    .expect("create");
    let csv = dir.path().join("items.csv");
    write_csv(&csv, &rows);
    let r = conn
        .execute(
            &format!(
                "COPY items FROM '{}' WITH (FORMAT csv, HEADER true)",
                csv.display()
            ),
            &[],
        )
        .expect("copy");
    assert_eq!(r[0].tag, "COPY 5000");
    assert_eq!(count(&mut conn, "items"), 5000);

    let plain = "SELECT id FROM items ORDER BY embedding <-> $1 LIMIT 10";
    let filtered = "SELECT id FROM items WHERE cat < $2 ORDER BY embedding <-> $1 LIMIT 10";

    // The plan of a query (the first query vector, and `cat < 3` when filtered) names `scan`.
    let plan_uses = |conn: &mut Connection, sql: &str, scan: &str| {
        let mut params = vec![Value::Vector(queries[0].clone())];
        if sql == filtered {
            params.push(Value::BigInt(3));
        }
        let plan = explain(conn, sql, &params);
        assert!(plan.contains(scan), "{plan}");
        if sql == filtered {
            assert!(plan.contains("Filter: (cat <"), "{plan}");
        }
        plan
    };
    // Recall of the filtered query over the rows with `cat < below`.
    let recall_below = |conn: &mut Connection, below: i64| {
        let extra = [Value::BigInt(below)];
        recall(conn, filtered, &extra, &rows, &queries, |c| c < below)
    };

    // No index: the engine's exact top-k, which must be exact.
    let plan = plan_uses(&mut conn, plain, "Exact Top-K Scan on items");
    assert!(plan.contains("Top-N Sort"), "{plan}");
    let exact = recall(&mut conn, plain, &[], &rows, &queries, |_| true);
    assert_eq!(exact, 1.0, "exact search through SQL must be exact");
    plan_uses(&mut conn, filtered, "Exact Top-K Scan on items");
    let exact_f = recall_below(&mut conn, 3);
    assert_eq!(
        exact_f, 1.0,
        "exact filtered search through SQL must be exact"
    );

    conn.execute(
        "CREATE INDEX ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 200)",
        &[],
    )
    .expect("index");
    plan_uses(&mut conn, plain, "Index Scan using");
    let r = recall(&mut conn, plain, &[], &rows, &queries, |_| true);
    println!("recall@10 through SQL (hnsw, ef_search default): {r:.4}");
    assert!(r >= 0.95, "recall@10 {r} < 0.95");
    plan_uses(&mut conn, filtered, "Index Scan using");
    let rf = recall_below(&mut conn, 3);
    println!("recall@10 through SQL (hnsw, WHERE cat < 3, 30% of rows): {rf:.4}");
    assert!(rf >= 0.95, "filtered recall@10 {rf} < 0.95");
    let rs = recall_below(&mut conn, 1);
    println!("recall@10 through SQL (hnsw, WHERE cat < 1, 10% of rows): {rs:.4}");
    assert!(rs >= 0.95, "selective filtered recall@10 {rs} < 0.95");
}

/// A CSV of `n` rows `(id, [id, id, id])` where row `bad` (from 1) holds a 2-dimensional vector.
fn csv_with_bad_row(path: &Path, n: usize, bad: usize) {
    let mut text = String::from("id,emb\n");
    for i in 1..=n {
        if i == bad {
            text.push_str(&format!("{i},\"[1,2]\"\n"));
        } else {
            text.push_str(&format!("{i},\"[{i},{i},{i}]\"\n"));
        }
    }
    std::fs::write(path, text).expect("write csv");
}

/// The number after `what` in `message` (`"4096 rows in 1 earlier batch"`).
fn committed_rows(message: &str) -> u64 {
    let at = message
        .find(" row")
        .and_then(|_| message.find("were committed"))
        .expect("message says what was committed");
    let head = &message[..at];
    let marker = head.rfind("; ").expect("clause") + 2;
    head[marker..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in {message}"))
}

#[test]
fn copy_failing_mid_file_keeps_whole_batches_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    let mut conn = db.connect();
    conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, emb VECTOR(3))", &[])
        .expect("create");
    let csv = dir.path().join("bad.csv");
    csv_with_bad_row(&csv, 20_000, 9_000);
    let err = conn
        .execute(&format!("COPY t FROM '{}'", csv.display()), &[])
        .expect_err("a bad row fails the COPY");
    let msg = err.to_string();
    println!("{}", err.report());
    assert_eq!(err.code(), "22000");
    assert!(msg.contains("bad.csv: row 9000, column \"emb\""), "{msg}");
    assert!(msg.contains("was not applied"), "{msg}");
    let committed = committed_rows(&msg);
    assert!(committed > 0 && committed < 9000, "{msg}");
    // Exactly the committed batches, a prefix of the file: never part of the failing batch.
    assert_eq!(count(&mut conn, "t") as u64, committed);
    let max = ids(&conn.query("SELECT max(id) FROM t", &[]).expect("max"))[0];
    assert_eq!(max as u64, committed);

    // A duplicate key against the rows now in the table, past the first batch of the file.
    let csv2 = dir.path().join("more.csv");
    let mut text = String::from("id,emb\n");
    // The first batch is at most 8,192 rows: the duplicate is in a later one.
    for i in 0..20_000u64 {
        let id = committed + 1 + i;
        let id = if i == 12_000 { 1 } else { id };
        text.push_str(&format!("{id},\"[0,0,{i}]\"\n"));
    }
    std::fs::write(&csv2, text).expect("write");
    let err = conn
        .execute(&format!("COPY t FROM '{}'", csv2.display()), &[])
        .expect_err("duplicate key");
    let msg = err.to_string();
    println!("{}", err.report());
    assert_eq!(err.code(), "23505");
    assert!(
        msg.contains("row 12001, column \"id\": duplicate key value 1 already exists"),
        "{msg}"
    );
    let committed2 = committed_rows(&msg);
    assert!(committed2 > 0 && committed2 < 12_001, "{msg}");
    assert_eq!(count(&mut conn, "t") as u64, committed + committed2);

    // The database is still fine: reopen it and find the same rows.
    drop(conn);
    drop(db);
    let db = Database::open(dir.path().join("db")).expect("reopen");
    let mut conn = db.connect();
    assert_eq!(count(&mut conn, "t") as u64, committed + committed2);
}

#[test]
fn copy_round_trip_with_progress_and_bad_files() {
    let seed = seed("copy_round_trip_with_progress_and_bad_files");
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = clustered(&mut rng, 12_000, 8, 5);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(dir.path().join("db")).expect("open");
    let mut conn = db.connect();
    conn.execute(
        "CREATE TABLE a (id BIGINT PRIMARY KEY, cat BIGINT, embedding VECTOR(8)); \
         CREATE TABLE b (id BIGINT PRIMARY KEY, cat BIGINT, embedding VECTOR(8))",
        &[],
    )
    .expect("create");
    let csv = dir.path().join("a.csv");
    write_csv(&csv, &rows);

    // (rows done, rows total) as the progress hook saw them.
    type ProgressCalls = Arc<Mutex<Vec<(u64, Option<u64>)>>>;
    let calls: ProgressCalls = Arc::default();
    let sink = calls.clone();
    conn.set_progress(move |done, total| sink.lock().expect("lock").push((done, total)));
    conn.execute(&format!("COPY a FROM '{}'", csv.display()), &[])
        .expect("copy csv");
    {
        let calls = calls.lock().expect("lock");
        assert!(calls.len() >= 2, "one call per batch: {calls:?}");
        assert_eq!(
            calls.last(),
            Some(&(12_000, None)),
            "CSV has no known total"
        );
        assert!(calls.windows(2).all(|w| w[0].0 < w[1].0));
    }
    calls.lock().expect("lock").clear();

    let pq = dir.path().join("a.parquet");
    let r = conn
        .execute(&format!("COPY a TO '{}'", pq.display()), &[])
        .expect("export");
    assert_eq!(r[0].tag, "COPY 12000");
    assert_eq!(
        calls.lock().expect("lock").last(),
        Some(&(12_000, Some(12_000)))
    );
    calls.lock().expect("lock").clear();

    let r = conn
        .execute(&format!("COPY b FROM '{}'", pq.display()), &[])
        .expect("import parquet");
    assert_eq!(r[0].tag, "COPY 12000");
    assert_eq!(
        calls.lock().expect("lock").last(),
        Some(&(12_000, Some(12_000)))
    );
    conn.clear_progress();

    // Same rows, same vectors.
    let dump = |conn: &mut Connection, table: &str| -> Vec<String> {
        let batches = conn
            .query(
                &format!("SELECT id, cat, embedding FROM {table} ORDER BY id"),
                &[],
            )
            .expect("dump");
        let mut out = Vec::new();
        for b in &batches {
            for r in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|c| vela_query::cell_text(c.as_ref(), r).unwrap_or_default())
                    .collect();
                out.push(cells.join("|"));
            }
        }
        out
    };
    let da = dump(&mut conn, "a");
    assert_eq!(da.len(), 12_000);
    assert_eq!(da, dump(&mut conn, "b"));
    assert_eq!(count(&mut conn, "b"), 12_000);

    // Truncated at several points: always a clean 22P04 (or a row error), never a panic, and
    // never more rows than the file's whole batches.
    let bytes = std::fs::read(&pq).expect("read parquet");
    for cut in [
        0,
        8,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 9,
        bytes.len() - 1,
    ] {
        let t = dir.path().join(format!("cut{cut}.parquet"));
        std::fs::write(&t, &bytes[..cut]).expect("write");
        conn.execute("TRUNCATE b", &[]).expect("truncate");
        let err = conn
            .execute(&format!("COPY b FROM '{}'", t.display()), &[])
            .expect_err("truncated file");
        assert_eq!(err.code(), "22P04", "cut at {cut}: {}", err.report());
        assert_eq!(count(&mut conn, "b"), 0, "cut at {cut}");
    }
}
