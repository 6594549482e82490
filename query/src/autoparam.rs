//! Auto-parameterization: statements that differ only in their string literals share one plan.
//!
//! An application that writes each query vector into the text
//! (`SELECT id FROM t ORDER BY v <-> '[0.1,...]' LIMIT 10`) sends a new text every time, so the
//! text-keyed plan cache never hits and every query pays sqlparser's tokenizer and parser and the
//! binder for a 1-2 KB statement. Production engines parameterize such statements themselves
//! (SQL Server's simple parameterization, pg_stat_statements' normalization); so does the session
//! ([`crate::Session`]), with two pieces from here:
//!
//! - [`scan`] is a byte scanner (no tokenizer) that finds the plain single-quoted literals of a
//!   statement and gives its *template key*: the text with every such literal's contents taken
//!   out (`'...'` becomes `''`), plus the literals' slices. Numbers and everything else stay in
//!   the key verbatim. It gives up (`None`: the statement takes the ordinary path) on anything
//!   it cannot be sure about: comments, `$` outside literals (parameters, dollar quotes), a quote
//!   right after an identifier character (`E'..'`, `N'..'`, `U&'..'`, `B'..'`, `X'..'`, typed
//!   strings written without a space), a doubled quote inside a literal, a double-quoted
//!   identifier holding a quote, a backslash outside literals, more than one statement (a
//!   trailing `;` is fine), a statement that does not start with SELECT, WITH, VALUES, INSERT,
//!   UPDATE or DELETE, text over [`MAX_SQL_BYTES`], and statements whose literals total fewer
//!   than [`MIN_LITERAL_BYTES`] (little to save there). With those excluded, sqlparser
//!   tokenizes the text around each literal the same whatever the literal holds (the PostgreSQL
//!   dialect reads no backslash escapes), so texts with one key parse to one AST shape.
//! - [`parameterize`] turns the parsed AST of such a statement into the template: each string
//!   literal expression becomes `$k` (sqlparser's `VisitorMut`, never text replacement), checked
//!   against the scanner: every literal the scanner found must be one `Expr::Value` at the
//!   scanner's position (line and column) with the scanner's text, and no other string literal
//!   may be left, else there is no template.
//!
//! The session binds the template like a prepared statement and keeps it only when binding it
//! gives what binding the literals gives (see `Session`'s docs); a later text with the same key
//! converts each literal to the type its `$k` was inferred to have and runs the cached plan.

use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions_mut, Expr, Statement, Value as AstValue};
use sqlparser::tokenizer::Location;

use crate::parser::MAX_SQL_BYTES;

/// Statements whose string literals total fewer bytes than this are not parameterized: a short
/// literal costs sqlparser little, and the template's bookkeeping would eat the saving.
pub const MIN_LITERAL_BYTES: usize = 64;

/// A string literal found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal<'a> {
    /// The literal's contents (between the quotes; there is no doubled quote inside).
    pub text: &'a str,
    /// Byte offset of the opening quote in the statement.
    pub offset: usize,
}

/// What [`scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan<'a> {
    /// The text with each literal's contents removed.
    pub key: String,
    /// The literals, in text order.
    pub literals: Vec<Literal<'a>>,
}

/// Statement keywords a template may start with (its kind is checked again after parsing).
const FIRST_WORDS: &[&str] = &["select", "with", "values", "insert", "update", "delete"];

/// The template key and literals of `sql`, or `None` when the statement is not a candidate (see
/// the module docs).
pub fn scan(sql: &str) -> Option<Scan<'_>> {
    if sql.len() > MAX_SQL_BYTES {
        return None;
    }
    let bytes = sql.as_bytes();
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    let word_len = bytes[start..]
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(bytes.len() - start);
    let word = &bytes[start..start + word_len];
    if !FIRST_WORDS
        .iter()
        .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
    {
        return None;
    }
    let mut literals = Vec::new();
    let mut literal_bytes = 0usize;
    // `sql[copied..]` is not yet in the key.
    let mut key = String::new();
    let mut copied = 0usize;
    let mut i = start + word_len;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' => {
                // `E'..'`, `N'..'`, `U&'..'`, `x'..'`, `date'..'`, and a quote right after a
                // non-ASCII identifier character: not a plain literal.
                let prev = bytes.get(i.wrapping_sub(1)).copied().unwrap_or(b' ');
                if prev.is_ascii_alphanumeric() || matches!(prev, b'_' | b'&') || !prev.is_ascii() {
                    return None;
                }
                let close = i + 1 + memchr::memchr(b'\'', &bytes[i + 1..])?;
                if bytes.get(close + 1) == Some(&b'\'') {
                    return None;
                }
                let text = &sql[i + 1..close];
                if key.is_empty() {
                    key.reserve(sql.len() - text.len());
                }
                key.push_str(&sql[copied..=i]);
                copied = close;
                literal_bytes += text.len();
                literals.push(Literal { text, offset: i });
                i = close + 1;
            }
            b'"' => {
                let close = i + 1 + memchr::memchr(b'"', &bytes[i + 1..])?;
                if sql[i + 1..close].contains('\'') || bytes.get(close + 1) == Some(&b'"') {
                    return None;
                }
                i = close + 1;
            }
            b'$' | b'\\' => return None,
            b'-' if bytes.get(i + 1) == Some(&b'-') => return None,
            b'/' if bytes.get(i + 1) == Some(&b'*') => return None,
            b';' => {
                if !bytes[i + 1..].iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                break;
            }
            _ => i += 1,
        }
    }
    if literal_bytes < MIN_LITERAL_BYTES {
        return None;
    }
    key.push_str(&sql[copied..]);
    Some(Scan { key, literals })
}

