//! The htpasswd registry's one user: the bcrypt file its config names, and
//! how the fixture pusher logs in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::push::PushAuth;
use crate::random::random_hex;
use crate::registry::HtpasswdConfig;

/// The htpasswd registry's user and realm.
pub(super) const BASIC_USER: &str = "bob";
pub(super) const BASIC_REALM: &str = "tank-rig-basic";
/// bcrypt's lowest cost: distribution checks the hash on every request.
const BCRYPT_COST: u32 = 4;

/// The htpasswd registry's user, and the file that holds its bcrypt hash.
pub(super) struct BasicUser {
    pub(super) password: String,
    pub(super) htpasswd: PathBuf,
}

impl BasicUser {
    pub(super) fn create(root: &Path) -> Result<BasicUser> {
        let password = random_hex(16)?;
        let hash = bcrypt::hash(&password, BCRYPT_COST).context("hashing the htpasswd password")?;
        let htpasswd = root.join("htpasswd");
        std::fs::write(&htpasswd, format!("{BASIC_USER}:{hash}\n"))
            .with_context(|| format!("writing {}", htpasswd.display()))?;
        Ok(BasicUser { password, htpasswd })
    }

    /// The `auth: htpasswd` section of the registry's config.
    pub(super) fn registry_config(&self) -> HtpasswdConfig {
        HtpasswdConfig {
            realm: BASIC_REALM.to_owned(),
            path: self.htpasswd.clone(),
        }
    }

    /// How the fixture pusher logs in: Basic credentials on every request.
    pub(super) fn push_auth(&self) -> PushAuth {
        PushAuth::Basic {
            username: BASIC_USER.to_owned(),
            password: self.password.clone(),
        }
    }
}
