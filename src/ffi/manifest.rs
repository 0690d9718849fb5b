use std::ffi::{c_char, c_void, CString};
use std::ptr;

use super::cache::TankCache;
use super::cancel::TankCancel;
use super::{boundary, c_string, fetch_args, TankError, TankStatus};
use crate::runtime;
use crate::stevedore::cancel::cancellable;
use crate::stevedore::{Descriptor, Manifest, TagOrDigest};

/// A content descriptor: a config, a layer, or an index entry.
#[repr(C)]
pub struct TankDescriptor {
    pub media_type: *const c_char,
    pub digest: *const c_char,
    pub size: u64,
    /// The entry's platform (index entries): NULL when the descriptor has no
    /// platform; "" for a field missing from a platform that is there.
    /// `variant` is NULL whenever it is absent.
    pub os: *const c_char,
    pub architecture: *const c_char,
    pub variant: *const c_char,
    /// OCI 1.1's `artifactType` (a referrer, an artifact's index entry);
    /// NULL when absent.
    pub artifact_type: *const c_char,
    /// The `annotations`, as `annotations_len` key/value pairs sorted by
    /// key (byte order): `annotations[2*i]` is a key, `annotations[2*i+1]`
    /// its value. NULL when there are none.
    pub annotations: *const *const c_char,
    pub annotations_len: usize,
}

/// A fetched manifest. Filled in by `tank_manifest` on `TANK_OK` and owned
/// by the caller until `tank_manifest_release`; every pointer in it stays
/// valid until then.
#[repr(C)]
pub struct TankManifest {
    /// The `Content-Type` as sent, else the JSON's `mediaType`, else the OCI
    /// image manifest type.
    pub media_type: *const c_char,
    /// "sha256:<hex>" (or sha512 when the registry's digest header says so).
    pub digest: *const c_char,
    /// The bytes exactly as the registry sent them.
    pub raw: *const u8,
    pub raw_len: usize,
    /// An image manifest's config; NULL for an index.
    pub config: *const TankDescriptor,
    /// An image manifest's layers, in order; NULL when there are none.
    pub layers: *const TankDescriptor,
    pub layers_len: usize,
    /// An index's or manifest list's entries, with their platforms; NULL
    /// when there are none.
    pub manifests: *const TankDescriptor,
    pub manifests_len: usize,
    /// The manifest's own `artifactType`; NULL when absent.
    pub artifact_type: *const c_char,
    /// The manifest's own `annotations`, laid out as `TankDescriptor`'s.
    pub annotations: *const *const c_char,
    pub annotations_len: usize,
    /// The manifest this one refers to (`subject`, a referrer's); NULL
    /// when absent.
    pub subject: *const TankDescriptor,
    pub _private: *mut c_void,
}

/// Owns everything a `TankManifest` points at.
struct Storage {
    _strings: Vec<CString>,
    /// The key/value pointer arrays of every annotations list.
    _pairs: Vec<Vec<*const c_char>>,
    _raw: Vec<u8>,
    _config: Option<Box<TankDescriptor>>,
    _subject: Option<Box<TankDescriptor>>,
    _layers: Vec<TankDescriptor>,
    _manifests: Vec<TankDescriptor>,
}

/// Lays out `m` for C. Heap buffers do not move when their owners are moved
/// into `Storage`, so the pointers taken here stay valid.
pub(crate) fn fill(m: Manifest) -> TankManifest {
    let mut c = ForC::default();
    let config = m.config.as_ref().map(|d| Box::new(c.descriptor(d)));
    let subject = m.subject().map(|d| Box::new(c.descriptor(&d)));
    let layers: Vec<_> = m.layers.iter().map(|d| c.descriptor(d)).collect();
    let manifests: Vec<_> = m.manifests.iter().map(|d| c.descriptor(d)).collect();
    let media_type = c.text(&m.media_type);
    let digest = c.text(&m.digest.to_string());
    let artifact_type = c.optional(m.artifact_type());
    let (annotations, annotations_len) = c.pairs(&m.annotations());
    let out = TankManifest {
        media_type,
        digest,
        raw: m.raw.as_ptr(),
        raw_len: m.raw.len(),
        config: config.as_deref().map_or(ptr::null(), |c| c as *const _),
        layers: first(&layers),
        layers_len: layers.len(),
        manifests: first(&manifests),
        manifests_len: manifests.len(),
        artifact_type,
        annotations,
        annotations_len,
        subject: subject.as_deref().map_or(ptr::null(), |s| s as *const _),
        _private: ptr::null_mut(),
    };
    let storage = Box::new(Storage {
        _strings: c.strings,
        _pairs: c.pairs,
        _raw: m.raw,
        _config: config,
        _subject: subject,
        _layers: layers,
        _manifests: manifests,
    });
    TankManifest {
        _private: Box::into_raw(storage).cast(),
        ..out
    }
}

