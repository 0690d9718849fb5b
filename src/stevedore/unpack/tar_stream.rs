//! A tar stream, entry by entry: headers parsed by the `tar` crate
//! (`tar::Header`), driven here so that extension headers (PAX, GNU long
//! names) are bounded and bodies stream through the caller's buffer.
//!
//! The rules follow Go's `archive/tar` (what containerd and umoci read
//! layers with) where formats leave room: a body only for regular files,
//! PAX over GNU over the header's own fields, a `'\0'` entry named `x/` is a
//! directory, one or two zero blocks (or a clean end) close the archive.
//! What those readers would refuse or misread, tank refuses: unknown and
//! sparse types, a second extension header of one kind for one member,
//! names with a NUL inside, extension headers over 1 MiB.

#![allow(dead_code)] // Until the applier uses every field.

use std::io::{self, Read};

use base64::Engine as _;
use tar::Header;

use super::stream::read_error;
use crate::stevedore::error::{Error, Reason, Result};

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    /// The target, verbatim.
    Symlink(Vec<u8>),
    /// The target: a name in the archive, as written.
    Hardlink(Vec<u8>),
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// One member of the archive, with PAX and GNU overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as the archive gives it (not yet cleaned or checked).
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: Timestamp,
    /// PAX `SCHILY.xattr.*` (and `LIBARCHIVE.xattr.*`, decoded), in order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body bytes (a regular file's contents; 0 for others).
    pub size: u64,
}

const BLOCK: usize = 512;

/// The largest PAX or GNU long-name body read (and held) for one member.
/// Real names are at most PATH_MAX (4 KiB) and xattrs at most 64 KiB each.
const EXTENSION_LIMIT: u64 = 1 << 20;

/// How much of a name a message shows.
const SHOWN_NAME: usize = 200;

/// Reads entries from a tar stream. Errors are `bad_layer`, unless the
/// reader's own error is one of tank's (see `stream::read_error`).
pub struct TarStream<R: Read> {
    inner: R,
    /// Bytes of the stream consumed so far, for messages.
    offset: u64,
    /// Body bytes of the current entry the caller has not read.
    remaining: u64,
    /// Zero bytes after the current body, up to the next block.
    padding: u64,
    /// The current entry's name as messages show it.
    current: String,
    /// The end-of-archive marker (or the stream's end) was read.
    ended: bool,
}

/// The extension headers read so far for the next member.
#[derive(Default)]
struct Extensions {
    pax: Option<Pax>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl Extensions {
    fn any(&self) -> bool {
        self.pax.is_some() || self.long_name.is_some() || self.long_link.is_some()
    }
}

/// What one PAX `x` header overrides.
#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<Timestamp>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<R: Read> TarStream<R> {
    pub fn new(inner: R) -> Self {
        TarStream {
            inner,
            offset: 0,
            remaining: 0,
            padding: 0,
            current: String::new(),
            ended: false,
        }
    }

