//! A blob streamed to a file: written to `<path>.partial` and hashed as it
//! arrives (a blocking thread does both, so memory stays flat for any
//! size), then flushed and renamed into place. What a failed call leaves in
//! the partial file, the next call resumes with a `Range` request.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_RANGE, RANGE};
use http::StatusCode;
use tokio::sync::mpsc;
use url::Url;

use super::auth::authorized_get;
use super::cancel::Cancel;
use super::digest::{Algorithm, Digest, Hasher};
use super::error::{reason, Error, ErrorKind, Result};
use super::lock::PathLock;
use super::progress::{Progress, ProgressFn};
use super::reference::{Registry, Repository};
use super::token_cache::{CacheKey, TokenCache};
use super::transport::{body_excerpt, discard, Body, Transport};

/// Chunks received but not yet written: hyper hands out reads of up to
/// about 400 KiB, so this bounds the queue at a few MiB.
const WRITE_QUEUE: usize = 16;
/// Reads of a file being hashed.
const READ_BLOCK: usize = 1 << 20;
/// Resumptions at once after a drop that came after some bytes: a peer that
/// keeps sending a little and hanging up must not loop forever.
const MAX_IMMEDIATE_RESUMES: u32 = 10;

pub struct Request<'a> {
    pub registry: &'a Registry,
    pub repo: &'a Repository,
    pub digest: &'a Digest,
    pub size: Option<u64>,
    pub path: &'a Path,
    /// Where `.partial` and `.lock` are added for the download's own files;
    /// `None` puts them beside `path`.
    pub work: Option<&'a Path>,
    pub cancel: Option<&'a Cancel>,
    pub progress: Option<ProgressFn>,
}

pub async fn fetch(
    transport: &Transport,
    cache: Option<&TokenCache>,
    req: Request<'_>,
) -> Result<()> {
    let path = req.path.to_path_buf();
    let mut progress = Progress::new(req.progress.clone());
    if path.is_dir() {
        return Err(Error::io(
            "writing the blob to",
            &path,
            &std::io::Error::from_raw_os_error(libc::EISDIR),
        ));
    }
    let verify =
        |cancel: Option<Cancel>| verified_len(path.clone(), req.digest.clone(), req.size, cancel);
    if let Some(len) = verify(req.cancel.cloned()).await? {
        progress.finish(len);
        return Ok(());
    }
    let work = req.work.unwrap_or(req.path);
    let lock = Arc::new(PathLock::acquire(sibling(work, "lock")).await?);
    // Whoever held the lock before may have just finished this very blob.
    if let Some(len) = verify(req.cancel.cloned()).await? {
        progress.finish(len);
        return Ok(());
    }
    let partial_path = sibling(work, "partial");
    let partial = {
        let (p, algorithm, size, cancel) = (
            partial_path.clone(),
            req.digest.algorithm(),
            req.size,
            req.cancel.cloned(),
        );
        blocking(move || Partial::open(p, lock, algorithm, size, cancel.as_ref())).await??
    };
    let mut download = Download {
        transport,
        cache,
        url: req.registry.blob_url(req.repo, req.digest),
        key: CacheKey::pull(req.registry, req.repo.as_str()),
        size: req.size,
        progress,
    };
    let resumed = partial.len > 0;
    let partial = match download.run(partial).await {
        Ok(p) => p,
        Err(e) => {
            // Nothing to resume from is nothing to keep.
            if std::fs::metadata(&partial_path).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(&partial_path);
            }
            return Err(e);
        }
    };
    let (partial, actual) = partial.finish_hash();
    let partial = match actual == *req.digest {
        true => partial,
        // The bytes kept from before may be what is wrong: one more try,
        // from zero, before calling the blob bad.
        false if resumed => {
            let partial = download.run(restarted(partial).await?).await?;
            let (partial, actual) = partial.finish_hash();
            check_digest(&download.url, partial, &actual, req.digest)?
        }
        false => check_digest(&download.url, partial, &actual, req.digest)?,
    };
    let len = partial.len;
    let target = path.clone();
    blocking(move || partial.commit(&target)).await??;
    download.progress.finish(len);
    Ok(())
}

fn check_digest(url: &Url, partial: Partial, actual: &Digest, wanted: &Digest) -> Result<Partial> {
    if actual == wanted {
        return Ok(partial);
    }
    partial.discard();
    Err(Error::new(
        ErrorKind::DigestMismatch,
        reason::DIGEST_MISMATCH,
        format!("GET {url}: blob bytes hash to {actual}"),
    ))
}

/// `<path>.<ext>`, beside `path`.
fn sibling(path: &Path, ext: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(ext);
    path.with_file_name(name)
}

