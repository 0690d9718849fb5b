//! The public handle on a running rig: where each registry listens, what it
//! and the other servers logged, the switches tests flip, and the order in
//! which everything stops when it is dropped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::issuers::Issuer;
use super::mirrors::{self, DeadPort};
use crate::accesslog::{self, RegistryRequest};
use crate::cdn::{CdnLog, CdnRanges, CdnRequest, CdnServer};
use crate::info::RigInfo;
use crate::push::PushAuth;
use crate::registry::{RegistryProcess, Spawner};
use crate::token::{Switches, TokenRequest};
use crate::which::Which;

/// The running rig. Dropping it kills the registries, stops the servers and
/// removes the temp dir.
pub struct Rig {
    // Fields drop in order: registries first (they call the issuer and CDN
    // no more), then the servers, the spawner thread, and the files last.
    pub(super) registries: Vec<(Which, RegistryProcess)>,
    pub(super) issuers: Vec<Issuer>,
    pub(super) cdn: Option<CdnServer>,
    pub(super) switches: Arc<Switches>,
    pub(super) _spawner: Spawner,
    pub(super) token_log: Arc<Mutex<Vec<TokenRequest>>>,
    pub(super) cdn_log: Arc<CdnLog>,
    pub(super) info: RigInfo,
    /// How [`Rig::push`] gets push rights on each registry that needs them.
    pub(super) push_auth: Vec<(Which, PushAuth)>,
    pub(super) dead_port: Option<DeadPort>,
    pub(super) dir: TempDir,
}

impl Rig {
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

    /// How the CDN answers `Range` from now on (the start value is
    /// [`RigOptions::cdn_ranges`](crate::RigOptions::cdn_ranges)). No-op
    /// without a CDN.
    pub fn set_cdn_ranges(&self, ranges: CdnRanges) {
        if let Some(c) = &self.cdn {
            c.set_ranges(ranges);
        }
    }

    /// The next `count` blob bodies the CDN sends (GET, any status) stop
    /// after `after` bytes and their connections are shut down, as when a
    /// network drops a transfer mid-way; `count` 0 disarms. No-op without a
    /// CDN.
    pub fn cut_cdn_bodies(&self, after: u64, count: usize) {
        if let Some(c) = &self.cdn {
            c.cut_bodies(after, count);
        }
    }

    /// Every CDN URL signed so far answers 403 from now on, as if its
    /// expiry had passed; URLs the registry redirects to later are fresh.
    /// False when the rig's CDN URLs do not expire
    /// ([`RigOptions::cdn_url_expiry`](crate::RigOptions::cdn_url_expiry)).
    pub fn expire_cdn_urls(&self) -> bool {
        self.cdn.as_ref().is_some_and(|c| c.expire_urls())
    }

    /// The most TCP connections seen open to the CDN at once since start,
    /// the last [`Rig::reset_cdn_peak`] or [`Rig::clear_logs`]: a client's
    /// connections to that one host, idle kept-alive ones included. "Open"
    /// is the kernel's `ESTABLISHED`, from the handshake until either end
    /// sends its FIN; it is read as each request arrives and as each
    /// response ends, so a connection that never carries a request counts
    /// only if it is open when another one does. 0 without a CDN.
    pub fn cdn_peak_connections(&self) -> usize {
        self.cdn.as_ref().map_or(0, |c| c.peak_connections())
    }

    /// The connections open at the peak of [`Rig::cdn_peak_connections`],
    /// by their client's address and port (as [`CdnRequest::connection`]
    /// names them): look them up in [`Rig::cdn_requests`] to tell busy
    /// ones from idle ones kept open. Empty without a CDN.
    pub fn cdn_connections_at_peak(&self) -> Vec<std::net::SocketAddr> {
        self.cdn.as_ref().map_or(Vec::new(), |c| c.peak_peers())
    }

    /// The TCP connections open to the CDN now (as
    /// [`Rig::cdn_peak_connections`] counts them): whether a client left
    /// any behind. 0 without a CDN.
    pub fn cdn_open_connections(&self) -> usize {
        self.cdn.as_ref().map_or(0, |c| c.open_connections())
    }

    /// The peak of [`Rig::cdn_peak_connections`] starts again from the
    /// connections open now. No-op without a CDN.
    pub fn reset_cdn_peak(&self) {
        if let Some(c) = &self.cdn {
            c.reset_peak();
        }
    }

    /// Every token request since start or the last [`Rig::clear_logs`].
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.token_log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Every CDN request since start or the last [`Rig::clear_logs`].
    pub fn cdn_requests(&self) -> Vec<CdnRequest> {
        self.cdn_log.snapshot()
    }

    /// Forgets the token and CDN request logs and starts a new window for
    /// [`Rig::registry_log`], [`Rig::registry_requests`] and
    /// [`Rig::cdn_peak_connections`].
    pub fn clear_logs(&self) {
        self.reset_cdn_peak();
        for (_, p) in &self.registries {
            p.mark_log();
        }
        if let Ok(mut l) = self.token_log.lock() {
            l.clear();
        }
        self.cdn_log.clear();
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

    /// Kills one registry (the pull-through cache's upstream, say) and
    /// leaves the others up. Its address, log and storage stay readable;
    /// nothing answers on its port any more.
    ///
    /// # Panics
    /// When the rig was started without that registry.
    pub fn stop_registry(&mut self, which: Which) {
        match self.registries.iter_mut().find(|(w, _)| *w == which) {
            Some((_, p)) => p.stop(),
            None => panic!("the rig was started without the {} registry", which.name()),
        }
    }

    /// `127.0.0.1:PORT` of a mirror that is down: a port the rig holds
    /// bound and never listens on, so every connection to it is refused
    /// and no other process can take it meanwhile.
    ///
    /// # Panics
    /// When the rig was started without `mirrors`.
    pub fn dead_mirror(&self) -> &str {
        match &self.dead_port {
            Some(d) => d.addr(),
            None => panic!("the rig was started without mirrors"),
        }
    }

    /// Makes `which` serve wrong bytes for the blob `digest`, at its right
    /// length and with its right `Docker-Content-Digest` header: every
    /// byte of the registry's data file is flipped (a new file renamed over
    /// the old one, so no other registry sharing it by a hard link is
    /// touched). distribution serves filesystem blobs without hashing them.
    pub fn serve_wrong_bytes(&self, which: Which, digest: &str) -> anyhow::Result<()> {
        mirrors::spoil_file(&self.blob_data_path(which, digest))
    }

    /// Waits (at most 10 s) until the pull-through cache has stored every
    /// blob in `digests` for `repo`. It streams a blob it lacks from its
    /// upstream to the client and, at the same time, copies it into its own
    /// storage in the background: a test that is about to stop the
    /// upstream waits for this first.
    pub fn wait_until_cached(&self, repo: &str, digests: &[&str]) -> anyhow::Result<()> {
        mirrors::wait_until_cached(&self.storage_dir(Which::PullThrough), repo, digests)
    }

    pub(super) fn process(&self, which: Which) -> Option<&RegistryProcess> {
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
