//! A whole image into an OCI layout: the top manifest, the platform's image
//! manifest out of an index, the config and the layers (several at once,
//! each through the verified, resumable download), then `index.json`. The
//! layout's file work runs on blocking threads.

use std::collections::HashSet;
use std::hash::Hash;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tokio::sync::watch;

use super::blocking::blocking;
use super::cancel::{cancellable, Cancel};
use super::digest::Digest;
use super::download::{BlobTo, Connections};
use super::error::{Error, Reason, Result};
use super::layout::Layout;
use super::manifest::{self, Descriptor, Manifest, MAX_LAYERS};
use super::platform::PlatformSpec;
use super::progress::{Progress, ProgressFn, Sink};
use super::reference::{ImageRef, TagOrDigest};
use super::repo::Repo;
use super::session::Session;
use super::transport::Transport;
use super::unpack::image::{self as unpack_image, LayerPlan};
use super::unpack::{Options as UnpackOptions, Unpacking};

/// Blobs fetched at once when the caller does not say.
const DEFAULT_JOBS: usize = 4;

/// Where a pull puts the image, and how it goes.
pub struct Pull<'a> {
    /// The OCI layout, created when missing.
    pub layout: &'a Path,
    /// The image of an index to pull; `None`: this host's.
    pub platform: Option<&'a PlatformSpec>,
    /// Blobs at once; 0: the default.
    pub jobs: usize,
    pub cancel: Option<&'a Cancel>,
    pub progress: Option<ProgressFn>,
    /// `tank_pull_unpack`: the image's tree too, each layer applied as soon
    /// as it and every layer below it are in the layout.
    pub unpack: Option<UnpackTo<'a>>,
}

/// Where and how a pull unpacks the image it pulls.
pub struct UnpackTo<'a> {
    pub rootfs: &'a Path,
    pub options: UnpackOptions,
}

/// Pulls `image` and returns the image manifest written (the platform's,
/// when the reference names an index).
pub async fn pull(
    transport: &Transport,
    session: Option<&Session>,
    image: &ImageRef,
    req: Pull<'_>,
) -> Result<Manifest> {
    if req.cancel.is_some_and(Cancel::is_cancelled) {
        return Err(Error::cancelled());
    }
    // One token per pull, also for a caller without a session.
    let own_session;
    let session = match session {
        Some(s) => s,
        None => {
            own_session = Session::default();
            &own_session
        }
    };
    // A blocked registry fails the call before any request.
    let repo = Repo::new(
        transport,
        Some(session),
        image.registry.clone(),
        image.repository.clone(),
    )?;
    // So does an existing rootfs (or a flag the caller may not use).
    let mut unpacking = match &req.unpack {
        Some(to) => {
            let (rootfs, options) = (to.rootfs.to_path_buf(), to.options);
            Some(blocking(move || Unpacking::begin(&rootfs, options)).await??)
        }
        None => None,
    };
    let pulled = pull_into(&repo, image, req, &mut unpacking).await;
    // What is left of the tree (the pull failed before its commit) is
    // removed before the call returns, off the async workers.
    if let Some(left) = unpacking.take() {
        let _ = blocking(move || drop(left)).await;
    }
    pulled
}

