//! The rig: starts every server, loads the fixtures, and tears it all down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::accesslog::{self, RegistryRequest};
use crate::cdn::{CdnRequest, CdnServer};
use crate::fixtures::{self, Fixtures};
use crate::info::{
    BasicAuthInfo, CdnRegistryInfo, PlainRegistryInfo, RigInfo, TlsRegistryInfo, TokenRegistryInfo,
};
use crate::push::{Pusher, TokenAuth};
use crate::registry::{
    find_binary, RegistryProcess, RegistrySetup, ServeTls, Spawner, TokenAuthConfig,
};
use crate::tls::Authority;
use crate::token::{self, random_hex, Keys, TokenRequest, TokenServer};
use crate::workdir;

/// One of the rig's registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// No auth.
    Plain,
    /// Bearer token auth.
    Token,
    /// Bearer token auth, blob reads redirected (307) to the CDN.
    Cdn,
    /// https (HTTP/2 by ALPN), no auth, the plain registry's storage.
    Tls,
    /// As `Tls`, but blob reads are redirected (307) to the CDN's `http://`
    /// URL: a redirect from https to http that clients must refuse.
    TlsRedirect,
}

impl Which {
    pub const ALL: [Which; 5] = [
        Which::Plain,
        Which::Token,
        Which::Cdn,
        Which::Tls,
        Which::TlsRedirect,
    ];

