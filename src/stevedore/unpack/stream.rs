//! One layer blob as a reader of its uncompressed tar bytes: the file is
//! read once, hashed (the blob digest), decompressed and hashed again (the
//! diff_id), and both are checked when the stream ends.
//!
//! Decompression runs on a scoped thread of its own, ahead of the caller's
//! `consume` (tar parsing and file writes) by a bounded queue of chunks
//! whose buffers go back and forth: two cores busy, a few MiB in flight.
//! The diff_id is hashed on a third thread from the same chunks, shared
//! read-only, so that neither side carries it. Where a thread cannot be
//! started, the same steps run inline.

#![allow(dead_code)] // Until the orchestrator uses it.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread;

use super::media::Compression;
use crate::stevedore::cancel::Cancel;
use crate::stevedore::digest::{Digest, Hasher};
use crate::stevedore::error::{Error, ErrorKind, Reason, Result};

/// What the manifest and the config say of one layer.
pub struct Layer<'a> {
    pub digest: &'a Digest,
    pub size: u64,
    pub diff_id: &'a Digest,
    pub media_type: &'a str,
    pub compression: Compression,
}

/// Uncompressed bytes per chunk handed across.
const CHUNK: usize = 256 << 10;
/// Chunks queued between the threads (one more is being filled, one more
/// is being read): at most `QUEUE + 2` buffers exist, `2 * QUEUE + 3` with
/// the diff_id's own thread.
const QUEUE: usize = 3;
/// Compressed bytes read from the file at a time.
const READ_BUFFER: usize = 128 << 10;
/// The largest zstd window a layer may ask for: 2^27 (128 MiB), libzstd's
/// own default, pinned. The decoder holds the window a frame declares, so
/// the 64 MiB RSS bound holds for frames of windows up to 32 MiB: every
/// level of the zstd CLI up to 20 (level 19 asks 8 MiB) and the encoder
/// docker and buildkit use (8 MiB). `zstd --ultra -21/-22` and `--long`
/// ask 64 to 128 MiB; refusing them would refuse layers that zstd itself
/// and other runtimes apply, so they cost that memory instead. A frame
/// asking more is `bad_layer`.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// How a layer is read; `read_layer` uses `Plan::CHOSEN`, the benchmark
/// the others.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Decompression on a thread of its own.
    pipelined: bool,
    /// Which thread hashes the diff_id.
    diff_id: Side,
}

/// A thread of `read_layer`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Decoder,
    Consumer,
    /// A thread of its own (pipelined only; the decoder's when it cannot
    /// start).
    Own,
}

impl Plan {
    /// Hashing the diff_id costs about what decompressing zstd or applying
    /// a layer on tmpfs does; beside either it made that side the long
    /// pole. On a thread of its own the OS spreads the three over the
    /// cores. `bench` below, 2 cores, files written to tmpfs, 256 MiB
    /// layer of mixed files: gzip 0.30 s vs 0.40-0.43 s beside the decoder,
    /// zstd 0.30-0.31 s vs 0.38-0.40 s; beside `consume` about the same
    /// (zstd 0.27) but slower on 50k small files (0.45 vs 0.41).
    const CHOSEN: Plan = Plan {
        pipelined: true,
        diff_id: Side::Own,
    };
}

/// Where the diff_id comes from.
enum DiffId {
    /// An uncompressed layer hashed with the digest's algorithm: its
    /// diff_id is its digest, the same bytes hashed once.
    Digest,
    /// Its own hash, on the decoding side.
    WithDecoder,
    /// Its own hash, on the consuming side.
    WithConsumer,
    /// Its own hash, on a thread of its own.
    Own,
}

impl DiffId {
    fn of(plan: Plan, layer: &Layer<'_>) -> DiffId {
        let same_bytes = layer.compression == Compression::None
            && layer.diff_id.algorithm() == layer.digest.algorithm();
        match (same_bytes, plan.diff_id) {
            (true, _) => DiffId::Digest,
            (false, Side::Decoder) => DiffId::WithDecoder,
            (false, Side::Consumer) => DiffId::WithConsumer,
            // Inline, one thread does it all.
            (false, Side::Own) if !plan.pipelined => DiffId::WithDecoder,
            (false, Side::Own) => DiffId::Own,
        }
    }
}

/// Runs `consume` over the uncompressed bytes of the layer blob `blob`,
/// then reads whatever it left (hashing it) and checks the blob's size and
/// digest (`digest_mismatch`) and the diff_id (`diff_id_mismatch`). A blob
/// that does not match its digest is reported as that, even when its bytes
/// failed to decompress first. `read` gets the compressed bytes read so
/// far; `cancel` ends the read (`cancelled`).
///
/// A blob of the right digest but not of the descriptor's size is
/// `bad_layer` (the manifest is wrong, not the blob); bytes after the end
/// of the gzip or zstd stream are `bad_layer`. When this returns, nothing
/// reads the file any more.
pub fn read_layer<T>(
    blob: File,
    layer: &Layer<'_>,
    cancel: Option<&Cancel>,
    read: &(dyn Fn(u64) + Sync),
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    read_layer_as(Plan::CHOSEN, blob, layer, cancel, read, consume)
}

/// An error from the layer reader as tank's: one of tank's own carried in
/// the `io::Error` (a cancel, a file that cannot be read) passes through; a
/// stream that ends early is `bad_layer` ("truncated"); anything else the
/// decompressor said is `bad_layer`.
pub fn read_error(e: io::Error) -> Error {
    if let Some(ours) = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        return ours.clone();
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return Error::layer(
            Reason::BadLayer,
            format!("truncated: the layer stream ends early ({e})"),
        );
    }
    Error::layer(
        Reason::BadLayer,
        format!("the layer's bytes are not what its media type says: {e}"),
    )
}

