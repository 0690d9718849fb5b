//! The rig: starts every server, loads the fixtures, and tears it all down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tempfile::TempDir;

use crate::accesslog::{self, RegistryRequest};
use crate::cdn::{CdnRequest, CdnServer};
use crate::fixtures::{self, Fixtures};
use crate::info::{
    BasicAuthInfo, BasicRegistryInfo, CdnRegistryInfo, PlainRegistryInfo, PrivateInfo, RigInfo,
    TlsRegistryInfo, TlsTokenRegistryInfo, TokenRegistryInfo,
};
use crate::push::{PushAuth, Pusher, TokenAuth};
use crate::random::random_hex;
use crate::registry::{
    find_binary, HtpasswdConfig, RegistryProcess, RegistrySetup, ServeTls, Spawner, TokenAuthConfig,
};
use crate::tls::{self, Authority, ClientIdentity};
use crate::token::{self, Keys, Switches, TokenRequest, TokenServer, Users};
use crate::which::Which;
use crate::workdir;

/// The htpasswd registry's user and realm.
const BASIC_USER: &str = "bob";
const BASIC_REALM: &str = "tank-rig-basic";
/// bcrypt's lowest cost: distribution checks the hash on every request.
const BCRYPT_COST: u32 = 4;

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
    /// Start the CDN with its own Bearer challenges on (see
    /// [`Rig::set_cdn_challenges`]).
    pub cdn_challenges: bool,
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
            cdn_challenges: false,
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

    /// Every registry the rig has, every one of them on.
    pub fn everything() -> Self {
        RigOptions {
            basic: true,
            client_cert: true,
            tls_token: true,
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
            ..RigOptions::default()
        }
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
    switches: Arc<Switches>,
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
        if opts.client_cert && !opts.tls {
            bail!("RigOptions.client_cert needs tls (and plain, whose storage it serves)");
        }
        if opts.tls_token && !(opts.tls && opts.token) {
            bail!(
                "RigOptions.tls_token needs tls and token: it serves the token registry's storage"
            );
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
        let users = Arc::new(Users {
            push_password: password.clone(),
            private_password: random_hex(16)?,
            identity_token: random_hex(24)?,
        });
        let switches = Arc::new(Switches::default());
        let token_log = Arc::new(Mutex::new(Vec::new()));
        let cdn_log = Arc::new(Mutex::new(Vec::new()));

        let issuers = start_issuers(&wanted, &root, &users, &switches, &token_log)?;
        let cdn = if opts.cdn || opts.tls {
            Some(CdnServer::start(
                root.join("cdn"),
                Arc::clone(&cdn_log),
                opts.cdn_challenges,
            )?)
        } else {
            None
        };
        let authority = match opts.tls {
            true => Some(Authority::generate(&root)?),
            false => None,
        };
        let identity = match opts.client_cert {
            true => Some(ClientIdentity::generate(&root)?),
            false => None,
        };
        let basic = match opts.basic {
            true => Some(BasicUser::create(&root)?),
            false => None,
        };
        let setups = registry_setups(
            &wanted,
            binary,
            &root,
            &issuers,
            cdn.as_ref(),
            authority.as_ref(),
            identity.as_ref(),
            basic.as_ref(),
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

        let auth_for = |which: Which| -> Option<PushAuth> {
            if which == Which::Basic {
                return basic.as_ref().map(|b| PushAuth::Basic {
                    username: BASIC_USER.to_owned(),
                    password: b.password.clone(),
                });
            }
            issuers.iter().find(|i| i.which == which).map(|i| {
                PushAuth::Token(TokenAuth {
                    realm: i.server.realm_url(),
                    service: token::SERVICE.to_owned(),
                    username: token::USERNAME.to_owned(),
                    password: password.clone(),
                })
            })
        };
        phase("fixtures built");
        // See Pusher::seed_blob for why big generated layers skip the upload.
        let seed_root = match std::env::var_os("TANK_RIG_UPLOAD_LARGE") {
            Some(_) => None,
            None => Some(root.as_path()),
        };
        push_fixtures(&registries, &fixtures, auth_for, seed_root)?;
        add_private_repos(&root, &registries, &fixtures)?;
        phase("fixtures pushed");
        let certs_dir = root.join("certs.d");
        if let Some(a) = &authority {
            write_certs_dir(&certs_dir, &registries, a, identity.as_ref())?;
        }

        let info = build_info(Parts {
            registries: &registries,
            issuers: &issuers,
            cdn: &cdn,
            authority: authority.as_ref(),
            identity: identity.as_ref(),
            basic: basic.as_ref(),
            users: &users,
            certs_dir: &certs_dir,
            root: &root,
            fixtures,
        });
        let rig = Rig {
            registries,
            issuers,
            cdn,
            switches,
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

    /// The registries this rig runs, in [`Which::ALL`] order.
    pub fn started(&self) -> Vec<Which> {
        Which::ALL
            .into_iter()
            .filter(|w| self.process(*w).is_some())
            .collect()
    }

    /// `None` (the default): every issuer answers OAuth2 POSTs.
    /// `Some(404)` or `Some(405)` (any status, really): every issuer answers
    /// every POST with that status and an error body, as token servers
    /// without OAuth2 do, so a client falls back to a GET.
    pub fn set_token_post_status(&self, status: Option<u16>) {
        self.switches.set_post_status(status);
    }

    /// On: the CDN challenges every blob read that lacks its own token with
    /// 401 and `WWW-Authenticate: Bearer realm="<cdn>/token",service="tank-cdn"`;
    /// its realm hands that token to anyone (and logs, in
    /// [`Rig::cdn_requests`], whether the request carried credentials).
    /// Off (the default): it serves any request without `Authorization`
    /// and answers 400 to one with it. No-op without a CDN.
    pub fn set_cdn_challenges(&self, on: bool) {
        if let Some(c) = &self.cdn {
            c.set_challenges(on);
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

/// The htpasswd registry's user, and the file that holds its bcrypt hash.
struct BasicUser {
    password: String,
    htpasswd: PathBuf,
}

impl BasicUser {
    fn create(root: &Path) -> Result<BasicUser> {
        let password = random_hex(16)?;
        let hash = bcrypt::hash(&password, BCRYPT_COST).context("hashing the htpasswd password")?;
        let htpasswd = root.join("htpasswd");
        std::fs::write(&htpasswd, format!("{BASIC_USER}:{hash}\n"))
            .with_context(|| format!("writing {}", htpasswd.display()))?;
        Ok(BasicUser { password, htpasswd })
    }
}

/// One issuer (key, cert, realm) per protected registry, as two real
/// registries would have: a token earned at one is refused by the other.
fn start_issuers(
    wanted: &[Which],
    root: &Path,
    users: &Arc<Users>,
    switches: &Arc<Switches>,
    log: &Arc<Mutex<Vec<TokenRequest>>>,
) -> Result<Vec<Issuer>> {
    let mut issuers = Vec::new();
    for &which in wanted.iter().filter(|w| w.is_token()) {
        let keys = Arc::new(Keys::generate()?);
        let cert = root.join(format!("issuer-{}.pem", which.name()));
        std::fs::write(&cert, keys.cert_pem())
            .with_context(|| format!("writing {}", cert.display()))?;
        let server = TokenServer::start(
            which,
            keys,
            Arc::clone(users),
            Arc::clone(switches),
            Arc::clone(log),
        )?;
        issuers.push(Issuer {
            which,
            server,
            cert,
        });
    }
    Ok(issuers)
}

#[allow(clippy::too_many_arguments)]
fn registry_setups(
    wanted: &[Which],
    binary: PathBuf,
    root: &Path,
    issuers: &[Issuer],
    cdn: Option<&CdnServer>,
    authority: Option<&Authority>,
    identity: Option<&ClientIdentity>,
    basic: Option<&BasicUser>,
) -> Result<Vec<(Which, RegistrySetup)>> {
    let serve_tls = |which: Which| -> Result<Option<ServeTls>> {
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
                htpasswd: basic
                    .filter(|_| which == Which::Basic)
                    .map(|b| HtpasswdConfig {
                        realm: BASIC_REALM.to_owned(),
                        path: b.htpasswd.clone(),
                    }),
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
    auth_for: impl Fn(Which) -> Option<PushAuth>,
    seed_root: Option<&Path>,
) -> Result<()> {
    thread::scope(|s| {
        let mut handles = Vec::new();
        // The https registries serve another one's storage.
        for (which, process) in registries.iter().filter(|(w, _)| !w.is_tls()) {
            for plan in &fixtures.repos {
                let seed_into = seed_root.map(|r| r.join(which.name()));
                let pusher = Pusher::new(process.addr(), auth_for(*which), seed_into);
                let label = format!("{} registry ({})", which.name(), process.addr());
                handles.push(s.spawn(move || {
                    pusher
                        .push_repo(plan, &plan.repo)
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

/// The token registries' `private/...` repositories: the standard
/// fixtures' repository trees (the link files their pushes left: layers,
/// manifest revisions, tags) copied under the private names. Pushing them
/// again through the API would cost every token rig ~0.2 s at start; the
/// registry serves the copy exactly as it would a push (no cache is
/// configured), and the blobs are shared, as a cross-repository mount
/// would share them.
fn add_private_repos(
    root: &Path,
    registries: &[(Which, RegistryProcess)],
    fixtures: &Fixtures,
) -> Result<()> {
    for (which, _) in registries
        .iter()
        .filter(|(w, _)| w.is_token() && !w.is_tls())
    {
        let repos = root
            .join(which.storage_name())
            .join("docker/registry/v2/repositories");
        for public in fixtures.standard_repos() {
            copy_tree(
                &repos.join(public),
                &repos.join(fixtures::private_repo(public)),
            )
            .with_context(|| format!("adding the private twin of {public} to {}", which.name()))?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("copying {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}

/// `<dir>/<host:port>/ca.crt` for every https registry, by IP and by name;
/// the mutual-TLS one's also gets `client.cert` and `client.key`.
fn write_certs_dir(
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

/// What [`build_info`] reads.
struct Parts<'a> {
    registries: &'a [(Which, RegistryProcess)],
    issuers: &'a [Issuer],
    cdn: &'a Option<CdnServer>,
    authority: Option<&'a Authority>,
    identity: Option<&'a ClientIdentity>,
    basic: Option<&'a BasicUser>,
    users: &'a Users,
    certs_dir: &'a Path,
    root: &'a Path,
    fixtures: Fixtures,
}

fn build_info(parts: Parts<'_>) -> RigInfo {
    let Parts {
        registries,
        issuers,
        cdn,
        authority,
        identity,
        basic,
        users,
        certs_dir,
        root,
        fixtures,
    } = parts;
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
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let cdn_url = cdn.as_ref().map(|c| c.base_url()).unwrap_or_default();
    let cdn_realm = cdn.as_ref().map(|c| c.realm_url()).unwrap_or_default();
    let private = |public: &str| fixtures::private_repo(public);
    let images = &fixtures.images;
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
            cdn: cdn_url.clone(),
            cdn_realm: cdn_realm.clone(),
            storage: storage(Which::Cdn),
        }),
        tls: match (addr(Which::Tls), addr(Which::TlsRedirect), authority) {
            (Some(registry), Some(redirecting_registry), Some(a)) => Some(TlsRegistryInfo {
                registry,
                redirecting_registry,
                cdn: cdn_url.clone(),
                cdn_realm: cdn_realm.clone(),
                ca_pem: path(&a.ca_pem),
                storage: storage(Which::Tls),
                certs_dir: path(certs_dir),
                client_cert_registry: addr(Which::TlsClientCert),
                client_ca_pem: identity.map(|id| path(&id.ca_pem)),
                client_cert_pem: identity.map(|id| path(&id.cert_pem)),
                client_key_pem: identity.map(|id| path(&id.key_pem)),
            }),
            _ => None,
        },
        tls_token: match (addr(Which::TlsToken), authority) {
            (Some(registry), Some(a)) => Some(TlsTokenRegistryInfo {
                registry,
                realm: realm(Which::TlsToken),
                service: token::SERVICE.to_owned(),
                ca_pem: path(&a.ca_pem),
                storage: storage(Which::TlsToken),
            }),
            _ => None,
        },
        basic_registry: match (addr(Which::Basic), basic) {
            (Some(registry), Some(b)) => Some(BasicRegistryInfo {
                registry,
                realm: BASIC_REALM.to_owned(),
                username: BASIC_USER.to_owned(),
                password: b.password.clone(),
                htpasswd: path(&b.htpasswd),
                storage: storage(Which::Basic),
            }),
            _ => None,
        },
        private: match issuers.is_empty() {
            true => None,
            false => Some(PrivateInfo {
                username: token::PRIVATE_USER.to_owned(),
                password: users.private_password.clone(),
                identity_token: users.identity_token.clone(),
                identity_token_username: token::IDENTITY_TOKEN_USER.to_owned(),
                prefix: token::PRIVATE_PREFIX.to_owned(),
                oci_image: private(&images.oci_image.repo),
                oci_index: private(&images.oci_index.repo),
                docker_image: private(&images.docker_image.repo),
                docker_list: private(&images.docker_list.repo),
            }),
        },
        basic_auth: BasicAuthInfo {
            username: token::USERNAME.to_owned(),
            password: users.push_password.clone(),
        },
        images: fixtures.images,
    }
}
