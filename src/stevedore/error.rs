//! The one error type of the core. The C layer maps [`ErrorKind`] to its
//! status codes and hands the [`Reason`]'s id out as a stable identifier, so
//! a reason id, once published, never changes meaning.

use std::fmt;

pub use super::reason::{ErrorKind, Reason};

/// Which request to the registry an error answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v2/<repo>/manifests/<tag or digest>`
    Manifest,
    /// `GET /v2/<repo>/blobs/<digest>`
    Blob,
    /// `GET /v2/<repo>/tags/list`, any page
    Tags,
    /// `GET /v2/_catalog`, any page
    Catalog,
    /// `GET /v2/<repo>/referrers/<digest>`
    Referrers,
}

/// A failed call: its kind, a stable reason id, a message naming the URL or
/// input at fault, and the HTTP status and body excerpt when there was one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub reason: Reason,
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
    pub fn new(kind: ErrorKind, reason: Reason, message: impl Into<String>) -> Self {
        debug_assert_eq!(kind, reason.kind(), "{reason} belongs to another kind");
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
        Self::new(ErrorKind::BadInput, Reason::BadInput, message)
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
                Reason::HttpStatus,
                format!("{url} answered HTTP {status}"),
            )
        }
    }

    pub fn transport(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transport, reason, message)
    }

    pub fn auth(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, reason, message)
    }

    pub fn protocol(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, reason, message)
    }

    pub fn internal(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, reason, message)
    }

    /// A layer that cannot be applied; `reason` is one of the
    /// [`ErrorKind::Layer`] reasons.
    pub fn layer(reason: Reason, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Layer, reason, message)
    }

    pub fn cancelled() -> Self {
        Self::new(
            ErrorKind::Cancelled,
            Reason::Cancelled,
            "the call was cancelled",
        )
    }

    /// `what` names the operation ("creating", "writing"), `path` the file
    /// or directory the OS refused.
    pub fn io(what: &str, path: &std::path::Path, e: &std::io::Error) -> Self {
        let mut err = Self::new(
            ErrorKind::Io,
            Reason::Io,
            format!("{what} {}: {e}", path.display()),
        );
        err.path = Some(path.to_path_buf());
        err
    }

    /// An index with no image for the platform asked for; `platforms` are
    /// the ones it has.
    pub fn no_matching_platform(message: String, platforms: Vec<String>) -> Self {
        let mut err = Self::new(ErrorKind::BadInput, Reason::NoMatchingPlatform, message);
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
