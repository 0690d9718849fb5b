//! `tank_pull` against the real registries: whole images into OCI layouts
//! that skopeo and umoci, which no one here wrote, accept.

mod common;

use common::tools::tool;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

fn index_json(layout: &Path) -> Value {
    let path = layout.join("index.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("index.json is JSON")
}

/// `index.json`'s entries: (ref.name, digest).
fn entries(layout: &Path) -> Vec<(String, String)> {
    let index = index_json(layout);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let mut names: Vec<_> = index["manifests"]
        .as_array()
        .expect("manifests is an array")
        .iter()
        .map(|e| {
            let name = e["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .expect("every entry is named")
                .to_owned();
            assert_eq!(
                e["annotations"]["io.containerd.image.name"], name,
                "both names agree"
            );
            (name, e["digest"].as_str().unwrap().to_owned())
        })
        .collect();
    names.sort();
    names
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algo).join(hex)
}

/// How the pull before a layout check ended: what `ingest/` may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Nothing: every partial became a blob, every lock was let go.
    Succeeded,
    /// A blob's partial (and its lock, while the call's writer winds down),
    /// kept to resume from; nothing else.
    Failed,
}

/// What is wrong with a layout's files, one line each: a file in `blobs/`
/// that does not hash to its name, and in `ingest/` anything the way the
/// pull `ended` does not explain (a temp file left behind, a stray name, a
/// partial of a blob already complete).
fn layout_faults(layout: &Path, ended: Ended) -> Vec<String> {
    let mut faults = Vec::new();
    let names = |dir: &Path| -> Vec<String> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    };
    for algorithm in names(&layout.join("blobs")) {
        if algorithm != "sha256" {
            faults.push(format!(
                "blobs/{algorithm}: not an algorithm this check knows"
            ));
            continue;
        }
        for hex in names(&layout.join("blobs").join(&algorithm)) {
            let path = layout.join("blobs").join(&algorithm).join(&hex);
            let actual = match std::fs::read(&path) {
                Ok(bytes) => sha256(&bytes),
                Err(e) => format!("unreadable ({e})"),
            };
            if actual != format!("sha256:{hex}") {
                faults.push(format!("blobs/sha256/{hex} holds {actual}"));
            }
        }
    }
    let blob_file = |name: &str, ext: &str| {
        name.strip_suffix(ext)
            .and_then(|base| base.strip_prefix("sha256-"))
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|hex| format!("sha256:{hex}"))
    };
    for name in names(&layout.join("ingest")) {
        let fault = match ended {
            Ended::Succeeded => Some("left behind"),
            // A lock outlives its blob's rename by a moment; a partial
            // never does.
            Ended::Failed => match (blob_file(&name, ".partial"), blob_file(&name, ".lock")) {
                (Some(d), _) if blob_path(layout, &d).exists() => {
                    Some("kept for a blob already complete")
                }
                (Some(_), _) | (_, Some(_)) => None,
                (None, None) => Some("left behind"),
            },
        };
        if let Some(fault) = fault {
            faults.push(format!("ingest/{name} {fault}"));
        }
    }
    faults
}

/// After a pull that failed: blobs/ is verified, ingest/ holds only what
/// a next pull resumes from.
#[track_caller]
fn assert_blobs_verified(layout: &Path) {
    let faults = layout_faults(layout, Ended::Failed);
    assert!(faults.is_empty(), "{faults:#?}");
}

/// After a pull that succeeded: blobs/ is verified, ingest/ is empty.
#[track_caller]
fn assert_pulled_clean(layout: &Path) {
    let faults = layout_faults(layout, Ended::Succeeded);
    assert!(faults.is_empty(), "{faults:#?}");
}

