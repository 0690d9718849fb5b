use std::ffi::{c_char, c_void, CString};
use std::ptr;
use std::sync::Arc;

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::{boundary, c_string, string_arg, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::cancel::cancellable;
use crate::stevedore::error::Error;
use crate::stevedore::{Registry, Repository, Session};

/// A list of strings. Filled in by `tank_tags` and `tank_catalog` on
/// `TANK_OK` and owned by the caller until `tank_strings_release`; every
/// pointer in it stays valid until then.
#[repr(C)]
pub struct TankStrings {
    /// `len` NUL-terminated UTF-8 strings; NULL when `len` is 0.
    pub items: *const *const c_char,
    pub len: usize,
    pub _private: *mut c_void,
}

/// Owns everything a `TankStrings` points at.
struct Storage {
    _strings: Vec<CString>,
    _items: Vec<*const c_char>,
}

/// Lays out `names` for C. A `CString`'s bytes do not move when it is
/// moved into `Storage`, nor the pointer array's, so the pointers taken
/// here stay valid.
fn fill(names: Vec<String>) -> TankStrings {
    let strings: Vec<CString> = names.iter().map(|n| c_string(n)).collect();
    let items: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    let out = TankStrings {
        items: if items.is_empty() {
            ptr::null()
        } else {
            items.as_ptr()
        },
        len: items.len(),
        _private: ptr::null_mut(),
    };
    let storage = Box::new(Storage {
        _strings: strings,
        _items: items,
    });
    TankStrings {
        _private: Box::into_raw(storage).cast(),
        ..out
    }
}

/// Every tag of `repo` on `registry`, all pages followed, in the order the
/// registry gives them, written to `*out` (only on `TANK_OK`).
///
/// Asks the registry itself (never a mirror the cache knows), `n=1000`
/// tags a page (fewer when the registry says so), and follows each `Link:
/// <…>; rel="next"`, relative or absolute, on the registry's own origin
/// only. A `Link` to another origin, or back to
/// a page already read, is `TANK_ERR_PROTOCOL` (reason `invalid_next_link`)
/// at once; so is a page over 4 MiB, or a listing past 100000 pages or
/// 10000000 tags (`list_too_large`), or a page that is neither the spec's
/// `{"name": …, "tags": […]}` nor Docker Hub's (whose `"tags"` may be
/// `null`: no tags) (`invalid_list`). A repository the registry does not know
/// is `TANK_ERR_HTTP` 404.
///
/// `registry`, `repo`, `cache` and `err`: as for `tank_manifest`; `cancel`
/// (NULL: none) as for `tank_manifest_with`.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `out` is NULL or writable;
/// `cache` and `cancel` are NULL or live; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_tags(
    registry: *const c_char,
    repo: *const c_char,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankStrings,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let registry = string_arg("registry", registry)?;
        let repo = string_arg("repo", repo)?;
        let session = checked_out(cache, out)?;
        let cancel = TankCancel::shared(cancel);
        let tags = runtime::block_on(async move {
            let client = runtime::client()?;
            let list = async {
                let registry = Registry::parse(&registry)?;
                let repository = Repository::parse(&repo)?;
                let repo = client.repo(registry, repository, session.as_deref())?;
                repo.tags(None).await
            };
            cancellable(cancel.as_ref(), list).await
        })?;
        out.write(fill(tags));
        Ok(())
    })
}

/// Every repository name in `registry`'s catalog (`GET /v2/_catalog`), all
/// pages followed, in the order the registry gives them, written to `*out`
/// (only on `TANK_OK`).
///
/// Pages, bounds and errors as for `tank_tags` (the page is
/// `{"repositories": […]}`). The catalog is no repository's: its token
/// (scope `registry:catalog:*`) is asked with the credentials `cache` holds
/// for the registry as a whole, never a namespace's, and is cached apart
/// from the repositories' tokens. A registry that does not open its catalog
/// to the caller (Docker Hub opens it to no one) answers `TANK_ERR_HTTP`,
/// most often 401.
///
/// # Safety
/// As for `tank_tags`.
#[no_mangle]
pub unsafe extern "C" fn tank_catalog(
    registry: *const c_char,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankStrings,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let registry = string_arg("registry", registry)?;
        let session = checked_out(cache, out)?;
        let cancel = TankCancel::shared(cancel);
        let names = runtime::block_on(async move {
            let client = runtime::client()?;
            let list = async {
                let registry = Registry::parse(&registry)?;
                let catalog = client.catalog(registry, session.as_deref());
                catalog.repositories(None).await
            };
            cancellable(cancel.as_ref(), list).await
        })?;
        out.write(fill(names));
        Ok(())
    })
}

/// The cache to use, once `out` is known to be writable: checked after the
/// strings, so the first bad argument is the one named.
///
/// # Safety
/// `cache` is NULL or live.
unsafe fn checked_out(
    cache: *mut TankCache,
    out: *mut TankStrings,
) -> Result<Option<Arc<Session>>, Error> {
    let session = TankCache::shared(cache);
    if out.is_null() {
        return Err(Error::bad_input("out is NULL"));
    }
    Ok(session)
}

/// Frees what `tank_tags` or `tank_catalog` filled in and zeroes `*s`.
/// NULL, a zeroed struct, or one already released is a no-op.
///
/// # Safety
/// `s` is NULL or points at a struct that is zeroed or was filled by
/// `tank_tags` or `tank_catalog`.
#[no_mangle]
pub unsafe extern "C" fn tank_strings_release(s: *mut TankStrings) {
    let Some(s) = s.as_mut() else { return };
    if !s._private.is_null() {
        drop(Box::from_raw(s._private.cast::<Storage>()));
    }
    ptr::write_bytes(s as *mut TankStrings, 0, 1);
}
