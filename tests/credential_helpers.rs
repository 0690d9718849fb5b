//! Credential helpers, found on PATH as docker finds them: this test
//! binary sets PATH once, for itself, so it is a binary of its own.

mod common;

use common::*;
use std::path::Path;

/// Writes `docker-credential-<name>` into `dir`: it logs each call to
/// `<dir>/<name>.calls` and then runs `body`.
fn helper(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("docker-credential-{name}"));
    let log = dir.join(format!("{name}.calls"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> '{}'\n{body}\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn calls(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(format!("{name}.calls")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn credential_helpers_run_once_per_registry_and_fail_clearly() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let p = private(&rig);
    let reg = rig.registry(Which::Token).to_owned();
    let img = &rig.info().images.oci_image;
    let bin = tempfile::tempdir().unwrap();
    helper(
        bin.path(),
        "alice",
        &format!(
            r#"printf '{{"ServerURL":"%s","Username":"{}","Secret":"{}"}}' "$server""#,
            p.username, p.password
        ),
    );
    helper(
        bin.path(),
        "token",
        &format!(
            r#"printf '{{"Username":"<token>","Secret":"{}"}}'"#,
            p.identity_token
        ),
    );
    helper(
        bin.path(),
        "none",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    helper(
        bin.path(),
        "broken",
        "echo 'the keychain is locked' >&2; exit 3",
    );
    helper(bin.path(), "garbage", "echo 'not json at all'");
    helper(bin.path(), "slow", "sleep 60");
    // The helpers are found on PATH, as docker finds them: PATH is read
    // when a helper starts, so this test's binary sets it once, first.
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::env::set_var("PATH", path);
    let file = |json: serde_json::Value| {
        let f = bin
            .path()
            .join(format!("{}.json", calls(bin.path(), "files").len()));
        std::fs::write(&f, serde_json::to_vec(&json).unwrap()).unwrap();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(bin.path().join("files.calls"))
            .and_then(|mut l| std::io::Write::write_all(&mut l, b"x\n"))
            .unwrap();
        f
    };
    let with_helper = |json: serde_json::Value| {
        let cache = Cache::new();
        load_auth(&cache, Some(&file(json))).unwrap();
        cache
    };

    let cache = with_helper(
        serde_json::json!({"credHelpers": {reg.clone(): "alice"}, "credsStore": "broken"}),
    );
    manifest(&reg, &p.oci_image, &img.tag, &cache).unwrap();
    manifest(&reg, &p.oci_index, "latest", &cache).unwrap();
    assert_eq!(
        calls(bin.path(), "alice"),
        [format!("get {reg}")],
        "once per registry per cache"
    );
    assert!(
        calls(bin.path(), "broken").is_empty(),
        "credHelpers goes before credsStore"
    );

    let cache = with_helper(serde_json::json!({"credsStore": "token"}));
    rig.clear_logs();
    manifest(&reg, &p.oci_image, &img.tag, &cache).unwrap();
    assert_eq!(
        rig.token_requests()[0].method,
        "POST",
        "<token> means an identity token"
    );

    // Not found: anonymous, so a public image still comes.
    let cache = with_helper(serde_json::json!({"credsStore": "none"}));
    manifest(&reg, &img.repo, &img.tag, &cache).unwrap();

    // A registry that never asks who we are never starts a helper.
    let cache = with_helper(serde_json::json!({"credsStore": "broken"}));
    manifest(rig.registry(Which::Plain), &img.repo, &img.tag, &cache).unwrap();
    assert!(
        calls(bin.path(), "broken").is_empty(),
        "a helper ran for an open registry"
    );

    let mut said = Said::default();
    for (name, says) in [
        ("broken", "the keychain is locked"),
        ("garbage", "JSON"),
        ("missing", "cannot run"),
    ] {
        let cache = with_helper(serde_json::json!({"credsStore": name}));
        let e = manifest(&reg, &img.repo, &img.tag, &cache).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_AUTH, "credential_helper"),
            "{name}: {e:?}"
        );
        assert!(e.message.contains(says), "{name}: {e:?}");
        said.err(&e);
    }
    let cache = with_helper(serde_json::json!({"credsStore": "slow"}));
    let started = std::time::Instant::now();
    let e = manifest(&reg, &img.repo, &img.tag, &cache).unwrap_err();
    assert_eq!(e.reason, "credential_helper", "{e:?}");
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(9) && took < std::time::Duration::from_secs(20),
        "{took:?}"
    );
    said.holds_none_of(&[&p.password, &p.identity_token]);
}
