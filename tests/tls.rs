//! Pulls from the rig's https registries: real `docker-registry serve`
//! processes with a certificate signed by the CA the rig made at start. This
//! binary trusts that CA through `SSL_CERT_FILE`, which the client reads
//! once, when the first call starts it: every test here goes through
//! [`rig`], which sets it before any call. (`hostile.rs` checks the other
//! side: a process that does not trust the CA.)

mod common;

use std::sync::OnceLock;

use common::*;

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(start_tls_trusted)
}

fn https(addr: &str) -> String {
    format!("https://{addr}")
}

#[test]
fn manifests_and_blobs_come_over_https_on_http2() {
    let rig = rig();
    let tls = rig.info().tls.clone().unwrap();
    let registry = https(&tls.registry);
    let index = &rig.info().images.oci_index;
    let cache = Cache::new();

    let top = manifest(&registry, &index.repo, &index.tag, &cache).unwrap();
    assert_eq!(top.digest, index.digest);
    let entry = &index.manifests[0];
    let child = manifest(&registry, &index.repo, &entry.digest, &cache).unwrap();
    assert_eq!(child.digest, entry.digest);
    let mut blobs = vec![child.config.clone().unwrap()];
    blobs.extend(child.layers.iter().cloned());
    for d in &blobs {
        let bytes = blob_sized(&registry, &index.repo, &d.digest, d.size, &cache).unwrap();
        assert_eq!(sha256(&bytes), d.digest);
    }

    let prefix = format!("/v2/{}/", index.repo);
    let seen: Vec<_> = rig
        .registry_requests(Which::Tls)
        .into_iter()
        .filter(|r| r.uri.starts_with(&prefix))
        .collect();
    assert_eq!(seen.len(), 2 + blobs.len(), "{seen:#?}");
    for r in &seen {
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.proto, "HTTP/2.0", "negotiated by ALPN: {r:?}");
        assert!(r.user_agent.starts_with("tank/"), "{r:?}");
    }
}

#[test]
fn a_redirect_from_https_to_http_is_refused_without_following_it() {
    let rig = rig();
    let tls = rig.info().tls.clone().unwrap();
    let registry = https(&tls.redirecting_registry);
    let img = &rig.info().images.oci_image;

    // Manifests are served directly, so the registry itself is fine...
    let m = manifest(&registry, &img.repo, &img.tag, &Cache::none()).unwrap();
    assert_eq!(m.digest, img.digest);
    // ...but every blob read is sent on to the CDN's http:// URL.
    let e = blob(&registry, &img.repo, &img.config, &Cache::none()).unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_TRANSPORT, "{e:?}");
    assert_eq!(e.reason, "insecure_redirect", "{e:?}");
    assert!(e.message.contains(&tls.cdn), "names the target: {e:?}");

    assert_eq!(rig.cdn_requests(), [], "nothing reached the http URL");
    let blob_reads: Vec<_> = rig
        .registry_requests(Which::TlsRedirect)
        .into_iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .collect();
    assert_eq!(
        blob_reads.len(),
        1,
        "refused once, not retried: {blob_reads:#?}"
    );
    assert_eq!(blob_reads[0].status, 307);
}
