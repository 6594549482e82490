//! Correlated subqueries against a reference: random small tables (NULLs in the correlation key
//! and in the compared values), each query's rows compared with a plain nested loop written
//! here with SQL's three-valued rules. `VELA_TEST_SEED` replays one seed.

use std::sync::Arc;

use vela_query::{cell_text, MemoryEngine, Session};

/// xorshift64*: deterministic, no dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `0..n`, or NULL one time in `null_one_in`.
    fn small(&mut self, n: u64, null_one_in: u64) -> Option<i64> {
        if self.next().is_multiple_of(null_one_in) {
            None
        } else {
            Some((self.next() % n) as i64)
        }
    }
}

/// An `(id, k, v)` row.
type TableRow = (i64, Option<i64>, Option<i64>);

/// A table's rows.
type Table = Vec<TableRow>;

fn sql_value(v: Option<i64>) -> String {
    v.map_or("NULL".into(), |x| x.to_string())
}

fn insert(s: &mut Session, table: &str, rows: &Table) {
    for (id, k, v) in rows {
        s.execute(
            &format!(
                "INSERT INTO {table} VALUES ({id}, {}, {})",
                sql_value(*k),
                sql_value(*v)
            ),
            &[],
        )
        .expect("insert");
    }
}

/// Every cell of the result, row by row, as text (NULL as "NULL").
fn run(s: &mut Session, sql: &str) -> Vec<Vec<String>> {
    let batches = s.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            out.push(
                (0..b.num_columns())
                    .map(|c| cell_text(b.column(c).as_ref(), r).unwrap_or("NULL".into()))
                    .collect(),
            );
        }
    }
    out
}

/// `x IN list` with SQL's rules: `Some(bool)` or unknown (`None`).
fn in3(x: Option<i64>, list: &[Option<i64>]) -> Option<bool> {
    if list.is_empty() {
        return Some(false);
    }
    let x = x?;
    if list.contains(&Some(x)) {
        Some(true)
    } else if list.contains(&None) {
        None
    } else {
        Some(false)
    }
}

#[test]
fn correlated_subqueries_match_a_nested_loop() {
    let seeds: Vec<u64> = match std::env::var("VELA_TEST_SEED") {
        Ok(s) => vec![s.parse().expect("VELA_TEST_SEED")],
        Err(_) => (1..=12).collect(),
    };
    for seed in seeds {
        let mut g = Gen(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let a: Table = (1..=12)
            .map(|id| (id, g.small(4, 5), g.small(6, 4)))
            .collect();
        let b: Table = (1..=15)
            .map(|id| (id, g.small(4, 5), g.small(6, 4)))
            .collect();
        let mut s = Session::new(Arc::new(MemoryEngine::new()));
        s.execute(
            "CREATE TABLE a (id BIGINT PRIMARY KEY, k BIGINT, x BIGINT);
             CREATE TABLE b (id BIGINT PRIMARY KEY, k BIGINT, y BIGINT)",
            &[],
        )
        .expect("create");
        insert(&mut s, "a", &a);
        insert(&mut s, "b", &b);
        // The b rows correlated with an a row: b.k = a.k (NULL never equal).
        let matching = |k: Option<i64>| -> Vec<Option<i64>> {
            b.iter()
                .filter(|(_, bk, _)| k.is_some() && *bk == k)
                .map(|(_, _, y)| *y)
                .collect()
        };
        let ids = |keep: &dyn Fn(&TableRow) -> bool| -> Vec<Vec<String>> {
            a.iter()
                .filter(|r| keep(r))
                .map(|(id, _, _)| vec![id.to_string()])
                .collect()
        };
        let cases: Vec<(&str, Vec<Vec<String>>)> = vec![
            (
                "SELECT id FROM a WHERE x IN (SELECT y FROM b WHERE b.k = a.k) ORDER BY id",
                ids(&|(_, k, x)| in3(*x, &matching(*k)) == Some(true)),
            ),
            (
                "SELECT id FROM a WHERE x NOT IN (SELECT y FROM b WHERE b.k = a.k) ORDER BY id",
                ids(&|(_, k, x)| in3(*x, &matching(*k)) == Some(false)),
            ),
            (
                "SELECT id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.k = a.k AND b.y > a.x) ORDER BY id",
                ids(&|(_, k, x)| {
                    matching(*k)
                        .iter()
                        .any(|y| matches!((y, x), (Some(y), Some(x)) if y > x))
                }),
            ),
            (
                "SELECT id FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.k = a.k) ORDER BY id",
                ids(&|(_, k, _)| matching(*k).is_empty()),
            ),
            (
                "SELECT id, (SELECT count(*) FROM b WHERE b.k = a.k), (SELECT max(y) FROM b WHERE b.k = a.k) FROM a ORDER BY id",
                a.iter()
                    .map(|(id, k, _)| {
                        let m = matching(*k);
                        vec![
                            id.to_string(),
                            m.len().to_string(),
                            sql_value(m.iter().flatten().max().copied()),
                        ]
                    })
                    .collect(),
            ),
        ];
        for (sql, want) in cases {
            assert_eq!(run(&mut s, sql), want, "seed {seed}: {sql}");
        }
    }
}
