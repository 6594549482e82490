//! The `vela` command: a SQL shell on a Vela database (see `shell`); `vela import` bulk-loads a
//! file (see `import`).

mod import;
mod shell;

fn main() -> std::process::ExitCode {
    let mut args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().is_some_and(|a| a == "import") {
        args.remove(0);
        return import::main_with(args);
    }
    shell::main_with(args)
}
