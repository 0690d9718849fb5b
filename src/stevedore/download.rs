//! A blob downloaded, verified and resumable: the network half of
//! `Repo::blob_to`, as containerd's fetcher is apart from its content
//! writer. The bytes go, as they arrive, into a partial the store hands
//! out (a blocking thread writes and hashes them, so memory stays flat for
//! any size); what a failed call leaves there, the next call resumes with
//! a `Range` request. This module knows the protocol (206, 416, budgets,
//! retries), the store ([`super::store`]) knows the files.
//!
//! Every request, body read, backoff and lock wait ends when the call's
//! `Cancel` fires, and the writer always finishes what was queued before
//! the call goes on (a retry) or returns: a caller may move, delete or
//! resume the partial file as soon as a call has returned.

mod connections;
mod plan;
mod ramp;
mod ranged;
#[cfg(test)]
mod ranged_tests;

pub use connections::Connections;
pub use plan::Settings;

use std::path::Path;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_RANGE, RANGE};
use http::StatusCode;
use tokio::sync::mpsc;
use url::Url;

use super::blocking::blocking;
use super::cancel::{cancellable, sleep, Cancel};
use super::digest::Digest;
use super::error::{Endpoint, Error, ErrorKind, Reason, Result};
use super::mirrors::sources::authority_of;
use super::progress::{Progress, Sink};
use super::repo::{refused, Need, Repo, RepoAt};
use super::store::{self, Ingest, Partial};
use super::transport::{discard, Body};
use plan::{content_range_matches, ContentRange};

/// Chunks received but not yet written: hyper hands out reads of up to
/// about 400 KiB, so this bounds the queue at a few MiB.
const WRITE_QUEUE: usize = 16;
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
    /// The pull's budget of connections per host, shared by its blobs;
    /// `None`: one of the call's own, with the session's settings.
    pub connections: Option<&'a Connections>,
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
    let mut progress = Progress::new(req.progress.clone());
    let own;
    let connections = match req.connections {
        Some(shared) => shared,
        None => {
            let settings = repo.session().map(|s| s.download_settings());
            own = Connections::new(settings.unwrap_or_default());
            &own
        }
    };
    let work = req.work.unwrap_or(req.path);
    let partial = match store::ingest(req.path, work, digest, req.size, &cancel).await? {
        Ingest::Present(len) => {
            progress.finish(len);
            return Ok(());
        }
        Ingest::Writing(partial) => partial,
    };
    // Any source's bytes are good once they hash to the digest: what one
    // source sent before it failed is resumed from the next.
    let mut attempts = repo.attempts(Need::Digest);
    let Some(first) = attempts.next_source() else {
        blocking(move || drop(partial)).await?;
        return Err(attempts.exhausted());
    };
    let mut download = Download {
        at: first,
        url: first.blob_url(digest),
        size: req.size,
        progress,
        cancel,
        budget: Budget::new(first.transport().config().max_retries),
        partial: Some(*partial),
        connections,
        unranged: false,
    };
    let verified = loop {
        let e = match download.verified(digest).await {
            Ok(()) => {
                attempts.succeeded(download.at);
                break Ok(());
            }
            Err(e) => e,
        };
        if let Err(e) = attempts.failed(download.at, e) {
            break Err(e);
        }
        let Some(next) = attempts.next_source() else {
            break Err(attempts.exhausted());
        };
        if let Err(e) = download.switch_to(next, digest).await {
            break Err(e);
        }
    };
    // Committed, or let go of (kept for a resume, or removed), on a
    // blocking thread, before the call returns.
    let partial = download.partial.take();
    let target = req.path.to_path_buf();
    let len = blocking(move || match (verified, partial) {
        (Ok(()), Some(partial)) => {
            let len = partial.len();
            partial.commit(&target).map(|()| len)
        }
        (Ok(()), None) => Err(lost()),
        (Err(e), partial) => {
            drop(partial);
            Err(e)
        }
    })
    .await??;
    download.progress.finish(len);
    Ok(())
}

