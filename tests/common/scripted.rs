//! A scripted HTTP server on loopback, for faults a real registry will not
//! produce on demand. Each connection serves one request: the script gets
//! the parsed request and the raw socket and may write anything (or
//! nothing) to it. Every request is recorded. Stopped on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

type Script = dyn Fn(&Request, &mut TcpStream) + Send + Sync;

pub struct ScriptedServer {
    addr: String,
    log: Arc<Mutex<Vec<Request>>>,
    /// First bytes of connections that did not speak HTTP (e.g. a TLS hello).
    pub raw_openings: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    pub fn start(script: impl Fn(&Request, &mut TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let raw_openings = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let accept = {
            let (log, raw, stop) = (log.clone(), raw_openings.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let (log, raw, script) = (log.clone(), raw.clone(), script.clone());
                    std::thread::spawn(move || {
                        match read_request(&conn) {
                            Ok(req) => {
                                log.lock().unwrap().push(req.clone());
                                script(&req, &mut conn);
                            }
                            Err(opening) => raw.lock().unwrap().push(opening),
                        }
                        let _ = conn.flush();
                        let _ = conn.shutdown(Shutdown::Both);
                    });
                }
            })
        };
        Self {
            addr,
            log,
            raw_openings,
            stop,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`, usable as a registry argument.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// The request head, or the first bytes when they are not HTTP.
fn read_request(conn: &TcpStream) -> Result<Request, Vec<u8>> {
    let mut reader = BufReader::new(conn.try_clone().map_err(|_| Vec::new())?);
    let opening = reader.fill_buf().map_err(|_| Vec::new())?.to_vec();
    if !opening.first().is_some_and(u8::is_ascii_uppercase) {
        return Err(opening);
    }
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|_| opening.clone())?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|_| opening.clone())? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    Ok(Request {
        method,
        target,
        headers,
        at: Instant::now(),
    })
}

/// Writes a complete response with `Content-Length` and `Connection: close`.
pub fn respond(conn: &mut impl Write, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// Writes only a response head (for scripts that then misbehave on the body).
pub fn respond_head(conn: &mut TcpStream, status: u16, headers: &[(&str, &str)]) {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = conn.write_all(head.as_bytes());
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Ends the connection abortively: the peer's next read fails with a TCP
/// reset instead of seeing an orderly end of stream. The socket's descriptor
/// is replaced by /dev/null (`dup2`), which closes the socket at once with
/// `SO_LINGER` 0, and leaves `conn` something harmless to shut down and drop.
pub fn reset(conn: &mut TcpStream) {
    use std::os::fd::AsRawFd;
    let fd = conn.as_raw_fd();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let devnull = std::fs::File::open("/dev/null").expect("open /dev/null");
    // SAFETY: `fd` is the live socket `conn` owns; `linger` outlives the call;
    // dup2 atomically swaps the descriptor, so `conn` stays valid to drop.
    unsafe {
        let set = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
        assert_eq!(set, 0, "SO_LINGER");
        assert!(libc::dup2(devnull.as_raw_fd(), fd) >= 0, "dup2");
    }
}

/// Writes up to `total` bytes of `fill` in 64 KiB writes and returns how
/// many the kernel took before the peer hung up (or `total`).
pub fn stream(conn: &mut TcpStream, total: u64, fill: u8) -> u64 {
    let chunk = [fill; 64 * 1024];
    let mut written = 0u64;
    while written < total {
        let n = (total - written).min(chunk.len() as u64) as usize;
        match conn.write(&chunk[..n]) {
            Ok(0) | Err(_) => break,
            Ok(k) => written += k as u64,
        }
    }
    written
}

/// Like [`stream`] but as `Transfer-Encoding: chunked` chunks of 64 KiB;
/// counts payload bytes. Sends the final empty chunk only if all of `total`
/// went out.
pub fn stream_chunked(conn: &mut TcpStream, total: u64, fill: u8) -> u64 {
    let payload = [fill; 64 * 1024];
    let mut written = 0u64;
    while written < total {
        let n = (total - written).min(payload.len() as u64) as usize;
        let frame = format!("{n:x}\r\n");
        let ok = conn.write_all(frame.as_bytes()).is_ok()
            && conn.write_all(&payload[..n]).is_ok()
            && conn.write_all(b"\r\n").is_ok();
        if !ok {
            return written;
        }
        written += n as u64;
    }
    let _ = conn.write_all(b"0\r\n\r\n");
    written
}
