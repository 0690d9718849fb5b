//! Property tests (proptest) for the parsers that read untrusted text: the
//! reference grammar (registry, repository, tag), digests, and
//! `WWW-Authenticate` challenges. Each parser must never panic, accept what
//! the grammar generates, and accept nothing the grammar forbids.
//! Image references and registries are compared with distribution's
//! `reference` package, its regular expressions transcribed in the test.
//! `PROPTEST_CASES` overrides the number of cases (default below).

mod common;

use proptest::prelude::*;
use sha2::{Digest as _, Sha256, Sha512};
use tank::stevedore::challenge::{self, Challenge};
use tank::stevedore::digest::{Algorithm, Digest, Hasher};
use tank::stevedore::ImageRef;
use tank::stevedore::{Client, Config, Registry, Repository, TagOrDigest};

/// One client for every case: only the URLs of its repositories are asked.
fn client() -> &'static Client {
    static CLIENT: std::sync::OnceLock<Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| Client::new(Config::default()).unwrap())
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------ strategies

/// One repository path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
const COMPONENT: &str = "[a-z0-9]{1,6}((\\.|_|__|-{1,3})[a-z0-9]{1,6}){0,3}";
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";

fn repository() -> impl Strategy<Value = String> {
    prop::collection::vec(COMPONENT, 1..6)
        .prop_map(|parts| parts.join("/"))
        .prop_filter("at most 255 bytes", |r| r.len() <= 255)
}

fn hex(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), len)
        .prop_map(|v| String::from_utf8(v).unwrap())
}

fn digest_string() -> impl Strategy<Value = String> {
    prop_oneof![
        hex(64).prop_map(|h| format!("sha256:{h}")),
        hex(128).prop_map(|h| format!("sha512:{h}")),
    ]
}

/// Text that is mostly grammar characters, with the odd stranger: more
/// likely than uniform noise to get near the accept/refuse boundary.
fn nearly(alphabet: &'static str) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(
        prop_oneof![
            9 => prop::sample::select(chars),
            1 => any::<char>(),
        ],
        0..80,
    )
    .prop_map(|v| v.into_iter().collect())
}

// --------------------------------------------------- oracles (independent)

/// The repository grammar restated: every component is alphanumeric runs
/// joined by exactly '.', '_', '__' or a run of '-'.
fn repository_ok(r: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|comp| {
            let starts = comp.chars().next().is_some_and(alnum);
            let ends = comp.chars().last().is_some_and(alnum);
            let seps_ok = comp
                .split(alnum)
                .filter(|s| !s.is_empty())
                .all(|s| s == "." || s == "_" || s == "__" || s.chars().all(|c| c == '-'));
            starts && ends && seps_ok && comp.chars().all(|c| alnum(c) || "._-".contains(c))
        })
}

fn tag_ok(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !t.is_empty()
        && t.len() <= 128
        && t.chars().next().is_some_and(word)
        && t.chars().all(|c| word(c) || c == '.' || c == '-')
}

fn digest_ok(d: &str) -> bool {
    let lower_hex = |h: &str| h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match d.split_once(':') {
        Some(("sha256", h)) => h.len() == 64 && lower_hex(h),
        Some(("sha512", h)) => h.len() == 128 && lower_hex(h),
        _ => false,
    }
}

// ---------------------------------------------------------------- digests

