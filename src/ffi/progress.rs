//! `TankProgressFn`: the caller's progress callback, shared by the calls
//! that move bytes (`tank_blob_to_file`, `tank_pull`, `tank_unpack`).

use std::ffi::c_void;

/// Progress of a transfer: `done` bytes of `total` (0 while unknown).
/// Called on the thread that made the call, never on one of tank's: at most
/// every 100 ms and at least once a second while bytes arrive, and once
/// more with `done == total` before a successful return.
pub type TankProgressFn = Option<unsafe extern "C" fn(user: *mut c_void, done: u64, total: u64)>;

/// The caller's progress callback as the runtime calls it, on the calling
/// thread; nothing when there is none.
pub(crate) fn calling(progress: TankProgressFn, user: *mut c_void) -> impl FnMut(u64, u64) {
    move |done, total| {
        if let Some(f) = progress {
            // SAFETY: the caller vouches for `progress` with `user`; the
            // runtime calls this on the caller's thread, during the call.
            unsafe { f(user, done, total) }
        }
    }
}
