//! The committed `include/tank.h` is what cbindgen makes of the source now,
//! and declares the C surface the foundation issue fixed.

use std::path::Path;
use std::process::Command;

fn fresh_header() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).unwrap();
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).unwrap()
}

/// The header as committed (or staged): build.rs rewrites the working copy
/// on every build, so only git's copy can show a stale commit.
fn committed_header() -> String {
    let out = Command::new("git")
        .args(["show", ":include/tank.h"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git must be installed to check the committed header");
    assert!(
        out.status.success(),
        "include/tank.h is not in git's index: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn committed_header_is_fresh() {
    assert!(
        committed_header() == fresh_header(),
        "include/tank.h in git differs from what cbindgen generates now: build, then commit include/tank.h"
    );
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn header_declares_the_c_surface() {
    let header = squash(&fresh_header());
    for decl in [
        "typedef struct TankCache TankCache;",
        "typedef struct TankError TankError;",
        "TANK_OK = 0,",
        "TANK_ERR_BAD_INPUT = 1,",
        "TANK_ERR_HTTP = 2,",
        "TANK_ERR_DIGEST_MISMATCH = 3,",
        "TANK_ERR_TRANSPORT = 4,",
        "TANK_ERR_AUTH = 5,",
        "TANK_ERR_PROTOCOL = 6,",
        "TANK_ERR_INTERNAL = 7,",
        "const char *tank_version(void);",
        "struct TankCache *tank_cache_new(void);",
        "struct TankCache *tank_cache_new_with_ttl(uint64_t ttl_ms);",
        "void tank_cache_free(struct TankCache *cache);",
        "TankStatus tank_manifest(const char *registry, const char *repo, const char *reference, struct TankCache *cache, struct TankManifest *out, struct TankError **err);",
        "void tank_manifest_release(struct TankManifest *m);",
        "TankStatus tank_blob(const char *registry, const char *repo, const char *digest, struct TankCache *cache, struct TankBytes *out, struct TankError **err);",
        "void tank_bytes_release(struct TankBytes *b);",
        "TankStatus tank_error_status(const struct TankError *e);",
        "uint16_t tank_error_http_status(const struct TankError *e);",
        "const char *tank_error_reason(const struct TankError *e);",
        "const char *tank_error_message(const struct TankError *e);",
        "void tank_error_free(struct TankError *e);",
        "size_t raw_len;",
        "const struct TankDescriptor *config;",
        "size_t layers_len;",
        "size_t manifests_len;",
        "void *_private;",
    ] {
        assert!(header.contains(decl), "tank.h lacks: {decl}");
    }
}

#[test]
fn header_lists_every_reason_id() {
    let header = fresh_header();
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/stevedore/error.rs"),
    )
    .unwrap();
    let ids: Vec<&str> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(ids.len() >= 20, "found only {ids:?}");
    for id in ids {
        assert!(
            header.contains(id),
            "tank.h does not document reason id {id}"
        );
    }
}
