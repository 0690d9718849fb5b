//! The bearer handshake: try with the cached token (or none), and on a 401
//! with a Bearer challenge earn a token from the realm and retry once.

use std::time::Duration;

use http::header::{HeaderMap, WWW_AUTHENTICATE};
use http::StatusCode;

use serde::Deserialize;
use url::Url;

use super::challenge::{self, Challenge};
use super::error::{reason, Error, Result};
use super::token_cache::{CacheKey, IssuedToken, TokenCache};
use super::transport::{body_excerpt, discard, Body, Response, Transport};

/// A token response larger than this is not a token response.
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;

/// GETs a registry URL with the bearer handshake. A final 401 (no usable
/// challenge, or the fresh token was refused too) comes back as a response
/// for the caller to report.
pub async fn authorized_get(
    transport: &Transport,
    cache: Option<&TokenCache>,
    key: &CacheKey,
    url: &Url,
    headers: &HeaderMap,
) -> Result<Response> {
    let sent = cache.and_then(|c| c.current(key));
    let resp = transport.get(url, headers, sent.as_deref()).await?;
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Ok(resp);
    }
    let Some(challenge) = bearer_challenge(resp.headers()) else {
        return Ok(resp);
    };
    discard(resp).await;
    let fetch = || fetch_token(transport, &challenge);
    let token = match cache {
        Some(cache) => cache.obtain(key, sent.as_deref(), fetch).await?,
        None => fetch().await?.token,
    };
    transport.get(url, headers, Some(&token)).await
}

/// The first Bearer challenge among all `WWW-Authenticate` headers.
fn bearer_challenge(headers: &HeaderMap) -> Option<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(challenge::parse)
        .find(Challenge::is_bearer)
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<serde_json::Value>,
    access_token: Option<serde_json::Value>,
    expires_in: Option<serde_json::Value>,
}

pub async fn fetch_token(transport: &Transport, challenge: &Challenge) -> Result<IssuedToken> {
    let realm = challenge.param("realm").ok_or_else(|| {
        Error::auth(
            reason::MISSING_REALM,
            "the registry's Bearer challenge has no realm to ask for a token",
        )
    })?;
    let mut url = Url::parse(realm)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            Error::auth(
                reason::INVALID_REALM,
                format!("the Bearer challenge's realm {realm:?} is not an http(s) URL"),
            )
        })?;
    {
        let mut query = url.query_pairs_mut();
        for name in ["service", "scope"] {
            if let Some(value) = challenge.param(name) {
                query.append_pair(name, value);
            }
        }
    }
    let failed =
        |why: String| Error::auth(reason::TOKEN_REQUEST_FAILED, format!("GET {url}: {why}"));
    let resp = transport
        .get(&url, &HeaderMap::new(), None)
        .await
        .map_err(|e| failed(e.message))?;
    let status = resp.status();
    if status != StatusCode::OK {
        let body = body_excerpt(resp, 1024).await;
        return Err(failed(format!("answered HTTP {}", status.as_u16()))
            .with_status(status.as_u16())
            .with_body(body));
    }
    let body = Body::new(&url, resp)
        .limit(MAX_TOKEN_RESPONSE, reason::LENGTH_MISMATCH)
        .read_to_vec()
        .await
        .map_err(|e| failed(e.message))?;
    // Parsed as a value first: serde would also fill the struct from a JSON
    // array such as `["token", null, null]`.
    let parsed: TokenResponse = serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| match v {
            serde_json::Value::Object(_) => serde_json::from_value(v).map_err(|e| e.to_string()),
            _ => Err("JSON but not an object".to_owned()),
        })
        .map_err(|e| failed(format!("the answer is not a JSON object: {e}")))?;
    let token = [parsed.token, parsed.access_token]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|t| !t.is_empty()).map(str::to_owned))
        .ok_or_else(|| {
            Error::auth(
                reason::NO_TOKEN_IN_RESPONSE,
                format!("GET {url}: the answer has no string \"token\" or \"access_token\""),
            )
        })?;
    let expires_in = parsed
        .expires_in
        .and_then(|v| v.as_u64())
        .map(Duration::from_secs);
    Ok(IssuedToken { token, expires_in })
}
