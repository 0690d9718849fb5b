//! Names for the rig's registries, shared by the rig's wiring and the token
//! issuer (which logs which registry's realm was asked).

use serde::{Deserialize, Serialize};

/// One of the rig's registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// No auth.
    Plain,
    /// Bearer token auth; `private/*` repositories only alice may pull
    /// (see [`crate::PrivateInfo`]).
    Token,
    /// As `Token`, blob reads redirected (307) to the CDN.
    Cdn,
    /// https (HTTP/2 by ALPN), no auth, the plain registry's storage.
    Tls,
    /// As `Tls`, but blob reads are redirected (307) to the CDN's `http://`
    /// URL: a redirect from https to http that clients must refuse.
    TlsRedirect,
    /// htpasswd (bcrypt) Basic auth, its own storage with every fixture.
    Basic,
    /// As `Tls` (the plain registry's storage), but the TLS handshake
    /// requires a client certificate signed by the rig's client CA.
    TlsClientCert,
    /// https with Bearer token auth whose realm is plain `http://`: the
    /// token registry's storage, its own issuer.
    TlsToken,
    /// A pull-through cache: distribution in proxy mode (`proxy:
    /// remoteurl:`) in front of `Token`, which it logs in to as the rig's
    /// own user. Its own storage (empty at start), its own issuer, and its
    /// own password for alice (see [`crate::PullThroughInfo`]).
    PullThrough,
    /// A mirror with nothing in it: 404 for every manifest and blob.
    EmptyMirror,
    /// A mirror holding every fixture, whose blob files a test may
    /// overwrite ([`crate::Rig::serve_wrong_bytes`]): distribution serves
    /// them as they are, without hashing them again.
    WrongBlob,
}

impl Which {
    pub const ALL: [Which; 11] = [
        Which::Plain,
        Which::Token,
        Which::Cdn,
        Which::Tls,
        Which::TlsRedirect,
        Which::Basic,
        Which::TlsClientCert,
        Which::TlsToken,
        Which::PullThrough,
        Which::EmptyMirror,
        Which::WrongBlob,
    ];

    /// `plain`, `token`, `cdn`, `tls`, `tls-redirect`, `basic`,
    /// `tls-client-cert`, `tls-token`, `pull-through`, `empty-mirror` or
    /// `wrong-blob`.
    pub fn name(self) -> &'static str {
        match self {
            Which::Plain => "plain",
            Which::Token => "token",
            Which::Cdn => "cdn",
            Which::Tls => "tls",
            Which::TlsRedirect => "tls-redirect",
            Which::Basic => "basic",
            Which::TlsClientCert => "tls-client-cert",
            Which::TlsToken => "tls-token",
            Which::PullThrough => "pull-through",
            Which::EmptyMirror => "empty-mirror",
            Which::WrongBlob => "wrong-blob",
        }
    }

    /// Whether it serves https.
    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Which::Tls | Which::TlsRedirect | Which::TlsClientCert | Which::TlsToken
        )
    }

    /// Whether Bearer tokens from the rig's issuers guard it.
    pub fn is_token(self) -> bool {
        matches!(
            self,
            Which::Token | Which::Cdn | Which::TlsToken | Which::PullThrough
        )
    }

    /// Whether the fixtures are pushed into it: not the https ones (they
    /// serve another's storage), not the pull-through cache (it fills
    /// itself from its upstream, and refuses pushes), not the empty mirror.
    pub(crate) fn gets_fixtures(self) -> bool {
        !self.is_tls() && !matches!(self, Which::PullThrough | Which::EmptyMirror)
    }

    /// The storage dir's name: the https registries serve another's.
    pub(crate) fn storage_name(self) -> &'static str {
        match self {
            Which::TlsToken => Which::Token.name(),
            w if w.is_tls() => Which::Plain.name(),
            w => w.name(),
        }
    }
}
