//! `tank_blob_to_file` through the C ABI: against a real registry for what
//! one does (whole pulls, no refetch, one download for two callers, real
//! `Range` answers), and against a scripted origin for what a registry will
//! not do on demand (cut a body at byte N, ignore Range, answer 416, stall).

mod common;

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::blob_files::*;
use common::scripted::{reset, respond, respond_head, Request, ScriptedServer};
use common::*;

/// The file names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

#[test]
fn a_blob_lands_whole_and_verified_with_progress_on_the_calling_thread() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = rig.info().images.oci_image.clone();
    let dir = tempfile::tempdir().unwrap();
    for (i, digest) in img.layers.iter().chain([&img.config]).enumerate() {
        let size = img.blob_sizes[digest];
        // Known size for layers, unknown for the config.
        let known = (i < img.layers.len()).then_some(size);
        let path = dir.path().join(digest.replace(':', "-"));
        let (result, reports) =
            blob_to_file(reg, &img.repo, digest, known, &path, &Cache::none(), None);
        result.unwrap();
        assert_eq!(sha256(&std::fs::read(&path).unwrap()), *digest);
        assert_eq!(reports.seen.last(), Some(&(size, size)), "{reports:?}");
        let me = std::thread::current().id();
        assert!(
            reports.threads.iter().all(|t| *t == me),
            "progress on tank's threads"
        );
    }
    let mut expected: Vec<String> = img
        .layers
        .iter()
        .chain([&img.config])
        .map(|d| d.replace(':', "-"))
        .collect();
    expected.sort();
    assert_eq!(names(dir.path()), expected, "no partial or lock file left");
}

#[test]
fn a_path_that_holds_the_blob_is_not_fetched_again() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = rig.info().images.oci_image.clone();
    let layer = &img.layers[0];
    let size = img.blob_sizes[layer];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer");
    blob_to_file(
        reg,
        &img.repo,
        layer,
        Some(size),
        &path,
        &Cache::none(),
        None,
    )
    .0
    .unwrap();
    rig.clear_logs();
    for known in [Some(size), None] {
        let (result, reports) =
            blob_to_file(reg, &img.repo, layer, known, &path, &Cache::none(), None);
        result.unwrap();
        assert_eq!(reports.seen, [(size, size)]);
    }
    let blob_reads: Vec<_> = rig
        .registry_requests(Which::Plain)
        .into_iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .collect();
    assert_eq!(blob_reads, [], "the blob on disk was fetched again");
}

#[test]
fn a_partial_that_holds_every_byte_is_committed_without_a_request() {
    // The call before stopped between its last byte and the rename.
    let wire = Tripwire::new();
    let blob = payload();
    let digest = common::sha256(&blob);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    leave_partial(&path, &blob);
    let size = blob.len() as u64;
    let (result, reports) = blob_to_file(
        &wire.registry(),
        "a/b",
        &digest,
        Some(size),
        &path,
        &Cache::none(),
        None,
    );
    result.unwrap();
    assert!(
        !wire.touched(),
        "a request was sent for bytes already on disk"
    );
    assert_eq!(std::fs::read(&path).unwrap(), blob);
    assert_eq!(reports.seen.last(), Some(&(size, size)));
    assert_eq!(names(dir.path()), ["blob"]);
}

#[test]
fn a_real_registry_answers_the_resume_with_206() {
    let rig = start(RigOptions::plain_only());
    let reg = rig.registry(Which::Plain);
    let img = rig.info().images.oci_image.clone();
    let layer = &img.layers[0];
    let whole = std::fs::read(rig.blob_data_path(Which::Plain, layer)).unwrap();
    let half = whole.len() / 2;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer");
    leave_partial(&path, &whole[..half]);
    rig.clear_logs();
    let (result, _) = blob_to_file(
        reg,
        &img.repo,
        layer,
        Some(whole.len() as u64),
        &path,
        &Cache::none(),
        None,
    );
    result.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    let reads: Vec<_> = rig
        .registry_requests(Which::Plain)
        .into_iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(reads[0].status, 206, "{reads:?}");
    assert_eq!(
        reads[0].bytes,
        (whole.len() - half) as u64,
        "only the rest was sent"
    );
}

