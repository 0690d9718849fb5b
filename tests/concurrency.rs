//! Many threads, one cache, through the C ABI: no deadlock (a watchdog fails
//! the test instead of hanging it), every byte verified, and single-flight
//! token requests. The cache is freed only after the threads finish, so the
//! same binary run under valgrind (`scripts/valgrind-abi.sh`, with
//! `TANK_CONCURRENCY_ROUNDS` lowered) checks for memory errors and leaks.

mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::scripted::{respond, ScriptedServer};
use common::*;

const THREADS: usize = 8;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pulls per thread: 50, or `TANK_CONCURRENCY_ROUNDS` (valgrind uses fewer).
fn rounds() -> usize {
    std::env::var("TANK_CONCURRENCY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// How long all threads may take before the test calls it a deadlock.
fn deadline() -> Duration {
    let secs = std::env::var("TANK_CONCURRENCY_DEADLINE_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(180);
    Duration::from_secs(secs)
}

/// A raw cache handle shared by threads, as a C program shares it.
#[derive(Clone, Copy)]
struct Shared(*mut TankCache);
// SAFETY: `TankCache` is documented thread-safe; the handle outlives the
// threads (freed after they are all joined).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Borrows the handle as a `Cache` that does not free it on drop.
    /// (A method, so closures capture the `Send` wrapper, not its field.)
    fn borrow(self) -> std::mem::ManuallyDrop<Cache> {
        std::mem::ManuallyDrop::new(Cache(self.0))
    }
}

/// Runs `work(thread)` on `THREADS` threads released together, and fails
/// (rather than hangs) if they have not all finished by the deadline.
fn run_threads(work: impl Fn(usize) + Send + Sync + 'static) {
    let work = Arc::new(work);
    let start = Arc::new(Barrier::new(THREADS));
    let (done, finished) = mpsc::channel();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (work, start, done) = (work.clone(), start.clone(), done.clone());
            std::thread::spawn(move || {
                start.wait();
                let outcome = catch_unwind(AssertUnwindSafe(|| work(t)));
                let _ = done.send((t, outcome.is_ok()));
                if let Err(panic) = outcome {
                    std::panic::resume_unwind(panic);
                }
            })
        })
        .collect();
    drop(done);
    let until = Instant::now() + deadline();
    for n in 0..THREADS {
        let left = until.saturating_duration_since(Instant::now());
        match finished.recv_timeout(left) {
            Ok((_, true)) => {}
            Ok((t, false)) => panic!("thread {t} failed (its panic is printed above)"),
            Err(_) => panic!(
                "deadlock? only {n} of {THREADS} threads finished within {:?}",
                deadline()
            ),
        }
    }
    for h in handles {
        h.join().unwrap();
    }
}

/// One whole pull of the multi-arch image: index by tag, the amd64 image
/// by digest, its config and layers; every blob re-hashed here too.
/// Returns the bytes pulled.
fn pull(reg: &str, idx: &tank_testrig::IndexInfo, cache: &Cache) -> u64 {
    let top = manifest(reg, &idx.repo, &idx.tag, cache).unwrap();
    assert_eq!(top.digest, idx.digest);
    assert_eq!(sha256(&top.raw), idx.digest);
    let amd64 = top
        .manifests
        .iter()
        .find(|d| d.platform.as_deref() == Some("linux/amd64"))
        .unwrap();
    let image = manifest(reg, &idx.repo, &amd64.digest, cache).unwrap();
    assert_eq!(sha256(&image.raw), amd64.digest);
    let mut bytes = (top.raw.len() + image.raw.len()) as u64;
    for d in std::iter::once(image.config.as_ref().unwrap()).chain(&image.layers) {
        let blob = blob(reg, &idx.repo, &d.digest, cache).unwrap();
        assert_eq!(sha256(&blob), d.digest, "a blob arrived unverified");
        assert_eq!(blob.len() as u64, d.size);
        bytes += blob.len() as u64;
    }
    bytes
}

/// Token requests per scope.
fn per_scope(rig: &Rig) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for r in rig.token_requests() {
        for s in r.scopes {
            *by.entry(s).or_default() += 1;
        }
    }
    by
}

