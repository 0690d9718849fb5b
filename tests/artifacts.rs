//! OCI 1.1 artifacts through `tank_pull` (issue 22, promise 8): an image
//! manifest with `artifactType`, the empty config and layers of any media
//! type, pushed to a real registry, lands in the layout as an image does,
//! with no platform asked of it; skopeo reads and copies it from there. An
//! unpack refuses it before any download: it has no root filesystem.

mod common;

use std::path::Path;

use common::tools::tool;
use common::unpack::{pull_unpack, unpack};
use common::*;
use serde_json::{json, Value};
use tank_testrig::Upload;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const KIND: &str = "application/vnd.example.bundle.v1";

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// An artifact as oras pushes one: `artifactType`, the empty config, the
/// files as layers of their own media types.
fn artifact(layers: &[(&str, &[u8])]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": KIND,
        "config": descriptor(EMPTY, b"{}"),
        "layers": layers.iter().map(|(t, b)| descriptor(t, b)).collect::<Vec<_>>(),
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .unwrap()
}

fn blob(layout: &Path, bytes: &[u8]) -> Vec<u8> {
    let digest = sha256(bytes);
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest} is not in the layout: {e}"))
}

fn index_json(layout: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

fn run_ok(cmd: &mut std::process::Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

#[test]
fn an_artifact_is_pulled_into_the_layout_as_an_image_is() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#.as_slice();
    let data = b"\x00\x01 not a tar at all \xff".as_slice();
    let manifest = artifact(&[
        ("application/spdx+json", sbom),
        ("application/vnd.example.data", data),
    ]);
    rig.push(
        Which::Plain,
        "tank/artifact",
        &[b"{}", sbom, data],
        vec![Upload {
            reference: "v1",
            media_type: OCI_MANIFEST,
            bytes: manifest.clone(),
        }],
    )
    .unwrap();
    let name = format!("{registry}/tank/artifact:v1");
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();

    // No platform is asked of it: none given, or one it cannot have.
    for (i, platform) in [None, Some("linux/s390x")].into_iter().enumerate() {
        let layout = dir.path().join(format!("layout{i}"));
        let got = pull(&name, &layout, platform, 0, &cache, None)
            .0
            .unwrap_or_else(|e| panic!("{platform:?}: {e:?}"));
        assert_eq!(got.digest, sha256(&manifest));
        assert_eq!(got.raw, manifest);
        assert_eq!(got.artifact_type.as_deref(), Some(KIND));
        assert_eq!(got.config.as_ref().unwrap().media_type, EMPTY);
        assert_eq!(blob(&layout, b"{}"), b"{}");
        assert_eq!(blob(&layout, sbom), sbom);
        assert_eq!(blob(&layout, data), data);
        assert_eq!(blob(&layout, &manifest), manifest);
        let entries = index_json(&layout)["manifests"].as_array().unwrap().clone();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["digest"], sha256(&manifest));
        assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);
        assert_eq!(
            entries[0]["artifactType"], KIND,
            "the entry says what it holds"
        );
        assert_eq!(
            entries[0]["annotations"]["org.opencontainers.image.ref.name"],
            name
        );
    }

    // skopeo, which no one here wrote, reads the layout and checks every
    // digest as it copies the artifact out of it.
    let layout = dir.path().join("layout0");
    let source = format!("oci:{}:{name}", layout.display());
    let raw = run_ok(tool("skopeo", "skopeo").args(["inspect", "--raw", &source]));
    assert_eq!(raw.as_bytes(), manifest);
    let copy = dir.path().join("copy");
    run_ok(tool("skopeo", "skopeo").args([
        "copy",
        "--quiet",
        &source,
        &format!("dir:{}", copy.display()),
    ]));
    let copied = std::fs::read(copy.join("manifest.json")).unwrap();
    assert_eq!(parsed_layers(&copied), parsed_layers(&manifest));
    let hex = sha256(data);
    assert_eq!(
        std::fs::read(copy.join(hex.strip_prefix("sha256:").unwrap())).unwrap(),
        data
    );

    // Nor does tank_unpack make a tree of it from the layout.
    let rootfs = dir.path().join("rootfs");
    let e = unpack(&layout, &name, &rootfs, 0, None).0.unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_LAYER, "unsupported_media_type"),
        "{e:?}"
    );
    assert!(!rootfs.exists());
}

fn parsed_layers(manifest: &[u8]) -> Value {
    serde_json::from_slice::<Value>(manifest).unwrap()["layers"].clone()
}

#[test]
fn an_unpack_refuses_an_artifact_before_any_download() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    // Even a tar layer: an empty config has no diff_ids, so no tree.
    let tar = tar_of_one_file();
    let data = b"plain data".as_slice();
    for (tag, layer_type, layer) in [
        (
            "tar",
            "application/vnd.oci.image.layer.v1.tar",
            tar.as_slice(),
        ),
        ("data", "application/vnd.example.data", data),
    ] {
        let manifest = artifact(&[(layer_type, layer)]);
        rig.push(
            Which::Plain,
            "tank/artifact-unpack",
            &[b"{}", layer],
            vec![Upload {
                reference: tag,
                media_type: OCI_MANIFEST,
                bytes: manifest,
            }],
        )
        .unwrap();
        rig.clear_logs();
        let dir = tempfile::tempdir().unwrap();
        let (layout, rootfs) = (dir.path().join("layout"), dir.path().join("rootfs"));
        let image = format!("{registry}/tank/artifact-unpack:{tag}");
        let e = pull_unpack(&image, &layout, &rootfs, None, 0, 0, &Cache::new(), None)
            .0
            .unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_LAYER, "unsupported_media_type"),
            "{tag}: {e:?}"
        );
        assert!(
            e.message.contains("artifact") && e.message.contains(KIND),
            "{tag}: {e:?}"
        );
        assert!(!rootfs.exists(), "{tag}: a rootfs was left");
        let blobs: Vec<_> = rig
            .registry_requests(Which::Plain)
            .into_iter()
            .filter(|r| r.uri.contains("/blobs/"))
            .collect();
        assert!(blobs.is_empty(), "{tag}: blobs were fetched: {blobs:?}");
    }
}

/// A tar holding one small file, made by GNU tar.
fn tar_of_one_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello"), b"hello\n").unwrap();
    let out = run(tool("tar", "tar").args([
        "--create",
        "--format=posix",
        "--mtime=@0",
        "--owner=0",
        "--group=0",
        "-C",
        dir.path().to_str().unwrap(),
        "hello",
    ]));
    out.stdout
}
