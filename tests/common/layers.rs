//! OCI image layouts made at test time: layers as tars that GNU tar made
//! from real directories (or tar bytes a test wrote itself), compressed by
//! `gzip` or `zstd`, written to `blobs/sha256` under their digests, with a
//! config whose `rootfs.diff_ids` match, a manifest (OCI or Docker media
//! types) and an `index.json` entry naming it by tag, the form both
//! `tank_unpack` and `umoci unpack --image LAYOUT:TAG` take.
#![allow(dead_code)] // Each test binary uses some of these.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::tools::tool;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_ND_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_ND_TAR_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_ND_TAR_ZSTD: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
pub const DOCKER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// How a layer's tar is stored in its blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compress {
    None,
    Gzip,
    Zstd,
}

impl Compress {
    /// The OCI media type of a distributable layer stored this way.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compress::None => OCI_TAR,
            Compress::Gzip => OCI_TAR_GZIP,
            Compress::Zstd => OCI_TAR_ZSTD,
        }
    }

    /// `bytes` compressed by the tool people use (`gzip -n`: no name or time
    /// in the header, so equal tars give equal blobs).
    pub fn apply(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Compress::None => bytes.to_vec(),
            Compress::Gzip => filter(tool("gzip", "gzip").args(["-n", "-c"]), bytes),
            Compress::Zstd => filter(tool("zstd", "zstd").args(["-q", "-c"]), bytes),
        }
    }

    /// `bytes` decompressed by the same tools.
    pub fn undo(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Compress::None => bytes.to_vec(),
            Compress::Gzip => filter(tool("gzip", "gzip").args(["-d", "-c"]), bytes),
            Compress::Zstd => filter(tool("zstd", "zstd").args(["-d", "-q", "-c"]), bytes),
        }
    }
}

/// `cmd` with `input` on stdin; its stdout. Fails the test, with stderr,
/// unless it succeeds. stdin is written on a thread of its own so a tool
/// that writes before it has read everything cannot deadlock us.
pub fn filter(cmd: &mut Command, input: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let out = std::thread::scope(|s| {
        s.spawn(move || {
            // A tool that stops reading early fails below with its own
            // message; a broken pipe here says less.
            let _ = stdin.write_all(input);
        });
        child.wait_with_output()
    })
    .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// GNU tar's archive formats worth telling apart: `posix` (PAX extended
/// headers for long names, sub-second times, xattrs) and `gnu` (`L`/`K`
/// long-name entries, whole-second times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarFormat {
    Posix,
    Gnu,
}

/// The members of `dir` as GNU tar archives them, the way image builders
/// do: names relative to `dir` without a leading `./` (its top-level
/// entries are named, sorted), numeric owners, entries sorted by name so
/// the bytes depend only on the tree. `dir` itself is no entry; see
/// [`tar_dir_with_root`] for a layer that has `./`.
pub fn tar_dir(dir: &Path, format: TarFormat) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut cmd = tar_create(dir, format);
    if names.is_empty() {
        // An empty layer: GNU tar refuses to make an archive of nothing
        // named, but `--files-from /dev/null` is an empty archive.
        cmd.args(["--files-from", "/dev/null"]);
    } else {
        cmd.arg("--").args(names);
    }
    super::run(&mut cmd).stdout
}

/// As [`tar_dir`], but with `./` (the root directory itself, whose mode
/// and time then come from the layer) and every name under `./`.
pub fn tar_dir_with_root(dir: &Path, format: TarFormat) -> Vec<u8> {
    super::run(tar_create(dir, format).arg(".")).stdout
}

fn tar_create(dir: &Path, format: TarFormat) -> Command {
    let mut cmd = tool("tar", "tar");
    cmd.arg("--create")
        .arg("--file=-")
        .arg("--numeric-owner")
        .arg("--sort=name")
        .arg(match format {
            TarFormat::Posix => "--format=posix",
            TarFormat::Gnu => "--format=gnu",
        })
        .arg("--directory")
        .arg(dir);
    cmd
}

/// `bytes`' digest (`sha256:hex`), by coreutils' `sha256sum`: the sha2
/// crate in a debug build reads some 14 MB/s, too slow for real trees.
pub fn sha256(bytes: &[u8]) -> String {
    let out = filter(tool("sha256sum", "coreutils").arg("-"), bytes);
    let hex = std::str::from_utf8(&out[..64]).expect("sha256sum prints hex");
    format!("sha256:{hex}")
}

/// One layer as it goes into a layout.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    /// The blob's bytes (compressed as `media_type` says, or not: a test
    /// of wrong bytes sets them apart).
    pub blob: Vec<u8>,
    /// The sha256 of the uncompressed tar, for the config's diff_ids.
    pub diff_id: String,
    /// The tar itself, for tools that read layers one by one (`tar -x`).
    pub tar: Vec<u8>,
}

