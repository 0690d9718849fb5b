#!/usr/bin/env bash
# Builds libtank and installs it for C (and cgo) programs:
#
#   bash scripts/install.sh [PREFIX]          PREFIX defaults to /usr/local
#
# puts into $DESTDIR$PREFIX
#   lib/libtank.so.X.Y.Z                the shared library, soname libtank.so.X
#   lib/libtank.so.X -> libtank.so.X.Y.Z  what programs load
#   lib/libtank.so   -> libtank.so.X      what -ltank links
#   lib/libtank.a                       the static library
#   include/tank.h
#   lib/pkgconfig/tank.pc               pkg-config --cflags --libs tank: link libtank.so;
#                                       --static adds what libtank.a needs (Libs.private)
#   lib/pkgconfig/tank-static.pc        pkg-config --cflags --libs tank-static: link libtank.a
#                                       in (programs do not need libtank at run time)
#
# Environment: DESTDIR (a staging root, as packagers use it: the files go
# under it, tank.pc names PREFIX), LIBDIR (default PREFIX/lib, e.g.
# /usr/lib/x86_64-linux-gnu), INCLUDEDIR (default PREFIX/include),
# PKGCONFIGDIR (default LIBDIR/pkgconfig), CARGO.
#
# Run it as yourself: cargo builds as you, and the copying step uses sudo
# when the destination is not writable. Installing into the live system
# (no DESTDIR) into a directory the dynamic loader searches runs ldconfig.
#
# Our own steps, not cargo-c's `cargo cinstall`: cargo-c is not on a fresh
# machine, building it from crates.io compiles cargo itself (hundreds of
# crates, with OpenSSL, libgit2 and libcurl) on every fresh CI machine, and
# Debian's cargo-c (0.9.14, cargo 0.66) can neither read the crates.io index
# as it is served here nor parse the edition 2024 crates tank depends on.
# These steps reuse the release build every script makes, so an install
# after `cargo build --release -p tank -p tank-testrig` compiles nothing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "install.sh: $*" >&2; exit 1; }

