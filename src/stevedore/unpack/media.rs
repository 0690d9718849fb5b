//! What a layer's media type says about its bytes.

#![allow(dead_code)] // Until the orchestrator uses it.

use crate::stevedore::error::{Error, Reason, Result};
use crate::stevedore::manifest::essence;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// The layer media types tank applies. The nondistributable and foreign
/// forms are ordinary layers once they are in the layout: only where they
/// may be fetched from differs.
const LAYER_TYPES: &[(&str, Compression)] = &[
    ("application/vnd.oci.image.layer.v1.tar", Compression::None),
    (
        "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.oci.image.layer.v1.tar+zstd",
        Compression::Zstd,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        Compression::None,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        Compression::Zstd,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        Compression::Gzip,
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar",
        Compression::None,
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        Compression::Gzip,
    ),
];

/// The compression of a layer of media type `media_type` (OCI `tar`,
/// `tar+gzip`, `tar+zstd` and their nondistributable forms; Docker's
/// `rootfs.diff.tar.gzip`, `rootfs.diff.tar`, `rootfs.foreign.diff.tar.gzip`);
/// any other is `unsupported_media_type`, naming it.
pub fn compression(media_type: &str) -> Result<Compression> {
    // Parameters (`; charset=...`) and case say nothing about the bytes.
    let wanted = essence(media_type);
    LAYER_TYPES
        .iter()
        .find(|(name, _)| *name == wanted)
        .map(|(_, compression)| *compression)
        .ok_or_else(|| {
            // A manifest is bounded, but a media type of a megabyte would
            // still make a useless message.
            let shown: String = media_type.chars().take(200).collect();
            Error::layer(
                Reason::UnsupportedMediaType,
                format!("layer media type {shown:?} cannot be applied"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::error::ErrorKind;

    #[test]
    fn every_layer_type_maps_to_its_compression() {
        let table = [
            ("application/vnd.oci.image.layer.v1.tar", Compression::None),
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.oci.image.layer.v1.tar+zstd",
                Compression::Zstd,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar",
                Compression::None,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                Compression::Zstd,
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Compression::Gzip,
            ),
            (
                "application/vnd.docker.image.rootfs.diff.tar",
                Compression::None,
            ),
            (
                "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                Compression::Gzip,
            ),
        ];
        for (media_type, expected) in table {
            assert_eq!(compression(media_type).unwrap(), expected, "{media_type}");
        }
    }

    #[test]
    fn parameters_and_case_are_dropped() {
        assert_eq!(
            compression("Application/VND.oci.image.layer.v1.tar+gzip; foo=bar").unwrap(),
            Compression::Gzip
        );
        assert_eq!(
            compression(" application/vnd.oci.image.layer.v1.tar+zstd ;x=y").unwrap(),
            Compression::Zstd
        );
    }

    #[test]
    fn other_types_are_unsupported_and_named() {
        for media_type in [
            "",
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/vnd.oci.image.layer.v1.tar+xz",
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.docker.image.rootfs.foreign.diff.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip+zstd",
            "application/octet-stream",
        ] {
            let e = compression(media_type).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Layer, "{media_type}");
            assert_eq!(e.reason, Reason::UnsupportedMediaType, "{media_type}");
            assert!(e.message.contains(media_type), "{}", e.message);
        }
        let huge = "x".repeat(100_000);
        assert!(compression(&huge).unwrap_err().message.len() < 400);
    }
}
