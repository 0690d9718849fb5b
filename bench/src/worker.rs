//! What the benchmark measures in a child process of its own, so that peak
//! RSS and connection counts belong to one pull and nothing else.

use std::ffi::{c_void, CString};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use tank::ffi::bytes::{tank_blob, tank_bytes_release, TankBytes};
use tank::ffi::cache::{tank_cache_free, tank_cache_new, tank_cache_set_connections, TankCache};
use tank::ffi::cancel::{tank_cancel_free, tank_cancel_new, tank_cancel_trigger, TankCancel};
use tank::ffi::error::{tank_error_free, tank_error_message, TankError};
use tank::ffi::pull::tank_pull;
use tank::ffi::to_file::tank_blob_to_file;
use tank::ffi::TankStatus;
use tank_testrig::client_sockets_to;

pub fn run(args: &[String]) -> Result<()> {
    if args
        .first()
        .is_some_and(|mode| crate::unpack::worker::handles(mode, args.len()))
    {
        return crate::unpack::worker::run(args);
    }
    match args.first().map(String::as_str) {
        Some("blob") if args.len() == 4 => {
            let started = Instant::now();
            let (len, release_secs) = fetch(&args[1], &args[2], &args[3], std::ptr::null_mut())?;
            let call_secs = started.elapsed().as_secs_f64() - release_secs;
            println!(
                "{}",
                serde_json::json!({
                    "bytes": len,
                    "call_secs": call_secs,
                    "release_secs": release_secs,
                    "peak_rss_bytes": peak_rss_bytes()?,
                    "cpu_secs": crate::measure::process_cpu_secs("self")?,
                })
            );
            Ok(())
        }
        Some("many") if args.len() == 4 => many(&args[1], &args[2], &args[3]),
        // Cut: cancels the call once half the blob is on disk, as a fault
        // would, leaving the partial file for the next call to resume.
        // CONNECTIONS: through a cache set to fetch big blobs over that many
        // connections each (16 per host, the default threshold); without
        // it, no cache and tank's defaults.
        Some(mode @ ("to_file" | "to_file_cut")) if matches!(args.len(), 6 | 7) => {
            let size: u64 = args[4].parse()?;
            let cache = match args.get(6) {
                Some(n) => cache_with_connections(n.parse().context("CONNECTIONS")?)?,
                None => std::ptr::null_mut(),
            };
            let rss_before = current_rss_bytes()?;
            let started = Instant::now();
            let status = to_file(
                &args[1],
                &args[2],
                &args[3],
                size,
                &args[5],
                cache,
                mode == "to_file_cut",
            );
            let call_secs = started.elapsed().as_secs_f64();
            // SAFETY: the cache is NULL or this call's own, no longer used.
            unsafe { tank_cache_free(cache) };
            let status = status?;
            println!(
                "{}",
                serde_json::json!({
                    "status": format!("{status:?}"),
                    "call_secs": call_secs,
                    "rss_growth_bytes": peak_rss_bytes()?.saturating_sub(rss_before),
                    "cpu_secs": crate::measure::process_cpu_secs("self")?,
                })
            );
            Ok(())
        }
        // A whole image into an OCI layout: default jobs, no cache given
        // (the call earns its one token itself), host platform.
        Some("pull") if args.len() == 3 => {
            let rss_before = current_rss_bytes()?;
            let started = Instant::now();
            pull(&args[1], &args[2])?;
            println!(
                "{}",
                serde_json::json!({
                    "call_secs": started.elapsed().as_secs_f64(),
                    "rss_growth_bytes": peak_rss_bytes()?.saturating_sub(rss_before),
                    "cpu_secs": crate::measure::process_cpu_secs("self")?,
                })
            );
            Ok(())
        }
        // The same blobs by tank_blob_to_file, one after the other, through
        // one cache (one token), each to DIR/<hex>.
        Some("to_file_seq") if args.len() == 5 => {
            let blobs: Vec<(&str, u64)> = args[4]
                .split(',')
                .map(|b| -> Result<(&str, u64)> {
                    let (digest, size) = b.rsplit_once('=').context("DIGEST=SIZE")?;
                    Ok((digest, size.parse()?))
                })
                .collect::<Result<_>>()?;
            let cache = tank_cache_new();
            let started = Instant::now();
            for (digest, size) in &blobs {
                let path = Path::new(&args[3]).join(digest.trim_start_matches("sha256:"));
                let path = path.to_str().context("path")?;
                to_file(&args[1], &args[2], digest, *size, path, cache, false)?;
            }
            let secs = started.elapsed().as_secs_f64();
            unsafe { tank_cache_free(cache) };
            println!(
                "{}",
                serde_json::json!({
                    "call_secs": secs,
                    "cpu_secs": crate::measure::process_cpu_secs("self")?,
                })
            );
            Ok(())
        }
        _ => bail!(
            "worker: blob REG REPO DIGEST | many REG REPO DIGEST,DIGEST,... | \
             to_file[_cut] REG REPO DIGEST SIZE PATH [CONNECTIONS] | pull REFERENCE LAYOUT | \
             to_file_seq REG REPO DIR DIGEST=SIZE,... | {}",
            crate::unpack::worker::USAGE
        ),
    }
}

