//! The token issuer the protected registries trust (distribution's "token"
//! auth: JWTs signed with ES256, the signing cert in `x5c`, the cert itself
//! in the registry's `rootcertbundle`).
//!
//! Who gets what:
//! - anyone: `pull` on every repository but `private/*`;
//! - `alice` (her password by Basic auth on a GET, or by an OAuth2
//!   `grant_type=password` POST; or her identity token, as an OAuth2
//!   `grant_type=refresh_token` POST or as the password of the Basic user
//!   `<token>` on a GET): `pull` on every repository, `private/*` included;
//! - the rig's own user `tank`: `pull` and `push` everywhere, which is how
//!   the fixtures reach these registries;
//! - both users: the catalog (`registry:catalog:*`), which anonymous callers
//!   may not list (Docker Hub lists it to no one).
//!
//! Wrong credentials draw a 401. Scopes the caller may not have are granted
//! with no actions (as distribution's and Docker Hub's issuers do), so the
//! registry then answers 401 `insufficient_scope`.

use std::io::Read;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;
use tiny_http::{Header, Method, Request, Response};

use crate::random::random_hex;
use crate::serve::{header, HttpService};
use crate::timefmt::{rfc3339, unix_seconds};
use crate::which::Which;

pub(crate) const SERVICE: &str = "tank-rig";
pub(crate) const ISSUER: &str = "tank-rig-issuer";
/// The rig's own user: push and pull everywhere.
pub(crate) const USERNAME: &str = "tank";
/// The user who may pull `private/*`.
pub(crate) const PRIVATE_USER: &str = "alice";
/// Repositories under this prefix are not pullable anonymously.
pub(crate) const PRIVATE_PREFIX: &str = "private/";
/// The Basic user name under which a GET presents an identity token.
pub(crate) const IDENTITY_TOKEN_USER: &str = "<token>";
const EXPIRES_IN: i64 = 300;
const WORKERS: usize = 4;
/// A token request's form body is a few hundred bytes.
const MAX_FORM: u64 = 64 * 1024;

/// One request that reached a token realm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The registry whose realm was asked (each protected registry has its own).
    pub which: Which,
    /// `GET` (distribution's token protocol) or `POST` (OAuth2 form).
    pub method: String,
    /// The `service` parameter (query for GET, form field for POST), if sent.
    pub service: Option<String>,
    /// Every `scope` parameter, in order (space-separated ones split).
    pub scopes: Vec<String>,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
    /// The user name the caller presented: the Basic-auth user name (GET;
    /// `<token>` when an identity token is sent that way), or the form's
    /// `username` (POST `grant_type=password`). Never a password.
    pub username: Option<String>,
    /// The GET's `account` query parameter, if sent.
    pub account: Option<String>,
    /// The POST form's `grant_type` (`refresh_token`, `password`, ...).
    pub grant_type: Option<String>,
    /// The POST form's `client_id`, or the GET's `client_id` query parameter.
    pub client_id: Option<String>,
    /// Whether a refresh token was asked for (`offline_token=true` on a
    /// GET, `access_type=offline` on a POST).
    pub offline: bool,
    /// Who the issuer took the caller for (`alice`, `tank`); `None` for an
    /// anonymous or refused request.
    pub subject: Option<String>,
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

/// Who may log in at the issuers.
pub(crate) struct Users {
    /// `tank`'s password.
    pub(crate) push_password: String,
    /// `alice`'s password.
    pub(crate) private_password: String,
    /// `alice`'s identity (refresh) token.
    pub(crate) identity_token: String,
}

/// Switches every issuer of a rig reads on each request.
#[derive(Default)]
pub(crate) struct Switches {
    /// 0: answer OAuth2 POSTs; else answer every POST with this status.
    post_status: AtomicU16,
}

impl Switches {
    pub(crate) fn set_post_status(&self, status: Option<u16>) {
        self.post_status
            .store(status.unwrap_or(0), Ordering::SeqCst);
    }

