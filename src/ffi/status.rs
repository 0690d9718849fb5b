use crate::stevedore::error::ErrorKind;
use std::ffi::c_char;

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

/// The name of a status code ("TANK_ERR_HTTP"), or "TANK_UNKNOWN_STATUS"
/// for a value that is not one. Takes a plain integer so any value from C
/// is safe. Static; never free it.
#[no_mangle]
pub extern "C" fn tank_status_name(status: u32) -> *const c_char {
    let name: &'static str = match status {
        0 => "TANK_OK\0",
        1 => "TANK_ERR_BAD_INPUT\0",
        2 => "TANK_ERR_HTTP\0",
        3 => "TANK_ERR_DIGEST_MISMATCH\0",
        4 => "TANK_ERR_TRANSPORT\0",
        5 => "TANK_ERR_AUTH\0",
        6 => "TANK_ERR_PROTOCOL\0",
        7 => "TANK_ERR_INTERNAL\0",
        8 => "TANK_ERR_CANCELLED\0",
        9 => "TANK_ERR_IO\0",
        10 => "TANK_ERR_LAYER\0",
        _ => "TANK_UNKNOWN_STATUS\0",
    };
    name.as_ptr().cast()
}
