//! The hidden runtime: one multi-thread tokio runtime and one registry
//! client, started on first use and shared by every blocking caller. A
//! caller's thread parks on a channel while a worker does the I/O, so any
//! thread may call, many at once.

use std::future::Future;
use std::sync::mpsc;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::stevedore::error::{Error, Reason, Result};
use crate::stevedore::progress::Spacing;
use crate::stevedore::{Client, Config, ProgressFn};
use std::sync::Arc;
use std::time::Instant;

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
                .on_thread_start(on_thread_start)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::internal(Reason::Runtime, format!("cannot start the runtime: {e}")))
}

fn on_thread_start() {
    lower_priority();
    ignore_sigpipe();
}

/// A write to a connection the peer has closed raises SIGPIPE, whose
/// default action ends the process: a C or Go host that has not ignored it
/// would die of a registry hanging up. Blocked on tank's threads, the write
/// fails with EPIPE instead, which tank reports.
fn ignore_sigpipe() {
    // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask
    // changes only the calling thread's mask.
    #[cfg(unix)]
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// tank's threads (workers, and the blocking ones that hash and write)
/// yield to the host's: a pull is background work, and a host that shares
/// a small machine with it (the Erlang VM's schedulers, a Go program's
/// threads) must not have its own threads wait behind tank's. Linux keeps a
/// nice value per thread; elsewhere this does nothing.
fn lower_priority() {
    const NICE: libc::c_int = 5;
    // SAFETY: setpriority on the calling thread (who = 0) has no memory
    // effects; a refusal leaves the thread as it was.
    #[cfg(target_os = "linux")]
    unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, now.saturating_add(NICE).min(19));
    }
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
    block_on_reporting(|_| future, |_, _| {})
}

/// Starts `future` on the hidden runtime and returns at once, for callers
/// that get the answer another way (the Elixir NIF sends it as a message).
/// A panic in `future` is the handle's error, never the caller's.
pub fn spawn<T, F>(future: F) -> Result<tokio::task::JoinHandle<T>>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    Ok(runtime()?.spawn(future))
}

/// What the runtime tells a parked caller.
enum Event<T> {
    Progress(u64, u64),
    Done(Result<T>),
}

/// As [`block_on`], for work that reports progress: `make` gets a
/// [`ProgressFn`] to hand to the core, and every report it makes is passed
/// to `report` on the calling thread, never on one of tank's, in order and
/// before the result.
pub fn block_on_reporting<T, F>(
    make: impl FnOnce(ProgressFn) -> F,
    mut report: impl FnMut(u64, u64),
) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::internal(
            Reason::Runtime,
            "a blocking tank call was made from inside an async runtime; call the async core instead",
        ));
    }
    let runtime = runtime()?;
    let (events, arrivals) = mpsc::channel::<Event<T>>();
    let reports = events.clone();
    let progress: ProgressFn = Arc::new(move |done, total| {
        let _ = reports.send(Event::Progress(done, total));
    });
    let future = make(progress);
    runtime.spawn(async move {
        let _ = events.send(Event::Done(future.await));
    });
    // The core made these reports spaced (progress.rs). Handed over to
    // this thread they may bunch (woken late for one, promptly for the
    // next), so they keep the same spacing as they are passed on: one that
    // comes too soon waits out the rest, replaced by any newer one; the
    // last goes out before the result, however soon.
    let mut spacing = Spacing::default();
    let mut pending: Option<(u64, u64)> = None;
    loop {
        let event = match (pending, spacing.due()) {
            (Some(_), Some(due)) => {
                match arrivals.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(event) => Some(event),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            _ => match arrivals.recv() {
                Ok(event) => Some(event),
                Err(_) => break,
            },
        };
        match event {
            Some(Event::Progress(done, total)) => pending = Some((done, total)),
            Some(Event::Done(result)) => {
                if let Some((done, total)) = pending {
                    report(done, total);
                }
                return result;
            }
            None => {}
        }
        if let Some((done, total)) = pending {
            if spacing.ready() {
                report(done, total);
                spacing.went();
                pending = None;
            }
        }
    }
    Err(Error::internal(
        Reason::Panic,
        "the request task panicked; this is a bug in tank",
    ))
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
        assert_eq!(e.reason, Reason::Panic);
    }

    #[test]
    fn progress_reaches_the_calling_thread_before_the_result() {
        let caller = std::thread::current().id();
        let mut seen = Vec::new();
        let result = block_on_reporting(
            |progress| async move {
                progress(1, 2);
                progress(2, 2);
                Ok("done")
            },
            |done, total| {
                assert_eq!(std::thread::current().id(), caller);
                seen.push((done, total));
            },
        );
        assert_eq!(result.unwrap(), "done");
        assert_eq!(seen, [(1, 2), (2, 2)]);
    }

    #[tokio::test]
    async fn refuses_to_block_inside_a_runtime() {
        let e = block_on(async { Ok(()) }).unwrap_err();
        assert_eq!(e.reason, Reason::Runtime);
    }
}
