//! A directory tree described for comparison: every path (lstat, links
//! never followed) with its type, permission bits, contents' hash, symlink
//! target, whole-second mtime and hardlink group; and a diff of two that
//! reads well in a failed assertion.
#![allow(dead_code)] // Each test binary uses some of these.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::tools::tool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// One path of a tree; what promise 1 of issue 20 says must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// `st_mode & 0o7777`: permission bits with setuid, setgid and sticky.
    /// Meaningless for symlinks on Linux (always 0o777), kept anyway.
    pub mode: u32,
    /// Regular files only (0 otherwise: a directory's size is the
    /// filesystem's business).
    pub size: u64,
    /// sha256 of a regular file's contents.
    pub sha256: Option<String>,
    /// A symlink's target, byte for byte.
    pub target: Option<Vec<u8>>,
    /// Whole seconds: promise 1 asks no finer, and umoci keeps no finer.
    pub mtime: i64,
    /// For a file with other names in the tree, the smallest of its names
    /// (by bytes): two paths share a group exactly when they are one inode.
    pub link_group: Option<Vec<u8>>,
}

/// Paths relative to the root (`.` is the root itself), in byte order.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub nodes: BTreeMap<Vec<u8>, Node>,
    /// Files still to hash, by inode, while the tree is walked.
    to_hash: HashMap<(u64, u64), Vec<Vec<u8>>>,
}

impl PartialEq for Tree {
    fn eq(&self, other: &Tree) -> bool {
        self.nodes == other.nodes
    }
}

impl Eq for Tree {}

impl Tree {
    /// Walks `root` without following any symlink (the root itself is
    /// taken as it is, a directory).
    pub fn of(root: &Path) -> Tree {
        Tree::walked(root, true)
    }

    /// As [`Tree::of`] without reading files (no `sha256`): the shape of
    /// a tree, quickly.
    pub fn shape(root: &Path) -> Tree {
        Tree::walked(root, false)
    }

    fn walked(root: &Path, hash: bool) -> Tree {
        let mut tree = Tree::default();
        let mut inodes = Inodes {
            hash,
            ..Inodes::default()
        };
        walk(root, b".".to_vec(), &mut tree, &mut inodes);
        if hash {
            hash_files(root, &mut tree);
        }
        for mut names in inodes.names.into_values().filter(|n| n.len() > 1) {
            names.sort();
            let group = names[0].clone();
            for name in names {
                tree.nodes.get_mut(&name).unwrap().link_group = Some(group.clone());
            }
        }
        tree
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path.as_bytes())
    }

    /// How many nodes are of `kind`; how many files are in hardlink groups.
    pub fn count(&self, kind: Kind) -> usize {
        self.nodes.values().filter(|n| n.kind == kind).count()
    }

    pub fn hardlinked(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.link_group.is_some())
            .count()
    }

    /// The same tree with `change` applied to every node; for fields a
    /// comparison leaves out, each with its reason at the call.
    pub fn map(&self, change: impl Fn(&[u8], &mut Node)) -> Tree {
        let mut out = self.clone();
        for (path, node) in out.nodes.iter_mut() {
            change(path, node);
        }
        out
    }
}

/// The names of each inode with more than one link.
#[derive(Default)]
struct Inodes {
    /// Whether contents are read and hashed at all.
    hash: bool,
    names: HashMap<(u64, u64), Vec<Vec<u8>>>,
}

fn walk(path: &Path, name: Vec<u8>, tree: &mut Tree, inodes: &mut Inodes) {
    let meta =
        std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        Kind::Dir
    } else if ft.is_file() {
        Kind::File
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_char_device() {
        Kind::CharDevice
    } else if ft.is_block_device() {
        Kind::BlockDevice
    } else {
        Kind::Socket
    };
    let node = Node {
        kind,
        mode: meta.mode() & 0o7777,
        size: if kind == Kind::File { meta.size() } else { 0 },
        sha256: None,
        target: (kind == Kind::Symlink).then(|| {
            std::fs::read_link(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .into_os_string()
                .into_vec()
        }),
        mtime: meta.mtime(),
        link_group: None,
    };
    if kind != Kind::Dir && meta.nlink() > 1 {
        inodes
            .names
            .entry((meta.dev(), meta.ino()))
            .or_default()
            .push(name.clone());
    }
    if kind == Kind::File && inodes.hash {
        let key = (meta.dev(), meta.ino());
        tree.to_hash.entry(key).or_default().push(name.clone());
    }
    tree.nodes.insert(name.clone(), node);
    if kind != Kind::Dir {
        return;
    }
    let mut children: Vec<OsString> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .file_name()
        })
        .collect();
    children.sort();
    for child in children {
        let child_name = if name == b"." {
            child.as_bytes().to_vec()
        } else {
            [&name[..], b"/", child.as_bytes()].concat()
        };
        walk(&path.join(&child), child_name, tree, inodes);
    }
}

