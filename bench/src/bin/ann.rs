//! ANN recall/QPS harness for Vela's HNSW index, and an external peer of
//! `../shared/tools/peers.py` (see `../shared/tools/PEERS.md`).
//!
//! ```text
//! ann --base B.fvecs --query Q.fvecs --gt G.ivecs --metric l2|cosine [--m 16]
//!     [--ef-construction 200] [--ef 10,16,32,64,128,256] [--threads N] [--json]
//!     [--k 10] [--repeats 3] [--min-time 0.5] [--warmup 100] [--max-queries N]
//! ann --peer        # the job comes from the PEERS_* environment variables
//! ```
//!
//! * **Build**: `HnswIndex::build` on a local rayon pool of `--threads` threads (default: all
//!   cores); reported as seconds and vectors per second.
//! * **Bytes per vector**: the index has no memory-accounting method, so this is the size of
//!   its serialized form (`HnswIndex::to_bytes`: vectors, layer-0 and upper-layer lists, row
//!   ids, levels, tombstones) divided by the vector count. The in-memory form adds the row
//!   padding of vectors, one boxed-slice pointer per node and the row-id hash map; the RSS growth
//!   over the build is printed beside it as a cross-check.
//! * **Search**: for each ef, recall@10 against the ground truth; single-thread QPS (one query at
//!   a time through `HnswIndex::search`, on one thread, in process); QPS with all threads (rayon
//!   over the queries on the same pool). Each timed run passes over the query set again until
//!   it has lasted `--min-time` seconds; the median of `--repeats` runs is reported.
//!
//! Bad arguments print a message and exit with code 2; failures while running (unreadable
//! files, an index error) exit with code 1.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;
use vela_engine::index::{HnswIndex, HnswParams, Metric};

const USAGE: &str = "\
usage: ann --base B.fvecs --query Q.fvecs --gt G.ivecs --metric l2|cosine [options]
       ann --peer      (external peer of peers.py; the job comes from PEERS_* variables)

options:
  --m N                  HNSW m (default 16)
  --ef-construction N    beam width while building (default 200)
  --ef LIST              comma list of search beam widths (default 10,16,32,64,128,256)
  --threads N            rayon threads for the build and the threaded search (default: all cores)
  --k N                  neighbours per query, recall@k (default 10)
  --repeats N            timed runs per ef, median reported (default 3)
  --min-time S           each timed run lasts at least S seconds (default 0.5)
  --warmup N             untimed queries before each ef (default 100)
  --max-queries N        use only the first N queries
  --json                 one JSON object per ef and line instead of the table
  --save-index P         write the built index (HnswIndex::to_bytes) to P
  --load-index P         load the index from P instead of building it (for profiling searches;
                         build figures are then reported as 0)
  -h, --help             this text";

/// A usage error: printed with the usage text, exit code 2.
struct UsageError(String);

/// A failure while running: printed, exit code 1.
struct RunError(String);

impl<E: std::fmt::Display> From<E> for RunError {
    fn from(e: E) -> Self {
        RunError(e.to_string())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        let _ = writeln!(std::io::stdout(), "{USAGE}");
        return ExitCode::SUCCESS;
    }
    let outcome = if args.first().map(String::as_str) == Some("--peer") {
        if args.len() > 1 {
            Err(Failure::Usage(UsageError(
                "--peer takes no other arguments (the job comes from PEERS_* variables)".into(),
            )))
        } else {
            peer::run()
        }
    } else {
        match Cli::parse(&args) {
            Ok(cli) => cli_run(&cli).map_err(Failure::Run),
            Err(e) => Err(Failure::Usage(e)),
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(UsageError(msg))) => {
            let _ = writeln!(std::io::stderr(), "ann: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Run(RunError(msg))) => {
            let _ = writeln!(std::io::stderr(), "ann: {msg}");
            ExitCode::from(1)
        }
    }
}

enum Failure {
    Usage(UsageError),
    Run(RunError),
}

/// `println!` that reports a closed stdout (e.g. `ann ... | head`) as an error instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout(), $($arg)*)
            .map_err(|e| RunError(format!("writing to stdout: {e}")))
    };
}