    /// The next entry, or `None` at the end-of-archive marker (or at a
    /// clean end of the stream).
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        if self.ended {
            return Ok(None);
        }
        self.skip_body()?;
        let mut extensions = Extensions::default();
        loop {
            let at = self.offset;
            let Some(block) = self.read_block()? else {
                self.ended = true;
                if extensions.any() {
                    return Err(bad(format!(
                        "truncated: the stream ends after an extension header, at offset {at}"
                    )));
                }
                return Ok(None);
            };
            if is_zero(&block) {
                self.end_of_archive(at)?;
                if extensions.any() {
                    return Err(bad(format!(
                        "an extension header without its member, before offset {at}"
                    )));
                }
                return Ok(None);
            }
            let header = Header::from_byte_slice(&block);
            check_checksum(header, at)?;
            // The raw byte: the tar crate reads '\0' as '0', but a '\0'
            // entry named `x/` is a directory.
            let type_byte = header.as_old().linkflag[0];
            match type_byte {
                b'x' => {
                    let body = self.extension_body(header, at, "PAX", extensions.pax.is_some())?;
                    extensions.pax = Some(parse_pax(&body, at)?);
                }
                b'L' => {
                    let seen = extensions.long_name.is_some();
                    let body = self.extension_body(header, at, "GNU long name", seen)?;
                    extensions.long_name = Some(until_nul(body));
                }
                b'K' => {
                    let seen = extensions.long_link.is_some();
                    let body = self.extension_body(header, at, "GNU long link", seen)?;
                    extensions.long_link = Some(until_nul(body));
                }
                b'g' => self.skip_global(header, at)?,
                _ => return self.member(header, type_byte, extensions, at).map(Some),
            }
        }
    }

    /// Reads the current entry's body; 0 once it is all read. Whatever a
    /// caller leaves unread is skipped by `next_entry`.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let got = self.read_some(&mut buf[..want])?;
        if got == 0 {
            return Err(bad(format!(
                "truncated: the stream ends inside the body of {}",
                self.current
            )));
        }
        self.remaining -= got as u64;
        Ok(got)
    }

    /// The reader, positioned after the end-of-archive marker, so that the
    /// caller can hash what follows.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The member a non-extension header describes, with `extensions`
    /// applied; its body becomes the current one.
    fn member(
        &mut self,
        header: &Header,
        type_byte: u8,
        extensions: Extensions,
        at: u64,
    ) -> Result<Entry> {
        let Extensions {
            pax,
            long_name,
            long_link,
        } = extensions;
        let mut pax = pax.unwrap_or_default();
        let path = pax
            .path
            .take()
            .or(long_name)
            .unwrap_or_else(|| header.path_bytes().into_owned());
        self.current = shown(&path);
        let name = self.current.clone();
        let link = || -> Vec<u8> {
            pax.linkpath
                .clone()
                .or_else(|| long_link.clone())
                .or_else(|| header.link_name_bytes().map(|l| l.into_owned()))
                .unwrap_or_default()
        };
        let raw = header.as_old();
        let kind = match type_byte {
            // A pre-POSIX archive marks directories by a trailing slash only.
            b'\0' if path.ends_with(b"/") => Kind::Dir,
            b'0' | b'\0' | b'7' => Kind::File,
            b'1' => Kind::Hardlink(link()),
            b'2' => Kind::Symlink(link()),
            b'3' => {
                let (major, minor) = device(header, &name)?;
                Kind::CharDevice { major, minor }
            }
            b'4' => {
                let (major, minor) = device(header, &name)?;
                Kind::BlockDevice { major, minor }
            }
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            b'S' => {
                return Err(bad(format!(
                    "{name}: a GNU sparse file (type 'S'), which tank does not apply"
                )))
            }
            other => {
                return Err(bad(format!(
                    "{name}: entry type {} at offset {at} is not one tank applies",
                    type_name(other)
                )))
            }
        };
        let size = match pax.size {
            Some(size) => size,
            None => number(&raw.size, "size", &name, || header.entry_size())?,
        };
        let uid = match pax.uid {
            Some(uid) => uid,
            None => number(&raw.uid, "uid", &name, || header.uid())?,
        };
        let gid = match pax.gid {
            Some(gid) => gid,
            None => number(&raw.gid, "gid", &name, || header.gid())?,
        };
        let mtime = match pax.mtime {
            Some(mtime) => mtime,
            // Base-256 negative times come back as their two's complement.
            None => Timestamp {
                secs: number(&raw.mtime, "mtime", &name, || header.mtime())? as i64,
                nanos: 0,
            },
        };
        let mode = number(&raw.mode, "mode", &name, || header.mode().map(u64::from))?;
        // As in Go's reader: only regular files have a body; a size on any
        // other type is ignored, not skipped.
        let size = if kind == Kind::File { size } else { 0 };
        self.remaining = size;
        self.padding = padding(size);
        Ok(Entry {
            path,
            kind,
            mode: (mode & 0o7777) as u32,
            uid,
            gid,
            mtime,
            xattrs: pax.xattrs,
            size,
        })
    }

    /// Reads an extension header's body, refusing it before reading (and
    /// allocating) when it is over the limit or a second of its kind.
    fn extension_body(
        &mut self,
        header: &Header,
        at: u64,
        what: &str,
        seen: bool,
    ) -> Result<Vec<u8>> {
        if seen {
            return Err(bad(format!(
                "two {what} headers for one member, the second at offset {at}"
            )));
        }
        let size = self.extension_size(header, at, what)?;
        // Within the limit, so it fits in memory and in a usize.
        let mut body = vec![0; size as usize];
        self.read_full(&mut body, what, at)?;
        self.discard(padding(size), what, at)?;
        Ok(body)
    }

    fn skip_global(&mut self, header: &Header, at: u64) -> Result<()> {
        let size = self.extension_size(header, at, "PAX global")?;
        self.discard(size + padding(size), "PAX global", at)
    }

    fn extension_size(&self, header: &Header, at: u64, what: &str) -> Result<u64> {
        let name = format!("the {what} header at offset {at}");
        let size = number(&header.as_old().size, "size", &name, || header.entry_size())?;
        if size > EXTENSION_LIMIT {
            return Err(bad(format!(
                "{name} is {size} bytes, over the limit of {EXTENSION_LIMIT}"
            )));
        }
        Ok(size)
    }

    /// After a first zero block: a second one, or the stream's end.
    fn end_of_archive(&mut self, at: u64) -> Result<()> {
        self.ended = true;
        match self.read_block()? {
            Some(block) if !is_zero(&block) => Err(bad(format!(
                "a zero block at offset {at} followed by a header: not an end-of-archive marker"
            ))),
            _ => Ok(()),
        }
    }

    /// What the caller left of the current body, and its padding.
    fn skip_body(&mut self) -> Result<()> {
        // A PAX size may be u64::MAX: no stream is that long, so the sum
        // saturating only changes which "truncated" is said.
        let left = self.remaining.saturating_add(self.padding);
        self.remaining = 0;
        self.padding = 0;
        if left == 0 {
            return Ok(());
        }
        let mut scratch = [0u8; 8192];
        let mut left = left;
        while left > 0 {
            let want = scratch
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = self.read_some(&mut scratch[..want])?;
            if got == 0 {
                return Err(bad(format!(
                    "truncated: the stream ends inside the body of {}",
                    self.current
                )));
            }
            left -= got as u64;
        }
        Ok(())
    }

    fn discard(&mut self, mut left: u64, what: &str, at: u64) -> Result<()> {
        let mut scratch = [0u8; 8192];
        while left > 0 {
            let want = scratch
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let got = self.read_some(&mut scratch[..want])?;
            if got == 0 {
                return Err(truncated_extension(what, at));
            }
            left -= got as u64;
        }
        Ok(())
    }

    fn read_full(&mut self, buf: &mut [u8], what: &str, at: u64) -> Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let got = self.read_some(&mut buf[filled..])?;
            if got == 0 {
                return Err(truncated_extension(what, at));
            }
            filled += got;
        }
        Ok(())
    }

    /// The next header block; `None` at a clean end of the stream.
    fn read_block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let at = self.offset;
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            let got = self.read_some(&mut block[filled..])?;
            if got == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(bad(format!(
                    "truncated: the stream ends inside a header, at offset {at}"
                )));
            }
            filled += got;
        }
        Ok(Some(block))
    }

    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(got) => {
                    self.offset += got as u64;
                    return Ok(got);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.in_context(read_error(e))),
            }
        }
    }

    /// A stream error, saying where in the archive it struck.
    fn in_context(&self, mut e: Error) -> Error {
        if e.reason == Reason::BadLayer {
            e.message = if self.current.is_empty() {
                format!("{} (at offset {})", e.message, self.offset)
            } else {
                format!(
                    "{} (at offset {}, in or after {})",
                    e.message, self.offset, self.current
                )
            };
        }
        e
    }
}

