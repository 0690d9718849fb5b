//! The one way a file gets its final name: flushed, renamed over the
//! target in one step, checked to be the file the rename moved, and the
//! directory flushed. A reader (or a crash) sees the old file or all of
//! the new one, never a part, and never a file someone swapped in at the
//! temporary name.
//!
//! A partial is the only writer of its target (the download's lock says
//! so): the target must be the file it wrote. A layout's manifests and its
//! `oci-layout` are written by every pull into it, with the same bytes, so
//! there the check asks whether the rename moved our file, not whether the
//! name still holds it: when it holds another, ours must have no name left
//! (it was there, and a later writer's rename replaced it). Ours with a
//! name elsewhere means someone moved it away before the rename, and what
//! the rename put at the target is theirs.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::private_file;
use crate::stevedore::error::{Error, Result};

/// Who else may write a target at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    /// No one: the target must hold our file after the rename.
    Sole,
    /// Other writers of the same bytes: the target may already hold
    /// theirs, once ours has no name left.
    Shared,
}

/// How errors name what was being done: a download's words for a blob, a
/// layout's for its files, as each said them before they shared this code.
struct Words {
    flushing: &'static str,
    renaming: &'static str,
    written: &'static str,
}

impl Writers {
    fn words(self) -> Words {
        match self {
            Writers::Sole => Words {
                flushing: "flushing",
                renaming: "renaming the blob to",
                written: "downloaded",
            },
            Writers::Shared => Words {
                flushing: "writing",
                renaming: "renaming a file to",
                written: "was written",
            },
        }
    }
}

/// Puts `file`, now at `from`, at `target`. On a failure before the
/// rename, `from` is left as it is, for the caller to keep or remove; when
/// what the rename moved is not `file`, nothing is left at `target`.
pub fn commit(file: &File, from: &Path, target: &Path, writers: Writers) -> Result<()> {
    let words = writers.words();
    file.sync_all()
        .map_err(|e| Error::io(words.flushing, from, &e))?;
    std::fs::rename(from, target).map_err(|e| Error::io(words.renaming, target, &e))?;
    // In this order: ours not at the target, then (a later writer) no name
    // left; asked the other way round, a rename between the two looks like
    // a swap.
    let ours_is_there = private_file::is_at(file, target);
    if !(ours_is_there || writers == Writers::Shared && unlinked(file)) {
        // Not the bytes that were written: not left as if they were.
        let _ = std::fs::remove_file(target);
        let e = io::Error::other(format!(
            "{} was replaced by another file while it {}",
            from.display(),
            words.written
        ));
        return Err(Error::io(words.renaming, target, &e));
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("flushing the directory", dir, &e))
}

/// Whether `file` has no name left in any directory.
fn unlinked(file: &File) -> bool {
    file.metadata().is_ok_and(|m| m.nlink() == 0)
}

/// `bytes` at `target`, through a new file named after `temp` (in the
/// same filesystem as `target`) and [`commit`]; the new file is gone
/// whatever happens.
pub fn write(temp: &Path, bytes: &[u8], target: &Path) -> Result<()> {
    // Not private: what is renamed into place is read by others too.
    let (mut file, temp_path) = private_file::create_unique(temp, 0o666).map_err(|e| {
        let dir = temp.parent().unwrap_or(Path::new("."));
        Error::io("creating a file in", dir, &e)
    })?;
    let written = file
        .write_all(bytes)
        .map_err(|e| Error::io("writing", &temp_path, &e))
        .and_then(|()| commit(&file, &temp_path, target, Writers::Shared));
    if written.is_err() {
        private_file::remove_if_at(&file, &temp_path);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_swapped_in_at_the_temporary_name_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (from, target) = (dir.path().join("temp"), dir.path().join("target"));
        let ours = File::create(&from).unwrap();
        std::fs::rename(&from, dir.path().join("moved")).unwrap();
        std::fs::write(&from, b"someone else's").unwrap();
        for writers in [Writers::Sole, Writers::Shared] {
            let e = commit(&ours, &from, &target, writers).unwrap_err();
            assert!(e.message.contains("replaced"), "{e}");
            assert!(
                !target.exists(),
                "a file tank did not write is at the target"
            );
            std::fs::write(&from, b"someone else's").unwrap();
        }
    }

    /// A partial's only writer is its download: a file renamed over the
    /// partial's name (ours then has no name at all) is not committed.
    #[test]
    fn a_file_renamed_over_a_sole_writers_file_is_not_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (from, target) = (dir.path().join("temp"), dir.path().join("target"));
        let ours = File::create(&from).unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, b"someone else's").unwrap();
        std::fs::rename(&theirs, &from).unwrap();
        let e = commit(&ours, &from, &target, Writers::Sole).unwrap_err();
        assert!(e.message.contains("replaced"), "{e}");
        assert!(
            !target.exists(),
            "a file tank did not write is at the target"
        );
    }

    /// Every pull into a layout writes its `oci-layout`: one writer's file
    /// replaced by another's right after its rename is no failure.
    #[test]
    fn writers_of_one_name_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("oci-layout");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        write(&dir.path().join("write"), b"same bytes", &target).unwrap();
                    }
                });
            }
        });
        assert_eq!(std::fs::read(&target).unwrap(), b"same bytes");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temp file left"
        );
    }
}