fn lost() -> Error {
    Error::internal(
        Reason::Panic,
        "a download's partial file was lost; this is a bug in tank",
    )
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
    /// The source asked now, and the blob's URL there.
    at: RepoAt<'a>,
    url: Url,
    size: Option<u64>,
    progress: Progress,
    cancel: Cancel,
    budget: Budget,
    /// Where the bytes go; away while the writer holds it, and lost only
    /// when the writer panicked.
    partial: Option<Partial>,
    connections: &'a Connections,
    /// The source answered a request for a range from 0 with a refusal
    /// or a range not asked for: one stream from now on.
    unranged: bool,
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
    /// A range was not honoured (the opening one, of which nothing was
    /// read, or a piece's): one stream from where the bytes stop.
    Unranged,
}

impl<'a> Download<'a> {
    fn partial(&mut self) -> Result<&mut Partial> {
        self.partial.as_mut().ok_or_else(lost)
    }

    /// Asks `at` from now on, with a budget of its own; bytes the last
    /// source sent that were found bad are dropped first.
    async fn switch_to(&mut self, at: RepoAt<'a>, digest: &Digest) -> Result<()> {
        self.url = at.blob_url(digest);
        self.budget = Budget::new(at.transport().config().max_retries);
        self.at = at;
        self.unranged = false;
        if self.partial()?.is_discarded() {
            self.restart().await?;
        }
        Ok(())
    }

    /// The source's `host[:port]`, whose connections the budget counts.
    fn host(&self) -> String {
        authority_of(&self.at.source().api_root)
    }

    /// The whole blob in the partial, hashing to `digest`.
    async fn verified(&mut self, digest: &Digest) -> Result<()> {
        let resumed = self.partial()?.written().done() > 0;
        // This source's first connection, held while it is asked.
        let _place = self.connections.first(&self.host(), &self.cancel).await?;
        self.run().await?;
        let mut actual = self.finish_hash().await?;
        if actual != *digest && resumed {
            // The bytes kept from before may be what is wrong: one more
            // try, from zero, before calling the blob bad.
            self.restart().await?;
            self.run().await?;
            actual = self.finish_hash().await?;
        }
        if actual == *digest {
            return Ok(());
        }
        self.partial()?.discard();
        Err(Error::new(
            ErrorKind::DigestMismatch,
            Reason::DigestMismatch,
            format!("GET {}: blob bytes hash to {actual}", self.url),
        ))
    }

    async fn run(&mut self) -> Result<()> {
        loop {
            // A partial that already holds all the bytes (the call before
            // stopped between the last byte and the rename) needs no
            // request: a range starting at the end would only get a 416.
            let len = self.partial()?.len();
            if len > 0 && self.size == Some(len) {
                break;
            }
            match self.one_response().await? {
                Ended::Complete => break,
                Ended::Unranged => self.unranged = true,
                Ended::StartOver { why } => {
                    if self.budget.restarts == 0 {
                        return Err(range_not_honoured(&self.url, &why));
                    }
                    self.budget.restarts -= 1;
                    self.restart().await?;
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
                    let wait = self.at.transport().backoff(self.budget.retried);
                    self.budget.retried += 1;
                    sleep(Some(&self.cancel), wait).await?;
                }
            }
        }
        let len = self.partial()?.len();
        if let Some(size) = self.size.filter(|&s| s != len) {
            self.partial()?.discard();
            return Err(Error::protocol(
                Reason::LengthMismatch,
                format!(
                    "GET {}: {len} bytes arrived but the blob's size is {size}",
                    self.url
                ),
            ));
        }
        Ok(())
    }

    /// The hash of the whole blob, off the runtime's workers: the bytes
    /// that arrived ahead of the frontier and are not hashed yet are read
    /// back (all of them, when the first piece came last).
    async fn finish_hash(&mut self) -> Result<Digest> {
        let mut partial = self.partial.take().ok_or_else(lost)?;
        let cancel = self.cancel.clone();
        let (partial, hashed) = blocking(move || {
            let hashed = partial.finish_hash(&cancel);
            (partial, hashed)
        })
        .await?;
        self.partial = Some(partial);
        hashed
    }

    /// Empties the partial file, off the runtime's workers.
    async fn restart(&mut self) -> Result<()> {
        let mut partial = self.partial.take().ok_or_else(lost)?;
        let (partial, restarted) = blocking(move || {
            let restarted = partial.restart();
            (partial, restarted)
        })
        .await?;
        self.partial = Some(partial);
        restarted
    }

    /// Whether to open with a range from 0 when nothing is there yet: the
    /// blob may be fetched as ranges, if the server honours them.
    fn may_use_ranges(&self) -> bool {
        let settings = self.connections.settings();
        settings.connections > 1
            && !self.unranged
            && self.size.map_or(true, |s| s >= settings.threshold)
    }

