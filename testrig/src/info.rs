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
    /// The https token registry whose realm is plain http (`tls_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_token: Option<TlsTokenRegistryInfo>,
    /// The htpasswd (Basic auth) registry (`basic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_registry: Option<BasicRegistryInfo>,
    /// The token registries' private repositories and the user who may
    /// pull them; present when a token registry runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<PrivateInfo>,
    /// The pull-through cache in front of `token` (`mirrors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_through: Option<PullThroughInfo>,
    /// Mirrors that fail in the ways real ones do (`mirrors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faulty_mirrors: Option<FaultyMirrorsInfo>,
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
    /// The CDN's own token realm (`<cdn>/token`, service `tank-cdn`), named
    /// in its challenges when they are on (`Rig::set_cdn_challenges`).
    #[serde(default)]
    pub cdn_realm: String,
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
    /// As `CdnRegistryInfo::cdn_realm`.
    #[serde(default)]
    pub cdn_realm: String,
    /// The CA certificate (PEM) a client must trust to talk to any of the
    /// https registries.
    pub ca_pem: String,
    pub storage: String,
    /// A docker/podman-style certs directory: `<certs_dir>/<host:port>/ca.crt`
    /// for every https registry (host `127.0.0.1` and `localhost`), plus
    /// `client.cert` and `client.key` for `client_cert_registry`.
    #[serde(default)]
    pub certs_dir: String,
    /// As `registry` (the plain storage), but the TLS handshake requires a
    /// client certificate signed by `client_ca_pem` (`client_cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_registry: Option<String>,
    /// The CA that signed the client certificate (the registry's `clientcas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_pem: Option<String>,
    /// The client certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_pem: Option<String>,
    /// Its private key, PEM (PKCS#8, P-256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_pem: Option<String>,
}

/// An https registry with token auth whose realm is plain `http://`: the
/// token registry's storage (private repositories included), its own issuer
/// (same users and rules), the rig CA's certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TlsTokenRegistryInfo {
    /// `127.0.0.1:PORT`; pull from it as `https://127.0.0.1:PORT`.
    pub registry: String,
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    pub service: String,
    pub ca_pem: String,
    pub storage: String,
}

/// A registry with `auth: htpasswd` (bcrypt): no credentials, or wrong ones,
/// draw 401 with `WWW-Authenticate: Basic realm="<realm>"`. Its own storage
/// holds every fixture the plain registry has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BasicRegistryInfo {
    pub registry: String,
    pub realm: String,
    pub username: String,
    pub password: String,
    /// The htpasswd file the registry reads.
    pub htpasswd: String,
    pub storage: String,
}

/// The token registries' (`token`, `cdn`, `tls_token`) private repositories:
/// the four standard fixtures again, under `private/...`, with the same
/// digests. Anonymous tokens get no actions on them (the registry answers
/// 401); `username`'s tokens get `pull`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PrivateInfo {
    /// `alice`: send `username:password` by Basic auth on the token GET, or
    /// POST `grant_type=password`.
    pub username: String,
    pub password: String,
    /// alice's identity (refresh) token: POST `grant_type=refresh_token`, or
    /// GET with Basic `identity_token_username:identity_token`. Also what a
    /// GET with `offline_token=true` (or a POST with `access_type=offline`)
    /// by alice answers as `refresh_token`.
    pub identity_token: String,
    /// `<token>`
    pub identity_token_username: String,
    /// `private/`
    pub prefix: String,
    /// Repository names: `private/oci-image`, `private/multiarch`,
    /// `private/docker-image`, `private/docker-list`.
    pub oci_image: String,
    pub oci_index: String,
    pub docker_image: String,
    pub docker_list: String,
}

/// A pull-through cache: distribution in proxy mode in front of the token
/// registry. Its storage starts empty; what it is asked for it fetches from
/// `upstream` (logged in there as `upstream_username`, who may pull
/// `private/*` too), serves, and keeps. Its own token realm has the same
/// rules as the others, but alice's password here is `password`, not the
/// token registry's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PullThroughInfo {
    pub registry: String,
    pub realm: String,
    pub service: String,
    /// The token registry's `127.0.0.1:PORT` (its `remoteurl`, over http).
    pub upstream: String,
    /// The user the cache logs in to its upstream as (`tank`): in the token
    /// log, the upstream realm's requests by this user are the cache's own.
    pub upstream_username: String,
    /// `alice`, who may pull `private/*` through the cache.
    pub username: String,
    /// alice's password at the cache's realm (not at the upstream's).
    pub password: String,
    pub storage: String,
}

/// Mirrors that fail, each as a real server does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultyMirrorsInfo {
    /// `127.0.0.1:PORT` where every connection is refused.
    pub dead: String,
    /// A registry with nothing in it: 404 for every manifest and blob.
    pub empty: String,
    /// A registry holding every fixture, whose blob files a test spoils
    /// with `Rig::serve_wrong_bytes`.
    pub wrong_blob: String,
    pub wrong_blob_storage: String,
}

/// The user the token issuers give `push` to (anonymous callers get `pull`
/// on public repositories).
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
