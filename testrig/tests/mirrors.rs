//! The rig's mirrors against themselves: the pull-through cache is a real
//! one (it fills itself from its upstream, keeps what it fetched, and keeps
//! serving it with the upstream stopped), and the faulty mirrors fail the
//! way they say.

use std::io::Read;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use tank_testrig::{Rig, RigOptions, Which};

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

/// A pull token from `realm`, as `user` when given; the issuer's status
/// when it refuses.
fn token(realm: &str, repo: &str, user: Option<(&str, &str)>) -> Result<String, u16> {
    let mut request = agent()
        .get(realm)
        .query("service", "tank-rig")
        .query("scope", &format!("repository:{repo}:pull"));
    if let Some((name, password)) = user {
        let basic = STANDARD.encode(format!("{name}:{password}"));
        request = request.set("Authorization", &format!("Basic {basic}"));
    }
    let response = call(request);
    if response.status() != 200 {
        return Err(response.status());
    }
    let json: serde_json::Value = serde_json::from_reader(response.into_reader()).unwrap();
    Ok(json["token"].as_str().unwrap().to_owned())
}

/// GET `http://{registry}{path}` with a Bearer token.
fn get(registry: &str, path: &str, token: &str) -> ureq::Response {
    call(
        agent()
            .get(&format!("http://{registry}{path}"))
            .set("Accept", MANIFEST_ACCEPT)
            .set("Authorization", &format!("Bearer {token}")),
    )
}

/// The manifest by tag, then every blob it names, each checked against its
/// digest; the blobs' digests.
fn pull_by_hand(
    registry: &str,
    realm: &str,
    user: Option<(&str, &str)>,
    repo: &str,
) -> Vec<String> {
    let token = token(realm, repo, user).expect("a pull token");
    let manifest = get(registry, &format!("/v2/{repo}/manifests/v1"), &token);
    assert_eq!(manifest.status(), 200, "manifest of {repo} at {registry}");
    let manifest: serde_json::Value = serde_json::from_slice(&body(manifest)).unwrap();
    let mut digests = vec![manifest["config"]["digest"].as_str().unwrap().to_owned()];
    for layer in manifest["layers"].as_array().unwrap() {
        digests.push(layer["digest"].as_str().unwrap().to_owned());
    }
    for digest in &digests {
        let blob = get(registry, &format!("/v2/{repo}/blobs/{digest}"), &token);
        assert_eq!(blob.status(), 200, "{digest} at {registry}");
        assert_eq!(&sha256(&body(blob)), digest, "{digest} at {registry}");
    }
    digests
}

#[test]
fn the_pull_through_cache_fills_from_its_upstream_and_serves_it_stopped() {
    let mut rig = Rig::start(RigOptions::mirrors_only()).unwrap();
    let info = rig.info().clone();
    let cache = info.pull_through.clone().unwrap();
    assert_eq!(cache.upstream, rig.registry(Which::Token));
    assert_eq!(cache.registry, rig.registry(Which::PullThrough));
    let image = &info.images.oci_image;

    let digests = pull_by_hand(&cache.registry, &cache.realm, None, &image.repo);
    let mut expected = vec![image.config.clone()];
    expected.extend(image.layers.iter().cloned());
    assert_eq!(digests, expected);

    // It fetched from its upstream, as its own user there.
    let upstream = rig.registry_requests(Which::Token);
    assert!(
        upstream
            .iter()
            .any(|r| r.is_manifest() && r.reference() == Some(image.tag.as_str())),
        "{upstream:#?}"
    );
    assert!(upstream.iter().any(|r| r.is_blob()), "{upstream:#?}");
    assert!(
        rig.token_requests().iter().any(|t| t.which == Which::Token
            && t.subject.as_deref() == Some(cache.upstream_username.as_str())),
        "{:#?}",
        rig.token_requests()
    );

    let wanted: Vec<&str> = digests.iter().map(String::as_str).collect();
    rig.wait_until_cached(&image.repo, &wanted).unwrap();
    rig.stop_registry(Which::Token);
    let refused = std::net::TcpStream::connect(&cache.upstream).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    rig.clear_logs();

    // The tag and every blob again, from the cache alone.
    assert_eq!(
        pull_by_hand(&cache.registry, &cache.realm, None, &image.repo),
        expected
    );
    let served = rig.registry_requests(Which::PullThrough);
    assert!(
        served
            .iter()
            .filter(|r| r.is_blob())
            .all(|r| r.status == 200),
        "{served:#?}"
    );
    // What the cache never fetched, it cannot serve now.
    let other = &info.images.docker_image;
    let token = token(&cache.realm, &other.repo, None).unwrap();
    let missing = get(
        &cache.registry,
        &format!("/v2/{}/manifests/{}", other.repo, other.tag),
        &token,
    );
    assert!(missing.status() >= 400, "{}", missing.status());
}

