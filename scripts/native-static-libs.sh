#!/usr/bin/env bash
# Prints the system libraries a program linking libtank.a needs, as rustc
# reports them (`--print native-static-libs`), e.g.
#   -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#
#   bash scripts/native-static-libs.sh [PROFILE_DIR]   (default target/release)
#
# PROFILE_DIR is a cargo profile directory holding the built libtank.rlib
# (cargo build --release -p tank -p tank-testrig). rustc links a one-line
# staticlib that contains tank and everything tank depends on, from those
# very rlibs, into a temporary directory, and prints what that archive needs:
# what `cargo rustc -p tank --lib --crate-type staticlib -- --print
# native-static-libs` prints, in well under a second and without recompiling
# tank with other flags (which would make the next cargo build recompile it
# back). The rustc is $RUSTC, else the one on PATH: cargo's.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
libdir=${1:-$root/target/release}
rlib=$libdir/libtank.rlib
if [ ! -f "$rlib" ]; then
  echo "native-static-libs.sh: no $rlib; build it first: cargo build --release -p tank -p tank-testrig" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tank-native-libs.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo 'extern crate tank;' >"$work/probe.rs"
if ! out=$("${RUSTC:-rustc}" --edition 2021 --crate-type staticlib --crate-name tank_probe \
  -L "dependency=$libdir/deps" --extern "tank=$rlib" --print native-static-libs \
  -o "$work/libtank_probe.a" "$work/probe.rs" 2>&1); then
  echo "native-static-libs.sh: rustc could not link $rlib (is ${RUSTC:-rustc} the rustc cargo built it with?):" >&2
  echo "$out" >&2
  exit 1
fi
libs=$(sed -n 's/^note: native-static-libs: *//p' <<<"$out")
if [ -z "$libs" ]; then
  echo "native-static-libs.sh: rustc reported no native-static-libs:" >&2
  echo "$out" >&2
  exit 1
fi
echo "$libs"
