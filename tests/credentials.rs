//! Private registries through the C ABI, against the rig's real ones: an
//! htpasswd registry (Basic), token registries with private repositories
//! (a password or an identity token earns alice her token), the OAuth2 POST
//! and its GET fallback, TLS trust per registry and client certificates,
//! and where secrets may go.

mod common;

use common::scripted::{respond, ScriptedServer};
use common::*;
use std::ptr;

#[test]
fn a_basic_challenge_gets_the_registrys_username_and_password() {
    let rig = start(RigOptions::basic_only());
    let basic = rig.info().basic_registry.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let mut said = Said::default();

    let e = manifest(&basic.registry, &img.repo, &img.tag, &Cache::new()).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 401),
        "{e:?}"
    );
    said.err(&e);

    let cache = Cache::new();
    set_basic(&cache, &basic.registry, &basic.username, &basic.password);
    rig.clear_logs();
    let got = manifest(&basic.registry, &img.repo, &img.tag, &cache).unwrap();
    assert_eq!(got.digest, img.digest);
    // The next call sends the credentials at once: no second 401.
    blob(&basic.registry, &img.repo, &img.config, &cache).unwrap();
    let log = rig.registry_requests(Which::Basic);
    assert_eq!(log.iter().filter(|r| r.status == 401).count(), 1, "{log:?}");

    // Wrong ones: the registry's 401, once, not a loop.
    let wrong = Cache::new();
    set_basic(&wrong, &basic.registry, &basic.username, "not-the-password");
    rig.clear_logs();
    let e = manifest(&basic.registry, &img.repo, &img.tag, &wrong).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 401),
        "{e:?}"
    );
    assert_eq!(rig.registry_requests(Which::Basic).len(), 2);
    said.err(&e);
    said.holds_none_of(&[&basic.password, "not-the-password"]);

    // A whole pull with the credentials.
    let dir = tempfile::tempdir().unwrap();
    let name = format!("{}/{}:{}", basic.registry, img.repo, img.tag);
    pull(&name, &dir.path().join("l"), None, 0, &cache, None)
        .0
        .unwrap();
}

#[test]
fn a_password_or_an_identity_token_earns_a_token_for_private_repositories() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let p = private(&rig);
    let reg = rig.registry(Which::Token).to_owned();
    let tag = &rig.info().images.oci_image.tag;
    let digest = &rig.info().images.oci_image.digest;
    let mut said = Said::default();

    let e = manifest(&reg, &p.oci_image, tag, &Cache::new()).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 401),
        "{e:?}"
    );
    said.err(&e);

    // A password: GET the realm with Basic and account=alice.
    let cache = Cache::new();
    set_basic(&cache, &reg, &p.username, &p.password);
    rig.clear_logs();
    assert_eq!(
        manifest(&reg, &p.oci_image, tag, &cache).unwrap().digest,
        *digest
    );
    let asked = rig.token_requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].method, "GET");
    assert_eq!(asked[0].username.as_deref(), Some(p.username.as_str()));
    assert_eq!(asked[0].account.as_deref(), Some(p.username.as_str()));
    assert_eq!(asked[0].subject.as_deref(), Some(p.username.as_str()));

    // An identity token: the OAuth2 POST.
    let cache = Cache::new();
    set_identity(&cache, &reg, &p.identity_token);
    rig.clear_logs();
    assert_eq!(
        manifest(&reg, &p.oci_image, tag, &cache).unwrap().digest,
        *digest
    );
    let asked = rig.token_requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].method, "POST");
    assert_eq!(asked[0].grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(asked[0].client_id.as_deref(), Some("tank"));
    assert_eq!(asked[0].subject.as_deref(), Some(p.username.as_str()));

    // A token server without OAuth2: the GET with `<token>` as the user.
    for refusal in [404, 405] {
        rig.set_token_post_status(Some(refusal));
        let cache = Cache::new();
        set_identity(&cache, &reg, &p.identity_token);
        rig.clear_logs();
        assert_eq!(
            manifest(&reg, &p.oci_image, tag, &cache).unwrap().digest,
            *digest
        );
        let asked = rig.token_requests();
        let methods: Vec<_> = asked.iter().map(|t| t.method.as_str()).collect();
        assert_eq!(methods, ["POST", "GET"], "{refusal}: {asked:?}");
        assert_eq!(asked[1].username.as_deref(), Some("<token>"));
        assert_eq!(asked[1].subject.as_deref(), Some(p.username.as_str()));
    }
    rig.set_token_post_status(None);

    // Refused credentials: the token server's 401, asked once.
    let cache = Cache::new();
    set_basic(&cache, &reg, &p.username, "wrong-password");
    rig.clear_logs();
    let e = manifest(&reg, &p.oci_image, tag, &cache).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str(), e.http_status),
        (TankStatus::TANK_ERR_AUTH, "token_request_failed", 401),
        "{e:?}"
    );
    assert_eq!(rig.token_requests().len(), 1);
    said.err(&e);
    let cache = Cache::new();
    set_identity(&cache, &reg, "wrong-refresh-token");
    let e = manifest(&reg, &p.oci_image, tag, &cache).unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_AUTH, "{e:?}");
    said.err(&e);
    said.holds_none_of(&[
        &p.password,
        &p.identity_token,
        "wrong-password",
        "wrong-refresh-token",
    ]);
}

