//! The rig's temp dir: where it goes, and cleaning up after rigs whose
//! process died without running `Drop` (SIGKILL, abort, a `static` rig).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::TempDir;

const PREFIX: &str = "tank-rig-";
const PID_FILE: &str = "rig.pid";

/// Creates a fresh rig dir (removed when the `TempDir` drops), first
/// removing dead rigs' dirs from the same parent.
pub(crate) fn create() -> Result<TempDir> {
    let parent = parent();
    sweep(&parent);
    let dir = tempfile::Builder::new()
        .prefix(PREFIX)
        .tempdir_in(&parent)
        .with_context(|| format!("creating the rig's temp dir in {}", parent.display()))?;
    let pid_file = dir.path().join(PID_FILE);
    fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    Ok(dir)
}

/// `TANK_RIG_TMPDIR`, else /dev/shm, else the system temp dir.
/// distribution's filesystem driver creates, renames and deletes several
/// files per upload; on this machine's ext4 (mounted with `discard`) that
/// made loading the fixtures 3-4 times slower than on tmpfs.
fn parent() -> PathBuf {
    if let Some(dir) = std::env::var_os("TANK_RIG_TMPDIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm
        .metadata()
        .map(|m| m.is_dir() && !m.permissions().readonly())
        .unwrap_or(false);
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Removes `tank-rig-*` dirs whose owner process is gone. A dir without a
/// readable pid file may be one being created right now, so it is left alone.
/// Best effort: errors are ignored.
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let dir = entry.path();
        let pid = fs::read_to_string(dir.join(PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<libc::pid_t>().ok());
        if let Some(pid) = pid {
            if pid > 0 && !alive(pid) {
                let _ = fs::remove_dir_all(&dir);
            }
        }
    }
}

fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
