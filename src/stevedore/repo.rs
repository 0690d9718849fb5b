//! One repository, and the one way tank asks for anything in it. Built once
//! per call from parsed values, it holds where the repository may be asked
//! for (its sources: the mirrors the session knows, then the registry
//! itself), who asks (the session, whose secrets are bound to each source's
//! own origin) and how (the transport with the session's TLS trust).
//!
//! A request is made of one source through a [`RepoAt`]: [`RepoAt::get`]
//! runs the auth handshake, [`RepoAt::fetch`] also turns an error status
//! into an `Http` error naming the request. Which sources are asked, in
//! which order, and when to move on, is [`Attempts`]'s: callers loop over
//! it. What can be asked of a repository is added by the module that knows
//! how to read the answer: `manifest` ([`Repo::manifest`]), `blob`
//! ([`Repo::blob`]) and `download` ([`Repo::blob_to`]).

use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use super::auth::authorized_get;
use super::digest::Digest;
use super::error::{Endpoint, Error, ErrorKind, Result};
use super::mirrors::sources::Source;
use super::origin::Origin;
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
    sources: Vec<Asked>,
    tried: Mutex<Tried>,
}

/// A source with the key its secrets are kept under and the transport
/// its requests take.
struct Asked {
    source: Source,
    key: CacheKey,
    transport: Transport,
}

/// What the call has learnt of its sources so far.
#[derive(Default)]
struct Tried {
    /// Why each source that failed for a transport reason is left alone
    /// for the rest of the call.
    dead: Vec<Option<Error>>,
    /// The source the first manifest came from: asked first for what
    /// follows it.
    manifest_from: Option<usize>,
    /// Whether the call started from a tag (a `tag-only` mirror serves
    /// such calls only).
    started_by_tag: Option<bool>,
}

/// What a request needs of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A manifest by tag: a source that may resolve.
    Tag,
    /// A manifest by digest, or a blob: a source that may pull.
    Digest,
}

impl Need {
    pub fn of(reference: &TagOrDigest) -> Need {
        match reference {
            TagOrDigest::Tag(_) => Need::Tag,
            TagOrDigest::Digest(_) => Need::Digest,
        }
    }
}

impl<'a> Repo<'a> {
    /// `repository` on `registry`, asked through `transport` (the
    /// process's) with what `session` holds (none: anonymous, nothing
    /// cached, no mirrors). A registry the session's registries.conf
    /// blocks is an error here, before any request.
    pub fn new(
        transport: &Transport,
        session: Option<&'a Session>,
        registry: Registry,
        repository: Repository,
    ) -> Result<Repo<'a>> {
        let trusted = session.and_then(|s| s.trusted_clients(transport.config()));
        let sources = match session {
            Some(s) => s.sources(&registry, &repository)?,
            None => vec![Source::upstream(registry.clone(), repository.clone())],
        };
        let transport = transport.with_trust(trusted);
        let last = sources.len().saturating_sub(1);
        let sources = sources
            .into_iter()
            .enumerate()
            .map(|(i, source)| {
                let own = transport.with_origin_headers(source_headers(&source)?);
                Ok(Asked {
                    key: CacheKey::pull(&source.registry, &source.repository),
                    transport: match i < last {
                        true => own.with_fallback(),
                        false => own,
                    },
                    source,
                })
            })
            .collect::<Result<Vec<Asked>>>()?;
        if sources.is_empty() {
            return Err(Error::bad_input(format!(
                "{}/{}: no source to ask",
                registry.as_written(),
                repository.as_str()
            )));
        }
        Ok(Repo {
            transport,
            session,
            tried: Mutex::new(Tried {
                dead: vec![None; sources.len()],
                ..Tried::default()
            }),
            sources,
            registry,
            repository,
        })
    }

    /// The registry as the caller named it.
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

    /// The registry itself (the last source, or the one a registries.conf
    /// location or a hosts.toml `server` put in its place).
    pub fn upstream(&self) -> RepoAt<'_> {
        let index = self
            .sources
            .iter()
            .position(|a| a.source.upstream)
            .unwrap_or(self.sources.len() - 1);
        RepoAt { repo: self, index }
    }

    /// The sources to ask for `need`, in order, and the bookkeeping of
    /// moving from one to the next.
    pub fn attempts(&self, need: Need) -> Attempts<'_> {
        let mut tried = self.tried();
        let by_tag = *tried.started_by_tag.get_or_insert(need == Need::Tag);
        let may = |i: &usize| {
            let s = &self.sources[*i].source;
            let able = match need {
                Need::Tag => s.capabilities.resolve,
                Need::Digest => s.capabilities.pull,
            };
            able && (by_tag || !s.tag_only)
        };
        let mut order: Vec<usize> = (0..self.sources.len()).filter(may).collect();
        if let Some(first) = tried.manifest_from.filter(|_| need == Need::Digest) {
            if let Some(at) = order.iter().position(|&i| i == first) {
                order.remove(at);
                order.insert(0, first);
            }
        }
        Attempts {
            repo: self,
            need,
            order,
            next: 0,
            failures: Vec::new(),
        }
    }

    /// `ask` of each source that may serve `need`, in turn, until one
    /// answers: the answer, or the error [`Attempts::exhausted`] makes.
    pub async fn first_answer<'r, T, F, Fut>(&'r self, need: Need, mut ask: F) -> Result<T>
    where
        F: FnMut(RepoAt<'r>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempts = self.attempts(need);
        while let Some(at) = attempts.next_source() {
            match ask(at).await {
                Ok(answer) => {
                    attempts.succeeded(at);
                    return Ok(answer);
                }
                Err(e) => attempts.failed(at, e)?,
            }
        }
        Err(attempts.exhausted())
    }

    fn tried(&self) -> MutexGuard<'_, Tried> {
        self.tried.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_dead(&self, index: usize) -> Option<Error> {
        let tried = self.tried();
        tried.dead[index].clone()
    }
}

