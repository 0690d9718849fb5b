//! Content a test makes itself (an artifact, a referrer, an index under a
//! tag of its choosing), pushed through a registry's API with the rig's own
//! push rights, as the fixtures are.

use anyhow::{anyhow, Result};

use super::handle::Rig;
use crate::fixtures::{sha256, Blob, Manifest, RepoPlan};
use crate::push::Pusher;
use crate::which::Which;

/// One manifest for [`Rig::push`].
pub struct Upload<'a> {
    /// The tag, or the manifest's digest to push it by digest only.
    pub reference: &'a str,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Rig {
    /// Pushes `blobs`, then `manifests` in order, to `repo` on `which`
    /// (not an https one: those serve another registry's storage). Returns
    /// the manifests' digests.
    pub fn push(
        &self,
        which: Which,
        repo: &str,
        blobs: &[&[u8]],
        manifests: Vec<Upload<'_>>,
    ) -> Result<Vec<String>> {
        if which.is_tls() {
            return Err(anyhow!(
                "push to the storage's own registry, not {}",
                which.name()
            ));
        }
        let process = self
            .process(which)
            .ok_or_else(|| anyhow!("the rig was started without the {} registry", which.name()))?;
        let auth = self
            .push_auth
            .iter()
            .find(|(w, _)| *w == which)
            .map(|(_, a)| a.clone());
        let plan = RepoPlan {
            repo: repo.to_owned(),
            blobs: blobs.iter().map(|b| Blob::from_bytes(b.to_vec())).collect(),
            manifests: manifests
                .into_iter()
                .map(|m| Manifest {
                    reference: m.reference.to_owned(),
                    media_type: m.media_type,
                    digest: sha256(&m.bytes),
                    bytes: m.bytes,
                })
                .collect(),
        };
        Pusher::new(process.addr(), auth, None).push_repo(&plan, repo)?;
        Ok(plan.manifests.iter().map(|m| m.digest.clone()).collect())
    }
}
