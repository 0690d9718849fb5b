//! What a caller names: a registry (with the scheme rule), a repository and a
//! tag or digest, each checked against the distribution grammar before any
//! request is made.

use std::net::IpAddr;

use url::Url;

use super::digest::Digest;
use super::error::{Error, Result};

/// A registry endpoint: the scheme to speak and the `host[:port]` authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    base: Url,
    authority: String,
}

impl Registry {
    /// Parses `host[:port]`, optionally prefixed by `http://` or `https://`.
    /// Without a prefix, loopback hosts speak plain HTTP and all others HTTPS.
    pub fn parse(input: &str) -> Result<Registry> {
        let bad = |why: &str| Error::bad_input(format!("registry {:?}: {why}", shown(input)));
        let (explicit_scheme, authority) = match input.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (Some("http"), rest),
                "https" => (Some("https"), rest),
                _ => return Err(bad("only http:// or https:// may prefix a registry")),
            },
            None => (None, input),
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.is_empty() {
            return Err(bad("empty host"));
        }
        check_authority(authority).map_err(|why| bad(&why))?;
        // The grammar allows what no address is (`1.2.3.999`, `[1:2]`, port
        // 99999); the URL a request needs refuses those.
        let probe = Url::parse(&format!("http://{authority}/")).map_err(|e| bad(&e.to_string()))?;
        let host = probe.host().ok_or_else(|| bad("no host"))?;
        let loopback = is_loopback(&host);
        let scheme = explicit_scheme.unwrap_or(if loopback { "http" } else { "https" });
        let authority = authority.to_ascii_lowercase();
        let base =
            Url::parse(&format!("{scheme}://{authority}/")).map_err(|e| bad(&e.to_string()))?;
        Ok(Registry { base, authority })
    }

    pub fn scheme(&self) -> &str {
        self.base.scheme()
    }

    pub fn origin(&self) -> super::origin::Origin {
        super::origin::Origin::of(&self.base)
    }

    /// `host[:port]` as the caller wrote it (lowercased); the token cache key.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn manifest_url(&self, repo: &Repository, reference: &Reference) -> Url {
        self.endpoint(repo, "manifests", &reference.to_string())
    }

    pub fn blob_url(&self, repo: &Repository, digest: &Digest) -> Url {
        self.endpoint(repo, "blobs", &digest.to_string())
    }

    fn endpoint(&self, repo: &Repository, kind: &str, last: &str) -> Url {
        let mut url = self.base.clone();
        // Grammar-checked names contain only URL-safe characters, so the path
        // is built as text rather than segment by segment.
        url.set_path(&format!("/v2/{}/{kind}/{last}", repo.0));
        url
    }
}

/// distribution's `domainAndPort`: a domain name (labels of letters and
/// digits, '-' only inside, joined by single dots; IPv4 addresses are such
/// names) or an IPv6 address in brackets (hex digits and ':'), then
/// optionally ':' and the port's digits.
fn check_authority(authority: &str) -> std::result::Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let end = rest.find(']').ok_or("an IPv6 address without its ']'")?;
            authority.split_at(end + 2)
        }
        None => authority.split_at(authority.find(':').unwrap_or(authority.len())),
    };
    if !port.is_empty() {
        let digits = port
            .strip_prefix(':')
            .ok_or_else(|| format!("{:?} after the host: expected ':' and a port", shown(port)))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("port {:?} is not digits", shown(digits)));
        }
    }
    match host.strip_prefix('[') {
        Some(bracketed) => {
            let address = bracketed.strip_suffix(']').unwrap_or(bracketed);
            if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return Err(format!(
                    "{:?} is not an IPv6 address of hex digits and ':'",
                    shown(host)
                ));
            }
        }
        None => {
            if let Some(label) = host.split('.').find(|l| !is_domain_label(l)) {
                return Err(format!(
                    "host label {:?} is not letters and digits with '-' only inside",
                    shown(label)
                ));
            }
        }
    }
    Ok(())
}

