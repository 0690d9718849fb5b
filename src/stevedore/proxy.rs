//! Proxies from the environment, read as curl and Go read them:
//! `http_proxy` for http URLs, `https_proxy` for https, `all_proxy` for
//! either (each also in capitals, lowercase first), and `no_proxy`
//! exceptions. Loopback hosts are never proxied. Only http:// proxies are
//! supported: https URLs go through them in a CONNECT tunnel.

use std::net::IpAddr;

use base64::Engine as _;
use http::HeaderValue;
use percent_encoding::percent_decode_str;
use url::{Host, Url};

use super::error::{reason, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `host:port`, for messages.
    pub authority: String,
    pub host: Host<String>,
    pub port: u16,
    /// `Proxy-Authorization` for the credentials in the proxy URL.
    pub authorization: Option<HeaderValue>,
}

#[derive(Debug, Default)]
pub struct Proxies {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: Vec<Exception>,
}

#[derive(Debug, PartialEq)]
enum Exception {
    Everything,
    /// The domain and its subdomains.
    Domain(String, Option<u16>),
    Ip(IpAddr, Option<u16>),
    Network(IpAddr, u8),
}

impl Proxies {
    pub fn from_env() -> Result<Proxies> {
        Proxies::from_vars(|name| std::env::var(name).ok())
    }

    /// `var` looks a variable up; empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Proxies> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let either = |lower: &str, upper: &str| get(lower).or_else(|| get(upper));
        let all = either("all_proxy", "ALL_PROXY");
        // Under CGI, HTTP_PROXY comes from the client's `Proxy:` header
        // ("httpoxy"), so it is not trusted there.
        let cgi = var("REQUEST_METHOD").is_some();
        let http = get("http_proxy")
            .or_else(|| (!cgi).then(|| get("HTTP_PROXY")).flatten())
            .or_else(|| all.clone());
        let https = either("https_proxy", "HTTPS_PROXY").or(all);
        Ok(Proxies {
            http: http.as_deref().map(parse_proxy).transpose()?,
            https: https.as_deref().map(parse_proxy).transpose()?,
            no_proxy: either("no_proxy", "NO_PROXY")
                .map(|v| parse_no_proxy(&v))
                .unwrap_or_default(),
        })
    }

    /// The proxy to reach `url` through, if any.
    pub fn for_url(&self, url: &Url) -> Option<&Proxy> {
        let proxy = match url.scheme() {
            "http" => self.http.as_ref(),
            "https" => self.https.as_ref(),
            _ => None,
        }?;
        let host = url.host()?;
        let port = url.port_or_known_default();
        if is_loopback(&host) || self.no_proxy.iter().any(|e| e.covers(&host, port)) {
            return None;
        }
        Some(proxy)
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn parse_proxy(value: &str) -> Result<Proxy> {
    let value = value.trim();
    let invalid =
        |why: &str| Error::transport(reason::PROXY, format!("proxy setting {value:?}: {why}"));
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "http" {
        return Err(invalid("only http:// proxies are supported"));
    }
    let host = url.host().ok_or_else(|| invalid("no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(80);
    let authorization = if url.username().is_empty() {
        None
    } else {
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let pair = format!(
            "{}:{}",
            decode(url.username()),
            decode(url.password().unwrap_or(""))
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| invalid("credentials that cannot be sent"))?;
        value.set_sensitive(true);
        Some(value)
    };
    Ok(Proxy {
        authority: format!("{host}:{port}"),
        host,
        port,
        authorization,
    })
}

fn parse_no_proxy(value: &str) -> Vec<Exception> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .filter_map(|entry| {
            if entry == "*" {
                return Some(Exception::Everything);
            }
            if let Some((net, bits)) = entry.split_once('/') {
                let ip: IpAddr = net.trim_matches(['[', ']']).parse().ok()?;
                return Some(Exception::Network(ip, bits.parse().ok()?));
            }
            if let Ok(ip) = entry.trim_matches(['[', ']']).parse::<IpAddr>() {
                return Some(Exception::Ip(ip, None));
            }
            // `host:port`, `[v6]:port`.
            let (host, port) = match entry.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => (h, p.parse().ok()),
                _ => (entry, None),
            };
            let host = host.trim_matches(['[', ']']);
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Some(Exception::Ip(ip, port));
            }
            let domain = host.trim_start_matches("*.").trim_start_matches('.');
            Some(Exception::Domain(domain.to_ascii_lowercase(), port))
        })
        .collect()
}

