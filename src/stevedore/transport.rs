//! One GET as a registry client must do it: redirects followed by hand so the
//! bearer token stays with its origin, retries with backoff and
//! `Retry-After`, an idle (not total) receive timeout, and bounded body reads.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, RETRY_AFTER};
use http::StatusCode;
use url::Url;

use super::clients::{Http, TrustedClients};
use super::config::Config;
use super::error::{Error, Reason, Result};
use super::origin::{carries_secrets, shown, Origin};
use super::secret::Secret;

pub type Response = reqwest::Response;

/// What a call's requests go through: the process's client, and a cache's
/// trust, which picks its own client for the hosts it has settings for.
#[derive(Clone)]
pub struct Transport {
    config: Config,
    shared: Arc<Http>,
    trusted: Option<Arc<TrustedClients>>,
    /// Whether a connection that could not be made is tried again: not
    /// when another source waits behind this one, which is asked instead.
    retry_connect: bool,
    /// Headers a source's configuration adds (hosts.toml `[header]`): they
    /// may be secrets, so they go where a credential may go, the first
    /// URL's own origin, never a redirect target or plain http beyond
    /// loopback.
    origin_headers: Option<Arc<HeaderMap>>,
    /// GETs over HTTP/1.1 only, a connection each (`Http::separate`).
    separate_connections: bool,
}

impl Transport {
    pub fn new(config: Config) -> Result<Transport> {
        Ok(Transport {
            shared: Arc::new(Http::new(&config, None)?),
            config,
            trusted: None,
            retry_connect: true,
            origin_headers: None,
            separate_connections: false,
        })
    }

    /// The same shared client, with a cache's trust (if any) picking the
    /// client for every host it has settings for.
    pub fn with_trust(&self, trusted: Option<Arc<TrustedClients>>) -> Transport {
        Transport {
            config: self.config.clone(),
            shared: self.shared.clone(),
            trusted,
            retry_connect: self.retry_connect,
            origin_headers: self.origin_headers.clone(),
            separate_connections: self.separate_connections,
        }
    }

    /// The same, adding `headers` to requests to the first URL's origin
    /// (see `origin_headers`); none of them replaces one tank sets.
    pub fn with_origin_headers(&self, headers: HeaderMap) -> Transport {
        Transport {
            origin_headers: (!headers.is_empty()).then(|| Arc::new(headers)),
            ..self.clone()
        }
    }

    /// The same, for a source with another behind it: a connection that
    /// cannot be made fails at once, so falling back costs one attempt.
    pub fn with_fallback(&self) -> Transport {
        Transport {
            retry_connect: false,
            ..self.clone()
        }
    }

    /// The same, each GET in flight on a TCP connection of its own (the
    /// ranges of one blob fetched at once): HTTP/2 would carry them all as
    /// streams of one.
    pub fn with_separate_connections(&self) -> Transport {
        Transport {
            separate_connections: true,
            ..self.clone()
        }
    }

    /// The client for `url`: the one place a connection's TLS identity is
    /// chosen, for every hop.
    fn http_for(&self, url: &Url) -> Result<Arc<Http>> {
        let own = match &self.trusted {
            Some(t) => t.for_url(url)?,
            None => None,
        };
        Ok(own.unwrap_or_else(|| self.shared.clone()))
    }

