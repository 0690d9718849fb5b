//! A partial written at offsets by several ranges, hashed in order as it
//! becomes contiguous: still one pass over the bytes, whatever order they
//! arrive in.
//!
//! Bytes that arrive at the hash's frontier are hashed from memory as
//! they are written; bytes that arrive ahead of it are written at their
//! offset and read back from the file, once, in a fixed buffer, when the
//! gap before them fills. So every byte is hashed exactly once, and memory
//! is one read buffer whatever the blob's size and the number of ranges.
//! The file's bytes below the frontier are never written again (a range
//! resumed over them has its head dropped): what is renamed into place is
//! what was hashed.
//!
//! One owner writes (the download's writer thread, which range tasks feed
//! through a channel, as the single stream's does today): `pwrite` needs
//! no file position, so nothing here depends on the order of the writes.
//! Every method is blocking file work.
//!
//! Wiring it to [`super::Partial`] (left to the session that wires the
//! ranges in): `Partial::open` hashes its whole file, which is right only
//! for one stream's partial; with a record beside it
//! ([`extents::load`]), the partial must hand its file to
//! [`Assembly::resume`] instead, which hashes only the contiguous prefix.
//! `Partial::restart` and `discard`, and the commit, remove the record
//! with the bytes it describes ([`extents::remove`]), and `Partial`'s
//! "nothing worth keeping" test becomes "no extents", not "length 0".

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::extents::{self, Extents};
use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::{Algorithm, Digest, Hasher};
use crate::stevedore::error::{Error, Result};

/// Reads of bytes written ahead of the frontier, when the frontier
/// reaches them: the only buffer this holds.
const READ_BACK: usize = 1 << 20;
/// Bytes read back and hashed for each byte written, at most: the hash
/// catches up with a gap that filled a little at a time, so the writer
/// never stops taking chunks for the whole of a piece's hashing (every
/// connection would stall behind it); it still gains on the bytes
/// arriving, and [`Assembly::finish`] hashes what is left.
const CATCH_UP_PER_BYTE: u64 = 4;
/// Bytes recorded since the last saved record after which the next one is
/// due: a cut transfer fetches again at most this much per range (the
/// issue's bound is connections × 8 MiB).
pub(crate) const CHECKPOINT: u64 = 8 << 20;

pub struct Assembly {
    file: File,
    path: PathBuf,
    /// Bytes in the file, hashed or not.
    written: Extents,
    hasher: Hasher,
    algorithm: Algorithm,
    /// Bytes `[0, hashed)` are in the hasher; never more than
    /// `written.contiguous_prefix()`.
    hashed: u64,
    /// Allocated the first time bytes are read back: a download whose
    /// bytes all arrive in order never needs it.
    buf: Vec<u8>,
    /// Bytes recorded since the record was last saved.
    unsaved: u64,
    /// Bytes recorded after which a record is due.
    every: u64,
}

impl Assembly {
    /// An assembly over `file` (at `path`) holding `written`, whose
    /// contiguous prefix is hashed here, once, by reading it: a resumed
    /// download asks only for the gaps and never for the prefix again.
    pub fn resume(
        file: File,
        path: PathBuf,
        algorithm: Algorithm,
        written: Extents,
        cancel: Option<&Cancel>,
    ) -> Result<Assembly> {
        let mut assembly = Assembly {
            file,
            path,
            written,
            hasher: Hasher::new(algorithm),
            algorithm,
            hashed: 0,
            buf: Vec::new(),
            unsaved: 0,
            every: CHECKPOINT,
        };
        assembly.catch_up(u64::MAX, cancel)?;
        Ok(assembly)
    }

