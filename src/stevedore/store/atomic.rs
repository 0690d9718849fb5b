//! The one way a file gets its final name: flushed, renamed over the
//! target in one step, checked to be the file the rename moved, and the
//! directory flushed. A reader (or a crash) sees the old file or all of
//! the new one, never a part, and never a file someone swapped in at the
//! temporary name.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::private_file;
use crate::stevedore::error::{Error, Result};

/// Puts `file`, now at `from`, at `target`. On a failure before the
/// rename, `from` is left as it is, for the caller to keep or remove; when
/// what the rename moved is not `file`, nothing is left at `target`.
pub fn commit(file: &File, from: &Path, target: &Path) -> Result<()> {
    file.sync_all()
        .map_err(|e| Error::io("flushing", from, &e))?;
    std::fs::rename(from, target).map_err(|e| Error::io("renaming a file to", target, &e))?;
    if !private_file::is_at(file, target) {
        // Not the bytes that were written: not left as if they were.
        let _ = std::fs::remove_file(target);
        let e = io::Error::other(format!(
            "{} was replaced by another file while it was written",
            from.display()
        ));
        return Err(Error::io("renaming a file to", target, &e));
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("flushing the directory", dir, &e))
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
        .and_then(|()| commit(&file, &temp_path, target));
    if written.is_err() {
        private_file::remove_if_at(&file, &temp_path);
    }
    written
}
