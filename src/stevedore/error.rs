//! The one error type of the core. The C layer maps [`ErrorKind`] to its
//! status codes and hands `reason` out as a stable identifier, so a reason
//! string, once published, never changes meaning.

use std::fmt;

/// What class of failure happened; each kind is one C status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An argument was rejected before any request was sent.
    BadInput,
    /// The final answer to a manifest or blob request was an HTTP error status.
    Http,
    /// Bytes did not hash to the digest they were supposed to have.
    DigestMismatch,
    /// Connect, reset, timeout, TLS, or an unusable redirect.
    Transport,
    /// The bearer-token handshake could not produce a usable token.
    Auth,
    /// The registry answered something that breaks the protocol.
    Protocol,
    /// A bug caught at the boundary, or the runtime could not run the call.
    Internal,
    /// The caller cancelled the call.
    Cancelled,
    /// A local file or directory could not be read or written.
    Io,
    /// A layer cannot be applied to a root filesystem.
    Layer,
}

/// Stable reason identifiers. Each one belongs to exactly one [`ErrorKind`];
/// `include/tank.h` lists them for C programmers.
pub mod reason {
    pub const BAD_INPUT: &str = "bad_input";
    pub const HTTP_STATUS: &str = "http_status";
    pub const DIGEST_MISMATCH: &str = "digest_mismatch";
    pub const MANIFEST_DIGEST_MISMATCH: &str = "manifest_digest_mismatch";
    pub const CONNECT: &str = "connect";
    pub const TIMEOUT: &str = "timeout";
    pub const CONNECTION_RESET: &str = "connection_reset";
    pub const TLS: &str = "tls";
    pub const REQUEST_FAILED: &str = "request_failed";
    pub const TOO_MANY_REDIRECTS: &str = "too_many_redirects";
    pub const INSECURE_REDIRECT: &str = "insecure_redirect";
    pub const INVALID_REDIRECT: &str = "invalid_redirect";
    pub const PROXY: &str = "proxy";
    pub const TOKEN_REQUEST_FAILED: &str = "token_request_failed";
    pub const NO_TOKEN_IN_RESPONSE: &str = "no_token_in_response";
    pub const MISSING_REALM: &str = "missing_realm";
    pub const INVALID_REALM: &str = "invalid_realm";
    pub const INVALID_MANIFEST_JSON: &str = "invalid_manifest_json";
    pub const INVALID_CONTENT_DIGEST_HEADER: &str = "invalid_content_digest_header";
    pub const MANIFEST_TOO_LARGE: &str = "manifest_too_large";
    pub const LENGTH_MISMATCH: &str = "length_mismatch";
    /// A blob longer than the caller's in-memory limit.
    pub const TOO_LARGE: &str = "too_large";
    /// A registry answered a `Range` request with bytes from somewhere
    /// else, again and again.
    pub const RANGE_NOT_HONOURED: &str = "range_not_honoured";
    pub const OUT_OF_MEMORY: &str = "out_of_memory";
    pub const PANIC: &str = "panic";
    pub const RUNTIME: &str = "runtime";
    pub const CANCELLED: &str = "cancelled";
    pub const IO: &str = "io";
    pub const NO_MATCHING_PLATFORM: &str = "no_matching_platform";
    pub const AUTH_CONFIG: &str = "auth_config";
    pub const CERTIFICATE: &str = "certificate";
    pub const CREDENTIAL_HELPER: &str = "credential_helper";
    /// A layer entry (or whiteout, or link target) would land outside the root.
    pub const UNSAFE_PATH: &str = "unsafe_path";
    /// Not a tar, a corrupt or truncated stream, a header tank refuses.
    pub const BAD_LAYER: &str = "bad_layer";
    /// The uncompressed layer does not hash to the config's `rootfs.diff_ids` entry.
    pub const DIFF_ID_MISMATCH: &str = "diff_id_mismatch";
    /// A layer media type tank cannot apply.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
}

/// Which request to the registry an error answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v2/<repo>/manifests/<tag or digest>`
    Manifest,
    /// `GET /v2/<repo>/blobs/<digest>`
    Blob,
}

/// A failed call: its kind, a stable reason id, a message naming the URL or
/// input at fault, and the HTTP status and body excerpt when there was one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub reason: &'static str,
    pub message: String,
    pub http_status: Option<u16>,
    /// The request the registry refused, for `Http` errors.
    pub endpoint: Option<Endpoint>,
    pub body: Option<String>,
    /// The file or directory at fault, for `Io` errors.
    pub path: Option<std::path::PathBuf>,
    /// The platforms an index has, for `no_matching_platform` errors.
    pub platforms: Vec<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, reason: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            reason,
            message: message.into(),
            http_status: None,
            endpoint: None,
            body: None,
            path: None,
            platforms: Vec::new(),
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, reason::BAD_INPUT, message)
    }

    /// The registry answered the request for `endpoint` at `url` with the
    /// error `status`.
    pub fn http(endpoint: Endpoint, status: u16, url: &str, body: Option<String>) -> Self {
        Error {
            http_status: Some(status),
            endpoint: Some(endpoint),
            body,
            ..Self::new(
                ErrorKind::Http,
                reason::HTTP_STATUS,
                format!("{url} answered HTTP {status}"),
            )
        }
    }

    pub fn transport(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transport, reason, message)
    }

    pub fn auth(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, reason, message)
    }

    pub fn protocol(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, reason, message)
    }

    pub fn internal(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, reason, message)
    }

    /// A layer that cannot be applied; `reason` is one of `unsafe_path`,
    /// `bad_layer`, `diff_id_mismatch`, `unsupported_media_type`.
    pub fn layer(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Layer, reason, message)
    }

    pub fn cancelled() -> Self {
        Self::new(
            ErrorKind::Cancelled,
            reason::CANCELLED,
            "the call was cancelled",
        )
    }

    /// `what` names the operation ("creating", "writing"), `path` the file
    /// or directory the OS refused.
    pub fn io(what: &str, path: &std::path::Path, e: &std::io::Error) -> Self {
        let mut err = Self::new(
            ErrorKind::Io,
            reason::IO,
            format!("{what} {}: {e}", path.display()),
        );
        err.path = Some(path.to_path_buf());
        err
    }

    /// An index with no image for the platform asked for; `platforms` are
    /// the ones it has.
    pub fn no_matching_platform(message: String, platforms: Vec<String>) -> Self {
        let mut err = Self::new(ErrorKind::BadInput, reason::NO_MATCHING_PLATFORM, message);
        err.platforms = platforms;
        err
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_body(mut self, body: Option<String>) -> Self {
        self.body = body;
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.reason)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
