//! Promise 1 and 2 of issue 20: `tank_unpack` gives the tree `umoci unpack
//! --rootless` gives for the same image (paths, types, contents, symlink
//! targets, hardlink groups, permission bits, whole-second mtimes), on the
//! rig's images and on layers GNU tar made at test time from real trees of
//! this machine, in several layers with whiteouts; and it takes every layer
//! media type the issue lists, refusing wrong bytes (`bad_layer`) and other
//! types (`unsupported_media_type`).
//!
//! umoci and GNU tar are the oracles: no one here wrote them. Where umoci
//! does something of its own, GNU tar is the second opinion, and the field
//! left out is named with the reason at `comparable`.

mod common;

use common::layers::*;
use common::tools::tool;
use common::tree::{assert_same, Kind, Tree};
use common::unpack::unpack;
use common::*;
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------
// The tools, each onto a fresh directory.

/// `umoci unpack --rootless` of `image`; the bundle's `rootfs`.
fn umoci_unpack(layout: &Path, image: &str, scratch: &Path) -> PathBuf {
    let bundle = scratch.join("umoci-bundle");
    run(tool("umoci", "umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{image}", layout.display()))
        .arg(&bundle));
    bundle.join("rootfs")
}

/// `tank_unpack` of `image` into `scratch/tank-rootfs`, which must work.
fn tank_unpack(layout: &Path, image: &str, scratch: &Path) -> PathBuf {
    let rootfs = scratch.join("tank-rootfs");
    let (result, _) = unpack(layout, image, &rootfs, 0, None);
    if let Err(e) = result {
        panic!("tank_unpack {image} of {}: {e:?}", layout.display());
    }
    rootfs
}

/// GNU `tar -x` of each layer in turn onto one directory (no whiteouts: a
/// second opinion for layers that have none).
fn tar_extract(layers: &[Layer], scratch: &Path) -> PathBuf {
    let dir = scratch.join("tar-rootfs");
    std::fs::create_dir(&dir).unwrap();
    for layer in layers {
        layers::filter(
            tool("tar", "tar")
                .args(["--extract", "--file=-", "--numeric-owner"])
                .args(["--preserve-permissions", "--directory"])
                .arg(&dir),
            &layer.tar,
        );
    }
    dir
}

/// umoci's tree of the image `written` (of `layers`). umoci 0.4.7 takes
/// OCI manifests with `tar` and `tar+gzip` layers (and their
/// nondistributable forms) only: no zstd, no Docker media types. An image
/// it refuses is compared through its twin: an OCI image of the very same
/// tars as `tar+gzip` layers, with the same diff_ids, so the same tree is
/// what both must give.
fn umoci_tree(written: &Written, layers: &[Layer], scratch: &Path) -> Tree {
    let umoci_takes = written.kind == ManifestKind::Oci
        && layers
            .iter()
            .all(|l| UMOCI_TAKES.contains(&l.media_type.as_str()));
    if umoci_takes {
        return Tree::of(&umoci_unpack(&written.layout, &written.tag, scratch));
    }
    let twin_dir = scratch.join("umoci-twin");
    std::fs::create_dir(&twin_dir).unwrap();
    let twin: Vec<Layer> = layers
        .iter()
        .map(|l| Layer::new(l.tar.clone(), Compress::Gzip))
        .collect();
    let twin_written = write_layout(&twin_dir.join("layout"), "v1", &twin, ManifestKind::Oci);
    let tree = Tree::of(&umoci_unpack(&twin_written.layout, "v1", &twin_dir));
    std::fs::remove_dir_all(&twin_dir).unwrap();
    tree
}

/// Whether a layer names the root directory itself (`./` or `.`), whose
/// mode and time then come from the layer.
fn declares_root(layers: &[Layer]) -> bool {
    layers.iter().any(|l| {
        let listed = layers::filter(tool("tar", "tar").args(["--list", "--file=-"]), &l.tar);
        listed
            .split(|b| *b == b'\n')
            .any(|name| name == b"./" || name == b".")
    })
}

/// The paths the layers make device nodes at, as the tar crate reads the
/// names (no leading `./`, no trailing `/`).
fn device_paths(layers: &[Layer]) -> BTreeSet<Vec<u8>> {
    let mut devices = BTreeSet::new();
    for layer in layers {
        let mut archive = tar::Archive::new(&layer.tar[..]);
        for entry in archive.entries().expect("a tar") {
            let entry = entry.expect("a tar entry");
            let kind = entry.header().entry_type();
            if kind.is_character_special() || kind.is_block_special() {
                let path = entry.path_bytes();
                let path = path.strip_prefix(b"./").unwrap_or(&path);
                devices.insert(path.strip_suffix(b"/").unwrap_or(path).to_vec());
            }
        }
    }
    devices
}

/// What the comparison looks at of a tree. Left out, each with the reason:
/// - the root directory's mtime when no layer names the root: nothing says
///   what it is. umoci sets it to the epoch (0), GNU tar leaves the time of
///   the extraction; when a layer has `./` both take its time, and so is it
///   compared.
/// - device nodes (`devices`): rootless, umoci makes an empty regular file
///   in a device's place (mode and time of the entry), its own device
///   stand-in for a later bind mount. Promise 6 says tank skips them, as
///   GNU tar without root leaves nothing there (its mknod fails); that tank
///   made nothing is asserted apart.
///
/// Not compared at all: owners (rootless: the caller's; umoci records the
/// layer's in a `user.rootlesscontainers` xattr, tank does not) and
/// xattrs (promise 1 does not list them; promise 6 has its own tests).
fn comparable(tree: &Tree, root_declared: bool, devices: &BTreeSet<Vec<u8>>) -> Tree {
    let mut out = tree.map(|path, node| {
        if path == b"." && !root_declared {
            node.mtime = 0;
        }
    });
    out.nodes.retain(|path, _| !devices.contains(path));
    out
}

