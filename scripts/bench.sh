#!/usr/bin/env bash
# The benchmark: tank_blob against the SHA-256 limit, curl and skopeo, and a
# 50-layer pull from 8 threads, and tank_blob_to_file against oci-client, and
# tank_pull of whole images (50 x 1 MiB; 4 x 256 MiB) against skopeo and
# oci-client. Pass --quick for a 256 MiB layer instead of 1 GiB (4 x 64 MiB
# for the 4-layer image), --runs N for the number of runs per row (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh docker-registry curl openssl skopeo
cargo build --release -p tank-bench
# The peer: oci-client, outside tank's workspace (its own lock and target).
cargo build --release --manifest-path bench/oci-peer/Cargo.toml
exec target/release/tank-bench "$@"
