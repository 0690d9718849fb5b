//! OCI image layouts whose layer tars are written byte by byte, for the
//! hostile-layer tests: `tar::Builder` refuses the names these tests need
//! (`../x`, `a/.wh..`, links that climb, headers over 1 MiB), so the headers
//! here are plain ustar blocks with the checksum computed by hand. Also: a
//! snapshot of a directory tree, to show that nothing outside the root was
//! touched.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

pub const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub const BLOCK: usize = 512;

// Type flags (POSIX ustar, PAX, GNU).
pub const REGULAR: u8 = b'0';
pub const HARDLINK: u8 = b'1';
pub const SYMLINK: u8 = b'2';
pub const CHAR_DEVICE: u8 = b'3';
pub const BLOCK_DEVICE: u8 = b'4';
pub const DIRECTORY: u8 = b'5';
pub const FIFO: u8 = b'6';
pub const PAX_LOCAL: u8 = b'x';
pub const GNU_LONG_NAME: u8 = b'L';
pub const GNU_LONG_LINK: u8 = b'K';

/// The mtime the helpers give entries unless told otherwise: a fixed
/// second, so a test can tell it was applied.
pub const MTIME: u64 = 1_500_000_000;

/// One ustar header, every field as the test wants it (no checks: names
/// may climb, sizes may lie).
#[derive(Debug, Clone)]
pub struct Header {
    pub name: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub kind: u8,
    pub link: Vec<u8>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub major: u32,
    pub minor: u32,
}

impl Header {
    pub fn new(kind: u8, name: &[u8]) -> Header {
        Header {
            name: name.to_vec(),
            mode: if kind == DIRECTORY { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            size: 0,
            mtime: MTIME,
            kind,
            link: Vec::new(),
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            major: 0,
            minor: 0,
        }
    }

    /// The 512-byte block. Names and link targets up to 100 bytes (longer
    /// ones go in a PAX or GNU header, written by the test on purpose).
    pub fn block(&self) -> [u8; BLOCK] {
        assert!(self.name.len() <= 100, "a name over 100 bytes needs PAX");
        assert!(self.link.len() <= 100, "a link over 100 bytes needs PAX");
        let mut b = [0u8; BLOCK];
        b[..self.name.len()].copy_from_slice(&self.name);
        octal(&mut b[100..108], u64::from(self.mode));
        octal(&mut b[108..116], self.uid);
        octal(&mut b[116..124], self.gid);
        octal(&mut b[124..136], self.size);
        octal(&mut b[136..148], self.mtime);
        b[156] = self.kind;
        b[157..157 + self.link.len()].copy_from_slice(&self.link);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        b[265..265 + self.uname.len()].copy_from_slice(&self.uname);
        b[297..297 + self.gname.len()].copy_from_slice(&self.gname);
        octal(&mut b[329..337], u64::from(self.major));
        octal(&mut b[337..345], u64::from(self.minor));
        // The checksum is the byte sum with its own field read as spaces.
        b[148..156].copy_from_slice(b"        ");
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        let field = format!("{sum:06o}\0 ");
        b[148..156].copy_from_slice(field.as_bytes());
        b
    }
}

/// `value` in octal, zero-padded, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    assert!(
        text.len() == digits,
        "{value} does not fit {digits} octal digits"
    );
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// One PAX record, `"<len> key=value\n"`, its length counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// A tar stream written entry by entry into `w`.
pub struct Tar<W: Write> {
    w: W,
}

impl Tar<Vec<u8>> {
    pub fn new() -> Tar<Vec<u8>> {
        Tar { w: Vec::new() }
    }

    /// The bytes with the end-of-archive marker (two zero blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.end();
        self.w
    }

    /// The bytes as written so far, without an end-of-archive marker.
    pub fn unfinished(self) -> Vec<u8> {
        self.w
    }
}

impl<W: Write> Tar<W> {
    pub fn over(w: W) -> Tar<W> {
        Tar { w }
    }

    pub fn into_inner(self) -> W {
        self.w
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.w.write_all(bytes).expect("writing a test tar");
        self
    }

