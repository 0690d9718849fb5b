//! Which HTTP client serves a URL. Each one is a connection pool with its
//! TLS settings; a cache's trust (its CAs, a registry's client certificate)
//! picks one per host, for every hop a call makes (the registry, its token
//! realm, each redirect), so a client certificate is presented only to the
//! host it was configured for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use url::Url;

use super::config::Config;
use super::error::{Error, Reason, Result};
use super::proxy;
use super::tls;
use super::trust::{TlsSettings, Trust};

/// Idle connections kept per origin: more than any sane number of threads
/// pulling from one registry at once.
const MAX_IDLE_PER_ORIGIN: usize = 32;
const MAX_IDLE_TIME: Duration = Duration::from_secs(90);

/// One HTTP client: a connection pool and the TLS settings it connects with.
pub struct Http {
    pub client: reqwest::Client,
    /// The same, speaking only HTTP/1.1: each request in flight holds a
    /// TCP connection of its own, where HTTP/2 would put them all on one as
    /// streams, which a CDN's per-connection cap throttles as one. For the
    /// ranges of one blob fetched at once.
    pub separate: reqwest::Client,
    /// For a client with a cache's trust but no client certificate: whether
    /// a server asked for one.
    unanswered_certificate_request: Option<Arc<tls::NoClientCertificate>>,
}

impl Http {
    /// `tls`: a cache's CAs and client certificate for the hosts this
    /// client serves; `None` for the defaults.
    pub fn new(config: &Config, tls: Option<&TlsSettings>) -> Result<Http> {
        let watch = tls
            .filter(|t| t.identity.is_none())
            .map(|_| Arc::new(tls::NoClientCertificate::default()));
        let tls = tls::client_config(tls, watch.clone())?;
        let mut http1 = tls.clone();
        http1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = build(config, tls, false)?;
        let separate = build(config, http1, true)?;
        Ok(Http {
            client,
            separate,
            unanswered_certificate_request: watch,
        })
    }

    /// A connection dropped by a server that had asked for a client
    /// certificate we could not present: a TLS refusal, not a network
    /// fault to retry.
    pub fn refused_for_certificate(&self, e: Error) -> Error {
        let asked = self
            .unanswered_certificate_request
            .as_ref()
            .is_some_and(|w| w.asked.load(std::sync::atomic::Ordering::Relaxed));
        if !asked || !matches!(e.reason, Reason::ConnectionReset | Reason::RequestFailed) {
            return e;
        }
        Error::transport(
            Reason::Tls,
            format!(
                "{} (the server asked for a client certificate and none is configured for it: \
                 see tank_cache_load_certs_dir)",
                e.message
            ),
        )
    }
}

/// A client with `config`'s knobs over `tls`; `http1_only` for one whose
/// requests in flight each hold a connection.
fn build(config: &Config, tls: rustls::ClientConfig, http1_only: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        // Redirects are ours to follow: the token must stay with its
        // origin, and https must never fall back to http.
        .redirect(reqwest::redirect::Policy::none())
        .read_timeout(config.idle_timeout)
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(MAX_IDLE_TIME)
        .pool_max_idle_per_host(MAX_IDLE_PER_ORIGIN)
        // Requests are small and written whole; waiting to coalesce
        // them only adds a round trip of delay.
        .tcp_nodelay(true)
        .user_agent(concat!("tank/", env!("CARGO_PKG_VERSION")));
    if http1_only {
        builder = builder.http1_only();
    }
    for (name, addr) in &config.resolve {
        builder = builder.resolve(name, *addr);
    }
    let proxies = proxy::from_env()?;
    if proxies.is_empty() {
        builder = builder.no_proxy();
    }
    for p in proxies {
        builder = builder.proxy(p);
    }
    builder
        .build()
        .map_err(|e| Error::internal(Reason::Runtime, format!("HTTP client: {e}")))
}

/// A cache's trust as it was when a call started, and the clients built
/// for it, one per trust entry (a host's own settings, or the CAs for
/// every host).
pub struct TrustedClients {
    trust: Trust,
    config: Config,
    built: Mutex<HashMap<String, Arc<Http>>>,
}

impl TrustedClients {
    pub fn new(trust: Trust, config: Config) -> TrustedClients {
        TrustedClients {
            trust,
            config,
            built: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The client for `url`'s host; `None` when this trust adds nothing
    /// there, so the defaults serve it.
    pub fn for_url(&self, url: &Url) -> Result<Option<Arc<Http>>> {
        let Some(entry) = self.trust.entry_for(url) else {
            return Ok(None);
        };
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(http) = built.get(&entry) {
            return Ok(Some(http.clone()));
        }
        let http = Arc::new(Http::new(
            &self.config,
            self.trust.settings_for(&entry).as_ref(),
        )?);
        built.insert(entry, http.clone());
        Ok(Some(http))
    }
}
