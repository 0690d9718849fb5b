//! A credential: what a registry is told about who is asking. Secrets
//! never appear in `Debug` output.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::secret::Secret;

/// What a registry is told about who is asking.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// A refresh token for the registry's token server.
    IdentityToken(Secret),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// What a server must never see echoed back in a message: the secret,
    /// and the Basic header that carries it.
    pub fn secrets(&self) -> [Secret; 2] {
        let secret = match self {
            Credential::Basic { password, .. } => password,
            Credential::IdentityToken(t) => t,
        };
        [secret.clone(), self.basic_header()]
    }

    /// Keys the token cache: tokens earned by one identity are never
    /// handed to another (or to anonymous calls).
    pub fn fingerprint(&self) -> String {
        let (kind, user, secret) = match self {
            Credential::Basic { username, password } => ("basic", username.as_str(), password),
            Credential::IdentityToken(t) => ("identity", "", t),
        };
        let hashed = Secret::from(format!("{kind}\0{user}\0{}", secret.as_str()));
        let digest = super::digest::Digest::of(super::digest::Algorithm::Sha256, hashed.as_bytes());
        format!("{kind}:{user}:{}", &digest.hex()[..16])
    }

    /// `Authorization: Basic …` for these credentials; an identity token
    /// goes as the user `<token>`, as docker sends it.
    pub fn basic_header(&self) -> Secret {
        let (user, secret) = match self {
            Credential::Basic { username, password } => (username.as_str(), password.as_str()),
            Credential::IdentityToken(t) => ("<token>", t.as_str()),
        };
        let pair = Secret::from(format!("{user}:{secret}"));
        let encoded = Secret::from(STANDARD.encode(pair.as_bytes()));
        Secret::from(format!("Basic {}", encoded.as_str()))
    }
}
