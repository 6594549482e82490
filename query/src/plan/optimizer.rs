//! Access-path selection: rewrites a logical plan into the operators that run.
//!
//! Rules, applied bottom-up:
//! 1. `Filter(Scan)` -> `Scan { filter }`: the predicate is pushed into the engine. Conjuncts
//!    that run a correlated subquery stay in a Filter above the scan (they read the engine
//!    themselves, so they are not evaluated inside an engine call).
//! 2. `Scan { filter: pk = <constant or $n> AND rest }` -> `PointLookup { key, filter: rest }`.
//! 3. `Limit(Sort([<indexed column> <op> <constant or $n> ASC]), Scan)` -> the same Limit and Sort
//!    over `VectorSearch { k = LIMIT + OFFSET, filter }` when the column has an index whose metric
//!    is `<op>`'s (pgvector: `<->` needs `vector_l2_ops`, `<=>` `vector_cosine_ops`, `<#>`
//!    `vector_ip_ops`, `<+>` `vector_l1_ops`). The same ORDER BY on a vector column *without* such
//!    an index becomes `VectorSearch { exact: true }`: the engine's exact top-k over every row
//!    (filter pushed in), so the rows never leave the engine to be sorted.
//!    A query vector from an uncorrelated scalar subquery (`emb <-> (SELECT emb FROM t WHERE
//!    id = 1)`) counts as a constant: it is an init plan's value, computed before the search.
//! 4. `Limit(Sort)` with a LIMIT -> `Limit(TopN { k = LIMIT + OFFSET })`: a bounded top-k buffer
//!    instead of a sort of every row, whatever the ORDER BY.
//! 5. Column pruning: a `Project` over `Limit`/`TopN`/`Sort`/`Filter` nodes over a
//!    `VectorSearch` tells the search which columns those nodes read (`SELECT id ... ORDER BY
//!    emb <-> q LIMIT 10` reads only `id`: the Top-N right above the search orders by the
//!    engine's distances, not by its key), so the engine copies only those out of its hits and
//!    not, say, each hit's vector. The same over a `Scan` (also through an `Aggregate`, whose
//!    groups and arguments are what it reads): `SELECT count(*) FROM t` copies no column.

use super::{Plan, SortKey};
use crate::expr::{BExpr, BinaryOp, ScalarFunc};
use vela_engine::Metric;

/// Rewrites `plan` into its physical form.
pub fn optimize(plan: Plan) -> Plan {
    match plan {
        Plan::Filter { input, predicate } => match optimize(*input) {
            Plan::Scan {
                schema,
                filter: None,
                ..
            } if predicate.has_subplan() => {
                // A correlated subquery reads the engine: it is evaluated above the scan, on
                // the rows the other conjuncts (pushed in) let through, not inside the engine.
                let (run_above, pushed): (Vec<BExpr>, Vec<BExpr>) = predicate
                    .conjuncts()
                    .into_iter()
                    .partition(BExpr::has_subplan);
                let scan = point_lookup(Plan::Scan {
                    schema,
                    filter: BExpr::conjunction(pushed),
                    columns: None,
                });
                match BExpr::conjunction(run_above) {
                    Some(predicate) => Plan::Filter {
                        input: Box::new(scan),
                        predicate,
                    },
                    None => scan,
                }
            }
            Plan::Scan {
                schema,
                filter: None,
                ..
            } => point_lookup(Plan::Scan {
                schema,
                filter: Some(predicate),
                columns: None,
            }),
            other => Plan::Filter {
                input: Box::new(other),
                predicate,
            },
        },
        Plan::Scan { .. } => point_lookup(plan),
        Plan::Limit {
            input,
            limit,
            offset,
        } => {
            let input = optimize(*input);
            let input = match (&limit, input) {
                (
                    Some(l),
                    Plan::Sort {
                        input: sorted,
                        keys,
                    },
                ) => Plan::TopN {
                    input: Box::new(vector_search(*sorted, &keys, l, offset.as_ref())),
                    k: limit_plus_offset(l, offset.as_ref()),
                    keys,
                },
                (_, other) => other,
            };
            Plan::Limit {
                input: Box::new(input),
                limit,
                offset,
            }
        }
        Plan::Project {
            input,
            exprs,
            names,
        } => {
            let mut input = optimize(*input);
            prune_columns(&mut input, &exprs);
            Plan::Project {
                input: Box::new(input),
                exprs,
                names,
            }
        }
        Plan::Aggregate {
            input,
            groups,
            calls,
        } => Plan::Aggregate {
            input: Box::new(optimize(*input)),
            groups,
            calls,
        },
        Plan::Sort { input, keys } => Plan::Sort {
            input: Box::new(optimize(*input)),
            keys,
        },
        Plan::Distinct { input } => Plan::Distinct {
            input: Box::new(optimize(*input)),
        },
        Plan::InitPlans {
            plans,
            subplans,
            input,
        } => Plan::InitPlans {
            plans,
            subplans,
            input: Box::new(optimize(*input)),
        },
        other => other,
    }
}

