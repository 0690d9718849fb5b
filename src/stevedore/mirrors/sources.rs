//! Where a repository's content may be asked for, in the order it is
//! tried: the mirrors a session knows for its registry (set in code, by
//! registries.conf, by containerd's hosts.toml), then the registry itself.
//! Pure: the settings in, the ordered sources out; the requests and the
//! fallback between sources are `Repo`'s.

use url::Url;

use super::hosts_toml::{Capabilities, HostEntry, HostsFile};
use super::load::HostsDirs;
use super::registries_conf::{PullFromMirror, RegistriesConf};
use crate::stevedore::error::{Error, Result};
use crate::stevedore::origin::is_loopback;
use crate::stevedore::reference::Repository;
use crate::stevedore::registry::{Registry, DOCKER_HUB};

/// A mirror set in code: where it is and what it may be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub location: Location,
    pub capabilities: Capabilities,
}

/// A mirror's place: the registry that serves it and the namespace its
/// copies live under (`mirror.example/hub` serves `library/alpine` as
/// `hub/library/alpine`, as registries.conf locations do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    registry: Registry,
    namespace: Option<String>,
}

impl Location {
    /// `https://host[:port][/ns…]` or `host[:port][/ns…]` (https; plain
    /// http for a loopback host). `http://` is refused for other hosts:
    /// nothing in code may send a session's secrets in the clear.
    pub fn parse(input: &str) -> Result<Location> {
        let bad = |why: &str| Error::bad_input(format!("mirror {input:?}: {why}"));
        let (scheme, rest) = match input.split_once("://") {
            Some((scheme, rest)) => (Some(scheme), rest),
            None => (None, input),
        };
        let rest = rest.trim_end_matches('/');
        let (authority, namespace) = match rest.split_once('/') {
            Some((a, ns)) => (a, Some(ns)),
            None => (rest, None),
        };
        let registry = Registry::from_parts(scheme, authority, input)?;
        if registry.scheme() == "http" && !registry_is_loopback(&registry) {
            return Err(bad("plain http:// is only for loopback mirrors"));
        }
        let namespace = match namespace {
            Some(ns) => {
                Repository::parse(ns).map_err(|e| bad(&format!("its path: {}", e.message)))?;
                Some(ns.to_owned())
            }
            None => None,
        };
        Ok(Location {
            registry,
            namespace,
        })
    }

    fn repository(&self, repository: &Repository) -> Result<Repository> {
        match &self.namespace {
            None => Ok(repository.clone()),
            Some(ns) => Repository::parse(&format!("{ns}/{}", repository.as_str())),
        }
    }
}

fn registry_is_loopback(registry: &Registry) -> bool {
    registry.url("/").host().is_some_and(|h| is_loopback(&h))
}

/// One place to ask: whom, under which API root, for which name, for what.
#[derive(Debug, Clone)]
pub struct Source {
    /// Who is contacted: the scheme and authority requests, credentials,
    /// tokens and TLS settings are bound to.
    pub registry: Registry,
    /// The URL the `/v2/` API lives at, ending in `/`.
    pub api_root: Url,
    /// The repository's name at this source.
    pub repository: Repository,
    pub capabilities: Capabilities,
    /// Asked only when the call started from a tag (registries.conf's
    /// `pull-from-mirror = "tag-only"`).
    pub tag_only: bool,
    /// containerd's `?ns=<upstream>` on every request (hosts.toml mirrors).
    pub ns: Option<String>,
    /// Extra headers on every request (hosts.toml `[header]`).
    pub headers: Vec<(String, Vec<String>)>,
    /// The registry itself, not a mirror.
    pub upstream: bool,
}

impl Source {
    /// The registry itself, as the caller named it.
    pub fn upstream(registry: Registry, repository: Repository) -> Source {
        Source {
            api_root: registry.url("/v2/"),
            registry,
            repository,
            capabilities: Capabilities::all(),
            tag_only: false,
            ns: None,
            headers: Vec::new(),
            upstream: true,
        }
    }

    fn mirror(location: &Location, repository: &Repository, caps: Capabilities) -> Result<Source> {
        Ok(Source {
            upstream: false,
            capabilities: caps,
            repository: location.repository(repository)?,
            ..Source::upstream(location.registry.clone(), repository.clone())
        })
    }

    /// `host[:port]` and the API root's path when it is not `/v2/`, for
    /// messages.
    pub fn name(&self) -> String {
        match self.api_root.path() {
            "/v2/" => self.registry.as_written(),
            path => format!(
                "{}{}",
                self.registry.as_written(),
                path.trim_end_matches('/')
            ),
        }
    }
}

