//! A blob streamed to a file: written to `<path>.partial` and hashed as it
//! arrives (a blocking thread does both, so memory stays flat for any
//! size), then flushed and renamed into place. What a failed call leaves in
//! the partial file, the next call resumes with a `Range` request.
//!
//! Every request, body read, backoff and lock wait ends when the call's
//! `Cancel` fires, and the writer always finishes what was queued before
//! the call goes on (a retry) or returns: a caller may move, delete or
//! resume the partial file as soon as a call has returned.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_RANGE, RANGE};
use http::StatusCode;
use tokio::sync::mpsc;
use url::Url;

use super::cancel::{cancellable, sleep, Cancel};
use super::digest::{Digest, Hasher};
use super::error::{reason, Endpoint, Error, ErrorKind, Result};
use super::lock::PathLock;
use super::partial::Partial;
use super::progress::{Progress, Sink};
use super::repo::{refused, Repo};
use super::transport::{discard, Body};

/// Chunks received but not yet written: hyper hands out reads of up to
/// about 400 KiB, so this bounds the queue at a few MiB.
const WRITE_QUEUE: usize = 16;
/// Reads of a file being hashed.
const READ_BLOCK: usize = 1 << 20;
/// Resumptions at once after a drop that came after some bytes: a peer that
/// keeps sending a little and hanging up must not loop forever.
const MAX_IMMEDIATE_RESUMES: u32 = 10;
/// Starts from zero after a range was refused or answered from elsewhere:
/// a registry that cannot resume needs one after each cut connection; past
/// two, asking again is a loop, and the call ends as `range_not_honoured`.
const MAX_RESTARTS: u32 = 2;

/// Where and how a blob goes to a file.
pub struct BlobTo<'a> {
    /// The descriptor's size, when known.
    pub size: Option<u64>,
    pub path: &'a Path,
    /// Where `.partial` and `.lock` are added for the download's own files;
    /// `None` puts them beside `path`.
    pub work: Option<&'a Path>,
    pub cancel: Option<&'a Cancel>,
    pub progress: Option<Sink>,
}

impl Repo<'_> {
    /// The blob `digest` into the file `to.path`: streamed through
    /// `<path>.partial` (resumed from what an earlier call left there),
    /// verified, flushed and renamed into place; nothing is fetched when
    /// `path` already holds the blob. `cancel` ends every wait, and the
    /// call returns only once its writer has stopped.
    pub async fn blob_to(&self, digest: &Digest, to: BlobTo<'_>) -> Result<()> {
        fetch(self, digest, to).await
    }
}

async fn fetch(repo: &Repo<'_>, digest: &Digest, req: BlobTo<'_>) -> Result<()> {
    // A switch nobody triggers stands in for none: every wait below ends
    // on it, and no future of this call is dropped half-way, so when the
    // call returns, its writer and its file work have ended too.
    let cancel = req.cancel.cloned().unwrap_or_default();
    if cancel.is_cancelled() {
        return Err(Error::cancelled());
    }
    let path = req.path.to_path_buf();
    let mut progress = Progress::new(req.progress.clone());
    if path.is_dir() {
        return Err(Error::io(
            "writing the blob to",
            &path,
            &std::io::Error::from_raw_os_error(libc::EISDIR),
        ));
    }
    let verify = || verified_len(path.clone(), digest.clone(), req.size, cancel.clone());
    if let Some(len) = verify().await? {
        progress.finish(len);
        return Ok(());
    }
    let work = req.work.unwrap_or(req.path);
    let lock = Arc::new(PathLock::acquire(sibling(work, "lock"), Some(&cancel)).await?);
    // Whoever held the lock before may have just finished this very blob.
    if let Some(len) = verify().await? {
        progress.finish(len);
        return Ok(());
    }
    let partial = {
        let (p, algorithm, size, cancel) = (
            sibling(work, "partial"),
            digest.algorithm(),
            req.size,
            cancel.clone(),
        );
        blocking(move || Partial::open(p, lock, algorithm, size, &cancel)).await??
    };
    let mut download = Download {
        repo,
        url: repo.blob_url(digest),
        size: req.size,
        progress,
        cancel,
        budget: Budget::new(repo.transport().config().max_retries),
    };
    let resumed = partial.len > 0;
    let partial = download.run(partial).await?;
    let (partial, actual) = partial.finish_hash();
    let partial = match actual == *digest {
        true => partial,
        // The bytes kept from before may be what is wrong: one more try,
        // from zero, before calling the blob bad.
        false if resumed => {
            let partial = download.run(restarted(partial).await?).await?;
            let (partial, actual) = partial.finish_hash();
            check_digest(&download.url, partial, &actual, digest)?
        }
        false => check_digest(&download.url, partial, &actual, digest)?,
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
    cancel: Cancel,
) -> Result<Option<u64>> {
    blocking(move || {
        // Non-blocking: a FIFO at `path` must not hold the call until
        // someone writes to it.
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path);
        let mut file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("opening", &path, &e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::io("reading", &path, &e))?;
        if !meta.is_file() || size.is_some_and(|s| s != meta.len()) {
            return Ok(None);
        }
        let len = meta.len();
        let mut hasher = Hasher::new(digest.algorithm());
        hash_into(&mut file, &path, &mut hasher, Some(&cancel))?;
        Ok((hasher.finish() == digest).then_some(len))
    })
    .await?
}