/// tank's tree and umoci's of the image `written` (of `layers`) agree;
/// tank's tree.
#[track_caller]
fn assert_tank_matches_umoci(written: &Written, layers: &[Layer], scratch: &Path) -> Tree {
    let by_umoci = umoci_tree(written, layers, scratch);
    let by_tank = Tree::of(&tank_unpack(&written.layout, &written.tag, scratch));
    let root_declared = declares_root(layers);
    let devices = device_paths(layers);
    for device in &devices {
        assert!(
            !by_tank.nodes.contains_key(device),
            "{}: a device node, skipped when rootless",
            String::from_utf8_lossy(device)
        );
    }
    assert_same(
        &comparable(&by_umoci, root_declared, &devices),
        "umoci",
        &comparable(&by_tank, root_declared, &devices),
        "tank",
    );
    by_tank
}

// ---------------------------------------------------------------------------
// Layers of real trees: a staging directory per layer.

/// A directory whose contents become one layer.
struct Stage {
    root: PathBuf,
    /// Directories made with a mode of their own ([`Stage::dir`]), which
    /// [`Stage::parents_as_in`] leaves alone.
    declared: std::cell::RefCell<Vec<String>>,
}

impl Stage {
    fn new(scratch: &Path, name: &str) -> Stage {
        let root = scratch.join(name);
        std::fs::create_dir(&root).unwrap();
        Stage {
            root,
            declared: Default::default(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `src` copied in as `name`, as `cp -a` copies: modes, times,
    /// symlinks and hardlinks kept.
    fn copy_in(&self, src: &Path, name: &str) {
        let dest = self.path(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        run(Command::new("cp").arg("-a").arg(src).arg(&dest));
    }

    /// Each of `srcs` copied in under the directory `dir`, by one `cp -a`.
    fn copy_all_in(&self, srcs: &[PathBuf], dir: &str) {
        for src in srcs {
            assert!(src.exists(), "{} is not on this machine", src.display());
        }
        let dest = self.path(dir);
        std::fs::create_dir_all(&dest).unwrap();
        run(Command::new("cp").arg("-a").args(srcs).arg(&dest));
    }

    /// The directories above `rel`, made as needed.
    fn parents(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    fn file(&self, rel: &str, contents: &[u8], mode: u32) {
        let path = self.parents(rel);
        std::fs::write(&path, contents).unwrap();
        chmod(&path, mode);
    }

    fn dir(&self, rel: &str, mode: u32) {
        let path = self.parents(rel);
        std::fs::create_dir_all(&path).unwrap();
        chmod(&path, mode);
        self.declared.borrow_mut().push(rel.to_owned());
    }

    fn symlink(&self, target: &str, rel: &str) {
        let path = self.parents(rel);
        std::os::unix::fs::symlink(target, path).unwrap();
    }

    fn hardlink(&self, existing: &str, rel: &str) {
        let path = self.parents(rel);
        std::fs::hard_link(self.path(existing), path).unwrap();
    }

    fn fifo(&self, rel: &str) {
        let path = self.parents(rel);
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    }

    /// `.wh.NAME` beside `rel`: the layers below lose `rel`.
    fn whiteout(&self, rel: &str) {
        let (dir, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, b"", 0o644);
    }

    /// `rel/.wh..wh..opq`: the layers below lose what they put in `rel`.
    fn opaque(&self, rel: &str) {
        self.file(&format!("{rel}/.wh..wh..opq"), b"", 0o644);
    }

    /// Every directory this stage has that `lower` has too gets `lower`'s
    /// mode and time, as a layer made by diffing a container's tree
    /// re-declares the parents of what changed.
    fn parents_as_in(&self, lower: &Stage) {
        let tree = Tree::shape(&self.root);
        let lower_tree = Tree::shape(&lower.root);
        for (path, node) in tree.nodes.iter().rev() {
            if node.kind != Kind::Dir || path == b"." {
                continue;
            }
            let rel = String::from_utf8_lossy(path).into_owned();
            if self.declared.borrow().contains(&rel) {
                continue;
            }
            if let Some(below) = lower_tree.get(&rel).filter(|n| n.kind == Kind::Dir) {
                chmod(&self.path(&rel), below.mode);
                set_mtime(&self.path(&rel), below.mtime);
            }
        }
    }

    fn layer(&self, format: TarFormat, compress: Compress) -> Layer {
        Layer::of_dir(&self.root, format, compress)
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// `path`'s atime and mtime set to `secs`, the link itself when it is one.
fn set_mtime(path: &Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        rc,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Things real trees seldom have and layers do: setuid, setgid and sticky
/// bits, read-only files and directories, a FIFO, odd and far times, long
/// names and targets, names outside ASCII, hardlinks, dangling and absolute
/// symlinks. Under `odd/` of the stage.
fn add_oddities(stage: &Stage) {
    stage.file("odd/setuid", b"#!/bin/sh\n", 0o4755);
    stage.file("odd/setgid", b"#!/bin/sh\n", 0o2711);
    stage.dir("odd/setgid-dir", 0o2775);
    stage.file("odd/setgid-dir/inside", b"in a setgid dir\n", 0o664);
    stage.dir("odd/sticky", 0o1777);
    stage.file("odd/sticky/tmpfile", b"", 0o600);
    stage.file("odd/private", b"secret-ish\n", 0o600);
    stage.file("odd/readonly", b"read only\n", 0o444);
    stage.dir("odd/readonly-dir", 0o755);
    stage.file("odd/readonly-dir/kept", b"below a read-only dir\n", 0o644);
    stage.fifo("odd/fifo");
    stage.file("odd/epoch", b"1970\n", 0o644);
    stage.file("odd/second-one", b"1970 and a second\n", 0o644);
    stage.file("odd/year-2100", b"far\n", 0o644);
    stage.file("odd/empty", b"", 0o644);
    stage.dir("odd/empty-dir", 0o700);
    stage.dir("odd/becomes-file", 0o755);
    stage.file("odd/becomes-dir", b"a file for now\n", 0o644);
    let long_dir = "d".repeat(120);
    let long_name = "n".repeat(200);
    stage.file(&format!("odd/{long_dir}/{long_name}"), b"long\n", 0o644);
    stage.symlink(&format!("../{}/target", "t".repeat(150)), "odd/long-target");
    stage.file("odd/ünïcödé ☃ name", b"utf-8\n", 0o644);
    stage.file("odd/links/one", b"three names, one inode\n", 0o640);
    stage.hardlink("odd/links/one", "odd/links/two");
    stage.hardlink("odd/links/one", "odd/hardlink-three");
    stage.symlink("nowhere", "odd/dangling");
    stage.symlink("/etc/passwd", "odd/absolute");
    stage.symlink("../../../../..", "odd/climbing");
    stage.symlink("links/one", "odd/to-link");
    // Times last: making the entries above changed their directories'.
    set_mtime(&stage.path("odd/epoch"), 0);
    set_mtime(&stage.path("odd/second-one"), 1);
    set_mtime(&stage.path("odd/year-2100"), 4_102_444_800);
    set_mtime(&stage.path("odd/dangling"), 1_000_000_000);
    set_mtime(&stage.path("odd/absolute"), 1_111_111_111);
    set_mtime(&stage.path("odd/sticky"), 1_234_567_890);
    set_mtime(&stage.path("odd/empty-dir"), 86_400);
    chmod(&stage.path("odd/readonly-dir"), 0o555);
}

/// The second layer's changes to the oddities: a directory replaced by a
/// file and the reverse, a hardlink name removed, a symlink retargeted, a
/// directory re-declared with another mode (its contents stay), a file
/// added under the read-only directory.
fn change_oddities(stage: &Stage) {
    stage.file("odd/becomes-file", b"was a directory\n", 0o644);
    stage.dir("odd/becomes-dir", 0o750);
    stage.file("odd/becomes-dir/child", b"in what was a file\n", 0o644);
    stage.whiteout("odd/links/two");
    stage.symlink("somewhere-else", "odd/dangling");
    stage.dir("odd/setgid-dir", 0o2750);
    stage.file("odd/readonly-dir/added", b"above a read-only dir\n", 0o644);
    stage.whiteout("odd/fifo");
    set_mtime(&stage.path("odd/setgid-dir"), 1_500_000_000);
    chmod(&stage.path("odd/readonly-dir"), 0o555);
}

/// The third layer's: what the second removed comes back in other forms.
fn change_oddities_again(stage: &Stage) {
    stage.symlink("one", "odd/links/two");
    stage.dir("odd/fifo", 0o711);
    stage.file("odd/fifo/now-a-dir", b"", 0o644);
    stage.file("odd/new/pair-a", b"linked in the top layer\n", 0o644);
    stage.hardlink("odd/new/pair-a", "odd/new/pair-b");
}

/// Paths of a real tree picked for the upper layers to change: a whole
/// directory to white out, a directory to make opaque, files to white out
/// and to rewrite (hardlinked ones among them when there are any), symlinks
/// to white out and to retarget. Picked by position in the sorted tree, so
/// the choice is the same on every run of one machine.
struct Picks {
    gone_dir: String,
    opaque_dir: String,
    gone_files: Vec<String>,
    rewritten: Vec<String>,
    gone_symlink: Option<String>,
    retargeted: Option<String>,
}

fn under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn pick(stage: &Stage, top: &str) -> Picks {
    let tree = Tree::shape(&stage.path(top));
    let named = |kind: Kind| -> Vec<(String, &common::tree::Node)> {
        tree.nodes
            .iter()
            .filter(|(p, n)| n.kind == kind && p.as_slice() != b".")
            .map(|(p, n)| {
                (
                    format!(
                        "{top}/{}",
                        String::from_utf8(p.clone()).expect("UTF-8 names in the source trees")
                    ),
                    n,
                )
            })
            .collect()
    };
    let dirs = named(Kind::Dir);
    assert!(
        dirs.len() >= 4,
        "{top} has too few directories to pick from"
    );
    let gone_dir = dirs[dirs.len() / 3].0.clone();
    let opaque_dir = dirs[2 * dirs.len() / 3..]
        .iter()
        .map(|(p, _)| p.clone())
        .find(|p| !under(p, &gone_dir) && !under(&gone_dir, p))
        .expect("a directory apart from the one whited out");
    let apart = |p: &str| !under(p, &gone_dir) && !under(p, &opaque_dir);
    let files: Vec<(String, _)> = named(Kind::File)
        .into_iter()
        .filter(|(p, _)| apart(p))
        .collect();
    assert!(files.len() >= 20, "{top} has too few files to pick from");
    let step = files.len() / 10;
    let gone_files: Vec<String> = files
        .iter()
        .step_by(step)
        .take(5)
        .map(|(p, _)| p.clone())
        .collect();
    let mut rewritten: Vec<String> = files
        .iter()
        .skip(step / 2)
        .step_by(step)
        .take(5)
        .map(|(p, _)| p.clone())
        .collect();
    // One name of a hardlink group rewritten: the layer's new file must
    // not write through to the other names.
    if let Some((p, _)) = files
        .iter()
        .find(|(p, n)| n.link_group.is_some() && !gone_files.contains(p))
    {
        rewritten.push(p.clone());
    }
    let symlinks: Vec<String> = named(Kind::Symlink)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| apart(p))
        .collect();
    Picks {
        gone_dir,
        opaque_dir,
        gone_files,
        rewritten,
        gone_symlink: symlinks.first().cloned(),
        retargeted: symlinks
            .get(symlinks.len() / 2)
            .cloned()
            .filter(|_| symlinks.len() > 1),
    }
}

/// Layers over real trees `sources` (each list copied in under its
/// directory) and the oddities: the first as they are, the second changing
/// and removing (whiteouts, an opaque directory) what it picks under
/// `top`, the third adding back; the three by GNU tar. A small fourth,
/// written here, links to files of the layers below.
fn story_layers(
    top: &str,
    sources: &[(&str, Vec<PathBuf>)],
    scratch: &Path,
    format: TarFormat,
    compress: [&str; 4],
) -> (Vec<Layer>, Vec<Picks>) {
    let base = Stage::new(scratch, "layer-1");
    for (name, srcs) in sources {
        base.copy_all_in(srcs, name);
    }
    add_oddities(&base);
    let picks = vec![pick(&base, top)];

    let second = Stage::new(scratch, "layer-2");
    for p in &picks {
        second.whiteout(&p.gone_dir);
        second.opaque(&p.opaque_dir);
        second.file(
            &format!("{}/new-in-opaque", p.opaque_dir),
            b"kept: same layer as the marker\n",
            0o644,
        );
        second.file(&format!("{}/also-new", p.opaque_dir), b"kept too\n", 0o600);
        for f in &p.gone_files {
            second.whiteout(f);
        }
        for f in &p.rewritten {
            second.file(f, format!("rewritten: {f}\n").as_bytes(), 0o640);
            set_mtime(&second.path(f), 1_234_567_890);
        }
        if let Some(s) = &p.gone_symlink {
            second.whiteout(s);
        }
        if let Some(s) = &p.retargeted {
            second.symlink("retargeted/by/layer-2", s);
        }
    }
    change_oddities(&second);
    second.parents_as_in(&base);

    let third = Stage::new(scratch, "layer-3");
    for p in &picks {
        third.file(
            &format!("{}/back", p.gone_dir),
            b"the directory, back with one file\n",
            0o644,
        );
        if let Some(f) = p.gone_files.first() {
            third.symlink("back-as-a-symlink", f);
        }
        third.whiteout(&format!("{}/also-new", p.opaque_dir));
    }
    change_oddities_again(&third);
    third.parents_as_in(&base);

    let tars = [
        tar_dir(&base.root, format),
        tar_dir(&second.root, format),
        tar_dir(&third.root, format),
        hand_written_tar(),
    ];
    let layers = tars
        .into_iter()
        .zip(compress)
        .map(|(tar, media_type)| Layer::typed(tar, compression_of(media_type), media_type))
        .collect();
    for stage in [base, second, third] {
        make_removable(&stage.root);
        std::fs::remove_dir_all(&stage.root).unwrap();
    }
    (layers, picks)
}

/// The fourth layer, written with the tar crate: GNU tar makes no archive
/// of a directory whose hardlinks point into layers below. A hardlink that
/// joins a group of the first layer, one that makes a new group, one to a
/// symlink; a file whose PAX mtime has a fraction, a file replaced by a
/// symlink, a device node (which rootless unpacks skip).
fn hand_written_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let entry = |tar: &mut tar::Builder<Vec<u8>>,
                 kind: tar::EntryType,
                 name: &str,
                 link: &str,
                 mtime: u64| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(0);
        header.set_mtime(mtime);
        tar.append_link(&mut header, name, link).unwrap();
    };
    entry(
        &mut tar,
        tar::EntryType::Link,
        "odd/cross-layer",
        "odd/links/one",
        0,
    );
    entry(
        &mut tar,
        tar::EntryType::Link,
        "odd/setuid-too",
        "odd/setuid",
        0,
    );
    entry(
        &mut tar,
        tar::EntryType::Symlink,
        "odd/readonly",
        "readonly-was-here",
        1_400_000_000,
    );
    entry(
        &mut tar,
        tar::EntryType::Link,
        "odd/link-to-symlink",
        "odd/absolute",
        0,
    );
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Char);
    header.set_mode(0o666);
    header.set_size(0);
    header.set_mtime(1_400_000_000);
    header.set_device_major(1).unwrap();
    header.set_device_minor(3).unwrap();
    tar.append_data(&mut header, "odd/null-device", &[][..])
        .unwrap();
    let contents = b"a fraction of a second\n";
    tar.append_pax_extensions([("mtime", &b"1234567890.75"[..])])
        .unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o640);
    header.set_size(contents.len() as u64);
    header.set_mtime(1_234_567_890);
    tar.append_data(&mut header, "odd/subsecond", &contents[..])
        .unwrap();
    tar.into_inner().unwrap()
}

/// Read-only directories (the oddities have one) opened up so the tree can
/// be removed by a caller that is not root.
fn make_removable(root: &Path) {
    for (path, node) in Tree::shape(root).nodes {
        if node.kind == Kind::Dir && node.mode & 0o200 == 0 {
            chmod(&root.join(String::from_utf8_lossy(&path).as_ref()), 0o755);
        }
    }
}

/// A one-image layout of `layers` at `scratch/layout`, tagged `v1`.
fn layout_of(layers: &[Layer], scratch: &Path, kind: ManifestKind) -> Written {
    write_layout(&scratch.join("layout"), "v1", layers, kind)
}

/// What the story's layers meant, seen in the tree they give: what the upper
/// layers removed is gone, what they added back is back, the opaque
/// directory holds its own layer's entries only. Proves the layers were
/// made as meant, so a tree that matches umoci's matched on these cases.
#[track_caller]
fn assert_story(tree: &Tree, picks: &[Picks]) {
    let kind = |p: &str| tree.get(p).map(|n| n.kind);
    let children = |dir: &str| -> Vec<String> {
        let prefix = format!("{dir}/");
        tree.nodes
            .keys()
            .filter_map(|k| {
                String::from_utf8_lossy(k)
                    .strip_prefix(&prefix)
                    .map(str::to_owned)
            })
            .collect()
    };
    for p in picks {
        assert_eq!(
            children(&p.gone_dir),
            ["back"],
            "{} whited out, then one file back",
            p.gone_dir
        );
        assert_eq!(
            children(&p.opaque_dir),
            ["new-in-opaque"],
            "{} opaque: only its own layer's entries (less the one the third removed)",
            p.opaque_dir
        );
        assert_eq!(
            kind(&p.gone_files[0]),
            Some(Kind::Symlink),
            "{}",
            p.gone_files[0]
        );
        for f in &p.gone_files[1..] {
            assert_eq!(kind(f), None, "{f} whited out");
        }
        for f in &p.rewritten {
            let node = tree
                .get(f)
                .unwrap_or_else(|| panic!("{f} rewritten, not removed"));
            assert_eq!(node.size, format!("rewritten: {f}\n").len() as u64, "{f}");
            assert_eq!(node.link_group, None, "{f}: a new file, no longer linked");
        }
        if let Some(s) = &p.gone_symlink {
            assert_eq!(kind(s), None, "{s} whited out");
        }
        if let Some(s) = &p.retargeted {
            assert_eq!(
                tree.get(s).unwrap().target.as_deref(),
                Some(&b"retargeted/by/layer-2"[..])
            );
        }
    }
    let node = |p: &str| tree.get(p).unwrap_or_else(|| panic!("{p} is missing"));
    assert_eq!(node("odd/setuid").mode, 0o4755);
    assert_eq!(node("odd/setgid").mode, 0o2711);
    assert_eq!(node("odd/sticky").mode, 0o1777);
    assert_eq!(node("odd/setgid-dir").mode, 0o2750, "re-declared");
    assert_eq!(node("odd/setgid-dir").mtime, 1_500_000_000);
    assert_eq!(
        kind("odd/setgid-dir/inside"),
        Some(Kind::File),
        "kept by the re-declared dir"
    );
    assert_eq!(node("odd/readonly-dir").mode, 0o555);
    assert_eq!(
        kind("odd/readonly-dir/added"),
        Some(Kind::File),
        "added above the read-only dir"
    );
    assert_eq!(node("odd/epoch").mtime, 0);
    assert_eq!(node("odd/year-2100").mtime, 4_102_444_800);
    assert_eq!(
        node("odd/dangling").target.as_deref(),
        Some(&b"somewhere-else"[..])
    );
    assert_eq!(
        node("odd/absolute").mtime,
        1_111_111_111,
        "a symlink's own time"
    );
    assert_eq!(kind("odd/becomes-file"), Some(Kind::File));
    assert_eq!(kind("odd/becomes-dir/child"), Some(Kind::File));
    assert_eq!(kind("odd/fifo/now-a-dir"), Some(Kind::File));
    assert_eq!(kind("odd/links/two"), Some(Kind::Symlink));
    assert_eq!(
        node("odd/links/one").link_group.as_deref(),
        Some(&b"odd/cross-layer"[..]),
        "joined by the fourth layer's hardlink"
    );
    assert_eq!(
        node("odd/hardlink-three").link_group.as_deref(),
        Some(&b"odd/cross-layer"[..])
    );
    assert_eq!(
        node("odd/setuid-too").link_group.as_deref(),
        Some(&b"odd/setuid"[..])
    );
    assert_eq!(node("odd/subsecond").mtime, 1_234_567_890);
    assert_eq!(
        node("odd/link-to-symlink").link_group.as_deref(),
        Some(&b"odd/absolute"[..]),
        "a hardlink to a symlink links the symlink itself"
    );
    assert_eq!(
        node("odd/readonly").kind,
        Kind::Symlink,
        "a file replaced by a symlink"
    );
    assert_eq!(
        node("odd/new/pair-b").link_group.as_deref(),
        Some(&b"odd/new/pair-a"[..])
    );
}

fn names(layers: &[Layer]) -> Vec<&str> {
    layers.iter().map(|l| l.media_type.as_str()).collect()
}

/// The story's layers over `sources`, tank against umoci, the story
/// checked.
fn real_trees_match_umoci(
    top: &str,
    sources: &[(&str, Vec<PathBuf>)],
    format: TarFormat,
    types: [&str; 4],
    kind: ManifestKind,
) -> Tree {
    let scratch = tempfile::tempdir().unwrap();
    let (layers, picks) = story_layers(top, sources, scratch.path(), format, types);
    let written = layout_of(&layers, scratch.path(), kind);
    let tree = assert_tank_matches_umoci(&written, &layers, scratch.path());
    assert_story(&tree, &picks);
    eprintln!(
        "{} paths ({} symlinks, {} hardlinked) from layers {:?}",
        tree.len(),
        tree.count(Kind::Symlink),
        tree.hardlinked(),
        names(&layers)
    );
    tree
}

// ---------------------------------------------------------------------------
// The harness itself: umoci and GNU tar agree on layers without whiteouts,
// and umoci's tree of the story's layers is the story they tell; so a tree
// that matches umoci's matches what tar means and what the layers meant.

#[test]
fn umoci_and_gnu_tar_agree_on_one_layer_of_real_trees() {
    let scratch = tempfile::tempdir().unwrap();
    let stage = Stage::new(scratch.path(), "layer");
    stage.copy_in(Path::new("/usr/share/zoneinfo"), "zoneinfo");
    stage.copy_all_in(&git_core_part(), "git-core");
    add_oddities(&stage);
    let layers = [stage.layer(TarFormat::Posix, Compress::Gzip)];
    let written = layout_of(&layers, scratch.path(), ManifestKind::Oci);
    let by_umoci = Tree::of(&umoci_unpack(&written.layout, "v1", scratch.path()));
    let by_tar = Tree::of(&tar_extract(&layers, scratch.path()));
    let no_devices = BTreeSet::new();
    assert_same(
        &comparable(&by_tar, false, &no_devices),
        "GNU tar",
        &comparable(&by_umoci, false, &no_devices),
        "umoci",
    );
    assert!(
        by_umoci.hardlinked() > 20,
        "git-core's hardlinks: {}",
        by_umoci.hardlinked()
    );
    assert!(by_umoci.count(Kind::Symlink) > 100, "zoneinfo's symlinks");
    assert_eq!(
        by_umoci.get("odd/fifo").map(|n| n.kind),
        Some(Kind::Fifo),
        "umoci makes FIFOs"
    );
}

#[test]
fn umoci_and_gnu_tar_agree_on_a_layer_that_names_the_root() {
    let scratch = tempfile::tempdir().unwrap();
    let stage = Stage::new(scratch.path(), "layer");
    add_oddities(&stage);
    chmod(&stage.root, 0o750);
    set_mtime(&stage.root, 1_300_000_000);
    let layers = [Layer::new(
        tar_dir_with_root(&stage.root, TarFormat::Gnu),
        Compress::Gzip,
    )];
    assert!(declares_root(&layers));
    let written = layout_of(&layers, scratch.path(), ManifestKind::Oci);
    let by_umoci = Tree::of(&umoci_unpack(&written.layout, "v1", scratch.path()));
    let by_tar = Tree::of(&tar_extract(&layers, scratch.path()));
    assert_same(&by_tar, "GNU tar", &by_umoci, "umoci");
    let root = by_umoci.get(".").unwrap();
    assert_eq!(
        (root.mode, root.mtime),
        (0o750, 1_300_000_000),
        "the root as the layer says"
    );
}

#[test]
fn umoci_unpacks_the_story_layers_as_meant() {
    let scratch = tempfile::tempdir().unwrap();
    let zoneinfo = Path::new("/usr/share/zoneinfo");
    let (layers, picks) = story_layers(
        "usr/share",
        &[("usr/share", vec![zoneinfo.to_owned()])],
        scratch.path(),
        TarFormat::Posix,
        [OCI_TAR_GZIP; 4],
    );
    let written = layout_of(&layers, scratch.path(), ManifestKind::Oci);
    let tree = umoci_tree(&written, &layers, scratch.path());
    assert_story(&tree, &picks);
}

// ---------------------------------------------------------------------------
// (b) Real trees of this machine, in the story's layers, tank against umoci.

#[test]
fn zoneinfo_and_git_core_in_gzip_layers_match_umoci() {
    // The upper layers' picks fall in either tree: git-core has no
    // subdirectories but names of one file.
    let tree = real_trees_match_umoci(
        "usr",
        &[
            ("usr/share", vec![PathBuf::from("/usr/share/zoneinfo")]),
            ("usr/libexec/git-core", git_core_part()),
        ],
        TarFormat::Posix,
        [OCI_TAR_GZIP; 4],
        ManifestKind::Oci,
    );
    // The oddities have 9 names in hardlink groups; git-core adds 16+.
    assert!(
        tree.hardlinked() > 24,
        "git-core's hardlinks: {}",
        tree.hardlinked()
    );
    assert!(tree.count(Kind::Symlink) > 100, "zoneinfo's symlinks");
}

#[test]
fn python_library_in_zstd_layers_matches_umoci() {
    // The standard library's modules and packages, less the big and the
    // generated: the build's config (24 MB), compiled modules, the test
    // suite.
    let srcs: Vec<PathBuf> = sorted_children(&python_lib())
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (p.is_dir() || name.ends_with(".py"))
                && !name.starts_with("config-")
                && ![
                    "__pycache__",
                    "lib-dynload",
                    "test",
                    "site-packages",
                    "dist-packages",
                ]
                .contains(&name.as_str())
        })
        .collect();
    let tree = real_trees_match_umoci(
        "usr/lib/python3",
        &[("usr/lib/python3", srcs)],
        TarFormat::Gnu,
        [OCI_TAR_ZSTD; 4],
        ManifestKind::Oci,
    );
    assert!(tree.count(Kind::File) > 1000, "python's many files");
}

#[test]
fn usr_share_doc_in_plain_layers_matches_umoci() {
    let small: Vec<PathBuf> = sorted_children(Path::new("/usr/share/doc"))
        .into_iter()
        .filter(|p| apparent_size(p) < 32 * 1024)
        .collect();
    assert!(small.len() > 50, "/usr/share/doc has few packages' docs");
    let tree = real_trees_match_umoci(
        "usr/share/doc",
        &[("usr/share/doc", small)],
        TarFormat::Posix,
        [OCI_TAR; 4],
        ManifestKind::Oci,
    );
    assert!(tree.count(Kind::Symlink) > 10, "doc's symlinks");
}

#[test]
fn docker_image_of_every_docker_layer_type_matches_umoci() {
    let tree = real_trees_match_umoci(
        "usr/share",
        &[("usr/share", vec![PathBuf::from("/usr/share/zoneinfo")])],
        TarFormat::Gnu,
        [
            DOCKER_TAR_GZIP,
            DOCKER_TAR,
            DOCKER_FOREIGN_TAR_GZIP,
            DOCKER_TAR_GZIP,
        ],
        ManifestKind::Docker,
    );
    assert!(tree.count(Kind::Symlink) > 100, "zoneinfo's symlinks");
}

/// Part of a `git-core` directory whose builtins are hardlinks of `git`
/// (git built from source: 143 names of one 3.7 MB inode here; Debian's
/// package makes symlinks): its small files (scripts, the mergetools
/// directory), the first 16 names of `git` (all of them make umoci take
/// seconds: it hashes each name), and every other name sharing an inode.
fn git_core_part() -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let candidates = [
        "/usr/local/libexec/git-core",
        "/usr/libexec/git-core",
        "/usr/lib/git-core",
    ];
    let linked = |dir: &str| {
        std::fs::symlink_metadata(Path::new(dir).join("git"))
            .map(|m| m.is_file() && m.nlink() > 16)
            .unwrap_or(false)
    };
    let dir = candidates.iter().find(|d| linked(d)).unwrap_or_else(|| {
        panic!(
            "no git-core of {candidates:?} has git's builtins as hardlinks: \
             this test wants that real tree of hardlinks (git from source: \
             make install)"
        )
    });
    let all = sorted_children(Path::new(dir));
    let git = std::fs::symlink_metadata(Path::new(dir).join("git"))
        .unwrap()
        .ino();
    let mut git_names = 0;
    all.into_iter()
        .filter(|p| {
            let meta = std::fs::symlink_metadata(p).unwrap();
            if meta.ino() == git {
                git_names += 1;
                return git_names <= 16;
            }
            meta.nlink() > 1 || apparent_size(p) < 512 * 1024
        })
        .collect()
}

