use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{boundary, string_arg, TankError, TankStatus};
use crate::stevedore::credential::Credential;
use crate::stevedore::error::Error;
use crate::stevedore::mirrors::hosts_toml::Capabilities;
use crate::stevedore::mirrors::load;
use crate::stevedore::mirrors::sources::{Location, Mirror};
use crate::stevedore::secret::Secret;
use crate::stevedore::trust::CaFile;
use crate::stevedore::{DownloadSettings, Registry, Session};

/// A session shared by the calls given it: the bearer tokens they earn
/// (each bound to the origin, scope and identity it was earned for), the
/// credentials and TLS trust set on it, and the HTTP clients that trust
/// needs. Opaque and thread-safe: many threads may use one cache at once. Free it with
/// `tank_cache_free` once no call is using it.
pub struct TankCache {
    pub(crate) tokens: Arc<Session>,
}

impl TankCache {
    /// The cache a call should use; a NULL handle means no caching.
    ///
    /// # Safety
    /// `cache` is NULL or a live pointer from `tank_cache_new*`.
    pub(crate) unsafe fn shared(cache: *const TankCache) -> Option<Arc<Session>> {
        cache.as_ref().map(|c| c.tokens.clone())
    }
}

/// A cache whose tokens live at most 60 s (less if the issuer says so).
/// Returns NULL only if allocation fails.
#[no_mangle]
pub extern "C" fn tank_cache_new() -> *mut TankCache {
    tank_cache_new_with_ttl(60_000)
}

/// A cache whose tokens live at most `ttl_ms` milliseconds (less if the
/// issuer says so; 0 caches nothing).
#[no_mangle]
pub extern "C" fn tank_cache_new_with_ttl(ttl_ms: u64) -> *mut TankCache {
    std::panic::catch_unwind(|| {
        Box::into_raw(Box::new(TankCache {
            tokens: Arc::new(Session::new(Duration::from_millis(ttl_ms))),
        }))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Frees a cache. NULL is a no-op. Calls still running with it keep their
/// own reference, so this never waits and never pulls memory from under
/// them.
///
/// # Safety
/// `cache` is NULL or a pointer from `tank_cache_new*`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_free(cache: *mut TankCache) {
    if !cache.is_null() {
        drop(Box::from_raw(cache));
    }
}

/// The cache a settings call changes: NULL is bad input. The call holds
/// its own reference, as fetch calls do, so a `tank_cache_free` from
/// another thread during a slow load frees nothing under it.
///
/// # Safety
/// `cache` is NULL or a live pointer from `tank_cache_new*`.
unsafe fn settings_of(cache: *mut TankCache) -> Result<Arc<Session>, Error> {
    TankCache::shared(cache).ok_or_else(|| Error::bad_input("cache is NULL"))
}

/// A string argument that may not be empty.
///
/// # Safety
/// `ptr` is NULL or NUL-terminated.
unsafe fn text_arg(name: &str, ptr: *const c_char) -> Result<String, Error> {
    non_empty(name, string_arg(name, ptr)?)
}

/// A password or token argument: copied once, into memory that is wiped
/// when dropped.
///
/// # Safety
/// `ptr` is NULL or NUL-terminated.
unsafe fn secret_arg(name: &str, ptr: *const c_char) -> Result<Secret, Error> {
    string_arg(name, ptr).map(Secret::from)
}

fn non_empty<T: std::ops::Deref<Target = str>>(name: &str, value: T) -> Result<T, Error> {
    if value.is_empty() {
        return Err(Error::bad_input(format!("{name} is empty")));
    }
    Ok(value)
}

/// A path argument that may be NULL (the standard places) but not empty.
///
/// # Safety
/// `ptr` is NULL or NUL-terminated.
unsafe fn optional_path(name: &str, ptr: *const c_char) -> Result<Option<PathBuf>, Error> {
    if ptr.is_null() {
        return Ok(None);
    }
    text_arg(name, ptr).map(|s| Some(PathBuf::from(s)))
}

/// Calls through `cache` to `registry` (`host[:port]`, an `http://` or
/// `https://` prefix accepted and ignored; `docker.io`, `index.docker.io`
/// and `registry-1.docker.io` all name Docker Hub) send this user name and
/// password: as Basic credentials to a `Basic` challenge, or to the realm
/// of a `Bearer` one. Replaces any credential set before for `registry`;
/// beats anything loaded from auth files. Never sent over plain HTTP except
/// to a loopback registry. Calls that start afterwards use it.
///
/// # Safety
/// `cache` is NULL or live; strings are NULL or NUL-terminated; `err` is
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_set_basic_auth(
    cache: *mut TankCache,
    registry: *const c_char,
    username: *const c_char,
    password: *const c_char,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let registry = text_arg("registry", registry)?;
        let username = text_arg("username", username)?;
        let password = secret_arg("password", password)?;
        let registry = Registry::parse(&registry)?;
        let basic = Credential::Basic { username, password };
        settings.credentials.set(&registry, basic);
        Ok(())
    })
}

