//! EXPLAIN output: one line per plan node, children indented under `->`, as PostgreSQL prints.
//! With EXPLAIN ANALYZE each node also shows its actual time and row count, measured by the
//! executor's `plan_node` spans, numbered in pre-order (the order this renderer walks the
//! tree); a node that did not run shows `(never executed)`. A node that ran more than once (in
//! a correlated subplan, once per distinct outer value) also shows `loops=n`; its time and
//! rows are then totals over the loops (PostgreSQL prints per-loop averages).

use std::collections::HashMap;
use std::time::Duration;

use super::Plan;
use crate::expr::{BExpr, ExprDisplay};

/// What the executor measured for one node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NodeStats {
    /// Time spent in the node and its children.
    pub elapsed: Duration,
    pub rows: u64,
    /// How many times the node ran (more than once inside a correlated subplan).
    pub loops: u64,
}

/// Renders `plan`; `stats`, when given, holds the measurements by pre-order node number.
pub fn explain(plan: &Plan, stats: Option<&HashMap<u64, NodeStats>>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut counter = 0u64;
    render(plan, 0, stats, &mut counter, &mut lines);
    lines
}

fn show(e: &BExpr, names: &[String]) -> String {
    ExprDisplay { expr: e, names }.to_string()
}

fn render(
    plan: &Plan,
    depth: usize,
    stats: Option<&HashMap<u64, NodeStats>>,
    counter: &mut u64,
    lines: &mut Vec<String>,
) {
    let id = *counter;
    *counter += 1;
    if let Plan::InitPlans {
        plans,
        subplans,
        input,
    } = plan
    {
        // PostgreSQL-style: each subplan under an "InitPlan n" (uncorrelated, run once) or
        // "SubPlan n" line (correlated, with the outer values it reads), then the query itself.
        let pad = "  ".repeat(depth);
        let arrow = if depth == 0 { "" } else { "->  " };
        let what = |kind| match kind {
            super::SubqueryKind::Scalar => "",
            super::SubqueryKind::Exists => " (EXISTS)",
            super::SubqueryKind::In => " (IN)",
        };
        for (i, p) in plans.iter().enumerate() {
            lines.push(format!("{pad}{arrow}InitPlan {}{}", i + 1, what(p.kind)));
            render(&p.plan, depth + 1, stats, counter, lines);
        }
        for (i, p) in subplans.iter().enumerate() {
            let args: Vec<String> = p
                .arg_names
                .iter()
                .enumerate()
                .map(|(k, n)| format!("$outer{} = {n}", k + 1))
                .collect();
            lines.push(format!(
                "{pad}{arrow}SubPlan {}{} ({})",
                i + 1,
                what(p.kind),
                args.join(", ")
            ));
            render(&p.plan, depth + 1, stats, counter, lines);
        }
        render(input, depth, stats, counter, lines);
        return;
    }
    let input_names = plan
        .children()
        .first()
        .map(|c| c.output_names())
        .unwrap_or_else(|| plan.output_names());
    let mut head = match plan {
        Plan::OneRow => "Result".to_string(),
        Plan::Values { rows, .. } => format!("Values ({} rows)", rows.len()),
        Plan::Scan { schema, .. } => format!("Seq Scan on {}", schema.name),
        Plan::PointLookup { schema, key, .. } => format!(
            "Point Lookup on {} ({} = {})",
            schema.name,
            schema.primary_key_column().name,
            show(key, &input_names)
        ),
        Plan::VectorSearch {
            schema,
            column,
            metric,
            query,
            k,
            exact,
            ..
        } => {
            let col = schema.columns.get(*column).map_or("?", |c| c.name.as_str());
            if *exact {
                format!(
                    "Exact Top-K Scan on {} ({metric:?}, {col} nearest to {}, k = {})",
                    schema.name,
                    show(query, &input_names),
                    show(k, &input_names)
                )
            } else {
                let index = schema.index_on(col).map_or("?", |i| i.name.as_str());
                format!(
                    "Index Scan using {index} on {} (hnsw {metric:?}, {col} nearest to {}, k = {})",
                    schema.name,
                    show(query, &input_names),
                    show(k, &input_names)
                )
            }
        }
        Plan::Filter { .. } => "Filter".to_string(),
        Plan::Project { exprs, .. } => {
            let cols: Vec<String> = exprs.iter().map(|e| show(e, &input_names)).collect();
            format!("Project ({})", cols.join(", "))
        }
        Plan::Aggregate { groups, .. } => {
            if groups.is_empty() {
                "Aggregate".to_string()
            } else {
                let g: Vec<String> = groups.iter().map(|e| show(e, &input_names)).collect();
                format!("HashAggregate (group by {})", g.join(", "))
            }
        }
        Plan::Sort { keys, .. } => {
            let k: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}{}",
                        show(&k.expr, &input_names),
                        if k.asc { "" } else { " DESC" }
                    )
                })
                .collect();
            format!("Sort (by {})", k.join(", "))
        }
        Plan::TopN { keys, k, .. } => {
            let by: Vec<String> = keys
                .iter()
                .map(|key| {
                    format!(
                        "{}{}",
                        show(&key.expr, &input_names),
                        if key.asc { "" } else { " DESC" }
                    )
                })
                .collect();
            format!(
                "Top-N Sort (by {}, keep {})",
                by.join(", "),
                show(k, &input_names)
            )
        }
        Plan::Limit { limit, offset, .. } => {
            let mut s = "Limit".to_string();
            if let Some(l) = limit {
                s.push_str(&format!(" {}", show(l, &input_names)));
            }
            if let Some(o) = offset {
                s.push_str(&format!(" offset {}", show(o, &input_names)));
            }
            s
        }
        Plan::Distinct { .. } => "Unique".to_string(),
        Plan::InitPlans { .. } => String::new(),
    };
    match stats.map(|s| s.get(&id)) {
        Some(Some(s)) => {
            head.push_str(&format!(
                " (actual time={:.3} ms rows={}",
                s.elapsed.as_secs_f64() * 1000.0,
                s.rows
            ));
            if s.loops > 1 {
                head.push_str(&format!(" loops={}", s.loops));
            }
            head.push(')');
        }
        Some(None) => head.push_str(" (never executed)"),
        None => {}
    }
    let pad = "  ".repeat(depth);
    let arrow = if depth == 0 { "" } else { "->  " };
    lines.push(format!("{pad}{arrow}{head}"));
    let detail_pad = format!("{pad}{}", if depth == 0 { "  " } else { "      " });
    let filter = match plan {
        Plan::Scan { filter, .. }
        | Plan::PointLookup { filter, .. }
        | Plan::VectorSearch { filter, .. } => filter.as_ref(),
        Plan::Filter { predicate, .. } => Some(predicate),
        _ => None,
    };
    if let Some(f) = filter {
        lines.push(format!("{detail_pad}Filter: {}", show(f, &input_names)));
    }
    for child in plan.children() {
        render(child, depth + 1, stats, counter, lines);
    }
}
