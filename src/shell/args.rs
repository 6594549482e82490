//! Command-line arguments of `vela`.

use super::output::Format;

pub const USAGE: &str = "\
Usage: vela [OPTIONS] [DIR]

Opens the Vela database in DIR (default ./vela-data, created if missing) and runs SQL:
an interactive shell on a terminal, statements from standard input when it is a pipe,
or the statements given with -c / -f.

Options:
  -c, --command SQL     run SQL (one or more statements) and exit; may be repeated
  -f, --file FILE       run the statements in FILE (\"-\" for standard input) and exit;
                        may be repeated (-c and -f run in the order given)
      --format FORMAT   output format: table (default), csv, json, jsonl
  -h, --help            print this help
  -V, --version         print the version

-c and -f stop at the first error (exit status 1). From a pipe, every statement runs,
and the exit status is 1 if any failed. Errors go to standard error as
`ERROR <SQLSTATE>: <message>`. Log output (standard error) is set by VELA_LOG
(e.g. VELA_LOG=debug; default: warnings only).

In the shell, statements end with `;`; .help lists the dot commands
(.mode, .timer, .tables, .schema, .quit).";

/// One `-c` or `-f`, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    Command(String),
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub dir: String,
    pub scripts: Vec<Script>,
    pub format: Format,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

/// An option argument split into its name and the value given in the same argument:
/// `--name=value`, and (when short options take values that way) `-nVALUE`. Shared by `vela`
/// and `vela import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionArg {
    /// `--name` or `-n`.
    pub name: String,
    inline: Option<String>,
}

impl OptionArg {
    /// Splits `arg` (which starts with `-`). `short_values`: `-cVALUE` is `-c` with `VALUE`.
    pub fn split(arg: &str, short_values: bool) -> OptionArg {
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.to_string(), None),
            }
        } else if short_values && arg.len() > 2 && arg.is_char_boundary(2) {
            (arg[..2].to_string(), Some(arg[2..].to_string()))
        } else {
            (arg.to_string(), None)
        };
        OptionArg { name, inline }
    }

    /// The option's value: the inline one, else the next argument; `what` names the missing
    /// value in the error (`option --table needs a table name`).
    pub fn value(
        &self,
        rest: &mut impl Iterator<Item = String>,
        what: &str,
    ) -> Result<String, String> {
        match self.inline.clone() {
            Some(v) => Ok(v),
            None => rest
                .next()
                .ok_or_else(|| format!("option {} needs {what}", self.name)),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut dir: Option<String> = None;
    let mut scripts = Vec::new();
    let mut format = Format::Table;
    let mut it = args.into_iter();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        if only_positional || arg == "-" || !arg.starts_with('-') {
            if dir.is_some() {
                return Err(format!(
                    "unexpected argument \"{arg}\" (one directory only)"
                ));
            }
            dir = Some(arg);
            continue;
        }
        if arg == "--" {
            only_positional = true;
            continue;
        }
        let opt = OptionArg::split(&arg, true);
        let mut value = |what: &str| opt.value(&mut it, what);
        match opt.name.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "-c" | "--command" => scripts.push(Script::Command(value("SQL")?)),
            "-f" | "--file" => scripts.push(Script::File(value("a file name")?)),
            "--format" | "-F" => {
                let v = value("a format")?;
                format = Format::parse(&v).ok_or_else(|| {
                    format!(
                        "unknown format \"{v}\": use one of {}",
                        Format::NAMES.join(", ")
                    )
                })?;
            }
            "--csv" => format = Format::Csv,
            "--json" => format = Format::Json,
            _ => return Err(format!("unknown option \"{arg}\"")),
        }
    }
    Ok(Parsed::Run(Args {
        dir: dir.unwrap_or_else(|| "./vela-data".to_string()),
        scripts,
        format,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            p(&[]).unwrap(),
            Parsed::Run(Args {
                dir: "./vela-data".into(),
                scripts: vec![],
                format: Format::Table
            })
        );
        assert_eq!(
            p(&["db", "-c", "SELECT 1", "--format", "csv", "-f", "x.sql"]).unwrap(),
            Parsed::Run(Args {
                dir: "db".into(),
                scripts: vec![
                    Script::Command("SELECT 1".into()),
                    Script::File("x.sql".into())
                ],
                format: Format::Csv
            })
        );
        assert_eq!(
            p(&["--format=jsonl", "-cSELECT 2", "db"]).unwrap(),
            Parsed::Run(Args {
                dir: "db".into(),
                scripts: vec![Script::Command("SELECT 2".into())],
                format: Format::JsonLines
            })
        );
        assert_eq!(p(&["--version"]).unwrap(), Parsed::Version);
        assert_eq!(p(&["db", "-h"]).unwrap(), Parsed::Help);
        assert!(p(&["-c"]).is_err());
        assert!(p(&["--format", "xml"]).is_err());
        assert!(p(&["a", "b"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert_eq!(
            p(&["-c"]).unwrap_err(),
            "option -c needs SQL",
            "the error names the option"
        );
    }

    #[test]
    fn option_args_split_inline_values() {
        let mut rest = vec!["next".to_string()].into_iter();
        let o = OptionArg::split("--table=t", false);
        assert_eq!(o.name, "--table");
        assert_eq!(o.value(&mut rest, "x").unwrap(), "t");
        // Short options take `-cVALUE` only when asked to.
        let o = OptionArg::split("-cSELECT 1", true);
        assert_eq!(o.name, "-c");
        assert_eq!(o.value(&mut rest, "x").unwrap(), "SELECT 1");
        assert_eq!(OptionArg::split("-tname", false).name, "-tname");
        // No inline value: the next argument, then an error naming the option.
        let o = OptionArg::split("--key", false);
        assert_eq!(o.value(&mut rest, "a column").unwrap(), "next");
        assert_eq!(
            o.value(&mut rest, "a column").unwrap_err(),
            "option --key needs a column"
        );
    }
}
