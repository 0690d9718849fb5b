//! The 4-layer image through the capped CDN: `tank_pull` with its default
//! settings (4 connections per big layer, 16 per host) against `skopeo
//! copy` to an `oci:` layout, each into an empty layout on tmpfs.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{ImageInfo, Rig, Which};

use super::layer::{cdn_figures, spread};
use crate::measure::{median_of, run_quiet, timed_runs, worker_output};

#[derive(Clone, Copy, PartialEq)]
enum Puller {
    /// `tank_pull` in a worker process, no cache: default settings.
    TankPull,
    Skopeo,
}

const ROWS: [(&str, Puller, &str); 2] = [
    (
        "tank_pull via C ABI (default settings)",
        Puller::TankPull,
        "timed inside the call",
    ),
    // skopeo keeps the layers as they are only when told: by default an
    // oci: destination gzips uncompressed layers, which these are.
    (
        "skopeo copy docker:// oci:",
        Puller::Skopeo,
        "timed: the process; --dest-oci-accept-uncompressed-layers",
    ),
];

struct PullRow {
    puller: Puller,
    secs: f64,
    process: f64,
}

/// What the image's rows gave.
pub struct ImagePulls {
    rows: Vec<PullRow>,
}

/// Runs both rows on the rig's 4-layer image and prints them.
/// The issue sets no figure for the image: its ratio is printed, no target.
pub fn run(rig: &Rig, cap: u64, runs: usize, scratch: &Path) -> Result<()> {
    let info = rig
        .info()
        .images
        .many
        .clone()
        .context("rig has no 4-layer image")?;
    let layers: u64 = info.layers.iter().map(|d| info.blob_sizes[d]).sum();
    let mib = layers as f64 / 1048576.0;
    let title = format!(
        "{} x {:.0} MiB layers",
        info.layers.len(),
        mib / info.layers.len() as f64
    );
    let image = Image {
        reference: format!("{}/{}:{}", rig.registry(Which::Cdn), info.repo, info.tag),
        hexes: info
            .layers
            .iter()
            .map(|d| d.trim_start_matches("sha256:"))
            .collect(),
        info: &info,
        layout: &scratch.join("layout"),
    };
    println!();
    println!(
        "whole image through the CDN capped at {} MiB/s per connection, into an empty OCI \
         layout on /dev/shm; conns and sent as above, over the layers; {runs} runs, median:",
        cap >> 20
    );
    println!(
        "{:<40} {:>9} {:>8} {:>6} {:>6}  notes",
        format!("{title} ({mib:.0} MiB)"),
        "median s",
        "MiB/s",
        "conns",
        "sent"
    );
    let mut rows = Vec::new();
    for (name, puller, note) in ROWS {
        let mut growth = None;
        let all = timed_runs(runs, || {
            let _ = std::fs::remove_dir_all(image.layout);
            rig.clear_logs();
            let run = image.pull(puller)?;
            image.check()?;
            growth = growth.max(run.rss_growth);
            let (conns, sent) = cdn_figures(rig, &image.hexes);
            Ok((run, conns, sent))
        })?;
        let row = PullRow {
            puller,
            secs: median_of(all.iter().map(|r| r.0.secs).collect()),
            process: median_of(all.iter().map(|r| r.0.process).collect()),
        };
        let conns: Vec<usize> = all.iter().map(|r| r.1).collect();
        let sent = all.iter().map(|r| r.2).max().unwrap_or(0);
        println!(
            "{:<40} {:>9.3} {:>8.0} {:>6} {:>6.3}  {note}; whole process {:.3} s{}",
            name,
            row.secs,
            mib / row.secs,
            spread(&conns),
            sent as f64 / layers as f64,
            row.process,
            growth.map_or(String::new(), |g| format!(
                "; peak RSS growth {:.1} MiB",
                g as f64 / 1048576.0
            )),
        );
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(image.layout);
    let pulls = ImagePulls { rows };
    println!(
        "  skopeo / tank_pull (whole processes): {:.2}x",
        pulls.skopeo_over_tank()
    );
    Ok(())
}

struct Image<'a> {
    info: &'a ImageInfo,
    reference: String,
    hexes: Vec<&'a str>,
    layout: &'a Path,
}

struct PullRun {
    secs: f64,
    process: f64,
    rss_growth: Option<u64>,
}

impl Image<'_> {
    fn pull(&self, puller: Puller) -> Result<PullRun> {
        let layout = self.layout.to_string_lossy();
        let started = Instant::now();
        match puller {
            Puller::TankPull => {
                let out = worker_output(&["pull", &self.reference, &layout])?;
                Ok(PullRun {
                    secs: out["call_secs"].as_f64().context("call_secs")?,
                    process: started.elapsed().as_secs_f64(),
                    rss_growth: Some(
                        out["rss_growth_bytes"]
                            .as_u64()
                            .context("rss_growth_bytes")?,
                    ),
                })
            }
            Puller::Skopeo => {
                run_quiet(Command::new("skopeo").args([
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--dest-oci-accept-uncompressed-layers",
                    &format!("docker://{}", self.reference),
                    &format!("oci:{layout}:{}", self.info.tag),
                ]))?;
                let secs = started.elapsed().as_secs_f64();
                Ok(PullRun {
                    secs,
                    process: secs,
                    rss_growth: None,
                })
            }
        }
    }

    /// Every layer where both tools put it, at its size: each verified
    /// the digests itself.
    fn check(&self) -> Result<()> {
        for (d, hex) in self.info.layers.iter().zip(&self.hexes) {
            let path = self.layout.join("blobs/sha256").join(hex);
            let len = std::fs::metadata(&path)
                .with_context(|| format!("{} is missing", path.display()))?
                .len();
            if len != self.info.blob_sizes[d] {
                bail!(
                    "{} has {len} bytes, not {}",
                    path.display(),
                    self.info.blob_sizes[d]
                );
            }
        }
        Ok(())
    }
}

impl ImagePulls {
    fn process(&self, puller: Puller) -> f64 {
        self.rows
            .iter()
            .find(|r| r.puller == puller)
            .map_or(f64::NAN, |r| r.process)
    }

    fn skopeo_over_tank(&self) -> f64 {
        self.process(Puller::Skopeo) / self.process(Puller::TankPull)
    }
}
