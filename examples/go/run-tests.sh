#!/usr/bin/env bash
# Builds libtank and the test rig, then vets and tests the Go binding.
# Installs nothing and never touches the network for Go modules.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v go >/dev/null 2>&1; then
	echo "run-tests.sh: no 'go' on PATH; install it with: apt-get install -y golang-go" >&2
	exit 1
fi

# No module downloads, no toolchain downloads (GOTOOLCHAIN matters from Go 1.21).
export GOPROXY=off GOTOOLCHAIN=local GOFLAGS=${GOFLAGS:-}
# Go wants a writable build cache; use target/ when HOME is not writable.
if [ -z "${GOCACHE:-}" ] && ! { [ -n "${HOME:-}" ] && [ -w "$HOME" ]; }; then
	export GOCACHE="$root/target/go/cache"
fi
if [ -z "${GOPATH:-}" ] && ! { [ -n "${HOME:-}" ] && [ -w "$HOME" ]; }; then
	export GOPATH="$root/target/go/path"
fi

echo "+ cargo build --release -p tank -p tank-testrig" >&2
(cd "$root" && cargo build --release -p tank -p tank-testrig)

cd "$here"
go version >&2
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "run-tests.sh: not gofmt-clean:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "+ go vet ./... && go test -count=1 $* ./..." >&2
go vet ./...
go test -count=1 "$@" ./...
