//! `tank_unpack` and `tank_pull_unpack` end to end, through the C ABI:
//! finding the image in a layout by every name form, the tree umoci gives,
//! the rename into place (and REPLACE's exchange), progress, cancel, the
//! KEEP_OWNERS check, layers applied while later blobs download, and the C
//! example's `--rootfs`.

mod common;

use common::c_example::tank_pull_exe;
use common::scripted::{respond, ScriptedServer};
use common::tools::tool;
use common::unpack::{pull_unpack, unpack, TANK_UNPACK_KEEP_OWNERS, TANK_UNPACK_REPLACE};
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

// ---------------------------------------------------------------------------
// Trees, compared as umoci's and tank's must be.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    /// The contents' sha256.
    File(String),
    Symlink(PathBuf),
    Fifo,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: Kind,
    mode: u32,
    mtime: i64,
}

/// Every entry under `root` ("" is the root itself), never following a
/// symlink.
fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let path = root.join(&rel);
        let meta =
            std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let t = meta.file_type();
        let kind = if t.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(rel.join(entry.unwrap().file_name()));
            }
            Kind::Dir
        } else if t.is_file() {
            Kind::File(sha256(&std::fs::read(&path).unwrap()))
        } else if t.is_symlink() {
            Kind::Symlink(std::fs::read_link(&path).unwrap())
        } else if meta.mode() & libc::S_IFMT == libc::S_IFIFO {
            Kind::Fifo
        } else {
            Kind::Other
        };
        out.insert(
            rel.to_string_lossy().into_owned(),
            Node {
                kind,
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
            },
        );
    }
    out
}

/// The root directory's time is no layer's unless one has a `./` entry
/// (the rig's images do not): umoci leaves it at the epoch when a layer puts
/// a file straight in it and at the time of the unpack otherwise, so only
/// its type and mode are compared.
fn without_root_time(mut t: BTreeMap<String, Node>) -> BTreeMap<String, Node> {
    if let Some(root) = t.get_mut("") {
        root.mtime = 0;
    }
    t
}

#[track_caller]
fn assert_same_tree(ours: &Path, theirs: &Path, what: &str) {
    let (a, b) = (
        without_root_time(tree(ours)),
        without_root_time(tree(theirs)),
    );
    let mut differences = Vec::new();
    for (path, node) in &a {
        match b.get(path) {
            None => differences.push(format!("{path:?}: only tank has it ({node:?})")),
            Some(other) if other != node => {
                differences.push(format!("{path:?}: tank {node:?}, theirs {other:?}"))
            }
            Some(_) => {}
        }
    }
    for (path, node) in &b {
        if !a.contains_key(path) {
            differences.push(format!("{path:?}: only theirs has it ({node:?})"));
        }
    }
    assert!(
        differences.is_empty(),
        "{what}: the trees differ:\n{}",
        differences.join("\n")
    );
}

