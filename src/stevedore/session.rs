//! A session: what the calls made for one caller share. Bearer tokens,
//! keyed by the origin they were earned at, scope and identity (concurrent
//! misses on one key wait for a single token request instead of each
//! running the handshake); the caller's credentials; the TLS trust, with
//! the HTTP clients that trust needs. C knows it as `TankCache`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::clients::TrustedClients;
use super::config::Config;
use super::credential::Credential;
use super::credentials::Credentials;
use super::download::Settings as DownloadSettings;
use super::error::{Error, Reason, Result};
use super::mirrors::sources::{MirrorSettings, Source};
use super::origin::Origin;
use super::reference::Repository;
use super::registry::Registry;
use super::secret::Secret;
use super::trust::Trust;

/// The lifetime a token gets when its issuer does not say, and the floor
/// under what it says (the distribution token spec's minimum).
const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before the issuer says they expire, so a
/// request never sets off with a token that dies in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// What a cached secret is bound to: the origin it was earned at (scheme
/// included, so nothing earned over https is offered over http), the
/// registry as the caller named it (whose credentials to use), what it may
/// be used for and the identity.
#[derive(Debug, Clone)]
pub struct CacheKey {
    origin: Origin,
    registry: Registry,
    scope: Scope,
    /// A credential's fingerprint; empty for anonymous calls.
    identity: String,
}

/// What a token is asked for: a registry grants scopes one resource at a
/// time, so a token earned for one is no good for another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Scope {
    /// `repository:<name>:pull`
    Pull(Repository),
    /// `registry:catalog:*`, the registry's list of repositories.
    Catalog,
}

impl CacheKey {
    pub fn pull(registry: &Registry, repository: &Repository) -> CacheKey {
        CacheKey::new(registry, Scope::Pull(repository.clone()))
    }

    /// The key of `registry`'s catalog (`/v2/_catalog`), which no
    /// repository's token opens.
    pub fn catalog(registry: &Registry) -> CacheKey {
        CacheKey::new(registry, Scope::Catalog)
    }

    fn new(registry: &Registry, scope: Scope) -> CacheKey {
        CacheKey {
            origin: registry.origin(),
            registry: registry.clone(),
            scope,
            identity: String::new(),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The repository this key is for; `None` for the catalog, which
    /// only registry-wide credentials open.
    pub fn repository(&self) -> Option<&Repository> {
        match &self.scope {
            Scope::Pull(repository) => Some(repository),
            Scope::Catalog => None,
        }
    }

    /// What the key is compared by: however the registry was written
    /// (`http://` or not), one origin and authority is one key.
    fn identity_fields(&self) -> (&Origin, &str, &Scope, &str) {
        (
            &self.origin,
            self.registry.authority(),
            &self.scope,
            &self.identity,
        )
    }

    /// Whether what is kept under this key was earned with no credential.
    pub fn is_anonymous(&self) -> bool {
        self.identity.is_empty()
    }

    /// The same key for calls made as `credential`.
    pub fn as_identity(&self, credential: Option<&Credential>) -> CacheKey {
        CacheKey {
            identity: credential.map(Credential::fingerprint).unwrap_or_default(),
            ..self.clone()
        }
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.identity_fields() == other.identity_fields()
    }
}

impl Eq for CacheKey {}

impl std::hash::Hash for CacheKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity_fields().hash(state);
    }
}

/// A token as the issuer handed it out.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: Secret,
    pub expires_in: Option<Duration>,
}

#[derive(Default)]
struct Slot {
    /// A bearer token or a Basic header that worked, and when it expires.
    token: Option<(Secret, Instant)>,
    flight: Arc<tokio::sync::Mutex<()>>,
    /// Token requests that have ended, and how the last one ended: a
    /// caller that waited for a request reuses its answer, failure too,
    /// instead of starting over behind it.
    ended: u64,
    last_answer: Option<Result<Secret>>,
}

