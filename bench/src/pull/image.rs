//! The whole-image rows: `tank_pull` (default jobs), `skopeo copy` to an
//! `oci:` layout and the oci-client peer's image mode, each into an empty
//! layout on /dev/shm, from the token registry: the 50 x 1 MiB image of the
//! first rig, then a 4-layer image of the large layer's size in all from a
//! second rig (the token registry alone), where the same layers by
//! `tank_blob_to_file` one after the other are the "same bytes" baseline.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{ImageInfo, Rig, RigOptions, Which};

use super::layer::Single;
use crate::measure::{children_cpu_secs, median_of, run_quiet, timed_output, timed_runs};
use crate::measure::{worker_output, Scratch};

/// What a row runs: a tool that pulls the image into an empty layout.
#[derive(Clone, Copy, PartialEq)]
enum Puller {
    /// `tank_pull` in a worker process, default jobs, no cache given.
    TankPull,
    Skopeo,
    /// oci-client: the manifest, then pull_blob x 16 at once.
    OciClient,
    /// The image's layers by `tank_blob_to_file`, one call after the
    /// other, one cache: the same bytes without manifest or config.
    ToFileInTurn,
}

/// How a row's ratio to `tank_pull` is printed under the table.
enum Ratio {
    /// `<what> / tank_pull (<basis>): Nx`: this row's seconds over
    /// tank_pull's whole process or its call.
    OverTank { what: &'static str, basis: Basis },
    /// `tank_pull / <what>: Nx`: tank_pull's call over this row's seconds.
    TankOver { what: &'static str },
}

/// Which of tank_pull's seconds a row is set against: what the row's own
/// seconds time.
#[derive(Clone, Copy)]
enum Basis {
    /// The worker process, start to exit.
    WholeProcess,
    /// The call alone, timed inside the worker.
    InsideCall,
}

/// One row: its name, what it runs, what its seconds time, and its ratio
/// (none for tank_pull, the row the others are set against).
struct Row {
    name: &'static str,
    puller: Puller,
    note: &'static str,
    ratio: Option<Ratio>,
}

/// The rows of every image, in the order they run and print.
static ROWS: [Row; 3] = [
    Row {
        name: "tank_pull via C ABI (default jobs: 4)",
        puller: Puller::TankPull,
        note: "timed inside the call",
        ratio: None,
    },
    // skopeo keeps the layers as they are only when told: by default an
    // oci: destination gzips uncompressed layers, which these are.
    Row {
        name: "skopeo copy docker:// oci:",
        puller: Puller::Skopeo,
        note: "timed: the process; --dest-oci-accept-uncompressed-layers, else it gzips the layers",
        ratio: Some(Ratio::OverTank {
            what: "skopeo",
            basis: Basis::WholeProcess,
        }),
    },
    Row {
        name: "oci-client: manifest, then pull_blob x 16 at once",
        puller: Puller::OciClient,
        note: "timed inside the peer; each blob into a tokio::fs::File",
        ratio: Some(Ratio::OverTank {
            what: "oci-client",
            basis: Basis::InsideCall,
        }),
    },
];

/// The row after `ROWS` for the 4-layer image only.
static LAYERS_IN_TURN: Row = Row {
    name: "tank_blob_to_file, the 4 layers in turn",
    puller: Puller::ToFileInTurn,
    note: "timed around the 4 calls; one cache; no manifest or config",
    ratio: Some(Ratio::TankOver {
        what: "to_file of the 4 layers in turn",
    }),
};

/// What one row gave over its runs.
struct PullRow {
    row: &'static Row,
    /// Median of what the row times (see its note).
    secs: f64,
    /// Median of the child process, start to exit.
    process: f64,
    /// Token requests, registry requests and connections, each run.
    tokens: Vec<usize>,
    requests: Vec<usize>,
    connections: Vec<usize>,
    note: String,
}

/// One run of one tool on a whole image.
struct PullRun {
    /// What the tool's row reports (see its note).
    secs: f64,
    /// The child process, start to exit.
    process: f64,
    /// The child's CPU time (user + sys).
    cpu: f64,
    tokens: usize,
    /// Requests in the registry's access log.
    requests: usize,
    connections: usize,
    /// The peak RSS growth the tool reported, when it reports one.
    rss_growth: Option<u64>,
}

/// The second tank_pull into the layout the last one left.
struct Again {
    /// /blobs/ requests the registry logged.
    blob_requests: usize,
    tokens: usize,
    /// The whole process.
    secs: f64,
}

/// What the rows of one image gave.
pub struct ImagePulls {
    title: String,
    mib: f64,
    rows: Vec<PullRow>,
    again: Again,
}

impl ImagePulls {
    fn row(&self, puller: Puller) -> Option<&PullRow> {
        self.rows.iter().find(|r| r.row.puller == puller)
    }

    fn secs(&self, puller: Puller) -> f64 {
        self.row(puller).map_or(f64::NAN, |r| r.secs)
    }

    /// tank_pull's median: inside the call, and the worker process's.
    fn tank_call(&self) -> f64 {
        self.secs(Puller::TankPull)
    }

    fn tank_process(&self) -> f64 {
        self.row(Puller::TankPull).map_or(f64::NAN, |r| r.process)
    }

    fn tank_tokens(&self) -> &[usize] {
        self.row(Puller::TankPull).map_or(&[], |r| &r.tokens)
    }

    /// This row's ratio to tank_pull, as the row says it is printed.
    fn ratio(&self, r: &PullRow) -> Option<String> {
        Some(match r.row.ratio.as_ref()? {
            Ratio::OverTank { what, basis } => {
                let (tank, how) = match basis {
                    Basis::WholeProcess => (self.tank_process(), "whole processes"),
                    Basis::InsideCall => (self.tank_call(), "inside each"),
                };
                format!("{what} / tank_pull ({how}): {:.2}x", r.secs / tank)
            }
            Ratio::TankOver { what } => {
                format!("tank_pull / {what}: {:.2}x", self.tank_call() / r.secs)
            }
        })
    }
}

/// The 50 x 1 MiB image of `rig`, then the 4-layer image of `mib` MiB in
/// all from a second rig.
pub fn run(rig: &Rig, runs: usize, mib: u64, peer: &Path) -> Result<Vec<ImagePulls>> {
    let scratch =
        Scratch(PathBuf::from("/dev/shm").join(format!("tank-bench-pull-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0)?;
    let many = rig
        .info()
        .images
        .many
        .clone()
        .context("rig has no many-layer image")?;
    let title = format!("{} x 1 MiB layers", many.layers.len());
    let mut all = vec![Image::new(rig, &many, &scratch.0, peer).pull(&title, ROWS.iter(), runs)?];

    let each = mib / 4;
    eprintln!("starting a second rig (token registry, 4 x {each} MiB image)...");
    let four = Rig::start(RigOptions {
        many_layers: Some((4, each)),
        tls: false,
        ..RigOptions::token_only()
    })?;
    let image = four
        .info()
        .images
        .many
        .clone()
        .context("second rig has no many-layer image")?;
    let title = format!("4 x {each} MiB layers");
    let rows = ROWS.iter().chain([&LAYERS_IN_TURN]);
    all.push(Image::new(&four, &image, &scratch.0, peer).pull(&title, rows, runs)?);
    Ok(all)
}

/// One image, where it is pulled from and to.
struct Image<'a> {
    rig: &'a Rig,
    info: &'a ImageInfo,
    registry: String,
    reference: String,
    /// Config and layers.
    blobs: Vec<&'a String>,
    /// The layers as the to_file_seq worker takes them: `digest=size,...`.
    layer_list: String,
    layout: PathBuf,
    layout_s: String,
    peer: &'a Path,
}

impl<'a> Image<'a> {
    fn new(rig: &'a Rig, info: &'a ImageInfo, scratch: &Path, peer: &'a Path) -> Image<'a> {
        let registry = rig.registry(Which::Token).to_owned();
        let layout = scratch.join("layout");
        Image {
            rig,
            info,
            reference: format!("{registry}/{}:{}", info.repo, info.tag),
            registry,
            blobs: std::iter::once(&info.config).chain(&info.layers).collect(),
            layer_list: info
                .layers
                .iter()
                .map(|d| format!("{d}={}", info.blob_sizes[d]))
                .collect::<Vec<_>>()
                .join(","),
            layout_s: layout.to_string_lossy().into_owned(),
            layout,
            peer,
        }
    }

    /// Runs the rows, each into an empty layout.
    fn pull(
        &self,
        title: &str,
        rows: impl Iterator<Item = &'static Row>,
        runs: usize,
    ) -> Result<ImagePulls> {
        let total: u64 = self.blobs.iter().map(|d| self.info.blob_sizes[*d]).sum();
        let mut pulls = Vec::new();
        let mut again = None;
        for row in rows {
            pulls.push(self.pull_row(row, runs)?);
            if row.puller == Puller::TankPull {
                again = Some(self.pull_again()?);
            }
        }
        let _ = std::fs::remove_dir_all(&self.layout);
        Ok(ImagePulls {
            title: title.to_owned(),
            mib: total as f64 / 1048576.0,
            rows: pulls,
            again: again.context("no tank_pull row")?,
        })
    }

    fn pull_row(&self, row: &'static Row, runs: usize) -> Result<PullRow> {
        // The warm-up run counts too: a peak is a bound, not a timing.
        let mut growth = None;
        let runs = timed_runs(runs, || {
            let r = self.measure(row.puller)?;
            growth = growth.max(r.rss_growth);
            self.check(row.puller)?;
            Ok(r)
        })?;
        Ok(PullRow {
            row,
            secs: median_of(runs.iter().map(|r| r.secs).collect()),
            process: median_of(runs.iter().map(|r| r.process).collect()),
            tokens: runs.iter().map(|r| r.tokens).collect(),
            requests: runs.iter().map(|r| r.requests).collect(),
            connections: runs.iter().map(|r| r.connections).collect(),
            note: format!(
                "{}{}; whole process {:.3} s, its CPU {:.2} s",
                row.note,
                growth.map_or(String::new(), |g| format!(
                    "; peak RSS growth {:.1} MiB",
                    g as f64 / 1048576.0
                )),
                median_of(runs.iter().map(|r| r.process).collect()),
                median_of(runs.iter().map(|r| r.cpu).collect())
            ),
        })
    }

    /// One run into an empty layout, with fresh logs.
    fn measure(&self, puller: Puller) -> Result<PullRun> {
        let _ = std::fs::remove_dir_all(&self.layout);
        self.rig.clear_logs();
        let cpu_before = children_cpu_secs();
        let started = Instant::now();
        let (secs, rss_growth) = self.pull_once(puller)?;
        let process = started.elapsed().as_secs_f64();
        let cpu = children_cpu_secs() - cpu_before;
        // Waits for the registry's log to settle.
        let requests = self.rig.registry_requests(Which::Token).len();
        Ok(PullRun {
            secs,
            process,
            cpu,
            tokens: self.rig.token_requests().len(),
            requests,
            connections: connections_logged(&self.rig.registry_log(Which::Token)),
            rss_growth,
        })
    }

    /// The seconds the tool reports, and its peak RSS growth if it
    /// reports one.
    fn pull_once(&self, puller: Puller) -> Result<(f64, Option<u64>)> {
        let (reg, repo, layout) = (&self.registry, &self.info.repo, &self.layout_s);
        match puller {
            Puller::TankPull => {
                let out = worker_output(&["pull", &self.reference, layout])?;
                let grew = out["rss_growth_bytes"]
                    .as_u64()
                    .context("rss_growth_bytes")?;
                Ok((out["call_secs"].as_f64().context("call_secs")?, Some(grew)))
            }
            Puller::Skopeo => {
                let started = Instant::now();
                run_quiet(Command::new("skopeo").args([
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--dest-oci-accept-uncompressed-layers",
                    &format!("docker://{}", self.reference),
                    &format!("oci:{layout}:{}", self.info.tag),
                ]))?;
                Ok((started.elapsed().as_secs_f64(), None))
            }
            Puller::OciClient => {
                let out = timed_output(Command::new(self.peer).args([
                    "image",
                    reg.as_str(),
                    repo.as_str(),
                    self.info.tag.as_str(),
                    layout.as_str(),
                ]))?;
                let secs = out.1.trim().parse::<f64>().context("oci-peer's seconds")?;
                Ok((secs, None))
            }
            Puller::ToFileInTurn => {
                std::fs::create_dir_all(&self.layout)?;
                let out = worker_output(&["to_file_seq", reg, repo, layout, &self.layer_list])?;
                Ok((out["call_secs"].as_f64().context("call_secs")?, None))
            }
        }
    }

    /// Every blob the tool was to fetch is where it puts them, at its
    /// size: each tool verified the digests itself.
    fn check(&self, puller: Puller) -> Result<()> {
        let blob_dir = self.layout.join("blobs/sha256");
        match puller {
            Puller::TankPull => {
                self.check_blobs(&blob_dir, &self.blobs)?;
                if !self.layout.join("index.json").is_file() {
                    bail!("tank_pull wrote no index.json");
                }
                Ok(())
            }
            Puller::Skopeo | Puller::OciClient => self.check_blobs(&blob_dir, &self.blobs),
            Puller::ToFileInTurn => {
                let layers: Vec<&String> = self.info.layers.iter().collect();
                self.check_blobs(&self.layout, &layers)
            }
        }
    }

    /// Each of `which` at `dir/<hex>`, at its size.
    fn check_blobs(&self, dir: &Path, which: &[&String]) -> Result<()> {
        for d in which {
            let path = dir.join(d.trim_start_matches("sha256:"));
            let len = std::fs::metadata(&path)
                .with_context(|| format!("{} is missing", path.display()))?
                .len();
            if len != self.info.blob_sizes[*d] {
                bail!(
                    "{} has {len} bytes, not {}",
                    path.display(),
                    self.info.blob_sizes[*d]
                );
            }
        }
        Ok(())
    }

    /// Again into the layout the last tank_pull run left: nothing to fetch
    /// but the manifest.
    fn pull_again(&self) -> Result<Again> {
        self.rig.clear_logs();
        let started = Instant::now();
        worker_output(&["pull", &self.reference, &self.layout_s])?;
        let secs = started.elapsed().as_secs_f64();
        let blob_requests = self
            .rig
            .registry_requests(Which::Token)
            .iter()
            .filter(|r| r.uri.contains("/blobs/"))
            .count();
        Ok(Again {
            blob_requests,
            tokens: self.rig.token_requests().len(),
            secs,
        })
    }
}

/// Connections that carried a request: distinct client addresses in the
/// registry's logrus lines (`http.request.remoteaddr="127.0.0.1:PORT"`).
/// The kernel's socket table would miss connections a client aborts (a
/// close with bytes unread is a reset, which leaves no TIME_WAIT socket).
fn connections_logged(log: &str) -> usize {
    let key = "http.request.remoteaddr=\"";
    log.lines()
        .filter_map(|l| {
            let at = l.find(key)? + key.len();
            l[at..].split('"').next()
        })
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// `3` when every run gave 3, else `min-max`.
fn spread(v: &[usize]) -> String {
    match (v.iter().min(), v.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
        _ => "-".into(),
    }
}

/// Each image's table, its rows' ratios to tank_pull, and its second pull.
pub fn print(pulls: &[ImagePulls], runs: usize, single: &Single, large_mib: u64) {
    println!();
    println!(
        "whole image into an empty OCI layout on /dev/shm (tmpfs, so the VM's disk does not set \
         the pace), token registry, median of {runs} runs after a warm-up:"
    );
    println!(
        "  per pull: tokens = token requests; reqs = requests in the registry's access log; \
         conns = connections to the registry that carried a request (distinct client addresses \
         in its log); a-b: the range over the runs"
    );
    for p in pulls {
        println!();
        println!(
            "{:<50} {:>9} {:>8} {:>7} {:>6} {:>6}  notes",
            format!("{} ({:.0} MiB)", p.title, p.mib),
            "median s",
            "MiB/s",
            "tokens",
            "reqs",
            "conns"
        );
        for r in &p.rows {
            println!(
                "{:<50} {:>9.3} {:>8.0} {:>7} {:>6} {:>6}  {}",
                r.row.name,
                r.secs,
                p.mib / r.secs,
                spread(&r.tokens),
                spread(&r.requests),
                spread(&r.connections),
                r.note
            );
        }
        // The ratios of rows timed as tank_pull's whole process or call
        // share a line; a same-bytes baseline has one of its own.
        let over: Vec<String> = p
            .rows
            .iter()
            .filter(|r| matches!(r.row.ratio, Some(Ratio::OverTank { .. })))
            .filter_map(|r| p.ratio(r))
            .collect();
        println!("  {}", over.join("; "));
        for r in &p.rows {
            if matches!(r.row.ratio, Some(Ratio::TankOver { .. })) {
                println!("  {}", p.ratio(r).unwrap_or_default());
            }
        }
        if p.row(Puller::ToFileInTurn).is_some() && (p.mib - large_mib as f64).abs() < 1.0 {
            for (which, label) in [(Which::Plain, "plain"), (Which::Cdn, "CDN")] {
                println!(
                    "  tank_pull / tank_blob_to_file of the one {large_mib} MiB layer ({label} row above): {:.2}x",
                    p.tank_call() / single.to_file_secs(which)
                );
            }
        }
        println!(
            "  second tank_pull into the same layout: {} /blobs/ requests, {} token requests, {:.3} s (whole process)",
            p.again.blob_requests, p.again.tokens, p.again.secs
        );
    }
}

/// The whole-image targets, each with whether it was met.
pub fn targets(pulls: &[ImagePulls]) -> Vec<(String, bool)> {
    let fifty = &pulls[0];
    let four = &pulls[1];
    let seq = four.secs(Puller::ToFileInTurn);
    vec![
        (
            format!(
                "tank_pull {}: >= 3x faster than skopeo (whole processes): {:.2}x",
                fifty.title,
                fifty.secs(Puller::Skopeo) / fifty.tank_process()
            ),
            fifty.secs(Puller::Skopeo) / fifty.tank_process() >= 3.0,
        ),
        (
            format!(
                "tank_pull {}: >= 1.5x faster than oci-client: {:.2}x",
                fifty.title,
                fifty.secs(Puller::OciClient) / fifty.tank_call()
            ),
            fifty.secs(Puller::OciClient) / fifty.tank_call() >= 1.5,
        ),
        (
            format!(
                "tank_pull {} within 1.2x of tank_blob_to_file of the same layers in turn: {:.2}x",
                four.title,
                four.tank_call() / seq
            ),
            four.tank_call() / seq <= 1.2,
        ),
        (
            format!(
                "tank_pull: one token request per pull: {}",
                pulls
                    .iter()
                    .map(|p| format!("{:?} ({})", p.tank_tokens(), p.title))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            pulls
                .iter()
                .all(|p| p.tank_tokens().iter().all(|&t| t == 1)),
        ),
        (
            format!(
                "tank_pull: a second pull into the same layout sends no blob request: {}",
                pulls
                    .iter()
                    .map(|p| format!("{} ({})", p.again.blob_requests, p.title))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            pulls.iter().all(|p| p.again.blob_requests == 0),
        ),
    ]
}
