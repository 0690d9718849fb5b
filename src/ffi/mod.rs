//! The C ABI. Each file holds one C type and the functions on it; this file
//! holds the plumbing they share: the panic boundary, argument checks, and
//! the error out-parameter. Every exported signature is written out
//! literally so cbindgen sees it.

pub mod bytes;
pub mod cache;
pub mod cancel;
pub mod error;
pub mod listing;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod reference;
pub mod referrers;
pub mod status;
pub mod to_file;
pub mod unpack;

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use crate::stevedore::error::{Error, Reason};
use crate::stevedore::{Client, Registry, Repo, Repository, Session};
use cache::TankCache;
pub use error::TankError;
pub use status::TankStatus;

/// Runs an exported function's body: its error, or a panic caught here,
/// becomes the returned status and, when `err` is not NULL, a `TankError`.
pub(crate) fn boundary(
    err: *mut *mut TankError,
    body: impl FnOnce() -> Result<(), Error>,
) -> TankStatus {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::internal(
            Reason::Panic,
            format!("panic caught at the C boundary: {what}"),
        ))
    });
    match outcome {
        Ok(()) => TankStatus::TANK_OK,
        Err(e) => {
            let status = TankStatus::of(e.kind);
            if !err.is_null() {
                // SAFETY: the caller passes either NULL or a writable pointer.
                unsafe { *err = error::into_raw(e) };
            }
            status
        }
    }
}

/// A caller's string argument, copied: nothing the caller passes is kept.
///
/// # Safety
/// `ptr` is NULL or points at a NUL-terminated string.
pub(crate) unsafe fn string_arg(name: &str, ptr: *const c_char) -> Result<String, Error> {
    if ptr.is_null() {
        return Err(Error::bad_input(format!("{name} is NULL")));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map(str::to_owned)
        .map_err(|_| Error::bad_input(format!("{name} is not valid UTF-8")))
}

/// A string argument that may be NULL (`None`).
///
/// # Safety
/// `ptr` is NULL or points at a NUL-terminated string.
pub(crate) unsafe fn optional_string_arg(
    name: &str,
    ptr: *const c_char,
) -> Result<Option<String>, Error> {
    match ptr.is_null() {
        true => Ok(None),
        false => string_arg(name, ptr).map(Some),
    }
}

/// A path argument: not NULL, UTF-8, not empty.
///
/// # Safety
/// `ptr` is NULL or NUL-terminated.
pub(crate) unsafe fn path_arg(name: &str, ptr: *const c_char) -> Result<PathBuf, Error> {
    let path = string_arg(name, ptr)?;
    if path.is_empty() {
        return Err(Error::bad_input(format!("{name} is empty")));
    }
    Ok(PathBuf::from(path))
}

/// What `tank_manifest` and `tank_blob` both take, checked for NULL and
/// UTF-8 and copied; [`FetchArgs::repo`] parses them.
pub(crate) struct FetchArgs {
    registry: String,
    repo: String,
    /// The reference or the digest.
    target: String,
    session: Option<Arc<Session>>,
}

impl FetchArgs {
    /// Parses each string once: the handle the call's requests go
    /// through, and what to ask it for. Called inside the call's
    /// cancellable future, so a call cancelled before it starts is
    /// `cancelled` whatever its arguments.
    pub fn repo<T>(
        &self,
        client: &Client,
        parse_target: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<(Repo<'_>, T), Error> {
        let registry = Registry::parse(&self.registry)?;
        let repository = Repository::parse(&self.repo)?;
        let target = parse_target(&self.target)?;
        let repo = client.repo(registry, repository, self.session.as_deref())?;
        Ok((repo, target))
    }
}

/// Checks and copies the strings in argument order, so the first bad one
/// is the one named, then `out`.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `cache` is NULL or live.
pub(crate) unsafe fn fetch_args<O>(
    registry: *const c_char,
    repo: *const c_char,
    (target_name, target): (&str, *const c_char),
    cache: *const TankCache,
    out: *mut O,
) -> Result<FetchArgs, Error> {
    let args = FetchArgs {
        registry: string_arg("registry", registry)?,
        repo: string_arg("repo", repo)?,
        target: string_arg(target_name, target)?,
        session: TankCache::shared(cache),
    };
    if out.is_null() {
        return Err(Error::bad_input("out is NULL"));
    }
    Ok(args)
}

/// Text handed to C. Interior NULs (possible in a hostile manifest's JSON)
/// are dropped rather than truncating the string or failing the call.
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s).unwrap_or_else(|_| CString::new(s.replace('\0', "")).unwrap_or_default())
}

/// The library version, e.g. "1.0.0" (`TANK_VERSION` is the header's). Static; never free it.
#[no_mangle]
pub extern "C" fn tank_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
