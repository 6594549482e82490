//! The interactive shell: rustyline with a history file, multi-line statements ended by `;`
//! (checked with sqlparser's tokenizer, see [`super::split`]), and tab completion of SQL
//! keywords, table names and column names from the catalog.

use std::borrow::Cow;
use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, Helper};
use vela::TableSchema;

use super::output::Format;
use super::runner::{Flow, Runner};
use super::split;

/// Keywords offered by tab completion (Vela's SQL, pgvector's names).
pub const KEYWORDS: &[&str] = &[
    "ALL",
    "ALTER",
    "ANALYZE",
    "AND",
    "AS",
    "ASC",
    "AVG",
    "BEGIN",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "CASE",
    "CAST",
    "COMMIT",
    "CONFLICT",
    "COPY",
    "COUNT",
    "CREATE",
    "DEFAULT",
    "DELETE",
    "DESC",
    "DISTINCT",
    "DO",
    "DOUBLE",
    "DROP",
    "ELSE",
    "END",
    "EXECUTE",
    "EXISTS",
    "EXPLAIN",
    "FALSE",
    "FLOAT",
    "FROM",
    "GROUP",
    "HAVING",
    "HNSW",
    "IF",
    "ILIKE",
    "IN",
    "INDEX",
    "INSERT",
    "INTEGER",
    "INTO",
    "IS",
    "KEY",
    "LIKE",
    "LIMIT",
    "MAX",
    "MIN",
    "NOT",
    "NOTHING",
    "NULL",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "PRECISION",
    "PREPARE",
    "PRIMARY",
    "REAL",
    "RESET",
    "ROLLBACK",
    "SELECT",
    "SET",
    "SHOW",
    "SUM",
    "TABLE",
    "TABLES",
    "TEXT",
    "THEN",
    "TIMESTAMP",
    "TO",
    "TRUE",
    "TRUNCATE",
    "UPDATE",
    "USING",
    "VALUES",
    "VARCHAR",
    "VECTOR",
    "WHEN",
    "WHERE",
    "WITH",
    "cosine_distance",
    "ef_construction",
    "hnsw.ef_search",
    "inner_product",
    "l1_distance",
    "l2_distance",
    "m",
    "shards",
    "synchronous",
    "vector_cosine_ops",
    "vector_dims",
    "vector_ip_ops",
    "vector_l1_ops",
    "vector_l2_ops",
    "vector_norm",
];

/// Dot commands offered by tab completion.
const DOT_COMMANDS: &[&str] = &[
    ".exit", ".help", ".mode", ".quit", ".schema", ".tables", ".timer",
];

/// Words after which a table name is expected.
const TABLE_CONTEXT: &[&str] = &["FROM", "JOIN", "INTO", "UPDATE", "TABLE", "TRUNCATE", "ON"];

