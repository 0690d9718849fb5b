//! `tank_unpack` at its limits, through the C ABI: cancel, a full disk,
//! `TANK_UNPACK_KEEP_OWNERS` (as root, and refused without root),
//! `TANK_UNPACK_REPLACE` keeping the old tree whole, and bad input (NULL,
//! not UTF-8, empty, unknown flag bits, an image that names an index or
//! nothing). scripts/valgrind-abi.sh runs this binary under valgrind, less
//! the cases that measure wall-clock time or re-run the binary in a child
//! (`--skip cancel_mid_layer --skip keep_owners_without_root`): every
//! layout here is small but those two.

mod common;

use std::ffi::{c_char, c_void, CString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::hostile_layers::{self as hl, names, snapshot, Compression, Header, Layout, Tar};
use common::unpack::{
    pull_unpack, tank_unpack, unpack, TANK_UNPACK_KEEP_OWNERS, TANK_UNPACK_REPLACE,
};
use common::*;

const IMAGE: &str = "tank.test/limits:good";

/// A temp dir `T` with `T/layout`; `T/rootfs` is where trees go.
struct World {
    dir: tempfile::TempDir,
    layout: Layout,
}

impl World {
    fn new() -> World {
        World::in_dir(tempfile::tempdir().unwrap())
    }

    fn in_dir(dir: tempfile::TempDir) -> World {
        let layout = Layout::new(&dir.path().join("layout"));
        World { dir, layout }
    }

    fn t(&self) -> &Path {
        self.dir.path()
    }

    fn layout_dir(&self) -> PathBuf {
        self.t().join("layout")
    }

    fn rootfs(&self) -> PathBuf {
        self.t().join("rootfs")
    }

    /// A small image of two gzip layers under `name`.
    fn small_image(&mut self, name: &str, marker: &[u8]) {
        let a = self.layout.layer(
            Compression::Gzip,
            &tar(|t| {
                t.dir("etc/")
                    .file("etc/os-release", b"ID=tank\n")
                    .symlink("bin", "usr/bin");
                t.dirs("usr/bin").file_mode("usr/bin/sh", 0o755, b"#!");
            }),
        );
        let b = self.layout.layer(
            Compression::Gzip,
            &tar(|t| {
                t.file("marker", marker);
            }),
        );
        self.layout.image(name, &[a, b]);
    }
}

fn tar(build: impl FnOnce(&mut Tar<Vec<u8>>)) -> Vec<u8> {
    let mut t = Tar::new();
    build(&mut t);
    t.finish()
}

#[track_caller]
fn expect_err(result: Result<(), CallError>, status: TankStatus, reason: &str) -> CallError {
    let e = result.expect_err("expected a failure, the call succeeded");
    assert_eq!((e.status, e.reason.as_str()), (status, reason), "{e:?}");
    e
}

// ------------------------------------------------------------ cancel

/// The state a progress callback shares with the thread that cancels.
struct Watch {
    first_mid_layer: Mutex<Option<mpsc::Sender<()>>>,
    reports: Mutex<Vec<(u64, u64)>>,
}

unsafe extern "C" fn on_progress(user: *mut c_void, done: u64, total: u64) {
    let watch = &*user.cast::<Watch>();
    watch.reports.lock().unwrap().push((done, total));
    if done > 0 && done < total {
        if let Some(tx) = watch.first_mid_layer.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

/// 1 GiB of plain tar in 16 files of 64 MiB, written to `path`: a 1 MiB
/// pseudo-random block repeated (no compression to hide behind, and cheap
/// to make in a debug build).
fn write_big_tar(path: &Path) {
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let file = std::io::BufWriter::new(fs::File::create(path).unwrap());
    let mut t = Tar::over(file);
    for i in 0..16 {
        let mut h = Header::new(hl::REGULAR, format!("big{i:02}").as_bytes());
        h.size = 64 << 20;
        t.entry_streamed(&h, |w| {
            for _ in 0..64 {
                w.write_all(&block).unwrap();
            }
        });
    }
    t.end();
    t.into_inner().flush().unwrap();
}

/// Cancel from another thread, triggered by the first progress report from
/// inside the layer (an event, not a sleep): the call returns
/// `TANK_ERR_CANCELLED` within 500 ms of the trigger and the temporary tree
/// is gone.
///
/// The bound is the promise itself and needs no more slack: the layer is
/// read in chunks of a MiB or so, each a few ms even in a debug build, and
/// what is left to remove at that point is a few files; two busy cores
/// delay a runnable thread by tens of ms, not hundreds. The layer (1 GiB,
/// on tmpfs) takes seconds in a debug build and about a second in a
/// release one, so the trigger always lands mid-layer.
#[test]
fn cancel_mid_layer() {
    let mut w = World::in_dir(tempfile::tempdir_in("/dev/shm").unwrap());
    let big = w.t().join("big.tar");
    write_big_tar(&big);
    let layer = w.layout.adopt_plain_layer(&big);
    w.layout.image(IMAGE, &[layer]);

    let cancel = Cancel::new();
    let (tx, rx) = mpsc::channel();
    let watch = Watch {
        first_mid_layer: Mutex::new(Some(tx)),
        reports: Mutex::new(Vec::new()),
    };
    let (layout, image, rootfs) = (c_path(&w.layout_dir()), c(IMAGE), c_path(&w.rootfs()));
    let (status, err, returned, triggered) = std::thread::scope(|s| {
        let cancel = &cancel;
        let canceller = s.spawn(move || {
            // The channel closes unsent when the call returns first.
            rx.recv().ok()?;
            let at = Instant::now();
            cancel.trigger();
            Some(at)
        });
        let mut err: *mut TankError = ptr::null_mut();
        let status = unsafe {
            tank_unpack(
                layout.as_ptr(),
                image.as_ptr(),
                rootfs.as_ptr(),
                0,
                cancel.0,
                Some(on_progress),
                (&watch as *const Watch).cast_mut().cast(),
                &mut err,
            )
        };
        let returned = Instant::now();
        watch.first_mid_layer.lock().unwrap().take();
        let triggered = canceller.join().unwrap();
        (status, err, returned, triggered)
    });
    let result = unsafe { settled(status, err) };
    let reports = watch.reports.lock().unwrap().clone();
    let triggered = triggered.unwrap_or_else(|| {
        panic!("the call returned ({result:?}) before a progress report from inside the layer: {reports:?}")
    });
    let e = expect_err(result, TankStatus::TANK_ERR_CANCELLED, "cancelled");
    let latency = returned.duration_since(triggered);
    eprintln!(
        "cancel: returned {latency:?} after the trigger, {} reports, the trigger at {:?}",
        reports.len(),
        reports.iter().find(|(d, t)| *d > 0 && d < t)
    );
    assert!(
        latency <= Duration::from_millis(500),
        "returned {latency:?} after the trigger ({e:?}); reports {reports:?}"
    );
    assert_eq!(
        names(w.t()),
        ["layout"],
        "the temporary tree or rootfs is left"
    );
}

#[test]
fn cancelled_before_the_call() {
    let mut w = World::new();
    w.small_image(IMAGE, b"m");
    let cancel = Cancel::new();
    cancel.trigger();
    let (result, _) = unpack(&w.layout_dir(), IMAGE, &w.rootfs(), 0, Some(&cancel));
    expect_err(result, TankStatus::TANK_ERR_CANCELLED, "cancelled");
    assert_eq!(names(w.t()), ["layout"]);
}

// ------------------------------------------------------------ disk full

/// A tmpfs of `size` mounted on a new dir; unmounted (lazily, so a file
/// left open cannot keep it) when dropped, even when the test fails.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir(path).unwrap();
        let target = CString::new(path.as_os_str().as_bytes()).unwrap();
        let data = CString::new(format!("size={size},mode=0755")).unwrap();
        let fstype = CString::new("tmpfs").unwrap();
        let rc = unsafe {
            libc::mount(
                fstype.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        assert_eq!(
            rc,
            0,
            "mount -t tmpfs -o size={size} {path:?} is not permitted ({}): the disk-full test \
             needs root with CAP_SYS_ADMIN",
            std::io::Error::last_os_error()
        );
        Tmpfs {
            path: path.to_owned(),
        }
    }

    /// (free, total) blocks.
    fn blocks(&self) -> (u64, u64) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(target.as_ptr(), &mut st) }, 0);
        (st.f_bfree as u64, st.f_blocks as u64)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path.as_os_str().as_bytes()).unwrap();
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A layer of 1 MiB, then 16 MiB, of zeros (gzip: the blob is small and
/// lives outside the full filesystem).
fn too_big_for_4_mib(w: &mut World) {
    let layer = w.layout.streamed_layer(Compression::Gzip, |out| {
        let mut t = Tar::over(out);
        t.dir("d/");
        for (name, mib) in [("d/small", 1u64), ("d/large", 16)] {
            let mut h = Header::new(hl::REGULAR, name.as_bytes());
            h.size = mib << 20;
            t.entry_streamed(&h, |w| {
                let zeros = vec![0u8; 1 << 20];
                for _ in 0..mib {
                    w.write_all(&zeros).unwrap();
                }
            });
        }
        t.end();
    });
    w.layout.image(IMAGE, &[layer]);
}

#[test]
fn disk_full_is_io_and_leaves_nothing() {
    let mut w = World::new();
    too_big_for_4_mib(&mut w);
    let small = Tmpfs::mount(&w.t().join("small"), "4m");
    let (free_before, total) = small.blocks();
    let rootfs = small.path.join("rootfs");
    let (result, _) = unpack(&w.layout_dir(), IMAGE, &rootfs, 0, None);
    let e = expect_err(result, TankStatus::TANK_ERR_IO, "io");
    assert!(
        e.message.contains("No space left on device"),
        "the message names the OS error: {e:?}"
    );
    assert_eq!(
        names(&small.path),
        Vec::<String>::new(),
        "the temporary tree is left"
    );
    assert_eq!(
        small.blocks(),
        (free_before, total),
        "blocks still in use on the tmpfs"
    );
}

#[test]
fn disk_full_with_replace_keeps_the_old_tree() {
    let mut w = World::new();
    w.small_image("tank.test/limits:old", b"old");
    too_big_for_4_mib(&mut w);
    let small = Tmpfs::mount(&w.t().join("small"), "4m");
    let rootfs = small.path.join("rootfs");
    let (result, _) = unpack(&w.layout_dir(), "tank.test/limits:old", &rootfs, 0, None);
    result.expect("the old tree fits");
    let old = snapshot(&rootfs, &[]);
    let (result, _) = unpack(&w.layout_dir(), IMAGE, &rootfs, TANK_UNPACK_REPLACE, None);
    expect_err(result, TankStatus::TANK_ERR_IO, "io");
    assert_eq!(
        names(&small.path),
        ["rootfs"],
        "a temporary sibling is left"
    );
    assert_eq!(
        hl::changes(&old, &snapshot(&rootfs, &[])),
        Vec::<String>::new()
    );
}

// ------------------------------------------------------------ owners

/// `security.capability` v2: CAP_NET_BIND_SERVICE permitted and effective.
fn capability() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0x0200_0001u32.to_le_bytes()); // VFS_CAP_REVISION_2 | effective
    v.extend_from_slice(&(1u32 << 10).to_le_bytes()); // permitted[0]
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable[0]
    v.extend_from_slice(&0u32.to_le_bytes()); // permitted[1]
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable[1]
    v
}