/// `/usr/lib/python3.N`, the newest this machine has.
fn python_lib() -> PathBuf {
    sorted_children(Path::new("/usr/lib"))
        .into_iter()
        .rfind(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("python3.") && p.join("json").is_dir()
        })
        .expect("/usr/lib/python3.N with its standard library (apt-get install python3)")
}

fn sorted_children(dir: &Path) -> Vec<PathBuf> {
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    children.sort();
    children
}

/// The bytes of the regular files under `path`, links not followed.
fn apparent_size(path: &Path) -> u64 {
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        sorted_children(path).iter().map(|p| apparent_size(p)).sum()
    } else if meta.is_file() {
        meta.len()
    } else {
        0
    }
}

// ---------------------------------------------------------------------------
// (a) The rig's images, as tank_pull writes them.

/// Each of the rig's images (OCI and Docker, single and from an index),
/// pulled by `tank_pull`, then unpacked by tank and by umoci from that same
/// layout (through the twin for the Docker ones umoci refuses).
#[test]
fn rig_images_pulled_by_tank_match_umoci() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let images = &rig.info().images;
    let wanted = [
        (&images.oci_image.repo, &images.oci_image.tag, None),
        (&images.docker_image.repo, &images.docker_image.tag, None),
        (
            &images.oci_index.repo,
            &images.oci_index.tag,
            Some("linux/amd64"),
        ),
        (
            &images.docker_list.repo,
            &images.docker_list.tag,
            Some("linux/amd64"),
        ),
    ];
    let cache = Cache::new();
    for (repo, tag, platform) in wanted {
        let scratch = tempfile::tempdir().unwrap();
        let layout = scratch.path().join("layout");
        let name = format!("{registry}/{repo}:{tag}");
        let (pulled, _) = pull(&name, &layout, platform, 2, &cache, None);
        let pulled = pulled.unwrap_or_else(|e| panic!("tank_pull {name}: {e:?}"));
        let kind = if pulled.media_type == DOCKER_MANIFEST {
            ManifestKind::Docker
        } else {
            ManifestKind::Oci
        };
        let written = Written {
            layout: layout.clone(),
            tag: name.clone(),
            manifest_digest: pulled.digest.clone(),
            kind,
        };
        let layers = layers_of(&layout, &name);
        assert!(!layers.is_empty(), "{name} has layers");
        let tree = assert_tank_matches_umoci(&written, &layers, scratch.path());
        assert!(
            tree.count(Kind::File) > 0,
            "{name}: files unpacked ({} paths)",
            tree.len()
        );
    }
}