impl Exception {
    fn covers(&self, host: &Host<&str>, port: Option<u16>) -> bool {
        let port_ok = |want: &Option<u16>| want.is_none() || *want == port;
        let ip = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
            Host::Domain(_) => None,
        };
        match (self, host, ip) {
            (Exception::Everything, _, _) => true,
            (Exception::Domain(d, p), Host::Domain(h), _) => {
                let h = h.to_ascii_lowercase();
                port_ok(p) && (h == *d || h.ends_with(&format!(".{d}")))
            }
            (Exception::Ip(want, p), _, Some(ip)) => port_ok(p) && *want == ip,
            (Exception::Network(net, bits), _, Some(ip)) => in_network(ip, *net, *bits),
            _ => false,
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn proxies(vars: &[(&str, &str)]) -> Proxies {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Proxies::from_vars(|n| vars.get(n).cloned()).unwrap()
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_url(&Url::parse(url).unwrap())
            .map(|p| p.authority.clone())
    }

    #[test]
    fn scheme_picks_the_variable_and_lowercase_wins() {
        let p = proxies(&[
            ("http_proxy", "http://lower:3128"),
            ("HTTP_PROXY", "http://upper:3128"),
            ("HTTPS_PROXY", "tls-proxy:8080"),
        ]);
        assert_eq!(via(&p, "http://r.io/v2/").as_deref(), Some("lower:3128"));
        assert_eq!(
            via(&p, "https://r.io/v2/").as_deref(),
            Some("tls-proxy:8080")
        );
        let p = proxies(&[("ALL_PROXY", "http://all")]);
        assert_eq!(via(&p, "https://r.io/").as_deref(), Some("all:80"));
        assert_eq!(via(&proxies(&[]), "https://r.io/"), None);
        assert_eq!(
            via(&proxies(&[("https_proxy", "  ")]), "https://r.io/"),
            None
        );
    }

    #[test]
    fn cgi_ignores_the_uppercase_http_proxy() {
        let p = proxies(&[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")]);
        assert_eq!(via(&p, "http://r.io/"), None);
    }

    #[test]
    fn loopback_and_no_proxy_go_direct() {
        let p = proxies(&[
            ("https_proxy", "http://p:3128"),
            ("http_proxy", "http://p:3128"),
            (
                "no_proxy",
                "internal.example, .corp, 10.0.0.0/8, 192.168.1.7, fd00::/8, only.port:5000",
            ),
        ]);
        for direct in [
            "http://localhost:5000/",
            "http://127.0.0.1:5000/",
            "http://[::1]:5000/",
            "https://internal.example/",
            "https://a.b.internal.example/",
            "https://x.corp/",
            "https://10.2.3.4/",
            "https://192.168.1.7/",
            "https://[fd12::1]/",
            "https://only.port:5000/",
        ] {
            assert_eq!(via(&p, direct), None, "{direct}");
        }
        for proxied in [
            "https://example/",
            "https://notinternal.example/",
            "https://11.0.0.1/",
            "https://192.168.1.8/",
            "https://only.port/",
            "https://[fe80::1]/",
        ] {
            assert_eq!(via(&p, proxied).as_deref(), Some("p:3128"), "{proxied}");
        }
        let p = proxies(&[("https_proxy", "http://p:3128"), ("NO_PROXY", "*")]);
        assert_eq!(via(&p, "https://r.io/"), None);
    }

    #[test]
    fn credentials_become_basic_authorization() {
        let p = proxies(&[("https_proxy", "http://us%40er:p%3Ass@p:3128")]);
        let proxy = p.for_url(&Url::parse("https://r.io/").unwrap()).unwrap();
        // base64("us@er:p:ss")
        assert_eq!(
            proxy.authorization.as_ref().unwrap().to_str().unwrap(),
            "Basic dXNAZXI6cDpzcw=="
        );
        assert_eq!(proxy.authority, "p:3128");
    }

    #[test]
    fn unsupported_proxies_are_errors() {
        for bad in ["https://p:443", "socks5://p:1080", "http://"] {
            let r = Proxies::from_vars(|n| (n == "https_proxy").then(|| bad.to_owned()));
            assert_eq!(r.unwrap_err().reason, reason::PROXY, "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_no_proxy_and_url_is_handled_and_loopback_stays_direct(
            no_proxy in "\\PC{0,60}",
            host in "[a-z0-9.-]{1,20}",
            port in proptest::option::of(1u16..),
        ) {
            let p = proxies(&[("https_proxy", "http://p:3128"), ("no_proxy", &no_proxy)]);
            let authority = match port {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            };
            if let Ok(url) = Url::parse(&format!("https://{authority}/v2/")) {
                let _ = p.for_url(&url);
            }
            for loopback in ["https://localhost/", "https://127.0.0.9:5000/", "https://[::1]/"] {
                proptest::prop_assert_eq!(via(&p, loopback), None);
            }
        }
    }
}