/// `umoci unpack --rootless` of `name` in `layout`: its rootfs.
fn umoci_rootfs(layout: &Path, name: &str, scratch: &Path) -> PathBuf {
    let bundle = scratch.join(format!(
        "umoci-{}",
        sha256(name.as_bytes())[7..19].to_owned()
    ));
    run(tool("umoci", "umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:{name}", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    bundle.join("rootfs")
}

/// What tank leaves beside `rootfs` while it works: `.<name>.tank-*`.
fn temporaries(rootfs: &Path) -> Vec<String> {
    let prefix = format!(".{}.tank-", rootfs.file_name().unwrap().to_str().unwrap());
    std::fs::read_dir(rootfs.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[track_caller]
fn assert_nothing_left(rootfs: &Path) {
    assert!(
        std::fs::symlink_metadata(rootfs).is_err(),
        "{} exists",
        rootfs.display()
    );
    assert_eq!(
        temporaries(rootfs),
        Vec::<String>::new(),
        "temporary trees left"
    );
}

// ---------------------------------------------------------------------------
// Layouts and registries made at test time.

/// One layer: its blob as stored, and its diff_id.
struct TestLayer {
    media_type: &'static str,
    blob: Vec<u8>,
    diff_id: String,
}

/// A tar of regular files (their directories first, once each), as GNU tar
/// lists a tree.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, content) in files {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let dir = format!("{}/", parts[..i].join("/"));
            if !dirs.contains(&dir) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(1_600_000_000);
                builder.append_data(&mut h, &dir, std::io::empty()).unwrap();
                dirs.push(dir);
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(1_600_000_000);
        builder.append_data(&mut h, path, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn layer(media_type: &'static str, tar: Vec<u8>) -> TestLayer {
    let diff_id = sha256(&tar);
    let blob = match media_type {
        LAYER_TAR => tar,
        _ => gzip(&tar),
    };
    TestLayer {
        media_type,
        blob,
        diff_id,
    }
}

/// An image's config and manifest for `layers`.
struct TestImage {
    config: Vec<u8>,
    manifest: Vec<u8>,
    layers: Vec<TestLayer>,
}

impl TestImage {
    fn new(layers: Vec<TestLayer>) -> TestImage {
        let diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        Self::with_diff_ids(diff_ids, layers)
    }

    fn with_diff_ids(diff_ids: Vec<String>, layers: Vec<TestLayer>) -> TestImage {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type,
                "digest": sha256(&l.blob),
                "size": l.blob.len(),
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        TestImage {
            config,
            manifest,
            layers,
        }
    }

    fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    fn blobs(&self) -> Vec<&[u8]> {
        std::iter::once(&self.config[..])
            .chain(std::iter::once(&self.manifest[..]))
            .chain(self.layers.iter().map(|l| &l.blob[..]))
            .collect()
    }

    /// Writes an OCI layout at `dir` holding this image as `name`.
    fn write_layout(&self, dir: &Path, name: &str) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for blob in self.blobs() {
            std::fs::write(blob_path(dir, &sha256(blob)), blob).unwrap();
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": self.digest(),
                "size": self.manifest.len(),
                "annotations": {"org.opencontainers.image.ref.name": name},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    /// The blob `digest` of this image, if it has one.
    fn blob(&self, digest: &str) -> Option<Vec<u8>> {
        self.blobs()
            .into_iter()
            .find(|b| sha256(b) == digest)
            .map(<[u8]>::to_vec)
    }

    fn blob_bytes(&self) -> u64 {
        (self.config.len() + self.layers.iter().map(|l| l.blob.len()).sum::<usize>()) as u64
    }
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algo).join(hex)
}

/// A registry serving `image` as `x/y:v1`; `hold` runs before the blob
/// `digest` it is given is sent (to make an event happen first).
fn serve(image: Arc<TestImage>, hold: impl Fn(&str) + Send + Sync + 'static) -> ScriptedServer {
    ScriptedServer::start(move |req, conn| {
        let path = req.path().to_owned();
        if path == "/v2/x/y/manifests/v1" {
            let ct = [("Content-Type", OCI_MANIFEST)];
            return respond(conn, 200, &ct, &image.manifest);
        }
        if let Some(digest) = path.strip_prefix("/v2/x/y/blobs/") {
            if let Some(blob) = image.blob(digest) {
                hold(digest);
                return respond(conn, 200, &[], &blob);
            }
        }
        respond(conn, 404, &[], b"")
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Adds an entry to the layout's `index.json`.
fn add_entry(layout: &Path, media_type: &str, digest: &str, size: u64, name: &str) {
    let path = layout.join("index.json");
    let mut index = read_json(&path);
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": media_type,
        "digest": digest,
        "size": size,
        "annotations": {"org.opencontainers.image.ref.name": name},
    }));
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// The rig's images pulled with `tank_pull` into one layout: (oci name,
/// docker name).
fn pulled_rig_images(rig: &Rig, layout: &Path) -> (String, String) {
    let registry = rig.registry(Which::Plain);
    let images = &rig.info().images;
    let mut names = Vec::new();
    for image in [&images.oci_image, &images.docker_image] {
        let name = format!("{registry}/{}:{}", image.repo, image.tag);
        pull(&name, layout, None, 0, &Cache::new(), None)
            .0
            .unwrap_or_else(|e| panic!("tank_pull {name}: {e:?}"));
        names.push(name);
    }
    (names.remove(0), names.remove(0))
}

// ---------------------------------------------------------------------------
// tank_unpack

#[test]
fn the_rig_images_unpack_as_umoci_unpacks_them_by_every_name_form() {
    let rig = start(RigOptions::plain_only());
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let (oci, docker) = pulled_rig_images(&rig, &layout);

    // The full name tank_pull wrote, for each image.
    for name in [&oci, &docker] {
        let rootfs = dir.path().join(format!(
            "by-name-{}",
            sha256(name.as_bytes())[7..15].to_owned()
        ));
        unpack(&layout, name, &rootfs, 0, None)
            .0
            .unwrap_or_else(|e| panic!("tank_unpack {name}: {e:?}"));
        assert_nothing_left_beside(&rootfs);
        let theirs = umoci_rootfs(&layout, name, dir.path());
        assert_same_tree(&rootfs, &theirs, name);
    }
    let full = dir.path().join(format!(
        "by-name-{}",
        sha256(oci.as_bytes())[7..15].to_owned()
    ));
    // What the rig's OCI image holds after its whiteout.
    assert_eq!(
        std::fs::read_to_string(full.join("etc/tank-release")).unwrap(),
        "tank/oci-image linux/amd64 layer 1\n"
    );
    assert!(
        !full.join("usr/share/tank/bulk.bin").exists(),
        "whiteout ignored"
    );
    assert!(full.join("opt/tank/data.bin").is_file());

    // A short name: "alpine" is docker.io/library/alpine:latest, as
    // tank_pull names it.
    let entry = read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == oci.as_str())
        .unwrap()
        .clone();
    let oci_digest = entry["digest"].as_str().unwrap().to_owned();
    add_entry(
        &layout,
        OCI_MANIFEST,
        &oci_digest,
        entry["size"].as_u64().unwrap(),
        "docker.io/library/alpine:latest",
    );
    let short = dir.path().join("short");
    unpack(&layout, "alpine", &short, 0, None).0.unwrap();
    assert_same_tree(&short, &full, "alpine");

    // The digest of the entry's manifest.
    let by_digest = dir.path().join("by-digest");
    unpack(&layout, &oci_digest, &by_digest, 0, None).0.unwrap();
    assert_same_tree(&by_digest, &full, "by digest");

    // A name skopeo wrote: what it was given, verbatim.
    let copied = dir.path().join("copied");
    run(tool("skopeo", "skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:{oci}", layout.display()),
        &format!("oci:{}:v1", copied.display()),
    ]));
    let from_skopeo = dir.path().join("from-skopeo");
    unpack(&copied, "v1", &from_skopeo, 0, None).0.unwrap();
    assert_same_tree(&from_skopeo, &full, "skopeo's layout");
}

#[track_caller]
fn assert_nothing_left_beside(rootfs: &Path) {
    assert!(rootfs.is_dir(), "{} is no directory", rootfs.display());
    assert_eq!(
        temporaries(rootfs),
        Vec::<String>::new(),
        "temporary trees left"
    );
}

#[test]
fn an_index_or_a_name_the_layout_lacks_is_bad_input_listing_the_names() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let name = format!("{registry}/{}:{}", idx.repo, idx.tag);
    pull(&name, &layout, Some("linux/amd64"), 0, &Cache::new(), None)
        .0
        .unwrap();
    // tank_pull keeps the index's bytes in blobs/; an entry naming them is
    // what skopeo copy --all writes.
    add_entry(&layout, OCI_INDEX, &idx.digest, idx.size, "multi");
    let rootfs = dir.path().join("rootfs");
    for (image, says) in [
        ("multi", "an index"),
        (idx.digest.as_str(), "an index"),
        ("localhost:1/none:1", "no image"),
        (
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "no image",
        ),
    ] {
        let e = unpack(&layout, image, &rootfs, 0, None).0.unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{image}: {e:?}");
        assert!(e.message.contains(says), "{image}: {}", e.message);
        for listed in [&name, "multi"] {
            assert!(
                e.message.contains(listed),
                "{image}: the names are not listed: {}",
                e.message
            );
        }
        assert_nothing_left(&rootfs);
    }
}

#[test]
fn an_existing_rootfs_is_io_and_replace_swaps_in_only_a_whole_tree() {
    let image = TestImage::new(vec![
        layer(LAYER_TAR, tar_of(&[("etc/os-release", b"new\n")])),
        layer(LAYER_GZIP, tar_of(&[("usr/bin/tool", b"#!/bin/sh\n")])),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "img");
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/os-release"), "old\n").unwrap();
    let old = tree(&rootfs);

    let e = unpack(&layout, "img", &rootfs, 0, None).0.unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_IO, "{e:?}");
    assert_eq!(e.reason, "io");
    assert!(
        e.message.contains(rootfs.to_str().unwrap()),
        "{}",
        e.message
    );
    assert_eq!(tree(&rootfs), old, "the existing tree was touched");
    assert_eq!(temporaries(&rootfs), Vec::<String>::new());

    // The top layer damaged on disk: the failure leaves the old tree whole.
    let damaged = dir.path().join("damaged");
    image.write_layout(&damaged, "img");
    let top = blob_path(&damaged, &sha256(&image.layers[1].blob));
    let mut bytes = std::fs::read(&top).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&top, bytes).unwrap();
    let e = unpack(&damaged, "img", &rootfs, TANK_UNPACK_REPLACE, None)
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_DIGEST_MISMATCH, "{e:?}");
    assert!(
        e.message.contains("layer 2"),
        "the layer is not named: {}",
        e.message
    );
    assert_eq!(tree(&rootfs), old, "a failed REPLACE touched the old tree");
    assert_eq!(temporaries(&rootfs), Vec::<String>::new());

    unpack(&layout, "img", &rootfs, TANK_UNPACK_REPLACE, None)
        .0
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap(),
        "new\n"
    );
    assert!(rootfs.join("usr/bin/tool").is_file());
    assert_eq!(
        temporaries(&rootfs),
        Vec::<String>::new(),
        "the old tree was left"
    );

    // REPLACE with nothing there is a plain unpack.
    let fresh = dir.path().join("fresh");
    unpack(&layout, "img", &fresh, TANK_UNPACK_REPLACE, None)
        .0
        .unwrap();
    assert_same_tree(&fresh, &rootfs, "REPLACE into nothing");
    // The root directory's mode, with no `./` entry: umoci's.
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777,
        0o755
    );
}