// ---------------------------------------------------------------------------
// (c) Promise 2: every listed layer type; wrong bytes; other types.

/// The layer media types issue 20 lists, with the compression each means
/// and the manifest it comes in.
const LISTED: [(&str, Compress, ManifestKind); 9] = [
    (OCI_TAR, Compress::None, ManifestKind::Oci),
    (OCI_TAR_GZIP, Compress::Gzip, ManifestKind::Oci),
    (OCI_TAR_ZSTD, Compress::Zstd, ManifestKind::Oci),
    (OCI_ND_TAR, Compress::None, ManifestKind::Oci),
    (OCI_ND_TAR_GZIP, Compress::Gzip, ManifestKind::Oci),
    (OCI_ND_TAR_ZSTD, Compress::Zstd, ManifestKind::Oci),
    (DOCKER_TAR_GZIP, Compress::Gzip, ManifestKind::Docker),
    (DOCKER_TAR, Compress::None, ManifestKind::Docker),
    (
        DOCKER_FOREIGN_TAR_GZIP,
        Compress::Gzip,
        ManifestKind::Docker,
    ),
];

/// One layer's tar of a small real tree and the oddities, with `./`.
fn small_tree_tar(scratch: &Path) -> Vec<u8> {
    let stage = Stage::new(scratch, "small-tree");
    stage.copy_in(Path::new("/usr/share/zoneinfo/America"), "zoneinfo/America");
    add_oddities(&stage);
    chmod(&stage.root, 0o755);
    set_mtime(&stage.root, 1_300_000_000);
    let tar = tar_dir_with_root(&stage.root, TarFormat::Posix);
    make_removable(&stage.root);
    std::fs::remove_dir_all(&stage.root).unwrap();
    tar
}

