//! The rig's private parts against real HTTP: private repositories behind
//! the token issuers (GET with Basic, OAuth2 POST, the POST switch), the
//! htpasswd registry, the mutual-TLS registry, the https registry with an
//! http realm, and the CDN's own challenges.

use std::io::Read;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tank_testrig::{Rig, RigOptions, Which};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
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

fn post_form(url: &str, fields: &[(&str, &str)]) -> ureq::Response {
    match agent().post(url).send_form(fields) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    }
}

fn json(response: ureq::Response) -> serde_json::Value {
    serde_json::from_reader(response.into_reader()).unwrap()
}

fn body(response: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    response.into_reader().read_to_end(&mut out).unwrap();
    out
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// GET the realm; `auth` is an Authorization value.
fn get_token(
    realm: &str,
    repo: &str,
    auth: Option<&str>,
    extra: &[(&str, &str)],
) -> ureq::Response {
    let mut request = agent()
        .get(realm)
        .query("service", "tank-rig")
        .query("scope", &pull_scope(repo));
    for (k, v) in extra {
        request = request.query(k, v);
    }
    if let Some(a) = auth {
        request = request.set("Authorization", a);
    }
    call(request)
}

fn token_of(response: ureq::Response, field: &str) -> String {
    assert_eq!(response.status(), 200);
    json(response)[field].as_str().unwrap().to_owned()
}

fn manifest(registry: &str, repo: &str, tag: &str, bearer: Option<&str>) -> ureq::Response {
    let mut request = agent()
        .get(&format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .set("Accept", MANIFEST_ACCEPT);
    if let Some(t) = bearer {
        request = request.set("Authorization", &format!("Bearer {t}"));
    }
    call(request)
}

#[test]
fn private_repositories_need_alice_and_a_get_with_basic_gets_her_a_token() {
    let rig = Rig::start(RigOptions::token_only()).unwrap();
    let info = rig.info().token.clone().unwrap();
    let private = rig.info().private.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    assert_eq!(private.username, "alice");
    assert_eq!(private.oci_image, "private/oci-image");
    assert_eq!(private.oci_index, "private/multiarch");
    let (reg, realm) = (info.registry.as_str(), info.realm.as_str());

    // Anonymous: no token at all, then an anonymous token: both 401.
    let response = manifest(reg, &private.oci_image, &image.tag, None);
    assert_eq!(response.status(), 401);
    let challenge = response.header("WWW-Authenticate").unwrap();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(challenge.contains("repository:private/oci-image:pull"));
    let anonymous = token_of(get_token(realm, &private.oci_image, None, &[]), "token");
    let response = manifest(reg, &private.oci_image, &image.tag, Some(&anonymous));
    assert_eq!(response.status(), 401);
    assert!(response
        .header("WWW-Authenticate")
        .unwrap()
        .contains("insufficient_scope"));
    // Public repositories stay anonymous.
    let public = token_of(get_token(realm, &image.repo, None, &[]), "token");
    assert_eq!(
        manifest(reg, &image.repo, &image.tag, Some(&public)).status(),
        200
    );

    // alice's password by Basic auth on the GET.
    let alice = basic(&private.username, &private.password);
    let response = get_token(
        realm,
        &private.oci_image,
        Some(&alice),
        &[("account", "alice"), ("client_id", "tank")],
    );
    let token = token_of(response, "token");
    let response = manifest(reg, &private.oci_image, &image.tag, Some(&token));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("Docker-Content-Digest"),
        Some(image.digest.as_str())
    );
    assert_eq!(sha256(&body(response)), image.digest);

    // The same content, blobs included, under the private names.
    let index = &rig.info().images.oci_index;
    let token = token_of(
        get_token(realm, &private.oci_index, Some(&alice), &[]),
        "access_token",
    );
    let response = manifest(reg, &private.oci_index, &index.tag, Some(&token));
    assert_eq!(response.status(), 200);
    assert_eq!(sha256(&body(response)), index.digest);
    let layer = &index.manifests[0].layers[0];
    let url = format!("http://{reg}/v2/{}/blobs/{layer}", private.oci_index);
    let response = call(
        agent()
            .get(&url)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 200);
    assert_eq!(&sha256(&body(response)), layer);

    // Her identity token as the password of `<token>`, and a refresh token
    // for the asking (offline_token=true).
    let by_identity = basic(&private.identity_token_username, &private.identity_token);
    let response = get_token(
        realm,
        &private.oci_image,
        Some(&by_identity),
        &[("offline_token", "true")],
    );
    assert_eq!(response.status(), 200);
    let answer = json(response);
    assert_eq!(answer["refresh_token"], private.identity_token.as_str());
    let token = answer["token"].as_str().unwrap();
    assert_eq!(
        manifest(reg, &private.oci_image, &image.tag, Some(token)).status(),
        200
    );

    // Wrong credentials: 401 from the issuer.
    let wrong = basic("alice", "wrong");
    assert_eq!(
        get_token(realm, &private.oci_image, Some(&wrong), &[]).status(),
        401
    );
    let wrong = basic("<token>", "wrong");
    assert_eq!(
        get_token(realm, &private.oci_image, Some(&wrong), &[]).status(),
        401
    );

    let log = rig.token_requests();
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.username.as_deref(),
                r.subject.as_deref(),
                r.status,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("GET", None, None, 200),
            ("GET", None, None, 200),
            ("GET", Some("alice"), Some("alice"), 200),
            ("GET", Some("alice"), Some("alice"), 200),
            ("GET", Some("<token>"), Some("alice"), 200),
            ("GET", Some("alice"), None, 401),
            ("GET", Some("<token>"), None, 401),
        ]
    );
    assert_eq!(log[2].account.as_deref(), Some("alice"));
    assert_eq!(log[2].client_id.as_deref(), Some("tank"));
    assert!(log[2].authorization && !log[0].authorization);
    assert!(log[4].offline && !log[2].offline);
    assert!(log.iter().all(|r| r.grant_type.is_none()));
    // Never a password in the log.
    let dump = format!("{log:?}");
    assert!(!dump.contains(&private.password) && !dump.contains(&private.identity_token));
}