/// The pull itself. `unpacking`, when there is one, is taken to apply the
/// layers and committed at the end; a failure leaves it (or nothing, when
/// it was already removed) for the caller to drop.
async fn pull_into(
    repo: &Repo<'_>,
    image_ref: &ImageRef,
    req: Pull<'_>,
    unpacking: &mut Option<Unpacking>,
) -> Result<Manifest> {
    // A layout that cannot be made fails the pull before any request.
    let layout = {
        let root = req.layout.to_path_buf();
        blocking(move || Layout::open(&root)).await??
    };
    // A manifest fetch touches no file: dropping it on cancel is safe.
    let fetch_manifest = |reference: TagOrDigest| {
        cancellable(req.cancel, async move { repo.manifest(&reference).await })
    };
    let top = fetch_manifest(image_ref.target()).await?;
    let (index, image) = if top.is_index() {
        let host = PlatformSpec::host();
        let wanted = req.platform.unwrap_or(&host);
        let entry = wanted.choose(&top.manifests)?;
        let digest = descriptor_digest(entry)?;
        let image = fetch_manifest(TagOrDigest::Digest(digest)).await?;
        if image.is_index() {
            return Err(Error::protocol(
                Reason::InvalidManifestJson,
                format!(
                    "{}: the index's entry for {wanted} is itself an index",
                    image_ref.name
                ),
            ));
        }
        (Some(top), image)
    } else {
        (None, top)
    };
    let config = image.config.as_ref().ok_or_else(|| {
        Error::protocol(
            Reason::InvalidManifestJson,
            format!("{}: the image manifest has no config", image_ref.name),
        )
    })?;

    if image.layers.len() > MAX_LAYERS {
        return Err(Error::protocol(
            Reason::ManifestTooLarge,
            format!(
                "{}: the image has {} layers; tank pulls images of at most {MAX_LAYERS}",
                image_ref.name,
                image.layers.len()
            ),
        ));
    }

    if unpacking.is_some() {
        // A layer type tank cannot apply costs no download.
        unpack_image::check_layers(&image)?;
    }

    // Each blob once, even when an image lists a layer twice.
    let listed = std::iter::once(config)
        .chain(&image.layers)
        .map(|d| Ok((descriptor_digest(d)?, d.size)))
        .collect::<Result<Vec<_>>>()?;
    // An unpack counts every listed blob once more, as it is applied (the
    // config as it is read), after the downloads' slots.
    let applied_sizes = match unpacking.is_some() {
        true => listed.iter().map(|(_, size)| *size).collect(),
        false => Vec::new(),
    };
    let blobs = first_of_each(listed);
    let first_applied = blobs.len();
    // Sizes no image can have are the manifest's fault, found before any
    // blob is asked for: no bytes came that a length could disagree with.
    let sizes = blobs.iter().map(|(_, size)| *size).chain(applied_sizes);
    let tally = Tally::new(req.progress.clone(), sizes)
        .map(Arc::new)
        .ok_or_else(|| {
            Error::protocol(
                Reason::InvalidManifestJson,
                format!(
                    "{}: the image's blob sizes add up to more than {} bytes",
                    image_ref.name,
                    u64::MAX
                ),
            )
        })?;

    let jobs = if req.jobs == 0 {
        DEFAULT_JOBS
    } else {
        req.jobs
    };
    // The downloads' own switch: the caller's cancel fires it, and so does
    // the first download that fails, so that the others stop too.
    let stop = req.cancel.map_or_else(Cancel::new, Cancel::child_token);
    let (arrivals, arrived) = watch::channel(HashSet::new());
    // One budget of connections per host for all the pull's blobs and
    // their ranges.
    let connections = Connections::new(
        repo.session()
            .map(|s| s.download_settings())
            .unwrap_or_default(),
    );
    let source = Source {
        repo,
        cancel: &stop,
        arrivals: &arrivals,
        connections: &connections,
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
    // The first failure, of a download or of a layer applied, is the
    // call's; it stops the rest, whose own errors (cancelled) are not.
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |e: Error| {
        let mut first = failed.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e);
        }
        stop.cancel();
    };
    // Every download runs to its end (a stopped one ends at once, its
    // writer with it) before the pull returns: none is dropped half-way.
    let download_all = async {
        let mut downloads = stream::iter(work).buffer_unordered(jobs);
        while let Some(done) = downloads.next().await {
            if let Err(e) = done {
                fail(e);
            }
        }
    };
    // The layers, in order, each as soon as its blob is in the layout,
    // while later ones still download; a layer applies on a blocking
    // thread, awaited to its end.
    let apply_all = async {
        let to_apply = unpacking.take()?;
        let applying = Applying {
            layout: &layout,
            image: &image,
            arrived,
            cancel: &stop,
            tally: tally.clone(),
            first_slot: first_applied,
            config_digest: &blobs[0].0,
        };
        match applying.run(to_apply).await {
            Ok(applied) => Some(applied),
            Err(e) => {
                fail(e);
                None
            }
        }
    };
    let ((), applied) = tokio::join!(download_all, apply_all);
    *unpacking = applied;
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    if req.cancel.is_some_and(Cancel::is_cancelled) {
        return Err(Error::cancelled());
    }

    let (stored, stored_digest) = image.oci_form();
    let mut entry = json!({
        "mediaType": manifest::OCI_MANIFEST,
        "digest": stored_digest.to_string(),
        "size": stored.len(),
    });
    // An artifact is stored as an image is; its entry says what it holds,
    // as the image spec has descriptors of artifacts say it.
    if image.is_artifact() {
        if let Some(kind) = image.kind_of_artifact() {
            entry["artifactType"] = json!(kind);
        }
    }
    {
        let layout = layout.clone();
        blocking(move || {
            if let Some(index) = &index {
                layout.put_blob(&index.digest, &index.raw)?;
            }
            layout.put_blob(&stored_digest, &stored)
        })
        .await??;
    }
    // Cancellable only while it waits for index.json's lock.
    layout.add_image(&image_ref.name, entry, req.cancel).await?;
    if let Some(applied) = unpacking.take() {
        blocking(move || applied.commit()).await??;
    }
    tally.finish();
    Ok(image)
}

