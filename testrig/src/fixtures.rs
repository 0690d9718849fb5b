//! The images every registry gets: built once, in memory (or as generator
//! recipes for the big ones), with every digest the sha256 of the exact bytes
//! that will be pushed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::thread;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::generate::{random_bytes, GeneratedTar};
use crate::info::{ImageInfo, Images, IndexEntryInfo, IndexInfo};

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const IN_TOTO: &str = "application/vnd.in-toto+json";
const CREATED: &str = "2024-01-01T00:00:00Z";
const MIB: u64 = 1024 * 1024;

pub(crate) enum BlobData {
    Bytes(Vec<u8>),
    /// A generated benchmark layer, already on disk.
    File(PathBuf),
}

pub(crate) struct Blob {
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) data: BlobData,
}

impl Blob {
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&bytes),
            size: bytes.len() as u64,
            data: BlobData::Bytes(bytes),
        }
    }

    fn generated(recipe: &GeneratedTar, dir: &Path) -> Result<Blob> {
        let path = dir.join(format!("{}.tar", recipe.file_name));
        Ok(Blob {
            digest: recipe.write_to(&path)?,
            size: recipe.size(),
            data: BlobData::File(path),
        })
    }

    pub(crate) fn reader(&self) -> Result<Box<dyn Read + Send + '_>> {
        Ok(match &self.data {
            BlobData::Bytes(b) => Box::new(Cursor::new(b.as_slice())),
            BlobData::File(path) => {
                Box::new(File::open(path).with_context(|| format!("opening {}", path.display()))?)
            }
        })
    }
}

pub(crate) struct Manifest {
    /// Tag, or the digest for an index's children.
    pub(crate) reference: String,
    pub(crate) media_type: &'static str,
    pub(crate) digest: String,
    pub(crate) bytes: Vec<u8>,
}

/// Everything one repository receives, in push order.
pub(crate) struct RepoPlan {
    pub(crate) repo: String,
    pub(crate) blobs: Vec<Blob>,
    pub(crate) manifests: Vec<Manifest>,
}

pub(crate) struct Fixtures {
    pub(crate) repos: Vec<RepoPlan>,
    pub(crate) images: Images,
}

impl Fixtures {
    /// The four standard fixtures' repositories (not the benchmark ones).
    pub(crate) fn standard_repos(&self) -> [&str; 4] {
        let i = &self.images;
        [
            i.oci_image.repo.as_str(),
            i.oci_index.repo.as_str(),
            i.docker_image.repo.as_str(),
            i.docker_list.repo.as_str(),
        ]
    }
}

