//! The NIF behind the Elixir module `Tank.Image.Registry` (loaded as
//! `Tank.Native`). It calls tank's async core directly through the hidden
//! runtime (`tank::runtime`), not through the C ABI.
//!
//! - `manifest/5`, `blob/5`, `blob_to_file/8`, `pull/10`, `unpack/7`,
//!   `tags/4` and `referrers/6` are asynchronous: each checks its arguments, starts the work on tank's
//!   runtime and returns at once with a call handle; the answer arrives
//!   later as a message `{ref, result}` (through an `OwnedEnv`), so no
//!   scheduler, dirty or not, is held while bytes move.
//! - The call handle is a resource: when the caller's last reference to it
//!   goes (the caller exits, is killed, or its `receive` is done), its
//!   destructor triggers the call's cancel token, which drops the transfer
//!   and closes its connection. `cancel/1` triggers it at once (a caller
//!   whose wait ran out), and `idle_ms/1` says how long ago the call last
//!   showed it is alive (its start or a progress report), which bounds
//!   the caller's wait for `blob_to_file` and `pull` by silence.
//! - Passwords and identity tokens are copied out of their binaries into
//!   [`Secret`]s, zeroed when dropped.
//! - A token cache is a NIF resource holding an `Arc<Session>`; the VM
//!   drops it when no term refers to it any more. `new_token_cache/8` sets
//!   its credentials, TLS trust, mirrors and download settings (the core's
//!   `Credentials::set` / `load`, `Trust::add_ca_file` / `load_certs_dir`,
//!   `MirrorSettings::add` / `set_registries_conf`,
//!   `Session::set_download_settings`) before handing it out, on a dirty I/O
//!   scheduler since it reads files; every call given the cache then uses
//!   them.
//! - Every NIF body runs under `catch_unwind`: a panic becomes
//!   `{:error, {:request_failed, %{reason: :panic, ...}}}`, never a crash.
//! - Errors are rebuilt in the original module's shapes (SPEC section 3).

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustler::env::{OwnedEnv, SavedTerm};
use rustler::LocalPid;
use rustler::{Atom, Binary, Encoder, Env, NewBinary, Resource, ResourceArc, Term};
use serde_json::{Map, Number, Value};
use tank::ffi::cache::connection_settings;
use tank::stevedore::cancel::cancellable;
use tank::stevedore::credential::Credential;
use tank::stevedore::error::{Endpoint, Reason};
use tank::stevedore::mirrors::hosts_toml::Capabilities;
use tank::stevedore::mirrors::load;
use tank::stevedore::mirrors::sources::{Location, Mirror};
use tank::stevedore::trust::CaFile;
use tank::stevedore::unpack;
use tank::stevedore::{
    BlobTo, Bounds, Cancel, Digest, DownloadSettings, Error, ErrorKind, ImageRef, Manifest,
    PlatformSpec, ProgressFn, Pull, Registry, Repository, Result, Session, TagOrDigest, UnpackTo,
};

mod atoms {
    rustler::atoms! {
        ok,
        error,
        nil,
        bad_input,
        manifest_http,
        blob_http,
        tags_http,
        referrers_http,
        catalog_http,
        digest_mismatch,
        blob,
        request_failed,
        reason,
        kind,
        message,
        status,
        body,
        media_type,
        digest,
        raw,
        json,
        http,
        transport,
        auth,
        protocol,
        internal,
        cancelled,
        io,
        layer,
        tank_progress,
        no_matching_platform,
        token_caches,
        buffers,
        buffer_bytes,
        basic,
        identity_token,
        default,
    }
}

/// Byte results at least this long are handed to Erlang without a copy, as
/// resource binaries over the `Vec` the core filled; shorter ones are
/// copied into an ordinary binary (cheaper than a resource).
const ZERO_COPY_FROM: usize = 64 * 1024;

