//! `WWW-Authenticate` parsing (RFC 7235): one header may carry several
//! challenges, and parameter values may be tokens or quoted strings with
//! backslash escapes.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// As sent; compare case-insensitively.
    pub scheme: String,
    /// Parameter names lowercased (they are case-insensitive), values unescaped.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("bearer")
    }
}

/// Every challenge in one header value, in order. Malformed pieces are
/// skipped rather than failing the whole header: a registry's odd extra
/// challenge must not hide a good Bearer one.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip(|b| b == b',' || is_space(b));
        if p.done() {
            return out;
        }
        let Some(scheme) = p.token() else {
            p.skip(|b| b != b',');
            continue;
        };
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        // Parameters follow until a token that is not followed by '=' starts
        // the next challenge.
        loop {
            p.skip(|b| b == b',' || is_space(b));
            let mark = p.i;
            let Some(name) = p.token() else {
                if !p.done() {
                    // token68 or garbage: not a parameter; skip to the next comma.
                    p.skip(|b| b != b',');
                    continue;
                }
                break;
            };
            p.skip(is_space);
            if p.peek() != Some(b'=') {
                p.i = mark;
                break;
            }
            p.i += 1;
            p.skip(is_space);
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            // token68 padding such as `Basic abc==` leaves '=' behind.
            p.skip(|b| b == b'=');
            challenge.params.push((name.to_ascii_lowercase(), value));
        }
        out.push(challenge);
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(is_tchar);
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string from the opening quote; an unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        out.push(escaped);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(header: &str) -> Challenge {
        let all = parse(header);
        assert_eq!(all.len(), 1, "{header}: {all:?}");
        all.into_iter().next().unwrap()
    }

    #[test]
    fn docker_hub_style() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn unquoted_values_spaces_and_case() {
        let c = one("bearer  Realm = https://a.example/token , SERVICE=reg");
        assert!(c.is_bearer());
        assert_eq!(c.param("realm"), Some("https://a.example/token"));
        assert_eq!(c.param("service"), Some("reg"));
    }

    #[test]
    fn escaped_quotes() {
        let c = one(r#"Bearer realm="https://a/t",scope="say \"hi\" \\ there""#);
        assert_eq!(c.param("scope"), Some(r#"say "hi" \ there"#));
    }

    #[test]
    fn several_challenges_in_one_header() {
        let all =
            parse(r#"Basic realm="basic", Bearer realm="https://a/t", service="s", Negotiate"#);
        let schemes: Vec<_> = all.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Bearer", "Negotiate"]);
        assert_eq!(all[1].param("realm"), Some("https://a/t"));
        assert_eq!(all[1].param("service"), Some("s"));
        assert_eq!(all[0].param("service"), None);
    }

    #[test]
    fn token68_and_garbage_do_not_derail() {
        let all = parse("Basic dXNlcjpwYXNz==, Bearer realm=x");
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[1].param("realm"), Some("x"));
        assert!(parse("").is_empty());
        assert!(parse(" , ,").is_empty());
        let c = one(r#"Bearer realm="unterminated"#);
        assert_eq!(c.param("realm"), Some("unterminated"));
        let c = one("Bearer");
        assert!(c.params.is_empty());
    }
}