/// Entries owned by numeric ids the machine has no names for (the header's
/// names say `root`, and must be ignored), a device, and xattrs of three
/// namespaces.
fn owned_image(w: &mut World) {
    let owned = |kind, name: &str, uid, gid| {
        let mut h = Header::new(kind, name.as_bytes());
        h.uid = uid;
        h.gid = gid;
        if kind == hl::DIRECTORY {
            h.mode = 0o750;
        }
        h
    };
    let cap = capability();
    let layer = w.layout.layer(
        Compression::Gzip,
        &tar(|t| {
            t.entry(&owned(hl::DIRECTORY, "d/", 42, 43), b"");
            t.entry(&owned(hl::REGULAR, "d/owned", 1234, 5678), b"owned");
            let mut s = owned(hl::SYMLINK, "link", 7, 8);
            s.link = b"d/owned".to_vec();
            t.entry(&s, b"");
            t.device(hl::CHAR_DEVICE, "null", 1, 3);
            t.pax(&[
                ("SCHILY.xattr.security.capability", &cap),
                ("SCHILY.xattr.user.note", b"hello"),
                ("SCHILY.xattr.trusted.tank", b"trusted"),
            ]);
            t.file_mode("ping", 0o755, b"#!");
        }),
    );
    w.layout.image(IMAGE, &[layer]);
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

fn owner(path: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn keep_owners_as_root() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs as root");
    let mut w = World::new();
    owned_image(&mut w);
    let (result, _) = unpack(
        &w.layout_dir(),
        IMAGE,
        &w.rootfs(),
        TANK_UNPACK_KEEP_OWNERS,
        None,
    );
    result.unwrap();
    let r = w.rootfs();
    assert_eq!(owner(&r.join("d")), (42, 43));
    assert_eq!(owner(&r.join("d/owned")), (1234, 5678));
    assert_eq!(
        owner(&r.join("link")),
        (7, 8),
        "lchown, not chown through the link"
    );
    let null = fs::symlink_metadata(r.join("null")).expect("the device node is made");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &null.file_type()
    ));
    assert_eq!((libc::major(null.rdev()), libc::minor(null.rdev())), (1, 3));
    assert_eq!(
        xattr(&r.join("ping"), "security.capability"),
        Some(capability())
    );
    assert_eq!(xattr(&r.join("ping"), "user.note"), Some(b"hello".to_vec()));
    assert_eq!(
        xattr(&r.join("ping"), "trusted.tank"),
        Some(b"trusted".to_vec())
    );
    assert_eq!(
        fs::symlink_metadata(r.join("d")).unwrap().mode() & 0o7777,
        0o750
    );
}

