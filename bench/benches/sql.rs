//! SQL overhead (issue 5, item 9): top-10 vector queries through SQL vs the engine API
//! (`Database::search`) on the same data: 20,000 rows x 128 dimensions with an HNSW index
//! (m = 16, ef_construction = 64), default ef_search on both paths.
//!
//! Four ways to run the same query:
//! - `engine`: `Database::search("bench", "v", q, 10, None)`;
//! - `sql_literal`: `SELECT id FROM bench ORDER BY v <-> '[...]' LIMIT 10` with the vector
//!   written into the text. Each query has two spellings (upper- and lower-case keywords) used
//!   in alternate passes over the queries, so the 400 texts outnumber the text-keyed plan cache
//!   (256) and no execution finds its text there, as for an application sending a new vector
//!   each time. Each spelling is one auto-parameterization template (query/src/autoparam.rs):
//!   every timed execution scans its text for literals, parses the vector literal and runs the
//!   template's cached plan; sqlparser and the binder run only for the first text of a spelling;
//! - `sql_param`: the same with `$1` (the plan cache keyed by text hits), through
//!   `Connection::execute`;
//! - `prepared`: `Connection::prepare` once, `execute_prepared` per query.
//!
//! Before the criterion runs it prints a summary measured in interleaved rounds (every mode runs
//! the same 200 queries in each round, so load from other processes hits all modes alike): the
//! median QPS per mode and the median per-round ratio to `engine`. `VELA_BENCH_SQL_ROWS` sets
//! the row count (default 20,000), `VELA_BENCH_SQL_ROUNDS` the rounds (default 15).
//!
//! `VELA_BENCH_SQL_PROFILE=<mode>` (`engine`, `sql_literal`, `sql_param`, `prepared`) instead
//! runs only that mode, `VELA_BENCH_SQL_ROUNDS` times over the queries, and nothing else: a
//! fixed workload to compare modes under `valgrind --tool=callgrind` (instruction counts do
//! not depend on the machine's load).
//!
//! `cargo bench -p vela-bench --bench sql`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use vela::{Connection, Database, Durability, Op, Options, PreparedStatement, Value};
use vela_bench::Gen;

