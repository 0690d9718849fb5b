//! The CDN's request log. A request is logged before its body goes out, so
//! a test that has read a response finds it there; the bytes sent keep
//! counting in place as the body is written (or stop where the connection
//! was cut).

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::CdnRequest;

#[derive(Default)]
pub(crate) struct CdnLog {
    entries: Mutex<Vec<(CdnRequest, Arc<AtomicU64>)>>,
}

impl CdnLog {
    /// Logs `request`; the counter its body's bytes go to.
    pub(super) fn push(&self, request: CdnRequest) -> Arc<AtomicU64> {
        let sent = Arc::new(AtomicU64::new(0));
        if let Ok(mut entries) = self.entries.lock() {
            entries.push((request, Arc::clone(&sent)));
        }
        sent
    }

    /// Every request logged, with the body bytes sent so far.
    pub(crate) fn snapshot(&self) -> Vec<CdnRequest> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        entries
            .iter()
            .map(|(request, sent)| CdnRequest {
                bytes: sent.load(Ordering::SeqCst),
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
/// at most one read (64 KiB) ahead of what reached the socket.
pub(super) struct Counted<R> {
    pub(super) inner: R,
    pub(super) sent: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}
