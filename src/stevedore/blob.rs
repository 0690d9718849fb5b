//! Blob fetch: the bytes land once, in a buffer sized from
//! `Content-Length`, hashed as they arrive, and checked against the digest.

use reqwest::header::HeaderMap;

use super::auth::authorized_get;
use super::digest::{Digest, Hasher};
use super::error::{reason, Error, ErrorKind, Result};
use super::reference::{Registry, Repository};
use super::token_cache::{CacheKey, TokenCache};
use super::transport::{body_excerpt, read_body, Transport};

pub async fn fetch(
    transport: &Transport,
    cache: Option<&TokenCache>,
    registry: &Registry,
    repo: &Repository,
    digest: &Digest,
) -> Result<Vec<u8>> {
    let url = registry.blob_url(repo, digest);
    let key = CacheKey::pull(registry.authority(), repo.as_str());
    let resp = authorized_get(transport, cache, &key, &url, &HeaderMap::new()).await?;
    let status = resp.status();
    if !status.is_success() {
        let body = body_excerpt(resp, 4096).await;
        return Err(Error::http(status.as_u16(), url.as_str(), body));
    }
    let mut bytes = Vec::new();
    if let Some(n) = resp.content_length() {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        bytes.try_reserve_exact(n).map_err(|_| {
            Error::internal(
                reason::OUT_OF_MEMORY,
                format!("GET {url}: cannot allocate {n} bytes for the blob"),
            )
        })?;
    }
    let mut hasher = Hasher::new(digest.algorithm());
    read_body(&url, resp, None, |chunk| {
        hasher.update(chunk);
        bytes.extend_from_slice(chunk);
        Ok(())
    })
    .await?;
    let actual = hasher.finish();
    if &actual != digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            reason::DIGEST_MISMATCH,
            format!("GET {url}: blob bytes hash to {actual}"),
        ));
    }
    Ok(bytes)
}
