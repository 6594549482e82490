//! The `vela` command: a SQL shell on a Vela database (see `shell`); `vela import` bulk-loads a
//! file (see `import`).

mod import;
mod shell;

/// jemalloc instead of glibc's malloc (also for RocksDB's C++ allocations, see Cargo.toml):
/// it returns freed memory to the system (dirty pages purged after ~10 s) where glibc keeps the
/// transient buffers of imports (WAL records, store batches, link chunks, memtable blocks) in
/// per-thread arenas, so peak RSS of a 1M x 128 import is ~10% lower at the same CPU
/// (bench/RESULTS.md, "Bulk import", Peak RSS).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