#[test]
fn two_calls_for_one_path_download_once_and_other_paths_do_not_wait() {
    let blob = Arc::new(payload());
    let digest = sha256(&blob);
    let (first_seen, seen) = mpsc::channel::<()>();
    let first_seen = Mutex::new(first_seen);
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| {
        if req.path().contains("/r/held/") {
            // The first download of "held" waits until the test lets go.
            let _ = first_seen.lock().unwrap().send(());
            let _ = released
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
        }
        serve(&served, req, conn);
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let addr = o.addr().to_owned();
    // Repository names pick the script's branch; the blob is the same.
    let a = {
        let (addr, digest, path) = (addr.clone(), digest.clone(), path.clone());
        std::thread::spawn(move || {
            blob_to_file(&addr, "r/held", &digest, None, &path, &Cache::none(), None).0
        })
    };
    seen.recv_timeout(Duration::from_secs(10)).unwrap();
    let b = {
        let (addr, digest, path) = (addr.clone(), digest.clone(), path.clone());
        std::thread::spawn(move || {
            blob_to_file(&addr, "r/held", &digest, None, &path, &Cache::none(), None).0
        })
    };
    // Another path does not wait for the held one.
    let other = dir.path().join("other");
    let started = Instant::now();
    blob_to_file(&addr, "r/free", &digest, None, &other, &Cache::none(), None)
        .0
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    eventually("the second caller to wait on the lock", || {
        lock_of(&path).exists()
    });
    release.send(()).unwrap();
    a.join().unwrap().unwrap();
    b.join().unwrap().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *blob);
    let held: Vec<_> = o
        .requests()
        .into_iter()
        .filter(|r| r.path().contains("/r/held/"))
        .collect();
    assert_eq!(held.len(), 1, "two downloads of one path: {held:?}");
    assert_eq!(names(dir.path()), ["blob", "other"]);
}

#[test]
fn a_connection_that_drops_mid_body_is_resumed_in_the_same_call() {
    let blob = Arc::new(payload());
    let cut = 300_000;
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| match range_start(req) {
        None => {
            let cl = served.len().to_string();
            respond_head(conn, 200, &[("Content-Length", &cl)]);
            let _ = conn.write_all(&served[..cut]);
            let _ = conn.flush();
            std::thread::sleep(Duration::from_millis(50));
            reset(conn);
        }
        Some(_) => serve(&served, req, conn),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let (result, _) = blob_to_file(
        o.addr(),
        "a/b",
        &sha256(&blob),
        Some(blob.len() as u64),
        &path,
        &Cache::none(),
        None,
    );
    result.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *blob);
    let reqs = o.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        range_start(&reqs[1]),
        Some(cut as u64),
        "resumed where it stopped"
    );
}

/// Starts a download that stalls after `cut` bytes, cancels it once those
/// are on disk, and returns how long the cancel took to end the call.
fn cancel_mid_body(o: &ScriptedServer, digest: &str, size: u64, path: &Path, cut: u64) -> Duration {
    let cancel = Arc::new(Cancel::new());
    let call = {
        let (addr, digest, path, cancel) = (
            o.addr().to_owned(),
            digest.to_owned(),
            path.to_owned(),
            cancel.clone(),
        );
        std::thread::spawn(move || {
            blob_to_file(
                &addr,
                "a/b",
                &digest,
                Some(size),
                &path,
                &Cache::none(),
                Some(&cancel),
            )
            .0
        })
    };
    eventually("the first bytes on disk", || len(&partial_of(path)) == cut);
    let triggered = Instant::now();
    cancel.trigger();
    let e = call.join().unwrap().unwrap_err();
    let took = triggered.elapsed();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_CANCELLED, "cancelled"),
        "{e:?}"
    );
    took
}

