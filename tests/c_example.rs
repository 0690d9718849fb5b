//! Builds the C example `tank-pull` (a thin program over `tank_pull`)
//! against the freshly built library and runs it as people do: against the
//! rig for whole pulls, checked through `index.json`, the blobs, skopeo and
//! umoci; against a scripted origin for Ctrl-C and the resume after it.
//! And `tank-tags` (over `tank_tags` and `tank_catalog`) against the rig's
//! token registry, with and without an auth file.

mod common;

use common::c_example::{tank_pull_exe, tank_tags_exe};
use common::scripted::{respond, respond_head, Request, ScriptedServer};
use common::tools::tool;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tank_testrig::IndexEntryInfo;

/// Runs `tank-pull` with stdout and stderr piped (so stderr is no terminal).
fn tank_pull(args: &[&str]) -> Output {
    let exe = tank_pull_exe();
    Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A successful run's stdout: `name:`, `digest:` and `layout:`, in order.
fn pulled(out: &Output) -> (String, String, String) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "tank-pull failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let field = |i: usize, key: &str| {
        lines
            .get(i)
            .and_then(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("line {} of stdout is not {key:?}:\n{stdout}", i + 1))
    };
    assert_eq!(lines.len(), 3, "three lines on stdout:\n{stdout}");
    let got = (field(0, "name:"), field(1, "digest:"), field(2, "layout:"));
    assert!(
        out.stderr.is_empty(),
        "a pull that worked, with stderr no terminal, writes nothing there:\n{}",
        text(&out.stderr)
    );
    got
}