/// The private twin of a fixture's repository: `tank/x` → `private/x`.
pub(crate) fn private_repo(public: &str) -> String {
    let name = public.rsplit('/').next().unwrap_or(public);
    format!("{}{name}", crate::token::PRIVATE_PREFIX)
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Builds every fixture; `large_mib` and `many` add the benchmark images,
/// whose layers are generated into files under `scratch`.
pub(crate) fn build(
    large_mib: Option<u64>,
    many: Option<(usize, u64)>,
    scratch: &Path,
) -> Result<Fixtures> {
    let mut repos = Vec::new();

    let (plan, oci_image) = oci_image()?;
    repos.push(plan);
    let (plan, oci_index) = oci_index()?;
    repos.push(plan);
    let (plan, docker_image) = docker_image()?;
    repos.push(plan);
    let (plan, docker_list) = docker_list()?;
    repos.push(plan);

    let large = match large_mib {
        Some(mib) => {
            let recipe = GeneratedTar {
                file_name: "large.bin".into(),
                seed: 0x1a26e,
                content_len: mib * MIB,
            };
            let layer = Layer::generated(&recipe, scratch)?;
            let (plan, info) = single_image("tank/large", "v1", Kind::Oci, vec![layer])?;
            repos.push(plan);
            Some(info)
        }
        None => None,
    };
    let many = match many {
        Some((count, mib)) => {
            let recipes: Vec<GeneratedTar> = (0..count)
                .map(|i| GeneratedTar {
                    file_name: format!("layer-{i:04}.bin"),
                    seed: 0x3a27_0000 + i as u64,
                    content_len: mib * MIB,
                })
                .collect();
            let layers = generate_all(&recipes, scratch)?;
            let (plan, info) = single_image("tank/many", "v1", Kind::Oci, layers)?;
            repos.push(plan);
            Some(info)
        }
        None => None,
    };

    Ok(Fixtures {
        repos,
        images: Images {
            oci_image,
            oci_index,
            docker_image,
            docker_list,
            large,
            many,
        },
    })
}

/// Generates layers on two threads (the machine has two cores).
fn generate_all(recipes: &[GeneratedTar], dir: &Path) -> Result<Vec<Layer>> {
    let half = recipes.len().div_ceil(2).max(1);
    thread::scope(|s| {
        let handles: Vec<_> = recipes
            .chunks(half)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|r| Layer::generated(r, dir))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut layers = Vec::with_capacity(recipes.len());
        for h in handles {
            layers.extend(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a layer generator panicked"))??,
            );
        }
        Ok(layers)
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Oci,
    Docker,
}

impl Kind {
    fn manifest_type(self) -> &'static str {
        match self {
            Kind::Oci => OCI_MANIFEST,
            Kind::Docker => DOCKER_MANIFEST,
        }
    }

    fn config_type(self) -> &'static str {
        match self {
            Kind::Oci => OCI_CONFIG,
            Kind::Docker => DOCKER_CONFIG,
        }
    }

    fn gzip_layer_type(self) -> &'static str {
        match self {
            Kind::Oci => OCI_LAYER_GZIP,
            Kind::Docker => DOCKER_LAYER_GZIP,
        }
    }
}

struct Platform {
    os: &'static str,
    arch: &'static str,
    variant: Option<&'static str>,
}

impl Platform {
    const AMD64: Platform = Platform::new("linux", "amd64", None);

    const fn new(os: &'static str, arch: &'static str, variant: Option<&'static str>) -> Self {
        Platform { os, arch, variant }
    }

    fn name(&self) -> String {
        match self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.arch),
            None => format!("{}/{}", self.os, self.arch),
        }
    }

    fn json(&self) -> Value {
        let mut p = json!({"architecture": self.arch, "os": self.os});
        if let Some(v) = self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

struct Layer {
    blob: Blob,
    /// sha256 of the uncompressed tar, for the config's rootfs.
    diff_id: String,
    media_type: &'static str,
    annotations: Option<Value>,
}

impl Layer {
    fn tar(files: &[(&str, Vec<u8>)]) -> Result<Layer> {
        let tar = tar_archive(files)?;
        let diff_id = sha256(&tar);
        Ok(Layer {
            blob: Blob::from_bytes(tar),
            diff_id,
            media_type: OCI_LAYER,
            annotations: None,
        })
    }

    fn tar_gzip(files: &[(&str, Vec<u8>)], media_type: &'static str) -> Result<Layer> {
        let tar = tar_archive(files)?;
        let diff_id = sha256(&tar);
        Ok(Layer {
            blob: Blob::from_bytes(gzip(&tar)?),
            diff_id,
            media_type,
            annotations: None,
        })
    }

    fn generated(recipe: &GeneratedTar, dir: &Path) -> Result<Layer> {
        let blob = Blob::generated(recipe, dir)?;
        Ok(Layer {
            diff_id: blob.digest.clone(),
            blob,
            media_type: OCI_LAYER,
            annotations: None,
        })
    }

    fn descriptor(&self) -> Value {
        let mut d = descriptor(self.media_type, &self.blob);
        if let Some(a) = &self.annotations {
            d["annotations"] = a.clone();
        }
        d
    }
}

/// An image manifest with its blobs, before it is placed in a repository.
struct Image {
    manifest: Manifest,
    config: Blob,
    layers: Vec<Blob>,
}

impl Image {
    fn blob_sizes(&self, into: &mut BTreeMap<String, u64>) {
        into.insert(self.config.digest.clone(), self.config.size);
        for l in &self.layers {
            into.insert(l.digest.clone(), l.size);
        }
    }

    fn layer_digests(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.digest.clone()).collect()
    }

    fn into_blobs(self, blobs: &mut Vec<Blob>) -> Manifest {
        for b in std::iter::once(self.config).chain(self.layers) {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b);
            }
        }
        self.manifest
    }
}

