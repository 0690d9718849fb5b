//! The temporary sibling tree an unpack builds in, and its rename into place.
//!
//! The tree is made beside `rootfs` (same directory, so same filesystem) as
//! `.<name>.tank-<random>`, mode 0700 while it is built, and renamed to
//! `rootfs` in one step: `RENAME_NOREPLACE` when there is none, or
//! `RENAME_EXCHANGE` with the old tree, which is then removed. Until then,
//! `rootfs` is as it was; dropped uncommitted, the temporary tree goes.

use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use super::root;
use crate::stevedore::error::{Error, Result};

/// Names tried for the temporary tree before giving up: with 64 random
/// bits a second try already means someone makes names in that directory.
const NAME_TRIES: u32 = 8;
/// The root's mode when no layer gives one (`./` entry): what umoci and
/// `mkdir` under the usual umask give.
pub(crate) const DEFAULT_ROOT_MODE: u32 = 0o755;

pub struct Swap {
    /// The directory `rootfs` is in.
    parent: OwnedFd,
    /// `rootfs`'s last component.
    name: OsString,
    /// The temporary tree's name in `parent`.
    temp: OsString,
    /// As the caller gave it, for messages.
    rootfs: PathBuf,
    replace: bool,
    /// Set once the temporary name no longer holds our tree.
    done: bool,
}

impl Swap {
    /// Checks `rootfs` (absent, or present and `replace`) and makes the
    /// temporary tree; returns it with its root directory, open.
    pub fn begin(rootfs: &Path, replace: bool) -> Result<(Swap, OwnedFd)> {
        let (parent_path, name) = split(rootfs)?;
        let parent = rustix::fs::open(
            &parent_path,
            OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )
        .map_err(|e| Error::io("opening the directory", &parent_path, &e.into()))?;
        match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) if !replace => return Err(exists(rootfs)),
            Ok(_) => {}
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::io("checking", rootfs, &e.into())),
        }
        let temp = make_temp(&parent, &name, rootfs)?;
        let swap = Swap {
            parent,
            name,
            temp,
            rootfs: rootfs.to_path_buf(),
            replace,
            done: false,
        };
        let root = rustix::fs::openat(
            &swap.parent,
            &swap.temp,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY,
            Mode::empty(),
        )
        .map_err(|e| Error::io("opening", &swap.temp_path(), &e.into()))?;
        Ok((swap, root))
    }

    /// Where the temporary tree is, for messages.
    pub fn temp_path(&self) -> PathBuf {
        self.rootfs
            .parent()
            .unwrap_or(Path::new(""))
            .join(&self.temp)
    }

    /// Renames the finished tree to `rootfs`; with `replace`, exchanges it
    /// with the old tree there and removes that.
    pub fn commit(mut self) -> Result<()> {
        let exchanged = self.replace
            && match rustix::fs::renameat_with(
                &self.parent,
                &self.temp,
                &self.parent,
                &self.name,
                RenameFlags::EXCHANGE,
            ) {
                Ok(()) => true,
                // Nothing there to exchange with (removed since begin).
                Err(rustix::io::Errno::NOENT) => false,
                Err(e) => return Err(Error::io("replacing", &self.rootfs, &e.into())),
            };
        if !exchanged {
            rustix::fs::renameat_with(
                &self.parent,
                &self.temp,
                &self.parent,
                &self.name,
                RenameFlags::NOREPLACE,
            )
            .map_err(|e| match e {
                rustix::io::Errno::EXIST => exists(&self.rootfs),
                e => Error::io("renaming the new tree to", &self.rootfs, &e.into()),
            })?;
            self.done = true;
            return Ok(());
        }
        // The temporary name now holds the old tree: the new one is in
        // place, and what is left to do is cleanup that cannot fail the
        // call (the tree is there); what cannot be removed stays, named as
        // tank's own.
        self.done = true;
        let _ = root::remove_tree(self.parent.as_fd(), &self.temp);
        Ok(())
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        if !self.done {
            let _ = root::remove_tree(self.parent.as_fd(), &self.temp);
        }
    }
}

fn exists(rootfs: &Path) -> Error {
    let mut e = Error::io(
        "unpacking into",
        rootfs,
        &io::Error::from_raw_os_error(libc::EEXIST),
    );
    e.message
        .push_str(" (TANK_UNPACK_REPLACE replaces an existing tree)");
    e
}

/// Whether `rootfs` names a new directory, before any work.
pub fn check_name(rootfs: &Path) -> Result<()> {
    split(rootfs).map(drop)
}

/// `rootfs` as its directory and its last component; a path whose last
/// component is none, `.` or `..` names no new directory.
fn split(rootfs: &Path) -> Result<(PathBuf, OsString)> {
    let bytes = rootfs.as_os_str().as_bytes();
    let trimmed = match bytes.iter().rposition(|&b| b != b'/') {
        Some(end) => &bytes[..=end],
        None => &[][..],
    };
    let (dir, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&trimmed[..=slash], &trimmed[slash + 1..]),
        None => (&b"."[..], trimmed),
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Error::bad_input(format!(
            "rootfs {:?} names no new directory (its last component must be a name, not {:?})",
            rootfs.display().to_string(),
            String::from_utf8_lossy(name)
        )));
    }
    Ok((
        PathBuf::from(OsStr::from_bytes(dir)),
        OsString::from_vec(name.to_vec()),
    ))
}

/// Makes `.<name>.tank-<random hex>` in `parent`, mode 0700: no one else
/// enters the tree while it is built.
fn make_temp(parent: &OwnedFd, name: &OsStr, rootfs: &Path) -> Result<OsString> {
    let mut tries = 0;
    loop {
        // Each RandomState is keyed afresh from the OS's random source.
        let random = RandomState::new().build_hasher().finish();
        let mut temp = OsString::from(".");
        temp.push(name);
        temp.push(format!(".tank-{random:016x}"));
        tries += 1;
        match rustix::fs::mkdirat(parent, &temp, Mode::from_raw_mode(0o700)) {
            Ok(()) => return Ok(temp),
            Err(rustix::io::Errno::EXIST) if tries < NAME_TRIES => {}
            Err(e) => {
                let dir = rootfs.parent().unwrap_or(Path::new("")).join(&temp);
                return Err(Error::io("creating", &dir, &e.into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_is_split_into_its_directory_and_a_name() {
        let ok = |p: &str| {
            let (d, n) = split(Path::new(p)).unwrap();
            (
                d.to_str().unwrap().to_owned(),
                n.to_str().unwrap().to_owned(),
            )
        };
        assert_eq!(ok("rootfs"), (".".into(), "rootfs".into()));
        assert_eq!(ok("a/b/rootfs/"), ("a/b/".into(), "rootfs".into()));
        assert_eq!(ok("/rootfs"), ("/".into(), "rootfs".into()));
        assert_eq!(ok("/x//rootfs//"), ("/x//".into(), "rootfs".into()));
        for bad in ["", "/", "//", ".", "..", "a/.", "a/..", "a/../", "./"] {
            let e = split(Path::new(bad)).unwrap_err();
            assert_eq!(e.kind, crate::stevedore::ErrorKind::BadInput, "{bad:?}");
        }
    }
}