// ------------------------------------------------------------------------------ arguments

struct Cli {
    base: PathBuf,
    query: PathBuf,
    gt: PathBuf,
    metric: Metric,
    m: usize,
    ef_construction: usize,
    efs: Vec<usize>,
    threads: usize,
    k: usize,
    timing: Timing,
    max_queries: Option<usize>,
    json: bool,
    save_index: Option<PathBuf>,
    load_index: Option<PathBuf>,
}

/// How searches are timed (the same rules as peers.py's `time_single` / `time_batch`).
#[derive(Clone, Copy)]
struct Timing {
    repeats: usize,
    min_time: f64,
    warmup: usize,
}

fn parse_usize(name: &str, v: &str, min: usize) -> Result<usize, UsageError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(UsageError(format!(
            "{name} wants a whole number >= {min}, got {v:?}"
        ))),
    }
}

fn parse_f64(name: &str, v: &str) -> Result<f64, UsageError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(UsageError(format!(
            "{name} wants a non-negative number, got {v:?}"
        ))),
    }
}

fn parse_list(name: &str, v: &str) -> Result<Vec<usize>, UsageError> {
    let list = v
        .split(',')
        .map(|x| parse_usize(name, x, 1))
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err(UsageError(format!("{name} wants a comma list, got {v:?}")));
    }
    Ok(list)
}

fn parse_metric(name: &str, v: &str) -> Result<Metric, UsageError> {
    match v {
        "l2" | "euclidean" => Ok(Metric::L2),
        "cosine" | "angular" => Ok(Metric::Cosine),
        _ => Err(UsageError(format!("{name} wants l2 or cosine, got {v:?}"))),
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Cli {
    fn parse(args: &[String]) -> Result<Cli, UsageError> {
        let mut opts: HashMap<&str, String> = HashMap::new();
        let mut json = false;
        let mut it = args.iter();
        const VALUED: [&str; 15] = [
            "--base",
            "--query",
            "--gt",
            "--metric",
            "--m",
            "--ef-construction",
            "--ef",
            "--threads",
            "--k",
            "--repeats",
            "--min-time",
            "--warmup",
            "--max-queries",
            "--save-index",
            "--load-index",
        ];
        while let Some(arg) = it.next() {
            let (key, inline) = match arg.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if key == "--json" && inline.is_none() {
                json = true;
                continue;
            }
            let Some(&name) = VALUED.iter().find(|&&n| n == key) else {
                return Err(UsageError(format!("unknown argument {arg:?}")));
            };
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("{name} needs a value")))?,
            };
            if opts.insert(name, value).is_some() {
                return Err(UsageError(format!("{name} given twice")));
            }
        }
        let path = |name: &str| -> Result<PathBuf, UsageError> {
            opts.get(name)
                .map(PathBuf::from)
                .ok_or_else(|| UsageError(format!("{name} is required")))
        };
        let num = |name: &str, default: usize, min: usize| -> Result<usize, UsageError> {
            opts.get(name)
                .map_or(Ok(default), |v| parse_usize(name, v, min))
        };
        Ok(Cli {
            base: path("--base")?,
            query: path("--query")?,
            gt: path("--gt")?,
            metric: parse_metric(
                "--metric",
                opts.get("--metric")
                    .ok_or_else(|| UsageError("--metric is required (l2 or cosine)".into()))?,
            )?,
            m: num("--m", 16, 2)?,
            ef_construction: num("--ef-construction", 200, 1)?,
            efs: opts
                .get("--ef")
                .map_or(Ok(vec![10, 16, 32, 64, 128, 256]), |v| {
                    parse_list("--ef", v)
                })?,
            threads: num("--threads", default_threads(), 1)?,
            k: num("--k", 10, 1)?,
            timing: Timing {
                repeats: num("--repeats", 3, 1)?,
                min_time: opts
                    .get("--min-time")
                    .map_or(Ok(0.5), |v| parse_f64("--min-time", v))?,
                warmup: num("--warmup", 100, 0)?,
            },
            max_queries: opts
                .get("--max-queries")
                .map(|v| parse_usize("--max-queries", v, 1))
                .transpose()?,
            json,
            save_index: opts.get("--save-index").map(PathBuf::from),
            load_index: opts.get("--load-index").map(PathBuf::from),
        })
    }
}

