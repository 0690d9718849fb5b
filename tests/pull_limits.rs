//! Image manifests that describe more than any image has: more layers
//! than tank pulls, sizes that add up past what a u64 counts. Pushed to a
//! real registry (distribution takes them: it checks that the blobs exist,
//! not what the sizes say or how many there are) and pulled through the C
//! ABI: each fails as a protocol error before any blob is fetched.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// The most layers tank pulls for one image (pull.rs `MAX_LAYERS`).
const MAX_LAYERS: usize = 1024;

/// The rig's OCI image manifest, as JSON to edit.
fn oci_image_manifest(rig: &Rig) -> Value {
    let image = &rig.info().images.oci_image;
    let fetched = manifest(
        rig.registry(Which::Plain),
        &image.repo,
        &image.tag,
        &Cache::none(),
    )
    .unwrap();
    serde_json::from_slice(&fetched.raw).unwrap()
}

/// PUTs `manifest` as `repo:tag` to the rig's plain registry (it asks for
/// no credentials), as `docker push` does once the blobs are there.
fn push_manifest(rig: &Rig, repo: &str, tag: &str, manifest: &Value) {
    let registry = rig.registry(Which::Plain);
    let body = serde_json::to_vec(manifest).unwrap();
    let mut conn = TcpStream::connect(registry).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        conn,
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {registry}\r\n\
         Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "PUT {repo}:{tag}: {answer}"
    );
}

fn blob_requests(rig: &Rig) -> Vec<tank_testrig::RegistryRequest> {
    rig.registry_requests(Which::Plain)
        .into_iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .collect()
}

/// Pulls `repo:tag` from the rig's plain registry into `layout`.
fn pull_tag(rig: &Rig, repo: &str, tag: &str, layout: &Path) -> Result<Fetched, CallError> {
    let name = format!("{}/{repo}:{tag}", rig.registry(Which::Plain));
    pull(&name, layout, None, 0, &Cache::none(), None).0
}

#[test]
fn an_image_of_more_layers_than_tank_pulls_fails_before_any_blob_is_fetched() {
    let rig = start(RigOptions::plain_only());
    let repo = &rig.info().images.oci_image.repo;
    let mut m = oci_image_manifest(&rig);
    let layer = m["layers"][0].clone();
    for (tag, count) in [("at-the-cap", MAX_LAYERS), ("past-the-cap", MAX_LAYERS + 1)] {
        m["layers"] = Value::Array(vec![layer.clone(); count]);
        push_manifest(&rig, repo, tag, &m);
    }
    let dir = tempfile::tempdir().unwrap();

    let got = pull_tag(&rig, repo, "at-the-cap", &dir.path().join("at")).unwrap();
    assert_eq!(got.layers.len(), MAX_LAYERS);

    rig.clear_logs();
    let layout = dir.path().join("past");
    let e = match pull_tag(&rig, repo, "past-the-cap", &layout) {
        Ok(got) => panic!("an image of {} layers pulled", got.layers.len()),
        Err(e) => e,
    };
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "manifest_too_large"),
        "{e:?}"
    );
    assert!(
        e.message.contains(&format!("{} layers", MAX_LAYERS + 1))
            && e.message.contains(&MAX_LAYERS.to_string()),
        "the message says how many and how many at most: {}",
        e.message
    );
    assert_eq!(blob_requests(&rig), [], "a blob fetched");
    assert!(!layout.join("index.json").exists());
}

#[test]
fn blob_sizes_that_add_up_past_a_u64_are_a_protocol_error() {
    let rig = start(RigOptions::plain_only());
    let repo = &rig.info().images.oci_image.repo;
    let mut m = oci_image_manifest(&rig);
    // The registry keeps sizes as int64: three layers at its largest add
    // up to 1.5 × u64::MAX.
    let layers = m["layers"].as_array_mut().unwrap();
    assert!(layers.len() >= 3, "the rig's OCI image has three layers");
    for layer in layers {
        layer["size"] = Value::from(i64::MAX);
    }
    push_manifest(&rig, repo, "past-u64", &m);

    rig.clear_logs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let e = match pull_tag(&rig, repo, "past-u64", &layout) {
        Ok(got) => panic!("pulled, sizes and all: {:?}", got.layers),
        Err(e) => e,
    };
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "invalid_manifest_json"),
        "{e:?}"
    );
    assert!(e.message.contains("sizes"), "{}", e.message);
    assert_eq!(blob_requests(&rig), [], "a blob fetched");
    assert!(!layout.join("index.json").exists());
}
