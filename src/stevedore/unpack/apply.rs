//! The entries of one layer applied onto the tree under construction.
//!
//! Every name is cleaned (`root::clean`) and its parent resolved under the
//! root fd (chroot semantics); the entry itself is made with the `*at`
//! calls on that parent and never followed. Directories stay owner-rwx
//! while layers are applied: their modes and times are recorded and set
//! by `finish`, deepest first, once every layer is in.

#![allow(dead_code)] // Until the orchestrator uses it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{
    self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use super::root::{self, clean, split_last, Resolver, Root};
use super::tar_stream::{Entry, Kind, TarStream, Timestamp};
use super::Options;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::error::{Error, Reason, Result};

/// Bodies are copied through one buffer this large.
const COPY_BUFFER: usize = 256 * 1024;

/// A body this long is copied between two looks at the cancel token.
const CANCEL_EVERY: u64 = 4 << 20;

const WHITEOUT: &[u8] = b".wh.";
/// The opaque marker `.wh..wh..opq`, less its first `.wh.`.
const OPAQUE: &[u8] = b".wh..opq";

/// A layer's entries and their bodies.
type Source<'a> = TarStream<&'a mut dyn Read>;

/// What `finish` sets on a directory an entry declared.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    mtime: Timestamp,
    /// The directory declared (device, inode): a path reached through a
    /// link is another key for the same directory, and a key can outlive
    /// its directory when it is removed by another name.
    id: (u64, u64),
    /// Declarations in order: of two keys for one directory, the later
    /// one's is what the tree ends with.
    order: u64,
}

/// The tree under construction: the root directory fd, and what is set on
/// directories only once every layer is in (modes and times).
pub struct Tree {
    root: Root,
    options: Options,
    /// Declared directories by cleaned path (`b""` is the root).
    dirs: BTreeMap<Vec<u8>, DirMeta>,
    /// Directory declarations so far (`DirMeta::order`).
    declared: u64,
    /// The last entry's parent directory: tars list a directory's entries
    /// together, so most entries skip the lookup. Dropped whenever a
    /// whiteout removes anything (an entry replacing what stood at its own
    /// name leaves its parent whole).
    last_parent: Option<(Vec<u8>, OwnedFd)>,
    buf: Vec<u8>,
}

impl Tree {
    pub fn new(root: OwnedFd, options: Options) -> Tree {
        Tree::with_resolver(root, options, Resolver::Openat2)
    }

    /// A tree whose names are resolved by `resolver` (the walk is what
    /// runs where openat2 is missing; tests force it here).
    pub(super) fn with_resolver(root: OwnedFd, options: Options, resolver: Resolver) -> Tree {
        Tree {
            root: Root::with_resolver(root, resolver),
            options,
            dirs: BTreeMap::new(),
            declared: 0,
            last_parent: None,
            buf: Vec::new(),
        }
    }

    /// Applies one layer's tar stream, read up to its end-of-archive
    /// marker. Errors name the entry at fault.
    pub fn apply_layer(&mut self, tar: &mut dyn Read, cancel: Option<&Cancel>) -> Result<()> {
        let mut source = TarStream::new(tar);
        if self.buf.len() < COPY_BUFFER {
            self.buf = vec![0; COPY_BUFFER];
        }
        // The cleaned paths this layer wrote (and so their ancestors, see
        // `touched`): what an opaque marker keeps.
        let mut written = BTreeSet::new();
        loop {
            check(cancel)?;
            let Some(entry) = source.next_entry()? else {
                return Ok(());
            };
            self.apply_entry(&entry, &mut source, &mut written, cancel)?;
        }
    }

    /// Records what `finish` sets on the directory `stat` describes.
    fn declare(&mut self, path: Vec<u8>, entry: &Entry, stat: &rfs::Stat) {
        self.declared += 1;
        let meta = DirMeta {
            mode: entry.mode,
            mtime: entry.mtime,
            id: identity(stat),
            order: self.declared,
        };
        self.dirs.insert(path, meta);
    }

    /// Sets each directory's mode and times, deepest first, after its
    /// contents.
    pub fn finish(self) -> Result<()> {
        let Tree { mut root, dirs, .. } = self;
        let mut latest: HashMap<(u64, u64), u64> = HashMap::with_capacity(dirs.len());
        for meta in dirs.values() {
            let order = latest.entry(meta.id).or_default();
            *order = (*order).max(meta.order);
        }
        // Reverse byte order puts `a/b` before `a`.
        for (path, meta) in dirs.iter().rev() {
            if latest.get(&meta.id) != Some(&meta.order) {
                // Declared again since, by another name.
                continue;
            }
            let dir = match root.existing_dir(path) {
                Ok(Some(dir)) => dir,
                // Gone or replaced through a link since: nothing to set.
                Ok(None) => continue,
                Err(e) => return Err(os_error("opening", path, e)),
            };
            match rfs::fstat(&dir) {
                Ok(stat) if identity(&stat) == meta.id => {}
                // Another directory now stands there: this key outlived
                // the one declared.
                Ok(_) => continue,
                Err(e) => return Err(os_error("reading", path, e.into())),
            }
            rfs::fchmod(&dir, Mode::from_raw_mode(meta.mode & 0o7777))
                .map_err(|e| os_error("setting the mode of", path, e.into()))?;
            rfs::futimens(&dir, &times(meta.mtime))
                .map_err(|e| os_error("setting the times of", path, e.into()))?;
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        entry: &Entry,
        source: &mut Source<'_>,
        written: &mut BTreeSet<Vec<u8>>,
        cancel: Option<&Cancel>,
    ) -> Result<()> {
        if entry.path.contains(&0) {
            return Err(Error::layer(
                Reason::BadLayer,
                format!("{}: a name with a NUL byte", show(&entry.path)),
            ));
        }
        let Some(path) = clean(&entry.path) else {
            return Err(unsafe_path(&entry.path, "climbs above the root"));
        };
        if path.is_empty() {
            return self.root_entry(entry);
        }
        let (parent, name) = split_last(&path);
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            return self.whiteout(entry, parent, hidden, written);
        }
        let dir = match self.last_parent.take() {
            Some((last, dir)) if last == parent => dir,
            _ => self
                .root
                .dir(parent, true)
                .map_err(|e| os_error("creating the directories of", &path, e))?
                .ok_or_else(|| {
                    Error::io(
                        "creating",
                        show_path(&path),
                        &io::ErrorKind::NotFound.into(),
                    )
                })?,
        };
        mark(written, &path);
        let at = At {
            dir: dir.as_fd(),
            name,
            path: &path,
        };
        let done = self.make(at, entry, source, cancel);
        self.last_parent = Some((parent.to_vec(), dir));
        done
    }