static LIVE_CACHES: AtomicUsize = AtomicUsize::new(0);
static LIVE_BUFFERS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BUFFER_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A token cache as Erlang sees it: a resource term. Dropped (and the cache
/// with it, once no call in flight holds the `Arc`) when the VM collects
/// the last term referring to it.
pub struct SessionResource(Arc<Session>);

#[rustler::resource_impl]
impl Resource for SessionResource {}

impl SessionResource {
    fn new(cache: Session) -> Self {
        LIVE_CACHES.fetch_add(1, Ordering::Relaxed);
        SessionResource(Arc::new(cache))
    }
}

impl Drop for SessionResource {
    fn drop(&mut self) {
        LIVE_CACHES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The bytes behind a zero-copy binary: the `Vec` the core wrote the blob
/// into, owned by the resource until the VM collects the binary.
pub struct Buffer(Vec<u8>);

#[rustler::resource_impl]
impl Resource for Buffer {}

impl Buffer {
    fn new(bytes: Vec<u8>) -> Self {
        LIVE_BUFFERS.fetch_add(1, Ordering::Relaxed);
        LIVE_BUFFER_BYTES.fetch_add(bytes.capacity(), Ordering::Relaxed);
        Buffer(bytes)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        LIVE_BUFFERS.fetch_sub(1, Ordering::Relaxed);
        LIVE_BUFFER_BYTES.fetch_sub(self.0.capacity(), Ordering::Relaxed);
    }
}

/// A password or identity token copied out of an Erlang binary: the
/// core's own secret type, zeroed when dropped, so the NIF's one copy is
/// the credential's and does not outlive its use in memory.
use tank::stevedore::secret::Secret;

// Checked by every build, as the crate has no test binary: were `Secret`
// ever a plain `String` again, this would not compile.
const _: () = {
    const fn zeroed_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroed_on_drop::<Secret>();
};

/// What a call's work is handed and its caller's handle holds: the cancel
/// token and the time of the call's last sign of life.
#[derive(Clone)]
struct Watch {
    cancel: Cancel,
    /// Milliseconds on [`clock_ms`] when the call started or last reported
    /// progress.
    active_at: Arc<AtomicU64>,
}

impl Watch {
    fn new() -> Watch {
        Watch {
            cancel: Cancel::new(),
            active_at: Arc::new(AtomicU64::new(clock_ms())),
        }
    }

    fn touch(&self) {
        self.active_at.store(clock_ms(), Ordering::Relaxed);
    }

    fn idle_ms(&self) -> u64 {
        clock_ms().saturating_sub(self.active_at.load(Ordering::Relaxed))
    }
}

/// A monotonic clock in milliseconds, counted from its first reading.
fn clock_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let elapsed = EPOCH.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// One call in flight, as its caller holds it: dropping the last reference
/// cancels the call.
pub struct CallHandle(Watch);

#[rustler::resource_impl]
impl Resource for CallHandle {}

impl Drop for CallHandle {
    fn drop(&mut self) {
        self.0.cancel.cancel();
    }
}

/// What a finished call turns into, in the message's own environment.
type Reply = Box<dyn for<'a> FnOnce(Env<'a>) -> Term<'a> + Send>;

/// Starts `work` on tank's runtime and returns `{:ok, handle}` at once; the
/// caller gets `{ref, result}` when it ends, `result` built by `reply`.
/// `work` is handed the call's [`Watch`] (its cancel token, for waits of
/// its own, and where progress counts as a sign of life); when the token
/// fires it is dropped, unless it ends itself (see
/// [`Call::ends_itself_on_cancel`]).
fn start<'a, T, F>(
    env: Env<'a>,
    call: Call,
    ref_term: Term<'a>,
    work: impl FnOnce(&Watch) -> F,
    reply: impl for<'b> FnOnce(Env<'b>, T) -> Term<'b> + Send + 'static,
) -> Result<Term<'a>>
where
    F: std::future::Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let watch = Watch::new();
    let work = work(&watch);
    let watched = watch.cancel.clone();
    let future = async move {
        match call.ends_itself_on_cancel() {
            true => work.await,
            false => cancellable(Some(&watched), work).await,
        }
    };
    let caller = env.pid();
    let mut owned = OwnedEnv::new();
    let saved: SavedTerm = owned.save(ref_term);
    let task = tank::runtime::spawn(future)?;
    tank::runtime::spawn(async move {
        let outcome = task.await.unwrap_or_else(|e| {
            Err(Error::internal(
                Reason::Panic,
                format!("the request task failed ({e}); this is a bug in tank"),
            ))
        });
        let finish: Reply = Box::new(move |env| match outcome {
            Ok(value) => reply(env, value),
            Err(e) => (atoms::error(), error_reason(env, call, &e)).encode(env),
        });
        send(&mut owned, &caller, saved, finish);
    })?;
    let handle = ResourceArc::new(CallHandle(watch));
    Ok((atoms::ok(), handle).encode(env))
}

/// Sends `{ref, finish(env)}`; a panic while building the term becomes
/// the same error tuple a panicking call gives.
fn send(owned: &mut OwnedEnv, to: &LocalPid, saved: SavedTerm, finish: Reply) {
    let _ = owned.send_and_clear(to, move |env| {
        let reference = saved.load(env);
        let result = catch_unwind(AssertUnwindSafe(|| finish(env))).unwrap_or_else(|payload| {
            let e = Error::internal(
                Reason::Panic,
                format!(
                    "the tank NIF panicked ({}); this is a bug in tank",
                    panic_text(payload.as_ref())
                ),
            );
            (atoms::error(), error_reason(env, Call::Blob, &e)).encode(env)
        });
        (reference, result).encode(env)
    });
}

/// Which call failed: an HTTP status becomes `:manifest_http`,
/// `:blob_http`, `:tags_http` or `:referrers_http`, after the request it
/// answered (a pull's manifest or blob; a referrers call's Referrers API
/// or its fallback tag's manifest), and only calls that read blobs have
/// `{:digest_mismatch, :blob}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Manifest,
    Blob,
    BlobToFile,
    Pull,
    Unpack,
    Tags,
    Referrers,
}

impl Call {
    /// Calls that write files end themselves when their token fires, their
    /// writers first, so that nothing touches the files once the caller
    /// hears back; dropping them half-way would leave a writer running (an
    /// unpack applies its layers on a blocking thread, which would still be
    /// stopping and removing the temporary tree when the answer went out).
    fn ends_itself_on_cancel(self) -> bool {
        matches!(self, Call::BlobToFile | Call::Pull | Call::Unpack)
    }

    /// Calls whose blobs' digests are checked: only they have
    /// `{:digest_mismatch, :blob}`.
    fn reads_blobs(self) -> bool {
        matches!(
            self,
            Call::Blob | Call::BlobToFile | Call::Pull | Call::Unpack
        )
    }
}

#[rustler::nif]
fn manifest<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    registry: Term<'a>,
    repo: Term<'a>,
    reference: Term<'a>,
    cache: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::Manifest, || {
        let registry = text_arg(registry, "registry")?;
        let repo = text_arg(repo, "repo")?;
        let reference = text_arg(reference, "reference")?;
        let session = cache_arg(cache)?;
        let (registry, repo) = (Registry::parse(&registry)?, Repository::parse(&repo)?);
        let reference = TagOrDigest::parse(&reference)?;
        let client = tank::runtime::client()?;
        start(
            env,
            Call::Manifest,
            reference_tag,
            |_| async move {
                let repo = client.repo(registry, repo, session.as_deref())?;
                repo.manifest(&reference).await
            },
            |env, manifest| (atoms::ok(), manifest_term(env, manifest)).encode(env),
        )
    })
}

