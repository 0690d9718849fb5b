//! containers-registries.conf(5), version 2, read as containers/image reads
//! it: `[[registry]]` tables matched to a reference by their longest
//! `prefix`, `location` rewriting that prefix, `insecure`, `blocked`,
//! `mirror-by-digest-only`, and `[[registry.mirror]]` tables with
//! `location`, `insecure` and `pull-from-mirror`. The top-level
//! `unqualified-search-registries`, `short-name-mode` and `[aliases]` are
//! read and kept, never used for pulls (short names keep Docker's
//! normalization). Keys neither tank nor containers/image knows are ignored,
//! as containers/image ignores them; the version 1 format
//! (`[registries.search]`) is refused.
//!
//! Pure parsing: no file is opened here. A malformed file is
//! `BadInput`/`registries_conf`, its message `<file>:<line>: <what>`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::IgnoredAny;
use serde::Deserialize;
use toml::Spanned;

use crate::stevedore::{Error, ErrorKind, Reason, Result};

/// What a mirror may be asked for (`pull-from-mirror`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFromMirror {
    /// `all`: references by tag and by digest.
    All,
    /// `digest-only`: references by digest only.
    DigestOnly,
    /// `tag-only`: references by tag only.
    TagOnly,
}

/// `short-name-mode`: read and kept, not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortNameMode {
    Enforcing,
    Permissive,
    Disabled,
}

/// One `[[registry.mirror]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// `host[:port][/ns…]`, trailing slashes removed.
    pub location: String,
    /// Plain http and unverified TLS for this location only.
    pub insecure: bool,
    /// As set, or (unset) `digest-only` when the registry is
    /// `mirror-by-digest-only`, else `all`, as containers/image resolves it.
    pub pull_from_mirror: PullFromMirror,
}

/// One `[[registry]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// `host[:port][/ns…]`, `host[:port]/ns…/repo(:tag|@digest)` (the man
    /// page allows a whole reference) or `*.domain`; the location when the
    /// file set none.
    pub prefix: String,
    /// What the prefix is rewritten to; empty only for a `*.domain` prefix
    /// without one (the reference is then left as it is).
    pub location: String,
    pub insecure: bool,
    pub blocked: bool,
    pub mirror_by_digest_only: bool,
    /// In file order: tried in this order, before the location.
    pub mirrors: Vec<Mirror>,
}

impl RegistryEntry {
    fn is_wildcard(&self) -> bool {
        self.prefix.starts_with("*.")
    }

    /// How many leading bytes of `reference` this entry's prefix matches
    /// (for a wildcard: the host), or None.
    fn matched_len(&self, reference: &str) -> Option<usize> {
        if let Some(domain) = self.prefix.strip_prefix('*') {
            // `*.example.com`: subdomains only, the host exactly (containers/image).
            let host = reference.split('/').next().unwrap_or(reference);
            return host.ends_with(domain).then_some(host.len());
        }
        let prefix = self.prefix.as_str();
        if reference.len() == prefix.len() {
            return (reference == prefix).then_some(prefix.len());
        }
        if !reference.starts_with(prefix) {
            return None;
        }
        // As containers/image: the prefix ends where a path, a port or a
        // digest begins.
        matches!(
            reference.as_bytes().get(prefix.len()),
            Some(b'/' | b':' | b'@')
        )
        .then_some(prefix.len())
    }

    /// `BadInput`/`blocked` when this entry blocks its registry: the check
    /// made before any request for `reference`.
    pub fn check_blocked(&self, reference: &str) -> Result<()> {
        if self.blocked {
            return Err(Error::new(
                ErrorKind::BadInput,
                Reason::Blocked,
                format!(
                    "{reference}: registries.conf blocks the registry (prefix \"{}\")",
                    self.prefix
                ),
            ));
        }
        Ok(())
    }
}

