//! A download's way into the store: the target checked, the blob's lock
//! taken, the target checked again (whoever held the lock may have just
//! put the blob there), and a partial to write to, resumed from what an
//! earlier call left.

use std::path::Path;
use std::sync::Arc;

use super::lock::PathLock;
use super::partial::Partial;
use super::sibling;
use super::verify::{verified_len, Links};
use crate::stevedore::blocking::blocking;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::Digest;
use crate::stevedore::error::{Error, Result};

/// What a download of a blob starts from.
pub enum Ingest {
    /// The target already holds the blob, of this length.
    Present(u64),
    /// Bytes go here; the blob's lock is held until it is dropped (on a
    /// blocking thread: dropping it is file work).
    Writing(Box<Partial>),
}

/// The blob `digest` (of `size` bytes, when known) to go to `target`, its
/// partial and lock at `work` with `.partial` and `.lock` added. The
/// target is the caller's path: a symlink there is followed.
pub async fn ingest(
    target: &Path,
    work: &Path,
    digest: &Digest,
    size: Option<u64>,
    cancel: &Cancel,
) -> Result<Ingest> {
    let check = {
        let (target, digest, cancel) = (target.to_path_buf(), digest.clone(), cancel.clone());
        move || verified_len(&target, &digest, size, Links::Follow, Some(&cancel))
    };
    let present = {
        let (target, check) = (target.to_path_buf(), check.clone());
        blocking(move || {
            if target.is_dir() {
                return Err(Error::io(
                    "writing the blob to",
                    &target,
                    &std::io::Error::from_raw_os_error(libc::EISDIR),
                ));
            }
            check()
        })
        .await??
    };
    if let Some(len) = present {
        return Ok(Ingest::Present(len));
    }
    let lock = PathLock::acquire(sibling(work, "lock"), Some(cancel)).await?;
    let (partial, digest, cancel) = (sibling(work, "partial"), digest.clone(), cancel.clone());
    blocking(move || {
        if let Some(len) = check()? {
            drop(lock);
            return Ok(Ingest::Present(len));
        }
        Partial::open(partial, Arc::new(lock), &digest, size, &cancel)
            .map(|p| Ingest::Writing(Box::new(p)))
    })
    .await?
}
