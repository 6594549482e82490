//! Tokenizing: sqlparser's tokens, with plain string literals cut out of the text in one piece.
//!
//! sqlparser's tokenizer reads a string literal a character at a time (about 55 instructions
//! per byte: a peekable `Chars`, a line/column update and a `String::push` each), which made it
//! the largest cost of a statement carrying a vector literal: `'[0.1,...]'` is 1-2 KB for 128
//! dimensions, ~87 K instructions per query against ~250 K for the engine's whole search.
//!
//! [`tokenize`] returns exactly what `Tokenizer::new(dialect, sql).tokenize_with_location()`
//! returns — the same tokens with the same spans, or the same error — but lexes every plain
//! single-quoted literal itself: the text between literals goes through sqlparser's tokenizer
//! (appended to the same buffer, so the tokens before are its context, as in one pass, and
//! its spans shifted to where that text starts), and each literal is found with a byte search
//! for the closing quote and copied once. The SQL text is only read, never rewritten.
//!
//! A quote is taken as the start of a plain literal only when sqlparser's own tokens for the
//! text before it end in a token after which a quote can only open a plain string: a single
//! space, tab or newline, `(`, `,`, `[`, `=`, `<->`, `<=>` or another operator. Anything else
//! — a quote inside a comment, a dollar-quoted string or a quoted identifier (sqlparser
//! reports those unterminated, or ends on the comment), `E'...'`, `U&'...'`, `N'...'` and the
//! like (the text before ends in a word), an unterminated literal — and any statement with
//! the `COPY` keyword (the tokenizer tracks `COPY ... FROM STDIN` across a whole statement)
//! tokenizes the whole text with sqlparser instead. `tests::split_equals_sqlparser` checks
//! the two agree, spans included, over random statements built from those cases.

use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{
    Location, Span, Token, TokenWithSpan, Tokenizer, TokenizerError, Whitespace,
};

/// Statements shorter than this are tokenized by sqlparser in one pass: there is little
/// literal text to save, and splitting costs a tokenizer per piece.
const SPLIT_MIN_BYTES: usize = 256;

/// Tokenizes `sql` as sqlparser does (tokens, spans and errors), lexing plain `'...'`
/// literals in one piece; see the module docs.
pub fn tokenize(dialect: &dyn Dialect, sql: &str) -> Result<Vec<TokenWithSpan>, TokenizerError> {
    if sql.len() >= SPLIT_MIN_BYTES {
        if let Some(tokens) = tokenize_split(dialect, sql) {
            return Ok(tokens);
        }
    }
    Tokenizer::new(dialect, sql).tokenize_with_location()
}

/// The split tokenization, or `None` when it cannot be sure to match sqlparser's (the caller
/// then tokenizes the whole text, which also gives sqlparser's error for bad input).
fn tokenize_split(dialect: &dyn Dialect, sql: &str) -> Option<Vec<TokenWithSpan>> {
    let mut tokens = Vec::new();
    let mut rest = sql;
    let mut at = Location::new(1, 1);
    while let Some(open) = rest.find('\'') {
        let (before, literal) = rest.split_at(open);
        let first = tokens.len();
        append_tokens(dialect, before, at, &mut tokens).ok()?;
        // The quote opens a plain literal only after one of these tokens (or at the start).
        if tokens.len() == first && !tokens.is_empty() {
            return None;
        }
        if tokens.len() > first && !opens_plain_literal(&tokens[tokens.len() - 1].token) {
            return None;
        }
        at = advance(at, before);
        let (value, len) = plain_literal(literal)?;
        let start = at;
        at = advance(at, &literal[..len]);
        tokens.push(TokenWithSpan::new(
            Token::SingleQuotedString(value),
            Span::new(start, at),
        ));
        rest = &literal[len..];
    }
    append_tokens(dialect, rest, at, &mut tokens).ok()?;
    let copy = tokens
        .iter()
        .any(|t| matches!(&t.token, Token::Word(w) if w.keyword == Keyword::COPY));
    (!copy).then_some(tokens)
}