proptest! {
    #![proptest_config(config())]

    #[test]
    fn digest_parse_agrees_with_the_grammar(s in prop_oneof![
        any::<String>(),
        nearly("sha256:0123456789abcdefABCDEF"),
        digest_string(),
    ]) {
        let parsed = Digest::parse(&s);
        prop_assert_eq!(parsed.is_ok(), digest_ok(&s), "{:?}", s);
        if let Ok(d) = parsed {
            // One spelling per content: what parses prints back unchanged.
            prop_assert_eq!(d.to_string(), s);
        } else {
            let e = Digest::parse_argument("digest", &s).unwrap_err();
            prop_assert!(e.message.starts_with("digest: "));
            prop_assert!(e.message.len() < 400, "message of {} bytes", e.message.len());
        }
    }

    #[test]
    fn valid_digests_round_trip_and_near_misses_do_not(d in digest_string(), at in any::<prop::sample::Index>()) {
        let parsed = Digest::parse(&d).unwrap();
        prop_assert_eq!(parsed.to_string(), d.clone());
        let algo = if d.starts_with("sha256:") { Algorithm::Sha256 } else { Algorithm::Sha512 };
        prop_assert_eq!(parsed.algorithm(), algo);
        let hex_start = 7;
        let i = hex_start + at.index(d.len() - hex_start);
        // One more or one fewer hex digit.
        let longer = format!("{d}0");
        prop_assert!(Digest::parse(&longer).is_err());
        prop_assert!(Digest::parse(&d[..d.len() - 1]).is_err());
        // Any hex digit made uppercase (when it is a letter) or non-hex.
        let mut upper = d.clone().into_bytes();
        upper[i] = upper[i].to_ascii_uppercase();
        let upper = String::from_utf8(upper).unwrap();
        prop_assert_eq!(Digest::parse(&upper).is_ok(), upper == d);
        let mut junk = d.clone().into_bytes();
        junk[i] = b'g';
        prop_assert!(Digest::parse(&String::from_utf8(junk).unwrap()).is_err());
        // The other algorithm's name on this length.
        let swapped = if algo == Algorithm::Sha256 { d.replacen("sha256", "sha512", 1) } else { d.replacen("sha512", "sha256", 1) };
        prop_assert!(Digest::parse(&swapped).is_err());
    }

    #[test]
    fn hashing_in_pieces_equals_hashing_at_once(
        data in prop::collection::vec(any::<u8>(), 0..1024),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
        points.sort_unstable();
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut h = Hasher::new(algo);
            let mut from = 0;
            for &p in points.iter().chain(std::iter::once(&data.len())) {
                h.update(&data[from..p]);
                from = p;
            }
            let pieces = h.finish();
            prop_assert_eq!(&pieces, &Digest::of(algo, &data));
            // Against sha2 directly, formatted by hand.
            let want: String = match algo {
                Algorithm::Sha256 => Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect(),
                Algorithm::Sha512 => Sha512::digest(&data).iter().map(|b| format!("{b:02x}")).collect(),
            };
            prop_assert_eq!(pieces.hex(), want.as_str());
        }
    }
}

// ---------------------------------------------------- names and references

