//! The benchmark's oci-client peer, timed from inside, printing the seconds
//! the work took.
//!
//! - `oci-peer REGISTRY REPO DIGEST SIZE OUT`: one blob the way an
//!   oci-client user pulls it (`Client::pull_blob` into a
//!   `tokio::fs::File`, anonymous auth first).
//! - `oci-peer image REGISTRY REPO TAG LAYOUT`: a whole image the way
//!   oci-client's own `Client::pull` does it (`pull_image_manifest`, then the
//!   blobs through `pull_blob`, `max_concurrent_download` at once: its
//!   default, 16), except that each blob goes into a `tokio::fs::File` at
//!   `LAYOUT/blobs/sha256/<hex>` instead of a `Vec` in memory. The config is
//!   pulled with the layers; the manifest stays in memory.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [mode, registry, repo, tag, layout] if mode == "image" => {
            image(registry, repo, tag, Path::new(layout)).await
        }
        [registry, repo, digest, size, out] => blob(registry, repo, digest, size, out).await,
        _ => anyhow::bail!(
            "usage: oci-peer REGISTRY REPO DIGEST SIZE OUT | oci-peer image REGISTRY REPO TAG LAYOUT"
        ),
    }
}

fn client() -> Client {
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
}

async fn blob(registry: &str, repo: &str, digest: &str, size: &str, out: &str) -> Result<()> {
    let client = client();
    let reference: Reference = format!("{registry}/{repo}@{digest}")
        .parse()
        .context("reference")?;
    let layer = OciDescriptor {
        digest: digest.to_owned(),
        size: size.parse().context("size")?,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        ..Default::default()
    };
    let started = Instant::now();
    client
        .auth(
            &reference,
            &RegistryAuth::Anonymous,
            RegistryOperation::Pull,
        )
        .await
        .context("auth")?;
    let file = tokio::fs::File::create(out).await.context("create")?;
    client
        .pull_blob(&reference, &layer, file)
        .await
        .context("pull_blob")?;
    println!("{}", started.elapsed().as_secs_f64());
    Ok(())
}

async fn image(registry: &str, repo: &str, tag: &str, layout: &Path) -> Result<()> {
    let started = Instant::now();
    let client = client();
    let max = ClientConfig::default().max_concurrent_download;
    let reference: Reference = format!("{registry}/{repo}:{tag}")
        .parse()
        .context("reference")?;
    let (manifest, _digest) = client
        .pull_image_manifest(&reference, &RegistryAuth::Anonymous)
        .await
        .context("pull_image_manifest")?;
    let dir = layout.join("blobs/sha256");
    tokio::fs::create_dir_all(&dir)
        .await
        .context("create_dir_all")?;
    let blobs: Vec<&OciDescriptor> = std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .collect();
    stream::iter(blobs)
        .map(|d| {
            let (client, reference, dir) = (&client, &reference, &dir);
            async move {
                let hex = d.digest.trim_start_matches("sha256:");
                let file = tokio::fs::File::create(dir.join(hex))
                    .await
                    .context("create")?;
                client
                    .pull_blob(reference, d, file)
                    .await
                    .with_context(|| format!("pull_blob {}", d.digest))
            }
        })
        .buffer_unordered(max)
        .try_collect::<Vec<()>>()
        .await?;
    println!("{}", started.elapsed().as_secs_f64());
    Ok(())
}