#[test]
fn without_keep_owners_the_caller_owns_everything() {
    let mut w = World::new();
    owned_image(&mut w);
    let (result, _) = unpack(&w.layout_dir(), IMAGE, &w.rootfs(), 0, None);
    result.unwrap();
    let r = w.rootfs();
    let me = unsafe { (libc::geteuid(), libc::getegid()) };
    for p in ["d", "d/owned", "link", "ping"] {
        assert_eq!(owner(&r.join(p)), me, "{p}");
    }
    assert!(
        fs::symlink_metadata(r.join("null")).is_err(),
        "a device node was made rootless"
    );
    assert_eq!(xattr(&r.join("ping"), "security.capability"), None);
    assert_eq!(xattr(&r.join("ping"), "trusted.tank"), None);
    assert_eq!(xattr(&r.join("ping"), "user.note"), Some(b"hello".to_vec()));
}

/// Without root, `TANK_UNPACK_KEEP_OWNERS` is `TANK_ERR_BAD_INPUT` before
/// any work: the child runs as nobody against a layout it cannot even read.
#[test]
fn keep_owners_without_root_is_bad_input() {
    let mut w = World::new();
    w.small_image(IMAGE, b"m");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_keep_owners_as_nobody",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TANK_TEST_NOBODY_LAYOUT", w.layout_dir())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("NOBODY bad_input"),
        "the child did not run:\n{stdout}\n{stderr}"
    );
    assert_eq!(names(w.t()), ["layout"]);
}

