//! Which bytes of a partial are there: the finished extents of a blob
//! fetched as several ranges, and their record beside the partial
//! (`<work>.partial.extents`), so a later call asks only for the gaps.
//!
//! A partial written by one stream has no record: its length is what it
//! holds. One written at offsets may have holes anywhere, so the record is
//! written before the first byte lands past the contiguous prefix, and is
//! the only word on what is there. The record is read leniently: one that
//! is torn, someone else's, for another blob, or that claims more than the
//! partial holds, says nothing is finished rather than something wrong.
//! The digest check at the end stays the last word either way: a record is
//! only ever a hint of what need not be fetched again.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::private_file;
use crate::stevedore::digest::Digest;
use crate::stevedore::error::{Error, Result};

/// The first line of a record; a new layout of the file gets a new one.
const MAGIC: &str = "tank-extents 1";
/// The last line: a record cut short (a crash between write and rename
/// on a filesystem that does not order them) has none.
const END: &str = "end";
/// Larger than any record tank writes (a handful of ranges per
/// connection): anything bigger is not one of ours, and is not read.
const MAX_RECORD: u64 = 64 << 10;

/// Finished byte ranges of one blob: sorted, disjoint, and never touching
/// (neighbours are merged), so the first one starting at 0 is the prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extents {
    ranges: Vec<Range<u64>>,
}

impl Extents {
    pub fn new() -> Extents {
        Extents::default()
    }

    /// `[0, len)` finished: what a single-stream partial of `len` bytes
    /// holds.
    pub fn prefix(len: u64) -> Extents {
        let mut extents = Extents::new();
        extents.insert(0..len);
        extents
    }

    /// Marks `range` finished, merged with what it overlaps or touches.
    pub fn insert(&mut self, range: Range<u64>) {
        if range.is_empty() {
            return;
        }
        // The first range that ends at or after the new one's start may
        // touch it; every one from there that starts at or before its end
        // is merged into it.
        let first = self.ranges.partition_point(|r| r.end < range.start);
        let mut merged = range;
        let mut last = first;
        while last < self.ranges.len() && self.ranges[last].start <= merged.end {
            merged.start = merged.start.min(self.ranges[last].start);
            merged.end = merged.end.max(self.ranges[last].end);
            last += 1;
        }
        self.ranges.splice(first..last, [merged]);
    }

    /// How many bytes from 0 are finished without a gap.
    pub fn contiguous_prefix(&self) -> u64 {
        match self.ranges.first() {
            Some(r) if r.start == 0 => r.end,
            _ => 0,
        }
    }

    /// Bytes finished, in all.
    pub fn done(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// The gaps in `[0, total)`, in order: what is still to be fetched.
    pub fn missing(&self, total: u64) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for r in &self.ranges {
            if r.start >= total {
                break;
            }
            if r.start > at {
                gaps.push(at..r.start);
            }
            at = at.max(r.end);
        }
        if at < total {
            gaps.push(at..total);
        }
        gaps
    }

    #[cfg(test)]
    pub fn is_complete(&self, total: u64) -> bool {
        self.contiguous_prefix() >= total
    }

    /// Only what lies below `len`: a record never vouches for bytes past
    /// the end of the file it describes.
    pub fn clamp(&mut self, len: u64) {
        self.ranges.retain(|r| r.start < len);
        if let Some(last) = self.ranges.last_mut() {
            last.end = last.end.min(len);
        }
    }

    #[cfg(test)]
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// The record's text, for the blob `digest` of `size` bytes.
    fn to_record(&self, digest: &Digest, size: u64) -> String {
        let mut text = format!("{MAGIC}\n{digest} {size}\n");
        for r in &self.ranges {
            text.push_str(&format!("{} {}\n", r.start, r.end));
        }
        text.push_str(END);
        text.push('\n');
        text
    }

