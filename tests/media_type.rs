//! A manifest's `Content-Type` may carry parameters
//! (`application/vnd.docker.distribution.manifest.v2+json; charset=utf-8`):
//! the media type is its essence, so a Docker image pulled through such a
//! server is stored in the OCI form skopeo reads. The manifests and blobs are
//! the rig's real registry's; only the header is changed, by a proxy.

mod common;

use common::scripted::ScriptedServer;
use common::tools::tool;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const PARAMETER: &str = "; charset=utf-8";

/// `upstream` behind a proxy that appends [`PARAMETER`] to the
/// `Content-Type` of every manifest response; counts the ones it changed.
fn proxy_adding_a_parameter(upstream: &str) -> (ScriptedServer, Arc<AtomicUsize>) {
    let changed = Arc::new(AtomicUsize::new(0));
    let upstream = upstream.to_owned();
    let count = changed.clone();
    let origin = ScriptedServer::start(move |req, conn| {
        let mut up = TcpStream::connect(&upstream).expect("the rig's registry answers");
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {upstream}\r\n",
            req.method, req.target
        );
        for (k, v) in &req.headers {
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("connection") {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        up.write_all(head.as_bytes()).expect("request to the rig");
        let mut response = Vec::new();
        up.read_to_end(&mut response)
            .expect("the rig's whole response");
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8(response[..end].to_vec()).expect("an ASCII head");
        let manifest = req.path().contains("/manifests/");
        let head: Vec<String> = head
            .split("\r\n")
            .map(|line| {
                if manifest && line.to_ascii_lowercase().starts_with("content-type:") {
                    count.fetch_add(1, Ordering::SeqCst);
                    format!("{line}{PARAMETER}")
                } else {
                    line.to_owned()
                }
            })
            .collect();
        let _ = conn.write_all(head.join("\r\n").as_bytes());
        let _ = conn.write_all(&response[end..]);
    });
    (origin, changed)
}

#[test]
fn a_docker_manifest_typed_with_parameters_is_stored_in_oci_form() {
    let rig = start(RigOptions::plain_only());
    let image = &rig.info().images.docker_image;
    assert_eq!(image.media_type, DOCKER_MANIFEST, "the fixture is Docker's");
    let (proxy, changed) = proxy_adding_a_parameter(rig.registry(Which::Plain));
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let name = format!("{}/{}:{}", proxy.addr(), image.repo, image.tag);

    let (fetched, _) = pull(&name, &layout, None, 0, &Cache::new(), None);
    let fetched = fetched.unwrap_or_else(|e| panic!("{name}: {e:?}"));
    assert!(
        changed.load(Ordering::SeqCst) >= 1,
        "the proxy typed no manifest with a parameter"
    );
    // The pulled manifest's type is reported as sent (SPEC: Content-Type as
    // sent); only the layout's copy is renamed.
    assert_eq!(fetched.media_type, format!("{DOCKER_MANIFEST}{PARAMETER}"));

    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["mediaType"], OCI_MANIFEST, "{index}");
    let digest = entry["digest"].as_str().expect("a digest");
    assert_ne!(
        digest, image.digest,
        "the Docker manifest is stored renamed to OCI's types, under its own digest"
    );
    let stored_path = layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    let stored: Value = serde_json::from_slice(&std::fs::read(stored_path).unwrap()).unwrap();
    assert_eq!(stored["mediaType"], OCI_MANIFEST, "{stored}");
    assert_eq!(
        stored["config"]["mediaType"], "application/vnd.oci.image.config.v1+json",
        "{stored}"
    );
    for layer in stored["layers"].as_array().expect("layers") {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{stored}"
        );
    }

    // skopeo reads the entry and, copying, checks every digest.
    let source = format!("oci:{}:{name}", layout.display());
    let inspected = run(tool("skopeo", "skopeo").args(["inspect", &source]));
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(inspected["Os"], "linux", "{inspected}");
    run(tool("skopeo", "skopeo").args([
        "copy",
        "--quiet",
        &source,
        &format!("dir:{}", dir.path().join("copy").display()),
    ]));
}
