//! The CDN's request log. A request is logged before its body goes out, so
//! a test that has read a response finds it there; the bytes sent keep
//! counting in place as the body is written (or stop where the connection
//! was cut), and the time it ended is filled in once it is done.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::CdnRequest;

#[derive(Default)]
pub(crate) struct CdnLog {
    entries: Mutex<Vec<(CdnRequest, Arc<Progress>)>>,
}

/// What changes in a log entry while its response goes out.
#[derive(Default)]
pub(super) struct Progress {
    sent: AtomicU64,
    ended: Mutex<Option<SystemTime>>,
    given_up: AtomicBool,
}

impl Progress {
    /// The response is done (whole, cut, or given up by the client).
    pub(super) fn end(&self) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.get_or_insert_with(SystemTime::now);
        }
    }

    /// A body of `len` bytes is done: given up by the client unless all
    /// of it was read to be sent.
    pub(super) fn given_up_unless(&self, len: u64) {
        let short = self.sent.load(Ordering::SeqCst) < len;
        self.given_up.store(short, Ordering::SeqCst);
    }
}

impl CdnLog {
    /// Logs `request`; where its body's bytes and its end are recorded.
    pub(super) fn push(&self, request: CdnRequest) -> Arc<Progress> {
        let progress = Arc::new(Progress::default());
        if let Ok(mut entries) = self.entries.lock() {
            entries.push((request, Arc::clone(&progress)));
        }
        progress
    }

    /// Every request logged, with the body bytes sent so far.
    pub(crate) fn snapshot(&self) -> Vec<CdnRequest> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        entries
            .iter()
            .map(|(request, progress)| CdnRequest {
                bytes: progress.sent.load(Ordering::SeqCst),
                ended: progress.ended.lock().ok().and_then(|e| *e),
                given_up: progress.given_up.load(Ordering::SeqCst),
                ..request.clone()
            })
            .collect()
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// A body that adds what it hands to the server's writer to a log entry:
/// at most one read (64 KiB) ahead of what reached the socket; it ends the
/// entry when its last byte is read (or a read fails: a cut).
pub(super) struct Counted<R> {
    pub(super) inner: R,
    /// The body's length.
    pub(super) len: u64,
    pub(super) progress: Arc<Progress>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                self.progress.end();
                return Err(e);
            }
        };
        let sent = self.progress.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        if sent >= self.len {
            // Before the last bytes are written: a test that has read a
            // whole body finds its end logged.
            self.progress.end();
        }
        Ok(n)
    }
}
