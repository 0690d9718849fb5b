//! Builds the C example `tank-pull` against the freshly built library and
//! pulls the multi-arch fixture into an OCI image layout, end to end.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The static `tank-pull`, built once per test process against the release
/// `libtank.a`, into a directory of that process's own: test runners that
/// give each test a process (nextest) must not have one relink the binary
/// another is running. The cargo command is the demo's and CI's, word for
/// word: another package set would unify features differently and rebuild
/// the library.
fn build_tank_pull() -> PathBuf {
    static BUILT: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    BUILT.get_or_init(build).1.clone()
}

fn build() -> (tempfile::TempDir, PathBuf) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["build", "--release", "-p", "tank", "-p", "tank-testrig"])
        .current_dir(root()));
    let dir = tempfile::tempdir().unwrap();
    let build_dir = format!("BUILD={}", dir.path().display());
    run(Command::new("make")
        .args(["-C", "examples/c", "PROFILE=release", &build_dir])
        .arg(dir.path().join("tank-pull"))
        .current_dir(root()));
    let exe = dir.path().join("tank-pull");
    (dir, exe)
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algo).join(hex)
}

#[test]
fn tank_pull_writes_a_valid_oci_layout() {
    let tank_pull = build_tank_pull();
    let rig = start(RigOptions::plain_only());
    let idx = &rig.info().images.oci_index;
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("image");

    let pulled = run(Command::new(&tank_pull).args([
        rig.registry(Which::Plain),
        &idx.repo,
        &idx.tag,
        layout.to_str().unwrap(),
        "--platform",
        "linux/arm64",
    ]));
    let stdout = String::from_utf8_lossy(&pulled.stdout);
    let arm64 = idx
        .entry("linux/arm64/v8")
        .expect("fixture has linux/arm64/v8");

    let oci_layout: Value =
        serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["digest"],
        arm64.digest.as_str(),
        "arm64 matches arm64/v8"
    );
    assert_eq!(entry["size"], arm64.size);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        idx.tag.as_str()
    );

    for digest in std::iter::once(&arm64.digest)
        .chain([&arm64.config])
        .chain(&arm64.layers)
    {
        let bytes = std::fs::read(blob_path(&layout, digest))
            .unwrap_or_else(|e| panic!("{digest} missing: {e}"));
        assert_eq!(
            &sha256(&bytes),
            digest,
            "blob file content matches its name"
        );
        assert!(
            stdout.contains(digest.as_str()),
            "tank-pull printed no line for {digest}:\n{stdout}"
        );
    }
    let amd64 = idx.entry("linux/amd64").unwrap();
    assert!(
        !blob_path(&layout, &amd64.config).exists(),
        "another platform's config was pulled"
    );
}

#[test]
fn tank_pull_reports_failures_with_the_reason_id() {
    let tank_pull = build_tank_pull();
    let rig = start(RigOptions::plain_only());
    let out = tempfile::tempdir().unwrap();
    let failed = Command::new(&tank_pull)
        .args([
            rig.registry(Which::Plain),
            "tank/oci-image",
            "no-such-tag",
            out.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("http_status") && stderr.contains("404"),
        "{stderr}"
    );

    let idx = &rig.info().images.oci_index;
    let failed = Command::new(&tank_pull)
        .args([
            rig.registry(Which::Plain),
            &idx.repo,
            &idx.tag,
            out.path().to_str().unwrap(),
            "--platform",
            "plan9/mips",
        ])
        .output()
        .unwrap();
    assert_ne!(failed.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("linux/amd64"),
        "lists the platforms on offer: {stderr}"
    );
}
