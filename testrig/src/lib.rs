//! A rig of real servers on 127.0.0.1 for Tank's tests and benchmarks.
//!
//! [`Rig::start`] runs CNCF distribution registries (`docker-registry
//! serve`, Debian's 2.8.2) in a temp dir, the token issuers the protected
//! ones trust, and a CDN for the ones that redirect their blob reads, then
//! pushes the same fixtures into each through the registry's own push API.
//! By default five: plain, token and cdn over http, and two https ones (one
//! plain, one that redirects blob reads to the http CDN) that serve the
//! plain registry's storage with a certificate signed by a CA the rig makes
//! at start. On request ([`RigOptions`]): `basic`, a registry with
//! `auth: htpasswd` (bcrypt); `client_cert`, an https registry that demands
//! a client certificate (mutual TLS); `tls_token`, an https registry whose
//! token realm is plain http; `mirrors`, a pull-through cache (distribution
//! in proxy mode, its own token realm) in front of the token registry, an
//! empty registry, one whose blobs a test may spoil, and a port that
//! refuses connections ([`RigInfo::pull_through`],
//! [`RigInfo::faulty_mirrors`]; [`Rig::stop_registry`] stops the upstream
//! alone). The token registries also hold the standard
//! fixtures under `private/...`, which only the user in
//! [`RigInfo::private`] (by password or identity token; the issuers also
//! answer OAuth2 POSTs) may pull. Everything is stopped, and the temp dir
//! removed, when the [`Rig`] is dropped.
//!
//! ```no_run
//! use tank_testrig::{Rig, RigOptions, Which};
//!
//! let rig = Rig::start(RigOptions::default())?;
//! let image = &rig.info().images.oci_image;
//! let url = format!(
//!     "http://{}/v2/{}/manifests/{}",
//!     rig.registry(Which::Token),
//!     image.repo,
//!     image.tag
//! );
//! // ... pull `url` with the client under test, then check the handshakes:
//! assert_eq!(rig.token_requests().len(), 1);
//! # let _ = url;
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! The CDN can act like the ones in front of real registries
//! ([`RigOptions`]): a rate cap per TCP connection
//! (`cdn_rate_per_connection`), `Range` honoured, ignored, answered with a
//! wrong `Content-Range` or refused (`cdn_ranges`, [`Rig::set_cdn_ranges`]), URLs that
//! expire (`cdn_url_expiry`, [`Rig::expire_cdn_urls`]) and bodies cut
//! mid-way ([`Rig::cut_cdn_bodies`]); [`Rig::cdn_requests`] tells per
//! request the connection, the range asked, the status and the extent sent.
//!
//! Large generated layers (`large_mib`, `many_layers`) are hard-linked into
//! every registry's storage rather than uploaded (see `TANK_RIG_UPLOAD_LARGE`
//! in the binary's help): overwrite one of *those* files in place and all
//! three registries see the change.
//!
//! A rig kept in a `static` is never dropped: its registries then die with the
//! test process (they are spawned with `PR_SET_PDEATHSIG`), and its temp dir
//! (under /dev/shm by default) is removed by the next rig that starts.

mod accesslog;
mod cdn;
mod fixtures;
mod generate;
mod info;
mod push;
mod random;
mod registry;
mod rig;
mod serve;
mod sockets;
mod timefmt;
mod tls;
mod token;
mod which;
mod workdir;

pub use accesslog::RegistryRequest;
pub use cdn::{parse_rate, CdnRanges, CdnRequest, CDN_RANGES_NAMES};
pub use info::{
    BasicAuthInfo, BasicRegistryInfo, CdnRegistryInfo, FaultyMirrorsInfo, ImageInfo, Images,
    IndexEntryInfo, IndexInfo, PlainRegistryInfo, PrivateInfo, PullThroughInfo, RigInfo,
    TlsRegistryInfo, TlsTokenRegistryInfo, TokenRegistryInfo,
};
pub use rig::{Rig, RigOptions, Upload};
pub use sockets::client_sockets_to;
pub use token::TokenRequest;
pub use which::Which;
