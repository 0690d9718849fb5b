//! Blobs on disk, as containerd's content store keeps them apart from its
//! fetcher: where a blob goes (a layout's `blobs/`, its download's files in
//! `ingest/`, or a caller's own path), whether one is already there and
//! good ([`verify`]: one rule for every caller), and how one gets there: a
//! partial file under a lock ([`ingest`]), put in place by one atomic
//! rename ([`atomic`]). The download ([`super::download`]) and the layout
//! ([`super::layout`]) both store through here.
//!
//! Everything here but the lock's wait is blocking file work: async
//! callers run it through [`super::blocking`].

pub mod assembly;
pub mod atomic;
pub mod extents;
pub mod ingest;
pub mod lock;
mod partial;
mod private_file;
pub mod verify;

use std::path::{Path, PathBuf};

use super::digest::{Algorithm, Digest};

pub use ingest::{ingest, Ingest};
pub use partial::Partial;

/// A layout's complete, verified blobs: `blobs/<alg>/<hex>`.
const BLOBS: &str = "blobs";
/// A layout's files in the making: downloads' partials and locks, and the
/// temp files of atomic writes.
const INGEST: &str = "ingest";

/// `blobs/` of the layout at `root`.
pub fn blobs_dir(root: &Path) -> PathBuf {
    root.join(BLOBS)
}

/// `blobs/<alg>/`: where the blobs of `algorithm` go.
pub fn blobs_of(root: &Path, algorithm: Algorithm) -> PathBuf {
    blobs_dir(root).join(algorithm.name())
}

/// `blobs/<alg>/<hex>` of the layout at `root`.
pub fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    blobs_of(root, digest.algorithm()).join(digest.hex())
}

/// `ingest/` of the layout at `root`.
pub fn ingest_dir(root: &Path) -> PathBuf {
    root.join(INGEST)
}

/// Where a blob's partial and lock files live while it downloads into the
/// layout at `root`: `ingest/<alg>-<hex>`, to which `.partial` and `.lock`
/// are added.
pub fn ingest_base(root: &Path, digest: &Digest) -> PathBuf {
    ingest_dir(root).join(format!("{}-{}", digest.algorithm().name(), digest.hex()))
}

/// `<path>.<ext>`, beside `path`.
fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths_and_siblings() {
        let digest = Digest::of(Algorithm::Sha256, b"");
        let root = Path::new("/l");
        assert_eq!(
            blob_path(root, &digest),
            Path::new("/l/blobs/sha256").join(digest.hex())
        );
        assert_eq!(
            ingest_base(root, &digest),
            Path::new("/l/ingest").join(format!("sha256-{}", digest.hex()))
        );
        assert_eq!(
            sibling(Path::new("/a/sha256/ab"), "partial"),
            Path::new("/a/sha256/ab.partial")
        );
    }
}
