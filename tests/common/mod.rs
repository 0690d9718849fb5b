//! Safe wrappers over the C ABI for the integration tests: every call goes
//! through the exported `extern "C"` functions exactly as a C caller makes it.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};
use std::ptr;

pub mod blob_files;
pub mod c_example;
pub mod core;
pub mod hostile_layers;
pub mod layers;
pub mod listing;
pub mod ranged;
pub mod scripted;
pub mod test_ca;
pub mod tools;
pub mod tree;
pub mod unpack;

use sha2::{Digest as _, Sha256};
#[allow(unused_imports)]
pub use tank::ffi::bytes::{
    tank_blob, tank_blob_sized, tank_blob_sized_with, tank_blob_with, tank_bytes_release, TankBytes,
};
#[allow(unused_imports)]
pub use tank::ffi::cache::{
    tank_cache_add_mirror, tank_cache_free, tank_cache_load_registries_conf, tank_cache_new,
    tank_cache_new_with_ttl, tank_cache_set_connections, TankCache, TANK_MIRROR_PULL,
    TANK_MIRROR_RESOLVE,
};
pub use tank::ffi::cancel::{tank_cancel_free, tank_cancel_new, tank_cancel_trigger, TankCancel};
pub use tank::ffi::error::*;
#[allow(unused_imports)]
pub use tank::ffi::manifest::{
    tank_manifest, tank_manifest_release, tank_manifest_with, TankDescriptor, TankManifest,
};
pub use tank::ffi::pull::tank_pull;
pub use tank::ffi::reference::{tank_reference_parse, tank_reference_release, TankReference};
pub use tank::ffi::referrers::tank_referrers;
pub use tank::ffi::to_file::{tank_blob_to_file, TANK_SIZE_UNKNOWN};
pub use tank::ffi::TankStatus;
#[allow(unused_imports)]
pub use tank_testrig::{Rig, RigOptions, Which};

/// A failed call as C sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub status: TankStatus,
    pub http_status: u16,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    /// `os/arch[/variant]` when the descriptor has a platform.
    pub platform: Option<String>,
    pub artifact_type: Option<String>,
    /// In the order C sees them.
    pub annotations: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub media_type: String,
    pub digest: String,
    pub raw: Vec<u8>,
    pub config: Option<Desc>,
    pub layers: Vec<Desc>,
    pub manifests: Vec<Desc>,
    pub artifact_type: Option<String>,
    pub annotations: Vec<(String, String)>,
    pub subject: Option<Desc>,
}

/// An owned cache handle, freed on drop.
pub struct Cache(pub *mut TankCache);

impl Cache {
    pub fn new() -> Cache {
        Cache(tank_cache_new())
    }
    pub fn with_ttl_ms(ms: u64) -> Cache {
        Cache(tank_cache_new_with_ttl(ms))
    }
    pub fn none() -> Cache {
        Cache(ptr::null_mut())
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        unsafe { tank_cache_free(self.0) }
    }
}

// The cache is documented thread-safe; the raw pointer is only shared.
unsafe impl Send for Cache {}
unsafe impl Sync for Cache {}

fn cstr(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| {
        unsafe { CStr::from_ptr(p) }
            .to_str()
            .expect("tank hands out UTF-8")
            .to_owned()
    })
}

pub unsafe fn take_error(status: TankStatus, err: *mut TankError) -> CallError {
    assert!(
        !err.is_null(),
        "a failed call ({status:?}) must fill in *err"
    );
    let e = CallError {
        status: tank_error_status(err),
        http_status: tank_error_http_status(err),
        reason: cstr(tank_error_reason(err)).expect("reason is never NULL"),
        message: cstr(tank_error_message(err)).expect("message is never NULL"),
    };
    assert_eq!(
        e.status, status,
        "the error's status is the returned status"
    );
    tank_error_free(err);
    e
}

