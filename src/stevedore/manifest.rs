//! Manifest fetch: the bytes as sent, their digest checked against the
//! header and the requested digest, the JSON and its descriptors.

use http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{json, Map, Value};

use super::digest::{Algorithm, Digest};
use super::error::{Endpoint, Error, ErrorKind, Reason, Result};
use super::reference::TagOrDigest;
use super::repo::{Need, Repo, RepoAt};
use super::transport::Body;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What the manifest request accepts, in order of preference (no schema 1).
pub const ACCEPTED: [&str; 4] = [
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
];

/// Docker media types and their OCI equivalents: the same bytes, named as
/// the OCI image spec names them.
const OCI_NAMES: [(&str, &str); 4] = [
    (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.oci.image.layer.v1.tar",
    ),
];

/// The most layers one image may list. No runtime stacks more: Docker
/// refuses images deeper than 125 layers, and overlayfs mounts at most 500
/// lower directories (the kernel's OVL_MAX_STACK), far fewer once their
/// paths fill a page of mount options. 1024 takes every image a runtime
/// can use, with room for artifacts that store files as layers, while a
/// manifest of 45,000 layers (it fits in 4 MiB) costs no 45,000 requests,
/// lock files and partials.
pub const MAX_LAYERS: usize = 1024;

/// Larger manifests are refused without reading the rest.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

const DIGEST_HEADER: &str = "docker-content-digest";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub platform: Option<Platform>,
    /// OCI 1.1's `artifactType` (an index entry or a referrer).
    pub artifact_type: Option<String>,
    /// The descriptor's `annotations`, sorted by key.
    pub annotations: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub raw: Vec<u8>,
    pub json: Map<String, Value>,
    /// An image manifest's config; `None` for an index.
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// An index's or manifest list's entries, with their platforms.
    pub manifests: Vec<Descriptor>,
}

impl Repo<'_> {
    /// The manifest `reference`, its bytes checked against the digest
    /// asked for and the one the registry states, from the first source
    /// that has it.
    pub async fn manifest(&self, reference: &TagOrDigest) -> Result<Manifest> {
        self.first_answer(Need::of(reference), |at| fetch(at, reference))
            .await
    }
}

async fn fetch(repo: RepoAt<'_>, reference: &TagOrDigest) -> Result<Manifest> {
    let url = repo.manifest_url(reference);
    let mut headers = HeaderMap::new();
    headers.insert(
        ACCEPT,
        HeaderValue::from_str(&ACCEPTED.join(", ")).expect("static header"),
    );
    let resp = repo.fetch(Endpoint::Manifest, &url, &headers).await?;
    let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str()).map(str::to_owned);
    // Present means checked: a value that is not even text is refused, not
    // taken for an absent header.
    let header_digest = match resp.headers().get(DIGEST_HEADER) {
        Some(h) => Some(
            h.to_str()
                .map_err(|_| "is not visible ASCII text".to_owned())
                .and_then(|h| Digest::parse(h.trim()).map_err(|e| e.0))
                .map_err(|why| {
                    Error::protocol(
                        Reason::InvalidContentDigestHeader,
                        format!("GET {url}: Docker-Content-Digest {why}"),
                    )
                })?,
        ),
        None => None,
    };
    if let Some(n) =
        header_str(resp.headers(), CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok())
    {
        if n > MAX_MANIFEST_BYTES {
            return Err(Error::protocol(
                Reason::ManifestTooLarge,
                format!(
                    "GET {url}: manifest of {n} bytes exceeds the {MAX_MANIFEST_BYTES}-byte limit"
                ),
            ));
        }
    }
    let raw = Body::new(&url, resp)
        .limit(MAX_MANIFEST_BYTES, Reason::ManifestTooLarge)
        .read_to_vec()
        .await?;

    let requested = match reference {
        TagOrDigest::Digest(d) => Some(d),
        TagOrDigest::Tag(_) => None,
    };
    // The bytes are hashed once per algorithm, however many claims there are.
    let mut hashed: Vec<Digest> = Vec::with_capacity(1);
    let mut hash_with = |algorithm: Algorithm| -> Digest {
        if let Some(d) = hashed.iter().find(|d| d.algorithm() == algorithm) {
            return d.clone();
        }
        let d = Digest::of(algorithm, &raw);
        hashed.push(d.clone());
        d
    };
    for (expected, claimed_by) in [
        (header_digest.as_ref(), "Docker-Content-Digest"),
        (requested, "the requested digest"),
    ] {
        if let Some(expected) = expected {
            let actual = hash_with(expected.algorithm());
            if &actual != expected {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    Reason::ManifestDigestMismatch,
                    format!(
                        "GET {url}: manifest bytes hash to {actual}, {claimed_by} is {expected}"
                    ),
                ));
            }
        }
    }
    let digest = header_digest
        .or_else(|| requested.cloned())
        .unwrap_or_else(|| hash_with(Algorithm::Sha256));

    let json = match serde_json::from_slice::<Value>(&raw) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(Error::protocol(
                Reason::InvalidManifestJson,
                format!("GET {url}: manifest is JSON but not an object"),
            ))
        }
        Err(e) => {
            return Err(Error::protocol(
                Reason::InvalidManifestJson,
                format!("GET {url}: manifest is not valid JSON: {e}"),
            ))
        }
    };
    // Kept as sent (the contract); comparisons go through `Manifest::is`.
    let media_type = content_type
        .filter(|t| !essence(t).is_empty())
        .or_else(|| {
            json.get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| OCI_MANIFEST.to_owned());
    Ok(Manifest {
        media_type,
        digest,
        config: json.get("config").and_then(descriptor),
        layers: descriptors(json.get("layers")),
        manifests: descriptors(json.get("manifests")),
        json,
        raw,
    })
}

