//! Per-host TLS from containerd's `hosts.toml` in a certs directory
//! (`tank_cache_load_certs_dir`), against the rig's https registries,
//! whose CA this process does not trust: `skip_verify` for one host only,
//! `ca`, and `client` for the mutual-TLS registry; and registries.conf's
//! `insecure`, for its location only.

mod common;

use std::path::Path;

use common::*;

fn https(addr: &str) -> String {
    format!("https://{addr}")
}

fn port(addr: &str) -> &str {
    addr.rsplit(':').next().unwrap()
}

fn hosts_toml(certs: &Path, dir_name: &str, text: &str) {
    let dir = certs.join(dir_name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hosts.toml"), text).unwrap();
}

fn loaded(certs: &Path) -> Cache {
    let cache = Cache::new();
    load_certs(&cache, Some(certs.to_str().unwrap())).unwrap();
    cache
}

fn assert_untrusted(e: CallError) {
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_TRANSPORT, "tls"),
        "{e:?}"
    );
}

#[test]
fn hosts_toml_sets_each_hosts_tls() {
    let rig = start(RigOptions::client_cert_only());
    let tls = rig.info().tls.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let p = port(&tls.registry);
    let by_ip = https(&tls.registry);
    let by_name = https(&format!("localhost:{p}"));

    // The rig's CA is in no store this process reads.
    assert_untrusted(manifest(&by_ip, &img.repo, &img.tag, &Cache::new()).unwrap_err());

    // skip_verify in the registry's own directory (containerd's
    // `host_port_` name): that host works without the CA; the same server
    // under another name is still verified, and refused.
    let certs = tempfile::tempdir().unwrap();
    hosts_toml(
        certs.path(),
        &format!("127.0.0.1_{p}_"),
        "skip_verify = true\n",
    );
    let cache = loaded(certs.path());
    let got = manifest(&by_ip, &img.repo, &img.tag, &cache).unwrap();
    assert_eq!(got.digest, img.digest);
    assert_untrusted(manifest(&by_name, &img.repo, &img.tag, &cache).unwrap_err());
    let layout = tempfile::tempdir().unwrap();
    pull(
        &format!("{by_ip}/{}:{}", img.repo, img.tag),
        &layout.path().join("l"),
        None,
        0,
        &cache,
        None,
    )
    .0
    .unwrap();

    // skip_verify on a `[host]` of another registry's file: for that
    // mirror's host, from load time on.
    let certs = tempfile::tempdir().unwrap();
    hosts_toml(
        certs.path(),
        "docker.io",
        &format!("[host.\"https://localhost:{p}\"]\n  skip_verify = true\n"),
    );
    let cache = loaded(certs.path());
    manifest(&by_name, &img.repo, &img.tag, &cache).unwrap();
    assert_untrusted(manifest(&by_ip, &img.repo, &img.tag, &cache).unwrap_err());

    // `ca` (`host:port` directory name): verified against the rig's CA.
    let certs = tempfile::tempdir().unwrap();
    hosts_toml(
        certs.path(),
        &format!("localhost:{p}"),
        &format!("ca = {:?}\n", tls.ca_pem),
    );
    let cache = loaded(certs.path());
    manifest(&by_name, &img.repo, &img.tag, &cache).unwrap();
    assert_untrusted(manifest(&by_ip, &img.repo, &img.tag, &cache).unwrap_err());
}

#[test]
fn hosts_toml_client_certificate_for_mutual_tls() {
    let rig = start(RigOptions::client_cert_only());
    let tls = rig.info().tls.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let mtls = tls.client_cert_registry.clone().unwrap();
    let cert = tls.client_cert_pem.clone().unwrap();
    let key = tls.client_key_pem.clone().unwrap();

    // The CA alone: the server wants a client certificate.
    let certs = tempfile::tempdir().unwrap();
    hosts_toml(certs.path(), &mtls, &format!("ca = {:?}\n", tls.ca_pem));
    let cache = loaded(certs.path());
    assert_untrusted(manifest(&https(&mtls), &img.repo, &img.tag, &cache).unwrap_err());

    // `client` as a [cert, key] pair.
    let certs = tempfile::tempdir().unwrap();
    hosts_toml(
        certs.path(),
        &mtls,
        &format!("ca = {:?}\nclient = [[{cert:?}, {key:?}]]\n", tls.ca_pem),
    );
    let cache = loaded(certs.path());
    let got = manifest(&https(&mtls), &img.repo, &img.tag, &cache).unwrap();
    assert_eq!(got.digest, img.digest);

    // `client` as one file holding both, with skip_verify instead of the CA.
    let certs = tempfile::tempdir().unwrap();
    let both = certs.path().join("both.pem");
    let mut pem = std::fs::read_to_string(&cert).unwrap();
    pem.push_str(&std::fs::read_to_string(&key).unwrap());
    std::fs::write(&both, pem).unwrap();
    hosts_toml(
        certs.path(),
        &format!("127.0.0.1_{}_", port(&mtls)),
        &format!("skip_verify = true\nclient = {both:?}\n"),
    );
    let cache = loaded(certs.path());
    let got = manifest(&https(&mtls), &img.repo, &img.tag, &cache).unwrap();
    assert_eq!(got.digest, img.digest);
}

