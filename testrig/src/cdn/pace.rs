//! The per-connection rate cap real CDNs have: every TCP connection (client
//! address and port) gets its own token bucket, kept across the requests it
//! carries, so N connections get about N times the rate of one.
//!
//! The rig serves each response on a worker thread of its own, so the
//! bucket's timer is a `thread::sleep` for exactly the time the bytes owe,
//! never a polling loop.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Bytes handed out per read: at 1 MiB/s a 64 KiB step is 62 ms, smooth
/// enough for a transfer that takes seconds.
const STEP: usize = 64 * 1024;

/// How far ahead of its schedule an idle connection may send (the bucket's
/// depth, as time at the rate).
const BURST: Duration = Duration::from_millis(20);

/// `64MiB/s`, `512KiB/s`, `1000 B/s` (spaces allowed) as bytes a second.
pub fn parse_rate(text: &str) -> Result<u64> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let per_second = compact
        .strip_suffix("/s")
        .with_context(|| format!("rate {text:?}: expected e.g. 64MiB/s, 512KiB/s or 1000B/s"))?;
    let (number, unit) = per_second
        .find(|c: char| !c.is_ascii_digit())
        .map_or((per_second, ""), |at| per_second.split_at(at));
    let scale = match unit {
        "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => bail!("rate {text:?}: the unit is B, KiB, MiB or GiB, per second"),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("rate {text:?}: not a whole number"))?;
    match n.checked_mul(scale) {
        Some(0) => bail!("rate {text:?}: must be above zero"),
        Some(rate) => Ok(rate),
        None => bail!("rate {text:?}: too large"),
    }
}

/// One bucket per connection seen.
pub(super) struct Buckets {
    rate: u64,
    // Never pruned: an entry is a few bytes, and a later connection that
    // reuses a port only inherits at most BURST of credit.
    by_connection: Mutex<HashMap<SocketAddr, Arc<Mutex<Bucket>>>>,
}

pub(super) struct Bucket {
    /// When the bytes granted so far are due (a GCRA bucket).
    due: Instant,
}

impl Buckets {
    pub(super) fn new(rate: u64) -> Self {
        Buckets {
            rate,
            by_connection: Mutex::new(HashMap::new()),
        }
    }

    /// `body`, paced by the bucket of `connection` (one of its own when the
    /// address is unknown).
    pub(super) fn pace<R: Read>(&self, connection: Option<SocketAddr>, body: R) -> Paced<R> {
        let fresh = || {
            Arc::new(Mutex::new(Bucket {
                due: Instant::now(),
            }))
        };
        let bucket = match (connection, self.by_connection.lock()) {
            (Some(addr), Ok(mut map)) => Arc::clone(map.entry(addr).or_insert_with(fresh)),
            _ => fresh(),
        };
        Paced {
            inner: body,
            bucket,
            rate: self.rate,
        }
    }
}

pub(super) struct Paced<R> {
    inner: R,
    bucket: Arc<Mutex<Bucket>>,
    rate: u64,
}

impl<R: Read> Read for Paced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = buf.len().min(STEP);
        let n = self.inner.read(&mut buf[..step])?;
        let wait = match self.bucket.lock() {
            Ok(mut bucket) => bucket.take(n as u64, self.rate),
            Err(_) => Duration::ZERO,
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        Ok(n)
    }
}

impl Bucket {
    /// Grants `n` bytes; how long to wait before sending them.
    fn take(&mut self, n: u64, rate: u64) -> Duration {
        let now = Instant::now();
        let earliest = now.checked_sub(BURST).unwrap_or(now);
        let start = self.due.max(earliest);
        self.due = start + Duration::from_secs_f64(n as f64 / rate as f64);
        self.due.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("64MiB/s").unwrap(), 64 << 20);
        assert_eq!(parse_rate("512KiB/s").unwrap(), 512 << 10);
        assert_eq!(parse_rate("1000 B/s").unwrap(), 1000);
        assert_eq!(parse_rate("1GiB/s").unwrap(), 1 << 30);
        for bad in ["64MiB", "64MB/s", "MiB/s", "0MiB/s", "-1B/s", "1.5MiB/s"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_owes_time_for_bytes_past_its_burst() {
        let mut bucket = Bucket {
            due: Instant::now(),
        };
        // 1 MiB at 1 MiB/s: about a second owed, less the burst at most.
        let wait = bucket.take(1 << 20, 1 << 20);
        assert!(wait > Duration::from_millis(950), "{wait:?}");
        let more = bucket.take(1 << 20, 1 << 20);
        assert!(more > wait + Duration::from_millis(950), "{more:?}");
    }
}