/// As `tank_cache_set_basic_auth`, with an identity (refresh) token, as
/// `docker login` keeps for registries with OAuth2 token servers.
///
/// # Safety
/// As for `tank_cache_set_basic_auth`.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_set_identity_token(
    cache: *mut TankCache,
    registry: *const c_char,
    token: *const c_char,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let registry = text_arg("registry", registry)?;
        let token = non_empty("token", secret_arg("token", token)?)?;
        let registry = Registry::parse(&registry)?;
        let token = Credential::IdentityToken(token);
        settings.credentials.set(&registry, token);
        Ok(())
    })
}

/// Adds the credentials of a docker `config.json` or podman `auth.json`
/// behind any loaded before (`auths`, `credHelpers`, `credsStore`; helpers
/// run when a call needs them, at most once per registry). `path` NULL
/// searches, in order: `$REGISTRY_AUTH_FILE`,
/// `$XDG_RUNTIME_DIR/containers/auth.json`,
/// `$XDG_CONFIG_HOME/containers/auth.json` (default
/// `~/.config/containers/auth.json`), `$DOCKER_CONFIG/config.json` (default
/// `~/.docker/config.json`), skipping those that do not exist. A missing or
/// malformed file given explicitly (also through `REGISTRY_AUTH_FILE`) is
/// `TANK_ERR_BAD_INPUT` / `auth_config`, naming the file, never a secret.
///
/// # Safety
/// As for `tank_cache_set_basic_auth`.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_load_auth_config(
    cache: *mut TankCache,
    path: *const c_char,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let path = optional_path("path", path)?;
        settings.credentials.load(path.as_deref())
    })
}

/// Trusts the CA certificates in the PEM file `pem_path` for `registry`,
/// or for every registry when `registry` is NULL, beside the system's and
/// Mozilla's roots. A cache with trust of its own uses HTTP clients of its
/// own. CAs set for one registry are trusted for that host only, not for
/// its token realm or redirect targets on other hosts (name those too, or
/// pass NULL). A file with no certificate is `TANK_ERR_BAD_INPUT` /
/// `certificate`.
///
/// # Safety
/// As for `tank_cache_set_basic_auth`.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_trust_ca_file(
    cache: *mut TankCache,
    registry: *const c_char,
    pem_path: *const c_char,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let registry = match registry.is_null() {
            true => None,
            false => Some(text_arg("registry", registry)?),
        };
        let pem = PathBuf::from(text_arg("pem_path", pem_path)?);
        // The file first, then the registry: a bad file is named even when
        // the registry is bad too.
        let cas = CaFile::read(&pem)?;
        let registry = registry.as_deref().map(Registry::parse).transpose()?;
        settings.change_trust(|t| {
            t.add_cas(registry.as_ref(), cas);
            Ok(())
        })
    })
}

/// Loads a certs directory as docker and podman lay it out:
/// the `.crt` files in `<dir>/<host[:port]>/` are CAs for that registry, and `X.cert` with
/// `X.key` its client certificate (mutual TLS), presented to that host only,
/// never to its token realm or redirect targets elsewhere. Also as
/// containerd lays it out: `<host_port_>` directory names, and a
/// `hosts.toml` in each directory (`_default` for registries without one),
/// which gives the registry's sources (its `[host]` mirrors, then `server`)
/// for calls that start afterwards, and whose `ca`, `client` and
/// `skip_verify` apply to the host each entry names (`skip_verify` to that
/// host only). A later load's directories are looked up after an earlier
/// one's, the first with a directory for the registry deciding, as
/// containerd's `config_path`. `dir` NULL loads
/// `/etc/containerd/certs.d`, `/etc/containers/certs.d`, then
/// `/etc/docker/certs.d`, where they exist.
/// A certificate without its key, or a file that is not PEM, is
/// `TANK_ERR_BAD_INPUT` / `certificate`; a malformed `hosts.toml`,
/// `TANK_ERR_BAD_INPUT` naming it; either way nothing from `dir` is kept.
///
/// # Safety
/// As for `tank_cache_set_basic_auth`.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_load_certs_dir(
    cache: *mut TankCache,
    dir: *const c_char,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let dir = optional_path("dir", dir)?;
        let mut hosts = None;
        settings.change_trust(|t| {
            t.load_certs_dir(dir.as_deref())?;
            hosts = Some(t.hosts_dirs().clone());
            Ok(())
        })?;
        settings.change_mirrors(|m| {
            m.set_hosts_dirs(hosts.unwrap_or_default());
            Ok(())
        })
    })
}

