//! The rig against itself: real registries, real tokens, real redirects.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tank_testrig::{Rig, RigInfo, RigOptions, Which};

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(10))
        .build()
}

/// Any status, not just 2xx/3xx.
fn call(request: ureq::Request) -> ureq::Response {
    match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    }
}

fn body(response: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    response.into_reader().read_to_end(&mut out).unwrap();
    out
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// (repo, tag, digest, media type) of every fixture pushed by tag.
fn tagged(info: &RigInfo) -> Vec<(String, String, String, String)> {
    let i = &info.images;
    let mut out = vec![
        (
            &i.oci_image.repo,
            &i.oci_image.tag,
            &i.oci_image.digest,
            &i.oci_image.media_type,
        ),
        (
            &i.docker_image.repo,
            &i.docker_image.tag,
            &i.docker_image.digest,
            &i.docker_image.media_type,
        ),
        (
            &i.oci_index.repo,
            &i.oci_index.tag,
            &i.oci_index.digest,
            &i.oci_index.media_type,
        ),
        (
            &i.docker_list.repo,
            &i.docker_list.tag,
            &i.docker_list.digest,
            &i.docker_list.media_type,
        ),
    ];
    if let Some(l) = &i.large {
        out.push((&l.repo, &l.tag, &l.digest, &l.media_type));
    }
    out.into_iter()
        .map(|(a, b, c, d)| (a.clone(), b.clone(), c.clone(), d.clone()))
        .collect()
}

/// Parses `Bearer realm="..",service="..",scope=".."`.
fn challenge(header: &str) -> Vec<(String, String)> {
    let rest = header.strip_prefix("Bearer ").expect("a Bearer challenge");
    rest.split("\",")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn anonymous_token(realm: &str, service: &str, repo: &str) -> String {
    let response = call(
        agent()
            .get(realm)
            .query("service", service)
            .query("scope", &format!("repository:{repo}:pull")),
    );
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = serde_json::from_reader(response.into_reader()).unwrap();
    assert_eq!(json["token"], json["access_token"]);
    assert_eq!(json["expires_in"], 300);
    json["token"].as_str().unwrap().to_owned()
}

#[test]
fn starts_everything_and_reports_one_line_of_json() {
    let rig = Rig::start(RigOptions::everything()).unwrap();
    assert_eq!(rig.started(), Which::ALL);
    let info = rig.info();
    let json = serde_json::to_string(info).unwrap();
    assert!(!json.contains('\n'));
    let back: RigInfo = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, info);
    assert!(info.plain.is_some() && info.token.is_some() && info.cdn.is_some());
    assert!(info.tls.is_some() && info.tls_token.is_some());
    assert!(info.basic_registry.is_some() && info.private.is_some());
    assert!(info.tls.as_ref().unwrap().client_cert_registry.is_some());
    assert!(info.images.large.is_none() && info.images.many.is_none());
    assert_eq!(info.basic_auth.username, "tank");

    assert!(info.pull_through.is_some() && info.faulty_mirrors.is_some());

    // Same digests everywhere, and the blob files are where the rig says
    // (the pull-through cache and the empty mirror start with none).
    for which in Which::ALL {
        let holds_fixtures = !matches!(which, Which::PullThrough | Which::EmptyMirror);
        for layer in info
            .images
            .oci_image
            .layers
            .iter()
            .filter(|_| holds_fixtures)
        {
            let path = rig.blob_data_path(which, layer);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(&sha256(&bytes), layer, "{}", path.display());
        }
        let whole = std::fs::read_to_string(rig.registry_log_path(which)).unwrap();
        assert!(whole.contains("listening on"));
        // The window starts after the fixture pushes.
        assert!(!rig.registry_log(which).contains("PUT /v2/"));
    }
    // Loading the fixtures is not counted.
    assert!(rig.token_requests().is_empty());
    assert!(rig.cdn_requests().is_empty());
}

#[test]
fn the_default_rig_keeps_its_registries_and_gets_private_repositories() {
    let rig = Rig::start(RigOptions::default()).unwrap();
    assert_eq!(
        rig.started(),
        [
            Which::Plain,
            Which::Token,
            Which::Cdn,
            Which::Tls,
            Which::TlsRedirect
        ]
    );
    let info = rig.info();
    assert!(info.basic_registry.is_none() && info.tls_token.is_none());
    let tls = info.tls.as_ref().unwrap();
    assert!(tls.client_cert_registry.is_none() && tls.client_cert_pem.is_none());
    let private = info.private.as_ref().unwrap();
    // The private twins share the public ones' blobs and manifests.
    for which in [Which::Token, Which::Cdn] {
        let repos = rig
            .storage_dir(which)
            .join("docker/registry/v2/repositories");
        for repo in [&private.oci_image, &private.oci_index, &private.docker_list] {
            assert!(repos.join(repo).join("_manifests/tags").is_dir(), "{repo}");
        }
    }
    // The plain registries have none.
    let plain = rig
        .storage_dir(Which::Plain)
        .join("docker/registry/v2/repositories");
    assert!(!plain.join("private").exists());
}

#[test]
fn plain_registry_serves_fixtures_by_tag_with_their_digest() {
    let rig = Rig::start(RigOptions {
        large_mib: Some(3),
        many_layers: Some((3, 1)),
        ..RigOptions::plain_only()
    })
    .unwrap();
    let info = rig.info();
    assert!(info.token.is_none() && info.cdn.is_none());
    let registry = rig.registry(Which::Plain);
    let agent = agent();

    for (repo, tag, digest, media_type) in tagged(info) {
        let url = format!("http://{registry}/v2/{repo}/manifests/{tag}");
        let response = call(agent.get(&url).set("Accept", MANIFEST_ACCEPT));
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.header("Docker-Content-Digest"),
            Some(digest.as_str())
        );
        assert_eq!(response.header("Content-Type"), Some(media_type.as_str()));
        assert_eq!(sha256(&body(response)), digest, "{url}");
    }

    let many = info.images.many.as_ref().unwrap();
    assert_eq!(many.layers.len(), 3);
    let large = info.images.large.as_ref().unwrap();
    assert!(large.blob_sizes[&large.layers[0]] > 3 * 1024 * 1024);
    for image in [large, many] {
        for digest in &image.layers {
            let url = format!("http://{registry}/v2/{}/blobs/{digest}", image.repo);
            let bytes = body(call(agent.get(&url)));
            assert_eq!(bytes.len() as u64, image.blob_sizes[digest]);
            assert_eq!(&sha256(&bytes), digest);
        }
    }

    let index = &info.images.oci_index;
    let arm = index.entry("linux/arm/v7").unwrap();
    let url = format!(
        "http://{registry}/v2/{}/manifests/{}",
        index.repo, arm.digest
    );
    let response = call(agent.get(&url).set("Accept", MANIFEST_ACCEPT));
    assert_eq!(response.status(), 200);
    assert_eq!(sha256(&body(response)), arm.digest);
}