fn descriptor(media_type: &str, blob: &Blob) -> Value {
    json!({"mediaType": media_type, "digest": blob.digest, "size": blob.size})
}

/// Pretty-printed, so a client that re-serialises instead of hashing the wire
/// bytes gets the digest wrong.
fn manifest_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).context("serialising a manifest")
}

fn image_config(platform: &Platform, title: &str, layers: &[Layer]) -> Value {
    let mut config = json!({
        "architecture": platform.arch,
        "os": platform.os,
        "created": CREATED,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.opencontainers.image.title": title},
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>(),
        },
        "history": layers.iter().enumerate().map(|(i, _)| json!({
            "created": CREATED,
            "created_by": format!("tank-testrig: {title} layer {i}"),
        })).collect::<Vec<_>>(),
    });
    if let Some(v) = platform.variant {
        config["variant"] = json!(v);
    }
    config
}

fn make_image(
    kind: Kind,
    reference: &str,
    config: Value,
    config_type: &str,
    layers: Vec<Layer>,
) -> Result<Image> {
    let config = Blob::from_bytes(serde_json::to_vec(&config).context("serialising a config")?);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": kind.manifest_type(),
        "config": descriptor(config_type, &config),
        "layers": layers.iter().map(Layer::descriptor).collect::<Vec<_>>(),
    });
    let bytes = manifest_bytes(&manifest)?;
    let digest = sha256(&bytes);
    Ok(Image {
        manifest: Manifest {
            reference: if reference.is_empty() {
                digest.clone()
            } else {
                reference.to_owned()
            },
            media_type: kind.manifest_type(),
            digest,
            bytes,
        },
        config,
        layers: layers.into_iter().map(|l| l.blob).collect(),
    })
}

fn platform_image(
    kind: Kind,
    reference: &str,
    title: &str,
    platform: &Platform,
    layers: Vec<Layer>,
) -> Result<Image> {
    let config = image_config(platform, title, &layers);
    make_image(kind, reference, config, kind.config_type(), layers)
}

fn single_image(
    repo: &str,
    tag: &str,
    kind: Kind,
    layers: Vec<Layer>,
) -> Result<(RepoPlan, ImageInfo)> {
    let image = platform_image(kind, tag, repo, &Platform::AMD64, layers)?;
    let mut blob_sizes = BTreeMap::new();
    image.blob_sizes(&mut blob_sizes);
    let info = ImageInfo {
        repo: repo.to_owned(),
        tag: tag.to_owned(),
        digest: image.manifest.digest.clone(),
        media_type: kind.manifest_type().to_owned(),
        size: image.manifest.bytes.len() as u64,
        config: image.config.digest.clone(),
        layers: image.layer_digests(),
        blob_sizes,
    };
    let mut blobs = Vec::new();
    let manifest = image.into_blobs(&mut blobs);
    Ok((
        RepoPlan {
            repo: repo.to_owned(),
            blobs,
            manifests: vec![manifest],
        },
        info,
    ))
}

/// Small files with some incompressible bulk so layers span several reads.
fn layer_files(title: &str, platform: &str, i: usize, bulk: usize) -> Vec<(&'static str, Vec<u8>)> {
    let seed = fnv1a(&format!("{title}|{platform}|{i}"));
    vec![
        (
            "etc/tank-release",
            format!("{title} {platform} layer {i}\n").into_bytes(),
        ),
        ("usr/share/tank/bulk.bin", random_bytes(seed, bulk)),
    ]
}

