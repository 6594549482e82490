//! End-to-end tests of the `vela` binary: `-c`, `-f`, piped input driven one statement at a
//! time, every output format, the error paths (exit status, stderr text, a locked directory),
//! and the interactive shell under a pseudo-terminal (tmux; skipped when tmux is missing).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const VELA: &str = env!("CARGO_BIN_EXE_vela");

fn vela(dir: &Path, args: &[&str]) -> Output {
    Command::new(VELA)
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("VELA_LOG")
        .output()
        .expect("run vela")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "vela failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

const SETUP: &str = "CREATE TABLE docs (id BIGINT PRIMARY KEY, title TEXT, emb VECTOR(3));
INSERT INTO docs VALUES (1, 'one', '[1,2,3]'), (2, 'two; with a semicolon', '[0.5,0,-1]'), (3, NULL, '[0,0,0]');
CREATE INDEX ON docs USING hnsw (emb vector_l2_ops);";

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&vela(dir.path(), &["-c", SETUP]));
    assert_eq!(out, "CREATE TABLE\nINSERT 0 3\nCREATE INDEX\n");
    dir
}

#[test]
fn version_and_help() {
    let o = Command::new(VELA).arg("--version").output().unwrap();
    assert_eq!(ok(&o).trim(), format!("vela {}", env!("CARGO_PKG_VERSION")));
    let o = Command::new(VELA).arg("--help").output().unwrap();
    let help = ok(&o);
    for word in ["-c", "-f", "--format", "table", "jsonl", "VELA_LOG"] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    let o = Command::new(VELA).arg("--bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown option"), "{}", stderr(&o));
}

#[test]
fn command_prints_tables_with_vectors_and_tags() {
    let dir = setup();
    let out = ok(&vela(
        dir.path(),
        &[
            "-c",
            "SELECT id, title, emb FROM docs ORDER BY emb <-> '[1,2,3]' LIMIT 3",
        ],
    ));
    assert!(out.contains("| id | title "), "{out}");
    assert!(out.contains("| 1  | one "), "{out}");
    assert!(out.contains("[1,2,3]"), "{out}");
    assert!(out.contains("[0.5,0,-1]"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("| 3 ") && l.contains("[0,0,0]")),
        "{out}"
    );
    assert!(out.trim_end().ends_with("(3 rows)"), "{out}");
    // Data written by one process is there for the next (and the tags are psql's).
    let out = ok(&vela(
        dir.path(),
        &[
            "-c",
            "UPDATE docs SET title = 'uno' WHERE id = 1; DELETE FROM docs WHERE id = 3;",
        ],
    ));
    assert_eq!(out, "UPDATE 1\nDELETE 1\n");
    let out = ok(&vela(dir.path(), &["-c", "SELECT count(*) AS n FROM docs"]));
    assert!(out.contains("| 2 |"), "{out}");
}

#[test]
fn every_format() {
    let dir = setup();
    let q = "SELECT id, title, emb FROM docs ORDER BY id";
    let csv = ok(&vela(dir.path(), &["--format", "csv", "-c", q]));
    assert_eq!(
        csv,
        "id,title,emb\n1,one,\"[1,2,3]\"\n2,two; with a semicolon,\"[0.5,0,-1]\"\n3,,\"[0,0,0]\"\n"
    );
    let json = ok(&vela(dir.path(), &["--format", "json", "-c", q]));
    assert_eq!(
        json,
        "[{\"id\":1,\"title\":\"one\",\"emb\":\"[1,2,3]\"},\
         {\"id\":2,\"title\":\"two; with a semicolon\",\"emb\":\"[0.5,0,-1]\"},\
         {\"id\":3,\"title\":null,\"emb\":\"[0,0,0]\"}]\n"
    );
    let jsonl = ok(&vela(dir.path(), &["--format=jsonl", "-c", q]));
    assert_eq!(jsonl.lines().count(), 3, "{jsonl}");
    assert_eq!(
        jsonl.lines().next().unwrap(),
        "{\"id\":1,\"title\":\"one\",\"emb\":\"[1,2,3]\"}"
    );
    // `.mode` switches within a script.
    let mixed = ok(&vela(
        dir.path(),
        &["-c", ".mode csv\nSELECT id FROM docs WHERE id = 1;\n.mode json\nSELECT id FROM docs WHERE id = 1;"],
    ));
    assert_eq!(mixed, "id\n1\n[{\"id\":1}]\n");
    let table = ok(&vela(dir.path(), &["--format", "table", "-c", q]));
    assert!(table.starts_with("+----+"), "{table}");
}

