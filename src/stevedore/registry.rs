//! A registry: the scheme to speak, the authority to contact, and who it
//! is (Docker Hub answers to several names). Everything that asks "which
//! registry is this?" asks this type.

use url::Url;

use super::error::{Error, Result};
use super::origin::{is_loopback, Origin};

/// The name Docker Hub goes by in normalized references, and its key.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub answers on.
const HUB_HOST: &str = "registry-1.docker.io";
/// What references call Docker Hub.
const HUB_REFERENCE_NAMES: [&str; 2] = [DOCKER_HUB, "index.docker.io"];
/// Every name of Docker Hub: credentials for one are credentials for all.
const HUB_NAMES: [&str; 3] = [DOCKER_HUB, "index.docker.io", HUB_HOST];

/// A registry endpoint: the scheme to speak and the `host[:port]` authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    base: Url,
    authority: String,
    /// Whether the caller wrote the scheme (`http://…`), so the registry
    /// is handed back as it was named.
    explicit_scheme: bool,
}

impl Registry {
    /// Parses `host[:port]`, optionally prefixed by `http://` or `https://`.
    /// Without a prefix, loopback hosts speak plain HTTP and all others HTTPS.
    pub fn parse(input: &str) -> Result<Registry> {
        let (scheme, authority) = match input.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, input),
        };
        Registry::from_parts(scheme, authority, input)
    }

    /// `authority` spoken to with `scheme` (`None`: the loopback rule);
    /// `input` is what messages name.
    pub(crate) fn from_parts(
        scheme: Option<&str>,
        authority: &str,
        input: &str,
    ) -> Result<Registry> {
        let bad = |why: &str| Error::bad_input(format!("registry {:?}: {why}", shown(input)));
        let explicit_scheme = match scheme.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("http") => Some("http"),
            Some("https") => Some("https"),
            Some(_) => return Err(bad("only http:// or https:// may prefix a registry")),
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
        Ok(Registry {
            base,
            authority,
            explicit_scheme: explicit_scheme.is_some(),
        })
    }

    /// The registry as a caller names it: `host[:port]`, with the
    /// `http://` or `https://` it was written with.
    pub fn as_written(&self) -> String {
        match self.explicit_scheme {
            true => format!("{}://{}", self.scheme(), self.authority),
            false => self.authority.clone(),
        }
    }

    /// Who the registry is, for credentials and TLS settings: its
    /// authority, with Docker Hub's names made one.
    pub fn key(&self) -> String {
        key_of(&self.authority)
    }

    /// Whether a reference naming this registry names Docker Hub (as
    /// distribution normalizes: `docker.io` and the legacy
    /// `index.docker.io`, not the host that serves it).
    pub fn names_docker_hub(&self) -> bool {
        HUB_REFERENCE_NAMES.contains(&self.authority.as_str())
    }

    /// The host that serves Docker Hub, with this registry's scheme as
    /// written.
    pub fn docker_hub_host(&self) -> Registry {
        let written = match self.explicit_scheme {
            true => format!("{}://{HUB_HOST}", self.scheme()),
            false => HUB_HOST.to_owned(),
        };
        Registry::parse(&written).expect("Docker Hub's host is a registry")
    }

    pub fn scheme(&self) -> &str {
        self.base.scheme()
    }

    pub fn origin(&self) -> Origin {
        Origin::of(&self.base)
    }

    /// `host[:port]` as the caller wrote it (lowercased): what is contacted,
    /// and, with the origin, what a cached token is bound to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// `path` on this registry.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
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

/// The key of a registry named by a `host[:port]` (or a URL, as auth files
/// and messages write it): lowercased, without scheme or path, Docker
/// Hub's names made one.
pub fn key_of(input: &str) -> String {
    let s = input.trim().to_ascii_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let host = s.split('/').next().unwrap_or("");
    match HUB_NAMES.contains(&host) {
        true => DOCKER_HUB.to_owned(),
        false => host.to_owned(),
    }
}

/// At most 80 characters of `s`, for messages: a megabyte of junk must not
/// become a megabyte of message.
pub(crate) fn shown(s: &str) -> String {
    s.chars().take(80).collect()
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
    fn docker_hub_is_one_registry() {
        assert_eq!(key_of("HTTPS://Index.Docker.io/v1/"), "docker.io");
        assert_eq!(key_of("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(
            Registry::parse("registry-1.docker.io").unwrap().key(),
            "docker.io"
        );
        assert_eq!(
            Registry::parse("http://Localhost:5000")
                .unwrap()
                .as_written(),
            "http://localhost:5000"
        );
        assert_eq!(Registry::parse("ghcr.io").unwrap().as_written(), "ghcr.io");
    }
}
