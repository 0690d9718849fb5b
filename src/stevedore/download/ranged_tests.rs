//! The ranged pieces together, without a network: a plan, its schedule,
//! connections that break and are cut short, the assembly and its record,
//! and a resume; as the fetch loop in [`super::plan`]'s docs will drive
//! them. A fake server sends the blob's bytes and counts them, so what is
//! fetched twice is measured, not assumed.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};

use super::plan::{plan, Received, Schedule, Settings};
use crate::stevedore::digest::{Algorithm, Digest};
use crate::stevedore::store::assembly::Assembly;
use crate::stevedore::store::extents::{self, Extents};

const KIB: u64 = 1 << 10;

/// Deterministic, so a failure replays: xorshift64.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 509) as u8).collect()
}

/// Small pieces, so a few MiB behave as a big blob does.
fn settings(connections: usize) -> Settings {
    Settings {
        connections,
        per_host: 16,
        threshold: 0,
        min_piece: 16 * KIB,
        max_piece: 256 * KIB,
    }
}

struct Files {
    partial: PathBuf,
    record: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            partial: dir.join("b.partial"),
            record: dir.join("b.partial.extents"),
        }
    }

    /// What the next call starts from: the record, trusted no further
    /// than the partial's length, and the prefix hashed.
    fn open(&self, size: u64, digest: &Digest) -> Assembly {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.partial)
            .unwrap();
        let len = file.metadata().unwrap().len();
        let written = extents::load(&self.record, digest, size, len);
        Assembly::resume(file, self.partial.clone(), Algorithm::Sha256, written, None).unwrap()
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    all: u64,
    kept: u64,
}

/// One call: `connections` fake connections interleaved at random, each
/// breaking now and then, until the blob is whole or `cut_after` bytes
/// were sent (a crash: no last record). Returns the bytes the server
/// sent, those of them that were written (not past a shortened piece's
/// end), and the digest when the blob was finished.
fn one_call(
    files: &Files,
    bytes: &[u8],
    connections: usize,
    cut_after: Option<u64>,
    rng: &mut Rng,
) -> (Sent, Option<Digest>) {
    let size = bytes.len() as u64;
    let digest = Digest::of(Algorithm::Sha256, bytes);
    let mut a = files.open(size, &digest);
    a.checkpoint_every(64 * KIB);
    let s = settings(connections);
    let p = plan(size, a.written(), &s);
    let mut sched = Schedule::new(&p, &s);
    // Before anything lands ahead of the frontier.
    a.checkpoint(&files.record, &digest, size).unwrap();
    let mut conns: Vec<Option<(usize, u64)>> = vec![None; p.connections];
    let mut sent = Sent::default();
    while !sched.is_finished() {
        if cut_after.is_some_and(|c| sent.all >= c) {
            return (sent, None);
        }
        let c = rng.below(conns.len() as u64) as usize;
        let (id, at) = match conns[c] {
            Some(task) => task,
            None => match sched.next() {
                Some((id, piece)) => (id, piece.start),
                None => continue,
            },
        };
        if rng.below(40) == 0 {
            sched.broke(id);
            conns[c] = None;
            continue;
        }
        // The server sends past a piece's end when its tail was handed to
        // another connection: the schedule says how much is this one's.
        let len = (1 + rng.below(20 * KIB)).min(size - at);
        let Received { keep, done } = sched.received(id, len);
        sent.all += len;
        sent.kept += keep;
        a.write_at(at, &bytes[at as usize..(at + keep) as usize])
            .unwrap();
        if a.checkpoint_due() {
            a.checkpoint(&files.record, &digest, size).unwrap();
        }
        conns[c] = (!done).then_some((id, at + keep));
    }
    extents::remove(&files.record).unwrap();
    (sent, a.finish(size, None).unwrap())
}

