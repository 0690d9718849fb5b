//! Large layers made on the fly: a one-file tar archive whose content is a
//! deterministic, incompressible PRNG stream, written to disk in one pass
//! (hashed on the way) without ever being held in memory.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

const BLOCK: usize = 64 * 1024;
const TAR_BLOCK: u64 = 512;
/// Two zero blocks end a tar archive.
const TAR_TRAILER: u64 = 2 * TAR_BLOCK;

/// wyrand: fast, statistically fine for test data, and seedable so every
/// registry gets byte-identical layers.
struct Prng(u64);

impl Prng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let bytes = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&bytes[..rest.len()]);
        }
    }
}

/// `len` deterministic pseudo-random bytes from `seed` (small fixture files).
pub(crate) fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Prng(seed).fill(&mut out);
    out
}

/// A recipe for a generated one-file tar layer.
#[derive(Debug, Clone)]
pub(crate) struct GeneratedTar {
    pub(crate) file_name: String,
    pub(crate) seed: u64,
    pub(crate) content_len: u64,
}

impl GeneratedTar {
    /// Size of the whole archive in bytes.
    pub(crate) fn size(&self) -> u64 {
        TAR_BLOCK + self.content_len.div_ceil(TAR_BLOCK) * TAR_BLOCK + TAR_TRAILER
    }

    pub(crate) fn reader(&self) -> Result<GeneratedTarReader> {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(&self.file_name)
            .with_context(|| format!("tar path {}", self.file_name))?;
        header.set_size(self.content_len);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        Ok(GeneratedTarReader {
            header: *header.as_bytes(),
            content_len: self.content_len,
            total: self.size(),
            pos: 0,
            prng: Prng(self.seed),
            block: vec![0u8; BLOCK],
            block_pos: BLOCK,
        })
    }

    /// Writes the archive to `path` and returns its `sha256:<hex>`, in one
    /// generation pass. Hashing runs on a second thread, so a 1 GiB layer
    /// costs about as long as writing it.
    pub(crate) fn write_to(&self, path: &Path) -> Result<String> {
        let mut reader = self.reader()?;
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(8);
        // Blocks go back for reuse: fresh 1 MiB allocations are fresh pages,
        // and page faults are what a VM does slowest.
        let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
        thread::scope(|s| {
            let hasher = s.spawn(move || {
                let mut hasher = Sha256::new();
                for block in rx {
                    hasher.update(&block);
                    let _ = recycle_tx.send(block);
                }
                format!("sha256:{:x}", hasher.finalize())
            });
            let written = (|| -> Result<()> {
                loop {
                    let mut block = recycle_rx.try_recv().unwrap_or_default();
                    block.resize(1 << 20, 0);
                    let n = read_full(&mut reader, &mut block).context("generating a layer")?;
                    if n == 0 {
                        return Ok(());
                    }
                    block.truncate(n);
                    out.write_all(&block)
                        .with_context(|| format!("writing {}", path.display()))?;
                    if tx.send(block).is_err() {
                        bail!("the hashing thread stopped");
                    }
                }
            })();
            drop(tx);
            let digest = hasher
                .join()
                .map_err(|_| anyhow!("the hashing thread panicked"))?;
            written?;
            out.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(digest)
        })
    }
}

/// Fills `buf` unless the reader ends first; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

pub(crate) struct GeneratedTarReader {
    header: [u8; 512],
    content_len: u64,
    total: u64,
    pos: u64,
    prng: Prng,
    block: Vec<u8>,
    block_pos: usize,
}

impl Read for GeneratedTarReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.total || buf.is_empty() {
            return Ok(0);
        }
        let content_end = TAR_BLOCK + self.content_len;
        let n = if self.pos < TAR_BLOCK {
            let start = self.pos as usize;
            let n = buf.len().min(512 - start);
            buf[..n].copy_from_slice(&self.header[start..start + n]);
            n
        } else if self.pos < content_end {
            if self.block_pos == BLOCK {
                // Whole blocks keep the stream independent of callers' read sizes.
                self.prng.fill(&mut self.block);
                self.block_pos = 0;
            }
            let left = usize::try_from(content_end - self.pos).unwrap_or(usize::MAX);
            let n = buf.len().min(BLOCK - self.block_pos).min(left);
            buf[..n].copy_from_slice(&self.block[self.block_pos..self.block_pos + n]);
            self.block_pos += n;
            n
        } else {
            // Padding to the tar block and the end-of-archive blocks.
            let left = usize::try_from(self.total - self.pos).unwrap_or(usize::MAX);
            let n = buf.len().min(left);
            buf[..n].fill(0);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut r: impl Read, chunk: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn generated_tar_is_a_valid_archive_independent_of_read_size() {
        let g = GeneratedTar {
            file_name: "big.bin".into(),
            seed: 7,
            content_len: 200_000,
        };
        let a = read_all(g.reader().unwrap(), 4096);
        let b = read_all(g.reader().unwrap(), 777);
        assert_eq!(a, b);
        assert_eq!(a.len() as u64, g.size());
        let mut archive = tar::Archive::new(&a[..]);
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("big.bin"));
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content.len(), 200_000);
        assert!(entries.next().is_none());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.tar");
        let digest = g.write_to(&path).unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(written, a);
        assert_eq!(digest, format!("sha256:{:x}", Sha256::digest(&a)));
    }
}