/// What a session knows of mirrors.
#[derive(Debug, Clone, Default)]
pub struct MirrorSettings {
    /// Set in code, by registry key, in the order they were added.
    added: Vec<(String, Mirror)>,
    registries_conf: Option<RegistriesConf>,
    /// The certs directories' hosts.toml (tank_cache_load_certs_dir), by
    /// the registry's name in references (`docker.io` for Docker Hub).
    hosts_dirs: HostsDirs,
}

impl MirrorSettings {
    /// A mirror added again for the same registry stays where it was
    /// first added (once, so a dead one costs one connect, not one per
    /// copy); its capabilities are the latest.
    pub fn add(&mut self, registry: &Registry, mirror: Mirror) {
        let key = registry.key();
        let same = self
            .added
            .iter_mut()
            .find(|(k, m)| *k == key && m.location == mirror.location);
        match same {
            Some((_, m)) => m.capabilities = mirror.capabilities,
            None => self.added.push((key, mirror)),
        }
    }

    /// `conf` replaces what an earlier load set (a load reads the whole
    /// search path, drop-ins included).
    pub fn set_registries_conf(&mut self, conf: RegistriesConf) {
        self.registries_conf = Some(conf);
    }

    /// The hosts.toml files of the certs directories loaded so far.
    pub fn set_hosts_dirs(&mut self, dirs: HostsDirs) {
        self.hosts_dirs = dirs;
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.registries_conf.is_none() && self.hosts_dirs.is_empty()
    }

    /// The sources of `repository` on `registry`, in the order they are
    /// tried: mirrors set in code, then registries.conf's (its `location`
    /// rewriting the registry itself), then containerd's hosts for the
    /// registry (whose `server` replaces it), else the registry. Blocked
    /// registries are an error here, before any request.
    pub fn sources(&self, registry: &Registry, repository: &Repository) -> Result<Vec<Source>> {
        let mut sources = Vec::new();
        for (_, m) in self.added.iter().filter(|(k, _)| *k == registry.key()) {
            sources.push(Source::mirror(&m.location, repository, m.capabilities)?);
        }
        let mut upstream = Source::upstream(registry.clone(), repository.clone());
        // An `insecure` location's plain-http try, after its https one.
        let mut plain_fallback = Vec::new();
        if let Some(conf) = &self.registries_conf {
            let named = format!("{}/{}", reference_host(registry), repository.as_str());
            if let Some(entry) = conf.find(&named) {
                entry.check_blocked(&named)?;
                for m in &entry.mirrors {
                    let rewritten = conf.rewrite_to(entry, &m.location, &named);
                    let (https, plain) = located(&rewritten, m.insecure, registry)?;
                    for source in std::iter::once(https).chain(plain) {
                        sources.push(Source {
                            capabilities: match m.pull_from_mirror {
                                PullFromMirror::DigestOnly => Capabilities {
                                    pull: true,
                                    resolve: false,
                                },
                                _ => Capabilities::all(),
                            },
                            tag_only: m.pull_from_mirror == PullFromMirror::TagOnly,
                            upstream: false,
                            ..source
                        });
                    }
                }
                let rewritten = conf.rewrite(entry, &named);
                if rewritten != named || entry.insecure {
                    let (https, plain) = located(&rewritten, entry.insecure, registry)?;
                    upstream = https;
                    plain_fallback.extend(plain);
                }
            }
        }
        // The registry (as registries.conf may have moved it), or the hosts
        // its hosts.toml names, whose `server` then stands in its place.
        match self.hosts_for(&reference_host(&upstream.registry))? {
            Some(file) => {
                for host in &file.hosts {
                    sources.push(host_source(host, &upstream)?);
                }
            }
            None => {
                sources.push(upstream);
                sources.extend(plain_fallback);
            }
        }
        Ok(sources)
    }

    /// `BadInput`/`blocked` when registries.conf blocks `registry` whole
    /// (a prefix of the host alone): what registry-wide calls check.
    pub fn check_registry_blocked(&self, registry: &Registry) -> Result<()> {
        let Some(conf) = &self.registries_conf else {
            return Ok(());
        };
        let host = reference_host(registry);
        match conf.find(&host) {
            Some(entry) => entry.check_blocked(&host),
            None => Ok(()),
        }
    }

    fn hosts_for(&self, authority: &str) -> Result<Option<HostsFile>> {
        self.hosts_dirs.for_registry(authority).transpose()
    }
}

