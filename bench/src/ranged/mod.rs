//! Issue 23's rows: big blobs over several connections. The large layer
//! through the rig's CDN capped at 64 MiB/s per TCP connection, as real
//! CDNs cap a stream, by `tank_blob_to_file` with 1, 2, 4 and 8 connections
//! against curl, oci-client and skopeo on the same CDN (see `layer`); a
//! 4-layer image through the same CDN by `tank_pull` against skopeo (see
//! `image`); then the layer through the CDN uncapped (loopback), tank with
//! 1 and 4 connections and curl. Every figure comes from this one run; each
//! table's ratios are to a row of the same table.

mod image;
mod layer;

use std::path::PathBuf;

use anyhow::{bail, Result};
use tank_testrig::{Rig, RigOptions};

use crate::host::on_path;
use crate::measure::Scratch;

/// The cap on each connection to the capped CDN, bytes a second.
const CAP: u64 = 64 << 20;

/// The layer is 1 GiB (256 MiB with `quick`), the image 4 layers of a
/// quarter of that; each row runs `runs` times after a warm-up.
pub fn run(quick: bool, runs: usize) -> Result<()> {
    for tool in ["curl", "skopeo"] {
        if !on_path(tool) {
            bail!("{tool} is missing: apt-get install {tool}");
        }
    }
    let peer = crate::pull::oci_peer()?;
    let mib: u64 = if quick { 256 } else { 1024 };
    let each = mib / 4;
    let scratch = Scratch(
        PathBuf::from("/dev/shm").join(format!("tank-bench-ranged-{}", std::process::id())),
    );
    std::fs::create_dir_all(&scratch.0)?;

    println!();
    println!(
        "ranged downloads (issue 23): token registry + 307 to the rig's CDN; {mib} MiB layer, \
         {runs} runs per row after one warm-up run, median reported"
    );
    eprintln!(
        "starting a capped rig (token + CDN at {} MiB/s per connection, {mib} MiB layer, \
         4 x {each} MiB image)...",
        CAP >> 20
    );
    let capped = Rig::start(RigOptions {
        large_mib: Some(mib),
        many_layers: Some((4, each)),
        cdn_rate_per_connection: Some(CAP),
        ..RigOptions::cdn_only()
    })?;
    let capped_layer = layer::Setting {
        rig: &capped,
        cap: Some(CAP),
        scratch: &scratch.0,
        peer: &peer,
    }
    .run(&layer::capped_rows(runs), runs)?;
    image::run(&capped, CAP, runs, &scratch.0)?;
    // One rig at a time: each holds the layer on tmpfs.
    drop(capped);

    eprintln!("starting an uncapped rig (token + CDN, {mib} MiB layer)...");
    let uncapped = Rig::start(RigOptions {
        large_mib: Some(mib),
        ..RigOptions::cdn_only()
    })?;
    let uncapped_layer = layer::Setting {
        rig: &uncapped,
        cap: None,
        scratch: &scratch.0,
        peer: &peer,
    }
    .run(&layer::uncapped_rows(runs), runs)?;
    drop(uncapped);

    println!();
    println!("ranged targets:");
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for (what, ok) in layer::targets(&capped_layer, &uncapped_layer) {
        println!("  {:<8} {what}", verdict(ok));
    }
    Ok(())
}
