//! The edges of `tank_blob_to_file` and `tank_pull` through the C ABI
//! (issue 19): every loop that talks to a server ends; a server's sizes
//! cannot overflow tank's sums; files found where tank's own go (a planted
//! symlink, a partial someone else can write, a lock someone else holds)
//! are never followed or trusted; and when a call returns, tank has stopped
//! touching its files, so a retry or the next call starts from exactly what
//! is on disk.
//!
//! A scripted origin serves the faults a real registry will not produce on
//! demand.

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::blob_files::*;
use common::scripted::{respond, respond_head, stream, Request, ScriptedServer};
use common::*;

const MIB: u64 = 1 << 20;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// How long the size of a file is watched after a call returned.
const WATCH: Duration = Duration::from_millis(200);

/// Serves a blob of `total` bytes of `fill` as fast as the client takes it,
/// from where a `Range` asks; counts the bytes sent in `sent` as they go.
fn serve_fill(total: u64, fill: u8, sent: &AtomicU64, req: &Request, conn: &mut TcpStream) {
    let from = range_start(req).unwrap_or(0).min(total);
    let rest = (total - from).to_string();
    match from {
        0 => respond_head(conn, 200, &[("Content-Length", &rest)]),
        n => {
            let range = format!("bytes {n}-{}/{total}", total - 1);
            respond_head(
                conn,
                206,
                &[("Content-Length", &rest), ("Content-Range", &range)],
            )
        }
    }
    // 64 KiB at a time, each counted as it goes out.
    let mut left = total - from;
    while left > 0 {
        let n = stream(conn, left.min(64 * 1024), fill);
        sent.fetch_add(n, Ordering::SeqCst);
        if n == 0 {
            break;
        }
        left -= n;
    }
}

fn fill_digest(total: u64, fill: u8) -> String {
    sha256(&vec![fill; total as usize])
}

/// The size of `path` at once and again after [`WATCH`]: equal when
/// nothing writes it any more.
fn size_now_and_later(path: &Path) -> (u64, u64) {
    let now = len(path);
    std::thread::sleep(WATCH);
    (now, len(path))
}

/// `tank_blob_to_file` on a thread, with a switch to end it.
struct Running {
    cancel: Arc<Cancel>,
    done: mpsc::Receiver<Result<(), CallError>>,
}

fn start_blob_to_file(addr: &str, digest: &str, size: Option<u64>, path: &Path) -> Running {
    let cancel = Arc::new(Cancel::new());
    let (tx, done) = mpsc::channel();
    let (addr, digest, path, c) = (
        addr.to_owned(),
        digest.to_owned(),
        path.to_owned(),
        cancel.clone(),
    );
    std::thread::spawn(move || {
        let r = blob_to_file(&addr, "a/b", &digest, size, &path, &Cache::none(), Some(&c)).0;
        let _ = tx.send(r);
    });
    Running { cancel, done }
}

impl Running {
    /// The call's result if it ends within `bound`; else it is cancelled
    /// (so that it stops) and the test fails.
    fn within(self, bound: Duration) -> Result<(), CallError> {
        match self.done.recv_timeout(bound) {
            Ok(r) => r,
            Err(_) => {
                self.cancel.trigger();
                let late = self.done.recv_timeout(Duration::from_secs(20));
                panic!("the call did not return within {bound:?} (after a cancel: {late:?})");
            }
        }
    }

    /// Cancels the call and returns once it has.
    fn cancel(self) -> Result<(), CallError> {
        self.cancel.trigger();
        self.within(Duration::from_secs(10))
    }
}

#[track_caller]
fn assert_error(r: Result<(), CallError>, status: TankStatus, reason: &str) -> CallError {
    let e = r.expect_err("the call failed");
    assert_eq!((e.status, e.reason.as_str()), (status, reason), "{e:?}");
    e
}

// ------------------------------------------------------------ item 5

