//! The pull rows: one large layer by `tank_blob` and `tank_blob_to_file`
//! against the limit, curl, skopeo and oci-client (see `layer`); a 50-layer
//! image from 8 threads against curl (see `many`); `tank_pull` of whole
//! images against skopeo and oci-client (see `image`); then the targets.

mod image;
mod layer;
mod many;

use std::path::PathBuf;

use anyhow::{bail, Result};
use tank_testrig::{Rig, RigOptions};

use crate::host::{cpu_has, on_path};

/// The layer is 1 GiB, or 256 MiB with `quick`; each table runs `runs`
/// times after a warm-up.
pub fn run(quick: bool, runs: usize) -> Result<()> {
    for tool in ["openssl", "curl", "skopeo", "sh", "xargs", "dd"] {
        if !on_path(tool) {
            bail!(
                "{tool} is missing: apt-get install {}",
                match tool {
                    "xargs" => "findutils",
                    "dd" => "coreutils",
                    t => t,
                }
            );
        }
    }
    let peer = oci_peer()?;
    let mib: u64 = if quick { 256 } else { 1024 };

    println!(
        "sha extensions: {} (the sha2 crate picks them at run time; in-process sha256 below shows whether it does)",
        if cpu_has("sha_ni") { "sha_ni present" } else { "absent" }
    );
    println!("layer: {mib} MiB, {runs} runs per row after one warm-up run, median reported");

    eprintln!("starting the rig (3 registries, {mib} MiB layer, 50 x 1 MiB image)...");
    let rig = Rig::start(RigOptions {
        large_mib: Some(mib),
        many_layers: Some((50, 1)),
        // The https registries are for tests; nothing here reads them.
        tls: false,
        ..RigOptions::default()
    })?;

    let single = layer::run(&rig, mib, runs, &peer)?;
    let many = many::run(&rig, runs)?;
    let images = image::run(&rig, runs, mib, &peer)?;
    image::print(&images, runs, &single, mib);

    println!();
    println!("targets:");
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let checks = single
        .targets()
        .into_iter()
        .chain(many.targets())
        .chain(image::targets(&images));
    for (what, ok) in checks {
        println!("  {:<8} {what}", verdict(ok));
    }
    Ok(())
}

/// The peer: oci-client, built outside tank's workspace (its own lock and
/// target).
pub(crate) fn oci_peer() -> Result<PathBuf> {
    let peer = std::env::current_dir()?.join("bench/oci-peer/target/release/oci-peer");
    if !peer.is_file() {
        bail!(
            "{} is missing: cargo build --release --manifest-path bench/oci-peer/Cargo.toml \
             (scripts/bench.sh does)",
            peer.display()
        );
    }
    Ok(peer)
}
