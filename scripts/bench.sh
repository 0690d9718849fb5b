#!/usr/bin/env bash
# The benchmark: tank_blob against the SHA-256 limit, curl and skopeo, and a
# 50-layer pull from 8 threads, and tank_blob_to_file against oci-client, and
# tank_pull of whole images (50 x 1 MiB; 4 x 256 MiB) against skopeo and
# oci-client; then the ranged rows: the 1 GiB layer through a CDN capped at
# 64 MiB/s per connection by tank_blob_to_file over 1, 2, 4 and 8
# connections against curl, oci-client and skopeo, a 4 x 256 MiB image by
# tank_pull against skopeo on the same CDN, and the layer uncapped; then
# tank_unpack against umoci, GNU tar and the decompressor alone, and
# tank_pull_unpack against tank_pull then tank_unpack, on two images built
# for the run (a tree of this machine in 3 layers; a 1 GiB layer of mixed
# files; gzip and zstd). Pass --quick for a 256 MiB layer instead of 1 GiB
# (4 x 64 MiB for the 4-layer images; 256 MiB of mixed files), --runs N for
# the number of runs per row (default 5), --only pull, --only ranged or
# --only unpack for one part, --perf for tank_unpack's top symbols (perf
# record) under each unpack table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh docker-registry curl openssl skopeo umoci tar gzip zstd
cargo build --release -p tank-bench
# The peer: oci-client, outside tank's workspace (its own lock and target).
case " $* " in
*" --only unpack "*) ;;
*) cargo build --release --manifest-path bench/oci-peer/Cargo.toml ;;
esac
# The unpack images and trees (a few GiB at once) go on tmpfs when it has
# room, so that the VM's disk does not set the pace; removed at exit, even
# when the run fails or is interrupted.
base=/dev/shm
[ "$(df --output=avail -k "$base" | tail -1)" -ge $((8 << 20)) ] || base=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$base/tank-bench.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
TANK_BENCH_SCRATCH=$scratch target/release/tank-bench "$@"
