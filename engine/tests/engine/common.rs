//! Helpers shared by the engine tests.

use std::sync::Arc;

use vela_engine::{
    Cf, ColumnDef, ColumnType, Engine, EngineOptions, HnswConfig, MemLog, MemStore, Metric,
    ScalarType, StoreBackend, TableSchema, VectorIndexDef,
};

/// The seed of a randomised test: `VELA_TEST_SEED` or a fresh one, printed either way.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("VELA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("{test}: VELA_TEST_SEED={seed}");
    seed
}

/// `id BIGINT PK, score DOUBLE, tag TEXT, v VECTOR(dim)` with an HNSW (L2) index on `v`.
pub fn docs_schema(name: &str, dim: u32, shards: u32, indexed: bool) -> TableSchema {
    TableSchema {
        name: name.into(),
        columns: vec![
            ColumnDef {
                name: "id".into(),
                ty: ColumnType::Scalar(ScalarType::BigInt),
                nullable: false,
            },
            ColumnDef {
                name: "score".into(),
                ty: ColumnType::Scalar(ScalarType::Double),
                nullable: true,
            },
            ColumnDef {
                name: "tag".into(),
                ty: ColumnType::Scalar(ScalarType::Text),
                nullable: true,
            },
            ColumnDef {
                name: "v".into(),
                ty: ColumnType::Vector { dim },
                nullable: true,
            },
        ],
        primary_key: 0,
        shards,
        indexes: if indexed {
            vec![VectorIndexDef {
                name: format!("{name}_v_idx"),
                column: "v".into(),
                metric: Metric::L2,
                hnsw: HnswConfig {
                    m: 8,
                    ef_construction: 32,
                },
            }]
        } else {
            vec![]
        },
    }
}

/// Options for deterministic tests: no background worker, small segments.
pub fn test_options(seal_rows: usize) -> EngineOptions {
    EngineOptions {
        seal_rows,
        default_shards: 2,
        checkpoint_interval: None,
        background: false,
        merge_below_rows: 16,
        ..EngineOptions::default()
    }
}

/// An in-memory engine and its backends.
pub fn mem_engine(seal_rows: usize) -> (Engine, Arc<MemLog>, Arc<MemStore>) {
    let log = MemLog::new(true);
    let store = MemStore::new();
    let e = Engine::open(log.clone(), store.clone(), test_options(seal_rows)).unwrap();
    (e, log, store)
}

/// Segment chunk keys (20 bytes) in the store's `index` column family that a manifest's run
/// covers, and that none covers (manifest value: shard u32 | sealed u8 | chunks u32 LE |
/// len u64 | first u32 LE).
pub fn chunks_in_and_out_of_runs(store: &dyn StoreBackend) -> (usize, usize) {
    let mut runs = std::collections::HashMap::new();
    let mut chunks = Vec::new();
    store
        .scan_prefix(Cf::Index, &[], &mut |k, v| {
            if k.len() == 16 {
                let le = |i: usize| u32::from_le_bytes(v[i..i + 4].try_into().unwrap());
                let first = if v.len() >= 21 { le(17) } else { 0 };
                runs.insert(k.to_vec(), first..first + le(5));
            } else if k.len() == 20 {
                let c = u32::from_be_bytes(k[16..].try_into().unwrap());
                chunks.push((k[..16].to_vec(), c));
            }
            Ok(true)
        })
        .unwrap();
    let stray = chunks
        .iter()
        .filter(|(m, c)| !runs.get(m).is_some_and(|r| r.contains(c)))
        .count();
    (chunks.len() - stray, stray)
}

/// Values with every float as its bits, so `-0.0 != 0.0` and any rounding shows.
pub fn bits(values: &[vela_engine::Value]) -> Vec<Result<Vec<u32>, vela_engine::Value>> {
    values
        .iter()
        .map(|v| match v {
            vela_engine::Value::Vector(x) => Ok(x.iter().map(|f| f.to_bits()).collect()),
            other => Err(other.clone()),
        })
        .collect()
}

/// The `k` nearest rows of `model` passing `filter` by brute force on column position `c`
/// (rows with a vector there), as `(distance, key)` by distance then key.
pub fn brute_force(
    model: &std::collections::BTreeMap<i64, Vec<vela_engine::Value>>,
    c: usize,
    metric: Metric,
    q: &[f32],
    k: usize,
    filter: Option<vela_engine::RowPredicate<'_>>,
) -> Vec<(f32, i64)> {
    let mut expected: Vec<(f32, i64)> = model
        .iter()
        .filter(|(_, r)| filter.is_none_or(|f| f(r)))
        .filter_map(|(key, r)| match &r[c] {
            vela_engine::Value::Vector(v) => Some((metric.distance(q, v), *key)),
            _ => None,
        })
        .collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    expected.truncate(k);
    expected
}