fn read_layer_as<T>(
    plan: Plan,
    blob: File,
    layer: &Layer<'_>,
    cancel: Option<&Cancel>,
    read: &(dyn Fn(u64) + Sync),
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    if is_cancelled(cancel) {
        return Err(Error::cancelled());
    }
    let where_diff_id = DiffId::of(plan, layer);
    let hasher = || Hasher::new(layer.diff_id.algorithm());
    let producer = Producer::new(
        blob,
        layer,
        cancel,
        matches!(where_diff_id, DiffId::WithDecoder).then(hasher),
    )?;
    let diff_id = matches!(where_diff_id, DiffId::WithConsumer).then(hasher);
    if !plan.pipelined {
        return inline(producer, diff_id, layer, cancel, read, consume);
    }
    thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel(QUEUE);
        let (empty_tx, empty_rx) = mpsc::channel();
        let mut producer = producer;
        let own = match where_diff_id {
            DiffId::Own => {
                let started = OwnHasher::start(scope, hasher(), cancel, empty_tx.clone());
                if started.is_none() {
                    producer.diff_id = Some(hasher());
                }
                started
            }
            _ => None,
        };
        let (hash_tx, own) = own.map_or((None, None), |(tx, own)| (Some(tx), Some(own)));
        // The producer goes over once the thread runs, so that a thread
        // that cannot start leaves it here, to run inline.
        let (start_tx, start_rx) = mpsc::channel::<Producer<'_>>();
        let spawned = thread::Builder::new()
            .name("tank-layer".into())
            .spawn_scoped(scope, move || match start_rx.recv() {
                Ok(producer) => producer.run(full_tx, empty_rx, hash_tx),
                Err(_) => Err(Error::internal(Reason::Runtime, "no layer to read")),
            });
        let Ok(handle) = spawned else {
            // Its queue closed with the closure: the hasher ends.
            let diff_id = diff_id.or(own.map(|_| hasher()));
            return inline(producer, diff_id, layer, cancel, read, consume);
        };
        if let Err(mpsc::SendError(producer)) = start_tx.send(producer) {
            // The thread is gone already (it cannot be, short of a panic).
            drop(handle.join());
            let diff_id = diff_id.or(own.map(|_| hasher()));
            return inline(producer, diff_id, layer, cancel, read, consume);
        }
        let mut chunks = Chunks::new(
            Source::Queue {
                full: full_rx,
                empty: empty_tx,
            },
            diff_id,
            cancel,
            read,
        );
        let consumed = consume_all(&mut chunks, consume);
        // Closing the queue first: a producer blocked on it ends its work.
        let seen = chunks.finish();
        let produced = handle.join().unwrap_or_else(|_| {
            Err(Error::internal(
                Reason::Panic,
                "the layer reader thread panicked",
            ))
        });
        // Its queue closed with the producer: it ends too.
        let own = own.map(OwnHasher::finish);
        verdict(layer, consumed, seen, produced, own, read)
    })
}

/// The diff_id's own thread: hashes the chunks the producer shares with
/// it, and hands each buffer back when done with it.
struct OwnHasher<'scope> {
    handle: thread::ScopedJoinHandle<'scope, Result<Digest>>,
}

/// A chunk shared with the diff_id's thread, and its length.
type Shared = (Arc<Vec<u8>>, usize);

impl<'scope> OwnHasher<'scope> {
    /// The thread and its queue; `None` when it cannot start.
    fn start<'env>(
        scope: &'scope thread::Scope<'scope, 'env>,
        mut hasher: Hasher,
        cancel: Option<&'env Cancel>,
        empty: Sender<Arc<Vec<u8>>>,
    ) -> Option<(SyncSender<Shared>, OwnHasher<'scope>)> {
        let (tx, rx) = mpsc::sync_channel::<Shared>(QUEUE);
        let handle = thread::Builder::new()
            .name("tank-diff-id".into())
            .spawn_scoped(scope, move || {
                // Ends when the producer closes the queue.
                for (data, len) in rx {
                    if is_cancelled(cancel) {
                        return Err(Error::cancelled());
                    }
                    hasher.update(&data[..len]);
                    drop(empty.send(data));
                }
                Ok(hasher.finish())
            })
            .ok()?;
        Some((tx, OwnHasher { handle }))
    }

    fn finish(self) -> Result<Digest> {
        self.handle.join().unwrap_or_else(|_| {
            Err(Error::internal(
                Reason::Panic,
                "the diff_id hasher thread panicked",
            ))
        })
    }
}

/// The same steps without a second thread.
fn inline<T>(
    producer: Producer<'_>,
    diff_id: Option<Hasher>,
    layer: &Layer<'_>,
    cancel: Option<&Cancel>,
    read: &(dyn Fn(u64) + Sync),
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let mut chunks = Chunks::new(
        Source::Inline {
            producer: Box::new(producer),
            buffer: vec![0; CHUNK],
        },
        diff_id,
        cancel,
        read,
    );
    let consumed = consume_all(&mut chunks, consume);
    let (producer, seen) = match chunks.finish_inline() {
        Some(done) => done,
        None => return Err(Error::internal(Reason::Runtime, "no inline reader")),
    };
    let produced = producer.finish_after(seen.failure.is_some() || consumed.is_err());
    verdict(layer, consumed, seen, produced, None, read)
}

/// `consume`, then whatever it left, hashed.
fn consume_all<T>(
    chunks: &mut Chunks<'_>,
    consume: impl FnOnce(&mut dyn Read) -> Result<T>,
) -> Result<T> {
    let value = consume(chunks)?;
    while chunks.next_chunk()? {}
    Ok(value)
}

/// The call's answer once every side is done, damaged blob first. `own`
/// is the diff_id's own thread's, when it ran.
fn verdict<T>(
    layer: &Layer<'_>,
    consumed: Result<T>,
    seen: Seen,
    produced: Result<Produced>,
    own: Option<Result<Digest>>,
    read: &(dyn Fn(u64) + Sync),
) -> Result<T> {
    let produced = produced?;
    if &produced.digest != layer.digest {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            Reason::DigestMismatch,
            format!(
                "layer blob {} is damaged: its {} bytes hash to {}",
                layer.digest, produced.len, produced.digest
            ),
        ));
    }
    if produced.len != layer.size {
        return Err(Error::layer(
            Reason::BadLayer,
            format!(
                "layer {}: the manifest says {} bytes, the blob has {}",
                layer.digest, layer.size, produced.len
            ),
        ));
    }
    let value = match (consumed, produced.failure) {
        // The decoder's own words, not what `consume` made of them.
        (Err(_), Some(failure)) if seen.failure.is_some() => return Err(failure),
        (Err(e), _) => return Err(e),
        (Ok(_), Some(failure)) => return Err(failure),
        (Ok(value), None) => value,
    };
    let own = own.transpose()?;
    // No thread hashed it: the layer is uncompressed, its digest is it.
    let diff_id = seen
        .diff_id
        .or(produced.diff_id)
        .or(own)
        .unwrap_or(produced.digest);
    if &diff_id != layer.diff_id {
        return Err(Error::layer(
            Reason::DiffIdMismatch,
            format!(
                "layer {}: its uncompressed bytes hash to {}, the config's diff_id is {}",
                layer.digest, diff_id, layer.diff_id
            ),
        ));
    }
    read(produced.len);
    Ok(value)
}