#[test]
#[ignore = "run by keep_owners_without_root_is_bad_input as uid 65534"]
fn child_keep_owners_as_nobody() {
    let Some(layout) = std::env::var_os("TANK_TEST_NOBODY_LAYOUT") else {
        return;
    };
    assert_ne!(unsafe { libc::geteuid() }, 0);
    let layout = PathBuf::from(layout);
    let rootfs = layout.parent().unwrap().join("rootfs");
    let (result, _) = unpack(&layout, IMAGE, &rootfs, TANK_UNPACK_KEEP_OWNERS, None);
    let e = expect_err(result, TankStatus::TANK_ERR_BAD_INPUT, "bad_input");
    assert!(
        e.message.to_lowercase().contains("keep_owners"),
        "the message names the flag: {e:?}"
    );
    println!("NOBODY {}", e.reason);
}

// ------------------------------------------------------------ replace

#[test]
fn replace_swaps_in_the_new_tree() {
    let mut w = World::new();
    w.small_image("tank.test/limits:old", b"old");
    w.small_image("tank.test/limits:new", b"new");
    let (r, _) = unpack(
        &w.layout_dir(),
        "tank.test/limits:old",
        &w.rootfs(),
        0,
        None,
    );
    r.unwrap();
    fs::write(w.rootfs().join("only-in-old"), b"x").unwrap();
    let (r, _) = unpack(
        &w.layout_dir(),
        "tank.test/limits:new",
        &w.rootfs(),
        TANK_UNPACK_REPLACE,
        None,
    );
    r.unwrap();
    assert_eq!(fs::read(w.rootfs().join("marker")).unwrap(), b"new");
    assert!(
        !w.rootfs().join("only-in-old").exists(),
        "the old tree is still there"
    );
    assert_eq!(
        names(w.t()),
        ["layout", "rootfs"],
        "the old tree or a temporary is left"
    );
}