fn desc(d: &TankDescriptor) -> Desc {
    let platform = cstr(d.os).map(|os| {
        let mut p = format!("{os}/{}", cstr(d.architecture).unwrap_or_default());
        if let Some(v) = cstr(d.variant) {
            p.push('/');
            p.push_str(&v);
        }
        p
    });
    Desc {
        media_type: cstr(d.media_type).unwrap_or_default(),
        digest: cstr(d.digest).unwrap_or_default(),
        size: d.size,
        platform,
        artifact_type: cstr(d.artifact_type),
        annotations: pairs(d.annotations, d.annotations_len),
    }
}

/// A `key, value, key, value...` array of `len` pairs.
fn pairs(p: *const *const c_char, len: usize) -> Vec<(String, String)> {
    assert_eq!(p.is_null(), len == 0, "annotations: NULL exactly when none");
    let flat = unsafe { slice(p, 2 * len) };
    flat.chunks(2)
        .map(|kv| {
            (
                cstr(kv[0]).expect("a key is never NULL"),
                cstr(kv[1]).expect("a value is never NULL"),
            )
        })
        .collect()
}

unsafe fn slice<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, len)
    }
}

pub fn manifest(
    registry: &str,
    repo: &str,
    reference: &str,
    cache: &Cache,
) -> Result<Fetched, CallError> {
    manifest_with(registry, repo, reference, cache, None)
}

