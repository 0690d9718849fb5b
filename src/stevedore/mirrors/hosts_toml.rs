//! containerd's `hosts.toml` (docs/hosts.md), read as containerd reads it:
//! the `[host."…"]` tables in file order, then `server` (the upstream
//! registry itself when `server` is absent). A pure parser: no file is
//! opened here; paths are resolved against the file's directory, not read.
//!
//! Where containerd is looser, this is stricter and says so: a `server` or
//! host URL with a scheme other than http/https, credentials, a query or no
//! host, and an empty `ca`/`client` path, are errors naming the file and key
//! (containerd would build a nonsense host, or fall back to the directory's
//! Docker-style certificate files after logging the error). Keys containerd
//! reads that this does not use (`proxy`, `dial_timeout`) are ignored, as
//! unknown keys are. With no `server`, the upstream is `https://<registry>`
//! (`registry-1.docker.io` for `docker.io`); containerd's plain-http guess
//! for loopback registries is left to the caller.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::stevedore::error::{Error, Result};

/// What a host may be asked: `pull` (blobs, manifests by digest) and
/// `resolve` (tags to digests). `push` is read and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub pull: bool,
    pub resolve: bool,
}

impl Capabilities {
    /// What a host without a `capabilities` key (or with an empty one) may do.
    /// (A function, not an associated const: cbindgen would put the type
    /// in tank.h.)
    pub fn all() -> Self {
        Capabilities {
            pull: true,
            resolve: true,
        }
    }
}

/// One source of a registry's content, in the order it is tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// `scheme://host[:port][/path]`, no trailing slash (see
    /// [`HostEntry::api_root`] for the `/v2` rule).
    pub url: String,
    pub capabilities: Capabilities,
    /// CA files, absolute (relative ones resolved against the file's directory).
    pub ca: Vec<PathBuf>,
    /// Client certificates: `(cert, Some(key))`, or `(pem, None)` for a file
    /// holding both.
    pub client: Vec<(PathBuf, Option<PathBuf>)>,
    pub skip_verify: bool,
    /// Extra headers, in file order; a name may have several values.
    pub headers: Vec<(String, Vec<String>)>,
    /// The URL's path is the API root itself (no `/v2` appended).
    pub override_path: bool,
}

impl HostEntry {
    /// The API root requests go under: the URL with `/v2` appended unless
    /// `override_path` is set or the path already ends in `/v2`.
    pub fn api_root(&self) -> String {
        if self.override_path || self.url_path().ends_with("/v2") {
            self.url.clone()
        } else {
            format!("{}/v2", self.url)
        }
    }

    fn url_path(&self) -> &str {
        let rest = self.url.split_once("://").map_or("", |(_, rest)| rest);
        rest.find('/').map_or("", |i| &rest[i..])
    }
}

/// A parsed `hosts.toml`: its sources, in the order containerd tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsFile {
    pub hosts: Vec<HostEntry>,
}

/// The directory names containerd looks a registry up under in a
/// `certs.d`-style root, in order: `host_port_` (when there is a port),
/// `host:port`, then `_default`.
pub fn host_dir_names(registry_authority: &str) -> Vec<String> {
    let mut names = Vec::with_capacity(3);
    let underscored = host_directory(registry_authority);
    if underscored != registry_authority {
        names.push(underscored);
    }
    names.push(registry_authority.to_string());
    names.push("_default".to_string());
    names
}

/// `host:port` as `host_port_` (containerd's `hostDirectory`); an authority
/// without a port (a bracketed IPv6 address included) is returned as is.
fn host_directory(authority: &str) -> String {
    if authority.ends_with(']') {
        return authority.to_string();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() => format!("{host}_{port}_"),
        _ => authority.to_string(),
    }
}

