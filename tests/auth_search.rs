//! Where auth files are found when the caller names none: this binary sets
//! the environment docker and podman read (`REGISTRY_AUTH_FILE`,
//! `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`, `DOCKER_CONFIG`, `HOME`), so it is
//! a binary of its own with one test.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn write_auth(path: &Path, registry: &str, user: &str, password: &str) {
    use base64::Engine;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let json = serde_json::json!({"auths": {registry: {"auth": auth}}});
    std::fs::write(path, serde_json::to_vec(&json).unwrap()).unwrap();
}

#[test]
fn the_standard_search_order_and_the_first_file_with_an_entry_wins() {
    let rig = start(RigOptions::basic_only());
    let basic = rig.info().basic_registry.clone().unwrap();
    let img = &rig.info().images.oci_image;
    let root = tempfile::tempdir().unwrap();
    let at = |p: &str| -> PathBuf { root.path().join(p) };
    let works = |cache: &Cache| manifest(&basic.registry, &img.repo, &img.tag, cache).is_ok();
    let searched = || {
        let cache = Cache::new();
        load_auth(&cache, None).map(|()| cache)
    };
    for var in [
        "REGISTRY_AUTH_FILE",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "DOCKER_CONFIG",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HOME", at("home"));

    // Nothing anywhere: no credentials, no error.
    assert!(!works(&searched().unwrap()));

    // ~/.docker/config.json, then $DOCKER_CONFIG instead of it.
    write_auth(
        &at("home/.docker/config.json"),
        &basic.registry,
        &basic.username,
        &basic.password,
    );
    assert!(works(&searched().unwrap()), "~/.docker/config.json");
    std::env::set_var("DOCKER_CONFIG", at("docker"));
    assert!(
        !works(&searched().unwrap()),
        "DOCKER_CONFIG replaces ~/.docker"
    );
    write_auth(
        &at("docker/config.json"),
        &basic.registry,
        &basic.username,
        &basic.password,
    );
    assert!(works(&searched().unwrap()), "$DOCKER_CONFIG/config.json");

    // podman's files come first: a wrong entry there wins over docker's.
    write_auth(
        &at("home/.config/containers/auth.json"),
        &basic.registry,
        &basic.username,
        "wrong",
    );
    assert!(
        !works(&searched().unwrap()),
        "~/.config/containers/auth.json first"
    );
    std::env::set_var("XDG_CONFIG_HOME", at("xdg-config"));
    assert!(
        works(&searched().unwrap()),
        "XDG_CONFIG_HOME replaces ~/.config"
    );
    write_auth(
        &at("xdg-runtime/containers/auth.json"),
        &basic.registry,
        &basic.username,
        "wrong",
    );
    std::env::set_var("XDG_RUNTIME_DIR", at("xdg-runtime"));
    assert!(!works(&searched().unwrap()), "$XDG_RUNTIME_DIR first");

    // A file without an entry for the registry is passed over.
    write_auth(
        &at("xdg-runtime/containers/auth.json"),
        "other.example",
        "x",
        "y",
    );
    assert!(
        works(&searched().unwrap()),
        "the first file with an entry wins"
    );

    // REGISTRY_AUTH_FILE comes before all, and must exist.
    write_auth(
        &at("explicit.json"),
        &basic.registry,
        &basic.username,
        "wrong",
    );
    std::env::set_var("REGISTRY_AUTH_FILE", at("explicit.json"));
    assert!(!works(&searched().unwrap()), "REGISTRY_AUTH_FILE first");
    std::env::set_var("REGISTRY_AUTH_FILE", at("missing.json"));
    let e = searched()
        .err()
        .expect("a missing REGISTRY_AUTH_FILE is an error");
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_BAD_INPUT, "auth_config"),
        "{e:?}"
    );
    assert!(e.message.contains("missing.json"), "{e:?}");
    // A default file that is there but malformed is an error too.
    std::env::remove_var("REGISTRY_AUTH_FILE");
    std::fs::write(at("xdg-runtime/containers/auth.json"), "{").unwrap();
    assert_eq!(
        searched().err().map(|e| e.reason),
        Some("auth_config".to_owned())
    );
}