/// `tags(ref, registry, repo, cache)`: every tag of `repo`, all pages
/// followed; the answer is `{:ok, [tag]}`.
#[rustler::nif]
fn tags<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    registry: Term<'a>,
    repo: Term<'a>,
    cache: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::Tags, || {
        let registry = text_arg(registry, "registry")?;
        let repo = text_arg(repo, "repo")?;
        let session = cache_arg(cache)?;
        let (registry, repo) = (Registry::parse(&registry)?, Repository::parse(&repo)?);
        let client = tank::runtime::client()?;
        start(
            env,
            Call::Tags,
            reference_tag,
            |_| async move {
                let repo = client.repo(registry, repo, session.as_deref())?;
                repo.tags(None).await
            },
            |env, tags| (atoms::ok(), tags).encode(env),
        )
    })
}

/// `referrers(ref, registry, repo, digest, artifact_type, cache)`: the
/// referrers of `digest` as an OCI index (the Referrers API, else the
/// `sha256-<hex>` tag, else an empty index), only those of
/// `artifact_type` unless it is nil; the answer is `{:ok, info}` as
/// `manifest/5` gives it.
#[rustler::nif]
fn referrers<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    registry: Term<'a>,
    repo: Term<'a>,
    digest: Term<'a>,
    artifact_type: Term<'a>,
    cache: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::Referrers, || {
        let registry = text_arg(registry, "registry")?;
        let repo = text_arg(repo, "repo")?;
        let digest = text_arg(digest, "digest")?;
        let artifact_type = optional_text(artifact_type, "artifact_type")?;
        let session = cache_arg(cache)?;
        let (registry, repo) = (Registry::parse(&registry)?, Repository::parse(&repo)?);
        let digest = Digest::parse_argument("digest", &digest)?;
        if artifact_type.as_deref() == Some("") {
            return Err(Error::bad_input(
                "artifact_type is empty; nil asks for every type",
            ));
        }
        let client = tank::runtime::client()?;
        start(
            env,
            Call::Referrers,
            reference_tag,
            |_| async move {
                let repo = client.repo(registry, repo, session.as_deref())?;
                repo.referrers(&digest, artifact_type.as_deref()).await
            },
            |env, index| (atoms::ok(), manifest_term(env, index)).encode(env),
        )
    })
}

/// `blob(ref, registry, repo, digest, cache, size, max_size)`: `size` is
/// the blob's exact size or nil, `max_size` the most it may be (an
/// integer): a longer one is `too_large`, and never buffered past that.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn blob<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    registry: Term<'a>,
    repo: Term<'a>,
    digest: Term<'a>,
    cache: Term<'a>,
    size: Term<'a>,
    max_size: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::Blob, || {
        let registry = text_arg(registry, "registry")?;
        let repo = text_arg(repo, "repo")?;
        let digest = text_arg(digest, "digest")?;
        let session = cache_arg(cache)?;
        let size = optional_size(size)?;
        let max_size: u64 = max_size
            .decode()
            .map_err(|_| Error::bad_input("max_size must be a non-negative integer"))?;
        let (registry, repo) = (Registry::parse(&registry)?, Repository::parse(&repo)?);
        let digest = Digest::parse_argument("digest", &digest)?;
        let client = tank::runtime::client()?;
        start(
            env,
            Call::Blob,
            reference_tag,
            |_| async move {
                let repo = client.repo(registry, repo, session.as_deref())?;
                let bounds = Bounds {
                    size,
                    limit: Some(max_size),
                };
                repo.blob(&digest, bounds).await
            },
            |env, bytes| (atoms::ok(), bytes_term(env, bytes)).encode(env),
        )
    })
}

/// `blob_to_file(ref, registry, repo, digest, path, size, cache, progress)`:
/// `size` is an integer or nil, `progress` a pid (or nil) that gets
/// `{:tank_progress, path, done, total}`.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn blob_to_file<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    registry: Term<'a>,
    repo: Term<'a>,
    digest: Term<'a>,
    path: Term<'a>,
    size: Term<'a>,
    cache: Term<'a>,
    progress: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::BlobToFile, || {
        let registry = text_arg(registry, "registry")?;
        let repo = text_arg(repo, "repo")?;
        let digest = text_arg(digest, "digest")?;
        let path = text_arg(path, "path")?;
        let size = optional_size(size)?;
        let session = cache_arg(cache)?;
        let progress = progress_arg(progress)?;
        let (registry, repo) = (Registry::parse(&registry)?, Repository::parse(&repo)?);
        let digest = Digest::parse_argument("digest", &digest)?;
        if path.is_empty() {
            return Err(Error::bad_input("path is empty"));
        }
        let client = tank::runtime::client()?;
        start(
            env,
            Call::BlobToFile,
            reference_tag,
            |watch| {
                let progress = reporter(watch, progress, &path);
                let cancel = watch.cancel.clone();
                async move {
                    let path = PathBuf::from(path);
                    let repo = client.repo(registry, repo, session.as_deref())?;
                    let to = BlobTo {
                        size,
                        path: &path,
                        work: None,
                        cancel: Some(&cancel),
                        progress: Some(progress.into()),
                        connections: None,
                    };
                    repo.blob_to(&digest, to).await
                }
            },
            |env, ()| atoms::ok().encode(env),
        )
    })
}