#[test]
fn tokens_are_kept_per_identity_and_a_pull_with_credentials_earns_one() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let p = private(&rig);
    let reg = rig.registry(Which::Token).to_owned();
    let public = &rig.info().images.oci_image;

    let cache = Cache::new();
    rig.clear_logs();
    manifest(&reg, &public.repo, &public.tag, &cache).unwrap();
    set_basic(&cache, &reg, &p.username, &p.password);
    manifest(&reg, &public.repo, &public.tag, &cache).unwrap();
    manifest(&reg, &public.repo, &public.tag, &cache).unwrap();
    let asked = rig.token_requests();
    let users: Vec<_> = asked.iter().map(|t| t.username.clone()).collect();
    // The anonymous token is not alice's: she earns her own, once.
    assert_eq!(users, [None, Some(p.username.clone())], "{asked:?}");

    // A whole pull of a private multi-arch image: one token.
    let dir = tempfile::tempdir().unwrap();
    let idx = &rig.info().images.oci_index;
    let name = format!("{reg}/{}:{}", p.oci_index, idx.tag);
    let cache = Cache::new();
    set_basic(&cache, &reg, &p.username, &p.password);
    rig.clear_logs();
    let got = pull(
        &name,
        &dir.path().join("l"),
        Some("linux/arm64"),
        4,
        &cache,
        None,
    )
    .0
    .unwrap();
    assert_eq!(got.digest, idx.entry("linux/arm64/v8").unwrap().digest);
    assert_eq!(rig.token_requests().len(), 1, "{:?}", rig.token_requests());
}