/// The layers of a pull, applied as their blobs arrive.
struct Applying<'a> {
    layout: &'a Layout,
    image: &'a Manifest,
    /// The config's digest, parsed with the other blobs' (it is listed
    /// first).
    config_digest: &'a Digest,
    /// The digests of the blobs in the layout so far.
    arrived: watch::Receiver<HashSet<Digest>>,
    cancel: &'a Cancel,
    tally: Arc<Tally>,
    /// The tally's slot for the config; each listed layer's follows.
    first_slot: usize,
}

impl Applying<'_> {
    /// Applies every layer, bottom first; returns the unpacking, ready to
    /// commit. On failure the unpacking is dropped (its tree removed) on a
    /// blocking thread before this returns.
    async fn run(mut self, unpacking: Unpacking) -> Result<Unpacking> {
        let mut held = Some(unpacking);
        let outcome = self.apply_each(&mut held).await;
        match (outcome, held) {
            (Ok(()), Some(done)) => Ok(done),
            (Ok(()), None) => Err(Error::internal(
                Reason::Panic,
                "the unpack was lost while its layers were applied; this is a bug in tank",
            )),
            (Err(e), left) => {
                if let Some(left) = left {
                    let _ = blocking(move || drop(left)).await;
                }
                Err(e)
            }
        }
    }

    async fn apply_each(&mut self, held: &mut Option<Unpacking>) -> Result<()> {
        // The config first: its diff_ids pair with the layers.
        let config = self.image.config.as_ref().ok_or_else(|| {
            Error::protocol(
                Reason::InvalidManifestJson,
                "the image manifest has no config",
            )
        })?;
        let config_digest = self.config_digest;
        self.wait_for(config_digest).await?;
        let config_bytes = {
            let path = self.layout.blob_path(config_digest);
            let digest = config_digest.clone();
            blocking(move || {
                unpack_image::read_verified(&path, &digest, unpack_image::MAX_CONFIG_BYTES)
            })
            .await??
        };
        self.tally.set(self.first_slot, config.size);
        let plan = unpack_image::plan(self.image, &config_bytes)?;
        for (i, layer) in plan.into_iter().enumerate() {
            self.wait_for(&layer.digest).await?;
            let Some(unpacking) = held.take() else {
                return Err(Error::internal(
                    Reason::Panic,
                    "the unpack was lost; a bug in tank",
                ));
            };
            let (unpacking, applied) = self
                .apply_one(unpacking, layer, self.first_slot + 1 + i)
                .await?;
            *held = Some(unpacking);
            applied?;
        }
        Ok(())
    }

    /// Waits until the blob `digest` is in the layout, or the pull stops.
    async fn wait_for(&mut self, digest: &Digest) -> Result<()> {
        let arrived = &mut self.arrived;
        cancellable(Some(self.cancel), async move {
            arrived
                .wait_for(|blobs| blobs.contains(digest))
                .await
                .map(drop)
                .map_err(|_| Error::internal(Reason::Panic, "the downloads ended unannounced"))
        })
        .await
    }

    /// One layer, on a blocking thread; the unpacking comes back with the
    /// outcome (a panic loses it: it is dropped, its tree removed, there).
    async fn apply_one(
        &self,
        mut unpacking: Unpacking,
        layer: LayerPlan,
        slot: usize,
    ) -> Result<(Unpacking, Result<()>)> {
        let blob = self.layout.blob_path(&layer.digest);
        let cancel = self.cancel.clone();
        let tally = self.tally.clone();
        blocking(move || {
            let read = |n: u64| tally.set(slot, n);
            let applied = unpacking.apply(&blob, &layer, Some(&cancel), &read);
            (unpacking, applied)
        })
        .await
    }
}

/// Where a pull's blobs come from.
struct Source<'a> {
    repo: &'a Repo<'a>,
    cancel: &'a Cancel,
    /// Told each blob that is in the layout, verified.
    arrivals: &'a watch::Sender<HashSet<Digest>>,
    connections: &'a Connections,
}

/// One blob into the layout, unless it is there already: a file in
/// `blobs/` counts once it hashes to its name (the store checks), and one
/// that does not is replaced by a verified download.
async fn fetch_blob(
    source: &Source<'_>,
    layout: &Layout,
    digest: &Digest,
    size: u64,
    tally: Arc<Tally>,
    index: usize,
) -> Result<()> {
    {
        let (layout, digest) = (layout.clone(), digest.clone());
        blocking(move || layout.prepare_blob_dir(&digest)).await??;
    }
    let path = layout.blob_path(digest);
    let work = layout.ingest_base(digest);
    let report = tally.count(index);
    let to = BlobTo {
        size: Some(size),
        path: &path,
        work: Some(&work),
        cancel: Some(source.cancel),
        progress: Some(report),
        connections: Some(source.connections),
    };
    let fetched = source.repo.blob_to(digest, to).await;
    if fetched.is_ok() {
        source.arrivals.send_modify(|blobs| {
            blobs.insert(digest.clone());
        });
    }
    fetched
}