/// One `tank_blob` through the C ABI; the bytes are released unread.
/// Returns their length and how long the release took.
fn fetch(registry: &str, repo: &str, digest: &str, cache: *mut TankCache) -> Result<(usize, f64)> {
    let (r, p, d) = (
        CString::new(registry)?,
        CString::new(repo)?,
        CString::new(digest)?,
    );
    unsafe {
        let mut out: TankBytes = std::mem::zeroed();
        let mut err: *mut TankError = std::ptr::null_mut();
        let status = tank_blob(
            r.as_ptr(),
            p.as_ptr(),
            d.as_ptr(),
            cache,
            &mut out,
            &mut err,
        );
        if status != TankStatus::TANK_OK {
            let msg = std::ffi::CStr::from_ptr(tank_error_message(err))
                .to_string_lossy()
                .into_owned();
            tank_error_free(err);
            bail!("tank_blob {digest}: {status:?}: {msg}");
        }
        let len = out.len;
        let released = Instant::now();
        tank_bytes_release(&mut out);
        Ok((len, released.elapsed().as_secs_f64()))
    }
}

/// A cache whose calls fetch a big blob over `per_blob` connections
/// (`tank_cache_set_connections(cache, per_blob, 16, 0)`).
fn cache_with_connections(per_blob: u32) -> Result<*mut TankCache> {
    // SAFETY: the cache is this function's own until it returns it; the
    // error is read and freed here.
    unsafe {
        let cache = tank_cache_new();
        let mut err: *mut TankError = std::ptr::null_mut();
        let status = tank_cache_set_connections(cache, per_blob, 16, 0, &mut err);
        if status != TankStatus::TANK_OK {
            let msg = error_text(err);
            tank_error_free(err);
            tank_cache_free(cache);
            bail!("tank_cache_set_connections {per_blob}: {status:?}: {msg}");
        }
        Ok(cache)
    }
}

/// The message of `err`, or nothing when it is NULL.
///
/// # Safety
/// `err` is NULL or a live error from tank.
unsafe fn error_text(err: *mut TankError) -> String {
    if err.is_null() {
        return String::new();
    }
    std::ffi::CStr::from_ptr(tank_error_message(err))
        .to_string_lossy()
        .into_owned()
}

struct Cut {
    cancel: *mut TankCancel,
    at: u64,
}

unsafe extern "C" fn cut_at_half(user: *mut c_void, done: u64, _total: u64) {
    let cut = &*user.cast::<Cut>();
    if done >= cut.at {
        tank_cancel_trigger(cut.cancel);
    }
}