#[test]
fn the_root_takes_the_mode_and_time_of_a_layers_dot_entry_as_umoci_gives_it() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o750);
    h.set_size(0);
    h.set_mtime(2000);
    builder.append_data(&mut h, "./", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_mtime(1000);
    builder.append_data(&mut h, "./file", &b"x"[..]).unwrap();
    let image = TestImage::new(vec![layer(LAYER_TAR, builder.into_inner().unwrap())]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "img");
    let rootfs = dir.path().join("rootfs");
    unpack(&layout, "img", &rootfs, 0, None).0.unwrap();
    let theirs = umoci_rootfs(&layout, "img", dir.path());
    assert_same_tree(&rootfs, &theirs, "a ./ entry");
    let (ours, theirs) = (tree(&rootfs)[""].clone(), tree(&theirs)[""].clone());
    assert_eq!(ours, theirs, "the root directory");
    assert_eq!((ours.mode, ours.mtime), (0o750, 2000));
}

#[test]
fn progress_counts_the_layer_bytes_read_on_the_calling_thread_and_ends_complete() {
    // Incompressible bulk, so the compressed layers are large.
    let noise = |seed: u64, n: usize| -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let image = TestImage::new(
        (0..3)
            .map(|i| {
                let bulk = noise(i + 1, 3 << 20);
                layer(LAYER_GZIP, tar_of(&[(&format!("data/{i}.bin"), &bulk)]))
            })
            .collect(),
    );
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "img");
    let rootfs = dir.path().join("rootfs");
    let (result, reports) = unpack(&layout, "img", &rootfs, 0, None);
    result.unwrap();
    let total: u64 = image.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert!(!reports.seen.is_empty());
    assert_eq!(*reports.seen.last().unwrap(), (total, total));
    assert!(
        reports.seen.iter().all(|&(_, t)| t == total),
        "{:?}",
        reports.seen
    );
    assert!(
        reports.seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "done went backwards: {:?}",
        reports.seen
    );
    let me = std::thread::current().id();
    assert!(
        reports.threads.iter().all(|t| *t == me),
        "a report on another thread"
    );
    // At most every 100 ms, but for the final one.
    let spaced = &reports.at[..reports.at.len() - 1];
    for w in spaced.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(95),
            "reports {:?} apart",
            w[1] - w[0]
        );
    }
}