/// The length of the file at `path` when it already holds exactly the
/// blob; `None` when there is none, or something else.
async fn verified_len(
    path: PathBuf,
    digest: Digest,
    size: Option<u64>,
    cancel: Option<Cancel>,
) -> Result<Option<u64>> {
    blocking(move || {
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("opening", &path, &e)),
        };
        let len = file
            .metadata()
            .map_err(|e| Error::io("reading", &path, &e))?
            .len();
        if size.is_some_and(|s| s != len) {
            return Ok(None);
        }
        let mut hasher = Hasher::new(digest.algorithm());
        hash_into(&mut file, &path, &mut hasher, cancel.as_ref())?;
        Ok((hasher.finish() == digest).then_some(len))
    })
    .await?
}

/// Hashes the file's bytes, as many as its length says: a device that
/// reads forever (or a file someone else is growing) is not followed.
fn hash_into(
    file: &mut File,
    path: &Path,
    hasher: &mut Hasher,
    cancel: Option<&Cancel>,
) -> Result<u64> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("reading", path, &e))?
        .len();
    let mut buf = vec![0u8; READ_BLOCK];
    let mut total = 0;
    while total < len {
        if cancel.is_some_and(Cancel::is_cancelled) {
            return Err(Error::cancelled());
        }
        let want = (len - total).min(READ_BLOCK as u64) as usize;
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, &e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok(total)
}

/// Runs blocking file work off the runtime's workers.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(reason::PANIC, format!("a file task failed: {e}")))
}

/// Empties the partial file, off the runtime's workers.
async fn restarted(mut partial: Partial) -> Result<Partial> {
    blocking(move || partial.restart().map(|()| partial)).await?
}

/// `<path>.partial`: the bytes so far, and their hash so far.
struct Partial {
    file: Option<File>,
    path: PathBuf,
    hasher: Hasher,
    algorithm: Algorithm,
    len: u64,
    /// Held as long as the partial exists, wherever it is (the writer
    /// thread, a flush and rename still running after a cancelled call):
    /// no other call touches these files before it is done with them.
    _lock: Arc<PathLock>,
}

impl Partial {
    /// Opens (or creates) the partial file and hashes what it holds, so a
    /// resumed download asks only for the rest. One longer than the blob
    /// can be is emptied.
    fn open(
        path: PathBuf,
        lock: Arc<PathLock>,
        algorithm: Algorithm,
        size: Option<u64>,
        cancel: Option<&Cancel>,
    ) -> Result<Partial> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("creating", &path, &e))?;
        let mut hasher = Hasher::new(algorithm);
        let len = hash_into(&mut file, &path, &mut hasher, cancel)?;
        let mut partial = Partial {
            file: Some(file),
            path,
            hasher,
            algorithm,
            len,
            _lock: lock,
        };
        if size.is_some_and(|s| len > s) {
            partial.restart()?;
        }
        Ok(partial)
    }

    fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("a partial file is open until commit")
    }

    /// Empties the file: the download starts over from byte 0.
    fn restart(&mut self) -> Result<()> {
        let path = self.path.clone();
        let file = self.file();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|e| Error::io("truncating", &path, &e))?;
        self.hasher = Hasher::new(self.algorithm);
        self.len = 0;
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        let path = self.path.clone();
        self.file()
            .write_all(bytes)
            .map_err(|e| Error::io("writing", &path, &e))?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// The hash of everything written; the partial keeps a fresh hasher.
    fn finish_hash(mut self) -> (Partial, Digest) {
        let hasher = std::mem::replace(&mut self.hasher, Hasher::new(self.algorithm));
        (self, hasher.finish())
    }

    /// Flushed, renamed over `target` in one step, and the directory
    /// flushed too: a crash leaves no `target` or all of it.
    fn commit(mut self, target: &Path) -> Result<()> {
        let path = self.path.clone();
        let file = self.file.take().expect("open until commit");
        file.sync_all()
            .map_err(|e| Error::io("flushing", &path, &e))?;
        drop(file);
        std::fs::rename(&path, target)
            .map_err(|e| Error::io("renaming the blob to", target, &e))?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("flushing the directory", dir, &e))
    }

    /// Bytes that are known bad: nothing to resume from.
    fn discard(mut self) {
        self.file.take();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One blob's transfer into its partial file, across as many responses as
/// it takes.
struct Download<'a> {
    transport: &'a Transport,
    cache: Option<&'a TokenCache>,
    url: Url,
    key: CacheKey,
    size: Option<u64>,
    progress: Progress,
}

/// How one response ended.
enum Ended {
    /// The body arrived whole.
    Complete,
    /// The connection failed mid-body; `progressed` says whether any bytes
    /// came first.
    Dropped { error: Error, progressed: bool },
    /// The registry would not serve the range asked for: start over.
    StartOver,
}