pub struct Session {
    ttl: Duration,
    slots: Mutex<HashMap<CacheKey, Slot>>,
    pub credentials: Credentials,
    trust: Mutex<Trust>,
    /// The clients built for the trust as it is; dropped when the trust
    /// changes, so later calls see the change.
    clients: Mutex<Option<Arc<TrustedClients>>>,
    /// Where repositories are asked for besides their registry.
    mirrors: Mutex<MirrorSettings>,
    /// How big blobs are fetched: connections per blob and per host.
    downloads: Mutex<DownloadSettings>,
}

impl Default for Session {
    fn default() -> Self {
        Session::new(DEFAULT_TTL)
    }
}

impl Session {
    pub fn new(ttl: Duration) -> Session {
        Session {
            ttl,
            slots: Mutex::new(HashMap::new()),
            credentials: Credentials::default(),
            trust: Mutex::new(Trust::default()),
            clients: Mutex::new(None),
            mirrors: Mutex::new(MirrorSettings::default()),
            downloads: Mutex::new(DownloadSettings::default()),
        }
    }

    /// Changes this cache's TLS trust; calls that start afterwards see it.
    pub fn change_trust(&self, change: impl FnOnce(&mut Trust) -> Result<()>) -> Result<()> {
        let mut trust = self.trust.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut trust)?;
        *self.clients.lock().unwrap_or_else(PoisonError::into_inner) = None;
        Ok(())
    }

    /// Changes what this session knows of mirrors; calls that start
    /// afterwards see it. A failed change leaves the settings as they were.
    pub fn change_mirrors(
        &self,
        change: impl FnOnce(&mut MirrorSettings) -> Result<()>,
    ) -> Result<()> {
        let mut mirrors = self.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = mirrors.clone();
        change(&mut changed)?;
        *mirrors = changed;
        Ok(())
    }

    /// How calls that start afterwards fetch big blobs.
    pub fn set_download_settings(&self, settings: DownloadSettings) {
        *self
            .downloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = settings;
    }

    pub fn download_settings(&self) -> DownloadSettings {
        *self
            .downloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `BadInput`/`blocked` when registries.conf blocks all of `registry`.
    pub fn check_registry_blocked(&self, registry: &Registry) -> Result<()> {
        let mirrors = self.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
        mirrors.check_registry_blocked(registry)
    }

    /// Where `repository` on `registry` is asked for, in order.
    pub fn sources(&self, registry: &Registry, repository: &Repository) -> Result<Vec<Source>> {
        let mirrors = self.mirrors.lock().unwrap_or_else(PoisonError::into_inner);
        mirrors.sources(registry, repository)
    }

    /// The clients this cache's trust needs, shared by the calls that
    /// start while it stays as it is; `None` when it adds nothing to the
    /// defaults.
    pub fn trusted_clients(&self, config: &Config) -> Option<Arc<TrustedClients>> {
        // trust, then clients: the order change_trust takes them in.
        let trust = self.trust.lock().unwrap_or_else(PoisonError::into_inner);
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if trust.is_empty() {
            return None;
        }
        match &*clients {
            Some(c) if c.config() == config => Some(c.clone()),
            _ => {
                let built = Arc::new(TrustedClients::new(trust.clone(), config.clone()));
                *clients = Some(built.clone());
                Some(built)
            }
        }
    }

    /// A token for `key` that is still valid, if there is one.
    pub fn current(&self, key: &CacheKey) -> Option<Secret> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.get(key).and_then(Slot::valid_token)
    }

    /// A valid token other than `rejected`: the cached one if a concurrent
    /// caller already replaced it, else one fresh from `fetch`. Only one
    /// `fetch` per key runs at a time; the others wait, at most `wait` (the
    /// bound on one token request), and reuse its answer, even a failure.
    pub async fn obtain<F, Fut>(
        &self,
        key: &CacheKey,
        rejected: Option<&str>,
        wait: Duration,
        fetch: F,
    ) -> Result<Secret>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<IssuedToken>>,
    {
        let (flight, ended_before) = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.entry(key.clone()).or_default();
            (slot.flight.clone(), slot.ended)
        };
        let _turn = tokio::time::timeout(wait, flight.lock())
            .await
            .map_err(|_| {
                Error::auth(
                    Reason::TokenRequestFailed,
                    format!(
                        "another call's token request for {} did not end within {} s",
                        key.registry().authority(),
                        wait.as_secs_f64()
                    ),
                )
            })?;
        {
            let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get(key) {
                if let Some(token) = slot.valid_token() {
                    if rejected != Some(token.as_str()) {
                        return Ok(token);
                    }
                }
                // The request this call waited for answers it too, even
                // when its token is already too old for the cache to keep.
                if slot.ended > ended_before {
                    match &slot.last_answer {
                        Some(Ok(token)) if rejected != Some(token.as_str()) => {
                            return Ok(token.clone())
                        }
                        Some(Err(e)) => return Err(e.clone()),
                        _ => {}
                    }
                }
            }
        }
        let outcome = fetch().await;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.entry(key.clone()).or_default();
        slot.ended += 1;
        let issued = match outcome {
            Ok(issued) => issued,
            Err(e) => {
                slot.last_answer = Some(Err(e.clone()));
                return Err(e);
            }
        };
        slot.last_answer = Some(Ok(issued.token.clone()));
        slot.token = Some((
            issued.token.clone(),
            Instant::now() + self.lifetime(issued.expires_in),
        ));
        Ok(issued.token)
    }

    /// Keeps `value` (an `Authorization` header that worked, Basic
    /// credentials) for `key`, so later calls send it at once.
    pub fn remember(&self, key: &CacheKey, value: Secret) {
        let expires_at = Instant::now() + self.ttl;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry(key.clone()).or_default().token = Some((value, expires_at));
    }

    /// `min(cache TTL, max(expires_in, 60 s) - margin)`.
    fn lifetime(&self, expires_in: Option<Duration>) -> Duration {
        let issuer_says = expires_in
            .unwrap_or(MIN_TOKEN_LIFETIME)
            .max(MIN_TOKEN_LIFETIME)
            .saturating_sub(EXPIRY_MARGIN);
        self.ttl.min(issuer_says)
    }
}

