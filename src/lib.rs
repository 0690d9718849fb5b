//! Tank pulls OCI and Docker images from registries. The async core lives in
//! [`stevedore`]; [`runtime`] drives it from blocking callers; [`ffi`] is the
//! C ABI declared in `include/tank.h`.

pub mod ffi;
pub mod runtime;
pub mod stevedore;