/// Where each literal's opening quote is, as sqlparser counts (1-based lines and characters).
fn locations(sql: &str, literals: &[Literal<'_>]) -> Vec<Location> {
    let mut out = Vec::with_capacity(literals.len());
    let (mut line, mut column, mut at) = (1u64, 1u64, 0usize);
    for l in literals {
        for c in sql.get(at..l.offset).unwrap_or_default().chars() {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        at = l.offset;
        out.push(Location::new(line, column));
    }
    out
}

/// Replaces the string literal expressions of `ast` (parsed from `sql`, whose literals `scan`
/// found) with `$1..$n` in the scanner's order. `false` (and `ast` partly rewritten: drop it)
/// unless every literal of the scan was one such expression, at its position, with its text,
/// and no other string literal is left in an expression.
pub fn parameterize(ast: &mut Statement, sql: &str, literals: &[Literal<'_>]) -> bool {
    let at = locations(sql, literals);
    let mut used = vec![false; literals.len()];
    let flow = visit_expressions_mut(ast, |e| {
        let Expr::Value(v) = e else {
            return ControlFlow::Continue(());
        };
        let AstValue::SingleQuotedString(text) = &v.value else {
            return match v.value {
                AstValue::EscapedStringLiteral(_)
                | AstValue::UnicodeStringLiteral(_)
                | AstValue::NationalStringLiteral(_)
                | AstValue::DollarQuotedString(_)
                | AstValue::HexStringLiteral(_) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            };
        };
        let Some(k) = at.iter().position(|l| *l == v.span.start) else {
            return ControlFlow::Break(());
        };
        if used[k] || literals[k].text != text.as_str() {
            return ControlFlow::Break(());
        }
        used[k] = true;
        v.value = AstValue::Placeholder(format!("${}", k + 1));
        ControlFlow::Continue(())
    });
    flow.is_continue() && used.iter().all(|&u| u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_sql;

    fn long(n: usize) -> String {
        let parts: Vec<String> = (0..n).map(|i| format!("0.{i}")).collect();
        format!("[{}]", parts.join(","))
    }

    fn key(sql: &str) -> Option<String> {
        scan(sql).map(|s| s.key)
    }

    #[test]
    fn keys_and_slices() {
        let v = long(40);
        let sql = format!("SELECT id FROM t ORDER BY v <-> '{v}' LIMIT 10");
        let s = scan(&sql).expect("scan");
        assert_eq!(s.key, "SELECT id FROM t ORDER BY v <-> '' LIMIT 10");
        assert_eq!(
            s.literals,
            vec![Literal {
                text: &v,
                offset: sql.find('\'').unwrap()
            }]
        );
        // Several literals; numbers and identifiers stay in the key; a trailing `;` is fine.
        let sql =
            format!("  update t SET v = '{v}', tag = 'x' WHERE id = 42 AND \"Name\" < '';\n  ");
        let s = scan(&sql).expect("scan");
        assert_eq!(
            s.key,
            "  update t SET v = '', tag = '' WHERE id = 42 AND \"Name\" < '';\n  "
        );
        let texts: Vec<&str> = s.literals.iter().map(|l| l.text).collect();
        assert_eq!(texts, [v.as_str(), "x", ""]);
        for l in &s.literals {
            assert_eq!(&sql[l.offset..l.offset + 1], "'");
            assert_eq!(&sql[l.offset + 1..l.offset + 1 + l.text.len()], l.text);
        }
        // Texts differing only in literal contents share a key; anything else does not.
        let a = format!("SELECT id FROM t WHERE v <-> '{v}' < 1");
        let b = format!("SELECT id FROM t WHERE v <-> '{}' < 1", long(50));
        let c = format!("SELECT id FROM t WHERE v <-> '{v}' < 2");
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
        // Non-ASCII text inside and outside literals.
        let sql = format!("SELECT 'é{v}' = ü FROM t");
        let s = scan(&sql).expect("scan");
        assert_eq!(s.key, "SELECT '' = ü FROM t");
        assert_eq!(s.literals[0].text, format!("é{v}"));
    }

    #[test]
    fn bails() {
        let v = long(40);
        let cases = [
            // Comments, dollar quotes and parameters, backslashes outside literals.
            format!("SELECT '{v}' -- c"),
            format!("SELECT '{v}' /* c */"),
            format!("SELECT '{v}', $1"),
            format!("SELECT '{v}', $$x$$"),
            format!("SELECT '{v}', $t$x$t$"),
            format!("SELECT '{v}' \\"),
            // Prefixed strings and typed strings without a space.
            format!("SELECT E'{v}'"),
            format!("SELECT e'{v}'"),
            format!("SELECT N'{v}'"),
            format!("SELECT U&'{v}'"),
            format!("SELECT B'{v}'"),
            format!("SELECT X'{v}'"),
            format!("SELECT date'{v}'"),
            format!("SELECT _'{v}'"),
            format!("SELECT 1'{v}'"),
            format!("SELECT é'{v}'"),
            // Doubled quotes, unterminated literals and identifiers.
            format!("SELECT '{v}''x'"),
            format!("SELECT 'it''s {v}'"),
            format!("SELECT '{v}"),
            format!("SELECT \"{v}"),
            format!("SELECT \"a'b\", '{v}'"),
            format!("SELECT \"a\"\"b\", '{v}'"),
            // More than one statement; not a DML or query statement.
            format!("SELECT '{v}'; SELECT 1"),
            format!("SELECT '{v}';;"),
            format!("COPY t FROM '{v}'"),
            format!("SET x = '{v}'"),
            format!("PREPARE p AS SELECT '{v}'"),
            format!("EXPLAIN SELECT '{v}'"),
            format!("(SELECT '{v}')"),
            // Too little literal text.
            "SELECT id FROM t WHERE tag = 'short'".to_string(),
            "SELECT 1".to_string(),
            String::new(),
            "   ".to_string(),
        ];
        for sql in &cases {
            assert_eq!(scan(sql), None, "{sql}");
        }
        let huge = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert_eq!(scan(&huge), None);
    }

    #[test]
    fn accepted_neighbours_of_bail_cases() {
        let v = long(40);
        for sql in [
            format!("SELECT '{v}' - 1"),
            format!("SELECT '{v}' / 2"),
            format!("SELECT \"a b\", '{v}'"),
            format!("SELECT x FROM t WHERE a = '{v}';"),
            format!("select(1), '{v}'"),
            format!("WITH q AS (SELECT '{v}') SELECT * FROM q"),
            format!("VALUES ('{v}')"),
            format!("INSERT INTO t VALUES (1,'{v}')"),
            format!("DELETE FROM t WHERE v = '{v}'"),
            format!("SELECT ('{v}')"),
            format!("SELECT v<->'{v}'"),
            format!("SELECT '{v}'::vector"),
        ] {
            assert!(scan(&sql).is_some(), "{sql}");
        }
    }

    fn parameterized(sql: &str) -> Option<String> {
        let s = scan(sql)?;
        let mut ast = parse_sql(sql).ok()?.pop()?;
        parameterize(&mut ast, sql, &s.literals).then(|| ast.to_string())
    }

    #[test]
    fn literals_become_parameters_in_text_order() {
        let v = long(40);
        assert_eq!(
            parameterized(&format!(
                "SELECT id FROM t\n WHERE tag = 'a' AND\n\tv <-> '{v}' < 1 ORDER BY v <=> '{v}' LIMIT 5"
            ))
            .as_deref(),
            Some("SELECT id FROM t WHERE tag = $1 AND v <-> $2 < 1 ORDER BY v <=> $3 LIMIT 5")
        );
        assert_eq!(
            parameterized(&format!(
                "INSERT INTO t VALUES (1, 'é', '{v}') ON CONFLICT (id) DO UPDATE SET tag = 'b'"
            ))
            .as_deref(),
            Some("INSERT INTO t VALUES (1, $1, $2) ON CONFLICT(id) DO UPDATE SET tag = $3")
        );
        // Long enough for tokens.rs's split tokenizer, whose spans must be sqlparser's too.
        let long_v = long(200);
        assert_eq!(
            parameterized(&format!(
                "UPDATE t SET v = '{long_v}'\n WHERE tag LIKE 'x%' AND name = 'ü'"
            ))
            .as_deref(),
            Some("UPDATE t SET v = $1 WHERE tag LIKE $2 AND name = $3")
        );
    }

    #[test]
    fn literals_outside_expressions_leave_no_template() {
        let v = long(40);
        for sql in [
            // A typed string and an alias are no `Expr::Value` string literals.
            format!("SELECT a FROM t WHERE a = '{v}' AND b = TIMESTAMP '2020-01-01'"),
            format!("SELECT a AS '{v}' FROM t"),
        ] {
            assert_eq!(parameterized(&sql), None, "{sql}");
        }
    }
}