    /// Writes `bytes` at `offset` and hashes whatever that makes
    /// contiguous. Bytes below the frontier are already hashed and in the
    /// file: they are dropped, not written again.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = offset + bytes.len() as u64;
        if end <= self.hashed {
            return Ok(());
        }
        let skip = self.hashed.saturating_sub(offset);
        let (offset, bytes) = (offset + skip, &bytes[skip as usize..]);
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| Error::io("writing", &self.path, &e))?;
        // At the frontier, and nothing written ahead that it now joins:
        // hashed from memory, never read back.
        if offset == self.hashed {
            self.hasher.update(bytes);
            self.hashed = end;
        }
        self.unsaved += bytes.len() as u64;
        self.written.insert(offset..end);
        let budget = (bytes.len() as u64).saturating_mul(CATCH_UP_PER_BYTE);
        self.catch_up(budget, None)
    }

    /// Hashes, reading them back, up to `budget` bytes of those written
    /// ahead of the frontier that are now contiguous with it.
    fn catch_up(&mut self, budget: u64, cancel: Option<&Cancel>) -> Result<()> {
        let prefix = self
            .written
            .contiguous_prefix()
            .min(self.hashed.saturating_add(budget));
        if self.hashed >= prefix {
            return Ok(());
        }
        if self.buf.is_empty() {
            self.buf = vec![0; READ_BACK];
        }
        while self.hashed < prefix {
            if cancel.is_some_and(Cancel::is_cancelled) {
                return Err(Error::cancelled());
            }
            let want = (prefix - self.hashed).min(READ_BACK as u64) as usize;
            let buf = &mut self.buf[..want];
            self.file
                .read_exact_at(buf, self.hashed)
                .map_err(|e| Error::io("reading", &self.path, &e))?;
            self.hasher.update(buf);
            self.hashed += want as u64;
        }
        Ok(())
    }

    /// Bytes `[0, hashed)` are hashed; the rest of the contiguous prefix
    /// is caught up with as more bytes are written, or at the finish.
    #[cfg(test)]
    pub fn hashed(&self) -> u64 {
        self.hashed
    }

    /// Bytes from 0 in the file without a gap.
    pub fn contiguous(&self) -> u64 {
        self.written.contiguous_prefix()
    }

    /// What is in the file.
    pub fn written(&self) -> &Extents {
        &self.written
    }

    /// What of `[0, total)` is still to be fetched.
    #[cfg(test)]
    pub fn missing(&self, total: u64) -> Vec<std::ops::Range<u64>> {
        self.written.missing(total)
    }

    /// Whether enough has been written since the last record that the next
    /// one is due. The count is of all ranges together: a call cut short
    /// (a crash, with no last record) fetches again at most this much.
    pub fn checkpoint_due(&self) -> bool {
        self.unsaved >= self.every
    }

    /// A record due every `bytes` recorded, rather than [`CHECKPOINT`].
    #[cfg(test)]
    pub fn checkpoint_every(&mut self, bytes: u64) {
        self.every = bytes.max(1);
    }

    /// Saves the record of what is written at `record` (the partial's
    /// `.extents`). Due before the first byte is written ahead of the
    /// frontier: without a record, a partial is read as one stream's, its
    /// length all there.
    pub fn checkpoint(&mut self, record: &Path, digest: &Digest, size: u64) -> Result<()> {
        extents::save(record, &self.written, digest, size)?;
        self.unsaved = 0;
        Ok(())
    }

    /// The hash of the whole blob, once `[0, size)` is written (the
    /// bytes not yet hashed are read back and hashed now); `None` while
    /// bytes are missing. Once it has answered, the assembly is only its
    /// file ([`Assembly::into_file`]).
    pub fn finish(&mut self, size: u64, cancel: Option<&Cancel>) -> Result<Option<Digest>> {
        if self.written.contiguous_prefix() != size {
            return Ok(None);
        }
        self.catch_up(u64::MAX, cancel)?;
        if self.hashed != size {
            return Ok(None);
        }
        let hasher = std::mem::replace(&mut self.hasher, Hasher::new(self.algorithm));
        Ok(Some(hasher.finish()))
    }

    /// The file, back to its owner (the partial, for the commit).
    pub fn into_file(self) -> File {
        self.file
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Bytes that differ at every offset, so a byte hashed out of place
    /// changes the digest.
    fn blob(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn fresh(dir: &Path) -> (File, PathBuf) {
        let path = dir.join("b.partial");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        (file, path)
    }

    fn assembly(dir: &Path, written: Extents) -> Assembly {
        let path = dir.join("b.partial");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        Assembly::resume(file, path, Algorithm::Sha256, written, None).unwrap()
    }

    #[test]
    fn bytes_written_out_of_order_hash_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = blob(3 * READ_BACK + 12345);
        let size = bytes.len() as u64;
        let (file, path) = fresh(dir.path());
        let mut a =
            Assembly::resume(file, path.clone(), Algorithm::Sha256, Extents::new(), None).unwrap();
        // Four ranges, in 100000-byte chunks, taken round-robin, last
        // range first: most bytes land ahead of the frontier.
        let quarter = bytes.len() / 4;
        let mut cursors: Vec<(usize, usize)> = (0..4)
            .rev()
            .map(|i| {
                (
                    i * quarter,
                    if i == 3 {
                        bytes.len()
                    } else {
                        (i + 1) * quarter
                    },
                )
            })
            .collect();
        while cursors.iter().any(|(at, end)| at < end) {
            for (at, end) in cursors.iter_mut().filter(|(at, end)| at < end) {
                let n = (*end - *at).min(100_000);
                a.write_at(*at as u64, &bytes[*at..*at + n]).unwrap();
                *at += n;
                assert!(a.hashed() <= a.written().contiguous_prefix());
            }
        }
        assert!(a.hashed() <= size);
        let digest = a.finish(size, None).unwrap().expect("complete");
        assert_eq!(digest, Digest::of(Algorithm::Sha256, &bytes));
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    /// A gap that fills joins bytes written ahead: they are hashed a few
    /// bytes per byte written after, not all at once (the writer would
    /// stop taking chunks meanwhile), and all by the finish.
    #[test]
    fn bytes_joined_to_the_frontier_are_hashed_a_little_per_write() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = blob(4 * READ_BACK);
        let size = bytes.len() as u64;
        let mut a = assembly(dir.path(), Extents::new());
        a.write_at(1000, &bytes[1000..]).unwrap();
        assert_eq!(a.hashed(), 0);
        a.write_at(0, &bytes[..1000]).unwrap();
        assert_eq!(a.written().contiguous_prefix(), size);
        assert_eq!(
            a.hashed(),
            1000 + 4 * 1000,
            "the gap's own bytes, then 4 per byte"
        );
        a.write_at(0, &bytes[..10]).unwrap();
        let digest = a.finish(size, None).unwrap().expect("complete");
        assert_eq!(digest, Digest::of(Algorithm::Sha256, &bytes));
    }

    #[test]
    fn a_range_resent_over_hashed_bytes_does_not_rewrite_them() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = blob(1000);
        let mut a = assembly(dir.path(), Extents::new());
        a.write_at(0, &bytes[..600]).unwrap();
        // A resumed range that starts before the frontier, with bytes that
        // differ there: the hashed ones stay.
        let mut resent = bytes[500..1000].to_vec();
        resent[..100].fill(0xff);
        a.write_at(500, &resent).unwrap();
        a.write_at(100, &[0xee; 50]).unwrap();
        let digest = a.finish(1000, None).unwrap().expect("complete");
        assert_eq!(digest, Digest::of(Algorithm::Sha256, &bytes));
        assert_eq!(std::fs::read(dir.path().join("b.partial")).unwrap(), bytes);
    }

    #[test]
    fn incomplete_is_no_digest() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = assembly(dir.path(), Extents::new());
        a.write_at(10, b"later").unwrap();
        assert_eq!(a.hashed(), 0);
        assert_eq!(a.missing(20), vec![0..10, 15..20]);
        assert_eq!(a.finish(15, None).unwrap(), None, "bytes missing");
        assert_eq!(a.written().ranges(), &[10..15]);
    }

    /// A call cut half-way leaves its extents and its partial; the next
    /// hashes the prefix once by reading it, asks only for the gaps, and
    /// ends with the right digest.
    #[test]
    fn a_resume_from_a_half_written_partial_fetches_only_the_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = blob(2 * READ_BACK + 999);
        let size = bytes.len() as u64;
        let digest = Digest::of(Algorithm::Sha256, &bytes);
        let record = dir.path().join("b.partial.extents");
        let half = size / 2;
        {
            let mut a = assembly(dir.path(), Extents::new());
            a.checkpoint(&record, &digest, size).unwrap();
            // Range one got 1000 bytes in, range two half of its bytes.
            a.write_at(0, &bytes[..1000]).unwrap();
            a.write_at(half, &bytes[half as usize..(half + half / 2) as usize])
                .unwrap();
            a.checkpoint(&record, &digest, size).unwrap();
            // Written after the last record: not trusted by the next call.
            a.write_at(1000, &bytes[1000..2000]).unwrap();
        }
        let len = std::fs::metadata(dir.path().join("b.partial"))
            .unwrap()
            .size();
        let written = extents::load(&record, &digest, size, len);
        assert_eq!(written.ranges(), &[0..1000, half..half + half / 2]);
        let mut a = assembly(dir.path(), written);
        assert_eq!(a.hashed(), 1000, "the prefix is hashed on resume");
        let gaps = a.missing(size);
        assert_eq!(gaps, vec![1000..half, half + half / 2..size]);
        let fetched: u64 = gaps.iter().map(|g| g.end - g.start).sum();
        assert_eq!(fetched, size - 1000 - half / 2, "nothing asked for twice");
        for g in gaps.into_iter().rev() {
            a.write_at(g.start, &bytes[g.start as usize..g.end as usize])
                .unwrap();
        }
        let actual = a.finish(size, None).unwrap().expect("complete");
        assert_eq!(actual, digest);
    }

    #[test]
    fn checkpoints_fall_due_every_few_mib() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = assembly(dir.path(), Extents::new());
        let chunk = vec![1u8; (CHECKPOINT / 2) as usize];
        a.write_at(CHECKPOINT, &chunk).unwrap();
        assert!(!a.checkpoint_due());
        a.write_at(0, &chunk).unwrap();
        assert!(a.checkpoint_due());
        let digest = Digest::of(Algorithm::Sha256, b"");
        a.checkpoint(&dir.path().join("r"), &digest, 3 * CHECKPOINT)
            .unwrap();
        assert!(!a.checkpoint_due());
    }
}
