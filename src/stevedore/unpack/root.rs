//! File operations confined to a root directory fd: names are resolved
//! with `openat2` (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`), or by a
//! component-by-component `O_NOFOLLOW` walk where openat2 is missing, as if
//! the root were `/`. No path string is joined and opened.
//!
//! Paths here are cleaned entry names (see `clean`): `/`-separated
//! components, none of them empty, `.` or `..`, and `b""` for the root.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, RawDir, ResolveFlags};
use rustix::io::Errno;

/// Symlinks followed in one resolution before it is a loop (Linux's own
/// limit, `ELOOP`).
const MAX_HOPS: usize = 40;

/// `openat2` answers EAGAIN (and EXDEV) when a rename raced the lookup; our
/// tree is private, so a few tries suffice.
const OPENAT2_TRIES: usize = 8;

/// The mode umoci (and `os.MkdirAll`) gives directories an entry implies
/// without declaring: 0o777, less the umask.
const IMPLICIT_DIR_MODE: u32 = 0o777;

/// `name` with leading `/` and `./` gone, empty and `.` components dropped
/// and `..` applied; `None` when `..` would climb above the root.
pub fn clean(name: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            _ => parts.push(part),
        }
    }
    Some(parts.join(&b'/'))
}

/// The parent path and the last component of a cleaned, non-root path.
pub fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (b"", path),
    }
}

/// How names are resolved under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// The kernel's `openat2(RESOLVE_IN_ROOT)`, with the walk for creating
    /// missing directories.
    Openat2,
    /// Our own walk, component by component, where openat2 is missing.
    Walk,
}

/// A directory fd met on a walk: the root's own, or one opened under it.
enum Dir<'a> {
    Root(BorrowedFd<'a>),
    Owned(OwnedFd),
}

impl AsFd for Dir<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Dir::Root(fd) => *fd,
            Dir::Owned(fd) => fd.as_fd(),
        }
    }
}

/// The root directory of the tree under construction.
pub struct Root {
    fd: OwnedFd,
    resolver: Resolver,
}