/// `tank_cache_add_mirror`'s capability: blobs, and manifests by digest.
pub const TANK_MIRROR_PULL: u32 = 1u32;
/// `tank_cache_add_mirror`'s capability: tags, resolved to manifests.
pub const TANK_MIRROR_RESOLVE: u32 = 2u32;

/// Calls through `cache` ask `mirror` for `registry`'s repositories before
/// the registry itself, for what `capabilities` allows
/// (`TANK_MIRROR_PULL | TANK_MIRROR_RESOLVE`; at least one). `mirror` is
/// `https://host[:port][/ns…]` or `host[:port][/ns…]`: https, or plain http
/// for a loopback host (`http://` is refused elsewhere); a path is the
/// namespace the mirror keeps the registry's repositories under
/// (`mirror.example/hub` serves `docker.io/library/alpine` as
/// `hub/library/alpine`). Mirrors of one registry are tried in the order
/// they were added, before those of registries.conf and hosts.toml. A
/// mirror authenticates with the credentials set for its own host, never
/// the registry's. Calls that start afterwards use it.
///
/// # Safety
/// As for `tank_cache_set_basic_auth`.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_add_mirror(
    cache: *mut TankCache,
    registry: *const c_char,
    mirror: *const c_char,
    capabilities: u32,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let registry = text_arg("registry", registry)?;
        let mirror = text_arg("mirror", mirror)?;
        let known = TANK_MIRROR_PULL | TANK_MIRROR_RESOLVE;
        if capabilities == 0 || capabilities & !known != 0 {
            return Err(Error::bad_input(format!(
                "capabilities {capabilities:#x}: TANK_MIRROR_PULL, TANK_MIRROR_RESOLVE or both"
            )));
        }
        let registry = Registry::parse(&registry)?;
        let mirror = Mirror {
            location: Location::parse(&mirror)?,
            capabilities: Capabilities {
                pull: capabilities & TANK_MIRROR_PULL != 0,
                resolve: capabilities & TANK_MIRROR_RESOLVE != 0,
            },
        };
        settings.change_mirrors(|m| {
            m.add(&registry, mirror);
            Ok(())
        })
    })
}

/// Most connections `tank_cache_set_connections` takes per blob: past a
/// few, a CDN's per-connection cap is no longer what limits a download.
const MAX_CONNECTIONS_PER_BLOB: u32 = 64;
/// And per host, for a whole pull.
const MAX_CONNECTIONS_PER_HOST: u32 = 256;

/// How calls through `cache` fetch big blobs. A blob of at least
/// `threshold` bytes (0: the default, 64 MiB) from a server that honours
/// `Range` is fetched as several ranges at once over up to `per_blob`
/// separate connections (0: the default, 4; 1: one connection, as before);
/// the bytes are still hashed in order, once, and a call cut short keeps
/// every range that arrived for the next. A pull holds at most `per_host`
/// connections to one host at once for its blobs, layers and ranges
/// together (0: the default, 16). `per_blob` at most 64, `per_host` at
/// most 256 and not below `per_blob`. Calls that start afterwards use it.
///
/// # Safety
/// `cache` is NULL or a live pointer from `tank_cache_new*`; `err` is NULL
/// or points to writable storage for one pointer.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_set_connections(
    cache: *mut TankCache,
    per_blob: u32,
    per_host: u32,
    threshold: u64,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let session = settings_of(cache)?;
        session.set_download_settings(connection_settings(per_blob, per_host, threshold)?);
        Ok(())
    })
}

