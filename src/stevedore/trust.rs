//! TLS trust a cache adds to the system's and Mozilla's roots: CA files for
//! every registry or for one, docker's and podman's certs directories
//! (`<dir>/<host[:port]>/*.crt` as CAs, `X.cert` + `X.key` as the client
//! certificate for mutual TLS), and containerd's `hosts.toml` in the same
//! directories (`ca`, `client` and `skip_verify` of each host it names).
//! The `hosts.toml` files are kept here too, with the TLS they set, so a
//! call's snapshot of the trust has the sources and the TLS of one load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use url::Url;
use zeroize::Zeroizing;

use super::error::{Error, ErrorKind, Reason, Result};
use super::mirrors::hosts_toml::{HostEntry, HostsFile};
use super::mirrors::load::{authority_of_dir_name, HostsDirs};
use super::mirrors::registries_conf::RegistriesConf;
use super::mirrors::sources::authority_of;
use super::registry::{key_of, Registry};

/// The certs directories searched when the caller names none: containerd's
/// (where `hosts.toml` lives), then podman's and docker's.
const DEFAULT_CERTS_DIRS: [&str; 3] = [
    "/etc/containerd/certs.d",
    "/etc/containers/certs.d",
    "/etc/docker/certs.d",
];

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
    skip_verify: bool,
    /// Unverified because the registries.conf loaded last says `insecure`:
    /// kept apart from `skip_verify`, so the next load can take it back.
    insecure_by_conf: bool,
}

impl RegistryTrust {
    fn is_empty(&self) -> bool {
        self.cas.is_empty()
            && self.identity.is_none()
            && !self.skip_verify
            && !self.insecure_by_conf
    }
}

/// What one registry's connections trust and present.
#[derive(Debug, Default, Clone)]
pub struct TlsSettings {
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub identity: Option<Identity>,
    /// Any certificate is accepted (hosts.toml `skip_verify`,
    /// registries.conf `insecure`): for this host's connections only.
    pub skip_verify: bool,
}

/// One host's TLS as a `hosts.toml` entry sets it, its files read.
#[derive(Debug, Default, Clone)]
pub struct HostTls {
    pub cas: Vec<CertificateDer<'static>>,
    pub identity: Option<Identity>,
    pub skip_verify: bool,
}

impl HostTls {
    /// Reads `entry`'s `ca` files and its client certificate. rustls
    /// presents one identity per connection: of several `client` entries
    /// the first is used (Go's TLS, containerd's, picks the first that
    /// fits the server's request, which is the first in practice).
    pub fn read(entry: &HostEntry) -> Result<HostTls> {
        let mut cas = Vec::new();
        for ca in &entry.ca {
            cas.extend(certificates(ca)?);
        }
        let identity = match entry.client.first() {
            None => None,
            Some((cert, key)) => Some(Identity {
                chain: certificates(cert)?,
                // A single file holds both when no key is named.
                key: Zeroizing::new(private_key(key.as_deref().unwrap_or(cert))?),
            }),
        };
        Ok(HostTls {
            cas,
            identity,
            skip_verify: entry.skip_verify,
        })
    }

    fn is_empty(&self) -> bool {
        self.cas.is_empty() && self.identity.is_none() && !self.skip_verify
    }
}

/// The `host[:port]` a hosts.toml source URL connects to (the port only
/// when the URL names one), as trust entries are keyed.
fn authority_of_url(url: &str) -> Result<String> {
    let parsed = Url::parse(url).map_err(|e| Error::bad_input(format!("{url}: not a URL: {e}")))?;
    if parsed.host_str().is_none() {
        return Err(Error::bad_input(format!("{url}: no host")));
    }
    Ok(authority_of(&parsed))
}

#[derive(Debug, Default, Clone)]
pub struct Trust {
    everywhere: Vec<CertificateDer<'static>>,
    registries: HashMap<String, RegistryTrust>,
    hosts: HostsDirs,
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