#[test]
fn the_issuers_answer_the_oauth2_post_form() {
    let rig = Rig::start(RigOptions::token_only()).unwrap();
    let info = rig.info().token.clone().unwrap();
    let private = rig.info().private.clone().unwrap();
    let image = rig.info().images.docker_image.clone();
    let (reg, realm) = (info.registry.as_str(), info.realm.as_str());
    let scope = pull_scope(&private.docker_image);

    let refresh = |token: &str| {
        post_form(
            realm,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("service", "tank-rig"),
                ("scope", &scope),
                ("client_id", "tank"),
            ],
        )
    };
    let response = refresh(&private.identity_token);
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let answer = json(response);
    assert_eq!(answer["scope"], scope.as_str());
    assert_eq!(answer["expires_in"], 300);
    assert!(answer.get("token").is_none(), "{answer}");
    let token = answer["access_token"].as_str().unwrap();
    let response = manifest(reg, &private.docker_image, &image.tag, Some(token));
    assert_eq!(response.status(), 200);
    assert_eq!(sha256(&body(response)), image.digest);

    // A wrong refresh token: 401.
    assert_eq!(refresh("not-the-token").status(), 401);

    // grant_type=password, with a refresh token for the asking.
    let response = post_form(
        realm,
        &[
            ("grant_type", "password"),
            ("username", &private.username),
            ("password", &private.password),
            ("service", "tank-rig"),
            ("scope", &scope),
            ("client_id", "tank"),
            ("access_type", "offline"),
        ],
    );
    assert_eq!(response.status(), 200);
    let answer = json(response);
    assert_eq!(answer["refresh_token"], private.identity_token.as_str());
    let token = answer["access_token"].as_str().unwrap();
    assert_eq!(
        manifest(reg, &private.docker_image, &image.tag, Some(token)).status(),
        200
    );
    let wrong = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "wrong"),
        ("service", "tank-rig"),
        ("client_id", "tank"),
    ];
    assert_eq!(post_form(realm, &wrong).status(), 401);

    // Malformed forms: 400.
    let no_client = [
        ("grant_type", "refresh_token"),
        ("refresh_token", private.identity_token.as_str()),
        ("service", "tank-rig"),
    ];
    assert_eq!(post_form(realm, &no_client).status(), 400);
    let response = match agent()
        .post(realm)
        .set("Content-Type", "application/json")
        .send_string("{}")
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(response.status(), 400);

    let log = rig.token_requests();
    let summary: Vec<_> = log
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.grant_type.as_deref(),
                r.client_id.as_deref(),
                r.username.as_deref(),
                r.subject.as_deref(),
                r.status,
            )
        })
        .collect();
    let refresh_grant = Some("refresh_token");
    let password_grant = Some("password");
    let tank = Some("tank");
    assert_eq!(
        summary,
        [
            ("POST", refresh_grant, tank, None, Some("alice"), 200),
            ("POST", refresh_grant, tank, None, None, 401),
            (
                "POST",
                password_grant,
                tank,
                Some("alice"),
                Some("alice"),
                200
            ),
            ("POST", password_grant, tank, Some("alice"), None, 401),
            ("POST", refresh_grant, None, None, None, 400),
            ("POST", None, None, None, None, 400),
        ]
    );
    assert_eq!(log[0].scopes, vec![scope.clone()]);
    assert_eq!(log[0].service.as_deref(), Some("tank-rig"));
    assert!(log[2].offline);
    assert!(!log[0].authorization);
    let dump = format!("{log:?}");
    assert!(!dump.contains(&private.password) && !dump.contains(&private.identity_token));
}