fn is_cancelled(cancel: Option<&Cancel>) -> bool {
    cancel.is_some_and(Cancel::is_cancelled)
}

/// What the decoding side ends with.
struct Produced {
    digest: Digest,
    /// Compressed bytes in the file.
    len: u64,
    diff_id: Option<Digest>,
    /// Why decompression stopped early, if it did.
    failure: Option<Error>,
}

/// What the consuming side ends with.
struct Seen {
    diff_id: Option<Digest>,
    /// The decoder's failure, when it was handed to `consume`.
    failure: Option<Error>,
}

/// Uncompressed bytes and the compressed bytes read when they were made.
struct Chunk {
    /// Shared with the diff_id's thread, when it has one.
    data: Arc<Vec<u8>>,
    len: usize,
    read: u64,
}

enum Message {
    Data(Chunk),
    End,
    Failed(Error),
}

/// One fill of a chunk.
enum Step {
    Data(usize),
    End,
    Failed(Error),
}

/// The blob file behind a buffer; every byte is hashed as it comes from
/// the file, whoever reads it then.
struct HashingFile {
    file: File,
    hasher: Hasher,
    buffer: Box<[u8]>,
    pos: usize,
    filled: usize,
    len: u64,
    /// Shown in messages: the blob's digest.
    name: String,
    /// Looked at before each read of the file: a decoder can go through
    /// much input that makes no output (empty gzip members, zstd frames)
    /// in one read of its own, where no other loop looks.
    cancel: Option<Cancel>,
}

impl HashingFile {
    fn new(file: File, layer: &Layer<'_>, cancel: Option<&Cancel>) -> HashingFile {
        HashingFile {
            file,
            hasher: Hasher::new(layer.digest.algorithm()),
            buffer: vec![0; READ_BUFFER].into_boxed_slice(),
            pos: 0,
            filled: 0,
            len: 0,
            name: layer.digest.to_string(),
            cancel: cancel.cloned(),
        }
    }

    /// Hashes the rest of the file without decompressing it.
    fn drain(&mut self, cancel: Option<&Cancel>) -> Result<()> {
        loop {
            if is_cancelled(cancel) {
                return Err(Error::cancelled());
            }
            let n = self.fill_buf().map_err(read_error)?.len();
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
        }
    }

    fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.len)
    }
}

impl Read for HashingFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for HashingFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.filled {
            if is_cancelled(self.cancel.as_ref()) {
                // Tank's own error, which `read_error` passes through.
                return Err(io::Error::other(Error::cancelled()));
            }
            let n = loop {
                match self.file.read(&mut self.buffer) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        // Tank's own error, so that it is not taken for a
                        // corrupt stream.
                        return Err(io::Error::other(Error::new(
                            ErrorKind::Io,
                            Reason::Io,
                            format!("reading layer blob {}: {e}", self.name),
                        )));
                    }
                }
            };
            self.hasher.update(&self.buffer[..n]);
            self.len += n as u64;
            self.pos = 0;
            self.filled = n;
        }
        Ok(&self.buffer[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

enum Decoder {
    Plain(Box<HashingFile>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<HashingFile>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, HashingFile>>),
}

impl Decoder {
    fn new(file: HashingFile, compression: Compression) -> Result<Decoder> {
        Ok(match compression {
            Compression::None => Decoder::Plain(Box::new(file)),
            Compression::Gzip => {
                Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(file)))
            }
            Compression::Zstd => {
                let start = |e: io::Error| {
                    Error::internal(Reason::Runtime, format!("cannot start zstd: {e}"))
                };
                let mut decoder = zstd::stream::read::Decoder::with_buffer(file).map_err(start)?;
                decoder.window_log_max(ZSTD_WINDOW_LOG_MAX).map_err(start)?;
                Decoder::Zstd(Box::new(decoder))
            }
        })
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }

    fn file(&mut self) -> &mut HashingFile {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.get_mut(),
            Decoder::Zstd(r) => r.get_mut(),
        }
    }

    fn into_file(self) -> HashingFile {
        match self {
            Decoder::Plain(r) => *r,
            Decoder::Gzip(r) => r.into_inner(),
            Decoder::Zstd(r) => r.finish(),
        }
    }
}

/// The decoding side: fills chunks with uncompressed bytes.
struct Producer<'a> {
    decoder: Decoder,
    cancel: Option<&'a Cancel>,
    diff_id: Option<Hasher>,
    /// A failure met after some bytes of a chunk, told at the next fill.
    pending: Option<Error>,
    ended: bool,
}

