//! Hostile origins: a scripted HTTP server on loopback that misbehaves on
//! purpose. Every case must end with the right status and reason id, in
//! bounded time and memory, and the test process (the host) must live.
//!
//! Most cases go through the C ABI with the shipped defaults (15 s idle
//! timeout, 3 retries at 1/2/4 s). Cases whose defaults would only add
//! waiting (a stall *before* the headers is retried: ~67 s) run on the async
//! core with a short `Config` instead; the C layer maps each `ErrorKind` to
//! its status one to one, so the status shown for them is `TankStatus::of`.
//! The cases that need the defaults' real timing run concurrently in one
//! test (`slow_origins_at_the_default_timeouts`, ~17 s wall).
//!
//! Every case prints one `CASE name: STATUS/reason in TIME` line to stderr
//! (`cargo test --test hostile -- --nocapture` shows the figures).
//! Oversize bodies are measured in a child process (the test binary run
//! again on one ignored test) so that its peak RSS is that case's alone.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::scripted::{
    reset, respond, respond_head, stream, stream_chunked, Request, ScriptedServer,
};
use common::test_ca::TestCa;
use common::*;
use sha2::{Digest as _, Sha512};
use tank::stevedore::{Client, Config};

/// The bound for every case that involves no timeout or retry.
const FAST: Duration = Duration::from_secs(5);
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const BODY: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
const MIB: u64 = 1 << 20;

// ---------------------------------------------------------------- helpers

/// Runs one case, prints its figure line and checks it ended in time.
fn outcome<T>(
    case: &str,
    within: Duration,
    call: impl FnOnce() -> Result<T, CallError>,
) -> Result<T, CallError> {
    let started = Instant::now();
    let r = call();
    let took = started.elapsed();
    match &r {
        Ok(_) => eprintln!("CASE {case}: TANK_OK in {took:.2?}"),
        Err(e) => eprintln!(
            "CASE {case}: {:?}/{}{} in {took:.2?} -- {}",
            e.status,
            e.reason,
            if e.http_status != 0 {
                format!(" (HTTP {})", e.http_status)
            } else {
                String::new()
            },
            e.message
        ),
    }
    assert!(took < within, "{case}: took {took:?}, bound {within:?}");
    r
}

#[track_caller]
fn fails<T>(
    case: &str,
    status: TankStatus,
    reason: &str,
    within: Duration,
    call: impl FnOnce() -> Result<T, CallError>,
) -> CallError {
    match outcome(case, within, call) {
        Ok(_) => panic!("{case}: succeeded; expected {status:?}/{reason}"),
        Err(e) => {
            assert_eq!(
                (e.status, e.reason.as_str()),
                (status, reason),
                "{case}: {}",
                e.message
            );
            e
        }
    }
}

#[track_caller]
fn succeeds<T>(case: &str, within: Duration, call: impl FnOnce() -> Result<T, CallError>) -> T {
    outcome(case, within, call).unwrap_or_else(|e| panic!("{case}: {e:?}"))
}

fn none() -> Cache {
    Cache::none()
}

fn sha512(bytes: &[u8]) -> String {
    let hex: String = Sha512::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha512:{hex}")
}

/// Runs a call on the async core with short timeouts, outside the C ABI,
/// and reports its error as C would see it.
fn on_core<T, Fut>(call: impl FnOnce(Client) -> Fut) -> Result<T, CallError>
where
    Fut: Future<Output = tank::stevedore::Result<T>>,
{
    let client = Client::new(Config {
        idle_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(20),
        ..Config::default()
    })
    .unwrap();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(call(client))
        .map_err(|e| CallError {
            status: TankStatus::of(e.kind),
            http_status: e.http_status.unwrap_or(0),
            reason: e.reason.to_owned(),
            message: e.message,
        })
}

/// Blocks until the client closes the connection: a server that stalls
/// for as long as the client is willing to wait.
fn stall(conn: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

/// A script's figure handed back to the test once the script has finished.
fn channel() -> (Arc<Mutex<mpsc::Sender<u64>>>, mpsc::Receiver<u64>) {
    let (tx, rx) = mpsc::channel();
    (Arc::new(Mutex::new(tx)), rx)
}

fn recv(rx: &mpsc::Receiver<u64>) -> u64 {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the origin script finished")
}

// ------------------------------------------------------- blob and body

#[test]
fn blob_bytes_that_do_not_match_the_digest() {
    let o = ScriptedServer::start(|_, conn| respond(conn, 200, &[], b"poisoned layer"));
    let e = fails(
        "blob bytes != sha256 digest",
        TankStatus::TANK_ERR_DIGEST_MISMATCH,
        "digest_mismatch",
        FAST,
        || blob(o.addr(), "a/b", &sha256(b"clean layer"), &none()),
    );
    assert!(e.message.contains(&sha256(b"poisoned layer")), "{e:?}");
    fails(
        "blob bytes != sha512 digest",
        TankStatus::TANK_ERR_DIGEST_MISMATCH,
        "digest_mismatch",
        FAST,
        || blob(o.addr(), "a/b", &sha512(b"clean layer"), &none()),
    );
    // One flipped bit in the last byte of 1 MiB.
    let mut big = vec![7u8; MIB as usize];
    let want = sha256(&big);
    *big.last_mut().unwrap() ^= 1;
    let big = Arc::new(big);
    let o = ScriptedServer::start(move |_, conn| respond(conn, 200, &[], &big));
    fails(
        "1 MiB blob with its last bit flipped",
        TankStatus::TANK_ERR_DIGEST_MISMATCH,
        "digest_mismatch",
        FAST,
        || blob(o.addr(), "a/b", &want, &none()),
    );
}

#[test]
fn body_shorter_than_content_length() {
    let short = [b's'; 50];
    let o = ScriptedServer::start(move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "100")]);
        let _ = conn.write_all(&short);
    });
    // The digest is that of the bytes that did arrive: only the length
    // check stands between them and the caller.
    fails(
        "blob body shorter than Content-Length",
        TankStatus::TANK_ERR_PROTOCOL,
        "length_mismatch",
        FAST,
        || blob(o.addr(), "a/b", &sha256(&short), &none()),
    );
    fails(
        "manifest body shorter than Content-Length",
        TankStatus::TANK_ERR_PROTOCOL,
        "length_mismatch",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert_eq!(o.requests().len(), 2, "a short body is not retried");

    // A chunked body cut before its last chunk.
    let o = ScriptedServer::start(|_, conn| {
        respond_head(conn, 200, &[("Transfer-Encoding", "chunked")]);
        let _ = conn.write_all(b"10\r\n0123456789abcdef\r\n");
    });
    fails(
        "chunked body cut before the final chunk",
        TankStatus::TANK_ERR_TRANSPORT,
        "request_failed",
        FAST,
        || blob(o.addr(), "a/b", &sha256(b"0123456789abcdef"), &none()),
    );
}