#[test]
fn a_switch_makes_the_issuers_refuse_posts_and_the_get_fallback_still_works() {
    let rig = Rig::start(RigOptions {
        token: true,
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let private = rig.info().private.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    let form = |token: &str| {
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token.to_owned()),
            ("service", "tank-rig".to_owned()),
            ("scope", pull_scope(&private.oci_image)),
            ("client_id", "tank".to_owned()),
        ]
    };
    let post = |realm: &str| {
        let fields = form(&private.identity_token);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_form(realm, &fields)
    };
    let realms = [
        rig.info().token.as_ref().unwrap().realm.clone(),
        rig.info().cdn.as_ref().unwrap().realm.clone(),
    ];

    rig.set_token_post_status(Some(404));
    for realm in &realms {
        assert_eq!(post(realm).status(), 404);
    }
    rig.set_token_post_status(Some(405));
    let response = post(&realms[0]);
    assert_eq!(response.status(), 405);
    assert_eq!(response.header("Allow"), Some("GET"));

    // The fallback: GET with Basic `<token>`:<identity token>, alice's rights.
    let by_identity = basic("<token>", &private.identity_token);
    let cdn = rig.info().cdn.clone().unwrap();
    let token = token_of(
        get_token(&cdn.realm, &private.oci_image, Some(&by_identity), &[]),
        "token",
    );
    let response = manifest(&cdn.registry, &private.oci_image, &image.tag, Some(&token));
    assert_eq!(response.status(), 200);
    // Blob reads of a private repository are redirected to the CDN too.
    let layer = &image.layers[0];
    let url = format!(
        "http://{}/v2/{}/blobs/{layer}",
        cdn.registry, private.oci_image
    );
    let response = call(
        agent()
            .get(&url)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 307);
    let location = response.header("Location").unwrap().to_owned();
    assert_eq!(&sha256(&body(call(agent().get(&location)))), layer);

    rig.set_token_post_status(None);
    assert_eq!(post(&realms[1]).status(), 200);

    let log: Vec<_> = rig
        .token_requests()
        .iter()
        .map(|r| (r.which, r.method.clone(), r.status, r.subject.clone()))
        .collect();
    let alice = Some("alice".to_owned());
    assert_eq!(
        log,
        [
            (Which::Token, "POST".to_owned(), 404, None),
            (Which::Cdn, "POST".to_owned(), 404, None),
            (Which::Token, "POST".to_owned(), 405, None),
            (Which::Cdn, "GET".to_owned(), 200, alice.clone()),
            (Which::Cdn, "POST".to_owned(), 200, alice),
        ]
    );
}