/// The check above, on a layout damaged by hand: it finds each fault it
/// names, and nothing more.
#[test]
fn the_layout_check_finds_each_fault_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path();
    let put = |relative: String, bytes: &[u8]| {
        let path = layout.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let hex = |bytes: &[u8]| sha256(bytes)["sha256:".len()..].to_owned();
    put(format!("blobs/sha256/{}", hex(b"sound")), b"sound");
    put(format!("blobs/sha256/{}", hex(b"named")), b"other");
    put("ingest/write-1-0".into(), b"a temp file");
    put(format!("ingest/sha256-{}.partial", hex(b"sound")), b"sou");
    put(
        format!("ingest/sha256-{}.partial", hex(b"unfinished")),
        b"unf",
    );
    put(format!("ingest/sha256-{}.lock", hex(b"unfinished")), b"");

    let faults = |ended| {
        let mut f = layout_faults(layout, ended);
        f.sort();
        f
    };
    let bad_blob = format!("blobs/sha256/{} holds {}", hex(b"named"), sha256(b"other"));
    assert_eq!(
        faults(Ended::Failed),
        [
            bad_blob.clone(),
            format!(
                "ingest/sha256-{}.partial kept for a blob already complete",
                hex(b"sound")
            ),
            "ingest/write-1-0 left behind".to_owned(),
        ]
    );
    let mut after_success = vec![
        bad_blob,
        format!("ingest/sha256-{}.lock left behind", hex(b"unfinished")),
        format!("ingest/sha256-{}.partial left behind", hex(b"unfinished")),
        format!("ingest/sha256-{}.partial left behind", hex(b"sound")),
        "ingest/write-1-0 left behind".to_owned(),
    ];
    after_success.sort();
    assert_eq!(faults(Ended::Succeeded), after_success);
}

fn run_ok(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

fn reference(rig: &Rig, which: Which, repo: &str, tag: &str) -> String {
    format!("{}/{repo}:{tag}", rig.registry(which))
}

fn blob_requests(rig: &Rig, which: Which) -> Vec<tank_testrig::RegistryRequest> {
    rig.registry_requests(which)
        .into_iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .collect()
}

#[test]
fn a_multi_arch_image_for_one_platform() {
    let rig = start(RigOptions::plain_only());
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("new").join("layout");
    let name = reference(&rig, Which::Plain, &idx.repo, &idx.tag);
    let (got, reports) = pull(&name, &layout, Some("linux/arm64"), 0, &Cache::none(), None);
    let got = got.unwrap();
    let arm64 = idx.entry("linux/arm64/v8").unwrap();
    assert_eq!(got.digest, arm64.digest, "the platform's image manifest");
    assert_eq!(got.config.as_ref().unwrap().digest, arm64.config);
    assert_eq!(entries(&layout), [(name.clone(), arm64.digest.clone())]);
    assert_eq!(
        std::fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    // The index too, and the image manifest, as sent.
    assert!(blob_path(&layout, &idx.digest).is_file());
    assert_eq!(
        std::fs::read(blob_path(&layout, &arm64.digest)).unwrap(),
        got.raw
    );
    for d in std::iter::once(&arm64.config).chain(&arm64.layers) {
        assert!(blob_path(&layout, d).is_file(), "{d} missing");
    }
    assert_pulled_clean(&layout);

    let total: u64 = std::iter::once(&arm64.config)
        .chain(&arm64.layers)
        .map(|d| idx.blob_sizes[d])
        .sum();
    assert_eq!(reports.seen.last(), Some(&(total, total)));
    let caller = std::thread::current().id();
    assert!(reports.threads.iter().all(|t| *t == caller));
    assert!(reports.seen.iter().all(|&(d, t)| t == total && d <= total));
    for w in reports
        .at
        .windows(2)
        .take(reports.at.len().saturating_sub(2))
    {
        assert!(w[1] - w[0] >= std::time::Duration::from_millis(95));
    }
}

#[test]
fn platform_choice_on_the_rig_indexes() {
    let rig = start(RigOptions::plain_only());
    let images = &rig.info().images;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new();
    let mut n = 0;
    let mut pull_one = |repo: &str, tag: &str, platform: Option<&str>| {
        n += 1;
        let layout = dir.path().join(format!("l{n}"));
        let name = reference(&rig, Which::Plain, repo, tag);
        pull(&name, &layout, platform, 2, &cache, None).0
    };
    let oci = &images.oci_index;
    let docker = &images.docker_list;
    for (platform, want) in [
        ("linux/amd64", "linux/amd64"),
        ("linux/arm64", "linux/arm64/v8"),
        ("linux/arm64/v8", "linux/arm64/v8"),
        ("linux/aarch64", "linux/arm64/v8"),
        ("linux/arm/v7", "linux/arm/v7"),
        ("linux/arm", "linux/arm/v7"),
    ] {
        let got = pull_one(&oci.repo, &oci.tag, Some(platform)).unwrap();
        assert_eq!(got.digest, oci.entry(want).unwrap().digest, "{platform}");
    }
    // NULL: this host's platform.
    let host = match std::env::consts::ARCH {
        "x86_64" => "linux/amd64",
        "aarch64" => "linux/arm64/v8",
        other => panic!("no fixture for a {other} host"),
    };
    let got = pull_one(&docker.repo, &docker.tag, None).unwrap();
    assert_eq!(got.digest, docker.entry(host).unwrap().digest);

    for (repo, tag, platform) in [
        (&oci.repo, &oci.tag, "linux/arm/v6"),
        (&oci.repo, &oci.tag, "unknown/unknown"),
        (&oci.repo, &oci.tag, "windows/amd64"),
        (&docker.repo, &docker.tag, "linux/arm/v7"),
    ] {
        let e = pull_one(repo, tag, Some(platform)).unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_BAD_INPUT, "no_matching_platform"),
            "{platform}: {e:?}"
        );
        assert!(e.message.contains(platform), "{platform}: {}", e.message);
        assert!(e.message.contains("linux/amd64"), "{}", e.message);
        if platform != "unknown/unknown" {
            assert!(!e.message.contains("unknown/unknown"), "{}", e.message);
        }
    }
    // A single image manifest is pulled as it is, whatever the platform.
    let single = &images.oci_image;
    let got = pull_one(&single.repo, &single.tag, Some("linux/s390x")).unwrap();
    assert_eq!(got.digest, single.digest);
}

