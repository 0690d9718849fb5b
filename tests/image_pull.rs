//! `tank_pull` against the real registries: whole images into OCI layouts
//! that skopeo and umoci, which no one here wrote, accept.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algo).join(hex)
}

#[test]
fn a_multi_arch_image_for_one_platform() {
    let rig = start(RigOptions::plain_only());
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let reference = format!("{}/{}:{}", rig.registry(Which::Plain), idx.repo, idx.tag);
    let (got, reports) = pull(&reference, &layout, Some("linux/arm64"), 0, &Cache::none(), None);
    let got = got.unwrap();
    let arm64 = idx.entry("linux/arm64/v8").unwrap();
    assert_eq!(got.digest, arm64.digest);
    let index = index_json(&layout);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], arm64.digest.as_str());
    assert_eq!(entries[0]["annotations"]["org.opencontainers.image.ref.name"], reference.as_str());
    for d in std::iter::once(&arm64.config).chain(&arm64.layers) {
        assert!(blob_path(&layout, d).is_file(), "{d} missing");
    }
    let total: u64 = std::iter::once(&arm64.config).chain(&arm64.layers).map(|d| idx.blob_sizes[d]).sum();
    assert_eq!(reports.seen.last(), Some(&(total, total)));
    eprintln!("{reports:?}");
}