#[test]
fn a_206_that_never_starts_where_asked_ends_as_range_not_honoured() {
    let blob = Arc::new(payload());
    let digest = sha256(&blob);
    // A 206 starting at byte 5, whatever was asked (and when nothing was).
    let wrong = blob.clone();
    let o = ScriptedServer::start(move |_, conn| {
        let range = format!("bytes 5-{}/{}", wrong.len() - 1, wrong.len());
        respond(conn, 206, &[("Content-Range", &range)], &wrong[5..]);
    });
    for resumed in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        if resumed {
            leave_partial(&path, &blob[..1000]);
        }
        let before = o.requests().len();
        let started = Instant::now();
        let call = start_blob_to_file(o.addr(), &digest, Some(blob.len() as u64), &path);
        let e = assert_error(
            call.within(Duration::from_secs(10)),
            TankStatus::TANK_ERR_PROTOCOL,
            "range_not_honoured",
        );
        let took = started.elapsed();
        let sent = o.requests().len() - before;
        eprintln!(
            "resumed={resumed}: {sent} requests, {took:?}: {}",
            e.message
        );
        // Well inside the 15 s idle timeout, and a handful of requests.
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!((1..=4).contains(&sent), "{sent} requests");
        assert!(!path.exists());
    }
}

// ------------------------------------------------------------ item 14

#[test]
fn a_content_length_past_u64_on_a_resumed_request_is_a_length_mismatch() {
    let blob = payload();
    let o = ScriptedServer::start(|req, conn| {
        let from = range_start(req).unwrap_or(0);
        let huge = (u64::MAX - 100).to_string();
        let range = format!("bytes {from}-{}/*", u64::MAX);
        respond_head(
            conn,
            206,
            &[("Content-Length", &huge), ("Content-Range", &range)],
        );
        let _ = conn.write_all(&[0u8; 4096]);
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    leave_partial(&path, &blob[..1000]);
    // Size unknown: only the server's Content-Length gives the total.
    let call = start_blob_to_file(o.addr(), &sha256(&blob), None, &path);
    assert_error(
        call.within(Duration::from_secs(10)),
        TankStatus::TANK_ERR_PROTOCOL,
        "length_mismatch",
    );
    assert_eq!(o.requests().len(), 1);
    assert_eq!(range_start(&o.requests()[0]), Some(1000));
}

// ------------------------------------------------------------ item 8

/// Runs one download of the 1 MiB payload into `dir/blob` after `plant`
/// has prepared the directory; returns the origin's requests.
fn download_after(dir: &Path, plant: impl FnOnce(&Path)) -> Vec<Request> {
    let blob = Arc::new(payload());
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| serve(&served, req, conn));
    let path = dir.join("blob");
    plant(&path);
    let call = start_blob_to_file(o.addr(), &sha256(&blob), Some(blob.len() as u64), &path);
    call.within(Duration::from_secs(20)).unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.file_type().is_file(), "the blob is a regular file");
    assert_eq!(std::fs::read(&path).unwrap(), *blob);
    o.requests()
}

#[test]
fn a_symlink_planted_at_the_partial_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    download_after(dir.path(), |path| {
        std::os::unix::fs::symlink(&victim, partial_of(path)).unwrap();
    });
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");

    // Dangling: nothing is created where it points.
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("made-through-a-link");
    download_after(dir.path(), |path| {
        std::os::unix::fs::symlink(&nowhere, partial_of(path)).unwrap();
    });
    assert!(!nowhere.exists(), "a file was created through the symlink");
}

/// A symlink at the lock's name is neither followed nor removed (removing
/// it by name could remove a lock file another caller has just made in its
/// place): the call fails naming it, before any request.
#[test]
fn a_symlink_planted_at_the_lock_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("made-through-a-link");
    let blob = Arc::new(payload());
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| serve(&served, req, conn));
    let path = dir.path().join("blob");
    std::os::unix::fs::symlink(&nowhere, lock_of(&path)).unwrap();
    let call = start_blob_to_file(o.addr(), &sha256(&blob), Some(blob.len() as u64), &path);
    let e = call.within(Duration::from_secs(20)).unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_IO, "io"),
        "{e:?}"
    );
    assert!(e.message.contains("blob.lock"), "{e:?}");
    assert!(
        !nowhere.exists(),
        "a lock file was created through the symlink"
    );
    assert!(
        std::fs::symlink_metadata(lock_of(&path))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was removed"
    );
    assert!(o.requests().is_empty(), "{:?}", o.requests());
    assert!(!path.exists());
}