impl<'a> Producer<'a> {
    fn new(
        blob: File,
        layer: &Layer<'_>,
        cancel: Option<&'a Cancel>,
        diff_id: Option<Hasher>,
    ) -> Result<Producer<'a>> {
        let file = HashingFile::new(blob, layer, cancel);
        Ok(Producer {
            decoder: Decoder::new(file, layer.compression)?,
            cancel,
            diff_id,
            pending: None,
            ended: false,
        })
    }

    fn read_so_far(&mut self) -> u64 {
        self.decoder.file().len
    }

    /// Fills `buf` as far as the stream goes.
    fn fill(&mut self, buf: &mut [u8]) -> Step {
        if let Some(e) = self.pending.take() {
            return Step::Failed(e);
        }
        if self.ended {
            return Step::End;
        }
        let mut len = 0;
        while len < buf.len() {
            match self.decoder.read(&mut buf[len..]) {
                Ok(0) => {
                    self.ended = true;
                    if let Err(e) = self.check_trailing() {
                        self.pending = Some(e);
                    }
                    break;
                }
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.pending = Some(read_error(e));
                    break;
                }
            }
        }
        if let Some(hasher) = &mut self.diff_id {
            hasher.update(&buf[..len]);
        }
        match (len, self.pending.take()) {
            (0, Some(e)) => Step::Failed(e),
            (0, None) => Step::End,
            (len, pending) => {
                self.pending = pending;
                Step::Data(len)
            }
        }
    }

    /// The compressed stream ended: so must the file.
    fn check_trailing(&mut self) -> Result<()> {
        let file = self.decoder.file();
        let left = file.fill_buf().map_err(read_error)?.len();
        if left > 0 {
            return Err(Error::layer(
                Reason::BadLayer,
                format!(
                    "layer {}: bytes follow the end of its compressed stream, at offset {}",
                    file.name,
                    file.len - (file.filled - file.pos) as u64
                ),
            ));
        }
        Ok(())
    }

    /// The decoding thread: chunks into `full` until the end, a failure,
    /// a cancel or a consumer that stopped listening.
    /// `hash` is the diff_id's own thread's queue, when it has one.
    fn run(
        mut self,
        full: SyncSender<Message>,
        empty: Receiver<Arc<Vec<u8>>>,
        hash: Option<SyncSender<Shared>>,
    ) -> Result<Produced> {
        let mut failure = None;
        let mut stopped = false;
        loop {
            if is_cancelled(self.cancel) {
                return Err(Error::cancelled());
            }
            let mut data = free_buffer(&empty);
            let message = match self.fill(&mut data) {
                Step::Data(len) => {
                    let read = self.read_so_far();
                    let data = Arc::new(data);
                    if let Some(hash) = &hash {
                        if hash.send((Arc::clone(&data), len)).is_err() {
                            // Cancelled, or it panicked: its join says.
                            stopped = true;
                            break;
                        }
                    }
                    Message::Data(Chunk { data, len, read })
                }
                Step::End => Message::End,
                Step::Failed(e) => {
                    failure = Some(e.clone());
                    Message::Failed(e)
                }
            };
            let last = !matches!(message, Message::Data(_));
            if full.send(message).is_err() {
                stopped = true;
                break;
            }
            if last {
                break;
            }
        }
        drop(full);
        drop(hash);
        self.finish_after(stopped || failure.is_some())
            .map(|produced| Produced {
                failure,
                ..produced
            })
    }

    /// The digest of the whole file: when decompression stopped early, the
    /// rest is hashed raw, so a damaged blob is named as such.
    fn finish_after(mut self, stopped_early: bool) -> Result<Produced> {
        if stopped_early {
            self.decoder.file().drain(self.cancel)?;
        }
        let failure = self.pending.take();
        let diff_id = self.diff_id.take().map(Hasher::finish);
        let (digest, len) = self.decoder.into_file().finish();
        Ok(Produced {
            digest,
            len,
            diff_id,
            failure,
        })
    }
}

/// A buffer handed back that no other thread holds any more, or a new one:
/// a chunk goes back once from each thread that read it, and only the
/// last is free.
fn free_buffer(empty: &Receiver<Arc<Vec<u8>>>) -> Vec<u8> {
    while let Ok(shared) = empty.try_recv() {
        if let Ok(data) = Arc::try_unwrap(shared) {
            return data;
        }
    }
    vec![0; CHUNK]
}

enum Source<'a> {
    Queue {
        full: Receiver<Message>,
        empty: Sender<Arc<Vec<u8>>>,
    },
    Inline {
        producer: Box<Producer<'a>>,
        buffer: Vec<u8>,
    },
}

enum State {
    Open,
    Ended,
    Failed(Error),
}

/// The consuming side: the uncompressed bytes as a `Read`.
struct Chunks<'a> {
    source: Source<'a>,
    current: Option<Chunk>,
    pos: usize,
    diff_id: Option<Hasher>,
    cancel: Option<&'a Cancel>,
    read: &'a (dyn Fn(u64) + Sync),
    state: State,
    /// The decoder's failure, once handed out.
    failure: Option<Error>,
}