    /// Loads `dir` (which must exist), or the standard directories that do:
    /// the Docker-style certificates of each `<host[:port]>` or `<host_port_>`
    /// directory, and its `hosts.toml` (kept for [`Trust::hosts_dirs`], its
    /// hosts' TLS added here; a `_default/hosts.toml`'s upstream TLS
    /// depends on the registry asked for: see [`Trust::add_hosts_file`]).
    /// `_default`'s Docker-style certificates are not read.
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
        let hosts = HostsDirs::read(&dirs)?;
        let mut host_tls = Vec::new();
        for file in hosts.named()?.iter().chain(&hosts.default_mirrors()?) {
            host_tls.extend(read_hosts_file_tls(file)?);
        }
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
                    .filter(|n| *n != "_default")
                    .and_then(|h| Registry::parse(&authority_of_dir_name(h)).ok())
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
        for (authority, tls) in host_tls {
            self.add_host_tls(&authority, tls);
        }
        self.hosts.extend(hosts);
        Ok(())
    }

    /// The `hosts.toml` files loaded from certs directories, for the
    /// sources of a registry ([`HostsDirs::for_registry`]).
    pub fn hosts_dirs(&self) -> &HostsDirs {
        &self.hosts
    }

    /// Adds `tls` to what connections to `authority` (`host[:port]`) use:
    /// its CAs (each once), its client certificate (replacing an earlier
    /// one), and `skip_verify` (never turned off once on). Also what
    /// registries.conf's `insecure` maps to: `HostTls { skip_verify: true,
    /// ..Default::default() }` for the location's host.
    pub fn add_host_tls(&mut self, authority: &str, tls: HostTls) {
        if tls.is_empty() {
            return;
        }
        let entry = self.registries.entry(key_of(authority)).or_default();
        for ca in tls.cas {
            if !entry.cas.contains(&ca) {
                entry.cas.push(ca);
            }
        }
        if tls.identity.is_some() {
            entry.identity = tls.identity;
        }
        entry.skip_verify |= tls.skip_verify;
    }

    /// registries.conf's `insecure`: unverified TLS for the host of each
    /// insecure `[[registry]]` location and `[[registry.mirror]]` location,
    /// that host only, in place of what the registries.conf loaded before
    /// made insecure (a corrected file turns verification back on). (A
    /// `*.domain` entry without a location names no host before a
    /// reference matches it, and makes none insecure.)
    pub fn set_insecure_locations(&mut self, conf: &RegistriesConf) {
        for entry in self.registries.values_mut() {
            entry.insecure_by_conf = false;
        }
        self.registries.retain(|_, entry| !entry.is_empty());
        let locations = conf.registries.iter().flat_map(|r| {
            std::iter::once((r.location.as_str(), r.insecure))
                .chain(r.mirrors.iter().map(|m| (m.location.as_str(), m.insecure)))
        });
        for (location, insecure) in locations {
            let host = location.split('/').next().unwrap_or_default();
            if insecure && !host.is_empty() {
                self.registries
                    .entry(key_of(host))
                    .or_default()
                    .insecure_by_conf = true;
            }
        }
    }

    /// The TLS of every source of `file`, each for its own host; every
    /// file is read before anything is added. Adding one file twice
    /// changes nothing the second time, so a call may add the file
    /// [`HostsDirs::for_registry`] gave it to its own copy of the trust
    /// (a `_default` file's upstream is the registry asked for).
    pub fn add_hosts_file(&mut self, file: &HostsFile) -> Result<()> {
        for (authority, tls) in read_hosts_file_tls(file)? {
            self.add_host_tls(&authority, tls);
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
            skip_verify: specific.is_some_and(|s| s.skip_verify || s.insecure_by_conf),
        })
    }
}