#[test]
fn body_longer_than_content_length() {
    let mut long = vec![b'L'; 100];
    long[50..].fill(b'X');
    let sent = long.clone();
    let o = ScriptedServer::start(move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "50")]);
        let _ = conn.write_all(&sent);
    });
    // The bytes past Content-Length are never part of the blob.
    fails(
        "blob body longer than Content-Length (digest of all 100 bytes)",
        TankStatus::TANK_ERR_DIGEST_MISMATCH,
        "digest_mismatch",
        FAST,
        || blob(o.addr(), "a/b", &sha256(&long), &none()),
    );
    let got = succeeds(
        "blob body longer than Content-Length (digest of the 50 framed bytes)",
        FAST,
        || blob(o.addr(), "a/b", &sha256(&long[..50]), &none()),
    );
    assert_eq!(got, &long[..50]);
}

#[test]
fn connection_reset_mid_body() {
    let half = [b'h'; 50];
    let o = ScriptedServer::start(move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "100")]);
        let _ = conn.write_all(&half);
        let _ = conn.flush();
        reset(conn);
    });
    fails(
        "blob connection reset mid-body",
        TankStatus::TANK_ERR_TRANSPORT,
        "connection_reset",
        FAST,
        || blob(o.addr(), "a/b", &sha256(&half), &none()),
    );
    fails(
        "manifest connection reset mid-body",
        TankStatus::TANK_ERR_TRANSPORT,
        "connection_reset",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert_eq!(o.requests().len(), 2, "a body-level reset is not retried");
}

#[test]
fn faults_before_the_response_are_retried_then_reported() {
    // On the core with a 400 ms idle timeout and 20/40/80 ms backoff; the
    // defaults would make these 7-67 s each.
    type Script = fn(&mut TcpStream);
    let cases: [(&str, &str, Script); 5] = [
        ("stall before the headers", "timeout", stall),
        ("reset before the headers", "connection_reset", reset),
        ("close without a response", "request_failed", |_| {}),
        ("garbage instead of HTTP", "request_failed", |conn| {
            let _ = conn.write_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n");
        }),
        ("a 1 MiB response head", "request_failed", |conn| {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nX-Junk: ");
            stream(conn, MIB, b'j');
        }),
    ];
    for (case, reason, script) in cases {
        let o = ScriptedServer::start(move |_, conn| script(conn));
        let (addr, digest) = (o.addr().to_owned(), sha256(b"x"));
        fails(
            &format!("core: {case}"),
            TankStatus::TANK_ERR_TRANSPORT,
            reason,
            FAST,
            || {
                on_core(
                    |c| async move { common::core::blob(&c, &addr, "a/b", &digest, None).await },
                )
            },
        );
        assert_eq!(o.requests().len(), 4, "{case}: the first try and 3 retries");
    }
}

#[test]
fn a_stall_after_the_headers_fires_the_idle_timeout_on_the_core() {
    let o = ScriptedServer::start(|_, conn| {
        respond_head(conn, 200, &[("Content-Length", "100")]);
        let _ = conn.write_all(b"partial");
        stall(conn);
    });
    let addr = o.addr().to_owned();
    let started = Instant::now();
    fails(
        "core: manifest stalls after headers (400 ms idle)",
        TankStatus::TANK_ERR_TRANSPORT,
        "timeout",
        FAST,
        || on_core(|c| async move { common::core::manifest(&c, &addr, "a/b", "v1", None).await }),
    );
    assert!(started.elapsed() >= Duration::from_millis(390));
    assert_eq!(o.requests().len(), 1, "a body-level timeout is not retried");

    // A trickle that lasts 5 idle timeouts but never pauses for one.
    let body: Vec<u8> = (0..20u8).collect();
    let sent = body.clone();
    let o = ScriptedServer::start(move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "20")]);
        for b in &sent {
            let _ = conn.write_all(&[*b]);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (addr, digest) = (o.addr().to_owned(), sha256(&body));
    let started = Instant::now();
    let got = succeeds("core: 20-byte trickle over 2 s (400 ms idle)", FAST, || {
        on_core(|c| async move { common::core::blob(&c, &addr, "a/b", &digest, None).await })
    });
    assert_eq!(got, body);
    assert!(started.elapsed() > Duration::from_millis(1900));
}

#[test]
fn a_huge_content_length_on_a_blob_fails_fast() {
    let o = ScriptedServer::start(|_, conn| {
        respond_head(conn, 200, &[("Content-Length", "1152921504606846976")]);
        stream(conn, MIB, b'z');
    });
    // 2^60 bytes cannot be reserved: `out_of_memory` today. Were the
    // reservation capped, the body would end early: `length_mismatch`.
    // Either way: fast, no abort, no allocation of what the server claims.
    let e = outcome("blob declares 2^60 bytes", FAST, || {
        blob(o.addr(), "a/b", &sha256(b"x"), &none())
    })
    .unwrap_err();
    assert!(
        matches!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_INTERNAL, "out_of_memory")
                | (TankStatus::TANK_ERR_PROTOCOL, "length_mismatch")
        ),
        "{e:?}"
    );
}

