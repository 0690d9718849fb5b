//! Where secrets may go, on the async core with names that are not loopback
//! (`Config::resolve` points them at 127.0.0.1): a cached credential never
//! follows a registry from https to plain http, a client certificate is
//! presented only to the registry it was configured for, messages never
//! quote a presigned URL's query, and a token server that trickles holds
//! no call past the token bound.
//!
//! The https origins here are hand-written (`Server`): one port speaks TLS
//! or plain HTTP, whichever the client opens with, so `https://reg.test:P`
//! and `http://reg.test:P` are one authority under two schemes; and it
//! records, per request, the scheme, the name the client asked for (SNI),
//! the `Authorization` header and whether a client certificate came.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::scripted::{reset, respond, respond_head, ScriptedServer};
use common::sha256;
use common::test_ca::TestCa;
use tank::stevedore::credential::Credential;
use tank::stevedore::trust::CaFile;
use tank::stevedore::{Client, Config, Registry, Session};

type Script<'a> = &'a (dyn Fn(&Seen) -> Reply + Send + Sync);

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
const NAMES: [&str; 3] = ["reg.test", "cdn.test", "auth.test"];

// ---------------------------------------------------------------- helpers

/// A test CA, a server certificate for every name in [`NAMES`], and a
/// client certificate, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    server: rustls::ServerConfig,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("tank secrets-test CA");
        let (server_cert, server_key) = ca.leaf(NAMES.iter().map(|n| n.to_string()).collect());
        let (client_cert, client_key) = ca.leaf(vec!["tank-client".to_owned()]);
        std::fs::write(dir.path().join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.cert"), client_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();

        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        // Asks every client for a certificate and takes none as well: the
        // test looks at who presented one.
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![server_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .unwrap();
        Pki { dir, server }
    }

    fn ca(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A docker certs directory giving `registry` the client certificate.
    fn certs_dir_for(&self, registry: &str) -> std::path::PathBuf {
        let root = self.dir.path().join("certs.d");
        let host = root.join(registry);
        std::fs::create_dir_all(&host).unwrap();
        for f in ["client.cert", "client.key"] {
            std::fs::copy(self.dir.path().join(f), host.join(f)).unwrap();
        }
        root
    }
}

#[derive(Debug, Clone)]
struct Seen {
    tls: bool,
    /// The name the client asked for in its TLS hello.
    sni: Option<String>,
    client_cert: bool,
    target: String,
    authorization: Option<String>,
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// One port that speaks TLS to a client opening with a TLS hello and plain
/// HTTP/1.1 to others; one request per connection. The script gets the
/// request and the port (for URLs back to this server). Stopped on drop.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(
        tls: rustls::ServerConfig,
        script: impl Fn(&Seen, u16) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tls, script) = (Arc::new(tls), Arc::new(script));
        let accept = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for tcp in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(tcp) = tcp else { continue };
                    let (tls, script, seen) = (tls.clone(), script.clone(), seen.clone());
                    std::thread::spawn(move || serve(tcp, tls, &|req| script(req, port), &seen));
                }
            })
        };
        Server {
            port,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, script: Script, seen: &Mutex<Vec<Seen>>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let mut first = [0u8; 1];
    if !matches!(tcp.peek(&mut first), Ok(1)) {
        return;
    }
    if first[0] == 0x16 {
        let conn = rustls::ServerConnection::new(tls).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        if let Some(mut req) = read_head(&mut stream, true) {
            req.sni = stream.conn.server_name().map(str::to_owned);
            req.client_cert = stream.conn.peer_certificates().is_some();
            answer(&mut stream, &req, script, seen);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    } else {
        let mut stream = tcp;
        if let Some(req) = read_head(&mut stream, false) {
            answer(&mut stream, &req, script, seen);
        }
    }
}

fn read_head(stream: &mut impl Read, tls: bool) -> Option<Seen> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let target = lines.next()?.split_whitespace().nth(1)?.to_owned();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    Some(Seen {
        tls,
        sni: None,
        client_cert: false,
        target,
        authorization,
    })
}

fn answer(stream: &mut impl Write, req: &Seen, script: Script, seen: &Mutex<Vec<Seen>>) {
    seen.lock().unwrap().push(req.clone());
    let (status, headers, body) = script(req);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (&**k, &**v)).collect();
    respond(stream, status, &headers, &body);
}

