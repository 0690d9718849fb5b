//! The auth handshake: try with what the cache holds for this registry,
//! scope and identity (or nothing), and on a 401 from the registry's own
//! origin answer its challenge once: a Bearer token earned from the realm
//! (anonymously, with Basic credentials, or with an identity token), or
//! the caller's Basic credentials. Secrets go only to the registry's
//! origin and its challenge's realm, never over plain HTTP beyond loopback,
//! and are redacted from any body excerpt a message quotes.

use std::time::Duration;

use http::header::{HeaderMap, WWW_AUTHENTICATE};
use http::StatusCode;

use url::Url;

use super::challenge::{self, Challenge};
use super::credential::Credential;
use super::error::{reason, Error, Result};
use super::origin::{carries_secrets, shown, Origin};
use super::secret::{Secret, WipedJson};
use super::session::{CacheKey, IssuedToken, Session};
use super::transport::{
    body_excerpt, discard, with_secrets, Authorization, Body, Response, Transport,
};

/// A token response larger than this is not a token response.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
/// What tank calls itself to an OAuth2 token server.
const CLIENT_ID: &str = "tank";

/// GETs a registry URL with the auth handshake. A final 401 (no usable
/// challenge, or the fresh token or credentials were refused too) comes
/// back as a response for the caller to report.
pub async fn authorized_get(
    transport: &Transport,
    cache: Option<&Session>,
    key: &CacheKey,
    url: &Url,
    headers: &HeaderMap,
) -> Result<Response> {
    // Credentials never travel in the clear, except on loopback: in the
    // clear, calls are anonymous. A credential helper runs only once the
    // registry asks who we are.
    let known = match cache {
        Some(c) if carries_secrets(url) => c.credentials.known(key.registry(), key.repository()),
        _ => Some(None),
    };
    let first_key = key.as_identity(known.clone().flatten().as_ref());
    let sent = cache.and_then(|c| c.current(&first_key));
    let mut secrets: Vec<Secret> = sent.iter().cloned().collect();
    let first = sent.as_deref().map(|value| Authorization {
        value,
        anonymous: first_key.is_anonymous(),
    });
    let resp = transport.get(url, headers, first).await?;
    if resp.status() != StatusCode::UNAUTHORIZED || Origin::of(resp.url()) != Origin::of(url) {
        // A 401 from a redirect target (a CDN) is its own: it is answered
        // with nothing of the registry's.
        return Ok(with_secrets(resp, secrets));
    }
    let credential = match (known, cache) {
        (Some(c), _) => c,
        (None, Some(cache)) => {
            cache
                .credentials
                .lookup(key.registry(), key.repository())
                .await?
        }
        (None, None) => None,
    };
    let key = key.as_identity(credential.as_ref());
    secrets.extend(credential.iter().flat_map(Credential::secrets));
    let challenges = challenges(resp.headers());
    let answer = if let Some(bearer) = challenges.iter().find(|c| c.is_bearer()) {
        discard(resp).await;
        let fetch = || async {
            let issued = fetch_token(transport, url, bearer, credential.as_ref()).await?;
            Ok(IssuedToken {
                token: Secret::from(format!("Bearer {}", issued.token.as_str())),
                ..issued
            })
        };
        match cache {
            Some(cache) => {
                let wait = transport.config().token_timeout;
                cache.obtain(&key, sent.as_deref(), wait, fetch).await?
            }
            None => fetch().await?.token,
        }
    } else if let (Some(c), true) = (
        &credential,
        challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case("basic")),
    ) {
        discard(resp).await;
        let header = c.basic_header();
        if let Some(cache) = cache {
            cache.remember(&key, header.clone());
        }
        header
    } else {
        return Ok(with_secrets(resp, secrets));
    };
    secrets.push(answer.clone());
    if let Some(token) = answer.strip_prefix("Bearer ") {
        secrets.push(token.into());
    }
    let answered = Authorization {
        value: &answer,
        anonymous: key.is_anonymous(),
    };
    let resp = transport.get(url, headers, Some(answered)).await?;
    Ok(with_secrets(resp, secrets))
}

/// Every challenge among all `WWW-Authenticate` headers.
fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .collect()
}

/// A token from the challenge's realm for `registry_url`'s registry, as
/// `credential` (anonymous when `None`), within the transport's token
/// bound from the request to the answer's last byte: a token server that
/// trickles holds nobody longer.
pub async fn fetch_token(
    transport: &Transport,
    registry_url: &Url,
    challenge: &Challenge,
    credential: Option<&Credential>,
) -> Result<IssuedToken> {
    let bound = transport.config().token_timeout;
    let request = request_token(transport, registry_url, challenge, credential);
    tokio::time::timeout(bound, request)
        .await
        .unwrap_or_else(|_| {
            let realm = challenge.param("realm").and_then(|r| Url::parse(r).ok());
            Err(Error::auth(
                reason::TOKEN_REQUEST_FAILED,
                format!(
                    "the token server {} gave no complete answer within {} s",
                    realm.map(|u| shown(&u)).unwrap_or_default(),
                    bound.as_secs_f64()
                ),
            ))
        })
}