/// The settings `tank_cache_set_connections(per_blob, per_host,
/// threshold)` makes, 0 meaning each one's default, or why they are
/// refused. Public so that the bindings that build a session without the C
/// ABI (the Elixir NIF) take and refuse exactly what C does.
pub fn connection_settings(
    per_blob: u32,
    per_host: u32,
    threshold: u64,
) -> Result<DownloadSettings, Error> {
    let defaults = DownloadSettings::default();
    let or = |v: u32, d: usize| if v == 0 { d } else { v as usize };
    let settings = DownloadSettings {
        connections: or(per_blob, defaults.connections),
        per_host: or(per_host, defaults.per_host),
        threshold: if threshold == 0 {
            defaults.threshold
        } else {
            threshold
        },
        ..defaults
    };
    if per_blob > MAX_CONNECTIONS_PER_BLOB {
        return Err(Error::bad_input(format!(
            "per_blob {per_blob}: at most {MAX_CONNECTIONS_PER_BLOB}"
        )));
    }
    if per_host > MAX_CONNECTIONS_PER_HOST {
        return Err(Error::bad_input(format!(
            "per_host {per_host}: at most {MAX_CONNECTIONS_PER_HOST}"
        )));
    }
    if settings.per_host < settings.connections {
        return Err(Error::bad_input(format!(
            "per_host {} is below per_blob {}: one blob could never have its connections",
            settings.per_host, settings.connections
        )));
    }
    Ok(settings)
}

/// Reads containers-registries.conf(5), version 2, with its drop-in
/// directories, replacing what an earlier load set. `path` NULL: the
/// default search (`$HOME/.config/containers/registries.conf` if it
/// exists, else `/etc/containers/registries.conf`, then the
/// `registries.conf.d` directories in the man page's order); a missing
/// default file is not an error. A missing named file, or a malformed one,
/// is `TANK_ERR_BAD_INPUT` / `registries_conf`, naming the file and the
/// line. Prefixes, locations, `insecure`, `blocked`,
/// `mirror-by-digest-only` and `[[registry.mirror]]` apply to calls that
/// start afterwards; a blocked registry is `TANK_ERR_BAD_INPUT` /
/// `blocked` before any request. Short names keep Docker's normalization:
/// `unqualified-search-registries`, `short-name-mode` and aliases are
/// read, not used.
///
/// # Safety
/// As for `tank_cache_set_basic_auth`.
#[no_mangle]
pub unsafe extern "C" fn tank_cache_load_registries_conf(
    cache: *mut TankCache,
    path: *const c_char,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let settings = settings_of(cache)?;
        let path = optional_path("path", path)?;
        let conf = load::registries_conf(path.as_deref())?;
        // `insecure` locations: unverified TLS for their hosts only, in
        // place of what an earlier load made insecure.
        settings.change_trust(|t| {
            t.set_insecure_locations(&conf);
            Ok(())
        })?;
        settings.change_mirrors(|m| {
            m.set_registries_conf(conf);
            Ok(())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn password_and_token_arguments_are_wiped_when_dropped() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let pw = CString::new("s3cret").unwrap();
        // SAFETY: a NUL-terminated string.
        let secret = unsafe { secret_arg("password", pw.as_ptr()) }.unwrap();
        wiped_on_drop(&secret);
        assert_eq!(secret.as_str(), "s3cret");
    }

    /// The auth file is a FIFO: the load blocks reading it until the test
    /// writes, and opening it for writing returns only once the load has
    /// opened it, so the free below happens while the load is running.
    #[test]
    fn a_cache_freed_during_a_slow_load_lives_until_the_load_ends() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("auth.json");
        let c_fifo = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        let cache = tank_cache_new();
        // SAFETY: `cache` is live until the tank_cache_free below.
        let weak = Arc::downgrade(unsafe { &(*cache).tokens });
        let handle = cache as usize;
        let loader = std::thread::spawn(move || {
            // SAFETY: what a C caller may do: the handle is live when the
            // call starts; another thread frees it during the call.
            unsafe {
                tank_cache_load_auth_config(
                    handle as *mut TankCache,
                    c_fifo.as_ptr(),
                    std::ptr::null_mut(),
                )
            }
        });
        let mut writer = std::fs::File::options().write(true).open(&fifo).unwrap();
        // SAFETY: from `tank_cache_new`, freed once.
        unsafe { tank_cache_free(cache) };
        let alive_during_the_load = weak.upgrade().is_some();
        writer.write_all(b"{}").unwrap();
        drop(writer);
        assert!(loader.join().unwrap() == TankStatus::TANK_OK);
        assert!(
            alive_during_the_load,
            "tank_cache_free freed the cache under a running load"
        );
        assert!(weak.upgrade().is_none(), "the load let the cache go");
    }
}
