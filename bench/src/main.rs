//! `tank-bench`: how fast `tank_blob` pulls a large layer compared with the
//! limit (SHA-256 of the same bytes from the page cache), with `curl |
//! openssl`, and with skopeo; how a 50-layer image pulls from 8 threads
//! sharing one cache; and how `tank_pull` pulls a whole image (50 x 1 MiB,
//! and 4 layers of the large layer's size in all, from a second rig) into an
//! OCI layout next to skopeo and oci-client (see `pull`). Every figure comes
//! from this one run, against the rigs' real registries on loopback.
//!
//! Then the ranged rows (see `ranged`): the large layer and a 4-layer image
//! through a CDN capped per connection, tank over 1 to 8 connections
//! against curl, oci-client and skopeo, and the layer again uncapped.
//!
//! Then the unpack rows (see `unpack`): `tank_unpack` and
//! `tank_pull_unpack` on two images built at the start of the run.
//!
//! Usage: tank-bench [--quick] [--runs N] [--only pull|ranged|unpack] [--perf]
//!   --quick   a 256 MiB layer instead of 1 GiB (and 4 x 64 MiB instead of
//!             4 x 256 MiB for the whole-image rows; a 256 MiB mixed layer
//!             for the unpack rows)
//!   --runs N  timed runs per row, after one warm-up; the median is
//!             reported (default 5)
//!   --only S  only the pull rows (blob, to-file and whole-image pulls),
//!             only the ranged rows (several connections through a capped
//!             CDN) or only the unpack rows; all three by default
//!   --perf    after each image's tank_unpack row, the top symbols of one
//!             more tank_unpack run under `perf record`

mod host;
mod measure;
mod pull;
mod ranged;
mod unpack;
mod worker;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker::run(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).context("--runs needs a number")?.parse()?,
        None => 5,
    };
    let only = match args.iter().position(|a| a == "--only") {
        Some(i) => match args.get(i + 1).map(String::as_str) {
            Some(s @ ("pull" | "ranged" | "unpack")) => Some(s),
            _ => bail!("--only takes pull, ranged or unpack"),
        },
        None => None,
    };
    println!("cpu: {}", host::cpu_model());
    let wanted = |part: &str| only.is_none() || only == Some(part);
    if wanted("pull") {
        pull::run(quick, runs)?;
    }
    if wanted("ranged") {
        ranged::run(quick, runs)?;
    }
    if wanted("unpack") {
        unpack::run(quick, runs, args.iter().any(|a| a == "--perf"))?;
    }
    Ok(())
}
