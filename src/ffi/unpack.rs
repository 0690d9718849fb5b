//! `tank_unpack` and `tank_pull_unpack`: an image's layers into a root
//! filesystem directory.

use std::ffi::{c_char, c_void};

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::manifest::TankManifest;
use super::to_file::TankProgressFn;
use super::{boundary, TankError, TankStatus};
use crate::stevedore::error::Error;

/// Owners from the layer (`lchown`, numeric ids), device nodes, and every
/// xattr (`security.capability` included): needs root.
pub const TANK_UNPACK_KEEP_OWNERS: u32 = 1u32;
/// Replace an existing `rootfs` (the old tree stays whole until the new one
/// is).
pub const TANK_UNPACK_REPLACE: u32 = 2u32;

/// Unpacks the image `image` of the OCI image layout `layout` into the new
/// directory `rootfs`.
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
    let _ = (
        layout,
        image,
        rootfs,
        flags,
        cancel,
        progress,
        progress_user,
    );
    boundary(err, || {
        Err(Error::internal(
            "unimplemented",
            "tank_unpack is not built yet",
        ))
    })
}

/// `tank_pull`, then the image unpacked into `rootfs`: each layer is
/// applied as soon as it and every layer below it are in the layout, while
/// the later ones still download.
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
    let _ = (
        image,
        layout,
        rootfs,
        platform,
        jobs,
        flags,
        cache,
        cancel,
        progress,
        progress_user,
        out,
    );
    boundary(err, || {
        Err(Error::internal(
            "unimplemented",
            "tank_pull_unpack is not built yet",
        ))
    })
}
