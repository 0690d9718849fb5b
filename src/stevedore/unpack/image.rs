//! Finds an image in an OCI layout and pairs its layers with the config's
//! diff_ids.

#![allow(dead_code)] // Until the orchestrator uses it.

use super::media::Compression;
use crate::stevedore::digest::Digest;
use crate::stevedore::error::Result;
use crate::stevedore::manifest::Manifest;

/// One layer as an unpack applies it: the manifest's descriptor, paired
/// with the config's `rootfs.diff_ids` entry of the same position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub media_type: String,
    pub compression: Compression,
}

/// The layers of `manifest`, bottom first, with the diff_ids of `config`
/// (its bytes, already verified). Every media type is checked before any
/// layer is applied (`unsupported_media_type`); diff_ids that do not pair
/// with the layers are `bad_layer`.
pub fn plan(manifest: &Manifest, config: &[u8]) -> Result<Vec<LayerPlan>> {
    let _ = (manifest, config);
    unimplemented!()
}
