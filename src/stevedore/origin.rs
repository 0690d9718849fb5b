//! Scheme, host and port: the unit a credential is bound to.

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
}