#[test]
fn skopeo_and_umoci_accept_the_layout() {
    let rig = start(RigOptions::plain_only());
    let images = &rig.info().images;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let cache = Cache::new();
    let mut names = Vec::new();
    for (repo, tag, platform) in [
        (&images.oci_index.repo, &images.oci_index.tag, "linux/arm64"),
        (
            &images.docker_list.repo,
            &images.docker_list.tag,
            "linux/amd64",
        ),
        (
            &images.docker_image.repo,
            &images.docker_image.tag,
            "linux/amd64",
        ),
    ] {
        let name = reference(&rig, Which::Plain, repo, tag);
        pull(&name, &layout, Some(platform), 0, &cache, None)
            .0
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        names.push(name);
    }
    assert_eq!(entries(&layout).len(), 3);
    let layout_arg = layout.to_str().unwrap();
    for (i, name) in names.iter().enumerate() {
        let inspected = run_ok(tool("skopeo", "skopeo").args([
            "inspect",
            "--raw",
            &format!("oci:{layout_arg}:{name}"),
        ]));
        let manifest: Value = serde_json::from_str(&inspected).unwrap();
        assert!(manifest["layers"].is_array(), "{name}: {inspected}");
        run_ok(tool("skopeo", "skopeo").args(["inspect", &format!("oci:{layout_arg}:{name}")]));
        // skopeo checks every digest as it copies.
        let copy = dir.path().join(format!("copy{i}"));
        run_ok(tool("skopeo", "skopeo").args([
            "copy",
            "--quiet",
            &format!("oci:{layout_arg}:{name}"),
            &format!("dir:{}", copy.display()),
        ]));
        let bundle = dir.path().join(format!("bundle{i}"));
        let mut umoci = tool("umoci", "umoci");
        umoci.arg("unpack");
        if unsafe { libc::geteuid() } != 0 {
            umoci.arg("--rootless");
        }
        run_ok(umoci.args([
            "--image",
            &format!("{layout_arg}:{name}"),
            bundle.to_str().unwrap(),
        ]));
        assert!(bundle.join("rootfs").is_dir(), "umoci unpacked nothing");
        assert!(bundle.join("config.json").is_file());
    }
}

