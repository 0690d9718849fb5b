//! A tar stream, entry by entry: headers parsed by the `tar` crate
//! (`tar::Header`, `tar::PaxExtensions`), driven here so that extension
//! headers (PAX, GNU long names) are bounded and bodies stream through the
//! caller's buffer.

#![allow(dead_code)] // Until the applier uses every field.

use std::io::Read;

use crate::stevedore::error::Result;

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// The target, verbatim.
    Symlink(Vec<u8>),
    /// The target: a name in the archive, as written.
    Hardlink(Vec<u8>),
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// One member of the archive, with PAX and GNU overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as the archive gives it (not yet cleaned or checked).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Timestamp,
    /// PAX `SCHILY.xattr.*` (and `LIBARCHIVE.xattr.*`, decoded), in order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body bytes (a regular file's contents; 0 for others).
    pub size: u64,
}

/// Reads entries from a tar stream. Errors are `bad_layer`, unless the
/// reader's own error is one of tank's (see `stream::read_error`).
pub struct TarStream<R: Read> {
    inner: R,
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R) -> Self {
        TarStream { inner }
    }

    /// The next entry, or `None` at the end-of-archive marker (or at a
    /// clean end of the stream).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        unimplemented!()
    }

    /// Reads the current entry's body; 0 once it is all read. Whatever a
    /// caller leaves unread is skipped by `next_entry`.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize> {
        let _ = buf;
        unimplemented!()
    }

    /// The reader, positioned after the end-of-archive marker, so that the
    /// caller can hash what follows.
    pub fn into_inner(self) -> R {
        self.inner
    }
}