/// A layer of many small files: long enough to apply that a cancel lands
/// while it is under way.
fn many_files_layer(n: usize) -> TestLayer {
    let names: Vec<String> = (0..n).map(|i| format!("many/{:03}/{i}", i / 500)).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    layer(LAYER_TAR, tar_of(&files))
}

/// Triggers `cancel` as soon as the temporary tree beside `rootfs` has
/// something in it; returns when it did.
fn cancel_once_applying(
    rootfs: PathBuf,
    cancel: Arc<Cancel>,
) -> std::thread::JoinHandle<Option<Instant>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let parent = rootfs.parent().unwrap();
            let busy = temporaries(&rootfs)
                .iter()
                .any(|t| std::fs::read_dir(parent.join(t)).is_ok_and(|mut d| d.next().is_some()));
            if busy {
                cancel.trigger();
                return Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    })
}

#[test]
fn cancel_ends_the_unpack_within_500_ms_and_removes_the_temporary_tree() {
    let image = TestImage::new(vec![many_files_layer(20_000)]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "img");
    let rootfs = dir.path().join("rootfs");
    let cancel = Arc::new(Cancel::new());
    let watcher = cancel_once_applying(rootfs.clone(), cancel.clone());
    let e = unpack(&layout, "img", &rootfs, 0, Some(&cancel))
        .0
        .unwrap_err();
    let returned = Instant::now();
    let triggered = watcher
        .join()
        .unwrap()
        .expect("the temporary tree never had anything in it");
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED, "{e:?}");
    let took = returned - triggered;
    assert!(took <= Duration::from_millis(500), "cancel took {took:?}");
    assert_nothing_left(&rootfs);
}