/// Hashes the file's bytes, as many as its length says: a device that
/// reads forever (or a file someone else is growing) is not followed.
pub(super) fn hash_into(
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

/// What one call may spend on one blob: every way of asking again counts
/// against a limit of its own, so no server can keep a call busy forever.
struct Budget {
    /// Resumptions at once after a drop that came after some bytes.
    resumes: u32,
    /// Tries again, after a backoff, after a drop that brought nothing.
    retries: u32,
    /// Starts from zero because a range was refused (416) or answered
    /// from elsewhere.
    restarts: u32,
    /// Retries spent, for the backoff's length.
    retried: u32,
}

impl Budget {
    fn new(retries: u32) -> Budget {
        Budget {
            resumes: MAX_IMMEDIATE_RESUMES,
            retries,
            restarts: MAX_RESTARTS,
            retried: 0,
        }
    }
}

/// One blob's transfer into its partial file, across as many responses as
/// its [`Budget`] allows.
struct Download<'a> {
    repo: &'a Repo<'a>,
    url: Url,
    size: Option<u64>,
    progress: Progress,
    cancel: Cancel,
    budget: Budget,
}

/// How one response ended.
enum Ended {
    /// The body arrived whole.
    Complete,
    /// The connection failed mid-body; `progressed` says whether any bytes
    /// came first.
    Dropped { error: Error, progressed: bool },
    /// The registry would not serve the range asked for (`why`): start
    /// over from zero.
    StartOver { why: String },
}

impl Download<'_> {
    async fn run(&mut self, mut partial: Partial) -> Result<Partial> {
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
                Ended::StartOver { why } => {
                    if self.budget.restarts == 0 {
                        return Err(range_not_honoured(&self.url, &why));
                    }
                    self.budget.restarts -= 1;
                    partial = restarted(partial).await?;
                }
                Ended::Dropped { error, progressed } => {
                    if progressed && self.budget.resumes > 0 {
                        self.budget.resumes -= 1;
                        continue;
                    }
                    if self.budget.retries == 0 {
                        return Err(error);
                    }
                    self.budget.retries -= 1;
                    let wait = self.repo.transport().backoff(self.budget.retried);
                    self.budget.retried += 1;
                    sleep(Some(&self.cancel), wait).await?;
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
        let cancel = Some(&self.cancel);
        let from = partial.len;
        let mut headers = HeaderMap::new();
        if from > 0 {
            headers.insert(RANGE, range_header(from));
        }
        let resp = cancellable(cancel, self.repo.get(&self.url, &headers)).await?;
        let status = resp.status();
        let appending = match status {
            StatusCode::PARTIAL_CONTENT => {
                let starts = content_range_start(resp.headers());
                if starts != Some(from) {
                    let why = match (from, starts) {
                        (0, _) => "a 206 to a request for the whole blob".to_owned(),
                        (_, Some(s)) => format!("asked for bytes {from}-, got a 206 from {s}"),
                        (_, None) => format!("asked for bytes {from}-, got a 206 without a range"),
                    };
                    // Asking again from zero would get the same answer.
                    if from == 0 {
                        return Err(range_not_honoured(&self.url, &why));
                    }
                    self.discard(resp).await?;
                    return Ok((partial, Ended::StartOver { why }));
                }
                true
            }
            StatusCode::RANGE_NOT_SATISFIABLE if from > 0 => {
                self.discard(resp).await?;
                let why = format!("asked for bytes {from}-, got a 416");
                return Ok((partial, Ended::StartOver { why }));
            }
            s if s.is_success() => false,
            _ => {
                let url = &self.url;
                let refusal = async { Ok(refused(Endpoint::Blob, url, resp).await) };
                return Err(cancellable(cancel, refusal).await?);
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
        let total = match (self.size, body.content_length()) {
            (Some(size), _) => size,
            (None, Some(n)) => match start.checked_add(n) {
                Some(total) => total,
                None => {
                    partial.discard();
                    return Err(Error::protocol(
                        reason::LENGTH_MISMATCH,
                        format!(
                            "GET {}: Content-Length {n} after the {start} bytes kept is more than any file holds",
                            self.url
                        ),
                    ));
                }
            },
            (None, None) => 0,
        };
        self.progress.set_total(total);

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
            while let Some(chunk) = cancellable(cancel, body.chunk()).await? {
                done += chunk.len() as u64;
                let queued = cancellable(cancel, async { Ok(chunks.send(chunk).await.is_ok()) });
                if !queued.await? {
                    break; // the writer failed; its error says why
                }
                self.progress.update(done);
            }
            Ok(())
        }
        .await;
        // Whatever ended the body, the writer finishes what was queued
        // before anything else happens: a retry, a resume by the next
        // call and the caller all see the file as it stays.
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

    /// Reads and drops a small refusal's body, unless cancelled first.
    async fn discard(&self, resp: reqwest::Response) -> Result<()> {
        cancellable(Some(&self.cancel), async {
            discard(resp).await;
            Ok(())
        })
        .await
    }
}

fn range_not_honoured(url: &Url, why: &str) -> Error {
    Error::protocol(
        reason::RANGE_NOT_HONOURED,
        format!("GET {url}: the registry does not honour Range requests ({why})"),
    )
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