#[test]
fn pieces_over_connections_that_break_hash_to_the_blob() {
    for (seed, connections) in [(1u64, 4), (2, 1), (3, 8), (4, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::in_dir(dir.path());
        let bytes = blob((2 << 20) + 12345);
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (sent, digest) = one_call(&files, &bytes, connections, None, &mut rng);
        assert_eq!(digest, Some(Digest::of(Algorithm::Sha256, &bytes)));
        assert_eq!(std::fs::read(&files.partial).unwrap(), bytes);
        assert_eq!(sent.kept, bytes.len() as u64, "a byte written twice");
        // Past a shortened piece's end: at most a chunk per piece cut.
        assert!(sent.all - sent.kept < 256 * KIB, "{sent:?}");
        assert!(!files.record.exists());
    }
}

/// A call cut short leaves the partial and its last record; the next asks
/// only for what the record does not have, so what is sent twice is what
/// arrived after the last record (at most one checkpoint's worth) and the
/// bytes past a shortened piece's end.
#[test]
fn a_call_cut_half_way_is_resumed_without_fetching_the_finished_again() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let bytes = blob(3 << 20);
    let size = bytes.len() as u64;
    let mut rng = Rng(0x5eed);
    let (first, none) = one_call(&files, &bytes, 4, Some(size / 2), &mut rng);
    assert_eq!(none, None);
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    let len = std::fs::metadata(&files.partial).unwrap().len();
    let kept = extents::load(&files.record, &digest, size, len);
    assert!(kept.done() > size / 3, "kept only {}", kept.done());
    assert!(
        kept.ranges().len() > 1,
        "the cut left holes: {:?}",
        kept.ranges()
    );
    let (second, digest_now) = one_call(&files, &bytes, 4, None, &mut rng);
    assert_eq!(digest_now, Some(digest));
    // Written after the last record: at most a checkpoint's worth and
    // the chunk that made it due.
    let again = first.kept + second.kept - size;
    assert!(again < 64 * KIB + 20 * KIB, "{again} bytes fetched twice");
    assert!(second.kept <= size - kept.done(), "{second:?}");
}

/// A record that cannot be trusted: the partial's bytes count for
/// nothing, and the blob is still right.
#[test]
fn a_corrupt_record_starts_over_and_still_hashes_right() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let bytes = blob(1 << 20);
    let size = bytes.len() as u64;
    let mut rng = Rng(77);
    one_call(&files, &bytes, 4, Some(size / 2), &mut rng);
    std::fs::write(&files.record, b"tank-extents 1\ngarbage\n").unwrap();
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    assert_eq!(files.open(size, &digest).written(), &Extents::new());
    let (sent, got) = one_call(&files, &bytes, 4, None, &mut rng);
    assert_eq!(got, Some(digest));
    assert_eq!(sent.kept, size);
}

/// Range tasks on threads, one writer thread owning the assembly behind a
/// bounded channel, as the fetch loop is to run them.
#[test]
fn range_tasks_on_threads_feed_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let files = Files::in_dir(dir.path());
    let bytes = blob((2 << 20) + 7);
    let size = bytes.len() as u64;
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    let mut a = files.open(size, &digest);
    let s = settings(4);
    let p = plan(size, a.written(), &s);
    let sched = Mutex::new(Schedule::new(&p, &s));
    let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(16);
    let got = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            for (at, chunk) in rx {
                a.write_at(at, &chunk).unwrap();
            }
            a.finish(size, None).unwrap()
        });
        for _ in 0..p.connections {
            let (tx, sched, bytes) = (tx.clone(), &sched, &bytes);
            scope.spawn(move || loop {
                let Some((id, piece)) = sched.lock().unwrap().next() else {
                    break;
                };
                let mut at = piece.start;
                loop {
                    let len = (8 * KIB).min(size - at);
                    let r = sched.lock().unwrap().received(id, len);
                    let chunk: Range<usize> = at as usize..(at + r.keep) as usize;
                    tx.send((at, bytes[chunk].to_vec())).unwrap();
                    at += r.keep;
                    if r.done {
                        break;
                    }
                }
            });
        }
        drop(tx);
        writer.join().unwrap()
    });
    assert!(sched.lock().unwrap().is_finished());
    assert_eq!(got, Some(digest));
}