    fn make(
        &mut self,
        at: At<'_>,
        entry: &Entry,
        source: &mut Source<'_>,
        cancel: Option<&Cancel>,
    ) -> Result<()> {
        match &entry.kind {
            Kind::File => self.file(at, entry, source, cancel),
            Kind::Dir => self.directory(at, entry),
            Kind::Symlink(target) => self.symlink(at, entry, target),
            Kind::Hardlink(target) => self.hardlink(at, entry, target),
            Kind::Fifo => self.node(at, entry, FileType::Fifo, 0),
            Kind::CharDevice { major, minor } if self.options.keep_owners => {
                let dev = rfs::makedev(*major, *minor);
                self.node(at, entry, FileType::CharacterDevice, dev)
            }
            Kind::BlockDevice { major, minor } if self.options.keep_owners => {
                let dev = rfs::makedev(*major, *minor);
                self.node(at, entry, FileType::BlockDevice, dev)
            }
            // Rootless: no device is made, and none is left from below.
            Kind::CharDevice { .. } | Kind::BlockDevice { .. } => self.clear(at),
        }
    }

    /// `./` (or `/`): the root's own mode and time.
    fn root_entry(&mut self, entry: &Entry) -> Result<()> {
        if entry.kind != Kind::Dir {
            return Err(Error::layer(
                Reason::BadLayer,
                format!(
                    "{}: names the root directory but is not a directory",
                    show(&entry.path)
                ),
            ));
        }
        let stat = rfs::fstat(self.root.fd()).map_err(|e| os_error("reading", b"/", e.into()))?;
        self.declare(Vec::new(), entry, &stat);
        if !self.options.keep_owners && entry.xattrs.is_empty() {
            return Ok(());
        }
        let root = root::open_dir(self.root.fd(), b".")
            .map_err(|e| os_error("opening", b"/", e.into()))?;
        if self.options.keep_owners {
            let (uid, gid) = owner(entry)?;
            rfs::fchown(&root, Some(uid), Some(gid))
                .map_err(|e| os_error("setting the owner of", b"/", e.into()))?;
        }
        self.set_xattrs(root.as_fd(), entry, b"/")
    }

    /// `.wh.NAME` removes NAME of the layers below; `.wh..wh..opq` hides
    /// what they put in its directory.
    fn whiteout(
        &mut self,
        entry: &Entry,
        parent: &[u8],
        hidden: &[u8],
        written: &mut BTreeSet<Vec<u8>>,
    ) -> Result<()> {
        self.last_parent = None;
        if hidden == OPAQUE {
            return self.hide_lower(parent, true, written);
        }
        // Other `.wh..wh.` names are AUFS metadata (`.wh..wh.plnk`,
        // `.wh..wh.aufs`): skipped, as containerd does.
        if hidden.starts_with(WHITEOUT) {
            return Ok(());
        }
        match hidden {
            b"" => {
                return Err(Error::layer(
                    Reason::BadLayer,
                    format!("{}: a whiteout with no name", show(&entry.path)),
                ))
            }
            b"." | b".." => return Err(unsafe_path(&entry.path, "whites out `.` or `..`")),
            _ => {}
        }
        let path = join(parent, hidden);
        if touched(written, &path) {
            // Whiteouts apply to the layers below only: what this layer
            // put at `path` stays (the spec's "same layer" rule).
            return self.hide_lower(&path, false, written);
        }
        let dir = match self.root.dir(parent, false) {
            Ok(Some(dir)) => dir,
            Ok(None) => return Ok(()),
            Err(e) => return Err(os_error("opening", parent, e)),
        };
        root::remove_tree_bytes(dir.as_fd(), hidden)
            .map_err(|e| os_error("removing", &path, e.into()))?;
        remove_under(&mut self.dirs, &path);
        Ok(())
    }

    /// Everything in the directory `top` the layers below put there goes;
    /// what this layer wrote (before or after the marker) stays. A
    /// directory this layer wrote, or wrote into, is kept but loses its
    /// lower contents. `follow_top`: `top` is a marker's parent, and a
    /// symlink there is followed like any parent; otherwise a symlink at
    /// `top` is left alone.
    fn hide_lower(
        &mut self,
        top: &[u8],
        follow_top: bool,
        written: &BTreeSet<Vec<u8>>,
    ) -> Result<()> {
        let mut todo = vec![top.to_vec()];
        let mut follow = follow_top;
        while let Some(path) = todo.pop() {
            let opened = if std::mem::take(&mut follow) {
                self.root.dir(&path, false).and_then(|dir| {
                    dir.map(|dir| root::open_dir(dir.as_fd(), b".").map_err(io::Error::from))
                        .transpose()
                })
            } else {
                self.root.existing_dir(&path)
            };
            let fd = match opened {
                Ok(Some(fd)) => fd,
                Ok(None) => continue,
                Err(e) => return Err(os_error("opening", &path, e)),
            };
            let names = root::list(fd.as_fd()).map_err(|e| os_error("reading", &path, e.into()))?;
            for (name, kind) in names {
                let child = join(&path, &name);
                if touched(written, &child) {
                    if kind == FileType::Directory {
                        todo.push(child);
                    }
                    continue;
                }
                root::remove_tree_bytes(fd.as_fd(), &name)
                    .map_err(|e| os_error("removing", &child, e.into()))?;
                remove_under(&mut self.dirs, &child);
            }
        }
        Ok(())
    }

    fn file(
        &mut self,
        at: At<'_>,
        entry: &Entry,
        source: &mut Source<'_>,
        cancel: Option<&Cancel>,
    ) -> Result<()> {
        let fd = self.replacing(at, |at| {
            rfs::openat(
                at.dir,
                at.name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
        })?;
        let mut file = File::from(fd);
        let mut copied = 0u64;
        let mut next_look = CANCEL_EVERY;
        loop {
            let n = source.read_data(&mut self.buf)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| os_error("writing", at.path, e))?;
            copied += n as u64;
            if copied >= next_look {
                check(cancel)?;
                next_look = copied + CANCEL_EVERY;
            }
        }
        let fd = file.as_fd();
        // Owners first: chown clears setuid and setgid.
        if self.options.keep_owners {
            let (uid, gid) = owner(entry)?;
            rfs::fchown(fd, Some(uid), Some(gid))
                .map_err(|e| os_error("setting the owner of", at.path, e.into()))?;
        }
        rfs::fchmod(fd, Mode::from_raw_mode(entry.mode & 0o7777))
            .map_err(|e| os_error("setting the mode of", at.path, e.into()))?;
        self.set_xattrs(fd, entry, at.path)?;
        rfs::futimens(fd, &times(entry.mtime))
            .map_err(|e| os_error("setting the times of", at.path, e.into()))
    }

    fn directory(&mut self, at: At<'_>, entry: &Entry) -> Result<()> {
        // Owner-rwx until `finish`, so that later entries and layers get in.
        match rfs::mkdirat(at.dir, at.name, Mode::RWXU) {
            Ok(()) => {}
            Err(Errno::EXIST) if is_dir(at)? => {}
            Err(Errno::EXIST) => {
                self.clear(at)?;
                rfs::mkdirat(at.dir, at.name, Mode::RWXU)
                    .map_err(|e| os_error("creating", at.path, e.into()))?;
            }
            Err(e) => return Err(os_error("creating", at.path, e.into())),
        }
        let stat = rfs::statat(at.dir, at.name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| os_error("reading", at.path, e.into()))?;
        self.declare(at.path.to_vec(), entry, &stat);
        if self.options.keep_owners {
            self.chown_at(at, entry)?;
        }
        if !entry.xattrs.is_empty() {
            let dir = root::open_dir(at.dir, at.name)
                .map_err(|e| os_error("opening", at.path, e.into()))?;
            self.set_xattrs(dir.as_fd(), entry, at.path)?;
        }
        Ok(())
    }

