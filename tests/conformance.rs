//! SPEC section 2, row by row, through the C ABI: real registries with real
//! token auth and a CDN where a real registry can show the behaviour, a
//! scripted origin where only a misbehaving server can.

mod common;

use common::scripted::{respond, Request, ScriptedServer};
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn token_rig() -> Rig {
    start(RigOptions::token_only())
}

/// The multi-arch pull the original's callers make: index, the amd64
/// manifest, its config and layers.
fn pull_amd64(rig: &Rig, which: Which, cache: &Cache) {
    let reg = rig.registry(which);
    let idx = &rig.info().images.oci_index;
    let top = manifest(reg, &idx.repo, &idx.tag, cache).unwrap();
    let amd64 = top
        .manifests
        .iter()
        .find(|d| d.platform.as_deref() == Some("linux/amd64"))
        .unwrap();
    let image = manifest(reg, &idx.repo, &amd64.digest, cache).unwrap();
    let config = image.config.unwrap();
    for d in std::iter::once(&config).chain(&image.layers) {
        let bytes = blob(reg, &idx.repo, &d.digest, cache).unwrap();
        assert_eq!(sha256(&bytes), d.digest);
    }
}

#[test]
fn shared_cache_earns_one_token_for_a_whole_pull() {
    let rig = token_rig();
    rig.clear_logs();
    let cache = Cache::new();
    pull_amd64(&rig, Which::Token, &cache);
    let reqs = rig.token_requests();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    assert_eq!(reqs[0].scopes, ["repository:tank/multiarch:pull"]);
    assert_eq!(reqs[0].service.as_deref(), Some("tank-rig"));
    assert!(
        !reqs[0].authorization,
        "anonymous pull sends no credentials"
    );
}

#[test]
fn without_a_cache_every_call_runs_the_handshake() {
    let rig = token_rig();
    let img = &rig.info().images.oci_image;
    rig.clear_logs();
    let none = Cache::none();
    manifest(rig.registry(Which::Token), &img.repo, &img.tag, &none).unwrap();
    manifest(rig.registry(Which::Token), &img.repo, &img.tag, &none).unwrap();
    blob(rig.registry(Which::Token), &img.repo, &img.config, &none).unwrap();
    assert_eq!(rig.token_requests().len(), 3);
}

#[test]
fn an_expired_entry_costs_exactly_one_new_handshake() {
    let rig = token_rig();
    let img = &rig.info().images.oci_image;
    let reg = rig.registry(Which::Token);
    rig.clear_logs();
    let cache = Cache::with_ttl_ms(300);
    manifest(reg, &img.repo, &img.tag, &cache).unwrap();
    blob(reg, &img.repo, &img.config, &cache).unwrap();
    assert_eq!(rig.token_requests().len(), 1);
    std::thread::sleep(Duration::from_millis(400));
    manifest(reg, &img.repo, &img.tag, &cache).unwrap();
    blob(reg, &img.repo, &img.config, &cache).unwrap();
    assert_eq!(
        rig.token_requests().len(),
        2,
        "one new handshake after expiry"
    );
}

#[test]
fn the_cache_is_keyed_by_registry_and_repository() {
    let rig = token_rig();
    let reg = rig.registry(Which::Token);
    let (a, b) = (
        &rig.info().images.oci_image,
        &rig.info().images.docker_image,
    );
    rig.clear_logs();
    let cache = Cache::new();
    manifest(reg, &a.repo, &a.tag, &cache).unwrap();
    manifest(reg, &b.repo, &b.tag, &cache).unwrap();
    manifest(reg, &a.repo, &a.tag, &cache).unwrap();
    let scopes: Vec<_> = rig
        .token_requests()
        .into_iter()
        .flat_map(|r| r.scopes)
        .collect();
    assert_eq!(
        scopes,
        [
            format!("repository:{}:pull", a.repo),
            format!("repository:{}:pull", b.repo)
        ]
    );

    // The same repository under another registry name (same server) is
    // another key: its token is earned, not borrowed.
    let port = reg.rsplit(':').next().unwrap();
    manifest(&format!("localhost:{port}"), &a.repo, &a.tag, &cache).unwrap();
    assert_eq!(rig.token_requests().len(), 3);
}

