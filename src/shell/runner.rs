//! Running statements and dot commands, and writing what they print.
//!
//! One [`Runner`] serves every mode: `-c` text, `-f` files and piped input go through
//! [`Runner::run_stream`] (statements run as their `;` arrives, each result written and flushed
//! at once), and the interactive shell hands it each entry it reads.

use std::io::{BufRead, Write};
use std::time::Instant;

use super::backend::{Backend, SqlError};
use super::output::{write_result, Format};
use super::schema::create_statements;
use super::split::{Chunk, Splitter};

/// Whether to go on reading input after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Quit,
}

/// `.help`'s text.
pub const DOT_HELP: &str = "\
.help                      show this help
.quit, .exit               leave the shell
.mode [table|csv|json|jsonl]
                           show or set the output format
.timer on|off              print how long each statement took
.tables                    list tables
.schema [TABLE]            show CREATE statements (all tables, or one)

SQL statements end with `;` and may span lines. Vectors are written '[1,2,3]';
operators <-> (L2), <=> (cosine), <#> (negative inner product), <+> (L1).";

/// Runs SQL and dot commands against a [`Backend`] and prints the results.
pub struct Runner {
    pub backend: Box<dyn Backend>,
    pub format: Format,
    pub timer: bool,
    out: Box<dyn Write>,
    err: Box<dyn Write>,
    /// Whether any statement or command failed.
    pub failed: bool,
    /// Set when standard output went away (a closed pipe): stop quietly.
    pub output_closed: bool,
}

/// Moves a syntax error's `line N, column M` from the statement's coordinates to the input's,
/// for a statement that starts at (`line`, `column`) of the input.
pub fn relocate(message: &str, line: u64, column: u64) -> String {
    const HEAD: &str = "syntax error at line ";
    let Some(rest) = message.strip_prefix(HEAD) else {
        return message.to_string();
    };
    let Some((l, rest)) = rest.split_once(", column ") else {
        return message.to_string();
    };
    let Some((c, tail)) = rest.split_once(':') else {
        return message.to_string();
    };
    let (Ok(l), Ok(c)) = (l.parse::<u64>(), c.parse::<u64>()) else {
        return message.to_string();
    };
    if l == 0 {
        return message.to_string();
    }
    let new_l = l + line - 1;
    let new_c = if l == 1 { c + column - 1 } else { c };
    format!("{HEAD}{new_l}, column {new_c}:{tail}")
}

impl Runner {
    pub fn new(
        backend: Box<dyn Backend>,
        format: Format,
        out: Box<dyn Write>,
        err: Box<dyn Write>,
    ) -> Self {
        Runner {
            backend,
            format,
            timer: false,
            out,
            err,
            failed: false,
            output_closed: false,
        }
    }