proptest! {
    #![proptest_config(config())]

    #[test]
    fn repository_parse_agrees_with_the_grammar(s in prop_oneof![
        any::<String>(),
        nearly("abz09._-/"),
        repository(),
    ]) {
        let parsed = Repository::parse(&s);
        prop_assert_eq!(parsed.is_ok(), repository_ok(&s), "{:?}", s);
        match parsed {
            Ok(r) => prop_assert_eq!(r.as_str(), s.as_str()),
            Err(e) => {
                prop_assert!(e.message.starts_with("repository "));
                prop_assert!(e.message.len() < 400, "message of {} bytes", e.message.len());
            }
        }
    }

    #[test]
    fn generated_repositories_are_accepted_and_one_bad_byte_is_not(
        r in repository(),
        at in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![' ', 'A', 'Z', '\n', '\t', '%', '?', '#', ':', '@', '\\', '\u{e9}', '\0']),
    ) {
        prop_assert!(Repository::parse(&r).is_ok(), "{:?}", r);
        let mut chars: Vec<char> = r.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad);
        let broken: String = chars.into_iter().collect();
        prop_assert!(Repository::parse(&broken).is_err(), "{:?}", broken);
        for traversal in ["..", ".", ""] {
            let joined = format!("{r}/{traversal}/x");
            prop_assert!(Repository::parse(&joined).is_err(), "{:?}", joined);
        }
    }

    #[test]
    fn reference_parse_agrees_with_the_grammar(s in prop_oneof![
        any::<String>(),
        nearly("aZ09_.-:"),
        TAG,
        digest_string(),
    ]) {
        match TagOrDigest::parse(&s) {
            Ok(TagOrDigest::Digest(d)) => {
                prop_assert!(digest_ok(&s));
                prop_assert_eq!(d.to_string(), s);
            }
            Ok(TagOrDigest::Tag(t)) => {
                prop_assert!(tag_ok(&s) && !digest_ok(&s), "{:?}", s);
                prop_assert_eq!(t, s);
            }
            Err(e) => {
                prop_assert!(!tag_ok(&s) && !digest_ok(&s), "{:?} refused", s);
                prop_assert!(e.message.starts_with("reference "));
                prop_assert!(e.message.len() < 400);
            }
        }
    }

    #[test]
    fn urls_hold_exactly_the_names_given(
        host in prop_oneof![
            Just("localhost".to_owned()),
            "127\\.(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)",
            Just("[::1]".to_owned()),
            "[a-z]([a-z0-9-]{0,9}[a-z0-9])?\\.(io|com|example)",
        ],
        port in prop::option::of(1u16..),
        prefix in prop::sample::select(vec!["", "http://", "https://", "HTTP://"]),
        repo in repository(),
        reference in prop_oneof![TAG.prop_map(|t| t), digest_string()],
    ) {
        let authority = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let registry = Registry::parse(&format!("{prefix}{authority}")).unwrap();
        prop_assert_eq!(registry.authority(), authority.to_ascii_lowercase());
        let loopback = host == "localhost" || host == "[::1]" || host.starts_with("127.");
        let scheme = match prefix {
            "" => if loopback { "http" } else { "https" },
            p => if p.eq_ignore_ascii_case("http://") { "http" } else { "https" },
        };
        prop_assert_eq!(registry.scheme(), scheme);
        let repo = Repository::parse(&repo).unwrap();
        let r = TagOrDigest::parse(&reference).unwrap();
        let repo = client().repo(registry, repo, None).unwrap();
        let at = repo.upstream();
        let url = at.manifest_url(&r);
        prop_assert_eq!(url.path(), format!("/v2/{}/manifests/{reference}", repo.repository().as_str()));
        prop_assert!(url.query().is_none() && url.fragment().is_none());
        prop_assert_eq!(url.scheme(), scheme);
        if let TagOrDigest::Digest(d) = &r {
            let blob_url = at.blob_url(d);
            prop_assert_eq!(blob_url.path(), format!("/v2/{}/blobs/{d}", repo.repository().as_str()));
        }
    }

    #[test]
    fn registry_parse_never_panics_and_accepts_only_an_authority(s in prop_oneof![
        any::<String>(),
        nearly("ab.:[]1-/@?# "),
    ]) {
        if let Ok(r) = Registry::parse(&s) {
            let a = r.authority();
            prop_assert!(!a.is_empty());
            prop_assert!(!a.contains(['/', '@', '?', '#', ' ', '\t', '\n', '\r', '\\']), "{:?}", a);
            prop_assert_eq!(a, a.to_ascii_lowercase());
            prop_assert!(matches!(r.scheme(), "http" | "https"));
        }
    }
}

// ------------------------- image references against distribution's grammar

/// The oracle: distribution's `reference` package (regexp.go), expression
/// by expression, and normalize.go's `ParseNormalizedNamed` on top, then
/// what tank adds and narrows, each named where it is applied.
mod distribution {
    use regex::Regex;
    use std::sync::OnceLock;

    // regexp.go's constants, verbatim.
    const ALPHANUMERIC: &str = "[a-z0-9]+";
    const SEPARATOR: &str = "(?:[._]|__|[-]+)";
    const LOCALHOST: &str = "localhost";
    const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
    const OPTIONAL_PORT: &str = "(?::[0-9]+)?";
    const TAG: &str = r"[\w][\w.-]{0,127}";
    const DIGEST_PAT: &str =
        "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
    const IDENTIFIER: &str = "([a-f0-9]{64})";
    const IPV6ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";
    const NAME_TOTAL_LENGTH_MAX: usize = 255;
    const DEFAULT_DOMAIN: &str = "docker.io";
    const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
    const OFFICIAL_REPO_PREFIX: &str = "library/";

