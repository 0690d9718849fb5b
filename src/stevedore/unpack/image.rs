//! Finds an image in an OCI layout and pairs its layers with the config's
//! diff_ids.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{Map, Value};

use super::media::{self, Compression};
use crate::stevedore::artifact::EMPTY_CONFIG;
use crate::stevedore::digest::Digest;
use crate::stevedore::error::{Error, ErrorKind, Reason, Result};
use crate::stevedore::manifest::MAX_LAYERS;
use crate::stevedore::manifest::{self, Manifest, MAX_MANIFEST_BYTES};
use crate::stevedore::reference::ImageRef;
use crate::stevedore::store;

/// The most `index.json` may hold: as much as a manifest (thousands of
/// entries), never a file that fills memory.
const MAX_INDEX_BYTES: u64 = 4 << 20;
/// The most an image config may hold. Real ones are kilobytes; their
/// history of a thousand layers stays well under this.
pub(crate) const MAX_CONFIG_BYTES: u64 = 16 << 20;
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One layer as an unpack applies it: the manifest's descriptor, paired
/// with the config's `rootfs.diff_ids` entry of the same position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPlan {
    /// 1 for the bottom layer: how messages name it.
    pub position: usize,
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub media_type: String,
    pub compression: Compression,
}

/// An image found in a layout: its manifest (verified), and its layers
/// paired with the config's diff_ids.
pub struct Image {
    pub manifest: Manifest,
    pub layers: Vec<LayerPlan>,
}

/// The layers of `manifest`, bottom first, with the diff_ids of `config`
/// (its bytes, already verified). Every media type is checked before any
/// layer is applied (`unsupported_media_type`); diff_ids that do not pair
/// with the layers are `bad_layer`.
pub fn plan(manifest: &Manifest, config: &[u8]) -> Result<Vec<LayerPlan>> {
    let compressions = check_layers(manifest)?;
    let diff_ids = diff_ids(config)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(Error::layer(
            Reason::BadLayer,
            format!(
                "the config's rootfs.diff_ids has {} entries for the manifest's {} layers",
                diff_ids.len(),
                manifest.layers.len()
            ),
        ));
    }
    manifest
        .layers
        .iter()
        .zip(compressions)
        .zip(diff_ids)
        .enumerate()
        .map(|(i, ((layer, compression), diff_id))| {
            Ok(LayerPlan {
                position: i + 1,
                digest: layer_digest(i + 1, &layer.digest)?,
                size: layer.size,
                diff_id,
                media_type: layer.media_type.clone(),
                compression,
            })
        })
        .collect()
}

/// What can be judged of the layers from the manifest alone, before any
/// blob is read or fetched: their number, their digests and their media
/// types. Returns each layer's compression.
pub fn check_layers(manifest: &Manifest) -> Result<Vec<Compression>> {
    // An artifact's empty config has no diff_ids: whatever its layers are,
    // there is no root filesystem in it.
    if manifest
        .config
        .as_ref()
        .is_some_and(|c| manifest::essence(&c.media_type) == EMPTY_CONFIG)
    {
        return Err(Error::layer(
            Reason::UnsupportedMediaType,
            format!(
                "the manifest is an OCI artifact ({}) with the empty config {EMPTY_CONFIG}, not an image: it has no root filesystem to unpack",
                manifest.kind_of_artifact().unwrap_or(EMPTY_CONFIG)
            ),
        ));
    }
    if manifest.layers.len() > MAX_LAYERS {
        return Err(Error::bad_input(format!(
            "the image has {} layers; tank unpacks images of at most {MAX_LAYERS}",
            manifest.layers.len()
        )));
    }
    manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, layer)| {
            layer_digest(i + 1, &layer.digest)?;
            media::compression(&layer.media_type).map_err(|e| Error {
                message: format!("layer {}: {}", i + 1, e.message),
                ..e
            })
        })
        .collect()
}

fn layer_digest(position: usize, digest: &str) -> Result<Digest> {
    Digest::parse(digest).map_err(|e| {
        Error::layer(
            Reason::BadLayer,
            format!("layer {position}: the manifest's digest {}", e.0),
        )
    })
}

