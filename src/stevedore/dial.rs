//! Opening a connection: TCP (each resolved address in turn, under one
//! connect timeout), TLS through rustls for https, then an HTTP/1.1
//! handshake whose connection task runs on the runtime.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use super::error::{reason, Error, Result};

pub type Sender = SendRequest<Empty<Bytes>>;

pub struct Dialer {
    tls: TlsConnector,
    connect_timeout: Duration,
}

impl Dialer {
    pub fn new(connect_timeout: Duration) -> Result<Dialer> {
        Ok(Dialer {
            tls: TlsConnector::from(Arc::new(tls_config()?)),
            connect_timeout,
        })
    }

    /// A fresh connection to `url`'s origin, ready for one request at a
    /// time.
    pub async fn dial(&self, url: &Url) -> Result<Sender> {
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url.host().ok_or_else(|| {
            Error::transport(reason::CONNECT, format!("GET {url}: the URL has no host"))
        })?;
        let tcp = tokio::time::timeout(self.connect_timeout, connect_tcp(&host, port))
            .await
            .map_err(|_| {
                Error::transport(
                    reason::TIMEOUT,
                    format!(
                        "GET {url}: no connection to {host}:{port} within {:?}",
                        self.connect_timeout
                    ),
                )
            })?
            .map_err(|e| {
                Error::transport(
                    reason::CONNECT,
                    format!("GET {url}: cannot connect to {host}:{port}: {e}"),
                )
            })?;
        // Requests are small and written whole; waiting to coalesce them
        // only adds a round trip of delay.
        let _ = tcp.set_nodelay(true);
        if url.scheme() != "https" {
            return handshake(url, tcp).await;
        }
        let name = match host {
            Host::Domain(d) => ServerName::try_from(d.to_owned()).map_err(|e| {
                Error::transport(
                    reason::TLS,
                    format!("GET {url}: {d:?} is not a TLS name: {e}"),
                )
            })?,
            Host::Ipv4(ip) => ServerName::IpAddress(IpAddr::V4(ip).into()),
            Host::Ipv6(ip) => ServerName::IpAddress(IpAddr::V6(ip).into()),
        };
        let tls = tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp))
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
            .map_err(|e| Error::transport(reason::TLS, format!("GET {url}: TLS handshake: {e}")))?;
        handshake(url, tls).await
    }
}

async fn connect_tcp(host: &Host<&str>, port: u16) -> std::io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match host {
        Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
        Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
        Host::Domain(d) => tokio::net::lookup_host((*d, port)).await?.collect(),
    };
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "the name resolved to no address",
    );
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = e,
        }
    }
    Err(last)
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