    fn optional(res: &[&str]) -> String {
        format!("(?:{})?", res.concat())
    }
    fn any_times(res: &[&str]) -> String {
        format!("(?:{})*", res.concat())
    }
    fn capture(res: &[&str]) -> String {
        format!("({})", res.concat())
    }
    /// Go's `\w` is ASCII: hence `(?-u)`.
    fn anchored(res: &[&str]) -> Regex {
        Regex::new(&format!("(?-u)^{}$", res.concat())).expect("a valid expression")
    }

    struct Expressions {
        domain_and_port: Regex,
        name: Regex,
        reference: Regex,
        identifier: Regex,
        tag: Regex,
        digest: Regex,
        remote_name: Regex,
    }

    fn expressions() -> &'static Expressions {
        static E: OnceLock<Expressions> = OnceLock::new();
        E.get_or_init(|| {
            let domain_name = format!(
                "{DOMAIN_NAME_COMPONENT}{}",
                any_times(&[r"\.", DOMAIN_NAME_COMPONENT])
            );
            let host = format!("(?:{domain_name}|{IPV6ADDRESS})");
            let domain_and_port = format!("{host}{OPTIONAL_PORT}");
            let path_component = format!("{ALPHANUMERIC}{}", any_times(&[SEPARATOR, ALPHANUMERIC]));
            let remote_name = format!("{path_component}{}", any_times(&["/", &path_component]));
            let name_pat = format!("{}{remote_name}", optional(&[&domain_and_port, "/"]));
            Expressions {
                domain_and_port: anchored(&[&domain_and_port]),
                name: anchored(&[
                    &optional(&[&capture(&[&domain_and_port]), "/"]),
                    &capture(&[&remote_name]),
                ]),
                reference: anchored(&[
                    &capture(&[&name_pat]),
                    &optional(&[":", &capture(&[TAG])]),
                    &optional(&["@", &capture(&[DIGEST_PAT])]),
                ]),
                identifier: anchored(&[IDENTIFIER]),
                tag: anchored(&[TAG]),
                digest: anchored(&[DIGEST_PAT]),
                remote_name: anchored(&[&remote_name]),
            }
        })
    }

    pub fn domain_and_port(s: &str) -> bool {
        expressions().domain_and_port.is_match(s)
    }
    pub fn tag(s: &str) -> bool {
        expressions().tag.is_match(s)
    }
    pub fn digest(s: &str) -> bool {
        expressions().digest.is_match(s)
    }
    pub fn remote_name(s: &str) -> bool {
        expressions().remote_name.is_match(s) && s.len() <= NAME_TOTAL_LENGTH_MAX
    }

    /// What `tank_reference_parse` must give for an input, or `None`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Expected {
        pub registry: String,
        pub repository: String,
        pub tag: Option<String>,
        pub digest: Option<String>,
        pub name: String,
    }

    struct Parsed {
        domain: Option<String>,
        path: String,
        tag: Option<String>,
        digest: Option<String>,
    }

    /// reference.go's `Parse`: the regular expression, the path's length,
    /// and go-digest's check of the digest (`digest_ok`: of its algorithms,
    /// tank verifies sha256 and sha512, not sha384).
    fn parse(s: &str) -> Option<Parsed> {
        let e = expressions();
        let m = e.reference.captures(s)?;
        let name = m.get(1)?.as_str();
        let n = e.name.captures(name)?;
        let path = n.get(2)?.as_str().to_owned();
        if path.len() > NAME_TOTAL_LENGTH_MAX {
            return None;
        }
        let digest = m.get(3).map(|d| d.as_str().to_owned());
        if digest.as_deref().is_some_and(|d| !super::digest_ok(d)) {
            return None;
        }
        Some(Parsed {
            domain: n.get(1).map(|d| d.as_str().to_owned()),
            path,
            tag: m.get(2).map(|t| t.as_str().to_owned()),
            digest,
        })
    }

    /// normalize.go's `splitDockerDomain`.
    fn split_docker_domain(name: &str) -> (String, String) {
        let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
            return (
                DEFAULT_DOMAIN.into(),
                format!("{OFFICIAL_REPO_PREFIX}{name}"),
            );
        };
        let (domain, mut remote) = if maybe_domain == LOCALHOST {
            (maybe_domain.to_owned(), maybe_remote.to_owned())
        } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
            (DEFAULT_DOMAIN.to_owned(), maybe_remote.to_owned())
        } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
            (maybe_domain.to_owned(), maybe_remote.to_owned())
        } else {
            (DEFAULT_DOMAIN.to_owned(), name.to_owned())
        };
        if domain == DEFAULT_DOMAIN && !remote.contains('/') {
            remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
        }
        (domain, remote)
    }

    /// normalize.go's `ParseNormalizedNamed`, returning the domain it chose.
    fn parse_normalized_named(s: &str) -> Option<(String, Parsed)> {
        if expressions().identifier.is_match(s) {
            return None;
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return None;
        }
        Some((domain.clone(), parse(&format!("{domain}/{remainder}"))?))
    }

    /// A host a URL can hold, as tank must to contact it: this refuses what
    /// the grammar allows but no address is, an IPv4-looking name that is
    /// not an IPv4 address (`1.2.3.999`), an IPv6 one that is not IPv6
    /// (`[1:2]`), a port past 65535.
    pub fn url_host(authority: &str) -> bool {
        url::Url::parse(&format!("http://{authority}/")).is_ok()
    }

    /// tank's extensions of the registry syntax: an optional `http://` or
    /// `https://` (any case) and one trailing '/'.
    pub fn registry(input: &str) -> bool {
        let authority = match input.split_once("://") {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                rest
            }
            Some(_) => return false,
            None => input,
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        domain_and_port(authority) && url_host(authority)
    }

    pub fn expect(input: &str) -> Option<Expected> {
        let (scheme, domain, parsed) = match input.split_once("://") {
            // tank's extension: a scheme, then always a registry.
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                let (domain, _) = rest.split_once('/')?;
                (
                    Some(scheme.to_ascii_lowercase()),
                    domain.to_owned(),
                    parse(rest)?,
                )
            }
            // Anything else with "://" fails the grammar below.
            _ => {
                // Narrowed: distribution takes a first component for a
                // registry when it has capitals; tank refuses it as a
                // repository in capitals (`UPPER/x`), rather than contact
                // a host named so.
                if input.split_once('/').is_some_and(|(first, _)| {
                    first != LOCALHOST
                        && !first.contains(['.', ':'])
                        && first.to_lowercase() != first
                }) {
                    return None;
                }
                let (domain, parsed) = parse_normalized_named(input)?;
                (None, domain, parsed)
            }
        };
        // Narrowed: a first component taken for a registry that the grammar
        // then reads as part of a domain-less path names no registry.
        if parsed.domain.as_deref() != Some(domain.as_str()) || !url_host(&domain) {
            return None;
        }
        // tank's normalization: hosts are lowercase, Docker Hub's names in
        // any case are Docker Hub.
        let mut domain = domain.to_ascii_lowercase();
        let mut path = parsed.path;
        let hub = domain == DEFAULT_DOMAIN || domain == LEGACY_DEFAULT_DOMAIN;
        if hub {
            domain = DEFAULT_DOMAIN.into();
            if !path.contains('/') {
                path = format!("{OFFICIAL_REPO_PREFIX}{path}");
            }
        }
        if path.len() > NAME_TOTAL_LENGTH_MAX {
            return None;
        }
        let tag = match (&parsed.tag, &parsed.digest) {
            (None, None) => Some("latest".to_owned()),
            (t, _) => t.clone(),
        };
        let mut name = format!("{domain}/{path}");
        if let Some(t) = &tag {
            name = format!("{name}:{t}");
        }
        if let Some(d) = &parsed.digest {
            name = format!("{name}@{d}");
        }
        let contact = if hub { "registry-1.docker.io" } else { &domain };
        Some(Expected {
            registry: match scheme {
                Some(s) => format!("{s}://{contact}"),
                None => contact.to_owned(),
            },
            repository: path,
            tag,
            digest: parsed.digest,
            name,
        })
    }
}