    /// `plain`, `token`, `cdn`, `tls` or `tls-redirect`.
    pub fn name(self) -> &'static str {
        match self {
            Which::Plain => "plain",
            Which::Token => "token",
            Which::Cdn => "cdn",
            Which::Tls => "tls",
            Which::TlsRedirect => "tls-redirect",
        }
    }

    /// Whether it serves https.
    pub fn is_tls(self) -> bool {
        matches!(self, Which::Tls | Which::TlsRedirect)
    }

    /// The storage dir's name: the https registries serve the plain one's.
    fn storage_name(self) -> &'static str {
        if self.is_tls() {
            Which::Plain.name()
        } else {
            self.name()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RigOptions {
    pub plain: bool,
    pub token: bool,
    pub cdn: bool,
    /// Both https registries (`Tls`, `TlsRedirect`); needs `plain`, whose
    /// storage they serve, and starts the CDN.
    pub tls: bool,
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

    fn only(which: Which) -> Self {
        RigOptions {
            plain: which == Which::Plain,
            token: which == Which::Token,
            cdn: which == Which::Cdn,
            tls: false,
            ..RigOptions::default()
        }
    }

    fn wants(&self, which: Which) -> bool {
        match which {
            Which::Plain => self.plain,
            Which::Token => self.token,
            Which::Cdn => self.cdn,
            Which::Tls | Which::TlsRedirect => self.tls,
        }
    }
}

/// The running rig. Dropping it kills the registries, stops the servers and
/// removes the temp dir.
pub struct Rig {
    // Fields drop in order: registries first (they call the issuer and CDN
    // no more), then the servers, the spawner thread, and the files last.
    registries: Vec<(Which, RegistryProcess)>,
    issuers: Vec<Issuer>,
    cdn: Option<CdnServer>,
    _spawner: Spawner,
    token_log: Arc<Mutex<Vec<TokenRequest>>>,
    cdn_log: Arc<Mutex<Vec<CdnRequest>>>,
    info: RigInfo,
    dir: TempDir,
}

impl Rig {
    /// Starts the requested registries and servers and pushes the fixtures
    /// into each registry. Fails (never skips) when `docker-registry` is not
    /// installed.
    pub fn start(opts: RigOptions) -> Result<Rig> {
        let started = Instant::now();
        let binary = find_binary()?;
        let wanted: Vec<Which> = Which::ALL.into_iter().filter(|w| opts.wants(*w)).collect();
        if wanted.is_empty() {
            bail!("RigOptions asks for no registry at all");
        }
        if opts.tls && !opts.plain {
            bail!("RigOptions.tls needs plain: the https registries serve its storage");
        }

        let dir = workdir::create()?;
        let root = dir.path().to_path_buf();

        // Generating a large layer takes a while; overlap it with startup.
        let (large, many) = (opts.large_mib, opts.many_layers);
        let scratch = root.join("generated");
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let fixtures = thread::Builder::new()
            .name("tank-rig-fixtures".into())
            .spawn(move || fixtures::build(large, many, &scratch))
            .context("cannot start the fixture builder thread")?;
        let password = random_hex(16)?;
        let token_log = Arc::new(Mutex::new(Vec::new()));
        let cdn_log = Arc::new(Mutex::new(Vec::new()));

        let issuers = start_issuers(&wanted, &root, &password, &token_log)?;
        let cdn = if opts.cdn || opts.tls {
            Some(CdnServer::start(root.join("cdn"), Arc::clone(&cdn_log))?)
        } else {
            None
        };
        let authority = match opts.tls {
            true => Some(Authority::generate(&root)?),
            false => None,
        };
        let setups = registry_setups(
            &wanted,
            binary,
            &root,
            &issuers,
            cdn.as_ref(),
            authority.as_ref(),
        )?;

        let verbose = std::env::var_os("TANK_RIG_VERBOSE").is_some();
        let phase = |what: &str| {
            if verbose {
                eprintln!("tank-testrig: {what} at {:?}", started.elapsed());
            }
        };
        phase("servers up");
        let spawner = Spawner::new()?;
        let registries = start_registries(&spawner, &setups)?;
        phase("registries up");
        let fixtures = fixtures
            .join()
            .map_err(|_| anyhow!("the fixture builder panicked"))??;

        let auth_for = |which: Which| -> Option<TokenAuth> {
            issuers
                .iter()
                .find(|i| i.which == which)
                .map(|i| TokenAuth {
                    realm: i.server.realm_url(),
                    service: token::SERVICE.to_owned(),
                    username: token::USERNAME.to_owned(),
                    password: password.clone(),
                })
        };
        phase("fixtures built");
        // See Pusher::seed_blob for why big generated layers skip the upload.
        let seed_root = match std::env::var_os("TANK_RIG_UPLOAD_LARGE") {
            Some(_) => None,
            None => Some(root.as_path()),
        };
        push_fixtures(&registries, &fixtures, auth_for, seed_root)?;
        phase("fixtures pushed");

        let info = build_info(
            &registries,
            &issuers,
            &cdn,
            authority.as_ref(),
            &root,
            &password,
            fixtures,
        );
        let rig = Rig {
            registries,
            issuers,
            cdn,
            _spawner: spawner,
            token_log,
            cdn_log,
            info,
            dir,
        };
        // The pushes' own token requests are no test's business.
        rig.clear_logs();
        Ok(rig)
    }

    pub fn info(&self) -> &RigInfo {
        &self.info
    }

    /// `127.0.0.1:PORT` of a registry.
    ///
    /// # Panics
    /// When the rig was started without that registry.
    pub fn registry(&self, which: Which) -> &str {
        match self.process(which) {
            Some(p) => p.addr(),
            None => panic!("the rig was started without the {} registry", which.name()),
        }
    }

    /// The registry's process id, for reading its CPU time.
    ///
    /// # Panics
    /// When the rig was started without that registry.
    pub fn registry_pid(&self, which: Which) -> u32 {
        match self.process(which) {
            Some(p) => p.pid(),
            None => panic!("the rig was started without the {} registry", which.name()),
        }
    }

    /// Every token request since start or the last [`Rig::clear_logs`].
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every CDN request since start or the last [`Rig::clear_logs`].
    pub fn cdn_requests(&self) -> Vec<CdnRequest> {
        self.cdn_log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forgets the token and CDN request logs and starts a new window for
    /// [`Rig::registry_log`] and [`Rig::registry_requests`].
    pub fn clear_logs(&self) {
        for (_, p) in &self.registries {
            p.mark_log();
        }
        if let Ok(mut l) = self.token_log.lock() {
            l.clear();
        }
        if let Ok(mut l) = self.cdn_log.lock() {
            l.clear();
        }
    }

    /// The registry's filesystem storage root (`rootdirectory`).
    pub fn storage_dir(&self, which: Which) -> PathBuf {
        self.dir.path().join(which.storage_name())
    }

    /// Where the registry keeps a blob's bytes; overwrite it to make the
    /// registry serve content that does not match its digest.
    pub fn blob_data_path(&self, which: Which, digest: &str) -> PathBuf {
        let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        let prefix = hex.get(..2).unwrap_or(hex);
        self.storage_dir(which)
            .join("docker/registry/v2/blobs")
            .join(algo)
            .join(prefix)
            .join(hex)
            .join("data")
    }

    /// What the registry logged since the rig finished starting (or the last
    /// [`Rig::clear_logs`]): logrus lines (method, URI, User-Agent, status,
    /// auth warnings) and the Apache-style access log. distribution never
    /// logs the `Accept` header. Empty for a registry that was not started.
    pub fn registry_log(&self, which: Which) -> String {
        self.process(which)
            .map(|p| p.log_since_mark())
            .unwrap_or_default()
    }

    /// The registry's whole log file, start-up and fixture pushes included.
    pub fn registry_log_path(&self, which: Which) -> PathBuf {
        self.dir.path().join(format!("{}.log", which.name()))
    }

    /// The requests the registry's access log recorded since the rig
    /// finished starting (or the last [`Rig::clear_logs`]).
    ///
    /// distribution writes the line just *after* sending the response, so
    /// this waits until the log has been quiet for 50 ms (at most 2 s).
    pub fn registry_requests(&self, which: Which) -> Vec<RegistryRequest> {
        let Some(process) = self.process(which) else {
            return Vec::new();
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut log = process.log_since_mark();
        loop {
            thread::sleep(Duration::from_millis(50));
            let again = process.log_since_mark();
            if again.len() == log.len() || Instant::now() > deadline {
                return accesslog::parse(&again);
            }
            log = again;
        }
    }

    fn process(&self, which: Which) -> Option<&RegistryProcess> {
        self.registries
            .iter()
            .find(|(w, _)| *w == which)
            .map(|(_, p)| p)
    }

    /// The rig's temp dir (configs, logs, storage).
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig")
            .field("dir", &self.dir.path())
            .field("info", &self.info)
            .field("issuers", &self.issuers.len())
            .field("cdn", &self.cdn.is_some())
            .finish()
    }
}

/// A protected registry's token realm and the cert it is configured to trust.
struct Issuer {
    which: Which,
    server: TokenServer,
    cert: PathBuf,
}

/// One issuer (key, cert, realm) per protected registry, as two real
/// registries would have: a token earned at one is refused by the other.
fn start_issuers(
    wanted: &[Which],
    root: &Path,
    password: &str,
    log: &Arc<Mutex<Vec<TokenRequest>>>,
) -> Result<Vec<Issuer>> {
    let mut issuers = Vec::new();
    for &which in wanted
        .iter()
        .filter(|w| matches!(w, Which::Token | Which::Cdn))
    {
        let keys = Arc::new(Keys::generate()?);
        let cert = root.join(format!("issuer-{}.pem", which.name()));
        std::fs::write(&cert, keys.cert_pem())
            .with_context(|| format!("writing {}", cert.display()))?;
        let server = TokenServer::start(which, keys, password.to_owned(), Arc::clone(log))?;
        issuers.push(Issuer {
            which,
            server,
            cert,
        });
    }
    Ok(issuers)
}

fn registry_setups(
    wanted: &[Which],
    binary: PathBuf,
    root: &Path,
    issuers: &[Issuer],
    cdn: Option<&CdnServer>,
    authority: Option<&Authority>,
) -> Result<Vec<(Which, RegistrySetup)>> {
    let serve_tls = |which: Which| -> Result<Option<ServeTls>> {
        match authority.filter(|_| which.is_tls()) {
            Some(a) => Ok(Some(ServeTls {
                cert: a.cert.clone(),
                key: a.key.clone(),
                client: a.client_config()?,
            })),
            None => Ok(None),
        }
    };
    // Upload sessions are signed with it; one value for all is fine.
    let secret = random_hex(16)?;
    let setups = wanted
        .iter()
        .map(|&which| {
            let name = which.name();
            let token = issuers
                .iter()
                .find(|i| i.which == which)
                .map(|i| TokenAuthConfig {
                    realm: i.server.realm_url(),
                    service: token::SERVICE.to_owned(),
                    issuer: token::ISSUER.to_owned(),
                    root_cert_bundle: i.cert.clone(),
                });
            // distribution 2.8 keeps only scheme and host of `baseurl` and
            // appends the storage driver path (/docker/registry/v2/...).
            let redirect = match (cdn, which) {
                (Some(c), Which::Cdn | Which::TlsRedirect) => Some(format!("{}/", c.base_url())),
                _ => None,
            };
            let setup = RegistrySetup {
                name,
                binary: binary.clone(),
                storage: root.join(which.storage_name()),
                config_path: root.join(format!("{name}.yml")),
                log_path: root.join(format!("{name}.log")),
                secret: secret.clone(),
                token,
                redirect,
                tls: serve_tls(which)?,
            };
            Ok((which, setup))
        })
        .collect::<Result<_>>()?;
    Ok(setups)
}

fn start_registries(
    spawner: &Spawner,
    setups: &[(Which, RegistrySetup)],
) -> Result<Vec<(Which, RegistryProcess)>> {
    thread::scope(|s| {
        let handles: Vec<_> = setups
            .iter()
            .map(|(which, setup)| {
                (
                    *which,
                    s.spawn(move || RegistryProcess::start(spawner, setup)),
                )
            })
            .collect();
        let mut started = Vec::new();
        let mut first_error = None;
        for (which, handle) in handles {
            match handle.join() {
                Ok(Ok(p)) => started.push((which, p)),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow!("starting {} panicked", which.name()));
                }
            }
        }
        match first_error {
            // Dropping `started` kills what did come up.
            Some(e) => Err(e),
            None => Ok(started),
        }
    })
}

