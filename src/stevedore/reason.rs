//! Why a call failed, as a stable snake_case id: the `reason` of every
//! [`Error`](super::Error), handed to C by `tank_error_reason`, to Go as
//! `Error.Reason` and to Elixir as an atom. The ids are written once, in
//! `reason_list.rs`, which also writes include/tank.h's table of them,
//! grouped by the [`ErrorKind`] (the C status) that carries each.

use std::fmt;

/// What class of failure happened; each kind is one C status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An argument was rejected before any request was sent.
    BadInput,
    /// The final answer to a request to the registry was an HTTP error status.
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

/// Defines [`Reason`] from the list: a variant per id, its id, and the kind
/// that carries it (the group it is listed under).
macro_rules! reasons {
    ($( $kind:ident { $( $variant:ident = $id:literal : $doc:literal; )* } )*) => {
        /// Why a call failed. Each reason belongs to one [`ErrorKind`], and
        /// its [`id`](Reason::id) never changes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(
                #[doc = concat!("`", $id, "`: ", $doc, ".")]
                $variant,
            )*)*
        }

        impl Reason {
            /// Every reason, grouped by kind as include/tank.h lists them.
            pub const ALL: &'static [Reason] = &[$($(Reason::$variant,)*)*];

            /// The published snake_case id, e.g. `"http_status"`.
            pub const fn id(self) -> &'static str {
                match self {
                    $($(Reason::$variant => $id,)*)*
                }
            }

            /// The kind, hence the C status, an error with this reason has.
            pub const fn kind(self) -> ErrorKind {
                match self {
                    $($(Reason::$variant => ErrorKind::$kind,)*)*
                }
            }
        }
    };
}

include!("reason_list.rs");

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for r in Reason::ALL {
            let id = r.id();
            assert!(seen.insert(id), "{id} twice");
            assert!(
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{id}"
            );
        }
    }

    #[test]
    fn the_published_ids_stay() {
        // A sample across kinds, spelled as C, Go and Elixir callers spell them.
        for (r, id, kind) in [
            (Reason::BadInput, "bad_input", ErrorKind::BadInput),
            (Reason::HttpStatus, "http_status", ErrorKind::Http),
            (
                Reason::ConnectionReset,
                "connection_reset",
                ErrorKind::Transport,
            ),
            (
                Reason::TokenRequestFailed,
                "token_request_failed",
                ErrorKind::Auth,
            ),
            (
                Reason::RangeNotHonoured,
                "range_not_honoured",
                ErrorKind::Protocol,
            ),
            (Reason::OutOfMemory, "out_of_memory", ErrorKind::Internal),
            (Reason::DiffIdMismatch, "diff_id_mismatch", ErrorKind::Layer),
        ] {
            assert_eq!((r.id(), r.kind()), (id, kind));
            assert_eq!(r.to_string(), id);
        }
        // Ids are added, never taken away: 36 were published by issue 21.
        assert!(Reason::ALL.len() >= 36);
    }
}
