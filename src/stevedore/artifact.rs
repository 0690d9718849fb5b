//! OCI 1.1 artifacts: image manifests that carry something other than a
//! root filesystem, named by `artifactType` and often with the empty
//! config (the two bytes `{}`). A pull stores them as it stores images; an
//! unpack refuses them, having no tree to make of them.

use serde_json::Value;

use super::manifest::{annotations, descriptor, Descriptor, Manifest};

/// The empty descriptor's media type: `{}`, for an artifact's config.
pub const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";

impl Manifest {
    /// The manifest's own `artifactType`; `None` when it has none.
    pub fn artifact_type(&self) -> Option<&str> {
        self.json.get("artifactType").and_then(Value::as_str)
    }

    /// The manifest's own `annotations`, sorted by key.
    pub fn annotations(&self) -> Vec<(String, String)> {
        annotations(&self.json)
    }

    /// The manifest this one refers to (`subject`), if any.
    pub fn subject(&self) -> Option<Descriptor> {
        self.json.get("subject").and_then(descriptor)
    }

    /// An artifact rather than an image: an `artifactType`, or the empty
    /// config in place of an image's.
    pub fn is_artifact(&self) -> bool {
        self.artifact_type().is_some()
            || self
                .config
                .as_ref()
                .is_some_and(|c| super::manifest::essence(&c.media_type) == EMPTY_CONFIG)
    }

    /// The type an artifact is known by: its `artifactType`, else its
    /// config's media type (the image spec's rule for a descriptor's
    /// `artifactType`).
    pub fn kind_of_artifact(&self) -> Option<&str> {
        self.artifact_type()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }
}
