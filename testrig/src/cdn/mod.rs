//! The "CDN" the redirecting registry sends blob reads to: a static file
//! server over that registry's storage root.
//!
//! Like S3 behind a signed URL it answers 400 to any request that carries an
//! `Authorization` header, so a client that leaks the registry token across
//! the redirect fails loudly.
//!
//! With challenges on (see [`CdnServer::set_challenges`]) it acts instead as
//! a host with its own token auth: blob reads without its own token get 401
//! and a Bearer challenge naming its own realm (`/token` on the CDN, service
//! `tank-cdn`), which hands out that token to anyone; the log then tells
//! whether a client sent the registry's credentials there.
//!
//! Like a real CDN it may also cap each connection's rate ([`pace`]), answer
//! `Range` well, badly or not at all ([`CdnRanges`]) and let its URLs expire
//! ([`expiry`]); its log ([`CdnRequest`]) says per request which connection
//! asked for which range and how many bytes went out, and it counts the
//! connections open at once ([`open`]).

mod cut;
mod expiry;
mod log;
mod open;
mod pace;
mod range;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tiny_http::{Header, Method, Request, Response};

use crate::random::random_hex;
use crate::serve::{header, HttpService};
use cut::{shut_down, CutAfter, Cuts};
use expiry::{Expiry, Verdict};
pub(crate) use log::CdnLog;
use log::{Counted, Progress};
use open::OpenConnections;
pub use pace::parse_rate;
use pace::Buckets;
use range::Span;
pub use range::{CdnRanges, CDN_RANGES_NAMES};

/// The service named in the CDN's own Bearer challenge.
pub(crate) const CDN_SERVICE: &str = "tank-cdn";

/// A response holds its worker until its last byte is out, which at a
/// capped rate takes seconds: enough for a pull that shares 16 connections
/// between layers, and a bench run beside it.
const WORKERS: usize = 40;

/// What the CDN is like when it starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct CdnConfig {
    pub(crate) challenges: bool,
    /// Body bytes per second, per TCP connection.
    pub(crate) rate_per_connection: Option<u64>,
    pub(crate) ranges: CdnRanges,
    /// Blob URLs expire this long after they are issued (see [`expiry`]).
    pub(crate) url_expiry: Option<Duration>,
}

/// One request that reached the CDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdnRequest {
    pub method: String,
    /// The request target as sent (path and query).
    pub path: String,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
    /// The Basic-auth user name, if the request carried one.
    pub username: Option<String>,
    /// Whether the request carried `Bearer <the CDN's own token>`.
    pub cdn_token: bool,
    /// The status the CDN answered.
    pub status: u16,
    pub at: SystemTime,
    /// The client's address and port: one per TCP connection.
    pub connection: Option<SocketAddr>,
    /// The `Range` header as sent.
    pub range: Option<String>,
    /// Where in the blob the body starts: the first byte of the range
    /// served, 0 for a whole blob. With `bytes`, the extent sent, so tests
    /// can add up bytes sent twice.
    pub offset: u64,
    /// Body bytes sent (so far, while the body is still going out).
    pub bytes: u64,
    /// When the response was done: a body's last byte read to be sent
    /// (just before the client can have it), or the body cut or given up by
    /// the client; any other answer just before it is written. `None` until
    /// then.
    pub ended: Option<SystemTime>,
    /// The client went away before the body's end (its connection closed
    /// under the write; not a cut of the rig's): what the log counts as
    /// sent past where it let go was in flight, never read.
    pub given_up: bool,
    /// The TCP connections open to the CDN when this request arrived, its
    /// own included (see [`Rig::cdn_peak_connections`](crate::Rig::cdn_peak_connections)).
    pub open_connections: usize,
}

pub(crate) struct CdnServer {
    service: HttpService,
    files: Arc<Files>,
}

