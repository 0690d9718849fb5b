//! Who a pull is, per registry: credentials set by the caller, then those
//! in the auth files docker and podman write (`auths`, `credHelpers`,
//! `credsStore`), asked of a credential helper at most once per registry.
//! Secrets never appear in `Debug` output or in messages.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

use super::cred_helper;
use super::credential::Credential;
use super::error::{Error, Reason, Result};
use super::reference::Repository;
use super::registry::{key_of, Registry, DOCKER_HUB};
use super::secret::{Secret, WipedJson};

/// What docker's and podman's tools write for Docker Hub, and what a
/// credential helper is asked for it.
const HUB_SERVER_URL: &str = "https://index.docker.io/v1/";

/// An `auths` key: `https://index.docker.io/v1/`, `host`,
/// `https://host/v1/`, or namespaced `host/org/repo`.
fn auths_key(key: &str) -> (String, Vec<String>) {
    let lower = key.trim().to_ascii_lowercase();
    let had_scheme = lower.starts_with("https://") || lower.starts_with("http://");
    let s = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let mut parts = s.split('/').filter(|p| !p.is_empty());
    let host = key_of(parts.next().unwrap_or(""));
    // `https://host/v1/` and `https://host/v2/` name the host alone.
    let path: Vec<String> = parts.map(str::to_owned).collect();
    let path = if had_scheme { Vec::new() } else { path };
    (host, path)
}

#[derive(Debug)]
struct AuthFile {
    /// (registry, namespace path, credential)
    auths: Vec<(String, Vec<String>, Credential)>,
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

/// What a cache knows of a registry's credentials.
enum Found {
    Known(Option<Credential>),
    /// The helper to ask, and the registry's key.
    Helper(String, String),
}

/// Where a file says to get a registry's credentials.
enum Source<'a> {
    Known(Credential),
    Helper(&'a str),
}

impl AuthFile {
    fn load(path: &Path) -> Result<AuthFile> {
        let bad = |why: String| {
            Error::new(
                super::ErrorKind::BadInput,
                Reason::AuthConfig,
                format!("auth config {}: {why}", path.display()),
            )
        };
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?,
        );
        let json = WipedJson(serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?);
        let obj = json
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
        let mut auths = Vec::new();
        if let Some(map) = obj.get("auths") {
            let map = map
                .as_object()
                .ok_or_else(|| bad("\"auths\" is not an object".into()))?;
            for (key, entry) in map {
                let (host, path) = auths_key(key);
                if let Some(cred) =
                    entry_credential(entry).map_err(|why| bad(format!("entry {key:?}: {why}")))?
                {
                    auths.push((host, path, cred));
                }
            }
        }
        let mut cred_helpers = HashMap::new();
        if let Some(map) = obj.get("credHelpers") {
            let map = map
                .as_object()
                .ok_or_else(|| bad("\"credHelpers\" is not an object".into()))?;
            for (key, helper) in map {
                let helper = helper
                    .as_str()
                    .filter(|h| is_helper_name(h))
                    .ok_or_else(|| bad(format!("credHelpers {key:?} is not a helper name")))?;
                cred_helpers.insert(auths_key(key).0, helper.to_owned());
            }
        }
        let creds_store = match obj.get("credsStore") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if is_helper_name(s) => Some(s.clone()),
            Some(_) => return Err(bad("\"credsStore\" is not a helper name".into())),
        };
        Ok(AuthFile {
            auths,
            cred_helpers,
            creds_store,
        })
    }

    /// This file's word on `registry` (and `repo`, for namespaced keys), if
    /// it has one: docker's order, `credHelpers`, `credsStore`, `auths`.
    fn source(&self, registry: &str, repo: &str) -> Option<Source<'_>> {
        if let Some(h) = self.cred_helpers.get(registry) {
            return Some(Source::Helper(h));
        }
        if let Some(h) = &self.creds_store {
            return Some(Source::Helper(h));
        }
        let repo: Vec<&str> = repo.split('/').filter(|c| !c.is_empty()).collect();
        self.auths
            .iter()
            .filter(|(host, path, _)| {
                host == registry
                    && path.len() <= repo.len()
                    && path.iter().zip(&repo).all(|(a, b)| a == b)
            })
            .max_by_key(|(_, path, _)| path.len())
            .map(|(_, _, c)| Source::Known(c.clone()))
    }
}

fn is_helper_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// One `auths` entry; `None` when it holds nothing usable (docker writes
/// empty entries for registries a helper serves).
fn entry_credential(entry: &Value) -> std::result::Result<Option<Credential>, String> {
    let text = |name: &str| {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(Secret::from)
    };
    if let Some(token) = text("identitytoken") {
        return Ok(Some(Credential::IdentityToken(token)));
    }
    if let (Some(username), Some(password)) = (text("username"), text("password")) {
        return Ok(Some(Credential::Basic {
            username: username.to_string(),
            password,
        }));
    }
    let Some(auth) = text("auth") else {
        return Ok(None);
    };
    // Never quoted in the message: it is the secret.
    let decoded = zeroize::Zeroizing::new(
        STANDARD
            .decode(auth.trim())
            .map_err(|_| "\"auth\" is not base64".to_owned())?,
    );
    let decoded =
        std::str::from_utf8(&decoded).map_err(|_| "\"auth\" is not UTF-8 text".to_owned())?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| "\"auth\" is not base64 of user:password".to_owned())?;
    if username.is_empty() {
        return Err("\"auth\" has an empty user name".into());
    }
    Ok(Some(Credential::Basic {
        username: username.to_owned(),
        password: password.into(),
    }))
}