fn bad(message: String) -> Error {
    Error::layer(Reason::BadLayer, message)
}

fn truncated_extension(what: &str, at: u64) -> Error {
    bad(format!(
        "truncated: the stream ends inside the {what} header at offset {at}"
    ))
}

/// A name as messages show it: lossy UTF-8, quoted, at most ~200 chars.
fn shown(name: &[u8]) -> String {
    let lossy = String::from_utf8_lossy(name);
    let mut chars = lossy.chars();
    let head: String = chars.by_ref().take(SHOWN_NAME).collect();
    if chars.next().is_some() {
        format!("{head:?}... ({} bytes)", name.len())
    } else {
        format!("{head:?}")
    }
}

fn type_name(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("0x{byte:02x}")
    }
}

fn is_zero(block: &[u8; BLOCK]) -> bool {
    block.iter().all(|&b| b == 0)
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// The bytes of a GNU long name or link up to its terminating NUL.
fn until_nul(mut body: Vec<u8>) -> Vec<u8> {
    if let Some(nul) = body.iter().position(|&b| b == 0) {
        body.truncate(nul);
    }
    body
}

/// Both historic checksums are accepted (sums of unsigned and of signed
/// bytes, the checksum field counted as spaces), as GNU tar and Go do.
fn check_checksum(header: &Header, at: u64) -> Result<()> {
    let bytes = header.as_bytes();
    let (mut unsigned, mut signed) = (0u32, 0i32);
    for (i, &b) in bytes.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i32::from(b as i8);
    }
    let recorded = header.cksum().map_err(|_| {
        bad(format!(
            "the header at offset {at} ({}) has no readable checksum: not a tar stream, or a corrupt one",
            shown(&header.path_bytes())
        ))
    })?;
    if recorded != unsigned && recorded as i32 != signed {
        return Err(bad(format!(
            "the header at offset {at} ({}) fails its checksum: not a tar stream, or a corrupt one",
            shown(&header.path_bytes())
        )));
    }
    Ok(())
}

/// A numeric header field: empty (all NULs or spaces, as some writers leave
/// unused ones) is 0, as in Go; else octal or base-256 by the tar crate.
fn number(
    field: &[u8],
    what: &str,
    name: &str,
    parse: impl FnOnce() -> io::Result<u64>,
) -> Result<u64> {
    if field.iter().all(|&b| b == 0 || b == b' ') {
        return Ok(0);
    }
    parse().map_err(|_| {
        bad(format!(
            "{name}: the {what} field {:?} is not a number",
            String::from_utf8_lossy(field)
        ))
    })
}

fn device(header: &Header, name: &str) -> Result<(u32, u32)> {
    let (major_field, minor_field) = match (header.as_ustar(), header.as_gnu()) {
        (Some(h), _) => (&h.dev_major, &h.dev_minor),
        (None, Some(h)) => (&h.dev_major, &h.dev_minor),
        // A pre-POSIX header has no device numbers.
        (None, None) => return Ok((0, 0)),
    };
    let major = number(major_field, "device major", name, || {
        header.device_major().map(|m| u64::from(m.unwrap_or(0)))
    })?;
    let minor = number(minor_field, "device minor", name, || {
        header.device_minor().map(|m| u64::from(m.unwrap_or(0)))
    })?;
    Ok((major as u32, minor as u32))
}

/// The records of a PAX `x` header applied to one member's overrides.
///
/// Records are split by their length prefix, not by newlines as
/// `tar::PaxExtensions` does: an `SCHILY.xattr` value is raw bytes and may
/// hold a newline (a capability set with bits 1 and 3 does).
fn parse_pax(body: &[u8], at: u64) -> Result<Pax> {
    let mut pax = Pax::default();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, value, after) = pax_record(rest).ok_or_else(|| {
            bad(format!(
                "the PAX header at offset {at} has a malformed record at byte {}",
                body.len() - rest.len()
            ))
        })?;
        rest = after;
        apply_pax(&mut pax, key, value, at)?;
    }
    Ok(pax)
}

/// One `"<len> <key>=<value>\n"` record: key, value and what follows.
fn pax_record(s: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let space = s.iter().take(20).position(|&b| b == b' ')?;
    let digits = &s[..space];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    if len <= space + 1 || len > s.len() || s[len - 1] != b'\n' {
        return None;
    }
    let record = &s[space + 1..len - 1];
    let equals = record.iter().position(|&b| b == b'=')?;
    let key = &record[..equals];
    if key.is_empty() {
        return None;
    }
    Some((key, &record[equals + 1..], &s[len..]))
}

