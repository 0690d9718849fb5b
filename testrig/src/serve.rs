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
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .with_context(|| format!("{name}: cannot listen on 127.0.0.1"))?;
        no_delay(&listener).with_context(|| format!("{name}: TCP_NODELAY"))?;
        let server = Server::from_listener(listener, None)
            .map_err(|e| anyhow!("{name}: cannot serve on 127.0.0.1: {e}"))?;
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

/// Sets TCP_NODELAY on `listener`, which the connections it accepts
/// inherit (Linux copies it): HTTP servers (nginx, Go's net/http, the
/// CDNs in front of registries) send a response's last small segment at
/// once, where Nagle would hold it until the client's delayed ACK, 40 ms
/// on Linux, before every next request on that connection.
fn no_delay(listener: &std::net::TcpListener) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd and a c_int option value of its size.
    let set = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    match set {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
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