async fn request_token(
    transport: &Transport,
    registry_url: &Url,
    challenge: &Challenge,
    credential: Option<&Credential>,
) -> Result<IssuedToken> {
    let realm = challenge.param("realm").ok_or_else(|| {
        Error::auth(
            reason::MISSING_REALM,
            "the registry's Bearer challenge has no realm to ask for a token",
        )
    })?;
    let mut url = match Url::parse(realm) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        parsed => {
            let named = parsed.map_or_else(|_| String::new(), |u| format!(" {}", shown(&u)));
            return Err(Error::auth(
                reason::INVALID_REALM,
                format!("the Bearer challenge's realm{named} is not an http(s) URL"),
            ));
        }
    };
    if registry_url.scheme() == "https" && url.scheme() == "http" {
        return Err(Error::auth(
            reason::INVALID_REALM,
            format!(
                "the https registry {} named the plain-http realm {}; refusing to ask it for a token",
                Origin::of(registry_url).host_port(),
                shown(&url)
            ),
        ));
    }
    // A realm in the clear beyond loopback is asked anonymously.
    let credential = credential.filter(|_| carries_secrets(&url));
    let service = challenge.param("service");
    let scope = challenge.param("scope");
    let mut secrets: Vec<Secret> = credential.iter().flat_map(|c| c.secrets()).collect();

    let resp = match credential {
        Some(Credential::IdentityToken(token)) => {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", CLIENT_ID),
            ];
            form.extend(service.map(|s| ("service", s)));
            form.extend(scope.map(|s| ("scope", s)));
            let resp = transport
                .post_form(&url, &form)
                .await
                .map_err(token_request_failed)?;
            if matches!(resp.status().as_u16(), 404 | 405) {
                // A token server without OAuth2: the token as a password.
                discard(resp).await;
                None
            } else {
                Some(("POST", resp))
            }
        }
        _ => None,
    };
    let (method, resp) = match resp {
        Some(r) => r,
        None => {
            {
                let mut query = url.query_pairs_mut();
                query.extend_pairs(service.map(|s| ("service", s)));
                query.extend_pairs(scope.map(|s| ("scope", s)));
                if let Some(Credential::Basic { username, .. }) = credential {
                    query.append_pair("account", username);
                }
            }
            let basic = credential.map(Credential::basic_header);
            let resp = transport
                .get(
                    &url,
                    &HeaderMap::new(),
                    basic.as_deref().map(|value| Authorization {
                        value,
                        anonymous: false,
                    }),
                )
                .await
                .map_err(token_request_failed)?;
            ("GET", resp)
        }
    };
    let status = resp.status();
    if status != StatusCode::OK {
        let body = body_excerpt(with_secrets(resp, std::mem::take(&mut secrets)), 1024).await;
        return Err(
            token_failed(&url, method, format!("answered HTTP {}", status.as_u16()))
                .with_status(status.as_u16())
                .with_body(body),
        );
    }
    let body = zeroize::Zeroizing::new(
        Body::new(&url, resp)
            .limit(MAX_TOKEN_RESPONSE, reason::LENGTH_MISMATCH)
            .read_to_vec()
            .await
            .map_err(token_request_failed)?,
    );
    let not_an_object = |why: String| {
        token_failed(
            &url,
            method,
            format!("the answer is not a JSON object: {why}"),
        )
    };
    let answer =
        WipedJson(serde_json::from_slice(&body).map_err(|e| not_an_object(e.to_string()))?);
    let fields = answer
        .as_object()
        .ok_or_else(|| not_an_object("JSON but not an object".to_owned()))?;
    let token = ["token", "access_token"]
        .into_iter()
        .find_map(|name| {
            let value = fields.get(name)?.as_str()?;
            (!value.is_empty()).then(|| Secret::from(value))
        })
        .ok_or_else(|| {
            Error::auth(
                reason::NO_TOKEN_IN_RESPONSE,
                format!(
                    "{method} {}: the answer has no string \"token\" or \"access_token\"",
                    shown(&url)
                ),
            )
        })?;
    let expires_in = fields
        .get("expires_in")
        .and_then(|v| v.as_u64())
        .map(Duration::from_secs);
    Ok(IssuedToken { token, expires_in })
}

fn token_failed(url: &Url, method: &str, why: String) -> Error {
    Error::auth(
        reason::TOKEN_REQUEST_FAILED,
        format!("{method} {}: {why}", shown(url)),
    )
}

/// A transport failure of the token request; its message already names
/// the method and the URL.
fn token_request_failed(e: Error) -> Error {
    Error::auth(reason::TOKEN_REQUEST_FAILED, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::config::Config;

    fn bearer(realm: &str) -> Challenge {
        Challenge {
            scheme: "Bearer".into(),
            params: vec![
                ("realm".into(), realm.into()),
                ("service".into(), "svc".into()),
            ],
        }
    }

    #[tokio::test]
    async fn an_https_registry_never_sends_to_a_plain_http_realm() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let transport = Transport::new(Config::default()).unwrap();
        let registry = Url::parse("https://registry.example/v2/x/manifests/y").unwrap();
        let alice = Credential::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        for credential in [None, Some(&alice)] {
            let e = fetch_token(&transport, &registry, &bearer(&realm), credential)
                .await
                .unwrap_err();
            assert_eq!(e.reason, reason::INVALID_REALM, "{e}");
            assert!(!e.message.contains("s3cret"));
        }
        assert!(listener.accept().is_err(), "a request reached the realm");
    }
}