/// The files searched when the caller names none, in order.
pub fn default_auth_files() -> Vec<(PathBuf, bool)> {
    let env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env("HOME");
    let mut files = Vec::new();
    // Named explicitly through the environment: it must exist.
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        files.push((p, true));
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push((d.join("containers/auth.json"), false));
    }
    match (env("XDG_CONFIG_HOME"), &home) {
        (Some(d), _) => files.push((d.join("containers/auth.json"), false)),
        (None, Some(h)) => files.push((h.join(".config/containers/auth.json"), false)),
        _ => {}
    }
    match (env("DOCKER_CONFIG"), &home) {
        (Some(d), _) => files.push((d.join("config.json"), false)),
        (None, Some(h)) => files.push((h.join(".docker/config.json"), false)),
        _ => {}
    }
    files
}

/// A cache's credentials: set by the caller, loaded from files, and the
/// answers helpers gave.
#[derive(Debug, Default)]
pub struct Credentials {
    explicit: Mutex<HashMap<String, Credential>>,
    files: Mutex<Vec<AuthFile>>,
    /// What helpers answered, per registry: each runs at most once per
    /// registry per cache.
    answers: Mutex<HashMap<String, Option<Credential>>>,
    /// One helper at a time, so calls at once do not ask twice.
    helper_runs: tokio::sync::Mutex<()>,
}

impl Credentials {
    /// Replaces any credential set before for `registry`.
    pub fn set(&self, registry: &Registry, credential: Credential) {
        lock(&self.explicit).insert(registry.key(), credential);
    }

    /// Adds an auth file behind those already loaded; `None` searches the
    /// standard places (files that do not exist are skipped, except one
    /// named by `REGISTRY_AUTH_FILE`).
    pub fn load(&self, path: Option<&Path>) -> Result<()> {
        let candidates = match path {
            Some(p) => vec![(p.to_path_buf(), true)],
            None => default_auth_files(),
        };
        let mut loaded = Vec::new();
        for (path, required) in candidates {
            if !required && !path.exists() {
                continue;
            }
            loaded.push(AuthFile::load(&path)?);
        }
        lock(&self.files).extend(loaded);
        Ok(())
    }

    /// Who to be at `registry` (an authority as tank contacts it) for
    /// `repo` (`None`: the registry as a whole, which only entries for the
    /// whole registry answer), when that is known without running a
    /// credential helper: the caller's setting, else the first file with an
    /// entry (a helper's answer once it has given one). `None` means a
    /// helper must be asked.
    pub fn known(
        &self,
        registry: &Registry,
        repo: Option<&Repository>,
    ) -> Option<Option<Credential>> {
        match self.source(registry, repo) {
            Found::Known(c) => Some(c),
            Found::Helper(..) => None,
        }
    }

    /// As [`Credentials::known`], asking the helper when one must be asked:
    /// at most once per registry, whatever the number of calls at once.
    pub async fn lookup(
        &self,
        registry: &Registry,
        repo: Option<&Repository>,
    ) -> Result<Option<Credential>> {
        let (helper, key) = match self.source(registry, repo) {
            Found::Known(c) => return Ok(c),
            Found::Helper(h, key) => (h, key),
        };
        let _turn = self.helper_runs.lock().await;
        if let Some(answer) = lock(&self.answers).get(&key) {
            return Ok(answer.clone());
        }
        let server = if key == DOCKER_HUB {
            HUB_SERVER_URL
        } else {
            key.as_str()
        };
        let answer = cred_helper::get(&helper, server).await?;
        lock(&self.answers).insert(key, answer.clone());
        Ok(answer)
    }

    fn source(&self, registry: &Registry, repo: Option<&Repository>) -> Found {
        let key = registry.key();
        let repo = repo.map_or("", Repository::as_str);
        if let Some(c) = lock(&self.explicit).get(&key) {
            return Found::Known(Some(c.clone()));
        }
        let found = {
            let files = lock(&self.files);
            files.iter().find_map(|f| {
                f.source(&key, repo).map(|s| match s {
                    Source::Known(c) => Found::Known(Some(c)),
                    Source::Helper(h) => Found::Helper(h.to_owned(), key.clone()),
                })
            })
        };
        match found {
            None => Found::Known(None),
            Some(Found::Helper(h, key)) => match lock(&self.answers).get(&key) {
                Some(answer) => Found::Known(answer.clone()),
                None => Found::Helper(h, key),
            },
            Some(known) => known,
        }
    }

