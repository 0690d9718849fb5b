//! What a layer's media type says about its bytes.

#![allow(dead_code)] // Until the orchestrator uses it.

use crate::stevedore::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The compression of a layer of media type `media_type` (OCI `tar`,
/// `tar+gzip`, `tar+zstd` and their nondistributable forms; Docker's
/// `rootfs.diff.tar.gzip`, `rootfs.diff.tar`, `rootfs.foreign.diff.tar.gzip`);
/// any other is `unsupported_media_type`, naming it.
pub fn compression(media_type: &str) -> Result<Compression> {
    let _ = media_type;
    unimplemented!()
}
