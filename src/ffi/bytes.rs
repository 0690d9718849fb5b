use std::ffi::{c_char, c_void};
use std::ptr;

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::{boundary, fetch_args, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::cancel::cancellable;
use crate::stevedore::{Bounds, Digest};

/// Bytes owned by tank until `tank_bytes_release`.
#[repr(C)]
pub struct TankBytes {
    pub data: *const u8,
    pub len: usize,
    pub _private: *mut c_void,
}

/// Fetches the blob `digest` from `repo` on `registry`, verified against the
/// digest while it arrives, and writes it to `*out` (only on `TANK_OK`). The
/// buffer is handed over as received, without a copy.
///
/// `digest` must be `sha256:` + 64 or `sha512:` + 128 lowercase hex digits,
/// else `TANK_ERR_BAD_INPUT` before any request. `cache`, `err`: as for
/// `tank_manifest`.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `out` is NULL or writable;
/// `cache` is NULL or live; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_blob(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    cache: *mut TankCache,
    out: *mut TankBytes,
    err: *mut *mut TankError,
) -> TankStatus {
    fetch_blob(
        registry,
        repo,
        digest,
        None,
        cache,
        ptr::null_mut(),
        out,
        err,
    )
}

/// As `tank_blob`, and `cancel` (NULL: none) ends the call with
/// `TANK_ERR_CANCELLED` when triggered; one already triggered means no
/// request is sent.
///
/// # Safety
/// As for `tank_blob`; `cancel` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tank_blob_with(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankBytes,
    err: *mut *mut TankError,
) -> TankStatus {
    fetch_blob(registry, repo, digest, None, cache, cancel, out, err)
}

/// As `tank_blob`, for a blob whose size the caller knows (the descriptor's
/// `size`): a `Content-Length` that differs, or a body that runs past
/// `size`, fails with `TANK_ERR_PROTOCOL` / `length_mismatch` before more
/// than `size` bytes are read. Use it for untrusted registries: without a
/// size, a registry that streams forever is read until memory runs out.
///
/// # Safety
/// As for `tank_blob`.
#[no_mangle]
pub unsafe extern "C" fn tank_blob_sized(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    size: u64,
    cache: *mut TankCache,
    out: *mut TankBytes,
    err: *mut *mut TankError,
) -> TankStatus {
    fetch_blob(
        registry,
        repo,
        digest,
        Some(size),
        cache,
        ptr::null_mut(),
        out,
        err,
    )
}

/// As `tank_blob_sized`, with `cancel` as for `tank_blob_with`.
///
/// # Safety
/// As for `tank_blob`; `cancel` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tank_blob_sized_with(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    size: u64,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankBytes,
    err: *mut *mut TankError,
) -> TankStatus {
    fetch_blob(registry, repo, digest, Some(size), cache, cancel, out, err)
}

/// # Safety
/// As for `tank_blob_with`.
#[allow(clippy::too_many_arguments)]
unsafe fn fetch_blob(
    registry: *const c_char,
    repo: *const c_char,
    digest: *const c_char,
    size: Option<u64>,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankBytes,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let a = fetch_args(registry, repo, ("digest", digest), cache, out)?;
        let cancel = TankCancel::shared(cancel);
        let bytes = runtime::block_on(async move {
            let client = runtime::client()?;
            let fetch = async {
                let parse_digest = |d: &str| Digest::parse_argument("digest", d);
                let (repo, digest) = a.repo(client, parse_digest)?;
                repo.blob(&digest, Bounds { size, limit: None }).await
            };
            cancellable(cancel.as_ref(), fetch).await
        })?;
        let owner = Box::new(bytes);
        out.write(TankBytes {
            data: owner.as_ptr(),
            len: owner.len(),
            _private: Box::into_raw(owner).cast(),
        });
        Ok(())
    })
}

/// Frees what `tank_blob` filled in and zeroes `*b`. NULL, a zeroed struct,
/// or one already released is a no-op.
///
/// # Safety
/// `b` is NULL or points at a struct that is zeroed or was filled by
/// `tank_blob`.
#[no_mangle]
pub unsafe extern "C" fn tank_bytes_release(b: *mut TankBytes) {
    let Some(b) = b.as_mut() else { return };
    if !b._private.is_null() {
        drop(Box::from_raw(b._private.cast::<Vec<u8>>()));
    }
    ptr::write_bytes(b as *mut TankBytes, 0, 1);
}