    /// The plan for the blob, when nothing of it is there yet, it goes as
    /// ranges and its size is known: the opening request then asks for
    /// its first piece only, so that its connection serves the next piece
    /// too instead of being dropped with bytes in flight. (A resume asks
    /// for `bytes=N-`, which every server that resumes at all honours; a
    /// 200 to it would cost the bytes kept.)
    fn planned(&self) -> Result<Option<plan::Plan>> {
        let Some(size) = self.size.filter(|_| self.may_use_ranges()) else {
            return Ok(None);
        };
        let partial = self.partial.as_ref().ok_or_else(lost)?;
        if partial.written().done() > 0 {
            return Ok(None);
        }
        let plan = plan::plan(size, &partial.written(), self.connections.settings());
        let worth_it = ranged::worth_it(partial, &plan) && !plan.pieces.is_empty();
        Ok(worth_it.then_some(plan))
    }

    async fn one_response(&mut self) -> Result<Ended> {
        let from = self.partial()?.len();
        let planned = self.planned()?;
        // With the size not known, a range from 0 asks the server both
        // whether it honours ranges and how big the blob is.
        let opening = planned.is_some() || from == 0 && self.may_use_ranges();
        let cancel = Some(&self.cancel);
        let mut headers = HeaderMap::new();
        match &planned {
            Some(plan) => {
                let value = HeaderValue::from_str(&plan::range_header(&plan.pieces[0]))
                    .expect("digits are a valid header value");
                headers.insert(RANGE, value);
            }
            None if from > 0 || opening => {
                headers.insert(RANGE, range_header(from));
            }
            None => {}
        }
        // Every blob body on a connection of its own (HTTP/1.1): the
        // pull's budget of connections per host counts them, and the
        // pieces of a ranged download reuse what the opening left idle.
        let get = self.at.get_on_own_connection(&self.url, &headers);
        let resp = cancellable(cancel, get).await?;
        let status = resp.status();
        let appending = match status {
            StatusCode::PARTIAL_CONTENT => {
                let content_range = content_range_of(&resp);
                if let Some(plan) = planned {
                    let size = self.size.ok_or_else(lost)?;
                    if content_range_matches(content_range, &plan.pieces[0], Some(size)) {
                        return ranged::fetch(self, resp, size, &plan).await;
                    }
                    // Its bytes are not trusted, and none is read: one
                    // stream from here on.
                    return Ok(Ended::Unranged);
                }
                let told = ContentRange::parse(content_range);
                if !told.is_some_and(|r| r.answers_from(from, self.size)) {
                    if opening {
                        return Ok(Ended::Unranged);
                    }
                    let why = match (from, told.map(|r| r.first)) {
                        (0, _) => "a 206 to a request for the whole blob".to_owned(),
                        (_, Some(s)) => format!(
                            "asked for bytes {from}-, got a 206 with Content-Range {content_range:?} (from {s})"
                        ),
                        (_, None) => format!("asked for bytes {from}-, got a 206 without a range"),
                    };
                    // Asking again from zero would get the same answer.
                    if from == 0 {
                        return Err(range_not_honoured(&self.url, &why));
                    }
                    self.discard(resp).await?;
                    return Ok(Ended::StartOver { why });
                }
                // The size not known before: the server's word decides
                // whether the rest goes as ranges.
                let size = self.size.or(told.and_then(|r| r.total));
                let rangeable = content_range_matches(content_range, &(from..u64::MAX), size);
                if let Some(size) = size.filter(|_| rangeable && self.may_use_ranges()) {
                    let settings = *self.connections.settings();
                    let partial = self.partial()?;
                    partial.learn_size(size);
                    let plan = plan::plan(size, &partial.written(), &settings);
                    if ranged::worth_it(partial, &plan) {
                        self.size = Some(size);
                        return ranged::fetch(self, resp, size, &plan).await;
                    }
                }
                true
            }
            StatusCode::RANGE_NOT_SATISFIABLE if opening => {
                self.discard(resp).await?;
                return Ok(Ended::Unranged);
            }
            StatusCode::RANGE_NOT_SATISFIABLE if from > 0 => {
                self.discard(resp).await?;
                let why = format!("asked for bytes {from}-, got a 416");
                return Ok(Ended::StartOver { why });
            }
            s if s.is_success() => false,
            _ => {
                let url = &self.url;
                let refusal = async { Ok(refused(Endpoint::Blob, url, resp).await) };
                return Err(cancellable(cancel, refusal).await?);
            }
        };
        if !appending && from > 0 {
            // The registry ignored Range and sends the whole blob.
            self.restart().await?;
        }
        let start = self.partial()?.len();
        let mut body = Body::new(&self.url, resp).resumable();
        if let Some(size) = self.size {
            let rest = size.saturating_sub(start);
            if let Some(n) = body.content_length().filter(|&n| n != rest) {
                self.partial()?.discard();
                return Err(Error::protocol(
                    Reason::LengthMismatch,
                    format!(
                        "GET {}: Content-Length is {n} but {rest} of the blob's {size} bytes remain",
                        self.url
                    ),
                ));
            }
            body = body.limit(rest, Reason::LengthMismatch);
        }
        let total = match (self.size, body.content_length()) {
            (Some(size), _) => size,
            (None, Some(n)) => match start.checked_add(n) {
                Some(total) => total,
                None => {
                    self.partial()?.discard();
                    return Err(Error::protocol(
                        Reason::LengthMismatch,
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

        let mut partial = self.partial.take().ok_or_else(lost)?;
        let (chunks, mut queued) = mpsc::channel::<Bytes>(WRITE_QUEUE);
        // At the offsets the bytes are the blob's, not after the
        // contiguous prefix: a gap this stream fills may join bytes that
        // ranges wrote further on.
        let writer = tokio::task::spawn_blocking(move || {
            let mut at = start;
            while let Some(chunk) = queued.blocking_recv() {
                if let Err(e) = partial.write_at(at, &chunk) {
                    return (partial, Err(e), at);
                }
                at += chunk.len() as u64;
            }
            (partial, Ok(()), at)
        });
        let cancel = Some(&self.cancel);
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
        let (partial, written, reached) = writer
            .await
            .map_err(|e| Error::internal(Reason::Panic, format!("the writer failed: {e}")))?;
        let progressed = reached > start;
        self.partial = Some(partial);
        written?;
        match received {
            Ok(()) => Ok(Ended::Complete),
            Err(e) if e.reason == Reason::LengthMismatch => {
                self.partial()?.discard();
                Err(e)
            }
            Err(error) if is_resumable(&error) => Ok(Ended::Dropped { error, progressed }),
            Err(e) => Err(e),
        }
    }

    async fn discard(&self, resp: reqwest::Response) -> Result<()> {
        discard_unless_cancelled(&self.cancel, resp).await
    }
}

/// Reads and drops a small refusal's body, unless cancelled first.
async fn discard_unless_cancelled(cancel: &Cancel, resp: reqwest::Response) -> Result<()> {
    cancellable(Some(cancel), async {
        discard(resp).await;
        Ok(())
    })
    .await
}

/// A 206's `Content-Range` as text; empty when there is none.
fn content_range_of(resp: &reqwest::Response) -> &str {
    resp.headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn range_not_honoured(url: &Url, why: &str) -> Error {
    Error::protocol(
        Reason::RangeNotHonoured,
        format!("GET {url}: the registry does not honour Range requests ({why})"),
    )
}

fn is_resumable(e: &Error) -> bool {
    matches!(
        e.reason,
        Reason::ConnectionReset | Reason::Timeout | Reason::RequestFailed
    )
}

fn range_header(from: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("bytes={from}-")).expect("digits are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_is_open_ended() {
        assert_eq!(range_header(7), "bytes=7-");
        let told = ContentRange::parse("bytes 100-199/200").unwrap();
        assert_eq!((told.first, told.last, told.total), (100, 199, Some(200)));
        assert!(told.answers_from(100, Some(200)) && told.answers_from(100, None));
        assert!(!told.answers_from(100, Some(300)) && !told.answers_from(99, None));
        assert_eq!(ContentRange::parse("bytes */200"), None);
        let unknown = ContentRange::parse("bytes 5-9/*").unwrap();
        assert_eq!(unknown.total, None);
        assert!(unknown.answers_from(5, Some(10)));
        assert!(!ContentRange::parse("bytes 5-8/10")
            .unwrap()
            .answers_from(5, None));
    }
}