impl Download<'_> {
    async fn run(&mut self, mut partial: Partial) -> Result<Partial> {
        let mut stalled = 0;
        let mut resumed_at_once = 0;
        loop {
            // A partial that already holds all the bytes (the call before
            // stopped between the last byte and the rename) needs no
            // request: a range starting at the end would only get a 416.
            if partial.len > 0 && self.size == Some(partial.len) {
                break;
            }
            let (back, ended) = self.one_response(partial).await?;
            partial = back;
            match ended {
                Ended::Complete => break,
                Ended::StartOver => partial = restarted(partial).await?,
                Ended::Dropped { error, progressed } => {
                    if progressed && resumed_at_once < MAX_IMMEDIATE_RESUMES {
                        resumed_at_once += 1;
                        continue;
                    }
                    if stalled >= self.transport.config().max_retries {
                        return Err(error);
                    }
                    tokio::time::sleep(self.transport.backoff(stalled)).await;
                    stalled += 1;
                }
            }
        }
        if let Some(size) = self.size.filter(|&s| s != partial.len) {
            let len = partial.len;
            partial.discard();
            return Err(Error::protocol(
                reason::LENGTH_MISMATCH,
                format!(
                    "GET {}: {len} bytes arrived but the blob's size is {size}",
                    self.url
                ),
            ));
        }
        Ok(partial)
    }

    async fn one_response(&mut self, partial: Partial) -> Result<(Partial, Ended)> {
        let from = partial.len;
        let mut headers = HeaderMap::new();
        if from > 0 {
            headers.insert(RANGE, range_header(from));
        }
        let resp =
            authorized_get(self.transport, self.cache, &self.key, &self.url, &headers).await?;
        let status = resp.status();
        let appending = match status {
            StatusCode::PARTIAL_CONTENT => {
                if content_range_start(resp.headers()) != Some(from) {
                    discard(resp).await;
                    return Ok((partial, Ended::StartOver));
                }
                true
            }
            StatusCode::RANGE_NOT_SATISFIABLE if from > 0 => {
                discard(resp).await;
                return Ok((partial, Ended::StartOver));
            }
            s if s.is_success() => false,
            s => {
                let body = body_excerpt(resp, 4096).await;
                return Err(Error::http(s.as_u16(), self.url.as_str(), body));
            }
        };
        let mut partial = partial;
        if !appending && from > 0 {
            // The registry ignored Range and sends the whole blob.
            partial = restarted(partial).await?;
        }
        let start = partial.len;
        let mut body = Body::new(&self.url, resp).resumable();
        if let Some(size) = self.size {
            let rest = size.saturating_sub(start);
            if let Some(n) = body.content_length().filter(|&n| n != rest) {
                partial.discard();
                return Err(Error::protocol(
                    reason::LENGTH_MISMATCH,
                    format!(
                        "GET {}: Content-Length is {n} but {rest} of the blob's {size} bytes remain",
                        self.url
                    ),
                ));
            }
            body = body.limit(rest, reason::LENGTH_MISMATCH);
        }
        self.progress.set_total(
            self.size
                .or(body.content_length().map(|n| n + start))
                .unwrap_or(0),
        );

        let (chunks, mut queued) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        let writer = tokio::task::spawn_blocking(move || {
            let mut partial = partial;
            while let Some(chunk) = queued.blocking_recv() {
                if let Err(e) = partial.append(&chunk) {
                    return (partial, Err(e));
                }
            }
            (partial, Ok(()))
        });
        let mut done = start;
        let received: Result<()> = async {
            while let Some(chunk) = body.chunk().await? {
                done += chunk.len() as u64;
                if chunks.send(chunk).await.is_err() {
                    break; // the writer failed; its error says why
                }
                self.progress.update(done);
            }
            Ok(())
        }
        .await;
        drop(chunks);
        let (partial, written) = writer
            .await
            .map_err(|e| Error::internal(reason::PANIC, format!("the writer failed: {e}")))?;
        written?;
        match received {
            Ok(()) => Ok((partial, Ended::Complete)),
            Err(e) if e.reason == reason::LENGTH_MISMATCH => {
                partial.discard();
                Err(e)
            }
            Err(error) if is_resumable(&error) => {
                let progressed = partial.len > start;
                Ok((partial, Ended::Dropped { error, progressed }))
            }
            Err(e) => Err(e),
        }
    }
}

fn is_resumable(e: &Error) -> bool {
    matches!(
        e.reason,
        reason::CONNECTION_RESET | reason::TIMEOUT | reason::REQUEST_FAILED
    )
}

fn range_header(from: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes={from}-")).expect("digits are a valid header value")
}

/// The first byte a 206 carries, from `Content-Range: bytes FIRST-LAST/SIZE`.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_and_siblings() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(content_range_start(&h), Some(100));
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes */200"));
        assert_eq!(content_range_start(&h), None);
        assert_eq!(
            sibling(Path::new("/a/sha256/ab"), "partial"),
            Path::new("/a/sha256/ab.partial")
        );
        assert_eq!(range_header(7), "bytes=7-");
    }
}