#[test]
fn replace_with_nothing_there_unpacks() {
    let mut w = World::new();
    w.small_image(IMAGE, b"m");
    let (r, _) = unpack(
        &w.layout_dir(),
        IMAGE,
        &w.rootfs(),
        TANK_UNPACK_REPLACE,
        None,
    );
    r.unwrap();
    assert_eq!(fs::read(w.rootfs().join("marker")).unwrap(), b"m");
    assert_eq!(names(w.t()), ["layout", "rootfs"]);
}

/// The new unpack fails in its second layer, after the first was applied:
/// the old tree stays exactly as it was.
#[test]
fn replace_keeps_the_old_tree_whole_when_the_new_one_fails() {
    let mut w = World::new();
    w.small_image("tank.test/limits:old", b"old");
    let good = w.layout.layer(
        Compression::Gzip,
        &tar(|t| {
            t.file("marker", b"new").file(".wh.etc", b"");
        }),
    );
    let bad = w.layout.layer(
        Compression::Gzip,
        &tar(|t| {
            t.symlink("x", "../rootfs")
                .file("x/marker", b"through")
                .file("../rootfs/marker", b"pwned");
        }),
    );
    w.layout.image("tank.test/limits:bad", &[good, bad]);
    let (r, _) = unpack(
        &w.layout_dir(),
        "tank.test/limits:old",
        &w.rootfs(),
        0,
        None,
    );
    r.unwrap();
    let old = snapshot(&w.rootfs(), &[]);
    let (r, _) = unpack(
        &w.layout_dir(),
        "tank.test/limits:bad",
        &w.rootfs(),
        TANK_UNPACK_REPLACE,
        None,
    );
    let e = expect_err(r, TankStatus::TANK_ERR_LAYER, "unsafe_path");
    assert!(e.message.contains("../rootfs/marker"), "{e:?}");
    assert_eq!(
        hl::changes(&old, &snapshot(&w.rootfs(), &[])),
        Vec::<String>::new()
    );
    assert_eq!(
        names(w.t()),
        ["layout", "rootfs"],
        "a temporary tree is left"
    );
}

#[test]
fn an_existing_rootfs_without_replace_is_io_naming_it() {
    let mut w = World::new();
    w.small_image(IMAGE, b"m");
    fs::create_dir(w.rootfs()).unwrap();
    fs::write(w.rootfs().join("mine"), b"mine").unwrap();
    let before = snapshot(w.t(), &[]);
    let (r, _) = unpack(&w.layout_dir(), IMAGE, &w.rootfs(), 0, None);
    let e = expect_err(r, TankStatus::TANK_ERR_IO, "io");
    assert!(e.message.contains(w.rootfs().to_str().unwrap()), "{e:?}");
    assert_eq!(
        hl::changes(&before, &snapshot(w.t(), &[])),
        Vec::<String>::new()
    );
}

// ------------------------------------------------------------ bad input

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// `tank_unpack` with raw arguments, NULL progress and cancel, and `err`
/// NULL or not.
fn raw_call(
    layout: Option<&[u8]>,
    image: Option<&[u8]>,
    rootfs: Option<&[u8]>,
    flags: u32,
    with_err: bool,
) -> (TankStatus, *mut TankError) {
    let owned = |a: Option<&[u8]>| a.map(|b| CString::new(b).expect("no NUL inside"));
    let (l, i, r) = (owned(layout), owned(image), owned(rootfs));
    let p = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr()) as *const c_char;
    let mut err: *mut TankError = ptr::null_mut();
    let status = unsafe {
        tank_unpack(
            p(&l),
            p(&i),
            p(&r),
            flags,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            if with_err { &mut err } else { ptr::null_mut() },
        )
    };
    (status, err)
}

