//! Idle connections, per origin. A connection comes back the moment its
//! response body has been read to the end, before the call that read it
//! returns, so the next request from the same thread finds it here instead
//! of racing a new connect against its return.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::dial::Sender;
use super::origin::Origin;

pub struct Pool {
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
    /// Idle connections older than this are closed, not reused: servers
    /// drop quiet connections and a request on one would fail.
    max_idle_time: Duration,
    max_idle_per_origin: usize,
    reaper_started: AtomicBool,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Idle {
    fn usable(&self, now: Instant, max_idle_time: Duration) -> bool {
        !self.sender.is_closed() && now - self.since < max_idle_time
    }
}

impl Pool {
    pub fn new(max_idle_time: Duration, max_idle_per_origin: usize) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle_time,
            max_idle_per_origin,
            reaper_started: AtomicBool::new(false),
        }
    }

    /// The most recently returned live connection to `origin`, if any.
    pub fn take(&self, origin: &Origin) -> Option<Sender> {
        let mut idle = self.lock();
        let list = idle.get_mut(origin)?;
        let now = Instant::now();
        list.retain(|c| c.usable(now, self.max_idle_time));
        let found = list.pop().map(|c| c.sender);
        if list.is_empty() {
            idle.remove(origin);
        }
        found
    }

    /// Keeps `sender` for the next request to `origin`, once its connection
    /// has finished the last exchange; a closed connection is dropped.
    pub async fn give_back(self: &Arc<Self>, origin: Origin, mut sender: Sender) {
        // Ready means the connection task has seen the end of the response
        // and can take a request: usually at once, since the body's end has
        // just been read.
        let ready = tokio::time::timeout(Duration::from_secs(1), sender.ready()).await;
        if !matches!(ready, Ok(Ok(()))) {
            return;
        }
        self.start_reaper();
        let mut idle = self.lock();
        let list = idle.entry(origin).or_default();
        if list.len() < self.max_idle_per_origin {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Idle connections kept, across origins.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Closes idle connections past their time, and forgets closed ones,
    /// for origins no request comes back to. Started by the first
    /// connection kept (inside the runtime); ends with the pool.
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool: Weak<Pool> = Arc::downgrade(self);
        let every = self.max_idle_time / 2;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let now = Instant::now();
                let mut idle = pool.lock();
                for list in idle.values_mut() {
                    list.retain(|c| c.usable(now, pool.max_idle_time));
                }
                idle.retain(|_, list| !list.is_empty());
            }
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Vec<Idle>>> {
        // The map stays consistent even if a holder panicked: every
        // operation on it is a single push, pop or retain.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper::client::conn::http1;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncReadExt;

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed_after_their_time_even_if_never_taken() {
        let (client_io, mut server_io) = tokio::io::duplex(1024);
        let (sender, connection) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(client_io))
            .await
            .unwrap();
        tokio::spawn(connection);
        let pool = Arc::new(Pool::new(Duration::from_secs(90), 4));
        let origin = Origin::of(&url::Url::parse("http://r.io/").unwrap());
        pool.give_back(origin, sender).await;
        assert_eq!(pool.idle_count(), 1);

        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(pool.idle_count(), 1, "kept while young");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(pool.idle_count(), 0, "closed once past 90 s");
        let mut buf = [0u8; 1];
        assert_eq!(
            server_io.read(&mut buf).await.unwrap(),
            0,
            "the peer sees the close"
        );
    }
}
