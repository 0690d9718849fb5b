//! The referrers of a manifest (OCI distribution 1.1, "Listing Referrers"):
//! the Referrers API, `GET /v2/<repo>/referrers/<digest>`; where a registry
//! has none (distribution 2.8 answers 404), the referrers tag schema's
//! index under the tag `<alg>-<hex>`; where neither exists, an empty index,
//! as go-containerregistry answers. With an `artifactType` asked for, only
//! the entries of that type are kept. The registry is asked to filter
//! (`?artifactType=`); whether it says it did (`OCI-Filters-Applied:
//! artifactType`) or not, every entry is checked again here: one that
//! ignores the filter, or claims it and lies, still gives the caller only
//! what was asked for, and an honest one costs a pass over its entries.

use http::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH};
use http::StatusCode;
use serde_json::{json, Map, Value};
use url::Url;

use super::digest::{Algorithm, Digest};
use super::error::{Endpoint, Error, ErrorKind, Reason, Result};
use super::manifest::{descriptors, essence, Manifest, MAX_MANIFEST_BYTES, OCI_INDEX};
use super::reference::TagOrDigest;
use super::repo::{refused, Repo};
use super::transport::{discard, Body};

/// The longest `<hex>` of a referrers tag: a tag is at most 128
/// characters, and the schema truncates the digest to 64.
const TAG_HEX: usize = 64;

impl Repo<'_> {
    /// The manifests whose `subject` is `digest`, as an OCI image index;
    /// with `artifact_type`, only those of that `artifactType`. An index
    /// with no entries when the registry knows of none.
    pub async fn referrers(
        &self,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Manifest> {
        let index = match self.referrers_api(digest, artifact_type).await? {
            Some(index) => index,
            None => match self.referrers_tag(digest).await? {
                Some(index) => index,
                None => return Ok(empty_index()),
            },
        };
        Ok(match artifact_type {
            Some(wanted) => only_of_type(index, wanted),
            None => index,
        })
    }

    /// The Referrers API's index; `None` when the registry has no such API
    /// (404, or 400/406 for a path it does not know, as
    /// go-containerregistry also reads them).
    async fn referrers_api(
        &self,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Manifest>> {
        // The registry itself: which mirrors to ask, and when, is the
        // sources' business (the fallback tag below goes through them).
        let at = self.upstream();
        let mut url = at.url(&format!("referrers/{digest}"));
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(OCI_INDEX));
        let resp = at.get(&url, &headers).await?;
        let status = resp.status();
        if matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST | StatusCode::NOT_ACCEPTABLE
        ) {
            discard(resp).await;
            return Ok(None);
        }
        if !status.is_success() {
            return Err(refused(Endpoint::Referrers, &url, resp).await);
        }
        if let Some(n) = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if n > MAX_MANIFEST_BYTES {
                return Err(Error::protocol(
                    Reason::ManifestTooLarge,
                    format!(
                        "GET {url}: a referrers index of {n} bytes exceeds the {MAX_MANIFEST_BYTES}-byte limit"
                    ),
                ));
            }
        }
        let raw = Body::new(&url, resp)
            .limit(MAX_MANIFEST_BYTES, Reason::ManifestTooLarge)
            .read_to_vec()
            .await?;
        index_from(&url, raw).map(Some)
    }

    /// The referrers tag schema's index; `None` when the tag is not there.
    async fn referrers_tag(&self, digest: &Digest) -> Result<Option<Manifest>> {
        let tag = TagOrDigest::Tag(referrers_tag(digest));
        match self.manifest(&tag).await {
            Ok(index) if index.is_index() && !index.is(super::manifest::DOCKER_MANIFEST_LIST) => {
                Ok(Some(index))
            }
            Ok(other) => Err(Error::protocol(
                Reason::InvalidManifestJson,
                format!(
                    "{}: the referrers tag {tag} holds a {}, not an OCI image index",
                    self.repository().as_str(),
                    other.media_type
                ),
            )),
            Err(e) if e.kind == ErrorKind::Http && e.http_status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The referrers tag schema: `<alg>-<hex>`, the hex cut to 64 characters.
pub fn referrers_tag(digest: &Digest) -> String {
    let hex = digest.hex();
    let hex = &hex[..hex.len().min(TAG_HEX)];
    format!("{}-{hex}", digest.algorithm().name())
}

/// The Referrers API's answer, held to what the spec says it is: a JSON
/// object, an OCI image index (when it names its media type), with a
/// `manifests` list of descriptors whose digests are digests.
fn index_from(url: &Url, raw: Vec<u8>) -> Result<Manifest> {
    let bad = |why: String| {
        Error::protocol(
            Reason::InvalidManifestJson,
            format!("GET {url}: the referrers answer {why}"),
        )
    };
    let json = match serde_json::from_slice::<Value>(&raw) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(bad("is JSON but not an object".into())),
        Err(e) => return Err(bad(format!("is not valid JSON: {e}"))),
    };
    if let Some(t) = json.get("mediaType") {
        if t.as_str().map(essence).as_deref() != Some(OCI_INDEX) {
            return Err(bad(format!("is of media type {t}, not an OCI image index")));
        }
    }
    let Some(Value::Array(entries)) = json.get("manifests") else {
        return Err(bad("has no manifests list".into()));
    };
    for (i, entry) in entries.iter().enumerate() {
        let digest = entry.get("digest").and_then(Value::as_str);
        if let Err(e) = Digest::parse(digest.unwrap_or_default()) {
            return Err(bad(format!("entry {}: its digest {}", i + 1, e.0)));
        }
    }
    Ok(index(raw, json))
}

/// `index` with only the entries of `artifactType` `wanted`; as it came
/// when every entry is of that type (the registry filtered, or there was
/// nothing else), else re-encoded, with a digest of its own.
fn only_of_type(index: Manifest, wanted: &str) -> Manifest {
    let of_type = |e: &Value| e.get("artifactType").and_then(Value::as_str) == Some(wanted);
    let all_of_type = match index.json.get("manifests") {
        Some(Value::Array(entries)) => entries.iter().all(of_type),
        _ => true,
    };
    if all_of_type {
        return index;
    }
    let mut json = index.json;
    if let Some(Value::Array(entries)) = json.get_mut("manifests") {
        entries.retain(of_type);
    }
    let raw = serde_json::to_vec(&json).expect("a JSON map serializes");
    self::index(raw, json)
}

/// What the spec's client answers when there are no referrers.
fn empty_index() -> Manifest {
    let json = match json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
    }) {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    };
    let raw = serde_json::to_vec(&json).expect("a JSON map serializes");
    index(raw, json)
}

