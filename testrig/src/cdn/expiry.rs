//! URLs that expire, as S3's presigned ones do.
//!
//! distribution 2.8's `redirect` middleware keeps only the scheme and host
//! of its `baseurl` and adds nothing to the path, so the registry cannot
//! sign. The CDN does it at the next hop instead: an unsigned blob URL (the
//! one the registry redirected to) gets a 307 to itself with the time of
//! issue and an HMAC in the query; that signed URL answers 403 once it is
//! older than the expiry, or once [`Expiry::expire_all`] ran after it was
//! issued. A client that follows redirects thus gets a fresh signed URL
//! every time it asks the registry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use ring::hmac;

const ISSUED: &str = "X-Tank-Issued";
const SERIAL: &str = "X-Tank-Serial";
const SIGNATURE: &str = "X-Tank-Signature";

pub(super) struct Expiry {
    after: Duration,
    key: hmac::Key,
    /// The serial of the last URL signed; a count, not a clock, so that
    /// expiring "everything until now" cannot catch a URL signed just after.
    serial: AtomicU64,
    /// URLs whose serial is at most this are expired.
    expired_through: AtomicU64,
}

/// What a blob URL's query says about it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Not signed yet: redirect to [`Expiry::sign`].
    Unsigned,
    Valid,
    Expired,
    Forged,
}

impl Expiry {
    pub(super) fn new(after: Duration) -> Result<Self> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| anyhow!("cdn: no randomness for the URL signing key"))?;
        Ok(Expiry {
            after,
            key,
            serial: AtomicU64::new(0),
            expired_through: AtomicU64::new(0),
        })
    }

    /// The query of `path`'s signed URL, issued now.
    pub(super) fn sign(&self, path: &str) -> String {
        let issued = now_ms();
        let serial = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
        format!(
            "{ISSUED}={issued}&{SERIAL}={serial}&{SIGNATURE}={}",
            self.signature(path, issued, serial)
        )
    }

    pub(super) fn check(&self, path: &str, query: Option<&str>) -> Verdict {
        let field = |name: &str| {
            form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let (Some(issued), Some(serial), Some(signature)) =
            (field(ISSUED), field(SERIAL), field(SIGNATURE))
        else {
            return Verdict::Unsigned;
        };
        let (Ok(issued), Ok(serial)) = (issued.parse::<u64>(), serial.parse::<u64>()) else {
            return Verdict::Forged;
        };
        if signature != self.signature(path, issued, serial) {
            return Verdict::Forged;
        }
        let age = Duration::from_millis(now_ms().saturating_sub(issued));
        if age >= self.after || serial <= self.expired_through.load(Ordering::SeqCst) {
            Verdict::Expired
        } else {
            Verdict::Valid
        }
    }

    /// Every URL issued until now is expired from now on.
    pub(super) fn expire_all(&self) {
        let last = self.serial.load(Ordering::SeqCst);
        self.expired_through.fetch_max(last, Ordering::SeqCst);
    }

    fn signature(&self, path: &str, issued: u64, serial: u64) -> String {
        let tag = hmac::sign(&self.key, format!("{issued}\n{serial}\n{path}").as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_urls_hold_until_they_expire() {
        let expiry = Expiry::new(Duration::from_secs(60)).unwrap();
        assert_eq!(expiry.check("/a", None), Verdict::Unsigned);
        let query = expiry.sign("/a");
        assert_eq!(expiry.check("/a", Some(&query)), Verdict::Valid);
        assert_eq!(expiry.check("/b", Some(&query)), Verdict::Forged);
        expiry.expire_all();
        assert_eq!(expiry.check("/a", Some(&query)), Verdict::Expired);
        let again = expiry.sign("/a");
        assert_eq!(expiry.check("/a", Some(&again)), Verdict::Valid);
        let zero = Expiry::new(Duration::ZERO).unwrap();
        let query = zero.sign("/a");
        assert_eq!(zero.check("/a", Some(&query)), Verdict::Expired);
    }
}
