//! One repository on one registry, and the one way tank asks it for
//! anything. Built once per call from parsed values, it holds where the
//! repository lives (registry, repository), who asks (the session and the
//! key its secrets are bound to) and how (the transport with the session's
//! TLS trust). Every request goes through [`Repo::get`]: the auth
//! handshake, then, for callers that need a success, an error status turned
//! into an `Http` error naming the request. What can be asked of a
//! repository is added by the module that knows how to read the answer:
//! `manifest` ([`Repo::manifest`]), `blob` ([`Repo::blob`]) and `to_file`
//! ([`Repo::blob_to`]).

use http::header::HeaderMap;
use url::Url;

use super::auth::authorized_get;
use super::digest::Digest;
use super::error::{Endpoint, Error, Result};
use super::reference::{Repository, TagOrDigest};
use super::registry::Registry;
use super::session::{CacheKey, Session};
use super::transport::{body_excerpt, Response, Transport};

/// How much of a refusal's body an error quotes.
const REFUSAL_EXCERPT: usize = 4096;

pub struct Repo<'a> {
    registry: Registry,
    repository: Repository,
    session: Option<&'a Session>,
    transport: Transport,
    key: CacheKey,
}

impl<'a> Repo<'a> {
    /// `repository` on `registry`, asked through `transport` (the
    /// process's) with what `session` holds (none: anonymous, nothing
    /// cached).
    pub fn new(
        transport: &Transport,
        session: Option<&'a Session>,
        registry: Registry,
        repository: Repository,
    ) -> Repo<'a> {
        let trusted = session.and_then(|s| s.trusted_clients(transport.config()));
        let key = CacheKey::pull(&registry, &repository);
        Repo {
            transport: transport.with_trust(trusted),
            session,
            key,
            registry,
            repository,
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub fn session(&self) -> Option<&'a Session> {
        self.session
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn manifest_url(&self, reference: &TagOrDigest) -> Url {
        self.endpoint("manifests", &reference.to_string())
    }

    pub fn blob_url(&self, digest: &Digest) -> Url {
        self.endpoint("blobs", &digest.to_string())
    }

    /// `/v2/<repository>/<kind>/<last>`. Grammar-checked names contain
    /// only URL-safe characters, so the path is built as text.
    fn endpoint(&self, kind: &str, last: &str) -> Url {
        let repository = self.repository.as_str();
        self.registry
            .url(&format!("/v2/{repository}/{kind}/{last}"))
    }

    /// GETs `url` (one of this repository's) with the auth handshake; the
    /// response whatever its status.
    pub async fn get(&self, url: &Url, headers: &HeaderMap) -> Result<Response> {
        authorized_get(&self.transport, self.session, &self.key, url, headers).await
    }

    /// GETs `url` for `endpoint`; an error status is an `Http` error.
    pub async fn fetch(
        &self,
        endpoint: Endpoint,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<Response> {
        let resp = self.get(url, headers).await?;
        match resp.status().is_success() {
            true => Ok(resp),
            false => Err(refused(endpoint, url, resp).await),
        }
    }
}

/// The error for a response that refused the request for `endpoint`: its
/// status, and the start of its body.
pub async fn refused(endpoint: Endpoint, url: &Url, resp: Response) -> Error {
    let status = resp.status().as_u16();
    let body = body_excerpt(resp, REFUSAL_EXCERPT).await;
    Error::http(endpoint, status, url.as_str(), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::config::Config;

    #[test]
    fn urls() {
        let transport = Transport::new(Config::default()).unwrap();
        let r = Registry::parse("127.0.0.1:5000").unwrap();
        let repo = Repo::new(
            &transport,
            None,
            r,
            Repository::parse("library/alpine").unwrap(),
        );
        let tag = TagOrDigest::parse("3.19").unwrap();
        assert_eq!(
            repo.manifest_url(&tag).as_str(),
            "http://127.0.0.1:5000/v2/library/alpine/manifests/3.19"
        );
        let d = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert_eq!(
            repo.blob_url(&d).as_str(),
            format!(
                "http://127.0.0.1:5000/v2/library/alpine/blobs/sha256:{}",
                "0".repeat(64)
            )
        );
    }
}
