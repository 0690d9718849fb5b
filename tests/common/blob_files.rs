//! What the to-file tests share: a test blob, the names tank gives a
//! download's own files, an origin that serves `Range` as a registry does,
//! and waits on files.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::scripted::{respond, Request};

/// A blob of a few chunks: 1 MiB of a pattern that repeats rarely.
pub fn payload() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

pub fn partial_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", path.display()))
}

pub fn lock_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", path.display()))
}

/// Leaves `bytes` in `<path>.partial` as an earlier call by this user
/// would (mode 0600, whatever the umask): a partial tank resumes.
pub fn leave_partial(path: &Path, bytes: &[u8]) {
    let partial = partial_of(path);
    std::fs::write(&partial, bytes).unwrap();
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `bytes=N-` of a request, as N.
pub fn range_start(r: &Request) -> Option<u64> {
    r.header("range")?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// Serves `blob` as a registry would: `Range: bytes=N-` gets a 206 with the
/// rest, anything else a 200 with all of it.
pub fn serve(blob: &[u8], req: &Request, conn: &mut TcpStream) {
    match range_start(req) {
        Some(n) if (n as usize) < blob.len() => {
            let range = format!("bytes {n}-{}/{}", blob.len() - 1, blob.len());
            respond(conn, 206, &[("Content-Range", &range)], &blob[n as usize..]);
        }
        _ => respond(conn, 200, &[], blob),
    }
}

/// Waits (bounded) for a condition another thread brings about.
pub fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The length of the file at `path`; 0 when there is none.
pub fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
