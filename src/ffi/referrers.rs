//! `tank_referrers`: the manifests that refer to a digest, as an index.

use std::ffi::c_char;

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::manifest::{fill, TankManifest};
use super::{boundary, optional_string_arg, string_arg, FetchArgs, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::cancel::cancellable;
use crate::stevedore::error::Error;
use crate::stevedore::Digest;

/// The referrers of `digest` in `repo` on `registry` (the manifests whose
/// `subject` is `digest`), as an OCI image index written to `*out` (only
/// on `TANK_OK`; release it with `tank_manifest_release`):
///
/// - the Referrers API (`GET /v2/<repo>/referrers/<digest>`), else, where
///   the registry has none (404), the referrers tag `sha256-<hex>` that OCI
///   1.1 clients push beside it, else an empty index (`manifests_len` 0);
/// - `artifact_type` NULL: every referrer; else only those of that
///   `artifactType`. The registry is asked to filter, and tank checks each
///   entry whether it says it did (`OCI-Filters-Applied`) or not.
///
/// Each entry's `artifact_type` and `annotations` are in `out->manifests`.
/// `out->raw` is the index as the registry sent it, or as tank re-encoded
/// it when entries were dropped (`out->digest` is then its own). `digest`
/// must be a digest ("sha256:<hex>"): anything else is `TANK_ERR_BAD_INPUT`
/// before any request. `cache` and `cancel` may be NULL; `cancel` works as
/// for `tank_manifest_with`.
///
/// # Safety
/// String arguments are NULL (`artifact_type` may be) or NUL-terminated;
/// `cache` and `cancel` are NULL or live; `out` and `err` are NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tank_referrers(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    artifact_type: *const c_char,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankManifest,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        // In argument order, so the first bad one is the one named.
        let args = FetchArgs {
            registry: string_arg("registry", registry)?,
            repo: string_arg("repo", repo)?,
            target: string_arg("digest", digest)?,
            session: TankCache::shared(cache),
        };
        let artifact_type = optional_string_arg("artifact_type", artifact_type)?;
        if artifact_type.as_deref() == Some("") {
            return Err(Error::bad_input(
                "artifact_type is empty; NULL asks for every type",
            ));
        }
        if out.is_null() {
            return Err(Error::bad_input("out is NULL"));
        }
        let cancel = TankCancel::shared(cancel);
        let index = runtime::block_on(async move {
            let client = runtime::client()?;
            let find = async {
                let (repo, digest) = args.repo(client, |d| Digest::parse_argument("digest", d))?;
                repo.referrers(&digest, artifact_type.as_deref()).await
            };
            cancellable(cancel.as_ref(), find).await
        })?;
        out.write(fill(index));
        Ok(())
    })
}