[ $# -le 1 ] || die "usage: bash scripts/install.sh [PREFIX]"
prefix=${1:-${PREFIX:-/usr/local}}
case $prefix in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac
base=${prefix%/}
prefix=${base:-/}
libdir=${LIBDIR:-$base/lib}
includedir=${INCLUDEDIR:-$base/include}
pkgconfigdir=${PKGCONFIGDIR:-$libdir/pkgconfig}
for d in "$libdir" "$includedir" "$pkgconfigdir"; do
  case $d in /*) ;; *) die "LIBDIR, INCLUDEDIR and PKGCONFIGDIR must be absolute: $d" ;; esac
done
destdir=${DESTDIR:-}
destdir=${destdir%/}

cargo=${CARGO:-cargo}
command -v "$cargo" >/dev/null 2>&1 ||
  die "no '$cargo' on PATH (run this script as the user who has Rust; it uses sudo itself to copy)"

cd "$root"
# The one build command every script uses (README, "Building"): another set
# of packages unifies dependency features differently, and libtank would be
# recompiled here and again by the next script.
echo "+ cargo build --release -p tank -p tank-testrig" >&2
"$cargo" build --release -p tank -p tank-testrig

# target/release, or wherever CARGO_TARGET_DIR or a cargo config puts it.
target_dir=$("$cargo" metadata --no-deps --format-version 1 | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
build=${target_dir:-$root/target}/release
version=$("$cargo" pkgid -p tank)
version=${version##*[#@]}
[[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]] || die "cannot read tank's version from cargo pkgid: $version"
major=${BASH_REMATCH[1]}
# The ABI version, as build.rs sets the soname: the major version (0 for 0.y).
soname=libtank.so.$major
real=libtank.so.$version
for f in libtank.so libtank.a; do
  [ -f "$build/$f" ] || die "cargo did not leave $build/$f"
done
got=$(LC_ALL=C readelf -d "$build/libtank.so" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p' || true)
if command -v readelf >/dev/null 2>&1 && [ "$got" != "$soname" ]; then
  die "$build/libtank.so has soname '${got}', expected $soname (build.rs sets it)"
fi

native_libs=$(bash "$root/scripts/native-static-libs.sh" "$build")
description=$(sed -n 's/^description = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

# pkg-config variables relative to ${prefix} where they can be, so that
# pkg-config --define-prefix can relocate the files.
rel() {
  case $1 in
    "$prefix") echo "\${prefix}" ;;
    "$prefix"/*) echo "\${prefix}${1#"$prefix"}" ;;
    *) echo "$1" ;;
  esac
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/tank-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cat >"$stage/tank.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=$(rel "$libdir")
includedir=$(rel "$includedir")
# What libtank.a needs from the system, as rustc reports it.
native_static_libs=$native_libs

Name: tank
Description: $description
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -ltank
Libs.private: \${native_static_libs}
PC
cat >"$stage/tank-static.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=$(rel "$libdir")
includedir=$(rel "$includedir")
native_static_libs=$native_libs

Name: tank-static
Description: $description (libtank.a, linked into the program)
Version: $version
Cflags: -I\${includedir}
Libs: \${libdir}/libtank.a \${native_static_libs}
PC

# Copy as root only when the destination needs it.
target_root=$destdir$prefix
probe=$target_root
while [ ! -e "$probe" ]; do probe=$(dirname "$probe"); done
sudo=""
if [ "$(id -u)" -ne 0 ] && [ ! -w "$probe" ]; then
  command -v sudo >/dev/null 2>&1 || die "$target_root is not writable and there is no sudo"
  sudo=sudo
  echo "+ sudo: $target_root is not writable by $(id -un)" >&2
fi
put() { # mode source destination
  $sudo install -D -m "$1" "$2" "$3"
  echo "installed $3" >&2
}
link() { # target name
  $sudo ln -sfn "$1" "$2"
  echo "installed $2 -> $1" >&2
}

L=$destdir$libdir
put 0755 "$build/libtank.so" "$L/$real"
link "$real" "$L/$soname"
link "$soname" "$L/libtank.so"
put 0644 "$build/libtank.a" "$L/libtank.a"
put 0644 "$root/include/tank.h" "$destdir$includedir/tank.h"
put 0644 "$stage/tank.pc" "$destdir$pkgconfigdir/tank.pc"
put 0644 "$stage/tank-static.pc" "$destdir$pkgconfigdir/tank-static.pc"

if [ -z "$destdir" ]; then
  # ldconfig only for a directory the loader searches: its cache then finds
  # libtank.so.X. Any other directory needs -Wl,-rpath or LD_LIBRARY_PATH.
  searched=$(cat /etc/ld.so.conf /etc/ld.so.conf.d/*.conf 2>/dev/null | grep '^/' || true)
  if printf '%s\n' /lib /usr/lib $searched | grep -qxF "$libdir"; then
    if command -v ldconfig >/dev/null 2>&1 || [ -x /sbin/ldconfig ]; then
      echo "+ ldconfig" >&2
      $sudo env PATH="$PATH:/sbin:/usr/sbin" ldconfig
    fi
  else
    echo "note: $libdir is not in the dynamic loader's search path: run programs linked against libtank.so with LD_LIBRARY_PATH=$libdir, or link them with -Wl,-rpath,$libdir (tank-static needs neither)" >&2
  fi
  case ":$(pkg-config --variable pc_path pkg-config 2>/dev/null || true):${PKG_CONFIG_PATH:-}:" in
    *":$pkgconfigdir:"*) ;;
    *) echo "note: pkg-config does not search $pkgconfigdir: export PKG_CONFIG_PATH=$pkgconfigdir" >&2 ;;
  esac
fi
echo "tank $version installed in $destdir$prefix" >&2
