//! Proxies from the environment, handed to reqwest, which parses the URLs,
//! matches `no_proxy`, forwards plain http and tunnels https. Our part is
//! only which variables count and that loopback is never proxied: reqwest
//! would send `127.0.0.1` through an `http_proxy` unless told otherwise.

use super::error::{Error, Reason, Result};

/// Added to whatever `no_proxy` says: a registry on this machine is never
/// reached through another one.
const LOOPBACK: &str = "127.0.0.0/8,::1,localhost";

/// The proxies the environment asks for, as curl and Go read it: the
/// lowercase variable first, then the capital one; `HTTP_PROXY` is not
/// trusted under CGI, where a client's `Proxy:` header becomes it
/// (httpoxy).
pub fn from_env() -> Result<Vec<reqwest::Proxy>> {
    from_vars(|name| std::env::var(name).ok())
}

fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Vec<reqwest::Proxy>> {
    let read = |lower: &str, upper: &str| {
        var(lower)
            .or_else(|| var(upper))
            .filter(|v| !v.trim().is_empty())
    };
    let cgi = var("REQUEST_METHOD").is_some();
    let http = match cgi {
        true => var("http_proxy").filter(|v| !v.trim().is_empty()),
        false => read("http_proxy", "HTTP_PROXY"),
    };
    let https = read("https_proxy", "HTTPS_PROXY");
    let all = read("all_proxy", "ALL_PROXY");
    let no_proxy = match read("no_proxy", "NO_PROXY") {
        Some(list) => format!("{list},{LOOPBACK}"),
        None => LOOPBACK.to_owned(),
    };
    let mut proxies = Vec::new();
    type Make = fn(String) -> reqwest::Result<reqwest::Proxy>;
    let wanted: [(&str, Option<String>, Make); 3] = [
        ("http_proxy", http, reqwest::Proxy::http),
        ("https_proxy", https, reqwest::Proxy::https),
        ("all_proxy", all, reqwest::Proxy::all),
    ];
    for (name, value, make) in wanted {
        let Some(value) = value else { continue };
        let proxy = make(value.trim().to_owned()).map_err(|e| {
            Error::transport(
                Reason::Proxy,
                format!("{name} is not a usable proxy URL: {e}"),
            )
        })?;
        proxies.push(proxy.no_proxy(reqwest::NoProxy::from_string(&no_proxy)));
    }
    Ok(proxies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn which_variables_count() {
        assert_eq!(from_vars(vars(&[])).unwrap().len(), 0);
        assert_eq!(from_vars(vars(&[("http_proxy", " ")])).unwrap().len(), 0);
        let all = from_vars(vars(&[
            ("HTTP_PROXY", "http://p:1"),
            ("https_proxy", "http://p:2"),
            ("ALL_PROXY", "http://p:3"),
        ]));
        assert_eq!(all.unwrap().len(), 3);
        let cgi = from_vars(vars(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://p:1"),
        ]));
        assert_eq!(cgi.unwrap().len(), 0, "HTTP_PROXY is ignored under CGI");
    }

    #[test]
    fn an_unusable_proxy_is_refused_loudly() {
        let e = from_vars(vars(&[("https_proxy", "http://[::1")])).unwrap_err();
        assert_eq!(e.reason, Reason::Proxy);
        assert!(e.message.contains("https_proxy"), "{e}");
    }
}
