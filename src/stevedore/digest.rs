//! Content digests (`algo:hex`) and the streaming hasher that checks them.

use std::fmt;

use sha2::{Digest as _, Sha256, Sha512};

use super::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A parsed digest. Only lowercase hex of the algorithm's exact length is
/// accepted: anything else could name the same content two ways.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// Why a string is not a digest; callers turn this into the error their
/// context needs (bad input from a caller, protocol error from a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSyntaxError(pub String);

impl Digest {
    pub fn parse(s: &str) -> std::result::Result<Digest, DigestSyntaxError> {
        // The input as messages show it: a digest is at most 135 characters,
        // and a megabyte of junk must not become a megabyte of message.
        let shown = || s.chars().take(140).collect::<String>();
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestSyntaxError(format!("{:?} has no algorithm prefix", shown())))?;
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(DigestSyntaxError(format!(
                    "{:?} uses an unsupported algorithm (sha256 or sha512 expected)",
                    shown()
                )))
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(DigestSyntaxError(format!(
                "{:?} has {} hex digits, {} expected",
                shown(),
                hex.len(),
                algorithm.hex_len()
            )));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestSyntaxError(format!(
                "{:?} is not lowercase hexadecimal",
                shown()
            )));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The digest of `bytes` under `algorithm`, in one pass.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let mut hasher = Hasher::new(algorithm);
        hasher.update(bytes);
        hasher.finish()
    }

    /// Checks a caller-supplied digest string, naming the argument on failure.
    pub fn parse_argument(name: &str, s: &str) -> Result<Digest> {
        Digest::parse(s).map_err(|e| Error::bad_input(format!("{name}: {}", e.0)))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// Hashes bytes as they arrive so a body is never read twice.
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Hasher {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, to_hex(&h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, to_hex(&h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_sha256_and_sha512() {
        let d = Digest::parse(EMPTY_SHA256).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        let long = format!("sha512:{}", "a".repeat(128));
        assert_eq!(Digest::parse(&long).unwrap().algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            &EMPTY_SHA256.to_uppercase(),
            &EMPTY_SHA256.replace("sha256", "SHA256"),
            &format!("sha256:{}", "a".repeat(63)),
            &format!("sha256:{}", "a".repeat(65)),
            &format!("sha256:{}", "g".repeat(64)),
            &format!("md5:{}", "a".repeat(32)),
            &format!("sha512:{}", "a".repeat(64)),
            &format!("sha256:{}\n", "a".repeat(64)),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hashes_in_pieces_like_in_one() {
        let data = b"hello, registry";
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(&data[..5]);
        h.update(&data[5..]);
        assert_eq!(h.finish(), Digest::of(Algorithm::Sha256, data));
        assert_eq!(Digest::of(Algorithm::Sha256, b"").to_string(), EMPTY_SHA256);
    }

    #[test]
    fn argument_errors_name_the_argument() {
        let e = Digest::parse_argument("digest", "nope").unwrap_err();
        assert_eq!(e.kind, super::super::error::ErrorKind::BadInput);
        assert!(e.message.starts_with("digest:"), "{}", e.message);
    }
}