#[test]
fn token_registry_challenges_then_accepts_an_issued_token() {
    let rig = Rig::start(RigOptions::token_only()).unwrap();
    let info = rig.info().token.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    let url = format!(
        "http://{}/v2/{}/manifests/{}",
        info.registry, image.repo, image.tag
    );
    let agent = agent();

    let response = call(agent.get(&url).set("Accept", MANIFEST_ACCEPT));
    assert_eq!(response.status(), 401);
    let params = challenge(response.header("WWW-Authenticate").unwrap());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("realm"), Some(info.realm.as_str()));
    assert_eq!(get("service"), Some("tank-rig"));
    let scope = format!("repository:{}:pull", image.repo);
    assert_eq!(get("scope"), Some(scope.as_str()));

    let token = anonymous_token(&info.realm, &info.service, &image.repo);
    let response = call(
        agent
            .get(&url)
            .set("Accept", MANIFEST_ACCEPT)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(image.digest.as_str())
    );

    let log = rig.token_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].which, Which::Token);
    assert_eq!(log[0].scopes, vec![scope.clone()]);
    assert_eq!(log[0].service.as_deref(), Some("tank-rig"));
    assert!(!log[0].authorization);

    // An anonymous token does not let anyone push.
    let upload = format!("http://{}/v2/{}/blobs/uploads/", info.registry, image.repo);
    let response = call(
        agent
            .post(&upload)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 401);

    // Wrong Basic credentials are refused, and recorded.
    let response = call(
        agent
            .get(&info.realm)
            .query("scope", &scope)
            .set("Authorization", "Basic dGFuazp3cm9uZw=="),
    );
    assert_eq!(response.status(), 401);
    let log = rig.token_requests();
    assert_eq!(log.len(), 2);
    assert!(log[1].authorization);
    assert_eq!(log[1].username.as_deref(), Some("tank"));
    rig.clear_logs();
    assert!(rig.token_requests().is_empty());
}