/// Appends sqlparser's tokens for `text`, which starts at `at` in the statement.
fn append_tokens(
    dialect: &dyn Dialect,
    text: &str,
    at: Location,
    tokens: &mut Vec<TokenWithSpan>,
) -> Result<(), TokenizerError> {
    let first = tokens.len();
    Tokenizer::new(dialect, text).tokenize_with_location_into_buf(tokens)?;
    if at != Location::new(1, 1) {
        for t in &mut tokens[first..] {
            t.span = Span::new(shift(t.span.start, at), shift(t.span.end, at));
        }
    }
    Ok(())
}

/// Whether a quote right after `token` can only open a plain string literal: the token is
/// complete whatever follows it (an operator stops at the first character that cannot be part
/// of one, and a quote cannot), and a quote after it is not a string prefix's. `<->` is
/// sqlparser's `TwoWayArrow`, `<#>` a `CustomBinaryOperator`.
fn opens_plain_literal(token: &Token) -> bool {
    matches!(
        token,
        Token::Whitespace(Whitespace::Space | Whitespace::Tab | Whitespace::Newline)
            | Token::LParen
            | Token::Comma
            | Token::LBracket
            | Token::Eq
            | Token::TwoWayArrow
            | Token::Spaceship
            | Token::CustomBinaryOperator(_)
    )
}

/// The value of the plain literal `text` starts with (`'...'`, `''` standing for a quote) and
/// the literal's length in bytes; `None` when it is unterminated.
fn plain_literal(text: &str) -> Option<(String, usize)> {
    let body = text.get(1..)?;
    let mut value: Option<String> = None;
    let mut from = 0;
    loop {
        let quote = from + body.get(from..)?.find('\'')?;
        if body.as_bytes().get(quote + 1) != Some(&b'\'') {
            let last = body.get(from..quote)?;
            let value = match value {
                None => last.to_owned(),
                Some(mut v) => {
                    v.push_str(last);
                    v
                }
            };
            return Some((value, quote + 2));
        }
        // `''`: one quote in the value.
        let v = value.get_or_insert_with(String::new);
        v.push_str(body.get(from..=quote)?);
        from = quote + 2;
    }
}

/// The location after `text`, which starts at `at`: sqlparser counts a line per `\n` and a
/// column per character.
fn advance(at: Location, text: &str) -> Location {
    let chars = |s: &str| {
        let n = if s.is_ascii() {
            s.len()
        } else {
            s.chars().count()
        };
        n as u64
    };
    match text.rfind('\n') {
        None => Location::new(at.line, at.column + chars(text)),
        Some(last) => {
            let lines = text.bytes().filter(|&b| b == b'\n').count() as u64;
            Location::new(at.line + lines, 1 + chars(&text[last + 1..]))
        }
    }
}

