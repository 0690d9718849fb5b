//! The "CDN" the redirecting registry sends blob reads to: a static file
//! server over that registry's storage root.
//!
//! Like S3 behind a signed URL it answers 400 to any request that carries an
//! `Authorization` header, so a client that leaks the registry token across
//! the redirect fails loudly.

use std::fs::File;
use std::io::BufReader;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Result;
use tiny_http::{Header, Method, Request, Response};

use crate::serve::{header, HttpService};

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
    /// The status the CDN answered.
    pub status: u16,
    pub at: SystemTime,
}

pub(crate) struct CdnServer {
    service: HttpService,
}

struct Files {
    root: PathBuf,
    log: Arc<Mutex<Vec<CdnRequest>>>,
}

impl CdnServer {
    pub(crate) fn start(root: PathBuf, log: Arc<Mutex<Vec<CdnRequest>>>) -> Result<CdnServer> {
        let files = Arc::new(Files { root, log });
        let service = HttpService::start("cdn", WORKERS, Arc::new(move |rq| files.handle(rq)))?;
        Ok(CdnServer { service })
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.service.addr())
    }
}

impl Files {
    fn handle(&self, request: Request) {
        let target = request.url().to_string();
        let authorization = header(&request, "Authorization").is_some();
        let method = request.method().clone();

        let outcome = if authorization {
            Err((
                400,
                "InvalidArgument: only one auth mechanism allowed; the URL is already signed",
            ))
        } else if !matches!(method, Method::Get | Method::Head) {
            Err((405, "MethodNotAllowed"))
        } else {
            self.open(&target)
        };
        let status = match &outcome {
            Ok(_) => 200,
            Err((status, _)) => *status,
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(CdnRequest {
                method: method.as_str().to_owned(),
                path: target,
                authorization,
                status,
                at: SystemTime::now(),
            });
        }
        let _ = match outcome {
            Ok((file, len)) => {
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
            Err((status, message)) => {
                request.respond(Response::from_string(message).with_status_code(status))
            }
        };
    }

    fn open(&self, target: &str) -> Result<(File, usize), (u16, &'static str)> {
        let path = target.split(['?', '#']).next().unwrap_or("");
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