#[test]
fn file_runs_statements_with_semicolons_in_literals_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sql");
    std::fs::write(
        &file,
        "-- a comment; not a statement\n\
         CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT);\n\
         INSERT INTO t VALUES\n  (1, 'a;b'),\n  (2, 'it''s; fine') /* ; */;\n\
         .tables\n\
         SELECT note FROM t ORDER BY id;\n",
    )
    .unwrap();
    let db = dir.path().join("db");
    let out = ok(&vela(
        &db,
        &["-f", file.to_str().unwrap(), "--format", "csv"],
    ));
    assert_eq!(out, "CREATE TABLE\nINSERT 0 2\nt\nnote\na;b\nit's; fine\n");
    // .schema prints SQL that recreates the table.
    let schema = ok(&vela(&db, &["-c", ".schema t"]));
    assert!(
        schema.starts_with("CREATE TABLE t (\n    id BIGINT PRIMARY KEY,\n    note TEXT\n)"),
        "{schema}"
    );
    let other = dir.path().join("db2");
    ok(&vela(&other, &["-c", &schema]));
    assert!(ok(&vela(&other, &["-c", ".tables"])).contains('t'));
}

#[test]
fn command_and_file_stop_at_the_first_error() {
    let dir = setup();
    let o = vela(
        dir.path(),
        &["-c", "SELECT emb FROM docs WHERE id = 1; SELECT nope FROM docs; CREATE TABLE after_error (id BIGINT PRIMARY KEY);"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "ERROR 42703: column \"nope\" does not exist\n");
    assert!(stdout(&o).contains("[1,2,3]"), "{}", stdout(&o));
    // The statement after the error did not run.
    let tables = ok(&vela(dir.path(), &["-c", ".tables"]));
    assert_eq!(tables, "docs\n");

    // A syntax error in a file: code, line and column within the file.
    let file = dir.path().join("bad.sql");
    std::fs::write(
        &file,
        "SELECT 1;\n\nSELECT id\n  FROM docs WHERE;\nSELECT 2;\n",
    )
    .unwrap();
    let o = vela(dir.path(), &["-f", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("ERROR 42601: syntax error at line 4, column 18:"),
        "{err}"
    );
    assert!(!stdout(&o).contains("| 2 "), "{}", stdout(&o));

    // Other errors: unknown table, malformed vector, missing file, unknown dot command.
    for (sql, code) in [
        ("SELECT * FROM missing", "42P01"),
        ("SELECT '[1,2'::vector", "22P02"),
        ("SELECT 1/0", "22012"),
        (".frobnicate", "42601"),
    ] {
        let o = vela(dir.path(), &["-c", sql]);
        assert_eq!(o.status.code(), Some(1), "{sql}");
        assert!(
            stderr(&o).starts_with(&format!("ERROR {code}: ")),
            "{sql}: {}",
            stderr(&o)
        );
    }
    let o = vela(dir.path(), &["-f", "/nonexistent/file.sql"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("could not open file"), "{}", stderr(&o));
}

/// A running `vela` fed through a pipe, its output lines read by threads.
struct Piped {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Piped {
    fn start(dir: &Path, args: &[&str]) -> Piped {
        let mut child = Command::new(VELA)
            .arg(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("VELA_LOG")
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let err = lines_of(child.stderr.take().unwrap());
        Piped { child, out, err }
    }

    fn send(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// The next line of output; fails if none comes within a generous timeout (the statement
    /// was not run, or its result was not flushed, while stdin is still open).
    fn line(rx: &mpsc::Receiver<String>, what: &str) -> String {
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no {what} line within 60 s: {e}"))
    }

    fn out_line(&self) -> String {
        Self::line(&self.out, "stdout")
    }

    fn err_line(&self) -> String {
        Self::line(&self.err, "stderr")
    }

    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.out.try_iter().collect();
        (status.code(), rest)
    }
}

#[test]
fn pipe_runs_each_statement_as_it_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Piped::start(dir.path(), &["--format", "json"]);
    p.send("CREATE TABLE t (id BIGINT PRIMARY KEY, v VECTOR(2));\n");
    assert_eq!(p.out_line(), "CREATE TABLE");
    // A statement over several writes runs only when its `;` arrives.
    p.send("INSERT INTO t VALUES (1, '[1,2]'),\n");
    p.send("  (2, '[3,4]');\n");
    assert_eq!(p.out_line(), "INSERT 0 2");
    p.send("SELECT id, v FROM t ORDER BY v <-> '[3,4]' LIMIT 1;\n");
    assert_eq!(p.out_line(), "[{\"id\":2,\"v\":\"[3,4]\"}]");
    // An error goes to stderr, and the session goes on.
    p.send("SELECT nope FROM t;\n");
    assert_eq!(p.err_line(), "ERROR 42703: column \"nope\" does not exist");
    p.send(".mode csv\nSELECT count(*) AS n FROM t;\n");
    assert_eq!(p.out_line(), "n");
    assert_eq!(p.out_line(), "2");
    // Two statements on one line, the second finished later.
    p.send("SELECT 1 AS a; SELECT\n");
    assert_eq!(p.out_line(), "a");
    assert_eq!(p.out_line(), "1");
    p.send("2 AS b;\n");
    assert_eq!(p.out_line(), "b");
    assert_eq!(p.out_line(), "2");
    let (code, rest) = p.finish();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        code,
        Some(1),
        "a failed statement makes the exit status non-zero"
    );

    // Without errors the exit status is 0; a last statement without `;` still runs.
    let o = Command::new(VELA)
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"SELECT id FROM t WHERE id = 1;\nSELECT 7 AS x")?;
            c.wait_with_output()
        })
        .unwrap();
    let out = ok(&o);
    assert!(out.contains("| 1  |") && out.contains("| 7 |"), "{out}");
}

