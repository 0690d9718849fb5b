//! `tank_blob_to_file`: a blob of any size onto disk, with progress.

use std::ffi::{c_char, c_void};

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::progress::{calling, TankProgressFn};
use super::{boundary, path_arg, string_arg, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::{BlobTo, Digest, Registry, Repository};

/// `size` when the caller does not know the blob's size.
pub const TANK_SIZE_UNKNOWN: u64 = u64::MAX;

/// Fetches the blob `digest` from `repo` on `registry` into the file
/// `path`, verified against the digest as it is written.
///
/// - The bytes go to `<path>.partial` (same directory) and are hashed as
///   they are written; memory stays flat for any size. On success the file
///   is flushed, renamed to `path` in one step, and the directory flushed.
/// - `size` is the descriptor's size, or `TANK_SIZE_UNKNOWN`; a body that
///   disagrees is `TANK_ERR_PROTOCOL` / `length_mismatch`, bytes that do
///   not hash to `digest` are `TANK_ERR_DIGEST_MISMATCH`; either way the
///   partial file is deleted and `path` is not touched.
/// - A failure after bytes arrived (reset, timeout, cancel) keeps the
///   partial file; the next call for `path` resumes from it with a `Range`
///   request. A `path` that already holds the blob is `TANK_OK` with no
///   request. Two calls for one `path` at once download it once (a lock
///   file `<path>.lock` beside it, removed afterwards).
/// - When the call returns, however it ends, tank has stopped writing its
///   files: the partial file holds what the next call resumes from, and
///   may be moved or deleted at once.
/// - tank's own files are never opened through a symlink, and a partial
///   is mode 0600. A `<path>.partial` that is not a regular file of the
///   caller's, with one name, that only its owner can write, is not
///   resumed: a fresh download replaces it. A symlink at `<path>.lock` is
///   `TANK_ERR_IO`, naming it.
/// - A registry whose `206` answers never start where asked is
///   `TANK_ERR_PROTOCOL` / `range_not_honoured` after a few requests.
/// - A file or directory the OS refuses is `TANK_ERR_IO`, naming it.
///
/// `cache`, `cancel` and `progress` may be NULL; `progress_user` is passed
/// to `progress` as it is.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `cache` and `cancel` are
/// NULL or live; `progress` is NULL or callable with `progress_user`;
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_blob_to_file(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    size: u64,
    path: *const c_char,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    progress: TankProgressFn,
    progress_user: *mut c_void,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let registry = string_arg("registry", registry)?;
        let repo = string_arg("repo", repo)?;
        let digest = string_arg("digest", digest)?;
        let path = path_arg("path", path)?;
        let registry = Registry::parse(&registry)?;
        let repo = Repository::parse(&repo)?;
        let digest = Digest::parse_argument("digest", &digest)?;
        let size = (size != TANK_SIZE_UNKNOWN).then_some(size);
        let session = TankCache::shared(cache);
        let cancel = TankCancel::shared(cancel);
        let wants_reports = progress.is_some();
        runtime::block_on_reporting(
            move |report| async move {
                let repo = runtime::client()?.repo(registry, repo, session.as_deref())?;
                let to = BlobTo {
                    size,
                    path: &path,
                    work: None,
                    cancel: cancel.as_ref(),
                    progress: wants_reports.then_some(report.into()),
                    connections: None,
                };
                // Not dropped when `cancel` fires: the download ends itself,
                // its writer with it, so that nothing touches its files once
                // it returns.
                repo.blob_to(&digest, to).await
            },
            calling(progress, progress_user),
        )
    })
}