/// A scripted registry that issues numbered tokens and accepts only the
/// newest "generation"; the test can revoke every token issued so far.
struct RevokingRegistry {
    origin: ScriptedServer,
    revoked_below: Arc<AtomicUsize>,
    issued: Arc<AtomicUsize>,
}

impl RevokingRegistry {
    fn start() -> RevokingRegistry {
        let revoked_below = Arc::new(AtomicUsize::new(0));
        let issued = Arc::new(AtomicUsize::new(0));
        let (rb, iss) = (revoked_below.clone(), issued.clone());
        let realm = Arc::new(std::sync::OnceLock::<String>::new());
        let realm_in = realm.clone();
        let origin = ScriptedServer::start(move |req: &Request, conn| {
            let realm = realm_in.get().unwrap();
            if req.path() == "/token" {
                let n = iss.fetch_add(1, Ordering::SeqCst) + 1;
                let body = format!(r#"{{"token":"tok-{n}","expires_in":300}}"#);
                return respond(
                    conn,
                    200,
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                );
            }
            let good = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer tok-"))
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n > rb.load(Ordering::SeqCst));
            if good {
                respond(
                    conn,
                    200,
                    &[("Content-Type", OCI_MANIFEST)],
                    br#"{"schemaVersion":2}"#,
                );
            } else {
                let challenge = format!(
                    r#"Bearer realm="{realm}/token",service="scripted",scope="repository:a/b:pull""#
                );
                respond(conn, 401, &[("WWW-Authenticate", &challenge)], b"");
            }
        });
        realm.set(origin.url()).unwrap();
        RevokingRegistry {
            origin,
            revoked_below,
            issued,
        }
    }
}

#[test]
fn a_rejected_token_is_replaced_not_retried_forever() {
    let reg = RevokingRegistry::start();
    let cache = Cache::new();
    manifest(reg.origin.addr(), "a/b", "v1", &cache).unwrap();
    manifest(reg.origin.addr(), "a/b", "v1", &cache).unwrap();
    assert_eq!(reg.issued.load(Ordering::SeqCst), 1);

    reg.revoked_below.store(1, Ordering::SeqCst);
    manifest(reg.origin.addr(), "a/b", "v1", &cache).unwrap();
    assert_eq!(
        reg.issued.load(Ordering::SeqCst),
        2,
        "one new token replaces the rejected one"
    );
    let tokens: Vec<_> = reg
        .origin
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        tokens,
        [
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-1",
            "Bearer tok-2"
        ]
    );

    // Every token refused: one handshake, one retry, then HTTP 401.
    reg.revoked_below.store(usize::MAX - 1, Ordering::SeqCst);
    let before = reg.origin.requests().len();
    let e = manifest(reg.origin.addr(), "a/b", "v1", &cache).unwrap_err();
    assert_eq!((e.status, e.http_status), (TankStatus::TANK_ERR_HTTP, 401));
    assert_eq!(
        reg.origin.requests().len() - before,
        3,
        "request, token, retry"
    );
}

#[test]
fn a_token_for_one_repository_is_not_sent_for_another() {
    let reg = RevokingRegistry::start();
    let cache = Cache::new();
    manifest(reg.origin.addr(), "a/b", "v1", &cache).unwrap();
    manifest(reg.origin.addr(), "c/d", "v1", &cache).unwrap();
    let first_for_cd = reg
        .origin
        .requests()
        .into_iter()
        .find(|r| r.path().starts_with("/v2/c/d/"))
        .unwrap();
    assert_eq!(first_for_cd.header("authorization"), None);
}