/// A tag for `media_type`: its last dotted parts, `/` and `+` made `-`.
fn tag_of(media_type: &str) -> String {
    media_type
        .rsplit('/')
        .next()
        .unwrap()
        .replace(['+', '.'], "-")
}

#[test]
fn every_listed_layer_type_gives_the_tree_umoci_and_gnu_tar_give() {
    let scratch = tempfile::tempdir().unwrap();
    let tar = small_tree_tar(scratch.path());
    let reference = [Layer::new(tar.clone(), Compress::Gzip)];
    let by_tar = Tree::of(&tar_extract(&reference, scratch.path()));
    let reference_written = layout_of(&reference, scratch.path(), ManifestKind::Oci);
    let by_umoci = umoci_tree(&reference_written, &reference, scratch.path());
    assert_same(&by_tar, "GNU tar", &by_umoci, "umoci");

    let layout = scratch.path().join("typed");
    for (media_type, compress, kind) in LISTED {
        let layer = Layer::typed(tar.clone(), compress, media_type);
        let written = write_layout(&layout, &tag_of(media_type), &[layer], kind);
        let rootfs = scratch.path().join(format!("tank-{}", written.tag));
        let (result, _) = unpack(&layout, &written.tag, &rootfs, 0, None);
        if let Err(e) = result {
            panic!("{media_type} ({kind:?} manifest): {e:?}");
        }
        assert_same(
            &by_umoci,
            "umoci",
            &Tree::of(&rootfs),
            &format!("tank of {media_type}"),
        );
    }
}