/// The rustyline helper: completion from a snapshot of the catalog, validation by tokenizer.
#[derive(Default)]
pub struct ShellHelper {
    /// The catalog as of the last prompt.
    pub tables: Vec<TableSchema>,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

fn matching<'a>(
    prefix: &str,
    words: impl IntoIterator<Item = &'a str>,
    lowercase: bool,
) -> Vec<String> {
    let p = prefix.to_ascii_lowercase();
    let mut out: Vec<String> = words
        .into_iter()
        .filter(|w| w.to_ascii_lowercase().starts_with(&p) && !w.eq_ignore_ascii_case(prefix))
        .map(|w| {
            if lowercase && w.chars().all(|c| !c.is_ascii_lowercase()) {
                w.to_ascii_lowercase()
            } else {
                w.to_string()
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

impl ShellHelper {
    /// Candidates for the word ending at `pos`: (start of the word, replacements).
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_word_char(*c))
            .last()
            .map(|(i, _)| i)
            .unwrap_or(pos);
        let word = &before[start..];
        let table_names = || self.tables.iter().map(|t| t.name.as_str());

        // Dot commands and their arguments.
        let trimmed = before.trim_start();
        if trimmed.starts_with('.') && !line.trim_start().contains(';') {
            let mut parts = trimmed.split_whitespace();
            let cmd = parts.next().unwrap_or("");
            if !trimmed.contains(char::is_whitespace) {
                let start = pos - cmd.len();
                return (start, matching(cmd, DOT_COMMANDS.iter().copied(), false));
            }
            let arg_start = before
                .rfind(char::is_whitespace)
                .map(|i| i + 1)
                .unwrap_or(pos);
            let arg = &before[arg_start..];
            let list: Vec<String> = match cmd {
                ".schema" => matching(arg, table_names(), false),
                ".mode" => matching(arg, Format::NAMES.iter().copied(), false),
                ".timer" => matching(arg, ["on", "off"], false),
                _ => Vec::new(),
            };
            return (arg_start, list);
        }

        // `table.col`: the columns of that table.
        if let Some(dot) = word.rfind('.') {
            let qualifier = &word[..dot];
            let col_prefix = &word[dot + 1..];
            let cols: Vec<&str> = self
                .tables
                .iter()
                .filter(|t| t.name.eq_ignore_ascii_case(qualifier))
                .flat_map(|t| t.columns.iter().map(|c| c.name.as_str()))
                .collect();
            if !cols.is_empty() {
                return (start + dot + 1, matching(col_prefix, cols, false));
            }
        }

        let previous = before[..start]
            .split(|c: char| !is_word_char(c))
            .rfind(|w| !w.is_empty())
            .unwrap_or("");
        if TABLE_CONTEXT
            .iter()
            .any(|k| k.eq_ignore_ascii_case(previous))
        {
            return (start, matching(word, table_names(), false));
        }
        if word.is_empty() {
            return (start, Vec::new());
        }

        // Columns of the tables named in the statement (all tables' if none is named yet).
        let mentioned: Vec<&TableSchema> = {
            let lower = line.to_ascii_lowercase();
            let words: Vec<&str> = lower
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .collect();
            self.tables
                .iter()
                .filter(|t| words.contains(&t.name.to_ascii_lowercase().as_str()))
                .collect()
        };
        let scope: Vec<&TableSchema> = if mentioned.is_empty() {
            self.tables.iter().collect()
        } else {
            mentioned
        };
        let lowercase = word.chars().any(|c| c.is_ascii_lowercase());
        let mut list = matching(word, KEYWORDS.iter().copied(), lowercase);
        list.extend(matching(word, table_names(), false));
        list.extend(matching(
            word,
            scope
                .iter()
                .flat_map(|t| t.columns.iter().map(|c| c.name.as_str())),
            false,
        ));
        list.sort();
        list.dedup();
        (start, list)
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = self.candidates(line, pos);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

/// Whether an entry is ready to run: a dot command, nothing, or SQL whose statements are all
/// ended by `;` outside literals and comments.
pub fn entry_is_complete(input: &str) -> bool {
    let t = input.trim_start();
    t.is_empty() || t.starts_with('.') || split::is_complete(input)
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if entry_is_complete(ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ShellHelper {}

/// `~/.vela_history` (or `$VELA_HISTORY`), if a home directory is known.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VELA_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".vela_history"))
}

/// Runs the interactive shell until `.quit` or end of input.
pub fn run(runner: &mut Runner, dir: &str) -> Result<(), String> {
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_dups(true)
        .map_err(|e| e.to_string())?
        .max_history_size(10_000)
        .map_err(|e| e.to_string())?
        .build();
    let mut rl: Editor<ShellHelper, DefaultHistory> =
        Editor::with_config(config).map_err(|e| format!("cannot start line editor: {e}"))?;
    rl.set_helper(Some(ShellHelper::default()));
    let history = history_path();
    if let Some(h) = &history {
        if let Err(e) = rl.load_history(h) {
            tracing::debug!(path = %h.display(), error = %e, "no shell history loaded");
        }
    }
    runner.println(&format!(
        "vela {} on {dir}\nEnter SQL ending with \";\", or \".help\".",
        vela::VERSION
    ));
    loop {
        if let Some(helper) = rl.helper_mut() {
            helper.tables = runner.backend.tables();
        }
        match rl.readline("vela> ") {
            Ok(entry) => {
                if entry.trim().is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(entry.trim_end());
                if runner.run_text(&entry, false) == Flow::Quit || runner.output_closed {
                    break;
                }
            }
            // Ctrl-C drops the entry being typed, as in psql.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                tracing::warn!(error = %e, "line editor failed");
                break;
            }
        }
    }
    if let Some(h) = &history {
        if let Err(e) = rl.save_history(h) {
            tracing::debug!(path = %h.display(), error = %e, "shell history not saved");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vela::{ColumnDef, ColumnType, ScalarType};

    fn helper() -> ShellHelper {
        let col = |name: &str, ty| ColumnDef {
            name: name.into(),
            ty,
            nullable: true,
        };
        ShellHelper {
            tables: vec![
                TableSchema {
                    name: "docs".into(),
                    columns: vec![
                        col("id", ColumnType::Scalar(ScalarType::BigInt)),
                        col("embedding", ColumnType::Vector { dim: 3 }),
                    ],
                    primary_key: 0,
                    shards: 1,
                    indexes: vec![],
                },
                TableSchema {
                    name: "dogs".into(),
                    columns: vec![col("name", ColumnType::Scalar(ScalarType::Text))],
                    primary_key: 0,
                    shards: 1,
                    indexes: vec![],
                },
            ],
        }
    }

    fn complete(line: &str) -> (usize, Vec<String>) {
        helper().candidates(line, line.len())
    }

    #[test]
    fn completes_keywords_tables_and_columns() {
        assert_eq!(complete("SEL"), (0, vec!["SELECT".to_string()]));
        assert_eq!(complete("sel"), (0, vec!["select".to_string()]));
        assert_eq!(complete("SELECT * FROM do").1, vec!["docs", "dogs"]);
        assert_eq!(complete("SELECT * FROM ").1, vec!["docs", "dogs"]);
        assert!(complete("SELECT emb").1.contains(&"embedding".to_string()));
        assert_eq!(
            helper().candidates("SELECT na FROM docs", 9).1,
            Vec::<String>::new()
        );
        assert_eq!(
            helper().candidates("SELECT na FROM dogs", 9).1,
            vec!["name"]
        );
        assert_eq!(
            complete("SELECT docs.em"),
            (12, vec!["embedding".to_string()])
        );
        assert_eq!(complete(".sch"), (0, vec![".schema".to_string()]));
        assert_eq!(
            complete(".schema d"),
            (8, vec!["docs".to_string(), "dogs".to_string()])
        );
        assert_eq!(complete(".mode j").1, vec!["json", "jsonl"]);
    }

    #[test]
    fn validator_waits_for_the_semicolon() {
        assert!(!entry_is_complete("SELECT 1"));
        assert!(!entry_is_complete("SELECT ';'\n"));
        assert!(entry_is_complete("SELECT ';';"));
        assert!(entry_is_complete(".tables"));
        assert!(entry_is_complete("   "));
        assert!(!entry_is_complete("SELECT 1; -- done?\nSELECT"));
    }
}
