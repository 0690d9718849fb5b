//! An OCI image layout on disk: `oci-layout`, `blobs/<alg>/<hex>` holding
//! only complete, verified blobs (partials wait in `ingest/`), and
//! `index.json`, replaced in one step under a lock so that pulls into the
//! same layout at once lose no entry.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::cancel::Cancel;
use super::digest::Digest;
use super::error::{Error, Result};
use super::lock::PathLock;

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

    /// A blob is present when `blobs/` holds a file of its size: only
    /// verified blobs are ever renamed there.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        std::fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Puts bytes already verified (a manifest) into `blobs/`.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.has_blob(digest, bytes.len() as u64) {
            return Ok(());
        }
        self.prepare_blob_dir(digest)?;
        self.replace(&self.blob_path(digest), bytes)
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
        match std::fs::read(&path) {
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
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let temp = self.ingest_dir().join(format!(
            "write-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)
                .map_err(|e| Error::io("creating", &temp, &e))?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io("writing", &temp, &e))?;
            std::fs::rename(&temp, target).map_err(|e| Error::io("renaming a file to", target, &e))
        })();
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