/// A partial holding the blob's first bytes, as `set_up` leaves it: when it
/// is not trusted the download starts from zero and still succeeds.
fn untrusted_partial_case(set_up: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    let requests = download_after(dir.path(), |path| {
        let partial = partial_of(path);
        std::fs::write(&partial, &payload()[..1000]).unwrap();
        set_up(&partial);
    });
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        range_start(&requests[0]),
        None,
        "an untrusted partial was resumed"
    );
}

#[test]
fn a_partial_others_can_write_is_not_resumed() {
    for mode in [0o666, 0o620, 0o602] {
        untrusted_partial_case(|p| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        });
    }
}

#[test]
fn a_partial_owned_by_someone_else_is_not_resumed() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot give a file to another user; case skipped");
        return;
    }
    untrusted_partial_case(|p| std::os::unix::fs::chown(p, Some(54321), Some(54321)).unwrap());
}

#[test]
fn a_partial_with_a_second_name_is_not_resumed_and_its_other_name_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    let head = payload()[..1000].to_vec();
    let requests = download_after(dir.path(), |path| {
        std::fs::write(&victim, &head).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::hard_link(&victim, partial_of(path)).unwrap();
    });
    assert_eq!(range_start(&requests[0]), None);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        head,
        "the other name was written"
    );
}

#[test]
fn a_trusted_partial_is_resumed_and_the_blob_gets_the_usual_mode() {
    let dir = tempfile::tempdir().unwrap();
    let requests = download_after(dir.path(), |path| {
        leave_partial(path, &payload()[..1000]);
        std::fs::set_permissions(partial_of(path), std::fs::Permissions::from_mode(0o644)).unwrap();
    });
    assert_eq!(range_start(&requests[0]), Some(1000));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only the blob is left"
    );
    let mode = std::fs::metadata(dir.path().join("blob")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o666 & !umask(), "as any file the caller makes");
}

/// The test process's umask, read without changing it.
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc is mounted");
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

#[test]
fn a_partial_swapped_for_another_file_mid_download_is_not_committed() {
    let blob = Arc::new(payload());
    let half = blob.len() / 2;
    let swapped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (served, go_on) = (blob.clone(), swapped.clone());
    let o = ScriptedServer::start(move |_, conn| {
        let size = served.len().to_string();
        respond_head(conn, 200, &[("Content-Length", &size)]);
        let _ = conn.write_all(&served[..half]);
        let _ = conn.flush();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !go_on.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = conn.write_all(&served[half..]);
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let call = start_blob_to_file(o.addr(), &sha256(&blob), Some(blob.len() as u64), &path);
    eventually("half the blob on disk", || {
        len(&partial_of(&path)) == half as u64
    });
    // Someone with write access to the directory puts their own file at
    // the partial's name; it must never become `path`.
    std::fs::rename(partial_of(&path), dir.path().join("moved")).unwrap();
    std::fs::write(partial_of(&path), b"someone else's bytes").unwrap();
    swapped.store(true, Ordering::SeqCst);
    let e = assert_error(
        call.within(Duration::from_secs(20)),
        TankStatus::TANK_ERR_IO,
        "io",
    );
    assert!(e.message.contains("replaced"), "{e:?}");
    assert!(!path.exists(), "a file tank did not write is at the path");
}

#[test]
fn a_fifo_at_the_path_does_not_block_the_call() {
    let dir = tempfile::tempdir().unwrap();
    download_after(dir.path(), |path| {
        let name = c(path.to_str().unwrap());
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    });
}

// ------------------------------------------------------------ item 6

/// A process of our own that holds `lock` (flock) until killed.
fn lock_holder(lock: &Path) -> Child {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 9>>"$0" && flock -x 9 && echo held && exec sleep 600"#)
        .arg(lock)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "held",
        "the `flock` tool (util-linux) is needed to hold a lock from another process"
    );
    child
}

/// Kills the holder when the test ends, however it ends.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_lock_held_by_a_live_process_waits_until_cancelled_and_a_dead_holders_lock_is_taken() {
    let blob = Arc::new(payload());
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| serve(&served, req, conn));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let mut holder = Holder(lock_holder(&lock_of(&path)));
    let digest = sha256(&blob);

    let call = start_blob_to_file(o.addr(), &digest, Some(blob.len() as u64), &path);
    // Waiting for the holder: no request goes out however long it waits.
    assert!(call.done.recv_timeout(Duration::from_millis(300)).is_err());
    assert!(o.requests().is_empty());
    let triggered = Instant::now();
    assert_error(call.cancel(), TankStatus::TANK_ERR_CANCELLED, "cancelled");
    assert!(triggered.elapsed() < Duration::from_secs(2));

    let call = start_blob_to_file(o.addr(), &digest, Some(blob.len() as u64), &path);
    holder.0.kill().unwrap();
    holder.0.wait().unwrap();
    call.within(Duration::from_secs(20)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *blob);
    assert!(!lock_of(&path).exists());
}

