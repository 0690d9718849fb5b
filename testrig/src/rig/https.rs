//! The https registries' TLS: the certificate each serves (and, for the
//! mutual-TLS one, the client CA it demands), and the `certs.d` directory
//! clients read to trust them.

use std::path::Path;

use anyhow::{Context, Result};

use crate::registry::{RegistryProcess, ServeTls};
use crate::tls::{self, Authority, ClientIdentity};
use crate::which::Which;

/// How `which` serves https; `None` for an http registry.
pub(super) fn serve_tls(
    which: Which,
    authority: Option<&Authority>,
    identity: Option<&ClientIdentity>,
) -> Result<Option<ServeTls>> {
    let Some(a) = authority.filter(|_| which.is_tls()) else {
        return Ok(None);
    };
    let identity = match which {
        Which::TlsClientCert => {
            Some(identity.context("the mutual-TLS registry needs the client identity")?)
        }
        _ => None,
    };
    Ok(Some(ServeTls {
        cert: a.cert.clone(),
        key: a.key.clone(),
        client_ca: identity.map(|id| id.ca_pem.clone()),
        client: a.client_config(identity)?,
    }))
}

/// `<dir>/<host:port>/ca.crt` for every https registry, by IP and by name;
/// the mutual-TLS one's also gets `client.cert` and `client.key`.
pub(super) fn write_certs_dir(
    dir: &Path,
    registries: &[(Which, RegistryProcess)],
    authority: &Authority,
    identity: Option<&ClientIdentity>,
) -> Result<()> {
    for (which, process) in registries.iter().filter(|(w, _)| w.is_tls()) {
        let port = process.addr().rsplit(':').next().unwrap_or_default();
        let identity = identity.filter(|_| *which == Which::TlsClientCert);
        for host in ["127.0.0.1", "localhost"] {
            tls::write_certs_dir_entry(
                dir,
                &format!("{host}:{port}"),
                &authority.ca_pem,
                identity,
            )?;
        }
    }
    Ok(())
}
