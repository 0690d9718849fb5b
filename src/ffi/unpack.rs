//! `tank_unpack` and `tank_pull_unpack`: an image's layers into a root
//! filesystem directory.

use std::ffi::{c_char, c_void};

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::manifest::TankManifest;
use super::progress::{calling, TankProgressFn};
use super::pull::{pull_with, PullArgs};
use super::{boundary, optional_string_arg, path_arg, string_arg, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::error::{Error, Result};
use crate::stevedore::unpack::{self, Options};
use crate::stevedore::{ImageRef, PlatformSpec};

/// Owners from the layer (`lchown`, numeric ids), device nodes, and every
/// xattr (`security.capability` included): needs root.
pub const TANK_UNPACK_KEEP_OWNERS: u32 = 1u32;
/// Replace an existing `rootfs` (the old tree stays whole until the new one
/// is).
pub const TANK_UNPACK_REPLACE: u32 = 2u32;

const KNOWN_FLAGS: u32 = TANK_UNPACK_KEEP_OWNERS | TANK_UNPACK_REPLACE;

/// `flags` as options; a bit tank does not know is refused, not ignored:
/// it may mean something to a later tank that this one would not do.
fn options(flags: u32) -> Result<Options> {
    let unknown = flags & !KNOWN_FLAGS;
    if unknown != 0 {
        return Err(Error::bad_input(format!(
            "flags: unknown bits {unknown:#x} (TANK_UNPACK_KEEP_OWNERS | TANK_UNPACK_REPLACE are {KNOWN_FLAGS:#x})"
        )));
    }
    Ok(Options {
        keep_owners: flags & TANK_UNPACK_KEEP_OWNERS != 0,
        replace: flags & TANK_UNPACK_REPLACE != 0,
    })
}

/// Unpacks the image `image` of the OCI image layout `layout` into the new
/// directory `rootfs`: its layers applied in order, bottom first, as
/// `umoci unpack --rootless` would (same paths, types, contents, symlink
/// targets, hardlinks, permission bits and times).
///
/// - `image` is an `index.json` entry's `org.opencontainers.image.ref.name`
///   exactly as written (`tank_pull` writes the full normalized name,
///   "docker.io/library/alpine:latest"; skopeo writes what it was given),
///   else a reference that normalizes to one ("alpine" =
///   "docker.io/library/alpine:latest"), else the digest "sha256:…" of an
///   entry. It must name an image manifest: an index, or no entry, is
///   `TANK_ERR_BAD_INPUT`, and the message lists the names the layout has.
/// - Layer types: OCI `tar`, `tar+gzip`, `tar+zstd` and their
///   `nondistributable` forms; Docker `rootfs.diff.tar.gzip`,
///   `rootfs.diff.tar`, `rootfs.foreign.diff.tar.gzip`. Any other is
///   `TANK_ERR_LAYER` / `unsupported_media_type`, found before any layer is
///   applied.
/// - Each layer blob is read once, streamed (memory stays flat for any
///   size): its digest (`TANK_ERR_DIGEST_MISMATCH`) and its diff_id
///   (`TANK_ERR_LAYER` / `diff_id_mismatch`) are checked in that same pass.
///   A layer that cannot be applied is `TANK_ERR_LAYER` (`unsafe_path`: an
///   entry that would land outside the root; `bad_layer`: not a tar, a
///   corrupt or truncated stream, a header tank refuses); the message
///   names the layer ("layer 2 (sha256:…)") and the entry.
/// - Nothing lands outside `rootfs`: names and links in a layer resolve as
///   if `rootfs` were `/`.
/// - `flags`: `TANK_UNPACK_KEEP_OWNERS` (owners from the layer, device
///   nodes, every xattr; needs root: without it the call is
///   `TANK_ERR_BAD_INPUT` before any work), `TANK_UNPACK_REPLACE` (replace
///   an existing `rootfs`). Without these, files belong to the caller,
///   device nodes are skipped and only `user.*` xattrs are applied. Any
///   other bit is `TANK_ERR_BAD_INPUT`.
/// - Atomic: the tree is built in a temporary directory beside `rootfs`
///   (`.<name>.tank-<random>`, same filesystem) and renamed to `rootfs`
///   only once every layer is applied. On any failure or cancel the
///   temporary tree is removed and `rootfs` is as it was: absent, or with
///   `TANK_UNPACK_REPLACE` the old tree, whole (it is exchanged with the
///   new one in one step, then removed). An existing `rootfs` without
///   `TANK_UNPACK_REPLACE` is `TANK_ERR_IO` naming it, before any work; a
///   full disk is `TANK_ERR_IO`.
/// - `progress` gets the layers' compressed bytes read of the sum of their
///   sizes, with the rules of `tank_blob_to_file`: on the calling thread,
///   at most every 100 ms, and a final report with `done == total` before
///   `TANK_OK`.
/// - `cancel` ends the call within 500 ms with `TANK_ERR_CANCELLED`, the
///   temporary tree removed. When the call returns, however it ends, tank
///   no longer touches any file.
///
/// `cancel` and `progress` may be NULL; `progress_user` is passed to
/// `progress` as it is.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `cancel` is NULL or live;
/// `progress` is NULL or callable with `progress_user`; `err` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tank_unpack(
    layout: *const c_char,
    image: *const c_char,
    rootfs: *const c_char,
    flags: u32,
    cancel: *mut TankCancel,
    progress: TankProgressFn,
    progress_user: *mut c_void,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let layout = path_arg("layout", layout)?;
        let image = string_arg("image", image)?;
        if image.is_empty() {
            return Err(Error::bad_input("image is empty"));
        }
        let rootfs = path_arg("rootfs", rootfs)?;
        let options = options(flags)?;
        let cancel = TankCancel::shared(cancel);
        let wants_reports = progress.is_some();
        runtime::block_on_reporting(
            move |report| async move {
                unpack::unpack(
                    &layout,
                    &image,
                    &rootfs,
                    options,
                    cancel.as_ref(),
                    wants_reports.then_some(report),
                )
                .await
                .map(drop)
            },
            calling(progress, progress_user),
        )
    })
}

