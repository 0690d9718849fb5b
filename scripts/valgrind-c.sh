#!/usr/bin/env bash
# Builds tank-pull and tank-tags, starts the rig and runs the C programs
# under valgrind on every way out of them: whole pulls (both argument forms,
# a digest, --jobs), failed pulls (a missing tag, no matching platform), a
# usage error and a pull cancelled by SIGTERM; tags and a catalog listed, a
# listing that fails and one refused before any request. Each must exit as
# documented with zero errors and zero definitely-lost bytes, or this fails.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

cargo build --release -p tank -p tank-testrig
make -s -C examples/c build/tank-pull build/tank-tags

work=$(mktemp -d)
rig_pid=""
hang_pid=""
cleanup() {
  [ -n "$hang_pid" ] && kill "$hang_pid" 2>/dev/null || true
  # Closing the rig's stdin (fd 3, its only writer) stops it.
  { exec 3>&-; } 2>/dev/null || true
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
read -r registry index_digest < <(python3 -c '
import json, sys
rig = json.load(sys.stdin)
print(rig["plain"]["registry"], rig["images"]["oci_index"]["digest"])' <"$work/rig.json")

VALGRIND=(valgrind --quiet --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite --error-exitcode=99)

# expect STATUS WORDS ARGS...: $prog ARGS under valgrind exits STATUS
# (99 is valgrind's) and WORDS is on its stdout (0) or stderr (otherwise).
runs=0
prog=tank-pull
expect() {
  local want=$1 words=$2 rc=0
  shift 2
  "${VALGRIND[@]}" "examples/c/build/$prog" "$@" >"$work/stdout" 2>"$work/stderr" || rc=$?
  local said="$work/stderr"
  [ "$want" -eq 0 ] && said="$work/stdout"
  if [ "$rc" -ne "$want" ] || ! grep -qF -- "$words" "$said"; then
    echo "$prog $* exited $rc (expected $want, with \"$words\"):" >&2
    cat "$work/stdout" "$work/stderr" >&2
    exit 1
  fi
  runs=$((runs + 1))
}

out="$work/layout"
for platform in linux/amd64 linux/arm64; do
  expect 0 "name:   $registry/tank/multiarch:latest" \
    "$registry" tank/multiarch latest "$out" --platform "$platform"
done
expect 0 "name:   $registry/tank/multiarch@$index_digest" \
  "$registry" tank/multiarch "$index_digest" "$out" --platform linux/arm/v7
expect 0 "layout: $work/short" "http://$registry/tank/multiarch:latest" "$work/short" --jobs 1

# A failing pull must free everything too.
expect 1 "tank-pull: http_status: " "$registry" tank/multiarch no-such-tag "$work/fail"
expect 1 "tank-pull: no_matching_platform: " "$registry/tank/multiarch" "$work/fail" --platform linux/s390x
expect 2 "tank-pull: bad_input: " "$registry/Not/Lowercase" "$work/fail"

# Cancelled: a registry that accepts the connection and never answers, and a
# SIGTERM once the request is in (SIGINT is what a background job ignores).
python3 - "$work/hang" <<'PY' 3>&- &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
with open(sys.argv[1] + ".port", "w") as f:
    f.write(str(s.getsockname()[1]))
conns = []
while True:
    conns.append(s.accept()[0])
    open(sys.argv[1] + ".accepted", "w").close()
PY
hang_pid=$!
for _ in $(seq 1 100); do [ -s "$work/hang.port" ] && break; sleep 0.1; done
rc=0
"${VALGRIND[@]}" examples/c/build/tank-pull "127.0.0.1:$(cat "$work/hang.port")/a/b:c" "$work/cancelled" \
  >"$work/stdout" 2>"$work/stderr" 3>&- &
pull_pid=$!
for _ in $(seq 1 300); do [ -e "$work/hang.accepted" ] && break; sleep 0.1; done
kill -TERM "$pull_pid"
wait "$pull_pid" || rc=$?
if [ "$rc" -ne 130 ] || ! grep -qF "tank-pull: cancelled: " "$work/stderr"; then
  echo "a cancelled tank-pull exited $rc (expected 130, with \"tank-pull: cancelled: \"):" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi
runs=$((runs + 1))

echo "valgrind: tank-pull clean in $runs runs: success, failure, usage and cancel paths" >&2

runs=0
prog=tank-tags
expect 0 "latest" "$registry" tank/multiarch
expect 0 "tank/multiarch" "$registry"
expect 1 "tank-tags: http_status: " "$registry" tank/nowhere
expect 2 "tank-tags: bad_input: " "$registry" Not/Lowercase
expect 2 "usage: tank-tags"
echo "valgrind: tank-tags clean in $runs runs: tags, catalog, failure and usage paths" >&2
