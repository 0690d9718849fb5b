//! A lock on one destination path, held through a lock file beside it, so
//! that two calls (threads or processes) fetching the same blob to the same
//! place download it once, and calls for other paths never wait.
//!
//! The lock is an `flock` on the file: a holder that dies lets go with its
//! last descriptor, so its lock file (left behind) is taken over by the
//! next caller. A live holder is waited for, as long as the caller wants;
//! each try runs on a blocking thread, the waits between them on the
//! runtime's timer.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use super::private_file;
use crate::stevedore::blocking::blocking;
use crate::stevedore::cancel::{sleep, Cancel};
use crate::stevedore::error::{Error, Result};

/// How often a waiting call tries again.
const POLL: Duration = Duration::from_millis(20);

/// Held until dropped: then the lock file is removed (by its holder, so a
/// waiter never takes a lock on a file nobody else can see) and closed.
/// Dropping one is file work, for a blocking thread.
pub struct PathLock {
    file: File,
    path: PathBuf,
}

/// How one try to take the lock went.
enum Try {
    Held(PathLock),
    /// Someone holds it: the lock file, to try again.
    Busy(File),
    /// The lock file we locked is no longer the one at the path.
    Gone,
}

impl PathLock {
    /// Waits until the lock is ours, or `cancel` fires.
    pub async fn acquire(path: PathBuf, cancel: Option<&Cancel>) -> Result<PathLock> {
        let mut waiting: Option<File> = None;
        loop {
            if cancel.is_some_and(Cancel::is_cancelled) {
                if let Some(file) = waiting {
                    let _ = blocking(move || drop(file)).await;
                }
                return Err(Error::cancelled());
            }
            let path = path.clone();
            match blocking(move || try_once(path, waiting)).await?? {
                Try::Held(lock) => return Ok(lock),
                Try::Busy(file) => {
                    waiting = Some(file);
                    // Cancelled, the wait ends at the loop's top.
                    let _ = sleep(cancel, POLL).await;
                }
                Try::Gone => waiting = None,
            }
        }
    }
}

/// One try at the lock file at `path` (`file`, when it is already open).
fn try_once(path: PathBuf, file: Option<File>) -> Result<Try> {
    let file = match file {
        Some(f) => f,
        None => open(&path)?,
    };
    if !try_lock(&file).map_err(|e| Error::io("locking", &path, &e))? {
        return Ok(Try::Busy(file));
    }
    // The holder before us removes the file before it lets go: if ours is
    // no longer the one at `path`, lock the new one.
    Ok(match private_file::is_at(&file, &path) {
        true => Try::Held(PathLock { file, path }),
        false => Try::Gone,
    })
}

/// The lock file at `path`, made when missing. A symlink there is never
/// followed and never removed: a lock file is never a link, and removing
/// one by name could remove the lock file another caller has just made in
/// its place (two holders at once); the caller hears of it instead.
fn open(path: &std::path::Path) -> Result<File> {
    // Not private: it holds no data, and a group sharing a layout must be
    // able to open (and wait on) each other's locks, as before.
    let opened = private_file::options()
        .mode(0o666)
        .create(true)
        .truncate(false)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let e = io::Error::new(
                io::ErrorKind::InvalidInput,
                "a symlink is there, not a lock file; tank never follows it (remove it)",
            );
            return Err(Error::io("locking", path, &e));
        }
        Err(e) => return Err(Error::io("creating the lock file", path, &e)),
    };
    let is_file = file
        .metadata()
        .map_err(|e| Error::io("reading", path, &e))?
        .is_file();
    if !is_file {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        return Err(Error::io("locking", path, &e));
    }
    Ok(file)
}

impl Drop for PathLock {
    fn drop(&mut self) {
        private_file::remove_if_at(&self.file, &self.path);
        // Closing `file` after this releases the lock.
    }
}

fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this File owns for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_the_file_goes_with_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.lock");
        let first = PathLock::acquire(path.clone(), None).await.unwrap();
        let waiting = tokio::spawn(PathLock::acquire(path.clone(), None));
        tokio::time::sleep(POLL * 5).await;
        assert!(
            !waiting.is_finished(),
            "a second holder while the first holds"
        );
        drop(first);
        let second = waiting.await.unwrap().unwrap();
        assert!(path.exists());
        drop(second);
        assert!(
            !path.exists(),
            "the lock file is removed by its last holder"
        );
    }

    #[tokio::test]
    async fn a_wait_for_a_live_holder_ends_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.lock");
        let _held = PathLock::acquire(path.clone(), None).await.unwrap();
        let cancel = Cancel::new();
        let waiting = {
            let (path, cancel) = (path.clone(), cancel.clone());
            tokio::spawn(async move { PathLock::acquire(path, Some(&cancel)).await })
        };
        tokio::time::sleep(POLL * 5).await;
        assert!(!waiting.is_finished());
        cancel.cancel();
        let e = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the wait ended")
            .unwrap()
            .err()
            .expect("no lock");
        assert_eq!(e.reason.id(), "cancelled");
    }

    #[tokio::test]
    async fn a_symlink_at_the_lock_path_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.lock");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = PathLock::acquire(path.clone(), None).await.err().unwrap();
        assert_eq!(e.reason.id(), "io", "{e}");
        assert!(!target.exists(), "created through the symlink");
        assert!(
            std::fs::symlink_metadata(&path).unwrap().is_symlink(),
            "removed by name"
        );
    }
}