#[test]
fn cdn_registry_redirects_blob_reads_to_a_cdn_that_refuses_authorization() {
    let rig = Rig::start(RigOptions {
        token: true,
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let info = rig.info().cdn.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    let layer = &image.layers[2];
    let size = image.blob_sizes[layer];
    let token = anonymous_token(&info.realm, &info.service, &image.repo);
    let agent = agent();

    let url = format!("http://{}/v2/{}/blobs/{layer}", info.registry, image.repo);
    let response = call(
        agent
            .get(&url)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 307);
    let location = response.header("Location").unwrap().to_owned();
    let hex = layer.trim_start_matches("sha256:");
    assert_eq!(
        location,
        format!(
            "{}/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            info.cdn,
            &hex[..2]
        )
    );

    let response = call(agent.get(&location));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("Content-Length"),
        Some(size.to_string().as_str())
    );
    assert_eq!(response.header("Transfer-Encoding"), None);
    assert_eq!(&sha256(&body(response)), layer);

    let response = call(agent.head(&location));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("Content-Length"),
        Some(size.to_string().as_str())
    );

    let response = call(
        agent
            .get(&location)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 400);

    let response = call(agent.get(&format!("{}/docker/../../etc/passwd", info.cdn)));
    assert_ne!(response.status(), 200);

    let log = rig.cdn_requests();
    let summary: Vec<_> = log
        .iter()
        .map(|r| (r.method.as_str(), r.authorization, r.status))
        .collect();
    assert_eq!(
        summary[..3],
        [
            ("GET", false, 200),
            ("HEAD", false, 200),
            ("GET", true, 400)
        ]
    );
    assert!(log[0].path.ends_with(&format!("{hex}/data")));

    // Tokens are per registry: the token registry's issuer is not trusted here.
    if let Some(other) = &rig.info().token {
        let foreign = anonymous_token(&other.realm, &other.service, &image.repo);
        let response = call(
            agent
                .get(&url)
                .set("Authorization", &format!("Bearer {foreign}")),
        );
        assert_eq!(response.status(), 401);
    }

    // Corrupting the stored bytes changes what the CDN serves.
    std::fs::write(rig.blob_data_path(Which::Cdn, layer), b"corrupt").unwrap();
    assert_eq!(body(call(agent.get(&location))), b"corrupt");
}

/// An agent that trusts the rig's CA alone.
fn https_agent(ca_pem: &str) -> ureq::Agent {
    let pem = std::fs::read(ca_pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile_certs(&pem) {
        roots.add(cert).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(10))
        .tls_config(std::sync::Arc::new(config))
        .build()
}

fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn https_registries_serve_the_plain_storage_with_the_rig_ca() {
    let rig = Rig::start(RigOptions::tls_only()).unwrap();
    let tls = rig.info().tls.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    let agent = https_agent(&tls.ca_pem);
    let layer = &image.layers[0];

    let url = format!("https://{}/v2/{}/blobs/{layer}", tls.registry, image.repo);
    let response = call(agent.get(&url));
    assert_eq!(response.status(), 200);
    assert_eq!(&sha256(&body(response)), layer);
    // Also by name: the certificate is for localhost too.
    let port = tls.registry.rsplit(':').next().unwrap();
    let by_name = format!("https://localhost:{port}/v2/");
    assert_eq!(call(agent.get(&by_name)).status(), 200);

    let url = format!(
        "https://{}/v2/{}/blobs/{layer}",
        tls.redirecting_registry, image.repo
    );
    let response = call(agent.get(&url));
    assert_eq!(response.status(), 307);
    let location = response.header("Location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/", tls.cdn)) && tls.cdn.starts_with("http://"),
        "{location}"
    );

    // A client that does not trust the rig's CA is refused.
    let e = agent_without_ca().get(&by_name).call().unwrap_err();
    assert!(
        e.to_string().to_ascii_lowercase().contains("certificate"),
        "{e}"
    );
    assert_eq!(rig.registry_requests(Which::Tls).len(), 2);
}

fn agent_without_ca() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build()
}

#[test]
fn dropping_the_rig_stops_the_registries_and_removes_its_files() {
    let rig = Rig::start(RigOptions::plain_only()).unwrap();
    let addr = rig.registry(Which::Plain).to_owned();
    let dir = rig.temp_dir().to_owned();
    assert!(TcpStream::connect(&addr).is_ok());
    drop(rig);
    assert!(TcpStream::connect(&addr).is_err(), "{addr} still answers");
    assert!(!dir.exists());
}
