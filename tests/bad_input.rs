//! Bad input through the C ABI, one argument at a time: NULL, not UTF-8,
//! empty, outside the grammar, absurdly long. Each is `TANK_ERR_BAD_INPUT`
//! (reason `bad_input`) with a short message that names the argument, `*out`
//! is left exactly as it was, `err` may be NULL, and no request is sent (a
//! Tripwire is the registry, or is inside the registry string, throughout).
//! Release and free functions are no-ops on NULL and on zeroed structs.

mod common;

use std::ffi::c_char;
use std::mem::size_of;
use std::ptr;
use std::time::{Duration, Instant};

use common::scripted::{respond, ScriptedServer};
use common::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Manifest,
    Blob,
}

/// A string argument as C passes it: NULL, or bytes (NUL appended).
type Arg = Option<Vec<u8>>;

fn s(text: &str) -> Arg {
    Some(text.as_bytes().to_vec())
}

fn raw(bytes: &[u8]) -> Arg {
    assert!(!bytes.contains(&0), "C strings end at the first NUL");
    Some(bytes.to_vec())
}

fn terminated(arg: &Arg) -> Option<Vec<u8>> {
    arg.as_ref().map(|b| {
        let mut v = b.clone();
        v.push(0);
        v
    })
}

fn as_ptr(arg: &Option<Vec<u8>>) -> *const c_char {
    arg.as_ref().map_or(ptr::null(), |v| v.as_ptr().cast())
}

/// `size_of::<T>()` bytes of `0xA5`: a struct that is visibly not written to.
fn sentinel<T>() -> T {
    let mut v = std::mem::MaybeUninit::<T>::uninit();
    // SAFETY: every field of the C structs is a raw pointer or an integer,
    // for which any bit pattern is a valid value.
    unsafe {
        ptr::write_bytes(v.as_mut_ptr(), 0xA5, 1);
        v.assume_init()
    }
}

fn untouched<T>(v: &T) -> bool {
    // SAFETY: reading the bytes of a plain-old-data struct.
    let bytes = unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) };
    bytes.iter().all(|&b| b == 0xA5)
}

/// Calls `kind` twice (with and without `err`) and checks the contract
/// common to every bad argument; returns the error.
#[track_caller]
fn bad(kind: Kind, args: [&Arg; 3], with_out: bool, names: &str) -> CallError {
    let [a, b, c] = args.map(terminated);
    let case = format!(
        "{kind:?}({:?}, {:?}, {:?}, out={})",
        args[0].as_ref().map(|v| shorten(v)),
        args[1].as_ref().map(|v| shorten(v)),
        args[2].as_ref().map(|v| shorten(v)),
        if with_out { "&out" } else { "NULL" }
    );
    let started = Instant::now();
    let mut results = Vec::new();
    for with_err in [true, false] {
        let mut err: *mut TankError = ptr::null_mut();
        let err_ptr = if with_err {
            &mut err as *mut _
        } else {
            ptr::null_mut()
        };
        let (status, out_ok) = unsafe {
            match kind {
                Kind::Manifest => {
                    let mut out: TankManifest = sentinel();
                    let out_ptr = if with_out {
                        &mut out as *mut _
                    } else {
                        ptr::null_mut()
                    };
                    let st = tank_manifest(
                        as_ptr(&a),
                        as_ptr(&b),
                        as_ptr(&c),
                        ptr::null_mut(),
                        out_ptr,
                        err_ptr,
                    );
                    (st, untouched(&out))
                }
                Kind::Blob => {
                    let mut out: TankBytes = sentinel();
                    let out_ptr = if with_out {
                        &mut out as *mut _
                    } else {
                        ptr::null_mut()
                    };
                    let st = tank_blob(
                        as_ptr(&a),
                        as_ptr(&b),
                        as_ptr(&c),
                        ptr::null_mut(),
                        out_ptr,
                        err_ptr,
                    );
                    (st, untouched(&out))
                }
            }
        };
        assert!(out_ok, "{case}: *out was written on failure");
        assert_eq!(status, TankStatus::TANK_ERR_BAD_INPUT, "{case}");
        if with_err {
            results.push(unsafe { take_error(status, err) });
        }
    }
    let took = started.elapsed();
    let e = results.pop().unwrap();
    eprintln!(
        "CASE {case}: {:?}/{} in {took:.2?} -- {}",
        e.status, e.reason, e.message
    );
    assert_eq!(e.reason, "bad_input", "{case}");
    assert!(
        e.message.starts_with(names),
        "{case}: the message does not start with {names:?}: {}",
        e.message
    );
    assert!(
        e.message.len() <= 400,
        "{case}: {} byte message",
        e.message.len()
    );
    assert!(took < Duration::from_secs(1), "{case}: took {took:?}");
    e
}

fn shorten(v: &[u8]) -> String {
    let text = String::from_utf8_lossy(v);
    if text.chars().count() > 24 {
        format!(
            "{}…({} bytes)",
            text.chars().take(16).collect::<String>(),
            v.len()
        )
    } else {
        text.into_owned()
    }
}

const LATIN1: &[u8] = b"r\xe9po";
const OVERLONG_SLASH: &[u8] = b"a\xc0\xafb";
const LONE_SURROGATE: &[u8] = b"\xed\xa0\x80";