#[test]
fn a_second_pull_sends_no_blob_request_and_one_token_per_pull() {
    let rig = start(RigOptions {
        cdn: false,
        tls: false,
        ..RigOptions::default()
    });
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let name = reference(&rig, Which::Token, &idx.repo, &idx.tag);
    rig.clear_logs();
    // No cache from the caller: the pull keeps one of its own.
    pull(&name, &layout, Some("linux/arm64"), 4, &Cache::none(), None)
        .0
        .unwrap();
    assert_eq!(rig.token_requests().len(), 1, "{:?}", rig.token_requests());
    let first = blob_requests(&rig, Which::Token);
    let arm64 = idx.entry("linux/arm64/v8").unwrap();
    assert_eq!(
        first.iter().filter(|r| r.status == 200).count(),
        1 + arm64.layers.len(),
        "{first:?}"
    );

    rig.clear_logs();
    let (again, reports) = pull(&name, &layout, Some("linux/arm64"), 4, &Cache::none(), None);
    assert_eq!(again.unwrap().digest, arm64.digest);
    assert_eq!(blob_requests(&rig, Which::Token), [], "blobs fetched again");
    let total: u64 = std::iter::once(&arm64.config)
        .chain(&arm64.layers)
        .map(|d| idx.blob_sizes[d])
        .sum();
    assert_eq!(reports.seen.last(), Some(&(total, total)));
    assert_eq!(entries(&layout), [(name, arm64.digest.clone())]);

    // Pulled again under the same name for another platform: the entry is
    // replaced, the other platform's blobs stay.
    let name = reference(&rig, Which::Token, &idx.repo, &idx.tag);
    pull(&name, &layout, Some("linux/amd64"), 4, &Cache::none(), None)
        .0
        .unwrap();
    let amd64 = idx.entry("linux/amd64").unwrap();
    assert_eq!(entries(&layout), [(name, amd64.digest.clone())]);
    assert!(blob_path(&layout, &arm64.layers[0]).is_file());
}

/// The same length, other bytes: what a disk fault, or a hand that edited
/// the layout, leaves in a blob file.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_damaged_blob_in_the_layout_is_fetched_again_not_reused() {
    let rig = start(RigOptions::plain_only());
    let image = &rig.info().images.oci_image;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let name = reference(&rig, Which::Plain, &image.repo, &image.tag);
    pull(&name, &layout, None, 0, &Cache::none(), None)
        .0
        .unwrap();
    assert_pulled_clean(&layout);

    // A layer, the config and the image manifest (stored as sent: an OCI
    // image's), each its size still.
    let damaged = [&image.layers[1], &image.config, &image.digest];
    for d in damaged {
        damage(&blob_path(&layout, d));
    }
    let faults = layout_faults(&layout, Ended::Succeeded);
    assert_eq!(
        faults.len(),
        damaged.len(),
        "the check missed one: {faults:#?}"
    );

    rig.clear_logs();
    let got = pull(&name, &layout, None, 0, &Cache::none(), None)
        .0
        .unwrap();
    assert_eq!(got.digest, image.digest);
    assert_pulled_clean(&layout);
    // The damaged blobs came again; the sound ones were checked, not fetched.
    let mut fetched: Vec<String> = blob_requests(&rig, Which::Plain)
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.uri.rsplit('/').next().unwrap().to_owned())
        .collect();
    fetched.sort();
    let mut want = vec![image.layers[1].clone(), image.config.clone()];
    want.sort();
    assert_eq!(fetched, want);
}