    fn symlink(&mut self, at: At<'_>, entry: &Entry, target: &[u8]) -> Result<()> {
        if target.is_empty() || target.contains(&0) {
            return Err(Error::layer(
                Reason::BadLayer,
                format!(
                    "{}: a symlink target empty or with a NUL byte",
                    show(at.path)
                ),
            ));
        }
        self.replacing(at, |at| rfs::symlinkat(target, at.dir, at.name))?;
        if self.options.keep_owners {
            self.chown_at(at, entry)?;
        }
        self.set_xattrs_at(at, entry)?;
        rfs::utimensat(
            at.dir,
            at.name,
            &times(entry.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| os_error("setting the times of", at.path, e.into()))
    }

    /// A hard link to a non-directory already in the tree (a symlink is
    /// linked itself, as GNU tar does). Hard links have no metadata of
    /// their own.
    fn hardlink(&mut self, at: At<'_>, entry: &Entry, target: &[u8]) -> Result<()> {
        if target.contains(&0) {
            return Err(Error::layer(
                Reason::BadLayer,
                format!("{}: a link target with a NUL byte", show(at.path)),
            ));
        }
        let Some(target_path) = clean(target) else {
            return Err(unsafe_path(&entry.path, "links to a target above the root"));
        };
        if target_path.is_empty() {
            return Err(unsafe_path(&entry.path, "links to the root directory"));
        }
        let (target_parent, target_name) = split_last(&target_path);
        let target_dir = match self.root.dir(target_parent, false) {
            Ok(Some(dir)) => dir,
            Ok(None) => return Err(unsafe_path(&entry.path, "links to a missing target")),
            Err(e) => return Err(os_error("opening", &target_path, e)),
        };
        let target_stat = match rfs::statat(&target_dir, target_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT | Errno::NOTDIR) => {
                return Err(unsafe_path(&entry.path, "links to a missing target"))
            }
            Err(e) => return Err(os_error("reading", &target_path, e.into())),
        };
        if FileType::from_raw_mode(target_stat.st_mode) == FileType::Directory {
            return Err(unsafe_path(&entry.path, "links to a directory"));
        }
        // Already this very file (a link to itself, or a repeated entry).
        if let Ok(here) = rfs::statat(at.dir, at.name, AtFlags::SYMLINK_NOFOLLOW) {
            if (here.st_dev, here.st_ino) == (target_stat.st_dev, target_stat.st_ino) {
                return Ok(());
            }
        }
        let link =
            |at: At<'_>| rfs::linkat(&target_dir, target_name, at.dir, at.name, AtFlags::empty());
        match link(at) {
            Ok(()) => return Ok(()),
            Err(Errno::EXIST) => self.clear(at)?,
            Err(e) => return Err(os_error("linking", at.path, e.into())),
        }
        // What stood at this entry's name may have held the target.
        if !exists(target_dir.as_fd(), target_name) {
            return Err(unsafe_path(&entry.path, "links to a missing target"));
        }
        link(at).map_err(|e| os_error("linking", at.path, e.into()))
    }

    /// A FIFO, or with keep_owners a device node.
    fn node(&mut self, at: At<'_>, entry: &Entry, kind: FileType, dev: u64) -> Result<()> {
        self.replacing(at, |at| {
            rfs::mknodat(at.dir, at.name, kind, Mode::from_raw_mode(0o600), dev)
        })?;
        if self.options.keep_owners {
            self.chown_at(at, entry)?;
        }
        // The node was just made here, by us: the mode cannot go through
        // a link.
        rfs::chmodat(
            at.dir,
            at.name,
            Mode::from_raw_mode(entry.mode & 0o7777),
            AtFlags::empty(),
        )
        .map_err(|e| os_error("setting the mode of", at.path, e.into()))?;
        self.set_xattrs_at(at, entry)?;
        rfs::utimensat(
            at.dir,
            at.name,
            &times(entry.mtime),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| os_error("setting the times of", at.path, e.into()))
    }

    /// Runs `make`; when something stands at the name, removes it (a
    /// directory with its whole tree) and runs `make` once more.
    fn replacing<T>(
        &mut self,
        at: At<'_>,
        make: impl Fn(At<'_>) -> std::result::Result<T, Errno>,
    ) -> Result<T> {
        match make(at) {
            Err(Errno::EXIST) => {
                self.clear(at)?;
                make(at).map_err(|e| os_error("creating", at.path, e.into()))
            }
            done => done.map_err(|e| os_error("creating", at.path, e.into())),
        }
    }

    /// Removes what stands at the entry's name, and what was recorded
    /// under it.
    fn clear(&mut self, at: At<'_>) -> Result<()> {
        root::remove_tree_bytes(at.dir, at.name)
            .map_err(|e| os_error("replacing", at.path, e.into()))?;
        remove_under(&mut self.dirs, at.path);
        Ok(())
    }

    fn chown_at(&self, at: At<'_>, entry: &Entry) -> Result<()> {
        let (uid, gid) = owner(entry)?;
        rfs::chownat(
            at.dir,
            at.name,
            Some(uid),
            Some(gid),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| os_error("setting the owner of", at.path, e.into()))
    }

    /// The xattrs of a symlink, FIFO or device (keep_owners only: `user.*`
    /// is for files and directories alone). Such a node cannot be opened
    /// for `fsetxattr` and `setxattrat` is too new, so `lsetxattr` takes
    /// `/proc/self/fd/<parent>/<name>`: the parent's magic link is ours,
    /// and the last component is not followed. Without /proc they are
    /// skipped.
    fn set_xattrs_at(&self, at: At<'_>, entry: &Entry) -> Result<()> {
        if !self.options.keep_owners || entry.xattrs.is_empty() {
            return Ok(());
        }
        let mut path = format!("/proc/self/fd/{}/", at.dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(at.name);
        let path = OsStr::from_bytes(&path);
        for (name, value) in &entry.xattrs {
            match rfs::lsetxattr(path, name.as_slice(), value, XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP) => {}
                Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => return Ok(()),
                Err(e) => return Err(os_error("setting an xattr of", at.path, e.into())),
            }
        }
        Ok(())
    }

    /// Rootless: `user.*` only, where the filesystem takes them. With
    /// keep_owners: every xattr; only a filesystem without xattrs is let
    /// pass.
    fn set_xattrs(&self, fd: BorrowedFd<'_>, entry: &Entry, path: &[u8]) -> Result<()> {
        for (name, value) in &entry.xattrs {
            let all = self.options.keep_owners;
            if !all && !name.starts_with(b"user.") {
                continue;
            }
            match rfs::fsetxattr(fd, name.as_slice(), value, XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP) => {}
                Err(Errno::PERM) if !all => {}
                Err(e) => return Err(os_error("setting an xattr of", path, e.into())),
            }
        }
        Ok(())
    }
}

/// Where an entry goes: its resolved parent directory and its last name.
#[derive(Clone, Copy)]
struct At<'a> {
    dir: BorrowedFd<'a>,
    name: &'a [u8],
    /// The cleaned entry path, for messages and records.
    path: &'a [u8],
}

