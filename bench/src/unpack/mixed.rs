//! The mixed tree of the big layer: files of every size class holding
//! incompressible bytes, text a compressor can shrink, or zeros, so that the
//! decompressor, the hashing and the file writes all have their share.
//! Deterministic: the same total gives the same tree on every run.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// What one tree holds, by kind of content.
#[derive(Default)]
pub struct Mix {
    pub files: usize,
    pub random: u64,
    pub text: u64,
    pub zeros: u64,
    pub links: usize,
}

impl Mix {
    pub fn bytes(&self) -> u64 {
        self.random + self.text + self.zeros
    }
}

/// splitmix64: fast, and its stream looks random to a compressor.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

#[derive(Clone, Copy)]
enum Content {
    Random,
    Text,
    Zeros,
}

/// 40 % incompressible, 40 % text, 20 % zeros, by file within each size
/// class.
const CYCLE: [Content; 5] = [
    Content::Random,
    Content::Text,
    Content::Random,
    Content::Text,
    Content::Zeros,
];

/// Size classes: (share of the bytes, smallest, largest file).
fn classes(total: u64) -> [(f64, u64, u64); 3] {
    let large_max = (96 << 20).min(total / 8).max(8 << 20);
    [
        (0.10, 1 << 10, 64 << 10),
        (0.40, 64 << 10, 4 << 20),
        (0.50, 8 << 20, large_max),
    ]
}

/// The largest file a tree of `total` bytes holds.
pub fn largest(total: u64) -> u64 {
    classes(total)[2].2
}

/// Writes about `total` bytes of files under `dir` (`dNN/sM/fI.bin`), and a
/// symlink and a hardlink in each top directory.
pub fn write_tree(dir: &Path, total: u64) -> Result<Mix> {
    let mut rng = Rng(0x7a6b_2026);
    let words = vocabulary(&mut rng);
    let mut mix = Mix::default();
    let mut buf = vec![0u8; 1 << 20];
    for (share, lo, hi) in classes(total) {
        let budget = (total as f64 * share) as u64;
        let mut written = 0;
        let mut nth = 0;
        while written < budget {
            let size = rng.between(lo, hi).min(budget - written).max(1);
            let i = mix.files;
            let sub = dir.join(format!("d{:02}/s{}", i % 32, (i / 32) % 4));
            std::fs::create_dir_all(&sub)?;
            let path = sub.join(format!("f{i}.bin"));
            let content = CYCLE[nth % CYCLE.len()];
            write_file(&path, size, content, &mut rng, &words, &mut buf)
                .with_context(|| format!("writing {}", path.display()))?;
            match content {
                Content::Random => mix.random += size,
                Content::Text => mix.text += size,
                Content::Zeros => mix.zeros += size,
            }
            mix.files += 1;
            written += size;
            nth += 1;
        }
    }
    for d in 0..32.min(mix.files) {
        let top = dir.join(format!("d{d:02}"));
        let first = format!("s0/f{d}.bin");
        std::os::unix::fs::symlink(&first, top.join("latest"))?;
        std::fs::hard_link(top.join(&first), top.join("same.bin"))?;
        mix.links += 2;
    }
    Ok(mix)
}

fn write_file(
    path: &Path,
    size: u64,
    content: Content,
    rng: &mut Rng,
    words: &[Vec<u8>],
    buf: &mut [u8],
) -> Result<()> {
    let mut f = File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        let chunk = &mut buf[..n];
        match content {
            Content::Random => fill_random(chunk, rng),
            Content::Text => fill_text(chunk, rng, words),
            Content::Zeros => chunk.fill(0),
        }
        f.write_all(chunk)?;
        left -= n as u64;
    }
    Ok(())
}

fn fill_random(chunk: &mut [u8], rng: &mut Rng) {
    for piece in chunk.chunks_mut(8) {
        let v = rng.next().to_le_bytes();
        piece.copy_from_slice(&v[..piece.len()]);
    }
}

/// Lines of words drawn from a small vocabulary, the common ones more
/// often: gzip shrinks it about as much as source code or logs.
fn fill_text(chunk: &mut [u8], rng: &mut Rng, words: &[Vec<u8>]) {
    let mut at = 0;
    let mut on_line = 0;
    while at < chunk.len() {
        let r = rng.next();
        // The smaller of two draws leans towards the first words.
        let a = (r & 0xffff) as usize % words.len();
        let b = ((r >> 16) & 0xffff) as usize % words.len();
        let word = &words[a.min(b)];
        on_line += 1;
        let sep = if on_line >= 6 + (r >> 32) as usize % 9 {
            on_line = 0;
            b'\n'
        } else {
            b' '
        };
        for &c in word.iter().chain(std::iter::once(&sep)) {
            if at == chunk.len() {
                return;
            }
            chunk[at] = c;
            at += 1;
        }
    }
}

fn vocabulary(rng: &mut Rng) -> Vec<Vec<u8>> {
    const SYLLABLES: [&str; 16] = [
        "ta", "ne", "ko", "ri", "su", "ma", "lo", "pe", "in", "ex", "con", "ion", "st", "ed", "er",
        "al",
    ];
    (0..512)
        .map(|_| {
            let n = rng.between(1, 4);
            (0..n)
                .flat_map(|_| SYLLABLES[rng.between(0, 15) as usize].bytes())
                .collect()
        })
        .collect()
}