/// A call that must fail: made with `err` NULL, then with `err` (the
/// status must be the same and nothing may crash or leak).
fn raw_unpack(
    layout: Option<&[u8]>,
    image: Option<&[u8]>,
    rootfs: Option<&[u8]>,
    flags: u32,
) -> Result<(), CallError> {
    let (quiet, _) = raw_call(layout, image, rootfs, flags, false);
    let (status, err) = raw_call(layout, image, rootfs, flags, true);
    assert_eq!(quiet, status, "the status does not depend on err");
    unsafe { settled(status, err) }
}

#[track_caller]
fn bad_input(result: Result<(), CallError>, names_in_message: &[&str]) {
    let e = expect_err(result, TankStatus::TANK_ERR_BAD_INPUT, "bad_input");
    for n in names_in_message {
        assert!(
            e.message.contains(n),
            "the message does not name {n:?}: {e:?}"
        );
    }
}

/// A layout with an image, an index over it, and the image again by its
/// full normalized name; the rootfs path; what the names are.
fn named_layout() -> (World, String, String) {
    let mut w = World::new();
    w.small_image(IMAGE, b"m");
    let digest = w.layout.image("docker.io/library/alpine:latest", &[]);
    let index_digest = w
        .layout
        .index("tank.test/limits:index", std::slice::from_ref(&digest));
    (w, digest, index_digest)
}

#[test]
fn null_empty_and_not_utf8_arguments() {
    let (w, _, _) = named_layout();
    let layout = w.layout_dir();
    let rootfs = w.rootfs();
    let (l, r) = (layout.as_os_str().as_bytes(), rootfs.as_os_str().as_bytes());
    let i = IMAGE.as_bytes();
    let not_utf8: &[u8] = b"\xff\xfeoops";
    for (which, args) in [
        ("layout", [None, Some(i), Some(r)]),
        ("image", [Some(l), None, Some(r)]),
        ("rootfs", [Some(l), Some(i), None]),
        ("layout", [Some(b"".as_slice()), Some(i), Some(r)]),
        ("image", [Some(l), Some(b"".as_slice()), Some(r)]),
        ("rootfs", [Some(l), Some(i), Some(b"".as_slice())]),
        ("layout", [Some(not_utf8), Some(i), Some(r)]),
        ("image", [Some(l), Some(not_utf8), Some(r)]),
        ("rootfs", [Some(l), Some(i), Some(not_utf8)]),
    ] {
        bad_input(raw_unpack(args[0], args[1], args[2], 0), &[which]);
        assert_eq!(names(w.t()), ["layout"], "{which}: something was made");
    }
    // Every argument NULL at once.
    bad_input(raw_unpack(None, None, None, 0), &[]);
}

#[test]
fn unknown_flag_bits() {
    let (w, _, _) = named_layout();
    for flags in [4, 1 << 31, u32::MAX, TANK_UNPACK_REPLACE | 8] {
        let (r, _) = unpack(&w.layout_dir(), IMAGE, &w.rootfs(), flags, None);
        bad_input(r, &["flag"]);
        assert_eq!(names(w.t()), ["layout"]);
    }
}

#[test]
fn an_image_that_names_an_index_or_nothing() {
    let (w, _, index_digest) = named_layout();
    let listed = [
        IMAGE,
        "docker.io/library/alpine:latest",
        "tank.test/limits:index",
    ];
    for image in [
        "tank.test/limits:index",
        index_digest.as_str(),
        "tank.test/limits:absent",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "tank.test/limits",
    ] {
        let (r, _) = unpack(&w.layout_dir(), image, &w.rootfs(), 0, None);
        bad_input(r, &listed);
        assert_eq!(names(w.t()), ["layout"], "{image}: something was made");
    }
}