const DIM: usize = 128;
const K: usize = 10;
const QUERIES: usize = 200;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn vector_text(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

const PARAM_SQL: &str = "SELECT id FROM bench ORDER BY v <-> $1 LIMIT 10";

struct Fixture {
    _dir: tempfile::TempDir,
    db: Database,
    conn: Connection,
    prepared: PreparedStatement,
    queries: Vec<Vec<f32>>,
    params: Vec<Vec<Value>>,
    /// `literal_sql[spelling][i]`: query `i`'s literal text in either spelling.
    literal_sql: [Vec<String>; 2],
    /// The spelling the next pass over the queries uses (see the module docs).
    spelling: usize,
}

fn fixture() -> Fixture {
    let rows = env_usize("VELA_BENCH_SQL_ROWS", 20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = Options {
        durability: Durability::Off,
        ..Options::default()
    };
    let db = Database::open_with(dir.path().join("db"), options).expect("open");
    let mut conn = db.connect();
    conn.execute(
        &format!("CREATE TABLE bench (id BIGINT PRIMARY KEY, v VECTOR({DIM}))"),
        &[],
    )
    .expect("create table");
    let start = Instant::now();
    let mut gen = Gen(0x5eed);
    let mut id = 0i64;
    while (id as usize) < rows {
        let n = 1000.min(rows - id as usize);
        let ops: Vec<Op> = (0..n)
            .map(|_| {
                id += 1;
                Op::Insert(vec![Value::BigInt(id), Value::Vector(gen.vector(DIM))])
            })
            .collect();
        db.write("bench", ops).expect("insert");
    }
    conn.execute(
        "CREATE INDEX bench_v_idx ON bench USING hnsw (v vector_l2_ops) \
         WITH (m = 16, ef_construction = 64)",
        &[],
    )
    .expect("create index");
    eprintln!(
        "sql bench: {rows} rows x {DIM} loaded and indexed in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut qgen = Gen(0xfeed);
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| qgen.vector(DIM)).collect();
    let params = queries
        .iter()
        .map(|q| vec![Value::Vector(q.clone())])
        .collect();
    let literal_sql = [
        queries
            .iter()
            .map(|q| {
                format!(
                    "SELECT id FROM bench ORDER BY v <-> '{}' LIMIT 10",
                    vector_text(q)
                )
            })
            .collect(),
        queries
            .iter()
            .map(|q| {
                format!(
                    "select id from bench order by v <-> '{}' limit 10",
                    vector_text(q)
                )
            })
            .collect(),
    ];
    let prepared = conn.prepare(PARAM_SQL).expect("prepare");
    Fixture {
        _dir: dir,
        db,
        conn,
        prepared,
        queries,
        params,
        literal_sql,
        spelling: 0,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Engine,
    SqlLiteral,
    SqlParam,
    Prepared,
}

const MODES: [Mode; 4] = [
    Mode::Engine,
    Mode::SqlLiteral,
    Mode::SqlParam,
    Mode::Prepared,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Engine => "engine",
            Mode::SqlLiteral => "sql_literal",
            Mode::SqlParam => "sql_param",
            Mode::Prepared => "prepared",
        }
    }
}

impl Fixture {
    /// Runs query `i` one way; returns the number of rows (kept alive through black_box).
    fn run(&mut self, mode: Mode, i: usize) -> usize {
        match mode {
            Mode::Engine => self
                .db
                .search("bench", "v", &self.queries[i], K, None)
                .expect("search")
                .len(),
            Mode::SqlLiteral => rows(self.conn.execute(&self.literal_sql[self.spelling][i], &[])),
            Mode::SqlParam => rows(self.conn.execute(PARAM_SQL, &self.params[i])),
            Mode::Prepared => rows(self.conn.execute_prepared(&self.prepared, &self.params[i])),
        }
    }

    /// The ids each way returns for query `i`.
    fn ids(&mut self, mode: Mode, i: usize) -> Vec<i64> {
        use arrow::array::AsArray;
        use arrow::datatypes::Int64Type;
        match mode {
            Mode::Engine => self
                .db
                .search("bench", "v", &self.queries[i], K, None)
                .expect("search")
                .iter()
                .map(|h| match &h.row.values[0] {
                    Value::BigInt(v) => *v,
                    other => panic!("{other:?}"),
                })
                .collect(),
            _ => {
                let results = match mode {
                    Mode::SqlLiteral => self.conn.execute(&self.literal_sql[self.spelling][i], &[]),
                    Mode::SqlParam => self.conn.execute(PARAM_SQL, &self.params[i]),
                    _ => self.conn.execute_prepared(&self.prepared, &self.params[i]),
                }
                .expect("sql");
                results[0]
                    .batches
                    .iter()
                    .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                    .collect()
            }
        }
    }
}

fn rows(r: Result<Vec<vela::StatementResult>, vela::SqlError>) -> usize {
    let r = r.expect("sql");
    r[0].batches.iter().map(|b| b.num_rows()).sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The interleaved summary described in the module docs.
fn summary(f: &mut Fixture) {
    let rounds = env_usize("VELA_BENCH_SQL_ROUNDS", 15);
    // Same answers every way (the SQL plan is the index top-k, not an exact scan).
    for i in 0..20 {
        let want = f.ids(Mode::Engine, i);
        for m in &MODES[1..] {
            assert_eq!(f.ids(*m, i), want, "{} disagrees with the engine", m.name());
        }
    }
    let plan = f
        .conn
        .execute(&format!("EXPLAIN {}", f.literal_sql[0][0]), &[])
        .expect("explain");
    let plan_text = plan[0]
        .batches
        .iter()
        .map(|b| {
            (0..b.num_rows())
                .filter_map(|r| vela_query::cell_text(b.column(0).as_ref(), r))
                .collect::<Vec<_>>()
                .join(" / ")
        })
        .collect::<Vec<_>>()
        .join(" / ");
    eprintln!("sql bench: plan: {plan_text}");
    // Warm-up (with the spelling round 0 does not use).
    f.spelling = 1;
    for m in MODES {
        for i in 0..QUERIES {
            black_box(f.run(m, i));
        }
    }
    let mut qps: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    let mut ratio: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for round in 0..rounds {
        f.spelling = round % 2;
        let mut this = [0f64; 4];
        // Rotate the order each round so no mode always runs first.
        for k in 0..MODES.len() {
            let mi = (k + round) % MODES.len();
            let start = Instant::now();
            for i in 0..QUERIES {
                black_box(f.run(MODES[mi], i));
            }
            this[mi] = QUERIES as f64 / start.elapsed().as_secs_f64();
        }
        for mi in 0..MODES.len() {
            qps[mi].push(this[mi]);
            ratio[mi].push(this[mi] / this[0]);
        }
    }
    println!("\nSQL overhead: {QUERIES} top-{K} queries x {rounds} interleaved rounds");
    println!("| mode | median QPS | median ratio to engine | min ratio | max ratio |");
    println!("|---|---|---|---|---|");
    for (mi, m) in MODES.iter().enumerate() {
        let r = &ratio[mi];
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {:.3} |",
            m.name(),
            median(qps[mi].clone()),
            median(r.clone()),
            r.iter().cloned().fold(f64::INFINITY, f64::min),
            r.iter().cloned().fold(0.0, f64::max),
        );
    }
    println!();
}

/// The `VELA_BENCH_SQL_PROFILE` workload; see the module docs.
fn profile(f: &mut Fixture, mode: &str) {
    let Some(mode) = MODES.into_iter().find(|m| m.name() == mode) else {
        panic!(
            "VELA_BENCH_SQL_PROFILE={mode}: not one of engine, sql_literal, sql_param, prepared"
        );
    };
    let rounds = env_usize("VELA_BENCH_SQL_ROUNDS", 15);
    let start = Instant::now();
    for round in 0..rounds {
        f.spelling = round % 2;
        for i in 0..QUERIES {
            black_box(f.run(mode, i));
        }
    }
    eprintln!(
        "sql bench: {} x {} queries of {} in {:.2} s",
        rounds,
        QUERIES,
        mode.name(),
        start.elapsed().as_secs_f64()
    );
}

fn bench(c: &mut Criterion) {
    let mut f = fixture();
    if let Ok(mode) = std::env::var("VELA_BENCH_SQL_PROFILE") {
        profile(&mut f, &mode);
        return;
    }
    summary(&mut f);
    let mut group = c.benchmark_group("sql");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for m in MODES {
        let mut i = 0usize;
        group.bench_function(format!("top10_{}", m.name()), |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                if i == 0 {
                    f.spelling ^= 1;
                }
                black_box(f.run(m, i))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