/// A failed run: its exit status and stderr, with nothing on stdout.
fn failed(out: &Output) -> (Option<i32>, String) {
    assert!(
        out.stdout.is_empty(),
        "a failure prints nothing on stdout:\n{}",
        text(&out.stdout)
    );
    (out.status.code(), text(&out.stderr))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap();
    layout.join("blobs").join(algo).join(hex)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The one `index.json` entry named `name` (both name annotations), in a
/// layout whose `oci-layout` and `index.json` are what the spec says.
fn index_entry(layout: &Path, name: &str) -> Value {
    let oci_layout = read_json(&layout.join("oci-layout"));
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index = read_json(&layout.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    let entries = index["manifests"].as_array().expect("manifests");
    let named: Vec<&Value> = entries
        .iter()
        .filter(|e| e["annotations"]["org.opencontainers.image.ref.name"] == name)
        .collect();
    assert_eq!(named.len(), 1, "one entry named {name}: {index}");
    assert_eq!(named[0]["annotations"]["io.containerd.image.name"], name);
    named[0].clone()
}

/// The image manifest, config and layers are all in `blobs/`, each file
/// hashing to its name.
fn assert_image_blobs(layout: &Path, entry: &IndexEntryInfo) {
    for digest in [&entry.digest, &entry.config]
        .into_iter()
        .chain(&entry.layers)
    {
        let bytes = std::fs::read(blob_path(layout, digest))
            .unwrap_or_else(|e| panic!("{digest} missing: {e}"));
        assert_eq!(
            &sha256(&bytes),
            digest,
            "blob file content matches its name"
        );
    }
}

/// skopeo and umoci, which no one here wrote, read the image `name`.
fn assert_tools_accept(layout: &Path, name: &str, platform: &str, scratch: &Path) {
    let image = format!("oci:{}:{name}", layout.display());
    let inspected = run(tool("skopeo", "skopeo").args(["inspect", &image]));
    let inspected: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    let mut parts = platform.split('/');
    assert_eq!(inspected["Os"], parts.next().unwrap(), "{inspected}");
    assert_eq!(
        inspected["Architecture"],
        parts.next().unwrap(),
        "{inspected}"
    );

    let bundle = scratch.join(format!("bundle-{}", platform.replace('/', "-")));
    let mut umoci = tool("umoci", "umoci");
    umoci.arg("unpack");
    if unsafe { libc::geteuid() } != 0 {
        umoci.arg("--rootless");
    }
    run(umoci.args([
        "--image",
        &format!("{}:{name}", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    assert!(bundle.join("rootfs").is_dir(), "umoci unpacked no rootfs");
    assert!(
        bundle.join("config.json").is_file(),
        "umoci wrote no config.json"
    );
}

#[test]
fn four_argument_form_pulls_one_platform_of_the_index_by_tag_and_by_digest() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    let layout_arg = layout.to_str().unwrap();

    let out = tank_pull(&[
        registry,
        &idx.repo,
        &idx.tag,
        layout_arg,
        "--platform",
        "linux/arm64",
    ]);
    let (name, digest, printed_layout) = pulled(&out);
    let arm64 = idx
        .entry("linux/arm64/v8")
        .expect("fixture has linux/arm64/v8");
    assert_eq!(name, format!("{registry}/{}:{}", idx.repo, idx.tag));
    assert_eq!(digest, arm64.digest, "arm64 matches arm64/v8");
    assert_eq!(printed_layout, layout_arg);
    let entry = index_entry(&layout, &name);
    assert_eq!(entry["digest"], arm64.digest.as_str());
    assert_eq!(entry["size"], arm64.size);
    assert_image_blobs(&layout, arm64);
    assert!(
        blob_path(&layout, &idx.digest).is_file(),
        "the index itself is kept"
    );
    let amd64 = idx.entry("linux/amd64").unwrap();
    assert!(
        !blob_path(&layout, &amd64.config).exists(),
        "another platform's config was pulled"
    );
    assert!(
        !layout.join("ingest").exists()
            || std::fs::read_dir(layout.join("ingest")).unwrap().count() == 0,
        "no partial is left behind"
    );
    assert_tools_accept(&layout, &name, "linux/arm64", dir.path());

    // REFERENCE a digest: REGISTRY/REPO@DIGEST, a second entry beside the first.
    let out = tank_pull(&[
        registry,
        &idx.repo,
        &idx.digest,
        layout_arg,
        "--platform=linux/arm/v7",
    ]);
    let (by_digest, digest, _) = pulled(&out);
    let armv7 = idx.entry("linux/arm/v7").expect("fixture has linux/arm/v7");
    assert_eq!(by_digest, format!("{registry}/{}@{}", idx.repo, idx.digest));
    assert_eq!(digest, armv7.digest);
    assert_eq!(
        index_entry(&layout, &by_digest)["digest"],
        armv7.digest.as_str()
    );
    assert_eq!(
        index_entry(&layout, &name)["digest"],
        arm64.digest.as_str(),
        "the first entry stays"
    );
    assert_image_blobs(&layout, armv7);
    assert_tools_accept(&layout, &by_digest, "linux/arm", dir.path());
}

#[test]
fn short_form_with_one_job_pulls_the_host_platform() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    // The host's platform as the fixture spells it; another host names one.
    let (platform, flag) = match std::env::consts::ARCH {
        "x86_64" => ("linux/amd64", None),
        "aarch64" => ("linux/arm64/v8", None),
        _ => ("linux/amd64", Some("--platform=linux/amd64")),
    };
    let wanted = idx.entry(platform).expect("fixture has the platform");

    // With the scheme, which the printed name leaves out.
    let reference = format!("http://{registry}/{}:{}", idx.repo, idx.tag);
    let mut args = vec![reference.as_str(), layout.to_str().unwrap(), "--jobs", "1"];
    args.extend(flag);
    let (name, digest, _) = pulled(&tank_pull(&args));
    assert_eq!(name, format!("{registry}/{}:{}", idx.repo, idx.tag));
    assert_eq!(digest, wanted.digest);
    let entry = index_entry(&layout, &name);
    assert_eq!(entry["digest"], wanted.digest.as_str());
    assert_eq!(entry["size"], wanted.size);
    assert_image_blobs(&layout, wanted);
    let os_arch: Vec<&str> = platform.split('/').take(2).collect();
    assert_tools_accept(&layout, &name, &os_arch.join("/"), dir.path());

    // Again: everything is there, nothing changes.
    let before = std::fs::read(layout.join("index.json")).unwrap();
    assert_eq!(pulled(&tank_pull(&args)).1, wanted.digest);
    assert_eq!(std::fs::read(layout.join("index.json")).unwrap(), before);
}

#[test]
fn failures_print_the_reason_id_and_exit_1() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    let layout_arg = layout.to_str().unwrap();

    let (code, stderr) = failed(&tank_pull(&[
        registry,
        &idx.repo,
        "no-such-tag",
        layout_arg,
    ]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("tank-pull: http_status: ")
            && stderr.contains("no-such-tag")
            && stderr.contains("404"),
        "names the reason, the URL and the status: {stderr}"
    );
    assert!(
        !layout.join("index.json").exists(),
        "a failed pull adds no index.json"
    );

    let (code, stderr) = failed(&tank_pull(&[
        &format!("{registry}/{}:{}", idx.repo, idx.tag),
        layout_arg,
        "--platform",
        "linux/s390x",
    ]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("tank-pull: no_matching_platform: no image for linux/s390x"),
        "{stderr}"
    );
    for on_offer in ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"] {
        assert!(
            stderr.contains(on_offer),
            "lists {on_offer} on offer: {stderr}"
        );
    }
    assert!(!layout.join("index.json").exists());
}

#[test]
fn usage_errors_exit_2_before_any_request() {
    let wire = Tripwire::new();
    let registry = wire.registry();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    let out = layout.to_str().unwrap();
    let short = format!("{registry}/a/b:c");
    let upper = format!("{registry}/A/B:c");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "expected 2 or 4 arguments"),
        (vec![&registry, "a/b", out], "expected 2 or 4 arguments"),
        (vec![&short, out, "x", "y", "z"], "too many arguments"),
        (vec![&short, out, "--jobs"], "a value must follow --jobs"),
        (vec![&short, out, "--jobs", "0"], "--jobs takes"),
        (vec![&short, out, "--jobs", "two"], "--jobs takes"),
        (vec![&short, out, "--jobs=-1"], "--jobs takes"),
        (vec![&short, out, "--platform", "linux"], "--platform takes"),
        (vec![&short, out, "--color"], "unknown option --color"),
        (vec![&short, ""], "an argument is empty"),
        (
            vec!["myhost", "a/b", "c", out],
            "REGISTRY is not a host: write it host:port or https://myhost",
        ),
        (vec![&upper, out], "tank-pull: bad_input: reference"),
        (
            vec![&registry, "a/b", "bad tag", out],
            "tank-pull: bad_input: reference",
        ),
    ];
    for (args, says) in cases {
        let (code, stderr) = failed(&tank_pull(&args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?}: wanted {says:?} in {stderr}"
        );
    }
    assert!(!wire.touched(), "a usage error sent a request");
    assert!(!layout.exists(), "a usage error made the layout");

    let help = tank_pull(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).starts_with("usage: tank-pull REGISTRY REPO REFERENCE OUTDIR"));
}

/// A pty for the child's stderr: the master end's bytes until the child
/// and everyone else closed the slave end.
fn stderr_on_a_terminal(args: &[&str]) -> (Option<i32>, String, String) {
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (-1, -1);
    let made = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(made, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty just handed us both descriptors; each is owned once.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        // EIO once the slave end is closed everywhere: the end of the bytes.
        let _ = std::fs::File::from(master).read_to_end(&mut got);
        got
    });
    let exe = tank_pull_exe();
    let out = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::from(slave))
        .output()
        .unwrap();
    let tty = reader.join().unwrap();
    (out.status.code(), text(&out.stdout), text(&tty))
}

