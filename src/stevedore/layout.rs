//! An OCI image layout on disk: `oci-layout`, `blobs/<alg>/<hex>` where
//! tank puts only complete, verified blobs (partials wait in `ingest/`) and
//! uses one found there only once it checks out (a disk or a hand may have
//! changed it since), and `index.json`, replaced in one step under a lock
//! so that pulls into the same layout at once lose no entry. The paths,
//! the check and the atomic write are the store's ([`super::store`]).
//!
//! Everything here but [`Layout::add_image`] is blocking file work, for a
//! blocking thread; `add_image` runs its own there.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::blocking::blocking;
use super::cancel::Cancel;
use super::digest::Digest;
use super::error::{Error, Result};
use super::manifest::OCI_INDEX;
use super::store::lock::PathLock;
use super::store::verify::{verified_len, Links};
use super::store::{self, atomic};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, creating what is missing.
    pub fn open(root: &Path) -> Result<Layout> {
        let layout = Layout {
            root: root.to_path_buf(),
        };
        for dir in [
            root.to_path_buf(),
            store::ingest_dir(root),
            store::blobs_dir(root),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, &e))?;
        }
        // Checked now, so a pull into a layout it could not finish costs no
        // download; read again under the lock when the entry is added.
        layout.read_index()?;
        let marker = root.join("oci-layout");
        if !marker.is_file() {
            layout.replace(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(layout)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        store::blob_path(&self.root, digest)
    }

    /// Where a blob's partial and lock files live while it downloads:
    /// `ingest/<alg>-<hex>`, to which `.partial` and `.lock` are added.
    pub fn ingest_base(&self, digest: &Digest) -> PathBuf {
        store::ingest_base(&self.root, digest)
    }

    /// Creates `blobs/<alg>/` for a digest's algorithm.
    pub fn prepare_blob_dir(&self, digest: &Digest) -> Result<()> {
        let dir = store::blobs_of(&self.root, digest.algorithm());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, &e))
    }

    /// Puts `bytes`, already verified to be the blob `digest` (a
    /// manifest), into `blobs/`, unless the blob is there: anything else
    /// at its name (damaged, a link, no regular file, unreadable) is
    /// replaced.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest);
        let size = Some(bytes.len() as u64);
        if let Ok(Some(_)) = verified_len(&path, digest, size, Links::Refuse, None) {
            return Ok(());
        }
        self.prepare_blob_dir(digest)?;
        self.replace(&path, bytes)
    }

    /// Adds `manifest` to `index.json` under `name`, replacing an entry of
    /// that name and keeping every other. Cancellable while it waits for
    /// the index's lock; the rest runs on a blocking thread.
    pub async fn add_image(
        &self,
        name: &str,
        manifest: Value,
        cancel: Option<&Cancel>,
    ) -> Result<()> {
        let held = PathLock::acquire(self.root.join("index.json.lock"), cancel).await?;
        let (layout, name) = (self.clone(), name.to_owned());
        blocking(move || {
            let added = layout.add_entry(&name, manifest);
            drop(held);
            added
        })
        .await?
    }

    /// `index.json` with `manifest` under `name`; the caller holds the
    /// index's lock.
    fn add_entry(&self, name: &str, manifest: Value) -> Result<()> {
        let path = self.root.join("index.json");
        let mut index = self.read_index()?;
        index.insert("schemaVersion".into(), json!(2));
        index.insert("mediaType".into(), json!(OCI_INDEX));
        let mut entries = match index.remove("manifests") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        };
        entries.retain(|e| {
            e.pointer("/annotations/org.opencontainers.image.ref.name") != Some(&json!(name))
        });
        let mut entry = manifest;
        entry["annotations"] = json!({ REF_NAME: name, CONTAINERD_NAME: name });
        entries.push(entry);
        index.insert("manifests".into(), Value::Array(entries));
        let bytes = serde_json::to_vec(&index).expect("a JSON map serializes");
        self.replace(&path, &bytes)
    }

    /// `index.json` as it is now; empty when there is none yet.
    fn read_index(&self) -> Result<Map<String, Value>> {
        let path = self.root.join("index.json");
        match read_regular_file(&path) {
            Ok(bytes) => serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|e| {
                Error::bad_input(format!(
                    "{} is not an OCI image index ({e}); not overwriting it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
            Err(e) => Err(Error::io("reading", &path, &e)),
        }
    }

    /// `bytes` at `target`, atomically, through a file of its own in
    /// `ingest/`.
    fn replace(&self, target: &Path, bytes: &[u8]) -> Result<()> {
        atomic::write(&store::ingest_dir(&self.root).join("write"), bytes, target)
    }
}

/// The bytes of the regular file at `path`. Non-blocking: a FIFO there must
/// not hold the call until someone writes to it.
fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::digest::Algorithm;

    /// Two containers sharing a layout volume are both pid 1: a name made
    /// of the pid and a count is one the other writer may hold right now.
    #[test]
    fn another_writers_temp_file_is_neither_in_the_way_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open(dir.path()).unwrap();
        let ingest = dir.path().join("ingest");
        let theirs: Vec<PathBuf> = (0..4096)
            .map(|n| ingest.join(format!("write-{}-{n}", std::process::id())))
            .collect();
        for path in &theirs {
            std::fs::write(path, b"another writer's").unwrap();
        }
        for i in 0..16 {
            let bytes = format!("manifest {i}").into_bytes();
            let digest = Digest::of(Algorithm::Sha256, &bytes);
            layout.put_blob(&digest, &bytes).unwrap();
            assert_eq!(std::fs::read(layout.blob_path(&digest)).unwrap(), bytes);
        }
        for path in &theirs {
            assert_eq!(
                std::fs::read(path).unwrap(),
                b"another writer's",
                "{}",
                path.display()
            );
        }
        assert_eq!(
            std::fs::read_dir(&ingest).unwrap().count(),
            theirs.len(),
            "a temp file of ours left behind"
        );
    }
}
