//! Scheme, host and port: the unit a credential is bound to.

use std::net::IpAddr;

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: Option<String>,
    port: Option<u16>,
}

impl Origin {
    /// Ports are defaulted and hosts lowercased, so `https://R.io:443/`
    /// and `https://r.io/` are one origin.
    pub fn of(url: &Url) -> Origin {
        Origin {
            scheme: url.scheme().to_owned(),
            host: url.host_str().map(str::to_ascii_lowercase),
            port: url.port_or_known_default(),
        }
    }

    /// `host:port`, for messages.
    pub fn host_port(&self) -> String {
        match (&self.host, self.port) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.clone(),
            _ => String::new(),
        }
    }
}

/// Whether a secret may travel to `url`: over https, or plain http to a
/// loopback host.
pub fn carries_secrets(url: &Url) -> bool {
    url.scheme() == "https" || url.host().is_some_and(|h| is_loopback(&h))
}

/// How a URL appears in a message: scheme, host, port and path. The query
/// (a presigned URL's signature, a token, the account a token request
/// names) and any user or password never do.
pub fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    // Only fails for URLs that cannot have them, which then have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_ports_and_case() {
        let o = |s: &str| Origin::of(&Url::parse(s).unwrap());
        assert_eq!(o("https://r.io/v2/"), o("https://R.io:443/x"));
        assert_eq!(o("http://r.io/"), o("http://r.io:80/"));
        assert_ne!(o("http://r.io/"), o("https://r.io/"));
        assert_ne!(o("https://r.io/"), o("https://cdn.r.io/"));
        assert_ne!(o("http://127.0.0.1:5000/"), o("http://127.0.0.1:5001/"));
    }

    #[test]
    fn shown_urls_keep_no_query_and_no_userinfo() {
        let s = |u: &str| shown(&Url::parse(u).unwrap());
        assert_eq!(
            s("https://u:pw@cdn.example:8443/b/c?X-Amz-Signature=x&token=y#f"),
            "https://cdn.example:8443/b/c"
        );
        assert_eq!(s("http://127.0.0.1:5000/v2/"), "http://127.0.0.1:5000/v2/");
    }

    #[test]
    fn only_https_and_loopback_carry_secrets() {
        for (url, ok) in [
            ("https://r.example/v2/", true),
            ("http://127.0.0.1:5000/v2/", true),
            ("http://localhost:5000/v2/", true),
            ("http://[::1]:5000/v2/", true),
            ("http://r.example/v2/", false),
            ("http://10.0.0.1:5000/v2/", false),
        ] {
            assert_eq!(carries_secrets(&Url::parse(url).unwrap()), ok, "{url}");
        }
    }
}