/// The layer media types `umoci unpack` (0.4.7) takes; it refuses zstd and
/// Docker's types (and Docker manifests: "not implemented").
pub const UMOCI_TAKES: [&str; 4] = [OCI_TAR, OCI_TAR_GZIP, OCI_ND_TAR, OCI_ND_TAR_GZIP];

impl Layer {
    /// `tar` compressed as `compress` says, under its OCI media type.
    pub fn new(tar: Vec<u8>, compress: Compress) -> Layer {
        Layer::typed(tar, compress, compress.oci_media_type())
    }

    /// `tar` compressed as `compress` says, under `media_type` (which may
    /// say otherwise, for tests of wrong bytes).
    pub fn typed(tar: Vec<u8>, compress: Compress, media_type: &str) -> Layer {
        Layer {
            media_type: media_type.to_owned(),
            blob: compress.apply(&tar),
            diff_id: sha256(&tar),
            tar,
        }
    }

    /// GNU tar's archive of `dir` (see [`tar_dir`]), compressed.
    pub fn of_dir(dir: &Path, format: TarFormat, compress: Compress) -> Layer {
        Layer::new(tar_dir(dir, format), compress)
    }
}

/// Which manifest and config media types an image is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Oci,
    Docker,
}

/// A layout written by [`write_layout`].
#[derive(Debug, Clone)]
pub struct Written {
    pub layout: PathBuf,
    /// The `org.opencontainers.image.ref.name` of its one image.
    pub tag: String,
    pub manifest_digest: String,
    pub kind: ManifestKind,
}

impl Written {
    /// `LAYOUT:TAG`, as `umoci --image` and skopeo's `oci:` take it.
    pub fn umoci_image(&self) -> String {
        format!("{}:{}", self.layout.display(), self.tag)
    }
}

/// Writes an OCI image layout at `layout` (made if absent) with one image,
/// named `tag`, of `layers` in order (bottom first). A layout that already
/// has images keeps them: the index gains this one.
pub fn write_layout(layout: &Path, tag: &str, layers: &[Layer], kind: ManifestKind) -> Written {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": layers.iter().map(|_| json!({"created_by": "tank tests"})).collect::<Vec<_>>(),
    });
    let (manifest_type, config_type) = match kind {
        ManifestKind::Oci => (OCI_MANIFEST, OCI_CONFIG),
        ManifestKind::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
    };
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_desc = put_blob(layout, config_type, &config_bytes);
    let layer_descs: Vec<Value> = layers
        .iter()
        .map(|l| put_blob(layout, &l.media_type, &l.blob))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config_desc,
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let mut manifest_desc = put_blob(layout, manifest_type, &manifest_bytes);
    manifest_desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    manifest_desc["platform"] = json!({"architecture": "amd64", "os": "linux"});
    add_to_index(layout, manifest_desc.clone());
    Written {
        layout: layout.to_owned(),
        tag: tag.to_owned(),
        manifest_digest: manifest_desc["digest"].as_str().unwrap().to_owned(),
        kind,
    }
}

/// `bytes` stored as a blob of `layout`; its descriptor.
pub fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = blob_path(layout, &digest);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    layout.join("blobs").join(algorithm).join(hex)
}

fn add_to_index(layout: &Path, entry: Value) {
    std::fs::create_dir_all(layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index_path = layout.join("index.json");
    let mut index = match std::fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }),
    };
    index["manifests"].as_array_mut().unwrap().push(entry);
    std::fs::write(&index_path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
}

/// The layers (media type, blob bytes) of the image manifest named `name`
/// in `layout`'s index.json, bottom first.
pub fn read_layers(layout: &Path, name: &str) -> Vec<(String, Vec<u8>)> {
    let index: Value = read_json(&layout.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .expect("index.json has manifests")
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == name)
        .unwrap_or_else(|| panic!("no image named {name} in {index}"));
    let manifest = read_json(&blob_path(layout, entry["digest"].as_str().unwrap()));
    manifest["layers"]
        .as_array()
        .expect("an image manifest has layers")
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().unwrap();
            let path = blob_path(layout, digest);
            let blob = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (l["mediaType"].as_str().unwrap().to_owned(), blob)
        })
        .collect()
}

/// The layers of `name` in `layout` with their tars, decompressed by the
/// tools people use as their media types say.
pub fn layers_of(layout: &Path, name: &str) -> Vec<Layer> {
    read_layers(layout, name)
        .into_iter()
        .map(|(media_type, blob)| {
            let tar = compression_of(&media_type).undo(&blob);
            Layer {
                diff_id: sha256(&tar),
                media_type,
                blob,
                tar,
            }
        })
        .collect()
}

/// How a blob of `media_type` is compressed, by its suffix.
pub fn compression_of(media_type: &str) -> Compress {
    if media_type.ends_with("gzip") {
        Compress::Gzip
    } else if media_type.ends_with("zstd") {
        Compress::Zstd
    } else {
        Compress::None
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