/// The cases that need the shipped timing, run at once: ~17 s wall.
#[test]
fn slow_origins_at_the_default_timeouts() {
    std::thread::scope(|s| {
        s.spawn(stall_after_headers_at_15_s);
        s.spawn(trickle_is_not_cut_off_at_15_s);
        s.spawn(token_endpoint_500_is_retried_then_auth_error);
        s.spawn(reset_before_headers_is_retried_at_default_backoff);
    });
}

fn stall_after_headers_at_15_s() {
    let o = ScriptedServer::start(|_, conn| {
        respond_head(conn, 200, &[("Content-Length", "100")]);
        let _ = conn.write_all(b"first bytes");
        stall(conn);
    });
    let started = Instant::now();
    fails(
        "blob stalls after headers (default 15 s idle)",
        TankStatus::TANK_ERR_TRANSPORT,
        "timeout",
        Duration::from_secs(20),
        || blob(o.addr(), "a/b", &sha256(b"x"), &none()),
    );
    assert!(started.elapsed() >= Duration::from_secs(14));
    assert_eq!(o.requests().len(), 1);
}

fn trickle_is_not_cut_off_at_15_s() {
    // 9 bytes, one every 2 s: 16 s in all, never 15 s without a byte.
    let body = b"trickling".to_vec();
    let sent = body.clone();
    let o = ScriptedServer::start(move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "9")]);
        for (i, b) in sent.iter().enumerate() {
            if i > 0 {
                std::thread::sleep(Duration::from_secs(2));
            }
            let _ = conn.write_all(&[*b]);
        }
    });
    let started = Instant::now();
    let got = succeeds(
        "blob trickles 1 byte / 2 s for 16 s (default 15 s idle)",
        Duration::from_secs(25),
        || blob(o.addr(), "a/b", &sha256(&body), &none()),
    );
    assert_eq!(got, body);
    assert!(started.elapsed() > Duration::from_secs(15));
}

