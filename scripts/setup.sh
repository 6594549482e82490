#!/usr/bin/env bash
# Installs the system packages Vela's build needs on Debian/Ubuntu:
#   librocksdb-dev  - RocksDB, linked instead of compiled from source (.cargo/config.toml)
#   libclang-dev    - bindgen needs libclang for RocksDB's C bindings
#   pkg-config, g++ - for the -sys crates
#   make            - tikv-jemalloc-sys builds jemalloc (the vela binary's allocator) with it
# Idempotent: installs only what is missing. Elsewhere it says what to install and goes on.
set -euo pipefail

packages=(librocksdb-dev libclang-dev pkg-config g++ make)

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: not a Debian system; install RocksDB, libclang and a C++ compiler yourself" \
         "(see ARCHITECTURE.md, 'RocksDB build')" >&2
    exit 0
fi

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install the Rust toolchain (rustup) first" >&2
    exit 1
fi
