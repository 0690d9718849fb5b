#!/usr/bin/env bash
# Installs the Debian packages the tests, demo and benchmarks need, only when
# something is missing. Usage: scripts/install-deps.sh [package ...]
set -euo pipefail

packages=("$@")
[ ${#packages[@]} -gt 0 ] || packages=(docker-registry valgrind make gcc git python3 curl golang-go elixir erlang-dev skopeo umoci tar gzip zstd pkg-config binutils)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
