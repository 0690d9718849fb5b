use std::sync::Arc;
use std::time::Duration;

use crate::stevedore::TokenCache;

/// A bearer-token cache shared by the calls of one pull. Opaque and
/// thread-safe: many threads may use one cache at once. Free it with
/// `tank_cache_free` once no call is using it.
pub struct TankCache {
    pub(crate) tokens: Arc<TokenCache>,
}

impl TankCache {
    /// The cache a call should use; a NULL handle means no caching.
    ///
    /// # Safety
    /// `cache` is NULL or a live pointer from `tank_cache_new*`.
    pub(crate) unsafe fn shared(cache: *const TankCache) -> Option<Arc<TokenCache>> {
        cache.as_ref().map(|c| c.tokens.clone())
    }
}

/// A cache whose tokens live at most 60 s (less if the issuer says so).
/// Returns NULL only if allocation fails.
#[no_mangle]
pub extern "C" fn tank_cache_new() -> *mut TankCache {
    tank_cache_new_with_ttl(60_000)
}

/// A cache whose tokens live at most `ttl_ms` milliseconds (less if the
/// issuer says so; 0 caches nothing).
#[no_mangle]
pub extern "C" fn tank_cache_new_with_ttl(ttl_ms: u64) -> *mut TankCache {
    std::panic::catch_unwind(|| {
        Box::into_raw(Box::new(TankCache {
            tokens: Arc::new(TokenCache::new(Duration::from_millis(ttl_ms))),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Frees a cache. NULL is a no-op. Calls still running with it keep their
/// own reference, so this never waits and never pulls memory from under
/// them.
///
/// # Safety
/// `cache` is NULL or a pointer from `tank_cache_new*`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_free(cache: *mut TankCache) {
    if !cache.is_null() {
        drop(Box::from_raw(cache));
    }
}