    /// A header and its body, padded to a block.
    pub fn entry(&mut self, h: &Header, body: &[u8]) -> &mut Self {
        let mut h = h.clone();
        h.size = body.len() as u64;
        self.raw(&h.block());
        self.raw(body);
        self.pad(body.len() as u64)
    }

    /// A header whose body the caller streams with `body` (which must write
    /// exactly `h.size` bytes), padded to a block.
    pub fn entry_streamed(&mut self, h: &Header, body: impl FnOnce(&mut W)) -> &mut Self {
        self.raw(&h.block());
        body(&mut self.w);
        self.pad(h.size)
    }

    fn pad(&mut self, len: u64) -> &mut Self {
        let rest = (BLOCK - (len % BLOCK as u64) as usize) % BLOCK;
        self.raw(&vec![0u8; rest])
    }

    pub fn end(&mut self) -> &mut Self {
        self.raw(&[0u8; 2 * BLOCK])
    }

    pub fn file(&mut self, name: &str, body: &[u8]) -> &mut Self {
        self.file_mode(name, 0o644, body)
    }

    pub fn file_mode(&mut self, name: &str, mode: u32, body: &[u8]) -> &mut Self {
        let mut h = Header::new(REGULAR, name.as_bytes());
        h.mode = mode;
        self.entry(&h, body)
    }

    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.dir_mode(name, 0o755)
    }

    pub fn dir_mode(&mut self, name: &str, mode: u32) -> &mut Self {
        let mut h = Header::new(DIRECTORY, name.as_bytes());
        h.mode = mode;
        self.entry(&h, b"")
    }

    /// Directories for every ancestor of `path` and `path` itself
    /// (`a/b/c` gives `a/`, `a/b/`, `a/b/c/`).
    pub fn dirs(&mut self, path: &str) -> &mut Self {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push_str(part);
            at.push('/');
            self.dir(&at.clone());
        }
        self
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new(SYMLINK, name.as_bytes());
        h.mode = 0o777;
        h.link = target.as_bytes().to_vec();
        self.entry(&h, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = Header::new(HARDLINK, name.as_bytes());
        h.link = target.as_bytes().to_vec();
        self.entry(&h, b"")
    }

    pub fn fifo(&mut self, name: &str) -> &mut Self {
        self.entry(&Header::new(FIFO, name.as_bytes()), b"")
    }

    pub fn device(&mut self, kind: u8, name: &str, major: u32, minor: u32) -> &mut Self {
        let mut h = Header::new(kind, name.as_bytes());
        h.mode = 0o666;
        h.major = major;
        h.minor = minor;
        self.entry(&h, b"")
    }

    /// A PAX extended header (type `x`) for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        self.entry(&Header::new(PAX_LOCAL, b"././@PaxHeader"), &body)
    }

    /// A GNU long name (type `L`) for the next entry.
    pub fn gnu_long_name(&mut self, name: &[u8]) -> &mut Self {
        let mut body = name.to_vec();
        body.push(0);
        self.entry(&Header::new(GNU_LONG_NAME, b"././@LongLink"), &body)
    }
}

impl Default for Tar<Vec<u8>> {
    fn default() -> Self {
        Tar::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_TAR,
            Compression::Gzip => OCI_GZIP,
            Compression::Zstd => OCI_ZSTD,
        }
    }

    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => gzip(tar),
            Compression::Zstd => zstd_frame(tar),
        }
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn zstd_frame(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A layer as a manifest names it, with the diff_id its config pairs it
/// with.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

impl Layer {
    pub fn with_media_type(mut self, media_type: &str) -> Layer {
        self.media_type = media_type.to_owned();
        self
    }

    pub fn with_diff_id(mut self, diff_id: &str) -> Layer {
        self.diff_id = diff_id.to_owned();
        self
    }
}

/// A writer that hashes what passes through it.
pub struct Hashing<W: Write> {
    pub inner: W,
    hash: Sha256,
    pub len: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hash: Sha256::new(),
            len: 0,
        }
    }

    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hash.clone().finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An OCI image layout being written: `oci-layout`, `blobs/sha256/`, and an