/// `pull(ref, reference, layout, platform, jobs, cache, progress, rootfs,
/// keep_owners, replace)`: the image `reference` into the OCI layout
/// directory `layout`; `platform` is `"os/arch[/variant]"` or nil (the
/// host's), `jobs` a positive integer, `progress` a pid (or nil) that gets
/// `{:tank_progress, reference, done, total}` over all of the image's
/// blobs. With `rootfs` (a path, else nil) the image is also unpacked
/// there as its layers arrive (`keep_owners` and `replace`, booleans, as
/// for `unpack/7`), and progress counts each blob byte twice, once
/// downloaded and once applied. The answer is the image manifest pulled,
/// as `manifest/5` gives it.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn pull<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    reference: Term<'a>,
    layout: Term<'a>,
    platform: Term<'a>,
    jobs: Term<'a>,
    cache: Term<'a>,
    progress: Term<'a>,
    rootfs: Term<'a>,
    keep_owners: Term<'a>,
    replace: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::Pull, || {
        let reference = text_arg(reference, "reference")?;
        let layout = text_arg(layout, "layout")?;
        let platform = optional_text(platform, "platform")?;
        let jobs = jobs_arg(jobs)?;
        let session = cache_arg(cache)?;
        let progress = progress_arg(progress)?;
        let rootfs = optional_text(rootfs, "rootfs")?.map(PathBuf::from);
        let options = unpack_options(keep_owners, replace)?;
        // Each string parsed once, here, before any work starts.
        let image = ImageRef::parse(&reference)?;
        if layout.is_empty() {
            return Err(Error::bad_input("layout is empty"));
        }
        if rootfs.as_ref().is_some_and(|r| r.as_os_str().is_empty()) {
            return Err(Error::bad_input("rootfs is empty"));
        }
        let platform = platform.as_deref().map(PlatformSpec::parse).transpose()?;
        let client = tank::runtime::client()?;
        start(
            env,
            Call::Pull,
            reference_tag,
            |watch| {
                let progress = reporter(watch, progress, &reference);
                let cancel = watch.cancel.clone();
                async move {
                    let layout = PathBuf::from(layout);
                    let pull = Pull {
                        layout: &layout,
                        platform: platform.as_ref(),
                        jobs,
                        cancel: Some(&cancel),
                        progress: Some(progress),
                        unpack: rootfs.as_deref().map(|rootfs| UnpackTo { rootfs, options }),
                    };
                    client.pull(&image, session.as_deref(), pull).await
                }
            },
            |env, manifest| (atoms::ok(), manifest_term(env, manifest)).encode(env),
        )
    })
}

/// `unpack(ref, layout, image, rootfs, keep_owners, replace, progress)`:
/// the image `image` of the OCI layout `layout` unpacked into the new
/// directory `rootfs` (`keep_owners`, `replace`: booleans, the C flags
/// `TANK_UNPACK_*`); `progress` a pid (or nil) that gets
/// `{:tank_progress, rootfs, done, total}`, the layer bytes read of the
/// layers' total size. The answer is the image manifest unpacked, as
/// `manifest/5` gives it.
#[allow(clippy::too_many_arguments)]
#[rustler::nif]
fn unpack<'a>(
    env: Env<'a>,
    reference_tag: Term<'a>,
    layout: Term<'a>,
    image: Term<'a>,
    rootfs: Term<'a>,
    keep_owners: Term<'a>,
    replace: Term<'a>,
    progress: Term<'a>,
) -> Term<'a> {
    guarded(env, Call::Unpack, || {
        let layout = text_arg(layout, "layout")?;
        let image = text_arg(image, "image")?;
        let rootfs = text_arg(rootfs, "rootfs")?;
        let options = unpack_options(keep_owners, replace)?;
        let progress = progress_arg(progress)?;
        start(
            env,
            Call::Unpack,
            reference_tag,
            |watch| {
                let progress = reporter(watch, progress, &rootfs);
                let cancel = watch.cancel.clone();
                async move {
                    let (layout, rootfs) = (PathBuf::from(layout), PathBuf::from(rootfs));
                    let unpacking = unpack::unpack(
                        &layout,
                        &image,
                        &rootfs,
                        options,
                        Some(&cancel),
                        Some(progress),
                    );
                    unpacking.await
                }
            },
            |env, manifest| (atoms::ok(), manifest_term(env, manifest)).encode(env),
        )
    })
}

/// Keeps a call handle alive until the caller has its answer (calling this
/// after `receive` is what keeps the handle from being collected, and the
/// call cancelled, while the caller waits).
#[rustler::nif]
fn keep(_handle: ResourceArc<CallHandle>) -> Atom {
    atoms::ok()
}

/// Cancels a call now, as its handle's destructor would: the caller stops
/// waiting (its bound ran out) but still holds the handle. The call's
/// answer, `{:error, :cancelled}` unless it had just finished, follows.
#[rustler::nif]
fn cancel(handle: ResourceArc<CallHandle>) -> Atom {
    handle.0.cancel.cancel();
    atoms::ok()
}

/// Milliseconds since the call started or last reported progress.
#[rustler::nif]
fn idle_ms(handle: ResourceArc<CallHandle>) -> u64 {
    handle.0.idle_ms()
}

