//! The mirrors: the pull-through cache (started once its upstream answers,
//! since distribution asks the upstream for its challenge at start), the
//! port that refuses every connection, and the ways a test spoils or waits
//! on a mirror's storage.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::random::random_hex;
use crate::registry::{ProxyConfig, RegistryProcess, RegistrySetup};
use crate::token::{self, Users};
use crate::which::Which;

/// How long [`wait_until_cached`] waits for distribution's background copy.
const CACHE_TIMEOUT: Duration = Duration::from_secs(10);

/// The pull-through cache's own users: alice again, but with passwords of
/// its own, so a credential sent to the wrong host is refused there (and
/// the issuer's log shows it).
pub(super) fn mirror_users() -> Result<Users> {
    Ok(Users {
        push_password: random_hex(16)?,
        private_password: random_hex(16)?,
        identity_token: random_hex(24)?,
    })
}

/// Turns the pull-through cache's setup into a proxy of the token
/// registry, which it logs in to as the rig's own user (who may pull
/// `private/*` too).
pub(super) fn make_proxy(
    setup: &mut RegistrySetup,
    registries: &[(Which, RegistryProcess)],
    push_password: &str,
) -> Result<()> {
    let Some((_, upstream)) = registries.iter().find(|(w, _)| *w == Which::Token) else {
        bail!("the pull-through cache needs the token registry running");
    };
    setup.proxy = Some(ProxyConfig {
        remote_url: format!("http://{}", upstream.addr()),
        username: token::USERNAME.to_owned(),
        password: push_password.to_owned(),
    });
    Ok(())
}

/// A port on 127.0.0.1 that refuses every connection: a socket bound to it
/// and never listening. Holding the socket keeps anyone else from taking
/// the port while the rig runs, which a closed listener's port would not.
pub(crate) struct DeadPort {
    _socket: OwnedFd,
    addr: String,
}

impl DeadPort {
    pub(crate) fn bind() -> Result<DeadPort> {
        // SAFETY: plain socket calls on a descriptor this function owns;
        // the sockaddr structs are zeroed and then filled in full.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(std::io::Error::last_os_error()).context("socket() for the dead port");
            }
            let socket = OwnedFd::from_raw_fd(fd);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
            addr.sin_port = 0;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                len,
            ) != 0
            {
                return Err(std::io::Error::last_os_error())
                    .context("binding the dead port on 127.0.0.1");
            }
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut bound_len = len;
            if libc::getsockname(
                socket.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_in).cast(),
                &mut bound_len,
            ) != 0
            {
                return Err(std::io::Error::last_os_error())
                    .context("reading the dead port's address");
            }
            Ok(DeadPort {
                _socket: socket,
                addr: format!("127.0.0.1:{}", u16::from_be(bound.sin_port)),
            })
        }
    }

    /// `127.0.0.1:PORT`
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }
}

/// Replaces the file at `path` by as many bytes, each one flipped: the
/// length a registry announces still holds, the digest does not. A new
/// file is renamed over the old one, so registries that share the old one
/// by a hard link (the large generated layers) keep serving it sound.
pub(crate) fn spoil_file(path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    for b in &mut bytes {
        *b = !*b;
    }
    let spoiled = path.with_extension("spoiled");
    fs::File::create(&spoiled)
        .and_then(|mut f| f.write_all(&bytes))
        .with_context(|| format!("writing {}", spoiled.display()))?;
    fs::rename(&spoiled, path)
        .with_context(|| format!("renaming {} over {}", spoiled.display(), path.display()))
}

/// The link file a repository of `storage` holds once a blob is its own:
/// the proxy writes it after it has copied and hashed the whole blob.
pub(crate) fn layer_link(storage: &Path, repo: &str, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    storage
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_layers")
        .join(algo)
        .join(hex)
        .join("link")
}

/// Waits until the pull-through cache's storage holds every blob in
/// `digests` for `repo`. distribution 2.8 streams a blob to the client from
/// the upstream and copies it into its own storage in the background, in a
/// second request of its own; only once that copy is committed can the
/// cache serve the blob with its upstream gone.
pub(crate) fn wait_until_cached(storage: &Path, repo: &str, digests: &[&str]) -> Result<()> {
    let deadline = Instant::now() + CACHE_TIMEOUT;
    loop {
        let missing: Vec<&str> = digests
            .iter()
            .copied()
            .filter(|d| !layer_link(storage, repo, d).is_file())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the pull-through cache did not store {missing:?} of {repo} within \
                 {CACHE_TIMEOUT:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Users shared by every realm but the pull-through cache's.
pub(super) fn users_for(
    upstream: &Arc<Users>,
    mirror: &Arc<Users>,
) -> impl Fn(Which) -> Arc<Users> {
    let (upstream, mirror) = (Arc::clone(upstream), Arc::clone(mirror));
    move |which| match which {
        Which::PullThrough => Arc::clone(&mirror),
        _ => Arc::clone(&upstream),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_port_refuses_connections() {
        let dead = DeadPort::bind().unwrap();
        let err = std::net::TcpStream::connect(dead.addr()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn a_spoiled_file_keeps_its_length_and_loses_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let link = dir.path().join("hard-link");
        fs::write(&path, b"sound bytes").unwrap();
        fs::hard_link(&path, &link).unwrap();
        spoil_file(&path).unwrap();
        let spoiled = fs::read(&path).unwrap();
        assert_eq!(spoiled.len(), b"sound bytes".len());
        assert!(spoiled.iter().zip(b"sound bytes").all(|(a, b)| a != b));
        assert_eq!(fs::read(&link).unwrap(), b"sound bytes");
    }
}