impl Slot {
    fn valid_token(&self) -> Option<Secret> {
        match &self.token {
            Some((token, expires_at)) if Instant::now() < *expires_at => Some(token.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const WAIT: Duration = Duration::from_secs(60);

    fn pull_key(registry: &str, repo: &str) -> CacheKey {
        CacheKey::pull(
            &Registry::parse(registry).unwrap(),
            &Repository::parse(repo).unwrap(),
        )
    }

    fn issued(token: &str, secs: Option<u64>) -> Result<IssuedToken> {
        Ok(IssuedToken {
            token: token.into(),
            expires_in: secs.map(Duration::from_secs),
        })
    }

    #[test]
    fn lifetime_rule() {
        let c = Session::new(Duration::from_millis(300));
        assert_eq!(
            c.lifetime(Some(Duration::from_secs(300))),
            Duration::from_millis(300)
        );
        let c = Session::new(Duration::from_secs(600));
        assert_eq!(
            c.lifetime(Some(Duration::from_secs(300))),
            Duration::from_secs(295)
        );
        assert_eq!(
            c.lifetime(Some(Duration::from_secs(10))),
            Duration::from_secs(55)
        );
        assert_eq!(c.lifetime(None), Duration::from_secs(55));
        let c = Session::default();
        assert_eq!(
            c.lifetime(Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[tokio::test]
    async fn caches_until_expiry_then_refetches_once() {
        let cache = Session::new(Duration::from_millis(150));
        let key = pull_key("r:5000", "a/b");
        assert_eq!(cache.current(&key), None);
        let t = cache
            .obtain(&key, None, WAIT, || async { issued("t1", Some(300)) })
            .await
            .unwrap();
        assert_eq!(t.as_str(), "t1");
        assert_eq!(cache.current(&key).as_deref(), Some("t1"));
        assert_eq!(cache.current(&pull_key("r:5000", "a/c")), None);
        assert_eq!(cache.current(&pull_key("r:5001", "a/b")), None);
        // One authority, two schemes: two origins, two keys.
        assert_eq!(cache.current(&pull_key("http://r:5000", "a/b")), None);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(cache.current(&key), None);
        let t = cache
            .obtain(&key, None, WAIT, || async { issued("t2", None) })
            .await
            .unwrap();
        assert_eq!(t.as_str(), "t2");
    }

    #[tokio::test]
    async fn rejected_token_is_replaced_unless_already_replaced() {
        let cache = Session::default();
        let key = pull_key("r", "a");
        cache
            .obtain(&key, None, WAIT, || async { issued("old", None) })
            .await
            .unwrap();
        let t = cache
            .obtain(&key, Some("old"), WAIT, || async { issued("new", None) })
            .await
            .unwrap();
        assert_eq!(t.as_str(), "new");
        // A caller that was rejected with "old" finds "new" already there.
        let t = cache
            .obtain(&key, Some("old"), WAIT, || async {
                panic!("must not fetch")
            })
            .await
            .unwrap();
        assert_eq!(t.as_str(), "new");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_fetch_once() {
        let cache = Arc::new(Session::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let key = pull_key("r", "a");
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (cache, fetches, key) = (cache.clone(), fetches.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .obtain(&key, None, WAIT, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        issued("shared", None)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().as_str(), "shared");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    /// A cache that keeps nothing (TTL 0) still shares one request among
    /// the calls that waited for it: each fetching in turn would leave the
    /// last ones out of time although every request ended in time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn waiters_share_the_answer_they_waited_for_when_nothing_is_kept() {
        const CALLS: usize = 8;
        let cache = Arc::new(Session::new(Duration::ZERO));
        let fetches = Arc::new(AtomicUsize::new(0));
        let key = pull_key("r", "a");
        let flight = {
            let mut slots = cache.slots.lock().unwrap();
            slots.entry(key.clone()).or_default().flight.clone()
        };
        let mut tasks = Vec::new();
        for _ in 0..CALLS {
            let (cache, fetches, key, flight) =
                (cache.clone(), fetches.clone(), key.clone(), flight.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .obtain(&key, None, WAIT, || async move {
                        // The first request ends once every call is in
                        // `obtain` (each holds a clone of the flight there,
                        // besides the one it captured; the slot and this
                        // test hold one each).
                        if fetches.fetch_add(1, Ordering::SeqCst) == 0 {
                            while Arc::strong_count(&flight) < 2 * CALLS + 2 {
                                tokio::task::yield_now().await;
                            }
                        }
                        issued("shared", None)
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().as_str(), "shared");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failed_fetch_is_not_cached() {
        let cache = Session::default();
        let key = pull_key("r", "a");
        let e = cache
            .obtain(&key, None, WAIT, || async {
                Err(crate::stevedore::error::Error::auth(
                    Reason::TokenRequestFailed,
                    "boom",
                ))
            })
            .await
            .unwrap_err();
        assert_eq!(e.reason.id(), "token_request_failed");
        assert_eq!(cache.current(&key), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_for_another_callers_request_ends_with_its_bound() {
        let cache = Session::default();
        let key = pull_key("r", "a");
        let bound = Duration::from_secs(60);
        let stuck = cache.obtain(&key, None, bound, std::future::pending);
        let waiter = async {
            tokio::task::yield_now().await;
            let started = tokio::time::Instant::now();
            let e = cache
                .obtain(&key, None, bound, || async { panic!("must not fetch") })
                .await
                .unwrap_err();
            (e, started.elapsed())
        };
        tokio::select! {
            _ = stuck => unreachable!("the stuck request never ends"),
            (e, waited) = waiter => {
                assert_eq!(e.reason, Reason::TokenRequestFailed, "{e}");
                assert_eq!(waited, bound);
            }
        }
    }

    // Paused time on one thread: the clock moves only once every caller is
    // waiting, so all of them wait for the first one's request.
    #[tokio::test(start_paused = true)]
    async fn callers_that_waited_share_the_failure_instead_of_asking_again() {
        let cache = Arc::new(Session::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let key = pull_key("r", "a");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetches, key) = (cache.clone(), fetches.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .obtain(&key, None, WAIT, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Err(Error::auth(Reason::TokenRequestFailed, "boom"))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap_err().message, "boom");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }
}