    /// Whether the caller set anything, or any file was loaded.
    pub fn is_empty(&self) -> bool {
        lock(&self.explicit).is_empty() && lock(&self.files).is_empty()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("auth.json");
        std::fs::write(&p, json).unwrap();
        (dir, p)
    }

    fn basic(u: &str, p: &str) -> Credential {
        Credential::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[tokio::test]
    async fn keys_as_docker_and_podman_write_them() {
        let auth = |s: &str| STANDARD.encode(s);
        let (_d, p) = file(&format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "ghcr.io": {{"username": "u2", "password": "p2"}},
                "https://quay.io/v1/": {{"auth": "{}"}},
                "reg.example:5000/team": {{"auth": "{}"}},
                "reg.example:5000/team/app": {{"identitytoken": "refresh"}},
                "reg.example:5000": {{"auth": "{}"}},
                "empty.example": {{}}
            }}}}"#,
            auth("hub:hubpass"),
            auth("q:qpass"),
            auth("team:teampass"),
            auth("host:hostpass"),
        ));
        let c = Credentials::default();
        c.load(Some(&p)).unwrap();
        let get = |r: &'static str, repo: &'static str| {
            let c = &c;
            let (r, repo) = (
                Registry::parse(r).unwrap(),
                Repository::parse(repo).unwrap(),
            );
            async move { c.lookup(&r, Some(&repo)).await.unwrap() }
        };
        assert_eq!(
            get("registry-1.docker.io", "library/alpine").await,
            Some(basic("hub", "hubpass"))
        );
        assert_eq!(get("ghcr.io", "o/r").await, Some(basic("u2", "p2")));
        assert_eq!(get("quay.io", "a/b").await, Some(basic("q", "qpass")));
        assert_eq!(
            get("reg.example:5000", "team/app/x").await,
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(
            get("reg.example:5000", "team/other").await,
            Some(basic("team", "teampass"))
        );
        // Whole segments only: "team" is not a prefix of "teammate".
        assert_eq!(
            get("reg.example:5000", "teammate/x").await,
            Some(basic("host", "hostpass"))
        );
        assert_eq!(get("empty.example", "x").await, None);
        assert_eq!(get("other.example", "x").await, None);
        // The registry as a whole (its catalog): the whole registry's entry,
        // never a namespace's.
        let host = Registry::parse("reg.example:5000").unwrap();
        assert_eq!(
            c.lookup(&host, None).await.unwrap(),
            Some(basic("host", "hostpass"))
        );
        // The caller's setting wins, and replaces an earlier one.
        c.set(
            &Registry::parse("https://ghcr.io").unwrap(),
            basic("a", "1"),
        );
        c.set(&Registry::parse("ghcr.io").unwrap(), basic("b", "2"));
        assert_eq!(get("ghcr.io", "o/r").await, Some(basic("b", "2")));
    }

    #[test]
    fn bad_files_name_the_file_and_never_the_secret() {
        for (json, says) in [
            (
                r#"{"auths": {"h": {"auth": "!!notbase64!!"}}}"#,
                "not base64",
            ),
            (
                r#"{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}"#,
                "user:password",
            ),
            (r#"{"auths": []}"#, "not an object"),
            (r#"not json"#, "not JSON"),
            (r#"{"credsStore": 7}"#, "credsStore"),
            (r#"{"credHelpers": {"h": "../evil"}}"#, "helper name"),
        ] {
            let (_d, p) = file(json);
            let e = Credentials::default().load(Some(&p)).unwrap_err();
            assert_eq!(e.reason, Reason::AuthConfig, "{json}");
            assert!(e.message.contains(p.to_str().unwrap()), "{}", e.message);
            assert!(e.message.contains(says), "{json}: {}", e.message);
            assert!(!e.message.contains("notbase64") && !e.message.contains("bm9jb2xvbg"));
        }
        let e = Credentials::default()
            .load(Some(Path::new("/no/such/auth.json")))
            .unwrap_err();
        assert_eq!(e.reason, Reason::AuthConfig);
    }

    #[test]
    fn secrets_stay_out_of_debug_and_fingerprints_tell_identities_apart() {
        let a = basic("alice", "s3cret-pass");
        let t = Credential::IdentityToken("s3cret-token".into());
        let shown = format!("{a:?} {t:?} {:?} {:?}", a.fingerprint(), t.fingerprint());
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_ne!(a.fingerprint(), basic("alice", "other").fingerprint());
    }

    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    /// A compile-time check: every copy of a secret a credential hands out
    /// is wiped when dropped.
    #[test]
    fn secrets_are_wiped_when_dropped() {
        let a = basic("alice", "s3cret");
        if let Credential::Basic { password, .. } = &a {
            wiped_on_drop(password);
        }
        if let Credential::IdentityToken(token) = &Credential::IdentityToken("t0ken".into()) {
            wiped_on_drop(token);
        }
        wiped_on_drop(&a.basic_header());
        for s in &a.secrets() {
            wiped_on_drop(s);
        }
    }
}
