//! Random secrets for the rig's users, upload sessions and tokens.

use anyhow::{anyhow, Result};
use ring::rand::{SecureRandom, SystemRandom};

/// `bytes` random bytes from the OS, hex-encoded (passwords, secrets, jti).
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| anyhow!("the system RNG failed"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