    fn note_write(&mut self, r: std::io::Result<()>) {
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                self.output_closed = true;
            } else {
                self.output_closed = true;
                let _ = writeln!(self.err, "vela: cannot write output: {e}");
                self.failed = true;
            }
        }
    }

    /// Prints an error on the error stream and remembers the failure.
    pub fn report(&mut self, e: &SqlError) {
        self.failed = true;
        let _ = writeln!(self.err, "{}", e.report());
        let _ = self.err.flush();
    }

    /// Writes `text` and a newline to the output.
    pub fn println(&mut self, text: &str) {
        let r = writeln!(self.out, "{text}").and_then(|_| self.out.flush());
        self.note_write(r);
    }

    /// Runs one statement; returns whether it succeeded.
    pub fn run_sql(&mut self, chunk: &Chunk) -> bool {
        let start = Instant::now();
        let result = self.backend.execute(&chunk.sql);
        let elapsed = start.elapsed();
        match result {
            Ok(results) => {
                for r in &results {
                    if let Err(e) = write_result(&mut self.out, r, self.format) {
                        let io = std::io::Error::other(e.0);
                        self.note_write(Err(io));
                        return !self.output_closed;
                    }
                }
                if self.timer {
                    let ms = elapsed.as_secs_f64() * 1000.0;
                    let r = writeln!(self.out, "Time: {ms:.3} ms");
                    self.note_write(r);
                }
                let r = self.out.flush();
                self.note_write(r);
                true
            }
            Err(mut e) => {
                e.message = relocate(&e.message, chunk.line, chunk.column);
                // Whatever was printed before the error reaches the reader first.
                let r = self.out.flush();
                self.note_write(r);
                self.report(&e);
                false
            }
        }
    }

    /// Runs a dot command (`line` starts with `.`); returns whether it succeeded and whether
    /// to go on.
    pub fn dot_command(&mut self, line: &str) -> (bool, Flow) {
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let args: Vec<&str> = words.collect();
        let bad = |this: &mut Runner, msg: String| {
            this.report(&SqlError::new("42601", msg));
            (false, Flow::Continue)
        };
        match cmd {
            ".quit" | ".exit" | ".q" => (true, Flow::Quit),
            ".help" | ".h" => {
                self.println(DOT_HELP);
                (true, Flow::Continue)
            }
            ".mode" | ".format" => match args.as_slice() {
                [] => {
                    let name = self.format.name();
                    self.println(name);
                    (true, Flow::Continue)
                }
                [name] => match Format::parse(name) {
                    Some(f) => {
                        self.format = f;
                        (true, Flow::Continue)
                    }
                    None => bad(
                        self,
                        format!(
                            "unknown format \"{name}\": use one of {}",
                            Format::NAMES.join(", ")
                        ),
                    ),
                },
                _ => bad(self, "usage: .mode table|csv|json|jsonl".into()),
            },
            ".timer" => match args.as_slice() {
                [on] if matches!(on.to_ascii_lowercase().as_str(), "on" | "1" | "true") => {
                    self.timer = true;
                    (true, Flow::Continue)
                }
                [off] if matches!(off.to_ascii_lowercase().as_str(), "off" | "0" | "false") => {
                    self.timer = false;
                    (true, Flow::Continue)
                }
                [] => {
                    let state = if self.timer { "on" } else { "off" };
                    self.println(&format!("timer is {state}"));
                    (true, Flow::Continue)
                }
                _ => bad(self, "usage: .timer on|off".into()),
            },
            ".tables" => {
                let names: Vec<String> =
                    self.backend.tables().into_iter().map(|t| t.name).collect();
                for n in names {
                    self.println(&n);
                }
                (true, Flow::Continue)
            }
            ".schema" => {
                let tables = self.backend.tables();
                match args.as_slice() {
                    [] => {
                        for t in &tables {
                            let s = create_statements(t);
                            self.println(s.trim_end());
                        }
                        (true, Flow::Continue)
                    }
                    [name] => {
                        let wanted = name.trim_matches('"');
                        match tables
                            .iter()
                            .find(|t| t.name == wanted)
                            .or_else(|| tables.iter().find(|t| t.name.eq_ignore_ascii_case(wanted)))
                        {
                            Some(t) => {
                                let s = create_statements(t);
                                self.println(s.trim_end());
                                (true, Flow::Continue)
                            }
                            None => {
                                self.report(&SqlError::new(
                                    "42P01",
                                    format!("relation \"{wanted}\" does not exist"),
                                ));
                                (false, Flow::Continue)
                            }
                        }
                    }
                    _ => bad(self, "usage: .schema [TABLE]".into()),
                }
            }
            other => bad(
                self,
                format!("unknown command \"{other}\" (.help lists the commands)"),
            ),
        }
    }

    /// Reads `input` line by line, running each statement as soon as its `;` arrives and each
    /// dot command (a line starting with `.` between statements) as it comes. With
    /// `stop_on_error`, stops at the first failure. Returns whether to go on.
    pub fn run_stream(&mut self, mut input: impl BufRead, stop_on_error: bool) -> Flow {
        let mut splitter = Splitter::new();
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match input.read_until(b'\n', &mut raw) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.report(&SqlError::new("58030", format!("cannot read input: {e}")));
                    return Flow::Quit;
                }
            }
            let line = String::from_utf8_lossy(&raw);
            if line.trim_start().starts_with('.') && splitter.is_blank() {
                splitter.skip(&line);
                let (ok, flow) = self.dot_command(line.trim());
                if flow == Flow::Quit || (!ok && stop_on_error) || self.output_closed {
                    return Flow::Quit;
                }
                continue;
            }
            for chunk in splitter.push(&line) {
                let ok = self.run_sql(&chunk);
                if (!ok && stop_on_error) || self.output_closed {
                    return Flow::Quit;
                }
            }
        }
        if let Some(chunk) = splitter.finish() {
            let ok = self.run_sql(&chunk);
            if (!ok && stop_on_error) || self.output_closed {
                return Flow::Quit;
            }
        }
        Flow::Continue
    }

    /// Runs a whole text (an entry of the interactive shell, a `-c` argument).
    pub fn run_text(&mut self, text: &str, stop_on_error: bool) -> Flow {
        self.run_stream(text.as_bytes(), stop_on_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn runner() -> (Runner, Buf, Buf) {
        let engine = Arc::new(vela_query::MemoryEngine::new());
        let session = vela_query::Session::new(engine);
        let (out, err) = (Buf::default(), Buf::default());
        let r = Runner::new(
            Box::new(session),
            Format::Table,
            Box::new(out.clone()),
            Box::new(err.clone()),
        );
        (r, out, err)
    }

    #[test]
    fn relocates_syntax_errors() {
        assert_eq!(
            relocate("syntax error at line 1, column 8: Expected: x", 3, 5),
            "syntax error at line 3, column 12: Expected: x"
        );
        assert_eq!(
            relocate("syntax error at line 2, column 8: Expected: x", 3, 5),
            "syntax error at line 4, column 8: Expected: x"
        );
        assert_eq!(
            relocate("column \"x\" does not exist", 3, 5),
            "column \"x\" does not exist"
        );
    }

    #[test]
    fn runs_statements_tags_and_dot_commands() {
        let (mut r, out, err) = runner();
        let script = "CREATE TABLE t (id BIGINT PRIMARY KEY, emb VECTOR(2));\n\
                      INSERT INTO t VALUES (1, '[1,2]'), (2, '[3,4]');\n\
                      .mode csv\n\
                      SELECT id, emb FROM t ORDER BY id;\n\
                      .tables\n\
                      .schema t\n";
        assert_eq!(r.run_text(script, true), Flow::Continue);
        assert!(!r.failed, "{}", err.text());
        let text = out.text();
        assert!(text.contains("CREATE TABLE\nINSERT 0 2\n"), "{text}");
        assert!(
            text.contains("id,emb\n1,\"[1,2]\"\n2,\"[3,4]\"\n"),
            "{text}"
        );
        assert!(text.contains("\nt\nCREATE TABLE t (\n"), "{text}");
    }

    #[test]
    fn stops_at_first_error_or_goes_on() {
        let (mut r, out, err) = runner();
        assert_eq!(
            r.run_text("SELECT 1;\nSELEC 2;\nSELECT 3;", true),
            Flow::Quit
        );
        assert!(r.failed);
        assert!(
            err.text()
                .starts_with("ERROR 42601: syntax error at line 2, column 1"),
            "{}",
            err.text()
        );
        assert!(!out.text().contains('3'), "{}", out.text());
        let (mut r, out, err) = runner();
        assert_eq!(
            r.run_text("SELECT nope FROM nowhere;\nSELECT 3 AS x;", false),
            Flow::Continue
        );
        assert!(r.failed);
        assert!(err.text().starts_with("ERROR 42P01:"), "{}", err.text());
        assert!(out.text().contains("| 3 |"), "{}", out.text());
    }

    #[test]
    fn unknown_dot_commands_fail() {
        let (mut r, _out, err) = runner();
        let (ok, flow) = r.dot_command(".frobnicate");
        assert!(!ok && flow == Flow::Continue);
        assert!(err.text().contains("unknown command"));
        assert_eq!(r.dot_command(".quit").1, Flow::Quit);
    }
}
