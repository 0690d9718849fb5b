//! File work off the runtime's workers: a worker that waits on a disk
//! stalls every other request it drives.

use super::error::{Error, Reason, Result};

/// Runs `work` on a blocking thread and waits for it; a panic there is an
/// error here.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(Reason::Panic, format!("a file task failed: {e}")))
}