/// Every repository into every registry, all at once: the registries work
/// in parallel and each request is small, so this is latency-bound.
fn push_fixtures(
    registries: &[(Which, RegistryProcess)],
    fixtures: &Fixtures,
    auth_for: impl Fn(Which) -> Option<TokenAuth>,
    seed_root: Option<&Path>,
) -> Result<()> {
    thread::scope(|s| {
        let mut handles = Vec::new();
        // The https registries serve the plain one's storage.
        for (which, process) in registries.iter().filter(|(w, _)| !w.is_tls()) {
            for plan in &fixtures.repos {
                let seed_into = seed_root.map(|r| r.join(which.name()));
                let pusher = Pusher::new(process.addr(), auth_for(*which), seed_into);
                let label = format!("{} registry ({})", which.name(), process.addr());
                handles.push(s.spawn(move || {
                    pusher
                        .push_repo(plan)
                        .with_context(|| format!("loading fixtures into the {label}"))
                }));
            }
        }
        for h in handles {
            h.join().map_err(|_| anyhow!("a fixture push panicked"))??;
        }
        Ok(())
    })
}

fn build_info(
    registries: &[(Which, RegistryProcess)],
    issuers: &[Issuer],
    cdn: &Option<CdnServer>,
    authority: Option<&Authority>,
    root: &Path,
    password: &str,
    fixtures: Fixtures,
) -> RigInfo {
    let addr = |which: Which| {
        registries
            .iter()
            .find(|(w, _)| *w == which)
            .map(|(_, p)| p.addr().to_owned())
    };
    let realm = |which: Which| {
        issuers
            .iter()
            .find(|i| i.which == which)
            .map(|i| i.server.realm_url())
            .unwrap_or_default()
    };
    let storage = |which: Which| {
        root.join(which.storage_name())
            .to_string_lossy()
            .into_owned()
    };
    RigInfo {
        plain: addr(Which::Plain).map(|registry| PlainRegistryInfo {
            registry,
            storage: storage(Which::Plain),
        }),
        token: addr(Which::Token).map(|registry| TokenRegistryInfo {
            registry,
            realm: realm(Which::Token),
            service: token::SERVICE.to_owned(),
            storage: storage(Which::Token),
        }),
        cdn: addr(Which::Cdn).map(|registry| CdnRegistryInfo {
            registry,
            realm: realm(Which::Cdn),
            service: token::SERVICE.to_owned(),
            cdn: cdn.as_ref().map(|c| c.base_url()).unwrap_or_default(),
            storage: storage(Which::Cdn),
        }),
        tls: match (addr(Which::Tls), addr(Which::TlsRedirect), authority) {
            (Some(registry), Some(redirecting_registry), Some(a)) => Some(TlsRegistryInfo {
                registry,
                redirecting_registry,
                cdn: cdn.as_ref().map(|c| c.base_url()).unwrap_or_default(),
                ca_pem: a.ca_pem.to_string_lossy().into_owned(),
                storage: storage(Which::Tls),
            }),
            _ => None,
        },
        basic_auth: BasicAuthInfo {
            username: token::USERNAME.to_owned(),
            password: password.to_owned(),
        },
        images: fixtures.images,
    }
}
