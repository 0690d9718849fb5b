//! Mirrors end to end (issue 22, promises 3, 4 and 5): `tank_pull` through
//! the rig's real pull-through cache (distribution in proxy mode, its own
//! token realm) in front of its token registry, and past mirrors that are
//! down, empty, or serve a wrong blob. What each host was asked is read
//! from its own access log (tank's requests by their User-Agent; the
//! cache's own requests upstream carry Go's), what each realm was asked
//! from the token issuers' log, and connect attempts to the dead mirror
//! from this binary's own `connect` (see `mirrors/connects.rs`).

mod common;
#[path = "mirrors/connects.rs"]
mod connects;

use std::path::Path;

use common::tools::tool;
use common::*;
use tank_testrig::{ImageInfo, RegistryRequest, TokenRequest};

const PULL_AND_RESOLVE: u32 = TANK_MIRROR_PULL | TANK_MIRROR_RESOLVE;

#[track_caller]
fn add_mirror(cache: &Cache, registry: &str, mirror: &str, capabilities: u32) {
    common::add_mirror(cache, registry, mirror, capabilities)
        .unwrap_or_else(|e| panic!("adding {mirror} for {registry}: {e:?}"));
}

#[track_caller]
fn load_registries_conf(cache: &Cache, path: &Path) {
    common::load_registries_conf(cache, Some(path))
        .unwrap_or_else(|e| panic!("loading {}: {e:?}", path.display()));
}