#[test]
fn auth_files_as_docker_and_podman_write_them() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        basic: true,
        ..RigOptions::default()
    });
    let p = private(&rig);
    let basic = rig.info().basic_registry.clone().unwrap();
    let reg = rig.registry(Which::Token).to_owned();
    let img = &rig.info().images.oci_image;
    let dir = tempfile::tempdir().unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    let write = |name: &str, json: serde_json::Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        path
    };
    let config = write(
        "config.json",
        serde_json::json!({"auths": {
            // Namespaced: the longest match on whole segments wins.
            format!("{reg}/private"): {"auth": b64(&format!("{}:{}", p.username, p.password))},
            reg.clone(): {"auth": b64("nobody:nothing")},
            format!("https://{}/v1/", basic.registry): {"username": basic.username, "password": basic.password},
        }}),
    );
    let cache = Cache::new();
    load_auth(&cache, Some(&config)).unwrap();
    manifest(&reg, &p.oci_image, &img.tag, &cache).unwrap();
    manifest(&basic.registry, &img.repo, &img.tag, &cache).unwrap();

    // An identity token from a file; explicit settings beat files; a
    // second file goes behind the first.
    let tokens = write(
        "auth.json",
        serde_json::json!({"auths": {reg.clone(): {"identitytoken": p.identity_token}}}),
    );
    let cache = Cache::new();
    load_auth(&cache, Some(&tokens)).unwrap();
    rig.clear_logs();
    manifest(&reg, &p.oci_image, &img.tag, &cache).unwrap();
    assert_eq!(rig.token_requests()[0].method, "POST");
    let cache = Cache::new();
    let wrong = write(
        "wrong.json",
        serde_json::json!({"auths": {reg.clone(): {"auth": b64("alice:wrong")}}}),
    );
    load_auth(&cache, Some(&wrong)).unwrap();
    load_auth(&cache, Some(&tokens)).unwrap();
    assert!(
        manifest(&reg, &p.oci_image, &img.tag, &cache).is_err(),
        "the first file wins"
    );
    set_basic(&cache, &reg, &p.username, &p.password);
    manifest(&reg, &p.oci_image, &img.tag, &cache).unwrap();

    // Bad files name themselves, never the secret.
    let mut said = Said::default();
    for (name, body) in [
        (
            "bad-b64.json",
            r#"{"auths": {"h": {"auth": "c2VjcmV0LXdpdGhvdXQtY29sb24="}}}"#,
        ),
        ("not-json.json", "{not json"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let e = load_auth(&Cache::new(), Some(&path)).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_BAD_INPUT, "auth_config"),
            "{e:?}"
        );
        assert!(e.message.contains(name), "{e:?}");
        said.err(&e);
    }
    let e = load_auth(&Cache::new(), Some(&dir.path().join("missing.json"))).unwrap_err();
    assert_eq!(e.reason, "auth_config");
    said.holds_none_of(&["c2VjcmV0LXdpdGhvdXQtY29sb24=", "secret-without-colon"]);
}

#[test]
fn tls_trust_per_registry_and_client_certificates() {
    let rig = start(RigOptions::client_cert_only());
    let tls = rig.info().tls.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let https = |addr: &str| format!("https://{addr}");
    let (registry, redirecting) = (https(&tls.registry), https(&tls.redirecting_registry));

    // The rig's CA is in no system store.
    let e = manifest(&registry, &img.repo, &img.tag, &Cache::new()).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_TRANSPORT, "tls"),
        "{e:?}"
    );

    // Trusted for one registry: that one works, another does not.
    let cache = Cache::new();
    trust_ca(&cache, Some(&registry), &tls.ca_pem).unwrap();
    manifest(&registry, &img.repo, &img.tag, &cache).unwrap();
    let e = manifest(&redirecting, &img.repo, &img.tag, &cache).unwrap_err();
    assert_eq!(e.reason, "tls", "{e:?}");
    // For every registry.
    let cache = Cache::new();
    trust_ca(&cache, None, &tls.ca_pem).unwrap();
    manifest(&registry, &img.repo, &img.tag, &cache).unwrap();
    manifest(&redirecting, &img.repo, &img.tag, &cache).unwrap();

    // Mutual TLS: the certs directory holds the CA and the client pair.
    let mtls = https(tls.client_cert_registry.as_ref().unwrap());
    // Refused for want of a client certificate: said so, and not retried
    // as if the network had failed.
    let started = std::time::Instant::now();
    let e = manifest(&mtls, &img.repo, &img.tag, &cache).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_TRANSPORT, "tls"),
        "no client certificate: {e:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "retried: {e:?}"
    );
    let cache = Cache::new();
    load_certs(&cache, Some(&tls.certs_dir)).unwrap();
    assert_eq!(
        manifest(&mtls, &img.repo, &img.tag, &cache).unwrap().digest,
        img.digest
    );
    let dir = tempfile::tempdir().unwrap();
    pull(
        &format!("{mtls}/{}:{}", img.repo, img.tag),
        &dir.path().join("l"),
        None,
        0,
        &cache,
        None,
    )
    .0
    .unwrap();

    // A certificate without its key, a file that is not PEM.
    let bad = tempfile::tempdir().unwrap();
    let host = bad.path().join("127.0.0.1:5000");
    std::fs::create_dir(&host).unwrap();
    std::fs::copy(
        tls.client_cert_pem.as_ref().unwrap(),
        host.join("client.cert"),
    )
    .unwrap();
    let e = load_certs(&Cache::new(), Some(bad.path().to_str().unwrap())).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_BAD_INPUT, "certificate"),
        "{e:?}"
    );
    assert!(
        e.message.contains("client.key") || e.message.contains("key"),
        "{e:?}"
    );
    let junk = bad.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let e = trust_ca(&Cache::new(), None, junk.to_str().unwrap()).unwrap_err();
    assert_eq!(e.reason, "certificate", "{e:?}");
    assert!(e.message.contains("junk.pem"));
    let e = load_certs(&Cache::new(), Some("/no/such/certs.d")).unwrap_err();
    assert_eq!(e.reason, "certificate");
}