/// `index.json` rewritten as entries are added.
pub struct Layout {
    pub dir: PathBuf,
    entries: Vec<serde_json::Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = Layout {
            dir: dir.to_owned(),
            entries: Vec::new(),
        };
        layout.write_index();
        layout
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir.join("blobs/sha256").join(hex)
    }

    /// Stores `bytes` under their digest; the digest and size.
    pub fn blob(&self, bytes: &[u8]) -> (String, u64) {
        let digest = sha256(bytes);
        fs::write(self.blob_path(&digest), bytes).unwrap();
        (digest, bytes.len() as u64)
    }

    /// Puts other bytes in the file of blob `digest` (a layout damaged on
    /// disk).
    pub fn overwrite_blob(&self, digest: &str, bytes: &[u8]) {
        fs::write(self.blob_path(digest), bytes).unwrap();
    }

    /// The tar bytes `tar`, compressed as `c`, as a layer.
    pub fn layer(&self, c: Compression, tar: &[u8]) -> Layer {
        let (digest, size) = self.blob(&c.compress(tar));
        Layer {
            media_type: c.media_type().to_owned(),
            digest,
            size,
            diff_id: sha256(tar),
        }
    }

    /// A layer whose blob is `blob` exactly (damaged, truncated, not what
    /// its media type says), paired with `diff_id`.
    pub fn raw_layer(&self, media_type: &str, blob: &[u8], diff_id: &str) -> Layer {
        let (digest, size) = self.blob(blob);
        Layer {
            media_type: media_type.to_owned(),
            digest,
            size,
            diff_id: diff_id.to_owned(),
        }
    }

    /// A layer streamed by `write` (tar bytes) through compression into
    /// the layout, in bounded memory, for layers too big to hold.
    pub fn streamed_layer(&self, c: Compression, write: impl FnOnce(&mut dyn Write)) -> Layer {
        let partial = self.dir.join("blobs/sha256/streaming");
        let file = Hashing::new(io::BufWriter::new(fs::File::create(&partial).unwrap()));
        let (diff_id, mut file) = match c {
            Compression::None => {
                let mut tar = Hashing::new(file);
                write(&mut tar);
                (tar.digest(), tar.inner)
            }
            Compression::Gzip => {
                let enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
                let mut tar = Hashing::new(enc);
                write(&mut tar);
                (tar.digest(), tar.inner.finish().unwrap())
            }
            Compression::Zstd => {
                let enc = zstd::stream::write::Encoder::new(file, 1).unwrap();
                let mut tar = Hashing::new(enc);
                write(&mut tar);
                (tar.digest(), tar.inner.finish().unwrap())
            }
        };
        file.flush().unwrap();
        let (digest, size) = (file.digest(), file.len);
        drop(file);
        fs::rename(&partial, self.blob_path(&digest)).unwrap();
        Layer {
            media_type: c.media_type().to_owned(),
            digest,
            size,
            diff_id,
        }
    }

    /// The file `path` (an uncompressed tar, too big to hash in a debug
    /// build in good time) moved into the layout as a plain tar layer; its
    /// digest, which is also its diff_id, by `sha256sum`.
    pub fn adopt_plain_layer(&self, path: &Path) -> Layer {
        let out = super::run(super::tools::tool("sha256sum", "coreutils").arg(path));
        let text = String::from_utf8(out.stdout).unwrap();
        let hex = text
            .split_whitespace()
            .next()
            .expect("sha256sum prints the digest");
        let digest = format!("sha256:{hex}");
        let size = fs::metadata(path).unwrap().len();
        fs::rename(path, self.blob_path(&digest)).unwrap();
        Layer {
            media_type: OCI_TAR.to_owned(),
            digest: digest.clone(),
            size,
            diff_id: digest,
        }
    }

    /// An image manifest over `layers`, its config pairing them with their
    /// own diff_ids, named `name` in index.json. Its digest.
    pub fn image(&mut self, name: &str, layers: &[Layer]) -> String {
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        self.image_with_diff_ids(name, layers, &diff_ids)
    }

    /// As `image`, with the config's diff_ids as given (count and all).
    pub fn image_with_diff_ids(
        &mut self,
        name: &str,
        layers: &[Layer],
        diff_ids: &[String],
    ) -> String {
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let (config_digest, config_size) = self.blob(config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest, "size": l.size,
            })).collect::<Vec<_>>(),
        });
        self.entry(name, MANIFEST, manifest.to_string().as_bytes())
    }

    /// An image index over the manifests `digests` (each an image added
    /// before), named `name` in index.json. Its digest.
    pub fn index(&mut self, name: &str, digests: &[String]) -> String {
        let manifests: Vec<serde_json::Value> = digests
            .iter()
            .map(|d| {
                let size = fs::metadata(self.blob_path(d)).unwrap().len();
                json!({
                    "mediaType": MANIFEST, "digest": d, "size": size,
                    "platform": {"architecture": "amd64", "os": "linux"},
                })
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        self.entry(name, INDEX, index.to_string().as_bytes())
    }

    fn entry(&mut self, name: &str, media_type: &str, bytes: &[u8]) -> String {
        let (digest, size) = self.blob(bytes);
        self.entries.push(json!({
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": serde_json::Map::from_iter([(REF_NAME.to_owned(), json!(name))]),
        }));
        self.write_index();
        digest
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": self.entries});
        fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// What a snapshot records of one path: type, permission bits, owner,
/// size, link count, mtime, and the contents or link target.
pub type Snapshot = BTreeMap<PathBuf, String>;

/// Every path under `dir` (not following symlinks), except the top-level
/// names in `skip`; `dir` itself is not recorded (its mtime changes when a
/// sibling is made and removed).
pub fn snapshot(dir: &Path, skip: &[&str]) -> Snapshot {
    let mut out = Snapshot::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if skip
            .iter()
            .any(|s| entry.file_name().as_bytes() == s.as_bytes())
        {
            continue;
        }
        walk(dir, &entry.path(), &mut out);
    }
    out
}

fn walk(top: &Path, path: &Path, out: &mut Snapshot) {
    let m = fs::symlink_metadata(path).unwrap();
    let t = m.file_type();
    let what = if t.is_symlink() {
        format!("symlink -> {:?}", fs::read_link(path).unwrap())
    } else if t.is_file() {
        let mut bytes = Vec::new();
        fs::File::open(path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        format!("file {}", sha256(&bytes))
    } else if t.is_dir() {
        "dir".to_owned()
    } else if t.is_fifo() {
        "fifo".to_owned()
    } else {
        format!("other rdev {}", m.rdev())
    };
    out.insert(
        path.strip_prefix(top).unwrap().to_owned(),
        format!(
            "{what} mode {:o} owner {}:{} size {} nlink {} mtime {}.{}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.size(),
            m.nlink(),
            m.mtime(),
            m.mtime_nsec()
        ),
    );
    if t.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            walk(top, &entry.unwrap().path(), out);
        }
    }
}

/// What changed between two snapshots, one line per path; empty when none.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {path:?} (was {was})")),
            Some(now) if now != was => out.push(format!("changed {path:?}: {was} => {now}")),
            Some(_) => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            out.push(format!("appeared {path:?}: {now}"));
        }
    }
    out
}

/// The names in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Entries of `/` whose names start with `tank-escape-`: what a layer that
/// climbed all the way out would leave.
pub fn escapes_at_root() -> Vec<String> {
    names(Path::new("/"))
        .into_iter()
        .filter(|n| n.starts_with("tank-escape-"))
        .collect()
}

/// `VmRSS` or `VmHWM` of this process, in KiB.
pub fn vm_kib(field: &str) -> u64 {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Resets this process's peak RSS (`VmHWM`) to its current RSS.
pub fn reset_peak_rss() {
    fs::write("/proc/self/clear_refs", "5").expect("writing /proc/self/clear_refs");
}
