use std::ffi::{c_char, CString};
use std::ptr;

use super::{c_string, TankStatus};
use crate::stevedore::error::Error;

/// A failed call's details. Opaque; free it with `tank_error_free`.
pub struct TankError {
    status: TankStatus,
    http_status: u16,
    reason: CString,
    message: CString,
    body: Option<CString>,
}

pub(crate) fn into_raw(e: Error) -> *mut TankError {
    Box::into_raw(Box::new(TankError {
        status: TankStatus::of(e.kind),
        http_status: e.http_status.unwrap_or(0),
        reason: c_string(e.reason.id()),
        message: c_string(&e.message),
        body: e.body.as_deref().map(c_string),
    }))
}

/// The error's status. `TANK_ERR_BAD_INPUT` for a NULL `e`.
///
/// # Safety
/// `e` is NULL or a live pointer from a tank call.
#[no_mangle]
pub unsafe extern "C" fn tank_error_status(e: *const TankError) -> TankStatus {
    e.as_ref()
        .map_or(TankStatus::TANK_ERR_BAD_INPUT, |e| e.status)
}

/// The HTTP status that ended the call (also the token endpoint's status
/// for `token_request_failed`), or 0 when none.
///
/// # Safety
/// `e` is NULL or a live pointer from a tank call.
#[no_mangle]
pub unsafe extern "C" fn tank_error_http_status(e: *const TankError) -> u16 {
    e.as_ref().map_or(0, |e| e.http_status)
}

/// The stable snake_case reason id (see the list at the top of this header).
/// Owned by `e`; valid until `tank_error_free(e)`. NULL for a NULL `e`.
///
/// # Safety
/// `e` is NULL or a live pointer from a tank call.
#[no_mangle]
pub unsafe extern "C" fn tank_error_reason(e: *const TankError) -> *const c_char {
    e.as_ref().map_or(ptr::null(), |e| e.reason.as_ptr())
}

/// A human-readable message naming the URL or argument at fault. Owned by
/// `e`; valid until `tank_error_free(e)`. NULL for a NULL `e`.
///
/// # Safety
/// `e` is NULL or a live pointer from a tank call.
#[no_mangle]
pub unsafe extern "C" fn tank_error_message(e: *const TankError) -> *const c_char {
    e.as_ref().map_or(ptr::null(), |e| e.message.as_ptr())
}

/// The start of the response body that came with the failure (at most a
/// few KiB, lossily decoded as UTF-8), or NULL when there was none. Owned
/// by `e`.
///
/// # Safety
/// `e` is NULL or a live pointer from a tank call.
#[no_mangle]
pub unsafe extern "C" fn tank_error_body(e: *const TankError) -> *const c_char {
    e.as_ref()
        .and_then(|e| e.body.as_ref())
        .map_or(ptr::null(), |b| b.as_ptr())
}

/// Frees an error. NULL is a no-op.
///
/// # Safety
/// `e` is NULL or a pointer from a tank call, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tank_error_free(e: *mut TankError) {
    if !e.is_null() {
        drop(Box::from_raw(e));
    }
}
