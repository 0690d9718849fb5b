//! One blob as several ranges at once, over separate connections: what a
//! download does once its first response showed that the server honours
//! `Range` (a 206 with exactly the range the opening asked for) and the
//! blob is big enough for it to pay.
//!
//! That first response becomes the first piece's connection; up to
//! `connections - 1` more fetch the next pieces ([`Schedule`], lowest
//! offset first), each request on a TCP connection of its own, as many
//! at once as the [`Ramp`] finds make the bytes come faster. Every
//! chunk goes to one writer thread, which writes it at its offset and
//! hashes whatever that makes contiguous ([`Partial::write_at`]), keeping
//! the record of what is there up to date: so memory is one bounded queue,
//! and a call cut short leaves every range that arrived for the next.
//!
//! A body cut mid-way puts the rest of its piece back, from the byte where
//! it stopped (bounded, as one stream's resumes are). A refusal from the
//! URL the registry redirected to (an expired CDN URL's 403) asks the
//! registry again for a fresh one. A server that answers a piece with
//! anything but its bytes (a 200, a 416, another range) gets one stream
//! from where the contiguous bytes stop, what arrived kept.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use futures_util::future::try_join_all;
use http::header::{HeaderMap, HeaderValue, RANGE};
use http::StatusCode;
use tokio::sync::mpsc;
use url::Url;

use super::connections::Place;
use super::plan::{content_range_matches, range_header, Plan, Schedule, TaskId};
use super::ramp::Ramp;
use super::{
    content_range_of, discard_unless_cancelled, is_resumable, lost, range_not_honoured, Download,
    Ended, WRITE_QUEUE,
};
use crate::stevedore::cancel::{cancellable, Cancel};
use crate::stevedore::error::{Endpoint, Error, Reason, Result};
use crate::stevedore::progress::Progress;
use crate::stevedore::repo::{refused, RepoAt};
use crate::stevedore::store::Partial;
use crate::stevedore::transport::{Body, Response};

/// Times, for one blob, a refusal from where the registry redirected is
/// answered by asking the registry again, per connection: URLs that expire
/// every few seconds cost a few each, a CDN that refuses everything a few
/// requests in all.
const REASKS_PER_CONNECTION: u32 = 3;

/// Fetches the rest of the blob of `size` bytes as `plan`'s pieces, the
/// first from `first` (the 206 to the opening request; its final URL,
/// after redirects, is where the other pieces are asked for), the others
/// over up to `plan.connections - 1` more connections as the budget has
/// places for them.
pub(super) async fn fetch(
    download: &mut Download<'_>,
    first: Response,
    size: u64,
    plan: &Plan,
) -> Result<Ended> {
    let mut schedule = Schedule::new(plan, download.connections.settings());
    let Some((first_id, first_piece)) = schedule.next() else {
        return Ok(Ended::Complete);
    };
    let mut partial = download.partial.take().ok_or_else(lost)?;
    let done_before = partial.written().done();
    download.progress.set_total(size);
    let host = download.host();
    let extra: Vec<Place> = (1..plan.connections)
        .map_while(|_| download.connections.more(&host))
        .collect();

    let (chunks, mut queued) = mpsc::channel::<(u64, Bytes)>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || {
        // Before any byte lands past the contiguous prefix.
        let written = partial.record_extents().and_then(|()| {
            while let Some((offset, chunk)) = queued.blocking_recv() {
                partial.write_at(offset, &chunk)?;
            }
            Ok(())
        });
        (partial, written)
    });

    let ranges = Ranges {
        at: download.at,
        blob_url: download.url.clone(),
        url: Mutex::new(first.url().clone()),
        size,
        schedule: Mutex::new(schedule),
        chunks,
        cancel: &download.cancel,
        received: AtomicU64::new(0),
        progress: Mutex::new(std::mem::replace(
            &mut download.progress,
            Progress::new(None::<crate::stevedore::progress::Sink>),
        )),
        done_before,
        resumes: Mutex::new(download.budget.resumes),
        reasks: Mutex::new(REASKS_PER_CONNECTION * plan.connections as u32),
        ramp: Ramp::new(1 + extra.len()),
    };
    let mut workers = vec![ranges.work(0, Some((first_id, first_piece, first)), None)];
    workers.extend(
        extra
            .into_iter()
            .enumerate()
            .map(|(k, place)| ranges.work(k + 1, None, Some(place))),
    );
    let fetched = try_join_all(workers).await;

    let finished = locked(&ranges.schedule).is_finished();
    let Ranges {
        chunks,
        progress,
        resumes,
        received,
        ..
    } = ranges;
    download.progress = progress
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    download.budget.resumes = resumes.into_inner().unwrap_or_else(PoisonError::into_inner);
    // Whatever ended the workers, the writer finishes what was queued
    // before anything else happens.
    drop(chunks);
    let (partial, written) = writer
        .await
        .map_err(|e| Error::internal(Reason::Panic, format!("the writer failed: {e}")))?;
    download.partial = Some(partial);
    written?;
    match fetched {
        Ok(_) if !finished => Err(Error::internal(
            Reason::Panic,
            "a ranged download ended with pieces missing; this is a bug in tank",
        )),
        Ok(_) => Ok(Ended::Complete),
        // A server that answers `bytes=N-` but not `bytes=N-M` (or stopped
        // honouring ranges): one stream from where the bytes stop, the
        // pieces that arrived kept.
        Err(e) if e.reason == Reason::RangeNotHonoured => Ok(Ended::Unranged),
        Err(error) if is_resumable(&error) => Ok(Ended::Dropped {
            error,
            progressed: received.into_inner() > 0,
        }),
        Err(e) => Err(e),
    }
}