#[test]
fn bad_arguments_are_bad_input_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let rootfs_c = CString::new(rootfs.to_str().unwrap()).unwrap();
    let (layout, image, empty) = (c("/nonexistent"), c("img"), c(""));
    let invalid = CString::new(vec![0xff, 0xfe]).unwrap();
    let call = |layout: *const std::ffi::c_char,
                image: *const std::ffi::c_char,
                rootfs: *const std::ffi::c_char,
                flags: u32| unsafe {
        let mut err = std::ptr::null_mut();
        let status = common::unpack::tank_unpack(
            layout,
            image,
            rootfs,
            flags,
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
            &mut err,
        );
        take_error(status, err)
    };
    let null = std::ptr::null();
    for (what, e) in [
        (
            "NULL layout",
            call(null, image.as_ptr(), rootfs_c.as_ptr(), 0),
        ),
        (
            "NULL image",
            call(layout.as_ptr(), null, rootfs_c.as_ptr(), 0),
        ),
        (
            "NULL rootfs",
            call(layout.as_ptr(), image.as_ptr(), null, 0),
        ),
        (
            "empty layout",
            call(empty.as_ptr(), image.as_ptr(), rootfs_c.as_ptr(), 0),
        ),
        (
            "empty image",
            call(layout.as_ptr(), empty.as_ptr(), rootfs_c.as_ptr(), 0),
        ),
        (
            "empty rootfs",
            call(layout.as_ptr(), image.as_ptr(), empty.as_ptr(), 0),
        ),
        (
            "invalid UTF-8",
            call(invalid.as_ptr(), image.as_ptr(), rootfs_c.as_ptr(), 0),
        ),
        (
            "unknown flags",
            call(layout.as_ptr(), image.as_ptr(), rootfs_c.as_ptr(), 4),
        ),
        (
            "rootfs ..",
            call(layout.as_ptr(), image.as_ptr(), c("a/..").as_ptr(), 0),
        ),
    ] {
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{what}: {e:?}");
    }
    assert_nothing_left(&rootfs);
}