#[test]
fn pulls_into_one_layout_at_once_lose_no_entry_and_no_blob() {
    let rig = start(RigOptions::plain_only());
    let images = &rig.info().images;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let idx = &images.oci_index;
    let arm64 = idx.entry("linux/arm64/v8").unwrap();
    let reg = rig.registry(Which::Plain);
    // The same image by tag and by digest shares every blob; the others
    // are images of their own.
    let names = [
        format!("{reg}/{}:{}", idx.repo, idx.tag),
        format!("{reg}/{}@{}", idx.repo, arm64.digest),
        format!("{reg}/{}:{}", images.oci_image.repo, images.oci_image.tag),
        format!(
            "{reg}/{}:{}",
            images.docker_image.repo, images.docker_image.tag
        ),
    ];
    let cache = Cache::new();
    std::thread::scope(|s| {
        for name in &names {
            let (layout, cache) = (&layout, &cache);
            s.spawn(move || {
                pull(name, layout, Some("linux/arm64"), 2, cache, None)
                    .0
                    .unwrap_or_else(|e| panic!("{name}: {e:?}"))
            });
        }
    });
    let got = entries(&layout);
    let mut want: Vec<_> = names.to_vec();
    want.sort();
    assert_eq!(got.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), want);
    assert_pulled_clean(&layout);
    for image in [&images.oci_image, &images.docker_image] {
        for d in std::iter::once(&image.config).chain(&image.layers) {
            assert!(blob_path(&layout, d).is_file(), "{d} lost");
        }
    }
    for d in std::iter::once(&arm64.config).chain(&arm64.layers) {
        assert!(blob_path(&layout, d).is_file(), "{d} lost");
    }
}

/// Cancels its pull once `at` bytes are reported.
struct CancelAt {
    cancel: Cancel,
    at: u64,
    fired: AtomicBool,
}

unsafe extern "C" fn cancel_at(user: *mut std::ffi::c_void, done: u64, _total: u64) {
    let c = &*user.cast::<CancelAt>();
    if done >= c.at {
        c.fired.store(true, Ordering::SeqCst);
        c.cancel.trigger();
    }
}

#[test]
fn a_cancelled_pull_resumes_where_it_stopped_and_leaves_the_layout_valid() {
    // Through a CDN that paces each connection: three 16 MiB layers, two
    // at a time, take about two seconds, and half is reached at about
    // 0.75 s, inside the first two, so the cancel at half (reports come
    // every 100 ms) lands inside the layers in flight however busy the
    // machine. On bare loopback the whole image could arrive within the
    // first report's spacing, and nothing was left to resume.
    let rig = start(RigOptions {
        many_layers: Some((3, 16)),
        cdn_rate_per_connection: Some(tank_testrig::parse_rate("16MiB/s").unwrap()),
        ..RigOptions::cdn_only()
    });
    let images = &rig.info().images;
    let many = images.many.as_ref().expect("rig has the many-layer image");
    let total: u64 = many.blob_sizes.values().sum();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    // An image already there, whose entry must survive.
    let kept = reference(
        &rig,
        Which::Cdn,
        &images.oci_image.repo,
        &images.oci_image.tag,
    );
    pull(&kept, &layout, None, 0, &Cache::none(), None)
        .0
        .unwrap();
    let before = std::fs::read(layout.join("index.json")).unwrap();

    let name = reference(&rig, Which::Cdn, &many.repo, &many.tag);
    let stop = CancelAt {
        cancel: Cancel::new(),
        at: total / 2,
        fired: AtomicBool::new(false),
    };
    let (r, l) = (c(&name), c(layout.to_str().unwrap()));
    let status = unsafe {
        let mut err: *mut TankError = std::ptr::null_mut();
        let status = tank_pull(
            r.as_ptr(),
            l.as_ptr(),
            std::ptr::null(),
            2,
            std::ptr::null_mut(),
            stop.cancel.0,
            Some(cancel_at),
            (&stop as *const CancelAt).cast_mut().cast(),
            std::ptr::null_mut(),
            &mut err,
        );
        if status != TankStatus::TANK_OK {
            let e = take_error(status, err);
            assert_eq!(e.reason, "cancelled", "{e:?}");
        }
        status
    };
    assert!(stop.fired.load(Ordering::SeqCst));
    assert_eq!(status, TankStatus::TANK_ERR_CANCELLED);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        before,
        "index.json changed"
    );
    assert_blobs_verified(&layout);
    // What is on disk: complete blobs, and partials waiting in ingest/.
    // The call has returned, so its writers have stopped: this is final.
    let mut cut = Vec::new();
    let on_disk: u64 = many
        .blob_sizes
        .iter()
        .map(|(d, &size)| {
            if blob_path(&layout, d).is_file() {
                return size;
            }
            let (algo, hex) = d.split_once(':').unwrap();
            let partial_len =
                std::fs::metadata(layout.join("ingest").join(format!("{algo}-{hex}.partial")))
                    .map_or(0, |m| m.len());
            if partial_len > 0 && partial_len < size {
                cut.push((d.clone(), partial_len));
            }
            partial_len
        })
        .sum();
    assert!(
        !cut.is_empty(),
        "no layer was cut part-way: nothing to resume"
    );

    // Only the resumed call's requests are counted: those the CDN logged
    // from here on. (A request of the cancelled call's that the CDN only
    // picked up later would carry none of the offsets asked for below,
    // and no bytes: tank had closed its connection.)
    let asked_before = rig.cdn_requests().len();
    pull(&name, &layout, None, 2, &Cache::none(), None)
        .0
        .unwrap();
    let resumed: Vec<_> = rig.cdn_requests().split_off(asked_before);
    let sent: u64 = resumed.iter().map(|r| r.bytes).sum();
    assert!(
        sent <= total - on_disk,
        "the resumed pull fetched {sent} bytes, more than the {} missing",
        total - on_disk
    );
    for (digest, partial_len) in &cut {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let from_where_it_stopped = resumed
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains(hex))
            .filter(|r| r.status == 206 && r.offset == *partial_len)
            .count();
        assert_eq!(
            from_where_it_stopped, 1,
            "{digest}, cut at {partial_len}, is resumed once with a range from there: {resumed:#?}"
        );
    }
    assert_eq!(entries(&layout).len(), 2);
    assert_pulled_clean(&layout);
}