#[test]
fn cdn_redirects_never_carry_the_token() {
    let rig = start(RigOptions::cdn_only());
    rig.clear_logs();
    let cache = Cache::new();
    pull_amd64(&rig, Which::Cdn, &cache);
    let cdn = rig.cdn_requests();
    assert!(cdn.len() >= 3, "blobs came through the CDN: {cdn:#?}");
    assert!(
        cdn.iter().all(|r| !r.authorization),
        "the CDN saw a token: {cdn:#?}"
    );
    assert_eq!(rig.token_requests().len(), 1);
}

#[test]
fn redirect_loops_stop_after_ten_hops() {
    let origin = ScriptedServer::start(|req, conn| {
        let next = format!("/hop{}", req.target.len());
        respond(conn, 307, &[("Location", &next)], b"");
    });
    let digest = sha256(b"x");
    let e = blob(origin.addr(), "a/b", &digest, &Cache::none()).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_TRANSPORT, "too_many_redirects")
    );
    assert_eq!(
        origin.requests().len(),
        11,
        "the request and ten redirects, not retried"
    );
}

#[test]
fn redirects_to_other_schemes_are_refused() {
    let origin = ScriptedServer::start(|_, conn| {
        respond(conn, 302, &[("Location", "file:///etc/passwd")], b"")
    });
    let e = blob(origin.addr(), "a/b", &sha256(b"x"), &Cache::none()).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_TRANSPORT, "insecure_redirect")
    );
}

/// Serves `body` as a manifest with the given extra headers.
fn manifest_origin(body: &'static [u8], headers: Vec<(&'static str, String)>) -> ScriptedServer {
    ScriptedServer::start(move |_, conn| {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        respond(conn, 200, &hs, body);
    })
}

const BODY: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;

#[test]
fn manifest_digests() {
    // No Docker-Content-Digest: the sha256 of the bytes.
    let o = manifest_origin(BODY, vec![]);
    let m = manifest(o.addr(), "a/b", "v1", &Cache::none()).unwrap();
    assert_eq!(m.digest, sha256(BODY));
    assert_eq!(
        m.media_type, OCI_MANIFEST,
        "no Content-Type: the JSON's mediaType"
    );

    // A matching header is taken, a mismatching one is an error.
    let o = manifest_origin(BODY, vec![("Docker-Content-Digest", sha256(BODY))]);
    assert_eq!(
        manifest(o.addr(), "a/b", "v1", &Cache::none())
            .unwrap()
            .digest,
        sha256(BODY)
    );
    let o = manifest_origin(BODY, vec![("Docker-Content-Digest", sha256(b"other"))]);
    let e = manifest(o.addr(), "a/b", "v1", &Cache::none()).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (
            TankStatus::TANK_ERR_DIGEST_MISMATCH,
            "manifest_digest_mismatch"
        )
    );

    // By digest, the bytes must hash to it whatever the header says.
    let o = manifest_origin(BODY, vec![]);
    let e = manifest(o.addr(), "a/b", &sha256(b"other"), &Cache::none()).unwrap_err();
    assert_eq!(e.reason, "manifest_digest_mismatch");
    let o = manifest_origin(BODY, vec![("Docker-Content-Digest", sha256(b"other"))]);
    let e = manifest(o.addr(), "a/b", &sha256(b"other"), &Cache::none()).unwrap_err();
    assert_eq!(
        e.reason, "manifest_digest_mismatch",
        "a lying header does not vouch for the bytes"
    );
    let o = manifest_origin(BODY, vec![]);
    assert_eq!(
        manifest(o.addr(), "a/b", &sha256(BODY), &Cache::none())
            .unwrap()
            .digest,
        sha256(BODY)
    );
}

#[test]
fn a_blob_altered_on_disk_is_a_digest_mismatch() {
    let rig = start(RigOptions::plain_only());
    let img = &rig.info().images.oci_image;
    let victim = &img.layers[1];
    let path = rig.blob_data_path(Which::Plain, victim);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let e = blob(
        rig.registry(Which::Plain),
        &img.repo,
        victim,
        &Cache::none(),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_DIGEST_MISMATCH, "digest_mismatch")
    );
    assert!(e.message.contains(victim.as_str()), "{}", e.message);
}

