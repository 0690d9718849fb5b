//! What the ranged-download tests share: the session setting they turn,
//! and readings of the rig CDN's log for one blob (which bytes went out,
//! on which connections, asked how).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime};

use tank::ffi::cache::tank_cache_set_connections;
use tank_testrig::{CdnRequest, Rig};

use super::{settled, Cache, CallError};

pub const MIB: u64 = 1024 * 1024;

/// `tank_cache_set_connections`.
pub fn set_connections(
    cache: &Cache,
    per_blob: u32,
    per_host: u32,
    threshold: u64,
) -> Result<(), CallError> {
    let mut err = std::ptr::null_mut();
    unsafe {
        settled(
            tank_cache_set_connections(cache.0, per_blob, per_host, threshold, &mut err),
            err,
        )
    }
}

/// The CDN's GETs of one blob (by the hex of its digest in the path), in
/// the order they arrived.
pub fn blob_gets(rig: &Rig, digest: &str) -> Vec<CdnRequest> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    rig.cdn_requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains(hex))
        .collect()
}

/// Waits (at most 20 s) until every one of the blob's responses has ended,
/// so byte counts are final (a cancelled call's connections may still be
/// winding down on the CDN's side); the log then.
pub fn settled_gets(rig: &Rig, digest: &str) -> Vec<CdnRequest> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let gets = blob_gets(rig, digest);
        if gets.iter().all(|r| r.ended.is_some()) {
            return gets;
        }
        assert!(
            Instant::now() < deadline,
            "CDN responses that never ended: {gets:#?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (at most 60 s) until `cond` holds of the blob's GETs so far.
pub fn wait_for_gets(rig: &Rig, digest: &str, what: &str, cond: impl Fn(&[CdnRequest]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond(&blob_gets(rig, digest)) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            blob_gets(rig, digest)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `bytes=a-b` as `a..b+1`, `bytes=a-` as `a..size`.
pub fn asked(request: &CdnRequest, size: u64) -> Option<Range<u64>> {
    let spec = request.range.as_deref()?.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let first: u64 = first.parse().ok()?;
    let end = match last {
        "" => size,
        last => last.parse::<u64>().ok()? + 1,
    };
    Some(first..end)
}

/// Whether the request named its range's end (a piece, not a probe).
pub fn is_piece(request: &CdnRequest) -> bool {
    request
        .range
        .as_deref()
        .is_some_and(|r| r.starts_with("bytes=") && !r.ends_with('-'))
}

/// The bytes each response with a body carried: `offset..offset+bytes`.
pub fn sent(gets: &[CdnRequest]) -> Vec<Range<u64>> {
    gets.iter()
        .filter(|r| r.bytes > 0)
        .map(|r| r.offset..r.offset + r.bytes)
        .collect()
}

pub fn total(gets: &[CdnRequest]) -> u64 {
    gets.iter().map(|r| r.bytes).sum()
}

/// The union of `ranges`, merged and in order.
pub fn union(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| !r.is_empty()).cloned().collect();
    sorted.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in sorted {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

pub fn length(ranges: &[Range<u64>]) -> u64 {
    union(ranges).iter().map(|r| r.end - r.start).sum()
}

/// Bytes in both `a` and `b` (each taken as a union).
pub fn overlap(a: &[Range<u64>], b: &[Range<u64>]) -> u64 {
    let (a, b) = (union(a), union(b));
    let mut both = 0;
    for x in &a {
        for y in &b {
            let (start, end) = (x.start.max(y.start), x.end.min(y.end));
            both += end.saturating_sub(start);
        }
    }
    both
}

/// What each response gave the client, as the client asked for it: from
/// its first byte up to what it was sent, or up to the first byte of a
/// request that starts inside it and was made while it ran, or soon after
/// it when the client gave it up (where the client let go of it: a
/// piece whose tail another connection took, perhaps while its own request
/// was on the way; on a busy machine that request can reach the CDN well
/// after the client let go). What a response was sent past that point was
/// in flight when the client let go, not asked for twice.
pub fn kept(gets: &[CdnRequest]) -> Vec<Range<u64>> {
    // How late the request for a taken tail may reach the CDN after the
    // client let go of the piece it came from (a second was seen with
    // nine test binaries' worth of work on two cores).
    const LET_GO: Duration = Duration::from_secs(5);
    let carried: Vec<&CdnRequest> = gets.iter().filter(|r| r.bytes > 0).collect();
    let now = SystemTime::now();
    carried
        .iter()
        .map(|r| {
            let (start, until) = (r.offset, r.ended.unwrap_or(now));
            let mut end = r.offset + r.bytes;
            for later in &carried {
                // Asked for while this one ran, or just before it reached
                // the CDN (a tail taken while its request was in flight),
                // or after it, when the client let go of it.
                let while_it_ran = later.at <= until;
                let after_let_go = r.given_up && later.at >= r.at && later.at <= until + LET_GO;
                if !std::ptr::eq(*later, *r)
                    && (while_it_ran || after_let_go)
                    && (start + 1..end).contains(&later.offset)
                {
                    end = later.offset;
                }
            }
            start..end
        })
        .collect()
}

/// How many bytes a response may have had in flight when the client let
/// go of it: the most the kernel buffers on both ends of a loopback TCP
/// connection (`tcp_wmem` and `tcp_rmem` at their largest), and the CDN's
/// read ahead of its socket.
pub fn in_flight_bound() -> u64 {
    let largest = |name: &str| -> u64 {
        let path = format!("/proc/sys/net/ipv4/{name}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.split_whitespace()
            .last()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{path}: {text:?}"))
    };
    largest("tcp_wmem") + largest("tcp_rmem") + MIB
}

/// The ranges of `path` that hold data (`SEEK_DATA`/`SEEK_HOLE`): what a
/// download wrote into a partial it writes at offsets, to the filesystem's
/// block. None when there is no such file (yet, or any more).
pub fn written(path: &std::path::Path) -> Vec<Range<u64>> {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let len = file.metadata().unwrap().len();
    let fd = file.as_raw_fd();
    let mut ranges = Vec::new();
    let mut at = 0u64;
    while at < len {
        // SAFETY: lseek on a descriptor this function owns; no memory passed.
        let data = unsafe { libc::lseek(fd, at as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            break; // ENXIO: no data past `at`
        }
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        assert!(hole >= data, "SEEK_HOLE on {}", path.display());
        ranges.push(data as u64..(hole as u64).min(len));
        at = hole as u64;
    }
    ranges
}

/// The connections that carried a body.
pub fn connections(gets: &[CdnRequest]) -> BTreeSet<SocketAddr> {
    gets.iter()
        .filter(|r| r.bytes > 0)
        .filter_map(|r| r.connection)
        .collect()
}

/// The most requests in flight at once (from arrival to the end of the
/// response), from the log's times; a response not ended yet counts as
/// still running.
pub fn peak_in_flight(requests: &[CdnRequest]) -> usize {
    let mut events: Vec<(SystemTime, i32)> = Vec::new();
    let now = SystemTime::now();
    for r in requests {
        events.push((r.at, 1));
        events.push((r.ended.unwrap_or(now).max(r.at), -1));
    }
    // At one instant, ends before starts: back-to-back is not overlap.
    events.sort();
    let (mut running, mut peak) = (0i32, 0i32);
    for (_, step) in events {
        running += step;
        peak = peak.max(running);
    }
    peak as usize
}

/// One line per request, for failure messages.
pub fn describe(gets: &[CdnRequest]) -> String {
    let start = gets.iter().map(|r| r.at).min();
    gets.iter()
        .map(|r| {
            let ms = |t: SystemTime| {
                start
                    .and_then(|s| t.duration_since(s).ok())
                    .map_or(0, |d| d.as_millis())
            };
            format!(
                "{:>6}ms-{:>6}ms {} {} {:?} offset {} bytes {} open {}",
                ms(r.at),
                r.ended.map_or("…".to_owned(), |e| ms(e).to_string()),
                r.connection.map_or("?".into(), |c| c.to_string()),
                r.status,
                r.range,
                r.offset,
                r.bytes,
                r.open_connections,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The connections open at the CDN's peak, each with the requests it
/// carried (ms from the first request): busy, idle between pieces, or
/// kept open after its last.
pub fn describe_peak(rig: &Rig, requests: &[CdnRequest]) -> String {
    let start = requests.iter().map(|r| r.at).min();
    let ms = |t: SystemTime| {
        start
            .and_then(|s| t.duration_since(s).ok())
            .map_or(0, |d| d.as_millis())
    };
    rig.cdn_connections_at_peak()
        .iter()
        .map(|peer| {
            let carried: Vec<String> = requests
                .iter()
                .filter(|r| r.connection == Some(*peer))
                .map(|r| {
                    let end = r.ended.map_or("…".to_owned(), |e| ms(e).to_string());
                    format!("{}-{end}", ms(r.at))
                })
                .collect();
            format!("{peer}: {}", carried.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