fn oci_image() -> Result<(RepoPlan, ImageInfo)> {
    let title = "tank/oci-image";
    let p = "linux/amd64";
    let layers = vec![
        Layer::tar(&layer_files(title, p, 0, 10 * 1024))?,
        Layer::tar_gzip(&layer_files(title, p, 1, 100 * 1024), OCI_LAYER_GZIP)?,
        Layer::tar(&[
            // A whiteout, as a real upper layer would have.
            ("usr/share/tank/.wh.bulk.bin", Vec::new()),
            (
                "opt/tank/data.bin",
                random_bytes(fnv1a("oci-image|2"), 300 * 1024),
            ),
        ])?,
    ];
    single_image(title, "v1", Kind::Oci, layers)
}

fn docker_image() -> Result<(RepoPlan, ImageInfo)> {
    let title = "tank/docker-image";
    let p = "linux/amd64";
    let layers = (0..2)
        .map(|i| Layer::tar_gzip(&layer_files(title, p, i, 20 * 1024), DOCKER_LAYER_GZIP))
        .collect::<Result<Vec<_>>>()?;
    single_image(title, "v1", Kind::Docker, layers)
}

/// One child of an index: its descriptor and what the info reports.
struct Child {
    image: Image,
    platform: Platform,
    annotations: Option<Value>,
}

fn index(
    repo: &str,
    tag: &str,
    media_type: &'static str,
    child_type: &'static str,
    children: Vec<Child>,
) -> Result<(RepoPlan, IndexInfo)> {
    let mut entries = Vec::new();
    let mut descriptors = Vec::new();
    let mut blob_sizes = BTreeMap::new();
    for c in &children {
        let m = &c.image.manifest;
        let mut d = json!({
            "mediaType": child_type,
            "digest": m.digest,
            "size": m.bytes.len(),
            "platform": c.platform.json(),
        });
        if let Some(a) = &c.annotations {
            d["annotations"] = a.clone();
        }
        descriptors.push(d);
        c.image.blob_sizes(&mut blob_sizes);
        entries.push(IndexEntryInfo {
            platform: c.platform.name(),
            digest: m.digest.clone(),
            media_type: child_type.to_owned(),
            size: m.bytes.len() as u64,
            config: c.image.config.digest.clone(),
            layers: c.image.layer_digests(),
        });
    }
    let bytes = manifest_bytes(&json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": descriptors,
    }))?;
    let digest = sha256(&bytes);
    let info = IndexInfo {
        repo: repo.to_owned(),
        tag: tag.to_owned(),
        digest: digest.clone(),
        media_type: media_type.to_owned(),
        size: bytes.len() as u64,
        manifests: entries,
        blob_sizes,
    };
    let mut blobs = Vec::new();
    let mut manifests: Vec<Manifest> = children
        .into_iter()
        .map(|c| c.image.into_blobs(&mut blobs))
        .collect();
    manifests.push(Manifest {
        reference: tag.to_owned(),
        media_type,
        digest,
        bytes,
    });
    Ok((
        RepoPlan {
            repo: repo.to_owned(),
            blobs,
            manifests,
        },
        info,
    ))
}

fn oci_index() -> Result<(RepoPlan, IndexInfo)> {
    let title = "tank/multiarch";
    let platforms = [
        Platform::AMD64,
        Platform::new("linux", "arm64", Some("v8")),
        Platform::new("linux", "arm", Some("v7")),
    ];
    let mut children = Vec::new();
    for platform in platforms {
        let name = platform.name();
        let layers = vec![
            Layer::tar_gzip(&layer_files(title, &name, 0, 8 * 1024), OCI_LAYER_GZIP)?,
            Layer::tar_gzip(&layer_files(title, &name, 1, 16 * 1024), OCI_LAYER_GZIP)?,
        ];
        let image = platform_image(Kind::Oci, "", title, &platform, layers)?;
        children.push(Child {
            image,
            platform,
            annotations: None,
        });
    }
    let attested = children[0].image.manifest.digest.clone();
    children.push(Child {
        image: attestation(&attested)?,
        platform: Platform::new("unknown", "unknown", None),
        annotations: Some(json!({
            "vnd.docker.reference.digest": attested,
            "vnd.docker.reference.type": "attestation-manifest",
        })),
    });
    index(title, "latest", OCI_INDEX, OCI_MANIFEST, children)
}

