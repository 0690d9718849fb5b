//! An OCI image layout on disk: `oci-layout`, `blobs/<alg>/<hex>` where
//! tank puts only complete, verified blobs (partials wait in `ingest/`) and
//! uses one found there only once it checks out (a disk or a hand may have
//! changed it since), and `index.json`, replaced in one step under a lock
//! so that pulls into the same layout at once lose no entry.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::cancel::Cancel;
use super::digest::Digest;
use super::error::{Error, Result};
use super::lock::PathLock;
use super::private_file;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens the layout at `root`, creating what is missing.
    pub fn open(root: &Path) -> Result<Layout> {
        let layout = Layout {
            root: root.to_path_buf(),
        };
        for dir in [root.to_path_buf(), layout.ingest_dir(), root.join("blobs")] {
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

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// Where a blob's partial and lock files live while it downloads:
    /// `ingest/<alg>-<hex>`, to which `.partial` and `.lock` are added.
    pub fn ingest_base(&self, digest: &Digest) -> PathBuf {
        self.ingest_dir()
            .join(format!("{}-{}", digest.algorithm().name(), digest.hex()))
    }

    /// Creates `blobs/<alg>/` for a digest's algorithm.
    pub fn prepare_blob_dir(&self, digest: &Digest) -> Result<()> {
        let dir = self.root.join("blobs").join(digest.algorithm().name());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, &e))
    }

    /// Puts bytes already verified (a manifest) into `blobs/`, unless the
    /// file there holds exactly them: one that does not (damaged, or no
    /// regular file) is replaced.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        let path = self.blob_path(digest);
        if holds(&path, bytes) {
            return Ok(());
        }
        self.prepare_blob_dir(digest)?;
        self.replace(&path, bytes)
    }

    /// Adds `manifest` to `index.json` under `name`, replacing an entry of
    /// that name and keeping every other.
    pub async fn add_image(
        &self,
        name: &str,
        manifest: Value,
        cancel: Option<&Cancel>,
    ) -> Result<()> {
        let path = self.root.join("index.json");
        let _held = PathLock::acquire(self.root.join("index.json.lock"), cancel).await?;
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

    /// Writes `bytes` to a file of its own in `ingest/`, flushes it, renames
    /// it over `target` and flushes the directory: a reader (or a crash)
    /// sees the old file or the new one, never a part.
    fn replace(&self, target: &Path, bytes: &[u8]) -> Result<()> {
        // Not private: what is renamed into place is read by others too.
        let base = self.ingest_dir().join("write");
        let (mut file, temp) = private_file::create_unique(&base, 0o666)
            .map_err(|e| Error::io("creating a file in", &self.ingest_dir(), &e))?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("writing", &temp, &e))
            .and_then(|()| {
                std::fs::rename(&temp, target)
                    .map_err(|e| Error::io("renaming a file to", target, &e))
            });
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written?;
        let dir = target.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("flushing the directory", dir, &e))
    }
}

/// Whether `path` is a regular file holding exactly `bytes`; read through
/// no symlink, and never waiting on a FIFO planted there.
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

fn holds(path: &Path, bytes: &[u8]) -> bool {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    if !file
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64)
    {
        return false;
    }
    let mut held = Vec::with_capacity(bytes.len());
    file.take(bytes.len() as u64 + 1)
        .read_to_end(&mut held)
        .is_ok_and(|_| held == bytes)
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
