//! Idle connections, per origin. A connection comes back the moment its
//! response body has been read to the end, before the call that read it
//! returns, so the next request from the same thread finds it here instead
//! of racing a new connect against its return.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::dial::Sender;
use super::origin::Origin;

pub struct Pool {
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
    /// Idle connections older than this are closed, not reused: servers
    /// drop quiet connections and a request on one would fail.
    max_idle_time: Duration,
    max_idle_per_origin: usize,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

impl Pool {
    pub fn new(max_idle_time: Duration, max_idle_per_origin: usize) -> Pool {
        Pool {
            idle: Mutex::new(HashMap::new()),
            max_idle_time,
            max_idle_per_origin,
        }
    }

    /// The most recently returned live connection to `origin`, if any.
    pub fn take(&self, origin: &Origin) -> Option<Sender> {
        let mut idle = self.lock();
        let list = idle.get_mut(origin)?;
        let now = Instant::now();
        list.retain(|c| !c.sender.is_closed() && now - c.since < self.max_idle_time);
        let found = list.pop().map(|c| c.sender);
        if list.is_empty() {
            idle.remove(origin);
        }
        found
    }

    /// Keeps `sender` for the next request to `origin`, once its connection
    /// has finished the last exchange; a closed connection is dropped.
    pub async fn give_back(&self, origin: Origin, mut sender: Sender) {
        // Ready means the connection task has seen the end of the response
        // and can take a request: usually at once, since the body's end has
        // just been read.
        let ready = tokio::time::timeout(Duration::from_secs(1), sender.ready()).await;
        if !matches!(ready, Ok(Ok(()))) {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(origin).or_default();
        if list.len() < self.max_idle_per_origin {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Origin, Vec<Idle>>> {
        // The map stays consistent even if a holder panicked: every
        // operation on it is a single push, pop or retain.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}