/// Rule 2: a conjunct `pk = constant` turns a scan into a point lookup.
fn point_lookup(plan: Plan) -> Plan {
    let Plan::Scan {
        schema,
        filter: Some(filter),
        ..
    } = plan
    else {
        return plan;
    };
    let pk = schema.primary_key;
    let mut conjuncts = filter.clone().conjuncts();
    let found = conjuncts.iter().position(|c| match c {
        BExpr::Binary(BinaryOp::Eq, l, r) => {
            (matches!(l.as_ref(), BExpr::Column(i) if *i == pk) && r.is_row_independent())
                || (matches!(r.as_ref(), BExpr::Column(i) if *i == pk) && l.is_row_independent())
        }
        _ => false,
    });
    let Some(pos) = found else {
        return Plan::Scan {
            schema,
            filter: Some(filter),
            columns: None,
        };
    };
    let key = match conjuncts.remove(pos) {
        BExpr::Binary(_, l, r) => {
            if matches!(l.as_ref(), BExpr::Column(i) if *i == pk) {
                *r
            } else {
                *l
            }
        }
        other => other,
    };
    Plan::PointLookup {
        schema,
        key,
        filter: BExpr::conjunction(conjuncts),
    }
}

/// The column, metric and query of a distance sort key on `column <op> constant`.
fn distance_key(key: &SortKey) -> Option<(usize, Metric, BExpr)> {
    if !key.asc {
        return None;
    }
    let (metric, a, b) = match &key.expr {
        BExpr::Binary(op, a, b) => (op.metric()?, a.as_ref(), b.as_ref()),
        BExpr::Func(f, args) => {
            let metric = match f {
                ScalarFunc::L2Distance => Metric::L2,
                ScalarFunc::CosineDistance => Metric::Cosine,
                ScalarFunc::L1Distance => Metric::L1,
                _ => return None,
            };
            match args.as_slice() {
                [a, b] => (metric, a, b),
                _ => return None,
            }
        }
        _ => return None,
    };
    match (a, b) {
        (BExpr::Column(c), q) | (q, BExpr::Column(c)) if q.is_row_independent() => {
            Some((*c, metric, q.clone()))
        }
        _ => None,
    }
}

/// Rule 3: a distance ORDER BY with a LIMIT becomes an index search, or an exact engine top-k.
fn vector_search(input: Plan, keys: &[SortKey], limit: &BExpr, offset: Option<&BExpr>) -> Plan {
    let Plan::Scan { schema, filter, .. } = input else {
        return input;
    };
    let candidate = match keys {
        [key] => distance_key(key),
        _ => None,
    };
    let Some((column, metric, query)) = candidate else {
        return Plan::Scan {
            schema,
            filter,
            columns: None,
        };
    };
    let Some(def) = schema.columns.get(column) else {
        return Plan::Scan {
            schema,
            filter,
            columns: None,
        };
    };
    if def.ty.vector_dim().is_none() {
        return Plan::Scan {
            schema,
            filter,
            columns: None,
        };
    }
    let indexed = schema
        .index_on(&def.name)
        .is_some_and(|i| i.metric == metric);
    Plan::VectorSearch {
        schema,
        column,
        metric,
        query,
        k: limit_plus_offset(limit, offset),
        filter,
        exact: !indexed,
        columns: None,
    }
}

/// Rule 5: walks down from a Project's input through nodes that keep the row layout (and
/// through an Aggregate, below which its groups and arguments are what is read); on reaching a
/// VectorSearch or Scan, records the columns read on the way (the Project's `exprs` and those
/// nodes' expressions). Any other node ends the walk with nothing pruned.
fn prune_columns(input: &mut Plan, exprs: &[BExpr]) {
    let mut used = Vec::new();
    for e in exprs {
        e.columns_into(&mut used);
    }
    let mut node = input;
    loop {
        match node {
            Plan::Limit { input, .. } => node = input,
            Plan::Filter { input, predicate } => {
                predicate.columns_into(&mut used);
                node = input;
            }
            Plan::Sort { input, keys } => {
                keys.iter().for_each(|k| k.expr.columns_into(&mut used));
                node = input;
            }
            Plan::TopN { input, keys, .. } => {
                // The executor orders a search's hits by their distances when the Top-N has
                // the one ascending key the optimizer searched by (rule 3); rows from a scan
                // fallback are whole, so the key still evaluates there.
                let by_distance = matches!(**input, Plan::VectorSearch { .. })
                    && matches!(keys.as_slice(), [k] if k.asc);
                if !by_distance {
                    keys.iter().for_each(|k| k.expr.columns_into(&mut used));
                }
                node = input;
            }
            Plan::Aggregate {
                input,
                groups,
                calls,
            } => {
                // What is above reads the aggregate's output; below, its groups and arguments.
                used.clear();
                groups.iter().for_each(|g| g.columns_into(&mut used));
                calls
                    .iter()
                    .filter_map(|c| c.arg.as_ref())
                    .for_each(|a| a.columns_into(&mut used));
                node = input;
            }
            Plan::VectorSearch { columns, .. } | Plan::Scan { columns, .. } => {
                used.sort_unstable();
                used.dedup();
                *columns = Some(used);
                return;
            }
            _ => return,
        }
    }
}

