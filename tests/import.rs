//! End-to-end tests of `vela import` (issue 6): the sample with `--create` then queried through
//! `vela -c`; fvecs; CSV with and without a header; every bad input gives `ERROR <code>: ...`
//! naming the file (and row and column where one applies), exit status 1, and leaves the table
//! with whole batches only.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use vela::{Database, Key, Value};
use vela_datasets::write_fvecs;

const VELA: &str = env!("CARGO_BIN_EXE_vela");

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/sample/wordnet-minilm-384.parquet")
}

fn run(args: &[&str]) -> Output {
    Command::new(VELA)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("VELA_LOG")
        .output()
        .expect("run vela")
}

fn import(dir: &Path, table: &str, file: &Path, extra: &[&str]) -> Output {
    let (dir, file) = (dir.to_str().unwrap(), file.to_str().unwrap());
    let mut args = vec!["import", dir, "--table", table, file];
    args.extend_from_slice(extra);
    run(&args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "vela failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The error line of a failed import, checked for exit status 1 and the `ERROR <code>:` form.
fn fails(o: &Output, code: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.starts_with(&format!("ERROR {code}: ")),
        "expected ERROR {code}, got: {err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err}");
    err
}

fn sql(dir: &Path, statements: &[&str]) -> String {
    let mut args = vec![dir.to_str().unwrap(), "--format", "csv"];
    for s in statements {
        args.push("-c");
        args.push(s);
    }
    ok(&run(&args))
}

/// Rows of `table`, ordered by key, through the embedded API (the database must be closed).
fn rows(dir: &Path, table: &str) -> Vec<Vec<Value>> {
    let db = Database::open(dir).expect("the database opens");
    let rows = db.scan(table, None).expect("scan");
    let out = rows.iter().map(|r| r.values.to_vec()).collect();
    db.close().unwrap();
    out
}

fn docs_batch(ids: &[i64], dim: usize) -> RecordBatch {
    let vectors = common::vectors(
        ids.iter()
            .map(|&i| (0..dim).map(|j| i as f32 + j as f32 / 10.0).collect()),
        dim,
    );
    let titles = StringArray::from_iter_values(ids.iter().map(|i| format!("doc {i}")));
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("title", DataType::Utf8, true),
            Field::new("embedding", vectors.data_type().clone(), true),
        ])),
        vec![
            Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            Arc::new(titles),
            Arc::new(vectors),
        ],
    )
    .unwrap()
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    common::write_parquet(path, std::slice::from_ref(batch), 65_536);
}

fn create_docs(dir: &Path, dim: usize) {
    sql(
        dir,
        &[&format!(
            "CREATE TABLE docs (id BIGINT PRIMARY KEY, title TEXT, embedding VECTOR({dim}))"
        )],
    );
}

#[test]
fn sample_with_create_then_a_vector_query_in_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let o = import(dir.path(), "docs", &sample(), &["--create"]);
    ok(&o);
    // Not a terminal: nothing but the summary line.
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("imported 2,000 rows into docs in "),
        "{err}"
    );
    assert!(err.contains(" rows/s"), "{err}");

    let out = sql(dir.path(), &["SELECT count(*) FROM docs"]);
    assert_eq!(out.lines().nth(1), Some("2000"), "{out}");
    let q = sql(dir.path(), &["SELECT embedding FROM docs WHERE id = 7"]);
    let q = q.lines().nth(1).unwrap().trim_matches('"').to_string();
    assert!(q.starts_with('[') && q.ends_with(']'), "{q}");
    let query = format!("SELECT id, text FROM docs ORDER BY embedding <=> '{q}' LIMIT 5");
    // Exact (no index), then through an HNSW index.
    for setup in [
        None,
        Some("CREATE INDEX docs_embedding_idx ON docs USING hnsw (embedding vector_cosine_ops)"),
    ] {
        let mut statements: Vec<&str> = setup.into_iter().collect();
        statements.push(&query);
        let out = sql(dir.path(), &statements);
        let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        let header = lines.iter().position(|l| *l == "id,text").expect(&out);
        let hits = &lines[header + 1..];
        assert_eq!(hits.len(), 5, "{out}");
        assert!(hits[0].starts_with("7,"), "{out}");
    }
}

