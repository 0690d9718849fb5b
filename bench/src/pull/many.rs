//! The 50-layer image by 8 threads through one cache, against the token
//! registry, next to `curl` per layer run 8 at a time.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{Rig, Which};

use crate::measure::{median, median_of, timed_runs, worker_output};

pub struct ManyLayers {
    tokens: Vec<usize>,
    connections: Vec<u64>,
    ratio: f64,
}

/// Runs both and prints them.
pub fn run(rig: &Rig, runs: usize) -> Result<ManyLayers> {
    let many = rig
        .info()
        .images
        .many
        .clone()
        .context("rig has no many-layer image")?;
    let reg = rig.registry(Which::Token).to_owned();
    let total: u64 = many.layers.iter().map(|d| many.blob_sizes[d]).sum();
    let pulls = timed_runs(runs, || {
        rig.clear_logs();
        let started = Instant::now();
        let out = worker_output(&["many", &reg, &many.repo, &many.layers.join(",")])?;
        let secs = started.elapsed().as_secs_f64();
        let conns = out["registry_connections"]
            .as_u64()
            .context("registry_connections")?;
        Ok((secs, rig.token_requests().len(), conns))
    })?;
    let tank = median_of(pulls.iter().map(|p| p.0).collect());
    let tokens: Vec<usize> = pulls.iter().map(|p| p.1).collect();
    let conns: Vec<u64> = pulls.iter().map(|p| p.2).collect();

    let realm = rig
        .info()
        .token
        .as_ref()
        .context("token registry")?
        .realm
        .clone();
    let token_json = Command::new("curl")
        .args([
            "-s",
            &format!(
                "{realm}?service=tank-rig&scope=repository:{}:pull",
                many.repo
            ),
        ])
        .output()?;
    let token: serde_json::Value = serde_json::from_slice(&token_json.stdout)?;
    let token = token["token"].as_str().context("token")?.to_owned();
    let urls: String = many
        .layers
        .iter()
        .map(|d| format!("http://{reg}/v2/{}/blobs/{d}\n", many.repo))
        .collect();
    let curl = median(runs, || {
        let started = Instant::now();
        let mut child = Command::new("xargs")
            .args([
                "-P",
                "8",
                "-n",
                "1",
                "curl",
                "-s",
                "-f",
                "-o",
                "/dev/null",
                "-H",
            ])
            .arg(format!("Authorization: Bearer {token}"))
            .stdin(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(urls.as_bytes())?;
        let status = child.wait()?;
        if !status.success() {
            bail!("curl per layer failed: {status}");
        }
        Ok(started.elapsed().as_secs_f64())
    })?;
    println!();
    println!(
        "50 x 1 MiB layers ({:.0} MiB), token registry, 8 threads, one TankCache:",
        total as f64 / 1048576.0
    );
    println!("  tank:                      {tank:.3} s median; token requests per pull {tokens:?}; registry connections {conns:?}");
    println!("  curl per layer, 8 at once: {curl:.3} s median (token fetched once beforehand, bytes not verified)");
    println!("  tank / curl: {:.2}x", tank / curl);
    Ok(ManyLayers {
        tokens,
        connections: conns,
        ratio: tank / curl,
    })
}

impl ManyLayers {
    /// The 50-layer targets, each with whether it was met.
    pub fn targets(&self) -> Vec<(String, bool)> {
        vec![
            (
                format!("50 layers: one token request per pull: {:?}", self.tokens),
                self.tokens.iter().all(|&t| t == 1),
            ),
            (
                format!(
                    "50 layers: connections <= 12 for 8 threads (reuse, not one per request): {:?}",
                    self.connections
                ),
                self.connections.iter().all(|&c| c <= 12),
            ),
            (
                format!("50 layers: <= 1.5x curl per layer: {:.2}x", self.ratio),
                self.ratio <= 1.5,
            ),
        ]
    }
}