impl Manifest {
    /// The image manifest as the layout stores it: an OCI manifest as sent; a
    /// Docker schema 2 manifest with its media types renamed to OCI's (config
    /// and layers keep their bytes and digests), as `skopeo copy docker://
    /// oci:` does, because skopeo's and umoci's layout readers skip entries of
    /// Docker types. The renamed manifest has a digest of its own.
    pub fn oci_form(&self) -> (Vec<u8>, Digest) {
        if !self.is(DOCKER_MANIFEST) {
            return (self.raw.clone(), self.digest.clone());
        }
        let rename = |d: &mut serde_json::Value| {
            if let Some(t) = d.get("mediaType").and_then(|t| t.as_str()) {
                if let Some((_, oci)) = OCI_NAMES.iter().find(|(docker, _)| *docker == t) {
                    d["mediaType"] = json!(oci);
                }
            }
        };
        let mut json = self.json.clone();
        json.insert("mediaType".into(), json!(OCI_MANIFEST));
        if let Some(config) = json.get_mut("config") {
            rename(config);
        }
        if let Some(serde_json::Value::Array(layers)) = json.get_mut("layers") {
            layers.iter_mut().for_each(rename);
        }
        let bytes = serde_json::to_vec(&json).expect("a JSON map serializes");
        let digest = Digest::of(self.digest.algorithm(), &bytes);
        (bytes, digest)
    }

    /// Whether this is an index (or manifest list): no config, and an
    /// index's media type or entries.
    pub fn is_index(&self) -> bool {
        self.config.is_none()
            && (self.is(OCI_INDEX) || self.is(DOCKER_MANIFEST_LIST) || !self.manifests.is_empty())
    }

    /// Whether this manifest is of `media_type` (one of the constants
    /// above), whatever parameters or case the server sent it with.
    pub fn is(&self, media_type: &str) -> bool {
        essence(&self.media_type) == media_type
    }
}

/// A media type's essence, `type/subtype`: parameters (`; charset=utf-8`)
/// dropped, whitespace trimmed, lowercased (media types are
/// case-insensitive, RFC 9110 8.3.1).
pub fn essence(media_type: &str) -> String {
    let without_parameters = media_type.split(';').next().unwrap_or_default();
    without_parameters.trim().to_ascii_lowercase()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn descriptors(list: Option<&Value>) -> Vec<Descriptor> {
    list.and_then(Value::as_array)
        .map(|items| items.iter().filter_map(descriptor).collect())
        .unwrap_or_default()
}

/// A descriptor as far as the JSON gives one; entries that are not objects
/// are skipped, missing fields left empty for the caller to judge.
pub(crate) fn descriptor(v: &Value) -> Option<Descriptor> {
    let obj = v.as_object()?;
    let text =
        |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let platform = obj
        .get("platform")
        .and_then(Value::as_object)
        .map(|p| Platform {
            os: text(p, "os").unwrap_or_default(),
            architecture: text(p, "architecture").unwrap_or_default(),
            variant: text(p, "variant"),
        });
    Some(Descriptor {
        media_type: text(obj, "mediaType").unwrap_or_default(),
        digest: text(obj, "digest").unwrap_or_default(),
        size: obj.get("size").and_then(Value::as_u64).unwrap_or(0),
        platform,
        artifact_type: text(obj, "artifactType"),
        annotations: annotations(obj),
    })
}

/// The object's `annotations` map, sorted by key; values that are not
/// strings (the spec allows none) are skipped.
pub(crate) fn annotations(obj: &Map<String, Value>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = obj
        .get("annotations")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_order_is_the_spec_order() {
        assert_eq!(
            ACCEPTED.join(", "),
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
        );
    }

    #[test]
    fn a_media_type_is_its_essence() {
        for (header, want) in [
            (DOCKER_MANIFEST, DOCKER_MANIFEST),
            (
                "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
                DOCKER_MANIFEST,
            ),
            (
                "  Application/VND.OCI.Image.Index.v1+JSON ;charset=\"UTF-8\"; x=y",
                OCI_INDEX,
            ),
            ("application/vnd.oci.image.manifest.v1+json;", OCI_MANIFEST),
            ("", ""),
            ("; charset=utf-8", ""),
        ] {
            assert_eq!(essence(header), want, "{header:?}");
        }
    }

    #[test]
    fn descriptors_with_platforms() {
        let v: Value = serde_json::json!([
            {"mediaType": OCI_MANIFEST, "digest": "sha256:aa", "size": 7,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": "sha256:bb", "size": 9,
             "platform": {"os": "linux", "architecture": "amd64"}},
            "not an object",
            {"digest": "sha256:cc"}
        ]);
        let d = descriptors(Some(&v));
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[0].platform.as_ref().unwrap().variant.as_deref(),
            Some("v8")
        );
        assert_eq!(d[1].platform.as_ref().unwrap().variant, None);
        assert_eq!(d[2].platform, None);
        assert_eq!(d[2].size, 0);
        assert!(descriptors(Some(&Value::Null)).is_empty());
    }
}