fn token_endpoint_500_is_retried_then_auth_error() {
    let o = protected(bearer_at_token, |_, conn| {
        respond(conn, 500, &[], b"token service down")
    });
    let e = fails(
        "token endpoint answers 500 (retried at 1/2/4 s)",
        TankStatus::TANK_ERR_AUTH,
        "token_request_failed",
        Duration::from_secs(15),
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert_eq!(e.http_status, 500);
    assert_eq!(count(&o, "/token"), 4, "the first try and 3 retries");
    assert_eq!(count(&o, "/v2/"), 1);
}

fn reset_before_headers_is_retried_at_default_backoff() {
    let o = ScriptedServer::start(|_, conn| reset(conn));
    fails(
        "reset before the headers (retried at 1/2/4 s)",
        TankStatus::TANK_ERR_TRANSPORT,
        "connection_reset",
        Duration::from_secs(15),
        || blob(o.addr(), "a/b", &sha256(b"x"), &none()),
    );
    assert_eq!(o.requests().len(), 4);
}

// --------------------------------------------------------------- manifests

/// Serves `body` as a manifest with `headers` (raw header lines, so that
/// non-UTF-8 values are possible).
fn manifest_origin(body: Vec<u8>, raw_headers: Vec<u8>) -> ScriptedServer {
    ScriptedServer::start(move |_, conn| {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        head.extend_from_slice(&raw_headers);
        head.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        let _ = conn.write_all(&head);
        let _ = conn.write_all(&body);
    })
}

#[test]
fn manifests_that_are_not_json_objects() {
    let nested_ok_size = |open: &str, n: usize| open.repeat(n).into_bytes();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "an HTML page",
            b"<html><body>502 Bad Gateway</body></html>".to_vec(),
        ),
        ("an empty body", Vec::new()),
        ("a JSON array", br#"[{"schemaVersion":2}]"#.to_vec()),
        ("a JSON string", br#""schemaVersion""#.to_vec()),
        ("a JSON number", b"2".to_vec()),
        ("JSON null", b"null".to_vec()),
        (
            "truncated JSON",
            br#"{"schemaVersion":2,"layers":["#.to_vec(),
        ),
        ("invalid UTF-8 in JSON", b"{\"a\":\"\xff\xfe\"}".to_vec()),
        (
            "a JSON object and trailing junk",
            br#"{"a":1} {"b":2}"#.to_vec(),
        ),
        ("4 MiB of nested '['", nested_ok_size("[", MIB as usize * 4)),
        (
            "1 MiB of nested {\"a\":",
            nested_ok_size("{\"a\":", MIB as usize / 5),
        ),
    ];
    for (case, body) in cases {
        let o = manifest_origin(body, Vec::new());
        fails(
            &format!("manifest is {case}"),
            TankStatus::TANK_ERR_PROTOCOL,
            "invalid_manifest_json",
            FAST,
            || manifest(o.addr(), "a/b", "v1", &none()),
        );
    }
}

#[test]
fn manifest_size_limit_is_4_mib_exactly() {
    let pad = |total: usize| {
        let mut body = br#"{"schemaVersion":2,"pad":""#.to_vec();
        let tail = br#""}"#;
        body.resize(total - tail.len(), b'p');
        body.extend_from_slice(tail);
        body
    };
    let limit = 4 * MIB as usize;
    let o = manifest_origin(pad(limit), Vec::new());
    let m = succeeds("manifest of exactly 4 MiB", FAST, || {
        manifest(o.addr(), "a/b", "v1", &none())
    });
    assert_eq!(m.raw.len(), limit);
    let o = manifest_origin(pad(limit + 1), Vec::new());
    fails(
        "manifest of 4 MiB + 1 byte (Content-Length)",
        TankStatus::TANK_ERR_PROTOCOL,
        "manifest_too_large",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    // The same without a Content-Length: the read stops at the limit.
    let o = ScriptedServer::start(move |_, conn| {
        respond_head(conn, 200, &[]);
        let _ = conn.write_all(&pad(limit + 1));
    });
    fails(
        "manifest of 4 MiB + 1 byte (no Content-Length)",
        TankStatus::TANK_ERR_PROTOCOL,
        "manifest_too_large",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
}

#[test]
fn strings_with_nul_and_odd_descriptors_do_not_break_the_c_side() {
    let body = br#"{"schemaVersion":2,"mediaType":"x\u0000y","config":{"digest":7,"size":-1},"layers":[1,"two",{"digest":"sha256:\u0000"},null],"manifests":{"not":"a list"}}"#;
    let o = manifest_origin(body.to_vec(), Vec::new());
    let m = succeeds("manifest with NULs and ill-typed descriptors", FAST, || {
        manifest(o.addr(), "a/b", "v1", &none())
    });
    assert_eq!(m.media_type, "xy", "interior NULs are dropped");
    assert_eq!(m.config.unwrap().digest, "");
    assert_eq!(m.layers.len(), 1);
    assert!(m.manifests.is_empty());
}

#[test]
fn docker_content_digest_headers() {
    let good = sha256(BODY);
    let hex = good.strip_prefix("sha256:").unwrap().to_owned();
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"nonsense".to_vec()),
        ("too short", b"sha256:abc".to_vec()),
        ("empty", Vec::new()),
        (
            "uppercase hex",
            format!("sha256:{}", hex.to_uppercase()).into_bytes(),
        ),
        ("uppercase algorithm", format!("SHA256:{hex}").into_bytes()),
        (
            "unknown algorithm md5",
            format!("md5:{}", &hex[..32]).into_bytes(),
        ),
        (
            "unknown algorithm blake3",
            format!("blake3:{hex}").into_bytes(),
        ),
        (
            "trailing junk",
            format!("{good}, sha256:{hex}").into_bytes(),
        ),
        ("not UTF-8", {
            let mut v = b"sha256:".to_vec();
            v.extend_from_slice(&[0xff; 64]);
            v
        }),
    ];
    for (case, value) in refused {
        let mut header = b"Docker-Content-Digest: ".to_vec();
        header.extend_from_slice(&value);
        header.extend_from_slice(b"\r\n");
        let o = manifest_origin(BODY.to_vec(), header);
        fails(
            &format!("Docker-Content-Digest {case}"),
            TankStatus::TANK_ERR_PROTOCOL,
            "invalid_content_digest_header",
            FAST,
            || manifest(o.addr(), "a/b", "v1", &none()),
        );
    }
    for (case, value) in [
        ("mismatching sha256", sha256(b"another manifest")),
        ("mismatching sha512", sha512(b"another manifest")),
    ] {
        let o = manifest_origin(
            BODY.to_vec(),
            format!("Docker-Content-Digest: {value}\r\n").into_bytes(),
        );
        fails(
            &format!("Docker-Content-Digest {case}"),
            TankStatus::TANK_ERR_DIGEST_MISMATCH,
            "manifest_digest_mismatch",
            FAST,
            || manifest(o.addr(), "a/b", "v1", &none()),
        );
    }
    // Controls: a matching sha512 header is taken as the digest.
    let o = manifest_origin(
        BODY.to_vec(),
        format!("Docker-Content-Digest: {}\r\n", sha512(BODY)).into_bytes(),
    );
    let m = succeeds("Docker-Content-Digest matching sha512", FAST, || {
        manifest(o.addr(), "a/b", "v1", &none())
    });
    assert_eq!(m.digest, sha512(BODY));
}

// ------------------------------------------------------------ challenges

/// A registry that wants a bearer token. `/token` is answered by `token`;
/// any other path by 200 and a manifest when it carries `Bearer good`, else
/// by a 401 with one `WWW-Authenticate` per string `challenges(base_url)`
/// returns.
fn protected(
    challenges: impl Fn(&str) -> Vec<String> + Send + Sync + 'static,
    token: impl Fn(&Request, &mut TcpStream) + Send + Sync + 'static,
) -> ScriptedServer {
    let base = Arc::new(OnceLock::<String>::new());
    let b = base.clone();
    let o = ScriptedServer::start(move |req, conn| {
        if req.path().starts_with("/token") {
            return token(req, conn);
        }
        if req.header("authorization") == Some("Bearer good") {
            return respond(conn, 200, &[("Content-Type", OCI_MANIFEST)], BODY);
        }
        let values = challenges(b.get().expect("base URL set"));
        let headers: Vec<(&str, &str)> = values
            .iter()
            .map(|v| ("WWW-Authenticate", v.as_str()))
            .collect();
        respond(
            conn,
            401,
            &headers,
            br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
        );
    });
    base.set(o.url()).unwrap();
    o
}

fn bearer_at_token(base: &str) -> Vec<String> {
    vec![format!(
        r#"Bearer realm="{base}/token",service="svc",scope="repository:a/b:pull""#
    )]
}

fn token_json(body: &'static str) -> impl Fn(&Request, &mut TcpStream) + Send + Sync {
    move |_, conn| {
        respond(
            conn,
            200,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    }
}

fn count(o: &ScriptedServer, prefix: &str) -> usize {
    o.requests()
        .iter()
        .filter(|r| r.path().starts_with(prefix))
        .count()
}

#[test]
fn challenges_without_a_usable_bearer() {
    let cases: Vec<(&str, Vec<String>, TankStatus, &str)> = vec![
        (
            "401 without WWW-Authenticate",
            vec![],
            TankStatus::TANK_ERR_HTTP,
            "http_status",
        ),
        (
            "401 with Basic only",
            vec![r#"Basic realm="registry""#.into()],
            TankStatus::TANK_ERR_HTTP,
            "http_status",
        ),
        (
            "401 with an empty WWW-Authenticate",
            vec![String::new()],
            TankStatus::TANK_ERR_HTTP,
            "http_status",
        ),
        (
            "Bearer without realm",
            vec![r#"Bearer service="svc",scope="repository:a/b:pull""#.into()],
            TankStatus::TANK_ERR_AUTH,
            "missing_realm",
        ),
        (
            "Bearer with no parameters",
            vec!["Bearer".into()],
            TankStatus::TANK_ERR_AUTH,
            "missing_realm",
        ),
    ];
    for (case, challenge, status, reason) in cases {
        let o = protected(
            move |_| challenge.clone(),
            token_json(r#"{"token":"good"}"#),
        );
        let e = fails(case, status, reason, FAST, || {
            manifest(o.addr(), "a/b", "v1", &none())
        });
        if status == TankStatus::TANK_ERR_HTTP {
            assert_eq!(e.http_status, 401);
        }
        assert_eq!(o.requests().len(), 1, "{case}: no token request, no retry");
    }
}

#[test]
fn realms_that_are_not_http_urls() {
    for realm in [
        "file:///etc/passwd",
        "ftp://127.0.0.1/token",
        "/token",
        "javascript:alert(1)",
        "",
        "http//missing-colon/token",
    ] {
        let challenge = format!(r#"Bearer realm="{realm}",service="svc""#);
        let o = protected(move |_| vec![challenge.clone()], token_json("{}"));
        fails(
            &format!("realm {realm:?}"),
            TankStatus::TANK_ERR_AUTH,
            "invalid_realm",
            FAST,
            || manifest(o.addr(), "a/b", "v1", &none()),
        );
        assert_eq!(
            o.requests().len(),
            1,
            "{realm:?}: nothing asked of the realm"
        );
    }
}

#[test]
fn challenge_syntax_the_parser_must_handle() {
    type Challenges = fn(&str) -> Vec<String>;
    let cases: [(&str, Challenges, &str); 5] = [
        (
            "unquoted parameters, odd case and spaces",
            |base| vec![format!("bearer  Realm = {base}/token , SERVICE=svc")],
            "svc",
        ),
        (
            "escaped quotes and backslashes",
            |base| {
                vec![format!(
                    r#"Bearer realm="{base}/token",service="s \"q\" \\ b""#
                )]
            },
            r#"s "q" \ b"#,
        ),
        (
            "Basic then Bearer in one header",
            |base| {
                vec![format!(
                    r#"Basic realm="r", Bearer realm="{base}/token",service="svc""#
                )]
            },
            "svc",
        ),
        (
            "token68 then Bearer in one header",
            |base| {
                vec![format!(
                    r#"Negotiate dXNlcjpwYXNz==, Bearer realm="{base}/token", service=svc"#
                )]
            },
            "svc",
        ),
        (
            "Basic and Bearer as separate headers",
            |base| {
                vec![
                    r#"Basic realm="r""#.into(),
                    format!(r#"Bearer realm="{base}/token",service="svc""#),
                ]
            },
            "svc",
        ),
    ];
    for (case, challenges, service) in cases {
        let o = protected(challenges, token_json(r#"{"token":"good"}"#));
        let m = succeeds(case, FAST, || manifest(o.addr(), "a/b", "v1", &none()));
        assert_eq!(m.digest, sha256(BODY));
        let token_req = o
            .requests()
            .into_iter()
            .find(|r| r.path() == "/token")
            .expect("a token request");
        let query = token_req.target.split_once('?').map_or("", |q| q.1);
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert!(
            params.contains(&("service".into(), service.into())),
            "{case}: {params:?}"
        );
    }
}

#[test]
fn token_endpoints_that_answer_no_usable_token() {
    let cases: Vec<(&str, &'static str, TankStatus, &str)> = vec![
        (
            "token endpoint answers non-JSON",
            "<html>login</html>",
            TankStatus::TANK_ERR_AUTH,
            "token_request_failed",
        ),
        (
            "token endpoint answers a JSON array",
            r#"["good"]"#,
            TankStatus::TANK_ERR_AUTH,
            "token_request_failed",
        ),
        (
            "token endpoint answers a JSON array shaped like the fields",
            r#"["good", null, null]"#,
            TankStatus::TANK_ERR_AUTH,
            "token_request_failed",
        ),
        (
            "token endpoint answers an empty body",
            "",
            TankStatus::TANK_ERR_AUTH,
            "token_request_failed",
        ),
        (
            "JSON without a token",
            r#"{"expires_in":300}"#,
            TankStatus::TANK_ERR_AUTH,
            "no_token_in_response",
        ),
        (
            "token is a number",
            r#"{"token":42}"#,
            TankStatus::TANK_ERR_AUTH,
            "no_token_in_response",
        ),
        (
            "token is an object",
            r#"{"token":{"value":"good"}}"#,
            TankStatus::TANK_ERR_AUTH,
            "no_token_in_response",
        ),
        (
            "token is null, access_token a list",
            r#"{"token":null,"access_token":["good"]}"#,
            TankStatus::TANK_ERR_AUTH,
            "no_token_in_response",
        ),
        (
            "token is empty",
            r#"{"token":""}"#,
            TankStatus::TANK_ERR_AUTH,
            "no_token_in_response",
        ),
        (
            "token holds a newline",
            r#"{"token":"good\r\nX-Injected: 1"}"#,
            TankStatus::TANK_ERR_AUTH,
            "no_token_in_response",
        ),
    ];
    for (case, body, status, reason) in cases {
        let o = protected(bearer_at_token, token_json(body));
        fails(case, status, reason, FAST, || {
            manifest(o.addr(), "a/b", "v1", &none())
        });
        assert_eq!(count(&o, "/v2/"), 1, "{case}: the registry asked once");
        assert_eq!(count(&o, "/token"), 1, "{case}: the realm asked once");
    }
    // Controls: `access_token` stands in for a missing or non-string `token`.
    for body in [
        r#"{"access_token":"good"}"#,
        r#"{"token":42,"access_token":"good"}"#,
    ] {
        let o = protected(bearer_at_token, token_json(body));
        succeeds(&format!("token response {body}"), FAST, || {
            manifest(o.addr(), "a/b", "v1", &none())
        });
    }
}

#[test]
fn token_endpoint_failures_with_a_status() {
    let o = protected(bearer_at_token, |_, conn| respond(conn, 404, &[], b"no"));
    let e = fails(
        "token endpoint answers 404",
        TankStatus::TANK_ERR_AUTH,
        "token_request_failed",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert_eq!(e.http_status, 404);

    // A realm that itself challenges: no recursion into a second handshake.
    let o = protected(bearer_at_token, |_, conn| {
        respond(
            conn,
            401,
            &[(
                "WWW-Authenticate",
                r#"Bearer realm="http://127.0.0.1:9/token""#,
            )],
            b"",
        )
    });
    let e = fails(
        "token endpoint answers 401 with its own challenge",
        TankStatus::TANK_ERR_AUTH,
        "token_request_failed",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert_eq!(e.http_status, 401);
    assert_eq!(count(&o, "/token"), 1);

    // A realm that redirects to itself forever.
    let o = protected(bearer_at_token, |req, conn| {
        let next = format!("{}x", req.target);
        respond(conn, 302, &[("Location", &next)], b"");
    });
    fails(
        "token endpoint redirects in a loop",
        TankStatus::TANK_ERR_AUTH,
        "token_request_failed",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert_eq!(count(&o, "/token"), 11);
}

#[test]
fn a_one_gib_token_response_is_cut_off_at_1_mib() {
    let (tx, rx) = channel();
    let o = protected(bearer_at_token, move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "1073741824")]);
        let _ = conn.write_all(br#"{"token":""#);
        let wrote = stream(conn, 1 << 30, b'a');
        let _ = tx.lock().unwrap().send(wrote);
    });
    let e = fails(
        "token endpoint streams a 1 GiB body",
        TankStatus::TANK_ERR_AUTH,
        "token_request_failed",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
    assert!(e.message.contains("exceeds 1048576 bytes"), "{e:?}");
    let wrote = recv(&rx);
    eprintln!(
        "FIGURE 1 GiB token body: origin got {wrote} bytes into the socket before the hang-up"
    );
    assert!(wrote < 64 * MIB, "origin wrote {wrote} bytes");
}

#[test]
fn a_registry_that_refuses_every_token_does_not_loop() {
    let o = protected(bearer_at_token, token_json(r#"{"token":"never-good"}"#));
    for (case, cache) in [
        ("every token refused, no cache", Cache::none()),
        ("every token refused, with a cache", Cache::new()),
    ] {
        for round in 0..2 {
            let before = o.requests().len();
            let e = fails(
                &format!("{case} (call {})", round + 1),
                TankStatus::TANK_ERR_HTTP,
                "http_status",
                FAST,
                || manifest(o.addr(), "a/b", "v1", &cache),
            );
            assert_eq!(e.http_status, 401);
            assert_eq!(
                o.requests().len() - before,
                3,
                "{case}: request, token, one retry"
            );
        }
    }
}

// ------------------------------------------------------------- redirects

#[test]
fn redirect_loops_and_long_chains() {
    let o =
        ScriptedServer::start(|req, conn| respond(conn, 307, &[("Location", &req.target)], b""));
    fails(
        "redirect to itself",
        TankStatus::TANK_ERR_TRANSPORT,
        "too_many_redirects",
        FAST,
        || blob(o.addr(), "a/b", &sha256(b"x"), &none()),
    );
    assert_eq!(o.requests().len(), 11, "the request and 10 hops, no retry");

    // A chain of distinct hops through every redirect status, `hops` long.
    let chain = |hops: usize| {
        ScriptedServer::start(move |req, conn| {
            let n: usize = req
                .path()
                .strip_prefix("/hop")
                .map_or(0, |n| n.parse().unwrap());
            if n == hops {
                return respond(conn, 200, &[], b"payload");
            }
            let status = [301, 302, 303, 307, 308][n % 5];
            respond(
                conn,
                status,
                &[("Location", &format!("/hop{}", n + 1))],
                b"",
            );
        })
    };
    let o = chain(10);
    succeeds("10 redirects (301/302/303/307/308)", FAST, || {
        blob(o.addr(), "a/b", &sha256(b"payload"), &none())
    });
    assert_eq!(o.requests().len(), 11);
    let o = chain(11);
    fails(
        "11 redirects",
        TankStatus::TANK_ERR_TRANSPORT,
        "too_many_redirects",
        FAST,
        || blob(o.addr(), "a/b", &sha256(b"payload"), &none()),
    );
    assert_eq!(o.requests().len(), 11);
}

#[test]
fn redirects_to_other_schemes_or_nowhere() {
    let refused: Vec<(&str, &'static [u8], &str)> = vec![
        ("to file://", b"file:///etc/passwd", "insecure_redirect"),
        ("to ftp://", b"ftp://127.0.0.1/blob", "insecure_redirect"),
        (
            "to gopher://",
            b"gopher://127.0.0.1:70/",
            "insecure_redirect",
        ),
        ("to data:", b"data:text/plain,hello", "insecure_redirect"),
        (
            "to javascript:",
            b"javascript:alert(1)",
            "insecure_redirect",
        ),
        ("unparsable Location", b"http://[::1", "invalid_redirect"),
        (
            "Location with a space in the host",
            b"http://exa mple/",
            "invalid_redirect",
        ),
        ("Location not UTF-8", b"/\xff\xfe", "invalid_redirect"),
    ];
    for (case, location, reason) in refused {
        let o = ScriptedServer::start(move |_, conn| {
            let mut head = b"HTTP/1.1 302 Found\r\nLocation: ".to_vec();
            head.extend_from_slice(location);
            head.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = conn.write_all(&head);
        });
        fails(
            &format!("redirect {case}"),
            TankStatus::TANK_ERR_TRANSPORT,
            reason,
            FAST,
            || blob(o.addr(), "a/b", &sha256(b"x"), &none()),
        );
        assert_eq!(o.requests().len(), 1, "{case}: not followed, not retried");
    }
    let o = ScriptedServer::start(|_, conn| respond(conn, 301, &[], b""));
    fails(
        "redirect without Location",
        TankStatus::TANK_ERR_TRANSPORT,
        "invalid_redirect",
        FAST,
        || manifest(o.addr(), "a/b", "v1", &none()),
    );
}

/// https -> http needs a TLS origin tank trusts. tank trusts the system
/// roots, and rustls-native-certs reads `SSL_CERT_FILE`, so a child process
/// started with a test CA there trusts a loopback TLS origin; the parent's
/// own trust is untouched.
#[test]
fn https_to_http_redirect_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("tank hostile-test CA");
    let (leaf, leaf_key) = ca.leaf(vec!["127.0.0.1".to_owned()]);
    std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
    std::fs::write(dir.path().join("leaf.der"), leaf.der()).unwrap();
    std::fs::write(dir.path().join("leaf.key"), leaf_key.serialize_der()).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_https_origin", "--ignored", "--nocapture"])
        .env("SSL_CERT_FILE", dir.path().join("ca.pem"))
        .env("TANK_TEST_TLS_DIR", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("CASE redirect https -> http: TANK_ERR_TRANSPORT/insecure_redirect"),
        "the child did not run the case"
    );
}

#[test]
#[ignore = "run by https_to_http_redirect_is_refused in a child process"]
fn child_https_origin() {
    let Some(dir) = std::env::var_os("TANK_TEST_TLS_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let plain = ScriptedServer::start(|_, conn| respond(conn, 200, &[], b"payload"));
    let plain_url = plain.url();
    let tls = tls_origin(&dir, move |path| {
        if path.starts_with("/v2/a/b/manifests/") {
            (200, vec![], BODY.to_vec())
        } else if path == "/tls-payload" {
            (200, vec![], b"payload".to_vec())
        } else if path.contains("to-https") {
            (
                302,
                vec![("Location".into(), "/tls-payload".into())],
                vec![],
            )
        } else {
            let to = format!("{plain_url}/plain-payload");
            (302, vec![("Location".into(), to)], vec![])
        }
    });
    let https = format!("https://{tls}");
    succeeds(
        "https origin trusted via SSL_CERT_FILE (control)",
        FAST,
        || manifest(&https, "a/b", "v1", &none()),
    );
    fails(
        "redirect https -> http",
        TankStatus::TANK_ERR_TRANSPORT,
        "insecure_redirect",
        FAST,
        || blob(&https, "a/b", &sha256(b"payload"), &none()),
    );
    assert!(plain.requests().is_empty(), "the http target was contacted");
    // https -> https is followed (the repository name picks the branch).
    let got = succeeds("redirect https -> https (control)", FAST, || {
        blob(&https, "to-https", &sha256(b"payload"), &none())
    });
    assert_eq!(got, b"payload");
}

/// A minimal blocking HTTPS/1.1 origin: `script(path)` gives the status,
/// extra headers and body. Returns `127.0.0.1:PORT`; lives as long as the
/// (child) process.
fn tls_origin(
    dir: &std::path::Path,
    script: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
) -> String {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let cert = CertificateDer::from(std::fs::read(dir.join("leaf.der")).unwrap());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        std::fs::read(dir.join("leaf.key")).unwrap(),
    ));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let script = Arc::new(script);
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, script) = (config.clone(), script.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, headers, body) = script(&path);
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(k, v)| (&**k, &**v)).collect();
                respond(&mut tls, status, &headers, &body);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

// ------------------------------------------------- oversize and memory

/// One oversize case in a child process: its peak RSS growth over a warmed
/// up baseline, and how much the origin managed to write before tank hung up.
struct Measured {
    status: String,
    growth_kib: u64,
    peak_kib: u64,
    origin_wrote: u64,
}

fn measure(case: &str) -> Measured {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_oversize_case",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TANK_TEST_OVERSIZE_CASE", case)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("MEASURED ").map(|(_, figures)| figures))
        .unwrap_or_else(|| panic!("child {case} printed no figures:\n{stdout}"));
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing in {line}"))
            .to_owned()
    };
    let m = Measured {
        status: field("status"),
        growth_kib: field("growth_kib").parse().unwrap(),
        peak_kib: field("peak_kib").parse().unwrap(),
        origin_wrote: field("origin_wrote").parse().unwrap(),
    };
    eprintln!(
        "FIGURE {case}: {} | peak RSS {} KiB, +{} KiB over the warmed-up baseline | origin wrote {} bytes",
        m.status, m.peak_kib, m.growth_kib, m.origin_wrote
    );
    m
}

#[test]
fn oversize_bodies_keep_memory_flat() {
    // (case, bytes offered, reason, peak RSS growth bound). A declared
    // size is refused on the headers, so next to nothing of its body is
    // read; a stream is read up to the 4 MiB (1 MiB for tokens) limit.
    // What the origin wrote includes the bytes parked in the two loopback
    // socket buffers (~4 MiB here), which tank never read.
    let offered = [
        (
            "manifest_declared_100mib",
            100 * MIB,
            "manifest_too_large",
            2 * 1024,
        ),
        (
            "manifest_nested_10mb",
            10_000_000,
            "manifest_too_large",
            2 * 1024,
        ),
        (
            "manifest_streamed_1gib",
            1 << 30,
            "manifest_too_large",
            16 * 1024,
        ),
        (
            "manifest_chunked_1gib",
            1 << 30,
            "manifest_too_large",
            16 * 1024,
        ),
        (
            "token_body_1gib",
            1 << 30,
            "token_request_failed",
            16 * 1024,
        ),
    ];
    for (case, size, reason, bound_kib) in offered {
        let m = measure(case);
        assert!(
            m.status.ends_with(&format!("/{reason}")),
            "{case}: {}",
            m.status
        );
        assert!(
            m.growth_kib < bound_kib,
            "{case}: peak RSS grew by {} KiB",
            m.growth_kib
        );
        assert!(
            m.origin_wrote < (16 * MIB).min(size),
            "{case}: the origin wrote {} of {size} bytes",
            m.origin_wrote
        );
    }
    // A blob that claims 8 GiB and sends 1 MiB: the buffer is reserved, but
    // only what arrives (and the prefault window ahead of it) is touched.
    let m = measure("blob_claims_8gib_sends_1mib");
    assert!(m.status.ends_with("/length_mismatch"), "{}", m.status);
    assert!(
        m.growth_kib < 48 * 1024,
        "a lying Content-Length committed {} KiB",
        m.growth_kib
    );

    // The meter works: a legitimate 48 MiB blob shows up in the peak.
    let m = measure("control_blob_48mib");
    assert_eq!(m.status, "TANK_OK");
    assert!(
        m.growth_kib > 40 * 1024,
        "control grew {} KiB",
        m.growth_kib
    );
}

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
#[ignore = "run by oversize_bodies_keep_memory_flat in a child process"]
fn child_oversize_case() {
    let Ok(case) = std::env::var("TANK_TEST_OVERSIZE_CASE") else {
        return;
    };
    let (tx, rx) = channel();
    let control = Arc::new(vec![0x5a; 48 * MIB as usize]);
    let served = control.clone();
    // The token case's registry; the other cases use `open` below.
    let o = protected(bearer_at_token, move |_, conn| {
        respond_head(conn, 200, &[("Content-Length", "1073741824")]);
        let _ = conn.write_all(br#"{"token":""#);
        let _ = tx.lock().unwrap().send(stream(conn, 1 << 30, b'a'));
    });
    // Warm up: runtime, client, pool, a manifest read through the C ABI.
    let warm = ScriptedServer::start(|_, conn| respond(conn, 200, &[], BODY));
    manifest(warm.addr(), "a/b", "v1", &none()).unwrap();
    blob(warm.addr(), "a/b", &sha256(BODY), &none()).unwrap();

    let (ctx, crx) = channel();
    let c = case.clone();
    let open = ScriptedServer::start(move |_, conn| {
        let wrote = match c.as_str() {
            "manifest_declared_100mib" => {
                respond_head(conn, 200, &[("Content-Length", "104857600")]);
                stream(conn, 100 * MIB, b'{')
            }
            "manifest_streamed_1gib" => {
                respond_head(conn, 200, &[]);
                stream(conn, 1 << 30, b' ')
            }
            "manifest_chunked_1gib" => {
                respond_head(conn, 200, &[("Transfer-Encoding", "chunked")]);
                stream_chunked(conn, 1 << 30, b' ')
            }
            "manifest_nested_10mb" => {
                respond_head(conn, 200, &[("Content-Length", "10000000")]);
                stream(conn, 10_000_000, b'[')
            }
            "control_blob_48mib" => {
                respond(conn, 200, &[], &served);
                served.len() as u64
            }
            "blob_claims_8gib_sends_1mib" => {
                respond_head(conn, 200, &[("Content-Length", "8589934592")]);
                stream(conn, MIB, b'z')
            }
            _ => 0,
        };
        let _ = ctx.lock().unwrap().send(wrote);
    });
    let baseline = vm_hwm_kib();
    let result = match case.as_str() {
        "token_body_1gib" => manifest(o.addr(), "a/b", "v1", &none()).map(|_| ()),
        "control_blob_48mib" => blob(open.addr(), "a/b", &sha256(&control), &none()).map(|_| ()),
        "blob_claims_8gib_sends_1mib" => {
            blob(open.addr(), "a/b", &sha256(b"z"), &none()).map(|_| ())
        }
        _ => manifest(open.addr(), "a/b", "v1", &none()).map(|_| ()),
    };
    let peak = vm_hwm_kib();
    let origin_wrote = if case == "token_body_1gib" {
        recv(&rx)
    } else {
        recv(&crx)
    };
    let status = match result {
        Ok(()) => "TANK_OK".to_owned(),
        Err(e) => format!("{:?}/{}", e.status, e.reason),
    };
    println!(
        "MEASURED status={status} growth_kib={} peak_kib={peak} origin_wrote={origin_wrote}",
        peak.saturating_sub(baseline)
    );
}

#[test]
fn https_with_a_certificate_nobody_here_trusts_fails_fast_as_tls() {
    // A real https registry with a CA the rig made a moment ago, which
    // this process was never told about (tls.rs is the binary that is).
    let rig = start(RigOptions::tls_only());
    let tls = rig.info().tls.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let registry = format!("https://{}", tls.registry);
    let e = fails(
        "untrusted server certificate",
        TankStatus::TANK_ERR_TRANSPORT,
        "tls",
        Duration::from_secs(1),
        || manifest(&registry, &img.repo, &img.tag, &none()),
    );
    assert!(e.message.contains(&tls.registry), "names the host: {e:?}");
    assert!(
        e.message.to_ascii_lowercase().contains("certificate"),
        "says why: {e:?}"
    );
    assert_eq!(
        rig.registry_requests(Which::Tls),
        [],
        "no request was ever sent in the clear or otherwise"
    );
}