fn is_dir(at: At<'_>) -> Result<bool> {
    match rfs::statat(at.dir, at.name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(FileType::from_raw_mode(stat.st_mode) == FileType::Directory),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(os_error("reading", at.path, e.into())),
    }
}

fn exists(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

fn check(cancel: Option<&Cancel>) -> Result<()> {
    match cancel {
        Some(cancel) if cancel.is_cancelled() => Err(Error::cancelled()),
        _ => Ok(()),
    }
}

fn identity(stat: &rfs::Stat) -> (u64, u64) {
    (stat.st_dev, stat.st_ino)
}

fn owner(entry: &Entry) -> Result<(Uid, Gid)> {
    match (u32::try_from(entry.uid), u32::try_from(entry.gid)) {
        // -1 would mean "leave unchanged" to chown.
        (Ok(uid), Ok(gid)) if uid != u32::MAX && gid != u32::MAX => {
            Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
        }
        _ => Err(Error::layer(
            Reason::BadLayer,
            format!(
                "{}: owner {}:{} is out of range",
                show(&entry.path),
                entry.uid,
                entry.gid
            ),
        )),
    }
}

/// Access time = modification time, as umoci and GNU tar leave them.
fn times(mtime: Timestamp) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime.secs,
        tv_nsec: i64::from(mtime.nanos.min(999_999_999)),
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

/// Marks `path` as this layer's. Its ancestors are not stored: `touched`
/// finds them by range, so the record costs each name once, not once per
/// ancestor (a layer of deep distinct names would cost their depth
/// squared).
fn mark(written: &mut BTreeSet<Vec<u8>>, path: &[u8]) {
    written.insert(path.to_vec());
}

/// Whether this layer wrote `path`, or anything under it.
fn touched(written: &BTreeSet<Vec<u8>>, path: &[u8]) -> bool {
    let (low, high) = below(path);
    written.contains(path) || written.range(low..high).next().is_some()
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    if parent.is_empty() {
        return name.to_vec();
    }
    let mut path = Vec::with_capacity(parent.len() + 1 + name.len());
    path.extend_from_slice(parent);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// The keys `path/...` sort between `path/` and `path0` (`0` follows `/`).
fn below(path: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut low = path.to_vec();
    low.push(b'/');
    let mut high = path.to_vec();
    high.push(b'0');
    (low, high)
}

fn remove_under<V>(map: &mut BTreeMap<Vec<u8>, V>, path: &[u8]) {
    map.remove(path);
    let (low, high) = below(path);
    let gone: Vec<Vec<u8>> = map.range(low..high).map(|(k, _)| k.clone()).collect();
    for key in gone {
        map.remove(&key);
    }
}

/// A name for a message: a hostile one may be 1 MiB long, so only its
/// first 200 characters and its length are shown.
fn show(name: &[u8]) -> String {
    const SHOWN: usize = 200;
    let lossy = String::from_utf8_lossy(name);
    let mut chars = lossy.chars();
    let head: String = chars.by_ref().take(SHOWN).collect();
    match chars.next() {
        Some(_) => format!("{head}... ({} bytes)", name.len()),
        None => head,
    }
}

fn show_path(path: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(path))
}

fn unsafe_path(name: &[u8], why: &str) -> Error {
    Error::layer(Reason::UnsafePath, format!("{}: {why}", show(name)))
}

/// An OS error on our own tree: a name too long or a symlink loop is the
/// layer's fault (`bad_layer`); anything else (a full disk) is `io`.
fn os_error(what: &str, path: &[u8], e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENAMETOOLONG) => Error::layer(
            Reason::BadLayer,
            format!("{}: a name longer than the filesystem takes", show(path)),
        ),
        Some(libc::ELOOP) => Error::layer(
            Reason::BadLayer,
            format!("{}: too many levels of symbolic links", show(path)),
        ),
        _ => Error::io(what, show_path(path), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::path::PathBuf;

    /// A layer written with hand-made headers: any name goes, even those
    /// `tar::Builder`'s own checks refuse.
    #[derive(Default)]
    struct Layer {
        builder: Option<tar::Builder<Vec<u8>>>,
    }

    const MTIME: u64 = 1_600_000_000;

    impl Layer {
        fn new() -> Layer {
            Layer {
                builder: Some(tar::Builder::new(Vec::new())),
            }
        }

        fn add(
            mut self,
            name: &str,
            kind: tar::EntryType,
            mode: u32,
            link: &str,
            body: &[u8],
        ) -> Layer {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_uid(1000);
            header.set_gid(1000);
            header.set_mtime(MTIME);
            header.set_size(body.len() as u64);
            header.set_device_major(1).unwrap();
            header.set_device_minor(3).unwrap();
            let old = header.as_old_mut();
            assert!(name.len() <= 100 && link.len() <= 100);
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_cksum();
            self.builder
                .as_mut()
                .unwrap()
                .append(&header, body)
                .unwrap();
            self
        }

        fn file(self, name: &str, body: &str) -> Layer {
            self.add(name, tar::EntryType::Regular, 0o644, "", body.as_bytes())
        }

        fn file_mode(self, name: &str, mode: u32) -> Layer {
            self.add(name, tar::EntryType::Regular, mode, "", b"x")
        }

        fn dir(self, name: &str) -> Layer {
            self.add(name, tar::EntryType::Directory, 0o755, "", b"")
        }

        fn dir_mode(self, name: &str, mode: u32) -> Layer {
            self.add(name, tar::EntryType::Directory, mode, "", b"")
        }

        fn symlink(self, name: &str, target: &str) -> Layer {
            self.add(name, tar::EntryType::Symlink, 0o777, target, b"")
        }

        fn hardlink(self, name: &str, target: &str) -> Layer {
            self.add(name, tar::EntryType::Link, 0o644, target, b"")
        }

        /// PAX `SCHILY.xattr.*` records for the next entry.
        fn xattrs(mut self, xattrs: &[(&str, &[u8])]) -> Layer {
            let records: Vec<(String, &[u8])> = xattrs
                .iter()
                .map(|(name, value)| (format!("SCHILY.xattr.{name}"), *value))
                .collect();
            self.builder
                .as_mut()
                .unwrap()
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
            self
        }

        fn bytes(mut self) -> Vec<u8> {
            self.builder.take().unwrap().into_inner().unwrap()
        }
    }

    /// A root to unpack into, beside a sentinel tree that must never
    /// change.
    struct Fixture {
        _tmp: tempfile::TempDir,
        top: PathBuf,
        root: PathBuf,
        sentinel: PathBuf,
        before: Vec<String>,
    }

    fn fixture() -> Fixture {
        fixture_in(&std::env::temp_dir())
    }

    /// Deep trees are built on tmpfs: ext4 takes about a millisecond per
    /// nested mkdir here.
    fn fixture_in(base: &Path) -> Fixture {
        let tmp = tempfile::tempdir_in(base).unwrap();
        let top = tmp.path().to_path_buf();
        let root = top.join("root");
        let sentinel = top.join("sentinel");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir_all(sentinel.join("etc")).unwrap();
        std::fs::write(sentinel.join("keep"), b"sentinel").unwrap();
        std::fs::write(sentinel.join("etc/passwd"), b"root:x:0:0").unwrap();
        std::os::unix::fs::symlink("etc", sentinel.join("link")).unwrap();
        let before = snapshot(&top, &["root"]);
        Fixture {
            _tmp: tmp,
            top,
            root,
            sentinel,
            before,
        }
    }

    /// Every path under `dir` (less `skip`) with its type, mode, size,
    /// mtime and content or target.
    fn snapshot(dir: &Path, skip: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                if skip.contains(&rel.as_str()) {
                    continue;
                }
                let m = std::fs::symlink_metadata(&p).unwrap();
                let what = if m.is_dir() {
                    todo.push(p.clone());
                    String::new()
                } else if m.file_type().is_symlink() {
                    std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                } else if m.is_file() {
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()
                } else {
                    // A FIFO or a device: never opened.
                    format!("{:?}", m.file_type())
                };
                out.push(format!("{rel} {:o} {} {what}", m.mode(), m.mtime()));
            }
        }
        out.sort();
        out
    }

    impl Fixture {
        fn tree(&self, resolver: Resolver, options: Options) -> Tree {
            let fd = rfs::open(
                &self.root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .unwrap();
            Tree::with_resolver(fd, options, resolver)
        }

        fn untouched(&self) {
            assert_eq!(
                snapshot(&self.top, &["root"]),
                self.before,
                "outside the root changed"
            );
        }

        fn path(&self, name: &str) -> PathBuf {
            self.root.join(name)
        }

        fn read(&self, name: &str) -> String {
            String::from_utf8(std::fs::read(self.path(name)).unwrap()).unwrap()
        }

        fn exists(&self, name: &str) -> bool {
            std::fs::symlink_metadata(self.path(name)).is_ok()
        }

        fn names(&self) -> Vec<String> {
            snapshot(&self.root, &[])
                .into_iter()
                .map(|l| l.split(' ').next().unwrap().to_string())
                .collect()
        }
    }

    /// Through `apply_layer`: the layer's own `TarStream`.
    fn apply(tree: &mut Tree, layer: Vec<u8>) -> Result<()> {
        tree.apply_layer(&mut layer.as_slice(), None)
    }

    fn both(test: impl Fn(Resolver)) {
        test(Resolver::Openat2);
        test(Resolver::Walk);
    }

    fn rootless() -> Options {
        Options::default()
    }

    /// Applies `layers` in order; the last one's error, the others must
    /// apply.
    fn refused(resolver: Resolver, layers: Vec<Vec<u8>>) -> (Fixture, Error) {
        let fx = fixture();
        let mut tree = fx.tree(resolver, rootless());
        let last = layers.len() - 1;
        for (i, layer) in layers.into_iter().enumerate() {
            let done = apply(&mut tree, layer);
            if i < last {
                done.unwrap();
            } else {
                let err = done.unwrap_err();
                fx.untouched();
                return (fx, err);
            }
        }
        unreachable!()
    }

    fn assert_refused(resolver: Resolver, layers: Vec<Vec<u8>>, reason: Reason, names: &str) {
        let (_fx, err) = refused(resolver, layers);
        assert_eq!(err.reason, reason, "{resolver:?}: {err}");
        assert!(
            err.message.contains(names),
            "{resolver:?}: {err} should name {names}"
        );
    }

    #[test]
    fn names_that_climb_are_unsafe_path() {
        both(|r| {
            for name in ["../x", "a/../../x", "/../sentinel/keep", "./../../x"] {
                let layer = Layer::new().dir("a/").file(name, "evil").bytes();
                assert_refused(r, vec![layer], Reason::UnsafePath, name);
            }
            for target in ["../sentinel/keep", "a/../../sentinel/keep"] {
                let layer = Layer::new().file("a", "x").hardlink("h", target).bytes();
                assert_refused(r, vec![layer], Reason::UnsafePath, "h");
            }
        });
    }

    #[test]
    fn absolute_names_and_names_that_come_back_stay_in_the_root() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let layer = Layer::new()
                .file("/etc/passwd", "ours")
                .file("a/../b", "b")
                .file("./c/./d", "d")
                .bytes();
            apply(&mut tree, layer).unwrap();
            tree.finish().unwrap();
            assert_eq!(fx.read("etc/passwd"), "ours");
            assert_eq!(fx.read("b"), "b");
            assert_eq!(fx.read("c/d"), "d");
            assert!(!fx.exists("a"), "{:?}", fx.names());
            fx.untouched();
        });
    }

    #[test]
    fn symlinks_on_the_way_resolve_inside_the_root() {
        both(|r| {
            let fx = fixture();
            let host_sentinel = fx.sentinel.to_str().unwrap().to_string();
            let mut tree = fx.tree(r, rootless());
            let lower = Layer::new()
                .symlink("etc", "/")
                .symlink("up", "../../../../..")
                .symlink("c1", "c2")
                .symlink("c2", "up/c3")
                .symlink("c3", "../sentinel")
                .symlink("host", &host_sentinel)
                .symlink("rel", "dir/../../..")
                .dir("dir/")
                .bytes();
            apply(&mut tree, lower).unwrap();
            let upper = Layer::new()
                .file("etc/passwd", "via etc")
                .file("up/x", "via up")
                .file("c1/keep", "via chain")
                .file("host/keep", "via host path")
                .file("rel/y", "via rel")
                .file("etc/etc/etc/z", "etc thrice")
                .bytes();
            apply(&mut tree, upper).unwrap();
            tree.finish().unwrap();
            assert_eq!(fx.read("passwd"), "via etc");
            assert_eq!(fx.read("x"), "via up");
            assert_eq!(fx.read("sentinel/keep"), "via chain");
            let inside = host_sentinel.trim_start_matches('/');
            assert_eq!(fx.read(&format!("{inside}/keep")), "via host path");
            assert_eq!(fx.read("y"), "via rel");
            assert_eq!(fx.read("z"), "etc thrice");
            // Links are kept verbatim.
            assert_eq!(
                std::fs::read_link(fx.path("up")).unwrap(),
                Path::new("../../../../..")
            );
            fx.untouched();
        });
    }

    #[test]
    fn the_last_component_is_never_followed() {
        both(|r| {
            let fx = fixture();
            let host_sentinel = fx.sentinel.to_str().unwrap().to_string();
            let mut tree = fx.tree(r, rootless());
            let lower = Layer::new()
                .symlink("d", &host_sentinel)
                .symlink("f", &format!("{host_sentinel}/keep"))
                .symlink("g", "../sentinel/keep")
                .bytes();
            apply(&mut tree, lower).unwrap();
            // A directory, a file and a symlink over the links.
            let upper = Layer::new()
                .dir("d/")
                .file("d/inside", "in d")
                .file("f", "replaced")
                .symlink("g", "elsewhere")
                .bytes();
            apply(&mut tree, upper).unwrap();
            tree.finish().unwrap();
            assert!(fx.path("d").symlink_metadata().unwrap().is_dir());
            assert_eq!(fx.read("d/inside"), "in d");
            assert!(fx.path("f").symlink_metadata().unwrap().is_file());
            assert_eq!(fx.read("f"), "replaced");
            assert_eq!(
                std::fs::read_link(fx.path("g")).unwrap(),
                Path::new("elsewhere")
            );
            fx.untouched();
        });
    }

    #[test]
    fn hardlinks_must_name_an_existing_non_directory_inside() {
        both(|r| {
            let host_keep = format!("{}/keep", fixture().sentinel.display());
            let cases: Vec<(Layer, &str)> = vec![
                (Layer::new().hardlink("h", &host_keep), "missing"),
                (Layer::new().hardlink("h", "missing"), "missing"),
                (Layer::new().dir("d/").hardlink("h", "d"), "directory"),
                (Layer::new().dir("d/").hardlink("h", "d/"), "directory"),
                (Layer::new().hardlink("h", "/"), "root"),
                (Layer::new().hardlink("h", "."), "root"),
                (
                    Layer::new()
                        .symlink("s", "../sentinel")
                        .hardlink("h", "s/keep"),
                    "missing",
                ),
                (
                    Layer::new()
                        .dir("d/")
                        .symlink("s", "/")
                        .hardlink("h", "s/d"),
                    "directory",
                ),
                (
                    Layer::new().symlink("s", "/").hardlink("h", "s/nothing"),
                    "missing",
                ),
                (
                    Layer::new()
                        .symlink("s", "..")
                        .hardlink("h", "s/sentinel/keep"),
                    "missing",
                ),
            ];
            for (case, (layer, why)) in cases.into_iter().enumerate() {
                let bytes = layer.bytes();
                let names = format!("case {case}");
                let fx = fixture();
                let mut tree = fx.tree(r, rootless());
                let err = apply(&mut tree, bytes).expect_err(&format!("{r:?} {names}"));
                fx.untouched();
                assert_eq!(err.reason, Reason::UnsafePath, "{r:?}: {err} {names}");
                assert!(
                    err.message.starts_with("h: ") && err.message.contains(why),
                    "{err}"
                );
            }
        });
    }

    #[test]
    fn hardlinks_inside_link_the_same_inode() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let layer = Layer::new()
                .file("a/f", "shared")
                .symlink("etc", "/a")
                .symlink("s", "f")
                .hardlink("h1", "a/f")
                .hardlink("h2", "/etc/f")
                .hardlink("h3", "s")
                .hardlink("h1", "a/f")
                .file("h4", "replaced by a link")
                .hardlink("h4", "a/f")
                .bytes();
            apply(&mut tree, layer).unwrap();
            tree.finish().unwrap();
            let ino = |n: &str| fx.path(n).symlink_metadata().unwrap().ino();
            assert_eq!(ino("h1"), ino("a/f"));
            assert_eq!(ino("h2"), ino("a/f"));
            assert_eq!(ino("h4"), ino("a/f"));
            assert_eq!(fx.path("a/f").metadata().unwrap().nlink(), 4);
            // A link to a symlink links the symlink itself.
            assert_eq!(ino("h3"), ino("s"));
            assert!(fx
                .path("h3")
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink());
            fx.untouched();
        });
    }

    #[test]
    fn whiteouts_that_climb_or_name_dot_are_unsafe_path() {
        both(|r| {
            for name in [
                "a/.wh..",
                "a/.wh...",
                ".wh..",
                ".wh...",
                "../.wh.x",
                "a/../../.wh.keep",
            ] {
                let layer = Layer::new().dir("a/").file(name, "").bytes();
                assert_refused(r, vec![layer], Reason::UnsafePath, name);
            }
        });
    }

    #[test]
    fn whiteouts_remove_what_the_layers_below_put_and_are_not_created() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let lower = Layer::new()
                .file("f", "f")
                .dir("d/")
                .dir("d/sub/")
                .file("d/sub/x", "x")
                .symlink("l", "/d")
                .symlink("up", "../..")
                .file("a/keep", "k")
                .hardlink("a/h", "f")
                .bytes();
            apply(&mut tree, lower).unwrap();
            let upper = Layer::new()
                .file(".wh.f", "")
                .file(".wh.d", "")
                .file(".wh.l", "")
                .file("a/.wh.h", "")
                .file(".wh.missing", "")
                .file("missing/.wh.x", "")
                .file("up/.wh.sentinel", "")
                .file("a/.wh..wh.plnk", "")
                .file(".wh..wh.aufs", "")
                .bytes();
            apply(&mut tree, upper).unwrap();
            tree.finish().unwrap();
            assert_eq!(fx.names(), ["a", "a/keep", "up"]);
            fx.untouched();
        });
    }

    #[test]
    fn opaque_markers_hide_the_lower_layers_in_either_order() {
        both(|r| {
            for marker_first in [true, false] {
                let fx = fixture();
                let mut tree = fx.tree(r, rootless());
                let lower = Layer::new()
                    .dir("d/")
                    .file("d/old", "old")
                    .file("d/mine", "lower")
                    .dir("d/sub/")
                    .file("d/sub/x", "x")
                    .dir("d/gone/")
                    .file("d/gone/y", "y")
                    .file("other/z", "z")
                    .bytes();
                apply(&mut tree, lower).unwrap();
                let mut upper = Layer::new().dir("d/");
                if marker_first {
                    upper = upper.file("d/.wh..wh..opq", "");
                }
                upper = upper
                    .file("d/mine", "upper")
                    .file("d/sub/new", "new")
                    .file("d/fresh/n", "n");
                if !marker_first {
                    upper = upper.file("d/.wh..wh..opq", "");
                }
                apply(&mut tree, upper.bytes()).unwrap();
                tree.finish().unwrap();
                assert_eq!(
                    fx.names(),
                    [
                        "d",
                        "d/fresh",
                        "d/fresh/n",
                        "d/mine",
                        "d/sub",
                        "d/sub/new",
                        "other",
                        "other/z"
                    ],
                    "{r:?} marker first: {marker_first}"
                );
                assert_eq!(fx.read("d/mine"), "upper");
                fx.untouched();
            }
        });
    }

    #[test]
    fn duplicates_and_type_changes_replace_as_tar_does() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            apply(
                &mut tree,
                Layer::new()
                    .file("f", "first")
                    .file("f", "second")
                    .dir("d/")
                    .file("d/kept", "k")
                    .dir("d/")
                    .dir("x/")
                    .file("x/a", "a")
                    .bytes(),
            )
            .unwrap();
            // A file over a directory, a directory over a file.
            apply(
                &mut tree,
                Layer::new().file("x", "file now").dir("f/").bytes(),
            )
            .unwrap();
            assert_eq!(fx.read("x"), "file now");
            // And back, in a third layer.
            apply(
                &mut tree,
                Layer::new()
                    .dir("x/")
                    .file("x/b", "b")
                    .file("f", "file again")
                    .bytes(),
            )
            .unwrap();
            tree.finish().unwrap();
            assert_eq!(fx.names(), ["d", "d/kept", "f", "x", "x/b"]);
            assert_eq!(fx.read("f"), "file again");
            fx.untouched();
        });
    }

    #[test]
    fn devices_are_skipped_rootless_and_fifos_made() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            apply(&mut tree, Layer::new().file("null", "lower file").bytes()).unwrap();
            let mut layer = Layer::new().add("fifo", tar::EntryType::Fifo, 0o640, "", b"");
            for (name, kind) in [
                ("null", tar::EntryType::Char),
                ("sda", tar::EntryType::Block),
            ] {
                layer = layer.add(name, kind, 0o666, "", b"");
            }
            apply(&mut tree, layer.bytes()).unwrap();
            tree.finish().unwrap();
            assert_eq!(fx.names(), ["fifo"]);
            let fifo = fx.path("fifo").symlink_metadata().unwrap();
            assert!(fifo.file_type().is_fifo());
            assert_eq!(fifo.mode() & 0o7777, 0o640);
            assert_eq!(fifo.mtime(), MTIME as i64);
            fx.untouched();
        });
    }

    #[test]
    fn modes_with_setuid_and_times_are_set_and_directories_last() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let layer = Layer::new()
                .dir_mode("./", 0o750)
                .dir_mode("ro/", 0o555)
                .dir_mode("tmp/", 0o1777)
                .dir_mode("sgid/", 0o2755)
                .file_mode("suid", 0o4755)
                .file_mode("tmp/none", 0o000)
                .symlink("link", "suid")
                .bytes();
            apply(&mut tree, layer).unwrap();
            // Read-only, as the layer says, only at the end: later layers
            // still write into it.
            let ro = fx.path("ro").metadata().unwrap().mode();
            assert_eq!(ro & 0o700, 0o700, "ro is {ro:o} before finish");
            apply(
                &mut tree,
                Layer::new()
                    .file("ro/later", "later")
                    .file("ro/sub/deep", "d")
                    .bytes(),
            )
            .unwrap();
            tree.finish().unwrap();
            let mode = |n: &str| fx.path(n).symlink_metadata().unwrap().mode() & 0o7777;
            assert_eq!(mode(""), 0o750);
            assert_eq!(mode("ro"), 0o555);
            assert_eq!(mode("tmp"), 0o1777);
            assert_eq!(mode("sgid"), 0o2755);
            assert_eq!(mode("suid"), 0o4755);
            assert_eq!(mode("tmp/none"), 0o000);
            assert_eq!(fx.read("ro/later"), "later");
            for n in ["", "ro", "tmp", "sgid", "suid", "tmp/none", "link"] {
                let m = fx.path(n).symlink_metadata().unwrap();
                assert_eq!((n, m.mtime(), m.atime()), (n, MTIME as i64, MTIME as i64));
            }
            fx.untouched();
        });
    }

    #[test]
    fn a_dangling_link_on_the_way_makes_its_target_inside_as_containerd_does() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            apply(
                &mut tree,
                Layer::new()
                    .symlink("lib", "/usr/lib")
                    .symlink("loop", "loop")
                    .bytes(),
            )
            .unwrap();
            apply(&mut tree, Layer::new().file("lib/x/so", "so").bytes()).unwrap();
            assert_eq!(fx.read("usr/lib/x/so"), "so");
            assert!(fx
                .path("lib")
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink());
            let err = apply(&mut tree, Layer::new().file("loop/x", "").bytes()).unwrap_err();
            assert_eq!(err.reason, Reason::BadLayer, "{r:?}: {err}");
            assert!(err.message.contains("loop/x"), "{err}");
            fx.untouched();
        });
    }

    #[test]
    fn a_name_longer_than_the_os_takes_is_bad_layer() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let long = "n".repeat(300);
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_size(1);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(MTIME);
            builder
                .append_data(&mut header, format!("d/{long}"), &b"x"[..])
                .unwrap();
            let err = apply(&mut tree, builder.into_inner().unwrap()).unwrap_err();
            assert_eq!(err.reason, Reason::BadLayer, "{r:?}: {err}");
            // Named, but not whole: a hostile name may be 1 MiB long.
            assert!(
                err.message.contains(&format!("d/{}", &long[..198])),
                "{err}"
            );
            assert!(err.message.contains("(302 bytes)"), "{err}");
            assert!(!err.message.contains(&long), "{err}");
            fx.untouched();
        });
    }

    #[test]
    fn a_whiteout_removes_a_5000_deep_read_only_tree() {
        both(|r| {
            let fx = fixture_in(Path::new("/dev/shm"));
            let mut tree = fx.tree(r, rootless());
            apply(&mut tree, Layer::new().dir("deep/").bytes()).unwrap();
            let mut cur = rfs::open(
                fx.path("deep"),
                OFlags::RDONLY | OFlags::DIRECTORY,
                Mode::empty(),
            )
            .unwrap();
            for _ in 0..5000 {
                rfs::mkdirat(&cur, c"d", Mode::RWXU).unwrap();
                let next = root::open_dir(cur.as_fd(), b"d").unwrap();
                rfs::fchmod(&cur, Mode::from_raw_mode(0o555)).unwrap();
                cur = next;
            }
            drop(cur);
            apply(&mut tree, Layer::new().file(".wh.deep", "").bytes()).unwrap();
            tree.finish().unwrap();
            assert!(fx.names().is_empty());
            fx.untouched();
        });
    }

    #[test]
    fn cancel_is_seen_between_entries() {
        let fx = fixture();
        let mut tree = fx.tree(Resolver::Openat2, rootless());
        let cancel = Cancel::new();
        cancel.cancel();
        let layer = Layer::new().file("f", "x").bytes();
        let err = tree
            .apply_layer(&mut layer.as_slice(), Some(&cancel))
            .unwrap_err();
        assert_eq!(err.reason, Reason::Cancelled);
        assert!(!fx.exists("f"));
    }

    #[test]
    fn keep_owners_sets_owners_devices_and_every_xattr() {
        // Root only (the tests run as root here); fails loudly otherwise.
        assert!(
            rustix::process::geteuid().is_root(),
            "keep_owners needs root"
        );
        both(|r| {
            let fx = fixture();
            let options = Options {
                keep_owners: true,
                replace: false,
            };
            let mut tree = fx.tree(r, options);
            let layer = Layer::new()
                .dir("d/")
                .file_mode("d/suid", 0o4755)
                .xattrs(&[("trusted.l", b"on the link")])
                .symlink("d/l", "suid")
                .xattrs(&[("trusted.n", b"on the node")])
                .add("null", tar::EntryType::Char, 0o666, "", b"")
                .bytes();
            apply(&mut tree, layer).unwrap();
            tree.finish().unwrap();
            for n in ["d", "d/suid", "d/l", "null"] {
                let m = fx.path(n).symlink_metadata().unwrap();
                assert_eq!((n, m.uid(), m.gid()), (n, 1000, 1000));
            }
            // Owners before modes: the setuid bit survives the chown.
            assert_eq!(
                fx.path("d/suid").metadata().unwrap().mode() & 0o7777,
                0o4755
            );
            assert!(fx
                .path("null")
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_char_device());
            assert_eq!(
                xattr(&fx.path("d/l"), "trusted.l").as_deref(),
                Some(&b"on the link"[..])
            );
            assert_eq!(
                xattr(&fx.path("null"), "trusted.n").as_deref(),
                Some(&b"on the node"[..])
            );
            // The link's target did not get it.
            assert_eq!(xattr(&fx.path("d/suid"), "trusted.l"), None);
            fx.untouched();
        });
    }

    #[test]
    fn a_whiteout_in_the_same_layer_hides_only_the_layers_below() {
        both(|r| {
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let lower = Layer::new().file("d/old", "old").file("f", "lower").bytes();
            apply(&mut tree, lower).unwrap();
            let upper = Layer::new()
                .file("d/new", "new")
                .file("f", "upper")
                .file(".wh.d", "")
                .file(".wh.f", "")
                .bytes();
            apply(&mut tree, upper).unwrap();
            tree.finish().unwrap();
            assert_eq!(fx.names(), ["d", "d/new", "f"]);
            assert_eq!(fx.read("f"), "upper");
            fx.untouched();
        });
    }

    #[test]
    fn the_root_is_only_a_directory_and_whiteouts_need_a_name() {
        both(|r| {
            let layer = Layer::new().file("./", "not a dir").bytes();
            assert_refused(r, vec![layer], Reason::BadLayer, "./");
            let layer = Layer::new().symlink("/", "/elsewhere").bytes();
            assert_refused(r, vec![layer], Reason::BadLayer, "/");
            let layer = Layer::new().file("a/.wh.", "").bytes();
            assert_refused(r, vec![layer], Reason::BadLayer, "a/.wh.");
        });
    }

    fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        match rfs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(Errno::NODATA) => None,
            Err(e) => panic!("lgetxattr {}: {e}", path.display()),
        }
    }

    #[test]
    fn rootless_applies_user_xattrs_only_and_keep_owners_all() {
        both(|r| {
            for keep_owners in [false, true] {
                let fx = fixture();
                let options = Options {
                    keep_owners,
                    replace: false,
                };
                let mut tree = fx.tree(r, options);
                let xattrs: &[(&str, &[u8])] = &[("user.mime", b"text/plain"), ("trusted.t", b"t")];
                let layer = Layer::new()
                    .xattrs(xattrs)
                    .dir("d/")
                    .xattrs(xattrs)
                    .file("d/f", "x")
                    .bytes();
                apply(&mut tree, layer).unwrap();
                tree.finish().unwrap();
                for n in ["d", "d/f"] {
                    let p = fx.path(n);
                    assert_eq!(
                        xattr(&p, "user.mime").as_deref(),
                        Some(&b"text/plain"[..]),
                        "{n}"
                    );
                    let trusted = xattr(&p, "trusted.t");
                    assert_eq!(
                        trusted.is_some(),
                        keep_owners,
                        "{n} keep_owners {keep_owners}"
                    );
                }
                fx.untouched();
            }
        });
    }

    /// A layer whose bytes fire the cancel token once the first MiB is
    /// read: mid-body.
    struct Cancelling<'a> {
        bytes: &'a [u8],
        read: usize,
        cancel: Cancel,
    }

    impl Read for Cancelling<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.read > 1 << 20 {
                self.cancel.cancel();
            }
            let n = (&self.bytes[self.read..]).read(buf)?;
            self.read += n;
            Ok(n)
        }
    }

    #[test]
    fn cancel_is_seen_within_a_long_body() {
        let fx = fixture();
        let mut tree = fx.tree(Resolver::Openat2, rootless());
        let big = vec![7u8; 24 << 20];
        let layer = Layer::new()
            .add("big", tar::EntryType::Regular, 0o644, "", &big)
            .file("after", "x")
            .bytes();
        let cancel = Cancel::new();
        let mut source = Cancelling {
            bytes: &layer,
            read: 0,
            cancel: cancel.clone(),
        };
        let err = tree.apply_layer(&mut source, Some(&cancel)).unwrap_err();
        assert_eq!(err.reason, Reason::Cancelled);
        let written = fx.path("big").metadata().unwrap().len();
        assert!(
            written < 8 << 20,
            "{written} bytes written after the cancel"
        );
        assert!(!fx.exists("after"));
    }

    #[test]
    fn a_directory_named_through_a_link_takes_its_latest_declaration() {
        both(|r| {
            let mode = |fx: &Fixture, n: &str| fx.path(n).metadata().unwrap().mode() & 0o7777;
            // Declared through a link, then removed by its real name and
            // declared again: the first declaration's key outlives it.
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let lower = Layer::new()
                .dir("b/")
                .symlink("a", "b")
                .dir_mode("a/c/", 0o700)
                .bytes();
            apply(&mut tree, lower).unwrap();
            let upper = Layer::new().file("b/.wh.c", "").dir_mode("b/c/", 0o751);
            apply(&mut tree, upper.bytes()).unwrap();
            tree.finish().unwrap();
            assert_eq!(mode(&fx, "b/c"), 0o751, "{r:?}: a stale declaration won");
            fx.untouched();
            // Declared by its real name, then again through a link that
            // sorts after it.
            let fx = fixture();
            let mut tree = fx.tree(r, rootless());
            let lower = Layer::new()
                .dir("a/")
                .symlink("b", "a")
                .dir_mode("a/c/", 0o700)
                .bytes();
            apply(&mut tree, lower).unwrap();
            apply(&mut tree, Layer::new().dir_mode("b/c/", 0o751).bytes()).unwrap();
            tree.finish().unwrap();
            assert_eq!(mode(&fx, "a/c"), 0o751, "{r:?}: an older declaration won");
            fx.untouched();
        });
    }

    #[test]
    fn the_record_of_written_paths_costs_each_name_once() {
        // A hostile layer of deep, distinct names: 1000 entries of 2000
        // levels would keep gigabytes if every ancestor were stored.
        let mut written = BTreeSet::new();
        let mut names = 0;
        for top in 0..50 {
            let path = format!("t{top}{}", "/a".repeat(2000)).into_bytes();
            names += path.len();
            mark(&mut written, &path);
        }
        let kept: usize = written.iter().map(Vec::len).sum();
        assert!(
            kept <= names,
            "{kept} bytes kept for {names} bytes of names"
        );
        assert!(touched(&written, b"t7"));
        assert!(touched(&written, b"t7/a/a"));
        assert!(!touched(&written, b"t7/b"));
        assert!(!touched(&written, b"t"));
        assert!(!touched(&written, b"t7/a/a/a/x"));
        mark(&mut written, b"d/e-f");
        assert!(touched(&written, b"d"));
        assert!(!touched(&written, b"d/e"));
    }

    #[test]
    fn os_errors_name_the_entry_and_blame_the_layer_only_for_its_names() {
        let full = os_error(
            "writing",
            b"usr/lib/big",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        assert_eq!(full.reason, Reason::Io);
        assert_eq!(full.path.as_deref(), Some(Path::new("usr/lib/big")));
        let long = os_error(
            "creating",
            b"a/nnn",
            io::Error::from_raw_os_error(libc::ENAMETOOLONG),
        );
        assert_eq!(
            (long.reason, long.message.starts_with("a/nnn: ")),
            (Reason::BadLayer, true)
        );
        let looped = os_error(
            "creating",
            b"l/x",
            io::Error::from_raw_os_error(libc::ELOOP),
        );
        assert_eq!(looped.reason, Reason::BadLayer);
    }
}