fn digest(hex: &str) -> String {
    format!("sha256:{hex}")
}

#[test]
fn null_for_every_pointer_argument_in_turn() {
    let wire = Tripwire::new();
    let (reg, repo, tag) = (s(&wire.registry()), s("tank/x"), s("v1"));
    let dig = s(&digest(&"a".repeat(64)));
    for kind in [Kind::Manifest, Kind::Blob] {
        let third = if kind == Kind::Manifest { &tag } else { &dig };
        let third_name = if kind == Kind::Manifest {
            "reference"
        } else {
            "digest"
        };
        let e = bad(kind, [&None, &repo, third], true, "registry");
        assert_eq!(e.message, "registry is NULL");
        let e = bad(kind, [&reg, &None, third], true, "repo");
        assert_eq!(e.message, "repo is NULL");
        let e = bad(kind, [&reg, &repo, &None], true, third_name);
        assert_eq!(e.message, format!("{third_name} is NULL"));
        let e = bad(kind, [&reg, &repo, third], false, "out");
        assert_eq!(e.message, "out is NULL");
        // Everything NULL at once: the first argument is named.
        let e = bad(kind, [&None, &None, &None], false, "registry");
        assert_eq!(e.message, "registry is NULL");
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn strings_that_are_not_utf8() {
    let wire = Tripwire::new();
    let (reg, repo, tag) = (s(&wire.registry()), s("tank/x"), s("v1"));
    let dig = s(&digest(&"a".repeat(64)));
    for bytes in [LATIN1, OVERLONG_SLASH, LONE_SURROGATE, b"\xff"] {
        let junk = raw(bytes);
        for kind in [Kind::Manifest, Kind::Blob] {
            let (third, third_name) = match kind {
                Kind::Manifest => (&tag, "reference"),
                Kind::Blob => (&dig, "digest"),
            };
            let e = bad(kind, [&junk, &repo, third], true, "registry");
            assert_eq!(e.message, "registry is not valid UTF-8");
            let e = bad(kind, [&reg, &junk, third], true, "repo");
            assert_eq!(e.message, "repo is not valid UTF-8");
            let e = bad(kind, [&reg, &repo, &junk], true, third_name);
            assert_eq!(e.message, format!("{third_name} is not valid UTF-8"));
        }
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn empty_strings() {
    let wire = Tripwire::new();
    let (reg, repo, tag, empty) = (s(&wire.registry()), s("tank/x"), s("v1"), s(""));
    let dig = s(&digest(&"a".repeat(64)));
    for kind in [Kind::Manifest, Kind::Blob] {
        let (third, third_name) = match kind {
            Kind::Manifest => (&tag, "reference"),
            Kind::Blob => (&dig, "digest"),
        };
        bad(kind, [&empty, &repo, third], true, "registry");
        bad(kind, [&reg, &empty, third], true, "repo");
        bad(kind, [&reg, &repo, &empty], true, third_name);
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn repositories_outside_the_grammar() {
    let wire = Tripwire::new();
    let (reg, tag) = (s(&wire.registry()), s("v1"));
    let dig = s(&digest(&"a".repeat(64)));
    let long = "a".repeat(10_000);
    let long_segments = ["ab"; 3_334].join("/");
    for repo in [
        "tank/../x",
        "..",
        "../etc",
        "tank/./x",
        "tank x",
        " tank/x",
        "tank/x ",
        "tank\tx",
        "Tank/X",
        "tank/X",
        "tank//x",
        "/tank/x",
        "tank/x/",
        "tank/x\n",
        "tank/x\r\n",
        "tank/%2e%2e/x",
        "tank/x?y=1",
        "tank/x#y",
        "tank:x",
        "tank@x",
        "tänk/x",
        "a___b",
        "-a",
        "a-",
        long.as_str(),
        long_segments.as_str(),
    ] {
        let r = s(repo);
        let e = bad(Kind::Manifest, [&reg, &r, &tag], true, "repo");
        assert!(e.message.starts_with("repository "), "{}", e.message);
        bad(Kind::Blob, [&reg, &r, &dig], true, "repo");
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn references_outside_the_grammar() {
    let wire = Tripwire::new();
    let (reg, repo) = (s(&wire.registry()), s("tank/x"));
    let hex = "a".repeat(64);
    let long = "a".repeat(10_000);
    let huge = "v".repeat(1 << 20);
    for reference in [
        "v1\n",
        "v1\nHost: evil",
        "\n",
        "v 1",
        "v1\t",
        ".hidden",
        "-dash",
        "../v1",
        "a/b",
        "v1?x=1",
        "v1#frag",
        "tag:with:colons",
        &"a".repeat(129),
        long.as_str(),
        huge.as_str(),
        &digest(&hex.to_uppercase()),
        &format!("SHA256:{hex}"),
        &digest(&hex[..63]),
        &format!("md5:{}", &hex[..32]),
        &format!("sha512:{hex}"),
    ] {
        let r = s(reference);
        bad(Kind::Manifest, [&reg, &repo, &r], true, "reference");
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn digests_outside_the_grammar() {
    let wire = Tripwire::new();
    let (reg, repo) = (s(&wire.registry()), s("tank/x"));
    let hex = "0123456789abcdef".repeat(4);
    for d in [
        digest(&hex[..63]),
        digest(&format!("{hex}0")),
        digest(""),
        "sha256".to_owned(),
        hex.clone(),
        digest(&hex.to_uppercase()),
        format!("SHA256:{hex}"),
        format!("Sha256:{hex}"),
        format!("md5:{}", &hex[..32]),
        format!("sha1:{}", &hex[..40]),
        format!("sha384:{}{}", hex, &hex[..32]),
        format!("blake3:{hex}"),
        format!("sha512:{hex}"),
        format!("sha256:{}", "g".repeat(64)),
        format!("sha256:{hex}\n"),
        format!(" sha256:{hex}"),
        format!("sha256: {}", &hex[1..]),
        format!("sha256:{hex}/../x"),
        format!("sha256:{}", "a".repeat(10_000)),
    ] {
        let arg = s(&d);
        let e = bad(Kind::Blob, [&reg, &repo, &arg], true, "digest");
        assert!(e.message.starts_with("digest: "), "{}", e.message);
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn registries_outside_the_grammar() {
    // Each bad registry carries the Tripwire's own address, so a misparse
    // that still connected would be seen. (`host:port/` with a bare trailing
    // slash is accepted on purpose.)
    let wire = Tripwire::new();
    let addr = wire.registry();
    let (repo, tag) = (s("tank/x"), s("v1"));
    let dig = s(&digest(&"a".repeat(64)));
    for registry in [
        format!("{addr}/v2"),
        format!("user@{addr}"),
        format!("user:pass@{addr}"),
        format!("{addr}?x=1"),
        format!("{addr}#x"),
        format!("{addr} "),
        format!(" {addr}"),
        format!("{addr}\n"),
        format!("{addr}\r\nHost: evil"),
        format!("ftp://{addr}"),
        format!("file://{addr}"),
        format!("http:/{addr}"),
        format!("http://http://{addr}"),
        "http://".to_owned(),
        "127.0.0.1:99999".to_owned(),
        ":5000".to_owned(),
    ] {
        let r = s(&registry);
        bad(Kind::Manifest, [&r, &repo, &tag], true, "registry");
        bad(Kind::Blob, [&r, &repo, &dig], true, "registry");
    }
    assert!(!wire.touched(), "a request was sent for bad input");
}

#[test]
fn release_and_free_are_no_ops_on_null_and_zeroed() {
    unsafe {
        let mut m: TankManifest = std::mem::zeroed();
        tank_manifest_release(&mut m);
        tank_manifest_release(&mut m);
        tank_manifest_release(ptr::null_mut());
        assert!(m._private.is_null() && m.raw.is_null() && m.raw_len == 0);
        let mut b: TankBytes = std::mem::zeroed();
        tank_bytes_release(&mut b);
        tank_bytes_release(&mut b);
        tank_bytes_release(ptr::null_mut());
        assert!(b.data.is_null() && b.len == 0);
        tank_cache_free(ptr::null_mut());
        tank_error_free(ptr::null_mut());
        assert_eq!(
            tank_error_status(ptr::null()),
            TankStatus::TANK_ERR_BAD_INPUT
        );
        assert_eq!(tank_error_http_status(ptr::null()), 0);
        assert!(tank_error_reason(ptr::null()).is_null());
        assert!(tank_error_message(ptr::null()).is_null());
        assert!(tank_error_body(ptr::null()).is_null());
        // Caches of any TTL can be made and freed.
        for ttl in [0, 1, u64::MAX] {
            let c = tank_cache_new_with_ttl(ttl);
            assert!(!c.is_null());
            tank_cache_free(c);
        }
    }
}

#[test]
fn releasing_a_filled_struct_twice_is_a_no_op() {
    let body = br#"{"schemaVersion":2,"layers":[{"digest":"sha256:00","size":1}]}"#;
    let o = ScriptedServer::start(move |_, conn| respond(conn, 200, &[], body));
    let (reg, repo, tag) = (c(o.addr()), c("a/b"), c("v1"));
    let d = c(&sha256(body));
    unsafe {
        let mut m: TankManifest = std::mem::zeroed();
        let mut err = ptr::null_mut();
        let st = tank_manifest(
            reg.as_ptr(),
            repo.as_ptr(),
            tag.as_ptr(),
            ptr::null_mut(),
            &mut m,
            &mut err,
        );
        assert_eq!(st, TankStatus::TANK_OK);
        assert!(err.is_null(), "err written on success");
        assert_eq!(m.layers_len, 1);
        tank_manifest_release(&mut m);
        assert!(m._private.is_null() && m.layers.is_null() && m.layers_len == 0);
        tank_manifest_release(&mut m);

        let mut b: TankBytes = std::mem::zeroed();
        let st = tank_blob(
            reg.as_ptr(),
            repo.as_ptr(),
            d.as_ptr(),
            ptr::null_mut(),
            &mut b,
            ptr::null_mut(),
        );
        assert_eq!(st, TankStatus::TANK_OK);
        assert_eq!(std::slice::from_raw_parts(b.data, b.len), body);
        tank_bytes_release(&mut b);
        assert!(b.data.is_null() && b._private.is_null());
        tank_bytes_release(&mut b);
    }
}

#[test]
fn bad_input_from_many_threads_at_once() {
    // No shared state to trip over: 8 threads, 200 bad calls each.
    let wire = Tripwire::new();
    let reg = wire.registry();
    std::thread::scope(|scope| {
        for t in 0..8 {
            let reg = reg.clone();
            scope.spawn(move || {
                for i in 0..200 {
                    let e =
                        manifest(&reg, &format!("Bad/{t}/{i}"), "v1", &Cache::none()).unwrap_err();
                    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT);
                    let e =
                        blob(&reg, "ok/repo", &format!("sha256:{i}"), &Cache::none()).unwrap_err();
                    assert!(e.message.starts_with("digest"), "{}", e.message);
                }
            });
        }
    });
    assert!(!wire.touched(), "a request was sent for bad input");
}

/// `tank_blob_to_file` with one bad argument at a time: NULL, not UTF-8,
/// empty path, bad digest. NULL cache, cancel, progress and err are allowed.
#[test]
fn blob_to_file_checks_every_argument_before_any_request() {
    let wire = Tripwire::new();
    let reg = wire.registry();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob").to_string_lossy().into_owned();
    let good = [s(&reg), s("a/b"), s(&digest(&"a".repeat(64))), s(&path)];
    let names = ["registry", "repo", "digest", "path"];
    let call = |args: &[Arg; 4], with_err: bool| unsafe {
        let t: Vec<_> = args.iter().map(terminated).collect();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_blob_to_file(
            as_ptr(&t[0]),
            as_ptr(&t[1]),
            as_ptr(&t[2]),
            TANK_SIZE_UNKNOWN,
            as_ptr(&t[3]),
            ptr::null_mut(),
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            if with_err { &mut err } else { ptr::null_mut() },
        );
        if with_err {
            take_error(status, err)
        } else {
            CallError {
                status,
                http_status: 0,
                reason: String::new(),
                message: String::new(),
            }
        }
    };
    for i in 0..4 {
        for (what, bad) in [
            ("NULL", None),
            ("not UTF-8", raw(b"\xff\xfe")),
            ("empty", s("")),
        ] {
            let mut args = good.clone();
            args[i] = bad;
            let e = call(&args, true);
            assert_eq!(
                e.status,
                TankStatus::TANK_ERR_BAD_INPUT,
                "{} {what}: {e:?}",
                names[i]
            );
            assert!(e.message.contains(names[i]), "{} {what}: {e:?}", names[i]);
            assert_eq!(call(&args, false).status, TankStatus::TANK_ERR_BAD_INPUT);
        }
    }
    let mut args = good.clone();
    args[2] = s("sha256:short");
    assert_eq!(call(&args, true).status, TankStatus::TANK_ERR_BAD_INPUT);
    assert!(!wire.touched(), "a request was sent");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files were made"
    );

    // Size 0 for a blob that is not empty: the body is refused, not kept.
    let o = ScriptedServer::start(|_, conn| respond(conn, 200, &[], b"not empty"));
    let path = dir.path().join("zero");
    let (r, reports) = blob_to_file(
        o.addr(),
        "a/b",
        &common::sha256(b"not empty"),
        Some(0),
        &path,
        &Cache::none(),
        None,
    );
    let e = r.unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "length_mismatch")
    );
    assert!(reports.seen.is_empty() || reports.seen.iter().all(|&(d, _)| d == 0));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn cancel_switches_take_null_and_repeated_triggers() {
    unsafe {
        tank_cancel_trigger(ptr::null_mut());
        tank_cancel_free(ptr::null_mut());
        let c = tank_cancel_new();
        assert!(!c.is_null());
        tank_cancel_trigger(c);
        tank_cancel_trigger(c);
        tank_cancel_free(c);
    }
}

#[test]
fn pull_checks_every_argument_before_any_request() {
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout").to_string_lossy().into_owned();
    let reference = format!("{}/a/b:t", wire.registry());
    let good = [s(&reference), s(&layout), s("linux/amd64")];
    let names = ["reference", "layout", "platform"];
    let call = |args: &[Arg; 3], with_err: bool| unsafe {
        let t: Vec<_> = args.iter().map(terminated).collect();
        let mut out: TankManifest = sentinel();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_pull(
            as_ptr(&t[0]),
            as_ptr(&t[1]),
            as_ptr(&t[2]),
            0,
            ptr::null_mut(),
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut out,
            if with_err { &mut err } else { ptr::null_mut() },
        );
        assert!(untouched(&out), "out written on failure");
        if with_err {
            take_error(status, err)
        } else {
            CallError {
                status,
                http_status: 0,
                reason: String::new(),
                message: String::new(),
            }
        }
    };
    for i in 0..3 {
        for (what, bad) in [
            ("NULL", None),
            ("not UTF-8", raw(b"\xff\xfe")),
            ("empty", s("")),
        ] {
            // A NULL platform is the host's: not bad input.
            if i == 2 && bad.is_none() {
                continue;
            }
            let mut args = good.clone();
            args[i] = bad;
            let e = call(&args, true);
            assert_eq!(
                (e.status, e.reason.as_str()),
                (TankStatus::TANK_ERR_BAD_INPUT, "bad_input"),
                "{} {what}: {e:?}",
                names[i]
            );
            assert!(e.message.contains(names[i]), "{} {what}: {e:?}", names[i]);
            assert_eq!(call(&args, false).status, TankStatus::TANK_ERR_BAD_INPUT);
        }
    }
    for (i, bad) in [
        (0, "UPPER/x"),
        (0, "a//b"),
        (0, "x:tag@sha256:short"),
        (2, "linux"),
        (2, "linux/amd64/v1/extra"),
    ] {
        let mut args = good.clone();
        args[i] = s(bad);
        let e = call(&args, true);
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{bad}: {e:?}");
        assert!(e.message.contains(names[i]), "{bad}: {e:?}");
    }
    assert!(!wire.touched(), "a request was sent");
    assert!(!dir.path().join("layout").exists(), "the layout was made");
}

#[test]
fn reference_parse_takes_null_and_bad_text() {
    unsafe {
        let mut out: TankReference = sentinel();
        let input = terminated(&s("alpine"));
        let mut err: *mut TankError = ptr::null_mut();
        for (reference, what) in [
            (None, "NULL"),
            (raw(b"\xff\xfe"), "UTF-8"),
            (s(""), "empty"),
            (s("a b"), "whitespace"),
        ] {
            let t = terminated(&reference);
            let status = tank_reference_parse(as_ptr(&t), &mut out, &mut err);
            let e = take_error(status, err);
            err = ptr::null_mut();
            assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{what}");
            assert!(e.message.contains("reference"), "{what}: {e:?}");
            assert!(untouched(&out), "{what}: out written");
            let status = tank_reference_parse(as_ptr(&t), &mut out, ptr::null_mut());
            assert_eq!(status, TankStatus::TANK_ERR_BAD_INPUT, "{what}, NULL err");
        }
        let status = tank_reference_parse(as_ptr(&input), ptr::null_mut(), &mut err);
        let e = take_error(status, err);
        assert!(e.message.contains("out"), "{e:?}");
        tank_reference_release(ptr::null_mut());
        let mut zeroed: TankReference = std::mem::zeroed();
        tank_reference_release(&mut zeroed);
    }
}

#[test]
fn unpack_checks_every_argument_before_any_work() {
    use common::unpack::{tank_unpack, TANK_UNPACK_KEEP_OWNERS, TANK_UNPACK_REPLACE};
    let dir = tempfile::tempdir().unwrap();
    // No layout there: an argument checked after it was read would be IO.
    let layout = dir.path().join("layout").to_string_lossy().into_owned();
    let rootfs = dir.path().join("rootfs").to_string_lossy().into_owned();
    let good = [s(&layout), s("img"), s(&rootfs)];
    let names = ["layout", "image", "rootfs"];
    let call = |args: &[Arg; 3], flags: u32, with_err: bool| unsafe {
        let t: Vec<_> = args.iter().map(terminated).collect();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_unpack(
            as_ptr(&t[0]),
            as_ptr(&t[1]),
            as_ptr(&t[2]),
            flags,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            if with_err { &mut err } else { ptr::null_mut() },
        );
        match with_err {
            true => take_error(status, err),
            false => CallError {
                status,
                http_status: 0,
                reason: String::new(),
                message: String::new(),
            },
        }
    };
    for i in 0..3 {
        for (what, bad) in [
            ("NULL", None),
            ("not UTF-8", raw(b"\xff\xfe")),
            ("empty", s("")),
        ] {
            let mut args = good.clone();
            args[i] = bad;
            let e = call(&args, 0, true);
            assert_eq!(
                (e.status, e.reason.as_str()),
                (TankStatus::TANK_ERR_BAD_INPUT, "bad_input"),
                "{} {what}: {e:?}",
                names[i]
            );
            assert!(e.message.contains(names[i]), "{} {what}: {e:?}", names[i]);
            assert_eq!(call(&args, 0, false).status, TankStatus::TANK_ERR_BAD_INPUT);
        }
    }
    let known = TANK_UNPACK_KEEP_OWNERS | TANK_UNPACK_REPLACE;
    for flags in [!known, 4, 1 << 31] {
        let e = call(&good, flags, true);
        assert_eq!(
            e.status,
            TankStatus::TANK_ERR_BAD_INPUT,
            "{flags:#x}: {e:?}"
        );
        assert!(e.message.contains("flags"), "{flags:#x}: {e:?}");
    }
    for bad in ["/", ".", "..", "x/..", "x/."] {
        let mut args = good.clone();
        args[2] = s(bad);
        let e = call(&args, 0, true);
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{bad}: {e:?}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "something was made"
    );
}

#[test]
fn pull_unpack_checks_every_argument_before_any_request() {
    use common::unpack::tank_pull_unpack;
    let wire = Tripwire::new();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout").to_string_lossy().into_owned();
    let rootfs = dir.path().join("rootfs").to_string_lossy().into_owned();
    let reference = format!("{}/a/b:t", wire.registry());
    let good = [s(&reference), s(&layout), s(&rootfs), s("linux/amd64")];
    let names = ["image", "layout", "rootfs", "platform"];
    let call = |args: &[Arg; 4], flags: u32| unsafe {
        let t: Vec<_> = args.iter().map(terminated).collect();
        let mut out: TankManifest = sentinel();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_pull_unpack(
            as_ptr(&t[0]),
            as_ptr(&t[1]),
            as_ptr(&t[2]),
            as_ptr(&t[3]),
            0,
            flags,
            ptr::null_mut(),
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            &mut out,
            &mut err,
        );
        assert!(untouched(&out), "out written on failure");
        take_error(status, err)
    };
    for i in 0..4 {
        for (what, bad) in [
            ("NULL", None),
            ("not UTF-8", raw(b"\xff\xfe")),
            ("empty", s("")),
        ] {
            // A NULL platform is the host's: not bad input.
            if i == 3 && bad.is_none() {
                continue;
            }
            let mut args = good.clone();
            args[i] = bad;
            let e = call(&args, 0);
            assert_eq!(
                (e.status, e.reason.as_str()),
                (TankStatus::TANK_ERR_BAD_INPUT, "bad_input"),
                "{} {what}: {e:?}",
                names[i]
            );
            assert!(e.message.contains(names[i]), "{} {what}: {e:?}", names[i]);
        }
    }
    let e = call(&good, 8);
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{e:?}");
    let mut dotdot = good.clone();
    dotdot[2] = s("..");
    assert_eq!(call(&dotdot, 0).status, TankStatus::TANK_ERR_BAD_INPUT);
    assert!(!wire.touched(), "a request was sent");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "something was made"
    );
}

/// `tank_tags` (registry, repo) and `tank_catalog` (registry) with one bad
/// argument at a time, `out` NULL, and everything NULL at once: each is
/// bad input naming the argument, `*out` untouched, `err` may be NULL, and
/// no request is sent. NULL cache and cancel are allowed.
#[test]
fn listings_check_every_argument_before_any_request() {
    use tank::ffi::listing::tank_tags;
    use tank::ffi::listing::{tank_catalog, tank_strings_release, TankStrings};
    let wire = Tripwire::new();
    let good = [s(&wire.registry()), s("a/b")];
    let names = ["registry", "repo"];
    // tank_tags with both strings, or tank_catalog with the first.
    let call = |tags: bool, args: &[Arg; 2], with_out: bool, with_err: bool| unsafe {
        let t: Vec<_> = args.iter().map(terminated).collect();
        let mut out: TankStrings = sentinel();
        let out_ptr = if with_out {
            &mut out as *mut _
        } else {
            ptr::null_mut()
        };
        let mut err: *mut TankError = ptr::null_mut();
        let err_ptr = if with_err {
            &mut err as *mut _
        } else {
            ptr::null_mut()
        };
        let status = match tags {
            true => tank_tags(
                as_ptr(&t[0]),
                as_ptr(&t[1]),
                ptr::null_mut(),
                ptr::null_mut(),
                out_ptr,
                err_ptr,
            ),
            false => tank_catalog(
                as_ptr(&t[0]),
                ptr::null_mut(),
                ptr::null_mut(),
                out_ptr,
                err_ptr,
            ),
        };
        assert!(untouched(&out), "out written on failure");
        assert_eq!(status, TankStatus::TANK_ERR_BAD_INPUT);
        with_err.then(|| take_error(status, err))
    };
    let check = |tags: bool, args: &[Arg; 2], with_out: bool, message: &str| {
        let case = format!("tags={tags} {args:?} out={with_out}");
        let e = call(tags, args, with_out, true).unwrap();
        assert_eq!(e.reason, "bad_input", "{case}");
        assert_eq!(e.message, message, "{case}");
        assert!(call(tags, args, with_out, false).is_none());
    };
    for tags in [true, false] {
        let mut targets = vec![0];
        if tags {
            targets.push(1);
        }
        for i in targets {
            let name = names[i];
            for (bad, message) in [
                (None, format!("{name} is NULL")),
                (raw(LATIN1), format!("{name} is not valid UTF-8")),
                (raw(OVERLONG_SLASH), format!("{name} is not valid UTF-8")),
                (raw(LONE_SURROGATE), format!("{name} is not valid UTF-8")),
            ] {
                let mut args = good.clone();
                args[i] = bad;
                check(tags, &args, true, &message);
                // A bad string is named before a NULL out.
                check(tags, &args, false, &message);
            }
            for bad in ["", "UPPER/x", "a//b", "ftp://h/x", "127.0.0.1:99999"] {
                let mut args = good.clone();
                args[i] = s(bad);
                let e = call(tags, &args, true, true).unwrap();
                assert!(e.message.starts_with(name), "{bad:?}: {e:?}");
            }
        }
        check(tags, &good, false, "out is NULL");
        check(tags, &[None, None], false, "registry is NULL");
    }
    assert!(!wire.touched(), "a request was sent for bad input");
    unsafe {
        tank_strings_release(ptr::null_mut());
        let mut zeroed: TankStrings = std::mem::zeroed();
        tank_strings_release(&mut zeroed);
        tank_strings_release(&mut zeroed);
        assert!(zeroed.items.is_null() && zeroed.len == 0 && zeroed._private.is_null());
    }
}

#[test]
fn a_filled_list_released_twice_is_released_once() {
    let o = ScriptedServer::start(|_, conn| respond(conn, 200, &[], br#"{"tags":["a","b"]}"#));
    let got = common::listing::tags(o.addr(), "a/b", &Cache::none(), None).unwrap();
    assert_eq!(got, ["a", "b"]);
    let o = ScriptedServer::start(|_, conn| respond(conn, 200, &[], br#"{"repositories":[]}"#));
    let got = common::listing::catalog(o.addr(), &Cache::none(), None).unwrap();
    assert!(got.is_empty());
}

/// The mirror settings: every pointer NULL in turn, strings that are not
/// UTF-8, mirrors that are not an https URL or a loopback host,
/// capabilities outside the two bits, registries.conf files that are
/// missing or malformed (named, with the line). No request is sent.
#[test]
fn mirror_settings_check_their_arguments() {
    let wire = Tripwire::new();
    let cache = Cache::new();
    let both = TANK_MIRROR_PULL | TANK_MIRROR_RESOLVE;
    let add = |cache: *mut TankCache, registry: &Arg, mirror: &Arg, caps: u32, with_err: bool| {
        let (r, m) = (terminated(registry), terminated(mirror));
        let mut err = ptr::null_mut();
        let err_ptr = if with_err {
            &mut err as *mut _
        } else {
            ptr::null_mut()
        };
        let status = unsafe { tank_cache_add_mirror(cache, as_ptr(&r), as_ptr(&m), caps, err_ptr) };
        assert_eq!(status, TankStatus::TANK_ERR_BAD_INPUT);
        with_err.then(|| unsafe { take_error(status, err) })
    };
    let reg = s(&wire.registry());
    let mirror = s("127.0.0.1:1");
    let cases: Vec<(*mut TankCache, Arg, Arg, u32, &str)> = vec![
        (
            ptr::null_mut(),
            reg.clone(),
            mirror.clone(),
            both,
            "cache is NULL",
        ),
        (cache.0, None, mirror.clone(), both, "registry is NULL"),
        (cache.0, reg.clone(), None, both, "mirror is NULL"),
        (
            cache.0,
            raw(LATIN1),
            mirror.clone(),
            both,
            "registry is not valid UTF-8",
        ),
        (
            cache.0,
            reg.clone(),
            raw(LONE_SURROGATE),
            both,
            "mirror is not valid UTF-8",
        ),
        (cache.0, reg.clone(), s(""), both, "mirror is empty"),
        (
            cache.0,
            reg.clone(),
            s("http://mirror.example"),
            both,
            "mirror",
        ),
        (
            cache.0,
            reg.clone(),
            s("ftp://mirror.example"),
            both,
            "mirror",
        ),
        (
            cache.0,
            reg.clone(),
            s("mirror.example/UPPER"),
            both,
            "mirror",
        ),
        (cache.0, reg.clone(), mirror.clone(), 0, "capabilities"),
        (cache.0, reg.clone(), mirror.clone(), 4, "capabilities"),
        (cache.0, s("a//b"), mirror.clone(), both, "registry"),
    ];
    for (c, registry, m, caps, says) in &cases {
        let e = add(*c, registry, m, *caps, true).unwrap();
        assert_eq!(e.reason, "bad_input", "{says}: {e:?}");
        assert!(e.message.contains(says), "{says}: {e:?}");
        assert!(add(*c, registry, m, *caps, false).is_none());
    }

    let load = |cache: *mut TankCache, path: &Arg| {
        let p = terminated(path);
        let mut err = ptr::null_mut();
        let status = unsafe { tank_cache_load_registries_conf(cache, as_ptr(&p), &mut err) };
        assert_eq!(status, TankStatus::TANK_ERR_BAD_INPUT);
        unsafe { take_error(status, err) }
    };
    let e = load(ptr::null_mut(), &None);
    assert_eq!(
        (e.reason.as_str(), e.message.as_str()),
        ("bad_input", "cache is NULL")
    );
    let e = load(cache.0, &raw(LATIN1));
    assert_eq!(e.message, "path is not valid UTF-8");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.conf");
    let e = load(cache.0, &s(missing.to_str().unwrap()));
    assert_eq!(e.reason, "registries_conf", "{e:?}");
    assert!(e.message.contains("missing.conf"), "{e:?}");
    let malformed = dir.path().join("registries.conf");
    std::fs::write(
        &malformed,
        format!(
            "[[registry]]\nlocation = \"{}\"\nblocked = \"yes\"\n",
            wire.registry()
        ),
    )
    .unwrap();
    let e = load(cache.0, &s(malformed.to_str().unwrap()));
    assert_eq!(e.reason, "registries_conf", "{e:?}");
    assert!(e.message.contains("registries.conf:3"), "{e:?}");
    assert!(!wire.touched(), "a request was sent for bad input");
}

/// The download settings: a NULL cache, connections past their bounds, a
/// per-host budget below one blob's connections (0 standing for each
/// one's default: 4 per blob, 16 per host). Refused with and without
/// `err`; zeros and the bounds themselves are taken.
#[test]
fn connection_settings_check_their_arguments() {
    let cache = Cache::new();
    let set = |cache: *mut TankCache, per_blob: u32, per_host: u32, threshold: u64| {
        let mut err = ptr::null_mut();
        let status =
            unsafe { tank_cache_set_connections(cache, per_blob, per_host, threshold, &mut err) };
        let unreported = unsafe {
            tank_cache_set_connections(cache, per_blob, per_host, threshold, ptr::null_mut())
        };
        assert_eq!(status, unreported, "err NULL changed the answer");
        if status == TankStatus::TANK_OK {
            assert!(err.is_null());
            Ok(())
        } else {
            Err(unsafe { take_error(status, err) })
        }
    };
    let refused: [(*mut TankCache, u32, u32, u64, &str); 7] = [
        (ptr::null_mut(), 4, 16, 0, "cache is NULL"),
        (ptr::null_mut(), 0, 0, 0, "cache is NULL"),
        (cache.0, 65, 256, 0, "per_blob 65: at most 64"),
        (cache.0, u32::MAX, 0, 0, "per_blob 4294967295: at most 64"),
        (cache.0, 4, 257, 0, "per_host 257: at most 256"),
        (cache.0, 8, 4, 0, "per_host 4 is below per_blob 8"),
        // per_blob 0 is 4; per_host 0 is 16.
        (cache.0, 0, 2, 0, "per_host 2 is below per_blob 4"),
    ];
    for (c, per_blob, per_host, threshold, says) in refused {
        let e = set(c, per_blob, per_host, threshold).unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{says}: {e:?}");
        assert_eq!(e.reason, "bad_input", "{says}: {e:?}");
        assert!(e.message.starts_with(says), "{says}: {e:?}");
    }
    let e = set(cache.0, 20, 0, 0).unwrap_err();
    assert!(
        e.message.starts_with("per_host 16 is below per_blob 20"),
        "{e:?}"
    );
    for (per_blob, per_host, threshold) in [
        (0, 0, 0),
        (1, 1, 0),
        (1, 0, 1),
        (4, 4, u64::MAX),
        (16, 0, 0),
        (64, 256, 1),
        (0, 4, 0),
    ] {
        set(cache.0, per_blob, per_host, threshold)
            .unwrap_or_else(|e| panic!("({per_blob}, {per_host}, {threshold}): {e:?}"));
    }
    assert_eq!(
        tank::ffi::cache::connection_settings(0, 0, 0).unwrap(),
        tank::stevedore::DownloadSettings::default(),
        "zeros are not the defaults"
    );
}

#[test]
fn referrers_checks_every_argument_before_any_request() {
    let wire = Tripwire::new();
    let registry = wire.registry();
    let good_digest = digest(&"a".repeat(64));
    let good = [
        s(&registry),
        s("a/b"),
        s(&good_digest),
        s("application/vnd.example+json"),
    ];
    let names = ["registry", "repo", "digest", "artifact_type"];
    let call = |args: &[Arg; 4], with_out: bool, with_err: bool| unsafe {
        let t: Vec<_> = args.iter().map(terminated).collect();
        let mut out: TankManifest = sentinel();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_referrers(
            as_ptr(&t[0]),
            as_ptr(&t[1]),
            as_ptr(&t[2]),
            as_ptr(&t[3]),
            ptr::null_mut(),
            ptr::null_mut(),
            if with_out { &mut out } else { ptr::null_mut() },
            if with_err { &mut err } else { ptr::null_mut() },
        );
        assert!(untouched(&out), "out written on failure");
        if with_err {
            take_error(status, err)
        } else {
            CallError {
                status,
                http_status: 0,
                reason: String::new(),
                message: String::new(),
            }
        }
    };
    for i in 0..4 {
        for (what, bad) in [
            ("NULL", None),
            ("not UTF-8", raw(b"\xff\xfe")),
            ("empty", s("")),
        ] {
            // A NULL artifact_type asks for every type: not bad input.
            if i == 3 && bad.is_none() {
                continue;
            }
            let mut args = good.clone();
            args[i] = bad;
            let e = call(&args, true, true);
            assert_eq!(
                (e.status, e.reason.as_str()),
                (TankStatus::TANK_ERR_BAD_INPUT, "bad_input"),
                "{} {what}: {e:?}",
                names[i]
            );
            assert!(e.message.contains(names[i]), "{} {what}: {e:?}", names[i]);
            assert_eq!(
                call(&args, true, false).status,
                TankStatus::TANK_ERR_BAD_INPUT
            );
        }
    }
    // A digest is a digest: a tag, the referrers tag's own spelling, a
    // digest of the wrong length or case are refused before any request.
    for bad in [
        "latest".to_owned(),
        format!("sha256-{}", "a".repeat(64)),
        "sha256:abc".to_owned(),
        format!("sha256:{}", "A".repeat(64)),
        format!("md5:{}", "a".repeat(32)),
    ] {
        let mut args = good.clone();
        args[2] = s(&bad);
        let e = call(&args, true, true);
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{bad}: {e:?}");
        assert!(e.message.contains("digest"), "{bad}: {e:?}");
    }
    let e = call(&good, false, true);
    assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT);
    assert!(e.message.contains("out"), "{e:?}");
    assert!(!wire.touched(), "a request was sent");
}