/// `loc`, counted from the start of a piece of text, counted from the statement's start
/// instead, the piece starting at `at`.
fn shift(loc: Location, at: Location) -> Location {
    if loc.line == 1 {
        Location::new(at.line, at.column + loc.column - 1)
    } else {
        Location::new(at.line + loc.line - 1, loc.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::VelaDialect;
    use proptest::prelude::*;

    fn sqlparser_tokens(sql: &str) -> Result<Vec<TokenWithSpan>, TokenizerError> {
        Tokenizer::new(&VelaDialect::default(), sql).tokenize_with_location()
    }

    fn long_vector() -> String {
        let parts: Vec<String> = (0..128).map(|i| format!("{}", i as f32 * 0.37)).collect();
        format!("'[{}]'", parts.join(","))
    }

    #[test]
    fn vector_query_splits_and_matches() {
        let sql = format!("SELECT id FROM t ORDER BY v <-> {} LIMIT 10", long_vector());
        let split = tokenize_split(&VelaDialect::default(), &sql).expect("split");
        assert_eq!(split, sqlparser_tokens(&sql).unwrap());
        let multi = format!(
            "INSERT INTO t VALUES\n  (1, {v}),\r\n\t(2,{v}::vector(128)) ;\nSELECT 'it''s', ('é'), {v} <=>{v}",
            v = long_vector()
        );
        let split = tokenize_split(&VelaDialect::default(), &multi).expect("split");
        assert_eq!(split, sqlparser_tokens(&multi).unwrap());
    }

    #[test]
    fn unsure_cases_fall_back() {
        let v = long_vector();
        let dialect = VelaDialect::default();
        for sql in [
            format!("SELECT E{v}"),
            format!("SELECT 1 -- {v}\n, {v}"),
            format!("SELECT /* {v} */ 1"),
            format!("SELECT $$ {v} $$"),
            format!("SELECT \"a {v}\" FROM t"),
            format!("SELECT {v}'"),
            format!("COPY t FROM STDIN; SELECT {v}"),
        ] {
            assert!(tokenize_split(&dialect, &sql).is_none(), "{sql}");
            assert_eq!(tokenize(&dialect, &sql), sqlparser_tokens(&sql), "{sql}");
        }
    }

    #[test]
    fn errors_are_sqlparser_errors() {
        let dialect = VelaDialect::default();
        for sql in [
            format!("SELECT {} 'open", long_vector()),
            format!("SELECT {}, \"open", long_vector()),
            format!("SELECT {},\n /* open", long_vector()),
        ] {
            let err = tokenize(&dialect, &sql).unwrap_err();
            assert_eq!(Err(err), sqlparser_tokens(&sql), "{sql}");
        }
    }

    /// Pieces of SQL that take the split path when joined: literals (escaped quotes, line
    /// breaks, multi-byte characters), the tokens a plain literal may follow and others.
    const PIECES: &[&str] = &[
        "SELECT",
        "id",
        " ",
        "  ",
        "\n",
        "\r\n",
        "\r",
        "\t",
        "''",
        "'[1,2,3]'",
        "'it''s'",
        "'a\nb'",
        "'é'",
        "'\\'",
        "$1",
        "(",
        ")",
        ",",
        "[",
        "]",
        "=",
        "<->",
        "<=>",
        "<#>",
        "<+>",
        "<",
        ">",
        "::vector",
        "::",
        "1e",
        "+",
        "-",
        "1.5",
        ".",
        "x",
        "FROM",
        ";",
        "\\",
        "ü",
        "🦀",
        "\u{a0}",
        "-- c\n",
        "/* c */",
    ];

    /// Pieces with a quote that is no plain literal's (prefixed strings, comments, dollar
    /// quotes, quoted identifiers), pieces left open, and COPY: each makes the statement fall
    /// back (or fail) as a whole, so they are rarer.
    const RARE: &[&str] = &[
        "E'x\\'y'",
        "N'n'",
        "X'0f'",
        "B'01'",
        "U&'d\\0061t'",
        "$$a'b$$",
        "$t$ ' $t$",
        "-- c ' \n",
        "/* ' */",
        "\"q'i\"",
        "'",
        "\"",
        "/*",
        "*/",
        "--",
        "e'",
        "$$",
        "COPY",
        "copy",
        "STDIN",
    ];

    fn statement() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            30 => proptest::sample::select(PIECES).prop_map(str::to_string),
            1 => proptest::sample::select(RARE).prop_map(str::to_string),
            3 => "[a-z0-9 ,.'\\[\\]-]{100,400}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        ];
        // Mostly a separator a plain literal may follow, so that most statements split.
        let separator = proptest::sample::select(&["", " ", " ", " ", "\n", ",", "("][..]);
        proptest::collection::vec((separator, piece), 1..20).prop_map(|pieces| {
            let mut sql: String = pieces
                .iter()
                .flat_map(|(sep, p)| [*sep, p.as_str()])
                .collect();
            // Long enough that `tokenize` takes the split path.
            if sql.len() < SPLIT_MIN_BYTES {
                sql.push_str(" , ");
                sql.push_str(&long_vector());
            }
            sql
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn split_equals_sqlparser(sql in statement()) {
            let dialect = VelaDialect::default();
            let expected = sqlparser_tokens(&sql);
            if let Some(split) = tokenize_split(&dialect, &sql) {
                prop_assert_eq!(Ok(&split), expected.as_ref(), "{:?}", sql);
            }
            prop_assert_eq!(tokenize(&dialect, &sql), expected, "{:?}", sql);
        }
    }
}