#[test]
fn a_cancelled_download_keeps_its_partial_and_the_next_call_resumes_it() {
    let blob = Arc::new(payload());
    let cut = 400_000u64;
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| match range_start(req) {
        None => {
            let cl = served.len().to_string();
            respond_head(conn, 200, &[("Content-Length", &cl)]);
            let _ = conn.write_all(&served[..cut as usize]);
            let _ = conn.flush();
            std::thread::sleep(Duration::from_secs(20)); // stalled mid-body
        }
        Some(_) => serve(&served, req, conn),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let digest = sha256(&blob);
    let took = cancel_mid_body(&o, &digest, blob.len() as u64, &path, cut);
    assert!(took < Duration::from_millis(500), "cancel took {took:?}");
    assert!(!path.exists());
    assert_eq!(
        len(&partial_of(&path)),
        cut,
        "the partial stops growing and stays"
    );

    let (result, reports) = blob_to_file(
        o.addr(),
        "a/b",
        &digest,
        Some(blob.len() as u64),
        &path,
        &Cache::none(),
        None,
    );
    result.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), *blob);
    let reqs = o.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(range_start(&reqs[1]), Some(cut), "asked only for the rest");
    assert_eq!(
        reports.seen.last(),
        Some(&(blob.len() as u64, blob.len() as u64))
    );
    assert!(!partial_of(&path).exists() && !lock_of(&path).exists());
}

/// A partial file set up by the test, and an origin whose answer to a
/// ranged request is `ranged`; unranged requests get the whole blob.
fn resume_case(
    partial: &[u8],
    ranged: impl Fn(&[u8], &Request, &mut TcpStream) + Send + Sync + 'static,
) -> (ScriptedServer, Vec<u8>, Result<(), CallError>) {
    let blob = Arc::new(payload());
    let served = blob.clone();
    let o = ScriptedServer::start(move |req, conn| match range_start(req) {
        Some(_) => ranged(&served, req, conn),
        None => respond(conn, 200, &[], &served),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    leave_partial(&path, partial);
    let (result, _) = blob_to_file(
        o.addr(),
        "a/b",
        &sha256(&blob),
        Some(blob.len() as u64),
        &path,
        &Cache::none(),
        None,
    );
    if result.is_ok() {
        assert_eq!(std::fs::read(&path).unwrap(), *blob);
        assert_eq!(names(dir.path()), ["blob"]);
    }
    (o, blob.to_vec(), result)
}

#[test]
fn a_registry_that_ignores_range_or_answers_416_gets_a_fresh_start() {
    let head = payload()[..1000].to_vec();
    // 200: the whole blob again, written from byte 0.
    let (o, _, r) = resume_case(&head, |blob, _, conn| respond(conn, 200, &[], blob));
    r.unwrap();
    assert_eq!(o.requests().len(), 1);
    assert_eq!(range_start(&o.requests()[0]), Some(1000));
    // 416: asked again without Range.
    let (o, _, r) = resume_case(&head, |_, _, conn| {
        respond(conn, 416, &[("Content-Range", "bytes */0")], b"")
    });
    r.unwrap();
    let reqs = o.requests();
    assert_eq!(
        (range_start(&reqs[0]), reqs.get(1).map(range_start)),
        (Some(1000), Some(None))
    );
    // A 206 that starts elsewhere is not appended.
    let (o, _, r) = resume_case(&head, |blob, _, conn| {
        let range = format!("bytes 0-{}/{}", blob.len() - 1, blob.len());
        respond(conn, 206, &[("Content-Range", &range)], blob)
    });
    r.unwrap();
    assert_eq!(o.requests().len(), 2);
}

#[test]
fn a_partial_longer_than_the_blob_or_damaged_costs_one_download_not_a_wrong_answer() {
    // Longer than the blob can be: emptied, no Range asked.
    let too_long = vec![b'x'; payload().len() + 5];
    let (o, _, r) = resume_case(&too_long, |_, _, _| panic!("no Range expected"));
    r.unwrap();
    assert_eq!(o.requests().len(), 1);
    assert_eq!(range_start(&o.requests()[0]), None);
    // Damaged: the resumed bytes do not hash; one start from zero fixes it.
    let damaged = vec![b'z'; 5000];
    let (o, _, r) = resume_case(&damaged, serve);
    r.unwrap();
    let reqs = o.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        (range_start(&reqs[0]), range_start(&reqs[1])),
        (Some(5000), None)
    );
}

#[test]
fn bad_bytes_or_sizes_delete_the_partial_and_leave_the_path_as_it_was() {
    let blob = payload();
    let o = ScriptedServer::start(|_, conn| respond(conn, 200, &[], b"not the blob at all"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    std::fs::write(&path, b"what was here before").unwrap();
    let e = blob_to_file(
        o.addr(),
        "a/b",
        &sha256(&blob),
        None,
        &path,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_DIGEST_MISMATCH, "digest_mismatch")
    );
    let e = blob_to_file(
        o.addr(),
        "a/b",
        &sha256(&blob),
        Some(4),
        &path,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "length_mismatch")
    );
    let gone = ScriptedServer::start(|_, conn| respond(conn, 404, &[], b""));
    let e = blob_to_file(
        gone.addr(),
        "a/b",
        &sha256(&blob),
        None,
        &path,
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!((e.status, e.http_status), (TankStatus::TANK_ERR_HTTP, 404));
    assert_eq!(std::fs::read(&path).unwrap(), b"what was here before");
    assert_eq!(names(dir.path()), ["blob"]);
}

#[test]
fn cancel_ends_a_retry_wait_at_once_and_a_fired_switch_sends_nothing() {
    let o = ScriptedServer::start(|_, conn| respond(conn, 503, &[("Retry-After", "60")], b""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let cancel = Arc::new(Cancel::new());
    let call = {
        let (addr, path, cancel) = (o.addr().to_owned(), path.clone(), cancel.clone());
        std::thread::spawn(move || {
            blob_to_file(
                &addr,
                "a/b",
                &sha256(b"x"),
                None,
                &path,
                &Cache::none(),
                Some(&cancel),
            )
            .0
        })
    };
    eventually("the first request", || !o.requests().is_empty());
    let triggered = Instant::now();
    cancel.trigger();
    let e = call.join().unwrap().unwrap_err();
    assert!(
        triggered.elapsed() < Duration::from_millis(500),
        "{:?}",
        triggered.elapsed()
    );
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);

    // Already triggered: no request at all, for every cancellable call.
    let wire = Tripwire::new();
    let reg = wire.registry();
    let e = blob_to_file(
        &reg,
        "a/b",
        &sha256(b"x"),
        None,
        &path,
        &Cache::none(),
        Some(&cancel),
    )
    .0
    .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);
    let x = sha256(b"x");
    for size in [None, Some(1)] {
        let e = fetch_blob(&reg, "a/b", &x, size, &Cache::none(), Some(&cancel)).unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);
    }
    let e = manifest_with(&reg, "a/b", "v1", &Cache::none(), Some(&cancel)).unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);
    assert!(!wire.touched(), "a cancelled call sent a request");
}

