//! `<work>.partial`: a download's bytes so far, and their hash so far.
//!
//! The bytes renamed into place must be the bytes that were hashed, so no
//! one but this call may write the file while it is partial. tank makes it
//! itself (mode 0600, never through a symlink), and takes over one an
//! earlier call left only when nobody else can have written it: a regular
//! file of the caller's, with no other name, that only its owner can write.
//! Anything else at the name is replaced by a fresh file (or, when the
//! directory will not let it be replaced, left alone beside one). After the
//! rename, the file at the target is checked to be the one written
//! ([`atomic::commit`]). So a commit costs no second read of the blob.
//!
//! Every method is blocking file work, and so is dropping one.

use std::fs::{File, Permissions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::atomic;
use super::lock::PathLock;
use super::private_file;
use super::verify::hash_into;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::{Algorithm, Digest, Hasher};
use crate::stevedore::error::{Error, Result};

pub struct Partial {
    /// `None` once committed.
    file: Option<File>,
    /// Where the file is: `<work>.partial`, or a name of its own when
    /// something at that name could not be replaced.
    path: PathBuf,
    /// At the name the next call resumes from.
    resumable: bool,
    /// Known bad: removed, not kept for a resume, when dropped.
    discarded: bool,
    hasher: Hasher,
    algorithm: Algorithm,
    pub len: u64,
    /// Held as long as the partial exists, wherever it is (the writer
    /// thread, a flush and rename): no other call touches these files
    /// before this one is done with them.
    _lock: Arc<PathLock>,
}

impl Partial {
    /// The partial at `path`, trusted and hashed so a resumed download
    /// asks only for the rest, or a fresh one. One longer than the blob can
    /// be is emptied.
    pub fn open(
        path: PathBuf,
        lock: Arc<PathLock>,
        algorithm: Algorithm,
        size: Option<u64>,
        cancel: &Cancel,
    ) -> Result<Partial> {
        let (mut file, path, resumable) = match take_over(&path)? {
            Some(file) => (file, path, true),
            None => fresh(path)?,
        };
        let mut hasher = Hasher::new(algorithm);
        let len = hash_into(&mut file, &path, &mut hasher, Some(cancel))?;
        let mut partial = Partial {
            file: Some(file),
            path,
            resumable,
            discarded: false,
            hasher,
            algorithm,
            len,
            _lock: lock,
        };
        if size.is_some_and(|s| len > s) {
            partial.restart()?;
        }
        Ok(partial)
    }

    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a partial file is open until commit")
    }

    /// Empties the file: the download starts over from byte 0.
    pub fn restart(&mut self) -> Result<()> {
        let path = self.path.clone();
        let file = self.file();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|e| Error::io("truncating", &path, &e))?;
        self.hasher = Hasher::new(self.algorithm);
        self.len = 0;
        // Nothing bad is left in it.
        self.discarded = false;
        Ok(())
    }

    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        self.file()
            .write_all(bytes)
            .map_err(|e| Error::io("writing", &path, &e))?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The hash of everything written; the partial goes on with a fresh
    /// hasher.
    pub fn finish_hash(&mut self) -> Digest {
        std::mem::replace(&mut self.hasher, Hasher::new(self.algorithm)).finish()
    }

    /// Put at `target` by an atomic commit, with the mode any other file
    /// the caller makes gets. Fails when what the rename moved is not this
    /// file (someone swapped the name).
    pub fn commit(mut self, target: &Path) -> Result<()> {
        let file = self.file.take().expect("open until commit");
        // Set before the rename: the blob is never at its name unreadable
        // to others.
        let committed = file
            .set_permissions(Permissions::from_mode(0o666 & !umask()))
            .map_err(|e| Error::io("setting the mode of", &self.path, &e))
            .and_then(|()| atomic::commit(&file, &self.path, target, atomic::Writers::Sole));
        // A partial under a name of its own is never resumed.
        if committed.is_err() && !self.resumable {
            private_file::remove_if_at(&file, &self.path);
        }
        committed
    }

    /// Bytes that are known bad: nothing to resume from. The file goes
    /// when the partial is dropped.
    pub fn discard(&mut self) {
        self.discarded = true;
    }

    /// Whether the bytes are known bad (and will be removed unless the
    /// partial is restarted).
    pub fn is_discarded(&self) -> bool {
        self.discarded
    }
}

impl Drop for Partial {
    /// Kept for the next call when it holds something, at the name that
    /// call looks for; else nothing worth keeping.
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            if self.discarded || self.len == 0 || !self.resumable {
                private_file::remove_if_at(&file, &self.path);
            }
        }
    }
}

/// The partial an earlier call left at `path`, when nobody else can have
/// written it; `None` when there is none or it is not to be trusted.
fn take_over(path: &Path) -> Result<Option<File>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("reading", path, &e)),
    }
    let file = match private_file::options().open(path) {
        Ok(f) => f,
        Err(e) if not_ours(&e) => return Ok(None),
        Err(e) => return Err(Error::io("opening", path, &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading", path, &e))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let only_ours =
        meta.is_file() && meta.uid() == me && meta.nlink() == 1 && meta.mode() & 0o022 == 0;
    if !only_ours {
        return Ok(None);
    }
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(|e| Error::io("setting the mode of", path, &e))?;
    Ok(Some(file))
}

/// An open refused because the entry is not a file of ours (a symlink
/// swapped in, a file we may not write, one removed in the meantime).
fn not_ours(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ELOOP | libc::EACCES | libc::EPERM | libc::ENOENT | libc::ENXIO | libc::EISDIR)
    )
}

/// A new, empty partial: at `path` when the name is free or what is there
/// can be replaced (a rename replaces the entry, never what a symlink
/// points to), else under a name of its own; the flag says which.
fn fresh(path: PathBuf) -> Result<(File, PathBuf, bool)> {
    match private_file::options().create_new(true).open(&path) {
        Ok(file) => return Ok((file, path, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io("creating", &path, &e)),
    }
    let (file, own) =
        private_file::create_unique(&path, 0o600).map_err(|e| Error::io("creating", &path, &e))?;
    match std::fs::rename(&own, &path) {
        Ok(()) => Ok((file, path, true)),
        Err(_) => Ok((file, own, false)),
    }
}

/// The process's umask, for the mode a committed blob gets (that of any
/// other file the caller makes). Read from `/proc`: setting it to read it
/// would change it for every thread for a moment. Unknown, the strictest.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o077)
}