fn header(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

/// A client on the async core that finds every name of [`NAMES`] at
/// 127.0.0.1, with short waits.
fn client(tweak: impl FnOnce(&mut Config)) -> Client {
    let mut config = Config {
        idle_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(20),
        resolve: NAMES
            .iter()
            .map(|n| (n.to_string(), SocketAddr::from(([127, 0, 0, 1], 0))))
            .collect(),
        ..Config::default()
    };
    tweak(&mut config);
    Client::new(config).unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn basic_header(user: &str, password: &str) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ------------------------------------------------------------------ item 1

#[derive(Clone, Copy, Debug)]
enum Challenge {
    Basic,
    Bearer,
}

/// `reg.test:P` over both schemes, with alice's credentials set for it:
/// a Basic challenge, or a Bearer one whose realm (https, on the same
/// server) takes her password for `TOKEN_SECRET`.
fn registry_for(pki: &Pki, challenge: Challenge) -> Server {
    let alice = basic_header("alice", "PASSWORD_SECRET");
    Server::start(pki.server.clone(), move |req, port| {
        let auth = req.authorization.as_deref();
        if req.target.starts_with("/token") {
            return match auth == Some(alice.as_str()) {
                true => (200, vec![], br#"{"token":"TOKEN_SECRET"}"#.to_vec()),
                false => (401, vec![], vec![]),
            };
        }
        let ok = match challenge {
            Challenge::Basic => auth == Some(alice.as_str()),
            Challenge::Bearer => auth == Some("Bearer TOKEN_SECRET"),
        };
        if ok {
            return (
                200,
                vec![header("Content-Type", OCI_MANIFEST)],
                MANIFEST.to_vec(),
            );
        }
        let asked = match challenge {
            Challenge::Basic => r#"Basic realm="reg""#.to_owned(),
            Challenge::Bearer => {
                format!(r#"Bearer realm="https://reg.test:{port}/token",service="reg""#)
            }
        };
        (401, vec![header("WWW-Authenticate", &asked)], vec![])
    })
}

#[test]
fn a_cached_credential_never_follows_its_registry_to_plain_http() {
    let pki = Pki::new();
    for challenge in [Challenge::Basic, Challenge::Bearer] {
        for order in [["https", "http"], ["http", "https"]] {
            let case = format!("{challenge:?}, {} then {}", order[0], order[1]);
            let server = registry_for(&pki, challenge);
            let port = server.port;
            let cache = Session::default();
            cache.credentials.set(
                &Registry::parse(&format!("reg.test:{port}")).unwrap(),
                Credential::Basic {
                    username: "alice".into(),
                    password: "PASSWORD_SECRET".into(),
                },
            );
            let cas = CaFile::read(&pki.ca()).unwrap();
            cache
                .change_trust(|t| {
                    t.add_cas(None, cas);
                    Ok(())
                })
                .unwrap();
            let client = client(|_| {});
            let mut https_ok = false;
            for scheme_now in [order[0], order[1], order[0], order[1]] {
                let registry = format!("{scheme_now}://reg.test:{port}");
                let got = block_on(common::core::manifest(
                    &client,
                    &registry,
                    "a/b",
                    "v1",
                    Some(&cache),
                ));
                if scheme_now == "https" {
                    https_ok |= got.is_ok();
                }
            }
            let seen = server.seen();
            assert!(https_ok, "{case}: the https control failed: {seen:#?}");
            for s in seen.iter().filter(|s| !s.tls) {
                assert_eq!(
                    s.authorization, None,
                    "{case}: a secret went over plain http: {s:?}"
                );
            }
            assert!(
                seen.iter().any(|s| !s.tls),
                "{case}: the plain-http registry was never asked"
            );
        }
    }
}

/// An insecure registry's anonymous tokens are no secret: they still reach
/// it over plain http, while the credentials set for it never do.
#[test]
fn an_anonymous_token_still_reaches_a_plain_http_registry() {
    let pki = Pki::new();
    let server = Server::start(pki.server.clone(), move |req, port| {
        let auth = req.authorization.as_deref();
        if req.target.starts_with("/token") {
            return match auth {
                None => (200, vec![], br#"{"token":"ANONYMOUS"}"#.to_vec()),
                Some(_) => (401, vec![], vec![]),
            };
        }
        if auth == Some("Bearer ANONYMOUS") {
            return (
                200,
                vec![header("Content-Type", OCI_MANIFEST)],
                MANIFEST.to_vec(),
            );
        }
        let asked = format!(r#"Bearer realm="http://reg.test:{port}/token",service="reg""#);
        (401, vec![header("WWW-Authenticate", &asked)], vec![])
    });
    let cache = Session::default();
    let registry = format!("http://reg.test:{}", server.port);
    cache.credentials.set(
        &Registry::parse(&format!("reg.test:{}", server.port)).unwrap(),
        Credential::Basic {
            username: "alice".into(),
            password: "PASSWORD_SECRET".into(),
        },
    );
    let client = client(|_| {});
    for call in 0..2 {
        block_on(common::core::manifest(
            &client,
            &registry,
            "a/b",
            "v1",
            Some(&cache),
        ))
        .unwrap_or_else(|e| panic!("call {call}: {e}"));
    }
    let seen = server.seen();
    let alice = basic_header("alice", "PASSWORD_SECRET");
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() != Some(&alice)),
        "alice's password went over plain http: {seen:#?}"
    );
    let tokens = seen
        .iter()
        .filter(|s| s.target.starts_with("/token"))
        .count();
    assert_eq!(tokens, 1, "the anonymous token is cached: {seen:#?}");
}

// ------------------------------------------------------------------ item 2

#[test]
fn a_client_certificate_goes_only_to_the_registry_it_was_set_for() {
    let pki = Pki::new();
    let payload = b"layer bytes".to_vec();
    let digest = sha256(&payload);
    let server = {
        let payload = payload.clone();
        Server::start(pki.server.clone(), move |req, port| {
            match (req.sni.as_deref(), req.target.as_str()) {
                (Some("auth.test"), t) if t.starts_with("/token") => {
                    (200, vec![], br#"{"token":"t0ken"}"#.to_vec())
                }
                (Some("cdn.test"), t) if t.starts_with("/blob") => (200, vec![], payload.clone()),
                (Some("reg.test"), _) if req.authorization.is_none() => {
                    let challenge =
                        format!(r#"Bearer realm="https://auth.test:{port}/token",service="reg""#);
                    (401, vec![header("WWW-Authenticate", &challenge)], vec![])
                }
                (Some("reg.test"), _) => {
                    let to = format!("https://cdn.test:{port}/blob?sig=1");
                    (307, vec![header("Location", &to)], vec![])
                }
                _ => (404, vec![], vec![]),
            }
        })
    };
    let registry = format!("reg.test:{}", server.port);
    let cache = Session::default();
    let certs = pki.certs_dir_for(&registry);
    cache
        .change_trust(|t| {
            t.add_cas(None, CaFile::read(&pki.ca())?);
            t.load_certs_dir(Some(&certs))
        })
        .unwrap();
    let client = client(|_| {});
    let got = block_on(common::core::blob(
        &client,
        &registry,
        "a/b",
        &digest,
        Some(&cache),
    ))
    .unwrap();
    assert_eq!(got, payload);

    let seen = server.seen();
    let presented = |name: &str| -> Vec<bool> {
        seen.iter()
            .filter(|s| s.sni.as_deref() == Some(name))
            .map(|s| s.client_cert)
            .collect()
    };
    assert!(
        !presented("reg.test").is_empty() && presented("reg.test").iter().all(|p| *p),
        "the registry gets its certificate (control): {seen:#?}"
    );
    for other in ["auth.test", "cdn.test"] {
        let p = presented(other);
        assert!(!p.is_empty(), "{other} was not asked: {seen:#?}");
        assert!(
            p.iter().all(|p| !p),
            "{other} was shown the registry's client certificate: {seen:#?}"
        );
    }
}

// ------------------------------------------------------------------ item 3

#[test]
fn messages_never_quote_a_presigned_query() {
    let query = "X-Amz-Signature=SIG_SECRET&token=TOKEN_SECRET";
    let resetting = ScriptedServer::start(|_, conn| reset(conn));
    let short = ScriptedServer::start(|_, conn| {
        respond_head(conn, 200, &[("Content-Length", "100")]);
        let _ = conn.write_all(b"ten bytes!");
    });
    // A body cut short is reported for the URL the call asked for.
    let targets = [
        ("refused", format!("127.0.0.1:{}", dead_port()), true),
        ("reset", resetting.addr().to_owned(), true),
        ("short body", short.addr().to_owned(), false),
    ];
    for (case, target, names_the_hop) in targets {
        let location = format!("http://{target}/cdn/blob?{query}");
        let registry = ScriptedServer::start(move |_, conn| {
            respond(conn, 307, &[("Location", location.as_str())], b"")
        });
        let client = client(|c| c.max_retries = 1);
        let e = block_on(common::core::blob(
            &client,
            registry.addr(),
            "a/b",
            &sha256(b"x"),
            None,
        ))
        .unwrap_err();
        eprintln!("CASE {case}: {:?}/{}: {}", e.kind, e.reason, e.message);
        assert!(
            !e.message.contains("SECRET"),
            "{case}: the query is in the message: {}",
            e.message
        );
        assert!(
            !names_the_hop || e.message.contains(&format!("{target}/cdn/blob")),
            "{case}: the message names the host and path: {}",
            e.message
        );
    }

    // The realm as the challenge gave it, with the query tank adds to it.
    let realm = format!("http://127.0.0.1:{}/token?sig=REALM_SECRET", dead_port());
    let registry = ScriptedServer::start(move |_, conn| {
        let challenge =
            format!(r#"Bearer realm="{realm}",service="svc",scope="repository:a/b:pull""#);
        respond(conn, 401, &[("WWW-Authenticate", challenge.as_str())], b"")
    });
    let cache = Session::default();
    cache.credentials.set(
        &Registry::parse(registry.addr()).unwrap(),
        Credential::Basic {
            username: "alice".into(),
            password: "pw".into(),
        },
    );
    let client = client(|c| c.max_retries = 1);
    let e = block_on(common::core::manifest(
        &client,
        registry.addr(),
        "a/b",
        "v1",
        Some(&cache),
    ))
    .unwrap_err();
    eprintln!("CASE realm: {:?}/{}: {}", e.kind, e.reason, e.message);
    assert_eq!(e.reason.id(), "token_request_failed", "{}", e.message);
    for hidden in ["SECRET", "account=", "scope="] {
        assert!(!e.message.contains(hidden), "{hidden}: {}", e.message);
    }
    assert!(e.message.contains("/token"), "{}", e.message);
}

// ------------------------------------------------------------------ item 6

#[test]
fn a_trickling_token_server_holds_no_call_past_the_token_bound() {
    const BOUND: Duration = Duration::from_secs(2);
    const TRICKLE_FOR: Duration = Duration::from_secs(60);
    let token = ScriptedServer::start(|_, conn| {
        respond_head(
            conn,
            200,
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "1000"),
            ],
        );
        // A byte well inside the idle timeout, until the client hangs up.
        let started = Instant::now();
        while started.elapsed() < TRICKLE_FOR && conn.write_all(b" ").is_ok() {
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let realm = format!("{}/token", token.url());
    let registry = ScriptedServer::start(move |_, conn| {
        let challenge = format!(r#"Bearer realm="{realm}",service="svc""#);
        respond(conn, 401, &[("WWW-Authenticate", challenge.as_str())], b"")
    });
    let cache = Session::default();
    let client = client(|c| {
        c.idle_timeout = Duration::from_secs(2);
        c.token_timeout = BOUND;
    });
    let started = Instant::now();
    let call = || async {
        let r = common::core::manifest(&client, registry.addr(), "a/b", "v1", Some(&cache)).await;
        (r, started.elapsed())
    };
    let (first, second) = block_on(async { tokio::join!(call(), call()) });
    for (which, (r, took)) in [("first", first), ("second", second)] {
        let e = r.unwrap_err();
        eprintln!(
            "CASE {which}: {:?}/{} in {took:.2?}: {}",
            e.kind, e.reason, e.message
        );
        assert_eq!(
            e.reason.id(),
            "token_request_failed",
            "{which}: {}",
            e.message
        );
        // Generous: a loaded machine, and the bound itself is 2 s.
        assert!(took < BOUND * 6, "{which} call took {took:?}");
    }
}
