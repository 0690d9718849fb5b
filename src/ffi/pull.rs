//! `tank_pull`: a whole image into an OCI image layout.

use std::ffi::{c_char, c_void};
use std::path::PathBuf;

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::manifest::{fill, TankManifest};
use super::progress::{calling, TankProgressFn};
use super::{boundary, optional_string_arg, path_arg, string_arg, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::error::Error;
use crate::stevedore::unpack::Options;
use crate::stevedore::{ImageRef, PlatformSpec, Pull, UnpackTo};

/// Pulls the image `reference` ("alpine", "ghcr.io/o/r:1.2",
/// "localhost:5000/x@sha256:…") into the OCI image layout directory
/// `layout`, created when missing.
///
/// - An index (manifest list) gives the image for `platform`
///   ("os/arch[/variant]"; NULL = this host's); none there is
///   `TANK_ERR_BAD_INPUT` / `no_matching_platform`, naming the platforms it
///   has.
/// - The config and the layers arrive `jobs` at once (0 = 4), each
///   verified, into `blobs/<alg>/<hex>`; partials wait in `ingest/` and
///   resume on the next pull. Blobs already there are not fetched again.
/// - `index.json` gets one entry for the image, named by the reference's
///   normalized name (`org.opencontainers.image.ref.name` and
///   `io.containerd.image.name`), replacing one of that name; it is
///   replaced in one step, last, so a failed pull leaves the layout valid.
/// - `progress` gets bytes over all of the image's blobs, with the rules of
///   `tank_blob_to_file`; `cancel` ends the call as it does there.
/// - `out`, when not NULL, receives the image manifest pulled (release it
///   with `tank_manifest_release`).
///
/// `cache`, `cancel`, `progress` and `out` may be NULL; a NULL cache still
/// earns one token for the whole pull.
///
/// # Safety
/// String arguments are NULL (`platform` may be) or NUL-terminated; `cache`
/// and `cancel` are NULL or live; `progress` is NULL or callable with
/// `progress_user`; `out` and `err` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_pull(
    reference: *const c_char,
    layout: *const c_char,
    platform: *const c_char,
    jobs: u32,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    progress: TankProgressFn,
    progress_user: *mut c_void,
    out: *mut TankManifest,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let reference = string_arg("reference", reference)?;
        let layout = path_arg("layout", layout)?;
        let platform = optional_string_arg("platform", platform)?;
        let args = PullArgs {
            image: ImageRef::parse(&reference)?,
            layout,
            platform: platform.as_deref().map(PlatformSpec::parse).transpose()?,
            jobs,
            unpack: None,
        };
        pull_with(args, cache, cancel, progress, progress_user, out)
    })
}

/// What `tank_pull` and `tank_pull_unpack` ask for, parsed.
pub(crate) struct PullArgs {
    pub image: ImageRef,
    pub layout: PathBuf,
    pub platform: Option<PlatformSpec>,
    pub jobs: u32,
    /// `tank_pull_unpack`'s root filesystem and its options.
    pub unpack: Option<(PathBuf, Options)>,
}

/// Runs a pull on tank's runtime, reporting progress on the calling
/// thread, and hands the image manifest to `out` when it is not NULL.
///
/// # Safety
/// `cache` and `cancel` are NULL or live; `progress` is NULL or callable
/// with `progress_user`; `out` is NULL or writable.
pub(crate) unsafe fn pull_with(
    args: PullArgs,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    progress: TankProgressFn,
    progress_user: *mut c_void,
    out: *mut TankManifest,
) -> Result<(), Error> {
    let session = TankCache::shared(cache);
    let cancel = TankCancel::shared(cancel);
    let wants_reports = progress.is_some();
    let manifest = runtime::block_on_reporting(
        move |report| async move {
            let PullArgs {
                image,
                layout,
                platform,
                jobs,
                unpack,
            } = args;
            let pull = Pull {
                layout: &layout,
                platform: platform.as_ref(),
                jobs: jobs as usize,
                cancel: cancel.as_ref(),
                progress: wants_reports.then_some(report),
                unpack: unpack.as_ref().map(|(rootfs, options)| UnpackTo {
                    rootfs,
                    options: *options,
                }),
            };
            // The pull ends itself on cancel, its downloads first.
            runtime::client()?
                .pull(&image, session.as_deref(), pull)
                .await
        },
        calling(progress, progress_user),
    )?;
    if !out.is_null() {
        out.write(fill(manifest));
    }
    Ok(())
}
