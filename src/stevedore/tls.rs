//! The TLS client settings every connection uses: rustls with the ring
//! provider (the library never meets the host process's OpenSSL), the
//! Mozilla roots plus the host's own, and HTTP/2 offered by ALPN.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::error::{Error, Reason, Result};
use super::trust::TlsSettings;

/// Presents no certificate, and remembers that a server asked for one: a
/// server that then drops the connection refused us for it, which would
/// otherwise look like a network fault.
#[derive(Debug, Default)]
pub struct NoClientCertificate {
    pub asked: AtomicBool,
}

impl rustls::client::ResolvesClientCert for NoClientCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Accepts whatever certificate the server presents (`skip_verify`,
/// `insecure`: asked for one host, and only its client uses this). The
/// handshake's signatures are still checked: the server must hold the key
/// of the certificate it sent, so the connection is at least not readable
/// by a passive observer.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `extra`: a cache's own CAs and client certificate for one registry.
/// `watch`, when given, is told when a server asks for a certificate and
/// there is none to present.
pub fn client_config(
    extra: Option<&TlsSettings>,
    watch: Option<Arc<NoClientCertificate>>,
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Unreadable system certificates are skipped: the Mozilla roots remain.
    // rustls-native-certs reads SSL_CERT_FILE / SSL_CERT_DIR when set.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(extra) = extra {
        for ca in &extra.extra_roots {
            roots.add(ca.clone()).map_err(|e| {
                Error::bad_input(format!("a trusted CA certificate is not usable: {e}"))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(Reason::Runtime, format!("TLS configuration: {e}")))?;
    let builder = match extra.is_some_and(|e| e.skip_verify) {
        true => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
        false => builder.with_root_certificates(roots),
    };
    let mut config = match extra.and_then(|e| e.identity.as_ref()) {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| {
                Error::new(
                    super::ErrorKind::BadInput,
                    Reason::Certificate,
                    format!("the client certificate and key do not go together: {e}"),
                )
            })?,
        None => match watch {
            Some(w) => builder.with_client_cert_resolver(w),
            None => builder.with_no_client_auth(),
        },
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