// ------------------------------------------------------------------------------ shared work

/// Vectors read from an fvecs file: `(dim, rows, row-major data)`.
struct Vectors {
    dim: usize,
    rows: usize,
    data: Vec<f32>,
}

impl Vectors {
    fn read(path: &Path) -> Result<Vectors, RunError> {
        let (dim, data) = vela_datasets::read_fvecs(path)?;
        if dim == 0 || data.is_empty() {
            return Err(RunError(format!("{}: no vectors", path.display())));
        }
        Ok(Vectors {
            dim,
            rows: data.len() / dim,
            data,
        })
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    fn truncate(&mut self, rows: usize) {
        self.rows = self.rows.min(rows);
        self.data.truncate(self.rows * self.dim);
    }
}

fn pool(threads: usize) -> Result<rayon::ThreadPool, RunError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ann-{i}"))
        .build()
        .map_err(|e| RunError(format!("cannot start {threads} rayon threads: {e}")))
}

/// Builds the index on `pool`; returns it and the build seconds.
fn build(
    pool: &rayon::ThreadPool,
    base: &Vectors,
    metric: Metric,
    m: usize,
    ef_construction: usize,
) -> Result<(HnswIndex, f64), RunError> {
    let params = HnswParams {
        m,
        ef_construction,
        ..HnswParams::default()
    };
    let ids: Vec<u64> = (0..base.rows as u64).collect();
    let t0 = Instant::now();
    let index = pool.install(|| HnswIndex::build(base.dim, metric, params, &ids, &base.data))?;
    Ok((index, t0.elapsed().as_secs_f64()))
}

/// The ids of one query's `k` nearest rows (`-1` where there are fewer).
fn query_one(index: &HnswIndex, q: &[f32], k: usize, ef: usize) -> Result<Vec<i32>, RunError> {
    let hits = index.search(q, k, ef, None)?;
    let mut ids: Vec<i32> = hits
        .iter()
        .map(|&(r, _)| i32::try_from(r).unwrap_or(-1))
        .collect();
    ids.resize(k, -1);
    Ok(ids)
}