/// A registries.conf, or several merged (the main file, then its drop-ins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    /// Read, not used. None: not set (an earlier file's value stands).
    pub unqualified_search_registries: Option<Vec<String>>,
    /// Read, not used.
    pub short_name_mode: Option<ShortNameMode>,
    /// `[aliases]`: read, not used.
    pub aliases: BTreeMap<String, String>,
    /// One per prefix, sorted by prefix (as containers/image keeps them).
    pub registries: Vec<RegistryEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawConf {
    unqualified_search_registries: Option<Vec<Spanned<String>>>,
    short_name_mode: Option<Spanned<String>>,
    aliases: Option<BTreeMap<String, String>>,
    #[serde(default)]
    registry: Vec<Spanned<RawRegistry>>,
    /// The version 1 format's table.
    registries: Option<Spanned<IgnoredAny>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    prefix: Option<Spanned<String>>,
    location: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    /// Only mirrors may have one: an error here.
    pull_from_mirror: Option<Spanned<String>>,
    #[serde(default)]
    mirror: Vec<Spanned<RawMirror>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: Option<Spanned<String>>,
    #[serde(default)]
    insecure: bool,
    pull_from_mirror: Option<Spanned<String>>,
}

/// Builds the `<file>:<line>: <what>` errors of one file.
struct Source<'a> {
    text: &'a str,
    path: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(&self, span: Option<Range<usize>>, what: impl fmt::Display) -> Error {
        let message = match span {
            Some(span) => format!("{}:{}: {what}", self.path, self.line(span.start)),
            None => format!("{}: {what}", self.path),
        };
        Error::new(ErrorKind::BadInput, Reason::RegistriesConf, message)
    }
}

/// containers/image's parseLocation: trailing slashes go, a URL scheme is
/// refused.
fn location(src: &Source, value: &Spanned<String>, key: &str) -> Result<String> {
    let trimmed = value.get_ref().trim_end_matches('/');
    if trimmed.contains("://") {
        return Err(src.error(
            Some(value.span()),
            format!(
                "{key} \"{}\": URL schemes are not supported",
                value.get_ref()
            ),
        ));
    }
    Ok(trimmed.to_string())
}

/// A prefix: `host[:port][/ns…]` or `*.domain`, never a tag or digest.
fn prefix(src: &Source, value: &Spanned<String>) -> Result<String> {
    let p = location(src, value, "prefix")?;
    let bad = |what: &str| {
        Err(src.error(
            Some(value.span()),
            format!("prefix \"{}\": {what}", value.get_ref()),
        ))
    };
    if p.chars().any(char::is_whitespace) {
        return bad("white space in a prefix");
    }
    if let Some(domain) = p.strip_prefix("*.") {
        if domain.is_empty() || domain.contains(['/', ':', '*', '@']) {
            return bad("a wildcard prefix is *.domain, with no port or path");
        }
        return Ok(p);
    }
    if p.contains('*') {
        return bad("a wildcard is only allowed as the leading \"*.\" of *.domain");
    }
    // The man page allows a whole reference as a prefix:
    // host[:port]/ns…/repo(:tag|@digest). Anything after a tag or digest,
    // or one on the host, is malformed.
    let Some((host, path)) = p.split_once('/') else {
        if p.contains('@') {
            return bad("a digest needs a repository before it");
        }
        return Ok(p);
    };
    if host.is_empty() || host.contains('@') {
        return bad("not host[:port]/path");
    }
    let (name, digest) = match path.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (path, None),
    };
    if let Some(digest) = digest {
        let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            !algorithm.is_empty()
                && !hex.is_empty()
                && !hex.contains(['/', ':', '@'])
                && !algorithm.contains('/')
        });
        if !ok {
            return bad("a digest is algorithm:hex, and ends the prefix");
        }
    }
    let components: Vec<&str> = name.split('/').collect();
    let (last, namespaces) = components.split_last().expect("split yields one");
    if namespaces.iter().chain([last]).any(|c| c.is_empty()) {
        return bad("an empty path component");
    }
    if namespaces.iter().any(|c| c.contains(':')) {
        return bad("a tag only ends the prefix");
    }
    if let Some((repo, tag)) = last.split_once(':') {
        if repo.is_empty() || tag.is_empty() || tag.contains(':') {
            return bad("not repo:tag");
        }
    }
    Ok(p)
}

