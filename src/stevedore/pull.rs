//! A whole image into an OCI layout: the top manifest, the platform's image
//! manifest out of an index, the config and the layers (several at once,
//! each through the verified, resumable to-file path), then `index.json`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};
use serde_json::json;

use super::cancel::{cancellable, Cancel};
use super::digest::Digest;
use super::error::{reason, Error, Result};
use super::image_reference::ImageReference;
use super::layout::Layout;
use super::manifest::{self, Descriptor, Manifest};
use super::platform::PlatformSpec;
use super::progress::{Progress, ProgressFn};
use super::reference::{Reference, Registry, Repository};
use super::to_file::{self, blocking};
use super::token_cache::TokenCache;
use super::transport::Transport;

/// Blobs fetched at once when the caller does not say.
const DEFAULT_JOBS: usize = 4;

pub struct Request<'a> {
    pub reference: &'a ImageReference,
    pub layout: &'a Path,
    /// `None`: this host's.
    pub platform: Option<&'a PlatformSpec>,
    pub jobs: usize,
    pub cancel: Option<&'a Cancel>,
    pub progress: Option<ProgressFn>,
}

/// Pulls the image and returns the image manifest written (the
/// platform's, when the reference names an index).
pub async fn pull(
    transport: &Transport,
    cache: Option<&TokenCache>,
    req: Request<'_>,
) -> Result<Manifest> {
    if req.cancel.is_some_and(Cancel::is_cancelled) {
        return Err(Error::cancelled());
    }
    // One token per pull, also for a caller without a cache.
    let own_cache;
    let cache = match cache {
        Some(c) => c,
        None => {
            own_cache = TokenCache::default();
            &own_cache
        }
    };
    let registry = Registry::parse(&req.reference.registry)?;
    // A layout that cannot be made fails the pull before any request.
    let layout = {
        let root = req.layout.to_path_buf();
        blocking(move || Layout::open(&root)).await??
    };
    let repo = Repository::parse(&req.reference.repository)?;
    let top = cancellable(
        req.cancel,
        manifest::fetch(
            transport,
            Some(cache),
            &registry,
            &repo,
            &req.reference.target(),
        ),
    )
    .await?;
    let (index, image) = if is_index(&top) {
        let host = PlatformSpec::host();
        let wanted = req.platform.unwrap_or(&host);
        let entry = wanted.choose(&top.manifests)?;
        let digest = descriptor_digest(entry)?;
        let image = cancellable(
            req.cancel,
            manifest::fetch(
                transport,
                Some(cache),
                &registry,
                &repo,
                &Reference::Digest(digest),
            ),
        )
        .await?;
        if is_index(&image) {
            return Err(Error::protocol(
                reason::INVALID_MANIFEST_JSON,
                format!(
                    "{}: the index's entry for {wanted} is itself an index",
                    req.reference.name
                ),
            ));
        }
        (Some(top), image)
    } else {
        (None, top)
    };
    let config = image.config.as_ref().ok_or_else(|| {
        Error::protocol(
            reason::INVALID_MANIFEST_JSON,
            format!("{}: the image manifest has no config", req.reference.name),
        )
    })?;

    // Each blob once, even when an image lists a layer twice.
    let mut blobs: Vec<(Digest, u64)> = Vec::new();
    for d in std::iter::once(config).chain(&image.layers) {
        let digest = descriptor_digest(d)?;
        if !blobs.iter().any(|(seen, _)| *seen == digest) {
            blobs.push((digest, d.size));
        }
    }
    let total: u64 = blobs.iter().map(|(_, size)| size).sum();
    let tally = Arc::new(Tally::new(req.progress.clone(), total, blobs.len()));

    let jobs = if req.jobs == 0 {
        DEFAULT_JOBS
    } else {
        req.jobs
    };
    // The downloads' own switch: the caller's cancel fires it, and so does
    // the first download that fails, so that the others stop too.
    let stop = req.cancel.map_or_else(Cancel::new, Cancel::child_token);
    let source = Source {
        transport,
        cache,
        registry: &registry,
        repo: &repo,
        cancel: &stop,
    };
    // Built in a loop, not by a closure in the stream: the futures must be
    // Send, which rustc cannot prove through a borrowing closure.
    let mut work = Vec::with_capacity(blobs.len());
    for (i, (digest, size)) in blobs.iter().enumerate() {
        work.push(fetch_blob(
            &source,
            &layout,
            digest,
            *size,
            tally.clone(),
            i,
        ));
    }
    // Every download runs to its end (a stopped one ends at once, its
    // writer with it) before the pull returns: none is dropped half-way.
    let mut downloads = stream::iter(work).buffer_unordered(jobs);
    let mut failed = None;
    while let Some(done) = downloads.next().await {
        if let (Err(e), None) = (done, &failed) {
            stop.cancel();
            failed = Some(e);
        }
    }
    drop(downloads);
    if let Some(e) = failed {
        return Err(e);
    }
    if req.cancel.is_some_and(Cancel::is_cancelled) {
        return Err(Error::cancelled());
    }

    if let Some(index) = &index {
        layout.put_blob(&index.digest, &index.raw)?;
    }
    let (stored, stored_digest) = oci_form(&image);
    layout.put_blob(&stored_digest, &stored)?;
    // Cancellable only while it waits for index.json's lock.
    let entry = json!({
        "mediaType": manifest::OCI_MANIFEST,
        "digest": stored_digest.to_string(),
        "size": stored.len(),
    });
    layout
        .add_image(&req.reference.name, entry, req.cancel)
        .await?;
    tally.finish();
    Ok(image)
}

