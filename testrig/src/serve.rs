//! A tiny_http server with a fixed pool of worker threads.
//!
//! tiny_http reads requests on its own threads but a response is written by
//! whoever calls `respond`, so one `recv` loop would serialise every download;
//! the pool lets a client fetch several blobs at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use tiny_http::{Request, Server};

pub(crate) type Handler = Arc<dyn Fn(Request) + Send + Sync>;

pub(crate) struct HttpService {
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl HttpService {
    /// Binds a free port on 127.0.0.1 and serves `handler` on `workers` threads.
    pub(crate) fn start(name: &str, workers: usize, handler: Handler) -> Result<Self> {
        let server = Server::http("127.0.0.1:0")
            .map_err(|e| anyhow!("{name}: cannot listen on 127.0.0.1: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .with_context(|| format!("{name}: listener has no IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::with_capacity(workers);
        for i in 0..workers {
            let server = Arc::clone(&server);
            let stop = Arc::clone(&stop);
            let handler = Arc::clone(&handler);
            let handle = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || loop {
                    match server.recv() {
                        Ok(request) => handler(request),
                        Err(_) if stop.load(Ordering::SeqCst) => break,
                        Err(_) => continue,
                    }
                })
                .with_context(|| format!("{name}: cannot spawn worker thread"))?;
            handles.push(handle);
        }
        Ok(HttpService {
            server,
            stop,
            workers: handles,
            addr,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Each unblock wakes exactly one `recv`, so one per worker.
        for _ in &self.workers {
            self.server.unblock();
        }
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

/// The value of the first header called `name` (case-insensitive).
pub(crate) fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}