    /// The extents a record says, when it is whole, for this blob, and
    /// well-formed (ranges within the size, in order, apart).
    fn from_record(text: &str, digest: &Digest, size: u64) -> Option<Extents> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        if lines.next()? != format!("{digest} {size}") {
            return None;
        }
        let mut ranges: Vec<Range<u64>> = Vec::new();
        loop {
            let line = lines.next()?;
            if line == END {
                break;
            }
            let (start, end) = line.split_once(' ')?;
            let (start, end) = (start.parse().ok()?, end.parse().ok()?);
            let touches_last = ranges.last().is_some_and(|r| start <= r.end);
            if touches_last || start >= end || end > size {
                return None;
            }
            ranges.push(start..end);
        }
        if lines.next().is_some() {
            return None;
        }
        Some(Extents { ranges })
    }
}

/// What the partial of `partial_len` bytes holds of the blob `digest` of
/// `size` bytes, by the record at `path`: with no record there, a
/// single-stream partial, all of its length; with a record that cannot be
/// trusted, nothing (the partial may have holes anywhere). Never more than
/// the partial's length.
pub fn load(path: &Path, digest: &Digest, size: u64, partial_len: u64) -> Extents {
    let mut extents = match read_record(path) {
        Ok(None) => Extents::prefix(partial_len),
        Ok(Some(text)) => Extents::from_record(&text, digest, size).unwrap_or_default(),
        Err(_) => Extents::new(),
    };
    extents.clamp(partial_len.min(size));
    extents
}

/// The record's text; `None` when nothing is at `path`. A file that is
/// not a regular file of ours that only we can write, or is too big to be
/// a record, is an error: present, and not to be trusted.
fn read_record(path: &Path) -> io::Result<Option<String>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let ours = meta.is_file() && meta.uid() == me && meta.nlink() == 1 && meta.mode() & 0o022 == 0;
    if !ours || meta.len() > MAX_RECORD {
        return Err(io::Error::other("not a record of tank's"));
    }
    let mut text = String::new();
    file.take(MAX_RECORD).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Writes the record of `extents` at `path`: a new private file beside it,
/// renamed over it, so a reader sees the old record or the new one. Not
/// flushed to disk: a record lost in a crash costs bytes fetched again,
/// and a flush per checkpoint would cost every download; one torn by a
/// crash has no end line and is ignored.
pub fn save(path: &Path, extents: &Extents, digest: &Digest, size: u64) -> Result<()> {
    let (mut file, temp) =
        private_file::create_unique(path, 0o600).map_err(|e| Error::io("creating", path, &e))?;
    let written = file
        .write_all(extents.to_record(digest, size).as_bytes())
        .map_err(|e| Error::io("writing", &temp, &e))
        .and_then(|()| std::fs::rename(&temp, path).map_err(|e| Error::io("renaming", path, &e)));
    if written.is_err() {
        private_file::remove_if_at(&file, &temp);
    }
    written
}

