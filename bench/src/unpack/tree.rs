//! A cheap fingerprint of an unpacked tree, to check that every tool in a
//! row wrote the same thing (the test suite compares trees in full; here a
//! wrong or half-written tree must not pass for a fast one).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

#[derive(Default, PartialEq, Eq, Debug, Clone)]
pub struct Summary {
    pub dirs: usize,
    pub files: usize,
    pub symlinks: usize,
    pub other: usize,
    /// Bytes of the files' data, each inode counted once.
    pub file_bytes: u64,
    /// Files that share their inode with another file of the tree.
    pub hardlinked: usize,
    /// Sum over files of their mode bits, and over symlinks of their
    /// target's length: a cheap check of both.
    pub mode_sum: u64,
    pub target_bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} dirs, {} files ({} hardlinked, {:.1} MiB), {} symlinks, {} other",
            self.dirs,
            self.files,
            self.hardlinked,
            self.file_bytes as f64 / 1048576.0,
            self.symlinks,
            self.other
        )
    }
}

/// Everything under `root`, not `root` itself.
pub fn summarize(root: &Path) -> Result<Summary> {
    let mut s = Summary::default();
    let mut links: HashMap<(u64, u64), usize> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            if ft.is_dir() {
                s.dirs += 1;
                stack.push(path);
            } else if ft.is_file() {
                s.files += 1;
                s.mode_sum += u64::from(meta.mode() & 0o7777);
                let seen = links.entry((meta.dev(), meta.ino())).or_default();
                if *seen == 0 {
                    s.file_bytes += meta.len();
                }
                *seen += 1;
            } else if ft.is_symlink() {
                s.symlinks += 1;
                s.target_bytes += std::fs::read_link(&path)?.as_os_str().len() as u64;
            } else {
                s.other += 1;
            }
        }
    }
    s.hardlinked = links.values().filter(|&&n| n > 1).sum();
    Ok(s)
}
