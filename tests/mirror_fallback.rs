//! Falling back from a mirror to the registry, for the faults a real
//! mirror will not produce on demand: one that resets every connection (how
//! often is it asked in one pull?), one that challenges for credentials it
//! was never given (does the registry's secret reach it?), and every source
//! failing (does the error name each?). The registry behind them is the
//! rig's real one; the pull-through cache and the mirrors that answer 404 or
//! serve a wrong blob are in tests/mirrors.rs.

mod common;

use common::scripted::{reset, respond, ScriptedServer};
use common::*;

const BOTH: u32 = TANK_MIRROR_PULL | TANK_MIRROR_RESOLVE;

fn rig_with_many_layers() -> Rig {
    start(RigOptions {
        cdn: false,
        tls: false,
        many_layers: Some((8, 1)),
        ..RigOptions::default()
    })
}

/// A mirror that has the image's manifest (as the registry serves it) and
/// nothing else: the pull's blobs are asked of it first, then of the
/// mirrors behind it.
fn manifest_only(media_type: String, raw: Vec<u8>) -> ScriptedServer {
    ScriptedServer::start(move |req, conn| match req.path().contains("/manifests/") {
        true => respond(conn, 200, &[("Content-Type", &media_type)], &raw),
        false => respond(conn, 404, &[], b"{}"),
    })
}

#[test]
fn a_mirror_that_resets_every_connection_is_left_for_the_rest_of_the_pull() {
    let rig = rig_with_many_layers();
    let many = rig
        .info()
        .images
        .many
        .clone()
        .expect("the many-layer image");
    let reg = rig.registry(Which::Plain).to_owned();
    let m = manifest(&reg, &many.repo, &many.tag, &Cache::none()).unwrap();
    let first = manifest_only(m.media_type, m.raw);
    let resetting = ScriptedServer::start(|_, conn| reset(conn));
    let cache = Cache::new();
    add_mirror(&cache, &reg, first.addr(), BOTH).unwrap();
    add_mirror(&cache, &reg, resetting.addr(), BOTH).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // One blob at a time: the count below is then exact.
    let (pulled, _) = pull(
        &format!("{reg}/{}:{}", many.repo, many.tag),
        dir.path(),
        None,
        1,
        &cache,
        None,
    );
    let pulled = pulled.expect("the registry serves what the mirrors would not");
    assert_eq!(pulled.digest, many.digest);
    assert_eq!(pulled.layers.len(), 8);
    // Each of the 9 blobs was asked of the first mirror (which had the
    // manifest), then of the registry; the resetting mirror was asked for
    // the first blob only, with its own retries (the transport's 3), not
    // once per blob.
    let blobs = |s: &ScriptedServer| {
        s.requests()
            .iter()
            .filter(|r| r.path().contains("/blobs/"))
            .count()
    };
    assert_eq!(blobs(&first), 9);
    let asked = resetting.requests();
    assert!(
        !asked.is_empty() && asked.len() <= 4,
        "the resetting mirror was asked {} times in one pull",
        asked.len()
    );
    // A second pull through the same cache asks it again: left out for
    // one pull, not for the session.
    let before = asked.len();
    let dir = tempfile::tempdir().unwrap();
    let (pulled, _) = pull(
        &format!("{reg}/{}:{}", many.repo, many.tag),
        dir.path(),
        None,
        1,
        &cache,
        None,
    );
    pulled.unwrap();
    assert!(resetting.requests().len() > before);
}

#[test]
fn a_refused_connection_to_a_mirror_falls_back_at_once() {
    let rig = rig_with_many_layers();
    let many = rig
        .info()
        .images
        .many
        .clone()
        .expect("the many-layer image");
    let reg = rig.registry(Which::Plain).to_owned();
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let cache = Cache::new();
    add_mirror(&cache, &reg, &dead_addr, BOTH).unwrap();
    let dir = tempfile::tempdir().unwrap();
    rig.clear_logs();
    let (pulled, _) = pull(
        &format!("{reg}/{}:{}", many.repo, many.tag),
        dir.path(),
        None,
        2,
        &cache,
        None,
    );
    assert_eq!(pulled.unwrap().digest, many.digest);
    // Every object came from the registry, once each.
    let served = rig.registry_requests(Which::Plain);
    let blobs = served.iter().filter(|r| r.uri.contains("/blobs/")).count();
    assert_eq!(blobs, 9, "config and 8 layers: {served:?}");
}

