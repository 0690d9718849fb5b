//! Ranges of one blob over separate TCP connections, from a registry that
//! speaks HTTP/2 (the rig's https registry, ALPN `h2`, serving blobs
//! itself): HTTP/2 would carry every range as a stream of one connection,
//! which a per-connection cap throttles as one (issue 23's promise 1).
//!
//! Connections are counted where they start: this binary defines
//! `connect` (see `mirrors/connects.rs`), so every connect(2) tank makes
//! to the registry's port is seen. The CA is trusted through
//! `SSL_CERT_FILE`, set before any call, as `tls.rs` does.

mod common;
#[path = "mirrors/connects.rs"]
mod connects;

use std::sync::{Mutex, OnceLock};

use common::*;
use tank::ffi::cache::tank_cache_set_connections;

const MIB: usize = 1 << 20;

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(start_tls_trusted)
}

/// One test at a time: connects are counted per port, for the process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn connections(cache: &Cache, per_blob: u32, threshold: u64) {
    let mut err = std::ptr::null_mut();
    let status = unsafe { tank_cache_set_connections(cache.0, per_blob, 16, threshold, &mut err) };
    assert_eq!(status, TankStatus::TANK_OK);
}

/// Bytes that differ at every offset, so a range written at the wrong
/// place changes the digest.
fn blob(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 509 + seed) as u8).collect()
}

struct Fetched {
    connects: usize,
    /// (protocol, status) of the registry's blob GETs.
    gets: Vec<(String, u16)>,
}

/// `tank_blob_to_file` of a fresh `size`-byte blob from the https
/// registry, with `per_blob` connections and ranges from 16 MiB.
fn fetch(size: usize, per_blob: u32, seed: usize) -> Fetched {
    let rig = rig();
    let tls = rig.info().tls.clone().unwrap();
    let registry = format!("https://{}", tls.registry);
    let port: u16 = tls.registry.rsplit(':').next().unwrap().parse().unwrap();
    let bytes = blob(size, seed);
    let digest = sha256(&bytes);
    // The https registry serves the plain one's storage.
    rig.push(Which::Plain, "ranged/h2", &[&bytes], vec![])
        .unwrap();
    let cache = Cache::new();
    connections(&cache, per_blob, 16 << 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");

    rig.clear_logs();
    connects::watch(port);
    let before = connects::attempts(port);
    let (fetched, _) = blob_to_file(
        &registry,
        "ranged/h2",
        &digest,
        Some(size as u64),
        &path,
        &cache,
        None,
    );
    fetched.unwrap();
    let connects = connects::attempts(port) - before;
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let gets = rig
        .registry_requests(Which::Tls)
        .into_iter()
        .filter(|r| r.method == "GET" && r.reference() == Some(digest.as_str()))
        .map(|r| (r.proto, r.status))
        .collect();
    Fetched { connects, gets }
}

#[test]
fn ranges_from_an_http2_registry_go_over_connections_of_their_own() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // 80 MiB over up to 4 connections: 4 pieces of 20 MiB. Uncapped on
    // loopback, two connections are no faster than one, so the ramp keeps
    // it to two (tests/ranged.rs shows four against a capped CDN).
    let f = fetch(80 * MIB, 4, 1);
    assert!(
        f.gets.len() >= 2
            && f.gets
                .iter()
                .all(|(proto, status)| proto == "HTTP/1.1" && *status == 206),
        "every piece an HTTP/1.1 range (206), none a stream of the HTTP/2 connection: {:?}",
        f.gets
    );
    // An HTTP/1.1 request in flight holds its connection: the second
    // connection is a new one (the first may be one another test left in
    // the pool). As streams of HTTP/2 they would need none.
    assert!(
        f.connects >= 1,
        "{} new connections for ranges at once: {:?}",
        f.connects,
        f.gets
    );
}

#[test]
fn one_connection_per_blob_is_one_stream() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let f = fetch(40 * MIB, 1, 2);
    assert_eq!(f.gets, vec![("HTTP/1.1".to_owned(), 200)]);
    assert!(f.connects <= 1, "{} connections", f.connects);
}
