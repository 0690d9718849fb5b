//! The TLS client settings every connection uses: rustls with the ring
//! provider (the library never meets the host process's OpenSSL), the
//! Mozilla roots plus the host's own, and HTTP/2 offered by ALPN.

use std::sync::Arc;

use super::error::{reason, Error, Result};

pub fn client_config() -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates are skipped: the Mozilla roots remain.
    // rustls-native-certs reads SSL_CERT_FILE / SSL_CERT_DIR when set.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(reason::RUNTIME, format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
