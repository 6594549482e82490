//! The `vela` command: today it prints its version and what is not built yet.

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "./vela-data".to_string());
    println!("vela {}", vela::VERSION);
    println!("database directory: {dir}");
    println!(
        "The SQL shell is not built yet: the storage layer (WAL, RocksDB segment store) is; \
         the vector index, engine, SQL front end and shell are in progress."
    );
}