/// `LIMIT + OFFSET`, the number of rows a top-k below a Limit must keep.
fn limit_plus_offset(limit: &BExpr, offset: Option<&BExpr>) -> BExpr {
    match offset {
        Some(o) => BExpr::Binary(BinaryOp::Add, Box::new(limit.clone()), Box::new(o.clone())),
        None => limit.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::expr::bind::ParamTypes;
    use crate::parser::parse_sql;
    use crate::select::BindContext;
    use crate::statement::{bind_statement, Bound};
    use crate::{MemoryEngine, Session};

    fn engine() -> Arc<MemoryEngine> {
        let engine = Arc::new(MemoryEngine::new());
        Session::new(engine.clone())
            .execute(
                "CREATE TABLE t (id BIGINT PRIMARY KEY, emb VECTOR(2), tag TEXT);
                 CREATE INDEX ON t USING hnsw (emb vector_l2_ops)",
                &[],
            )
            .expect("schema");
        engine
    }

    fn plan(engine: &MemoryEngine, sql: &str) -> Plan {
        let ast = parse_sql(sql).expect("parse").remove(0);
        let mut params = ParamTypes::default();
        let mut ctx = BindContext::new(engine, &mut params);
        match bind_statement(&ast, &mut ctx).expect("bind") {
            Bound::Query(q) => q.root,
            other => panic!("not a query: {other:?}"),
        }
    }

    /// The `columns` of the plan's first VectorSearch (`search`) or Scan (pre-order), if it
    /// has one.
    fn leaf_columns(plan: &Plan, search: bool) -> Option<Option<Vec<usize>>> {
        match plan {
            Plan::VectorSearch { columns, .. } if search => Some(columns.clone()),
            Plan::Scan { columns, .. } if !search => Some(columns.clone()),
            _ => plan
                .children()
                .into_iter()
                .find_map(|c| leaf_columns(c, search)),
        }
    }

    fn search_columns(plan: &Plan) -> Option<Option<Vec<usize>>> {
        leaf_columns(plan, true)
    }

    #[test]
    fn a_search_copies_only_the_columns_read_above_it() {
        let e = engine();
        let cases: [(&str, Option<Vec<usize>>); 6] = [
            // The Top-N orders by the engine's distances: `emb` is not read.
            (
                "SELECT id FROM t ORDER BY emb <-> '[0,0]' LIMIT 3",
                Some(vec![0]),
            ),
            // The filter runs inside the engine, on whole rows.
            (
                "SELECT tag FROM t WHERE id > 1 ORDER BY emb <-> '[0,0]' LIMIT 3 OFFSET 1",
                Some(vec![2]),
            ),
            (
                "SELECT id, emb <-> '[1,1]' FROM t ORDER BY emb <-> '[0,0]' LIMIT 3",
                Some(vec![0, 1]),
            ),
            (
                "SELECT * FROM t ORDER BY emb <-> $1 LIMIT 3",
                Some(vec![0, 1, 2]),
            ),
            (
                "SELECT count(*) FROM (SELECT tag FROM t ORDER BY emb <-> '[0,0]' LIMIT 3) s",
                Some(vec![2]),
            ),
            // Exact top-k (another metric) prunes the same way.
            (
                "SELECT id FROM t ORDER BY emb <=> '[0,1]' LIMIT 3",
                Some(vec![0]),
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(search_columns(&plan(&e, sql)), Some(want), "{sql}");
        }
    }

    #[test]
    fn a_scan_copies_only_the_columns_read_above_it() {
        let e = engine();
        let cases: [(&str, Option<Vec<usize>>); 8] = [
            ("SELECT count(*) FROM t", Some(vec![])),
            // The pushed filter runs inside the engine on whole rows: not in the list.
            ("SELECT id FROM t WHERE tag = 'a'", Some(vec![0])),
            ("SELECT tag, count(*) FROM t GROUP BY tag", Some(vec![2])),
            (
                "SELECT max(id) FROM t GROUP BY tag HAVING count(emb) > 1",
                Some(vec![0, 1, 2]),
            ),
            ("SELECT id FROM t ORDER BY tag LIMIT 2", Some(vec![0, 2])),
            ("SELECT emb <-> '[1,1]' FROM t", Some(vec![1])),
            ("SELECT * FROM t", Some(vec![0, 1, 2])),
            // Above a sub-select the walk ends: its own Project prunes its scan.
            (
                "SELECT n FROM (SELECT id AS n, tag FROM t) s",
                Some(vec![0, 2]),
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(leaf_columns(&plan(&e, sql), false), Some(want), "{sql}");
        }
    }

    #[test]
    fn no_search_without_a_single_ascending_distance_key() {
        let e = engine();
        for sql in [
            "SELECT id FROM t ORDER BY emb <-> '[0,0]', id LIMIT 3",
            "SELECT id FROM t ORDER BY emb <-> '[0,0]' DESC LIMIT 3",
            "SELECT id FROM t ORDER BY emb <-> '[0,0]'",
        ] {
            assert_eq!(search_columns(&plan(&e, sql)), None, "{sql}");
        }
    }
}