/// The ways an `image` may name an entry: as written, normalized, by the
/// image manifest's digest; with NULL progress and cancel.
#[test]
fn an_image_by_name_normal_form_and_digest() {
    let (w, alpine_digest, _) = named_layout();
    for (i, image) in [
        IMAGE,
        "alpine",
        "docker.io/library/alpine:latest",
        alpine_digest.as_str(),
    ]
    .into_iter()
    .enumerate()
    {
        let rootfs = w.t().join(format!("rootfs{i}"));
        let (status, err) = raw_call(
            Some(w.layout_dir().as_os_str().as_bytes()),
            Some(image.as_bytes()),
            Some(rootfs.as_os_str().as_bytes()),
            0,
            true,
        );
        unsafe { settled(status, err) }.unwrap_or_else(|e| panic!("{image}: {e:?}"));
        assert!(rootfs.is_dir(), "{image}: no tree");
    }
}

/// `tank_pull_unpack`'s own arguments, checked before any request.
#[test]
fn pull_unpack_bad_input_sends_nothing() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let image = format!("{}/a/b:v1", wire.registry());
    let (layout, rootfs) = (dir.path().join("layout"), dir.path().join("rootfs"));
    let cache = Cache::none();
    let (r, _) = pull_unpack(&image, &layout, &rootfs, None, 1, 4, &cache, None);
    let e = r.expect_err("unknown flag bits");
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_BAD_INPUT, "bad_input"),
        "{e:?}"
    );
    assert!(e.message.contains("flag"), "{e:?}");
    let (r, _) = pull_unpack(&image, &layout, Path::new(""), None, 1, 0, &cache, None);
    let e = r.expect_err("an empty rootfs");
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
    assert!(e.message.contains("rootfs"), "{e:?}");
    unsafe {
        let (i, l) = (c(&image), c_path(&layout));
        let mut out: TankManifest = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = common::unpack::tank_pull_unpack(
            i.as_ptr(),
            l.as_ptr(),
            ptr::null(),
            ptr::null(),
            1,
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut out,
            &mut err,
        );
        let e = settled(status, err).expect_err("a NULL rootfs");
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
        assert!(e.message.contains("rootfs"), "{e:?}");
        assert!(out._private.is_null(), "out written on failure");
    }
    assert!(!wire.touched(), "a request was sent");
    assert_eq!(
        names(dir.path()),
        Vec::<String>::new(),
        "something was made"
    );
}

/// `rootfs` is a symlink to a directory of the caller's: with or without
/// REPLACE, what it points at is never emptied, replaced or written into.
/// Without REPLACE it is an existing `rootfs` (TANK_ERR_IO); with it, the
/// link may be refused or replaced by the new tree, but not followed.
#[test]
fn a_rootfs_that_is_a_symlink_is_never_followed() {
    let mut w = World::new();
    w.small_image(IMAGE, b"m");
    let theirs = w.t().join("theirs");
    fs::create_dir(&theirs).unwrap();
    fs::write(theirs.join("keep"), b"keep").unwrap();
    std::os::unix::fs::symlink(&theirs, w.rootfs()).unwrap();
    let before = snapshot(&theirs, &[]);

    let (r, _) = unpack(&w.layout_dir(), IMAGE, &w.rootfs(), 0, None);
    expect_err(r, TankStatus::TANK_ERR_IO, "io");
    assert!(fs::symlink_metadata(w.rootfs())
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        hl::changes(&before, &snapshot(&theirs, &[])),
        Vec::<String>::new()
    );

    let (r, _) = unpack(
        &w.layout_dir(),
        IMAGE,
        &w.rootfs(),
        TANK_UNPACK_REPLACE,
        None,
    );
    assert_eq!(
        hl::changes(&before, &snapshot(&theirs, &[])),
        Vec::<String>::new()
    );
    let kind = fs::symlink_metadata(w.rootfs()).unwrap().file_type();
    match r {
        Ok(()) => {
            assert!(kind.is_dir(), "the new tree is not at rootfs: {kind:?}");
            assert_eq!(fs::read(w.rootfs().join("marker")).unwrap(), b"m");
        }
        Err(e) => {
            assert!(kind.is_symlink(), "{e:?}, and rootfs is now {kind:?}");
        }
    }
    assert_eq!(
        names(w.t()),
        ["layout", "rootfs", "theirs"],
        "a temporary is left"
    );
}