/// `[a-zA-Z0-9]`, with '-' only inside.
const DOMAIN_COMPONENT: &str = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?";

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(DOMAIN_COMPONENT, 1..4).prop_map(|c| c.join(".")),
        1 => prop::sample::select(vec!["localhost", "LocalHost", "docker.io", "index.docker.io", "Docker.IO"])
            .prop_map(str::to_owned),
        2 => prop::collection::vec(0u16..300, 4).prop_map(|o| {
            o.iter().map(u16::to_string).collect::<Vec<_>>().join(".")
        }),
        2 => any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        1 => any::<[u8; 4]>().prop_map(|a| format!("[::ffff:{}]", std::net::Ipv4Addr::from(a))),
        1 => "\\[[0-9a-fA-F:]{0,10}\\]",
    ]
}

fn port() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u32..70_000).prop_map(|p| p.to_string()),
        1 => "0[0-9]{1,4}",
        1 => Just(String::new()),
        1 => "[0-9a-z]{1,3}",
    ]
}

fn authority() -> impl Strategy<Value = String> {
    (host(), prop::option::of(port())).prop_map(|(h, p)| match p {
        Some(p) => format!("{h}:{p}"),
        None => h,
    })
}

fn odd_digest() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => digest_string(),
        1 => hex(96).prop_map(|h| format!("sha384:{h}")),
        1 => "[A-Za-z][A-Za-z0-9]{0,6}([-_+.][A-Za-z][A-Za-z0-9]{0,3})?:[0-9a-fA-F]{32,70}",
    ]
}