/// At most 80 characters of `s`, for messages: a megabyte of junk must not
/// become a megabyte of message.
fn shown(s: &str) -> String {
    s.chars().take(80).collect()
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// A repository path such as `library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository(String);

const MAX_REPOSITORY_LEN: usize = 255;

impl Repository {
    pub fn parse(input: &str) -> Result<Repository> {
        let bad = |why: &str| Error::bad_input(format!("repository {:?}: {why}", shown(input)));
        if input.is_empty() {
            return Err(bad("empty"));
        }
        if input.len() > MAX_REPOSITORY_LEN {
            return Err(bad(&format!(
                "{} bytes long, at most {MAX_REPOSITORY_LEN} allowed",
                input.len()
            )));
        }
        for component in input.split('/') {
            if !is_path_component(component) {
                return Err(bad(&format!(
                    "component {component:?} is not lowercase letters and digits joined by '.', '_', '__' or dashes"
                )));
            }
        }
        Ok(Repository(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// Anything that parses as a digest is one; everything else must be a
    /// valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    pub fn parse(input: &str) -> Result<Reference> {
        if let Ok(d) = Digest::parse(input) {
            return Ok(Reference::Digest(d));
        }
        let bytes = input.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let valid = !bytes.is_empty()
            && bytes.len() <= 128
            && word(bytes[0])
            && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
        if !valid {
            return Err(Error::bad_input(format!(
                "reference {:?} is neither a digest (sha256:/sha512: + lowercase hex) nor a tag (letters, digits, '_', '.', '-', at most 128)",
                shown(input)
            )));
        }
        Ok(Reference::Tag(input.to_owned()))
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_rule() {
        for (input, scheme) in [
            ("localhost", "http"),
            ("localhost:5000", "http"),
            ("LOCALHOST:5000", "http"),
            ("127.0.0.1", "http"),
            ("127.0.0.1:5000", "http"),
            ("127.1.2.3:5000", "http"),
            ("[::1]:5000", "http"),
            ("[::1]", "http"),
            ("ghcr.io", "https"),
            ("registry.example.com:5000", "https"),
            ("10.0.0.1:5000", "https"),
            ("localhost.example.com", "https"),
            ("http://ghcr.io", "http"),
            ("http://registry.example.com:5000", "http"),
            ("https://localhost:5000", "https"),
            ("HTTPS://127.0.0.1:5000/", "https"),
        ] {
            let r = Registry::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.scheme(), scheme, "{input}");
        }
    }

    #[test]
    fn registry_authority_keeps_the_port() {
        assert_eq!(
            Registry::parse("http://Localhost:5000")
                .unwrap()
                .authority(),
            "localhost:5000"
        );
        assert_eq!(Registry::parse("ghcr.io").unwrap().authority(), "ghcr.io");
    }

    #[test]
    fn rejects_bad_registries() {
        for bad in [
            "",
            "http://",
            "ftp://host",
            "host/path",
            "user@host",
            "host name",
            "host?x=1",
            "host:99999",
            "host\n",
            "host:",
            "host:x",
            ":5000",
            "my_host",
            "-host",
            "host-",
            "a..b",
            "a.",
            ".a",
            "[]",
            "[::1",
            "[::1]x",
            "[::ffff:1.2.3.4]",
            "[fe80::1%25eth0]",
        ] {
            assert!(Registry::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn urls() {
        let r = Registry::parse("127.0.0.1:5000").unwrap();
        let repo = Repository::parse("library/alpine").unwrap();
        let tag = Reference::parse("3.19").unwrap();
        assert_eq!(
            r.manifest_url(&repo, &tag).as_str(),
            "http://127.0.0.1:5000/v2/library/alpine/manifests/3.19"
        );
        let d = Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap();
        assert_eq!(
            r.blob_url(&repo, &d).as_str(),
            format!(
                "http://127.0.0.1:5000/v2/library/alpine/blobs/sha256:{}",
                "0".repeat(64)
            )
        );
    }

    #[test]
    fn repository_grammar() {
        for good in [
            "alpine",
            "library/alpine",
            "a/b/c",
            "my-repo",
            "a__b",
            "a.b_c",
            "a---b",
            "x9/0y",
        ] {
            assert!(Repository::parse(good).is_ok(), "{good:?} refused");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "/",
            "a/",
            "/a",
            "a//b",
            "a/../b",
            "..",
            "A",
            "Library/alpine",
            "a b",
            "a___b",
            "a-",
            "-a",
            "a._b",
            "a/./b",
            "a\nb",
            long.as_str(),
        ] {
            assert!(Repository::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            Reference::parse(&digest).unwrap(),
            Reference::Digest(_)
        ));
        assert!(matches!(
            Reference::parse("latest").unwrap(),
            Reference::Tag(_)
        ));
        assert!(matches!(
            Reference::parse("v1.2_3-rc").unwrap(),
            Reference::Tag(_)
        ));
        let long = "a".repeat(129);
        for bad in [
            "",
            ".hidden",
            "-x",
            "a b",
            "tag\n",
            "a/b",
            long.as_str(),
            &digest.to_uppercase(),
            "sha256:abc",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