/// Shaped like BuildKit's SBOM attestation: an OCI manifest whose one layer is
/// an in-toto statement about the image it is attached to.
fn attestation(subject_digest: &str) -> Result<Image> {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{
            "name": "pkg:docker/tank/multiarch@latest?platform=linux%2Famd64",
            "digest": {"sha256": subject_digest.trim_start_matches("sha256:")},
        }],
        "predicate": {"spdxVersion": "SPDX-2.3", "name": "tank-testrig", "packages": []},
    });
    let bytes = serde_json::to_vec(&statement).context("serialising an in-toto statement")?;
    let layer = Layer {
        diff_id: sha256(&bytes),
        blob: Blob::from_bytes(bytes),
        media_type: IN_TOTO,
        annotations: Some(json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"})),
    };
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
    });
    make_image(Kind::Oci, "", config, OCI_CONFIG, vec![layer])
}

fn docker_list() -> Result<(RepoPlan, IndexInfo)> {
    let title = "tank/docker-list";
    let platforms = [Platform::AMD64, Platform::new("linux", "arm64", Some("v8"))];
    let mut children = Vec::new();
    for platform in platforms {
        let name = platform.name();
        let layers = (0..2)
            .map(|i| {
                Layer::tar_gzip(
                    &layer_files(title, &name, i, 12 * 1024),
                    Kind::Docker.gzip_layer_type(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let image = platform_image(Kind::Docker, "", title, &platform, layers)?;
        children.push(Child {
            image,
            platform,
            annotations: None,
        });
    }
    index(title, "latest", DOCKER_LIST, DOCKER_MANIFEST, children)
}

/// A deterministic tar (fixed mtime, owner and modes) with parent directories.
fn tar_archive(files: &[(&str, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (path, content) in files {
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, d)| d)
        {
            parent.push_str(part);
            parent.push('/');
            if !dirs.contains(&parent) {
                dirs.push(parent.clone());
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(0);
                builder
                    .append_data(&mut h, &parent, std::io::empty())
                    .with_context(|| format!("adding directory {parent} to a tar layer"))?;
            }
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_mtime(0);
        builder
            .append_data(&mut h, path, content.as_slice())
            .with_context(|| format!("adding {path} to a tar layer"))?;
    }
    builder.into_inner().context("finishing a tar layer")
}

/// gzip with a zero mtime in the header, so the bytes are the same every run.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).context("gzipping a layer")?;
    encoder.finish().context("gzipping a layer")
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_deterministic_and_consistent() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let a = build(None, Some((2, 1)), dir_a.path()).unwrap();
        let b = build(None, Some((2, 1)), dir_b.path()).unwrap();
        assert_eq!(a.images, b.images);
        for plan in &a.repos {
            for blob in &plan.blobs {
                let bytes = match &blob.data {
                    BlobData::Bytes(bytes) => bytes.clone(),
                    BlobData::File(path) => std::fs::read(path).unwrap(),
                };
                assert_eq!(sha256(&bytes), blob.digest);
                assert_eq!(bytes.len() as u64, blob.size);
            }
            for m in &plan.manifests {
                assert_eq!(sha256(&m.bytes), m.digest);
            }
        }
        let index = &a.images.oci_index;
        let platforms: Vec<_> = index
            .manifests
            .iter()
            .map(|m| m.platform.as_str())
            .collect();
        assert_eq!(
            platforms,
            [
                "linux/amd64",
                "linux/arm64/v8",
                "linux/arm/v7",
                "unknown/unknown"
            ]
        );
        assert_eq!(a.images.many.as_ref().unwrap().layers.len(), 2);
    }
}
