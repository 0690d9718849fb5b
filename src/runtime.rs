//! The hidden runtime: one multi-thread tokio runtime and one registry
//! client, started on first use and shared by every blocking caller. A
//! caller's thread parks on a channel while a worker does the I/O, so any
//! thread may call, many at once.

use std::future::Future;
use std::sync::mpsc;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::stevedore::error::{reason, Error, Result};
use crate::stevedore::{Client, Config};

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
static CLIENT: OnceLock<Result<Client>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime> {
    RUNTIME
        .get_or_init(|| {
            let workers = std::thread::available_parallelism()
                .map_or(2, usize::from)
                .clamp(2, 4);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("tank-worker")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal(reason::RUNTIME, format!("cannot start the runtime: {e}")))
}

/// The process-wide client: one connection pool for every call, made inside
/// the runtime whose workers will run its connections.
pub fn client() -> Result<&'static Client> {
    CLIENT
        .get_or_init(|| {
            let _inside = runtime()?.enter();
            Client::new(Config::default())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs `future` on the hidden runtime and blocks until it finishes. From
/// inside a tokio runtime this is an error, not a panic or a deadlock.
pub fn block_on<T, F>(future: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::internal(
            reason::RUNTIME,
            "a blocking tank call was made from inside an async runtime; call the async core instead",
        ));
    }
    let runtime = runtime()?;
    let (reply, answer) = mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = reply.send(future.await);
    });
    // A dropped sender without an answer means the task panicked.
    answer.recv().unwrap_or_else(|_| {
        Err(Error::internal(
            reason::PANIC,
            "the request task panicked; this is a bug in tank",
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_futures_from_many_threads() {
        let handles: Vec<_> = (0..8)
            .map(|i| std::thread::spawn(move || block_on(async move { Ok(i * 2) })))
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap().unwrap(), i * 2);
        }
    }

    #[test]
    fn a_panicking_task_is_an_error() {
        let e = block_on::<(), _>(async { panic!("boom") }).unwrap_err();
        assert_eq!(e.reason, reason::PANIC);
    }

    #[tokio::test]
    async fn refuses_to_block_inside_a_runtime() {
        let e = block_on(async { Ok(()) }).unwrap_err();
        assert_eq!(e.reason, reason::RUNTIME);
    }
}
