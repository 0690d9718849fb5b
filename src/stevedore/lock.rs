//! A lock on one destination path, held through a lock file beside it, so
//! that two calls (threads or processes) fetching the same blob to the same
//! place download it once, and calls for other paths never wait.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Error, Result};

/// How often a waiting call tries again; waiting is a sleep, so a cancel
/// ends it at once.
const POLL: Duration = Duration::from_millis(20);

/// Held until dropped: then the lock file is removed (by its holder, so a
/// waiter never takes a lock on a file nobody else can see) and closed.
pub struct PathLock {
    file: File,
    path: PathBuf,
}

impl PathLock {
    pub async fn acquire(path: PathBuf) -> Result<PathLock> {
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io("creating the lock file", &path, &e))?;
            while !try_lock(&file).map_err(|e| Error::io("locking", &path, &e))? {
                tokio::time::sleep(POLL).await;
            }
            // The holder before us removes the file before it lets go: if
            // ours is no longer the one at `path`, lock the new one.
            if same_file(&file, &path) {
                return Ok(PathLock { file, path });
            }
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // Closing `file` after this releases the lock.
        let _ = &self.file;
    }
}

fn try_lock(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock on a descriptor this File owns for the whole call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_the_file_goes_with_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.lock");
        let first = PathLock::acquire(path.clone()).await.unwrap();
        let waiting = tokio::spawn(PathLock::acquire(path.clone()));
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
}