/// How references name `registry`: `docker.io` for Docker Hub, as
/// registries.conf prefixes do.
fn reference_host(registry: &Registry) -> String {
    match registry.key() == DOCKER_HUB {
        true => DOCKER_HUB.to_owned(),
        false => registry.authority().to_owned(),
    }
}

/// `host[:port]/repo…` as the sources that serve it: https, and for an
/// `insecure` location also plain http after it (as containers/image falls
/// back); the upstream's registry keeps the scheme it was named with when
/// the location is its own.
fn located(reference: &str, insecure: bool, named: &Registry) -> Result<(Source, Option<Source>)> {
    let (authority, path) = reference.split_once('/').ok_or_else(|| {
        Error::bad_input(format!(
            "registries.conf: {reference:?} names no repository"
        ))
    })?;
    let repository = Repository::parse(path)?;
    let host = match authority == DOCKER_HUB {
        true => Registry::parse(DOCKER_HUB)?.docker_hub_host(),
        false if authority == named.authority() => named.clone(),
        false => Registry::parse(authority)?,
    };
    let https = Source::upstream(host.clone(), repository.clone());
    if !(insecure && host.scheme() == "https") {
        return Ok((https, None));
    }
    // A fallback for content only: what asks the registry itself (tags,
    // the Referrers API) asks the https one.
    let plain = Registry::from_parts(Some("http"), host.authority(), authority)?;
    let plain = Source {
        upstream: false,
        ..Source::upstream(plain, repository)
    };
    Ok((https, Some(plain)))
}

/// A hosts.toml host as a source of `upstream`'s repository.
fn host_source(host: &HostEntry, upstream: &Source) -> Result<Source> {
    let api_root = Url::parse(&format!("{}/", host.api_root()))
        .map_err(|e| Error::bad_input(format!("hosts.toml host {:?}: {e}", host.url)))?;
    let registry = Registry::parse(&format!(
        "{}://{}",
        api_root.scheme(),
        authority_of(&api_root)
    ))?;
    let is_upstream =
        registry.origin() == upstream.registry.origin() && api_root == upstream.api_root;
    Ok(Source {
        registry,
        api_root,
        repository: upstream.repository.clone(),
        capabilities: host.capabilities,
        tag_only: false,
        ns: (!is_upstream).then(|| reference_host(&upstream.registry)),
        headers: host.headers.clone(),
        upstream: is_upstream,
    })
}

