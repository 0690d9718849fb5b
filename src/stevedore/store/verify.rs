//! "Is this blob here, and good?": one rule for every caller. A blob is
//! there when a regular file at its path is as long as the blob (when its
//! size is known) and hashes to its digest; anything else at the path is
//! not it. Only whether a symlink at the path counts differs, by [`Links`]:
//! a download's target (the caller's path, or the layout's `blobs/` entry
//! a pull downloads to) follows one, as it always has; a manifest the
//! layout writes itself refuses one. A check costs a read of the file, never trust in a name: a disk
//! or a hand may have changed it since it was written.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::{Digest, Hasher};
use crate::stevedore::error::{Error, Result};

/// Reads of a file being hashed.
const READ_BLOCK: usize = 1 << 20;

/// Whether a symlink at the path counts as what it points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A caller's own path: what it links to is the caller's business.
    Follow,
    /// A path of tank's own layout, where a link is never a blob (readers
    /// of the layout open its files without following links).
    Refuse,
}

/// The length of the file at `path` when it holds exactly the blob
/// `digest` (of `size` bytes, when known); `None` when there is none there,
/// or something else. An error says the path could not be read.
pub fn verified_len(
    path: &Path,
    digest: &Digest,
    size: Option<u64>,
    links: Links,
    cancel: Option<&Cancel>,
) -> Result<Option<u64>> {
    // Non-blocking: a FIFO at `path` must not hold the call until someone
    // writes to it.
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let opened = OpenOptions::new().read(true).custom_flags(flags).open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(None)
        }
        Err(e) => return Err(Error::io("opening", path, &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading", path, &e))?;
    if !meta.is_file() || size.is_some_and(|s| s != meta.len()) {
        return Ok(None);
    }
    let len = meta.len();
    let mut hasher = Hasher::new(digest.algorithm());
    hash_into(&mut file, path, &mut hasher, cancel)?;
    Ok((hasher.finish() == *digest).then_some(len))
}

/// Hashes the file's bytes, as many as its length says: a device that
/// reads forever (or a file someone else is growing) is not followed.
pub fn hash_into(
    file: &mut File,
    path: &Path,
    hasher: &mut Hasher,
    cancel: Option<&Cancel>,
) -> Result<u64> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("reading", path, &e))?
        .len();
    let mut buf = vec![0u8; READ_BLOCK];
    let mut total = 0;
    while total < len {
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(Error::cancelled());
        }
        let want = (len - total).min(READ_BLOCK as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, &e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::digest::Algorithm;

    #[test]
    fn only_a_regular_file_of_the_blobs_bytes_is_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"a blob";
        let digest = Digest::of(Algorithm::Sha256, bytes);
        let path = dir.path().join("blob");
        let check = |links| verified_len(&path, &digest, Some(6), links, None).unwrap();
        assert_eq!(check(Links::Refuse), None, "nothing there");
        std::fs::write(&path, b"a blub").unwrap();
        assert_eq!(check(Links::Refuse), None, "other bytes");
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(check(Links::Refuse), Some(6));
        assert_eq!(
            verified_len(&path, &digest, Some(7), Links::Refuse, None).unwrap(),
            None,
            "another size"
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let through = |links| verified_len(&link, &digest, None, links, None).unwrap();
        assert_eq!(through(Links::Follow), Some(6));
        assert_eq!(through(Links::Refuse), None);
    }
}
