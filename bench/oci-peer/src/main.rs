//! `oci-peer REGISTRY REPO DIGEST SIZE OUT`: pulls one blob the way an
//! oci-client user does (`Client::pull_blob` into a `tokio::fs::File`,
//! anonymous auth first) and prints the seconds that took.

use std::time::Instant;

use anyhow::{Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [registry, repo, digest, size, out] = args.as_slice() else {
        anyhow::bail!("usage: oci-peer REGISTRY REPO DIGEST SIZE OUT");
    };
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let reference: Reference = format!("{registry}/{repo}@{digest}")
        .parse()
        .context("reference")?;
    let layer = OciDescriptor {
        digest: digest.clone(),
        size: size.parse().context("size")?,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        ..Default::default()
    };
    let started = Instant::now();
    client
        .auth(&reference, &RegistryAuth::Anonymous, RegistryOperation::Pull)
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