/// `tank_manifest_with` when `cancel` is given, else `tank_manifest`.
pub fn manifest_with(
    registry: &str,
    repo: &str,
    reference: &str,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> Result<Fetched, CallError> {
    let (r, p, f) = (c(registry), c(repo), c(reference));
    unsafe {
        let mut out: TankManifest = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = match cancel {
            None => tank_manifest(
                r.as_ptr(),
                p.as_ptr(),
                f.as_ptr(),
                cache.0,
                &mut out,
                &mut err,
            ),
            Some(cancel) => tank_manifest_with(
                r.as_ptr(),
                p.as_ptr(),
                f.as_ptr(),
                cache.0,
                cancel.0,
                &mut out,
                &mut err,
            ),
        };
        if status != TankStatus::TANK_OK {
            assert!(
                out._private.is_null() && out.raw.is_null(),
                "out written on failure"
            );
            return Err(take_error(status, err));
        }
        assert!(err.is_null(), "err written on success");
        Ok(take_manifest(&mut out))
    }
}

/// Copies a filled-in manifest out and releases it (twice: the second is a
/// no-op).
pub(crate) unsafe fn take_manifest(out: &mut TankManifest) -> Fetched {
    let fetched = Fetched {
        media_type: cstr(out.media_type).unwrap(),
        digest: cstr(out.digest).unwrap(),
        raw: slice(out.raw, out.raw_len).to_vec(),
        config: out.config.as_ref().map(desc),
        layers: slice(out.layers, out.layers_len).iter().map(desc).collect(),
        manifests: slice(out.manifests, out.manifests_len)
            .iter()
            .map(desc)
            .collect(),
        artifact_type: cstr(out.artifact_type),
        annotations: pairs(out.annotations, out.annotations_len),
        subject: out.subject.as_ref().map(desc),
    };
    tank_manifest_release(out);
    assert!(
        out._private.is_null() && out.raw.is_null() && out.raw_len == 0,
        "release zeroes"
    );
    tank_manifest_release(out);
    fetched
}

/// `tank_referrers`.
pub fn referrers(
    registry: &str,
    repo: &str,
    digest: &str,
    artifact_type: Option<&str>,
    cache: &Cache,
) -> Result<Fetched, CallError> {
    let (r, p, d) = (c(registry), c(repo), c(digest));
    let t = opt(artifact_type);
    unsafe {
        let mut out: TankManifest = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_referrers(
            r.as_ptr(),
            p.as_ptr(),
            d.as_ptr(),
            ptr_of(&t),
            cache.0,
            ptr::null_mut(),
            &mut out,
            &mut err,
        );
        if status != TankStatus::TANK_OK {
            assert!(out._private.is_null(), "out written on failure");
            return Err(take_error(status, err));
        }
        assert!(err.is_null(), "err written on success");
        Ok(take_manifest(&mut out))
    }
}

/// `tank_pull` with progress recorded; the image manifest on success.
pub fn pull(
    reference: &str,
    layout: &std::path::Path,
    platform: Option<&str>,
    jobs: u32,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> (Result<Fetched, CallError>, Reports) {
    let reference = c(reference);
    let layout = c(layout.to_str().expect("test paths are UTF-8"));
    let platform = platform.map(c);
    let mut reports = Reports::default();
    let result = unsafe {
        let mut out: TankManifest = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_pull(
            reference.as_ptr(),
            layout.as_ptr(),
            platform.as_ref().map_or(ptr::null(), |p| p.as_ptr()),
            jobs,
            cache.0,
            cancel.map_or(ptr::null_mut(), |c| c.0),
            Some(record),
            (&mut reports as *mut Reports).cast(),
            &mut out,
            &mut err,
        );
        if status == TankStatus::TANK_OK {
            assert!(err.is_null(), "err written on success");
            Ok(take_manifest(&mut out))
        } else {
            assert!(out._private.is_null(), "out written on failure");
            Err(take_error(status, err))
        }
    };
    (result, reports)
}

/// A reference as `tank_reference_parse` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub name: String,
}

pub fn parse_reference(reference: &str) -> Result<Parsed, CallError> {
    let input = c(reference);
    unsafe {
        let mut out: TankReference = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_reference_parse(input.as_ptr(), &mut out, &mut err);
        if status != TankStatus::TANK_OK {
            assert!(out._private.is_null(), "out written on failure");
            return Err(take_error(status, err));
        }
        let parsed = Parsed {
            registry: cstr(out.registry).unwrap(),
            repository: cstr(out.repository).unwrap(),
            tag: cstr(out.tag),
            digest: cstr(out.digest),
            name: cstr(out.name).unwrap(),
        };
        tank_reference_release(&mut out);
        assert!(
            out.name.is_null() && out._private.is_null(),
            "release zeroes"
        );
        tank_reference_release(&mut out);
        Ok(parsed)
    }
}

pub fn blob(registry: &str, repo: &str, digest: &str, cache: &Cache) -> Result<Vec<u8>, CallError> {
    fetch_blob(registry, repo, digest, None, cache, None)
}

/// `tank_blob_sized`: the blob must be exactly `size` bytes.
pub fn blob_sized(
    registry: &str,
    repo: &str,
    digest: &str,
    size: u64,
    cache: &Cache,
) -> Result<Vec<u8>, CallError> {
    fetch_blob(registry, repo, digest, Some(size), cache, None)
}

/// `tank_blob_with` or `tank_blob_sized_with` (as `size` says) when
/// `cancel` is given, else `tank_blob` or `tank_blob_sized`.
pub fn fetch_blob(
    registry: &str,
    repo: &str,
    digest: &str,
    size: Option<u64>,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> Result<Vec<u8>, CallError> {
    let (r, p, d) = (c(registry), c(repo), c(digest));
    unsafe {
        let mut out: TankBytes = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = match (size, cancel) {
            (None, None) => tank_blob(
                r.as_ptr(),
                p.as_ptr(),
                d.as_ptr(),
                cache.0,
                &mut out,
                &mut err,
            ),
            (Some(size), None) => tank_blob_sized(
                r.as_ptr(),
                p.as_ptr(),
                d.as_ptr(),
                size,
                cache.0,
                &mut out,
                &mut err,
            ),
            (None, Some(cancel)) => tank_blob_with(
                r.as_ptr(),
                p.as_ptr(),
                d.as_ptr(),
                cache.0,
                cancel.0,
                &mut out,
                &mut err,
            ),
            (Some(size), Some(cancel)) => tank_blob_sized_with(
                r.as_ptr(),
                p.as_ptr(),
                d.as_ptr(),
                size,
                cache.0,
                cancel.0,
                &mut out,
                &mut err,
            ),
        };
        if status != TankStatus::TANK_OK {
            assert!(
                out.data.is_null() && out._private.is_null(),
                "out written on failure"
            );
            return Err(take_error(status, err));
        }
        assert!(err.is_null(), "err written on success");
        let bytes = slice(out.data, out.len).to_vec();
        tank_bytes_release(&mut out);
        assert!(out.data.is_null() && out.len == 0, "release zeroes");
        Ok(bytes)
    }
}

/// An owned cancel switch, freed on drop.
pub struct Cancel(pub *mut TankCancel);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel(tank_cancel_new())
    }
    pub fn trigger(&self) {
        unsafe { tank_cancel_trigger(self.0) }
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        unsafe { tank_cancel_free(self.0) }
    }
}