/// `new_token_cache(ttl_ms, credentials, auth_config, ca_files, certs_dir,
/// registries_conf, mirrors, connections)`: a new token cache whose entries
/// live at most `ttl_ms` milliseconds, who its calls are, what they trust,
/// where they look first and how they fetch big blobs:
///
/// - `credentials`: `[{registry, :basic, username, password}]` and
///   `[{registry, :identity_token, token, nil}]`, set in order (a later one
///   for the same registry replaces an earlier one);
/// - `auth_config`: nil, `:default` (the docker / podman search) or the
///   path of a docker `config.json` / podman `auth.json`;
/// - `ca_files`: `[{registry | nil, pem_path}]`, nil meaning every registry;
/// - `certs_dir`: nil, `:default` (`/etc/containerd/certs.d`,
///   `/etc/containers/certs.d`, `/etc/docker/certs.d`) or the path of a
///   certs directory;
/// - `registries_conf`: nil, `:default` (containers-registries.conf(5)'s
///   search) or the path of a registries.conf;
/// - `mirrors`: `[{registry, mirror, pull, resolve}]` (`pull`, `resolve`:
///   booleans, at least one true), added in order, as
///   `tank_cache_add_mirror`;
/// - `connections`: `{per_blob, per_host, threshold}`, non-negative
///   integers, 0 meaning each one's default, taken and refused exactly as
///   `tank_cache_set_connections` takes them.
///
/// Returns `{:ok, cache}` or `{:error, {reason, message}}`, `reason` the
/// core's id (`:auth_config`, `:certificate`, `:registries_conf`,
/// `:bad_input`, ...) and `message` prefixed with the option at fault; no
/// message holds a secret (the core's never quote one, and a bad credential
/// term is described, not shown). It reads files, so it runs on a dirty
/// I/O scheduler.
#[allow(clippy::too_many_arguments)]
#[rustler::nif(schedule = "DirtyIo")]
fn new_token_cache<'a>(
    env: Env<'a>,
    ttl_ms: Term<'a>,
    credentials: Term<'a>,
    auth_config: Term<'a>,
    ca_files: Term<'a>,
    certs_dir: Term<'a>,
    registries_conf: Term<'a>,
    mirrors: Term<'a>,
    connections: Term<'a>,
) -> Term<'a> {
    let built = catch_unwind(AssertUnwindSafe(|| {
        let ttl_ms: u64 = ttl_ms
            .decode()
            .map_err(|_| Error::bad_input("ttl: must be a non-negative integer (milliseconds)"))?;
        let cache = Session::new(Duration::from_millis(ttl_ms));
        for (registry, credential) in option("credentials", credentials_arg(credentials))? {
            let registry = option("credentials", Registry::parse(&registry))?;
            cache.credentials.set(&registry, credential);
        }
        if let Some(path) = option("auth_config", place_arg(auth_config, "auth_config"))? {
            option("auth_config", cache.credentials.load(path.as_deref()))?;
        }
        let ca_files = option("ca_files", ca_files_arg(ca_files))?;
        for (registry, pem) in &ca_files {
            // The file first, then the registry, as tank_cache_trust_ca_file.
            let cas = option("ca_files", CaFile::read(pem))?;
            let registry = registry.as_deref().map(Registry::parse).transpose();
            let registry = option("ca_files", registry)?;
            option(
                "ca_files",
                cache.change_trust(|t| {
                    t.add_cas(registry.as_ref(), cas);
                    Ok(())
                }),
            )?;
        }
        if let Some(dir) = option("certs_dir", place_arg(certs_dir, "certs_dir"))? {
            option(
                "certs_dir",
                cache.change_trust(|t| t.load_certs_dir(dir.as_deref())),
            )?;
        }
        if let Some(path) = option(
            "registries_conf",
            place_arg(registries_conf, "registries_conf"),
        )? {
            let conf = option("registries_conf", load::registries_conf(path.as_deref()))?;
            let loaded = cache.change_mirrors(|m| {
                m.set_registries_conf(conf);
                Ok(())
            });
            option("registries_conf", loaded)?;
        }
        let mirrors = option("mirrors", mirrors_arg(mirrors))?;
        option(
            "mirrors",
            cache.change_mirrors(|m| {
                for (registry, mirror) in mirrors {
                    m.add(&registry, mirror);
                }
                Ok(())
            }),
        )?;
        cache.set_download_settings(option("connections", connections_arg(connections))?);
        Ok(ResourceArc::new(SessionResource::new(cache)))
    }))
    .unwrap_or_else(|payload| {
        Err(Error::internal(
            Reason::Panic,
            format!(
                "the tank NIF panicked ({}); this is a bug in tank",
                panic_text(payload.as_ref())
            ),
        ))
    });
    match built {
        Ok(cache) => (atoms::ok(), cache).encode(env),
        Err(e) => {
            let why = reason_atom(env, e.reason);
            (atoms::error(), (why, e.message.as_str())).encode(env)
        }
    }
}

/// Prefixes an error's message with the `new_token_cache/1` option at
/// fault.
fn option<T>(name: &str, result: Result<T>) -> Result<T> {
    result.map_err(|mut e| {
        e.message = format!(":{name}: {}", e.message);
        e
    })
}

/// `[{registry, :basic, username, password} | {registry, :identity_token,
/// token, nil}]`. Only the registry of a bad entry is ever named: the rest
/// may be a secret.
fn credentials_arg(term: Term<'_>) -> Result<Vec<(String, Credential)>> {
    let entries: Vec<Term<'_>> = term
        .decode()
        .map_err(|_| Error::bad_input("must be a list"))?;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let bad = || {
                Error::bad_input(format!(
                    "entry {} is not {{registry, {{username, password}}}} or \
                     {{registry, {{:identity_token, token}}}} with non-empty strings \
                     (a password may be empty)",
                    i + 1
                ))
            };
            let (registry, kind, first, second): (Term<'_>, Atom, Term<'_>, Term<'_>) =
                entry.decode().map_err(|_| bad())?;
            let registry = text_arg(registry, "registry").map_err(|_| bad())?;
            let secret = |t: Term<'_>| secret_arg(t, "credential").map_err(|_| bad());
            let credential = if kind == atoms::basic() {
                let username = text_arg(first, "username").map_err(|_| bad())?;
                let password = secret(second)?;
                if username.is_empty() {
                    return Err(bad());
                }
                Credential::Basic { username, password }
            } else if kind == atoms::identity_token() {
                let token = secret(first)?;
                if token.is_empty() {
                    return Err(bad());
                }
                Credential::IdentityToken(token)
            } else {
                return Err(bad());
            };
            if registry.is_empty() {
                return Err(bad());
            }
            Ok((registry, credential))
        })
        .collect()
}