    /// GETs `url`, following redirects and retrying transient failures.
    /// `authorization` is sent only to `url`'s own origin and, unless it is
    /// anonymous, only over https or to loopback. Any final status is
    /// returned as a response; only failures to get one are errors.
    pub async fn get(
        &self,
        url: &Url,
        headers: &HeaderMap,
        authorization: Option<Authorization<'_>>,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            let outcome = self
                .get_following_redirects(url, headers, authorization)
                .await;
            if attempt >= self.config.max_retries {
                return outcome.map_err(|f| f.error);
            }
            let wait = match &outcome {
                Ok(resp) if is_retryable_status(resp.status()) => self.wait_for(attempt, resp),
                Err(f) if f.unconnected && !self.retry_connect => {
                    return outcome.map_err(|f| f.error)
                }
                // Most often a pooled connection the server had just timed
                // out: a new one will do, with no reason to wait.
                Err(f) if f.unanswered && attempt == 0 => Duration::ZERO,
                Err(f) if is_retryable_error(&f.error) => self.backoff(attempt),
                _ => return outcome.map_err(|f| f.error),
            };
            if let Ok(resp) = outcome {
                discard(resp).await;
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn get_following_redirects(
        &self,
        url: &Url,
        headers: &HeaderMap,
        authorization: Option<Authorization<'_>>,
    ) -> std::result::Result<Response, Failed> {
        let token_origin = Origin::of(url);
        let mut current = url.clone();
        let mut hops = 0;
        loop {
            let mut sent = headers.clone();
            let own_origin = Origin::of(&current) == token_origin;
            if let Some(extra) = self.origin_headers.as_deref() {
                if own_origin && carries_secrets(&current) {
                    for (name, value) in extra {
                        if !headers.contains_key(name) {
                            sent.append(name, value.clone());
                        }
                    }
                }
            }
            if let Some(auth) = authorization {
                // Whatever handed it over: never in the clear beyond
                // loopback, never to another origin.
                if Origin::of(&current) == token_origin
                    && (auth.anonymous || carries_secrets(&current))
                {
                    sent.insert(AUTHORIZATION, authorization_header(auth.value)?);
                }
            }
            let resp = self.send(&current, sent).await?;
            if !is_redirect(resp.status()) {
                return Ok(resp);
            }
            if hops == self.config.max_redirects {
                return Err(Error::transport(
                    Reason::TooManyRedirects,
                    format!(
                        "GET {}: more than {} redirects in a row",
                        shown(url),
                        self.config.max_redirects
                    ),
                )
                .into());
            }
            current = next_location(&current, resp.headers())?;
            discard(resp).await;
            hops += 1;
        }
    }

    async fn send(&self, url: &Url, headers: HeaderMap) -> std::result::Result<Response, Failed> {
        let http = self.http_for(url)?;
        let client = match self.separate_connections {
            true => &http.separate,
            false => &http.client,
        };
        let request = client.get(url.clone()).headers(headers);
        request.send().await.map_err(|e| Failed {
            error: http.refused_for_certificate(describe("GET", url, &e)),
            unanswered: closed_before_answer(&e),
            unconnected: e.is_connect(),
        })
    }

    /// POSTs a form (an OAuth2 token request, which carries a refresh
    /// token) once: no redirects, no retries, as the token server's answer
    /// decides what comes next. Never over plain http beyond loopback.
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Result<Response> {
        if !carries_secrets(url) {
            return Err(Error::auth(
                Reason::TokenRequestFailed,
                format!(
                    "POST {}: refusing to send a token request over plain http",
                    shown(url)
                ),
            ));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let via = self.http_for(url)?;
        via.client
            .post(url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| describe("POST", url, &e))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn backoff(&self, attempt: u32) -> Duration {
        self.config
            .backoff_base
            .saturating_mul(1 << attempt.min(16))
    }

    /// Backoff, unless a 429 / 503 says how long to wait.
    fn wait_for(&self, attempt: u32, resp: &Response) -> Duration {
        let told = matches!(
            resp.status(),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        )
        .then(|| resp.headers().get(RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
        match told {
            Some(secs) => Duration::from_secs(secs).min(self.config.max_retry_after),
            None => self.backoff(attempt),
        }
    }
}

/// A failed attempt, and whether the connection closed before any answer.
struct Failed {
    error: Error,
    unanswered: bool,
    /// No connection was made (refused, unreachable, or its timeout).
    unconnected: bool,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            unanswered: false,
            unconnected: false,
        }
    }
}

/// The redirect target, refused when it leaves http(s) or drops from https
/// to http.
pub fn next_location(current: &Url, headers: &HeaderMap) -> Result<Url> {
    let location = headers
        .get(LOCATION)
        .ok_or_else(|| {
            Error::transport(
                Reason::InvalidRedirect,
                format!("GET {}: redirect without a Location header", shown(current)),
            )
        })?
        .to_str()
        .ok()
        .and_then(|l| current.join(l).ok())
        .ok_or_else(|| {
            Error::transport(
                Reason::InvalidRedirect,
                format!(
                    "GET {}: redirect with an unparsable Location header",
                    shown(current)
                ),
            )
        })?;
    match (current.scheme(), location.scheme()) {
        (_, "https") | ("http", "http") => Ok(location),
        ("https", "http") => Err(Error::transport(
            Reason::InsecureRedirect,
            format!(
                "GET {}: refusing redirect from https to {}",
                shown(current),
                shown(&location)
            ),
        )),
        (_, other) => Err(Error::transport(
            Reason::InsecureRedirect,
            format!(
                "GET {}: refusing redirect to a {other}: URL",
                shown(current)
            ),
        )),
    }
}

/// An `Authorization` value (a whole header value, `Bearer …` or
/// `Basic …`) and who earned it. One earned with a credential (a Basic
/// header, a token a realm gave for a password) is a secret and never
/// crosses plain http beyond loopback, whatever put it in a cache; a token
/// a realm hands to anyone is none, and may go to the origin it was earned
/// at over that origin's own scheme (an insecure registry's tokens).
#[derive(Clone, Copy)]
pub struct Authorization<'a> {
    pub value: &'a str,
    pub anonymous: bool,
}

fn authorization_header(value: &str) -> Result<HeaderValue> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        Error::auth(
            Reason::NoTokenInResponse,
            "the token endpoint answered a token that cannot be sent in a header",
        )
    })?;
    // Kept out of hyper's debug output and HTTP/2 header compression.
    header.set_sensitive(true);
    Ok(header)
}