/// `127.0.0.1:PORT/repo:tag` on the token registry, the mirrors' upstream.
fn upstream_name(rig: &Rig, image: &ImageInfo) -> String {
    format!(
        "{}/{}:{}",
        rig.registry(Which::Token),
        image.repo,
        image.tag
    )
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// What tank asked `which` (the pull-through cache's own requests to its
/// upstream carry another User-Agent).
fn asked_by_tank(rig: &Rig, which: Which) -> Vec<RegistryRequest> {
    rig.registry_requests(which)
        .into_iter()
        .filter(|r| r.user_agent.starts_with("tank/"))
        .collect()
}

fn blobs(requests: &[RegistryRequest]) -> Vec<&RegistryRequest> {
    requests.iter().filter(|r| r.is_blob()).collect()
}

/// The digests of the blob GETs in `requests`, sorted; not those a token
/// registry answered with its challenge (tank asks with no token first).
fn blob_gets(requests: &[RegistryRequest]) -> Vec<String> {
    let mut got: Vec<String> = requests
        .iter()
        .filter(|r| r.is_blob() && r.method == "GET" && r.status != 401)
        .filter_map(|r| r.reference().map(str::to_owned))
        .collect();
    got.sort();
    got
}

/// The image's config and layers, sorted.
fn image_blobs(image: &ImageInfo) -> Vec<String> {
    let mut all: Vec<String> = std::iter::once(&image.config)
        .chain(&image.layers)
        .cloned()
        .collect();
    all.sort();
    all
}

/// The layout holds `image` under `name`: its manifest by digest, as
/// skopeo reads it, and every blob, which skopeo checks as it copies them
/// out; nothing left in `ingest/`.
#[track_caller]
fn assert_layout_holds(layout: &Path, name: &str, image: &ImageInfo) {
    let at = format!("oci:{}:{name}", layout.display());
    let raw = run(tool("skopeo", "skopeo").args(["inspect", "--raw", &at])).stdout;
    assert_eq!(sha256(&raw), image.digest, "{at}");
    let copy = tempfile::tempdir().unwrap();
    run(tool("skopeo", "skopeo").args([
        "copy",
        "--quiet",
        &at,
        &format!("dir:{}", copy.path().join("out").display()),
    ]));
    for blob in image_blobs(image) {
        let hex = blob.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256(&bytes), blob);
    }
    let ingest: Vec<_> = std::fs::read_dir(layout.join("ingest"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(ingest.is_empty(), "left in ingest/: {ingest:?}");
}

/// `tank_pull` of `name` into a new layout under `dir`, which must succeed.
#[track_caller]
fn pull_ok(name: &str, dir: &Path, layout: &str, cache: &Cache) -> std::path::PathBuf {
    let layout = dir.join(layout);
    pull(name, &layout, None, 4, cache, None)
        .0
        .unwrap_or_else(|e| panic!("pulling {name}: {e:?}"));
    layout
}

// Promise 5: a real pull-through cache.

#[test]
fn a_pull_through_the_cache_works_and_again_with_its_upstream_stopped() {
    let mut rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let cache_registry = rig.registry(Which::PullThrough).to_owned();
    let name = upstream_name(&rig, &image);
    let dir = tempfile::tempdir().unwrap();

    let cache = Cache::new();
    add_mirror(
        &cache,
        rig.registry(Which::Token),
        &cache_registry,
        PULL_AND_RESOLVE,
    );
    let layout = pull_ok(&name, dir.path(), "first", &cache);
    assert_layout_holds(&layout, &name, &image);

    // Tank asked the cache for everything and its upstream for nothing;
    // the cache fetched from the upstream as its own user.
    let through = asked_by_tank(&rig, Which::PullThrough);
    assert_eq!(blob_gets(&through), image_blobs(&image), "{through:#?}");
    assert!(
        through.iter().all(|r| r.status < 400 || r.status == 401),
        "{through:#?}"
    );
    assert_eq!(asked_by_tank(&rig, Which::Token), [], "tank went upstream");
    assert!(!blob_gets(&rig.registry_requests(Which::Token)).is_empty());
    let upstream_user = rig
        .info()
        .pull_through
        .as_ref()
        .unwrap()
        .upstream_username
        .clone();
    for t in rig.token_requests() {
        if t.which == Which::Token {
            assert_eq!(t.subject.as_deref(), Some(upstream_user.as_str()), "{t:?}");
        }
    }

    // The cache keeps what it fetched (it copies blobs in the background).
    let all = image_blobs(&image);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    rig.wait_until_cached(&image.repo, &all).unwrap();
    rig.stop_registry(Which::Token);
    rig.clear_logs();

    let cache = Cache::new();
    add_mirror(
        &cache,
        rig.registry(Which::Token),
        &cache_registry,
        PULL_AND_RESOLVE,
    );
    let layout = pull_ok(&name, dir.path(), "second", &cache);
    assert_layout_holds(&layout, &name, &image);
    assert_eq!(
        blob_gets(&asked_by_tank(&rig, Which::PullThrough)),
        image_blobs(&image)
    );
}

#[test]
fn a_pull_only_mirror_is_not_asked_for_tags() {
    let rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let name = upstream_name(&rig, &image);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    add_mirror(
        &cache,
        rig.registry(Which::Token),
        rig.registry(Which::PullThrough),
        TANK_MIRROR_PULL,
    );
    let layout = pull_ok(&name, dir.path(), "layout", &cache);
    assert_layout_holds(&layout, &name, &image);

    let through = asked_by_tank(&rig, Which::PullThrough);
    assert!(
        through
            .iter()
            .filter(|r| r.is_manifest())
            .all(|r| r.reference() == Some(image.digest.as_str())),
        "the mirror was asked for a tag: {through:#?}"
    );
    assert_eq!(
        blob_gets(&through),
        image_blobs(&image),
        "{through:#?} upstream: {:#?}",
        asked_by_tank(&rig, Which::Token)
    );
    let upstream = asked_by_tank(&rig, Which::Token);
    assert!(
        upstream
            .iter()
            .any(|r| r.is_manifest() && r.reference() == Some(image.tag.as_str())),
        "the tag was not resolved upstream: {upstream:#?}"
    );
    assert_eq!(blobs(&upstream), Vec::<&RegistryRequest>::new());
}

// Promises 3 and 5: fallback past mirrors that fail, each a real server.

#[test]
fn a_dead_mirror_falls_back_to_the_registry_at_one_connect_per_pull() {
    let rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let name = upstream_name(&rig, &image);
    let dead = rig.dead_mirror().to_owned();
    connects::watch(port_of(&dead));
    let dir = tempfile::tempdir().unwrap();

    let cache = Cache::new();
    add_mirror(&cache, rig.registry(Which::Token), &dead, PULL_AND_RESOLVE);
    for (pulls, layout) in [(1, "first"), (2, "second")] {
        rig.clear_logs();
        let layout = pull_ok(&name, dir.path(), layout, &cache);
        assert_layout_holds(&layout, &name, &image);
        // A manifest and four blobs, and the dead mirror was tried once.
        assert_eq!(
            connects::attempts(port_of(&dead)),
            pulls,
            "after pull {pulls}"
        );
        assert_eq!(
            blob_gets(&asked_by_tank(&rig, Which::Token)),
            image_blobs(&image)
        );
    }
}

#[test]
fn an_empty_mirror_falls_back_and_the_manifests_source_is_asked_for_the_blobs() {
    let rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let name = upstream_name(&rig, &image);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    add_mirror(
        &cache,
        rig.registry(Which::Token),
        rig.registry(Which::EmptyMirror),
        PULL_AND_RESOLVE,
    );
    let layout = pull_ok(&name, dir.path(), "layout", &cache);
    assert_layout_holds(&layout, &name, &image);

    // The mirror said 404 to the manifest: the blobs went to the registry
    // that had it, first and only.
    let empty = asked_by_tank(&rig, Which::EmptyMirror);
    assert!(
        empty.iter().any(|r| r.is_manifest() && r.status == 404),
        "{empty:#?}"
    );
    assert_eq!(blobs(&empty), Vec::<&RegistryRequest>::new());
    assert_eq!(
        blob_gets(&asked_by_tank(&rig, Which::Token)),
        image_blobs(&image)
    );
}

#[test]
fn a_mirror_serving_a_wrong_blob_loses_that_blob_to_the_registry() {
    let rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let spoiled = image.layers[1].clone();
    rig.serve_wrong_bytes(Which::WrongBlob, &spoiled).unwrap();
    let name = upstream_name(&rig, &image);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    add_mirror(
        &cache,
        rig.registry(Which::Token),
        rig.registry(Which::WrongBlob),
        PULL_AND_RESOLVE,
    );
    let layout = pull_ok(&name, dir.path(), "layout", &cache);
    assert_layout_holds(&layout, &name, &image);

    // The mirror had the manifest, so it was asked for every blob, the
    // spoiled one once; that one alone then came from the registry.
    let mirror = asked_by_tank(&rig, Which::WrongBlob);
    assert_eq!(blob_gets(&mirror), image_blobs(&image), "{mirror:#?}");
    let upstream = asked_by_tank(&rig, Which::Token);
    assert_eq!(blob_gets(&upstream), [spoiled], "{upstream:#?}");
    assert!(
        upstream.iter().all(|r| !r.is_manifest()),
        "the manifest came from the mirror: {upstream:#?}"
    );
}

#[test]
fn when_every_source_fails_the_error_names_each() {
    let rig = start(RigOptions::mirrors_only());
    // A repository no source has: the registry answers it as the empty
    // mirror does.
    let name = format!("{}/tank/nowhere:v1", rig.registry(Which::Token));
    let upstream = rig.registry(Which::Token).to_owned();
    let dead = rig.dead_mirror().to_owned();
    let empty = rig.registry(Which::EmptyMirror).to_owned();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    add_mirror(&cache, &upstream, &dead, PULL_AND_RESOLVE);
    add_mirror(&cache, &upstream, &empty, PULL_AND_RESOLVE);

    let err = pull(&name, &dir.path().join("layout"), None, 4, &cache, None)
        .0
        .unwrap_err();
    for source in [&dead, &empty, &upstream] {
        assert!(
            err.message.contains(source.as_str()),
            "{source} unnamed: {err:?}"
        );
    }
    // And what each said: a refused connection, and 404s.
    let said = err.message.to_lowercase();
    assert!(
        said.contains("refused") || said.contains("connect"),
        "{err:?}"
    );
    assert!(
        said.contains("404") || said.contains("not found") || said.contains("unknown"),
        "{err:?}"
    );
    assert_eq!(
        asked_by_tank(&rig, Which::EmptyMirror)
            .iter()
            .filter(|r| r.is_manifest())
            .count(),
        1
    );
    assert!(!dir.path().join("layout/index.json").exists());
}

// Promise 4: secrets stay with their host.

#[test]
fn each_host_gets_its_own_credentials_and_no_other_hosts_token() {
    let rig = start(RigOptions::mirrors_only());
    let info = rig.info().clone();
    let private = info.private.clone().unwrap();
    let cache_info = info.pull_through.clone().unwrap();
    let upstream = rig.registry(Which::Token).to_owned();
    let image = ImageInfo {
        repo: private.oci_image.clone(),
        ..info.images.oci_image.clone()
    };
    let name = upstream_name(&rig, &image);
    let dir = tempfile::tempdir().unwrap();

    let cache = Cache::new();
    set_basic(&cache, &upstream, &private.username, &private.password);
    set_basic(
        &cache,
        &cache_info.registry,
        &cache_info.username,
        &cache_info.password,
    );
    add_mirror(&cache, &upstream, &cache_info.registry, PULL_AND_RESOLVE);

    // First pull: everything through the cache, with its own alice.
    let layout = pull_ok(&name, dir.path(), "first", &cache);
    assert_layout_holds(&layout, &name, &image);
    let mut log = rig.token_requests();
    let refused: Vec<&TokenRequest> = log.iter().filter(|t| t.status != 200).collect();
    assert_eq!(
        refused,
        [] as [&TokenRequest; 0],
        "a realm refused what it was sent"
    );
    assert_eq!(
        blob_gets(&asked_by_tank(&rig, Which::PullThrough)),
        image_blobs(&image),
        "the first pull went through the cache"
    );
    // Second pull, new layout: one blob the cache now holds is spoiled, so
    // tank must go upstream for it, with the upstream's alice.
    let all = image_blobs(&image);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    rig.wait_until_cached(&image.repo, &all).unwrap();
    let spoiled = image.layers[0].clone();
    rig.serve_wrong_bytes(Which::PullThrough, &spoiled).unwrap();
    rig.clear_logs();
    let layout = pull_ok(&name, dir.path(), "second", &cache);
    assert_layout_holds(&layout, &name, &image);
    assert_eq!(
        blob_gets(&asked_by_tank(&rig, Which::Token)),
        [spoiled],
        "the spoiled blob came from upstream"
    );

    // Each realm was asked only with its own password: a wrong one is a
    // 401 in the issuer's log. Tank asked the upstream realm as alice; the
    // cache asks it as its own user.
    log.extend(rig.token_requests());
    assert!(
        log.iter().any(|t| t.which == Which::PullThrough),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|t| t.which == Which::Token
                && t.subject.as_deref() == Some(private.username.as_str())),
        "{log:#?}"
    );
    for t in &log {
        assert_eq!(t.status, 200, "a realm refused what it was sent: {t:#?}");
    }
    // Neither registry was sent the other's token: distribution logs why it
    // refuses one its issuer did not sign (see testrig's mirrors test).
    for which in [Which::Token, Which::PullThrough] {
        let said = rig.registry_log(which);
        assert!(
            !said.contains("invalid token"),
            "{} got a foreign token: {said}",
            which.name()
        );
    }
}

// Promises 1 and 2 by their files: each sets up the same mirror.

/// What one pull asked the pull-through cache: (method, path) of tank's
/// requests, sorted (blobs are fetched in parallel), and the queries of
/// those naming a manifest or a blob.
fn pull_through_requests(rig: &Rig) -> (Vec<(String, String)>, Vec<Option<String>>) {
    let asked = asked_by_tank(rig, Which::PullThrough);
    let mut paths: Vec<(String, String)> = asked
        .iter()
        .map(|r| (r.method.clone(), r.path().to_owned()))
        .collect();
    paths.sort();
    let queries = asked
        .iter()
        .filter(|r| r.is_manifest() || r.is_blob())
        .map(|r| r.query().map(str::to_owned))
        .collect();
    (paths, queries)
}

fn ns_of(query: &str) -> Vec<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "ns")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The rig, and what tank asks the pull-through cache for one pull of
/// the OCI image when the cache is set up in code.
fn pull_through_set_up_in_code(dir: &Path) -> (Rig, Vec<(String, String)>) {
    let rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let cache = Cache::new();
    add_mirror(
        &cache,
        rig.registry(Which::Token),
        rig.registry(Which::PullThrough),
        PULL_AND_RESOLVE,
    );
    rig.clear_logs();
    pull_ok(&upstream_name(&rig, &image), dir, "in-code", &cache);
    let (expected, queries) = pull_through_requests(&rig);
    assert!(!expected.is_empty());
    assert!(queries.iter().all(Option::is_none), "{queries:?}");
    (rig, expected)
}