#[test]
fn cancel_ends_a_stalled_in_memory_call_too_and_a_late_trigger_changes_nothing() {
    let o = ScriptedServer::start(|_, conn| {
        respond_head(conn, 200, &[("Content-Length", "10")]);
        let _ = conn.write_all(b"12345");
        std::thread::sleep(Duration::from_secs(20));
    });
    let cancel = Arc::new(Cancel::new());
    let call = {
        let (addr, cancel) = (o.addr().to_owned(), cancel.clone());
        std::thread::spawn(move || {
            let digest = sha256(b"1234567890");
            fetch_blob(&addr, "a/b", &digest, None, &Cache::none(), Some(&cancel)).unwrap_err()
        })
    };
    eventually("the request", || !o.requests().is_empty());
    std::thread::sleep(Duration::from_millis(50));
    let triggered = Instant::now();
    cancel.trigger();
    assert_eq!(call.join().unwrap().status, TankStatus::TANK_ERR_CANCELLED);
    assert!(
        triggered.elapsed() < Duration::from_millis(500),
        "{:?}",
        triggered.elapsed()
    );

    let ok = ScriptedServer::start(|_, conn| respond(conn, 200, &[], b"fine"));
    let fresh = Cancel::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    blob_to_file(
        ok.addr(),
        "a/b",
        &sha256(b"fine"),
        None,
        &path,
        &Cache::none(),
        Some(&fresh),
    )
    .0
    .unwrap();
    fresh.trigger();
    assert_eq!(std::fs::read(&path).unwrap(), b"fine");
}

