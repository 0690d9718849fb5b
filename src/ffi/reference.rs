//! `TankReference`: an image reference as people write it, parsed and
//! normalized.

use std::ffi::{c_char, c_void, CString};
use std::ptr;

use super::{boundary, c_string, string_arg, TankError, TankStatus};
use crate::stevedore::error::Error;
use crate::stevedore::ImageRef;

/// A parsed image reference. Filled in by `tank_reference_parse` and owned
/// by the caller until `tank_reference_release`.
#[repr(C)]
pub struct TankReference {
    /// The host to contact, as `tank_manifest` takes it:
    /// "registry-1.docker.io", "ghcr.io", "localhost:5000", or with the
    /// reference's "http://"/"https://" prefix when it had one.
    pub registry: *const c_char,
    /// "library/alpine"
    pub repository: *const c_char,
    /// "latest" when neither tag nor digest was given; NULL when only a
    /// digest was.
    pub tag: *const c_char,
    /// NULL when absent.
    pub digest: *const c_char,
    /// Normalized, as people read it: "docker.io/library/alpine:latest".
    pub name: *const c_char,
    pub _private: *mut c_void,
}

/// Parses `reference` ("alpine", "ghcr.io/o/r:1.2",
/// "localhost:5000/x@sha256:…") with Docker's normalization and writes it
/// to `*out` (only on `TANK_OK`). A malformed reference is
/// `TANK_ERR_BAD_INPUT`, naming what is wrong. No request is made.
///
/// # Safety
/// `reference` is NULL or NUL-terminated; `out` is NULL or writable; `err`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_reference_parse(
    reference: *const c_char,
    out: *mut TankReference,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let input = string_arg("reference", reference)?;
        if out.is_null() {
            return Err(Error::bad_input("out is NULL"));
        }
        let parsed = ImageRef::parse(&input)?;
        let mut strings: Vec<CString> = Vec::new();
        let mut text = |s: Option<&str>| match s {
            Some(s) => {
                let c = c_string(s);
                let p = c.as_ptr();
                strings.push(c);
                p
            }
            None => ptr::null(),
        };
        let filled = TankReference {
            registry: text(Some(&parsed.registry.as_written())),
            repository: text(Some(parsed.repository.as_str())),
            tag: text(parsed.tag.as_deref()),
            digest: text(parsed.digest.map(|d| d.to_string()).as_deref()),
            name: text(Some(&parsed.name)),
            _private: ptr::null_mut(),
        };
        // The CStrings' heap buffers do not move when the Vec is boxed.
        let storage = Box::into_raw(Box::new(strings));
        out.write(TankReference {
            _private: storage.cast(),
            ..filled
        });
        Ok(())
    })
}

/// Frees what `tank_reference_parse` filled in and zeroes `*r`. NULL, a
/// zeroed struct, or one already released is a no-op.
///
/// # Safety
/// `r` is NULL or points at a struct that is zeroed or was filled by
/// `tank_reference_parse`.
#[no_mangle]
pub unsafe extern "C" fn tank_reference_release(r: *mut TankReference) {
    let Some(r) = r.as_mut() else { return };
    if !r._private.is_null() {
        drop(Box::from_raw(r._private.cast::<Vec<CString>>()));
    }
    ptr::write_bytes(r as *mut TankReference, 0, 1);
}