fn pull_from_mirror(src: &Source, value: &Spanned<String>) -> Result<PullFromMirror> {
    match value.get_ref().as_str() {
        "all" => Ok(PullFromMirror::All),
        "digest-only" => Ok(PullFromMirror::DigestOnly),
        "tag-only" => Ok(PullFromMirror::TagOnly),
        other => Err(src.error(
            Some(value.span()),
            format!(
                "pull-from-mirror \"{other}\" is not one of \"all\", \"digest-only\", \"tag-only\""
            ),
        )),
    }
}

/// `earlier` and `later`, one entry per prefix (the later wins), sorted by
/// prefix.
fn by_prefix(earlier: Vec<RegistryEntry>, later: Vec<RegistryEntry>) -> Vec<RegistryEntry> {
    let mut map: BTreeMap<String, RegistryEntry> = BTreeMap::new();
    for r in earlier.into_iter().chain(later) {
        map.insert(r.prefix.clone(), r);
    }
    map.into_values().collect()
}

impl RegistriesConf {
    /// Reads one file's `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<RegistriesConf> {
        let src = Source { text, path };
        let raw: RawConf = toml::from_str(text).map_err(|e| src.error(e.span(), e.message()))?;

        if let Some(v1) = &raw.registries {
            return Err(src.error(
                Some(v1.span()),
                "the version 1 format ([registries.search] and the like) is not read: use [[registry]] tables",
            ));
        }

        let short_name_mode = match &raw.short_name_mode {
            None => None,
            // Empty: as if unset (the man page).
        Some(mode) if mode.get_ref().is_empty() => None,
        Some(mode) => Some(match mode.get_ref().as_str() {
                "enforcing" => ShortNameMode::Enforcing,
                "permissive" => ShortNameMode::Permissive,
                "disabled" => ShortNameMode::Disabled,
                other => {
                    return Err(src.error(
                        Some(mode.span()),
                        format!("short-name-mode \"{other}\" is not one of \"enforcing\", \"permissive\", \"disabled\""),
                    ))
                }
            }),
        };

