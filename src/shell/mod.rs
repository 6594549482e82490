//! The `vela` command: a SQL shell like sqlite3, duckdb and psql.
//!
//! `vela [DIR]` opens the database in DIR and then, by what it is given:
//! - `-c SQL` / `-f FILE` (any number, in order): runs them, stops at the first error;
//! - standard input that is not a terminal: runs statements as they arrive, each result written
//!   and flushed at once, going on after errors (exit status 1 if any failed);
//! - otherwise the interactive shell ([`repl`]).
//!
//! Results print as tables (Arrow's pretty printer), CSV, JSON or JSON lines ([`output`]);
//! statements that return no rows print their tag (`INSERT 0 3`), errors print on standard
//! error as `ERROR <code>: <message>`.

pub mod args;
pub mod backend;
pub mod db;
pub mod output;
pub mod repl;
pub mod runner;
pub mod schema;
pub mod split;

use std::io::{BufReader, IsTerminal, Write};
use std::process::ExitCode;

use args::{Parsed, Script};
use runner::{Flow, Runner};

/// Logs go to standard error, filtered by `VELA_LOG` (default: warnings only); `vela import`
/// uses the same set-up.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VELA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs the `vela` command with these arguments (program name excluded).
pub fn main_with(args: Vec<String>) -> ExitCode {
    let args = match args::parse(args) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            let _ = writeln!(std::io::stdout(), "{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            let _ = writeln!(std::io::stdout(), "vela {}", vela::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "vela: {e}\nTry \"vela --help\".");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let backend = match db::open(&args.dir) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{}", e.report());
            return ExitCode::FAILURE;
        }
    };
    let mut runner = Runner::new(
        backend,
        args.format,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    );
    if !args.scripts.is_empty() {
        for script in &args.scripts {
            let flow = match script {
                Script::Command(sql) => runner.run_text(sql, true),
                Script::File(path) if path == "-" => {
                    runner.run_stream(std::io::stdin().lock(), true)
                }
                Script::File(path) => match std::fs::File::open(path) {
                    Ok(f) => runner.run_stream(BufReader::new(f), true),
                    Err(e) => {
                        runner.report(&backend::SqlError::new(
                            "58P01",
                            format!("could not open file \"{path}\": {e}"),
                        ));
                        Flow::Quit
                    }
                },
            };
            if flow == Flow::Quit || runner.failed {
                break;
            }
        }
    } else if std::io::stdin().is_terminal() {
        if let Err(e) = repl::run(&mut runner, &args.dir) {
            let _ = writeln!(std::io::stderr(), "vela: {e}");
            return ExitCode::FAILURE;
        }
    } else {
        runner.run_stream(std::io::stdin().lock(), false);
    }
    // Closes the database (a checkpoint) before the process ends.
    if let Err(e) = runner.backend.close() {
        runner.report(&e);
    }
    let failed = runner.failed;
    drop(runner);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