#[test]
fn the_htpasswd_registry_challenges_with_basic_and_serves_the_fixtures() {
    let rig = Rig::start(RigOptions::basic_only()).unwrap();
    assert_eq!(rig.started(), [Which::Basic]);
    let info = rig.info().basic_registry.clone().unwrap();
    assert!(rig.info().plain.is_none() && rig.info().private.is_none());
    let htpasswd = std::fs::read_to_string(&info.htpasswd).unwrap();
    assert!(
        htpasswd.starts_with(&format!("{}:$2", info.username)),
        "{htpasswd}"
    );
    let images = rig.info().images.clone();
    let reg = info.registry.as_str();

    let response = call(agent().get(&format!("http://{reg}/v2/")));
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some(format!("Basic realm=\"{}\"", info.realm).as_str())
    );
    let right = basic(&info.username, &info.password);
    let wrong = basic(&info.username, "wrong");
    let response = call(
        agent()
            .get(&format!("http://{reg}/v2/"))
            .set("Authorization", &wrong),
    );
    assert_eq!(response.status(), 401);

    for (repo, tag, digest) in [
        (
            &images.oci_image.repo,
            &images.oci_image.tag,
            &images.oci_image.digest,
        ),
        (
            &images.oci_index.repo,
            &images.oci_index.tag,
            &images.oci_index.digest,
        ),
        (
            &images.docker_image.repo,
            &images.docker_image.tag,
            &images.docker_image.digest,
        ),
        (
            &images.docker_list.repo,
            &images.docker_list.tag,
            &images.docker_list.digest,
        ),
    ] {
        let url = format!("http://{reg}/v2/{repo}/manifests/{tag}");
        let response = call(agent().get(&url).set("Accept", MANIFEST_ACCEPT));
        assert_eq!(response.status(), 401, "{url}");
        let response = call(
            agent()
                .get(&url)
                .set("Accept", MANIFEST_ACCEPT)
                .set("Authorization", &right),
        );
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(
            response.header("Docker-Content-Digest"),
            Some(digest.as_str())
        );
        assert_eq!(&sha256(&body(response)), digest);
    }
    let layer = &images.oci_image.layers[1];
    let url = format!("http://{reg}/v2/{}/blobs/{layer}", images.oci_image.repo);
    let response = call(agent().get(&url).set("Authorization", &right));
    assert_eq!(response.status(), 200);
    assert_eq!(&sha256(&body(response)), layer);
    assert_eq!(
        std::fs::read(rig.blob_data_path(Which::Basic, layer))
            .map(|b| sha256(&b))
            .unwrap(),
        *layer
    );
}

fn pem_certs(path: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// An agent that trusts `ca_pem` and, given a (cert, key) pair of PEM
/// files, presents that client certificate.
fn https_agent(ca_pem: &str, client: Option<(&str, &str)>) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    for cert in pem_certs(ca_pem) {
        roots.add(cert).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(pem_certs(cert), PrivateKeyDer::from_pem_file(key).unwrap())
            .unwrap(),
    };
    ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(Duration::from_secs(10))
        .tls_config(Arc::new(config))
        .build()
}

#[test]
fn the_client_cert_registry_refuses_a_client_without_a_certificate() {
    let rig = Rig::start(RigOptions::client_cert_only()).unwrap();
    let tls = rig.info().tls.clone().unwrap();
    let registry = tls.client_cert_registry.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    let layer = &image.layers[0];
    let url = format!("https://{registry}/v2/{}/blobs/{layer}", image.repo);

    // No certificate: the handshake fails.
    let e = https_agent(&tls.ca_pem, None).get(&url).call().unwrap_err();
    assert!(matches!(e, ureq::Error::Transport(_)), "{e}");

    // The rig's certificate, from the info's files.
    let cert = tls.client_cert_pem.clone().unwrap();
    let key = tls.client_key_pem.clone().unwrap();
    let agent = https_agent(&tls.ca_pem, Some((&cert, &key)));
    let response = call(agent.get(&url));
    assert_eq!(response.status(), 200);
    assert_eq!(&sha256(&body(response)), layer);

    // The same from the certs directory, by IP and by name.
    let port = registry.rsplit(':').next().unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let dir = std::path::Path::new(&tls.certs_dir).join(format!("{host}:{port}"));
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let agent = https_agent(
            &file("ca.crt"),
            Some((&file("client.cert"), &file("client.key"))),
        );
        let url = format!("https://{host}:{port}/v2/");
        assert_eq!(call(agent.get(&url)).status(), 200, "{url}");
    }
    // The other https registries' entries hold the CA alone, and they need
    // no client certificate.
    for other in [&tls.registry, &tls.redirecting_registry] {
        let dir = std::path::Path::new(&tls.certs_dir).join(other);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.crt"], "{}", dir.display());
        let agent = https_agent(&dir.join("ca.crt").to_string_lossy(), None);
        assert_eq!(
            call(agent.get(&format!("https://{other}/v2/"))).status(),
            200
        );
    }
    // A certificate from elsewhere is refused: the server's own, signed by
    // the server CA rather than the client CA, is not even a client cert;
    // use a fresh self-signed one.
    let stranger = rcgen::generate_simple_self_signed(vec!["stranger".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (scert, skey) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&scert, stranger.cert.pem()).unwrap();
    std::fs::write(&skey, stranger.signing_key.serialize_pem()).unwrap();
    let agent = https_agent(
        &tls.ca_pem,
        Some((&scert.to_string_lossy(), &skey.to_string_lossy())),
    );
    assert!(agent.get(&url).call().is_err());

    // curl (OpenSSL) agrees; the handshake errors are in the registry's log.
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
                &tls.ca_pem,
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("curl is installed (scripts/install-deps.sh)")
    };
    let without = curl(&[]);
    assert!(!without.status.success());
    let with = curl(&["--cert", &cert, "--key", &key]);
    assert_eq!(String::from_utf8_lossy(&with.stdout), "200");
    assert!(rig
        .registry_log(Which::TlsClientCert)
        .contains("client didn't provide a certificate"));
}

