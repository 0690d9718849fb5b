//! Opening a connection: TCP (each resolved address in turn, under one
//! connect timeout) to the origin or its proxy, a CONNECT tunnel through the
//! proxy for https, TLS through rustls, then an HTTP/1.1 handshake whose
//! connection task runs on the runtime.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use super::error::{reason, Error, Result};
use super::proxy::{Proxies, Proxy};

pub type Sender = SendRequest<Empty<Bytes>>;

/// A proxy's answer to CONNECT longer than this is not an answer.
const MAX_TUNNEL_REPLY: usize = 16 << 10;

pub struct Dialer {
    tls: TlsConnector,
    proxies: Proxies,
    connect_timeout: Duration,
}

impl Dialer {
    pub fn new(connect_timeout: Duration, proxies: Proxies) -> Result<Dialer> {
        Ok(Dialer {
            tls: TlsConnector::from(Arc::new(tls_config()?)),
            proxies,
            connect_timeout,
        })
    }

    /// The proxy requests to `url` go through, if any.
    pub fn proxy_for(&self, url: &Url) -> Option<&Proxy> {
        self.proxies.for_url(url)
    }

    /// A fresh connection to `url`'s origin, ready for one request at a
    /// time.
    pub async fn dial(&self, url: &Url) -> Result<Sender> {
        let proxy = self.proxy_for(url);
        let tcp = self.open_tcp(url, proxy).await?;
        if url.scheme() != "https" {
            return handshake(url, tcp).await;
        }
        let tcp = match proxy {
            Some(p) => tokio::time::timeout(self.connect_timeout, tunnel(url, tcp, p))
                .await
                .map_err(|_| {
                    Error::transport(
                        reason::TIMEOUT,
                        format!(
                            "GET {url}: the proxy {} opened no tunnel within {:?}",
                            p.authority, self.connect_timeout
                        ),
                    )
                })??,
            None => tcp,
        };
        let tls = self.start_tls(url, tcp).await?;
        handshake(url, tls).await
    }

    /// TCP to the origin, or to the proxy that reaches it.
    async fn open_tcp(&self, url: &Url, proxy: Option<&Proxy>) -> Result<TcpStream> {
        let (host, port, what) = match proxy {
            Some(p) => (p.host.clone(), p.port, "proxy "),
            None => (
                url.host().map(|h| h.to_owned()).ok_or_else(|| {
                    Error::transport(reason::CONNECT, format!("GET {url}: the URL has no host"))
                })?,
                url.port_or_known_default().unwrap_or(80),
                "",
            ),
        };
        let budget = self.connect_timeout;
        let tcp = tokio::time::timeout(budget, connect_tcp(&host, port, budget))
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no connection within {budget:?}"),
                ))
            })
            .map_err(|e| {
                let reason = if e.kind() == io::ErrorKind::TimedOut {
                    reason::TIMEOUT
                } else {
                    reason::CONNECT
                };
                Error::transport(
                    reason,
                    format!("GET {url}: cannot connect to {what}{host}:{port}: {e}"),
                )
            })?;
        // Requests are small and written whole; waiting to coalesce them
        // only adds a round trip of delay.
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// TLS to `url`'s host, verified against the roots, over `tcp`.
    async fn start_tls(&self, url: &Url, tcp: TcpStream) -> Result<TlsStream<TcpStream>> {
        let name = match url.host() {
            Some(Host::Domain(d)) => ServerName::try_from(d.to_owned()).map_err(|e| {
                Error::transport(
                    reason::TLS,
                    format!("GET {url}: {d:?} is not a TLS name: {e}"),
                )
            })?,
            Some(Host::Ipv4(ip)) => ServerName::IpAddress(IpAddr::V4(ip).into()),
            Some(Host::Ipv6(ip)) => ServerName::IpAddress(IpAddr::V6(ip).into()),
            None => {
                return Err(Error::transport(
                    reason::TLS,
                    format!("GET {url}: the URL has no host"),
                ))
            }
        };
        tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp))
            .await
            .map_err(|_| {
                Error::transport(
                    reason::TIMEOUT,
                    format!(
                        "GET {url}: no TLS handshake within {:?}",
                        self.connect_timeout
                    ),
                )
            })?
            .map_err(|e| Error::transport(reason::TLS, format!("GET {url}: TLS handshake: {e}")))
    }
}

/// Each resolved address in turn, each given an equal share of what is left
/// of `budget`: an address that swallows SYNs (an unroutable IPv6 address
/// listed before a working IPv4 one) must not use up the next one's time.
async fn connect_tcp(host: &Host<String>, port: u16, budget: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + budget;
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
        Host::Domain(d) => tokio::net::lookup_host((d.as_str(), port)).await?.collect(),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    let count = addrs.len();
    for (i, addr) in addrs.into_iter().enumerate() {
        let share = deadline.saturating_duration_since(Instant::now()) / (count - i) as u32;
        match tokio::time::timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} did not answer within {share:?}"),
                )
            }
        }
    }
    Err(last)
}

/// Asks the proxy for a tunnel to `url`'s origin; the TLS session to the
/// origin then runs inside it, so the proxy sees neither token nor bytes.
async fn tunnel(url: &Url, mut tcp: TcpStream, proxy: &Proxy) -> Result<TcpStream> {
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or(443)
    );
    let failed = |why: String| {
        Error::transport(
            reason::PROXY,
            format!("GET {url}: proxy {}: {why}", proxy.authority),
        )
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = &proxy.authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    tcp.write_all(&request)
        .await
        .map_err(|e| failed(format!("sending CONNECT: {e}")))?;
    // Byte by byte: whatever follows the reply's head belongs to the
    // tunnel, so not one byte past it may be read here.
    let mut reply = Vec::new();
    while !reply.ends_with(b"\r\n\r\n") {
        if reply.len() == MAX_TUNNEL_REPLY {
            return Err(failed(format!(
                "a CONNECT reply over {MAX_TUNNEL_REPLY} bytes"
            )));
        }
        match tcp.read_u8().await {
            Ok(b) => reply.push(b),
            Err(e) => return Err(failed(format!("reading the CONNECT reply: {e}"))),
        }
    }
    let status_line =
        String::from_utf8_lossy(reply.split(|&b| b == b'\n').next().unwrap_or_default())
            .trim_end()
            .to_owned();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if !status_line.starts_with("HTTP/1.") || !status.starts_with('2') || status.len() != 3 {
        let err = failed(format!("CONNECT {target} answered {status_line:?}"));
        return Err(match status.parse::<u16>() {
            Ok(code) => err.with_status(code),
            Err(_) => err,
        });
    }
    Ok(tcp)
}

async fn handshake<S>(url: &Url, io: S) -> Result<Sender>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|e| {
            Error::transport(reason::CONNECT, format!("GET {url}: HTTP handshake: {e}"))
        })?;
    // The connection task ends when the sender and the last response body
    // are dropped, or when the server closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Web PKI roots plus the host's own, HTTP/1.1 by ALPN. rustls, so the
/// library never meets the host process's OpenSSL.
fn tls_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates are skipped: the web PKI roots remain.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(reason::RUNTIME, format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
