//! The async core called directly, outside the C ABI, with its string
//! arguments parsed as the C layer parses them.

use tank::stevedore::{
    Bounds, Client, Digest, Manifest, Registry, Repository, Result, Session, TagOrDigest,
};

/// `tank_manifest` without the C layer.
pub async fn manifest(
    client: &Client,
    registry: &str,
    repo: &str,
    reference: &str,
    session: Option<&Session>,
) -> Result<Manifest> {
    let repo = client.repo(
        Registry::parse(registry)?,
        Repository::parse(repo)?,
        session,
    )?;
    repo.manifest(&TagOrDigest::parse(reference)?).await
}

/// `tank_blob` without the C layer.
pub async fn blob(
    client: &Client,
    registry: &str,
    repo: &str,
    digest: &str,
    session: Option<&Session>,
) -> Result<Vec<u8>> {
    let repo = client.repo(
        Registry::parse(registry)?,
        Repository::parse(repo)?,
        session,
    )?;
    let digest = Digest::parse_argument("digest", digest)?;
    repo.blob(&digest, Bounds::default()).await
}