#[test]
fn into_an_existing_table_with_fixed_batches() {
    let dir = tempfile::tempdir().unwrap();
    sql(
        dir.path(),
        &["CREATE TABLE words (id BIGINT PRIMARY KEY, text TEXT, embedding VECTOR(384))"],
    );
    let o = import(dir.path(), "words", &sample(), &["--batch-rows", "300"]);
    ok(&o);
    assert!(
        text(&o.stderr).contains("(7 batches)") || text(&o.stderr).contains(", 7 batches)"),
        "{}",
        text(&o.stderr)
    );
    let r = rows(dir.path(), "words");
    assert_eq!(r.len(), 2000);
    assert_eq!(r[5][0], Value::BigInt(5));
}

#[test]
fn fvecs_rows_are_numbered_from_zero() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("base.fvecs");
    let (n, dim) = (1000usize, 4usize);
    let data: Vec<f32> = (0..n * dim).map(|i| i as f32 * 0.5).collect();
    write_fvecs(&file, dim, &data).unwrap();

    // Into a table of the right shape with other names.
    let dir = work.path().join("db");
    sql(
        &dir,
        &["CREATE TABLE v (vid BIGINT PRIMARY KEY, vec VECTOR(4))"],
    );
    ok(&import(&dir, "v", &file, &["--batch-rows", "128"]));
    let r = rows(&dir, "v");
    assert_eq!(r.len(), n);
    assert_eq!(
        r[3],
        vec![Value::BigInt(3), Value::Vector(vec![6.0, 6.5, 7.0, 7.5])]
    );

    // With --create: (id, embedding).
    ok(&import(
        &dir,
        "w",
        &file,
        &["--create", "--format", "fvecs"],
    ));
    let out = sql(
        &dir,
        &["SELECT id FROM w ORDER BY embedding <-> '[0,0.5,1,1.5]' LIMIT 5"],
    );
    assert_eq!(out, "id\n0\n1\n2\n3\n4\n", "{out}");
}

#[test]
fn csv_with_and_without_a_header() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("db");
    create_docs(&dir, 3);
    let with = work.path().join("docs.csv");
    std::fs::write(
        &with,
        "embedding,id,title\n\"[1,2,3]\",1,one\n\"[4,5,6]\",2,\"two, with a comma\"\n\"[7,8,9]\",3,\n",
    )
    .unwrap();
    ok(&import(&dir, "docs", &with, &[]));
    let without = work.path().join("more.data");
    std::fs::write(&without, "4,four,\"[0,0,1]\"\n").unwrap();
    ok(&import(
        &dir,
        "docs",
        &without,
        &["--format", "csv", "--header", "false"],
    ));
    let r = rows(&dir, "docs");
    assert_eq!(r.len(), 4);
    assert_eq!(r[1][1], Value::Text("two, with a comma".into()));
    assert_eq!(r[2][1], Value::Null);
    assert_eq!(r[3][2], Value::Vector(vec![0.0, 0.0, 1.0]));
    let out = sql(
        &dir,
        &["SELECT id FROM docs ORDER BY embedding <-> '[4,5,6]' LIMIT 1"],
    );
    assert_eq!(out, "id\n2\n");
}