/// The secrets sent for a response: redacted from any excerpt of its body
/// that a message quotes, so a server that echoes them leaks nothing.
#[derive(Clone, Default)]
pub struct SentSecrets(Vec<Secret>);

pub fn with_secrets(mut resp: Response, secrets: Vec<Secret>) -> Response {
    let secrets: Vec<Secret> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
    if !secrets.is_empty() {
        resp.extensions_mut().insert(SentSecrets(secrets));
    }
    resp
}

fn redact(text: String, secrets: Option<&SentSecrets>) -> String {
    let Some(secrets) = secrets else { return text };
    // Longest first, so a secret inside another is not half shown.
    let mut sorted: Vec<&Secret> = secrets.0.iter().collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    sorted
        .into_iter()
        .fold(text, |t, s| t.replace(s.as_str(), "<redacted>"))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn is_retryable_error(e: &Error) -> bool {
    matches!(
        e.reason,
        Reason::Connect | Reason::Timeout | Reason::ConnectionReset | Reason::RequestFailed
    )
}

fn sources(e: &reqwest::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(std::error::Error::source(e), |s| s.source())
}

/// An io::Error's source() skips the error it wraps, and the TLS layers
/// wrap rustls's error in one io::Error, then that in another.
fn wraps_rustls_error(io: &std::io::Error) -> bool {
    let mut inner = io.get_ref();
    while let Some(e) = inner {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
    }
    false
}

fn closed_before_answer(e: &reqwest::Error) -> bool {
    sources(e).any(|s| {
        s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
    })
}

/// Turns a reqwest failure into our error, naming the URL (as [`shown`])
/// and the cause.
fn describe(method: &str, url: &Url, e: &reqwest::Error) -> Error {
    // reqwest names the whole URL, query and all.
    let mut chain = match e.url() {
        Some(u) => e.to_string().replace(u.as_str(), &shown(u)),
        None => e.to_string(),
    };
    let url = shown(url);
    let mut reset = false;
    let mut tls = false;
    let mut proxy = None;
    for s in sources(e) {
        let text = s.to_string();
        if !chain.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            reset |= matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            );
            tls |= wraps_rustls_error(io);
        }
        tls |= s.downcast_ref::<rustls::Error>().is_some();
        // h2 keeps the rustls error only as text.
        tls |= text.contains("received fatal alert");
        proxy = proxy.or_else(|| tunnel_refusal(s));
    }
    if let Some(status) = proxy {
        let err = Error::transport(Reason::Proxy, format!("{method} {url}: {chain}"));
        return match status {
            Some(status) => Error::transport(
                Reason::Proxy,
                format!("{} (the proxy answered HTTP {status})", err.message),
            )
            .with_status(status),
            None => err,
        };
    }
    let reason = if e.is_timeout() {
        Reason::Timeout
    } else if tls {
        Reason::Tls
    } else if reset {
        Reason::ConnectionReset
    } else if e.is_connect() {
        Reason::Connect
    } else {
        Reason::RequestFailed
    };
    Error::transport(reason, format!("{method} {url}: {chain}"))
}

