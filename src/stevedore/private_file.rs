//! Files tank makes for its own use (partial downloads, lock files): never
//! opened through a symlink someone planted at their name, never inherited
//! by a child process, and readable and writable by their owner only.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Read-write, `O_NOFOLLOW | O_CLOEXEC`, created with mode 0600; the
/// caller adds `create` or `create_new`. `O_NONBLOCK` too: a FIFO planted
/// at the name must not hold the open (it changes nothing for a regular
/// file, and callers check that they got one).
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    options
}

/// A new file named `<path>.<unique>` beside `path`, made here and nowhere
/// else (`create_new`): a name another process (or container, with the
/// same pid) is using is never shared.
pub fn create_unique(path: &Path) -> io::Result<(File, PathBuf)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut tries = 0;
    loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(
            ".{}-{nanos}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let candidate = PathBuf::from(name);
        match options().create_new(true).open(&candidate) {
            Ok(file) => return Ok((file, candidate)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Whether two stats are of one file.
pub fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Whether the entry at `path` (not what it may point to) is `file`.
pub fn is_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => false,
    }
}

/// Removes `path` when the entry there is still `file`: what someone else
/// put at the name in the meantime is left alone.
pub fn remove_if_at(file: &File, path: &Path) {
    if is_at(file, path) {
        let _ = std::fs::remove_file(path);
    }
}