/// Parses the text of the `hosts.toml` at `file` (named in errors; relative
/// paths are resolved against its directory) for the registry
/// `registry_authority` (`host[:port]`, as in an image reference), which is
/// the last source when the file sets no `server`.
pub fn parse(text: &str, file: &Path, registry_authority: &str) -> Result<HostsFile> {
    let ctx = Ctx {
        file,
        base: file.parent().unwrap_or(Path::new("")),
    };
    let table: Table = text
        .parse()
        .map_err(|e: toml::de::Error| ctx.error(None, &one_line(&e.to_string())))?;

    let mut hosts = Vec::new();
    if let Some(host_tables) = table.get("host") {
        let host_tables = host_tables
            .as_table()
            .ok_or_else(|| ctx.error(None, "`host` is not a table of `[host.\"URL\"]` tables"))?;
        for (name, config) in host_tables {
            let scope = format!("[host.{name:?}]");
            let config = config
                .as_table()
                .ok_or_else(|| ctx.error(Some(&scope), "is not a table"))?;
            let url = ctx.url(&scope, name)?;
            hosts.push(ctx.entry(&scope, url, config, false)?);
        }
    }

    match table.get("server") {
        Some(server) => {
            let server = server
                .as_str()
                .ok_or_else(|| ctx.error(Some("server"), "is not a string"))?;
            let url = ctx.url("server", server)?;
            hosts.push(ctx.entry("top level", url, &table, false)?);
        }
        None => {
            let url = upstream_url(registry_authority);
            hosts.push(ctx.entry("top level", url, &table, true)?);
        }
    }
    Ok(HostsFile { hosts })
}

