//! The unpack rows' worker modes: each C call in a process of its own, so
//! that peak RSS belongs to that call alone.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Read;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use tank::ffi::error::{tank_error_free, tank_error_message, TankError};
use tank::ffi::unpack::{tank_pull_unpack, tank_unpack};
use tank::ffi::TankStatus;

use crate::worker::{current_rss_bytes, peak_rss_bytes, pull};

/// The modes this file answers, with their argument counts.
pub fn handles(mode: &str, argc: usize) -> bool {
    matches!(
        (mode, argc),
        ("unpack", 4) | ("pull_unpack", 4) | ("pull_then_unpack", 4)
    ) || (matches!(mode, "inflate" | "inflate_hash") && argc >= 3)
}

pub const USAGE: &str = "unpack LAYOUT IMAGE ROOTFS | pull_unpack REFERENCE LAYOUT ROOTFS | \
     pull_then_unpack REFERENCE LAYOUT ROOTFS | inflate[_hash] gzip|zstd FILE...";

pub fn run(args: &[String]) -> Result<()> {
    let rss_before = current_rss_bytes()?;
    let started = Instant::now();
    let mut parts = serde_json::Map::new();
    match args[0].as_str() {
        // tank_unpack from a layout: no flags (rootless), no cancel or
        // progress.
        "unpack" => unpack(&args[1], &args[2], &args[3])?,
        "pull_unpack" => pull_unpack(&args[1], &args[2], &args[3])?,
        // The two calls one after the other; the image for tank_unpack is
        // the reference, which tank_pull wrote as the ref name.
        "pull_then_unpack" => {
            pull(&args[1], &args[2])?;
            let pulled = started.elapsed().as_secs_f64();
            unpack(&args[2], &args[1], &args[3])?;
            parts.insert("pull_secs".into(), pulled.into());
            parts.insert(
                "unpack_secs".into(),
                (started.elapsed().as_secs_f64() - pulled).into(),
            );
        }
        mode => {
            let bytes = inflate(&args[1], &args[2..], mode == "inflate_hash")?;
            parts.insert("bytes".into(), bytes.into());
        }
    }
    parts.insert("call_secs".into(), started.elapsed().as_secs_f64().into());
    parts.insert(
        "rss_growth_bytes".into(),
        peak_rss_bytes()?.saturating_sub(rss_before).into(),
    );
    parts.insert(
        "cpu_secs".into(),
        crate::measure::process_cpu_secs("self")?.into(),
    );
    println!("{}", serde_json::Value::Object(parts));
    Ok(())
}

fn unpack(layout: &str, image: &str, rootfs: &str) -> Result<()> {
    let (l, i, r) = (
        CString::new(layout)?,
        CString::new(image)?,
        CString::new(rootfs)?,
    );
    let mut err: *mut TankError = std::ptr::null_mut();
    // SAFETY: the strings live across the call; no cancel, progress or
    // user pointer; `err` is writable.
    let status = unsafe {
        tank_unpack(
            l.as_ptr(),
            i.as_ptr(),
            r.as_ptr(),
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
            &mut err,
        )
    };
    check("tank_unpack", image, status, err)
}

fn pull_unpack(reference: &str, layout: &str, rootfs: &str) -> Result<()> {
    let (i, l, r) = (
        CString::new(reference)?,
        CString::new(layout)?,
        CString::new(rootfs)?,
    );
    let mut err: *mut TankError = std::ptr::null_mut();
    // SAFETY: as in `unpack`; host platform, default jobs, no cache, and
    // the manifest not asked for.
    let status = unsafe {
        tank_pull_unpack(
            i.as_ptr(),
            l.as_ptr(),
            r.as_ptr(),
            std::ptr::null(),
            0,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut err,
        )
    };
    check("tank_pull_unpack", reference, status, err)
}

/// The call's status as a result, its error's message in the failure;
/// frees `err`.
fn check(call: &str, what: &str, status: TankStatus, err: *mut TankError) -> Result<()> {
    let msg = if err.is_null() {
        String::new()
    } else {
        // SAFETY: a non-NULL `err` is a live TankError the call wrote.
        unsafe { CStr::from_ptr(tank_error_message(err)) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: NULL or the call's own error, freed once.
    unsafe { tank_error_free(err) };
    if status != TankStatus::TANK_OK {
        bail!("{call} {what}: {status:?}: {msg}");
    }
    Ok(())
}

/// The decompression limit in-process: each file decompressed in turn to
/// nowhere by the crate tank uses; with `hash`, the sha256 of the
/// compressed and of the decompressed bytes too, on this one thread (the
/// work tank's one pass does besides writing the files). Returns the
/// decompressed bytes.
fn inflate(format: &str, files: &[String], hash: bool) -> Result<u64> {
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    for path in files {
        let file = Hashing {
            inner: File::open(path).with_context(|| path.clone())?,
            hash: hash.then(Sha256::new),
        };
        let mut out = hash.then(Sha256::new);
        let mut reader: Box<dyn Read> = match format {
            "gzip" => Box::new(flate2::read::MultiGzDecoder::new(file)),
            "zstd" => Box::new(zstd::stream::read::Decoder::new(file)?),
            other => bail!("inflate: {other} is neither gzip nor zstd"),
        };
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if let Some(h) = out.as_mut() {
                h.update(&buf[..n]);
            }
            total += n as u64;
        }
        // Keeps the hashes from being optimized away.
        if let Some(h) = out {
            std::hint::black_box(h.finalize());
        }
    }
    Ok(total)
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Option<Sha256>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hash.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

impl<R> Drop for Hashing<R> {
    fn drop(&mut self) {
        if let Some(h) = self.hash.take() {
            std::hint::black_box(h.finalize());
        }
    }
}
