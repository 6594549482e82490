//! Model-based test: random DDL, upserts/inserts/updates/deletes, checkpoints, maintenance,
//! clean reopens and simulated crashes (the store keeps only a prefix of its unflushed batches)
//! against a `BTreeMap` model. After every step the rows read back equal the model, and exact
//! search equals brute force over the model. So does the index search (segments this small are
//! searched exactly by the index), over linked graphs and unindexed tails alike: replayed and
//! loaded rows and small writes wait in tails until `Link`/`Maintain`, and each reopen cycles
//! the tail limit of live writes (all to tails, all linked inline, mixed per shard).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use vela_engine::{
    Engine, EngineError, EngineOptions, Key, MemLog, MemStore, Metric, Op, SearchRequest, Value,
};

use super::common::*;

#[derive(Debug, Clone)]
enum Action {
    Create(usize),
    Drop(usize),
    Write(usize, Vec<(u8, i64, u8)>),
    /// One transaction over both tables (`write_many`), in either order.
    WriteMany(bool, Vec<(u8, i64, u8)>, Vec<(u8, i64, u8)>),
    Checkpoint,
    Maintain,
    /// Link every unindexed tail into the graphs.
    Link,
    Reopen,
    Crash(u8),
    Search(usize, u8),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => (0..2usize).prop_map(Action::Create),
        1 => (0..2usize).prop_map(Action::Drop),
        12 => (0..2usize, prop::collection::vec((0..4u8, 0..40i64, any::<u8>()), 1..12))
            .prop_map(|(t, ops)| Action::Write(t, ops)),
        4 => (
            any::<bool>(),
            prop::collection::vec((0..4u8, 0..40i64, any::<u8>()), 0..8),
            prop::collection::vec((0..4u8, 0..40i64, any::<u8>()), 0..8),
        )
            .prop_map(|(swap, a, b)| Action::WriteMany(swap, a, b)),
        2 => Just(Action::Checkpoint),
        2 => Just(Action::Maintain),
        1 => Just(Action::Link),
        1 => Just(Action::Reopen),
        2 => any::<u8>().prop_map(Action::Crash),
        3 => (0..2usize, any::<u8>()).prop_map(|(t, q)| Action::Search(t, q)),
    ]
}

type Model = BTreeMap<String, BTreeMap<i64, Vec<Value>>>;

fn vector(seed: u8) -> Vec<f32> {
    (0..4)
        .map(|i| ((seed as i32 * (i + 3)) % 17) as f32)
        .collect()
}

fn row(key: i64, seed: u8) -> Vec<Value> {
    vec![
        Value::BigInt(key),
        if seed.is_multiple_of(5) {
            Value::Null
        } else {
            Value::Double(seed as f64)
        },
        Value::Text(format!("g{}", seed % 3)),
        if seed.is_multiple_of(7) {
            Value::Null
        } else {
            Value::Vector(vector(seed))
        },
    ]
}

fn name(t: usize) -> String {
    format!("t{t}")
}

fn to_ops(ops: &[(u8, i64, u8)]) -> Vec<Op> {
    ops.iter()
        .map(|&(kind, key, seed)| match kind {
            0 => Op::Insert(row(key, seed)),
            1 => Op::Upsert(row(key, seed)),
            2 => Op::Update(row(key, seed)),
            _ => Op::Delete(Key::BigInt(key)),
        })
        .collect()
}

/// The model's table after `ops`, or `None` when a duplicate key on insert rejects them.
fn apply_model(table: &BTreeMap<i64, Vec<Value>>, ops: &[Op]) -> Option<BTreeMap<i64, Vec<Value>>> {
    let mut next = table.clone();
    for op in ops {
        match op {
            Op::Insert(row) | Op::Upsert(row) | Op::Update(row) => {
                let Value::BigInt(k) = row[0] else {
                    unreachable!()
                };
                let exists = next.contains_key(&k);
                match op {
                    Op::Insert(_) if exists => return None,
                    Op::Update(_) if !exists => {}
                    _ => {
                        next.insert(k, row.clone());
                    }
                }
            }
            Op::Delete(Key::BigInt(k)) => {
                next.remove(k);
            }
            Op::Delete(_) => unreachable!(),
        }
    }
    Some(next)
}

