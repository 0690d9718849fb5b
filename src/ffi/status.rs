use crate::stevedore::error::ErrorKind;
use std::ffi::{c_char, CStr};

/// What a fallible call returns. Codes are never renumbered; a retired code
/// stays reserved.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TankStatus {
    TANK_OK = 0,
    /// An argument was rejected before any request (reason `bad_input`).
    TANK_ERR_BAD_INPUT = 1,
    /// The final answer was an HTTP error status (reason `http_status`;
    /// `tank_error_http_status` gives it).
    TANK_ERR_HTTP = 2,
    /// Bytes did not hash to their digest (`digest_mismatch` for a blob,
    /// `manifest_digest_mismatch` for a manifest).
    TANK_ERR_DIGEST_MISMATCH = 3,
    /// Connect, reset, timeout, TLS, or an unusable redirect.
    TANK_ERR_TRANSPORT = 4,
    /// The bearer-token handshake failed.
    TANK_ERR_AUTH = 5,
    /// The registry broke the protocol (bad JSON, bad headers, sizes).
    TANK_ERR_PROTOCOL = 6,
    /// A bug caught at the boundary, or the runtime could not run the call.
    TANK_ERR_INTERNAL = 7,
    /// The caller cancelled the call through its `TankCancel` (reason
    /// `cancelled`).
    TANK_ERR_CANCELLED = 8,
    /// A local file or directory could not be read or written (reason
    /// `io`); the message names the path and the OS error.
    TANK_ERR_IO = 9,
    /// A layer cannot be applied to a root filesystem (reasons
    /// `unsafe_path`, `bad_layer`, `diff_id_mismatch`,
    /// `unsupported_media_type`); the message names the layer and the entry.
    TANK_ERR_LAYER = 10,
}

impl TankStatus {
    pub fn of(kind: ErrorKind) -> TankStatus {
        match kind {
            ErrorKind::BadInput => TankStatus::TANK_ERR_BAD_INPUT,
            ErrorKind::Http => TankStatus::TANK_ERR_HTTP,
            ErrorKind::DigestMismatch => TankStatus::TANK_ERR_DIGEST_MISMATCH,
            ErrorKind::Transport => TankStatus::TANK_ERR_TRANSPORT,
            ErrorKind::Auth => TankStatus::TANK_ERR_AUTH,
            ErrorKind::Protocol => TankStatus::TANK_ERR_PROTOCOL,
            ErrorKind::Internal => TankStatus::TANK_ERR_INTERNAL,
            ErrorKind::Cancelled => TankStatus::TANK_ERR_CANCELLED,
            ErrorKind::Io => TankStatus::TANK_ERR_IO,
            ErrorKind::Layer => TankStatus::TANK_ERR_LAYER,
        }
    }
}

/// Names every variant of [`TankStatus`] once: `ALL` lists them and `name`
/// spells each as its variant. `name`'s match is exhaustive, so a status
/// added to the enum and not here does not compile. (cbindgen reads the
/// enum itself, which a macro could not define for it.)
macro_rules! every_status {
    ($($status:ident,)*) => {
        impl TankStatus {
            /// Every status, in code order.
            pub const ALL: &'static [TankStatus] = &[$(TankStatus::$status,)*];

            /// The C name of the status, e.g. "TANK_ERR_HTTP".
            pub const fn name(self) -> &'static CStr {
                let name: &'static str = match self {
                    $(TankStatus::$status => concat!(stringify!($status), "\0"),)*
                };
                match CStr::from_bytes_with_nul(name.as_bytes()) {
                    Ok(name) => name,
                    Err(_) => panic!("a status name has a NUL inside"),
                }
            }
        }
    };
}

every_status! {
    TANK_OK,
    TANK_ERR_BAD_INPUT,
    TANK_ERR_HTTP,
    TANK_ERR_DIGEST_MISMATCH,
    TANK_ERR_TRANSPORT,
    TANK_ERR_AUTH,
    TANK_ERR_PROTOCOL,
    TANK_ERR_INTERNAL,
    TANK_ERR_CANCELLED,
    TANK_ERR_IO,
    TANK_ERR_LAYER,
}

/// The name of a status code ("TANK_ERR_HTTP"), or "TANK_UNKNOWN_STATUS"
/// for a value that is not one. Takes a plain integer so any value from C
/// is safe. Static; never free it.
#[no_mangle]
pub extern "C" fn tank_status_name(status: u32) -> *const c_char {
    TankStatus::ALL
        .iter()
        .find(|s| **s as u32 == status)
        .map_or(UNKNOWN_STATUS, |s| s.name().to_bytes_with_nul())
        .as_ptr()
        .cast()
}

const UNKNOWN_STATUS: &[u8] = b"TANK_UNKNOWN_STATUS\0";

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn name_of(code: u32) -> &'static str {
        unsafe { CStr::from_ptr(tank_status_name(code)) }
            .to_str()
            .unwrap()
    }

    #[test]
    fn every_status_is_named_as_its_variant() {
        for (code, status) in TankStatus::ALL.iter().enumerate() {
            assert_eq!(*status as u32, code as u32, "ALL is in code order");
            assert_eq!(name_of(code as u32), format!("{status:?}"));
        }
        assert_eq!(name_of(0), "TANK_OK");
        assert_eq!(name_of(2), "TANK_ERR_HTTP");
        assert_eq!(name_of(10), "TANK_ERR_LAYER");
    }

    #[test]
    fn other_codes_are_unknown() {
        for code in [11, 12, 100, u32::MAX] {
            assert_eq!(name_of(code), "TANK_UNKNOWN_STATUS");
        }
    }

    #[test]
    fn every_kind_has_a_named_status() {
        for reason in crate::stevedore::Reason::ALL {
            let status = TankStatus::of(reason.kind());
            assert!(TankStatus::ALL.contains(&status), "{status:?}");
        }
    }
}
