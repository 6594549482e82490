//! `.schema`: a table's definition written back as the SQL that creates it.

use vela::{ColumnType, Metric, ScalarType, TableSchema};

/// An identifier as SQL needs it: bare when it is a plain lower-case name, quoted otherwise.
pub fn ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !is_reserved(name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "select"
            | "from"
            | "where"
            | "table"
            | "order"
            | "group"
            | "by"
            | "limit"
            | "user"
            | "index"
            | "create"
            | "insert"
            | "update"
            | "delete"
            | "into"
            | "values"
            | "and"
            | "or"
            | "not"
            | "null"
            | "primary"
            | "key"
            | "with"
            | "as"
            | "on"
            | "default"
    )
}

pub fn type_name(ty: ColumnType) -> String {
    match ty {
        ColumnType::Vector { dim } => format!("VECTOR({dim})"),
        ColumnType::Scalar(s) => match s {
            ScalarType::BigInt => "BIGINT",
            ScalarType::Double => "DOUBLE PRECISION",
            ScalarType::Text => "TEXT",
            ScalarType::Boolean => "BOOLEAN",
            ScalarType::Timestamp => "TIMESTAMP",
        }
        .to_string(),
    }
}

pub fn opclass(metric: Metric) -> &'static str {
    match metric {
        Metric::L2 => "vector_l2_ops",
        Metric::Cosine => "vector_cosine_ops",
        Metric::InnerProduct => "vector_ip_ops",
        Metric::L1 => "vector_l1_ops",
    }
}

/// `CREATE TABLE ...;` followed by one `CREATE INDEX ...;` per vector index.
pub fn create_statements(t: &TableSchema) -> String {
    let mut s = format!("CREATE TABLE {} (\n", ident(&t.name));
    let cols: Vec<String> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut line = format!("    {} {}", ident(&c.name), type_name(c.ty));
            if i == t.primary_key {
                line.push_str(" PRIMARY KEY");
            } else if !c.nullable {
                line.push_str(" NOT NULL");
            }
            line
        })
        .collect();
    s.push_str(&cols.join(",\n"));
    s.push_str(&format!("\n) WITH (shards = {});\n", t.shards));
    for idx in &t.indexes {
        s.push_str(&format!(
            "CREATE INDEX {} ON {} USING hnsw ({} {}) WITH (m = {}, ef_construction = {});\n",
            ident(&idx.name),
            ident(&t.name),
            ident(&idx.column),
            opclass(idx.metric),
            idx.hnsw.m,
            idx.hnsw.ef_construction
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use vela::{ColumnDef, HnswConfig, VectorIndexDef};

    #[test]
    fn schema_round_trips_as_sql() {
        let t = TableSchema {
            name: "docs".into(),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    ty: ColumnType::Scalar(ScalarType::BigInt),
                    nullable: false,
                },
                ColumnDef {
                    name: "Title".into(),
                    ty: ColumnType::Scalar(ScalarType::Text),
                    nullable: false,
                },
                ColumnDef {
                    name: "emb".into(),
                    ty: ColumnType::Vector { dim: 3 },
                    nullable: true,
                },
            ],
            primary_key: 0,
            shards: 2,
            indexes: vec![VectorIndexDef {
                name: "docs_emb_idx".into(),
                column: "emb".into(),
                metric: Metric::Cosine,
                hnsw: HnswConfig::default(),
            }],
        };
        assert_eq!(
            create_statements(&t),
            "CREATE TABLE docs (\n    id BIGINT PRIMARY KEY,\n    \"Title\" TEXT NOT NULL,\n    \
             emb VECTOR(3)\n) WITH (shards = 2);\nCREATE INDEX docs_emb_idx ON docs USING hnsw \
             (emb vector_cosine_ops) WITH (m = 16, ef_construction = 64);\n"
        );
    }
}
