//! Where statements end: sqlparser's tokenizer (with Vela's dialect) finds the `;` tokens, so a
//! `;` inside a string literal, a quoted identifier, a dollar-quoted string or a comment does not
//! end a statement.
//!
//! [`Splitter`] is the streaming form the pipe mode uses: lines go in as they arrive and each
//! statement comes out as soon as its `;` does, with the line and column where its text starts
//! in the whole input (so a syntax error can be reported against the file, not the statement).

use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};
use vela_query::dialect::VelaDialect;

/// One statement's text (ending with its `;`, if it had one) and where it starts in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub sql: String,
    /// 1-based line of the first character of `sql` in the whole input.
    pub line: u64,
    /// 1-based column (in characters) of the first character of `sql`.
    pub column: u64,
}

/// The result of scanning a buffer: byte offsets just past each statement-ending `;`.
#[derive(Debug, Default)]
struct Scan {
    ends: Vec<usize>,
    /// Whether the text after the last end holds anything but whitespace and comments.
    rest_has_sql: bool,
}

/// Byte offsets of line starts, to turn tokenizer locations into offsets.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    /// The byte offset of a 1-based (line, column-in-chars) location, clamped to the text.
    fn offset(&self, loc: Location) -> usize {
        let line = (loc.line.max(1) - 1) as usize;
        let Some(&start) = self.starts.get(line) else {
            return self.text.len();
        };
        let col = loc.column.max(1) as usize - 1;
        self.text[start..]
            .char_indices()
            .nth(col)
            .map(|(i, _)| start + i)
            .unwrap_or(self.text.len())
    }
}

fn is_trivia(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_) | Token::EOF)
}

/// Whether a tokenizer error means "the input stops inside a literal or comment" (more input may
/// complete it) rather than "this text can never be valid".
fn needs_more_input(message: &str) -> bool {
    message.contains("Unterminated") || message.contains("EOF")
}

/// Scans `text` for statement-ending `;` tokens.
fn scan(text: &str) -> Scan {
    let dialect = VelaDialect::default();
    let mut out = Scan::default();
    let mut from = 0usize;
    // Each round tokenizes text[from..]; a hard tokenizer error cuts a statement at the next raw
    // `;` after the error so the parser reports it, and scanning resumes after that cut.
    loop {
        let part = &text[from..];
        let part_index = LineIndex::new(part);
        let mut tokens: Vec<TokenWithSpan> = Vec::new();
        let result = Tokenizer::new(&dialect, part).tokenize_with_location_into_buf(&mut tokens);
        let mut rest_has_sql = false;
        for t in &tokens {
            if t.token == Token::SemiColon {
                let end = from + part_index.offset(t.span.start) + 1;
                out.ends.push(end.min(text.len()));
                rest_has_sql = false;
            } else if !is_trivia(&t.token) {
                rest_has_sql = true;
            }
        }
        match result {
            Ok(()) => {
                out.rest_has_sql = rest_has_sql;
                return out;
            }
            Err(e) if needs_more_input(&e.message) => {
                out.rest_has_sql = true;
                return out;
            }
            Err(e) => {
                let at = from + part_index.offset(e.location);
                match text[at.min(text.len())..].find(';') {
                    Some(i) => {
                        let end = at + i + 1;
                        out.ends.push(end);
                        from = end;
                    }
                    None => {
                        out.rest_has_sql = true;
                        return out;
                    }
                }
            }
        }
    }
}

/// Whether `text` is ready to run: every statement in it is ended by `;` (or it holds none).
pub fn is_complete(text: &str) -> bool {
    !scan(text).rest_has_sql
}

/// Whether `text` holds anything besides whitespace and comments.
pub fn has_sql(text: &str) -> bool {
    let dialect = VelaDialect::default();
    let mut tokens = Vec::new();
    let r = Tokenizer::new(&dialect, text).tokenize_with_location_into_buf(&mut tokens);
    r.is_err()
        || tokens
            .iter()
            .any(|t| !is_trivia(&t.token) && t.token != Token::SemiColon)
}

/// Splits a whole text into statements (the last one may lack its `;`); empty statements and
/// comment-only ones are dropped.
#[cfg(test)]
pub fn split_all(text: &str) -> Vec<Chunk> {
    let mut s = Splitter::new();
    let mut out = s.push(text);
    out.extend(s.finish());
    out
}

/// Streaming statement splitter: see the module docs.
#[derive(Debug)]
pub struct Splitter {
    buf: String,
    /// Location in the whole input of `buf`'s first character.
    line: u64,
    column: u64,
}

impl Default for Splitter {
    fn default() -> Self {
        Self::new()
    }
}

