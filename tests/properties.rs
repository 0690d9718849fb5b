//! Property tests (proptest) for the parsers that read untrusted text: the
//! reference grammar (registry, repository, tag), digests, and
//! `WWW-Authenticate` challenges. Each parser must never panic, accept what
//! the grammar generates, and accept nothing the grammar forbids.
//! `PROPTEST_CASES` overrides the number of cases (default below).

use proptest::prelude::*;
use sha2::{Digest as _, Sha256, Sha512};
use tank::stevedore::challenge::{self, Challenge};
use tank::stevedore::digest::{Algorithm, Digest, Hasher};
use tank::stevedore::reference::{Reference, Registry, Repository};

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
        match Reference::parse(&s) {
            Ok(Reference::Digest(d)) => {
                prop_assert!(digest_ok(&s));
                prop_assert_eq!(d.to_string(), s);
            }
            Ok(Reference::Tag(t)) => {
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
            "[a-z][a-z0-9-]{0,10}\\.(io|com|example)",
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
        let r = Reference::parse(&reference).unwrap();
        let url = registry.manifest_url(&repo, &r);
        prop_assert_eq!(url.path(), format!("/v2/{}/manifests/{reference}", repo.as_str()));
        prop_assert!(url.query().is_none() && url.fragment().is_none());
        prop_assert_eq!(url.scheme(), scheme);
        if let Reference::Digest(d) = &r {
            let blob_url = registry.blob_url(&repo, d);
            prop_assert_eq!(blob_url.path(), format!("/v2/{}/blobs/{d}", repo.as_str()));
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