#[test]
fn a_bad_hosts_toml_is_bad_input_naming_the_file() {
    let certs = tempfile::tempdir().unwrap();
    hosts_toml(
        certs.path(),
        "r.example",
        "[host.\"https://m.example\"]\n  capabilities = [\"pull\", \"fetch\"]\n",
    );
    let e = load_certs(&Cache::new(), Some(certs.path().to_str().unwrap())).unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
    assert!(
        e.message.contains("r.example/hosts.toml") && e.message.contains("fetch"),
        "{e:?}"
    );
}

/// A certs directory's hosts.toml gives the registry's sources: its
/// `server` is asked instead of the registry, with that file's TLS.
#[test]
fn a_hosts_toml_server_is_asked_with_its_tls_instead_of_the_registry() {
    let rig = start(RigOptions::tls_only());
    let tls = rig.info().tls.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let plain = rig.registry(Which::Plain);
    let authority = plain.trim_start_matches("http://");
    let name = format!("{authority}/{}:{}", img.repo, img.tag);
    let dir_name = format!("127.0.0.1_{}_", port(authority));

    // `server` alone: the rig's https registry is not trusted.
    let certs = tempfile::tempdir().unwrap();
    let server = format!("server = \"https://{}\"\n", tls.registry);
    hosts_toml(certs.path(), &dir_name, &server);
    let layout = tempfile::tempdir().unwrap();
    let cache = loaded(certs.path());
    let e = pull(&name, &layout.path().join("l"), None, 0, &cache, None)
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_TRANSPORT, "{e:?}");
    assert!(e.message.contains(&tls.registry), "{e:?}");

    hosts_toml(
        certs.path(),
        &dir_name,
        &format!("{server}skip_verify = true\n"),
    );
    let cache = loaded(certs.path());
    let got = pull(&name, &layout.path().join("l"), None, 0, &cache, None)
        .0
        .unwrap();
    assert_eq!(got.digest, img.digest);
    assert!(
        rig.registry_requests(Which::Plain).is_empty(),
        "the registry itself was asked"
    );
    assert!(
        rig.registry_requests(Which::Tls)
            .iter()
            .any(|r| r.uri.contains("/blobs/") && r.status == 200),
        "the server sent no blob"
    );
}

/// registries.conf's `insecure`: unverified TLS for that location's host
/// only, and the same host under another name is still verified.
#[test]
fn registries_conf_insecure_skips_verification_for_its_location_only() {
    let rig = start(RigOptions::client_cert_only());
    let tls = rig.info().tls.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let p = port(&tls.registry);
    let by_ip = https(&tls.registry);
    let by_name = https(&format!("localhost:{p}"));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    let write = |insecure: bool| {
        std::fs::write(
            &conf,
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = {insecure}\n",
                tls.registry
            ),
        )
        .unwrap()
    };

    write(false);
    let cache = Cache::new();
    load_registries_conf(&cache, Some(&conf)).unwrap();
    assert_untrusted(manifest(&by_ip, &img.repo, &img.tag, &cache).unwrap_err());

    write(true);
    let cache = Cache::new();
    load_registries_conf(&cache, Some(&conf)).unwrap();
    let got = manifest(&by_ip, &img.repo, &img.tag, &cache).unwrap();
    assert_eq!(got.digest, img.digest);
    assert_untrusted(manifest(&by_name, &img.repo, &img.tag, &cache).unwrap_err());
}