#[test]
fn the_pull_through_cache_has_its_own_realm_and_its_own_alice() {
    let rig = Rig::start(RigOptions::mirrors_only()).unwrap();
    let info = rig.info();
    let cache = info.pull_through.as_ref().unwrap();
    let upstream = info.private.as_ref().unwrap();
    let upstream_realm = &info.token.as_ref().unwrap().realm;
    assert_ne!(&cache.realm, upstream_realm);
    assert_eq!(cache.username, upstream.username);
    assert_ne!(cache.password, upstream.password);
    let repo = &upstream.oci_image;

    // Each realm takes alice's own password for it, and refuses the other's.
    let mine = (cache.username.as_str(), cache.password.as_str());
    let theirs = (upstream.username.as_str(), upstream.password.as_str());
    assert_eq!(token(&cache.realm, repo, Some(theirs)), Err(401));
    assert_eq!(token(upstream_realm, repo, Some(mine)), Err(401));
    let log = rig.token_requests();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|t| t.status == 401), "{log:#?}");
    assert_eq!(log[0].which, Which::PullThrough);
    assert_eq!(log[1].which, Which::Token);

    // A token from one registry's realm is refused by the other.
    let upstream_token = token(upstream_realm, repo, Some(theirs)).unwrap();
    let path = format!("/v2/{repo}/manifests/v1");
    assert_eq!(get(&cache.registry, &path, &upstream_token).status(), 401);
    assert!(
        rig.registry_log(Which::PullThrough)
            .contains("invalid token"),
        "the cache's log says why it refused: {}",
        rig.registry_log(Which::PullThrough)
    );

    // alice pulls private/* through the cache with her password there; the
    // cache fetches it as its own user upstream.
    pull_by_hand(&cache.registry, &cache.realm, Some(mine), repo);
}

#[test]
fn the_faulty_mirrors_fail_as_they_say() {
    let rig = Rig::start(RigOptions::mirrors_only()).unwrap();
    let info = rig.info();
    let faulty = info.faulty_mirrors.as_ref().unwrap();
    let image = &info.images.oci_image;
    let layer = &image.layers[1];

    let refused = std::net::TcpStream::connect(&faulty.dead).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(faulty.dead, rig.dead_mirror());

    assert_eq!(faulty.empty, rig.registry(Which::EmptyMirror));
    for path in [
        format!("/v2/{}/manifests/{}", image.repo, image.tag),
        format!("/v2/{}/blobs/{layer}", image.repo),
    ] {
        assert_eq!(get(&faulty.empty, &path, "none").status(), 404, "{path}");
    }

    // The wrong-blob mirror serves the blob's right length and digest
    // header over wrong bytes; every other blob, and the token registry's
    // copy of this one, stay sound.
    let blob = format!("/v2/{}/blobs/{layer}", image.repo);
    let sound = body(get(&faulty.wrong_blob, &blob, "none"));
    assert_eq!(&sha256(&sound), layer);
    rig.serve_wrong_bytes(Which::WrongBlob, layer).unwrap();
    let response = get(&faulty.wrong_blob, &blob, "none");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(layer.as_str())
    );
    let wrong = body(response);
    assert_eq!(wrong.len(), sound.len());
    assert_ne!(&sha256(&wrong), layer);
    for other in image.layers.iter().filter(|l| *l != layer) {
        let path = format!("/v2/{}/blobs/{other}", image.repo);
        assert_eq!(
            &sha256(&body(get(&faulty.wrong_blob, &path, "none"))),
            other
        );
    }
    let t = token(&info.token.as_ref().unwrap().realm, &image.repo, None).unwrap();
    assert_eq!(
        &sha256(&body(get(rig.registry(Which::Token), &blob, &t))),
        layer
    );
}

#[test]
fn the_access_log_keeps_the_query_distribution_ignores() {
    let rig = Rig::start(RigOptions::mirrors_only()).unwrap();
    let info = rig.info();
    let image = &info.images.oci_image;
    let path = format!(
        "/v2/{}/manifests/{}?ns=registry.example",
        image.repo, image.tag
    );
    let response = get(rig.registry(Which::WrongBlob), &path, "none");
    assert_eq!(response.status(), 200);
    let log = rig.registry_requests(Which::WrongBlob);
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0].query(), Some("ns=registry.example"));
    assert_eq!(log[0].reference(), Some(image.tag.as_str()));
}

#[test]
fn mirrors_need_the_token_registry() {
    let err = Rig::start(RigOptions {
        mirrors: true,
        ..RigOptions::plain_only()
    })
    .unwrap_err();
    assert!(err.to_string().contains("mirrors needs token"), "{err}");
}