#[test]
fn media_type_is_the_content_type_as_sent_and_accept_is_in_spec_order() {
    let ct = "application/vnd.oci.image.manifest.v1+json; charset=utf-8";
    let o = manifest_origin(BODY, vec![("Content-Type", ct.to_owned())]);
    let m = manifest(o.addr(), "a/b", "v1", &Cache::none()).unwrap();
    assert_eq!(m.media_type, ct);
    let accept = o.requests()[0].header("accept").unwrap().to_owned();
    assert_eq!(
        accept,
        "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, \
         application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let _ = blob(o.addr(), "a/b", &sha256(BODY), &Cache::none());
    assert_eq!(
        o.requests()[1].header("accept"),
        Some("*/*"),
        "blob requests ask for no particular media type"
    );

    // A JSON body without mediaType nor Content-Type: the OCI manifest type.
    let o = manifest_origin(br#"{"schemaVersion":2}"#, vec![]);
    assert_eq!(
        manifest(o.addr(), "a/b", "v1", &Cache::none())
            .unwrap()
            .media_type,
        OCI_MANIFEST
    );
}

#[test]
fn scheme_rule_against_live_servers() {
    let rig = start(RigOptions::plain_only());
    let img = &rig.info().images.oci_image;
    let port = rig
        .registry(Which::Plain)
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    for registry in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
    ] {
        let m = manifest(&registry, &img.repo, &img.tag, &Cache::none())
            .unwrap_or_else(|e| panic!("{registry}: {e:?}"));
        assert_eq!(m.digest, img.digest);
    }

    // An explicit https:// and a host outside the loopback rule both open
    // with a TLS ClientHello (record type 0x16), not an HTTP request line.
    let o = ScriptedServer::start(|_, _| {});
    let tls_port = o.addr().rsplit(':').next().unwrap().to_owned();
    for registry in [
        format!("https://127.0.0.1:{tls_port}"),
        format!("[::ffff:7f00:1]:{tls_port}"),
    ] {
        let e = manifest(&registry, "a/b", "v1", &Cache::none()).unwrap_err();
        assert_eq!(
            e.status,
            TankStatus::TANK_ERR_TRANSPORT,
            "{registry}: {e:?}"
        );
    }
    let openings = o.raw_openings.lock().unwrap().clone();
    assert!(openings.len() >= 2, "{openings:?}");
    assert!(
        openings.iter().all(|b| b.first() == Some(&0x16)),
        "not TLS: {openings:?}"
    );
    assert!(
        o.requests().is_empty(),
        "plain HTTP was spoken to an https registry"
    );
}

#[test]
fn retries_503_then_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let o = ScriptedServer::start(move |_, conn| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            respond(conn, 503, &[], b"busy");
        } else {
            respond(conn, 200, &[], BODY);
        }
    });
    let m = manifest(o.addr(), "a/b", "v1", &Cache::none()).unwrap();
    assert_eq!(m.digest, sha256(BODY));
    assert_eq!(o.requests().len(), 2);
}

#[test]
fn retry_after_is_honoured_on_429() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let o = ScriptedServer::start(move |_, conn| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            respond(conn, 429, &[("Retry-After", "1")], b"");
        } else {
            respond(conn, 200, &[], BODY);
        }
    });
    manifest(o.addr(), "a/b", "v1", &Cache::none()).unwrap();
    let reqs = o.requests();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_millis(1900),
        "waited {waited:?}"
    );
}