/// A layer of `claimed` type whose bytes are `given`-compressed. Its
/// diff_id is what the bytes tank would read as the tar hash to, so that
/// only the bytes' form is wrong.
fn mislabelled(tar: &[u8], claimed: &str, given: Compress) -> Layer {
    let blob = given.apply(tar);
    let diff_id = if compression_of(claimed) == Compress::None {
        layers::sha256(&blob)
    } else {
        layers::sha256(tar)
    };
    Layer {
        media_type: claimed.to_owned(),
        blob,
        diff_id,
        tar: tar.to_vec(),
    }
}

/// A refused unpack left nothing in `out_dir`, where its `rootfs` was to
/// be: neither `rootfs` nor the temporary tree beside it.
#[track_caller]
fn assert_nothing_left(out_dir: &Path, what: &str) {
    let left: Vec<PathBuf> = sorted_children(out_dir);
    assert!(left.is_empty(), "{what}: left behind {left:?}");
}

#[test]
fn bytes_that_are_not_what_the_media_type_says_are_bad_layer() {
    let scratch = tempfile::tempdir().unwrap();
    let tar = small_tree_tar(scratch.path());
    let cases = [
        (OCI_TAR_GZIP, Compress::None, ManifestKind::Oci),
        (OCI_TAR_GZIP, Compress::Zstd, ManifestKind::Oci),
        (OCI_TAR_ZSTD, Compress::None, ManifestKind::Oci),
        (OCI_TAR_ZSTD, Compress::Gzip, ManifestKind::Oci),
        (OCI_TAR, Compress::Gzip, ManifestKind::Oci),
        (OCI_TAR, Compress::Zstd, ManifestKind::Oci),
        (OCI_ND_TAR_GZIP, Compress::None, ManifestKind::Oci),
        (OCI_ND_TAR_ZSTD, Compress::Gzip, ManifestKind::Oci),
        (OCI_ND_TAR, Compress::Zstd, ManifestKind::Oci),
        (DOCKER_TAR_GZIP, Compress::None, ManifestKind::Docker),
        (DOCKER_TAR_GZIP, Compress::Zstd, ManifestKind::Docker),
        (DOCKER_TAR, Compress::Gzip, ManifestKind::Docker),
        (
            DOCKER_FOREIGN_TAR_GZIP,
            Compress::None,
            ManifestKind::Docker,
        ),
    ];
    let layout = scratch.path().join("layout");
    let out_dir = scratch.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for (i, (claimed, given, kind)) in cases.into_iter().enumerate() {
        let tag = format!("case-{i}");
        write_layout(&layout, &tag, &[mislabelled(&tar, claimed, given)], kind);
        let rootfs = out_dir.join(format!("rootfs-{i}"));
        let (result, _) = unpack(&layout, &tag, &rootfs, 0, None);
        let what = format!("{claimed} holding {given:?} bytes");
        let e = result.expect_err(&what);
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_LAYER, "bad_layer"),
            "{what}: {e:?}"
        );
        assert_nothing_left(&out_dir, &what);
    }
}