// ------------------------------------------------------------ item 11

#[test]
fn a_cancelled_call_leaves_a_partial_that_stays_put_and_the_next_call_resumes_from_it() {
    let total = 64 * MIB;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let o = ScriptedServer::start(move |req, conn| serve_fill(total, b'c', &counter, req, conn));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let digest = fill_digest(total, b'c');

    let call = start_blob_to_file(o.addr(), &digest, Some(total), &path);
    eventually("4 MiB on disk", || len(&partial_of(&path)) >= 4 * MIB);
    assert_error(call.cancel(), TankStatus::TANK_ERR_CANCELLED, "cancelled");
    let (at_return, later) = size_now_and_later(&partial_of(&path));
    assert_eq!(at_return, later, "the partial grew after the call returned");
    let mode = std::fs::metadata(partial_of(&path)).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600, "a partial is its owner's alone");

    let call = start_blob_to_file(o.addr(), &digest, Some(total), &path);
    call.within(Duration::from_secs(60)).unwrap();
    let reqs = o.requests();
    assert_eq!(
        range_start(&reqs[1]),
        Some(at_return),
        "the next call resumes from what the partial held at return: {reqs:?}"
    );
    // 64 MiB is big enough for ranges: this server answers `bytes=N-`
    // but not `bytes=N-M` (200), so the pieces give way to one stream
    // from where the bytes stop. Nothing below what was kept is asked for.
    for r in &reqs[1..] {
        let first = r
            .header("range")
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(first.is_some_and(|f| f >= at_return), "{r:?}");
    }
    assert!(reqs.len() <= 2 + 4, "{reqs:?}");
    assert_eq!(len(&path), total);
}

