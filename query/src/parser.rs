//! Parsing: SQL text -> sqlparser AST, with Vela's dialect and Vela's limits.
//!
//! The text is tokenized by [`crate::tokens::tokenize`] (sqlparser's tokens, with long string
//! literals such as vectors lexed in one piece) and the tokens parsed by sqlparser's parser.
//!
//! The statement text is bounded ([`MAX_SQL_BYTES`]) and so is nesting (sqlparser's recursion
//! limit, reported as `54000`), so no input can exhaust memory or the stack here. Parse errors keep
//! sqlparser's message and carry its line and column in [`QueryError::Syntax`].

use sqlparser::ast::Statement;
use sqlparser::parser::{Parser, ParserError};

use crate::dialect::VelaDialect;
use crate::error::{QueryError, Result};
use crate::tokens::tokenize;

/// Longest SQL text accepted, in bytes (a statement beyond this is `54000`).
pub const MAX_SQL_BYTES: usize = 4 * 1024 * 1024;

/// Deepest expression nesting accepted by the parser.
pub const MAX_NESTING: usize = 64;

/// Parses one or more `;`-separated statements.
pub fn parse_sql(sql: &str) -> Result<Vec<Statement>> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::ProgramLimitExceeded(format!(
            "statement is too long: {} bytes, the limit is {MAX_SQL_BYTES}",
            sql.len()
        )));
    }
    let dialect = VelaDialect::default();
    let tokens = tokenize(&dialect, sql).map_err(|e| convert(e.into()))?;
    Parser::new(&dialect)
        .with_recursion_limit(MAX_NESTING)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(convert)
}

/// Turns a sqlparser error into a [`QueryError`] with line and column when sqlparser gave them.
fn convert(err: ParserError) -> QueryError {
    match err {
        ParserError::RecursionLimitExceeded => QueryError::ProgramLimitExceeded(
            "statement is nested too deeply (stack depth limit exceeded)".into(),
        ),
        ParserError::TokenizerError(msg) | ParserError::ParserError(msg) => {
            let (message, line, column) = split_location(&msg);
            QueryError::Syntax {
                message,
                line,
                column,
            }
        }
    }
}

/// Splits sqlparser's trailing ` at Line: L, Column: C` off a message.
fn split_location(msg: &str) -> (String, u64, u64) {
    let Some(pos) = msg.rfind(" at Line: ") else {
        return (msg.to_string(), 0, 0);
    };
    let (head, tail) = msg.split_at(pos);
    let tail = tail.trim_start_matches(" at Line: ");
    let mut parts = tail.split(", Column: ");
    let line = parts.next().and_then(|l| l.trim().parse().ok());
    let column = parts
        .next()
        .and_then(|c| c.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|c| c.parse().ok());
    match (line, column) {
        (Some(line), Some(column)) => (head.to_string(), line, column),
        _ => (msg.to_string(), 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{BinaryOperator, Expr, SelectItem, SetExpr};

    fn first_projection(sql: &str) -> Expr {
        let stmts = parse_sql(sql).unwrap();
        let Statement::Query(q) = &stmts[0] else {
            panic!("not a query")
        };
        let SetExpr::Select(s) = q.body.as_ref() else {
            panic!("not a select")
        };
        match &s.projection[0] {
            SelectItem::UnnamedExpr(e) => e.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pgvector_operators_parse() {
        for (sql, op) in [
            ("SELECT a <-> b", BinaryOperator::LtDashGt),
            ("SELECT a <=> b", BinaryOperator::Spaceship),
            ("SELECT a <#> b", BinaryOperator::Custom("<#>".into())),
            ("SELECT a <+> b", BinaryOperator::Custom("<+>".into())),
            ("SELECT a<+>'[1,2]'", BinaryOperator::Custom("<+>".into())),
        ] {
            match first_projection(sql) {
                Expr::BinaryOp { op: got, .. } => assert_eq!(got, op, "{sql}"),
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[test]
    fn l1_operator_binds_tighter_than_comparison_and_needs_adjacent_tokens() {
        match first_projection("SELECT a <+> b < 3") {
            Expr::BinaryOp {
                op: BinaryOperator::Lt,
                left,
                ..
            } => assert!(matches!(*left, Expr::BinaryOp { .. })),
            other => panic!("{other:?}"),
        }
        assert!(parse_sql("SELECT a < + > b").is_err());
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = parse_sql("SELECT 1,\n  FROM WHERE").unwrap_err();
        match err {
            QueryError::Syntax { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_are_enforced() {
        let deep = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
        assert_eq!(parse_sql(&deep).unwrap_err().code(), "54000");
        let long = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert_eq!(parse_sql(&long).unwrap_err().code(), "54000");
    }
}
