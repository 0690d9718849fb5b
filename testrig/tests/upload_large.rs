//! Its own test binary: it sets an environment variable, which would race
//! with rigs starting on other test threads.

use std::io::Read;

use sha2::{Digest, Sha256};
use tank_testrig::{Rig, RigOptions, Which};

#[test]
fn generated_layers_can_go_through_the_upload_api_instead() {
    std::env::set_var("TANK_RIG_UPLOAD_LARGE", "1");
    let rig = Rig::start(RigOptions {
        large_mib: Some(2),
        ..RigOptions::plain_only()
    })
    .unwrap();
    let large = rig.info().images.large.clone().unwrap();
    let layer = &large.layers[0];
    let url = format!(
        "http://{}/v2/{}/blobs/{layer}",
        rig.registry(Which::Plain),
        large.repo
    );
    let mut bytes = Vec::new();
    ureq::get(&url)
        .call()
        .unwrap()
        .into_reader()
        .read_to_end(&mut bytes)
        .unwrap();
    assert_eq!(&format!("sha256:{:x}", Sha256::digest(&bytes)), layer);
    // An upload leaves its own copy, not a hard link to the generated file.
    let meta = std::fs::metadata(rig.blob_data_path(Which::Plain, layer)).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::nlink(&meta), 1);
}
