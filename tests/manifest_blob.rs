//! `tank_manifest` and `tank_blob` through the C ABI against a real
//! CNCF distribution registry started on loopback.

mod common;

use common::*;
use std::ptr;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[test]
fn oci_manifest_by_tag_and_by_digest() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = &rig.info().images.oci_image;
    let cache = Cache::new();

    let by_tag = manifest(reg, &img.repo, &img.tag, &cache).unwrap();
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(by_tag.digest, img.digest);
    assert_eq!(
        sha256(&by_tag.raw),
        img.digest,
        "raw is the bytes as pushed"
    );
    let config = by_tag
        .config
        .as_ref()
        .expect("an image manifest has a config");
    assert_eq!(config.digest, img.config);
    assert_eq!(config.size, img.blob_sizes[&img.config]);
    assert_eq!(config.platform, None);
    let layers: Vec<_> = by_tag.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(layers, img.layers);
    assert!(by_tag
        .layers
        .iter()
        .any(|l| l.media_type.ends_with("tar+gzip")));
    assert!(by_tag.manifests.is_empty());

    let by_digest = manifest(reg, &img.repo, &img.digest, &cache).unwrap();
    assert_eq!(by_digest.raw, by_tag.raw);
    assert_eq!(by_digest.digest, img.digest);
}

#[test]
fn oci_index_lists_platforms() {
    let rig = start(RigOptions::plain_only());
    let idx = &rig.info().images.oci_index;
    let m = manifest(
        rig.registry(Which::Plain),
        &idx.repo,
        &idx.tag,
        &Cache::none(),
    )
    .unwrap();
    assert_eq!(m.media_type, OCI_INDEX);
    assert_eq!(m.digest, idx.digest);
    assert!(m.config.is_none() && m.layers.is_empty());
    let platforms: Vec<_> = m
        .manifests
        .iter()
        .map(|d| d.platform.clone().unwrap())
        .collect();
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "unknown/unknown"
        ]
    );
    for (d, want) in m.manifests.iter().zip(&idx.manifests) {
        assert_eq!(d.digest, want.digest);
        assert_eq!(d.size, want.size);
        assert_eq!(d.media_type, want.media_type);
    }
}

#[test]
fn docker_schema2_manifest_and_manifest_list() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let (img, list) = (
        &rig.info().images.docker_image,
        &rig.info().images.docker_list,
    );

    let m = manifest(reg, &img.repo, &img.tag, &Cache::none()).unwrap();
    assert_eq!(m.media_type, DOCKER_MANIFEST);
    assert_eq!(m.digest, img.digest);
    assert_eq!(m.config.unwrap().digest, img.config);
    assert_eq!(m.layers.len(), img.layers.len());

    let l = manifest(reg, &list.repo, &list.tag, &Cache::none()).unwrap();
    assert_eq!(l.media_type, DOCKER_LIST);
    assert_eq!(l.digest, list.digest);
    let platforms: Vec<_> = l
        .manifests
        .iter()
        .map(|d| d.platform.clone().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);

    let child = &list.manifests[1];
    let c = manifest(reg, &list.repo, &child.digest, &Cache::none()).unwrap();
    assert_eq!(c.media_type, DOCKER_MANIFEST);
    assert_eq!(c.config.unwrap().digest, child.config);
}

#[test]
fn blobs_arrive_verified() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = &rig.info().images.oci_image;
    let cache = Cache::new();
    for digest in std::iter::once(&img.config).chain(&img.layers) {
        let bytes = blob(reg, &img.repo, digest, &cache).unwrap();
        assert_eq!(&sha256(&bytes), digest);
        assert_eq!(bytes.len() as u64, img.blob_sizes[digest]);
    }
}

#[test]
fn unknown_tag_and_blob_are_http_404() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = &rig.info().images.oci_image;
    let e = manifest(reg, &img.repo, "no-such-tag", &Cache::none()).unwrap_err();
    assert_eq!(
        (e.status, e.http_status, e.reason.as_str()),
        (TankStatus::TANK_ERR_HTTP, 404, "http_status")
    );
    assert!(
        e.message
            .contains("/v2/tank/oci-image/manifests/no-such-tag"),
        "{}",
        e.message
    );

    let missing = format!("sha256:{}", "0".repeat(64));
    let e = blob(reg, &img.repo, &missing, &Cache::none()).unwrap_err();
    assert_eq!((e.status, e.http_status), (TankStatus::TANK_ERR_HTTP, 404));
}

