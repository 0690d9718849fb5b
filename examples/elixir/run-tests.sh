#!/usr/bin/env bash
# Runs the Elixir binding's tests: builds the NIF and the rig (mix compile
# does both, through cargo) and runs `mix test` against real registries on
# 127.0.0.1. Needs Debian's `elixir` (with `erlang-dev`, though rustler
# brings its own NIF bindings) and a Rust toolchain.
# Extra arguments go to `mix test` (e.g. `--include slow`).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
for tool in mix erl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "run-tests.sh: ${missing[*]} not found; the Elixir binding's tests need Elixir and Erlang:" >&2
  echo "    apt-get install -y elixir erlang-dev" >&2
  exit 1
fi
command -v cargo >/dev/null 2>&1 || {
  echo "run-tests.sh: cargo not found; the NIF is Rust (https://rustup.rs)" >&2
  exit 1
}

# No Hex: the project has no dependencies, so Mix never needs it.
export HEX_OFFLINE=1
export MIX_ENV=test
# The VM runs with its default flags, as most hosts run it (the README's
# `+sbwt none` advice for small machines is the host's choice; pass it in
# ELIXIR_ERL_OPTIONS to test that way).

mix compile --warnings-as-errors
mix test --warnings-as-errors "$@"
