//! `docker-registry serve` child processes: config, launch, readiness, stop.
//!
//! Children are forked from one long-lived spawner thread with
//! `PR_SET_PDEATHSIG`, so they die with the test process even when no `Drop`
//! runs (a panic that aborts, a rig kept in a `static`, SIGKILL). The signal
//! fires when the *forking thread* exits, which is why that thread outlives
//! every test thread that may start a rig. Drop (kill + wait) remains the
//! normal way out.

use std::fs::{self, File};
use std::io;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

const READY_TIMEOUT: Duration = Duration::from_secs(10);
const PORT_ATTEMPTS: usize = 3;

/// Finds the distribution binary, or says how to get it.
pub(crate) fn find_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("TANK_DOCKER_REGISTRY") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        bail!(
            "TANK_DOCKER_REGISTRY={} is not a file; unset it or point it at distribution's \
             registry binary (Debian: apt-get install docker-registry)",
            p.display()
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("docker-registry"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "docker-registry (CNCF distribution 2.8) is not installed: \
                 run `apt-get install docker-registry` (the rig needs real registries; \
                 it never skips)"
            )
        })
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// The long-lived thread every registry is forked from (see module docs).
pub(crate) struct Spawner {
    jobs: Option<mpsc::Sender<SpawnJob>>,
    thread: Option<JoinHandle<()>>,
}