#[test]
fn progress_goes_to_stderr_only_on_a_terminal_and_is_updated_in_place() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let idx = &rig.info().images.oci_index;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    let name = format!("{registry}/{}:{}", idx.repo, idx.tag);
    let (code, stdout, tty) =
        stderr_on_a_terminal(&[&name, layout.to_str().unwrap(), "--platform", "linux/amd64"]);
    assert_eq!(code, Some(0), "{stdout}\n{tty}");
    assert!(stdout.starts_with(&format!("name:   {name}\n")), "{stdout}");
    assert!(
        tty.starts_with(&format!("\r\x1b[K{name}: ")),
        "one line, redrawn in place: {tty:?}"
    );
    let last = tty.trim_end().rsplit("\x1b[K").next().unwrap();
    assert!(
        last.ends_with(", 100%"),
        "the last redraw is the whole image: {tty:?}"
    );
    assert!(
        tty.ends_with('\n') && tty.matches('\n').count() == 1,
        "and one newline after it: {tty:?}"
    );
    // Not a terminal (every other test here): nothing, see `pulled`.
}

/// An image of one config and one 1 MiB layer, served from a scripted
/// origin as `a/b:v1`. The first GET of the layer stalls after `cut` bytes;
/// a `Range: bytes=N-` GET gets the rest.
struct Stalling {
    origin: ScriptedServer,
    layer: Vec<u8>,
    layer_digest: String,
    manifest_digest: String,
}

fn stalling_image(cut: usize) -> Stalling {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (config_digest, layer_digest) = (sha256(config), sha256(&layer));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let manifest_digest = sha256(&manifest);
    let served = layer.clone();
    let (cd, ld) = (config_digest.clone(), layer_digest.clone());
    let origin = ScriptedServer::start(move |req: &Request, conn: &mut TcpStream| {
        let path = req.path();
        if path == "/v2/a/b/manifests/v1" {
            let mt = "application/vnd.oci.image.manifest.v1+json";
            respond(conn, 200, &[("Content-Type", mt)], &manifest);
        } else if path == format!("/v2/a/b/blobs/{cd}") {
            respond(conn, 200, &[], config);
        } else if path == format!("/v2/a/b/blobs/{ld}") {
            let from = req
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            match from {
                Some(n) if n < served.len() => {
                    let range = format!("bytes {n}-{}/{}", served.len() - 1, served.len());
                    respond(conn, 206, &[("Content-Range", &range)], &served[n..]);
                }
                _ => {
                    let len = served.len().to_string();
                    respond_head(conn, 200, &[("Content-Length", &len)]);
                    let _ = conn.write_all(&served[..cut]);
                    let _ = conn.flush();
                    std::thread::sleep(Duration::from_secs(30)); // stalled mid-body
                }
            }
        } else {
            respond(conn, 404, &[], b"");
        }
    });
    Stalling {
        origin,
        layer,
        layer_digest,
        manifest_digest,
    }
}

