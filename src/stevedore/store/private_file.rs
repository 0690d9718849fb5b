//! Files tank makes for its own use (partial downloads, lock files, a
//! layout's temp files): never
//! opened through a symlink someone planted at their name, never inherited
//! by a child process, and readable and writable by their owner only.

use std::collections::hash_map::RandomState;
use std::fs::{File, Metadata, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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

/// Names tried for a new file before giving up: with 64 random bits a
/// second try already means someone is making names in our directory.
const UNIQUE_NAME_TRIES: u32 = 8;

/// A new file named `<path>.<64 random bits>` beside `path`, created with
/// `mode` (less the umask), made here and nowhere else (`create_new`): not
/// the pid, so writers in other PID namespaces (two containers sharing a
/// volume, both pid 1) never pick it, and a name someone else holds is
/// another try, never their file.
pub fn create_unique(path: &Path, mode: u32) -> io::Result<(File, PathBuf)> {
    let mut tries = 0;
    loop {
        // Each RandomState is keyed afresh from the OS's random source.
        let random = RandomState::new().build_hasher().finish();
        let mut name = path.as_os_str().to_os_string();
        name.push(format!(".{random:016x}"));
        let candidate = PathBuf::from(name);
        tries += 1;
        match options().mode(mode).create_new(true).open(&candidate) {
            Ok(file) => return Ok((file, candidate)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < UNIQUE_NAME_TRIES => {}
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