/// nil: nothing to load (`None`); `:default`: the standard places
/// (`Some(None)`); a non-empty string: that path.
fn place_arg(term: Term<'_>, name: &str) -> Result<Option<Option<PathBuf>>> {
    if let Ok(atom) = term.decode::<Atom>() {
        if atom == atoms::nil() {
            return Ok(None);
        }
        if atom == atoms::default() {
            return Ok(Some(None));
        }
    }
    let bad = || Error::bad_input(format!("{name} must be nil, :default or a non-empty path"));
    let path = text_arg(term, name).map_err(|_| bad())?;
    if path.is_empty() {
        return Err(bad());
    }
    Ok(Some(Some(PathBuf::from(path))))
}

/// `[{registry | nil, pem_path}]`.
fn ca_files_arg(term: Term<'_>) -> Result<Vec<(Option<String>, PathBuf)>> {
    let entries: Vec<(Term<'_>, Term<'_>)> = term.decode().map_err(|_| {
        Error::bad_input("must be a list of {registry, pem_path} or {:all, pem_path}")
    })?;
    entries
        .into_iter()
        .map(|(registry, pem)| {
            let registry = match registry.decode::<Atom>() {
                Ok(a) if a == atoms::nil() => None,
                _ => Some(text_arg(registry, "registry")?),
            };
            let pem = text_arg(pem, "pem_path")?;
            if pem.is_empty() || registry.as_deref() == Some("") {
                return Err(Error::bad_input("a registry or pem_path is empty"));
            }
            Ok((registry, PathBuf::from(pem)))
        })
        .collect()
}

/// `[{registry, mirror, pull, resolve}]`, each parsed as
/// `tank_cache_add_mirror` parses its arguments, before any is added.
fn mirrors_arg(term: Term<'_>) -> Result<Vec<(Registry, Mirror)>> {
    let entries: Vec<(Term<'_>, Term<'_>, bool, bool)> = term.decode().map_err(|_| {
        Error::bad_input("must be a list of {registry, mirror} or {registry, mirror, capabilities}")
    })?;
    entries
        .into_iter()
        .map(|(registry, mirror, pull, resolve)| {
            let registry = Registry::parse(&text_arg(registry, "registry")?)?;
            let location = Location::parse(&text_arg(mirror, "mirror")?)?;
            if !pull && !resolve {
                return Err(Error::bad_input(
                    "a mirror needs a capability: :pull, :resolve or both",
                ));
            }
            let capabilities = Capabilities { pull, resolve };
            Ok((
                registry,
                Mirror {
                    location,
                    capabilities,
                },
            ))
        })
        .collect()
}

/// `{per_blob, per_host, threshold}` into the session's download settings,
/// through the C ABI's own check so that both refuse the same values.
fn connections_arg(term: Term<'_>) -> Result<DownloadSettings> {
    let (per_blob, per_host, threshold): (Term<'_>, Term<'_>, Term<'_>) = term
        .decode()
        .map_err(|_| Error::bad_input("must be {per_blob, per_host, threshold}"))?;
    // A negative number, a float or a bignum past 64 bits fails to decode.
    let whole = |t: Term<'_>, name: &str| -> Result<u64> {
        t.decode().map_err(|_| {
            Error::bad_input(format!("{name} must be a non-negative integer below 2^64"))
        })
    };
    let count = |t: Term<'_>, name: &str| -> Result<u32> {
        let n = whole(t, name)?;
        u32::try_from(n).map_err(|_| Error::bad_input(format!("{name} {n}: past 32 bits")))
    };
    connection_settings(
        count(per_blob, "per_blob")?,
        count(per_host, "per_host")?,
        whole(threshold, "threshold")?,
    )
}

/// Live token caches and zero-copy buffers: lets the tests (and anyone
/// hunting a leak) see that the VM's garbage collector frees them.
#[rustler::nif]
fn resource_counts(env: Env<'_>) -> Term<'_> {
    map_term(
        env,
        vec![
            atoms::token_caches().encode(env),
            atoms::buffers().encode(env),
            atoms::buffer_bytes().encode(env),
        ],
        vec![
            LIVE_CACHES.load(Ordering::Relaxed).encode(env),
            LIVE_BUFFERS.load(Ordering::Relaxed).encode(env),
            LIVE_BUFFER_BYTES.load(Ordering::Relaxed).encode(env),
        ],
    )
}

/// Unwinds on purpose inside the same guard as `manifest` and `blob`, so the
/// tests can prove that a panic becomes an error tuple and the VM lives on.
/// (`resume_unwind` skips the panic hook: no message on stderr.)
#[rustler::nif]
fn debug_panic(env: Env<'_>) -> Term<'_> {
    guarded(env, Call::Blob, || -> Result<Term<'_>> {
        std::panic::resume_unwind(Box::new("Tank.Native.debug_panic/0 panics on purpose"))
    })
}

rustler::init!("Elixir.Tank.Native");

/// Runs `body`, turning its error, or a panic, into `{:error, reason}`.
fn guarded<'a>(env: Env<'a>, call: Call, body: impl FnOnce() -> Result<Term<'a>>) -> Term<'a> {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        Err(Error::internal(
            Reason::Panic,
            format!(
                "the tank NIF panicked ({}); this is a bug in tank",
                panic_text(payload.as_ref())
            ),
        ))
    });
    match outcome {
        Ok(term) => term,
        Err(e) => (atoms::error(), error_reason(env, call, &e)).encode(env),
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

fn text_arg(term: Term<'_>, name: &str) -> Result<String> {
    utf8_arg(term, name).map(str::to_owned)
}

/// As [`text_arg`], for a password or token: its one copy is a [`Secret`].
fn secret_arg(term: Term<'_>, name: &str) -> Result<Secret> {
    utf8_arg(term, name).map(Secret::from)
}

/// A binary's text, borrowed from the VM (no copy).
fn utf8_arg<'a>(term: Term<'a>, name: &str) -> Result<&'a str> {
    let binary = term
        .decode::<Binary<'a>>()
        .map_err(|_| Error::bad_input(format!("{name} must be a string (a UTF-8 binary)")))?;
    std::str::from_utf8(binary.as_slice())
        .map_err(|_| Error::bad_input(format!("{name} is not valid UTF-8")))
}