/// Each source's host and its TLS, for the sources that set any.
fn read_hosts_file_tls(file: &HostsFile) -> Result<Vec<(String, HostTls)>> {
    let mut out = Vec::new();
    for entry in &file.hosts {
        let tls = HostTls::read(entry)?;
        if !tls.is_empty() {
            out.push((authority_of_url(&entry.url)?, tls));
        }
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate (PEM) and its key (PEM).
    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn settings(trust: &Trust, url: &str) -> TlsSettings {
        let entry = trust.entry_for(&Url::parse(url).unwrap()).expect(url);
        trust.settings_for(&entry).unwrap()
    }

    #[test]
    fn hosts_toml_tls_goes_to_each_hosts_own_entry() {
        let dir = tempfile::tempdir().unwrap();
        let host_dir = dir.path().join("r.example_5000_");
        let (mirror_ca, _) = self_signed("mirror-ca");
        let (docker_ca, _) = self_signed("docker-ca");
        let (client, client_key) = self_signed("client");
        write(&host_dir.join("m-ca.pem"), &mirror_ca);
        write(&host_dir.join("ca.crt"), &docker_ca);
        write(&host_dir.join("c.cert.pem"), &client);
        write(&host_dir.join("c.key.pem"), &client_key);
        write(
            &host_dir.join("hosts.toml"),
            "client = [[\"c.cert.pem\", \"c.key.pem\"]]\n\
             [host.\"https://m.example:7000\"]\n  ca = \"m-ca.pem\"\n  skip_verify = true\n\
             [host.\"https://plain-mirror.example\"]\n",
        );
        let mut trust = Trust::default();
        trust.load_certs_dir(Some(dir.path())).unwrap();

        let mirror = settings(&trust, "https://m.example:7000/v2/");
        assert!(mirror.skip_verify);
        assert_eq!(mirror.extra_roots.len(), 1);
        assert!(mirror.identity.is_none());
        // The upstream (`host_port_` is `host:port`): the Docker-style CA
        // and the top level's client certificate, verified.
        let upstream = settings(&trust, "https://r.example:5000/v2/");
        assert!(!upstream.skip_verify);
        assert_eq!(upstream.extra_roots.len(), 1);
        assert!(upstream.identity.is_some());
        // A host with no TLS of its own gets no entry.
        assert_eq!(
            trust.entry_for(&Url::parse("https://plain-mirror.example/").unwrap()),
            None
        );
        let sources = trust
            .hosts_dirs()
            .for_registry("r.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!(sources.hosts.len(), 3);
    }

    #[test]
    fn a_combined_pem_is_the_certificate_and_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let (client, client_key) = self_signed("client");
        write(
            &dir.path().join("r.example/both.pem"),
            &format!("{client}{client_key}"),
        );
        write(
            &dir.path().join("r.example/hosts.toml"),
            "client = \"both.pem\"\n",
        );
        let mut trust = Trust::default();
        trust.load_certs_dir(Some(dir.path())).unwrap();
        let s = settings(&trust, "https://r.example/");
        assert_eq!(s.identity.unwrap().chain.len(), 1);
    }

    #[test]
    fn default_mirrors_apply_at_load_and_the_upstream_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        let (mirror_ca, _) = self_signed("mirror-ca");
        let (upstream_ca, _) = self_signed("upstream-ca");
        write(&dir.path().join("_default/m.pem"), &mirror_ca);
        write(&dir.path().join("_default/u.pem"), &upstream_ca);
        write(
            &dir.path().join("_default/hosts.toml"),
            "ca = \"u.pem\"\n[host.\"https://cache.example\"]\n  ca = \"m.pem\"\n",
        );
        let mut trust = Trust::default();
        trust.load_certs_dir(Some(dir.path())).unwrap();
        assert_eq!(
            settings(&trust, "https://cache.example/").extra_roots.len(),
            1
        );
        assert_eq!(
            trust.entry_for(&Url::parse("https://ghcr.io/").unwrap()),
            None,
            "the upstream is not known before a registry is asked for"
        );

        let file = trust.hosts_dirs().for_registry("ghcr.io").unwrap().unwrap();
        let mut call = trust.clone();
        call.add_hosts_file(&file).unwrap();
        call.add_hosts_file(&file).unwrap();
        assert_eq!(settings(&call, "https://ghcr.io/").extra_roots.len(), 1);
        assert_eq!(
            settings(&call, "https://cache.example/").extra_roots.len(),
            1,
            "adding a file twice adds its CAs once"
        );
    }

    #[test]
    fn a_bad_hosts_toml_keeps_nothing_from_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = self_signed("ca");
        write(&dir.path().join("good.example/ca.crt"), &ca);
        write(
            &dir.path().join("r.example/hosts.toml"),
            "[host.\"https://m.example\"]\n  ca = \"missing.pem\"\n",
        );
        let mut trust = Trust::default();
        let e = trust.load_certs_dir(Some(dir.path())).unwrap_err();
        assert_eq!(e.reason, Reason::Certificate, "{}", e.message);
        assert!(e.message.contains("missing.pem"), "{}", e.message);
        assert!(trust.is_empty());
        assert!(trust.hosts_dirs().is_empty());

        write(
            &dir.path().join("r.example/hosts.toml"),
            "capabilities = [\"fetch\"]\nserver = \"https://m\"\n",
        );
        let e = trust.load_certs_dir(Some(dir.path())).unwrap_err();
        assert!(e.message.contains("hosts.toml"), "{}", e.message);
        assert!(trust.is_empty());
    }

    #[test]
    fn insecure_registries_conf_locations_skip_verify_there_only() {
        let conf = RegistriesConf::parse(
            r#"
[[registry]]
prefix = "docker.io"
location = "Hub-Cache.example:5000/library"
insecure = true
[[registry.mirror]]
location = "m1.example/ns"
insecure = true
[[registry.mirror]]
location = "m2.example"
[[registry]]
location = "verified.example"
[[registry]]
prefix = "*.wild.example"
insecure = true
"#,
            "/etc/containers/registries.conf",
        )
        .unwrap();
        let mut trust = Trust::default();
        trust.set_insecure_locations(&conf);
        assert!(settings(&trust, "https://hub-cache.example:5000/v2/").skip_verify);
        assert!(settings(&trust, "https://m1.example/v2/").skip_verify);
        for verified in [
            "https://m2.example/",
            "https://verified.example/",
            "https://hub-cache.example/",
            "https://a.wild.example/",
        ] {
            assert_eq!(
                trust.entry_for(&Url::parse(verified).unwrap()),
                None,
                "{verified}"
            );
        }
        // A corrected file takes it back; a hosts.toml skip_verify stays.
        trust.add_host_tls(
            "m1.example",
            HostTls {
                skip_verify: true,
                ..HostTls::default()
            },
        );
        trust.set_insecure_locations(&RegistriesConf::default());
        assert_eq!(
            trust.entry_for(&Url::parse("https://hub-cache.example:5000/v2/").unwrap()),
            None
        );
        assert!(settings(&trust, "https://m1.example/v2/").skip_verify);
    }

    #[test]
    fn insecure_is_skip_verify_for_that_host_only() {
        let mut trust = Trust::default();
        trust.add_host_tls(
            "mirror.example:5000",
            HostTls {
                skip_verify: true,
                ..HostTls::default()
            },
        );
        assert!(settings(&trust, "https://mirror.example:5000/").skip_verify);
        assert_eq!(
            trust.entry_for(&Url::parse("https://mirror.example/").unwrap()),
            None
        );
        // Nothing to add adds no entry.
        trust.add_host_tls("other.example", HostTls::default());
        assert_eq!(
            trust.entry_for(&Url::parse("https://other.example/").unwrap()),
            None
        );
    }
}