#[test]
fn secrets_never_go_to_a_cdn_or_a_plain_http_realm() {
    let rig = start(RigOptions {
        tls_token: true,
        cdn_challenges: true,
        ..RigOptions::default()
    });
    let p = private(&rig);
    let img = &rig.info().images.oci_image;
    let cdn_reg = rig.registry(Which::Cdn).to_owned();

    // The CDN answers the redirected blob read with a challenge of its own:
    // nothing of the registry's goes there, and the call fails.
    let cache = Cache::new();
    set_basic(&cache, &cdn_reg, &p.username, &p.password);
    rig.clear_logs();
    let layer = &img.layers[0];
    let e = blob(&cdn_reg, &p.oci_image, layer, &cache).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 401),
        "{e:?}"
    );
    let cdn = rig.cdn_requests();
    assert!(!cdn.is_empty(), "the blob read never reached the CDN");
    for r in &cdn {
        assert!(
            !r.authorization || r.cdn_token,
            "the registry's credentials or token reached the CDN: {r:?}"
        );
        assert!(
            r.username.is_none(),
            "Basic credentials reached the CDN: {r:?}"
        );
    }
    let asked = rig.token_requests();
    assert!(asked.iter().all(|t| t.which == Which::Cdn), "{asked:?}");
    assert_eq!(asked.len(), 1, "only the registry's own realm: {asked:?}");

    // An https registry whose realm is plain http: no request goes there.
    let tls_token = rig.info().tls_token.clone().unwrap();
    let registry = format!("https://{}", tls_token.registry);
    let cache = Cache::new();
    trust_ca(&cache, None, &tls_token.ca_pem).unwrap();
    set_basic(&cache, &registry, &p.username, &p.password);
    rig.clear_logs();
    let e = manifest(&registry, &p.oci_image, &img.tag, &cache).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_AUTH, "invalid_realm"),
        "{e:?}"
    );
    assert!(
        rig.token_requests()
            .iter()
            .all(|t| t.which != Which::TlsToken),
        "{:?}",
        rig.token_requests()
    );
    let mut said = Said::default();
    said.err(&e);
    said.holds_none_of(&[&p.password]);
}

