//! What a started rig tells its users: addresses, credentials and the
//! fixtures' digests. The binary prints it as one line of JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RigInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain: Option<PlainRegistryInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRegistryInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdn: Option<CdnRegistryInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsRegistryInfo>,
    pub basic_auth: BasicAuthInfo,
    pub images: Images,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlainRegistryInfo {
    /// `127.0.0.1:PORT`
    pub registry: String,
    /// The registry's filesystem storage root.
    pub storage: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRegistryInfo {
    pub registry: String,
    /// The token endpoint named in the registry's Bearer challenge.
    pub realm: String,
    pub service: String,
    pub storage: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CdnRegistryInfo {
    pub registry: String,
    pub realm: String,
    pub service: String,
    /// Base URL blob reads are redirected to (`http://127.0.0.1:PORT`).
    pub cdn: String,
    pub storage: String,
}

/// The https registries: no auth, the plain registry's storage, a
/// certificate for `127.0.0.1` and `localhost` signed by the rig's own CA.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TlsRegistryInfo {
    /// `127.0.0.1:PORT`; pull from it as `https://127.0.0.1:PORT`.
    pub registry: String,
    /// As `registry`, but every blob read is redirected to `cdn`, an
    /// `http://` URL a client must refuse to follow.
    pub redirecting_registry: String,
    pub cdn: String,
    /// The CA certificate (PEM) a client must trust to talk to either.
    pub ca_pem: String,
    pub storage: String,
}

/// The user the token issuers give `push` to (anonymous callers get `pull`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BasicAuthInfo {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Images {
    pub oci_image: ImageInfo,
    pub oci_index: IndexInfo,
    pub docker_image: ImageInfo,
    pub docker_list: IndexInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large: Option<ImageInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub many: Option<ImageInfo>,
}

/// A single-platform image pushed by tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageInfo {
    pub repo: String,
    pub tag: String,
    /// Digest of the manifest bytes as pushed.
    pub digest: String,
    pub media_type: String,
    /// Size of the manifest in bytes.
    pub size: u64,
    pub config: String,
    pub layers: Vec<String>,
    /// Size of the config and of every layer.
    pub blob_sizes: BTreeMap<String, u64>,
}

/// An OCI index or Docker manifest list pushed by tag; its children are
/// pushed by digest into the same repository.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexInfo {
    pub repo: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// In the order of the index's `manifests` array.
    pub manifests: Vec<IndexEntryInfo>,
    /// Size of every config and layer of every child.
    pub blob_sizes: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexEntryInfo {
    /// `os/architecture[/variant]`, e.g. `linux/arm64/v8`, `unknown/unknown`.
    pub platform: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub config: String,
    pub layers: Vec<String>,
}

impl IndexInfo {
    /// The entry for `platform` (`os/arch[/variant]`).
    pub fn entry(&self, platform: &str) -> Option<&IndexEntryInfo> {
        self.manifests.iter().find(|m| m.platform == platform)
    }
}
