//! File operations confined to a root directory fd: names are resolved
//! with `openat2` (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`), or by a
//! component-by-component `O_NOFOLLOW` walk where openat2 is missing, as if
//! the root were `/`. No path string is joined and opened.

#![allow(dead_code)] // Until the applier uses it.

use std::ffi::OsStr;
use std::os::fd::BorrowedFd;

/// Removes `name` in `parent` and, when it is a directory, everything in
/// it: iteratively (depth costs no stack and no fds), giving directories
/// it cannot enter or empty the owner's rwx first.
pub fn remove_tree(parent: BorrowedFd<'_>, name: &OsStr) -> std::io::Result<()> {
    let _ = (parent, name);
    unimplemented!()
}