#[test]
fn a_persistent_500_gives_up_after_three_retries() {
    let o = ScriptedServer::start(|_, conn| respond(conn, 500, &[], b"broken"));
    let started = Instant::now();
    let e = blob(o.addr(), "a/b", &sha256(b"x"), &Cache::none()).unwrap_err();
    assert_eq!(
        (e.status, e.http_status, e.reason.as_str()),
        (TankStatus::TANK_ERR_HTTP, 500, "http_status")
    );
    let reqs = o.requests();
    assert_eq!(reqs.len(), 4, "the first try and 3 retries");
    let gaps: Vec<u64> = reqs
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis() as u64)
        .collect();
    for (gap, want) in gaps.iter().zip([1000, 2000, 4000]) {
        assert!(*gap >= want - 50 && *gap < want + 900, "backoff {gaps:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_sized_blob_is_read_no_further_than_its_size() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = &rig.info().images.oci_image;
    let layer = &img.layers[2];
    let size = img.blob_sizes[layer];
    let bytes = blob_sized(reg, &img.repo, layer, size, &Cache::none()).unwrap();
    assert_eq!(&sha256(&bytes), layer);
    for wrong in [size - 1, size + 1] {
        let e = blob_sized(reg, &img.repo, layer, wrong, &Cache::none()).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_PROTOCOL, "length_mismatch"),
            "size {wrong}: {}",
            e.message
        );
    }

    // A chunked body that never ends: stopped just past the size.
    let wrote = Arc::new(AtomicUsize::new(0));
    let w = wrote.clone();
    let endless = ScriptedServer::start(move |_, conn| {
        common::scripted::respond_head(conn, 200, &[("Transfer-Encoding", "chunked")]);
        let n = common::scripted::stream_chunked(conn, 1 << 30, b'x');
        w.store(n as usize + 1, Ordering::SeqCst);
    });
    let e = blob_sized(
        endless.addr(),
        "a/b",
        &sha256(b"x"),
        1 << 20,
        &Cache::none(),
    )
    .unwrap_err();
    assert_eq!(e.reason, "length_mismatch", "{}", e.message);
    // The origin stops writing once tank hangs up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while wrote.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the origin is still writing");
        std::thread::sleep(Duration::from_millis(10));
    }
    let wrote = wrote.load(Ordering::SeqCst) - 1;
    assert!(wrote < 16 << 20, "read on to {wrote} bytes");
}

/// (connection number, request number on it), in arrival order.
type Arrivals = Arc<std::sync::Mutex<Vec<(usize, usize)>>>;

/// A keep-alive origin whose first connection answers one request and then
/// hangs up on the next, as a server whose idle timeout fired just as the
/// request arrived.
fn hang_up_on_reuse(body: &'static [u8]) -> (String, Arrivals) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (conn_no, conn) in listener.incoming().enumerate() {
            let Ok(mut conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                for req_no in 0.. {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    log.lock().unwrap().push((conn_no, req_no));
                    if conn_no == 0 && req_no == 1 {
                        return; // hang up, unanswered
                    }
                    let close = if conn_no == 0 {
                        ""
                    } else {
                        "Connection: close\r\n"
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{close}\r\n",
                        body.len()
                    );
                    conn.write_all(head.as_bytes()).unwrap();
                    conn.write_all(body).unwrap();
                }
            });
        }
    });
    (addr, seen)
}

#[test]
fn a_pooled_connection_the_server_dropped_is_replaced_at_once() {
    const BODY: &[u8] = b"bytes over a reused connection";
    let (addr, seen) = hang_up_on_reuse(BODY);
    let digest = sha256(BODY);
    assert_eq!(blob(&addr, "a/b", &digest, &Cache::none()).unwrap(), BODY);
    let started = Instant::now();
    assert_eq!(blob(&addr, "a/b", &digest, &Cache::none()).unwrap(), BODY);
    let took = started.elapsed();
    assert_eq!(
        *seen.lock().unwrap(),
        [(0, 0), (0, 1), (1, 0)],
        "the second call reused the first connection, then went to a new one"
    );
    assert!(
        took < Duration::from_millis(900),
        "the resend waited for a retry backoff: {took:?}"
    );
}