#[test]
fn a_blob_cut_every_512_kib_costs_its_bytes_once() {
    let total = 4 * MIB;
    let cut = 512 * 1024;
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    // Each answer promises the rest and sends at most `cut` bytes of it,
    // then closes cleanly: every byte sent arrives.
    let o = ScriptedServer::start(move |req, conn| {
        let from = range_start(req).unwrap_or(0);
        let rest = (total - from).to_string();
        let range = format!("bytes {from}-{}/{total}", total - 1);
        let status = if from == 0 { 200 } else { 206 };
        respond_head(
            conn,
            status,
            &[("Content-Length", &rest), ("Content-Range", &range)],
        );
        counter.fetch_add(stream(conn, cut.min(total - from), b'r'), Ordering::SeqCst);
        let _ = conn.flush();
        let _ = conn.shutdown(Shutdown::Write);
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let call = start_blob_to_file(o.addr(), &fill_digest(total, b'r'), Some(total), &path);
    call.within(Duration::from_secs(60)).unwrap();
    let sent = sent.load(Ordering::SeqCst);
    let starts: Vec<_> = o.requests().iter().map(range_start).collect();
    eprintln!(
        "{total} bytes cost {sent} sent over {} requests: {starts:?}",
        starts.len()
    );
    assert!(sent <= total + 64 * 1024, "{sent} bytes sent for {total}");
    assert_eq!(len(&path), total);
}

/// An origin for `a/b:v1`: a config, a big layer streamed as fast as the
/// client reads, and a small layer that answers 404 once the big one has
/// sent `fail_after` bytes.
struct Image {
    origin: ScriptedServer,
    big: String,
}

fn image_with_a_failing_layer(big_size: u64, fail_after: u64) -> Image {
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let config_digest = sha256(&config);
    let big = fill_digest(big_size, b'b');
    let small = sha256(b"small layer");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": big, "size": big_size},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": small, "size": 11},
        ],
    })
    .to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let (big_path, small_path) = (
        format!("/v2/a/b/blobs/{big}"),
        format!("/v2/a/b/blobs/{small}"),
    );
    let config_path = format!("/v2/a/b/blobs/{config_digest}");
    let origin = ScriptedServer::start(move |req, conn| {
        let p = req.path();
        if p == "/v2/a/b/manifests/v1" {
            respond(
                conn,
                200,
                &[("Content-Type", OCI_MANIFEST)],
                manifest.as_bytes(),
            );
        } else if p == config_path {
            respond(conn, 200, &[], &config);
        } else if p == big_path {
            serve_fill(big_size, b'b', &sent, req, conn);
        } else if p == small_path {
            let deadline = Instant::now() + Duration::from_secs(20);
            while sent.load(Ordering::SeqCst) < fail_after && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            respond(conn, 404, &[], b"");
        } else {
            respond(conn, 404, &[], b"");
        }
    });
    Image { origin, big }
}

#[test]
fn a_pull_whose_sibling_blob_fails_has_stopped_writing_when_it_returns() {
    let image = image_with_a_failing_layer(64 * MIB, 4 * MIB);
    let layout = tempfile::tempdir().unwrap();
    let reference = format!("{}/a/b:v1", image.origin.addr());
    let (result, _) = pull(&reference, layout.path(), None, 4, &Cache::none(), None);
    let e = result.expect_err("the pull failed");
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 404),
        "{e:?}"
    );
    let hex = image.big.strip_prefix("sha256:").unwrap();
    let partial = layout
        .path()
        .join("ingest")
        .join(format!("sha256-{hex}.partial"));
    let (at_return, later) = size_now_and_later(&partial);
    assert!(at_return > 0, "the big layer had started");
    assert_eq!(at_return, later, "the partial grew after the pull returned");
}

#[test]
fn a_cancelled_pull_has_stopped_writing_when_it_returns() {
    let image = image_with_a_failing_layer(64 * MIB, u64::MAX);
    let layout = tempfile::tempdir().unwrap();
    let reference = format!("{}/a/b:v1", image.origin.addr());
    let hex = image.big.strip_prefix("sha256:").unwrap().to_owned();
    let partial = layout
        .path()
        .join("ingest")
        .join(format!("sha256-{hex}.partial"));
    let cancel = Arc::new(Cancel::new());
    let (tx, done) = mpsc::channel();
    {
        let (c, root) = (cancel.clone(), layout.path().to_owned());
        std::thread::spawn(move || {
            let _ = tx.send(pull(&reference, &root, None, 4, &Cache::none(), Some(&c)).0);
        });
    }
    eventually("4 MiB of the big layer on disk", || {
        len(&partial) >= 4 * MIB
    });
    cancel.trigger();
    let result = done
        .recv_timeout(Duration::from_secs(10))
        .expect("the pull returned");
    let e = result.expect_err("cancelled");
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED, "{e:?}");
    let (at_return, later) = size_now_and_later(&partial);
    assert_eq!(at_return, later, "the partial grew after the pull returned");
}