#[test]
fn eight_threads_pull_one_image_through_one_cache() {
    let rig = start(RigOptions::token_only());
    let reg = rig.registry(Which::Token).to_owned();
    let idx = rig.info().images.oci_index.clone();
    rig.clear_logs();
    // A TTL far beyond the run: the issuer's 300 s caps it at 295 s, so the
    // one token stays valid throughout and one request is all there may be.
    let cache = Shared(tank_cache_new_with_ttl(600_000));
    let pulled = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    {
        let (pulled, bytes, idx, reg) = (pulled.clone(), bytes.clone(), idx.clone(), reg.clone());
        run_threads(move |_| {
            let c = cache.borrow();
            for _ in 0..rounds() {
                let n = pull(&reg, &idx, &c);
                bytes.fetch_add(n as usize, Ordering::Relaxed);
                pulled.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    unsafe { tank_cache_free(cache.0) };
    let took = started.elapsed();
    let pulls = pulled.load(Ordering::Relaxed);
    assert_eq!(pulls, THREADS * rounds());
    let scopes = per_scope(&rig);
    eprintln!(
        "FIGURE {THREADS} threads x {} pulls: {pulls} pulls, {} bytes verified, in {took:.2?}; token requests {scopes:?}",
        rounds(),
        bytes.load(Ordering::Relaxed)
    );
    assert_eq!(
        scopes,
        BTreeMap::from([(format!("repository:{}:pull", idx.repo), 1)]),
        "exactly one token request for the one cache key"
    );
}

#[test]
fn two_keys_at_once_get_one_token_each() {
    let rig = start(RigOptions::token_only());
    let reg = rig.registry(Which::Token).to_owned();
    let images = [
        rig.info().images.oci_image.clone(),
        rig.info().images.docker_image.clone(),
    ];
    rig.clear_logs();
    let cache = Arc::new(Cache::with_ttl_ms(600_000));
    {
        let (cache, reg, images) = (cache.clone(), reg.clone(), images.clone());
        run_threads(move |t| {
            let img = &images[t % 2];
            for _ in 0..rounds().min(10) {
                let m = manifest(&reg, &img.repo, &img.tag, &cache).unwrap();
                assert_eq!(m.digest, img.digest);
                let config = blob(&reg, &img.repo, &img.config, &cache).unwrap();
                assert_eq!(sha256(&config), img.config);
            }
        });
    }
    drop(cache);
    let scopes = per_scope(&rig);
    let want: BTreeMap<_, _> = images
        .iter()
        .map(|i| (format!("repository:{}:pull", i.repo), 1))
        .collect();
    assert_eq!(scopes, want, "one token request per cache key");
}

/// A scripted registry whose token endpoint takes 30 ms and counts how many
/// token requests are in flight at once.
struct SlowIssuer {
    origin: ScriptedServer,
    issued: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

fn slow_issuer() -> SlowIssuer {
    let issued = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let base = Arc::new(OnceLock::<String>::new());
    let (iss, inf, max, b) = (
        issued.clone(),
        in_flight.clone(),
        max_in_flight.clone(),
        base.clone(),
    );
    let origin = ScriptedServer::start(move |req, conn| {
        if req.path() == "/token" {
            let now = inf.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            // The issuer is slow: the window for a second request is wide.
            std::thread::sleep(Duration::from_millis(30));
            let n = iss.fetch_add(1, Ordering::SeqCst) + 1;
            inf.fetch_sub(1, Ordering::SeqCst);
            let body = format!(r#"{{"token":"tok-{n}","expires_in":300}}"#);
            return respond(conn, 200, &[], body.as_bytes());
        }
        if req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer tok-"))
        {
            return respond(
                conn,
                200,
                &[("Content-Type", OCI_MANIFEST)],
                br#"{"schemaVersion":2}"#,
            );
        }
        let challenge = format!(
            r#"Bearer realm="{}/token",service="s",scope="repository:a/b:pull""#,
            b.get().unwrap()
        );
        respond(conn, 401, &[("WWW-Authenticate", &challenge)], b"");
    });
    base.set(origin.url()).unwrap();
    SlowIssuer {
        origin,
        issued,
        max_in_flight,
    }
}

#[test]
fn tokens_expiring_under_load_are_refreshed_one_request_at_a_time() {
    let s = slow_issuer();
    let ttl = Duration::from_millis(200);
    let cache = Arc::new(Cache::with_ttl_ms(ttl.as_millis() as u64));
    let addr = s.origin.addr().to_owned();
    let started = Instant::now();
    let run_for = Duration::from_millis(1500);
    {
        let cache = cache.clone();
        run_threads(move |_| {
            while started.elapsed() < run_for {
                manifest(&addr, "a/b", "v1", &cache).unwrap();
            }
        });
    }
    let took = started.elapsed();
    let issued = s.issued.load(Ordering::SeqCst);
    let epochs = (took.as_millis() / ttl.as_millis()) as usize + 2;
    eprintln!(
        "FIGURE expiring tokens: {issued} token requests in {took:.2?} at a {ttl:?} TTL, at most {} at once",
        s.max_in_flight.load(Ordering::SeqCst)
    );
    assert_eq!(
        s.max_in_flight.load(Ordering::SeqCst),
        1,
        "two token requests for one key were in flight at once"
    );
    assert!(
        (2..=epochs).contains(&issued),
        "{issued} token requests, expected one per expiry (at most {epochs})"
    );
}

#[test]
fn without_a_cache_every_call_shakes_hands_and_nothing_is_shared() {
    let s = slow_issuer();
    let addr = s.origin.addr().to_owned();
    run_threads(move |_| {
        for _ in 0..3 {
            manifest(&addr, "a/b", "v1", &Cache::none()).unwrap();
        }
    });
    assert_eq!(s.issued.load(Ordering::SeqCst), THREADS * 3);
}

#[test]
fn freeing_the_cache_while_a_call_is_in_flight_is_safe() {
    // The origin tells the test when the call has reached it, then waits
    // for the test to free the cache before it answers.
    let (arrived_tx, arrived) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    let arrived_tx = Mutex::new(arrived_tx);
    let go_rx = Mutex::new(go_rx);
    let s = {
        let issued = Arc::new(AtomicUsize::new(0));
        let i = issued.clone();
        let origin = ScriptedServer::start(move |req, conn| {
            if req.path() == "/token" {
                i.fetch_add(1, Ordering::SeqCst);
                let _ = arrived_tx.lock().unwrap().send(());
                let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(10));
                return respond(conn, 200, &[], br#"{"token":"tok-1"}"#);
            }
            if req.header("authorization") == Some("Bearer tok-1") {
                return respond(conn, 200, &[], br#"{"schemaVersion":2}"#);
            }
            let realm = format!(
                r#"Bearer realm="http://{}/token""#,
                req.header("host").unwrap()
            );
            respond(conn, 401, &[("WWW-Authenticate", &realm)], b"");
        });
        (origin, issued)
    };
    let cache = Shared(tank_cache_new());
    let addr = s.0.addr().to_owned();
    let call = std::thread::spawn(move || {
        let c = cache.borrow();
        manifest(&addr, "a/b", "v1", &c)
    });
    arrived
        .recv_timeout(Duration::from_secs(10))
        .expect("the call reached the token endpoint");
    // The call holds its own reference; the handle goes now.
    unsafe { tank_cache_free(cache.0) };
    go.send(()).unwrap();
    let m = call.join().unwrap().expect("the call in flight completes");
    assert_eq!(m.raw, br#"{"schemaVersion":2}"#);
    assert_eq!(s.1.load(Ordering::SeqCst), 1);
}

/// Connections the calls in `work` open to `registry`'s port.
fn connections_opened(registry: &str, work: impl FnOnce()) -> usize {
    let port: u16 = registry.rsplit(':').next().unwrap().parse().unwrap();
    let before = tank_testrig::client_sockets_to(port);
    work();
    tank_testrig::client_sockets_to(port)
        .difference(&before)
        .count()
}

#[test]
fn connections_are_reused_not_opened_per_request() {
    let rig = start(RigOptions {
        many_layers: Some((50, 1)),
        ..RigOptions::token_only()
    });
    let reg = rig.registry(Which::Token).to_owned();
    let image = rig.info().images.many.clone().unwrap();
    let digests: Vec<String> = image.layers.clone();

    // One thread: the 401, the retry with the token and every blob after
    // it reuse a connection. hyper's pool may dial once more while a
    // finished body's connection is on its way back (hyper#4134): one
    // extra socket, accepted.
    let cache = Cache::new();
    let one = connections_opened(&reg, || {
        for d in &digests[..6] {
            assert_eq!(sha256(&blob(&reg, &image.repo, d, &cache).unwrap()), *d);
        }
    });
    eprintln!("FIGURE 6 blobs by 1 thread: {one} connections");
    assert!(
        (1..=2).contains(&one),
        "sequential calls must reuse their connection: {one} connections"
    );

    // Eight threads taking the layers one at a time from a shared list.
    let cache = Shared(tank_cache_new());
    let next = Arc::new(AtomicUsize::new(0));
    let opened = connections_opened(&reg, || {
        let (reg, repo, digests, next) = (
            reg.clone(),
            image.repo.clone(),
            digests.clone(),
            next.clone(),
        );
        run_threads(move |_| {
            let c = cache.borrow();
            while let Some(d) = digests.get(next.fetch_add(1, Ordering::SeqCst)) {
                assert_eq!(sha256(&blob(&reg, &repo, d, &c).unwrap()), *d);
            }
        });
    });
    unsafe { tank_cache_free(cache.0) };
    eprintln!(
        "FIGURE {} blobs by {THREADS} threads: {opened} connections",
        digests.len()
    );
    // Reuse, not a connection per request: at most one spare per 2 threads.
    assert!(
        (1..=THREADS + THREADS / 2).contains(&opened),
        "{opened} connections for {THREADS} threads"
    );
}
