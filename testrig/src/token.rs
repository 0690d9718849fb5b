//! The token issuer the protected registries trust (distribution's "token"
//! auth: JWTs signed with ES256, the signing cert in `x5c`, the cert itself
//! in the registry's `rootcertbundle`).
//!
//! Anyone gets `pull` on any repository; the rig's own Basic user also gets
//! `push`, which is how the fixtures reach these registries.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use tiny_http::{Header, Request, Response};

use crate::rig::Which;
use crate::serve::{header, HttpService};
use crate::timefmt::{rfc3339, unix_seconds};

pub(crate) const SERVICE: &str = "tank-rig";
pub(crate) const ISSUER: &str = "tank-rig-issuer";
pub(crate) const USERNAME: &str = "tank";
const EXPIRES_IN: i64 = 300;
const WORKERS: usize = 4;

/// One request that reached a token realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The registry whose realm was asked (each protected registry has its own).
    pub which: Which,
    /// The `service` query parameter, if sent.
    pub service: Option<String>,
    /// Every `scope` query parameter, in order (space-separated ones split).
    pub scopes: Vec<String>,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
    /// The Basic-auth user name, if credentials were sent that way.
    pub username: Option<String>,
    /// The raw query string.
    pub query: String,
    /// The status the issuer answered.
    pub status: u16,
    pub at: SystemTime,
}

/// The issuer's key and self-signed certificate, shared by every realm.
pub(crate) struct Keys {
    key: EcdsaKeyPair,
    cert_der: Vec<u8>,
    cert_pem: String,
    rng: SystemRandom,
}

impl Keys {
    pub(crate) fn generate() -> Result<Keys> {
        let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .context("generating the token issuer's P-256 key")?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).context("issuer cert params")?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ISSUER);
        let cert = params
            .self_signed(&key_pair)
            .context("self-signing the token issuer's certificate")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .map_err(|e| anyhow!("loading the issuer key into ring: {e}"))?;
        Ok(Keys {
            key,
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            rng,
        })
    }

    /// The PEM bundle a registry's `rootcertbundle` points at.
    pub(crate) fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A compact JWS that distribution 2.8 accepts: `aud` must be a plain
    /// string (2.8 has no audience lists) and the signature raw R||S.
    fn mint(&self, subject: &str, audience: &str, access: serde_json::Value) -> Result<String> {
        let now = unix_seconds(SystemTime::now());
        let header =
            json!({"typ": "JWT", "alg": "ES256", "x5c": [STANDARD.encode(&self.cert_der)]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "exp": now + EXPIRES_IN,
            "nbf": now,
            "iat": now,
            "jti": random_hex(16)?,
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| anyhow!("ES256 signing failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// `bytes` random bytes from the OS, hex-encoded (passwords, secrets, jti).
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| anyhow!("the system RNG failed"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// What a realm needs to answer, shared by its worker threads.
struct Realm {
    which: Which,
    keys: Arc<Keys>,
    password: String,
    log: Arc<Mutex<Vec<TokenRequest>>>,
}

/// One realm's HTTP server; stops on drop.
pub(crate) struct TokenServer {
    service: HttpService,
}

impl TokenServer {
    pub(crate) fn start(
        which: Which,
        keys: Arc<Keys>,
        password: String,
        log: Arc<Mutex<Vec<TokenRequest>>>,
    ) -> Result<TokenServer> {
        let realm = Arc::new(Realm {
            which,
            keys,
            password,
            log,
        });
        let name = format!("token-{}", which.name());
        let service = HttpService::start(
            &name,
            WORKERS,
            Arc::new(move |request| realm.handle(request)),
        )?;
        Ok(TokenServer { service })
    }

    pub(crate) fn realm_url(&self) -> String {
        format!("http://{}/token", self.service.addr())
    }
}

enum Caller {
    Anonymous,
    User(String),
    Rejected(Option<String>),
}

impl Realm {
    fn handle(&self, request: Request) {
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let service = params
            .iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone());
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
            .collect();
        let auth = header(&request, "Authorization").map(str::to_owned);
        let caller = self.caller(auth.as_deref());

        let (status, body) = if path != "/token" {
            (404, json!({"details": "not found"}))
        } else {
            match &caller {
                Caller::Rejected(_) => (401, json!({"details": "incorrect username or password"})),
                Caller::Anonymous | Caller::User(_) => {
                    let (subject, allowed): (&str, &[&str]) = match &caller {
                        Caller::User(u) => (u, &["pull", "push"]),
                        _ => ("", &["pull"]),
                    };
                    let access: Vec<_> = scopes.iter().filter_map(|s| grant(s, allowed)).collect();
                    let audience = service.as_deref().unwrap_or(SERVICE);
                    match self.keys.mint(subject, audience, json!(access)) {
                        Ok(token) => (
                            200,
                            json!({
                                "token": token,
                                "access_token": token,
                                "expires_in": EXPIRES_IN,
                                "issued_at": rfc3339(SystemTime::now()),
                            }),
                        ),
                        Err(e) => (500, json!({"details": format!("{e:#}")})),
                    }
                }
            }
        };

        let username = match caller {
            Caller::User(u) => Some(u),
            Caller::Rejected(u) => u,
            Caller::Anonymous => None,
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(TokenRequest {
                which: self.which,
                service,
                scopes,
                authorization: auth.is_some(),
                username,
                query: query.to_owned(),
                status,
                at: SystemTime::now(),
            });
        }
        let mut response = Response::from_string(body.to_string()).with_status_code(status);
        if let Ok(h) = Header::from_bytes("Content-Type", "application/json") {
            response.add_header(h);
        }
        let _ = request.respond(response);
    }

    fn caller(&self, authorization: Option<&str>) -> Caller {
        let Some(value) = authorization else {
            return Caller::Anonymous;
        };
        let Some(encoded) = value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
        else {
            return Caller::Rejected(None);
        };
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        match decoded.as_deref().and_then(|s| s.split_once(':')) {
            Some((user, pass)) if user == USERNAME && pass == self.password => {
                Caller::User(user.to_owned())
            }
            Some((user, _)) => Caller::Rejected(Some(user.to_owned())),
            None => Caller::Rejected(None),
        }
    }
}

/// The part of `repository:NAME:ACTIONS` the caller may have; other resource
/// types (e.g. `registry:catalog:*`) get nothing, as on Docker Hub.
fn grant(scope: &str, allowed: &[&str]) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind != "repository" || name.is_empty() {
        return None;
    }
    let actions: Vec<&str> = actions.split(',').filter(|a| allowed.contains(a)).collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_allowed_actions() {
        let g = grant("repository:tank/a:pull,push", &["pull"]).unwrap();
        assert_eq!(
            g,
            json!({"type": "repository", "name": "tank/a", "actions": ["pull"]})
        );
        assert!(grant("registry:catalog:*", &["pull"]).is_none());
        assert!(grant("garbage", &["pull"]).is_none());
    }
}
