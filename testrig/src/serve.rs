//! A tiny_http server with a fixed pool of worker threads.
//!
//! tiny_http reads requests on its own threads but a response is written by
//! whoever calls `respond`, so one `recv` loop would serialise every download;
//! the pool lets a client fetch several blobs at once.
//!
//! tiny_http 0.12 serves each connection on a thread of its task pool for
//! the connection's whole life, and that pool can lose a wake-up: two
//! connections accepted while one thread is idle both go to that thread's
//! queue, and the second waits until some connection closes. A client that
//! keeps its connections alive (every pool of HTTP/1.1 connections does)
//! then sees a request unanswered until its own timeout: 15 s stalls under
//! load, and a connection counted open twice when it retries. A [`Waker`]
//! connects and hangs up every [`WAKE_EVERY`]: with no thread idle, the
//! pool spawns one for it, which then takes what was queued.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tiny_http::{Request, Server};

pub(crate) type Handler = Arc<dyn Fn(Request) + Send + Sync>;

/// Where a [`Waker`]'s connections come from: counts of a server's
/// clients leave this address out.
pub(crate) const WAKER_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// How long a connection lost in tiny_http's queue waits at most, about.
const WAKE_EVERY: Duration = Duration::from_millis(50);

pub(crate) struct HttpService {
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
    _waker: Waker,
}

/// A thread that opens and closes a connection to a server every
/// [`WAKE_EVERY`] until dropped (see the module's note).
struct Waker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Waker {
    fn start(name: &str, to: SocketAddr) -> Result<Waker> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-waker"))
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(WAKE_EVERY) {
                    // A refused or failed connect wakes nothing; the next may.
                    let _ = wake(to);
                }
            })
            .with_context(|| format!("{name}: cannot spawn the waker thread"))?;
        Ok(Waker {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// One connection to `to` from [`WAKER_ADDRESS`], closed at once.
fn wake(to: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(WAKER_ADDRESS, 0)).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(1))?;
    // Closed with a reset: no TIME_WAIT holding a port for a minute, 20
    // times a second.
    socket.set_linger(Some(Duration::ZERO))
}

impl Drop for Waker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
        // Before the workers: nothing to undo should it fail.
        let waker = Waker::start(name, addr)?;
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
            _waker: waker,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn connect(addr: SocketAddr) -> TcpStream {
        let c = TcpStream::connect(addr).unwrap();
        // Far longer than the waker takes, far shorter than forever.
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c
    }

    fn get(c: &mut TcpStream) -> std::io::Result<()> {
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut seen = Vec::new();
        let mut buf = [0; 256];
        while !seen.ends_with(b"ok") {
            let n = c.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    /// Connections kept open and idle hold tiny_http's threads, as a
    /// client's pool does; then many connect at once, each with a request:
    /// every one is answered, none left in tiny_http's queue until some
    /// connection closes (here none would).
    #[test]
    fn a_burst_of_connections_is_answered_while_others_stay_open() {
        let service = HttpService::start(
            "burst",
            4,
            Arc::new(|rq: Request| {
                let _ = rq.respond(tiny_http::Response::from_string("ok"));
            }),
        )
        .unwrap();
        let addr = service.addr();
        let mut idle: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
        for c in &mut idle {
            get(c).unwrap();
        }
        for round in 0..10 {
            let burst: Vec<_> = (0..16)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut c = connect(addr);
                        let asked = get(&mut c);
                        (asked, c)
                    })
                })
                .collect();
            for t in burst {
                let (asked, c) = t.join().unwrap();
                assert!(asked.is_ok(), "round {round}: {asked:?}");
                // Kept open too, as a pool keeps what it used.
                idle.push(c);
            }
        }
    }
}