impl Spawner {
    pub(crate) fn new() -> Result<Spawner> {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        let thread = std::thread::Builder::new()
            .name("tank-rig-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .context("cannot start the rig's spawner thread")?;
        Ok(Spawner {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    fn spawn(&self, mut command: Command) -> Result<Child> {
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only calls
        // async-signal-safe functions (prctl, getppid, raise).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    libc::raise(libc::SIGKILL);
                }
                Ok(())
            });
        }
        let (tx, rx) = mpsc::channel();
        self.jobs
            .as_ref()
            .context("spawner already stopped")?
            .send((command, tx))
            .map_err(|_| anyhow!("the rig's spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| anyhow!("the rig's spawner thread is gone"))?
            .map_err(Into::into)
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Token auth settings for a protected registry.
pub(crate) struct TokenAuthConfig {
    pub(crate) realm: String,
    pub(crate) service: String,
    pub(crate) issuer: String,
    pub(crate) root_cert_bundle: PathBuf,
}

/// htpasswd (Basic) auth settings.
pub(crate) struct HtpasswdConfig {
    pub(crate) realm: String,
    /// bcrypt entries, `user:$2y$...`.
    pub(crate) path: PathBuf,
}

/// Proxy mode: a pull-through cache of `remote_url`, logged in to it as
/// `username`.
pub(crate) struct ProxyConfig {
    pub(crate) remote_url: String,
    pub(crate) username: String,
    pub(crate) password: String,
}

pub(crate) struct RegistrySetup {
    pub(crate) name: &'static str,
    pub(crate) binary: PathBuf,
    pub(crate) storage: PathBuf,
    pub(crate) config_path: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) secret: String,
    pub(crate) token: Option<TokenAuthConfig>,
    pub(crate) htpasswd: Option<HtpasswdConfig>,
    /// Base URL of the redirect storage middleware.
    pub(crate) redirect: Option<String>,
    /// Serve https with this certificate and key; readiness is checked
    /// with this client setting.
    pub(crate) tls: Option<ServeTls>,
    /// Serve as a pull-through cache of another registry.
    pub(crate) proxy: Option<ProxyConfig>,
}

pub(crate) struct ServeTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// Demand a client certificate signed by this CA (`clientcas`).
    pub(crate) client_ca: Option<PathBuf>,
    pub(crate) client: std::sync::Arc<rustls::ClientConfig>,
}

/// YAML is a superset of JSON, so JSON string literals quote paths safely.
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

impl RegistrySetup {
    fn config_yaml(&self, addr: &str) -> String {
        let mut y = format!(
            "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: {secret}
",
            storage = q(&self.storage.to_string_lossy()),
            addr = q(addr),
            secret = q(&self.secret),
        );
        if let Some(tls) = &self.tls {
            // distribution offers h2 by ALPN whenever it serves TLS.
            y.push_str(&format!(
                "  tls:
    certificate: {}
    key: {}
",
                q(&tls.cert.to_string_lossy()),
                q(&tls.key.to_string_lossy())
            ));
            if let Some(ca) = &tls.client_ca {
                // distribution then requires and verifies a client certificate.
                y.push_str(&format!(
                    "    clientcas:
      - {}
",
                    q(&ca.to_string_lossy())
                ));
            }
        }
        if let Some(t) = &self.token {
            y.push_str(&format!(
                "auth:
  token:
    realm: {}
    service: {}
    issuer: {}
    rootcertbundle: {}
",
                q(&t.realm),
                q(&t.service),
                q(&t.issuer),
                q(&t.root_cert_bundle.to_string_lossy())
            ));
        }
        if let Some(h) = &self.htpasswd {
            y.push_str(&format!(
                "auth:
  htpasswd:
    realm: {}
    path: {}
",
                q(&h.realm),
                q(&h.path.to_string_lossy())
            ));
        }
        if let Some(p) = &self.proxy {
            // distribution 2.8 asks remoteurl's /v2/ for its challenge at
            // start, and then keeps the credentials for that realm only.
            y.push_str(&format!(
                "proxy:
  remoteurl: {}
  username: {}
  password: {}
",
                q(&p.remote_url),
                q(&p.username),
                q(&p.password)
            ));
        }
        if let Some(base) = &self.redirect {
            y.push_str(&format!(
                "middleware:
  storage:
    - name: redirect
      options:
        baseurl: {}
",
                q(base)
            ));
        }
        y
    }
}

/// A running registry; killed and reaped on drop.
pub(crate) struct RegistryProcess {
    child: Child,
    addr: String,
    log_path: PathBuf,
    /// Where in the log file the current "since last clear" window starts.
    log_start: AtomicU64,
}

impl RegistryProcess {
    /// Launches the registry and waits until it answers `/v2/`. Retries on a
    /// fresh port when another process grabbed the one we picked.
    pub(crate) fn start(spawner: &Spawner, setup: &RegistrySetup) -> Result<RegistryProcess> {
        fs::create_dir_all(&setup.storage)
            .with_context(|| format!("creating {}", setup.storage.display()))?;
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let addr = format!("127.0.0.1:{}", free_port()?);
            fs::write(&setup.config_path, setup.config_yaml(&addr))
                .with_context(|| format!("writing {}", setup.config_path.display()))?;
            let mut process = launch(spawner, setup, addr)?;
            match process.wait_ready(setup.tls.as_ref()) {
                Ok(()) => return Ok(process),
                Err(e) => {
                    let log = process.log();
                    drop(process);
                    if !log.contains("address already in use") {
                        return Err(e.context(format!(
                            "registry {} did not start; its log ({}):\n{}",
                            setup.name,
                            setup.log_path.display(),
                            tail(&log, 20)
                        )));
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow!("no attempt made"))
            .context(format!("registry {}: no free port", setup.name)))
    }

    /// `127.0.0.1:PORT`
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Kills the registry and reaps it; its address and log stay readable.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The whole log file.
    fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// The log written since the last [`RegistryProcess::mark_log`].
    pub(crate) fn log_since_mark(&self) -> String {
        let bytes = fs::read(&self.log_path).unwrap_or_default();
        let start = usize::try_from(self.log_start.load(Ordering::SeqCst)).unwrap_or(0);
        let tail = bytes.get(start..).unwrap_or(&bytes[..]);
        String::from_utf8_lossy(tail).into_owned()
    }

    pub(crate) fn mark_log(&self) {
        let len = fs::metadata(&self.log_path).map(|m| m.len()).unwrap_or(0);
        self.log_start.store(len, Ordering::SeqCst);
    }

    fn wait_ready(&mut self, tls: Option<&ServeTls>) -> Result<()> {
        let mut agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_millis(500));
        let mut scheme = "http";
        if let Some(tls) = tls {
            agent = agent.tls_config(tls.client.clone());
            scheme = "https";
        }
        let agent = agent.build();
        let url = format!("{scheme}://{}/v2/", self.addr);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("polling the registry")? {
                bail!("registry exited with {status} before answering {url}");
            }
            // Check it is *our* registry answering: the port was only reserved.
            let response = match agent.get(&url).call() {
                Ok(r) | Err(ureq::Error::Status(_, r)) => Some(r),
                Err(_) => None,
            };
            if let Some(r) = response {
                if r.header("Docker-Distribution-Api-Version") == Some("registry/2.0") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("registry did not answer {url} within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn launch(spawner: &Spawner, setup: &RegistrySetup, addr: String) -> Result<RegistryProcess> {
    let log = File::create(&setup.log_path)
        .with_context(|| format!("creating {}", setup.log_path.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("duplicating {}", setup.log_path.display()))?;
    let mut command = Command::new(&setup.binary);
    command
        .arg("serve")
        .arg(&setup.config_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // distribution lets REGISTRY_* variables override any config key; a stray
    // one in the environment must not change the rig.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    let child = spawner
        .spawn(command)
        .with_context(|| format!("spawning {} serve", setup.binary.display()))?;
    Ok(RegistryProcess {
        child,
        addr,
        log_path: setup.log_path.clone(),
        log_start: AtomicU64::new(0),
    })
}

/// A port nobody listens on right now; the registry binds it a moment later.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading a bound port")?
        .port())
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
