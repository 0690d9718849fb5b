#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests (against real
# registries the tests start on 127.0.0.1), the C example under valgrind, and
# the Go and Elixir bindings.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

step() { printf '\n== %s\n' "$*" >&2; }

step "release build (library, rig)"
cargo build --release -p tank -p tank-testrig

step "cargo test"
cargo test --workspace

step "C example under valgrind"
bash scripts/valgrind-c.sh

step "C-ABI tests under valgrind"
bash scripts/valgrind-abi.sh

step "Go binding"
bash examples/go/run-tests.sh -race -shuffle=on

step "Elixir binding"
bash examples/elixir/run-tests.sh