impl<'a> Chunks<'a> {
    fn new(
        source: Source<'a>,
        diff_id: Option<Hasher>,
        cancel: Option<&'a Cancel>,
        read: &'a (dyn Fn(u64) + Sync),
    ) -> Chunks<'a> {
        Chunks {
            source,
            current: None,
            pos: 0,
            diff_id,
            cancel,
            read,
            state: State::Open,
            failure: None,
        }
    }

    /// Moves to the next chunk; false at the end of the stream.
    fn next_chunk(&mut self) -> Result<bool> {
        if let Some(done) = self.current.take() {
            match &mut self.source {
                // A closed queue: the producer is done with buffers.
                Source::Queue { empty, .. } => drop(empty.send(done.data)),
                Source::Inline { buffer, .. } => {
                    *buffer = Arc::try_unwrap(done.data).unwrap_or_else(|_| vec![0; CHUNK]);
                }
            }
        }
        match &self.state {
            State::Open => {}
            State::Ended => return Ok(false),
            State::Failed(e) => return Err(e.clone()),
        }
        if is_cancelled(self.cancel) {
            return Err(Error::cancelled());
        }
        let message = match &mut self.source {
            Source::Queue { full, .. } => full.recv().unwrap_or_else(|_| {
                // The producer ended without a word: cancelled, or failed
                // in a way its result tells.
                Message::Failed(if is_cancelled(self.cancel) {
                    Error::cancelled()
                } else {
                    Error::internal(Reason::Runtime, "the layer reader stopped")
                })
            }),
            Source::Inline { producer, buffer } => match producer.fill(buffer) {
                Step::Data(len) => Message::Data(Chunk {
                    data: Arc::new(std::mem::take(buffer)),
                    len,
                    read: producer.read_so_far(),
                }),
                Step::End => Message::End,
                Step::Failed(e) => {
                    producer.pending = Some(e.clone());
                    Message::Failed(e)
                }
            },
        };
        match message {
            Message::Data(chunk) => {
                if let Some(hasher) = &mut self.diff_id {
                    hasher.update(&chunk.data[..chunk.len]);
                }
                (self.read)(chunk.read);
                self.current = Some(chunk);
                self.pos = 0;
                Ok(true)
            }
            Message::End => {
                self.state = State::Ended;
                Ok(false)
            }
            Message::Failed(e) => {
                self.failure = Some(e.clone());
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    fn seen(&mut self) -> Seen {
        Seen {
            diff_id: self.diff_id.take().map(Hasher::finish),
            failure: self.failure.take(),
        }
    }

    fn finish(mut self) -> Seen {
        self.seen()
    }

    fn finish_inline(mut self) -> Option<(Producer<'a>, Seen)> {
        let seen = self.seen();
        match self.source {
            Source::Inline { producer, .. } => Some((*producer, seen)),
            Source::Queue { .. } => None,
        }
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = &self.current {
                if self.pos < chunk.len {
                    let n = (chunk.len - self.pos).min(buf.len());
                    buf[..n].copy_from_slice(&chunk.data[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            if buf.is_empty() {
                return Ok(0);
            }
            match self.next_chunk() {
                Ok(true) => continue,
                Ok(false) => return Ok(0),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::digest::Algorithm;
    use crate::stevedore::unpack::tar_stream::TarStream;
    use std::io::{Seek, Write};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    const PLANS: [Plan; 5] = [
        Plan::CHOSEN,
        Plan {
            pipelined: true,
            diff_id: Side::Own,
        },
        Plan {
            pipelined: true,
            diff_id: Side::Decoder,
        },
        Plan {
            pipelined: true,
            diff_id: Side::Consumer,
        },
        Plan {
            pipelined: false,
            diff_id: Side::Decoder,
        },
    ];

    /// A tar of a few files, over several chunks, with a little entropy so
    /// that compression leaves something to corrupt.
    fn tar_bytes() -> Vec<u8> {
        static TAR: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        TAR.get_or_init(make_tar).clone()
    }

    fn make_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut seed = 7u64;
        for (i, size) in [0usize, 1, 300_000, 400_000, 12_345]
            .into_iter()
            .enumerate()
        {
            let data: Vec<u8> = (0..size)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    b"abcdefgh"[(seed >> 61) as usize]
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("file{i}"), &data[..])
                .unwrap();
        }
        b.into_inner().unwrap()
    }

    /// The test tar compressed, made once per kind.
    fn compressed(compression: Compression) -> Vec<u8> {
        use std::sync::OnceLock;
        static MADE: [OnceLock<Vec<u8>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let slot = match compression {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Zstd => 2,
        };
        MADE[slot]
            .get_or_init(|| compress(&tar_bytes(), compression))
            .clone()
    }

    fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
        match compression {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(tar).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
        }
    }

    struct Blob {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        digest: Digest,
        diff_id: Digest,
        size: u64,
        compression: Compression,
    }

    impl Blob {
        /// `bytes` on disk, with the digest and size of `described` (the
        /// blob the manifest meant) and the diff_id of `tar`.
        fn new(bytes: &[u8], described: &[u8], tar: &[u8], compression: Compression) -> Blob {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("blob");
            std::fs::write(&path, bytes).unwrap();
            Blob {
                _dir: dir,
                path,
                digest: Digest::of(Algorithm::Sha256, described),
                diff_id: Digest::of(Algorithm::Sha256, tar),
                size: described.len() as u64,
                compression,
            }
        }

        fn good(compression: Compression) -> Blob {
            let tar = tar_bytes();
            let bytes = compressed(compression);
            Blob::new(&bytes, &bytes, &tar, compression)
        }

        fn layer(&self) -> Layer<'_> {
            Layer {
                digest: &self.digest,
                size: self.size,
                diff_id: &self.diff_id,
                media_type: "test",
                compression: self.compression,
            }
        }

        fn read<T>(
            &self,
            plan: Plan,
            cancel: Option<&Cancel>,
            consume: impl FnOnce(&mut dyn Read) -> Result<T>,
        ) -> Result<T> {
            let file = File::open(&self.path).unwrap();
            read_layer_as(plan, file, &self.layer(), cancel, &|_| {}, consume)
        }
    }

    /// Every entry's name and body length, read through `TarStream`.
    fn list(r: &mut dyn Read) -> Result<Vec<(Vec<u8>, usize)>> {
        let mut tar = TarStream::new(r);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Some(entry) = tar.next_entry()? {
            let mut len = 0;
            loop {
                let n = tar.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                len += n;
            }
            out.push((entry.path, len));
        }
        Ok(out)
    }

    fn expect(e: Error, kind: ErrorKind, why: Reason) -> String {
        assert_eq!((e.kind, e.reason), (kind, why), "{e}");
        e.message
    }

    const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    #[test]
    fn good_layers_verify_and_report_progress() {
        for compression in ALL {
            for plan in PLANS {
                let blob = Blob::good(compression);
                let calls = AtomicUsize::new(0);
                let last = AtomicU64::new(0);
                let progress = |n: u64| {
                    assert!(n >= last.swap(n, Ordering::SeqCst));
                    calls.fetch_add(1, Ordering::SeqCst);
                };
                let file = File::open(&blob.path).unwrap();
                let listed = read_layer_as(plan, file, &blob.layer(), None, &progress, list)
                    .unwrap_or_else(|e| panic!("{compression:?} {plan:?}: {e}"));
                let sizes: Vec<usize> = listed.iter().map(|(_, n)| *n).collect();
                assert_eq!(sizes, vec![0, 1, 300_000, 400_000, 12_345]);
                assert_eq!(last.load(Ordering::SeqCst), blob.size);
                // At most once per chunk, and a final count.
                let chunks = tar_bytes().len().div_ceil(CHUNK) + 2;
                assert!(calls.load(Ordering::SeqCst) <= chunks, "{calls:?}");
            }
        }
    }

    #[test]
    fn bytes_consume_left_unread_are_hashed() {
        for compression in ALL {
            for plan in PLANS {
                let blob = Blob::good(compression);
                let first = blob.read(plan, None, |r| {
                    let mut buf = [0u8; 10];
                    r.read_exact(&mut buf).map_err(read_error)?;
                    Ok(buf)
                });
                assert_eq!(&first.unwrap()[..5], b"file0");
                assert_eq!(blob.read(plan, None, |_| Ok(())), Ok(()));
                // The stopped consumer's bytes count toward the diff_id.
                let mut wrong = Blob::good(compression);
                wrong.diff_id = Digest::of(Algorithm::Sha256, b"other");
                let e = wrong.read(plan, None, |_| Ok(())).unwrap_err();
                expect(e, ErrorKind::Layer, Reason::DiffIdMismatch);
            }
        }
    }

    #[test]
    fn a_wrong_diff_id_is_named() {
        for compression in ALL {
            for plan in PLANS {
                let mut blob = Blob::good(compression);
                blob.diff_id = Digest::of(Algorithm::Sha256, b"other");
                let e = blob.read(plan, None, list).unwrap_err();
                let message = expect(e, ErrorKind::Layer, Reason::DiffIdMismatch);
                let got = Digest::of(Algorithm::Sha256, &tar_bytes()).to_string();
                for part in [blob.digest.to_string(), blob.diff_id.to_string(), got] {
                    assert!(message.contains(&part), "{message}");
                }
            }
        }
    }

    #[test]
    fn a_damaged_blob_is_a_digest_mismatch_even_when_it_breaks_decompression() {
        for compression in ALL {
            for plan in PLANS {
                let tar = tar_bytes();
                let good = compressed(compression);
                // In the body (plain: a file's bytes; compressed: the stream),
                // in the first header, and cut short.
                for at in [good.len() / 2, 200, 10] {
                    let mut bad = good.clone();
                    bad[at] ^= 0x55;
                    let blob = Blob::new(&bad, &good, &tar, compression);
                    let e = blob.read(plan, None, list).unwrap_err();
                    let message = expect(e, ErrorKind::DigestMismatch, Reason::DigestMismatch);
                    assert!(message.contains(&blob.digest.to_string()), "{message}");
                }
                let blob = Blob::new(&good[..good.len() / 3], &good, &tar, compression);
                let e = blob.read(plan, None, list).unwrap_err();
                expect(e, ErrorKind::DigestMismatch, Reason::DigestMismatch);
                // Even when consume stops first for reasons of its own.
                let mut bad = good.clone();
                let last = bad.len() - 1;
                bad[last] ^= 1;
                let blob = Blob::new(&bad, &good, &tar, compression);
                let e = blob
                    .read(plan, None, |_| -> Result<()> {
                        Err(Error::layer(Reason::UnsafePath, "x"))
                    })
                    .unwrap_err();
                expect(e, ErrorKind::DigestMismatch, Reason::DigestMismatch);
                // That same stop, on a sound blob, is consume's error.
                let blob = Blob::good(compression);
                let e = blob
                    .read(plan, None, |_| -> Result<()> {
                        Err(Error::layer(Reason::UnsafePath, "x"))
                    })
                    .unwrap_err();
                expect(e, ErrorKind::Layer, Reason::UnsafePath);
            }
        }
    }

    #[test]
    fn bytes_that_are_not_what_the_media_type_says_are_bad_layer() {
        let tar = tar_bytes();
        for plan in PLANS {
            for (bytes, compression) in [
                (tar.clone(), Compression::Gzip),
                (tar.clone(), Compression::Zstd),
                (compressed(Compression::Gzip), Compression::None),
                (compressed(Compression::Zstd), Compression::Gzip),
            ] {
                // The blob is what its digest says; its contents are wrong.
                let blob = Blob::new(&bytes, &bytes, &tar, compression);
                let e = blob.read(plan, None, list).unwrap_err();
                expect(e, ErrorKind::Layer, Reason::BadLayer);
            }
            // A corrupt deflate stream in a blob that matches its digest:
            // the decoder's words, not the tar reader's.
            let mut bytes = compressed(Compression::Gzip);
            let middle = bytes.len() / 2;
            bytes[middle..middle + 64].fill(0xff);
            let blob = Blob::new(&bytes, &bytes, &tar, Compression::Gzip);
            let e = blob.read(plan, None, list).unwrap_err();
            let message = expect(e, ErrorKind::Layer, Reason::BadLayer);
            assert!(message.contains("media type"), "{message}");
        }
    }

    #[test]
    fn trailing_bytes_after_the_compressed_stream_are_bad_layer() {
        let tar = tar_bytes();
        for compression in [Compression::Gzip, Compression::Zstd] {
            for plan in PLANS {
                for tail in [&b"garbage"[..], &[0u8; 1024][..], &[0u8][..]] {
                    let mut bytes = compressed(compression);
                    bytes.extend_from_slice(tail);
                    let blob = Blob::new(&bytes, &bytes, &tar, compression);
                    let e = blob.read(plan, None, list).unwrap_err();
                    expect(e, ErrorKind::Layer, Reason::BadLayer);
                    // Also when consume stopped before the end.
                    let e = blob.read(plan, None, |_| Ok(())).unwrap_err();
                    expect(e, ErrorKind::Layer, Reason::BadLayer);
                }
            }
        }
        // Two gzip members, or two zstd frames, are one stream.
        for compression in [Compression::Gzip, Compression::Zstd] {
            let (a, b) = tar.split_at(100_000);
            let mut bytes = compress(a, compression);
            bytes.extend_from_slice(&compress(b, compression));
            let blob = Blob::new(&bytes, &bytes, &tar, compression);
            assert_eq!(blob.read(Plan::CHOSEN, None, list).unwrap().len(), 5);
        }
    }

    #[test]
    fn a_truncated_stream_is_bad_layer() {
        let tar = tar_bytes();
        for compression in ALL {
            for plan in PLANS {
                let bytes = compressed(compression);
                for cut in [bytes.len() / 2, bytes.len() - 1, 5] {
                    let short = &bytes[..cut];
                    let blob = Blob::new(short, short, &tar, compression);
                    let e = blob.read(plan, None, list).unwrap_err();
                    let message = expect(e, ErrorKind::Layer, Reason::BadLayer);
                    if compression == Compression::None || cut > 5 {
                        assert!(message.contains("truncated"), "{message}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_size_unlike_the_descriptor_is_bad_layer() {
        for plan in PLANS {
            let mut blob = Blob::good(Compression::Gzip);
            blob.size += 1;
            let e = blob.read(plan, None, list).unwrap_err();
            expect(e, ErrorKind::Layer, Reason::BadLayer);
        }
    }

    #[test]
    fn a_file_that_cannot_be_read_is_io() {
        // A directory opens but does not read.
        let dir = tempfile::tempdir().unwrap();
        let blob = Blob::good(Compression::Gzip);
        for plan in PLANS {
            let file = File::open(dir.path()).unwrap();
            let e = read_layer_as(plan, file, &blob.layer(), None, &|_| {}, list).unwrap_err();
            expect(e, ErrorKind::Io, Reason::Io);
        }
    }

    #[test]
    fn a_cancel_before_the_call_reads_nothing() {
        let blob = Blob::good(Compression::Zstd);
        let cancel = Cancel::new();
        cancel.cancel();
        for plan in PLANS {
            let mut called = false;
            let e = blob
                .read(plan, Some(&cancel), |_| {
                    called = true;
                    Ok(())
                })
                .unwrap_err();
            assert_eq!(e, Error::cancelled());
            assert!(!called);
        }
    }

    #[test]
    fn a_cancel_mid_stream_ends_the_call_and_the_reading() {
        // Large enough that reading it all would show.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut tar = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar);
            // Compressible about 2:1, so each kind reads a real file.
            let mut seed = 1u64;
            let data: Vec<u8> = (0..8 << 20)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (seed >> 60) as u8
                })
                .collect();
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            b.append_data(&mut h, "big", &data[..]).unwrap();
            b.finish().unwrap();
        }
        let diff_id = Digest::of(Algorithm::Sha256, &tar);
        for compression in ALL {
            // Stored deflate blocks: a debug build's deflate is slow.
            let bytes = match compression {
                Compression::Gzip => {
                    let level = flate2::Compression::none();
                    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                    e.write_all(&tar).unwrap();
                    e.finish().unwrap()
                }
                _ => compress(&tar, compression),
            };
            std::fs::write(&path, &bytes).unwrap();
            let digest = Digest::of(Algorithm::Sha256, &bytes);
            let layer = Layer {
                digest: &digest,
                size: bytes.len() as u64,
                diff_id: &diff_id,
                media_type: "test",
                compression,
            };
            for plan in PLANS {
                let cancel = Cancel::new();
                let mut file = File::open(&path).unwrap();
                let watch = file.try_clone().unwrap();
                // Cancelled by the consumer's side after its first bytes,
                // then read on as if nothing happened.
                let cancelled_at = std::cell::Cell::new(None);
                let e = read_layer_as(plan, file, &layer, Some(&cancel), &|_| {}, |r| {
                    let mut buf = [0u8; 4096];
                    r.read_exact(&mut buf).map_err(read_error)?;
                    cancel.cancel();
                    cancelled_at.set(Some(Instant::now()));
                    io::copy(r, &mut io::sink()).map_err(read_error)?;
                    Ok(())
                })
                .unwrap_err();
                assert_eq!(e, Error::cancelled(), "{compression:?} {plan:?}");
                let since = cancelled_at.get().map(|at| at.elapsed());
                assert!(since < Some(Duration::from_millis(500)), "{since:?}");
                // The file was left well before its end.
                let at = { watch }.stream_position().unwrap();
                assert!(at < bytes.len() as u64 / 2, "{compression:?} {plan:?} {at}");
                file = File::open(&path).unwrap();
                // Cancelled from another thread while consume waits on it.
                let cancel = Cancel::new();
                let e = thread::scope(|s| {
                    let (tx, rx) = mpsc::channel();
                    let cancel = &cancel;
                    s.spawn(move || {
                        rx.recv().unwrap();
                        cancel.cancel();
                    });
                    read_layer_as(plan, file, &layer, Some(cancel), &|_| {}, |r| {
                        let mut buf = [0u8; 4096];
                        r.read_exact(&mut buf).map_err(read_error)?;
                        tx.send(()).unwrap();
                        while !cancel.is_cancelled() {
                            thread::yield_now();
                        }
                        io::copy(r, &mut io::sink()).map_err(read_error)?;
                        Ok(())
                    })
                })
                .unwrap_err();
                assert_eq!(e, Error::cancelled());
            }
        }
    }

    #[test]
    fn a_buffer_is_refilled_only_once_every_thread_handed_it_back() {
        let (empty_tx, empty_rx) = mpsc::channel();
        let mut shared = Arc::new(vec![7u8; CHUNK]);
        let marker = shared.as_ptr();
        // The consumer is done with it; the diff_id's thread still reads.
        let held = Arc::clone(&shared);
        empty_tx.send(shared).unwrap();
        let fresh = free_buffer(&empty_rx);
        assert_ne!(
            fresh.as_ptr(),
            marker,
            "a buffer still being hashed was refilled"
        );
        assert_eq!(*held, vec![7u8; CHUNK]);
        // Now the hasher is done too: the same buffer comes back.
        empty_tx.send(held).unwrap();
        shared = Arc::new(free_buffer(&empty_rx));
        assert_eq!(shared.as_ptr(), marker);
    }

    #[test]
    fn a_cancel_is_seen_while_the_decoder_reads_input_that_makes_no_output() {
        // Empty gzip members and zstd frames decompress to nothing: one
        // decoder read goes through all of them, and a layer of nothing
        // else kept a cancel waiting for the whole file.
        for compression in [Compression::Gzip, Compression::Zstd] {
            let empty = compress(b"", compression);
            let mut bytes = empty.repeat((8 << 20) / empty.len());
            bytes.extend_from_slice(&compressed(compression));
            let blob = Blob::new(&bytes, &bytes, &tar_bytes(), compression);
            let layer = blob.layer();
            let cancel = Cancel::new();
            cancel.cancel();
            let file = File::open(&blob.path).unwrap();
            let mut producer = Producer::new(file, &layer, Some(&cancel), None).unwrap();
            let mut buf = vec![0; CHUNK];
            match producer.fill(&mut buf) {
                Step::Failed(e) => assert_eq!(e.reason, Reason::Cancelled, "{e}"),
                Step::Data(n) => panic!("{compression:?}: {n} bytes made after the cancel"),
                Step::End => panic!("{compression:?}: the end, after the cancel"),
            }
            let read = producer.read_so_far();
            assert!(
                read <= 2 * READ_BUFFER as u64,
                "{compression:?}: {read} bytes read after the cancel"
            );
        }
    }

    #[test]
    fn a_zstd_frame_asking_a_window_over_128_mib_is_bad_layer() {
        let tar = tar_bytes();
        let mut e = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        e.window_log(28).unwrap();
        e.long_distance_matching(true).unwrap();
        e.write_all(&tar).unwrap();
        let bytes = e.finish().unwrap();
        let blob = Blob::new(&bytes, &bytes, &tar, Compression::Zstd);
        let message = expect(
            blob.read(Plan::CHOSEN, None, list).unwrap_err(),
            ErrorKind::Layer,
            Reason::BadLayer,
        );
        assert!(message.contains("memory"), "{message}");
    }

    #[test]
    fn no_input_panics() {
        let tar = tar_bytes();
        let mut seed = 99u64;
        let mut random = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect()
        };
        for compression in ALL {
            let good = compress(&tar[..20_000], compression);
            for round in 0..30 {
                let mut bytes = match round % 3 {
                    0 => random(round * 37),
                    1 => good[..good.len() * round / 30].to_vec(),
                    _ => good.clone(),
                };
                if round % 3 == 2 {
                    let noise = random(4);
                    let at = usize::from(noise[0]) * 61 % bytes.len();
                    bytes[at] = noise[1];
                }
                let blob = Blob::new(&bytes, &bytes, &tar, compression);
                for plan in PLANS {
                    let _ = blob.read(plan, None, list);
                }
            }
        }
    }
}

/// Throughput of the decompressors and of `read_layer` under each plan, on
/// the layers the caller made in `$TANK_BENCH_DIR` (`layer.tar`,
/// `layer.tar.gz`, `layer.tar.zst`). Run by hand, in release:
/// `TANK_BENCH_DIR=/dev/shm/x cargo test --release --lib stream::bench -- --ignored --nocapture`.
#[cfg(test)]
mod bench {
    use super::*;
    use crate::stevedore::digest::Algorithm;
    use crate::stevedore::unpack::tar_stream::TarStream;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    /// Seconds of CPU this process used so far, every thread counted.
    fn cpu() -> f64 {
        // SAFETY: getrusage writes the struct it is given.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    /// The fastest of `runs` (wall seconds) and its CPU seconds: the
    /// machine is shared, so wall time alone says little.
    fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> ((f64, f64), T) {
        let mut best = (f64::MAX, 0.0);
        let mut last = None;
        for _ in 0..runs {
            let started = Instant::now();
            let cpu_before = cpu();
            last = Some(f());
            let wall = started.elapsed().as_secs_f64();
            if wall < best.0 {
                best = (wall, cpu() - cpu_before);
            }
        }
        (best, last.expect("one run"))
    }

    fn hash_file(path: &Path) -> Digest {
        let mut hasher = Hasher::new(Algorithm::Sha256);
        let mut file = File::open(path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        hasher.finish()
    }

    /// Tar parsing, every body written to /dev/null: the applier's reads
    /// and a write syscall per body chunk, without a filesystem's cost.
    fn parse(r: &mut dyn Read) -> Result<u64> {
        let mut null = File::create("/dev/null").unwrap();
        let mut tar = TarStream::new(r);
        let mut buf = vec![0u8; 256 << 10];
        let mut entries = 0;
        while tar.next_entry()?.is_some() {
            entries += 1;
            loop {
                let n = tar.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                null.write_all(&buf[..n]).unwrap();
            }
        }
        Ok(entries)
    }

    /// Tar parsing, every regular file written under `dir` (flat names):
    /// closer to the applier's cost.
    fn parse_to_files(r: &mut dyn Read, dir: &Path) -> Result<u64> {
        std::fs::create_dir_all(dir).unwrap();
        let mut tar = TarStream::new(r);
        let mut buf = vec![0u8; 256 << 10];
        let mut entries = 0;
        while let Some(entry) = tar.next_entry()? {
            entries += 1;
            if entry.kind != crate::stevedore::unpack::tar_stream::Kind::File {
                continue;
            }
            let mut out = File::create(dir.join(entries.to_string())).unwrap();
            loop {
                let n = tar.read_data(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n]).unwrap();
            }
        }
        Ok(entries)
    }

    #[test]
    #[ignore]
    fn bench() {
        let dir = PathBuf::from(std::env::var("TANK_BENCH_DIR").expect("TANK_BENCH_DIR"));
        let tar = dir.join("layer.tar");
        let mib = std::fs::metadata(&tar).unwrap().len() as f64 / (1 << 20) as f64;
        let report = |what: &str, (wall, cpu): (f64, f64)| {
            println!(
                "{what:<58} {wall:>7.3} s wall {cpu:>7.3} s cpu {:>6.0} MiB/s",
                mib / wall
            );
        };
        let (secs, _) = best_of(3, || hash_file(&tar));
        report("sha256 of the tar (sha2)", secs);
        let diff_id = hash_file(&tar);
        let (secs, _) = best_of(3, || parse(&mut File::open(&tar).unwrap()).unwrap());
        report("tar parse + bodies to /dev/null, from the .tar file", secs);
        if let Ok(out) = std::env::var("TANK_BENCH_OUT").map(PathBuf::from) {
            let mut run = 0;
            let (secs, _) = best_of(3, || {
                run += 1;
                parse_to_files(&mut File::open(&tar).unwrap(), &out.join(run.to_string())).unwrap()
            });
            std::fs::remove_dir_all(&out).unwrap();
            report("tar parse + files written, from the .tar file", secs);
        }
        for (name, compression) in [
            ("layer.tar.gz", Compression::Gzip),
            ("layer.tar.zst", Compression::Zstd),
            ("layer.tar", Compression::None),
        ] {
            let path = dir.join(name);
            let (secs, _) = best_of(3, || {
                let file = io::BufReader::with_capacity(READ_BUFFER, File::open(&path).unwrap());
                let mut sink = io::sink();
                match compression {
                    Compression::Gzip => {
                        io::copy(&mut flate2::bufread::MultiGzDecoder::new(file), &mut sink)
                    }
                    Compression::Zstd => io::copy(
                        &mut zstd::stream::read::Decoder::with_buffer(file).unwrap(),
                        &mut sink,
                    ),
                    Compression::None => io::copy(&mut { file }, &mut sink),
                }
                .unwrap()
            });
            report(&format!("{name}: decompression alone (crate)"), secs);
            let digest = hash_file(&path);
            let layer = Layer {
                digest: &digest,
                size: std::fs::metadata(&path).unwrap().len(),
                diff_id: &diff_id,
                media_type: "bench",
                compression,
            };
            for (label, plan) in [
                (
                    "pipelined, diff_id on its own thread",
                    Plan {
                        pipelined: true,
                        diff_id: Side::Own,
                    },
                ),
                (
                    "pipelined, diff_id beside consume",
                    Plan {
                        pipelined: true,
                        diff_id: Side::Consumer,
                    },
                ),
                (
                    "pipelined, diff_id beside decompression",
                    Plan {
                        pipelined: true,
                        diff_id: Side::Decoder,
                    },
                ),
                (
                    "one thread",
                    Plan {
                        pipelined: false,
                        diff_id: Side::Decoder,
                    },
                ),
            ] {
                let (secs, n) = best_of(3, || {
                    let file = File::open(&path).unwrap();
                    read_layer_as(plan, file, &layer, None, &|_| {}, parse).unwrap()
                });
                assert!(n > 0);
                report(&format!("{name}: read_layer, {label}"), secs);
                let out = std::env::var("TANK_BENCH_OUT").map(PathBuf::from);
                let Ok(out) = out else { continue };
                let mut run = 0;
                let (secs, _) = best_of(3, || {
                    run += 1;
                    let file = File::open(&path).unwrap();
                    let dir = out.join(run.to_string());
                    read_layer_as(plan, file, &layer, None, &|_| {}, |r| {
                        parse_to_files(r, &dir)
                    })
                    .unwrap()
                });
                std::fs::remove_dir_all(&out).unwrap();
                report(&format!("{name}: read_layer + files, {label}"), secs);
            }
        }
    }
}
