//! What each registry's config says: its storage, config and log paths, its
//! auth, its redirect to the CDN and its TLS. `crate::registry` turns a
//! setup into the YAML file and the process.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::basic::BasicUser;
use super::cdn_wiring::redirect_url;
use super::https::serve_tls;
use super::issuers::{issuer_of, Issuer};
use crate::cdn::CdnServer;
use crate::random::random_hex;
use crate::registry::RegistrySetup;
use crate::tls::{Authority, ClientIdentity};
use crate::which::Which;

/// What [`registry_setups`] reads: the servers and credentials the
/// registries' configs point at.
pub(super) struct Inputs<'a> {
    pub(super) binary: PathBuf,
    pub(super) root: &'a Path,
    pub(super) issuers: &'a [Issuer],
    pub(super) cdn: Option<&'a CdnServer>,
    pub(super) authority: Option<&'a Authority>,
    pub(super) identity: Option<&'a ClientIdentity>,
    pub(super) basic: Option<&'a BasicUser>,
}

/// One setup per registry in `wanted`, in its order.
pub(super) fn registry_setups(
    wanted: &[Which],
    inputs: Inputs<'_>,
) -> Result<Vec<(Which, RegistrySetup)>> {
    let Inputs {
        binary,
        root,
        issuers,
        cdn,
        authority,
        identity,
        basic,
    } = inputs;
    // Upload sessions are signed with it; one value for all is fine.
    let secret = random_hex(16)?;
    let setups = wanted
        .iter()
        .map(|&which| {
            let name = which.name();
            let setup = RegistrySetup {
                name,
                binary: binary.clone(),
                storage: root.join(which.storage_name()),
                config_path: root.join(format!("{name}.yml")),
                log_path: root.join(format!("{name}.log")),
                secret: secret.clone(),
                token: issuer_of(issuers, which).map(Issuer::registry_config),
                htpasswd: basic
                    .filter(|_| which == Which::Basic)
                    .map(BasicUser::registry_config),
                redirect: redirect_url(cdn, which),
                tls: serve_tls(which, authority, identity)?,
                // See mirrors::make_proxy: it needs the upstream's address.
                proxy: None,
            };
            Ok((which, setup))
        })
        .collect::<Result<_>>()?;
    Ok(setups)
}