/// What the connections of one blob share.
struct Ranges<'a, 'c> {
    at: RepoAt<'a>,
    /// The registry's URL for the blob: asked again when the URL it
    /// redirected to stops serving.
    blob_url: Url,
    /// Where pieces are asked for: the first response's final URL, or a
    /// fresher one.
    url: Mutex<Url>,
    size: u64,
    schedule: Mutex<Schedule>,
    chunks: mpsc::Sender<(u64, Bytes)>,
    cancel: &'c Cancel,
    /// Bytes handed to the writer, for progress.
    received: AtomicU64,
    progress: Mutex<Progress>,
    done_before: u64,
    /// Resumes of cut bodies left, shared by the connections.
    resumes: Mutex<u32>,
    reasks: Mutex<u32>,
    /// How many connections work at once, by what they were seen to do.
    ramp: Ramp,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ranges<'_, '_> {
    /// Connection `k`'s work: pieces until none is left (or the ramp has
    /// it stop). `first` is a response already open for a piece;
    /// `_place`, its place in the host's budget, held until the work ends.
    async fn work(
        &self,
        k: usize,
        mut first: Option<(TaskId, Range<u64>, Response)>,
        _place: Option<Place>,
    ) -> Result<()> {
        let admitted = async { Ok(self.ramp.admitted(k).await) };
        if !cancellable(Some(self.cancel), admitted).await? {
            return Ok(());
        }
        // A connection the ramp stops still finishes the rest of a piece
        // whose body broke: no piece is left without one.
        let mut broke = false;
        loop {
            let (id, piece, resp) = match first.take() {
                Some(opened) => opened,
                None => {
                    if !broke && !self.ramp.may_go_on(k) {
                        return Ok(());
                    }
                    broke = false;
                    let (alone, trial) = (self.ramp.alone(), self.ramp.trial_left(k));
                    let next = {
                        let mut schedule = locked(&self.schedule);
                        match trial {
                            // The first goes on alone; another only
                            // finishes the rest of a piece that broke.
                            _ if alone && k == 0 => schedule.next_alone(),
                            Some(left) => schedule.next_up_to(left),
                            None => schedule.next(),
                        }
                    };
                    let Some((id, piece)) = next else {
                        // Those not started yet never will.
                        self.ramp.close();
                        return Ok(());
                    };
                    match self.request(&piece).await {
                        Ok(resp) => (id, piece, resp),
                        Err(e) => {
                            locked(&self.schedule).broke(id);
                            return Err(e);
                        }
                    }
                }
            };
            match self.read(k, id, piece.start, resp).await {
                Ok(()) => {}
                Err(e) if is_resumable(&e) => {
                    locked(&self.schedule).broke(id);
                    broke = true;
                    let mut resumes = locked(&self.resumes);
                    if *resumes == 0 {
                        return Err(e);
                    }
                    *resumes -= 1;
                }
                Err(e) => {
                    locked(&self.schedule).broke(id);
                    return Err(e);
                }
            }
        }
    }

    /// The response to a request for `piece`: a 206 with exactly its bytes.
    async fn request(&self, piece: &Range<u64>) -> Result<Response> {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&range_header(piece)).expect("digits are a header value");
        headers.insert(RANGE, value);
        loop {
            let url = locked(&self.url).clone();
            let get = self.at.get_on_own_connection(&url, &headers);
            let resp = cancellable(Some(self.cancel), get).await?;
            let status = resp.status();
            let content_range = content_range_of(&resp).to_owned();
            if status == StatusCode::PARTIAL_CONTENT
                && content_range_matches(&content_range, piece, Some(self.size))
            {
                if resp.url() != &url {
                    *locked(&self.url) = resp.url().clone();
                }
                return Ok(resp);
            }
            let expired = status.is_client_error() && status != StatusCode::RANGE_NOT_SATISFIABLE;
            if expired && url != self.blob_url && self.reask() {
                // The URL the registry redirected to no longer serves (a
                // signed CDN URL that expired): the registry gives a new one.
                discard_unless_cancelled(self.cancel, resp).await?;
                let mut current = locked(&self.url);
                if *current == url {
                    *current = self.blob_url.clone();
                }
                continue;
            }
            if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
                let why = format!(
                    "asked for {}, got a {} with Content-Range {content_range:?}",
                    range_header(piece),
                    status.as_u16()
                );
                return Err(range_not_honoured(&url, &why));
            }
            let refusal = async { Ok(refused(Endpoint::Blob, &url, resp).await) };
            return Err(cancellable(Some(self.cancel), refusal).await?);
        }
    }

    fn reask(&self) -> bool {
        let mut left = locked(&self.reasks);
        let may = *left > 0;
        *left = left.saturating_sub(1);
        may
    }

    /// Reads task `id`'s response, whose body starts at `start`, to the
    /// writer until the piece is whole (its end may have moved down: an
    /// idle connection took its tail).
    async fn read(&self, k: usize, id: TaskId, start: u64, resp: Response) -> Result<()> {
        let url = resp.url().clone();
        let mut body = Body::new(&url, resp).resumable();
        let mut at = start;
        let mut fresh = true;
        loop {
            let Some(chunk) = cancellable(Some(self.cancel), body.chunk()).await? else {
                return Err(Error::transport(
                    Reason::ConnectionReset,
                    format!("GET {url}: the body ended at byte {at}, before its range did"),
                ));
            };
            let got = locked(&self.schedule).received(id, chunk.len() as u64);
            if got.keep > 0 {
                let keep = chunk.slice(..got.keep as usize);
                let sent = cancellable(Some(self.cancel), async {
                    Ok(self.chunks.send((at, keep)).await.is_ok())
                });
                if !sent.await? {
                    // The writer failed; its error says why.
                    return Err(Error::internal(Reason::Panic, "the writer stopped"));
                }
                at += got.keep;
                let total = self.received.fetch_add(got.keep, Ordering::Relaxed) + got.keep;
                self.ramp.observe(k, got.keep, fresh);
                fresh = false;
                locked(&self.progress).update(self.done_before + total);
            }
            if got.done {
                return Ok(());
            }
        }
    }
}

/// Whether the rest of a blob of `size` bytes goes as ranges: when the
/// plan has more than one connection, or when bytes are there past a gap
/// (one stream would fetch them again).
pub(super) fn worth_it(partial: &Partial, plan: &Plan) -> bool {
    let written = partial.written();
    plan.connections > 1 || written.done() > written.contiguous_prefix()
}