#[test]
fn the_tls_token_registry_names_an_http_realm() {
    let rig = Rig::start(RigOptions {
        token: true,
        tls_token: true,
        ..RigOptions::tls_only()
    })
    .unwrap();
    let info = rig.info().tls_token.clone().unwrap();
    let private = rig.info().private.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    assert!(info.realm.starts_with("http://"), "{}", info.realm);
    assert_ne!(info.realm, rig.info().token.as_ref().unwrap().realm);
    let agent = https_agent(&info.ca_pem, None);
    let url = format!(
        "https://{}/v2/{}/manifests/{}",
        info.registry, private.oci_image, image.tag
    );

    let response = call(agent.get(&url).set("Accept", OCI_MANIFEST));
    assert_eq!(response.status(), 401);
    let challenge = response.header("WWW-Authenticate").unwrap();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}\"", info.realm)),
        "{challenge}"
    );
    let alice = basic(&private.username, &private.password);
    let token = token_of(
        get_token(&info.realm, &private.oci_image, Some(&alice), &[]),
        "token",
    );
    let response = call(
        agent
            .get(&url)
            .set("Accept", OCI_MANIFEST)
            .set("Authorization", &format!("Bearer {token}")),
    );
    assert_eq!(response.status(), 200);
    assert_eq!(sha256(&body(response)), image.digest);
    let log = rig.token_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].which, Which::TlsToken);
}

#[test]
fn the_cdn_can_challenge_with_its_own_realm() {
    let rig = Rig::start(RigOptions {
        cdn_challenges: true,
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let cdn = rig.info().cdn.clone().unwrap();
    let image = rig.info().images.oci_image.clone();
    let layer = &image.layers[2];
    let registry_token = token_of(get_token(&cdn.realm, &image.repo, None, &[]), "token");
    let url = format!("http://{}/v2/{}/blobs/{layer}", cdn.registry, image.repo);
    let response = call(
        agent()
            .get(&url)
            .set("Authorization", &format!("Bearer {registry_token}")),
    );
    assert_eq!(response.status(), 307);
    let location = response.header("Location").unwrap().to_owned();

    // Without a token, and with the registry's: 401 and the CDN's challenge.
    let challenge = format!("Bearer realm=\"{}\",service=\"tank-cdn\"", cdn.cdn_realm);
    for auth in [None, Some(format!("Bearer {registry_token}"))] {
        let mut request = agent().get(&location);
        if let Some(a) = &auth {
            request = request.set("Authorization", a);
        }
        let response = call(request);
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.header("WWW-Authenticate"),
            Some(challenge.as_str())
        );
    }
    // Its realm gives anyone its token, which then works.
    let cdn_token = token_of(call(agent().get(&cdn.cdn_realm)), "token");
    let response = call(
        agent()
            .get(&location)
            .set("Authorization", &format!("Bearer {cdn_token}")),
    );
    assert_eq!(response.status(), 200);
    assert_eq!(&sha256(&body(response)), layer);
    // A client that sends the registry's credentials to the CDN's realm is seen.
    let leak = basic("tank", "secret");
    assert_eq!(
        call(agent().get(&cdn.cdn_realm).set("Authorization", &leak)).status(),
        200
    );

    let log: Vec<_> = rig
        .cdn_requests()
        .iter()
        .map(|r| (r.authorization, r.username.clone(), r.cdn_token, r.status))
        .collect();
    let tank = Some("tank".to_owned());
    assert_eq!(
        log,
        [
            (false, None, false, 401),
            (true, None, false, 401),
            (false, None, false, 200),
            (true, None, true, 200),
            (true, tank, false, 200),
        ]
    );
    assert!(rig.cdn_requests()[2].path.starts_with("/token"));

    // Off again: the signed-URL behaviour.
    rig.set_cdn_challenges(false);
    assert_eq!(call(agent().get(&location)).status(), 200);
    let response = call(
        agent()
            .get(&location)
            .set("Authorization", &format!("Bearer {cdn_token}")),
    );
    assert_eq!(response.status(), 400);
}
