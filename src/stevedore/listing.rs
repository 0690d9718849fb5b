//! What a registry lists: a repository's tags (`GET /v2/<name>/tags/list`,
//! [`Repo::tags`], asked of the registry itself, not of a mirror) and the
//! registry's repositories (`GET /v2/_catalog`, [`Catalog`]). Both answer
//! in pages: `n=` asks for a page size (the
//! registry may give fewer), and each page that has a successor names it in
//! a `Link: <…>; rel="next"` header, relative or absolute. Pages are
//! followed on the registry's own origin only, never back to one already
//! read, and what is read is bounded: a page's bytes, the pages, the names.

use std::collections::HashSet;
use std::future::Future;

use http::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

use super::auth::authorized_get;
use super::error::{Endpoint, Error, Reason, Result};
use super::origin::{shown, Origin};
use super::registry::Registry;
use super::repo::{refused, Repo};
use super::session::{CacheKey, Session};
use super::transport::{Body, Response, Transport};

/// The page size asked for: distribution's own default and ceiling
/// (`catalog.maxentries`), which it answers with a 400 when exceeded.
const DEFAULT_PAGE_SIZE: u32 = 1000;
/// What one listing reads at most: 4 MiB a page, 100,000 pages, 10 million
/// names, whichever comes first.
const LIMITS: Limits = Limits {
    page_bytes: 4 << 20,
    pages: 100_000,
    names: 10_000_000,
};

#[derive(Debug, Clone, Copy)]
struct Limits {
    page_bytes: u64,
    pages: usize,
    names: usize,
}

/// A tag is at most 128 bytes and a repository name at most 255: a longer
/// "name" is not one, and would let a page of a few names cost what a page
/// of many does.
const MAX_NAME_BYTES: usize = 255;

/// Which list a page belongs to: its endpoint, and the field holding its names.
#[derive(Debug, Clone, Copy)]
enum List {
    Tags,
    Catalog,
}

impl List {
    fn field(self) -> &'static str {
        match self {
            List::Tags => "tags",
            List::Catalog => "repositories",
        }
    }

    fn endpoint(self) -> Endpoint {
        match self {
            List::Tags => Endpoint::Tags,
            List::Catalog => Endpoint::Catalog,
        }
    }
}

impl Repo<'_> {
    /// Every tag of the repository, in the order the registry gives them,
    /// asked `page_size` at a time (`None`: [`DEFAULT_PAGE_SIZE`]; a test
    /// may want many pages).
    pub async fn tags(&self, page_size: Option<u32>) -> Result<Vec<String>> {
        // The registry itself: which mirrors may answer for tags is the
        // sources' business, and none is asked yet.
        let upstream = self.upstream();
        let first = upstream.url("tags/list");
        let headers = &HeaderMap::new();
        all_pages(List::Tags, first, page_size, LIMITS, |url| async move {
            upstream.fetch(Endpoint::Tags, &url, headers).await
        })
        .await
    }
}

/// A registry's catalog, asked with what the session holds for the
/// registry as a whole: the catalog is no repository's, and its token's
/// scope (`registry:catalog:*`, as the registry's challenge names it) is
/// cached apart from theirs.
pub struct Catalog<'a> {
    registry: Registry,
    session: Option<&'a Session>,
    transport: Transport,
    key: CacheKey,
}

impl<'a> Catalog<'a> {
    pub fn new(
        transport: &Transport,
        session: Option<&'a Session>,
        registry: Registry,
    ) -> Catalog<'a> {
        let trusted = session.and_then(|s| s.trusted_clients(transport.config()));
        Catalog {
            transport: transport.with_trust(trusted),
            session,
            key: CacheKey::catalog(&registry),
            registry,
        }
    }

    /// Every repository name, in the order the registry gives them,
    /// asked `page_size` at a time (as for [`Repo::tags`]).
    pub async fn repositories(&self, page_size: Option<u32>) -> Result<Vec<String>> {
        let first = self.registry.url("/v2/_catalog");
        all_pages(List::Catalog, first, page_size, LIMITS, |url| async move {
            self.fetch(&url).await
        })
        .await
    }

    async fn fetch(&self, url: &Url) -> Result<Response> {
        let headers = HeaderMap::new();
        let resp = authorized_get(&self.transport, self.session, &self.key, url, &headers).await?;
        match resp.status().is_success() {
            true => Ok(resp),
            false => Err(refused(Endpoint::Catalog, url, resp).await),
        }
    }
}