struct World {
    engine: Engine,
    log: Arc<MemLog>,
    store: Arc<MemStore>,
    model: Model,
    opens: usize,
}

/// The live-write tail limits cycled through by reopens.
const TAIL_LIMITS: [usize; 3] = [8_192, 0, 5];

impl World {
    fn open(log: Arc<MemLog>, store: Arc<MemStore>, model: Model, opens: usize) -> World {
        let opts = EngineOptions {
            tail_rows: TAIL_LIMITS[opens % TAIL_LIMITS.len()],
            ..test_options(6)
        };
        let engine = Engine::open(log.clone(), store.clone(), opts).unwrap();
        World {
            engine,
            log,
            store,
            model,
            opens,
        }
    }

    fn step(&mut self, a: &Action) {
        match a {
            Action::Create(t) => {
                let r =
                    self.engine
                        .create_table(docs_schema(&name(*t), 4, 1 + *t as u32 * 2, *t == 0));
                match self.model.entry(name(*t)) {
                    Entry::Occupied(_) => {
                        assert!(matches!(r, Err(EngineError::TableExists(_))), "{r:?}");
                    }
                    Entry::Vacant(v) => {
                        r.unwrap();
                        v.insert(BTreeMap::new());
                    }
                }
            }
            Action::Drop(t) => {
                let r = self.engine.drop_table(&name(*t));
                if self.model.remove(&name(*t)).is_some() {
                    r.unwrap();
                } else {
                    assert!(matches!(r, Err(EngineError::UnknownTable(_))), "{r:?}");
                }
            }
            Action::Write(t, ops) => {
                let ops = to_ops(ops);
                let r = self.engine.write(&name(*t), ops.clone());
                let Some(table) = self.model.get_mut(&name(*t)) else {
                    assert!(matches!(r, Err(EngineError::UnknownTable(_))), "{r:?}");
                    return;
                };
                match apply_model(table, &ops) {
                    None => {
                        assert!(matches!(r, Err(EngineError::DuplicateKey { .. })), "{r:?}")
                    }
                    Some(next) => {
                        r.unwrap();
                        *table = next;
                    }
                }
            }
            Action::WriteMany(swap, a, b) => {
                let mut batches = vec![(0usize, to_ops(a)), (1usize, to_ops(b))];
                if *swap {
                    batches.reverse();
                }
                let r = self.engine.write_many(
                    batches
                        .iter()
                        .map(|(t, ops)| (name(*t), ops.clone()))
                        .collect(),
                );
                if batches
                    .iter()
                    .any(|(t, _)| !self.model.contains_key(&name(*t)))
                {
                    assert!(matches!(r, Err(EngineError::UnknownTable(_))), "{r:?}");
                    return;
                }
                // All or nothing: a duplicate in any table leaves every table as it was.
                let mut next = Vec::new();
                for (t, ops) in &batches {
                    match self.model.get(&name(*t)).and_then(|m| apply_model(m, ops)) {
                        Some(n) => next.push((name(*t), n)),
                        None => {
                            assert!(matches!(r, Err(EngineError::DuplicateKey { .. })), "{r:?}");
                            return;
                        }
                    }
                }
                assert_eq!(r.unwrap().len(), 2);
                for (t, n) in next {
                    self.model.insert(t, n);
                }
            }
            Action::Checkpoint => {
                self.engine.checkpoint().unwrap();
            }
            Action::Maintain | Action::Link => {
                if matches!(a, Action::Maintain) {
                    self.engine.run_maintenance().unwrap();
                } else {
                    self.engine.link_tails().unwrap();
                }
                let m = self.engine.metrics();
                assert!(m.tables.iter().all(|t| t.unlinked_rows == 0), "{m:?}");
            }
            Action::Reopen => {
                self.engine.close().unwrap();
                let model = std::mem::take(&mut self.model);
                *self = World::open(self.log.clone(), self.store.clone(), model, self.opens + 1);
            }
            Action::Crash(keep) => {
                let keep = *keep as usize % (self.store.unflushed() + 1);
                let (log, store) = (self.log.crash(), self.store.crash(keep));
                let model = std::mem::take(&mut self.model);
                *self = World::open(log, store, model, self.opens + 1);
            }
            Action::Search(t, q) => {
                let query = vector(*q);
                let Some(table) = self.model.get(&name(*t)) else {
                    return;
                };
                let mut req = SearchRequest::new("v", &query, 5);
                req.exact = true;
                let exact = self.engine.search(&name(*t), &req).unwrap();
                let mut expected: Vec<(f32, i64)> = table
                    .iter()
                    .filter_map(|(k, r)| match &r[3] {
                        Value::Vector(v) => Some((Metric::L2.distance(&query, v), *k)),
                        _ => None,
                    })
                    .collect();
                expected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                expected.truncate(5);
                let keyed = |hits: &[vela_engine::SearchHit]| -> Vec<(f32, i64)> {
                    hits.iter()
                        .map(|h| {
                            let Key::BigInt(k) = h.row.key() else {
                                panic!()
                            };
                            assert_eq!(table.get(&k).map(|v| &v[..]), Some(&h.row.values[..]));
                            (h.distance, k)
                        })
                        .collect()
                };
                assert_eq!(keyed(&exact), expected, "exact search");
                // The index search (graphs + tails) over segments this small is exact too.
                let hits = self
                    .engine
                    .search(&name(*t), &SearchRequest::new("v", &query, 5))
                    .unwrap();
                // Ties at the k-th distance may pick other keys: compare distances, and check
                // each hit is a distinct live row at its true distance.
                let got = keyed(&hits);
                let dist = |v: &[(f32, i64)]| v.iter().map(|h| h.0).collect::<Vec<_>>();
                assert_eq!(dist(&got), dist(&expected), "index search: {got:?}");
                for (d, k) in &got {
                    let Value::Vector(v) = &table[k][3] else {
                        panic!()
                    };
                    assert_eq!(*d, Metric::L2.distance(&query, v));
                }
                let keys: std::collections::HashSet<i64> = got.iter().map(|h| h.1).collect();
                assert_eq!(keys.len(), got.len(), "a row returned twice: {got:?}");
            }
        }
    }