#[test]
fn other_media_types_are_unsupported_media_type_naming_the_type() {
    let scratch = tempfile::tempdir().unwrap();
    let tar = small_tree_tar(scratch.path());
    let others = [
        "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        "application/vnd.oci.image.layer.v1.tar+xz",
        "application/vnd.oci.image.config.v1+json",
        "application/octet-stream",
    ];
    let layout = scratch.path().join("layout");
    let out_dir = scratch.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    for (i, media_type) in others.into_iter().enumerate() {
        let tag = format!("other-{i}");
        // Bytes any listed type would take: only the type is wrong.
        let layer = Layer::typed(tar.clone(), Compress::Gzip, media_type);
        write_layout(&layout, &tag, &[layer], ManifestKind::Oci);
        let rootfs = out_dir.join(format!("rootfs-{i}"));
        let (result, _) = unpack(&layout, &tag, &rootfs, 0, None);
        let e = result.expect_err(media_type);
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_LAYER, "unsupported_media_type"),
            "{media_type}: {e:?}"
        );
        assert!(
            e.message.contains(media_type),
            "the message names the type {media_type}: {}",
            e.message
        );
        assert_nothing_left(&out_dir, media_type);
    }
}

/// The comparison fails on each thing promise 1 names, and only on those:
/// a tree and its `cp -a` copy agree; each change to the copy is one
/// difference, named by its field.
#[test]
fn the_tree_comparison_sees_each_field_promise_1_names() {
    let scratch = tempfile::tempdir().unwrap();
    let original = Stage::new(scratch.path(), "original");
    original.file("dir/file", b"contents\n", 0o644);
    original.file("dir/setuid", b"#!/bin/sh\n", 0o4755);
    original.file("links/one", b"linked\n", 0o644);
    original.hardlink("links/one", "links/two");
    original.symlink("dir/file", "symlink");
    set_mtime(&original.path("symlink"), 1_000_000_000);
    set_mtime(&original.path("dir"), 1_100_000_000);
    let tree = Tree::of(&original.root);
    let copy_of = |name: &str| {
        let copy = scratch.path().join(name);
        run(Command::new("cp").arg("-a").arg(&original.root).arg(&copy));
        copy
    };
    assert_same(&tree, "original", &Tree::of(&copy_of("same")), "copy");

    type Change = fn(&Path);
    let changes: [(&str, Change, &str); 9] = [
        (
            "contents",
            |c| std::fs::write(c.join("dir/file"), b"Contents\n").unwrap(),
            "contents",
        ),
        (
            "mode",
            |c| chmod(&c.join("dir/setuid"), 0o755),
            "mode 4755 vs 0755",
        ),
        ("file mtime", |c| set_mtime(&c.join("dir/file"), 5), "mtime"),
        (
            "symlink mtime",
            |c| set_mtime(&c.join("symlink"), 1_000_000_001),
            "mtime",
        ),
        ("dir mtime", |c| set_mtime(&c.join("dir"), 7), "mtime"),
        (
            "target",
            |c| {
                std::fs::remove_file(c.join("symlink")).unwrap();
                std::os::unix::fs::symlink("dir/./file", c.join("symlink")).unwrap();
                set_mtime(&c.join("symlink"), 1_000_000_000);
            },
            "target",
        ),
        (
            "hardlink group",
            |c| {
                std::fs::remove_file(c.join("links/two")).unwrap();
                std::fs::copy(c.join("links/one"), c.join("links/two")).unwrap();
                run(Command::new("touch")
                    .arg("-r")
                    .arg(c.join("links/one"))
                    .arg(c.join("links/two")));
            },
            "hardlink group",
        ),
        (
            "type",
            |c| {
                let t = std::fs::symlink_metadata(c.join("dir/file")).unwrap();
                std::fs::remove_file(c.join("dir/file")).unwrap();
                let p = std::ffi::CString::new(c.join("dir/file").as_os_str().as_bytes()).unwrap();
                assert_eq!(unsafe { libc::mkfifo(p.as_ptr(), 0o644) }, 0);
                use std::os::unix::fs::MetadataExt;
                set_mtime(&c.join("dir/file"), t.mtime());
                set_mtime(&c.join("dir"), 1_100_000_000);
            },
            "type File vs Fifo",
        ),
        (
            "path",
            |c| {
                std::fs::remove_file(c.join("dir/setuid")).unwrap();
                set_mtime(&c.join("dir"), 1_100_000_000);
            },
            "only in original",
        ),
    ];
    for (i, (what, change, expected)) in changes.into_iter().enumerate() {
        let copy = copy_of(&format!("copy-{i}"));
        change(&copy);
        if what != "dir mtime" {
            // The change touched its directories' times: back as they were.
            for (path, node) in &tree.nodes {
                if node.kind == Kind::Dir {
                    set_mtime(
                        &copy.join(String::from_utf8_lossy(path).as_ref()),
                        node.mtime,
                    );
                }
            }
        }
        let diffs = common::tree::differences(&tree, "original", &Tree::of(&copy), "copy");
        assert!(
            !diffs.is_empty() && diffs.iter().all(|d| d.contains(expected)),
            "a change of {what} is seen as {expected:?}, and nothing else: {diffs:#?}"
        );
    }
}
