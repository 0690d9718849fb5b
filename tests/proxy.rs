//! Proxies from the environment, against a scripted proxy on loopback that
//! forwards to a real registry. One test in its own binary: the variables
//! are read once, when the process's client starts, so they are set before
//! the first call and hold for every case here.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::scripted::{respond, Request, ScriptedServer};
use common::*;

/// `user:pw`, as the proxy URL's credentials are sent.
const BASIC: &str = "Basic dXNlcjpwdw==";

/// Forwards an absolute-form GET to the registry at `upstream` and relays
/// the answer; CONNECT to `refused.test` is refused with 407; any other
/// CONNECT is granted, and the first bytes sent through it are kept.
fn proxy(upstream: String, tunnelled: Arc<Mutex<Vec<u8>>>) -> ScriptedServer {
    ScriptedServer::start(move |req: &Request, conn: &mut TcpStream| {
        if req.method == "CONNECT" {
            if req.target.starts_with("refused.test:") {
                respond(conn, 407, &[("Proxy-Authenticate", "Basic")], b"");
                return;
            }
            let _ = conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut first = vec![0u8; 4096];
            let n = conn.read(&mut first).unwrap_or(0);
            tunnelled.lock().unwrap().extend_from_slice(&first[..n]);
            return;
        }
        let path = req
            .target
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
            .unwrap_or("/");
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n");
        for (k, v) in &req.headers {
            if !["host", "connection", "proxy-authorization"]
                .contains(&k.to_ascii_lowercase().as_str())
            {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("\r\n");
        let mut up = TcpStream::connect(&upstream).unwrap();
        up.write_all(head.as_bytes()).unwrap();
        let _ = std::io::copy(&mut up, conn);
    })
}

#[test]
fn environment_proxies_are_used_and_loopback_goes_direct() {
    let rig = start(RigOptions::plain_only());
    let upstream = rig.registry(Which::Plain).to_owned();
    let port = upstream.rsplit(':').next().unwrap().to_owned();
    let tunnelled = Arc::new(Mutex::new(Vec::new()));
    let p = proxy(upstream.clone(), tunnelled.clone());
    let proxy_url = format!("http://user:pw@{}", p.addr());
    // SAFETY (edition 2021: safe fn): set before any tank call starts the
    // client, and this binary has no other test running beside this one.
    std::env::set_var("http_proxy", &proxy_url);
    std::env::set_var("https_proxy", &proxy_url);
    std::env::set_var("no_proxy", "direct.test");
    let img = rig.info().images.oci_image.clone();

    // A plain-http registry by a name only the proxy knows: the request
    // names the whole URL and carries the proxy's credentials.
    let named = format!("http://registry.test:{port}");
    let m = manifest(&named, &img.repo, &img.tag, &Cache::none()).unwrap();
    assert_eq!(m.digest, img.digest);
    let layer = &img.layers[0];
    assert_eq!(
        sha256(&blob(&named, &img.repo, layer, &Cache::none()).unwrap()),
        *layer
    );
    let seen = p.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for r in &seen {
        assert!(
            r.target
                .starts_with(&format!("http://registry.test:{port}/v2/{}/", img.repo)),
            "absolute form: {}",
            r.target
        );
        assert_eq!(
            r.header("host"),
            Some(format!("registry.test:{port}").as_str())
        );
        assert_eq!(r.header("proxy-authorization"), Some(BASIC));
    }

    // Loopback is never proxied.
    let direct = manifest(&upstream, &img.repo, &img.tag, &Cache::none()).unwrap();
    assert_eq!(direct.digest, img.digest);
    assert_eq!(
        p.requests().len(),
        2,
        "a loopback registry went through the proxy"
    );

    // https goes through a CONNECT tunnel; a refusal is a proxy error with
    // the proxy's status, and is not retried.
    let before = p.requests().len();
    let e = manifest("refused.test", "a/b", "v1", &Cache::none()).unwrap_err();
    assert_eq!((e.reason.as_str(), e.http_status), ("proxy", 407), "{e:?}");
    assert_eq!(p.requests().len(), before + 1, "a refusal is final");
    assert!(e.message.contains("407"), "{e:?}");
    let connect = p.requests().pop().unwrap();
    assert_eq!(
        (connect.method.as_str(), connect.target.as_str()),
        ("CONNECT", "refused.test:443")
    );
    assert_eq!(connect.header("proxy-authorization"), Some(BASIC));

    // Through a granted tunnel the proxy sees only TLS: a ClientHello
    // naming the registry, no path and no token.
    let e = manifest("tunnel.test:8443", "a/b", "v1", &Cache::none()).unwrap_err();
    let hello = tunnelled.lock().unwrap().clone();
    assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record: {e:?}");
    assert!(
        hello
            .windows(b"tunnel.test".len())
            .any(|w| w == b"tunnel.test"),
        "SNI names the registry"
    );
    assert!(
        !hello.windows(4).any(|w| w == b"/v2/"),
        "no request in the clear"
    );
    let connect = p.requests().pop().unwrap();
    assert_eq!(connect.target, "tunnel.test:8443");
}