/// References the grammar generates (and some it nearly does), the way
/// people write them: an optional scheme, registry, tag and digest.
fn reference_text() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "", "", "", "http://", "HTTPS://"]),
        prop::option::weighted(0.7, authority()),
        prop_oneof![4 => repository(), 1 => COMPONENT.prop_map(|c| c)],
        prop::option::of(TAG),
        prop::option::weighted(0.3, odd_digest()),
    )
        .prop_map(|(scheme, authority, path, tag, digest)| {
            let mut s = scheme.to_owned();
            if let Some(a) = authority {
                s.push_str(&a);
                s.push('/');
            }
            s.push_str(&path);
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push('@');
                s.push_str(&d);
            }
            s
        })
}

/// One edit: where, which (insert, replace, delete) and what.
type Edit = (prop::sample::Index, u8, char);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(":/@.-_[]Aa0 %\u{e9}".chars().collect::<Vec<_>>()),
        ),
        1..4,
    )
}

fn mutate(s: String, edits: Vec<Edit>) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for (at, op, c) in edits {
        match op {
            0 => chars.insert(at.index(chars.len() + 1), c),
            _ if chars.is_empty() => {}
            1 => {
                let i = at.index(chars.len());
                chars[i] = c;
            }
            _ => {
                chars.remove(at.index(chars.len()));
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn image_references_agree_with_distribution(s in prop_oneof![
        4 => reference_text(),
        4 => (reference_text(), edits()).prop_map(|(s, e)| mutate(s, e)),
        1 => hex(64),
        1 => nearly("ab:/@.-_[]1A"),
    ]) {
        let want = distribution::expect(&s);
        let got = ImageRef::parse(&s);
        prop_assert_eq!(got.is_ok(), want.is_some(), "{:?}: {:?}", s, got);
        if let Err(e) = &got {
            prop_assert!(e.message.len() < 600, "message of {} bytes", e.message.len());
        }
        if let (Ok(got), Some(want)) = (got, &want) {
            prop_assert_eq!(&got.registry.as_written(), &want.registry, "{:?}", s);
            prop_assert_eq!(got.repository.as_str(), &want.repository, "{:?}", s);
            prop_assert_eq!(&got.tag, &want.tag, "{:?}", s);
            prop_assert_eq!(got.digest.map(|d| d.to_string()), want.digest.clone(), "{:?}", s);
            prop_assert_eq!(&got.name, &want.name, "{:?}", s);
        }
        // The same through the C entry point, for text C can pass.
        if !s.contains('\0') {
            let c = common::parse_reference(&s);
            prop_assert_eq!(c.is_ok(), want.is_some(), "{:?}: {:?}", s, c);
            if let (Ok(c), Some(want)) = (c, want) {
                prop_assert_eq!(
                    (c.registry, c.repository, c.tag, c.digest, c.name),
                    (want.registry, want.repository, want.tag, want.digest, want.name)
                );
            }
        }
    }

    #[test]
    fn registries_agree_with_distribution(
        authority in prop_oneof![
            3 => authority(),
            3 => (authority(), edits()).prop_map(|(s, e)| mutate(s, e)),
            1 => nearly("ab.:[]1-"),
        ],
        prefix in prop::sample::select(vec!["", "", "http://", "HTTPS://"]),
        slash in any::<bool>(),
    ) {
        let s = format!("{prefix}{authority}{}", if slash { "/" } else { "" });
        let parsed = Registry::parse(&s);
        prop_assert_eq!(parsed.is_ok(), distribution::registry(&s), "{:?}: {:?}", s, parsed);
        if let Err(e) = parsed {
            prop_assert!(e.message.len() < 400, "message of {} bytes", e.message.len());
        }
    }

    #[test]
    fn tags_paths_and_digests_agree_with_distribution(s in prop_oneof![
        TAG.prop_map(|t| t),
        repository(),
        odd_digest(),
        (prop_oneof![TAG.prop_map(|t| t), repository(), odd_digest()], edits())
            .prop_map(|(s, e)| mutate(s, e)),
    ]) {
        prop_assert_eq!(tag_ok(&s), distribution::tag(&s), "{:?}", s);
        prop_assert_eq!(Repository::parse(&s).is_ok(), distribution::remote_name(&s), "{:?}", s);
        // go-digest refines the grammar: registered algorithms, their length,
        // lowercase hex.
        prop_assert!(!digest_ok(&s) || distribution::digest(&s), "{:?}", s);
        match TagOrDigest::parse(&s) {
            Ok(TagOrDigest::Tag(_)) => prop_assert!(distribution::tag(&s), "{:?}", s),
            Ok(TagOrDigest::Digest(_)) => prop_assert!(distribution::digest(&s) && digest_ok(&s), "{:?}", s),
            Err(_) => prop_assert!(!distribution::tag(&s) && !digest_ok(&s), "{:?}", s),
        }
    }
}

/// Where tank and distribution once parted, and neighbours of each.
#[test]
fn references_where_tank_and_distribution_parted_agree() {
    let hex64 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let inputs = [
        "example.com:/x",
        "example.com:/x:1",
        "localhost:/x",
        "example.com:5000/x",
        "example.com:0/x",
        "example.com:x/y",
        "my_host.example/x",
        "-a.example/x",
        "a-.example/x",
        "a..example/x",
        ".example/x",
        "example./x",
        "[::ffff:1.2.3.4]:5000/x",
        "[::ffff:102:304]:5000/x",
        "[::1]:5000/x",
        "[]:5000/x",
        "Foo/bar",
        "FOO/bar:1",
        "Foo/Bar",
        "foo/bar",
        hex64,
        &format!("{hex64}:1"),
        &format!("x/{hex64}"),
        "http://example.com:/x",
        "http://my_host/x",
        "http://Foo/x",
        "Docker.IO/alpine",
        "1.2.3.999/x",
        "example.com:65536/x",
    ];
    for s in inputs {
        let want = distribution::expect(s);
        let got = ImageRef::parse(s);
        assert_eq!(got.is_ok(), want.is_some(), "{s:?}: {got:?}, want {want:?}");
        if let (Ok(got), Some(want)) = (got, want) {
            assert_eq!(
                (
                    got.registry.as_written(),
                    got.repository.as_str().to_owned(),
                    got.name
                ),
                (want.registry, want.repository, want.name),
                "{s:?}"
            );
        }
    }
    for s in [
        "example.com:",
        "my_host",
        "-a",
        "a.",
        "a..b",
        "[::ffff:1.2.3.4]",
        "host:",
        ":5000",
        "[::1]x",
    ] {
        assert_eq!(
            Registry::parse(s).is_ok(),
            distribution::registry(s),
            "{s:?}"
        );
    }
}

// ------------------------------------------------------------- challenges

/// A challenge to render: scheme, and parameters (name, value, quote it).
type Spec = (String, Vec<(String, String, bool)>);

fn is_token(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b))
}