impl Root {
    /// A root resolved by `resolver` (tests run both).
    pub fn with_resolver(fd: OwnedFd, resolver: Resolver) -> Root {
        Root { fd, resolver }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory `path` names, every symlink on the way (the last
    /// component's too) resolved inside the root. With `create`, missing
    /// directories are made and non-directories in the way replaced by
    /// directories (as umoci does); without it, a missing one is `None`.
    pub fn dir(&mut self, path: &[u8], create: bool) -> io::Result<Option<OwnedFd>> {
        if path.is_empty() {
            return Ok(Some(dup(self.fd.as_fd())?));
        }
        if self.resolver == Resolver::Openat2 {
            match open_in_root(self.fd.as_fd(), path) {
                Ok(fd) => return Ok(Some(fd)),
                // Missing: ENOSYS before Linux 5.6, EPERM under seccomp
                // profiles of that time that deny calls they do not know
                // (Docker's before 20.10). The walk is as confined.
                Err(Errno::NOSYS | Errno::PERM) => self.resolver = Resolver::Walk,
                Err(Errno::NOENT | Errno::NOTDIR) if create => {}
                Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
        match walk(self.fd.as_fd(), path, create) {
            Ok(Dir::Owned(fd)) => Ok(Some(fd)),
            Ok(Dir::Root(fd)) => Ok(Some(dup(fd)?)),
            Err(Errno::NOENT | Errno::NOTDIR) if !create => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory `path` names without following its last component:
    /// `None` when it is missing or not a directory.
    pub fn existing_dir(&mut self, path: &[u8]) -> io::Result<Option<OwnedFd>> {
        if path.is_empty() {
            return Ok(Some(rfs::openat(
                self.fd.as_fd(),
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?));
        }
        let (parent, name) = split_last(path);
        let Some(parent) = self.dir(parent, false)? else {
            return Ok(None);
        };
        match open_dir(parent.as_fd(), name) {
            Ok(fd) => Ok(Some(fd)),
            Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    rustix::io::fcntl_dupfd_cloexec(fd, 0)
}

fn open_in_root(root: BorrowedFd<'_>, path: &[u8]) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rfs::openat2(
            root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN | Errno::XDEV) if tries < OPENAT2_TRIES => tries += 1,
            done => return done,
        }
    }
}

/// A directory to read and change, never through a symlink.
pub fn open_dir(parent: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn open_path_dir(parent: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    rfs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The walk: one component at a time from the root, each opened with
/// `O_NOFOLLOW`; a symlink's target is read and spliced in front of what
/// is left (an absolute one restarts at the root), `..` never climbs above
/// the root, and at most `MAX_HOPS` links are followed.
fn walk<'r>(root: BorrowedFd<'r>, path: &[u8], create: bool) -> Result<Dir<'r>, Errno> {
    // Components still to resolve, the next one last.
    let mut todo: Vec<Vec<u8>> = path
        .split(|&b| b == b'/')
        .rev()
        .map(<[u8]>::to_vec)
        .collect();
    let mut cur = Dir::Root(root);
    let mut depth = 0usize;
    let mut hops = 0usize;
    while let Some(part) = todo.pop() {
        match part.as_slice() {
            b"" | b"." => continue,
            b".." => {
                // `cur` is a directory below the root that we entered by
                // name, so its `..` is the one we came from.
                if depth > 0 {
                    depth -= 1;
                    cur = if depth == 0 {
                        Dir::Root(root)
                    } else {
                        Dir::Owned(open_path_dir(cur.as_fd(), b"..")?)
                    };
                }
                continue;
            }
            _ => {}
        }
        let stat = match rfs::statat(cur.as_fd(), part.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(stat),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(e),
        };
        match stat.map(|s| FileType::from_raw_mode(s.st_mode)) {
            Some(FileType::Directory) => {}
            Some(FileType::Symlink) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Errno::LOOP);
                }
                let target = rfs::readlinkat(cur.as_fd(), part.as_slice(), Vec::new())?;
                let target = target.into_bytes();
                if target.first() == Some(&b'/') {
                    cur = Dir::Root(root);
                    depth = 0;
                }
                todo.extend(target.split(|&b| b == b'/').rev().map(<[u8]>::to_vec));
                continue;
            }
            None if create => make_dir(cur.as_fd(), &part)?,
            None => return Err(Errno::NOENT),
            Some(_) if create => {
                rfs::unlinkat(cur.as_fd(), part.as_slice(), AtFlags::empty())?;
                make_dir(cur.as_fd(), &part)?;
            }
            Some(_) => return Err(Errno::NOTDIR),
        }
        cur = Dir::Owned(open_path_dir(cur.as_fd(), &part)?);
        depth += 1;
    }
    Ok(cur)
}

fn make_dir(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    rfs::mkdirat(parent, name, Mode::from_raw_mode(IMPLICIT_DIR_MODE))
}

/// Removes `name` in `parent` and, when it is a directory, everything in
/// it: iteratively (depth costs no stack and no fds), giving directories
/// it cannot enter or empty the owner's rwx first. A missing `name` is
/// fine.
#[allow(dead_code)] // The orchestrator's, on the temporary tree.
pub fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    remove_tree_bytes(parent, name.as_bytes()).map_err(io::Error::from)
}

/// One directory on the way down: its name in its parent and its
/// subdirectories not yet removed.
struct Level {
    name: Vec<u8>,
    subdirs: Vec<Vec<u8>>,
}

pub fn remove_tree_bytes(parent: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        // `parent` itself is left as it is: it may be the caller's.
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let mut cur = enter(parent, name)?;
    let mut levels = vec![Level {
        name: name.to_vec(),
        subdirs: empty_files(&cur)?,
    }];
    while let Some(level) = levels.last_mut() {
        if let Some(sub) = level.subdirs.pop() {
            let child = enter(cur.as_fd(), &sub)?;
            let subdirs = empty_files(&child)?;
            levels.push(Level { name: sub, subdirs });
            cur = child;
            continue;
        }
        let done = levels.pop().map(|l| l.name).unwrap_or_default();
        if levels.is_empty() {
            drop(cur);
            return rfs::unlinkat(parent, done.as_slice(), AtFlags::REMOVEDIR);
        }
        // Up by `..`: `cur` is a directory of this private tree that we
        // entered by name, so its `..` is the level above.
        let up = open_dir(cur.as_fd(), b"..")?;
        rfs::unlinkat(up.as_fd(), done.as_slice(), AtFlags::REMOVEDIR)?;
        cur = up;
    }
    Ok(())
}

/// Opens a directory to empty it, giving it u+rwx first when it refuses.
/// A mount point is `EBUSY`, never entered: an old tree replaced may hold
/// a bind mount of the host's (left from a container run in it), whose
/// files are not the tree's to remove.
fn enter(parent: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    let dir = match open_dir(parent, name) {
        Err(Errno::ACCESS) => {
            rfs::chmodat(parent, name, Mode::RWXU, AtFlags::empty())?;
            open_dir(parent, name)?
        }
        done => done?,
    };
    if is_mount_point(dir.as_fd(), parent)? {
        return Err(Errno::BUSY);
    }
    Ok(dir)
}

/// `statx`'s mount-root attribute (Linux 5.8) sees bind mounts of the same
/// filesystem too; before it, a device unlike the parent's is all there is.
fn is_mount_point(dir: BorrowedFd<'_>, parent: BorrowedFd<'_>) -> Result<bool, Errno> {
    let mount_root = rfs::StatxAttributes::MOUNT_ROOT;
    if let Ok(st) = rfs::statx(dir, c"", AtFlags::EMPTY_PATH, rfs::StatxFlags::BASIC_STATS) {
        if st.stx_attributes_mask.contains(mount_root) {
            return Ok(st.stx_attributes.contains(mount_root));
        }
    }
    Ok(rfs::fstat(dir)?.st_dev != rfs::fstat(parent)?.st_dev)
}

fn make_writable(dir: BorrowedFd<'_>) -> Result<(), Errno> {
    let mode = rfs::fstat(dir)?.st_mode & 0o7777;
    rfs::fchmod(dir, Mode::from_raw_mode(mode | 0o700))
}

/// The names in `dir` (not `.` and `..`) with their types, read whole
/// before any is changed.
pub fn list(dir: BorrowedFd<'_>) -> Result<Vec<(Vec<u8>, FileType)>, Errno> {
    let mut found = Vec::new();
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = RawDir::new(dir, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        found.push((name.to_vec(), entry.file_type()));
    }
    for (name, kind) in &mut found {
        if *kind == FileType::Unknown {
            let stat = rfs::statat(dir, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)?;
            *kind = FileType::from_raw_mode(stat.st_mode);
        }
    }
    Ok(found)
}

/// Removes every non-directory in `dir`; returns its subdirectories.
fn empty_files(dir: &OwnedFd) -> Result<Vec<Vec<u8>>, Errno> {
    let mut subdirs = Vec::new();
    let mut made_writable = false;
    for (name, kind) in list(dir.as_fd())? {
        if kind == FileType::Directory {
            subdirs.push(name);
            continue;
        }
        loop {
            match rfs::unlinkat(dir, name.as_slice(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => break,
                Err(Errno::ISDIR | Errno::PERM) => {
                    subdirs.push(name);
                    break;
                }
                Err(Errno::ACCESS) if !made_writable => {
                    make_writable(dir.as_fd())?;
                    made_writable = true;
                }
                Err(e) => return Err(e),
            }
        }
    }
    if !subdirs.is_empty() && !made_writable {
        // Removing the subdirectories once empty needs write here too.
        let mode = rfs::fstat(dir)?.st_mode;
        if mode & 0o300 != 0o300 {
            make_writable(dir.as_fd())?;
        }
    }
    Ok(subdirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn open(path: &std::path::Path) -> OwnedFd {
        rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn clean_strips_dots_and_refuses_climbing() {
        assert_eq!(clean(b"/a/./b//c/").unwrap(), b"a/b/c");
        assert_eq!(clean(b"./a").unwrap(), b"a");
        assert_eq!(clean(b"a/../x").unwrap(), b"x");
        assert_eq!(clean(b"./").unwrap(), b"");
        assert_eq!(clean(b"/").unwrap(), b"");
        assert_eq!(clean(b"../x"), None);
        assert_eq!(clean(b"a/../../x"), None);
        assert_eq!(clean(b"/.."), None);
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn remove_tree_takes_a_5000_deep_read_only_tree() {
        // tmpfs: ext4 takes about a millisecond per nested mkdir here.
        let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
        let top = tmp.path().join("top");
        std::fs::create_dir(&top).unwrap();
        let top_fd = open(&top);
        // Built by fd, level by level: the path is far beyond PATH_MAX.
        let mut cur = open(&top);
        for i in 0..5000 {
            rfs::mkdirat(&cur, c"d", Mode::RWXU).unwrap();
            let next = open_dir(cur.as_fd(), b"d").unwrap();
            if i % 1000 == 0 {
                rfs::mkdirat(&next, c"side", Mode::RWXU).unwrap();
                let side = open_dir(next.as_fd(), b"side").unwrap();
                drop(
                    rfs::openat(&side, c"f", OFlags::CREATE | OFlags::WRONLY, Mode::RUSR).unwrap(),
                );
                rfs::fchmod(&side, Mode::empty()).unwrap();
                rfs::symlinkat(c"/", &next, c"up").unwrap();
            }
            // Read-only levels, once their child is made (`top`, the
            // caller's, stays as it is).
            if i % 700 == 1 {
                let mode = if i == 1 { 0o500 } else { 0o555 };
                rfs::fchmod(&cur, Mode::from_raw_mode(mode)).unwrap();
            }
            cur = next;
        }
        rfs::fchmod(&cur, Mode::from_raw_mode(0o000)).unwrap();
        drop(cur);
        let sentinel = tmp.path().join("sentinel");
        std::fs::create_dir(&sentinel).unwrap();
        std::fs::write(sentinel.join("keep"), b"x").unwrap();
        let top_mode = std::fs::metadata(&top).unwrap().mode();

        remove_tree(top_fd.as_fd(), OsStr::new("d")).unwrap();
        let left: Vec<_> = std::fs::read_dir(&top).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_eq!(std::fs::read(sentinel.join("keep")).unwrap(), b"x");
        assert_eq!(std::fs::metadata(&top).unwrap().mode(), top_mode);
        // A missing name is fine; a file is unlinked.
        remove_tree(top_fd.as_fd(), OsStr::new("d")).unwrap();
        std::fs::write(top.join("file"), b"x").unwrap();
        remove_tree(top_fd.as_fd(), OsStr::new("file")).unwrap();
        assert!(!top.join("file").exists());
    }

    /// A bind mount of `source` on `target`, undone when dropped.
    struct Mounted(std::path::PathBuf);

    impl Mounted {
        fn bind(source: &std::path::Path, target: &std::path::Path) -> Mounted {
            let c = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
            let (source, target_c) = (c(source), c(target));
            // SAFETY: NUL-terminated paths; no data argument.
            let done = unsafe {
                libc::mount(
                    source.as_ptr(),
                    target_c.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            let e = io::Error::last_os_error();
            assert_eq!(done, 0, "this test bind-mounts (needs root): {e}");
            Mounted(target.to_path_buf())
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            let path = std::ffi::CString::new(self.0.as_os_str().as_bytes()).unwrap();
            // SAFETY: a NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }

    #[test]
    fn remove_tree_never_enters_a_mount_point() {
        // An old tree replaced may hold a bind mount of the host's, left
        // from a container run in it: its files are not the tree's.
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().join("host");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("keep"), b"host").unwrap();
        let old = tmp.path().join("old");
        std::fs::create_dir_all(old.join("a/mnt")).unwrap();
        std::fs::write(old.join("a/file"), b"x").unwrap();
        let _mounted = Mounted::bind(&host, &old.join("a/mnt"));
        let top = open(tmp.path());
        let err = remove_tree(top.as_fd(), OsStr::new("old")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY), "{err}");
        assert_eq!(std::fs::read(host.join("keep")).unwrap(), b"host");
        assert!(old.join("a/mnt").is_dir());
    }

    fn both(test: impl Fn(Resolver)) {
        test(Resolver::Openat2);
        test(Resolver::Walk);
    }

    /// Makes openat2 fail with EPERM on this thread alone, as a seccomp
    /// profile that denies calls it does not know does.
    fn deny_openat2_on_this_thread() {
        let op = |code: u16, k: u32, jt: u8, jf: u8| libc::sock_filter { code, jt, jf, k };
        let filter = [
            op(0x20, 0, 0, 0), // ld [nr]
            op(0x15, libc::SYS_openat2 as u32, 0, 1),
            op(0x06, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32, 0, 0),
            op(0x06, libc::SECCOMP_RET_ALLOW, 0, 0),
        ];
        let prog = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: a well-formed filter program that outlives the calls.
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            let on = libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog);
            assert_eq!(on, 0, "seccomp: {}", io::Error::last_os_error());
        }
    }

    #[test]
    fn openat2_denied_by_seccomp_falls_back_to_the_walk() {
        let tmp = tempfile::tempdir().unwrap();
        let root_path = tmp.path().join("root");
        std::fs::create_dir_all(root_path.join("a")).unwrap();
        std::os::unix::fs::symlink("/a", root_path.join("l")).unwrap();
        let fd = open(&root_path);
        std::thread::spawn(move || {
            deny_openat2_on_this_thread();
            let mut root = Root::with_resolver(fd, Resolver::Openat2);
            assert!(root.dir(b"l", false).unwrap().is_some());
            root.dir(b"l/new", true).unwrap().unwrap();
            assert_eq!(root.resolver, Resolver::Walk);
        })
        .join()
        .unwrap();
        assert!(root_path.join("a/new").is_dir());
    }

    #[test]
    fn dir_resolves_links_inside_the_root_and_creates_what_is_missing() {
        both(|resolver| {
            let tmp = tempfile::tempdir().unwrap();
            let root_path = tmp.path().join("root");
            std::fs::create_dir(&root_path).unwrap();
            let sentinel = tmp.path().join("sentinel");
            std::fs::create_dir(&sentinel).unwrap();
            std::os::unix::fs::symlink("/", root_path.join("etc")).unwrap();
            std::os::unix::fs::symlink("../../../..", root_path.join("up")).unwrap();
            std::os::unix::fs::symlink("up/sentinel", root_path.join("chain")).unwrap();
            std::os::unix::fs::symlink("loop", root_path.join("loop")).unwrap();
            std::fs::write(root_path.join("file"), b"x").unwrap();
            let mut root = Root::with_resolver(open(&root_path), resolver);

            let made = root.dir(b"etc/up/chain/new", true).unwrap().unwrap();
            let st = rfs::fstat(&made).unwrap();
            drop(made);
            let inside = std::fs::metadata(root_path.join("sentinel/new")).unwrap();
            assert_eq!(st.st_ino, std::os::unix::fs::MetadataExt::ino(&inside));
            assert!(std::fs::read_dir(&sentinel).unwrap().next().is_none());

            assert!(root.dir(b"missing/x", false).unwrap().is_none());
            assert!(root.dir(b"file/x", false).unwrap().is_none());
            let err = root.dir(b"loop/x", true).err().unwrap();
            assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{resolver:?}");
            // A file in the way of a created parent is replaced.
            root.dir(b"file/x", true).unwrap().unwrap();
            assert!(root_path.join("file/x").is_dir());
        });
    }
}