#[test]
fn the_registrys_secret_never_reaches_its_mirror() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let p = private(&rig);
    let reg = rig.registry(Which::Token).to_owned();
    let image = &rig.info().images.oci_image;
    // A mirror that wants a password of its own, which the cache does not
    // have: it must get none, and the registry's least of all.
    let mirror = ScriptedServer::start(|_, conn| {
        respond(
            conn,
            401,
            &[("WWW-Authenticate", "Basic realm=\"mirror\"")],
            b"{}",
        )
    });
    let cache = Cache::new();
    set_basic(&cache, &reg, &p.username, &p.password);
    add_mirror(&cache, &reg, mirror.addr(), BOTH).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pulled, _) = pull(
        &format!("{reg}/{}:{}", p.oci_image, image.tag),
        dir.path(),
        None,
        2,
        &cache,
        None,
    );
    assert_eq!(pulled.unwrap().digest, image.digest);
    let asked = mirror.requests();
    assert!(!asked.is_empty(), "the mirror was asked first");
    for r in &asked {
        assert_eq!(r.header("authorization"), None, "{r:?}");
    }
}

#[test]
fn when_every_source_fails_the_error_names_each() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let reg = rig.registry(Which::Plain).to_owned();
    let broken = ScriptedServer::start(|_, conn| respond(conn, 500, &[], b"down"));
    let missing = ScriptedServer::start(|_, conn| respond(conn, 404, &[], b"{}"));
    let cache = Cache::new();
    add_mirror(&cache, &reg, broken.addr(), BOTH).unwrap();
    add_mirror(&cache, &reg, missing.addr(), BOTH).unwrap();
    let e = manifest(&reg, "no/such/repo", "v1", &cache).unwrap_err();
    // The registry's answer is the error's; the message names all three.
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 404),
        "{e:?}"
    );
    for name in [broken.addr(), missing.addr(), reg.as_str()] {
        assert!(e.message.contains(name), "{name} missing from {e:?}");
    }
    assert!(e.message.contains("500"), "{e:?}");
    // Tried in the order added, each once after its own retries.
    let first = broken.requests().last().unwrap().at;
    let second = missing.requests().first().unwrap().at;
    assert!(first <= second);
}

#[test]
fn a_mirror_is_an_https_url_or_a_loopback_host_and_capabilities_are_known_bits() {
    let cache = Cache::new();
    let bad = |mirror: &str, caps: u32| {
        let e = add_mirror(&cache, "docker.io", mirror, caps).unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{mirror}: {e:?}");
    };
    bad("http://mirror.example", BOTH);
    bad("ftp://mirror.example", BOTH);
    bad("mirror.example", 0);
    bad("mirror.example", 4);
    bad("", BOTH);
    add_mirror(&cache, "docker.io", "https://mirror.example/hub", BOTH).unwrap();
    add_mirror(&cache, "docker.io", "127.0.0.1:5000", TANK_MIRROR_PULL).unwrap();
    add_mirror(
        &cache,
        "docker.io",
        "http://localhost:5000",
        TANK_MIRROR_RESOLVE,
    )
    .unwrap();
}

/// hosts.toml `[header]` values may be secrets (containerd's docs show an
/// `authorization` one): they go to the mirror's own origin, never to
/// where it redirects a blob.
#[test]
fn a_hosts_toml_header_stays_on_its_mirrors_origin() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let reg = rig.registry(Which::Plain).to_owned();
    let image = rig.info().images.oci_image.clone();
    let m = manifest(&reg, &image.repo, &image.tag, &Cache::none()).unwrap();
    let elsewhere = ScriptedServer::start(|_, conn| respond(conn, 404, &[], b"{}"));
    let blob_target = elsewhere.url();
    let (media_type, raw) = (m.media_type, m.raw);
    let mirror = ScriptedServer::start(move |req, conn| match req.path().contains("/manifests/") {
        true => respond(conn, 200, &[("Content-Type", &media_type)], &raw),
        false => {
            let to = format!("{blob_target}{}", req.path());
            respond(conn, 307, &[("Location", &to)], b"")
        }
    });
    let certs = tempfile::tempdir().unwrap();
    let host_dir = certs.path().join(&reg);
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(
        host_dir.join("hosts.toml"),
        format!(
            "server = \"http://{reg}\"\n\
             [host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n\
             [host.\"http://{}\".header]\n  x-api-key = \"s3cret\"\n",
            mirror.addr(),
            mirror.addr()
        ),
    )
    .unwrap();
    let cache = Cache::new();
    load_certs(&cache, Some(certs.path().to_str().unwrap())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (pulled, _) = pull(
        &format!("{reg}/{}:{}", image.repo, image.tag),
        dir.path(),
        None,
        1,
        &cache,
        None,
    );
    assert_eq!(pulled.unwrap().digest, image.digest);
    let asked = mirror.requests();
    assert!(
        asked.iter().any(|r| r.path().contains("/blobs/")),
        "{asked:?}"
    );
    for r in &asked {
        assert_eq!(r.header("x-api-key"), Some("s3cret"), "{r:?}");
        assert!(
            r.target.contains(&format!("ns={reg}")) || r.target.contains("ns="),
            "{r:?}"
        );
    }
    let redirected = elsewhere.requests();
    assert!(
        !redirected.is_empty(),
        "the mirror's redirects were followed"
    );
    for r in &redirected {
        assert_eq!(r.header("x-api-key"), None, "{r:?}");
    }
}
