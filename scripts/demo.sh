#!/usr/bin/env bash
# Tank demo: build libtank and the C example, start a local registry holding a
# multi-arch test image (the test rig), pull that image for this machine's
# platform with examples/c/build/tank-pull, unpacking its root filesystem as
# the layers arrive (--rootfs), and show what arrived and a few of its files.
#
#   bash scripts/demo.sh
#
# Needs: Rust (cargo), gcc, make, python3; Debian's docker-registry package
# (installed with apt-get when missing); skopeo, when installed, shows the
# image it reads from the layout. The pulled image is left in
# target/demo/multiarch (an OCI image layout) and its tree in
# target/demo/rootfs for a closer look, e.g.
#   skopeo inspect oci:target/demo/multiarch:<the name tank-pull printed>
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="$ROOT/target/demo/multiarch"
ROOTFS="$ROOT/target/demo/rootfs"
RIG="$ROOT/target/release/tank-testrig"
PULL="$ROOT/examples/c/build/tank-pull"
RIG_START_TIMEOUT="${RIG_START_TIMEOUT:-120}"  # seconds to wait for the rig's JSON line

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

WORK=""
RIG_PID=""
RIG_IN_OPEN=0

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$RIG_PID" ]; then
        printf '\n==> Stopping the test rig (pid %s)\n' "$RIG_PID"
        # Closing the rig's stdin is its signal to shut down.
        if [ "$RIG_IN_OPEN" = 1 ]; then
            exec 3>&-
            RIG_IN_OPEN=0
        fi
        local i
        for i in $(seq 1 100); do
            kill -0 "$RIG_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$RIG_PID" 2>/dev/null; then
            echo "    rig still running after 10s, sending SIGTERM"
            kill -TERM "$RIG_PID" 2>/dev/null || true
        fi
        wait "$RIG_PID" 2>/dev/null || true
        echo "    rig stopped"
    fi
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: terminated" >&2; exit 143' TERM

# --- 1. tools ---------------------------------------------------------------
step "Checking tools"
for tool in cargo make python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH"
done
command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1 || die "no C compiler (gcc) on PATH"
if command -v docker-registry >/dev/null 2>&1; then
    echo "docker-registry: $(command -v docker-registry)"
else
    step "Installing Debian's docker-registry package"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "docker-registry is missing and sudo is not available; run as root: apt-get install -y docker-registry"
        SUDO=sudo
    fi
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y docker-registry
    command -v docker-registry >/dev/null 2>&1 || die "docker-registry still not on PATH after installing it"
fi

# --- 2. build -----------------------------------------------------------------
step "Building libtank and the test rig (cargo build --release -p tank -p tank-testrig)"
cargo build --release -p tank -p tank-testrig

step "Building the C example (make -C examples/c)"
make -C examples/c
[ -x "$PULL" ] || die "$PULL was not built"

# --- 3. the rig -----------------------------------------------------------------
step "Starting the test rig ($RIG --plain-only)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tank-demo.XXXXXX")"
mkfifo "$WORK/rig.stdin"
# The rig runs until its stdin closes: its stdin is a FIFO whose only writer
# is this script's fd 3, closed in cleanup (also on failure and CTRL-C).
"$RIG" --plain-only <"$WORK/rig.stdin" >"$WORK/rig.stdout" &
RIG_PID=$!
exec 3>"$WORK/rig.stdin"
RIG_IN_OPEN=1

# Wait for its one line of JSON.
deadline=$((SECONDS + RIG_START_TIMEOUT))
until [ "$(wc -l <"$WORK/rig.stdout")" -ge 1 ]; do
    if ! kill -0 "$RIG_PID" 2>/dev/null; then
        wait "$RIG_PID" && status=0 || status=$?
        RIG_PID=""
        die "the test rig exited (status $status) before printing its JSON line"
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "the test rig printed nothing within ${RIG_START_TIMEOUT}s"
    sleep 0.2
done
head -n 1 "$WORK/rig.stdout" >"$WORK/rig.json"

# Host platform, spelled as image indexes spell it.
case "$(uname -m)" in
    x86_64 | amd64) HOST_PLATFORM=linux/amd64 ;;
    aarch64 | arm64) HOST_PLATFORM=linux/arm64/v8 ;;
    armv7l | armv7 | armv8l) HOST_PLATFORM=linux/arm/v7 ;;
    armv6l) HOST_PLATFORM=linux/arm/v6 ;;
    i?86) HOST_PLATFORM=linux/386 ;;
    ppc64le) HOST_PLATFORM=linux/ppc64le ;;
    s390x) HOST_PLATFORM=linux/s390x ;;
    riscv64) HOST_PLATFORM=linux/riscv64 ;;
    *) HOST_PLATFORM="linux/$(uname -m)" ;;
esac

# registry, repo, tag, index digest, then the platform to pull, the digest
# the rig says its image manifest has, and whether the host's is on offer.
if ! FIELDS="$(python3 - "$WORK/rig.json" "$HOST_PLATFORM" <<'PY'
import json, sys

with open(sys.argv[1]) as f:
    rig = json.load(f)