/// The config's `rootfs.diff_ids`, each a digest.
fn diff_ids(config: &[u8]) -> Result<Vec<Digest>> {
    let bad = |why: String| Error::layer(Reason::BadLayer, format!("the image config {why}"));
    let json: Value =
        serde_json::from_slice(config).map_err(|e| bad(format!("is not valid JSON: {e}")))?;
    let ids = json
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no rootfs.diff_ids list".into()))?;
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let text = id
                .as_str()
                .ok_or_else(|| bad(format!("rootfs.diff_ids[{i}] is not a string")))?;
            Digest::parse(text).map_err(|e| bad(format!("rootfs.diff_ids[{i}]: {}", e.0)))
        })
        .collect()
}

/// The image `image` of the layout at `layout`, its manifest and config
/// read and verified, its layers planned. Blocks (file reads).
pub fn find(layout: &Path, image: &str) -> Result<Image> {
    let index_path = layout.join("index.json");
    let index = read_bounded(&index_path, MAX_INDEX_BYTES)?;
    let index: Map<String, Value> = serde_json::from_slice(&index).map_err(|e| {
        Error::bad_input(format!(
            "{} is not an OCI image index: {e}",
            index_path.display()
        ))
    })?;
    let entries: Vec<Entry> = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Entry::of).collect())
        .unwrap_or_default();
    let entry = choose(&entries, image).ok_or_else(|| {
        Error::bad_input(format!(
            "{}: no image {image:?}; {}",
            layout.display(),
            names(&entries)
        ))
    })?;
    if !is_image_manifest(&entry.media_type) {
        return Err(Error::bad_input(format!(
            "{}: {image:?} is a {} ({}), not an image manifest; {}",
            layout.display(),
            what_type(&entry.media_type),
            entry.digest,
            names(&entries)
        )));
    }
    let digest = Digest::parse(&entry.digest).map_err(|e| {
        Error::bad_input(format!(
            "{}: the entry for {image:?} has the digest {}",
            index_path.display(),
            e.0
        ))
    })?;
    let raw = read_blob(layout, &digest, MAX_MANIFEST_BYTES)?;
    let manifest = parse_manifest(raw, digest, &entry.media_type)?;
    let Some(config) = &manifest.config else {
        return Err(Error::bad_input(format!(
            "{}: {image:?} ({}) is not an image manifest (it has no config); {}",
            layout.display(),
            manifest.digest,
            names(&entries)
        )));
    };
    // Media types first: an image tank cannot apply costs no config read.
    check_layers(&manifest)?;
    let config_digest = Digest::parse(&config.digest).map_err(|e| {
        Error::layer(
            Reason::BadLayer,
            format!("the manifest's config digest {}", e.0),
        )
    })?;
    let config = read_blob(layout, &config_digest, MAX_CONFIG_BYTES)?;
    let layers = plan(&manifest, &config)?;
    Ok(Image { manifest, layers })
}

/// One `index.json` entry, as far as finding an image needs.
struct Entry {
    media_type: String,
    digest: String,
    name: Option<String>,
}

impl Entry {
    fn of(v: &Value) -> Option<Entry> {
        let d = manifest::descriptor(v)?;
        let name = v
            .pointer("/annotations")
            .and_then(|a| a.get(REF_NAME))
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Entry {
            media_type: d.media_type,
            digest: d.digest,
            name,
        })
    }
}

/// The entry `image` names: a ref name exactly as written; else one whose
/// name normalizes as `image` does ("alpine" =
/// "docker.io/library/alpine:latest"); else the digest of an entry.
fn choose<'a>(entries: &'a [Entry], image: &str) -> Option<&'a Entry> {
    if let Some(e) = entries.iter().find(|e| e.name.as_deref() == Some(image)) {
        return Some(e);
    }
    if let Some(wanted) = normalized(image) {
        let found = entries.iter().find(|e| {
            e.name
                .as_deref()
                .is_some_and(|n| n == wanted || normalized(n).as_deref() == Some(&wanted))
        });
        if found.is_some() {
            return found;
        }
    }
    entries.iter().find(|e| e.digest == image)
}

fn normalized(name: &str) -> Option<String> {
    ImageRef::parse(name).ok().map(|r| r.name)
}

/// "the layout has: a, b (sha256:…)" for messages.
fn names(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "the layout has no images".into();
    }
    let listed: Vec<String> = entries
        .iter()
        .map(|e| match &e.name {
            Some(n) => format!("{n} ({})", e.digest),
            None => e.digest.clone(),
        })
        .collect();
    format!("the layout has: {}", listed.join(", "))
}

