//! Cancellation: a token the caller triggers from any thread. A call ends
//! at once when it fires, wherever it is waiting (a stalled body, a retry
//! backoff, a lock). What is waited on is dropped, which closes its
//! connection; so work that writes files is never wrapped whole, only its
//! waits: a dropped future would leave its blocking file work running.

use std::future::Future;
use std::time::Duration;

use super::error::{Error, Result};

pub use tokio_util::sync::CancellationToken as Cancel;

/// Runs `work` unless `cancel` fires first; a token already triggered
/// means `work` never starts. `work` must leave nothing running when
/// dropped (a request, a body read, a sleep; not a file writer).
pub async fn cancellable<T>(
    cancel: Option<&Cancel>,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(cancel) = cancel else {
        return work.await;
    };
    if cancel.is_cancelled() {
        return Err(Error::cancelled());
    }
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Error::cancelled()),
        done = work => done,
    }
}

/// Sleeps for `wait`, unless `cancel` fires first.
pub async fn sleep(cancel: Option<&Cancel>, wait: Duration) -> Result<()> {
    cancellable(cancel, async {
        tokio::time::sleep(wait).await;
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_trigger_ends_a_sleeping_call_and_a_fired_token_starts_nothing() {
        let cancel = Cancel::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.cancel();
        });
        let slept = cancellable(Some(&cancel), async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        });
        assert_eq!(slept.await.unwrap_err().reason.id(), "cancelled");
        let mut started = false;
        let again = cancellable(Some(&cancel), async {
            started = true;
            Ok(())
        });
        assert!(again.await.is_err());
        assert!(!started);
    }
}