/// Removes the record at `path`, if any: once the partial is complete (or
/// started over from nothing), it describes nothing.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path, &e)),
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use crate::stevedore::digest::Algorithm;
    use std::os::unix::fs::PermissionsExt;

    fn ex(ranges: &[Range<u64>]) -> Extents {
        let mut e = Extents::new();
        for r in ranges {
            e.insert(r.clone());
        }
        e
    }

    #[test]
    fn inserts_merge_what_overlaps_or_touches() {
        let e = ex(&[10..20, 30..40, 20..25, 0..5, 38..50, 5..6]);
        assert_eq!(e.ranges(), &[0..6, 10..25, 30..50]);
        assert_eq!(e.contiguous_prefix(), 6);
        assert_eq!(e.done(), 6 + 15 + 20);
        let e = ex(&[10..20, 30..40, 0..100]);
        assert_eq!(e.ranges(), &[0..100]);
        let e = ex(&[10..20, 15..18, 0..0]);
        assert_eq!(e.ranges(), &[10..20]);
        assert_eq!(e.contiguous_prefix(), 0, "no prefix without byte 0");
    }

    #[test]
    fn missing_is_every_gap_below_the_total() {
        let e = ex(&[0..10, 20..30, 40..60]);
        assert_eq!(e.missing(50), vec![10..20, 30..40]);
        assert_eq!(e.missing(70), vec![10..20, 30..40, 60..70]);
        assert_eq!(Extents::new().missing(7), vec![0..7]);
        assert!(Extents::prefix(7).missing(7).is_empty());
        assert!(Extents::prefix(7).is_complete(7));
        assert_eq!(ex(&[5..7]).missing(7), vec![0..5]);
    }

    #[test]
    fn clamp_keeps_only_what_the_file_holds() {
        let mut e = ex(&[0..10, 20..30, 40..60]);
        e.clamp(25);
        assert_eq!(e.ranges(), &[0..10, 20..25]);
        e.clamp(20);
        assert_eq!(e.ranges(), &[0..10]);
    }

    fn digest() -> Digest {
        Digest::of(Algorithm::Sha256, b"blob")
    }

    #[test]
    fn a_record_reads_back_as_written_within_the_partials_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.partial.extents");
        let e = ex(&[0..10, 20..30, 40..60]);
        save(&path, &e, &digest(), 100).unwrap();
        assert_eq!(load(&path, &digest(), 100, 100), e);
        assert_eq!(
            load(&path, &digest(), 100, 45),
            ex(&[0..10, 20..30, 40..45])
        );
        let mode = std::fs::metadata(&path).unwrap().mode();
        assert_eq!(mode & 0o077, 0, "a record is private");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "a temp file left"
        );
        remove(&path).unwrap();
        remove(&path).unwrap();
        assert_eq!(
            load(&path, &digest(), 100, 45),
            Extents::prefix(45),
            "no record: a single stream's partial"
        );
    }

    #[test]
    fn a_record_not_to_be_trusted_says_nothing_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.partial.extents");
        let good = ex(&[0..10, 20..30]).to_record(&digest(), 100);
        let other = Digest::of(Algorithm::Sha256, b"other");
        let bad = [
            String::new(),
            "\0\0\0\0\0\0".to_string(),
            good.replace("\nend\n", "\n"),
            good.replace("20 30", "20 300"),
            good.replace("20 30", "5 30"),
            good.replace("20 30", "10 30"),
            good.replace("20 30", "30 20"),
            good.replace("20 30", "twenty 30"),
            good.replace(" 100\n", " 101\n"),
            good.replace(MAGIC, "tank-extents 2"),
            ex(&[0..10]).to_record(&other, 100),
            format!("{good}0 1\n"),
        ];
        for text in bad {
            std::fs::write(&path, &text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(
                load(&path, &digest(), 100, 100),
                Extents::new(),
                "trusted: {text:?}"
            );
        }
        std::fs::write(&path, &good).unwrap();
        assert_eq!(load(&path, &digest(), 100, 100), ex(&[0..10, 20..30]));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            load(&path, &digest(), 100, 100),
            Extents::new(),
            "others may write it"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(
            load(&link, &digest(), 100, 100),
            Extents::new(),
            "a symlink"
        );
    }

    proptest::proptest! {
        /// Against a byte map: whatever the inserts, the extents are the
        /// bytes marked, kept sorted, apart and merged, and a record of
        /// them reads back the same.
        #[test]
        fn extents_are_the_bytes_marked(
            inserts in proptest::collection::vec((0u64..200, 0u64..40), 0..30),
            total in 0u64..260,
        ) {
            let mut e = Extents::new();
            let mut marked = [false; 240];
            for (start, len) in inserts {
                e.insert(start..start + len);
                marked[start as usize..(start + len) as usize].fill(true);
            }
            let r = e.ranges();
            proptest::prop_assert!(r.iter().all(|r| r.start < r.end));
            proptest::prop_assert!(r.windows(2).all(|w| w[0].end < w[1].start));
            for (i, &m) in marked.iter().enumerate() {
                let i = i as u64;
                proptest::prop_assert_eq!(r.iter().any(|r| r.contains(&i)), m);
            }
            let prefix = marked.iter().take_while(|&&m| m).count() as u64;
            proptest::prop_assert_eq!(e.contiguous_prefix(), prefix);
            let missing: u64 = e.missing(total).iter().map(|g| g.end - g.start).sum();
            let unmarked = (0..total).filter(|&i| !marked.get(i as usize).copied().unwrap_or(false));
            proptest::prop_assert_eq!(missing, unmarked.count() as u64);
            let record = e.to_record(&digest(), 240);
            proptest::prop_assert_eq!(Extents::from_record(&record, &digest(), 240), Some(e));
        }
    }
}