// Documented thread-safe; the pointer is only shared.
unsafe impl Send for Cancel {}
unsafe impl Sync for Cancel {}

/// The progress reports of one call, and the threads they came on.
#[derive(Debug, Default)]
pub struct Reports {
    pub seen: Vec<(u64, u64)>,
    pub threads: Vec<std::thread::ThreadId>,
    pub at: Vec<std::time::Instant>,
}

pub(crate) unsafe extern "C" fn record(user: *mut std::ffi::c_void, done: u64, total: u64) {
    let reports = &mut *user.cast::<Reports>();
    reports.seen.push((done, total));
    reports.threads.push(std::thread::current().id());
    reports.at.push(std::time::Instant::now());
}

/// `tank_blob_to_file`, with progress recorded.
pub fn blob_to_file(
    registry: &str,
    repo: &str,
    digest: &str,
    size: Option<u64>,
    path: &std::path::Path,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> (Result<(), CallError>, Reports) {
    let (r, p, d) = (c(registry), c(repo), c(digest));
    let path = c(path.to_str().expect("test paths are UTF-8"));
    let mut reports = Reports::default();
    let result = unsafe {
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_blob_to_file(
            r.as_ptr(),
            p.as_ptr(),
            d.as_ptr(),
            size.unwrap_or(TANK_SIZE_UNKNOWN),
            path.as_ptr(),
            cache.0,
            cancel.map_or(ptr::null_mut(), |c| c.0),
            Some(record),
            (&mut reports as *mut Reports).cast(),
            &mut err,
        );
        if status == TankStatus::TANK_OK {
            assert!(err.is_null(), "err written on success");
            Ok(())
        } else {
            Err(take_error(status, err))
        }
    };
    (result, reports)
}

pub fn c(s: &str) -> CString {
    CString::new(s).expect("test strings have no NUL")
}

pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

pub fn start(opts: RigOptions) -> Rig {
    Rig::start(opts).unwrap_or_else(|e| panic!("the registry rig did not start: {e:#}"))
}

/// The https registries, their CA trusted by this process through
/// `SSL_CERT_FILE`, which the client reads once, when the first call
/// starts it: call this before any tank call of the binary (from its one
/// `OnceLock`, which every test waits for), so no thread reads the
/// environment while it changes.
#[allow(dead_code)]
pub fn start_tls_trusted() -> Rig {
    let rig = start(RigOptions::tls_only());
    let ca = &rig.info().tls.as_ref().expect("tls info").ca_pem;
    // Edition 2021: a safe fn.
    std::env::set_var("SSL_CERT_FILE", ca);
    rig
}

/// A loopback port that accepts connections but is never answered; tells
/// whether anything connected to it. Proves "no request was sent".
pub struct Tripwire {
    listener: std::net::TcpListener,
}

impl Tripwire {
    pub fn new() -> Tripwire {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Tripwire { listener }
    }
    pub fn registry(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }
    pub fn touched(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

// Private-registry settings on a cache (issue 14).

#[allow(unused_imports)]
pub use tank::ffi::cache::{
    tank_cache_load_auth_config, tank_cache_load_certs_dir, tank_cache_set_basic_auth,
    tank_cache_set_identity_token, tank_cache_trust_ca_file,
};

/// A call's outcome as a Result.
pub unsafe fn settled(status: TankStatus, err: *mut TankError) -> Result<(), CallError> {
    if status == TankStatus::TANK_OK {
        assert!(err.is_null());
        Ok(())
    } else {
        Err(take_error(status, err))
    }
}

pub fn opt(s: Option<&str>) -> Option<std::ffi::CString> {
    s.map(c)
}

pub fn ptr_of(s: &Option<std::ffi::CString>) -> *const std::ffi::c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

pub fn set_basic(cache: &Cache, registry: &str, user: &str, password: &str) {
    let (r, u, p) = (c(registry), c(user), c(password));
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_set_basic_auth(cache.0, r.as_ptr(), u.as_ptr(), p.as_ptr(), &mut err),
            err,
        )
    }
    .unwrap();
}

pub fn set_identity(cache: &Cache, registry: &str, token: &str) {
    let (r, t) = (c(registry), c(token));
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_set_identity_token(cache.0, r.as_ptr(), t.as_ptr(), &mut err),
            err,
        )
    }
    .unwrap();
}

