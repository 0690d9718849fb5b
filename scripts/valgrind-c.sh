#!/usr/bin/env bash
# Builds tank-pull, starts the rig and runs a whole pull under valgrind:
# zero errors and zero definitely-lost bytes, or this fails.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

cargo build --release -p tank -p tank-testrig
make -s -C examples/c build/tank-pull

work=$(mktemp -d)
rig_pid=""
cleanup() {
  exec 3>&- 2>/dev/null || true
  [ -n "$rig_pid" ] && wait "$rig_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/rig.in"
target/release/tank-testrig --plain-only <"$work/rig.in" >"$work/rig.json" 2>"$work/rig.log" &
rig_pid=$!
exec 3>"$work/rig.in"
for _ in $(seq 1 300); do
  [ -s "$work/rig.json" ] && break
  kill -0 "$rig_pid" 2>/dev/null || { cat "$work/rig.log" >&2; exit 1; }
  sleep 0.1
done
registry=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["plain"]["registry"])' <"$work/rig.json")

for platform in linux/amd64 linux/arm64; do
  valgrind --quiet --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite --error-exitcode=1 \
    examples/c/build/tank-pull "$registry" tank/multiarch latest "$work/out-${platform//\//-}" --platform "$platform"
done
# A failing pull must free everything too.
if valgrind --quiet --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite --error-exitcode=99 \
    examples/c/build/tank-pull "$registry" tank/multiarch no-such-tag "$work/out-fail"; then
  echo "a pull of a missing tag succeeded" >&2; exit 1
elif [ $? -eq 99 ]; then
  echo "valgrind found errors on the failure path" >&2; exit 1
fi
echo "valgrind: tank-pull clean on success and failure paths" >&2
