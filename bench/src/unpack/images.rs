//! The two images of the unpack rows, built at bench time into one OCI
//! layout: `small` (a real tree of this machine in 3 layers: many small
//! files, symlinks, hardlinks) and `mixed` (one layer of mixed files), each
//! with gzip and with zstd layers. GNU tar makes the tars; `gzip -n` and
//! `zstd` compress them; the digests and diff_ids are computed here.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::mixed;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compression {
    Gzip,
    Zstd,
}

impl Compression {
    pub const BOTH: [Compression; 2] = [Compression::Gzip, Compression::Zstd];

    /// The command-line tool, and the worker's name for the crate.
    pub fn tool(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub fn crate_name(self) -> &'static str {
        match self {
            Compression::Gzip => "flate2 (zlib-rs)",
            Compression::Zstd => "zstd crate",
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    fn compress_args(self) -> &'static [&'static str] {
        match self {
            // -n: no name or time in the header, so a rebuild is the same.
            Compression::Gzip => &["-n", "-c"],
            Compression::Zstd => &["-q", "-c"],
        }
    }
}

/// What GNU tar's listing of a layer shows.
#[derive(Default, Clone, Copy)]
pub struct Entries {
    pub all: usize,
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub hardlinks: usize,
}

impl Entries {
    fn add(&mut self, o: Entries) {
        self.all += o.all;
        self.files += o.files;
        self.dirs += o.dirs;
        self.symlinks += o.symlinks;
        self.hardlinks += o.hardlinks;
    }
}

/// One image (`small` or `mixed`) as built: its tars' shape, and its layer
/// blobs per compression.
pub struct Image {
    pub name: &'static str,
    pub title: String,
    pub entries: Entries,
    /// Uncompressed bytes of all its tars.
    pub tar_bytes: u64,
    pub variants: Vec<Variant>,
}

/// One image with one compression: its ref name in the layout (what
/// umoci and tank_unpack are given) and its layer blobs, bottom first.
pub struct Variant {
    pub compression: Compression,
    pub ref_name: String,
    pub layers: Vec<PathBuf>,
    pub compressed_bytes: u64,
    pub manifest_digest: String,
}

pub struct Layout {
    pub dir: PathBuf,
    pub images: Vec<Image>,
}

/// Builds both images into `work/layout`, using `work` for the trees and
/// tars on the way (removed as soon as they are compressed).
pub fn build(work: &Path, mixed_mib: u64) -> Result<Layout> {
    let dir = work.join("layout");
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;

    let mut index = Vec::new();
    let small = small_image(work, &dir, &mut index)?;
    let mixed = mixed_image(work, &dir, mixed_mib, &mut index)?;
    let index = serde_json::json!({"schemaVersion": 2, "manifests": index});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(Layout {
        dir,
        images: vec![small, mixed],
    })
}

/// Trees of this machine with many small files, symlinks (man pages,
/// icons, zoneinfo) and hardlinks (git's programs, Mesa's drivers), in 3
/// layers; each layer also lists the parent directories of its trees, as
/// image builders' layers do. Paths that this machine lacks are left out.
const SMALL_LAYERS: [&[&str]; 3] = [
    &[
        "usr/share/man",
        "usr/share/icons",
        "usr/share/zoneinfo",
        "usr/share/vim",
        "usr/share/perl",
    ],
    &[
        "usr/share/go-1.19",
        "usr/share/doc",
        "usr/share/i18n",
        "usr/share/mime",
    ],
    &[
        "usr/lib/python3",
        "usr/lib/python3.11",
        "usr/local/libexec/git-core",
        "usr/lib/x86_64-linux-gnu/dri",
    ],
];

fn small_image(work: &Path, layout: &Path, index: &mut Vec<serde_json::Value>) -> Result<Image> {
    let mut tars = Vec::new();
    for (i, trees) in SMALL_LAYERS.iter().enumerate() {
        let present: Vec<&str> = trees
            .iter()
            .copied()
            .filter(|t| Path::new("/").join(t).exists())
            .collect();
        if present.is_empty() {
            bail!("none of {trees:?} exists on this machine: the small-files image needs them");
        }
        let tar = work.join(format!("small-{i}.tar"));
        let mut parents: Vec<String> = present
            .iter()
            .flat_map(|t| {
                Path::new(t)
                    .ancestors()
                    .skip(1)
                    .filter(|a| !a.as_os_str().is_empty())
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        parents.sort();
        parents.dedup();
        crate::measure::run_quiet(
            Command::new("tar")
                .args(["-C", "/", "--sort=name", "--numeric-owner", "-cf"])
                .arg(&tar)
                .arg("--no-recursion")
                .args(&parents)
                .arg("--recursion")
                .args(&present),
        )?;
        tars.push(tar);
    }
    let title = format!(
        "small: {} of this machine",
        SMALL_LAYERS
            .iter()
            .map(|l| l.join(" "))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    image_from_tars("small", title, &tars, layout, index)
}

fn mixed_image(
    work: &Path,
    layout: &Path,
    mib: u64,
    index: &mut Vec<serde_json::Value>,
) -> Result<Image> {
    let tree = work.join("mixed-tree");
    let _remove = crate::measure::Scratch(tree.clone());
    let mix = mixed::write_tree(&tree, mib << 20)?;
    let mut tops: Vec<String> = std::fs::read_dir(&tree)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    tops.sort();
    let tar = work.join("mixed.tar");
    crate::measure::run_quiet(
        Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .args(["--sort=name", "--numeric-owner", "-cf"])
            .arg(&tar)
            .args(&tops),
    )?;
    drop(_remove);
    let pct = |n: u64| 100.0 * n as f64 / mix.bytes() as f64;
    let title = format!(
        "mixed: one layer, {} files of 1 KiB to {} MiB ({:.0} % random, {:.0} % text, {:.0} % zeros by bytes) and {} links",
        mix.files,
        mixed::largest(mib << 20) >> 20,
        pct(mix.random),
        pct(mix.text),
        pct(mix.zeros),
        mix.links
    );
    image_from_tars("mixed", title, &[tar], layout, index)
}

/// Compresses each tar both ways into the layout's blobs (then removes the
/// tar), and writes one config and a manifest per compression, named
/// `NAME-gzip` and `NAME-zstd` in `index`.
fn image_from_tars(
    name: &'static str,
    title: String,
    tars: &[PathBuf],
    layout: &Path,
    index: &mut Vec<serde_json::Value>,
) -> Result<Image> {
    let blobs = layout.join("blobs/sha256");
    let mut entries = Entries::default();
    let mut tar_bytes = 0;
    let mut diff_ids = Vec::new();
    // Per compression: (digest, size, path) of each layer.
    let mut layers: Vec<Vec<(String, u64, PathBuf)>> = vec![Vec::new(), Vec::new()];
    for tar in tars {
        entries.add(list(tar)?);
        tar_bytes += std::fs::metadata(tar)?.len();
        diff_ids.push(sha256_file(tar)?);
        let outs: Vec<PathBuf> = Compression::BOTH
            .iter()
            .map(|c| tar.with_extension(c.tool()))
            .collect();
        // Both at once: the machine has two cores.
        let children = Compression::BOTH
            .iter()
            .zip(&outs)
            .map(|(c, out)| {
                Command::new(c.tool())
                    .args(c.compress_args())
                    .stdin(File::open(tar)?)
                    .stdout(File::create(out)?)
                    .spawn()
                    .with_context(|| format!("{} is missing: apt-get install {0}", c.tool()))
            })
            .collect::<Result<Vec<_>>>()?;
        for (mut child, c) in children.into_iter().zip(Compression::BOTH) {
            let status = child.wait()?;
            if !status.success() {
                bail!("{} of {} failed: {status}", c.tool(), tar.display());
            }
        }
        std::fs::remove_file(tar)?;
        for (i, out) in outs.iter().enumerate() {
            let digest = sha256_file(out)?;
            let size = std::fs::metadata(out)?.len();
            let blob = blobs.join(digest.trim_start_matches("sha256:"));
            std::fs::rename(out, &blob)?;
            layers[i].push((digest, size, blob));
        }
    }
    let config = serde_json::json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let (config_digest, config_size) = write_blob(&blobs, &serde_json::to_vec(&config)?)?;
    let mut variants = Vec::new();
    for (c, layers) in Compression::BOTH.into_iter().zip(layers) {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config_size,
            },
            "layers": layers.iter().map(|(d, s, _)| serde_json::json!({
                "mediaType": c.media_type(),
                "digest": d,
                "size": s,
            })).collect::<Vec<_>>(),
        });
        let (digest, size) = write_blob(&blobs, &serde_json::to_vec(&manifest)?)?;
        let ref_name = format!("{name}-{}", c.tool());
        index.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": ref_name},
        }));
        variants.push(Variant {
            compression: c,
            ref_name,
            compressed_bytes: layers.iter().map(|l| l.1).sum(),
            layers: layers.into_iter().map(|l| l.2).collect(),
            manifest_digest: digest,
        });
    }
    Ok(Image {
        name,
        title,
        entries,
        tar_bytes,
        variants,
    })
}

/// Counts a tar's entries by type from `tar -tvf` (`h` marks a hardlink).
fn list(tar: &Path) -> Result<Entries> {
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(tar)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("tar -tvf {} failed", tar.display());
    }
    let mut e = Entries::default();
    for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        e.all += 1;
        match line[0] {
            b'-' => e.files += 1,
            b'd' => e.dirs += 1,
            b'l' => e.symlinks += 1,
            b'h' => e.hardlinks += 1,
            _ => {}
        }
    }
    Ok(e)
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes)?;
    Ok((digest, bytes.len() as u64))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| path.display().to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut h = Sha256::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The config's architecture, as GOARCH names it (what tank_pull and umoci
/// compare with this host).
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