    fn post_status(&self) -> Option<u16> {
        match self.post_status.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

/// What a realm needs to answer, shared by its worker threads.
struct Realm {
    which: Which,
    keys: Arc<Keys>,
    users: Arc<Users>,
    switches: Arc<Switches>,
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
        users: Arc<Users>,
        switches: Arc<Switches>,
        log: Arc<Mutex<Vec<TokenRequest>>>,
    ) -> Result<TokenServer> {
        let realm = Arc::new(Realm {
            which,
            keys,
            users,
            switches,
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

/// Who the caller turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    User(&'static str),
    /// Wrong credentials: 401.
    Rejected,
}

impl Caller {
    fn subject(self) -> Option<String> {
        match self {
            Caller::User(u) => Some(u.to_owned()),
            _ => None,
        }
    }
}

/// A request's parameters, from the query (GET) or the form (POST).
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(bytes: &[u8]) -> Params {
        Params(form_urlencoded::parse(bytes).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// Every `scope`, space-separated ones split.
    fn scopes(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned))
            .collect()
    }
}

/// What one request comes to: the answer, and what the log records.
struct Outcome {
    status: u16,
    body: serde_json::Value,
    caller: Caller,
    username: Option<String>,
    extra_headers: Vec<(&'static str, &'static str)>,
}

impl Outcome {
    fn error(status: u16, error: &str, description: &str) -> Outcome {
        Outcome {
            status,
            body: json!({"error": error, "error_description": description, "details": description}),
            caller: Caller::Rejected,
            username: None,
            extra_headers: Vec::new(),
        }
    }
}

impl Realm {
    fn handle(&self, mut request: Request) {
        let url = request.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
        let query = query.to_owned();
        let method = request.method().clone();
        let query_params = Params::parse(query.as_bytes());
        let auth = header(&request, "Authorization").map(str::to_owned);

        let mut params = Params::default();
        let outcome = if path != "/token" {
            Outcome::error(404, "not_found", "not found")
        } else {
            match method {
                Method::Get => {
                    params = query_params;
                    self.get(&params, auth.as_deref())
                }
                Method::Post => match self.switches.post_status() {
                    Some(status) => {
                        let mut o = Outcome::error(status, "unsupported", "POST refused (switch)");
                        if status == 405 {
                            o.extra_headers.push(("Allow", "GET"));
                        }
                        o
                    }
                    None => match read_form(&mut request) {
                        Ok(form) => {
                            params = form;
                            self.post(&params)
                        }
                        Err(o) => o,
                    },
                },
                _ => {
                    let mut o = Outcome::error(405, "unsupported", "GET or POST only");
                    o.extra_headers.push(("Allow", "GET, POST"));
                    o
                }
            }
        };

        let offline = params.get("offline_token") == Some("true")
            || params.get("access_type") == Some("offline");
        if let Ok(mut log) = self.log.lock() {
            log.push(TokenRequest {
                which: self.which,
                method: method.as_str().to_owned(),
                service: params.owned("service"),
                scopes: params.scopes(),
                authorization: auth.is_some(),
                username: outcome.username.clone(),
                account: params.owned("account").filter(|_| method == Method::Get),
                grant_type: params
                    .owned("grant_type")
                    .filter(|_| method == Method::Post),
                client_id: params.owned("client_id"),
                offline,
                subject: outcome.caller.subject(),
                query,
                status: outcome.status,
                at: SystemTime::now(),
            });
        }
        let mut response =
            Response::from_string(outcome.body.to_string()).with_status_code(outcome.status);
        let headers = [("Content-Type", "application/json")]
            .into_iter()
            .chain(outcome.extra_headers.iter().copied());
        for (name, value) in headers {
            if let Ok(h) = Header::from_bytes(name, value) {
                response.add_header(h);
            }
        }
        let _ = request.respond(response);
    }

    /// distribution's token protocol: Basic credentials (or none), the
    /// answer carries `token` and `access_token`.
    fn get(&self, params: &Params, authorization: Option<&str>) -> Outcome {
        let (caller, username) = match authorization {
            None => (Caller::Anonymous, None),
            Some(value) => match basic_credentials(value) {
                Some((user, pass)) => (self.login(&user, &pass), Some(user)),
                None => (Caller::Rejected, None),
            },
        };
        let mut outcome = match caller {
            Caller::Rejected => {
                Outcome::error(401, "unauthorized", "incorrect username or password")
            }
            _ => self.issue(caller, params, false),
        };
        if outcome.status == 200 && params.get("offline_token") == Some("true") {
            if let Some(refresh) = self.refresh_token_for(caller) {
                outcome.body["refresh_token"] = json!(refresh);
            }
        }
        outcome.caller = caller;
        outcome.username = username;
        outcome
    }

    /// The OAuth2 form, as distribution's token server reads it.
    fn post(&self, form: &Params) -> Outcome {
        for field in ["grant_type", "service", "client_id"] {
            if form.get(field).unwrap_or("").is_empty() {
                return Outcome::error(400, "invalid_request", &format!("missing {field} value"));
            }
        }
        let offline = match form.get("access_type").unwrap_or("") {
            "" | "online" => false,
            "offline" => true,
            _ => return Outcome::error(400, "invalid_request", "unknown access_type value"),
        };
        let (caller, username) = match form.get("grant_type").unwrap_or("") {
            "refresh_token" => {
                let token = form.get("refresh_token").unwrap_or("");
                if token.is_empty() {
                    return Outcome::error(400, "invalid_request", "missing refresh_token value");
                }
                match token == self.users.identity_token {
                    true => (Caller::User(PRIVATE_USER), None),
                    false => (Caller::Rejected, None),
                }
            }
            "password" => {
                let user = form.get("username").unwrap_or("");
                let pass = form.get("password").unwrap_or("");
                if user.is_empty() || pass.is_empty() {
                    return Outcome::error(
                        400,
                        "invalid_request",
                        "missing username or password value",
                    );
                }
                (self.login(user, pass), Some(user.to_owned()))
            }
            _ => return Outcome::error(400, "unsupported_grant_type", "unknown grant_type value"),
        };
        let mut outcome = match caller {
            Caller::Rejected => Outcome::error(401, "invalid_grant", "invalid credentials"),
            _ => self.issue(caller, form, true),
        };
        if outcome.status == 200 && offline {
            if let Some(refresh) = self.refresh_token_for(caller) {
                outcome.body["refresh_token"] = json!(refresh);
            }
        }
        outcome.caller = caller;
        outcome.username = username;
        outcome
    }

    fn login(&self, user: &str, pass: &str) -> Caller {
        let users = &self.users;
        match user {
            USERNAME if pass == users.push_password => Caller::User(USERNAME),
            PRIVATE_USER if pass == users.private_password => Caller::User(PRIVATE_USER),
            IDENTITY_TOKEN_USER if pass == users.identity_token => Caller::User(PRIVATE_USER),
            _ => Caller::Rejected,
        }
    }

    /// Only alice has an identity token.
    fn refresh_token_for(&self, caller: Caller) -> Option<&str> {
        match caller {
            Caller::User(PRIVATE_USER) => Some(&self.users.identity_token),
            _ => None,
        }
    }

    /// A token for what `caller` may have of the requested scopes.
    fn issue(&self, caller: Caller, params: &Params, oauth: bool) -> Outcome {
        let subject = match caller {
            Caller::User(u) => u,
            _ => "",
        };
        let access: Vec<_> = params
            .scopes()
            .iter()
            .filter_map(|s| grant(s, caller))
            .collect();
        let audience = params.get("service").unwrap_or(SERVICE);
        let token = match self.keys.mint(subject, audience, json!(access)) {
            Ok(t) => t,
            Err(e) => return Outcome::error(500, "server_error", &format!("{e:#}")),
        };
        let issued_at = rfc3339(SystemTime::now());
        let body = if oauth {
            json!({
                "access_token": token,
                "expires_in": EXPIRES_IN,
                "issued_at": issued_at,
                "scope": scope_list(&access),
            })
        } else {
            json!({
                "token": token,
                "access_token": token,
                "expires_in": EXPIRES_IN,
                "issued_at": issued_at,
            })
        };
        Outcome {
            status: 200,
            body,
            caller,
            username: None,
            extra_headers: Vec::new(),
        }
    }
}

/// The form of a POST, or the error to answer.
fn read_form(request: &mut Request) -> Result<Params, Outcome> {
    let form_type = header(request, "Content-Type")
        .and_then(|v| v.split(';').next())
        .map(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !form_type {
        return Err(Outcome::error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let mut body = Vec::new();
    match request
        .as_reader()
        .take(MAX_FORM + 1)
        .read_to_end(&mut body)
    {
        Ok(_) if body.len() as u64 <= MAX_FORM => Ok(Params::parse(&body)),
        Ok(_) => Err(Outcome::error(413, "invalid_request", "form too large")),
        Err(_) => Err(Outcome::error(400, "invalid_request", "unreadable form")),
    }
}

/// `user:password` from a `Basic` Authorization value.
fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The actions `caller` may have on `repo`.
fn allowed(caller: Caller, repo: &str) -> &'static [&'static str] {
    match caller {
        Caller::User(USERNAME) => &["pull", "push"],
        Caller::User(_) => &["pull"],
        _ if repo.starts_with(PRIVATE_PREFIX) => &[],
        _ => &["pull"],
    }
}

/// The actions `caller` may have on the catalog.
fn catalog_allowed(caller: Caller) -> &'static [&'static str] {
    match caller {
        Caller::User(_) => &["*"],
        _ => &[],
    }
}

/// The part of `repository:NAME:ACTIONS` or `registry:catalog:*` the
/// caller may have; other resource types get nothing.
fn grant(scope: &str, caller: Caller) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let allowed = match (kind, name) {
        ("repository", name) if !name.is_empty() => allowed(caller, name),
        ("registry", "catalog") => catalog_allowed(caller),
        _ => return None,
    };
    let actions: Vec<&str> = actions.split(',').filter(|a| allowed.contains(a)).collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

/// The OAuth2 answer's `scope`: granted accesses, space-separated.
fn scope_list(access: &[serde_json::Value]) -> String {
    access
        .iter()
        .filter_map(|a| {
            let actions: Vec<&str> = a["actions"]
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            if actions.is_empty() {
                return None;
            }
            Some(format!(
                "{}:{}:{}",
                a["type"].as_str()?,
                a["name"].as_str()?,
                actions.join(",")
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_allowed_actions() {
        let g = grant("repository:tank/a:pull,push", Caller::Anonymous).unwrap();
        assert_eq!(
            g,
            json!({"type": "repository", "name": "tank/a", "actions": ["pull"]})
        );
        let catalog = |caller| grant("registry:catalog:*", caller).unwrap()["actions"].clone();
        assert_eq!(catalog(Caller::Anonymous), json!([]));
        assert_eq!(catalog(Caller::User(PRIVATE_USER)), json!(["*"]));
        assert!(grant("registry:other:*", Caller::Anonymous).is_none());
        assert!(grant("garbage", Caller::Anonymous).is_none());
    }

    #[test]
    fn private_repositories_need_a_user() {
        assert!(allowed(Caller::Anonymous, "private/x").is_empty());
        assert_eq!(allowed(Caller::Anonymous, "tank/x"), &["pull"]);
        assert_eq!(allowed(Caller::User(PRIVATE_USER), "private/x"), &["pull"]);
        assert_eq!(
            allowed(Caller::User(USERNAME), "private/x"),
            &["pull", "push"]
        );
    }

    #[test]
    fn scope_list_skips_empty_grants() {
        let access = vec![
            json!({"type": "repository", "name": "a", "actions": ["pull"]}),
            json!({"type": "repository", "name": "b", "actions": []}),
        ];
        assert_eq!(scope_list(&access), "repository:a:pull");
    }

    #[test]
    fn basic_credentials_split_at_the_first_colon() {
        let v = format!("Basic {}", STANDARD.encode("<token>:a:b"));
        assert_eq!(
            basic_credentials(&v),
            Some(("<token>".to_owned(), "a:b".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
    }
}
