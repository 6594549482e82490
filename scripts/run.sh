#!/usr/bin/env bash
# Sets up a fresh machine, builds Vela in release mode and opens the shell on ./vela-data
# (or the directory given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo run --release --bin vela -- "${@:-./vela-data}"