fn render(challenges: &[Spec], spaces: &[String]) -> String {
    let mut sp = spaces.iter().cycle();
    let mut out = Vec::new();
    for (scheme, params) in challenges {
        let rendered: Vec<String> = params
            .iter()
            .map(|(name, value, quote)| {
                let value = if !quote && is_token(value) {
                    value.clone()
                } else {
                    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
                };
                format!("{name}{}={}{value}", sp.next().unwrap(), sp.next().unwrap())
            })
            .collect();
        let sep = format!("{},{}", sp.next().unwrap(), sp.next().unwrap());
        if rendered.is_empty() {
            out.push(scheme.clone());
        } else {
            out.push(format!(
                "{scheme} {}{}",
                sp.next().unwrap(),
                rendered.join(&sep)
            ));
        }
    }
    let sep = format!("{},{}", sp.next().unwrap(), sp.next().unwrap());
    out.join(&sep)
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        "[A-Za-z][A-Za-z0-9_-]{0,10}",
        prop::collection::vec(
            (
                "[A-Za-z][A-Za-z0-9_-]{0,8}",
                prop_oneof![
                    "[A-Za-z0-9!#$%&'*+.^_`|~/:-]{1,16}",
                    ".{0,24}",
                    Just(String::new()),
                    Just(r#"say "hi" \ there"#.to_owned()),
                ],
                any::<bool>(),
            ),
            0..5,
        ),
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn challenge_parse_never_panics_and_is_well_formed(s in prop_oneof![
        any::<String>(),
        nearly("Bearer realm=\"\\, \t=abc"),
    ]) {
        for c in challenge::parse(&s) {
            prop_assert!(!c.scheme.is_empty());
            for (name, _) in &c.params {
                prop_assert!(!name.is_empty());
                prop_assert_eq!(name, &name.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn rendered_challenges_parse_back(
        challenges in prop::collection::vec(spec(), 1..5),
        spaces in prop::collection::vec("[ \t]{0,2}", 1..7),
    ) {
        let header = render(&challenges, &spaces);
        let want: Vec<Challenge> = challenges
            .iter()
            .map(|(scheme, params)| Challenge {
                scheme: scheme.clone(),
                params: params
                    .iter()
                    .map(|(n, v, _)| (n.to_ascii_lowercase(), v.clone()))
                    .collect(),
            })
            .collect();
        prop_assert_eq!(challenge::parse(&header), want, "{}", header);
    }

    #[test]
    fn a_bearer_realm_is_found_among_other_challenges(
        before in prop::collection::vec(spec(), 0..3),
        after in prop::collection::vec(spec(), 0..3),
        realm in "https?://[a-z]{1,8}(:[0-9]{1,5})?/[a-z/]{0,12}",
        service in ".{0,16}",
    ) {
        let bearer: Spec = (
            "Bearer".into(),
            vec![("realm".into(), realm.clone(), true), ("service".into(), service.clone(), true)],
        );
        let all: Vec<Spec> = before
            .into_iter()
            .filter(|(s, _)| !s.eq_ignore_ascii_case("bearer"))
            .chain(std::iter::once(bearer))
            .chain(after)
            .collect();
        let header = render(&all, &[" ".to_owned()]);
        let found = challenge::parse(&header).into_iter().find(Challenge::is_bearer);
        let found = found.expect("the Bearer challenge");
        prop_assert_eq!(found.param("realm"), Some(realm.as_str()));
        prop_assert_eq!(found.param("service"), Some(service.as_str()));
    }
}