fn apply_pax(pax: &mut Pax, key: &[u8], value: &[u8], at: u64) -> Result<()> {
    let field = |what: &str| format!("the PAX header at offset {at}: {what}");
    match key {
        b"path" => pax.path = pax_name(value, &field("path"))?,
        b"linkpath" => pax.linkpath = pax_name(value, &field("linkpath"))?,
        b"size" => pax.size = pax_number(value, &field("size"))?,
        b"uid" => pax.uid = pax_number(value, &field("uid"))?,
        b"gid" => pax.gid = pax_number(value, &field("gid"))?,
        b"mtime" => pax.mtime = pax_time(value, &field("mtime"))?,
        _ => {
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                let name = xattr_name(name.to_vec(), at)?;
                set_xattr(&mut pax.xattrs, name, value.to_vec());
            } else if let Some(encoded) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
                let name = xattr_name(percent_decode(encoded, at)?, at)?;
                let value = base64_value(value, at)?;
                set_xattr(&mut pax.xattrs, name, value);
            } else if key.starts_with(b"GNU.sparse.") {
                return Err(bad(field("a GNU sparse file, which tank does not apply")));
            }
            // Others (atime, ctime, uname, gname, SCHILY.dev, comment, ...)
            // change nothing tank writes.
        }
    }
    Ok(())
}

/// A path or link name; an empty value deletes the override (POSIX).
fn pax_name(value: &[u8], field: &str) -> Result<Option<Vec<u8>>> {
    if value.contains(&0) {
        return Err(bad(format!("{field} has a NUL byte inside")));
    }
    Ok((!value.is_empty()).then(|| value.to_vec()))
}

fn pax_number(value: &[u8], field: &str) -> Result<Option<u64>> {
    if value.is_empty() {
        return Ok(None);
    }
    let digits = std::str::from_utf8(value)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()));
    digits
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| bad(format!("{field} {:?} is not a number", shown(value))))
}

/// `[-]seconds[.fraction]`; digits past nanoseconds are dropped.
fn pax_time(value: &[u8], field: &str) -> Result<Option<Timestamp>> {
    if value.is_empty() {
        return Ok(None);
    }
    let wrong = || bad(format!("{field} {} is not a time", shown(value)));
    let (negative, unsigned) = match value {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, value),
    };
    let (whole, fraction) = match unsigned.iter().position(|&b| b == b'.') {
        Some(dot) => (&unsigned[..dot], &unsigned[dot + 1..]),
        None => (unsigned, &[][..]),
    };
    let all_digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(wrong());
    }
    let secs: i64 = std::str::from_utf8(whole)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(wrong)?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        let digit = fraction.get(i).map_or(0, |d| u32::from(d - b'0'));
        nanos = nanos * 10 + digit;
    }
    Ok(Some(match (negative, nanos) {
        (false, _) => Timestamp { secs, nanos },
        (true, 0) => Timestamp { secs: -secs, nanos },
        (true, _) => Timestamp {
            secs: -secs - 1,
            nanos: 1_000_000_000 - nanos,
        },
    }))
}

fn xattr_name(name: Vec<u8>, at: u64) -> Result<Vec<u8>> {
    if name.is_empty() || name.contains(&0) {
        return Err(bad(format!(
            "the PAX header at offset {at} has an xattr name {} that is empty or holds a NUL",
            shown(&name)
        )));
    }
    Ok(name)
}

/// A later record for the same attribute replaces the earlier one (GNU tar
/// and bsdtar may both write an attribute, under their own keys).
fn set_xattr(xattrs: &mut Vec<(Vec<u8>, Vec<u8>)>, name: Vec<u8>, value: Vec<u8>) {
    match xattrs.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = value,
        None => xattrs.push((name, value)),
    }
}

/// libarchive writes an xattr name with `%XX` for bytes outside 33..=126
/// and for `%` and `=`.
fn percent_decode(encoded: &[u8], at: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        if encoded[i] != b'%' {
            out.push(encoded[i]);
            i += 1;
            continue;
        }
        let hex = encoded
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| {
                bad(format!(
                    "the PAX header at offset {at} has a LIBARCHIVE.xattr name {} with a bad %-escape",
                    shown(encoded)
                ))
            })?;
        out.push(hex);
        i += 3;
    }
    Ok(out)
}