#[test]
fn a_pull_that_fails_half_way_leaves_the_old_index() {
    let rig = start(RigOptions::plain_only());
    let images = &rig.info().images;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let kept = reference(
        &rig,
        Which::Plain,
        &images.oci_image.repo,
        &images.oci_image.tag,
    );
    pull(&kept, &layout, None, 0, &Cache::none(), None)
        .0
        .unwrap();
    let before = std::fs::read(layout.join("index.json")).unwrap();

    // The registry loses one layer of another image: its pull fails after
    // the other blobs arrived.
    let broken = &images.docker_image;
    let lost = broken.layers.last().unwrap();
    std::fs::remove_file(rig.blob_data_path(Which::Plain, lost)).unwrap();
    let name = reference(&rig, Which::Plain, &broken.repo, &broken.tag);
    let e = pull(&name, &layout, None, 1, &Cache::none(), None)
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_HTTP, "{e:?}");
    assert!(e.message.contains(lost), "{e:?}");
    assert_eq!(std::fs::read(layout.join("index.json")).unwrap(), before);
    assert!(!blob_path(&layout, lost).exists());
    assert!(
        !blob_path(&layout, &broken.digest).exists(),
        "manifest of a failed pull"
    );
    assert_blobs_verified(&layout);
    let layout_arg = layout.to_str().unwrap();
    run_ok(tool("skopeo", "skopeo").args(["inspect", &format!("oci:{layout_arg}:{kept}")]));
}

#[test]
fn a_cancel_already_fired_sends_nothing_and_makes_nothing() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let cancel = Cancel::new();
    cancel.trigger();
    let name = format!("{}/a/b:c", wire.registry());
    let e = pull(&name, &layout, None, 0, &Cache::none(), Some(&cancel))
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);
    assert!(!wire.touched(), "a request was sent");
    assert!(!layout.exists());
}

#[test]
fn a_layout_that_cannot_be_made_is_an_io_error_naming_it() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let name = format!("{}/a/b:c", wire.registry());
    let e = pull(&name, &file.join("layout"), None, 0, &Cache::none(), None)
        .0
        .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_IO, "io")
    );
    assert!(e.message.contains(file.to_str().unwrap()), "{e:?}");
    assert!(
        !wire.touched(),
        "a request was sent before the layout was checked"
    );

    // index.json that is not an index is not overwritten.
    let rig = start(RigOptions::plain_only());
    let image = &rig.info().images.oci_image;
    let layout = dir.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(layout.join("index.json"), b"not json").unwrap();
    let name = reference(&rig, Which::Plain, &image.repo, &image.tag);
    let e = pull(&name, &layout, None, 0, &Cache::none(), None)
        .0
        .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
    assert!(e.message.contains("index.json"), "{e:?}");
    assert!(
        blob_requests(&rig, Which::Plain).is_empty(),
        "blobs fetched for a layout the pull could not finish"
    );
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        b"not json"
    );
}

