//! Blob fetch: the bytes land once, in a buffer sized from
//! `Content-Length`, while another thread hashes the same chunks as they
//! arrive, so a pull costs the slower of the wire and SHA-256, not the sum.

use bytes::Bytes;
use reqwest::header::HeaderMap;
use tokio::sync::mpsc;

use super::auth::authorized_get;
use super::digest::{Digest, Hasher};
use super::error::{reason, Error, ErrorKind, Result};
use super::reference::{Registry, Repository};
use super::token_cache::{CacheKey, TokenCache};
use super::transport::{body_excerpt, Body, Transport};

/// Chunks received but not hashed yet; bounds the memory a slow hasher can
/// hold on to (hyper's chunks are at most a few hundred KiB).
const HASH_QUEUE: usize = 64;

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
    let mut body = Body::new(&url, resp, None);
    let mut bytes = Vec::new();
    if let Some(n) = body.content_length() {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        bytes.try_reserve_exact(n).map_err(|_| {
            Error::internal(
                reason::OUT_OF_MEMORY,
                format!("GET {url}: cannot allocate {n} bytes for the blob"),
            )
        })?;
        advise_huge_pages(&bytes);
    }

    let (chunks, mut to_hash) = mpsc::channel::<Bytes>(HASH_QUEUE);
    let algorithm = digest.algorithm();
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = Hasher::new(algorithm);
        while let Some(chunk) = to_hash.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher.finish()
    });
    while let Some(chunk) = body.chunk().await? {
        bytes.extend_from_slice(&chunk);
        if chunks.send(chunk).await.is_err() {
            break;
        }
    }
    drop(chunks);
    let actual = hashing.await.map_err(|e| {
        Error::internal(
            reason::PANIC,
            format!("GET {url}: the hashing thread failed: {e}"),
        )
    })?;
    if &actual != digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            reason::DIGEST_MISMATCH,
            format!("GET {url}: blob bytes hash to {actual}"),
        ));
    }
    Ok(bytes)
}

/// Backs a large buffer with transparent huge pages where the kernel
/// allows it: filling 1 GiB then takes hundreds of page faults, not
/// hundreds of thousands.
fn advise_huge_pages(buf: &Vec<u8>) {
    const MIN: usize = 8 << 20;
    const PAGE: usize = 4096;
    if buf.capacity() < MIN {
        return;
    }
    let start = buf.as_ptr() as usize;
    let aligned = (start + PAGE - 1) & !(PAGE - 1);
    let len = start + buf.capacity() - aligned;
    // SAFETY: the range lies inside this allocation; MADV_HUGEPAGE only
    // changes how the kernel backs it, never its contents.
    unsafe {
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}