/// `tank_pull`, then the image unpacked into `rootfs`: each layer is
/// applied as soon as it and every layer below it are in the layout, while
/// the later ones still download.
///
/// - `image`, `layout`, `platform`, `jobs`, `cache` and `out` are
///   `tank_pull`'s; `rootfs` and `flags` are `tank_unpack`'s, with its
///   promises (atomic, safe, verified in one pass). An existing `rootfs`
///   without `TANK_UNPACK_REPLACE`, or `TANK_UNPACK_KEEP_OWNERS` without
///   root, fails the call before any request.
/// - The layout ends as `tank_pull` leaves it (every blob verified, the
///   `index.json` entry written), then the tree is renamed into place. A
///   layer that cannot be applied ends the downloads too; the blobs already
///   verified stay in the layout (a later pull does not fetch them again)
///   and nothing is left at `rootfs`.
/// - `progress` counts each blob byte twice, once downloaded and once
///   applied, of twice the image's blob bytes (the config counts once
///   downloaded and once read; a layer the manifest lists twice is applied,
///   and counted, twice). Same rules as `tank_pull`'s.
/// - `cancel` ends the call within 500 ms, downloads and unpack alike, the
///   temporary tree removed.
///
/// # Safety
/// As `tank_pull` and `tank_unpack`.
#[no_mangle]
pub unsafe extern "C" fn tank_pull_unpack(
    image: *const c_char,
    layout: *const c_char,
    rootfs: *const c_char,
    platform: *const c_char,
    jobs: u32,
    flags: u32,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    progress: TankProgressFn,
    progress_user: *mut c_void,
    out: *mut TankManifest,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let image = string_arg("image", image)?;
        if image.is_empty() {
            return Err(Error::bad_input("image is empty"));
        }
        let layout = path_arg("layout", layout)?;
        let rootfs = path_arg("rootfs", rootfs)?;
        let platform = optional_string_arg("platform", platform)?;
        let options = options(flags)?;
        let args = PullArgs {
            image: ImageRef::parse(&image)?,
            layout,
            platform: platform.as_deref().map(PlatformSpec::parse).transpose()?,
            jobs,
            unpack: Some((rootfs, options)),
        };
        pull_with(args, cache, cancel, progress, progress_user, out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_the_two_bits_and_nothing_else() {
        assert_eq!(options(0).unwrap(), Options::default());
        let both = options(TANK_UNPACK_KEEP_OWNERS | TANK_UNPACK_REPLACE).unwrap();
        assert!(both.keep_owners && both.replace);
        for bad in [4, 8, 1 << 31, u32::MAX] {
            let e = options(bad).unwrap_err();
            assert_eq!(e.reason.id(), "bad_input", "{bad:#x}");
        }
    }
}