host = sys.argv[2]
index = rig["images"]["oci_index"]
entries = index["manifests"]

def norm(p):
    # arm64 and arm64/v8 are the same platform
    return p[:-3] if p.endswith("/arm64/v8") else p

chosen = next((e for e in entries if norm(e["platform"]) == norm(host)), None)
note = ""
if chosen is None:
    chosen = entries[0]
    note = "host platform %s is not in the test image; using %s" % (host, chosen["platform"])
for v in (rig["plain"]["registry"], index["repo"], index["tag"], index["digest"],
          chosen["platform"], chosen["digest"], note):
    print(v)
PY
)"; then
    die "could not read the rig's JSON line: $(cat "$WORK/rig.json")"
fi
{
    read -r REGISTRY
    read -r REPO
    read -r TAG
    INDEX_DIGEST=""; read -r INDEX_DIGEST
    read -r PLATFORM
    read -r EXPECTED_DIGEST
    NOTE=""; read -r NOTE || true
} <<<"$FIELDS"

echo "registry:   $REGISTRY (plain HTTP)"
echo "image:      $REPO:$TAG  (index $INDEX_DIGEST)"
echo "platform:   $PLATFORM  (image manifest $EXPECTED_DIGEST)"
[ -z "$NOTE" ] || echo "note:       $NOTE"

# --- 4. the pull -------------------------------------------------------------------
# tank-pull picks the host's platform out of the index by itself; only a host
# the test image has no image for needs --platform.
PULL_ARGS=("$REGISTRY" "$REPO" "$TAG" "$OUT" --rootfs "$ROOTFS")
[ -z "$NOTE" ] || PULL_ARGS+=(--platform "$PLATFORM")
step "Pulling: examples/c/build/tank-pull $REGISTRY $REPO $TAG ${OUT#"$ROOT"/} --rootfs ${ROOTFS#"$ROOT"/}${NOTE:+ --platform $PLATFORM}"
rm -rf "$OUT" "$ROOTFS"
# tank makes the layout's directories, but the tree's parent must exist:
# rootfs is renamed into it.
mkdir -p "$(dirname "$ROOTFS")"
if ! "$PULL" "${PULL_ARGS[@]}" | tee "$WORK/pulled"; then
    die "tank-pull failed"
fi
# tank-pull prints "name: <normalized reference>", "digest: ...", "layout: ...".
NAME="$(sed -n 's/^name: *//p' "$WORK/pulled")"
[ -n "$NAME" ] || die "tank-pull printed no name: line"

# --- 5. what arrived -----------------------------------------------------------------
step "What arrived in ${OUT#"$ROOT"/}"
(cd "$OUT" && find . -type f | sort | while read -r f; do
    printf '%12s  %s\n' "$(stat -c %s "$f")" "${f#./}"
done)

step "index.json"
python3 -m json.tool "$OUT/index.json"

# The layout must name the image manifest the rig pushed for this platform.
python3 - "$OUT" "$NAME" "$EXPECTED_DIGEST" <<'PY' || die "the OCI layout does not match what the rig pushed"
import json, os, sys
out, name, expected = sys.argv[1:4]
idx = json.load(open(os.path.join(out, "index.json")))
named = [m for m in idx["manifests"]
         if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == name]
if len(named) != 1:
    sys.exit("index.json has %d entries named %s" % (len(named), name))
got = named[0]["digest"]
if got != expected:
    sys.exit("index.json names %s, the rig pushed %s" % (got, expected))
def blob(d):
    algo, hexpart = d.split(":", 1)
    return os.path.join(out, "blobs", algo, hexpart)
m = json.load(open(blob(got), "rb"))
missing = [d["digest"] for d in [m["config"]] + m["layers"] if not os.path.isfile(blob(d["digest"]))]
if missing:
    sys.exit("missing blobs: " + " ".join(missing))
print("OK: %s -> %s, config and %d layer(s) present" % (name, got, len(m["layers"])))
PY

if command -v skopeo >/dev/null 2>&1; then
    step "skopeo inspect oci:${OUT#"$ROOT"/}:$NAME"
    skopeo inspect "oci:$OUT:$NAME" || die "skopeo cannot read the layout"
fi

# --- 6. the root filesystem ----------------------------------------------------------
step "The root filesystem in ${ROOTFS#"$ROOT"/} (a few of its files)"
[ -d "$ROOTFS" ] || die "tank-pull --rootfs left no directory at $ROOTFS"
(cd "$ROOTFS" && find . -mindepth 1 | sort | head -n 20 | while read -r f; do
    printf '%s %10s  %s\n' "$(stat -c %A "$f")" "$(stat -c %s "$f")" "${f#./}"
done)
[ -f "$ROOTFS/etc/tank-release" ] || die "the tree has no etc/tank-release"
printf 'etc/tank-release: %s\n' "$(cat "$ROOTFS/etc/tank-release")"
if ls -A "$(dirname "$ROOTFS")" | grep -q '^\.rootfs\.tank-'; then
    die "a temporary tree was left beside $ROOTFS"
fi

step "Done: the image is an OCI layout in ${OUT#"$ROOT"/}, its tree in ${ROOTFS#"$ROOT"/}"