/// The location just after `text`, which starts at (line, column).
fn advance(mut line: u64, mut column: u64, text: &str) -> (u64, u64) {
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

impl Splitter {
    pub fn new() -> Self {
        Splitter {
            buf: String::new(),
            line: 1,
            column: 1,
        }
    }

    /// Whether the pending text holds no SQL (only whitespace and comments, or nothing).
    pub fn is_blank(&self) -> bool {
        self.buf.trim().is_empty() || !has_sql(&self.buf)
    }

    /// Skips `text` without treating it as SQL (a dot command's line), keeping locations right.
    pub fn skip(&mut self, text: &str) {
        let (l, c) = advance(self.line, self.column, &self.buf);
        let (l, c) = advance(l, c, text);
        self.buf.clear();
        self.line = l;
        self.column = c;
    }

    /// Appends `text` and returns the statements it completed.
    pub fn push(&mut self, text: &str) -> Vec<Chunk> {
        self.buf.push_str(text);
        // A statement can only end at a `;`: without one in the new text nothing completes
        // (this keeps a long multi-line statement from being re-tokenized on every line).
        if !text.contains(';') {
            return Vec::new();
        }
        let scan = scan(&self.buf);
        let mut out = Vec::new();
        let mut start = 0usize;
        for end in scan.ends {
            let piece = &self.buf[start..end];
            if has_sql(piece) {
                out.push(Chunk {
                    sql: piece.to_string(),
                    line: self.line,
                    column: self.column,
                });
            }
            let (l, c) = advance(self.line, self.column, piece);
            self.line = l;
            self.column = c;
            start = end;
        }
        self.buf.drain(..start);
        out
    }

    /// The pending text as a last statement, if it holds any SQL (input ended without `;`).
    pub fn finish(&mut self) -> Option<Chunk> {
        let piece = std::mem::take(&mut self.buf);
        let chunk = Chunk {
            sql: piece,
            line: self.line,
            column: self.column,
        };
        let (l, c) = advance(self.line, self.column, &chunk.sql);
        self.line = l;
        self.column = c;
        has_sql(&chunk.sql).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(text: &str) -> Vec<String> {
        split_all(text).into_iter().map(|c| c.sql).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_literals_and_comments() {
        assert_eq!(sqls("SELECT 1; SELECT 2;"), vec!["SELECT 1;", " SELECT 2;"]);
        assert_eq!(
            sqls("SELECT ';'; SELECT 2"),
            vec!["SELECT ';';", " SELECT 2"]
        );
        assert_eq!(
            sqls("SELECT 1 -- a ; comment\n; SELECT /* ; */ 2;"),
            vec!["SELECT 1 -- a ; comment\n;", " SELECT /* ; */ 2;"]
        );
        assert_eq!(
            sqls("SELECT \"a;b\" FROM t;"),
            vec!["SELECT \"a;b\" FROM t;"]
        );
        assert_eq!(sqls("SELECT $$a;b$$;"), vec!["SELECT $$a;b$$;"]);
        assert_eq!(sqls("SELECT 'it''s;';"), vec!["SELECT 'it''s;';"]);
        assert!(sqls(" ;; -- nothing\n").is_empty());
        assert_eq!(sqls("SELECT 'ü;é'; SELECT 2;")[0], "SELECT 'ü;é';");
    }

    #[test]
    fn completeness() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1;  -- trailing comment\n"));
        assert!(is_complete(""));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1; SELECT"));
        assert!(!is_complete("SELECT /* ; "));
        assert!(!is_complete("SELECT $$ ; "));
        assert!(is_complete("SELECT 'a\nb';"));
    }

    #[test]
    fn streaming_emits_statements_as_their_semicolon_arrives() {
        let mut s = Splitter::new();
        assert!(s.push("SELECT\n").is_empty());
        assert!(s.push("  'a;\n").is_empty());
        let out = s.push("b'; SELECT 2;\n");
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].sql, "SELECT\n  'a;\nb';");
        assert_eq!((out[0].line, out[0].column), (1, 1));
        assert_eq!(out[1].sql, " SELECT 2;");
        assert_eq!((out[1].line, out[1].column), (3, 4));
        assert!(s.is_blank());
        assert_eq!(s.push("SELECT 3").len(), 0);
        let last = s.finish().unwrap();
        assert_eq!(last.sql, "\nSELECT 3");
        assert_eq!((last.line, last.column), (3, 14));
    }

    #[test]
    fn hard_tokenizer_errors_still_cut_at_the_next_semicolon() {
        // Whatever the tokenizer rejects, the text is handed on (so the parser reports it) and
        // what follows still runs.
        let out = sqls("SELECT E'\\x'; SELECT 2;");
        assert!(out.len() >= 2, "{out:?}");
        assert_eq!(out.last().unwrap().trim(), "SELECT 2;");
    }
}
