//! How many connections a pull holds to one host at once: one budget its
//! layers and the ranges of each layer share (issue 23's promise 5), so a
//! 50-layer image fetched 8 at a time, 4 ranges each, does not open 200.
//!
//! A blob's first connection waits for its place; the extra connections
//! of a ranged download take one only when it is free at once, and go
//! without otherwise: a layer with a single stream is never held up by
//! another's ranges.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::plan::Settings;
use crate::stevedore::cancel::{cancellable, Cancel};
use crate::stevedore::error::{Error, Reason, Result};

/// A place for one connection to a host, given back when dropped.
pub type Place = OwnedSemaphorePermit;

pub struct Connections {
    settings: Settings,
    /// One budget per host (`host[:port]`).
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Connections {
    pub fn new(settings: Settings) -> Connections {
        Connections {
            settings,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn host(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_host.max(1))))
            .clone()
    }

    /// A blob's first connection to `host`, once one is free.
    pub async fn first(&self, host: &str, cancel: &Cancel) -> Result<Place> {
        let budget = self.host(host);
        let wait = async {
            budget
                .acquire_owned()
                .await
                .map_err(|_| Error::internal(Reason::Panic, "a connection budget was closed"))
        };
        cancellable(Some(cancel), wait).await
    }

    /// One more connection to `host` for a blob's ranges, if one is free
    /// now.
    pub fn more(&self, host: &str) -> Option<Place> {
        self.host(host).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_per_host_are_bounded_and_given_back() {
        let c = Connections::new(Settings {
            per_host: 2,
            ..Settings::default()
        });
        let cancel = Cancel::default();
        let a = c.first("h:1", &cancel).await.unwrap();
        let b = c.more("h:1").expect("a second place");
        assert!(c.more("h:1").is_none(), "two at most");
        assert!(c.more("other:1").is_some(), "per host");
        drop(b);
        assert!(c.more("h:1").is_some(), "given back");
        drop(a);
        let cancelled = Cancel::default();
        let _x = c.first("h:1", &cancel).await.unwrap();
        let _y = c.first("h:1", &cancel).await.unwrap();
        cancelled.cancel();
        let waited = c.first("h:1", &cancelled).await;
        assert!(waited.is_err(), "a wait for a place ends when cancelled");
    }
}
