#!/usr/bin/env bash
# Sets up a fresh machine and runs every default test of the workspace.
# Long soaks, big benchmarks and fuzzing are #[ignore]d or have their own commands (README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
cargo test --workspace --all-targets --no-fail-fast "$@" || status=$?
# --all-targets leaves out doc tests; the examples in the API docs must run too.
cargo test --workspace --doc "$@" || status=$?
exit $status
