//! TLS trust a cache adds to the system's and Mozilla's roots: CA files for
//! every registry or for one, and docker's and podman's certs directories
//! (`<dir>/<host[:port]>/*.crt` as CAs, `X.cert` + `X.key` as the client
//! certificate for mutual TLS).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;
use zeroize::Zeroizing;

use super::error::{Error, ErrorKind, Reason, Result};
use super::registry::{key_of, Registry};

/// The certs directories searched when the caller names none.
const DEFAULT_CERTS_DIRS: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// A client certificate chain and its key (wiped when dropped).
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Zeroizing<PrivateKeyDer<'static>>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: Zeroizing::new(self.key.clone_key()),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identity {{ {} certificates, key: <redacted> }}",
            self.chain.len()
        )
    }
}

#[derive(Debug, Default, Clone)]
struct RegistryTrust {
    cas: Vec<CertificateDer<'static>>,
    identity: Option<Identity>,
}

/// What one registry's connections trust and present.
#[derive(Debug, Default, Clone)]
pub struct TlsSettings {
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub identity: Option<Identity>,
}

#[derive(Debug, Default, Clone)]
pub struct Trust {
    everywhere: Vec<CertificateDer<'static>>,
    registries: HashMap<String, RegistryTrust>,
}

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::BadInput,
        Reason::Certificate,
        format!("{}: {why}", path.display()),
    )
}

/// The CA certificates of a PEM file, read before anything else about
/// them is checked.
pub struct CaFile(Vec<CertificateDer<'static>>);

impl CaFile {
    /// Every certificate in the PEM file `path`; at least one.
    pub fn read(path: &Path) -> Result<CaFile> {
        certificates(path).map(CaFile)
    }
}

/// Every certificate in a PEM file; at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    std::fs::metadata(path).map_err(|e| bad(path, format!("cannot read it: {e}")))?;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(path, format!("cannot read it: {e:?}")))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(path, format!("not PEM certificates: {e:?}")))?;
    if certs.is_empty() {
        return Err(bad(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    std::fs::metadata(path).map_err(|e| bad(path, format!("cannot read it: {e}")))?;
    // Never quoted: it is the key.
    PrivateKeyDer::from_pem_file(path).map_err(|_| bad(path, "holds no PEM private key"))
}

impl Trust {
    /// Trusts the CAs of `file` for `registry`, or for every registry.
    pub fn add_cas(&mut self, registry: Option<&Registry>, file: CaFile) {
        match registry {
            None => self.everywhere.extend(file.0),
            Some(r) => self.entry(r).cas.extend(file.0),
        }
    }

    /// Loads `dir` (which must exist), or the standard directories that do.
    pub fn load_certs_dir(&mut self, dir: Option<&Path>) -> Result<()> {
        let dirs: Vec<PathBuf> = match dir {
            Some(d) => {
                if !d.is_dir() {
                    return Err(bad(d, "is not a directory"));
                }
                vec![d.to_path_buf()]
            }
            None => DEFAULT_CERTS_DIRS
                .iter()
                .map(PathBuf::from)
                .filter(|d| d.is_dir())
                .collect(),
        };
        // Everything is read before anything is kept: a bad file leaves
        // the settings as they were.
        let mut found = Vec::new();
        for dir in dirs {
            let entries = std::fs::read_dir(&dir).map_err(|e| bad(&dir, e))?;
            for host_dir in entries {
                let host_dir = host_dir.map_err(|e| bad(&dir, e))?.path();
                if !host_dir.is_dir() {
                    continue;
                }
                // Only directories named like a registry are docker's.
                let Some(registry) = host_dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|h| Registry::parse(h).ok())
                else {
                    continue;
                };
                found.push((registry, read_host_dir(&host_dir)?));
            }
        }
        for (registry, loaded) in found {
            let entry = self.entry(&registry);
            entry.cas.extend(loaded.cas);
            if loaded.identity.is_some() {
                entry.identity = loaded.identity;
            }
        }
        Ok(())
    }

    fn entry(&mut self, registry: &Registry) -> &mut RegistryTrust {
        self.registries.entry(registry.key()).or_default()
    }

    /// Whether nothing was added to the defaults.
    pub fn is_empty(&self) -> bool {
        self.everywhere.is_empty() && self.registries.is_empty()
    }

    /// The entry whose settings connections to `url` use: its host's own
    /// (`host:port`, or `host` alone on the scheme's default port), else
    /// `""` for the CAs trusted everywhere; `None` when this trust adds
    /// nothing there.
    pub fn entry_for(&self, url: &Url) -> Option<String> {
        let host = url.host_str()?;
        let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
        let bare = url.port().is_none().then(|| host.to_owned());
        [with_port, bare]
            .into_iter()
            .flatten()
            .map(|candidate| key_of(&candidate))
            .find(|key| self.registries.contains_key(key))
            .or_else(|| (!self.everywhere.is_empty()).then(String::new))
    }

    /// What connections to `registry` use beyond the defaults; `None` when
    /// nothing was added for it, so it can share the process's client.
    pub fn settings_for(&self, registry: &str) -> Option<TlsSettings> {
        let specific = self.registries.get(&key_of(registry));
        if self.everywhere.is_empty() && specific.is_none() {
            return None;
        }
        let mut roots = self.everywhere.clone();
        if let Some(s) = specific {
            roots.extend(s.cas.iter().cloned());
        }
        Some(TlsSettings {
            extra_roots: roots,
            identity: specific.and_then(|s| s.identity.clone()),
        })
    }
}

/// `*.crt` as CAs; `X.cert` with `X.key` as the client identity.
fn read_host_dir(dir: &Path) -> Result<RegistryTrust> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    let mut trust = RegistryTrust::default();
    for path in &names {
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => trust.cas.extend(certificates(path)?),
            Some("cert") => {
                let key = path.with_extension("key");
                if !key.exists() {
                    return Err(bad(
                        path,
                        format!("has no key beside it ({})", key.display()),
                    ));
                }
                trust.identity = Some(Identity {
                    chain: certificates(path)?,
                    key: Zeroizing::new(private_key(&key)?),
                });
            }
            Some("key") if !path.with_extension("cert").exists() => {
                return Err(bad(path, "is a key with no .cert beside it"));
            }
            _ => {}
        }
    }
    Ok(trust)
}