#[test]
fn references_through_the_c_abi() {
    let d = format!("sha256:{}", "e".repeat(64));
    for (input, registry, repository, tag, digest, name) in [
        (
            "alpine",
            "registry-1.docker.io",
            "library/alpine",
            Some("latest"),
            None,
            "docker.io/library/alpine:latest".to_owned(),
        ),
        (
            "ghcr.io/o/r:1.2",
            "ghcr.io",
            "o/r",
            Some("1.2"),
            None,
            "ghcr.io/o/r:1.2".to_owned(),
        ),
        (
            "localhost/x",
            "localhost",
            "x",
            Some("latest"),
            None,
            "localhost/x:latest".to_owned(),
        ),
        (
            &format!("localhost:5000/x@{d}"),
            "localhost:5000",
            "x",
            None,
            Some(d.as_str()),
            format!("localhost:5000/x@{d}"),
        ),
        (
            &format!("x:t@{d}"),
            "registry-1.docker.io",
            "library/x",
            Some("t"),
            Some(d.as_str()),
            format!("docker.io/library/x:t@{d}"),
        ),
        (
            "http://127.0.0.1:5000/a/b",
            "http://127.0.0.1:5000",
            "a/b",
            Some("latest"),
            None,
            "127.0.0.1:5000/a/b:latest".to_owned(),
        ),
    ] {
        let got = parse_reference(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(
            got,
            Parsed {
                registry: registry.into(),
                repository: repository.into(),
                tag: tag.map(Into::into),
                digest: digest.map(Into::into),
                name,
            },
            "{input}"
        );
    }
    let long = format!("a/{}", "b".repeat(300));
    for bad in ["a//b", "UPPER/x", "x:tag@sha256:short", long.as_str()] {
        let e = parse_reference(bad).unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{bad}");
    }
}

/// An origin serving one image whose layer's bytes are not the ones its
/// manifest names, and a manifest with a digest that is not one.
#[test]
fn a_hostile_registry_gets_no_blob_and_no_entry_into_the_layout() {
    use common::scripted::{respond, ScriptedServer};
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = b"the bytes the manifest promises".to_vec();
    let manifest = |layer_digest: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": layer.len()}],
        }))
        .unwrap()
    };
    let good = manifest(&sha256(&layer));
    let bad_digest = manifest("sha256:not-hex");
    let (config_path, layer_path) = (
        format!("/v2/x/y/blobs/{}", sha256(&config)),
        format!("/v2/x/y/blobs/{}", sha256(&layer)),
    );
    let o = ScriptedServer::start(move |req, conn| {
        let ct = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
        match req.path() {
            "/v2/x/y/manifests/swapped" => respond(conn, 200, &ct, &good),
            "/v2/x/y/manifests/bad-digest" => respond(conn, 200, &ct, &bad_digest),
            p if p == config_path => respond(conn, 200, &[], &config),
            // Same length, other bytes.
            p if p == layer_path => respond(
                conn,
                200,
                &[],
                b"the bytes the registry swapped in"[..31].as_ref(),
            ),
            _ => respond(conn, 404, &[], b""),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let e = pull(
        &format!("{}/x/y:swapped", o.addr()),
        &layout,
        None,
        0,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_DIGEST_MISMATCH, "{e:?}");
    assert!(
        !layout.join("index.json").exists(),
        "an entry for a bad image"
    );
    assert_blobs_verified(&layout);
    assert!(!blob_path(&layout, &sha256(b"the bytes the manifest promises")).exists());

    let e = pull(
        &format!("{}/x/y:bad-digest", o.addr()),
        &layout,
        None,
        0,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "invalid_manifest_json"),
        "{e:?}"
    );
    assert!(!layout.join("index.json").exists());
}