fn is_image_manifest(media_type: &str) -> bool {
    let t = manifest::essence(media_type);
    // An entry without a type is judged by the manifest it points at.
    t.is_empty() || t == manifest::OCI_MANIFEST || t == manifest::DOCKER_MANIFEST
}

fn what_type(media_type: &str) -> &'static str {
    let t = manifest::essence(media_type);
    if t == manifest::OCI_INDEX || t == manifest::DOCKER_MANIFEST_LIST {
        "an index"
    } else {
        "not an image manifest"
    }
}

/// The stored manifest as the pull core's `Manifest`.
fn parse_manifest(raw: Vec<u8>, digest: Digest, entry_type: &str) -> Result<Manifest> {
    let json = match serde_json::from_slice::<Value>(&raw) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(Error::bad_input(format!(
                "the manifest {digest} in the layout is not a JSON object"
            )))
        }
    };
    let media_type = json
        .get("mediaType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| match entry_type {
            "" => manifest::OCI_MANIFEST.to_owned(),
            t => t.to_owned(),
        });
    let is_index = !is_image_manifest(&media_type) || json.contains_key("manifests");
    if is_index && !json.contains_key("config") {
        return Err(Error::bad_input(format!(
            "the manifest {digest} in the layout is {}, not an image manifest",
            what_type(&media_type)
        )));
    }
    Ok(Manifest {
        media_type,
        digest,
        config: json.get("config").and_then(manifest::descriptor),
        layers: manifest::descriptors(json.get("layers")),
        manifests: manifest::descriptors(json.get("manifests")),
        json,
        raw,
    })
}

/// A blob of at most `limit` bytes, checked against its digest.
pub fn read_blob(layout: &Path, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
    read_verified(&store::blob_path(layout, digest), digest, limit)
}

/// The file at `path`, of at most `limit` bytes, checked against `digest`.
pub fn read_verified(path: &Path, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
    let bytes = read_bounded(path, limit)?;
    let actual = Digest::of(digest.algorithm(), &bytes);
    if actual != *digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            Reason::DigestMismatch,
            format!("{} hashes to {actual}, not {digest}", path.display()),
        ));
    }
    Ok(bytes)
}

/// Opens a file of the layout for reading: never through a symlink at its
/// name, never waiting on a FIFO, and only a regular file.
pub fn open_regular(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io("opening", path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading", path, &e))?;
    if !meta.is_file() {
        return Err(Error::io(
            "reading",
            path,
            &std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    Ok(file)
}

/// The bytes of the regular file at `path`, refused past `limit`.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, &e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::bad_input(format!(
            "{} is larger than the {limit} bytes tank reads of it",
            path.display()
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: Option<&str>, digest: &str) -> Entry {
        Entry {
            media_type: manifest::OCI_MANIFEST.into(),
            digest: digest.into(),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn an_image_is_found_by_its_name_as_written_then_normalized_then_by_digest() {
        let entries = [
            entry(Some("docker.io/library/alpine:latest"), "sha256:aa"),
            entry(Some("v1"), "sha256:bb"),
            entry(Some("localhost:5000/x:1"), "sha256:cc"),
            entry(None, "sha256:dd"),
        ];
        let found = |image: &str| choose(&entries, image).map(|e| e.digest.as_str());
        assert_eq!(found("docker.io/library/alpine:latest"), Some("sha256:aa"));
        assert_eq!(found("alpine"), Some("sha256:aa"));
        assert_eq!(found("library/alpine:latest"), Some("sha256:aa"));
        // Exactly as written comes first: a skopeo name is not normalized.
        assert_eq!(found("v1"), Some("sha256:bb"));
        assert_eq!(found("docker.io/library/v1:latest"), Some("sha256:bb"));
        assert_eq!(found("localhost:5000/x:1"), Some("sha256:cc"));
        assert_eq!(found("sha256:dd"), Some("sha256:dd"));
        assert_eq!(found("alpine:3"), None);
        assert_eq!(found("localhost:5000/x"), None);
    }

    #[test]
    fn the_names_a_layout_has_are_listed() {
        let entries = [entry(Some("a:1"), "sha256:aa"), entry(None, "sha256:bb")];
        assert_eq!(
            names(&entries),
            "the layout has: a:1 (sha256:aa), sha256:bb"
        );
        assert_eq!(names(&[]), "the layout has no images");
    }
}