/// The repository at one of its sources.
#[derive(Clone, Copy)]
pub struct RepoAt<'r> {
    repo: &'r Repo<'r>,
    index: usize,
}

impl<'r> RepoAt<'r> {
    fn asked(&self) -> &'r Asked {
        &self.repo.sources[self.index]
    }

    pub fn source(&self) -> &'r Source {
        &self.asked().source
    }

    pub fn transport(&self) -> &'r Transport {
        &self.asked().transport
    }

    pub fn manifest_url(&self, reference: &TagOrDigest) -> Url {
        self.url(&format!("manifests/{reference}"))
    }

    pub fn blob_url(&self, digest: &Digest) -> Url {
        self.url(&format!("blobs/{digest}"))
    }

    /// `<api root><repository>/<rest>`, with the source's `?ns=`.
    /// Grammar-checked names contain only URL-safe characters, so the path
    /// is built as text.
    pub fn url(&self, rest: &str) -> Url {
        let source = self.source();
        let mut url = source.api_root.clone();
        let path = format!("{}{}/{rest}", url.path(), source.repository.as_str());
        url.set_path(&path);
        if let Some(ns) = &source.ns {
            url.query_pairs_mut().append_pair("ns", ns);
        }
        url
    }

    /// GETs `url` (one of this source's) with the auth handshake (and the
    /// source's own headers, on its own origin); the response whatever its
    /// status.
    pub async fn get(&self, url: &Url, headers: &HeaderMap) -> Result<Response> {
        let asked = self.asked();
        authorized_get(
            &asked.transport,
            self.repo.session,
            &asked.key,
            url,
            headers,
        )
        .await
    }

    /// GETs `url`, one of this source's or where it redirected a request
    /// (a CDN), over a TCP connection of its own while the request is in
    /// flight (`Transport::with_separate_connections`). Nothing of the
    /// source's (token, configured headers) goes to another origin.
    pub async fn get_on_own_connection(&self, url: &Url, headers: &HeaderMap) -> Result<Response> {
        let asked = self.asked();
        let transport = asked.transport.with_separate_connections();
        if Origin::of(url) == Origin::of(&asked.source.api_root) {
            let session = self.repo.session;
            return authorized_get(&transport, session, &asked.key, url, headers).await;
        }
        transport
            .with_origin_headers(HeaderMap::new())
            .get(url, headers, None)
            .await
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

/// The source's own headers (hosts.toml `[header]`), checked when the
/// file was read.
fn source_headers(source: &Source) -> Result<HeaderMap> {
    let mut all = HeaderMap::new();
    for (name, values) in &source.headers {
        let bad = || Error::bad_input(format!("{}: header {name:?} is not usable", source.name()));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
        for v in values {
            all.append(&name, HeaderValue::from_str(v).map_err(|_| bad())?);
        }
    }
    Ok(all)
}

/// What to do after a source failed.
enum Verdict {
    /// The next source may do better.
    Next,
    /// As `Next`, and this source is not asked again in this call.
    Dead,
    /// The failure is not the source's (cancelled, the local disk, the
    /// caller's input): no other source changes it.
    Stop,
}

fn verdict(e: &Error) -> Verdict {
    match e.kind {
        ErrorKind::Transport => Verdict::Dead,
        ErrorKind::Http | ErrorKind::Auth | ErrorKind::Protocol | ErrorKind::DigestMismatch => {
            Verdict::Next
        }
        _ => Verdict::Stop,
    }
}

/// The sources one request goes to, one after the other: a source is left
/// for the next when it failed (a transport error, an error status, a
/// failed handshake, an answer that is not what was asked for); one that
/// failed for a transport reason (after its own retries; a refused
/// connection is not retried when another source waits) is skipped for
/// the rest of the call. Nothing here retries.
pub struct Attempts<'r> {
    repo: &'r Repo<'r>,
    need: Need,
    order: Vec<usize>,
    next: usize,
    failures: Vec<(usize, Error)>,
}

