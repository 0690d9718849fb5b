//! The rig's own certificate authorities, made at start: one signs the
//! server certificate (for `127.0.0.1` and `localhost`) the https
//! registries present, another signs the client certificate the mutual-TLS
//! registry demands. Clients under test trust the first only when told to,
//! through the PEM file named in the rig's info.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub(crate) struct Authority {
    /// The CA certificate, PEM.
    pub(crate) ca_pem: PathBuf,
    /// The server certificate and its key, PEM, as distribution reads them.
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    ca_der: Vec<u8>,
}

/// A CA's certificate and what signs with it.
fn new_ca(name: &str) -> Result<(rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>)> {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .with_context(|| format!("generating the key of the {name}"))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .with_context(|| format!("self-signing the {name}"))?;
    Ok((ca_cert, rcgen::Issuer::new(ca_params, ca_key)))
}

fn write_all(files: &[(&PathBuf, String)]) -> Result<()> {
    for (path, pem) in files {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

impl Authority {
    /// Writes `ca.pem`, `tls-cert.pem` and `tls-key.pem` into `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<Authority> {
        let (ca_cert, issuer) = new_ca("tank test rig CA")?;

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
        write_all(&[
            (&authority.ca_pem, ca_cert.pem()),
            (&authority.cert, server_cert.pem()),
            (&authority.key, server_key.serialize_pem()),
        ])?;
        Ok(authority)
    }

    /// A TLS client setting that trusts this CA alone, for the rig's own
    /// readiness checks; with `identity`, it also presents that client
    /// certificate.
    pub(crate) fn client_config(
        &self,
        identity: Option<&ClientIdentity>,
    ) -> Result<Arc<rustls::ClientConfig>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .context("adding the rig CA to a root store")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from(id.cert_der.clone())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key_der.clone())),
                )
                .context("loading the rig's client certificate")?,
        };
        Ok(Arc::new(config))
    }
}

/// The client certificate (and its CA) of the mutual-TLS registry.
pub(crate) struct ClientIdentity {
    /// The client CA certificate, PEM: the registry's `clientcas`.
    pub(crate) ca_pem: PathBuf,
    /// The client certificate and its key (PKCS#8), PEM.
    pub(crate) cert_pem: PathBuf,
    pub(crate) key_pem: PathBuf,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl ClientIdentity {
    /// Writes `client-ca.pem`, `client-cert.pem` and `client-key.pem` into `dir`.
    pub(crate) fn generate(dir: &Path) -> Result<ClientIdentity> {
        let (ca_cert, issuer) = new_ca("tank test rig client CA")?;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating the client certificate's key")?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .context("client certificate params")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tank test client");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let cert = params
            .signed_by(&key, &issuer)
            .context("signing the client certificate")?;
        let identity = ClientIdentity {
            ca_pem: dir.join("client-ca.pem"),
            cert_pem: dir.join("client-cert.pem"),
            key_pem: dir.join("client-key.pem"),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        };
        write_all(&[
            (&identity.ca_pem, ca_cert.pem()),
            (&identity.cert_pem, cert.pem()),
            (&identity.key_pem, key.serialize_pem()),
        ])?;
        Ok(identity)
    }
}

/// A docker/podman-style certs directory entry: `<dir>/<host:port>/` with
/// `ca.crt`, and `client.cert` + `client.key` when `identity` is given.
pub(crate) fn write_certs_dir_entry(
    dir: &Path,
    host_port: &str,
    ca_pem: &Path,
    identity: Option<&ClientIdentity>,
) -> Result<()> {
    let entry = dir.join(host_port);
    std::fs::create_dir_all(&entry).with_context(|| format!("creating {}", entry.display()))?;
    let mut copies = vec![(ca_pem, entry.join("ca.crt"))];
    if let Some(id) = identity {
        copies.push((&id.cert_pem, entry.join("client.cert")));
        copies.push((&id.key_pem, entry.join("client.key")));
    }
    for (from, to) in copies {
        std::fs::copy(from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}