pub fn load_auth(cache: &Cache, path: Option<&std::path::Path>) -> Result<(), CallError> {
    let p = opt(path.map(|p| p.to_str().unwrap()));
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_load_auth_config(cache.0, ptr_of(&p), &mut err),
            err,
        )
    }
}

pub fn trust_ca(cache: &Cache, registry: Option<&str>, pem: &str) -> Result<(), CallError> {
    let (r, p) = (opt(registry), c(pem));
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_trust_ca_file(cache.0, ptr_of(&r), p.as_ptr(), &mut err),
            err,
        )
    }
}

pub fn load_certs(cache: &Cache, dir: Option<&str>) -> Result<(), CallError> {
    let d = opt(dir);
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_load_certs_dir(cache.0, ptr_of(&d), &mut err),
            err,
        )
    }
}

/// `tank_cache_add_mirror`.
pub fn add_mirror(
    cache: &Cache,
    registry: &str,
    mirror: &str,
    capabilities: u32,
) -> Result<(), CallError> {
    let (r, m) = (c(registry), c(mirror));
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_add_mirror(cache.0, r.as_ptr(), m.as_ptr(), capabilities, &mut err),
            err,
        )
    }
}

/// `tank_cache_load_registries_conf`; None: the default search.
pub fn load_registries_conf(
    cache: &Cache,
    path: Option<&std::path::Path>,
) -> Result<(), CallError> {
    let p = path.map(|p| c(p.to_str().expect("test paths are UTF-8")));
    let mut err = ptr::null_mut();
    unsafe {
        settled(
            tank_cache_load_registries_conf(cache.0, ptr_of(&p), &mut err),
            err,
        )
    }
}

pub fn private(rig: &Rig) -> tank_testrig::PrivateInfo {
    rig.info()
        .private
        .clone()
        .expect("the rig has private repositories")
}

/// Every message and body excerpt the failures produced, for the secrets
/// check.
#[derive(Default)]
pub struct Said(pub Vec<String>);

impl Said {
    pub fn err(&mut self, e: &CallError) {
        self.0.push(format!("{e:?}"));
    }

    #[track_caller]
    pub fn holds_none_of(&self, secrets: &[&str]) {
        for s in &self.0 {
            for secret in secrets {
                assert!(!s.contains(secret), "a secret in an error: {s}");
            }
        }
    }
}

/// The crate's root, where the scripts and examples are.
pub fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` and fails the test, with its output, unless it succeeds.
pub fn run(cmd: &mut std::process::Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