/// The strings and pointer arrays handed to C, kept until the release.
#[derive(Default)]
struct ForC {
    strings: Vec<CString>,
    pairs: Vec<Vec<*const c_char>>,
}

impl ForC {
    fn text(&mut self, s: &str) -> *const c_char {
        let c = c_string(s);
        let p = c.as_ptr();
        self.strings.push(c);
        p
    }

    fn optional(&mut self, s: Option<&str>) -> *const c_char {
        s.map_or(ptr::null(), |s| self.text(s))
    }

    /// Key, value, key, value...; NULL and 0 for none.
    fn pairs(&mut self, pairs: &[(String, String)]) -> (*const *const c_char, usize) {
        if pairs.is_empty() {
            return (ptr::null(), 0);
        }
        let flat: Vec<*const c_char> = pairs
            .iter()
            .flat_map(|(k, v)| [self.text(k), self.text(v)])
            .collect();
        let p = flat.as_ptr();
        self.pairs.push(flat);
        (p, pairs.len())
    }

    fn descriptor(&mut self, d: &Descriptor) -> TankDescriptor {
        let platform = d.platform.as_ref();
        let (annotations, annotations_len) = self.pairs(&d.annotations);
        TankDescriptor {
            media_type: self.text(&d.media_type),
            digest: self.text(&d.digest),
            size: d.size,
            os: platform.map_or(ptr::null(), |p| self.text(&p.os)),
            architecture: platform.map_or(ptr::null(), |p| self.text(&p.architecture)),
            variant: self.optional(platform.and_then(|p| p.variant.as_deref())),
            artifact_type: self.optional(d.artifact_type.as_deref()),
            annotations,
            annotations_len,
        }
    }
}

/// The array's address, or NULL when it is empty, so `if (m.layers)` means
/// what a C programmer expects.
fn first(items: &[TankDescriptor]) -> *const TankDescriptor {
    if items.is_empty() {
        ptr::null()
    } else {
        items.as_ptr()
    }
}

/// Fetches the manifest `repo:reference` from `registry` and writes it to
/// `*out` (only on `TANK_OK`).
///
/// `registry` is `host[:port]`, optionally prefixed by `http://` or
/// `https://`; without a prefix, loopback hosts speak HTTP and others HTTPS.
/// `reference` is a tag or a digest; a digest is checked against the bytes.
/// `cache` may be NULL (no token caching). On failure, and when `err` is not
/// NULL, `*err` receives an error the caller frees with `tank_error_free`.
/// Blocks the calling thread; safe from any thread, many at once.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; `out` is NULL or writable;
/// `cache` is NULL or live; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tank_manifest(
    registry: *const c_char,
    repo: *const c_char,
    reference: *const c_char,
    cache: *mut TankCache,
    out: *mut TankManifest,
    err: *mut *mut TankError,
) -> TankStatus {
    tank_manifest_with(registry, repo, reference, cache, ptr::null_mut(), out, err)
}

/// As `tank_manifest`, and `cancel` (NULL: none) ends the call with
/// `TANK_ERR_CANCELLED` when triggered; one already triggered means no
/// request is sent.
///
/// # Safety
/// As for `tank_manifest`; `cancel` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn tank_manifest_with(
    registry: *const c_char,
    repo: *const c_char,
    reference: *const c_char,
    cache: *mut TankCache,
    cancel: *mut TankCancel,
    out: *mut TankManifest,
    err: *mut *mut TankError,
) -> TankStatus {
    boundary(err, || {
        let a = fetch_args(registry, repo, ("reference", reference), cache, out)?;
        let cancel = TankCancel::shared(cancel);
        let manifest = runtime::block_on(async move {
            let client = runtime::client()?;
            let fetch = async {
                let (repo, reference) = a.repo(client, TagOrDigest::parse)?;
                repo.manifest(&reference).await
            };
            cancellable(cancel.as_ref(), fetch).await
        })?;
        out.write(fill(manifest));
        Ok(())
    })
}

/// Frees what `tank_manifest` filled in and zeroes `*m`. NULL, a zeroed
/// struct, or one already released is a no-op.
///
/// # Safety
/// `m` is NULL or points at a struct that is zeroed or was filled by
/// `tank_manifest`.
#[no_mangle]
pub unsafe extern "C" fn tank_manifest_release(m: *mut TankManifest) {
    let Some(m) = m.as_mut() else { return };
    if !m._private.is_null() {
        drop(Box::from_raw(m._private.cast::<Storage>()));
    }
    ptr::write_bytes(m as *mut TankManifest, 0, 1);
}