/// Each key's first item, in order; one look-up per item, however many
/// there are.
fn first_of_each<K: Hash + Eq + Clone, T>(items: impl IntoIterator<Item = (K, T)>) -> Vec<(K, T)> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

fn descriptor_digest(d: &Descriptor) -> Result<Digest> {
    Digest::parse(&d.digest).map_err(|e| {
        Error::protocol(
            Reason::InvalidManifestJson,
            format!("a descriptor's digest {}", e.0),
        )
    })
}

/// Bytes done over all of an image's blobs, reported as one transfer. A
/// running total: a report costs the same for an image of many blobs.
/// Each blob's count comes in unspaced, and only the sum passes the
/// throttle, once, on its way to the caller.
struct Tally {
    state: Mutex<TallyState>,
    total: u64,
}

struct TallyState {
    /// Each blob's (size, bytes done).
    blobs: Vec<(u64, u64)>,
    /// The sum of the bytes done; no more than the total, as no blob counts
    /// past its size.
    done: u64,
    progress: Progress,
}

impl Tally {
    /// `None` when the sizes add up past what a u64 counts.
    fn new(report: Option<ProgressFn>, sizes: impl Iterator<Item = u64>) -> Option<Tally> {
        let blobs: Vec<(u64, u64)> = sizes.map(|size| (size, 0)).collect();
        let total = blobs
            .iter()
            .try_fold(0u64, |sum, (size, _)| sum.checked_add(*size))?;
        let mut progress = Progress::new(report);
        progress.set_total(total);
        Some(Tally {
            state: Mutex::new(TallyState {
                blobs,
                done: 0,
                progress,
            }),
            total,
        })
    }

    /// Where blob number `blob`'s transfer counts its bytes.
    fn count(self: Arc<Self>, blob: usize) -> Sink {
        Sink::Count(Arc::new(move |done| self.set(blob, done)))
    }

    /// Blob number `blob` has `done` bytes (fewer than before when it
    /// started over).
    fn set(&self, blob: usize, done: u64) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let TallyState {
            blobs,
            done: sum,
            progress,
        } = &mut *guard;
        let (size, counted) = &mut blobs[blob];
        let done = done.min(*size);
        *sum = *sum - *counted + done;
        *counted = done;
        progress.update(*sum);
    }

    fn finish(&self) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.progress.finish(self.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A key that counts how often it is compared.
    #[derive(Clone)]
    struct Counted(u32);

    impl std::hash::Hash for Counted {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    static COMPARED: AtomicU64 = AtomicU64::new(0);

    impl PartialEq for Counted {
        fn eq(&self, other: &Self) -> bool {
            COMPARED.fetch_add(1, Ordering::Relaxed);
            self.0 == other.0
        }
    }
    impl Eq for Counted {}

    /// A manifest of 45,000 layers fits in 4 MiB: deduplicating it must
    /// cost a few comparisons per layer, not one per layer kept so far.
    #[test]
    fn deduplication_compares_each_layer_a_few_times_not_with_every_other() {
        let n = 45_000u32;
        // Every layer twice: the second of each is dropped.
        let listed = (0..n).chain(0..n).map(|i| (Counted(i), i));
        let kept = first_of_each(listed);
        assert_eq!(kept.len(), n as usize);
        assert!(kept.iter().enumerate().all(|(i, (k, _))| k.0 == i as u32));
        let compared = COMPARED.load(Ordering::Relaxed);
        assert!(
            compared <= 4 * u64::from(n),
            "{compared} comparisons for {} layers",
            2 * n
        );
    }

    fn done(tally: &Tally) -> u64 {
        tally.state.lock().unwrap().done
    }

    #[test]
    fn progress_is_a_running_total_that_no_blob_pushes_past_its_size() {
        let half = u64::MAX / 2;
        let tally = Tally::new(None, [half, half + 1].into_iter()).unwrap();
        assert_eq!(tally.total, u64::MAX);
        // More than the blob's size counts as its size.
        tally.set(0, u64::MAX);
        assert_eq!(done(&tally), half);
        // A blob's report replaces its last one.
        tally.set(1, 10);
        tally.set(1, 20);
        assert_eq!(done(&tally), half + 20);
        tally.set(1, u64::MAX);
        assert_eq!(done(&tally), u64::MAX);
        // A blob that started over counts from zero again.
        tally.set(0, 0);
        assert_eq!(done(&tally), half + 1);
    }

    #[test]
    fn sizes_past_a_u64_make_no_tally() {
        assert!(Tally::new(None, [u64::MAX, 1].into_iter()).is_none());
        assert!(Tally::new(None, [u64::MAX, 0].into_iter()).is_some());
    }
}
