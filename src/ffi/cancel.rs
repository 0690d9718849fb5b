use crate::stevedore::Cancel;

/// A cancel switch for calls in flight. Opaque and thread-safe (a `Box`
/// around a token that is shared by reference count): trigger it from any
/// thread, at any time. Calls given it hold their own reference to the
/// token, so freeing the switch while they run is safe.
pub struct TankCancel {
    pub(crate) token: Cancel,
}

impl TankCancel {
    /// The token a call should watch; NULL means the call cannot be
    /// cancelled.
    ///
    /// # Safety
    /// `cancel` is NULL or a live pointer from `tank_cancel_new`.
    pub(crate) unsafe fn shared(cancel: *const TankCancel) -> Option<Cancel> {
        cancel.as_ref().map(|c| c.token.clone())
    }
}

/// A new, untriggered switch. Returns NULL only if allocation fails.
#[no_mangle]
pub extern "C" fn tank_cancel_new() -> *mut TankCancel {
    std::panic::catch_unwind(|| {
        Box::into_raw(Box::new(TankCancel {
            token: Cancel::new(),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Ends every call using `c`, now and later, with `TANK_ERR_CANCELLED`
/// (within 500 ms, whatever the call is waiting for). Idempotent; NULL is a
/// no-op. A call that has already returned is not affected.
///
/// # Safety
/// `c` is NULL or a pointer from `tank_cancel_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tank_cancel_trigger(c: *mut TankCancel) {
    if let Some(c) = c.as_ref() {
        c.token.cancel();
    }
}

/// Frees the switch. NULL is a no-op. Calls still using it keep it alive
/// (and can still be cancelled by nobody), so this never waits.
///
/// # Safety
/// `c` is NULL or a pointer from `tank_cancel_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tank_cancel_free(c: *mut TankCancel) {
    if !c.is_null() {
        drop(Box::from_raw(c));
    }
}
