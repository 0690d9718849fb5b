//! The committed `include/tank.h` is what cbindgen makes of the source now,
//! and declares the C surface the foundation issue fixed.

use std::path::Path;
use std::process::Command;

// tank_header_config: build.rs's configuration, word for word.
include!("../header_config.rs");

fn fresh_header() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(tank_header_config(root, env!("CARGO_PKG_VERSION")))
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

/// The header's table of reason ids as `(status, id)` pairs, in its order:
/// under ` * Reason ids`, a status line is ` *   TANK_ERR_...`, a reason
/// line ` *     id  text` (a deeper indent continues the text).
fn reason_table(header: &str) -> Vec<(String, String)> {
    let mut lines = header
        .lines()
        .skip_while(|l| !l.starts_with(" * Reason ids"))
        .skip(1);
    let mut status = None;
    let mut table = Vec::new();
    for line in lines.by_ref() {
        let Some(rest) = line.strip_prefix(" *") else {
            break;
        };
        let indent = rest.len() - rest.trim_start().len();
        match indent {
            3 => status = Some(rest.trim().to_owned()),
            5 => {
                let id = rest.split_whitespace().next().unwrap().to_owned();
                let status = status.clone().expect("a reason line before any status");
                table.push((status, id));
            }
            0 | 1 => break,
            _ => {}
        }
    }
    table
}

#[test]
fn header_lists_every_reason_under_its_status() {
    let listed = reason_table(&committed_header());
    let want: Vec<(String, String)> = tank::stevedore::Reason::ALL
        .iter()
        .map(|r| {
            let status = tank::ffi::status::TankStatus::of(r.kind());
            let name = tank::ffi::status::tank_status_name(status as u32);
            let name = unsafe { std::ffi::CStr::from_ptr(name) };
            (name.to_str().unwrap().to_owned(), r.id().to_owned())
        })
        .collect();
    assert!(want.len() >= 30, "found only {want:?}");
    assert_eq!(
        listed, want,
        "tank.h's reason table is not the core's reasons"
    );
}

/// The `version` of `[package]` in Cargo.toml, read from the file itself.
fn cargo_toml_version() -> String {
    let toml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let mut in_package = false;
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(v) = line.strip_prefix("version = ").filter(|_| in_package) {
            return v.trim_matches('"').to_string();
        }
    }
    panic!("Cargo.toml has no [package] version");
}

/// The value of `#define NAME value` in `header`.
fn define<'h>(header: &'h str, name: &str) -> &'h str {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("tank.h does not define {name}"))
        .trim()
}

#[test]
fn version_macros_agree_with_cargo_toml_and_tank_version() {
    let version = cargo_toml_version();
    let header = committed_header();
    assert_eq!(define(&header, "TANK_VERSION"), format!("\"{version}\""));
    let core = version.split(['-', '+']).next().unwrap();
    let parts: Vec<&str> = core.split('.').collect();
    assert_eq!(parts.len(), 3, "{version}");
    for (name, want) in ["MAJOR", "MINOR", "PATCH"].iter().zip(&parts) {
        assert_eq!(
            define(&header, &format!("TANK_VERSION_{name}")),
            *want,
            "TANK_VERSION_{name}"
        );
    }
    assert_eq!(
        define(&header, "TANK_VERSION_NUMBER"),
        "((TANK_VERSION_MAJOR << 16) | (TANK_VERSION_MINOR << 8) | TANK_VERSION_PATCH)"
    );
    let running = unsafe { std::ffi::CStr::from_ptr(tank::ffi::tank_version()) };
    assert_eq!(running.to_str().unwrap(), version, "tank_version()");
    // The macros sit inside the include guard, before any declaration.
    let guard = header.find("#define TANK_H").unwrap();
    let first_decl = header.find("typedef").unwrap();
    let at = header.find("#define TANK_VERSION_MAJOR").unwrap();
    assert!(guard < at && at < first_decl, "version macros misplaced");
}
