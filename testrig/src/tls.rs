//! The rig's own certificate authority: made at start, it signs the one
//! server certificate (for `127.0.0.1` and `localhost`) the https registries
//! present. Clients under test trust it only when told to, through the PEM
//! file named in the rig's info.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

pub(crate) struct Authority {
    /// The CA certificate, PEM.
    pub(crate) ca_pem: PathBuf,
    /// The server certificate and its key, PEM, as distribution reads them.
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    ca_der: Vec<u8>,
}

impl Authority {
    /// Writes `ca.pem`, `tls-cert.pem` and `tls-key.pem` into `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<Authority> {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating the rig CA's key")?;
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).context("CA params")?;
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tank test rig CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .context("self-signing the rig CA")?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let server_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating the registry's TLS key")?;
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .context("registry certificate params")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .context("signing the registry's certificate")?;

        let authority = Authority {
            ca_pem: dir.join("ca.pem"),
            cert: dir.join("tls-cert.pem"),
            key: dir.join("tls-key.pem"),
            ca_der: ca_cert.der().to_vec(),
        };
        for (path, pem) in [
            (&authority.ca_pem, ca_cert.pem()),
            (&authority.cert, server_cert.pem()),
            (&authority.key, server_key.serialize_pem()),
        ] {
            std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(authority)
    }

    /// A TLS client setting that trusts this CA alone, for the rig's own
    /// readiness checks.
    pub(crate) fn client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.ca_der.clone()))
            .context("adding the rig CA to a root store")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