/// Reads `first` with `n=page_size` (at least 1: a registry asked for 0
/// answers an empty page, and no link), then each page its predecessor links
/// to, and gathers the names of `list`. `fetch` GETs one page, turning an
/// error status into an error.
async fn all_pages<F, Fut>(
    list: List,
    first: Url,
    page_size: Option<u32>,
    limits: Limits,
    fetch: F,
) -> Result<Vec<String>>
where
    F: Fn(Url) -> Fut,
    Fut: Future<Output = Result<Response>>,
{
    let origin = Origin::of(&first);
    let mut sized = first.clone();
    sized.query_pairs_mut().append_pair(
        "n",
        &page_size.unwrap_or(DEFAULT_PAGE_SIZE).max(1).to_string(),
    );
    let resp = match fetch(sized.clone()).await {
        // A registry whose ceiling is below the size asked refuses it
        // (distribution: 400 PAGINATION_NUMBER_INVALID); asked without
        // one, it picks its own.
        Err(e) if e.http_status == Some(400) && e.endpoint == Some(list.endpoint()) => {
            sized = first;
            fetch(sized.clone()).await?
        }
        other => other?,
    };
    let mut read: HashSet<Url> = HashSet::from([sized.clone()]);
    let mut names = Vec::new();
    let (mut url, mut resp) = (sized, resp);
    loop {
        // The link is judged before the page is read: a page that leads
        // nowhere tank goes is not worth reading.
        let next = next_link(&url, resp.headers())?;
        if let Some(next) = &next {
            let refuse = |why: String| {
                Error::protocol(
                    Reason::InvalidNextLink,
                    format!("GET {}: Link rel=\"next\" {why}", shown(&url)),
                )
            };
            if Origin::of(next) != origin {
                return Err(refuse(format!(
                    "leads to another origin, {}",
                    Origin::of(next).host_port()
                )));
            }
            if !read.insert(next.clone()) {
                return Err(refuse(format!(
                    "leads back to {}, a page already read",
                    shown(next)
                )));
            }
            if read.len() > limits.pages {
                return Err(Error::protocol(
                    Reason::ListTooLarge,
                    format!(
                        "GET {}: the {} listed run past {} pages",
                        shown(&url),
                        list.field(),
                        limits.pages
                    ),
                ));
            }
        }
        if let Some(n) = resp.content_length().filter(|&n| n > limits.page_bytes) {
            return Err(Error::protocol(
                Reason::ListTooLarge,
                format!(
                    "GET {}: a page of {n} bytes, at most {} read",
                    shown(&url),
                    limits.page_bytes
                ),
            ));
        }
        let page = Body::new(&url, resp)
            .limit(limits.page_bytes, Reason::ListTooLarge)
            .read_to_vec()
            .await?;
        let page = page_names(list, &url, &page)?;
        if names.len() + page.len() > limits.names {
            return Err(Error::protocol(
                Reason::ListTooLarge,
                format!(
                    "GET {}: the {} listed pass {} names",
                    shown(&url),
                    list.field(),
                    limits.names
                ),
            ));
        }
        names.extend(page);
        let Some(next) = next else {
            return Ok(names);
        };
        resp = fetch(next.clone()).await?;
        url = next;
    }
}