#[test]
fn bad_inputs_are_clear_errors_and_leave_whole_batches() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("db");
    create_docs(&dir, 3);

    // Missing file, a directory, an unknown extension: nothing written.
    let missing = work.path().join("missing.parquet");
    let err = fails(&import(&dir, "docs", &missing, &[]), "58P01");
    assert!(
        err.contains("missing.parquet") && err.contains("nothing was written"),
        "{err}"
    );
    let err = fails(&import(&dir, "docs", work.path(), &[]), "42809");
    assert!(err.contains("is a directory"), "{err}");
    let odd = work.path().join("data.xyz");
    std::fs::write(&odd, "1").unwrap();
    let err = fails(&import(&dir, "docs", &odd, &[]), "22023");
    assert!(err.contains("unknown file format"), "{err}");

    // Corrupt and truncated Parquet.
    let good = work.path().join("good.parquet");
    write_parquet(&good, &docs_batch(&(0..100).collect::<Vec<_>>(), 3));
    let bytes = std::fs::read(&good).unwrap();
    let cut = work.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&import(&dir, "docs", &cut, &[]), "22P04");
    assert!(
        err.contains("cut.parquet") && err.contains("not a readable Parquet file"),
        "{err}"
    );
    let garbage = work.path().join("garbage.parquet");
    std::fs::write(&garbage, b"this is not parquet at all").unwrap();
    fails(&import(&dir, "docs", &garbage, &[]), "22P04");

    // Schema mismatch: every offending column listed.
    let other = work.path().join("other.parquet");
    let b = docs_batch(&[1, 2], 5);
    let renamed = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("headline", DataType::Utf8, true),
            Field::new("embedding", b.column(2).data_type().clone(), true),
        ])),
        b.columns().to_vec(),
    )
    .unwrap();
    write_parquet(&other, &renamed);
    let err = fails(&import(&dir, "docs", &other, &[]), "42804");
    assert!(
        err.contains("other.parquet") && err.contains("2 problems"),
        "{err}"
    );
    assert!(
        err.contains("headline") && err.contains("embedding"),
        "{err}"
    );
    // Unknown table; --create on an existing table.
    fails(&import(&dir, "nope", &good, &[]), "42P01");
    fails(&import(&dir, "docs", &good, &["--create"]), "42P07");
    assert!(rows(&dir, "docs").is_empty());

    // A wrong vector length on file row 8, batches of 3: rows 1-6 (two batches) stay.
    let csv = work.path().join("bad.csv");
    let mut body = String::from("id,title,embedding\n");
    for i in 1..=10 {
        let v = if i == 8 { "[1,2]" } else { "[1,2,3]" };
        body.push_str(&format!("{i},t{i},\"{v}\"\n"));
    }
    std::fs::write(&csv, body).unwrap();
    let err = fails(&import(&dir, "docs", &csv, &["--batch-rows", "3"]), "22000");
    assert!(
        err.contains("bad.csv: row 8, column \"embedding\""),
        "{err}"
    );
    assert!(
        err.contains("6 rows in 2 earlier batches were committed"),
        "{err}"
    );
    let keys: Vec<Value> = rows(&dir, "docs")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(keys, (1..=6).map(Value::BigInt).collect::<Vec<_>>());

    // A key already in the table (file row 3 is key 2), batches of 2: rows 1-2 stay.
    let dup = work.path().join("dup.parquet");
    write_parquet(&dup, &docs_batch(&[100, 101, 2, 102], 3));
    let err = fails(&import(&dir, "docs", &dup, &["--batch-rows", "2"]), "23505");
    assert!(
        err.contains("dup.parquet") && err.contains("row 3, column \"id\""),
        "{err}"
    );
    assert!(err.contains("duplicate key value 2"), "{err}");
    assert!(
        err.contains("2 rows in 1 earlier batch were committed"),
        "{err}"
    );
    // A key repeated inside one batch: nothing of that batch.
    let twice = work.path().join("twice.parquet");
    write_parquet(&twice, &docs_batch(&[200, 201, 200], 3));
    let err = fails(&import(&dir, "docs", &twice, &[]), "23505");
    assert!(
        err.contains("twice.parquet") && err.contains("nothing was written"),
        "{err}"
    );

    let db = Database::open(&dir).unwrap();
    let mut want: Vec<Key> = (1..=6).chain([100, 101]).map(Key::BigInt).collect();
    want.sort();
    assert_eq!(common::keys(&db, "docs"), want);
    db.close().unwrap();
}

#[test]
fn bad_arguments_exit_with_status_2() {
    for args in [
        &["import"][..],
        &["import", "db", "file.parquet"],
        &[
            "import",
            "db",
            "--table",
            "t",
            "f.parquet",
            "--batch-rows",
            "0",
        ],
        &["import", "db", "--table", "t", "f.h5", "--format", "hdf5"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).starts_with("vela import: "),
            "{}",
            text(&o.stderr)
        );
    }
    let help = run(&["import", "--help"]);
    let out = ok(&help);
    assert!(
        out.contains("Atomicity") && out.contains("all or nothing"),
        "{out}"
    );
}
