//! The CDN as issue 23's tests need it: a per-connection rate cap, `Range`
//! answered well or badly, URLs that expire, and a log that tells
//! connections, ranges and bytes apart.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tank_testrig::{parse_rate, CdnRanges, Rig, RigOptions, Which};

const MIB: u64 = 1024 * 1024;

struct Answer {
    status: u16,
    content_range: Option<String>,
    location: Option<String>,
    accept_ranges: Option<String>,
    body: Vec<u8>,
}

/// A client of its own, so its own TCP connection; redirects not followed.
fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

fn get(agent: &ureq::Agent, url: &str, range: Option<&str>) -> Answer {
    let mut request = agent.get(url);
    if let Some(range) = range {
        request = request.set("Range", range);
    }
    let response = match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let header = |name: &str| response.header(name).map(str::to_owned);
    let (status, content_range, location, accept_ranges) = (
        response.status(),
        header("Content-Range"),
        header("Location"),
        header("Accept-Ranges"),
    );
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).unwrap();
    Answer {
        status,
        content_range,
        location,
        accept_ranges,
        body,
    }
}

/// The CDN URL of a blob in the cdn registry's storage, as its redirect
/// names it, and the blob's bytes.
fn cdn_blob(rig: &Rig, digest: &str) -> (String, Vec<u8>) {
    let file = rig.blob_data_path(Which::Cdn, digest);
    let relative = file.strip_prefix(rig.storage_dir(Which::Cdn)).unwrap();
    let base = &rig.info().cdn.as_ref().unwrap().cdn;
    let url = format!("{base}/{}", relative.display());
    (url, std::fs::read(&file).unwrap())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

#[test]
fn a_capped_cdn_gives_four_connections_about_four_times_one() {
    let rate = parse_rate("8MiB/s").unwrap();
    let rig = Rig::start(RigOptions {
        large_mib: Some(16),
        cdn_rate_per_connection: Some(rate),
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let large = rig.info().images.large.clone().unwrap();
    let layer = &large.layers[0];
    let (url, bytes) = cdn_blob(&rig, layer);
    let size = bytes.len() as u64;
    // A tar of 16 MiB of content: its headers add a little.
    assert!((16 * MIB..17 * MIB).contains(&size), "{size}");

    let started = Instant::now();
    let whole = get(&agent(), &url, None);
    let one = started.elapsed();
    assert_eq!(whole.status, 200);
    assert_eq!(&sha256(&whole.body), layer);

    let bounds = |i: u64| (i * size / 4, (i + 1) * size / 4 - 1);
    let started = Instant::now();
    let parts: Vec<Answer> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|i| {
                let url = &url;
                s.spawn(move || {
                    let (first, last) = bounds(i);
                    let range = format!("bytes={first}-{last}");
                    get(&agent(), url, Some(&range))
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let four = started.elapsed();
    let mut joined = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let i = i as u64;
        assert_eq!(part.status, 206);
        let (first, last) = bounds(i);
        let expected = format!("bytes {first}-{last}/{size}");
        assert_eq!(part.content_range.as_deref(), Some(expected.as_str()));
        joined.extend_from_slice(&part.body);
    }
    assert_eq!(&sha256(&joined), layer);

    eprintln!("capped at {rate} B/s: {size} bytes over one connection {one:?}, over four {four:?}");
    // One connection may not beat the cap; four share nothing.
    let floor = Duration::from_secs_f64(0.9 * size as f64 / rate as f64);
    assert!(one >= floor, "one connection took {one:?}, under {floor:?}");
    let speedup = one.as_secs_f64() / four.as_secs_f64();
    assert!(
        speedup >= 2.5,
        "four connections {four:?} against one {one:?}: only {speedup:.2}×"
    );

    let log = rig.cdn_requests();
    assert_eq!(log.len(), 5, "{log:?}");
    let ranged = &log[1..];
    let connections: BTreeSet<_> = ranged.iter().map(|r| r.connection.unwrap()).collect();
    assert_eq!(connections.len(), 4, "{ranged:?}");
    assert!(connections.iter().all(|c| c.ip().is_loopback()));
    assert_eq!(log[0].bytes, size);
    assert_eq!(log[0].range, None);
    assert_eq!(ranged.iter().map(|r| r.bytes).sum::<u64>(), size);
    assert!(ranged.iter().all(|r| r.status == 206 && r.bytes < size / 3));
    let mut extents: Vec<_> = ranged.iter().map(|r| (r.offset, r.bytes)).collect();
    extents.sort();
    assert_eq!(extents[0].0, 0);
    assert!(
        extents.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0),
        "{extents:?}"
    );
}

#[test]
fn ranges_are_answered_honoured_ignored_or_mislabelled() {
    let rig = Rig::start(RigOptions::cdn_only()).unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, bytes) = cdn_blob(&rig, &layer);
    let len = bytes.len();
    assert!(len > 16, "{len}");
    let client = agent();

    let open = get(&client, &url, Some("bytes=0-"));
    assert_eq!(open.status, 206);
    assert_eq!(
        open.content_range,
        Some(format!("bytes 0-{}/{len}", len - 1))
    );
    assert_eq!(open.accept_ranges.as_deref(), Some("bytes"));
    assert_eq!(open.body, bytes);
    let middle = get(&client, &url, Some("bytes=5-9"));
    assert_eq!(
        (middle.status, middle.content_range.as_deref()),
        (206, Some(format!("bytes 5-9/{len}").as_str()))
    );
    assert_eq!(middle.body, bytes[5..10]);
    let tail = get(&client, &url, Some("bytes=-4"));
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, bytes[len - 4..]);
    let past = get(&client, &url, Some(&format!("bytes={len}-")));
    assert_eq!(past.status, 416);
    assert_eq!(past.content_range, Some(format!("bytes */{len}")));
    let plain = get(&client, &url, None);
    assert_eq!((plain.status, plain.content_range), (200, None));
    assert_eq!(plain.body, bytes);

    rig.set_cdn_ranges(CdnRanges::Ignore);
    let ignored = get(&client, &url, Some("bytes=5-9"));
    assert_eq!((ignored.status, ignored.content_range), (200, None));
    assert_eq!(ignored.accept_ranges, None);
    assert_eq!(ignored.body, bytes);

    rig.set_cdn_ranges(CdnRanges::WrongContentRange);
    let wrong = get(&client, &url, Some("bytes=0-"));
    assert_eq!(wrong.status, 206);
    assert_eq!(wrong.content_range, Some(format!("bytes 1-{len}/{len}")));
    assert_eq!(wrong.body, bytes, "the bytes are the ones asked for");
    let wrong = get(&client, &url, Some("bytes=5-9"));
    assert_eq!(wrong.content_range, Some(format!("bytes 6-10/{len}")));
    assert_eq!(wrong.body, bytes[5..10]);

    rig.set_cdn_ranges(CdnRanges::Honour);
    assert_eq!(get(&client, &url, Some("bytes=5-9")).status, 206);

    // One agent, one kept-alive connection: the log tells it by address.
    let log = rig.cdn_requests();
    let seen: Vec<_> = log
        .iter()
        .map(|r| (r.range.as_deref(), r.status, r.bytes))
        .collect();
    let len = len as u64;
    let honour_tail = Some("bytes=-4");
    let past = format!("bytes={len}-");
    assert_eq!(
        seen,
        [
            (Some("bytes=0-"), 206, len),
            (Some("bytes=5-9"), 206, 5),
            (honour_tail, 206, 4),
            (Some(past.as_str()), 416, 0),
            (None, 200, len),
            (Some("bytes=5-9"), 200, len),
            (Some("bytes=0-"), 206, len),
            (Some("bytes=5-9"), 206, 5),
            (Some("bytes=5-9"), 206, 5),
        ]
    );
    let connections: BTreeSet<_> = log.iter().map(|r| r.connection.unwrap()).collect();
    assert_eq!(connections.len(), 1, "{log:?}");
}

#[test]
fn a_refusing_cdn_answers_416_to_any_range_and_200_without_one() {
    let rig = Rig::start(RigOptions {
        cdn_ranges: CdnRanges::Refuse,
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, bytes) = cdn_blob(&rig, &layer);
    let len = bytes.len();
    let client = agent();

    for range in ["bytes=0-", "bytes=5-9", "bytes=-4", "bytes=0-1,4-5"] {
        let refused = get(&client, &url, Some(range));
        assert_eq!(refused.status, 416, "{range}");
        assert_eq!(refused.content_range, Some(format!("bytes */{len}")));
        assert!(refused.body.is_empty(), "{range}");
    }
    let whole = get(&client, &url, None);
    assert_eq!((whole.status, whole.content_range), (200, None));
    assert_eq!(
        whole.accept_ranges, None,
        "a refusing server offers no ranges"
    );
    assert_eq!(whole.body, bytes);

    rig.set_cdn_ranges(CdnRanges::Honour);
    assert_eq!(get(&client, &url, Some("bytes=0-")).status, 206);
    rig.set_cdn_ranges(CdnRanges::Refuse);
    assert_eq!(get(&client, &url, Some("bytes=0-")).status, 416);

    let seen: Vec<_> = rig
        .cdn_requests()
        .iter()
        .map(|r| (r.status, r.bytes))
        .collect();
    let len = len as u64;
    assert_eq!(
        seen,
        [
            (416, 0),
            (416, 0),
            (416, 0),
            (416, 0),
            (200, len),
            (206, len),
            (416, 0)
        ]
    );
}

#[test]
fn urls_expire_and_a_new_one_comes_from_asking_again() {
    let rig = Rig::start(RigOptions {
        cdn_url_expiry: Some(Duration::from_secs(600)),
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, bytes) = cdn_blob(&rig, &layer);
    let client = agent();

    // The URL the registry redirects to is signed by the next hop.
    let hop = get(&client, &url, Some("bytes=0-"));
    assert_eq!(hop.status, 307);
    let signed = hop.location.unwrap();
    assert!(signed.starts_with(&format!("{url}?")), "{signed}");
    assert!(signed.contains("X-Tank-Signature="), "{signed}");
    let first = get(&client, &signed, Some("bytes=0-"));
    assert_eq!(first.status, 206);
    assert_eq!(first.body, bytes);

    assert!(rig.expire_cdn_urls());
    let later = get(&client, &signed, Some("bytes=5-9"));
    assert_eq!(later.status, 403);
    assert!(String::from_utf8_lossy(&later.body).contains("expired"));
    let forged = signed.replace("X-Tank-Issued=", "X-Tank-Issued=1");
    assert_eq!(get(&client, &forged, None).status, 403);

    let again = get(&client, &url, None).location.unwrap();
    assert_ne!(again, signed);
    let fresh = get(&client, &again, Some("bytes=5-9"));
    assert_eq!(fresh.status, 206);
    assert_eq!(fresh.body, bytes[5..10]);

    let statuses: Vec<u16> = rig.cdn_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [307, 206, 403, 403, 307, 206]);
}

/// What the cdn registry answers a blob read: its redirect, as a client
/// that asks the registry again gets it.
fn registry_redirect(rig: &Rig, repo: &str, digest: &str) -> String {
    let cdn = rig.info().cdn.clone().unwrap();
    let scope = format!("repository:{repo}:pull");
    let answer = ureq::get(&cdn.realm)
        .query("service", "tank-rig")
        .query("scope", &scope)
        .call()
        .unwrap();
    let token: serde_json::Value = serde_json::from_reader(answer.into_reader()).unwrap();
    let token = token["token"].as_str().unwrap();
    let url = format!("http://{}/v2/{repo}/blobs/{digest}", cdn.registry);
    let answer = agent()
        .get(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(answer.status(), 307);
    answer.header("Location").unwrap().to_owned()
}

#[test]
fn a_url_from_the_registry_expires_and_asking_the_registry_again_renews_it() {
    let rig = Rig::start(RigOptions {
        cdn_url_expiry: Some(Duration::from_secs(600)),
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let image = rig.info().images.oci_image.clone();
    let layer = &image.layers[0];
    let (url, bytes) = cdn_blob(&rig, layer);
    let client = agent();

    let redirect = registry_redirect(&rig, &image.repo, layer);
    assert_eq!(redirect, url, "the registry names the unsigned CDN URL");
    let signed = get(&client, &redirect, None).location.unwrap();
    assert_eq!(get(&client, &signed, Some("bytes=0-")).body, bytes);
    assert!(rig.expire_cdn_urls());
    assert_eq!(get(&client, &signed, Some("bytes=1-")).status, 403);

    let renewed = get(&client, &registry_redirect(&rig, &image.repo, layer), None);
    let fresh = get(&client, &renewed.location.unwrap(), Some("bytes=1-"));
    assert_eq!((fresh.status, fresh.body.as_slice()), (206, &bytes[1..]));
}

#[test]
fn an_expiry_of_zero_expires_every_url_at_once() {
    let rig = Rig::start(RigOptions {
        cdn_url_expiry: Some(Duration::ZERO),
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, _) = cdn_blob(&rig, &layer);
    let client = agent();
    let signed = get(&client, &url, None).location.unwrap();
    assert_eq!(get(&client, &signed, None).status, 403);
}

#[test]
fn without_expiry_there_is_no_signing_hop() {
    let rig = Rig::start(RigOptions::cdn_only()).unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, _) = cdn_blob(&rig, &layer);
    assert_eq!(get(&agent(), &url, None).status, 200);
    assert!(!rig.expire_cdn_urls());
}

#[test]
fn a_body_cut_mid_way_closes_its_connection_and_can_be_resumed() {
    let rig = Rig::start(RigOptions::cdn_only()).unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, bytes) = cdn_blob(&rig, &layer);
    let half = bytes.len() as u64 / 2;
    rig.cut_cdn_bodies(half, 1);

    let response = agent().get(&url).call().unwrap();
    assert_eq!(response.status(), 200);
    let mut got = Vec::new();
    let read = response.into_reader().read_to_end(&mut got);
    assert!(read.is_err(), "the body ended short, not cleanly: {read:?}");
    assert_eq!(got, bytes[..half as usize]);

    // The cut is spent: the rest comes whole, on a new connection.
    let rest = get(&agent(), &url, Some(&format!("bytes={half}-")));
    assert_eq!(rest.status, 206);
    got.extend_from_slice(&rest.body);
    assert_eq!(&sha256(&got), &layer);

    let log = rig.cdn_requests();
    let sent: Vec<_> = log.iter().map(|r| (r.status, r.offset, r.bytes)).collect();
    assert_eq!(
        sent,
        [(200, 0, half), (206, half, bytes.len() as u64 - half)]
    );
    assert_ne!(log[0].connection, log[1].connection);
    assert!(
        log.iter().all(|r| !r.given_up),
        "a cut and a whole body are not given up by the client: {log:#?}"
    );
}

#[test]
fn a_body_the_client_lets_go_of_is_logged_as_given_up() {
    let rig = Rig::start(RigOptions {
        large_mib: Some(16),
        cdn_rate_per_connection: Some(parse_rate("4MiB/s").unwrap()),
        ..RigOptions::cdn_only()
    })
    .unwrap();
    let large = rig.info().images.large.clone().unwrap();
    let (url, bytes) = cdn_blob(&rig, &large.layers[0]);
    let response = agent().get(&url).call().unwrap();
    let mut first = vec![0; MIB as usize];
    response.into_reader().read_exact(&mut first).unwrap();
    assert_eq!(first, bytes[..MIB as usize]);
    // Dropped: the connection closes under the CDN's writes.

    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = loop {
        let log = rig.cdn_requests();
        if log[0].ended.is_some() {
            break log[0].clone();
        }
        assert!(Instant::now() < deadline, "never ended: {log:#?}");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(ended.given_up, "{ended:#?}");
    assert!(ended.bytes < bytes.len() as u64, "{ended:#?}");
}

/// Waits (at most 5 s) until the CDN has `want` connections open: the
/// kernel finishes loopback handshakes and closes in its own time.
fn open_settles_at(rig: &Rig, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let open = rig.cdn_open_connections();
        if open == want || Instant::now() > deadline {
            return open;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_cdn_counts_the_connections_open_at_once() {
    let rig = Rig::start(RigOptions::cdn_only()).unwrap();
    let layer = rig.info().images.oci_image.layers[0].clone();
    let (url, bytes) = cdn_blob(&rig, &layer);
    let base = &rig.info().cdn.as_ref().unwrap().cdn;
    let addr = base.strip_prefix("http://").unwrap().to_owned();
    assert_eq!(rig.cdn_peak_connections(), 0);

    // Idle connections count too: a client's budget is of connections.
    let idle: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    assert_eq!(open_settles_at(&rig, 5), 5);
    let client = agent();
    assert_eq!(get(&client, &url, None).body, bytes);
    let log = rig.cdn_requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].open_connections, 6, "{log:?}");
    assert!(log[0].ended.unwrap() >= log[0].at, "{log:?}");
    assert_eq!(rig.cdn_peak_connections(), 6);
    let mut expected: Vec<_> = idle.iter().map(|c| c.local_addr().unwrap()).collect();
    expected.push(log[0].connection.unwrap());
    expected.sort();
    let mut at_peak = rig.cdn_connections_at_peak();
    at_peak.sort();
    assert_eq!(at_peak, expected, "the idle ones and the one asking");

    drop(idle);
    drop(client);
    assert_eq!(open_settles_at(&rig, 0), 0);
    assert_eq!(rig.cdn_peak_connections(), 6, "the peak stays until reset");
    rig.reset_cdn_peak();
    assert_eq!(rig.cdn_peak_connections(), 0);

    // Requests one after another on one kept-alive connection: one.
    let client = agent();
    for _ in 0..3 {
        assert_eq!(get(&client, &url, Some("bytes=0-3")).status, 206);
    }
    assert_eq!(rig.cdn_peak_connections(), 1);
    // Two clients at once: two.
    let other = agent();
    assert_eq!(get(&other, &url, Some("bytes=0-3")).status, 206);
    assert_eq!(rig.cdn_peak_connections(), 2);
    let opens: Vec<usize> = rig
        .cdn_requests()
        .iter()
        .map(|r| r.open_connections)
        .collect();
    assert_eq!(opens, [6, 1, 1, 1, 2], "a reset keeps the log");
    // A new window starts from what is still open.
    drop(other);
    assert_eq!(open_settles_at(&rig, 1), 1);
    rig.clear_logs();
    assert_eq!(rig.cdn_peak_connections(), 1);
}