/// libarchive's base64 value, padded or not.
fn base64_value(value: &[u8], at: u64) -> Result<Vec<u8>> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(value).map_err(|_| {
        bad(format!(
            "the PAX header at offset {at} has a LIBARCHIVE.xattr value that is not base64"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::error::ErrorKind;

    /// A header of type `kind` named `name` with a `size`-byte body,
    /// checksummed.
    fn header(kind: u8, name: &[u8], size: u64) -> Header {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_mode(0o644);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h.as_old_mut().linkflag = [kind];
        h.set_cksum();
        h
    }

    /// Appends a header and its body with padding.
    fn push(out: &mut Vec<u8>, h: &Header, body: &[u8]) {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padding(body.len() as u64) as usize, 0);
    }

    /// A PAX record as writers lay it out.
    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len = rest + len.to_string().len();
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        r
    }

    fn pax(out: &mut Vec<u8>, records: &[(&str, &[u8])]) {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| record(k, v)).collect();
        push(
            out,
            &header(b'x', b"PaxHeaders/x", body.len() as u64),
            &body,
        );
    }

    fn end(out: &mut Vec<u8>) {
        out.extend_from_slice(&[0; 1024]);
    }

    /// Every entry with its whole body.
    fn entries(bytes: &[u8]) -> Result<Vec<(Entry, Vec<u8>)>> {
        read_all(TarStream::new(bytes))
    }

    fn read_all<R: Read>(mut tar: TarStream<R>) -> Result<Vec<(Entry, Vec<u8>)>> {
        let mut out = Vec::new();
        while let Some(entry) = tar.next_entry()? {
            let mut body = Vec::new();
            let mut buf = [0u8; 777];
            loop {
                let n = tar.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&buf[..n]);
            }
            out.push((entry, body));
        }
        Ok(out)
    }

    fn bad_layer(result: Result<impl std::fmt::Debug>) -> String {
        let e = result.unwrap_err();
        assert_eq!(
            (e.kind, e.reason),
            (ErrorKind::Layer, Reason::BadLayer),
            "{e}"
        );
        e.message
    }

    /// Hands out at most one byte per read, as a slow pipe would.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    fn builder_archive() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o41777);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        b.append_data(&mut h, "dir/", io::empty()).unwrap();
        let data = vec![7u8; 5000];
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o104755);
        h.set_uid(0);
        h.set_gid(42);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, "dir/file", &data[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "dir/link", "../../etc/passwd")
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "dir/hard", "dir/file").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Fifo);
        h.set_size(0);
        b.append_data(&mut h, "fifo", io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Char);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_size(0);
        b.append_data(&mut h, "null", io::empty()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Block);
        h.set_device_major(8).unwrap();
        h.set_device_minor(1).unwrap();
        h.set_size(0);
        b.append_data(&mut h, "sda1", io::empty()).unwrap();
        // GNU long name and long link.
        let long = format!("{}/end", "d".repeat(300));
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "short", &long).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_what_the_tar_crate_writes() {
        let bytes = builder_archive();
        for all in [
            entries(&bytes).unwrap(),
            read_all(TarStream::new(Trickle(&bytes))).unwrap(),
        ] {
            let kinds: Vec<_> = all.iter().map(|(e, _)| e.kind.clone()).collect();
            let long = format!("{}/end", "d".repeat(300)).into_bytes();
            assert_eq!(
                kinds,
                vec![
                    Kind::Dir,
                    Kind::File,
                    Kind::Symlink(b"../../etc/passwd".to_vec()),
                    Kind::Hardlink(b"dir/file".to_vec()),
                    Kind::Fifo,
                    Kind::CharDevice { major: 1, minor: 3 },
                    Kind::BlockDevice { major: 8, minor: 1 },
                    Kind::File,
                    Kind::Symlink(long.clone()),
                ]
            );
            let (dir, _) = &all[0];
            assert_eq!((dir.path.as_slice(), dir.mode), (&b"dir/"[..], 0o1777));
            assert_eq!(
                dir.mtime,
                Timestamp {
                    secs: 1_600_000_000,
                    nanos: 0
                }
            );
            let (file, body) = &all[1];
            assert_eq!(file.path, b"dir/file");
            assert_eq!(
                (file.mode, file.uid, file.gid, file.size),
                (0o4755, 0, 42, 5000)
            );
            assert_eq!(body, &vec![7u8; 5000]);
            assert_eq!(all[7].0.path, long);
            assert_eq!(all[7].1, b"abc");
            assert_eq!(all[8].0.path, b"short");
        }
    }

    #[test]
    fn bodies_left_unread_are_skipped() {
        let bytes = builder_archive();
        let mut tar = TarStream::new(&bytes[..]);
        let mut names = Vec::new();
        let mut first = true;
        while let Some(entry) = tar.next_entry().unwrap() {
            if entry.size > 0 && first {
                // Part of one body only.
                let mut buf = [0u8; 100];
                assert_eq!(tar.read_data(&mut buf).unwrap(), 100);
                first = false;
            }
            names.push(entry.path);
        }
        assert_eq!(names.len(), 9);
        assert!(!first);
        assert_eq!(tar.next_entry().unwrap(), None);
    }

    #[test]
    fn pax_overrides_names_ids_times_and_gives_xattrs() {
        let long = format!("{}/file", "p".repeat(5000));
        let target = format!("/{}", "t".repeat(3000));
        // A capability value with a newline inside: records are split by length.
        let cap: &[u8] = b"\x01\x00\x00\x02\x0a\x00\x00\x00\x00\x00\x00\x00\n\x00";
        let mut out = Vec::new();
        pax(
            &mut out,
            &[
                ("path", long.as_bytes()),
                ("uid", b"4294967297"),
                ("gid", b"7"),
                ("mtime", b"1700000000.123456789123"),
                ("atime", b"garbage is ignored"),
                ("SCHILY.xattr.security.capability", cap),
                ("SCHILY.xattr.user.empty", b""),
                // libarchive: %-escaped name, base64 value without padding.
                ("LIBARCHIVE.xattr.user.a%3Db%20c", b"aGVsbG8"),
                ("size", b"3"),
            ],
        );
        push(&mut out, &header(b'0', b"short-name", 3), b"xyz");
        pax(
            &mut out,
            &[("linkpath", target.as_bytes()), ("mtime", b"-1.25")],
        );
        push(&mut out, &header(b'2', b"sym", 0), b"");
        // PAX wins over a GNU long name for the same member.
        pax(&mut out, &[("path", b"from-pax")]);
        let mut gnu = Vec::new();
        push(&mut gnu, &header(b'L', b"././@LongLink", 9), b"from-gnu\0");
        out.extend_from_slice(&gnu);
        push(&mut out, &header(b'5', b"hdr", 0), b"");
        end(&mut out);

        let all = entries(&out).unwrap();
        let (file, body) = &all[0];
        assert_eq!(file.path, long.as_bytes());
        assert_eq!((file.uid, file.gid, file.size), (4_294_967_297, 7, 3));
        assert_eq!(
            file.mtime,
            Timestamp {
                secs: 1_700_000_000,
                nanos: 123_456_789
            }
        );
        assert_eq!(body, b"xyz");
        assert_eq!(
            file.xattrs,
            vec![
                (b"security.capability".to_vec(), cap.to_vec()),
                (b"user.empty".to_vec(), Vec::new()),
                (b"user.a=b c".to_vec(), b"hello".to_vec()),
            ]
        );
        let (sym, _) = &all[1];
        assert_eq!(sym.kind, Kind::Symlink(target.into_bytes()));
        assert_eq!(sym.path, b"sym");
        assert_eq!(
            sym.mtime,
            Timestamp {
                secs: -2,
                nanos: 750_000_000
            }
        );
        assert_eq!(all[2].0.path, b"from-pax");
        // Overrides are for one member only.
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn a_global_header_is_skipped_and_changes_nothing() {
        let body = record("path", b"global-name");
        let mut out = Vec::new();
        push(
            &mut out,
            &header(b'g', b"pax_global_header", body.len() as u64),
            &body,
        );
        push(&mut out, &header(b'0', b"own-name", 2), b"ok");
        push(
            &mut out,
            &header(b'g', b"pax_global_header", body.len() as u64),
            &body,
        );
        end(&mut out);
        let all = entries(&out).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].0.path.as_slice(), all[0].1.as_slice()),
            (&b"own-name"[..], &b"ok"[..])
        );
    }

    #[test]
    fn a_huge_body_left_unread_is_truncated_not_an_overflow() {
        let mut out = Vec::new();
        pax(&mut out, &[("size", u64::MAX.to_string().as_bytes())]);
        push(&mut out, &header(b'0', b"huge", 0), b"");
        end(&mut out);
        let mut tar = TarStream::new(&out[..]);
        let entry = tar.next_entry().unwrap().unwrap();
        assert_eq!(entry.size, u64::MAX);
        let message = bad_layer(tar.next_entry());
        assert!(message.contains("truncated"), "{message}");
    }

    #[test]
    fn pax_size_decides_where_the_next_header_is() {
        // The header's own size field says 0; the PAX size says 600.
        let mut out = Vec::new();
        pax(&mut out, &[("size", b"600")]);
        let mut h = header(b'0', b"big", 0);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(&[b'a'; 600]);
        out.resize(out.len() + padding(600) as usize, 0);
        push(&mut out, &header(b'0', b"next", 1), b"n");
        end(&mut out);
        let all = entries(&out).unwrap();
        assert_eq!(all[0].1, vec![b'a'; 600]);
        assert_eq!(all[1].0.path, b"next");
    }

    #[test]
    fn an_extension_header_over_the_limit_is_refused_before_its_body() {
        // Only the header is there: reading the body would say "truncated".
        for kind in [b'x', b'L', b'K', b'g'] {
            let mut out = Vec::new();
            out.extend_from_slice(header(kind, b"huge", 2 << 20).as_bytes());
            let message = bad_layer(TarStream::new(&out[..]).next_entry());
            assert!(message.contains("over the limit"), "{message}");
            let mut out = Vec::new();
            out.extend_from_slice(header(kind, b"huge", EXTENSION_LIMIT + 1).as_bytes());
            bad_layer(TarStream::new(&out[..]).next_entry());
        }
        // A base-256 size as large as a u64 goes.
        let mut h = header(b'x', b"huge", 0);
        h.as_old_mut().size = [
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        h.set_cksum();
        bad_layer(TarStream::new(&h.as_bytes()[..]).next_entry());
    }

    #[test]
    fn an_extension_header_at_the_limit_is_read() {
        let mut out = Vec::new();
        // Pad the comment so the body is exactly at the limit.
        let body = {
            let path = record("path", b"x");
            let comment_len = EXTENSION_LIMIT as usize - path.len();
            let mut value_len = comment_len - 30;
            let mut comment = record("comment", &vec![b'c'; value_len]);
            while comment.len() < comment_len {
                value_len += 1;
                comment = record("comment", &vec![b'c'; value_len]);
            }
            assert_eq!(comment.len(), comment_len);
            let mut b = comment;
            b.extend_from_slice(&path);
            b
        };
        assert_eq!(body.len() as u64, EXTENSION_LIMIT);
        push(&mut out, &header(b'x', b"pax", body.len() as u64), &body);
        push(&mut out, &header(b'0', b"y", 0), b"");
        end(&mut out);
        assert_eq!(entries(&out).unwrap()[0].0.path, b"x");
    }

    #[test]
    fn two_extension_headers_of_one_kind_are_refused() {
        let mut twice_pax = Vec::new();
        pax(&mut twice_pax, &[("path", b"a")]);
        pax(&mut twice_pax, &[("path", b"b")]);
        push(&mut twice_pax, &header(b'0', b"f", 0), b"");
        let mut twice_long = Vec::new();
        push(&mut twice_long, &header(b'L', b"././@LongLink", 2), b"a\0");
        push(&mut twice_long, &header(b'L', b"././@LongLink", 2), b"b\0");
        push(&mut twice_long, &header(b'0', b"f", 0), b"");
        let mut twice_link = Vec::new();
        push(&mut twice_link, &header(b'K', b"././@LongLink", 2), b"a\0");
        push(&mut twice_link, &header(b'K', b"././@LongLink", 2), b"b\0");
        push(&mut twice_link, &header(b'2', b"f", 0), b"");
        for mut out in [twice_pax, twice_long, twice_link] {
            end(&mut out);
            let message = bad_layer(entries(&out));
            assert!(message.contains("two "), "{message}");
        }
        // One of each kind is fine.
        let mut out = Vec::new();
        push(&mut out, &header(b'L', b"././@LongLink", 2), b"a\0");
        push(&mut out, &header(b'K', b"././@LongLink", 2), b"b\0");
        pax(&mut out, &[("uid", b"5")]);
        push(&mut out, &header(b'2', b"f", 0), b"");
        end(&mut out);
        let all = entries(&out).unwrap();
        assert_eq!(all[0].0.path, b"a");
        assert_eq!(all[0].0.kind, Kind::Symlink(b"b".to_vec()));
        assert_eq!(all[0].0.uid, 5);
    }

    #[test]
    fn malformed_pax_is_refused() {
        let cases: Vec<Vec<u8>> = vec![
            record("path", b"a\0b"),
            record("linkpath", b"\0"),
            record("SCHILY.xattr.user.a\0b", b"v"),
            record("SCHILY.xattr.", b"v"),
            record("uid", b"-1"),
            record("size", b"12x"),
            record("mtime", b"1.2.3"),
            record("mtime", b"abc"),
            record("GNU.sparse.major", b"1"),
            record("LIBARCHIVE.xattr.user.%zz", b"aGVsbG8"),
            record("LIBARCHIVE.xattr.user.a", b"!!!"),
            b"5 a=b\n".to_vec(),
            b"9 a=b\n".to_vec(),
            b"6 a=bc".to_vec(),
            b"x a=b\n".to_vec(),
            b"4 =\n".to_vec(),
            b"garbage".to_vec(),
        ];
        for body in cases {
            let mut out = Vec::new();
            push(&mut out, &header(b'x', b"pax", body.len() as u64), &body);
            push(&mut out, &header(b'0', b"f", 0), b"");
            end(&mut out);
            bad_layer(entries(&out));
        }
    }

    #[test]
    fn a_bad_checksum_is_refused() {
        let mut out = Vec::new();
        push(&mut out, &header(b'0', b"file", 0), b"");
        out[10] = b'X';
        end(&mut out);
        let message = bad_layer(entries(&out));
        assert!(message.contains("checksum"), "{message}");
        // Not a tar at all.
        bad_layer(entries(&[0x1f; 2048]));
        // The historic signed sum is accepted.
        let mut h = header(b'0', b"\xe9t\xe9", 0);
        let signed: i32 = h
            .as_bytes()
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    i32::from(b as i8)
                }
            })
            .sum();
        h.as_old_mut().cksum = *format!("{signed:06o}\0 ").as_bytes().first_chunk().unwrap();
        let mut out = Vec::new();
        push(&mut out, &h, b"");
        end(&mut out);
        assert_eq!(entries(&out).unwrap().len(), 1);
    }

    #[test]
    fn truncated_streams_are_refused() {
        let mut out = Vec::new();
        push(&mut out, &header(b'0', b"file", 1000), &[1; 1000]);
        end(&mut out);
        // Inside the body, inside its padding, inside a header.
        for cut in [700, 1512, 1024 + 512 + 100, 300] {
            let message = bad_layer(entries(&out[..cut]));
            assert!(message.contains("truncated"), "{cut}: {message}");
        }
        // Inside an extension header, or after it.
        let mut out = Vec::new();
        pax(&mut out, &[("path", b"abc")]);
        for cut in [600, 1024] {
            let message = bad_layer(entries(&out[..cut]));
            assert!(message.contains("truncated"), "{cut}: {message}");
        }
        // Skipping a body the caller did not read, cut short.
        let mut out = Vec::new();
        push(&mut out, &header(b'0', b"file", 1000), &[1; 1000]);
        let mut tar = TarStream::new(&out[..900]);
        tar.next_entry().unwrap().unwrap();
        let message = bad_layer(tar.next_entry());
        assert!(
            message.contains("truncated") && message.contains("file"),
            "{message}"
        );
    }

    #[test]
    fn unknown_and_sparse_types_are_refused_by_their_byte() {
        for (kind, shown) in [
            (b'S', "'S'"),
            (b'V', "'V'"),
            (b'D', "'D'"),
            (b'N', "'N'"),
            (b'M', "'M'"),
            (b'A', "'A'"),
            (0x01, "0x01"),
        ] {
            let mut out = Vec::new();
            push(&mut out, &header(kind, b"odd", 0), b"");
            end(&mut out);
            let message = bad_layer(entries(&out));
            assert!(
                message.contains(shown) && message.contains("odd"),
                "{message}"
            );
        }
    }

    #[test]
    fn end_markers() {
        let mut one = Vec::new();
        push(&mut one, &header(b'0', b"f", 1), b"1");
        let bare = one.clone();
        let mut two = one.clone();
        one.extend_from_slice(&[0; 512]);
        two.extend_from_slice(&[0; 1024]);
        for out in [&bare, &one, &two] {
            assert_eq!(entries(out).unwrap().len(), 1);
        }
        // After the marker, the rest is the caller's (it is hashed).
        let mut padded = two.clone();
        padded.extend_from_slice(&[0; 4096]);
        padded.extend_from_slice(b"after");
        let mut tar = TarStream::new(&padded[..]);
        while tar.next_entry().unwrap().is_some() {}
        assert_eq!(tar.next_entry().unwrap(), None);
        let mut rest = Vec::new();
        tar.into_inner().read_to_end(&mut rest).unwrap();
        assert_eq!(rest.len(), 4096 + 5);
        // A zero block then a header is not an end.
        let mut broken = one.clone();
        push(&mut broken, &header(b'0', b"g", 0), b"");
        bad_layer(entries(&broken));
        // Half a zero block.
        let mut half = bare.clone();
        half.extend_from_slice(&[0; 256]);
        bad_layer(entries(&half));
        // An extension header then the end.
        let mut orphan = Vec::new();
        pax(&mut orphan, &[("path", b"x")]);
        end(&mut orphan);
        bad_layer(entries(&orphan));
        // An empty stream is an empty archive.
        assert!(entries(b"").unwrap().is_empty());
    }

    #[test]
    fn only_regular_files_have_bodies() {
        // A directory claiming 512 bytes: what follows is the next header.
        let mut out = Vec::new();
        out.extend_from_slice(header(b'5', b"d/", 512).as_bytes());
        push(&mut out, &header(b'0', b"f", 1), b"1");
        end(&mut out);
        let all = entries(&out).unwrap();
        assert_eq!((all[0].0.kind.clone(), all[0].0.size), (Kind::Dir, 0));
        assert_eq!(all[1].0.path, b"f");
        // '7' is a regular file; '\0' named with a slash is a directory.
        let mut out = Vec::new();
        push(&mut out, &header(b'7', b"c", 2), b"ab");
        push(&mut out, &header(b'\0', b"old", 1), b"z");
        push(&mut out, &header(b'\0', b"olddir/", 0), b"");
        end(&mut out);
        let all = entries(&out).unwrap();
        let kinds: Vec<_> = all
            .iter()
            .map(|(e, b)| (e.kind.clone(), b.clone()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::File, b"ab".to_vec()),
                (Kind::File, b"z".to_vec()),
                (Kind::Dir, vec![])
            ]
        );
    }

    #[test]
    fn numeric_fields_octal_base256_and_empty() {
        let mut h = header(b'0', b"f", 0);
        h.set_uid(1 << 40); // base-256
        h.as_old_mut().gid = [0; 8]; // empty: 0
        h.as_old_mut().mtime = *b"  17777777 \0";
        h.set_mode(0o177777);
        h.set_cksum();
        let mut out = Vec::new();
        push(&mut out, &h, b"");
        end(&mut out);
        let (e, _) = &entries(&out).unwrap()[0];
        assert_eq!((e.uid, e.gid, e.mode), (1 << 40, 0, 0o7777));
        assert_eq!(e.mtime.secs, 0o17777777);
        // A negative base-256 time.
        let mut h = header(b'0', b"f", 0);
        h.as_old_mut().mtime = [0xff; 12];
        h.set_cksum();
        let mut out = Vec::new();
        push(&mut out, &h, b"");
        assert_eq!(entries(&out).unwrap()[0].0.mtime.secs, -1);
        // Not a number.
        let mut h = header(b'0', b"f", 0);
        h.as_old_mut().uid = *b"12z4567\0";
        h.set_cksum();
        let mut out = Vec::new();
        push(&mut out, &h, b"");
        let message = bad_layer(entries(&out));
        assert!(message.contains("uid"), "{message}");
    }

    #[test]
    fn messages_name_the_entry_and_stay_short() {
        let name = "n".repeat(100_000);
        let mut out = Vec::new();
        pax(&mut out, &[("path", name.as_bytes())]);
        out.extend_from_slice(header(b'0', b"f", 10).as_bytes());
        out.extend_from_slice(b"12345");
        let mut tar = TarStream::new(&out[..]);
        assert_eq!(tar.next_entry().unwrap().unwrap().path.len(), 100_000);
        let mut buf = [0u8; 64];
        assert_eq!(tar.read_data(&mut buf).unwrap(), 5);
        let message = bad_layer(tar.read_data(&mut buf));
        assert!(message.contains("nnnn") && message.len() < 400, "{message}");
    }

    #[test]
    fn the_readers_own_errors_pass_through() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other(Error::cancelled()))
            }
        }
        let e = TarStream::new(Failing).next_entry().unwrap_err();
        assert_eq!(e, Error::cancelled());
        struct Corrupt;
        impl Read for Corrupt {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "corrupt deflate stream",
                ))
            }
        }
        let message = bad_layer(TarStream::new(Corrupt).next_entry());
        assert!(message.contains("corrupt deflate stream"), "{message}");
    }
}