#[test]
fn a_registries_conf_sets_up_the_mirror_add_mirror_does() {
    let dir = tempfile::tempdir().unwrap();
    let (rig, expected) = pull_through_set_up_in_code(dir.path());
    let image = rig.info().images.oci_image.clone();
    let upstream = rig.registry(Which::Token).to_owned();
    let mirror = rig.registry(Which::PullThrough).to_owned();
    let name = upstream_name(&rig, &image);

    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"{upstream}\"\nlocation = \"{upstream}\"\n\
             [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let cache = Cache::new();
    load_registries_conf(&cache, &conf);
    rig.clear_logs();
    let layout = pull_ok(&name, dir.path(), "by-conf", &cache);
    assert_layout_holds(&layout, &name, &image);
    let (asked, queries) = pull_through_requests(&rig);
    assert_eq!(asked, expected);
    assert!(queries.iter().all(Option::is_none), "{queries:?}");
    assert_eq!(asked_by_tank(&rig, Which::Token), []);
}

#[test]
fn a_hosts_toml_sets_up_the_mirror_add_mirror_does_with_ns() {
    let dir = tempfile::tempdir().unwrap();
    let (rig, expected) = pull_through_set_up_in_code(dir.path());
    let image = rig.info().images.oci_image.clone();
    let upstream = rig.registry(Which::Token).to_owned();
    let mirror = rig.registry(Which::PullThrough).to_owned();
    let name = upstream_name(&rig, &image);

    // containerd looks the registry up as host_port_, host:port, _default.
    let (host, port) = upstream.split_once(':').unwrap();
    for dir_name in [
        format!("{host}_{port}_"),
        upstream.clone(),
        "_default".into(),
    ] {
        let certs = dir
            .path()
            .join(format!("certs-{}", dir_name.replace(':', "-")));
        let hosts = certs.join(&dir_name);
        std::fs::create_dir_all(&hosts).unwrap();
        std::fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"http://{upstream}\"\n\n[host.\"http://{mirror}\"]\n\
                 capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
        let cache = Cache::new();
        load_certs(&cache, Some(certs.to_str().unwrap())).unwrap();
        rig.clear_logs();
        let layout = pull_ok(
            &name,
            dir.path(),
            &format!("hosts-{}", dir_name.replace(':', "-")),
            &cache,
        );
        assert_layout_holds(&layout, &name, &image);
        let (asked, queries) = pull_through_requests(&rig);
        assert_eq!(asked, expected, "hosts.toml under {dir_name}");
        // containerd's ?ns= names the upstream to a host that is not it;
        // distribution ignores it, its access log keeps it.
        for q in &queries {
            assert_eq!(
                q.as_deref().map(ns_of),
                Some(vec![upstream.clone()]),
                "hosts.toml under {dir_name}: {queries:?}"
            );
        }
        assert_eq!(
            asked_by_tank(&rig, Which::Token),
            [],
            "hosts.toml under {dir_name}"
        );
    }
}