/// Every file's sha256, by coreutils' `sha256sum` (many times faster than
/// the sha2 crate in a debug build), one read per inode, many files per
/// run.
fn hash_files(root: &Path, tree: &mut Tree) {
    let inodes: Vec<Vec<Vec<u8>>> = std::mem::take(&mut tree.to_hash).into_values().collect();
    for chunk in inodes.chunks(500) {
        let mut cmd = tool("sha256sum", "coreutils");
        cmd.current_dir(root).args(["--zero", "--"]);
        for names in chunk {
            cmd.arg(std::ffi::OsStr::from_bytes(&names[0]));
        }
        let out = super::run(&mut cmd).stdout;
        let sums: Vec<&[u8]> = out.split(|b| *b == 0).filter(|r| !r.is_empty()).collect();
        assert_eq!(sums.len(), chunk.len(), "sha256sum: one line a file");
        for (names, sum) in chunk.iter().zip(sums) {
            let hex = String::from_utf8(sum[..64].to_vec()).expect("sha256sum prints hex");
            for name in names {
                tree.nodes.get_mut(name).unwrap().sha256 = Some(hex.clone());
            }
        }
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:04o} mtime {}", self.kind, self.mode, self.mtime)?;
        if let Some(h) = &self.sha256 {
            write!(f, " {} bytes sha256 {}", self.size, &h[..12])?;
        }
        if let Some(t) = &self.target {
            write!(f, " -> {:?}", show(t))?;
        }
        if let Some(g) = &self.link_group {
            write!(f, " linked with {:?}", show(g))?;
        }
        Ok(())
    }
}

/// Every difference between `a` and `b`, one line each, named by the
/// trees' names (`a_name`, `b_name`).
pub fn differences(a: &Tree, a_name: &str, b: &Tree, b_name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (path, node) in &a.nodes {
        match b.nodes.get(path) {
            None => out.push(format!("{:?}: only in {a_name}: {node}", show(path))),
            Some(other) if other != node => out.push(format!(
                "{:?}: {}",
                show(path),
                node_difference(node, a_name, other, b_name)
            )),
            Some(_) => {}
        }
    }
    for (path, node) in &b.nodes {
        if !a.nodes.contains_key(path) {
            out.push(format!("{:?}: only in {b_name}: {node}", show(path)));
        }
    }
    out
}

fn node_difference(a: &Node, a_name: &str, b: &Node, b_name: &str) -> String {
    let mut fields = Vec::new();
    if a.kind != b.kind {
        fields.push(format!("type {:?} vs {:?}", a.kind, b.kind));
    }
    if a.mode != b.mode {
        fields.push(format!("mode {:04o} vs {:04o}", a.mode, b.mode));
    }
    if a.sha256 != b.sha256 || a.size != b.size {
        fields.push(format!(
            "contents {} vs {} bytes (hash differs)",
            a.size, b.size
        ));
    }
    if a.target != b.target {
        fields.push(format!(
            "target {:?} vs {:?}",
            a.target.as_deref().map(show),
            b.target.as_deref().map(show)
        ));
    }
    if a.mtime != b.mtime {
        fields.push(format!("mtime {} vs {}", a.mtime, b.mtime));
    }
    if a.link_group != b.link_group {
        fields.push(format!(
            "hardlink group {:?} vs {:?}",
            a.link_group.as_deref().map(show),
            b.link_group.as_deref().map(show)
        ));
    }
    format!("{} ({a_name} vs {b_name})", fields.join(", "))
}

/// Fails, listing the first 20 differences and how many there are in all,
/// unless `a` and `b` are the same tree.
#[track_caller]
pub fn assert_same(a: &Tree, a_name: &str, b: &Tree, b_name: &str) {
    let diffs = differences(a, a_name, b, b_name);
    if diffs.is_empty() {
        return;
    }
    let shown: Vec<&str> = diffs.iter().take(20).map(String::as_str).collect();
    panic!(
        "{a_name} ({} paths) and {b_name} ({} paths) differ in {} paths; the first {}:\n  {}",
        a.len(),
        b.len(),
        diffs.len(),
        shown.len(),
        shown.join("\n  ")
    );
}
