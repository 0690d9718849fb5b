//! The token issuers: one per protected registry, the certificate each
//! registry is configured to trust, and how the fixture pusher logs in.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::push::{PushAuth, TokenAuth};
use crate::registry::TokenAuthConfig;
use crate::token::{self, Keys, Switches, TokenRequest, TokenServer, Users};
use crate::which::Which;

/// A protected registry's token realm and the cert it is configured to trust.
pub(super) struct Issuer {
    pub(super) which: Which,
    pub(super) server: TokenServer,
    pub(super) cert: PathBuf,
}

impl Issuer {
    /// The `auth: token` section of its registry's config.
    pub(super) fn registry_config(&self) -> TokenAuthConfig {
        TokenAuthConfig {
            realm: self.server.realm_url(),
            service: token::SERVICE.to_owned(),
            issuer: token::ISSUER.to_owned(),
            root_cert_bundle: self.cert.clone(),
        }
    }

    /// How the rig's own user (`tank`, with `password`) pushes the fixtures.
    pub(super) fn push_auth(&self, password: &str) -> PushAuth {
        PushAuth::Token(TokenAuth {
            realm: self.server.realm_url(),
            service: token::SERVICE.to_owned(),
            username: token::USERNAME.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// The issuer of `which`'s realm; `None` for a registry without token auth.
pub(super) fn issuer_of(issuers: &[Issuer], which: Which) -> Option<&Issuer> {
    issuers.iter().find(|i| i.which == which)
}

/// One issuer (key, cert, realm) per protected registry, as two real
/// registries would have: a token earned at one is refused by the other.
/// `users_for` says whose passwords each realm checks.
pub(super) fn start_issuers(
    wanted: &[Which],
    root: &Path,
    users_for: impl Fn(Which) -> Arc<Users>,
    switches: &Arc<Switches>,
    log: &Arc<Mutex<Vec<TokenRequest>>>,
) -> Result<Vec<Issuer>> {
    let mut issuers = Vec::new();
    for &which in wanted.iter().filter(|w| w.is_token()) {
        let keys = Arc::new(Keys::generate()?);
        let cert = root.join(format!("issuer-{}.pem", which.name()));
        std::fs::write(&cert, keys.cert_pem())
            .with_context(|| format!("writing {}", cert.display()))?;
        let server = TokenServer::start(
            which,
            keys,
            users_for(which),
            Arc::clone(switches),
            Arc::clone(log),
        )?;
        issuers.push(Issuer {
            which,
            server,
            cert,
        });
    }
    Ok(issuers)
}