        let unqualified_search_registries = match &raw.unqualified_search_registries {
            None => None,
            Some(list) => Some(
                list.iter()
                    .map(|r| {
                        let host = location(&src, r, "unqualified-search-registries entry")?;
                        if host.is_empty() || host.contains(['/', '@', '*']) {
                            return Err(src.error(
                                Some(r.span()),
                                format!("unqualified-search-registries entry \"{}\" is not a host[:port]", r.get_ref()),
                            ));
                        }
                        Ok(host)
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
        };

        let mut registries = Vec::with_capacity(raw.registry.len());
        // (key, insecure, blocked, where): containers/image refuses one
        // location given conflicting insecure or blocked settings.
        let mut seen: Vec<(String, bool, bool)> = Vec::new();
        for table in &raw.registry {
            let reg = table.get_ref();
            let location_value = match &reg.location {
                Some(l) => location(&src, l, "location")?,
                None => String::new(),
            };
            let prefix_value = match &reg.prefix {
                Some(p) if !p.get_ref().is_empty() => prefix(&src, p)?,
                _ => {
                    if location_value.is_empty() {
                        return Err(src.error(
                            Some(table.span()),
                            "a [[registry]] with neither prefix nor location",
                        ));
                    }
                    // As containers/image: the location is the prefix.
                    let l = reg.location.as_ref().expect("location is set");
                    prefix(&src, l)?
                }
            };
            if location_value.is_empty() && !prefix_value.starts_with("*.") {
                return Err(src.error(
                    Some(table.span()),
                    format!("[[registry]] \"{prefix_value}\": no location, and the prefix is not *.domain"),
                ));
            }
            if let Some(p) = &reg.pull_from_mirror {
                return Err(src.error(
                    Some(p.span()),
                    format!("[[registry]] \"{prefix_value}\": pull-from-mirror is for [[registry.mirror]] tables only"),
                ));
            }

            let mut mirrors = Vec::with_capacity(reg.mirror.len());
            for m in &reg.mirror {
                let raw_mirror = m.get_ref();
                let mirror_location = match &raw_mirror.location {
                    Some(l) => location(&src, l, "mirror location")?,
                    None => String::new(),
                };
                if mirror_location.is_empty() {
                    return Err(src.error(
                        Some(m.span()),
                        format!("a [[registry.mirror]] of \"{prefix_value}\" without a location"),
                    ));
                }
                let pull = match &raw_mirror.pull_from_mirror {
                    Some(p) => {
                        let pull = pull_from_mirror(&src, p)?;
                        if reg.mirror_by_digest_only {
                            return Err(src.error(
                                Some(p.span()),
                                format!("[[registry]] \"{prefix_value}\" sets mirror-by-digest-only, and its mirror \"{mirror_location}\" pull-from-mirror: only one may be set"),
                            ));
                        }
                        pull
                    }
                    None if reg.mirror_by_digest_only => PullFromMirror::DigestOnly,
                    None => PullFromMirror::All,
                };
                mirrors.push(Mirror {
                    location: mirror_location,
                    insecure: raw_mirror.insecure,
                    pull_from_mirror: pull,
                });
            }

            let key = if location_value.is_empty() {
                prefix_value.clone()
            } else {
                location_value.clone()
            };
            if let Some((_, insecure, blocked)) = seen.iter().find(|(k, _, _)| *k == key) {
                let setting = if *insecure != reg.insecure {
                    Some("insecure")
                } else if *blocked != reg.blocked {
                    Some("blocked")
                } else {
                    None
                };
                if let Some(setting) = setting {
                    return Err(src.error(
                        Some(table.span()),
                        format!(
                            "registry \"{key}\" is given twice with conflicting {setting} settings"
                        ),
                    ));
                }
            } else {
                seen.push((key, reg.insecure, reg.blocked));
            }

            registries.push(RegistryEntry {
                prefix: prefix_value,
                location: location_value,
                insecure: reg.insecure,
                blocked: reg.blocked,
                mirror_by_digest_only: reg.mirror_by_digest_only,
                mirrors,
            });
        }

        Ok(RegistriesConf {
            unqualified_search_registries,
            short_name_mode,
            // Empty values kept: they remove an earlier file's alias.
            aliases: raw.aliases.unwrap_or_default(),
            // As containers/image loads a file, merging it into nothing: one
            // entry per prefix (the last wins), sorted by prefix.
            registries: by_prefix(Vec::new(), registries),
        })
    }

    /// `later` (a drop-in) over `self`, as containers-registries.conf.d(5)
    /// says: a `[[registry]]` with the prefix of an earlier one replaces it
    /// whole; `unqualified-search-registries` and `short-name-mode` replace
    /// the earlier value when set; aliases are merged name by name (an
    /// empty value removes the name).
    pub fn merge(mut self, later: RegistriesConf) -> RegistriesConf {
        self.registries = by_prefix(self.registries, later.registries);
        if later.unqualified_search_registries.is_some() {
            self.unqualified_search_registries = later.unqualified_search_registries;
        }
        if later.short_name_mode.is_some() {
            self.short_name_mode = later.short_name_mode;
        }
        for (name, value) in later.aliases {
            if value.is_empty() {
                self.aliases.remove(&name);
            } else {
                self.aliases.insert(name, value);
            }
        }
        self
    }

    /// The entry for `reference` (`host[:port]/repo/path`, normalized, with
    /// or without its `:tag` or `@digest`): the longest matching prefix; at
    /// equal length an exact prefix wins over a `*.domain` one.
    pub fn find(&self, reference: &str) -> Option<&RegistryEntry> {
        let mut best: Option<(&RegistryEntry, usize)> = None;
        for entry in &self.registries {
            if entry.matched_len(reference).is_none() {
                continue;
            }
            let len = entry.prefix.len();
            let better = match best {
                None => true,
                Some((b, blen)) => {
                    len > blen || (len == blen && b.is_wildcard() && !entry.is_wildcard())
                }
            };
            if better {
                best = Some((entry, len));
            }
        }
        best.map(|(entry, _)| entry)
    }

    /// `reference` with `entry`'s prefix (for `*.domain`: the host)
    /// replaced by its location; unchanged when the entry has no location
    /// or does not match.
    pub fn rewrite(&self, entry: &RegistryEntry, reference: &str) -> String {
        match entry.matched_len(reference) {
            Some(len) if !entry.location.is_empty() => {
                format!("{}{}", entry.location, &reference[len..])
            }
            _ => reference.to_string(),
        }
    }

    /// `reference` with `entry`'s prefix (for `*.domain`: the host)
    /// replaced by a mirror's `location`.
    pub fn rewrite_to(&self, entry: &RegistryEntry, location: &str, reference: &str) -> String {
        match entry.matched_len(reference) {
            Some(len) => format!("{location}{}", &reference[len..]),
            None => reference.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/containers/registries.conf";

    fn parse(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, PATH).unwrap_or_else(|e| panic!("{text}: {}", e.message))
    }

    /// The error for `text`, which must name the file and `line`.
    fn malformed(text: &str, line: usize) -> Error {
        let e = RegistriesConf::parse(text, PATH).expect_err(text);
        assert_eq!(e.kind, ErrorKind::BadInput, "{text}");
        assert_eq!(e.reason, Reason::RegistriesConf, "{text}");
        let want = format!("{PATH}:{line}: ");
        assert!(
            e.message.starts_with(&want),
            "{text}: {:?} should start {want:?}",
            e.message
        );
        e
    }

    // containers-registries.conf(5), EXAMPLE.
    const MAN_EXAMPLE: &str = r#"
unqualified-search-registries = ["example.com"]

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local/mirrors/foo"
insecure = true

# Given the above, a pull of example.com/foo/image:latest will try:
# 1. example-mirror-0.local/mirror-for-foo/image:latest
# 2. example-mirror-1.local/mirrors/foo/image:latest
# 3. internal-registry-for-example.com/bar/image:latest
# in order, and use the first one that exists.
"#;

    #[test]
    fn the_man_page_example() {
        let conf = parse(MAN_EXAMPLE);
        assert_eq!(
            conf.unqualified_search_registries,
            Some(vec!["example.com".to_string()])
        );
        let reference = "example.com/foo/image:latest";
        let entry = conf.find(reference).expect("a match");
        assert_eq!(entry.prefix, "example.com/foo");
        assert!(!entry.insecure && !entry.blocked && !entry.mirror_by_digest_only);
        assert_eq!(
            conf.rewrite(entry, reference),
            "internal-registry-for-example.com/bar/image:latest"
        );
        let mirrors: Vec<_> = entry
            .mirrors
            .iter()
            .map(|m| (m.location.as_str(), m.insecure, m.pull_from_mirror))
            .collect();
        assert_eq!(
            mirrors,
            [
                (
                    "example-mirror-0.local/mirror-for-foo",
                    false,
                    PullFromMirror::All
                ),
                (
                    "example-mirror-1.local/mirrors/foo",
                    true,
                    PullFromMirror::All
                ),
            ]
        );
        // Not under the prefix: a sibling name, another path.
        assert!(conf.find("example.com/foobar/image").is_none());
        assert!(conf.find("example.com/bar/image").is_none());
    }

    #[test]
    fn prefix_defaults_to_location_and_matches_host_forms() {
        let conf = parse(
            r#"
[[registry]]
location = "registry.example.com:5000/"
insecure = true
"#,
        );
        let entry = conf
            .find("registry.example.com:5000/a/b:1")
            .expect("a match");
        assert_eq!(entry.prefix, "registry.example.com:5000");
        assert_eq!(entry.location, "registry.example.com:5000");
        assert!(entry.insecure);
        assert_eq!(
            conf.rewrite(entry, "registry.example.com:5000/a/b@sha256:00"),
            "registry.example.com:5000/a/b@sha256:00"
        );
        assert!(conf.find("registry.example.com:50000/a").is_none());
        assert!(conf.find("registry.example.com/a").is_none());
    }

    #[test]
    fn the_longest_prefix_wins() {
        let conf = parse(
            r#"
[[registry]]
prefix = "docker.io"
location = "mirror.local/hub"

[[registry]]
prefix = "docker.io/library/alpine"
location = "alpine.local/alpine"

[[registry]]
prefix = "docker.io/library"
location = "lib.local/lib"
"#,
        );
        let cases = [
            ("docker.io/library/alpine:3", "alpine.local/alpine:3"),
            ("docker.io/library/alpine/sub", "alpine.local/alpine/sub"),
            ("docker.io/library/alpinex", "lib.local/lib/alpinex"),
            (
                "docker.io/library/busybox@sha256:ab",
                "lib.local/lib/busybox@sha256:ab",
            ),
            ("docker.io/someone/thing", "mirror.local/hub/someone/thing"),
        ];
        for (reference, want) in cases {
            let entry = conf.find(reference).expect(reference);
            assert_eq!(conf.rewrite(entry, reference), want, "{reference}");
        }
        assert!(conf.find("quay.io/x/y").is_none());
    }

    #[test]
    fn wildcards_match_subdomains_only_and_lose_ties_to_exact_prefixes() {
        let conf = parse(
            r#"
[[registry]]
prefix = "*.example.com"
location = "wild.local"

[[registry]]
prefix = "*.example.com"
blocked = true
location = "wild2.local"

[[registry]]
prefix = "a.example.com"
location = "exact.local"

[[registry]]
prefix = "*.internal.example.com"
"#,
        );
        // The second *.example.com replaced the first (one per prefix).
        assert_eq!(conf.registries.len(), 3);

        let entry = conf.find("foo.example.com/x/y:1").expect("wildcard");
        assert_eq!(entry.prefix, "*.example.com");
        assert!(entry.blocked);
        let err = entry.check_blocked("foo.example.com/x/y:1").unwrap_err();
        assert_eq!(
            (err.kind, err.reason),
            (ErrorKind::BadInput, Reason::Blocked)
        );
        assert_eq!(
            conf.rewrite(entry, "foo.example.com/x/y:1"),
            "wild2.local/x/y:1"
        );
        assert_eq!(conf.rewrite(entry, "a.b.example.com/x"), "wild2.local/x");

        // Subdomains only: not the domain itself, not a longer name, not a port.
        assert!(conf.find("example.com/x").is_none());
        assert!(conf.find("notexample.com/x").is_none());
        assert!(conf.find("foo.example.com:5000/x").is_none());

        // Equal length: the exact prefix wins over the wildcard.
        let entry = conf.find("a.example.com/x").expect("exact");
        assert_eq!(entry.prefix, "a.example.com");
        assert!(entry.check_blocked("a.example.com/x").is_ok());
        assert_eq!(conf.rewrite(entry, "a.example.com/x"), "exact.local/x");

        // A longer wildcard wins; without a location the name stays.
        let entry = conf
            .find("b.internal.example.com/x")
            .expect("longer wildcard");
        assert_eq!(entry.prefix, "*.internal.example.com");
        assert_eq!(entry.location, "");
        assert_eq!(
            conf.rewrite(entry, "b.internal.example.com/x"),
            "b.internal.example.com/x"
        );
    }

    #[test]
    fn blocked_insecure_and_pull_from_mirror() {
        let conf = parse(
            r#"
short-name-mode = "enforcing"

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"

[[registry]]
location = "blocked.example.com"
blocked = true

[[registry]]
location = "registry.example.com"
mirror-by-digest-only = true

[[registry.mirror]]
location = "digests.local"

[[registry]]
location = "quay.io"
insecure = true

[[registry.mirror]]
location = "all.local"
pull-from-mirror = "all"

[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
insecure = true

[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
"#,
        );
        assert_eq!(conf.short_name_mode, Some(ShortNameMode::Enforcing));
        assert_eq!(conf.aliases["fedora"], "registry.fedoraproject.org/fedora");

        let blocked = conf.find("blocked.example.com/a").expect("blocked");
        let err = blocked.check_blocked("blocked.example.com/a").unwrap_err();
        assert_eq!(err.reason, Reason::Blocked);
        assert!(
            err.message.contains("blocked.example.com/a"),
            "{}",
            err.message
        );

        let by_digest = conf.find("registry.example.com/a").expect("by digest");
        assert!(by_digest.mirror_by_digest_only && !by_digest.insecure);
        assert_eq!(
            by_digest.mirrors[0].pull_from_mirror,
            PullFromMirror::DigestOnly
        );

        let quay = conf.find("quay.io/a/b").expect("quay");
        assert!(quay.insecure);
        let mirrors: Vec<_> = quay
            .mirrors
            .iter()
            .map(|m| (m.location.as_str(), m.insecure, m.pull_from_mirror))
            .collect();
        assert_eq!(
            mirrors,
            [
                ("all.local", false, PullFromMirror::All),
                ("digests.local", true, PullFromMirror::DigestOnly),
                ("tags.local", false, PullFromMirror::TagOnly),
            ]
        );
    }

    #[test]
    fn drop_ins_override_earlier_files() {
        let main = parse(
            r#"
unqualified-search-registries = ["registry.fedoraproject.org", "docker.io"]
short-name-mode = "permissive"

[aliases]
"a" = "docker.io/library/a"
"b" = "docker.io/library/b"

[[registry]]
prefix = "docker.io"
location = "old-mirror.local"
insecure = true

[[registry.mirror]]
location = "old.local"

[[registry]]
location = "quay.io"
"#,
        );
        let drop_in = RegistriesConf::parse(
            r#"
[aliases]
"a" = "quay.io/a"
"b" = ""

[[registry]]
prefix = "docker.io"
location = "new-mirror.local"

[[registry]]
location = "ghcr.io"
blocked = true
"#,
            "/etc/containers/registries.conf.d/50-mirror.conf",
        )
        .unwrap();
        let conf = main.merge(drop_in);

        // Not set in the drop-in: the earlier values stand.
        assert_eq!(
            conf.unqualified_search_registries.as_deref(),
            Some(
                &[
                    "registry.fedoraproject.org".to_string(),
                    "docker.io".to_string()
                ][..]
            )
        );
        assert_eq!(conf.short_name_mode, Some(ShortNameMode::Permissive));
        assert_eq!(conf.aliases.len(), 1);
        assert_eq!(conf.aliases["a"], "quay.io/a");

        // Same prefix: replaced whole (no mirrors, not insecure any more).
        let hub = conf.find("docker.io/library/alpine").expect("hub");
        assert_eq!(hub.location, "new-mirror.local");
        assert!(!hub.insecure && hub.mirrors.is_empty());
        // Others kept and added, sorted by prefix.
        let prefixes: Vec<_> = conf.registries.iter().map(|r| r.prefix.as_str()).collect();
        assert_eq!(prefixes, ["docker.io", "ghcr.io", "quay.io"]);

        // A later drop-in that sets the list replaces it, an empty one too.
        let conf = conf.merge(parse(
            "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n",
        ));
        assert_eq!(conf.unqualified_search_registries, Some(vec![]));
        assert_eq!(conf.short_name_mode, Some(ShortNameMode::Disabled));
        assert_eq!(conf.registries.len(), 3);
    }

    #[test]
    fn a_prefix_may_name_a_tag_or_digest_as_the_man_page_says() {
        let digest = "sha256:0123456789abcdef";
        let conf = parse(&format!(
            r#"
[[registry]]
prefix = "example.com/foo"
location = "all.local/foo"

[[registry]]
prefix = "example.com/foo:1.0"
location = "pinned.local/foo:1.0-patched"

[[registry]]
prefix = "example.com/foo@{digest}"
blocked = true
location = "example.com/foo@{digest}"
"#
        ));
        let entry = conf.find("example.com/foo:1.0").expect("tag");
        assert_eq!(
            conf.rewrite(entry, "example.com/foo:1.0"),
            "pinned.local/foo:1.0-patched"
        );
        // Another tag that begins the same is not that tag.
        let entry = conf.find("example.com/foo:1.0.1").expect("repo");
        assert_eq!(
            conf.rewrite(entry, "example.com/foo:1.0.1"),
            "all.local/foo:1.0.1"
        );
        let reference = format!("example.com/foo@{digest}");
        assert!(conf.find(&reference).expect("digest").blocked);
        assert!(
            !conf
                .find("example.com/foo@sha256:ff")
                .expect("repo")
                .blocked
        );
        // A repository-and-tag prefix matches that tag pinned by digest too.
        let reference = format!("example.com/foo:1.0@{digest}");
        assert_eq!(
            conf.find(&reference).expect("tag").prefix,
            "example.com/foo:1.0"
        );
    }

    #[test]
    fn an_empty_file_is_empty() {
        assert_eq!(parse(""), RegistriesConf::default());
        assert_eq!(parse("# nothing\n\n"), RegistriesConf::default());
        // Keys containers/image knows and tank does not use are ignored.
        assert!(parse("credential-helpers = [\"containers-auth.json\"]\n")
            .registries
            .is_empty());
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        malformed("[[registry]]\nlocation = \"a.io\"\nprefix = \n", 3);
        malformed("[[registry]]\nlocation = \"a.io\n", 2);
        malformed("\n\n[[registry]\n", 3);
        // The wrong type for a key.
        malformed(
            "[[registry]]\nlocation = \"a.io\"\n\ninsecure = \"yes\"\n",
            4,
        );
        malformed("unqualified-search-registries = \"docker.io\"\n", 1);
        // Not UTF-8 is the caller's to refuse; a duplicate key is TOML's.
        malformed(
            "[[registry]]\nlocation = \"a.io\"\nlocation = \"b.io\"\n",
            3,
        );
    }

    #[test]
    fn bad_values_name_the_file_and_line() {
        let e = malformed(
            "[[registry]]\nlocation = \"a.io\"\n\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"sometimes\"\n",
            6,
        );
        assert!(e.message.contains("sometimes"), "{}", e.message);
        // Only mirrors have pull-from-mirror.
        malformed(
            "[[registry]]\nlocation = \"a.io\"\npull-from-mirror = \"all\"\n",
            3,
        );
        // Both mirror-by-digest-only and a mirror's pull-from-mirror.
        malformed(
            "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"tag-only\"\n",
            6,
        );
        malformed("short-name-mode = \"lenient\"\n", 1);
        malformed(
            "\nunqualified-search-registries = [\"docker.io/library\"]\n",
            2,
        );
        malformed(
            "\nunqualified-search-registries = [\"https://docker.io\"]\n",
            2,
        );
    }

    #[test]
    fn bad_prefixes_and_locations_name_the_file_and_line() {
        for (prefix, what) in [
            ("https://example.com/foo", "scheme"),
            ("http://example.com", "scheme"),
            ("example.com/foo:latest/bar", "tag inside the path"),
            ("example.com/foo@sha256:0123/bar", "digest inside the path"),
            ("example.com/foo@0123", "digest without an algorithm"),
            ("example.com@sha256:0123", "digest on the host"),
            ("example.com/foo:", "empty tag"),
            ("example.com//foo", "empty component"),
            ("*.example.com/foo", "wildcard with a path"),
            ("*.example.com:5000", "wildcard with a port"),
            ("foo.*.example.com", "wildcard inside"),
            ("*.", "empty wildcard"),
            ("example.com/ foo", "white space"),
        ] {
            let text =
                format!("# {what}\n[[registry]]\nlocation = \"a.io\"\nprefix = \"{prefix}\"\n");
            malformed(&text, 4);
        }
        // A scheme in a location, a mirror's location, or the location
        // standing for a missing prefix.
        malformed(
            "[[registry]]\nprefix = \"a.io\"\nlocation = \"https://b.io\"\n",
            3,
        );
        malformed(
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"http://m.io\"\n",
            4,
        );
        malformed("[[registry]]\nlocation = \"a.io/x:tag/y\"\n", 2);
    }

    #[test]
    fn incomplete_tables_name_the_file_and_line() {
        // Neither prefix nor location.
        malformed("\n[[registry]]\ninsecure = true\n", 2);
        // A prefix that is not *.domain needs a location.
        malformed("\n\n[[registry]]\nprefix = \"example.com\"\n", 3);
        // A mirror without a location.
        malformed(
            "[[registry]]\nlocation = \"a.io\"\n\n[[registry.mirror]]\ninsecure = true\n",
            4,
        );
        // One location, conflicting settings.
        malformed(
            "[[registry]]\nprefix = \"x.io\"\nlocation = \"a.io\"\n\n[[registry]]\nprefix = \"y.io\"\nlocation = \"a.io\"\ninsecure = true\n",
            5,
        );
        malformed(
            "[[registry]]\nprefix = \"x.io\"\nlocation = \"a.io\"\n\n[[registry]]\nprefix = \"y.io\"\nlocation = \"a.io\"\nblocked = true\n",
            5,
        );
        // The version 1 format.
        malformed("\n[registries.search]\nregistries = [\"docker.io\"]\n", 2);
    }
}