#[test]
fn progress_is_spaced_and_keeps_coming_while_bytes_arrive() {
    let o = ScriptedServer::start(|_, conn| {
        // 1.2 s of bytes, a little every 20 ms.
        respond_head(conn, 200, &[("Content-Length", "6000")]);
        for _ in 0..60 {
            let _ = conn.write_all(&[b'p'; 100]);
            let _ = conn.flush();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let (result, reports) = blob_to_file(
        o.addr(),
        "a/b",
        &sha256(&[b'p'; 6000]),
        None,
        &path,
        &Cache::none(),
        None,
    );
    result.unwrap();
    let n = reports.seen.len();
    assert!(n >= 3, "{reports:?}");
    assert_eq!(reports.seen[n - 1], (6000, 6000));
    for w in reports.at[..n - 1].windows(2) {
        let gap = w[1] - w[0];
        assert!(gap >= Duration::from_millis(95), "reports {gap:?} apart");
        assert!(
            gap <= Duration::from_secs(1),
            "a {gap:?} silence while bytes arrived"
        );
    }
    assert!(
        reports.seen[..n - 1]
            .iter()
            .all(|&(_, total)| total == 6000),
        "total from Content-Length"
    );
    assert!(reports.seen.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn local_files_that_cannot_be_written_are_io_errors_naming_them() {
    let blob = payload();
    let o = ScriptedServer::start({
        let blob = blob.clone();
        move |req, conn| serve(&blob, req, conn)
    });
    let digest = sha256(&blob);
    let dir = tempfile::tempdir().unwrap();
    let io = |path: &Path| {
        let e = blob_to_file(o.addr(), "a/b", &digest, None, path, &Cache::none(), None)
            .0
            .unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_IO, "io"),
            "{e:?}"
        );
        e
    };
    let missing = dir.path().join("no-such-dir/blob");
    let e = io(&missing);
    assert!(e.message.contains("no-such-dir"), "{e:?}");
    let e = io(dir.path());
    assert!(
        e.message.contains(&dir.path().display().to_string()),
        "{e:?}"
    );
    // A disk that fills up mid-download: a child process whose every write
    // past 64 KiB fails (a file size limit), so no real disk must fill.
    let full = dir.path().join("full");
    let out = run(Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_with_a_file_size_limit",
            "--ignored",
            "--nocapture",
        ])
        .env("TANK_TEST_ORIGIN", o.addr())
        .env("TANK_TEST_DIGEST", &digest)
        .env("TANK_TEST_PATH", &full));
    let said = String::from_utf8_lossy(&out.stdout);
    let line = said
        .lines()
        .find_map(|l| l.strip_prefix("CHILD "))
        .unwrap_or_else(|| panic!("the child said nothing: {said}"));
    assert!(line.starts_with("TANK_ERR_IO io "), "{line}");
    assert!(line.contains("full.partial"), "{line}");
    assert!(!full.exists());
    assert!(!o.requests().is_empty());

    let e = blob_to_file(
        o.addr(),
        "a/b",
        &digest,
        None,
        Path::new(""),
        &Cache::none(),
        None,
    )
    .0
    .unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT);
    unsafe {
        let (r, p, d) = (c(o.addr()), c("a/b"), c(&digest));
        let mut err = std::ptr::null_mut();
        let s = tank_blob_to_file(
            r.as_ptr(),
            p.as_ptr(),
            d.as_ptr(),
            TANK_SIZE_UNKNOWN,
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            None,
            std::ptr::null_mut(),
            &mut err,
        );
        let e = take_error(s, err);
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT);
        assert!(e.message.contains("path"), "{e:?}");
    }
}

/// Run by `local_files_that_cannot_be_written_are_io_errors_naming_them`
/// in a child process: one download with every write past 64 KiB failing
/// (`RLIMIT_FSIZE`, `EFBIG`); prints the error as `CHILD STATUS reason
/// message`.
#[test]
#[ignore = "a child process of another test"]
fn child_with_a_file_size_limit() {
    let Ok(addr) = std::env::var("TANK_TEST_ORIGIN") else {
        return;
    };
    let digest = std::env::var("TANK_TEST_DIGEST").unwrap();
    let path = PathBuf::from(std::env::var("TANK_TEST_PATH").unwrap());
    let limit = libc::rlimit {
        rlim_cur: 64 * 1024,
        rlim_max: 64 * 1024,
    };
    // SAFETY: plain calls on this process; writes past the limit then fail
    // with EFBIG instead of raising SIGXFSZ.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let e = blob_to_file(&addr, "a/b", &digest, None, &path, &Cache::none(), None)
        .0
        .unwrap_err();
    println!("CHILD {:?} {} {}", e.status, e.reason, e.message);
}
