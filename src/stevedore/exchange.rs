//! One request and its response on a pooled HTTP/1.1 connection: no
//! redirects, no retries (the transport decides those). The connection
//! goes back to the pool when the body has been read to its end, and is
//! closed instead when a body is dropped half-read.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, PROXY_AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use url::{Position, Url};

use super::dial::{Dialer, Sender};
use super::error::{reason, Error, Result};
use super::origin::Origin;
use super::pool::Pool;
use super::proxy::{Proxies, Proxy};

/// Idle connections kept per origin: more than any sane number of threads
/// pulling from one registry at once.
const MAX_IDLE_PER_ORIGIN: usize = 32;
const MAX_IDLE_TIME: Duration = Duration::from_secs(90);

pub struct Exchanger {
    dialer: Dialer,
    pool: Arc<Pool>,
    idle_timeout: Duration,
}

impl Exchanger {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> Result<Exchanger> {
        Ok(Exchanger {
            dialer: Dialer::new(connect_timeout, Proxies::from_env()?)?,
            pool: Arc::new(Pool::new(MAX_IDLE_TIME, MAX_IDLE_PER_ORIGIN)),
            idle_timeout,
        })
    }

    /// GETs `url` with `headers` (plus Host and User-Agent), on an idle
    /// connection to its origin when there is one.
    pub async fn get(&self, url: &Url, headers: &HeaderMap) -> Result<Response> {
        let origin = Origin::of(url);
        if let Some(sender) = self.pool.take(&origin) {
            match self.send(url, sender, headers).await {
                Ok((sender, resp)) => return Ok(self.response(url, origin, sender, resp)),
                // The server may have closed a connection that sat idle just
                // as it was reused; a GET is safe to send again on a new one.
                Err(e) if e.reason != reason::TIMEOUT => {}
                Err(e) => return Err(e),
            }
        }
        let sender = self.dialer.dial(url).await?;
        let (sender, resp) = self.send(url, sender, headers).await?;
        Ok(self.response(url, origin, sender, resp))
    }

    async fn send(
        &self,
        url: &Url,
        mut sender: Sender,
        headers: &HeaderMap,
    ) -> Result<(Sender, http::Response<Incoming>)> {
        let request = request(url, headers, self.dialer.proxy_for(url))?;
        let exchange = async {
            sender.ready().await?;
            sender.send_request(request).await
        };
        let resp = tokio::time::timeout(self.idle_timeout, exchange)
            .await
            .map_err(|_| idle_timeout(url, self.idle_timeout))?
            .map_err(|e| describe(url, &e))?;
        Ok((sender, resp))
    }

    fn response(
        &self,
        url: &Url,
        origin: Origin,
        sender: Sender,
        resp: http::Response<Incoming>,
    ) -> Response {
        let (head, body) = resp.into_parts();
        Response {
            url: url.clone(),
            status: head.status,
            headers: head.headers,
            body,
            lease: Some(Lease {
                pool: self.pool.clone(),
                origin,
                sender,
            }),
            idle_timeout: self.idle_timeout,
        }
    }
}

/// The request head. Through a proxy, a plain-http request names the whole
/// URL (absolute form) and carries the proxy's credentials; an https one
/// travels in a tunnel and looks as it would without the proxy.
fn request(url: &Url, headers: &HeaderMap, proxy: Option<&Proxy>) -> Result<Request<Empty<Bytes>>> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let forward = proxy.filter(|_| url.scheme() == "http");
    let target = match forward {
        Some(_) => &url[..Position::AfterQuery],
        None => &url[Position::BeforePath..Position::AfterQuery],
    };
    let mut request = Request::get(target)
        .body(Empty::new())
        .map_err(|e| Error::transport(reason::REQUEST_FAILED, format!("GET {url}: {e}")))?;
    let h = request.headers_mut();
    h.insert(
        HOST,
        HeaderValue::from_str(&host).map_err(|e| {
            Error::transport(reason::REQUEST_FAILED, format!("GET {url}: host: {e}"))
        })?,
    );
    h.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("tank/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(auth) = forward.and_then(|p| p.authorization.clone()) {
        h.insert(PROXY_AUTHORIZATION, auth);
    }
    for (name, value) in headers {
        h.append(name, value.clone());
    }
    Ok(request)
}

/// The connection a response arrived on, until its body ends.
struct Lease {
    pool: Arc<Pool>,
    origin: Origin,
    sender: Sender,
}

pub struct Response {
    url: Url,
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    lease: Option<Lease>,
    idle_timeout: Duration,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body bytes still to come by `Content-Length` (the whole body
    /// before the first chunk); `None` when chunked or close-delimited.
    pub fn content_length(&self) -> Option<u64> {
        http_body::Body::size_hint(&self.body).exact()
    }

    /// The next piece of the body, `None` at its end. No piece within the
    /// idle timeout is an error, however long the body has been flowing.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            let frame = match tokio::time::timeout(self.idle_timeout, self.body.frame()).await {
                Err(_) => {
                    self.lease = None;
                    return Err(idle_timeout(&self.url, self.idle_timeout));
                }
                Ok(None) => {
                    if let Some(lease) = self.lease.take() {
                        lease.pool.give_back(lease.origin, lease.sender).await;
                    }
                    return Ok(None);
                }
                Ok(Some(Err(e))) => {
                    self.lease = None;
                    return Err(describe(&self.url, &e));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry nothing a registry client needs.
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

fn idle_timeout(url: &Url, after: Duration) -> Error {
    Error::transport(
        reason::TIMEOUT,
        format!("GET {url}: nothing received for {after:?}"),
    )
}

/// Turns a failed exchange into our error, naming the URL and the cause.
fn describe(url: &Url, e: &hyper::Error) -> Error {
    let mut chain = e.to_string();
    let mut reset = false;
    let mut tls = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            reset |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
            tls |= io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        }
        tls |= s.downcast_ref::<rustls::Error>().is_some();
        source = s.source();
    }
    let reason = if tls {
        reason::TLS
    } else if reset {
        reason::CONNECTION_RESET
    } else {
        reason::REQUEST_FAILED
    };
    Error::transport(reason, format!("GET {url}: {chain}"))
}