impl<'r> Attempts<'r> {
    /// The next source to ask, or None when none is left.
    pub fn next_source(&mut self) -> Option<RepoAt<'r>> {
        while let Some(&index) = self.order.get(self.next) {
            self.next += 1;
            match self.repo.is_dead(index) {
                Some(e) => self.failures.push((index, e)),
                None => {
                    return Some(RepoAt {
                        repo: self.repo,
                        index,
                    })
                }
            }
        }
        None
    }

    /// `at` answered. The first answer's source is asked first for what
    /// follows, unless it answered a tag behind a source that may pull but
    /// not resolve: content by digest then goes to that one first, as
    /// containerd resolves tags on some hosts and pulls from others.
    pub fn succeeded(&self, at: RepoAt<'_>) {
        let before = &self.repo.sources[..at.index];
        let pull_only_before = before
            .iter()
            .any(|a| a.source.capabilities.pull && !a.source.capabilities.resolve);
        if self.need == Need::Tag && pull_only_before {
            return;
        }
        let mut tried = self.repo.tried();
        tried.manifest_from.get_or_insert(at.index);
    }

    /// `at` failed with `e`: Ok to go on to the next source, or `e` back
    /// when no source would do better.
    pub fn failed(&mut self, at: RepoAt<'_>, e: Error) -> Result<()> {
        match verdict(&e) {
            Verdict::Stop => return Err(e),
            Verdict::Dead if self.repo.sources.len() > 1 => {
                let mut tried = self.repo.tried();
                tried.dead[at.index].get_or_insert_with(|| e.clone());
            }
            _ => {}
        }
        self.failures.push((at.index, e));
        Ok(())
    }

    /// The error once every source failed: the last one's, its message
    /// naming each source and what it said. One source's error stays as
    /// it was.
    pub fn exhausted(mut self) -> Error {
        // Sources dead before this request began count among its failures.
        while self.next_source().is_some() {}
        let Some((_, last)) = self.failures.last() else {
            let what = match self.need {
                Need::Tag => "resolve tags (capability resolve)",
                Need::Digest => "serve content by digest (capability pull)",
            };
            return Error::bad_input(format!(
                "{}: no source of {} may {what}",
                self.repo.registry.as_written(),
                self.repo.repository.as_str()
            ));
        };
        if self.failures.len() == 1 {
            return last.clone();
        }
        let mut message = String::from("every source failed:");
        for (index, e) in &self.failures {
            let _ = write!(
                message,
                " {}: {};",
                self.repo.sources[*index].source.name(),
                e.message
            );
        }
        message.pop();
        Error {
            message,
            ..last.clone()
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
        )
        .unwrap();
        let at = repo.upstream();
        let tag = TagOrDigest::parse("3.19").unwrap();
        assert_eq!(
            at.manifest_url(&tag).as_str(),
            "http://127.0.0.1:5000/v2/library/alpine/manifests/3.19"
        );
        let d = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert_eq!(
            at.blob_url(&d).as_str(),
            format!(
                "http://127.0.0.1:5000/v2/library/alpine/blobs/sha256:{}",
                "0".repeat(64)
            )
        );
    }
}