/// `host[:port]` of `url`, the port only when the URL names one: how
/// registries and trust entries name a host.
pub(crate) fn authority_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> Repository {
        Repository::parse(s).unwrap()
    }

    fn names(sources: &[Source]) -> Vec<String> {
        sources
            .iter()
            .map(|s| format!("{} {}", s.api_root, s.repository.as_str()))
            .collect()
    }

    #[test]
    fn mirrors_in_code_come_first_in_the_order_added() {
        let hub = Registry::parse("registry-1.docker.io").unwrap();
        let mut m = MirrorSettings::default();
        for loc in ["mirror.example", "127.0.0.1:5001/hub"] {
            m.add(
                &Registry::parse("docker.io").unwrap(),
                Mirror {
                    location: Location::parse(loc).unwrap(),
                    capabilities: Capabilities::all(),
                },
            );
        }
        let s = m.sources(&hub, &repo("library/alpine")).unwrap();
        assert_eq!(
            names(&s),
            [
                "https://mirror.example/v2/ library/alpine",
                "http://127.0.0.1:5001/v2/ hub/library/alpine",
                "https://registry-1.docker.io/v2/ library/alpine",
            ]
        );
        assert!(s[2].upstream && !s[0].upstream);
        // Added again: once, where it was.
        m.add(
            &Registry::parse("docker.io").unwrap(),
            Mirror {
                location: Location::parse("mirror.example").unwrap(),
                capabilities: Capabilities {
                    pull: true,
                    resolve: false,
                },
            },
        );
        let again = m.sources(&hub, &repo("library/alpine")).unwrap();
        assert_eq!(names(&again), names(&s));
        assert!(!again[0].capabilities.resolve);
    }

    #[test]
    fn plain_http_mirrors_only_on_loopback() {
        assert!(Location::parse("http://mirror.example").is_err());
        assert!(Location::parse("http://127.0.0.1:5000").is_ok());
        assert!(Location::parse("ftp://mirror.example").is_err());
        assert!(Location::parse("mirror.example/Bad_NS").is_err());
    }

    #[test]
    fn registries_conf_mirrors_then_the_rewritten_location() {
        let conf = RegistriesConf::parse(
            r#"
[[registry]]
prefix = "example.com/foo"
location = "internal.example/bar"
[[registry.mirror]]
location = "mirror.example/cache"
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "insecure.example"
insecure = true
"#,
            "test.conf",
        )
        .unwrap();
        let mut m = MirrorSettings::default();
        m.set_registries_conf(conf);
        let r = Registry::parse("example.com").unwrap();
        let s = m.sources(&r, &repo("foo/app")).unwrap();
        assert_eq!(
            names(&s),
            [
                "https://mirror.example/v2/ cache/app",
                "https://insecure.example/v2/ app",
                "http://insecure.example/v2/ app",
                "https://internal.example/v2/ bar/app",
            ]
        );
        assert!(!s[0].capabilities.resolve && s[0].capabilities.pull);
        assert!(s[3].upstream);
        // Outside the prefix: untouched.
        let s = m.sources(&r, &repo("other/app")).unwrap();
        assert_eq!(names(&s), ["https://example.com/v2/ other/app"]);
    }

    #[test]
    fn blocked_before_any_request() {
        let conf = RegistriesConf::parse(
            "[[registry]]\nlocation = \"docker.io/library\"\nblocked = true\n",
            "test.conf",
        )
        .unwrap();
        let mut m = MirrorSettings::default();
        m.set_registries_conf(conf);
        let hub = Registry::parse("docker.io").unwrap().docker_hub_host();
        let e = m.sources(&hub, &repo("library/alpine")).unwrap_err();
        assert_eq!(e.reason.id(), "blocked");
        assert!(m.sources(&hub, &repo("someone/app")).is_ok());
        // Part of a registry blocked is not all of it.
        assert!(m.check_registry_blocked(&hub).is_ok());
        let whole = RegistriesConf::parse(
            "[[registry]]\nlocation = \"docker.io\"\nblocked = true\n",
            "test.conf",
        )
        .unwrap();
        m.set_registries_conf(whole);
        assert_eq!(
            m.check_registry_blocked(&hub).unwrap_err().reason.id(),
            "blocked"
        );
    }

    #[test]
    fn a_location_rewritten_to_a_host_with_a_hosts_toml_gets_its_hosts() {
        let certs = tempfile::tempdir().unwrap();
        std::fs::create_dir(certs.path().join("internal.example")).unwrap();
        std::fs::write(
            certs.path().join("internal.example/hosts.toml"),
            "[host.\"https://cache.example\"]\n",
        )
        .unwrap();
        let mut m = MirrorSettings::default();
        m.set_hosts_dirs(HostsDirs::read(&[certs.path().to_path_buf()]).unwrap());
        m.set_registries_conf(
            RegistriesConf::parse(
                "[[registry]]\nprefix = \"example.com\"\nlocation = \"internal.example\"\n",
                "test.conf",
            )
            .unwrap(),
        );
        let r = Registry::parse("example.com").unwrap();
        let s = m.sources(&r, &repo("team/app")).unwrap();
        assert_eq!(
            names(&s),
            [
                "https://cache.example/v2/ team/app",
                "https://internal.example/v2/ team/app",
            ]
        );
        assert_eq!(s[0].ns.as_deref(), Some("internal.example"));
    }

    #[test]
    fn hosts_toml_hosts_then_server_with_ns_for_mirrors() {
        let certs = tempfile::tempdir().unwrap();
        std::fs::create_dir(certs.path().join("docker.io")).unwrap();
        std::fs::write(
            certs.path().join("docker.io/hosts.toml"),
            r#"
server = "https://registry-1.docker.io"
[host."https://mirror.example/prefix"]
capabilities = ["pull"]
[host."http://127.0.0.1:5001"]
capabilities = ["pull", "resolve"]
"#,
        )
        .unwrap();
        let mut m = MirrorSettings::default();
        m.set_hosts_dirs(HostsDirs::read(&[certs.path().to_path_buf()]).unwrap());
        let hub = Registry::parse("docker.io").unwrap().docker_hub_host();
        let s = m.sources(&hub, &repo("library/alpine")).unwrap();
        assert_eq!(
            names(&s),
            [
                "https://mirror.example/prefix/v2/ library/alpine",
                "http://127.0.0.1:5001/v2/ library/alpine",
                "https://registry-1.docker.io/v2/ library/alpine",
            ]
        );
        assert_eq!(s[0].ns.as_deref(), Some("docker.io"));
        assert_eq!(s[2].ns, None);
        assert!(s[2].upstream);
        assert!(!s[0].capabilities.resolve);
    }
}