/// The names on one page: the spec's `{"name": …, "tags": […]}` and
/// `{"repositories": […]}`, and Docker Hub's, whose list may be `null`
/// (no tags).
fn page_names(list: List, url: &Url, body: &[u8]) -> Result<Vec<String>> {
    let field = list.field();
    let invalid = |why: String| {
        Error::protocol(
            Reason::InvalidList,
            format!("GET {}: the page {why}", shown(url)),
        )
    };
    let json: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("is not JSON: {e}")))?;
    let object = json
        .as_object()
        .ok_or_else(|| invalid("is not a JSON object".to_owned()))?;
    let items = match object.get(field) {
        None => return Err(invalid(format!("has no \"{field}\""))),
        Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid(format!("has a \"{field}\" that is not a list"))),
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(name) if name.len() <= MAX_NAME_BYTES => Ok(name.clone()),
            Value::String(name) => Err(invalid(format!(
                "lists a name of {} bytes, at most {MAX_NAME_BYTES} allowed",
                name.len()
            ))),
            _ => Err(invalid(format!(
                "lists a \"{field}\" entry that is not a string"
            ))),
        })
        .collect()
}

/// The page `url`'s `Link` headers name as `rel="next"`, resolved against
/// `url`: the first such link, if any.
fn next_link(url: &Url, headers: &HeaderMap) -> Result<Option<Url>> {
    let invalid = |why: &str| {
        Error::protocol(
            Reason::InvalidNextLink,
            format!("GET {}: the Link header {why}", shown(url)),
        )
    };
    for value in headers.get_all(LINK) {
        let value = value
            .to_str()
            .map_err(|_| invalid("is not visible ASCII text"))?;
        let links = parse_links(value).ok_or_else(|| invalid("cannot be parsed (RFC 8288)"))?;
        let next = links.into_iter().find(|link| {
            link.rel.as_deref().is_some_and(|rel| {
                rel.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if let Some(link) = next {
            let mut next = url
                .join(link.target)
                .map_err(|_| invalid("names a next page that is not a URL"))?;
            next.set_fragment(None);
            return Ok(Some(next));
        }
    }
    Ok(None)
}

/// One link-value of a `Link` header: its target as written, and its
/// `rel` parameter.
#[derive(Debug, PartialEq, Eq)]
struct Link<'a> {
    target: &'a str,
    rel: Option<String>,
}

/// Every link-value of one `Link` header value (RFC 8288, section 3):
/// `<target>` then `; name=value` parameters, values tokens or quoted
/// strings; link-values separated by commas. `None` when it is malformed.
fn parse_links(value: &str) -> Option<Vec<Link<'_>>> {
    let bytes = value.as_bytes();
    let mut links = Vec::new();
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t') {
            *i += 1;
        }
    };
    loop {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        if i == bytes.len() {
            return Some(links);
        }
        if bytes[i] != b'<' {
            return None;
        }
        let end = i + 1 + value[i + 1..].find('>')?;
        let target = &value[i + 1..end];
        i = end + 1;
        let mut rel = None;
        loop {
            skip_space(&mut i);
            match bytes.get(i) {
                None | Some(b',') => break,
                Some(b';') => i += 1,
                Some(_) => return None,
            }
            skip_space(&mut i);
            let start = i;
            while i < bytes.len() && !matches!(bytes[i], b'=' | b';' | b',' | b' ' | b'\t') {
                i += 1;
            }
            let name = &value[start..i];
            skip_space(&mut i);
            let param = if bytes.get(i) == Some(&b'=') {
                i += 1;
                skip_space(&mut i);
                Some(param_value(value, &mut i)?)
            } else {
                None
            };
            // The first occurrence of `rel` counts; later ones are ignored.
            if name.eq_ignore_ascii_case("rel") && rel.is_none() {
                rel = Some(param.unwrap_or_default());
            }
        }
        links.push(Link { target, rel });
    }
}