struct Files {
    root: PathBuf,
    log: Arc<CdnLog>,
    challenges: AtomicBool,
    /// A [`CdnRanges`] as its [`CdnRanges::index`].
    ranges: AtomicU8,
    buckets: Option<Buckets>,
    expiry: Option<Expiry>,
    cuts: Cuts,
    connections: OpenConnections,
    /// `http://127.0.0.1:PORT`, once the port is known.
    base: Mutex<String>,
    /// The listening address, once known.
    local: OnceLock<SocketAddr>,
    /// The one token the CDN's realm hands out.
    token: String,
}

/// A blob to send, and how to answer its `Range`.
struct Blob {
    file: File,
    len: u64,
    span: Span,
    ranges: CdnRanges,
}

/// What a request comes to before it is answered.
enum Outcome {
    File(Blob),
    /// 416 for a blob of this length.
    Unsatisfiable(u64),
    /// 307 to this URL.
    Redirect(String),
    Error(u16, &'static str),
    Challenge,
    Token,
}

impl CdnServer {
    pub(crate) fn start(root: PathBuf, log: Arc<CdnLog>, config: &CdnConfig) -> Result<CdnServer> {
        let files = Arc::new(Files {
            root,
            log,
            challenges: AtomicBool::new(config.challenges),
            ranges: AtomicU8::new(config.ranges.index()),
            buckets: config.rate_per_connection.map(Buckets::new),
            expiry: config.url_expiry.map(Expiry::new).transpose()?,
            cuts: Cuts::default(),
            connections: OpenConnections::default(),
            base: Mutex::new(String::new()),
            local: OnceLock::new(),
            token: format!("cdn-{}", random_hex(16)?),
        });
        let handler = Arc::clone(&files);
        let service = HttpService::start("cdn", WORKERS, Arc::new(move |rq| handler.handle(rq)))?;
        let server = CdnServer { service, files };
        if let Ok(mut base) = server.files.base.lock() {
            *base = server.base_url();
        }
        let _ = server.files.local.set(server.service.addr());
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.service.addr())
    }

    /// The CDN's own token realm, named in its challenges.
    pub(crate) fn realm_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// On: challenge blob reads that lack the CDN's own token (see module docs).
    pub(crate) fn set_challenges(&self, on: bool) {
        self.files.challenges.store(on, Ordering::SeqCst);
    }

    pub(crate) fn set_ranges(&self, ranges: CdnRanges) {
        self.files.ranges.store(ranges.index(), Ordering::SeqCst);
    }

    /// The next `count` blob bodies stop after `after` bytes, their
    /// connections shut down (see [`cut`]).
    pub(crate) fn cut_bodies(&self, after: u64, count: usize) {
        self.files.cuts.arm(after, count);
    }

    /// Every blob URL signed so far answers 403 from now on; false when
    /// URLs do not expire at all.
    pub(crate) fn expire_urls(&self) -> bool {
        self.files.expiry.as_ref().map(Expiry::expire_all).is_some()
    }

    /// The TCP connections open to the CDN now.
    pub(crate) fn open_connections(&self) -> usize {
        self.files.sample_connections()
    }

    /// The most connections seen open at once since start or the last
    /// [`CdnServer::reset_peak`].
    pub(crate) fn peak_connections(&self) -> usize {
        self.files.connections.peak()
    }

    /// The clients' ends of the connections open at that peak.
    pub(crate) fn peak_peers(&self) -> Vec<SocketAddr> {
        self.files.connections.peak_peers()
    }

    pub(crate) fn reset_peak(&self) {
        self.files.connections.reset(self.service.addr());
    }
}

impl Files {
    fn sample_connections(&self) -> usize {
        self.local
            .get()
            .map_or(0, |local| self.connections.sample(*local))
    }