fn optional_text(term: Term<'_>, name: &str) -> Result<Option<String>> {
    if term.decode::<Atom>().is_ok_and(|a| a == atoms::nil()) {
        return Ok(None);
    }
    text_arg(term, name).map(Some)
}

/// Blobs at once: at least one (the core's 0 would mean its default, which
/// the Elixir side gives explicitly).
fn jobs_arg(term: Term<'_>) -> Result<usize> {
    term.decode::<usize>()
        .ok()
        .filter(|&jobs| jobs > 0)
        .ok_or_else(|| Error::bad_input("jobs must be a positive integer"))
}

/// The booleans `keep_owners` and `replace` as the core's options.
fn unpack_options(keep_owners: Term<'_>, replace: Term<'_>) -> Result<unpack::Options> {
    let flag = |term: Term<'_>, name: &str| {
        term.decode::<bool>()
            .map_err(|_| Error::bad_input(format!("{name} must be a boolean")))
    };
    Ok(unpack::Options {
        keep_owners: flag(keep_owners, "keep_owners")?,
        replace: flag(replace, "replace")?,
    })
}

fn optional_size(term: Term<'_>) -> Result<Option<u64>> {
    if term.decode::<Atom>().is_ok_and(|a| a == atoms::nil()) {
        return Ok(None);
    }
    term.decode::<u64>()
        .map(Some)
        .map_err(|_| Error::bad_input("size must be a non-negative integer or nil"))
}

/// A pid to send progress to, or nil.
fn progress_arg(term: Term<'_>) -> Result<Option<LocalPid>> {
    if term.decode::<Atom>().is_ok_and(|a| a == atoms::nil()) {
        return Ok(None);
    }
    term.decode()
        .map(Some)
        .map_err(|_| Error::bad_input("progress must be a pid or nil"))
}

/// Where a call's progress goes: every report is a sign of life for
/// `watch`, and `pid`, when there is one, gets it as
/// `{:tank_progress, name, done, total}` (`name`: the path of
/// `blob_to_file`, the reference of `pull`).
fn reporter(watch: &Watch, pid: Option<LocalPid>, name: &str) -> ProgressFn {
    let watch = watch.clone();
    let name = name.to_owned();
    Arc::new(move |done, total| {
        watch.touch();
        if let Some(pid) = &pid {
            let mut owned = OwnedEnv::new();
            let _ = owned.send_and_clear(pid, |env| {
                (atoms::tank_progress(), name.as_str(), done, total).encode(env)
            });
        }
    })
}

fn cache_arg(term: Term<'_>) -> Result<Option<Arc<Session>>> {
    if let Ok(cache) = term.decode::<ResourceArc<SessionResource>>() {
        return Ok(Some(Arc::clone(&cache.0)));
    }
    if term.decode::<Atom>().is_ok_and(|a| a == atoms::nil()) {
        return Ok(None);
    }
    Err(Error::bad_input(
        "token_cache must be nil or a cache from Tank.Image.Registry.new_token_cache/1",
    ))
}

/// The original module's error shapes (SPEC section 3),
/// `{:no_matching_platform, platforms}` for a pull, and `{:layer, reason,
/// message}` for a layer that cannot be applied (`reason` the id of one of
/// the core's `ErrorKind::Layer` reasons: `:unsafe_path`, `:bad_layer`,
/// `:diff_id_mismatch`, `:unsupported_media_type`). Read from the error's
/// fields (reason, kind, endpoint, status), never from its message.
fn error_reason<'a>(env: Env<'a>, call: Call, e: &Error) -> Term<'a> {
    match (e.reason, e.kind, e.http_status) {
        (Reason::NoMatchingPlatform, _, _) => {
            (atoms::no_matching_platform(), e.platforms.as_slice()).encode(env)
        }
        (_, ErrorKind::BadInput, _) => (atoms::bad_input(), e.message.as_str()).encode(env),
        (_, ErrorKind::Http, Some(status)) => {
            let tag = match e.endpoint {
                Some(Endpoint::Manifest) => atoms::manifest_http(),
                Some(Endpoint::Blob) => atoms::blob_http(),
                Some(Endpoint::Tags) => atoms::tags_http(),
                Some(Endpoint::Referrers) => atoms::referrers_http(),
                // No call here lists the catalog; were one to, its
                // status would still be told.
                Some(Endpoint::Catalog) => atoms::catalog_http(),
                // Every HTTP error names its request; were one not to, the
                // call would tell.
                None => match call {
                    Call::Manifest => atoms::manifest_http(),
                    Call::Tags => atoms::tags_http(),
                    Call::Referrers => atoms::referrers_http(),
                    Call::Blob | Call::BlobToFile | Call::Pull | Call::Unpack => atoms::blob_http(),
                },
            };
            (tag, status).encode(env)
        }
        (Reason::DigestMismatch, _, _) if call.reads_blobs() => {
            (atoms::digest_mismatch(), atoms::blob()).encode(env)
        }
        (_, ErrorKind::Cancelled, _) => atoms::cancelled().encode(env),
        (_, ErrorKind::Layer, _) => {
            let why = reason_atom(env, e.reason);
            (atoms::layer(), why, e.message.as_str()).encode(env)
        }
        (_, ErrorKind::Io, _) => {
            let path = e
                .path
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            (atoms::io(), path, e.message.as_str()).encode(env)
        }
        _ => (atoms::request_failed(), detail_term(env, e)).encode(env),
    }
}