#[test]
fn a_blocked_registry_fails_before_any_request() {
    let rig = start(RigOptions::mirrors_only());
    let image = rig.info().images.oci_image.clone();
    let upstream = rig.registry(Which::Token).to_owned();
    let mirror = rig.registry(Which::PullThrough).to_owned();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{upstream}\"\nblocked = true\n\
             [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let cache = Cache::new();
    load_registries_conf(&cache, &conf);
    rig.clear_logs();
    connects::watch(port_of(&upstream));
    connects::watch(port_of(&mirror));

    let layout = dir.path().join("layout");
    let err = pull(&upstream_name(&rig, &image), &layout, None, 4, &cache, None)
        .0
        .unwrap_err();
    assert_eq!(err.status, TankStatus::TANK_ERR_BAD_INPUT, "{err:?}");
    assert_eq!(err.reason, "blocked", "{err:?}");
    assert_eq!(connects::attempts(port_of(&upstream)), 0);
    assert_eq!(connects::attempts(port_of(&mirror)), 0);
    assert_eq!(rig.registry_requests(Which::Token), []);
    assert_eq!(rig.registry_requests(Which::PullThrough), []);
    assert!(rig.token_requests().is_empty());
    assert!(!layout.join("index.json").exists());
}

// The README's two examples, as written there, with the rig's addresses in
// place of the example hosts.