fn index(raw: Vec<u8>, json: Map<String, Value>) -> Manifest {
    Manifest {
        media_type: OCI_INDEX.to_owned(),
        digest: Digest::of(Algorithm::Sha256, &raw),
        config: None,
        layers: Vec::new(),
        manifests: descriptors(json.get("manifests")),
        json,
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(alg: &str, hex_len: usize) -> Digest {
        Digest::parse(&format!("{alg}:{}", "ab".repeat(hex_len / 2))).unwrap()
    }

    #[test]
    fn the_tag_schema() {
        assert_eq!(
            referrers_tag(&digest("sha256", 64)),
            format!("sha256-{}", "ab".repeat(32))
        );
        // sha512's 128 hex digits are cut to 64: a tag is at most 128.
        assert_eq!(
            referrers_tag(&digest("sha512", 128)),
            format!("sha512-{}", "ab".repeat(32))
        );
    }

    #[test]
    fn the_empty_index() {
        let e = empty_index();
        assert!(e.is_index());
        assert!(e.manifests.is_empty());
        let parsed: Value = serde_json::from_slice(&e.raw).unwrap();
        assert_eq!(
            parsed,
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        );
        assert_eq!(e.digest, Digest::of(Algorithm::Sha256, &e.raw));
    }

    fn answer(entries: Value) -> Manifest {
        let url = Url::parse("http://127.0.0.1/v2/r/referrers/x").unwrap();
        let raw = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries,
        }))
        .unwrap();
        index_from(&url, raw).unwrap()
    }

    #[test]
    fn filtering_keeps_the_bytes_when_nothing_is_dropped() {
        let d = format!("sha256:{}", "0".repeat(64));
        let all_sboms =
            answer(json!([{"mediaType": "m", "digest": d, "size": 1, "artifactType": "sbom"}]));
        let kept = only_of_type(all_sboms.clone(), "sbom");
        assert_eq!(kept.raw, all_sboms.raw);

        let mixed = answer(json!([
            {"mediaType": "m", "digest": d, "size": 1, "artifactType": "sig"},
            {"mediaType": "m", "digest": d, "size": 2, "artifactType": "sbom"},
            {"mediaType": "m", "digest": d, "size": 3},
        ]));
        let kept = only_of_type(mixed.clone(), "sbom");
        assert_eq!(kept.manifests.len(), 1);
        assert_eq!(kept.manifests[0].size, 2);
        assert_ne!(kept.digest, mixed.digest);
        assert_eq!(kept.digest, Digest::of(Algorithm::Sha256, &kept.raw));
    }

    #[test]
    fn answers_that_are_no_index_are_refused() {
        let url = Url::parse("http://127.0.0.1/v2/r/referrers/x").unwrap();
        for body in [
            &b"[]"[..],
            b"not json",
            br#"{"schemaVersion":2}"#,
            br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#,
            br#"{"manifests":[{"digest":"sha256:nothex"}]}"#,
            br#"{"manifests":["not an object"]}"#,
        ] {
            let e = index_from(&url, body.to_vec()).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidManifestJson, "{body:?}");
        }
    }
}