/// One `tank_blob_to_file` through the C ABI; `cut` cancels it half way.
fn to_file(
    registry: &str,
    repo: &str,
    digest: &str,
    size: u64,
    path: &str,
    cache: *mut TankCache,
    cut: bool,
) -> Result<TankStatus> {
    let (r, p, d, f) = (
        CString::new(registry)?,
        CString::new(repo)?,
        CString::new(digest)?,
        CString::new(path)?,
    );
    unsafe {
        let cancel = tank_cancel_new();
        let mut half = Cut {
            cancel,
            at: size / 2,
        };
        let mut err: *mut TankError = std::ptr::null_mut();
        let status = tank_blob_to_file(
            r.as_ptr(),
            p.as_ptr(),
            d.as_ptr(),
            size,
            f.as_ptr(),
            cache,
            cancel,
            if cut { Some(cut_at_half) } else { None },
            (&mut half as *mut Cut).cast(),
            &mut err,
        );
        tank_cancel_free(cancel);
        let expected = if cut {
            TankStatus::TANK_ERR_CANCELLED
        } else {
            TankStatus::TANK_OK
        };
        if status != expected {
            let msg = if err.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(tank_error_message(err))
                    .to_string_lossy()
                    .into_owned()
            };
            tank_error_free(err);
            bail!("tank_blob_to_file {digest}: {status:?}: {msg}");
        }
        tank_error_free(err);
        Ok(status)
    }
}

/// One `tank_pull` through the C ABI: `reference` into the layout at
/// `layout`, default jobs, this host's platform, no cache, cancel or
/// progress, the manifest not asked for.
pub(crate) fn pull(reference: &str, layout: &str) -> Result<()> {
    let (r, l) = (CString::new(reference)?, CString::new(layout)?);
    unsafe {
        let mut err: *mut TankError = std::ptr::null_mut();
        let status = tank_pull(
            r.as_ptr(),
            l.as_ptr(),
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut err,
        );
        if status != TankStatus::TANK_OK {
            let msg = if err.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(tank_error_message(err))
                    .to_string_lossy()
                    .into_owned()
            };
            tank_error_free(err);
            bail!("tank_pull {reference}: {status:?}: {msg}");
        }
        tank_error_free(err);
        Ok(())
    }
}

struct SharedCache(*mut TankCache);
// The cache is documented thread-safe; the pointer is only shared.
unsafe impl Sync for SharedCache {}

impl SharedCache {
    fn get(&self) -> *mut TankCache {
        self.0
    }
}

fn many(registry: &str, repo: &str, digests: &str) -> Result<()> {
    let digests: Vec<&str> = digests.split(',').collect();
    let port: u16 = registry.rsplit(':').next().context("port")?.parse()?;
    let before = client_sockets_to(port);
    let cache = SharedCache(tank_cache_new());
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(d) = digests.get(i) else {
                            return Ok(());
                        };
                        fetch(registry, repo, d, cache.get())?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("worker thread panicked"))??;
        }
        Ok(())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let conns = client_sockets_to(port).difference(&before).count();
    unsafe { tank_cache_free(cache.0) };
    println!(
        "{}",
        serde_json::json!({"secs": secs, "registry_connections": conns})
    );
    Ok(())
}

pub(crate) fn peak_rss_bytes() -> Result<u64> {
    status_kib("VmHWM:")
}

pub(crate) fn current_rss_bytes() -> Result<u64> {
    status_kib("VmRSS:")
}

/// A `/proc/self/status` field given in kB, as bytes.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .with_context(|| field.to_owned())?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

/// SHA-256 of a file with the sha2 crate, read in 1 MiB pieces.
pub fn time_sha256_file(path: &Path, hex: &str) -> Result<f64> {
    let started = Instant::now();
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut h = Sha256::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if got != hex {
        bail!("sha2 got {got}");
    }
    Ok(started.elapsed().as_secs_f64())
}