    fn handle(&self, request: Request) {
        let open_connections = self.sample_connections();
        let target = request.url().to_string();
        let auth = header(&request, "Authorization").map(str::to_owned);
        let range = header(&request, "Range").map(str::to_owned);
        let connection = request.remote_addr().copied();
        let method = request.method().clone();
        let cdn_token = auth
            .as_deref()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim() == self.token)
            .unwrap_or(false);
        let username = auth.as_deref().and_then(basic_user);
        let without_fragment = target.split('#').next().unwrap_or("");
        let (path, query) = match without_fragment.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (without_fragment, None),
        };

        let outcome = if !matches!(method, Method::Get | Method::Head) {
            Outcome::Error(405, "MethodNotAllowed")
        } else if self.challenges.load(Ordering::SeqCst) {
            if path == "/token" {
                Outcome::Token
            } else if cdn_token {
                self.serve(path, query, range.as_deref())
            } else {
                Outcome::Challenge
            }
        } else if auth.is_some() {
            Outcome::Error(
                400,
                "InvalidArgument: only one auth mechanism allowed; the URL is already signed",
            )
        } else {
            self.serve(path, query, range.as_deref())
        };
        let status = match &outcome {
            Outcome::File(Blob {
                span: Span::Part { .. },
                ..
            }) => 206,
            Outcome::File(_) | Outcome::Token => 200,
            Outcome::Unsatisfiable(_) => 416,
            Outcome::Redirect(_) => 307,
            Outcome::Error(status, _) => *status,
            Outcome::Challenge => 401,
        };
        let progress = self.log.push(CdnRequest {
            method: method.as_str().to_owned(),
            path: target.clone(),
            authorization: auth.is_some(),
            username,
            cdn_token,
            status,
            at: SystemTime::now(),
            connection,
            range,
            offset: match &outcome {
                Outcome::File(Blob {
                    span: Span::Part { first, .. },
                    ..
                }) => *first,
                _ => 0,
            },
            bytes: 0,
            ended: None,
            given_up: false,
            open_connections,
        });
        if !matches!(outcome, Outcome::File(_)) {
            // Before it is written: a client that has it finds it ended.
            progress.end();
        }
        let _ = match outcome {
            Outcome::Token => {
                let body = serde_json::json!({
                    "token": self.token,
                    "access_token": self.token,
                    "expires_in": 300,
                });
                let mut response = Response::from_string(body.to_string());
                add_header(&mut response, "Content-Type", "application/json");
                request.respond(response)
            }
            Outcome::Challenge => {
                let base = self.base.lock().map(|r| r.clone()).unwrap_or_default();
                let challenge = format!("Bearer realm=\"{base}/token\",service=\"{CDN_SERVICE}\"");
                let mut response =
                    Response::from_string("AccessDenied: token required").with_status_code(401);
                add_header(&mut response, "WWW-Authenticate", &challenge);
                request.respond(response)
            }
            Outcome::Redirect(location) => {
                let mut response = Response::empty(307);
                add_header(&mut response, "Location", &location);
                request.respond(response)
            }
            Outcome::Unsatisfiable(len) => {
                let mut response = Response::empty(416);
                add_header(&mut response, "Content-Range", &format!("bytes */{len}"));
                request.respond(response)
            }
            Outcome::File(blob) => self.send_file(request, status, blob, Arc::clone(&progress)),
            Outcome::Error(status, message) => {
                request.respond(Response::from_string(message).with_status_code(status))
            }
        };
        progress.end();
        self.sample_connections();
    }

    /// The body of a blob read, or of its range: paced, counted into the
    /// log entry's `progress`, and cut if a cut is armed.
    fn send_file(
        &self,
        request: Request,
        status: u16,
        blob: Blob,
        progress: Arc<Progress>,
    ) -> std::io::Result<()> {
        let Blob {
            mut file,
            len,
            span,
            ranges,
        } = blob;
        let connection = request.remote_addr().copied();
        let (first, count, content_range) = match span {
            Span::Part { first, last } => {
                // The wrong mode shifts the label, never the bytes:
                // only a client that checks the header notices.
                let shift = u64::from(ranges == CdnRanges::WrongContentRange);
                let label = format!("bytes {}-{}/{len}", first + shift, last + shift);
                (first, last - first + 1, Some(label))
            }
            _ => (0, len, None),
        };
        if file.seek(SeekFrom::Start(first)).is_err() {
            return request.respond(Response::from_string("InternalError").with_status_code(500));
        }
        let given_up = Arc::clone(&progress);
        let cut = Arc::new(AtomicBool::new(false));
        let request_is_get = request.method() == &Method::Get;
        let cut_after = match request.method() {
            Method::Get => self.cuts.take(),
            _ => None,
        };
        let body: Box<dyn Read + Send> = match cut_after {
            Some(after) => Box::new(CutAfter {
                inner: file.take(count),
                left: after,
                cut: Arc::clone(&cut),
            }),
            None => Box::new(file.take(count)),
        };
        let body: Box<dyn Read + Send> = match &self.buckets {
            Some(buckets) => Box::new(buckets.pace(connection, body)),
            None => Box::new(body),
        };
        // Large reads: io::copy then moves 256 KiB per write instead of 8 KiB.
        let body = BufReader::with_capacity(
            256 * 1024,
            Counted {
                inner: body,
                len: count,
                progress,
            },
        );
        let mut response = Response::new(
            status.into(),
            Vec::new(),
            body,
            usize::try_from(count).ok(),
            None,
        )
        // tiny_http switches to chunked encoding above 32 KiB; a CDN
        // sends Content-Length, and clients check it.
        .with_chunked_threshold(usize::MAX);
        add_header(&mut response, "Content-Type", "application/octet-stream");
        if !matches!(ranges, CdnRanges::Ignore | CdnRanges::Refuse) {
            add_header(&mut response, "Accept-Ranges", "bytes");
        }
        if let Some(label) = content_range {
            add_header(&mut response, "Content-Range", &label);
        }
        let answered = request.respond(response);
        if cut.load(Ordering::SeqCst) {
            if let (Some(local), Some(peer)) = (self.local.get(), connection) {
                shut_down(*local, peer);
            }
        } else if request_is_get {
            // tiny_http answers Ok to a client that went away mid-body.
            given_up.given_up_unless(count);
        }
        answered
    }

    /// A blob read that passed the auth checks.
    fn serve(&self, path: &str, query: Option<&str>, range: Option<&str>) -> Outcome {
        if let Some(expiry) = &self.expiry {
            match expiry.check(path, query) {
                Verdict::Unsigned => {
                    let base = self.base.lock().map(|b| b.clone()).unwrap_or_default();
                    return Outcome::Redirect(format!("{base}{path}?{}", expiry.sign(path)));
                }
                Verdict::Expired => {
                    return Outcome::Error(403, "AccessDenied: Request has expired")
                }
                Verdict::Forged => return Outcome::Error(403, "SignatureDoesNotMatch"),
                Verdict::Valid => {}
            }
        }
        let (file, len) = match self.open_file(path) {
            Ok(found) => found,
            Err((status, message)) => return Outcome::Error(status, message),
        };
        let ranges = CdnRanges::from_index(self.ranges.load(Ordering::SeqCst));
        let span = range::span_as(ranges, range, len);
        match span {
            Span::Unsatisfiable => Outcome::Unsatisfiable(len),
            span => Outcome::File(Blob {
                file,
                len,
                span,
                ranges,
            }),
        }
    }

    fn open_file(&self, path: &str) -> Result<(File, u64), (u16, &'static str)> {
        let relative = Path::new(path.trim_start_matches('/'));
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err((400, "InvalidURI"));
        }
        let full = self.root.join(relative);
        let file = File::open(&full).map_err(|_| (404, "NoSuchKey"))?;
        let meta = file.metadata().map_err(|_| (404, "NoSuchKey"))?;
        if !meta.is_file() {
            return Err((404, "NoSuchKey"));
        }
        Ok((file, meta.len()))
    }
}

fn add_header<R: Read>(response: &mut Response<R>, name: &str, value: &str) {
    if let Ok(h) = Header::from_bytes(name, value) {
        response.add_header(h);
    }
}

/// The user name of a `Basic` Authorization value.
fn basic_user(value: &str) -> Option<String> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    Some(
        decoded
            .split_once(':')
            .map_or(decoded.as_str(), |(u, _)| u)
            .to_owned(),
    )
}
