//! The `vela` command: a SQL shell on a Vela database (see `shell`).

mod shell;

fn main() -> std::process::ExitCode {
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    shell::main_with(args)
}