#[test]
fn locked_directory_is_reported_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    // A shell reading from a pipe holds the database open until its input ends.
    let mut holder = Piped::start(dir.path(), &[]);
    holder.send("SELECT 1 AS ready;\n");
    let started = Instant::now();
    while holder.out_line() != "(1 row)" {
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    let o = vela(dir.path(), &["-c", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let want = format!("database is locked by pid {}", holder.child.id());
    assert!(err.contains(&want), "want {want:?} in {err:?}");
    assert!(err.starts_with("ERROR 55006: "), "{err}");
    let (code, _) = holder.finish();
    assert_eq!(code, Some(0));
}

#[test]
fn logs_follow_vela_log() {
    let dir = tempfile::tempdir().unwrap();
    let quiet = vela(dir.path(), &["-c", "SELECT 1"]);
    assert_eq!(stderr(&quiet), "");
    let o = Command::new(VELA)
        .arg(dir.path())
        .args(["-c", "SELECT 1"])
        .env("VELA_LOG", "debug")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&o);
    assert!(!stderr(&o).is_empty(), "VELA_LOG=debug printed nothing");
}

// ---- the interactive shell, under tmux ----

struct Tmux {
    session: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn tmux(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.session])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Types `keys`: `Enter` and `Tab` as keys, anything else as literal text.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            if matches!(*k, "Enter" | "Tab") {
                self.tmux(&["send-keys", "-t", &self.session, k]);
            } else {
                // tmux takes an argument ending in `;` as a command separator: escape it.
                let text = match k.strip_suffix(';') {
                    Some(head) => format!("{head}\\;"),
                    None => k.to_string(),
                };
                self.tmux(&["send-keys", "-t", &self.session, "-l", &text]);
            }
        }
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.session, "-S", "-200"])
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait_for_count(text, 1)
    }

    /// Waits until `text` appears at least `count` times on the screen.
    fn wait_for_count(&self, text: &str, count: usize) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.matches(text).count() >= count {
                return s;
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!("{text:?} did not appear; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

#[test]
fn interactive_shell_under_tmux() {
    if !Tmux::available() {
        eprintln!("tmux not installed: skipping the interactive test");
        return;
    }
    let dir = setup();
    let home = tempfile::tempdir().unwrap();
    let t = Tmux {
        session: format!("vela-test-{}", std::process::id()),
    };
    let cmd = format!(
        "env HOME={} TERM=xterm {} {}",
        home.path().display(),
        VELA,
        dir.path().display()
    );
    t.tmux(&[
        "new-session",
        "-d",
        "-s",
        &t.session,
        "-x",
        "150",
        "-y",
        "50",
        &cmd,
    ]);
    t.wait_for("vela>");
    // A statement over two lines, with a `;` inside a string on the first.
    t.keys(&["SELECT id, 'x;y' AS s", "Enter"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.screen().contains("(1 row)"));
    t.keys(&["FROM docs WHERE id = 1;", "Enter"]);
    let s = t.wait_for("(1 row)");
    assert!(s.contains("x;y"), "{s}");
    // Tab completion of a table name and a column name.
    t.wait_for_count("vela>", 2);
    t.keys(&[
        "SELECT em",
        "Tab",
        " FROM do",
        "Tab",
        " WHERE id = 2;",
        "Enter",
    ]);
    let s = t.wait_for("[0.5,0,-1]");
    assert!(s.contains("SELECT emb FROM docs WHERE id = 2;"), "{s}");
    // Dot commands, timer, an error that does not end the shell. Each line is typed once the
    // next prompt is up, as a person would: rustyline may drop keys typed ahead of its prompt
    // (it reads the terminal's cursor-position reply when it starts a line).
    t.wait_for_count("vela>", 3);
    t.keys(&[".timer on", "Enter"]);
    t.wait_for_count("vela>", 4);
    t.keys(&["SELECT nope FROM docs;", "Enter"]);
    t.wait_for("ERROR 42703: column \"nope\" does not exist");
    t.wait_for_count("vela>", 5);
    t.keys(&["SELECT 1 AS one;", "Enter"]);
    t.wait_for("Time: ");
    t.wait_for_count("vela>", 6);
    t.keys(&[".quit", "Enter"]);
    // The shell writes its history as it exits: wait for the whole line, not just the file
    // (under load the file can exist before its contents are written).
    let history = home.path().join(".vela_history");
    let start = Instant::now();
    let mut h = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        h = std::fs::read_to_string(&history).unwrap_or_default();
        if h.contains("SELECT emb FROM docs WHERE id = 2;") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        h.contains("SELECT emb FROM docs WHERE id = 2;"),
        "history file {} after 30 s: {h:?}",
        if history.exists() {
            "exists"
        } else {
            "missing"
        }
    );
}
