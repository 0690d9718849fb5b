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
//! One stream appends; several ranges write at their offsets
//! ([`Partial::write_at`]), and then a record beside the file
//! (`<partial>.extents`, [`extents`]) says which bytes are there, so the
//! next call asks only for the gaps. Either way the bytes are hashed in
//! order, once ([`Assembly`]).
//!
//! Every method is blocking file work, and so is dropping one.

use std::fs::{File, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::assembly::Assembly;
use super::atomic;
use super::extents::{self, Extents};
use super::lock::PathLock;
use super::private_file;
use super::sibling;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::Digest;
use crate::stevedore::error::{Error, Reason, Result};

pub struct Partial {
    /// The file and what is in it; `None` once committed.
    assembly: Option<Assembly>,
    /// Where the file is: `<work>.partial`, or a name of its own when
    /// something at that name could not be replaced.
    path: PathBuf,
    /// `<path>.extents`: which bytes are there, once they are not simply
    /// the file's first `len`.
    record: PathBuf,
    /// Whether the record is the word on what the file holds (bytes were
    /// written at offsets): it is kept up to date, and saved when the
    /// partial is let go of.
    recorded: bool,
    /// At the name the next call resumes from.
    resumable: bool,
    /// Known bad: removed, not kept for a resume, when dropped.
    discarded: bool,
    digest: Digest,
    size: Option<u64>,
    /// Held as long as the partial exists, wherever it is (the writer
    /// thread, a flush and rename): no other call touches these files
    /// before this one is done with them.
    _lock: Arc<PathLock>,
}

impl Partial {
    /// The partial at `path`, trusted and its contiguous prefix hashed so a
    /// resumed download asks only for the rest, or a fresh one. One longer
    /// than the blob can be is emptied.
    pub fn open(
        path: PathBuf,
        lock: Arc<PathLock>,
        digest: &Digest,
        size: Option<u64>,
        cancel: &Cancel,
    ) -> Result<Partial> {
        let (file, path, resumable) = match take_over(&path)? {
            Some(file) => (file, path, true),
            None => fresh(path)?,
        };
        let record = sibling(&path, "extents");
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading", &path, &e))?
            .len();
        let recorded = resumable && std::fs::symlink_metadata(&record).is_ok();
        // A size not known cannot match a record's: a record then says
        // nothing is there, and its partial starts over.
        let written = match recorded {
            true => extents::load(&record, digest, size.unwrap_or(u64::MAX), len),
            false => Extents::prefix(len),
        };
        let assembly = Assembly::resume(
            file,
            path.clone(),
            digest.algorithm(),
            written,
            Some(cancel),
        )?;
        let mut partial = Partial {
            assembly: Some(assembly),
            path,
            record,
            recorded,
            resumable,
            discarded: false,
            digest: digest.clone(),
            size,
            _lock: lock,
        };
        // Longer than the blob can be, or with a record that cannot be
        // trusted (the bytes it described may lie anywhere, past the end
        // too): nothing there is worth keeping.
        let untrusted = recorded && partial.written().done() == 0 && len > 0;
        if size.is_some_and(|s| len > s) || untrusted {
            partial.restart()?;
        }
        Ok(partial)
    }

    fn assembly(&mut self) -> Result<&mut Assembly> {
        self.assembly.as_mut().ok_or_else(committed)
    }

    /// Bytes from 0 that are there without a gap: where one stream goes
    /// on from.
    pub fn len(&self) -> u64 {
        self.assembly.as_ref().map_or(0, Assembly::contiguous)
    }

    /// Every byte that is there, in order or not.
    pub fn written(&self) -> Extents {
        self.assembly
            .as_ref()
            .map(|a| a.written().clone())
            .unwrap_or_default()
    }

    /// Empties the file: the download starts over from byte 0, and the
    /// record of what was there goes with the bytes.
    pub fn restart(&mut self) -> Result<()> {
        let assembly = self.assembly.take().ok_or_else(committed)?;
        let file = assembly.into_file();
        let emptied = file
            .set_len(0)
            .map_err(|e| Error::io("truncating", &self.path, &e));
        let algorithm = self.digest.algorithm();
        self.assembly = Some(Assembly::resume(
            file,
            self.path.clone(),
            algorithm,
            Extents::new(),
            None,
        )?);
        emptied?;
        extents::remove(&self.record)?;
        self.recorded = false;
        // Nothing bad is left in it.
        self.discarded = false;
        Ok(())
    }

    /// Bytes of the blob at `offset`. A record is saved before the first
    /// call ([`Partial::record_extents`]) when the bytes may come out of
    /// order, and again every few MiB after.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let assembly = self.assembly()?;
        assembly.write_at(offset, bytes)?;
        if self.recorded && self.assembly()?.checkpoint_due() {
            self.save_record()?;
        }
        Ok(())
    }

    /// From now on the file may have gaps: the record says what is there,
    /// saved now, before any byte lands past the contiguous prefix (without
    /// one, a partial is read as one stream's, all its length there).
    pub fn record_extents(&mut self) -> Result<()> {
        self.recorded = true;
        self.save_record()
    }

    fn save_record(&mut self) -> Result<()> {
        let (record, digest) = (self.record.clone(), self.digest.clone());
        let size = self.size.unwrap_or(u64::MAX);
        self.assembly()?.checkpoint(&record, &digest, size)
    }

    /// The blob's size, once known from a server's answer when the caller
    /// did not know it: a record then says whose bytes it describes.
    pub fn learn_size(&mut self, size: u64) {
        self.size.get_or_insert(size);
    }

    /// The hash of the contiguous prefix, once every byte to the end is
    /// there; the partial goes on with a fresh hasher.
    pub fn finish_hash(&mut self, cancel: &Cancel) -> Result<Digest> {
        let len = self.len();
        self.assembly()?.finish(len, Some(cancel))?.ok_or_else(|| {
            Error::internal(
                Reason::Panic,
                "a download was hashed before its bytes were all there; this is a bug in tank",
            )
        })
    }

    /// Put at `target` by an atomic commit, with the mode any other file
    /// the caller makes gets. Fails when what the rename moved is not this
    /// file (someone swapped the name).
    pub fn commit(mut self, target: &Path) -> Result<()> {
        let len = self.len();
        let file = self.assembly.take().ok_or_else(committed)?.into_file();
        // The whole blob is there: the record describes nothing now, and a
        // partial left behind by a failed rename is one stream's. Nothing
        // past what was hashed goes into place.
        let committed = extents::remove(&self.record)
            .and_then(|()| {
                let trimmed = file.metadata().and_then(|m| match m.len() > len {
                    true => file.set_len(len),
                    false => Ok(()),
                });
                trimmed.map_err(|e| Error::io("truncating", &self.path, &e))
            })
            .and_then(|()| {
                // Set before the rename: the blob is never at its name
                // unreadable to others.
                file.set_permissions(Permissions::from_mode(0o666 & !umask()))
                    .map_err(|e| Error::io("setting the mode of", &self.path, &e))
            })
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

fn committed() -> Error {
    Error::internal(
        Reason::Panic,
        "a download's partial file was used after its commit; this is a bug in tank",
    )
}

impl Drop for Partial {
    /// Kept for the next call when it holds something, at the name that
    /// call looks for, with its record up to date when it has one; else
    /// nothing worth keeping.
    fn drop(&mut self) {
        let Some(assembly) = self.assembly.take() else {
            return;
        };
        let keep = !self.discarded && self.resumable && assembly.written().done() > 0;
        if keep {
            if self.recorded {
                let size = self.size.unwrap_or(u64::MAX);
                // A record not saved costs only bytes fetched again.
                let _ = extents::save(&self.record, assembly.written(), &self.digest, size);
            }
            return;
        }
        let file = assembly.into_file();
        private_file::remove_if_at(&file, &self.path);
        let _ = extents::remove(&self.record);
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