    fn check(&self) {
        let mut names: Vec<String> = self.engine.tables().into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(names, self.model.keys().cloned().collect::<Vec<_>>());
        for (t, rows) in &self.model {
            let got: Vec<Vec<Value>> = self
                .engine
                .scan(t, None)
                .unwrap()
                .iter()
                .map(|r| r.values.to_vec())
                .collect();
            let want: Vec<Vec<Value>> = rows.values().cloned().collect();
            assert_eq!(got, want, "table {t}");
            for (k, r) in rows.iter().take(3) {
                assert_eq!(
                    self.engine
                        .get(t, &Key::BigInt(*k))
                        .unwrap()
                        .unwrap()
                        .values
                        .to_vec(),
                    *r
                );
            }
        }
    }
}

#[test]
fn engine_matches_a_btreemap_model() {
    let seed = seed("engine_matches_a_btreemap_model");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let cases = std::env::var("VELA_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    );
    runner
        .run(&prop::collection::vec(action(), 1..60), |actions| {
            let mut w = World::open(MemLog::new(true), MemStore::new(), Model::new(), 0);
            let start = [Action::Create(0), Action::Create(1)];
            for a in start.iter().chain(&actions) {
                w.step(a);
                w.check();
            }
            Ok(())
        })
        .unwrap();
}