/// The registry itself, as containerd reaches it when no `server` is set.
fn upstream_url(authority: &str) -> String {
    if authority == "docker.io" {
        "https://registry-1.docker.io".to_string()
    } else {
        format!("https://{authority}")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Ctx<'a> {
    file: &'a Path,
    base: &'a Path,
}

impl Ctx<'_> {
    fn error(&self, key: Option<&str>, message: &str) -> Error {
        match key {
            Some(key) => Error::bad_input(format!(
                "hosts.toml {}: {key}: {message}",
                self.file.display()
            )),
            None => Error::bad_input(format!("hosts.toml {}: {message}", self.file.display())),
        }
    }

    /// `server` or a host table's name as `scheme://host[:port][/path]`:
    /// https when no scheme is given, the path cleaned, no trailing slash.
    /// (containerd prepends `https://` to anything not starting `http`,
    /// so `ftp://m` would become host `ftp`; here any other scheme is an
    /// error.)
    fn url(&self, key: &str, raw: &str) -> Result<String> {
        let with_scheme = if raw.contains("://") {
            raw.to_string()
        } else {
            format!("https://{raw}")
        };
        let bad =
            |why: &str| self.error(Some(key), &format!("{raw:?} is not a registry URL ({why})"));
        let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(bad("the scheme is neither http nor https"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("credentials do not belong in a hosts.toml URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a query or fragment"));
        }
        let mut out = format!("{}://{host}", url.scheme());
        if let Some(port) = url.port() {
            out.push_str(&format!(":{port}"));
        }
        let path: Vec<&str> = url
            .path()
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        let mut cleaned: Vec<&str> = Vec::new();
        for segment in path {
            if segment == ".." {
                cleaned.pop();
            } else {
                cleaned.push(segment);
            }
        }
        for segment in cleaned {
            out.push('/');
            out.push_str(segment);
        }
        Ok(out)
    }

    /// One host's keys. `upstream`: the top-level table with no `server`,
    /// whose `capabilities` containerd does not apply (the registry itself
    /// may do everything).
    fn entry(&self, scope: &str, url: String, config: &Table, upstream: bool) -> Result<HostEntry> {
        let key = |k: &str| format!("{scope}: {k}");
        let capabilities = match config.get("capabilities") {
            Some(v) => {
                let caps = self.capabilities(&key("capabilities"), v)?;
                if upstream {
                    Capabilities::all()
                } else {
                    caps
                }
            }
            None => Capabilities::all(),
        };
        let ca = match config.get("ca") {
            None => Vec::new(),
            Some(Value::String(p)) => vec![self.path(&key("ca"), p)?],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(p) => self.path(&key("ca"), p),
                    _ => Err(self.error(Some(&key("ca")), "is not a path or a list of paths")),
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(self.error(Some(&key("ca")), "is not a path or a list of paths")),
        };
        let client = match config.get("client") {
            None => Vec::new(),
            Some(Value::String(p)) => vec![(self.path(&key("client"), p)?, None)],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| self.client_item(&key("client"), item))
                .collect::<Result<_>>()?,
            Some(_) => {
                return Err(self.error(
                    Some(&key("client")),
                    "is not a path, a list of paths or a list of [cert, key] pairs",
                ))
            }
        };
        let skip_verify = self.bool(&key("skip_verify"), config.get("skip_verify"))?;
        let override_path = self.bool(&key("override_path"), config.get("override_path"))?;
        let headers = match config.get("header") {
            None => Vec::new(),
            Some(Value::Table(t)) => t
                .iter()
                .map(|(name, value)| {
                    let k = key(&format!("header.{name}"));
                    let values = match value {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(items) => items
                            .iter()
                            .map(|i| {
                                i.as_str().map(str::to_string).ok_or_else(|| {
                                    self.error(Some(&k), "is not a string or a list of strings")
                                })
                            })
                            .collect::<Result<_>>()?,
                        _ => {
                            return Err(self.error(Some(&k), "is not a string or a list of strings"))
                        }
                    };
                    // Refused here, naming the file, rather than at the
                    // first request of a pull.
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        return Err(self.error(Some(&k), "is not a header name"));
                    }
                    if values
                        .iter()
                        .any(|v| http::HeaderValue::from_str(v).is_err())
                    {
                        return Err(self.error(Some(&k), "is not a header value"));
                    }
                    Ok((name.clone(), values))
                })
                .collect::<Result<_>>()?,
            Some(_) => return Err(self.error(Some(&key("header")), "is not a table")),
        };
        Ok(HostEntry {
            url,
            capabilities,
            ca,
            client,
            skip_verify,
            headers,
            override_path,
        })
    }

    fn capabilities(&self, key: &str, value: &Value) -> Result<Capabilities> {
        let items = value
            .as_array()
            .ok_or_else(|| self.error(Some(key), "is not a list"))?;
        if items.is_empty() {
            return Ok(Capabilities::all());
        }
        let mut caps = Capabilities {
            pull: false,
            resolve: false,
        };
        for item in items {
            let name = item
                .as_str()
                .ok_or_else(|| self.error(Some(key), "is not a list of strings"))?;
            match name.to_ascii_lowercase().as_str() {
                "pull" => caps.pull = true,
                "resolve" => caps.resolve = true,
                "push" => {}
                _ => {
                    return Err(self.error(
                        Some(key),
                        &format!("unknown capability {name:?} (pull, resolve, push)"),
                    ))
                }
            }
        }
        Ok(caps)
    }

    fn client_item(&self, key: &str, item: &Value) -> Result<(PathBuf, Option<PathBuf>)> {
        match item {
            Value::String(p) => Ok((self.path(key, p)?, None)),
            Value::Array(pair) => match pair.as_slice() {
                [Value::String(cert), Value::String(k)] => {
                    let key_path = if k.is_empty() {
                        None
                    } else {
                        Some(self.path(key, k)?)
                    };
                    Ok((self.path(key, cert)?, key_path))
                }
                _ => Err(self.error(Some(key), "a pair is not [cert, key] (two paths)")),
            },
            _ => Err(self.error(
                Some(key),
                "is not a path, a list of paths or a list of [cert, key] pairs",
            )),
        }
    }

    fn path(&self, key: &str, p: &str) -> Result<PathBuf> {
        if p.is_empty() {
            return Err(self.error(Some(key), "an empty path"));
        }
        let p = Path::new(p);
        Ok(if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        })
    }

    fn bool(&self, key: &str, value: Option<&Value>) -> Result<bool> {
        match value {
            None => Ok(false),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(_) => Err(self.error(Some(key), "is not true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stevedore::error::{ErrorKind, Reason};

    const FILE: &str = "/etc/containerd/certs.d/docker.io/hosts.toml";

    fn parse_ok(text: &str, registry: &str) -> Vec<HostEntry> {
        parse(text, Path::new(FILE), registry).unwrap().hosts
    }

    fn parse_err(text: &str) -> Error {
        parse(text, Path::new(FILE), "docker.io").unwrap_err()
    }

    fn urls(hosts: &[HostEntry]) -> Vec<&str> {
        hosts.iter().map(|h| h.url.as_str()).collect()
    }

    const PULL: Capabilities = Capabilities {
        pull: true,
        resolve: false,
    };

    #[test]
    fn default_docker_config() {
        // docs/hosts.md: "Simple (default) Host Config for Docker".
        let hosts = parse_ok(
            "server = \"https://docker.io\"\n\n[host.\"https://registry-1.docker.io\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            "docker.io",
        );
        assert_eq!(
            urls(&hosts),
            ["https://registry-1.docker.io", "https://docker.io"]
        );
        assert_eq!(hosts[0].capabilities, Capabilities::all());
        assert_eq!(hosts[0].api_root(), "https://registry-1.docker.io/v2");
    }

    #[test]
    fn local_mirror_for_docker() {
        // docs/hosts.md: "Setup a Local Mirror for Docker".
        let hosts = parse_ok(
            r#"server = "https://registry-1.docker.io"    # Exclude this to not use upstream

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]                  # Requires less trust, won't resolve tag to digest from this host
[host."https://docker-mirror.internal"]
  capabilities = ["pull", "resolve"]
  ca = "docker-mirror.crt"                 # Or absolute path /etc/containerd/certs.d/docker.io/docker-mirror.crt
"#,
            "docker.io",
        );
        assert_eq!(
            urls(&hosts),
            [
                "https://public-mirror.example.com",
                "https://docker-mirror.internal",
                "https://registry-1.docker.io"
            ]
        );
        assert_eq!(hosts[0].capabilities, PULL);
        assert_eq!(hosts[1].capabilities, Capabilities::all());
        assert_eq!(
            hosts[1].ca,
            [PathBuf::from(
                "/etc/containerd/certs.d/docker.io/docker-mirror.crt"
            )]
        );
        assert_eq!(hosts[2].capabilities, Capabilities::all());
        assert!(hosts[2].ca.is_empty());
    }

    #[test]
    fn default_mirror_then_the_upstream() {
        // docs/hosts.md: "Setup Default Mirror for All Registries": no
        // server, so the registry asked for comes last.
        let text =
            "[host.\"https://registry.example.com\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
        let hosts = parse_ok(text, "quay.io");
        assert_eq!(
            urls(&hosts),
            ["https://registry.example.com", "https://quay.io"]
        );
        let hosts = parse_ok(text, "docker.io");
        assert_eq!(urls(&hosts)[1], "https://registry-1.docker.io");
        let hosts = parse_ok(text, "localhost:5000");
        assert_eq!(urls(&hosts)[1], "https://localhost:5000");
    }

    #[test]
    fn server_as_the_mirror_means_the_mirror_only() {
        let hosts = parse_ok("server = \"https://registry.example.com\"\n", "quay.io");
        assert_eq!(urls(&hosts), ["https://registry.example.com"]);
    }

    #[test]
    fn empty_file_is_the_upstream_alone() {
        let hosts = parse_ok("", "ghcr.io");
        assert_eq!(urls(&hosts), ["https://ghcr.io"]);
        assert_eq!(hosts[0].capabilities, Capabilities::all());
    }

    #[test]
    fn host_tables_keep_file_order() {
        let hosts = parse_ok(
            r#"server = "https://upstream.example"
[host."https://zeta.example"]
  capabilities = ["pull"]
[host."https://alpha.example:5000"]
[host."http://mike.example:8080/prefix"]
  override_path = true
[host."https://bravo.example"]
"#,
            "upstream.example",
        );
        assert_eq!(
            urls(&hosts),
            [
                "https://zeta.example",
                "https://alpha.example:5000",
                "http://mike.example:8080/prefix",
                "https://bravo.example",
                "https://upstream.example"
            ]
        );
        assert_eq!(hosts[2].api_root(), "http://mike.example:8080/prefix");
        assert_eq!(hosts[1].api_root(), "https://alpha.example:5000/v2");
    }

    #[test]
    fn skip_verify_and_push() {
        // docs/hosts.md: "Bypass TLS Verification Example".
        let hosts = parse_ok(
            r#"server = "https://registry-1.docker.io"

[host."http://192.168.31.250:5000"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
"#,
            "docker.io",
        );
        assert_eq!(
            urls(&hosts),
            ["http://192.168.31.250:5000", "https://registry-1.docker.io"]
        );
        assert!(hosts[0].skip_verify);
        assert_eq!(hosts[0].capabilities, Capabilities::all());
        assert!(!hosts[1].skip_verify);
    }

    #[test]
    fn capabilities_forms() {
        let hosts = parse_ok(
            r#"[host."https://a"]
  capabilities = ["resolve"]
[host."https://b"]
  capabilities = ["PUSH"]
[host."https://c"]
  capabilities = []
"#,
            "r.example",
        );
        assert_eq!(
            hosts[0].capabilities,
            Capabilities {
                pull: false,
                resolve: true
            }
        );
        assert_eq!(
            hosts[1].capabilities,
            Capabilities {
                pull: false,
                resolve: false
            }
        );
        assert_eq!(hosts[2].capabilities, Capabilities::all());
    }

    #[test]
    fn top_level_capabilities_apply_to_server_not_upstream() {
        let hosts = parse_ok("server = \"https://m\"\ncapabilities = [\"pull\"]\n", "r");
        assert_eq!(hosts[0].capabilities, PULL);
        let hosts = parse_ok("capabilities = [\"pull\"]\nskip_verify = true\n", "r");
        assert_eq!(hosts[0].capabilities, Capabilities::all());
        assert!(hosts[0].skip_verify);
    }

    #[test]
    fn ca_forms() {
        let hosts = parse_ok(
            r#"ca = "/etc/certs/mirror.pem"
[host."https://a"]
  ca = ["/etc/certs/test-1-ca.pem", "/etc/certs/special.pem"]
[host."https://b"]
  ca = ["relative/ca.pem", "../up.pem"]
"#,
            "r",
        );
        assert_eq!(
            hosts[0].ca,
            [
                PathBuf::from("/etc/certs/test-1-ca.pem"),
                PathBuf::from("/etc/certs/special.pem")
            ]
        );
        assert_eq!(
            hosts[1].ca,
            [
                PathBuf::from("/etc/containerd/certs.d/docker.io/relative/ca.pem"),
                PathBuf::from("/etc/containerd/certs.d/docker.io/../up.pem")
            ]
        );
        assert_eq!(hosts[2].ca, [PathBuf::from("/etc/certs/mirror.pem")]);
    }

    #[test]
    fn client_forms() {
        let hosts = parse_ok(
            r#"client = "/etc/certs/client.pem"
[host."https://a"]
  client = ["/etc/certs/client-1.pem", "/etc/certs/client-2.pem"]
[host."https://b"]
  client = [["/etc/certs/client.cert", "/etc/certs/client.key"],["/etc/certs/client.pem", ""]]
[host."https://c"]
  client = [["c.cert", "c.key"], "both.pem"]
"#,
            "r",
        );
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            hosts[0].client,
            [
                (p("/etc/certs/client-1.pem"), None),
                (p("/etc/certs/client-2.pem"), None)
            ]
        );
        assert_eq!(
            hosts[1].client,
            [
                (
                    p("/etc/certs/client.cert"),
                    Some(p("/etc/certs/client.key"))
                ),
                (p("/etc/certs/client.pem"), None)
            ]
        );
        let dir = "/etc/containerd/certs.d/docker.io";
        assert_eq!(
            hosts[2].client,
            [
                (
                    p(&format!("{dir}/c.cert")),
                    Some(p(&format!("{dir}/c.key")))
                ),
                (p(&format!("{dir}/both.pem")), None)
            ]
        );
        assert_eq!(hosts[3].client, [(p("/etc/certs/client.pem"), None)]);
    }

    #[test]
    fn headers_in_order() {
        let hosts = parse_ok(
            r#"[header]
  x-custom-1 = "custom header"
  x-custom-1-2 = "another custom header"
[host."https://a"]
  [host."https://a".header]
    x-b = ["custom header part a","part b"]
    x-a = "one"
"#,
            "r",
        );
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            hosts[0].headers,
            [
                ("x-b".to_string(), s(&["custom header part a", "part b"])),
                ("x-a".to_string(), s(&["one"]))
            ]
        );
        assert_eq!(
            hosts[1].headers,
            [
                ("x-custom-1".to_string(), s(&["custom header"])),
                ("x-custom-1-2".to_string(), s(&["another custom header"]))
            ]
        );
    }

    #[test]
    fn override_path_and_urls() {
        let hosts = parse_ok(
            r#"server = "registry.example.com:5000/api/./v2/"
[host."mirror.example/registry/"]
  override_path = true
[host."https://m2.example/v2"]
"#,
            "r",
        );
        assert_eq!(
            urls(&hosts),
            [
                "https://mirror.example/registry",
                "https://m2.example/v2",
                "https://registry.example.com:5000/api/v2"
            ]
        );
        assert!(hosts[0].override_path);
        assert_eq!(hosts[0].api_root(), "https://mirror.example/registry");
        assert_eq!(hosts[1].api_root(), "https://m2.example/v2");
        assert_eq!(
            hosts[2].api_root(),
            "https://registry.example.com:5000/api/v2"
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let hosts = parse_ok(
            "server = \"https://m\"\nproxy = \"http://p:8080\"\ndial_timeout = \"1s\"\n",
            "r",
        );
        assert_eq!(urls(&hosts), ["https://m"]);
    }

    #[test]
    fn ipv6_and_default_ports() {
        let hosts = parse_ok(
            "server = \"https://r.example:443\"\n[host.\"http://[::1]:5000\"]\n",
            "r.example",
        );
        assert_eq!(urls(&hosts), ["http://[::1]:5000", "https://r.example"]);
    }

    #[test]
    fn relative_file_resolves_against_its_directory() {
        let file = Path::new("certs.d/r.example_5000_/hosts.toml");
        let hosts = parse(
            "ca = \"ca.pem\"\nclient = [[\"c.cert\", \"/abs/c.key\"]]\n",
            file,
            "r.example:5000",
        )
        .unwrap()
        .hosts;
        assert_eq!(hosts[0].url, "https://r.example:5000");
        assert_eq!(
            hosts[0].ca,
            [PathBuf::from("certs.d/r.example_5000_/ca.pem")]
        );
        assert_eq!(
            hosts[0].client,
            [(
                PathBuf::from("certs.d/r.example_5000_/c.cert"),
                Some(PathBuf::from("/abs/c.key"))
            )]
        );
    }

    fn assert_bad(err: &Error, words: &[&str]) {
        assert_eq!(err.kind, ErrorKind::BadInput);
        assert_eq!(err.reason, Reason::BadInput);
        assert!(err.message.contains(FILE), "{}", err.message);
        for w in words {
            assert!(err.message.contains(w), "{w:?} not in {}", err.message);
        }
    }

    #[test]
    fn unknown_capability_names_the_file() {
        let err = parse_err("[host.\"https://m\"]\n  capabilities = [\"pull\", \"fetch\"]\n");
        assert_bad(&err, &["\"fetch\"", "capabilities", "https://m"]);
        let err = parse_err("server = \"https://m\"\ncapabilities = [\"nope\"]\n");
        assert_bad(&err, &["\"nope\""]);
    }

    #[test]
    fn bad_toml_names_the_file() {
        let err = parse_err("server = \"https://m\n[host.\n");
        assert_bad(&err, &["line 1"]);
        assert!(!err.message.contains('\n'), "{}", err.message);
    }

    #[test]
    fn wrong_types_name_file_and_key() {
        assert_bad(&parse_err("server = 5\n"), &["server"]);
        assert_bad(&parse_err("skip_verify = \"yes\"\n"), &["skip_verify"]);
        assert_bad(&parse_err("[host.\"https://m\"]\nca = 1\n"), &["ca"]);
        assert_bad(&parse_err("client = [[\"a\"]]\n"), &["client"]);
        assert_bad(
            &parse_err("client = [[\"a\", \"b\", \"c\"]]\n"),
            &["client"],
        );
        assert_bad(&parse_err("[header]\nx = 1\n"), &["header.x"]);
        assert_bad(&parse_err("[header]\n\"a b\" = \"v\"\n"), &["header.a b"]);
        assert_bad(&parse_err("[header]\nx = \"a\\nb\"\n"), &["header.x"]);
        assert_bad(&parse_err("host = 1\n"), &["host"]);
        assert_bad(&parse_err("server = \"ftp://m\"\n"), &["server"]);
        assert_bad(&parse_err("[host.\"https://\"]\n"), &["https://"]);
        assert_bad(&parse_err("ca = \"\"\n"), &["ca"]);
    }

    #[test]
    fn host_directories() {
        assert_eq!(host_dir_names("docker.io"), ["docker.io", "_default"]);
        assert_eq!(
            host_dir_names("myregistry.io:5000"),
            ["myregistry.io_5000_", "myregistry.io:5000", "_default"]
        );
        assert_eq!(
            host_dir_names("[::1]:5000"),
            ["[::1]_5000_", "[::1]:5000", "_default"]
        );
        assert_eq!(host_dir_names("[::1]"), ["[::1]", "_default"]);
    }
}
