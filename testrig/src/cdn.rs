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

use std::fs::File;
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Result;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tiny_http::{Header, Method, Request, Response};

use crate::random::random_hex;
use crate::serve::{header, HttpService};

/// The service named in the CDN's own Bearer challenge.
pub(crate) const CDN_SERVICE: &str = "tank-cdn";

/// Enough for a client pulling many layers at once.
const WORKERS: usize = 8;

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
}

pub(crate) struct CdnServer {
    service: HttpService,
    challenges: Arc<AtomicBool>,
}

struct Files {
    root: PathBuf,
    log: Arc<Mutex<Vec<CdnRequest>>>,
    challenges: Arc<AtomicBool>,
    /// `http://127.0.0.1:PORT/token`, once the port is known.
    realm: Mutex<String>,
    /// The one token the CDN's realm hands out.
    token: String,
}

/// What a request comes to before it is answered.
enum Outcome {
    File(File, usize),
    Error(u16, &'static str),
    Challenge,
    Token,
}

impl CdnServer {
    pub(crate) fn start(
        root: PathBuf,
        log: Arc<Mutex<Vec<CdnRequest>>>,
        challenges: bool,
    ) -> Result<CdnServer> {
        let challenges = Arc::new(AtomicBool::new(challenges));
        let files = Arc::new(Files {
            root,
            log,
            challenges: Arc::clone(&challenges),
            realm: Mutex::new(String::new()),
            token: format!("cdn-{}", random_hex(16)?),
        });
        let handler = Arc::clone(&files);
        let service = HttpService::start("cdn", WORKERS, Arc::new(move |rq| handler.handle(rq)))?;
        let server = CdnServer {
            service,
            challenges,
        };
        if let Ok(mut realm) = files.realm.lock() {
            *realm = server.realm_url();
        }
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
        self.challenges.store(on, Ordering::SeqCst);
    }
}

impl Files {
    fn handle(&self, request: Request) {
        let target = request.url().to_string();
        let auth = header(&request, "Authorization").map(str::to_owned);
        let method = request.method().clone();
        let cdn_token = auth
            .as_deref()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim() == self.token)
            .unwrap_or(false);
        let username = auth.as_deref().and_then(basic_user);
        let path = target.split(['?', '#']).next().unwrap_or("");

        let outcome = if !matches!(method, Method::Get | Method::Head) {
            Outcome::Error(405, "MethodNotAllowed")
        } else if self.challenges.load(Ordering::SeqCst) {
            if path == "/token" {
                Outcome::Token
            } else if cdn_token {
                self.open(path)
            } else {
                Outcome::Challenge
            }
        } else if auth.is_some() {
            Outcome::Error(
                400,
                "InvalidArgument: only one auth mechanism allowed; the URL is already signed",
            )
        } else {
            self.open(path)
        };
        let status = match &outcome {
            Outcome::File(..) | Outcome::Token => 200,
            Outcome::Error(status, _) => *status,
            Outcome::Challenge => 401,
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(CdnRequest {
                method: method.as_str().to_owned(),
                path: target,
                authorization: auth.is_some(),
                username,
                cdn_token,
                status,
                at: SystemTime::now(),
            });
        }
        let _ = match outcome {
            Outcome::Token => {
                let body = serde_json::json!({
                    "token": self.token,
                    "access_token": self.token,
                    "expires_in": 300,
                });
                let mut response = Response::from_string(body.to_string());
                if let Ok(h) = Header::from_bytes("Content-Type", "application/json") {
                    response.add_header(h);
                }
                request.respond(response)
            }
            Outcome::Challenge => {
                let realm = self.realm.lock().map(|r| r.clone()).unwrap_or_default();
                let challenge = format!("Bearer realm=\"{realm}\",service=\"{CDN_SERVICE}\"");
                let mut response =
                    Response::from_string("AccessDenied: token required").with_status_code(401);
                if let Ok(h) = Header::from_bytes("WWW-Authenticate", challenge) {
                    response.add_header(h);
                }
                request.respond(response)
            }
            Outcome::File(file, len) => {
                // Large reads: io::copy then moves 256 KiB per write instead of 8 KiB.
                let body = BufReader::with_capacity(256 * 1024, file);
                let mut response = Response::new(200.into(), Vec::new(), body, Some(len), None)
                    // tiny_http switches to chunked encoding above 32 KiB; a CDN
                    // sends Content-Length, and clients check it.
                    .with_chunked_threshold(usize::MAX);
                if let Ok(h) = Header::from_bytes("Content-Type", "application/octet-stream") {
                    response.add_header(h);
                }
                request.respond(response)
            }
            Outcome::Error(status, message) => {
                request.respond(Response::from_string(message).with_status_code(status))
            }
        };
    }

    fn open(&self, path: &str) -> Outcome {
        match self.open_file(path) {
            Ok((file, len)) => Outcome::File(file, len),
            Err((status, message)) => Outcome::Error(status, message),
        }
    }

    fn open_file(&self, path: &str) -> Result<(File, usize), (u16, &'static str)> {
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
        let len = usize::try_from(meta.len()).map_err(|_| (500, "InternalError"))?;
        Ok((file, len))
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