/// Where a pull's blobs come from.
struct Source<'a> {
    transport: &'a Transport,
    cache: &'a TokenCache,
    registry: &'a Registry,
    repo: &'a Repository,
    cancel: &'a Cancel,
}

/// One blob into the layout, unless it is there already.
async fn fetch_blob(
    source: &Source<'_>,
    layout: &Layout,
    digest: &Digest,
    size: u64,
    tally: Arc<Tally>,
    index: usize,
) -> Result<()> {
    if layout.has_blob(digest, size) {
        tally.set(index, size);
        return Ok(());
    }
    layout.prepare_blob_dir(digest)?;
    let path = layout.blob_path(digest);
    let work = layout.ingest_base(digest);
    let report: ProgressFn = Arc::new(move |done, _| tally.set(index, done));
    to_file::fetch(
        source.transport,
        Some(source.cache),
        to_file::Request {
            registry: source.registry,
            repo: source.repo,
            digest,
            size: Some(size),
            path: &path,
            work: Some(&work),
            cancel: Some(source.cancel),
            progress: Some(report),
        },
    )
    .await
}

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

/// The image manifest as the layout stores it: an OCI manifest as sent; a
/// Docker schema 2 manifest with its media types renamed to OCI's (config
/// and layers keep their bytes and digests), as `skopeo copy docker://
/// oci:` does, because skopeo's and umoci's layout readers skip entries of
/// Docker types. The renamed manifest has a digest of its own.
fn oci_form(image: &Manifest) -> (Vec<u8>, Digest) {
    if image.media_type != manifest::DOCKER_MANIFEST {
        return (image.raw.clone(), image.digest.clone());
    }
    let rename = |d: &mut serde_json::Value| {
        if let Some(t) = d.get("mediaType").and_then(|t| t.as_str()) {
            if let Some((_, oci)) = OCI_NAMES.iter().find(|(docker, _)| *docker == t) {
                d["mediaType"] = json!(oci);
            }
        }
    };
    let mut json = image.json.clone();
    json.insert("mediaType".into(), json!(manifest::OCI_MANIFEST));
    if let Some(config) = json.get_mut("config") {
        rename(config);
    }
    if let Some(serde_json::Value::Array(layers)) = json.get_mut("layers") {
        layers.iter_mut().for_each(rename);
    }
    let bytes = serde_json::to_vec(&json).expect("a JSON map serializes");
    let digest = Digest::of(image.digest.algorithm(), &bytes);
    (bytes, digest)
}

fn is_index(m: &Manifest) -> bool {
    m.config.is_none()
        && (m.media_type == manifest::OCI_INDEX
            || m.media_type == manifest::DOCKER_MANIFEST_LIST
            || !m.manifests.is_empty())
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Digest::parse(&d.digest).map_err(|e| {
        Error::protocol(
            reason::INVALID_MANIFEST_JSON,
            format!("a descriptor's digest {}", e.0),
        )
    })
}

/// Bytes done over all of an image's blobs, reported as one transfer.
struct Tally {
    done: Mutex<(Vec<u64>, Progress)>,
    total: u64,
}

impl Tally {
    fn new(report: Option<ProgressFn>, total: u64, blobs: usize) -> Tally {
        let mut progress = Progress::new(report);
        progress.set_total(total);
        Tally {
            done: Mutex::new((vec![0; blobs], progress)),
            total,
        }
    }

    fn set(&self, blob: usize, done: u64) {
        let mut guard = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let (per_blob, progress) = &mut *guard;
        per_blob[blob] = done;
        let sum = per_blob.iter().sum::<u64>().min(self.total);
        progress.update(sum);
    }

    fn finish(&self) {
        let mut guard = self.done.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.finish(self.total);
    }
}