#[test]
fn sigint_cancels_the_pull_and_the_same_command_resumes_it() {
    let cut = 300_000;
    let img = stalling_image(cut);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    let args = [img.origin.addr(), "a/b", "v1", layout.to_str().unwrap()];
    let exe = tank_pull_exe();
    let mut cmd = Command::new(&exe);
    // tank-pull leaves a SIGINT ignored on entry ignored, as a background
    // job's is; this test's own runner may have been started as one.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, hex) = img.layer_digest.split_once(':').unwrap();
    let partial = layout.join("ingest").join(format!("sha256-{hex}.partial"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < cut as u64 {
        assert!(
            Instant::now() < deadline,
            "the layer's first bytes never reached {}",
            partial.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Instant::now();
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    let (code, stderr) = failed(&out);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(2),
        "SIGINT took {took:?} to end the pull"
    );
    assert!(
        stderr.contains("tank-pull: interrupted")
            && stderr.contains("tank-pull: cancelled: ")
            && stderr.contains("the same command resumes it"),
        "{stderr}"
    );
    assert!(
        !layout.join("index.json").exists(),
        "a cancelled pull names no image"
    );
    assert_eq!(
        std::fs::metadata(&partial).unwrap().len(),
        cut as u64,
        "the partial layer stays for the next pull"
    );

    let (name, digest, _) = pulled(&tank_pull(&args));
    assert_eq!(name, format!("{}/a/b:v1", img.origin.addr()));
    assert_eq!(digest, img.manifest_digest);
    assert_eq!(
        index_entry(&layout, &name)["digest"],
        img.manifest_digest.as_str()
    );
    assert_eq!(
        std::fs::read(blob_path(&layout, &img.layer_digest)).unwrap(),
        img.layer
    );
    let layer_gets: Vec<Option<String>> = img
        .origin
        .requests()
        .iter()
        .filter(|r| r.path().ends_with(&img.layer_digest))
        .map(|r| r.header("range").map(str::to_owned))
        .collect();
    assert_eq!(
        layer_gets,
        [None, Some(format!("bytes={cut}-"))],
        "the second pull asked for the rest only"
    );
}

/// Runs `tank-tags` with only the auth file `auth` (if any) to find: HOME
/// and the XDG and Docker directories point into an empty directory.
fn tank_tags(args: &[&str], auth: Option<&Path>) -> Output {
    let exe = tank_tags_exe();
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&exe);
    cmd.args(args).stdin(Stdio::null());
    for var in [
        "HOME",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_HOME",
        "DOCKER_CONFIG",
    ] {
        cmd.env(var, empty.path());
    }
    match auth {
        Some(file) => cmd.env("REGISTRY_AUTH_FILE", file),
        None => cmd.env_remove("REGISTRY_AUTH_FILE"),
    };
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
}

#[test]
fn tank_tags_lists_tags_and_the_catalog() {
    let rig = start(RigOptions::token_only());
    let registry = rig.registry(Which::Token);
    let image = &rig.info().images.oci_image;
    let private = private(&rig);

    let out = tank_tags(&[registry, &image.repo], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n", image.tag));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));

    // The catalog is alice's: refused without her, listed with her auth file.
    let (code, stderr) = failed(&tank_tags(&[registry], None));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.starts_with("tank-tags: http_status: ") && stderr.contains("401"),
        "{stderr}"
    );
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", private.username, private.password))
    };
    std::fs::write(
        &auth,
        json!({"auths": {registry: {"auth": basic}}}).to_string(),
    )
    .unwrap();
    let out = tank_tags(&[registry], Some(&auth));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    for repo in [&image.repo, &private.oci_image] {
        assert!(listed.contains(&repo.as_str()), "{repo} in {listed:?}");
    }

    let (code, stderr) = failed(&tank_tags(&[registry, "tank/nowhere"], None));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    let (code, stderr) = failed(&tank_tags(&[registry, "Not/Lowercase"], None));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("tank-tags: bad_input: repo"), "{stderr}");
    let (code, stderr) = failed(&tank_tags(&[], None));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("usage: tank-tags"), "{stderr}");
}