/// Nanoseconds the calling thread has spent on a CPU (`/proc/thread-self/schedstat`), if known.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Single-query timing: ids of the first pass, QPS per run (wall clock, as peers.py), and QPS
/// per second of this thread's CPU time per run (less sensitive to other processes taking
/// the cores; empty when the kernel does not expose schedstat).
struct SingleRuns {
    ids: Vec<i32>,
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

/// One query at a time on the calling thread, as peers.py's `time_single`: `warmup` untimed
/// queries, then `repeats` runs, each over the whole set and again until `min_time` has
/// passed.
fn time_single(
    index: &HnswIndex,
    queries: &Vectors,
    k: usize,
    ef: usize,
    t: Timing,
) -> Result<SingleRuns, RunError> {
    for i in 0..t.warmup.min(queries.rows) {
        std::hint::black_box(index.search(queries.row(i), k, ef, None)?);
    }
    let mut ids = Vec::new();
    let mut runs = Vec::with_capacity(t.repeats);
    let mut cpu = Vec::with_capacity(t.repeats);
    for r in 0..t.repeats {
        let cpu0 = thread_cpu_ns();
        let t0 = Instant::now();
        let mut done = 0usize;
        loop {
            for i in 0..queries.rows {
                if r == 0 && done < queries.rows {
                    ids.extend(query_one(index, queries.row(i), k, ef)?);
                } else {
                    std::hint::black_box(index.search(queries.row(i), k, ef, None)?);
                }
            }
            done += queries.rows;
            if t0.elapsed().as_secs_f64() >= t.min_time {
                break;
            }
        }
        runs.push(done as f64 / t0.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
            if b > a {
                cpu.push(done as f64 / ((b - a) as f64 * 1e-9));
            }
        }
    }
    Ok(SingleRuns {
        ids,
        wall: runs,
        cpu,
    })
}

/// All queries as one batch answered on `pool` (rayon over the queries), as peers.py's
/// `time_batch`: a warm-up batch of at most 100 queries, then `repeats` timed runs.
fn time_batch(
    pool: &rayon::ThreadPool,
    index: &HnswIndex,
    queries: &Vectors,
    k: usize,
    ef: usize,
    t: Timing,
) -> Result<(Vec<i32>, Vec<f64>), RunError> {
    let batch = |rows: usize| -> Result<Vec<i32>, RunError> {
        pool.install(|| {
            (0..rows)
                .into_par_iter()
                .map(|i| query_one(index, queries.row(i), k, ef))
                .collect::<Result<Vec<_>, _>>()
        })
        .map(|v| v.concat())
    };
    batch(queries.rows.min(100))?;
    let mut ids = Vec::new();
    let mut runs = Vec::with_capacity(t.repeats);
    for _ in 0..t.repeats {
        let t0 = Instant::now();
        let first = batch(queries.rows)?;
        let mut done = queries.rows;
        while t0.elapsed().as_secs_f64() < t.min_time {
            std::hint::black_box(batch(queries.rows)?);
            done += queries.rows;
        }
        runs.push(done as f64 / t0.elapsed().as_secs_f64());
        if ids.is_empty() {
            ids = first;
        }
    }
    Ok((ids, runs))
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `(VmRSS, VmHWM)` of this process in bytes, from /proc/self/status (0 where unavailable).
fn rss_hwm() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ------------------------------------------------------------------------------ CLI mode

fn cli_run(cli: &Cli) -> Result<(), RunError> {
    let base = Vectors::read(&cli.base)?;
    let mut queries = Vectors::read(&cli.query)?;
    if queries.dim != base.dim {
        return Err(RunError(format!(
            "{} has dimension {} but {} has {}",
            cli.query.display(),
            queries.dim,
            cli.base.display(),
            base.dim
        )));
    }
    if let Some(n) = cli.max_queries {
        queries.truncate(n);
    }
    let (gt_dim, gt) = vela_datasets::read_ivecs(&cli.gt)?;
    if gt_dim < cli.k || gt.len() / gt_dim.max(1) < queries.rows {
        return Err(RunError(format!(
            "{} has {} rows of {gt_dim} ids; need {} rows of at least k = {}",
            cli.gt.display(),
            gt.len() / gt_dim.max(1),
            queries.rows,
            cli.k
        )));
    }
    let pool = pool(cli.threads)?;
    let (rss0, _) = rss_hwm();
    let (index, build_s) = match &cli.load_index {
        Some(path) => {
            let bytes =
                std::fs::read(path).map_err(|e| RunError(format!("{}: {e}", path.display())))?;
            let index = HnswIndex::from_bytes(&bytes)?;
            if index.node_count() != base.rows || index.dim() != base.dim {
                return Err(RunError(format!(
                    "{} holds {} x {}, the base file {} x {}",
                    path.display(),
                    index.node_count(),
                    index.dim(),
                    base.rows,
                    base.dim
                )));
            }
            (index, 0.0)
        }
        None => build(&pool, &base, cli.metric, cli.m, cli.ef_construction)?,
    };
    let (rss1, _) = rss_hwm();
    let bytes = index.to_bytes();
    if let Some(path) = &cli.save_index {
        std::fs::write(path, &bytes).map_err(|e| RunError(format!("{}: {e}", path.display())))?;
    }
    let bytes_per_vector = bytes.len() as f64 / base.rows as f64;
    drop(bytes);
    let rss_per_vector = rss1.saturating_sub(rss0) as f64 / base.rows as f64;
    let vps = base.rows as f64 / build_s;
    if !cli.json {
        out!(
            "base {} x {}, {} queries, metric {:?}, m {}, ef_construction {}, {} thread(s)",
            base.rows,
            base.dim,
            queries.rows,
            cli.metric,
            cli.m,
            cli.ef_construction,
            cli.threads
        )?;
        out!("build: {build_s:.3} s, {vps:.0} vectors/s")?;
        out!(
            "bytes per vector: {bytes_per_vector:.1} (serialized index: vectors + graph + ids; \
             the index has no memory-accounting method); RSS growth over the build: \
             {rss_per_vector:.1} per vector"
        )?;
        out!(
            "\n| ef | recall@{} | QPS 1 thread | QPS 1 thread per CPU-s | QPS {} threads |",
            cli.k,
            cli.threads
        )?;
        out!("|---:|---:|---:|---:|---:|")?;
    }
    let k = cli.k;
    for &ef in &cli.efs {
        let single = time_single(&index, &queries, k, ef, cli.timing)?;
        let (ids, runs_1t) = (single.ids, single.wall);
        let qps_1t_cpu = median(&single.cpu);
        let (_, runs_nt) = time_batch(&pool, &index, &queries, k, ef, cli.timing)?;
        let hits: usize = (0..queries.rows)
            .map(|q| {
                let truth = &gt[q * gt_dim..q * gt_dim + k];
                ids[q * k..(q + 1) * k]
                    .iter()
                    .filter(|&&id| id >= 0 && truth.contains(&id))
                    .count()
            })
            .sum();
        let recall = hits as f64 / (queries.rows * k) as f64;
        let (qps_1t, qps_nt) = (median(&runs_1t), median(&runs_nt));
        if cli.json {
            out!(
                "{}",
                json!({"ef": ef, "recall": recall, "qps_1t": qps_1t, "qps_nt": qps_nt,
                       "build_s": build_s, "bytes_per_vector": bytes_per_vector,
                       "threads": cli.threads, "k": k, "n": base.rows, "dim": base.dim,
                       "vectors_per_s": vps, "rss_bytes_per_vector": rss_per_vector,
                       "qps_1t_cpu": qps_1t_cpu})
            )?;
        } else {
            out!("| {ef} | {recall:.4} | {qps_1t:.0} | {qps_1t_cpu:.0} | {qps_nt:.0} |")?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------ peer mode

mod peer {
    //! The external-peer contract of `../shared/tools/PEERS.md`.

    use super::*;

    fn var(name: &str) -> Result<String, UsageError> {
        std::env::var(name).map_err(|_| {
            UsageError(format!(
                "--peer: environment variable {name} is not set (run me through peers.py --external)"
            ))
        })
    }

    fn var_usize(name: &str, min: usize) -> Result<usize, UsageError> {
        parse_usize(name, &var(name)?, min)
    }

    fn flag(name: &str) -> Result<bool, UsageError> {
        match var(name)?.trim() {
            "1" => Ok(true),
            "0" | "" => Ok(false),
            v => Err(UsageError(format!("{name} wants 0 or 1, got {v:?}"))),
        }
    }

    struct Job {
        base: PathBuf,
        query: PathBuf,
        nq: usize,
        metric: Metric,
        k: usize,
        m: usize,
        ef_construction: usize,
        efs: Vec<usize>,
        build_threads: usize,
        single: bool,
        batch: bool,
        batch_threads: usize,
        timing: Timing,
        out: PathBuf,
    }

    fn job() -> Result<Job, UsageError> {
        Ok(Job {
            base: PathBuf::from(var("PEERS_BASE")?),
            query: PathBuf::from(var("PEERS_QUERY")?),
            nq: var_usize("PEERS_NQ", 1)?,
            metric: parse_metric("PEERS_METRIC", var("PEERS_METRIC")?.trim())?,
            k: var_usize("PEERS_K", 1)?,
            m: var_usize("PEERS_M", 2)?,
            ef_construction: var_usize("PEERS_EF_CONSTRUCTION", 1)?,
            efs: parse_list("PEERS_EF_SEARCH", &var("PEERS_EF_SEARCH")?)?,
            build_threads: var_usize("PEERS_BUILD_THREADS", 1)?,
            single: flag("PEERS_SINGLE")?,
            batch: flag("PEERS_BATCH")?,
            batch_threads: var_usize("PEERS_BATCH_THREADS", 1)?,
            timing: Timing {
                repeats: var_usize("PEERS_REPEATS", 1)?,
                min_time: std::env::var("PEERS_MIN_TIME")
                    .map_or(Ok(0.0), |v| parse_f64("PEERS_MIN_TIME", &v))?,
                warmup: std::env::var("PEERS_WARMUP")
                    .map_or(Ok(0), |v| parse_usize("PEERS_WARMUP", &v, 0))?,
            },
            out: PathBuf::from(var("PEERS_OUT")?),
        })
    }

    pub(super) fn run() -> Result<(), Failure> {
        let job = job().map_err(Failure::Usage)?;
        work(&job).map_err(Failure::Run)
    }

    fn work(job: &Job) -> Result<(), RunError> {
        let t0 = Instant::now();
        let base = Vectors::read(&job.base)?;
        let mut queries = Vectors::read(&job.query)?;
        if queries.dim != base.dim {
            return Err(RunError(format!(
                "query dimension {} differs from base dimension {}",
                queries.dim, base.dim
            )));
        }
        queries.truncate(job.nq);
        let read_s = t0.elapsed().as_secs_f64();

        // Memory as peers.py measures the in-process peers: RSS before the build (data
        // loaded), the kernel's high-water mark right after it, and their difference.
        let build_pool = pool(job.build_threads)?;
        let (rss_before, _) = rss_hwm();
        let (index, build_s) = build(&build_pool, &base, job.metric, job.m, job.ef_construction)?;
        let (rss_after, hwm) = rss_hwm();
        drop(build_pool);
        let index_bytes = index.to_bytes().len();

        let single_pool = pool(1)?;
        let batch_pool = pool(job.batch_threads)?;
        let mut rows = Vec::with_capacity(job.efs.len());
        for &ef in &job.efs {
            let mut row = serde_json::Map::new();
            row.insert("ef".into(), json!(ef));
            let mut ids = None;
            if job.single {
                // One thread: the calling thread inside a one-thread pool, so nothing the index
                // might hand to rayon can spread to other cores.
                let single =
                    single_pool.install(|| time_single(&index, &queries, job.k, ef, job.timing))?;
                row.insert("qps_1t_runs".into(), json!(single.wall));
                // Extra key (not in the contract): QPS per second of the thread's CPU time.
                row.insert("qps_1t_cpu_runs".into(), json!(single.cpu));
                ids = Some(single.ids);
            }
            if job.batch {
                let (first, runs) =
                    time_batch(&batch_pool, &index, &queries, job.k, ef, job.timing)?;
                row.insert("qps_batch_runs".into(), json!(runs));
                row.insert("batch_threads".into(), json!(job.batch_threads));
                ids.get_or_insert(first);
            }
            let ids = match ids {
                Some(ids) => ids,
                None => (0..queries.rows)
                    .map(|i| query_one(&index, queries.row(i), job.k, ef))
                    .collect::<Result<Vec<_>, _>>()?
                    .concat(),
            };
            let file = format!("ids_ef{ef}.ivecs");
            vela_datasets::write_ivecs(&job.out.join(&file), job.k, &ids)?;
            row.insert("ids".into(), json!(file));
            rows.push(serde_json::Value::Object(row));
        }

        let result = json!({
            "version": concat!("vela ", env!("CARGO_PKG_VERSION")),
            "build_s": build_s,
            "index_bytes": index_bytes,
            "index_bytes_source": "HnswIndex::to_bytes().len() (serialized: vectors, graph, \
                                   row ids, levels, tombstones); the index has no \
                                   memory-accounting method",
            "mem_peak_bytes": hwm,
            "mem_delta_bytes": hwm.saturating_sub(rss_before),
            "mem_before_bytes": rss_before,
            "mem_after_bytes": rss_after,
            "mem_measured": "process VmHWM / VmRSS",
            "read_s": read_s,
            "search": rows,
            "params": {"m": job.m, "ef_construction": job.ef_construction,
                       "seed": HnswParams::default().seed,
                       "build_threads": job.build_threads,
                       "single_query_path": "in-process HnswIndex::search, no client layer",
                       "batch": "rayon par_iter over queries on a local pool"},
        });
        let path = job.out.join("result.json");
        std::fs::write(&path, serde_json::to_vec(&result)?)
            .map_err(|e| RunError(format!("{}: {e}", path.display())))?;
        Ok(())
    }
}
