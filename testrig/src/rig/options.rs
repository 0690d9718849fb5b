//! Which registries a rig runs and what it loads into them, and which
//! combinations make sense.

use std::time::Duration;

use anyhow::{bail, Result};

use crate::cdn::CdnRanges;
use crate::which::Which;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RigOptions {
    pub plain: bool,
    pub token: bool,
    pub cdn: bool,
    /// Both https registries (`Tls`, `TlsRedirect`); needs `plain`, whose
    /// storage they serve, and starts the CDN.
    pub tls: bool,
    /// The htpasswd registry (`Which::Basic`).
    pub basic: bool,
    /// The mutual-TLS registry (`Which::TlsClientCert`); needs `tls`.
    pub client_cert: bool,
    /// The https token registry with an http realm (`Which::TlsToken`);
    /// needs `tls` and `token`.
    pub tls_token: bool,
    /// The mirrors (needs `token`): the pull-through cache in front of the
    /// token registry (`Which::PullThrough`), the empty one
    /// (`Which::EmptyMirror`), the one whose blobs a test may spoil
    /// (`Which::WrongBlob`), and a port that refuses every connection
    /// ([`Rig::dead_mirror`](crate::Rig::dead_mirror)).
    pub mirrors: bool,
    /// Start the CDN with its own Bearer challenges on (see
    /// [`Rig::set_cdn_challenges`](crate::Rig::set_cdn_challenges)).
    pub cdn_challenges: bool,
    /// Paces the body bytes of each TCP connection to the CDN to at most
    /// this many bytes a second, as real CDNs cap a stream (`None`: as fast
    /// as loopback goes).
    pub cdn_rate_per_connection: Option<u64>,
    /// How the CDN answers `Range` (also [`Rig::set_cdn_ranges`](crate::Rig::set_cdn_ranges)).
    pub cdn_ranges: CdnRanges,
    /// CDN blob URLs expire this long after they are issued: the CDN
    /// answers the registry's redirect with a 307 to a signed URL, and 403
    /// to that URL once it is this old (zero: at once), or after
    /// [`Rig::expire_cdn_urls`](crate::Rig::expire_cdn_urls). `None`: no
    /// signing hop, URLs never expire.
    pub cdn_url_expiry: Option<Duration>,
    /// Adds `tank/large:v1`, one layer of this many MiB.
    pub large_mib: Option<u64>,
    /// Adds `tank/many:v1`: (count, MiB each) layers.
    pub many_layers: Option<(usize, u64)>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            plain: true,
            token: true,
            cdn: true,
            tls: true,
            basic: false,
            client_cert: false,
            tls_token: false,
            mirrors: false,
            cdn_challenges: false,
            cdn_rate_per_connection: None,
            cdn_ranges: CdnRanges::Honour,
            cdn_url_expiry: None,
            large_mib: None,
            many_layers: None,
        }
    }
}

impl RigOptions {
    /// `many_layers` for benchmarks when no shape is given: 50 × 1 MiB.
    pub const DEFAULT_MANY_LAYERS: (usize, u64) = (50, 1);

    pub fn plain_only() -> Self {
        Self::only(Which::Plain)
    }

    pub fn token_only() -> Self {
        Self::only(Which::Token)
    }

    pub fn cdn_only() -> Self {
        Self::only(Which::Cdn)
    }

    /// The https registries, and the plain one whose storage they serve.
    pub fn tls_only() -> Self {
        RigOptions {
            tls: true,
            ..Self::plain_only()
        }
    }

    /// The htpasswd registry alone.
    pub fn basic_only() -> Self {
        RigOptions {
            plain: false,
            basic: true,
            ..Self::plain_only()
        }
    }

    /// The https registries, the mutual-TLS one included, and the plain one
    /// whose storage they serve.
    pub fn client_cert_only() -> Self {
        RigOptions {
            client_cert: true,
            ..Self::tls_only()
        }
    }

    /// The token registry and the mirrors in front of it.
    pub fn mirrors_only() -> Self {
        RigOptions {
            mirrors: true,
            ..Self::token_only()
        }
    }

    /// Every registry the rig has, every one of them on.
    pub fn everything() -> Self {
        RigOptions {
            basic: true,
            client_cert: true,
            tls_token: true,
            mirrors: true,
            ..RigOptions::default()
        }
    }

    fn only(which: Which) -> Self {
        RigOptions {
            plain: which == Which::Plain,
            token: which == Which::Token,
            cdn: which == Which::Cdn,
            tls: false,
            basic: false,
            client_cert: false,
            tls_token: false,
            mirrors: false,
            ..RigOptions::default()
        }
    }

    /// The registries asked for, in [`Which::ALL`] order; an error for a
    /// combination the rig cannot start.
    pub(super) fn wanted(&self) -> Result<Vec<Which>> {
        let wanted: Vec<Which> = Which::ALL.into_iter().filter(|w| self.wants(*w)).collect();
        if wanted.is_empty() {
            bail!("RigOptions asks for no registry at all");
        }
        if self.tls && !self.plain {
            bail!("RigOptions.tls needs plain: the https registries serve its storage");
        }
        if self.client_cert && !self.tls {
            bail!("RigOptions.client_cert needs tls (and plain, whose storage it serves)");
        }
        if self.tls_token && !(self.tls && self.token) {
            bail!(
                "RigOptions.tls_token needs tls and token: it serves the token registry's storage"
            );
        }
        if self.mirrors && !self.token {
            bail!("RigOptions.mirrors needs token: the pull-through cache is in front of it");
        }
        Ok(wanted)
    }

    fn wants(&self, which: Which) -> bool {
        match which {
            Which::Plain => self.plain,
            Which::Token => self.token,
            Which::Cdn => self.cdn,
            Which::Tls | Which::TlsRedirect => self.tls,
            Which::Basic => self.basic,
            Which::TlsClientCert => self.client_cert,
            Which::TlsToken => self.tls_token,
            Which::PullThrough | Which::EmptyMirror | Which::WrongBlob => self.mirrors,
        }
    }
}