/// The code block after `<!-- mirrors: NAME -->` in the README, with
/// `registry.example.com` made the rig's token registry and
/// `mirror.example.com:5000` its pull-through cache (both plain http on
/// loopback).
fn readme_example(name: &str, rig: &Rig) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let marker = format!("<!-- mirrors: {name} -->");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))..];
    let body = &after[after.find("```toml\n").expect("a toml block follows") + 8..];
    let body = &body[..body.find("```").expect("the block ends")];
    let (upstream, mirror) = (rig.registry(Which::Token), rig.registry(Which::PullThrough));
    body.replace(
        "https://registry.example.com",
        &format!("http://{upstream}"),
    )
    .replace("registry.example.com", upstream)
    .replace(
        "https://mirror.example.com:5000",
        &format!("http://{mirror}"),
    )
    .replace("mirror.example.com:5000", mirror)
}

/// A pull of the rig's image by its upstream name through `cache` came
/// from the pull-through cache: every blob from there, nothing from the
/// upstream.
#[track_caller]
fn pulled_through_the_mirror(rig: &Rig, cache: &Cache, dir: &Path) {
    let image = rig.info().images.oci_image.clone();
    let name = upstream_name(rig, &image);
    rig.clear_logs();
    let layout = pull_ok(&name, dir, "readme", cache);
    assert_layout_holds(&layout, &name, &image);
    assert_eq!(
        blob_gets(&asked_by_tank(rig, Which::PullThrough)),
        image_blobs(&image)
    );
    assert_eq!(asked_by_tank(rig, Which::Token), [], "tank went upstream");
}

#[test]
fn the_readmes_registries_conf_example_runs() {
    let rig = start(RigOptions::mirrors_only());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("registries.conf");
    std::fs::write(&conf, readme_example("registries.conf", &rig)).unwrap();
    let cache = Cache::new();
    load_registries_conf(&cache, &conf);
    pulled_through_the_mirror(&rig, &cache, dir.path());
}

#[test]
fn the_readmes_hosts_toml_example_runs() {
    let rig = start(RigOptions::mirrors_only());
    let dir = tempfile::tempdir().unwrap();
    let host_dir = dir.path().join("certs.d").join(rig.registry(Which::Token));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::write(
        host_dir.join("hosts.toml"),
        readme_example("hosts.toml", &rig),
    )
    .unwrap();
    let cache = Cache::new();
    load_certs(&cache, Some(dir.path().join("certs.d").to_str().unwrap())).unwrap();
    pulled_through_the_mirror(&rig, &cache, dir.path());
}