#[test]
fn a_server_that_echoes_a_secret_gets_it_redacted() {
    // It puts back in its error body whatever it was sent.
    let o = ScriptedServer::start(|req, conn| {
        let sent = req.header("authorization").unwrap_or("").to_owned();
        match sent.is_empty() {
            true => respond(
                conn,
                401,
                &[("WWW-Authenticate", "Basic realm=\"echo\"")],
                b"who are you",
            ),
            false => {
                use base64::Engine;
                let decoded = sent
                    .strip_prefix("Basic ")
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let body = format!("denied: you sent {sent} which is {decoded}");
                respond(conn, 403, &[], body.as_bytes())
            }
        }
    });
    let cache = Cache::new();
    set_basic(&cache, o.addr(), "alice", "echoed-password-123");
    let (r, p, d) = (c(o.addr()), c("x/y"), c("latest"));
    let (body, message) = unsafe {
        let mut out: TankManifest = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_manifest(
            r.as_ptr(),
            p.as_ptr(),
            d.as_ptr(),
            cache.0,
            &mut out,
            &mut err,
        );
        assert_eq!(status, TankStatus::TANK_ERR_HTTP);
        let text = |p: *const std::ffi::c_char| {
            (!p.is_null()).then(|| std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        let body = text(tank_error_body(err)).expect("the body excerpt is kept");
        let message = text(tank_error_message(err)).unwrap();
        tank_error_free(err);
        (body, message)
    };
    assert!(body.contains("denied: you sent"), "{body}");
    assert!(body.contains("<redacted>"), "{body}");
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("alice:echoed-password-123")
    };
    for leak in ["echoed-password-123", basic.as_str()] {
        assert!(!body.contains(leak), "{body}");
        assert!(!message.contains(leak), "{message}");
    }
}

#[test]
fn settings_calls_check_their_arguments() {
    let cache = Cache::new();
    let r = c("ghcr.io");
    let path_like = c("host/with/path?x");
    let n = ptr::null();
    type Call<'a> = Box<dyn Fn(*mut *mut TankError) -> TankStatus + 'a>;
    let cases: Vec<(&str, Call)> = vec![
        (
            "cache",
            Box::new(|e| unsafe {
                tank_cache_set_basic_auth(ptr::null_mut(), r.as_ptr(), r.as_ptr(), r.as_ptr(), e)
            }),
        ),
        (
            "registry",
            Box::new(|e| unsafe {
                tank_cache_set_basic_auth(cache.0, n, r.as_ptr(), r.as_ptr(), e)
            }),
        ),
        (
            "username",
            Box::new(|e| unsafe {
                tank_cache_set_basic_auth(cache.0, r.as_ptr(), n, r.as_ptr(), e)
            }),
        ),
        (
            "password",
            Box::new(|e| unsafe {
                tank_cache_set_basic_auth(cache.0, r.as_ptr(), r.as_ptr(), n, e)
            }),
        ),
        (
            "token",
            Box::new(|e| unsafe { tank_cache_set_identity_token(cache.0, r.as_ptr(), n, e) }),
        ),
        (
            "pem_path",
            Box::new(|e| unsafe { tank_cache_trust_ca_file(cache.0, r.as_ptr(), n, e) }),
        ),
        (
            "cache",
            Box::new(|e| unsafe { tank_cache_load_auth_config(ptr::null_mut(), n, e) }),
        ),
        (
            "cache",
            Box::new(|e| unsafe { tank_cache_load_certs_dir(ptr::null_mut(), n, e) }),
        ),
        (
            "registry",
            Box::new(|e| unsafe {
                tank_cache_set_basic_auth(cache.0, path_like.as_ptr(), r.as_ptr(), r.as_ptr(), e)
            }),
        ),
    ];
    for (what, call) in cases {
        let mut err = ptr::null_mut();
        let e = unsafe { take_error(call(&mut err), err) };
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{what}: {e:?}");
        assert!(e.message.contains(what), "{what}: {e:?}");
        // A NULL err is allowed too.
        assert_eq!(
            call(ptr::null_mut()),
            TankStatus::TANK_ERR_BAD_INPUT,
            "{what}"
        );
    }
    let bad = [0xffu8, 0xfe, 0];
    let status = unsafe {
        tank_cache_set_basic_auth(
            cache.0,
            r.as_ptr(),
            bad.as_ptr().cast(),
            r.as_ptr(),
            ptr::null_mut(),
        )
    };
    assert_eq!(status, TankStatus::TANK_ERR_BAD_INPUT);
}