/// The atom of a reason: its published id. The ids are a small fixed set
/// (`Reason::ALL`), so making atoms of them is bounded. (Only a full atom
/// table could refuse one; this runs outside `catch_unwind`, so it must not
/// panic then.)
fn reason_atom(env: Env<'_>, reason: Reason) -> Atom {
    Atom::from_str(env, reason.id()).unwrap_or_else(|_| atoms::request_failed())
}

/// `%{reason: atom, kind: atom, message: binary}` plus `status` and `body`
/// when the error has them, `reason` the atom of the error's reason id.
fn detail_term<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    let reason = reason_atom(env, e.reason);
    let kind = match e.kind {
        ErrorKind::BadInput => atoms::bad_input(),
        ErrorKind::Http => atoms::http(),
        ErrorKind::DigestMismatch => atoms::digest_mismatch(),
        ErrorKind::Transport => atoms::transport(),
        ErrorKind::Auth => atoms::auth(),
        ErrorKind::Protocol => atoms::protocol(),
        ErrorKind::Internal => atoms::internal(),
        ErrorKind::Cancelled => atoms::cancelled(),
        ErrorKind::Io => atoms::io(),
        ErrorKind::Layer => atoms::layer(),
    };
    let mut keys = vec![
        atoms::reason().encode(env),
        atoms::kind().encode(env),
        atoms::message().encode(env),
    ];
    let mut values = vec![reason.encode(env), kind.encode(env), e.message.encode(env)];
    if let Some(status) = e.http_status {
        keys.push(atoms::status().encode(env));
        values.push(status.encode(env));
    }
    if let Some(body) = &e.body {
        keys.push(atoms::body().encode(env));
        values.push(body.encode(env));
    }
    map_term(env, keys, values)
}

/// `%{media_type: binary, digest: binary, raw: binary, json: map}`.
fn manifest_term(env: Env<'_>, manifest: Manifest) -> Term<'_> {
    let Manifest {
        media_type,
        digest,
        raw,
        json,
        ..
    } = manifest;
    map_term(
        env,
        vec![
            atoms::media_type().encode(env),
            atoms::digest().encode(env),
            atoms::raw().encode(env),
            atoms::json().encode(env),
        ],
        vec![
            media_type.encode(env),
            digest.to_string().encode(env),
            bytes_term(env, raw),
            object_term(env, &json),
        ],
    )
}

/// Bytes as an Erlang binary: large ones without a copy (see [`Buffer`]).
fn bytes_term(env: Env<'_>, bytes: Vec<u8>) -> Term<'_> {
    if bytes.len() < ZERO_COPY_FROM {
        return NewBinary::from_slice(env, &bytes).into();
    }
    ResourceArc::new(Buffer::new(bytes))
        .make_binary(env, |buffer| buffer.0.as_slice())
        .to_term(env)
}

/// JSON as Elixir terms: objects are maps with binary keys, arrays lists,
/// strings binaries, integers integers, other numbers floats, `null` nil.
fn json_term<'a>(env: Env<'a>, value: &Value) -> Term<'a> {
    match value {
        Value::Null => atoms::nil().encode(env),
        Value::Bool(b) => b.encode(env),
        Value::Number(n) => number_term(env, n),
        Value::String(s) => s.encode(env),
        Value::Array(items) => items
            .iter()
            .map(|item| json_term(env, item))
            .collect::<Vec<_>>()
            .encode(env),
        Value::Object(map) => object_term(env, map),
    }
}

fn number_term<'a>(env: Env<'a>, n: &Number) -> Term<'a> {
    if let Some(u) = n.as_u64() {
        u.encode(env)
    } else if let Some(i) = n.as_i64() {
        i.encode(env)
    } else {
        // Without serde_json's arbitrary_precision every other number is
        // a finite f64 (integers beyond 64 bits included).
        n.as_f64().unwrap_or(0.0).encode(env)
    }
}

fn object_term<'a>(env: Env<'a>, map: &Map<String, Value>) -> Term<'a> {
    let (keys, values) = map
        .iter()
        .map(|(k, v)| (k.encode(env), json_term(env, v)))
        .unzip();
    map_term(env, keys, values)
}

/// A map from distinct keys in one step; should the VM refuse (it only
/// does for duplicate keys), the pairs are put one by one, last one wins.
fn map_term<'a>(env: Env<'a>, keys: Vec<Term<'a>>, values: Vec<Term<'a>>) -> Term<'a> {
    Term::map_from_term_arrays(env, &keys, &values).unwrap_or_else(|_| {
        keys.into_iter()
            .zip(values)
            .fold(Term::map_new(env), |map, (k, v)| {
                map.map_put(k, v).unwrap_or(map)
            })
    })
}