/// A parameter's value at `*i`: a quoted string (backslash escapes undone)
/// or a token; `*i` is left after it.
fn param_value(value: &str, i: &mut usize) -> Option<String> {
    let bytes = value.as_bytes();
    if bytes.get(*i) != Some(&b'"') {
        let start = *i;
        while *i < bytes.len() && !matches!(bytes[*i], b';' | b',' | b' ' | b'\t') {
            *i += 1;
        }
        return Some(value[start..*i].to_owned());
    }
    *i += 1;
    let mut out = String::new();
    let mut chars = value[*i..].char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => {
                *i += at + 1;
                return Some(out);
            }
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(value: &str) -> Vec<(&str, Option<String>)> {
        parse_links(value)
            .unwrap_or_else(|| panic!("{value:?} does not parse"))
            .into_iter()
            .map(|l| (l.target, l.rel))
            .collect()
    }

    fn rel(r: &str) -> Option<String> {
        Some(r.to_owned())
    }

    #[test]
    fn link_headers_as_registries_send_them() {
        // distribution, quay.io, Docker Hub: a relative target, rel quoted.
        assert_eq!(
            links(r#"</v2/_catalog?last=a%2Fb&n=1>; rel="next""#),
            [("/v2/_catalog?last=a%2Fb&n=1", rel("next"))]
        );
        // Unquoted, spaced, among other links and parameters.
        assert_eq!(
            links(
                r#"<https://r.example/v2/a/tags/list?n=2&last=x>;rel=next , </p>; title="a, \"b\""; rel="prev first""#
            ),
            [
                ("https://r.example/v2/a/tags/list?n=2&last=x", rel("next")),
                ("/p", rel("prev first")),
            ]
        );
        assert_eq!(links(""), []);
        assert_eq!(links("</x>"), [("/x", None)]);
        assert_eq!(
            links(r#"</x>; rel="next"; rel="prev""#),
            [("/x", rel("next"))]
        );
    }

    #[test]
    fn malformed_link_headers() {
        for bad in [
            "/v2/x; rel=next",
            "</v2/x; rel=next",
            r#"</x>; rel="next"#,
            "</x> junk; rel=next",
        ] {
            assert_eq!(parse_links(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_links_resolve_against_the_page() {
        let page = Url::parse("http://127.0.0.1:5000/v2/a/b/tags/list?n=2").unwrap();
        let next = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.append(LINK, value.parse().unwrap());
            next_link(&page, &headers).map(|u| u.map(String::from))
        };
        assert_eq!(
            next(r#"</v2/a/b/tags/list?n=2&last=t2>; rel="next""#).unwrap(),
            Some("http://127.0.0.1:5000/v2/a/b/tags/list?n=2&last=t2".to_owned())
        );
        assert_eq!(
            next(r#"<list?last=t2#frag>; rel="next""#).unwrap(),
            Some("http://127.0.0.1:5000/v2/a/b/tags/list?last=t2".to_owned())
        );
        assert_eq!(
            next(r#"<//other.example/v2/x>; rel="next""#).unwrap(),
            Some("http://other.example/v2/x".to_owned())
        );
        assert_eq!(
            next(r#"</v2/a/b/tags/list?n=2>; rel="prev""#).unwrap(),
            None
        );
        let e = next("garbage").unwrap_err();
        assert_eq!(e.reason, Reason::InvalidNextLink, "{e}");
    }

    /// A registry in a closure: `page(url)` is the status, `Link` and
    /// body answered for `url`; every URL asked is recorded.
    struct Fake<P> {
        page: P,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl<P: Fn(&Url) -> (u16, Option<String>, String)> Fake<P> {
        fn new(page: P) -> Self {
            Fake {
                page,
                asked: Default::default(),
            }
        }

        async fn list(&self, page_size: Option<u32>, limits: Limits) -> Result<Vec<String>> {
            let first = Url::parse("http://r.example/v2/a/tags/list").unwrap();
            all_pages(List::Tags, first, page_size, limits, |url| async move {
                self.asked.lock().unwrap().push(url.to_string());
                let (status, link, body) = (self.page)(&url);
                let mut resp = http::Response::builder().status(status);
                if let Some(link) = link {
                    resp = resp.header(LINK, link);
                }
                let resp = Response::from(resp.body(body).unwrap());
                match status {
                    200 => Ok(resp),
                    _ => Err(refused(Endpoint::Tags, &url, resp).await),
                }
            })
            .await
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    /// Page `k` (`?p=k`, the first without) holds the tag `k` and links
    /// to page `k + 1`, for ever.
    fn endless(url: &Url) -> (u16, Option<String>, String) {
        let k: u64 = url
            .query_pairs()
            .find(|(name, _)| name == "p")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let link = format!("<?p={}>; rel=\"next\"", k + 1);
        (200, Some(link), format!(r#"{{"tags":["{k}"]}}"#))
    }

    #[tokio::test]
    async fn the_pages_are_bounded() {
        let limits = Limits { pages: 5, ..LIMITS };
        let fake = Fake::new(endless);
        let e = fake.list(None, limits).await.unwrap_err();
        assert_eq!(e.reason, Reason::ListTooLarge, "{e}");
        assert_eq!(fake.asked().len(), 5, "{:?}", fake.asked());
        assert!(fake.asked()[0].ends_with("/tags/list?n=1000"));
    }

    #[tokio::test]
    async fn the_names_are_bounded() {
        let limits = Limits { names: 7, ..LIMITS };
        let fake = Fake::new(|url: &Url| {
            let (status, link, _) = endless(url);
            (status, link, r#"{"tags":["a","b","c"]}"#.to_owned())
        });
        let e = fake.list(None, limits).await.unwrap_err();
        assert_eq!(e.reason, Reason::ListTooLarge, "{e}");
        assert_eq!(fake.asked().len(), 3, "the third page passes 7 names");
    }

    #[tokio::test]
    async fn a_page_size_refused_is_dropped_once() {
        let fake = Fake::new(|url: &Url| match url.query() {
            Some(q) if q.contains("n=") => (400, None, "PAGINATION_NUMBER_INVALID".to_owned()),
            _ => (200, None, r#"{"tags":["x"]}"#.to_owned()),
        });
        assert_eq!(fake.list(Some(5000), LIMITS).await.unwrap(), ["x"]);
        assert_eq!(
            fake.asked(),
            [
                "http://r.example/v2/a/tags/list?n=5000",
                "http://r.example/v2/a/tags/list"
            ]
        );
        // Refused without one too: that answer is the error.
        let fake = Fake::new(|_: &Url| (400, None, String::new()));
        let e = fake.list(Some(0), LIMITS).await.unwrap_err();
        assert_eq!(e.http_status, Some(400));
        assert_eq!(fake.asked().len(), 2);
        assert!(fake.asked()[0].ends_with("?n=1"), "n is at least 1");
        // Any other refusal is not asked again.
        let fake = Fake::new(|_: &Url| (404, None, String::new()));
        assert_eq!(
            fake.list(None, LIMITS).await.unwrap_err().http_status,
            Some(404)
        );
        assert_eq!(fake.asked().len(), 1);
    }

    #[test]
    fn page_shapes() {
        let url = Url::parse("http://r/v2/a/tags/list").unwrap();
        let tags = |body: &str| page_names(List::Tags, &url, body.as_bytes());
        assert_eq!(
            tags(r#"{"name":"a","tags":["1","2"]}"#).unwrap(),
            ["1", "2"]
        );
        // Docker Hub's empty repository, and a page with no name.
        assert!(tags(r#"{"name":"a","tags":null}"#).unwrap().is_empty());
        assert_eq!(tags(r#"{"tags":["x"]}"#).unwrap(), ["x"]);
        let catalog = page_names(List::Catalog, &url, br#"{"repositories":["a/b"]}"#);
        assert_eq!(catalog.unwrap(), ["a/b"]);
        let long = format!(r#"{{"tags":["{}"]}}"#, "x".repeat(256));
        for bad in [
            "",
            "[]",
            r#"{"name":"a"}"#,
            r#"{"tags":"1"}"#,
            r#"{"tags":[1]}"#,
            r#"{"repositories":["a"]}"#,
            &long,
        ] {
            let e = tags(bad).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidList, "{bad:?}: {e}");
        }
    }
}
