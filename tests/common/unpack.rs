//! `tank_unpack` and `tank_pull_unpack` as C calls them, with progress
//! recorded.
#![allow(unused_imports)] // Each test binary uses some of these.

use std::ffi::CString;
use std::path::Path;
use std::ptr;

use super::{record, take_error, take_manifest, Cache, CallError, Cancel, Fetched, Reports};
pub use tank::ffi::unpack::{
    tank_pull_unpack, tank_unpack, TANK_UNPACK_KEEP_OWNERS, TANK_UNPACK_REPLACE,
};
use tank::ffi::{TankError, TankStatus};

fn c(s: &str) -> CString {
    CString::new(s).expect("test strings have no NUL")
}

fn c_path(p: &Path) -> CString {
    c(p.to_str().expect("test paths are UTF-8"))
}

/// `tank_unpack(layout, image, rootfs, flags, cancel, progress)`.
pub fn unpack(
    layout: &Path,
    image: &str,
    rootfs: &Path,
    flags: u32,
    cancel: Option<&Cancel>,
) -> (Result<(), CallError>, Reports) {
    let (layout, image, rootfs) = (c_path(layout), c(image), c_path(rootfs));
    let mut reports = Reports::default();
    let result = unsafe {
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_unpack(
            layout.as_ptr(),
            image.as_ptr(),
            rootfs.as_ptr(),
            flags,
            cancel.map_or(ptr::null_mut(), |c| c.0),
            Some(record),
            (&mut reports as *mut Reports).cast(),
            &mut err,
        );
        if status == TankStatus::TANK_OK {
            assert!(err.is_null(), "err written on success");
            Ok(())
        } else {
            Err(take_error(status, err))
        }
    };
    (result, reports)
}

/// `tank_pull_unpack(image, layout, rootfs, platform, jobs, flags, ...)`.
#[allow(clippy::too_many_arguments)]
pub fn pull_unpack(
    image: &str,
    layout: &Path,
    rootfs: &Path,
    platform: Option<&str>,
    jobs: u32,
    flags: u32,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> (Result<Fetched, CallError>, Reports) {
    let (image, layout, rootfs) = (c(image), c_path(layout), c_path(rootfs));
    let platform = platform.map(c);
    let mut reports = Reports::default();
    let result = unsafe {
        let mut out: tank::ffi::manifest::TankManifest = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_pull_unpack(
            image.as_ptr(),
            layout.as_ptr(),
            rootfs.as_ptr(),
            platform.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
            jobs,
            flags,
            cache.0,
            cancel.map_or(ptr::null_mut(), |c| c.0),
            Some(record),
            (&mut reports as *mut Reports).cast(),
            &mut out,
            &mut err,
        );
        if status == TankStatus::TANK_OK {
            assert!(err.is_null(), "err written on success");
            Ok(take_manifest(&mut out))
        } else {
            assert!(out._private.is_null(), "out written on failure");
            Err(take_error(status, err))
        }
    };
    (result, reports)
}