/// The child half of the KEEP_OWNERS check: runs only in the process the
/// parent test starts as uid 65534 (it passes trivially elsewhere).
#[test]
fn keep_owners_child_without_root() {
    let Some(scratch) = std::env::var_os("TANK_UNPACK_CORE_CHILD") else {
        return;
    };
    assert_ne!(unsafe { libc::geteuid() }, 0, "the child runs as root");
    let scratch = PathBuf::from(scratch);
    let rootfs = scratch.join("rootfs");
    // The layout does not exist: looking at it would be IO, not BAD_INPUT.
    let e = unpack(
        Path::new("/nonexistent"),
        "img",
        &rootfs,
        TANK_UNPACK_KEEP_OWNERS,
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
    assert!(e.message.contains("root"), "{}", e.message);
    assert_nothing_left(&rootfs);
    let tripwire = Tripwire::new();
    let e = pull_unpack(
        &format!("{}/x/y:v1", tripwire.registry()),
        &scratch.join("layout"),
        &rootfs,
        None,
        0,
        TANK_UNPACK_KEEP_OWNERS,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
    assert!(!tripwire.touched(), "a request was sent");
    assert_nothing_left(&rootfs);
    println!("TANK_UNPACK_CORE_CHILD checked");
}

#[test]
fn keep_owners_without_root_is_bad_input_before_any_work() {
    let scratch = tempfile::tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let me = std::env::current_exe().unwrap();
    let out = run(tool("setpriv", "util-linux")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(&me)
        .args([
            "--exact",
            "keep_owners_child_without_root",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TANK_UNPACK_CORE_CHILD", scratch.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("TANK_UNPACK_CORE_CHILD checked") && stdout.contains("1 passed"),
        "the child did not run its checks:\n{stdout}"
    );
}

#[test]
fn keep_owners_as_root_takes_the_layers_owners() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o640);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_size(2);
    h.set_mtime(1_600_000_000);
    builder.append_data(&mut h, "owned", &b"hi"[..]).unwrap();
    let image = TestImage::new(vec![layer(LAYER_TAR, builder.into_inner().unwrap())]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "img");
    let kept = dir.path().join("kept");
    unpack(&layout, "img", &kept, TANK_UNPACK_KEEP_OWNERS, None)
        .0
        .unwrap();
    let meta = std::fs::metadata(kept.join("owned")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    let rootless = dir.path().join("rootless");
    unpack(&layout, "img", &rootless, 0, None).0.unwrap();
    let meta = std::fs::metadata(rootless.join("owned")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "rootless keeps the caller's ids"
    );
}

/// A small tmpfs, unmounted (and its mount point removed) on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        run(tool("mount", "mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path()));
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_is_io_with_the_temporary_tree_removed_and_the_old_tree_kept() {
    // 8 MiB of zeros: a small blob, a tree that does not fit in 2 MiB.
    let zeros = vec![0u8; 8 << 20];
    let image = TestImage::new(vec![
        layer(LAYER_GZIP, tar_of(&[("small", b"fits")])),
        layer(LAYER_GZIP, tar_of(&[("big/zeros", &zeros)])),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_layout(&layout, "img");
    let disk = SmallDisk::new("2m");
    let rootfs = disk.path().join("rootfs");
    let e = unpack(&layout, "img", &rootfs, 0, None).0.unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_IO, "{e:?}");
    assert!(e.message.contains("layer 2"), "{}", e.message);
    assert_nothing_left(&rootfs);

    std::fs::create_dir(&rootfs).unwrap();
    std::fs::write(rootfs.join("old"), "old tree").unwrap();
    let old = tree(&rootfs);
    let e = unpack(&layout, "img", &rootfs, TANK_UNPACK_REPLACE, None)
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_IO, "{e:?}");
    assert_eq!(tree(&rootfs), old, "the old tree was touched");
    assert_eq!(temporaries(&rootfs), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// tank_pull_unpack

/// Whether the temporary tree beside `rootfs` holds `file` now.
fn temporary_holds(rootfs: &Path, file: &str) -> bool {
    temporaries(rootfs)
        .iter()
        .any(|t| rootfs.parent().unwrap().join(t).join(file).is_file())
}

#[test]
fn pull_unpack_applies_the_first_layers_while_the_last_still_downloads() {
    let image = Arc::new(TestImage::new(vec![
        layer(LAYER_GZIP, tar_of(&[("first/file", b"1")])),
        layer(LAYER_TAR, tar_of(&[("second/file", b"2")])),
        layer(LAYER_GZIP, tar_of(&[("third/file", b"3")])),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let rootfs = dir.path().join("rootfs");
    let last = sha256(&image.layers[2].blob);
    let seen_before_last = Arc::new(AtomicBool::new(false));
    let origin = {
        let (rootfs, seen) = (rootfs.clone(), seen_before_last.clone());
        serve(image.clone(), move |digest| {
            if digest != last {
                return;
            }
            // The last blob is held until the layers below it are applied
            // (or long enough for the test to fail).
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if temporary_holds(&rootfs, "first/file") && temporary_holds(&rootfs, "second/file")
                {
                    seen.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let name = format!("{}/x/y:v1", origin.addr());
    let (result, reports) = pull_unpack(&name, &layout, &rootfs, None, 0, 0, &Cache::new(), None);
    let fetched = result.unwrap();
    assert_eq!(fetched.digest, image.digest());
    assert!(
        seen_before_last.load(Ordering::SeqCst),
        "the lower layers were not applied before the last blob was sent"
    );
    for (file, content) in [
        ("first/file", "1"),
        ("second/file", "2"),
        ("third/file", "3"),
    ] {
        assert_eq!(std::fs::read_to_string(rootfs.join(file)).unwrap(), content);
    }
    assert_nothing_left_beside(&rootfs);
    // The layout is as tank_pull leaves it.
    let index = read_json(&layout.join("index.json"));
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        name.as_str()
    );
    for blob in image.blobs() {
        assert_eq!(
            std::fs::read(blob_path(&layout, &sha256(blob))).unwrap(),
            blob
        );
    }
    // Each blob byte counted twice: downloaded, then applied (or read).
    let total = 2 * image.blob_bytes();
    assert_eq!(*reports.seen.last().unwrap(), (total, total));
    assert!(reports.seen.iter().all(|&(d, t)| t == total && d <= total));
    assert!(
        reports.seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "{:?}",
        reports.seen
    );
}

#[test]
fn a_layer_listed_twice_is_applied_twice_and_counted_twice() {
    let a = || layer(LAYER_GZIP, tar_of(&[("f", b"from a")]));
    // B removes what A put there; A listed again puts it back.
    let b = layer(LAYER_TAR, tar_of(&[(".wh.f", b""), ("g", b"from b")]));
    let image = Arc::new(TestImage::new(vec![a(), b, a()]));
    assert_eq!(image.layers[0].blob, image.layers[2].blob);
    let origin = serve(image.clone(), |_| {});
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let rootfs = dir.path().join("rootfs");
    let name = format!("{}/x/y:v1", origin.addr());
    let (result, reports) = pull_unpack(&name, &layout, &rootfs, None, 0, 0, &Cache::new(), None);
    result.unwrap();
    assert_eq!(std::fs::read_to_string(rootfs.join("f")).unwrap(), "from a");
    assert_eq!(std::fs::read_to_string(rootfs.join("g")).unwrap(), "from b");
    let blob_gets = origin
        .requests()
        .iter()
        .filter(|r| r.path().contains("/blobs/"))
        .count();
    assert_eq!(
        blob_gets, 3,
        "the config and two distinct layers, each once"
    );
    // Downloaded: each distinct blob once; applied: each listed one.
    let distinct = image.config.len() + image.layers[0].blob.len() + image.layers[1].blob.len();
    let total = (distinct as u64) + image.blob_bytes();
    assert_eq!(*reports.seen.last().unwrap(), (total, total));

    // tank_unpack counts the layers as listed, too.
    let again = dir.path().join("again");
    let (result, reports) = unpack(&layout, &name, &again, 0, None);
    result.unwrap();
    assert_same_tree(&again, &rootfs, "tank_unpack of the same image");
    let layers: u64 = image.layers.iter().map(|l| l.blob.len() as u64).sum();
    assert_eq!(*reports.seen.last().unwrap(), (layers, layers));
}

#[test]
fn pull_unpack_of_the_rig_images_gives_the_tree_tank_unpack_gives() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let dir = tempfile::tempdir().unwrap();
    let images = &rig.info().images;
    for (i, image) in [&images.oci_image, &images.docker_image]
        .into_iter()
        .enumerate()
    {
        let name = format!("{registry}/{}:{}", image.repo, image.tag);
        let layout = dir.path().join(format!("layout-{i}"));
        let rootfs = dir.path().join(format!("rootfs-{i}"));
        let fetched = pull_unpack(&name, &layout, &rootfs, None, 0, 0, &Cache::new(), None)
            .0
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(fetched.digest, image.digest);
        assert_nothing_left_beside(&rootfs);
        let again = dir.path().join(format!("again-{i}"));
        unpack(&layout, &name, &again, 0, None).0.unwrap();
        assert_same_tree(&rootfs, &again, &name);
        let theirs = umoci_rootfs(&layout, &name, dir.path());
        assert_same_tree(&rootfs, &theirs, &name);
    }
}

#[test]
fn pull_unpack_refuses_an_existing_rootfs_before_any_request() {
    let tripwire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let e = pull_unpack(
        &format!("{}/x/y:v1", tripwire.registry()),
        &dir.path().join("layout"),
        &rootfs,
        None,
        0,
        0,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_IO, "{e:?}");
    assert!(
        e.message.contains(rootfs.to_str().unwrap()),
        "{}",
        e.message
    );
    assert!(!tripwire.touched(), "a request was sent");
    assert_eq!(temporaries(&rootfs), Vec::<String>::new());
}

#[test]
fn a_layer_that_fails_keeps_the_verified_blobs_and_leaves_nothing_at_rootfs() {
    let layers = vec![
        layer(LAYER_GZIP, tar_of(&[("a", b"1")])),
        layer(LAYER_GZIP, tar_of(&[("b", b"2")])),
    ];
    // The config's diff_id for layer 2 is another layer's.
    let diff_ids = vec![layers[0].diff_id.clone(), layers[0].diff_id.clone()];
    let image = Arc::new(TestImage::with_diff_ids(diff_ids, layers));
    let origin = serve(image.clone(), |_| {});
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let rootfs = dir.path().join("rootfs");
    let name = format!("{}/x/y:v1", origin.addr());
    let e = pull_unpack(&name, &layout, &rootfs, None, 0, 0, &Cache::new(), None)
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_LAYER, "{e:?}");
    assert_eq!(e.reason, "diff_id_mismatch", "{e:?}");
    assert!(e.message.contains("layer 2"), "{}", e.message);
    assert_nothing_left(&rootfs);
    for layer in &image.layers {
        assert_eq!(
            std::fs::read(blob_path(&layout, &sha256(&layer.blob))).unwrap(),
            layer.blob,
            "a verified blob was not kept"
        );
    }
    // A later pull reuses them: only the manifest is asked for again.
    let before = origin.requests().len();
    pull(&name, &layout, None, 0, &Cache::new(), None)
        .0
        .unwrap();
    let asked: Vec<String> = origin.requests()[before..]
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(asked, ["/v2/x/y/manifests/v1"], "blobs fetched again");
}

#[test]
fn cancel_ends_pull_unpack_within_500_ms_with_the_temporary_tree_removed() {
    let image = Arc::new(TestImage::new(vec![
        many_files_layer(20_000),
        layer(LAYER_GZIP, tar_of(&[("never", b"x")])),
    ]));
    let last = sha256(&image.layers[1].blob);
    let released = Arc::new(AtomicBool::new(false));
    let origin = {
        let released = released.clone();
        serve(image.clone(), move |digest| {
            // The last blob never comes while the test runs.
            while digest == last && !released.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let rootfs = dir.path().join("rootfs");
    let cancel = Arc::new(Cancel::new());
    let watcher = cancel_once_applying(rootfs.clone(), cancel.clone());
    let name = format!("{}/x/y:v1", origin.addr());
    let e = pull_unpack(
        &name,
        &layout,
        &rootfs,
        None,
        0,
        0,
        &Cache::new(),
        Some(&cancel),
    )
    .0
    .unwrap_err();
    let returned = Instant::now();
    released.store(true, Ordering::SeqCst);
    let triggered = watcher.join().unwrap().expect("nothing was applied");
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED, "{e:?}");
    let took = returned - triggered;
    assert!(took <= Duration::from_millis(500), "cancel took {took:?}");
    assert_nothing_left(&rootfs);
}

// ---------------------------------------------------------------------------
// The C example

#[test]
fn the_c_example_unpacks_with_rootfs() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let image = &rig.info().images.oci_image;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let rootfs = dir.path().join("rootfs");
    let out = run(Command::new(tank_pull_exe())
        .args([registry, &image.repo, &image.tag])
        .arg(&layout)
        .arg("--rootfs")
        .arg(&rootfs));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(lines[3], format!("rootfs: {}", rootfs.display()));
    assert!(lines[1].ends_with(&image.digest), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/tank-release")).unwrap(),
        "tank/oci-image linux/amd64 layer 1\n"
    );
    assert_nothing_left_beside(&rootfs);

    // Again: the rootfs exists now, an error naming it, exit status 1.
    let again = Command::new(tank_pull_exe())
        .args([registry, &image.repo, &image.tag])
        .arg(&layout)
        .arg("--rootfs")
        .arg(&rootfs)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("tank-pull: io:") && stderr.contains(rootfs.to_str().unwrap()),
        "{stderr}"
    );
}