#[test]
fn bad_digest_is_bad_input_and_sends_nothing() {
    let wire = Tripwire::new();
    let digest64 = "a".repeat(64);
    for bad in [
        "sha256:abc".to_owned(),
        format!("sha256:{}", digest64.to_uppercase()),
        format!("md5:{}", &digest64[..32]),
        digest64.clone(),
        String::new(),
    ] {
        let e = blob(&wire.registry(), "tank/x", &bad, &Cache::none()).unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{bad:?}");
        assert_eq!(e.reason, "bad_input");
        assert!(e.message.starts_with("digest"), "{}", e.message);
    }
    for (repo, reference) in [
        ("tank/../x", "v1"),
        ("Tank/X", "v1"),
        ("tank/x", "bad tag"),
        ("tank/x", "v1\n"),
    ] {
        let e = manifest(&wire.registry(), repo, reference, &Cache::none()).unwrap_err();
        assert_eq!(
            e.status,
            TankStatus::TANK_ERR_BAD_INPUT,
            "{repo:?} {reference:?}"
        );
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn null_and_non_utf8_arguments_are_bad_input() {
    let wire = Tripwire::new();
    let reg = c(&wire.registry());
    let (repo, tag) = (c("tank/x"), c("v1"));
    let digest = c(&format!("sha256:{}", "a".repeat(64)));
    let latin1 = [b'r', 0xe9, b'p', 0];
    unsafe {
        let mut out: TankManifest = std::mem::zeroed();
        let mut err = ptr::null_mut();
        let cases: [(
            *const std::ffi::c_char,
            *const std::ffi::c_char,
            *const std::ffi::c_char,
            bool,
            &str,
        ); 5] = [
            (
                ptr::null(),
                repo.as_ptr(),
                tag.as_ptr(),
                true,
                "registry is NULL",
            ),
            (
                reg.as_ptr(),
                ptr::null(),
                tag.as_ptr(),
                true,
                "repo is NULL",
            ),
            (
                reg.as_ptr(),
                repo.as_ptr(),
                ptr::null(),
                true,
                "reference is NULL",
            ),
            (
                reg.as_ptr(),
                repo.as_ptr(),
                tag.as_ptr(),
                false,
                "out is NULL",
            ),
            (
                reg.as_ptr(),
                latin1.as_ptr().cast(),
                tag.as_ptr(),
                true,
                "repo is not valid UTF-8",
            ),
        ];
        for (r, p, t, with_out, message) in cases {
            let out_ptr = if with_out {
                &mut out as *mut _
            } else {
                ptr::null_mut()
            };
            let status = tank_manifest(r, p, t, ptr::null_mut(), out_ptr, &mut err);
            let e = take_error(status, err);
            assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT);
            assert_eq!(e.message, message);
            // err may be NULL: the status alone still tells.
            assert_eq!(
                tank_manifest(r, p, t, ptr::null_mut(), out_ptr, ptr::null_mut()),
                TankStatus::TANK_ERR_BAD_INPUT
            );
        }
        let mut bytes: TankBytes = std::mem::zeroed();
        let status = tank_blob(
            reg.as_ptr(),
            repo.as_ptr(),
            ptr::null(),
            ptr::null_mut(),
            &mut bytes,
            &mut err,
        );
        assert_eq!(take_error(status, err).message, "digest is NULL");
        let status = tank_blob(
            reg.as_ptr(),
            repo.as_ptr(),
            digest.as_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut err,
        );
        assert_eq!(take_error(status, err).message, "out is NULL");

        // NULL handles and zeroed structs: tests/bad_input.rs.
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn calls_from_many_threads_share_one_cache() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain).to_owned();
    let img = rig.info().images.oci_image.clone();
    let cache = std::sync::Arc::new(Cache::new());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (reg, img, cache) = (reg.clone(), img.clone(), cache.clone());
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let m = manifest(&reg, &img.repo, &img.tag, &cache).unwrap();
                    assert_eq!(m.digest, img.digest);
                    for d in &img.layers {
                        assert_eq!(&sha256(&blob(&reg, &img.repo, d, &cache).unwrap()), d);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn version_and_status_names() {
    let v = unsafe { std::ffi::CStr::from_ptr(tank::ffi::tank_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let name = |s| {
        unsafe { std::ffi::CStr::from_ptr(tank::ffi::status::tank_status_name(s)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(0), "TANK_OK");
    assert_eq!(name(3), "TANK_ERR_DIGEST_MISMATCH");
    assert_eq!(name(7), "TANK_ERR_INTERNAL");
    assert_eq!(name(8), "TANK_ERR_CANCELLED");
    assert_eq!(name(9), "TANK_ERR_IO");
    assert_eq!(name(10), "TANK_ERR_LAYER");
    assert_eq!(name(11), "TANK_UNKNOWN_STATUS");
    assert_eq!(name(u32::MAX), "TANK_UNKNOWN_STATUS");
}