/// A proxy that would not open a tunnel: `Some(status)` when it said
/// which. hyper-util keeps its tunnel error type private, so its words are
/// all there is; a proxy that could not be reached is a connect failure.
fn tunnel_refusal(e: &(dyn std::error::Error + 'static)) -> Option<Option<u16>> {
    let text = e.to_string();
    let what = text.strip_prefix("tunnel error: ")?;
    match what {
        "proxy authorization required" => Some(Some(407)),
        "failed to create underlying connection" | "io error establishing tunnel" => None,
        _ => Some(None),
    }
}

/// A response body read chunk by chunk: stops as soon as it passes its
/// limit, and checks what arrived against `Content-Length`.
pub struct Body {
    url: Url,
    resp: Response,
    declared: Option<u64>,
    received: u64,
    /// At most this many bytes, else an error with this reason.
    limit: Option<(u64, Reason)>,
    /// A connection that closes early stays a transport error (the caller
    /// resumes), instead of becoming a length mismatch.
    resumable: bool,
}

impl Body {
    pub fn new(url: &Url, resp: Response) -> Body {
        Body {
            url: url.clone(),
            declared: resp.content_length(),
            resp,
            received: 0,
            limit: None,
            resumable: false,
        }
    }

    /// See `resumable`.
    pub fn resumable(mut self) -> Body {
        self.resumable = true;
        self
    }

    /// Fails with `reason` as soon as more than `bytes` arrive.
    pub fn limit(mut self, bytes: u64, reason: Reason) -> Body {
        self.limit = Some((bytes, reason));
        self
    }

    pub fn content_length(&self) -> Option<u64> {
        self.declared
    }

    /// The next piece of the body, `None` once all of it arrived.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        let chunk = match self.resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                return match self.declared {
                    Some(n) if n != self.received => {
                        Err(length_mismatch(&self.url, n, self.received, ""))
                    }
                    _ => Ok(None),
                }
            }
            Err(e) => {
                let err = describe("GET", &self.url, &e);
                return Err(match self.declared {
                    Some(n)
                        if !self.resumable
                            && self.received < n
                            && err.reason == Reason::RequestFailed =>
                    {
                        length_mismatch(&self.url, n, self.received, "the connection closed early")
                    }
                    _ => err,
                });
            }
        };
        self.received += chunk.len() as u64;
        if let Some((limit, reason)) = self.limit {
            if self.received > limit {
                return Err(Error::protocol(
                    reason,
                    format!("GET {}: body exceeds {limit} bytes", shown(&self.url)),
                ));
            }
        }
        Ok(Some(chunk))
    }

    /// The whole body in one buffer (for small bodies: manifests, tokens).
    pub async fn read_to_vec(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// Reads and drops a small body so its connection goes back to the pool;
/// a large or broken one is simply dropped with its connection.
pub async fn discard(mut resp: Response) {
    let mut left: usize = 64 << 10;
    while let Ok(Some(chunk)) = resp.chunk().await {
        match left.checked_sub(chunk.len()) {
            Some(l) => left = l,
            None => return,
        }
    }
}

fn length_mismatch(url: &Url, declared: u64, received: u64, why: &str) -> Error {
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    Error::protocol(
        Reason::LengthMismatch,
        format!(
            "GET {}: Content-Length is {declared} but {received} bytes arrived{why}",
            shown(url)
        ),
    )
}

/// At most `max` bytes of an error body, for messages, with the secrets
/// sent for it redacted; never fails.
pub async fn body_excerpt(resp: Response, max: usize) -> Option<String> {
    let mut resp = resp;
    let secrets = resp.extensions().get::<SentSecrets>().cloned();
    // Read past `max` by the longest secret, so one cut at the edge is
    // still found whole.
    let longest = secrets
        .as_ref()
        .map_or(0, |s| s.0.iter().map(|s| s.len()).max().unwrap_or(0));
    let mut out = Vec::new();
    while out.len() < max + longest {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                out.extend_from_slice(&chunk[..chunk.len().min(max + longest - out.len())])
            }
            _ => break,
        }
    }
    if out.is_empty() {
        return None;
    }
    let text = redact(String::from_utf8_lossy(&out).into_owned(), secrets.as_ref());
    // Cut at a character boundary at or below `max`.
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(from: &str, to: &str) -> Result<Url> {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_str(to).unwrap());
        next_location(&Url::parse(from).unwrap(), &h)
    }

    #[test]
    fn redirect_targets() {
        assert_eq!(
            loc("https://r.io/v2/a", "/b").unwrap().as_str(),
            "https://r.io/b"
        );
        assert_eq!(
            loc("https://r.io/v2/a", "https://cdn/x?sig=1")
                .unwrap()
                .as_str(),
            "https://cdn/x?sig=1"
        );
        assert_eq!(
            loc("http://r/a", "http://cdn/x").unwrap().as_str(),
            "http://cdn/x"
        );
        assert_eq!(
            loc("http://r/a", "https://cdn/x").unwrap().as_str(),
            "https://cdn/x"
        );
        assert_eq!(
            loc("https://r/a", "http://cdn/x").unwrap_err().reason,
            Reason::InsecureRedirect
        );
        assert_eq!(
            loc("http://r/a", "file:///etc/passwd").unwrap_err().reason,
            Reason::InsecureRedirect
        );
        assert_eq!(
            loc("http://r/a", "ftp://x/y").unwrap_err().reason,
            Reason::InsecureRedirect
        );
        assert_eq!(
            loc("http://r/a", "http://[::1").unwrap_err().reason,
            Reason::InvalidRedirect
        );
        let none = next_location(&Url::parse("http://r/").unwrap(), &HeaderMap::new());
        assert_eq!(none.unwrap_err().reason, Reason::InvalidRedirect);
    }

    #[test]
    fn the_secrets_kept_for_redaction_are_wiped_when_dropped() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let sent = SentSecrets(vec!["Bearer t0ken".into()]);
        sent.0.iter().for_each(wiped_on_drop);
        assert_eq!(
            redact("x Bearer t0ken y".into(), Some(&sent)),
            "x <redacted> y"
        );
    }

    #[test]
    fn backoff_doubles() {
        let t = Transport::new(Config::default()).unwrap();
        let waits: Vec<_> = (0..3).map(|a| t.backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4]);
    }
}
