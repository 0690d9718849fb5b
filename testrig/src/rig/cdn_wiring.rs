//! The CDN: started when a registry redirects its blob reads to it, and the
//! address the redirecting registries' configs name.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::options::RigOptions;
use crate::cdn::{CdnConfig, CdnLog, CdnServer};
use crate::which::Which;

/// The cdn registry and the https redirecting one (started with `tls`) send
/// blob reads to it; no other rig needs one.
pub(super) fn start_cdn(
    opts: &RigOptions,
    root: &Path,
    log: &Arc<CdnLog>,
) -> Result<Option<CdnServer>> {
    if opts.cdn || opts.tls {
        let config = CdnConfig {
            challenges: opts.cdn_challenges,
            rate_per_connection: opts.cdn_rate_per_connection,
            ranges: opts.cdn_ranges,
            url_expiry: opts.cdn_url_expiry,
        };
        Ok(Some(CdnServer::start(
            root.join("cdn"),
            Arc::clone(log),
            &config,
        )?))
    } else {
        Ok(None)
    }
}

/// The redirect middleware's `baseurl` for a registry that sends its blob
/// reads to the CDN; `None` for one that serves them itself.
pub(super) fn redirect_url(cdn: Option<&CdnServer>, which: Which) -> Option<String> {
    // distribution 2.8 keeps only scheme and host of `baseurl` and
    // appends the storage driver path (/docker/registry/v2/...).
    match (cdn, which) {
        (Some(c), Which::Cdn | Which::TlsRedirect) => Some(format!("{}/", c.base_url())),
        _ => None,
    }
}
