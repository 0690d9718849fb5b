//! The large layer through the CDN registry (token, then a 307 to the
//! rig's CDN), capped or not: `tank_blob_to_file` through a cache set to N
//! connections per blob, curl, oci-client and skopeo, each to tmpfs; every
//! row set against tank with one connection; then the lines that compare
//! rows, and (capped) a cut and resumed transfer over 4 connections.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{Rig, Which};

use crate::measure::{median_of, run_quiet, timed_output, timed_runs, worker_output};
use crate::worker;

/// What a row runs.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Tool {
    /// `tank_blob_to_file` in a worker process, through a cache set to
    /// this many connections per blob (16 per host, default threshold).
    Tank(u32),
    /// `curl -L -o` the file: one connection to the CDN.
    Curl,
    /// oci-client's pull_blob into a tokio::fs::File.
    OciClient,
    /// `skopeo copy docker:// dir:` of the one-layer image.
    Skopeo,
}

/// Every row's "x 1 conn" is its seconds over this one's.
const BASELINE: Tool = Tool::Tank(1);

/// Connections per blob of the rows the targets read.
const MANY: u32 = 4;

/// Pieces are at least this long: a resumed transfer may fetch again at
/// most one piece's worth per connection.
const PIECE_MIN: u64 = 8 << 20;

pub struct Row {
    name: String,
    tool: Tool,
    runs: usize,
}

fn tank_row(connections: u32, runs: usize) -> Row {
    let plural = if connections == 1 { "" } else { "s" };
    Row {
        name: format!("tank_blob_to_file, {connections} connection{plural}"),
        tool: Tool::Tank(connections),
        runs,
    }
}

fn curl_row(runs: usize) -> Row {
    Row {
        name: "curl -L -o (one connection)".into(),
        tool: Tool::Curl,
        runs,
    }
}

/// tank with 1, 2, 4 and 8 connections, curl, oci-client and skopeo.
pub fn capped_rows(runs: usize) -> Vec<Row> {
    // skopeo takes many times longer than the others.
    let skopeo_runs = runs.min(3);
    let mut rows: Vec<Row> = [1, 2, 4, 8].iter().map(|&n| tank_row(n, runs)).collect();
    rows.push(curl_row(runs));
    rows.push(Row {
        name: "oci-client pull_blob".into(),
        tool: Tool::OciClient,
        runs,
    });
    rows.push(Row {
        name: format!("skopeo copy docker:// dir: ({skopeo_runs} runs)"),
        tool: Tool::Skopeo,
        runs: skopeo_runs,
    });
    rows
}

/// tank with 1 and 4 connections, and curl.
pub fn uncapped_rows(runs: usize) -> Vec<Row> {
    vec![tank_row(1, runs), tank_row(MANY, runs), curl_row(runs)]
}

/// One rig's CDN, capped at `cap` bytes a second per connection or not,
/// and where the rows write.
#[derive(Clone, Copy)]
pub struct Setting<'a> {
    pub rig: &'a Rig,
    pub cap: Option<u64>,
    pub scratch: &'a Path,
    pub peer: &'a Path,
}

/// The layer, where the rows find it and put it.
struct Layer<'a> {
    setting: Setting<'a>,
    registry: String,
    repo: String,
    tag: String,
    digest: String,
    hex: String,
    bytes: u64,
    out: PathBuf,
}

/// One run of one row.
struct Run {
    /// What the row times (see its note).
    secs: f64,
    /// The client's process, start to exit.
    process: f64,
    /// tank's worker only: its CPU seconds and its peak RSS growth.
    cpu: Option<f64>,
    rss_growth: Option<u64>,
    /// Distinct CDN connections that carried the layer, and the layer's
    /// bytes the CDN sent.
    conns: usize,
    sent: u64,
}

/// What a row gave over its runs.
struct Measured {
    tool: Tool,
    secs: f64,
    process: f64,
    conns: Vec<usize>,
    /// The most the CDN sent in one run.
    sent: u64,
    /// Worst of the runs, the warm-up included: a peak is a bound.
    rss_growth: Option<u64>,
    cpu: Option<f64>,
}

/// What one table gave: each row's figures, and the resumed transfer's.
pub struct Table {
    cap: Option<u64>,
    bytes: u64,
    rows: Vec<Measured>,
    /// Bytes of the layer the CDN sent for a cut and a resumed call.
    resumed_sent: Option<u64>,
}

impl Setting<'_> {
    /// Runs `rows`, printing each as it is measured, then (capped) the
    /// resumed transfer, then the lines that compare rows.
    pub fn run(&self, rows: &[Row], runs: usize) -> Result<Table> {
        let large = self
            .rig
            .info()
            .images
            .large
            .clone()
            .context("rig has no large image")?;
        let digest = large.layers[0].clone();
        let layer = Layer {
            setting: *self,
            registry: self.rig.registry(Which::Cdn).to_owned(),
            hex: digest.trim_start_matches("sha256:").to_owned(),
            bytes: large.blob_sizes[&digest],
            repo: large.repo,
            tag: large.tag,
            digest,
            out: self.scratch.join("layer"),
        };
        let mib = layer.bytes as f64 / 1048576.0;
        println!();
        match self.cap {
            Some(cap) => println!(
                "{mib:.0} MiB layer through the CDN capped at {} MiB/s per connection \
                 (at best {:.1} s over one connection, {:.1} s over {MANY}), to /dev/shm:",
                cap >> 20,
                layer.bytes as f64 / cap as f64,
                layer.bytes as f64 / cap as f64 / MANY as f64
            ),
            None => {
                println!("{mib:.0} MiB layer through the CDN uncapped (loopback), to /dev/shm:")
            }
        }
        println!(
            "  conns = CDN connections that carried the layer in a run (distinct client ports, \
             not how many at once); sent = the layer's bytes the CDN sent / its size (most of \
             the runs); {runs} runs, median"
        );
        println!(
            "{:<40} {:>9} {:>8} {:>6} {:>6} {:>9}  notes",
            "", "median s", "MiB/s", "conns", "sent", "x 1 conn"
        );
        let mut table = Table {
            cap: self.cap,
            bytes: layer.bytes,
            rows: Vec::new(),
            resumed_sent: None,
        };
        for row in rows {
            let m = layer.measure(row.tool, row.runs)?;
            let _ = std::fs::remove_file(&layer.out);
            let baseline = if row.tool == BASELINE {
                m.secs
            } else {
                table.secs(BASELINE)
            };
            println!(
                "{:<40} {:>9.3} {:>8.0} {:>6} {:>6.3} {:>9.2}  {}",
                row.name,
                m.secs,
                mib / m.secs,
                spread(&m.conns),
                m.sent as f64 / layer.bytes as f64,
                m.secs / baseline,
                m.note()
            );
            table.rows.push(m);
        }
        if self.cap.is_some() {
            table.resumed_sent = Some(layer.resume()?);
        }
        table.print_comparisons();
        Ok(table)
    }
}

impl Layer<'_> {
    fn rig(&self) -> &Rig {
        self.setting.rig
    }

    fn out_str(&self) -> String {
        self.out.to_string_lossy().into_owned()
    }

    /// `runs` timed runs of `tool` after a warm-up, each with fresh logs.
    fn measure(&self, tool: Tool, runs: usize) -> Result<Measured> {
        let mut rss_growth = None;
        let all = timed_runs(runs, || {
            let _ = std::fs::remove_file(&self.out);
            self.rig().clear_logs();
            let mut run = self.once(tool)?;
            (run.conns, run.sent) = cdn_figures(self.rig(), &[&self.hex]);
            rss_growth = rss_growth.max(run.rss_growth);
            Ok(run)
        })?;
        let median_by = |f: fn(&Run) -> f64| median_of(all.iter().map(f).collect());
        Ok(Measured {
            tool,
            secs: median_by(|r| r.secs),
            process: median_by(|r| r.process),
            conns: all.iter().map(|r| r.conns).collect(),
            sent: all.iter().map(|r| r.sent).max().unwrap_or(0),
            rss_growth,
            cpu: all[0].cpu.map(|_| median_by(|r| r.cpu.unwrap_or(f64::NAN))),
        })
    }

    fn once(&self, tool: Tool) -> Result<Run> {
        let started = Instant::now();
        let mut run = match tool {
            Tool::Tank(n) => {
                let out = worker_output(&[
                    "to_file",
                    &self.registry,
                    &self.repo,
                    &self.digest,
                    &self.bytes.to_string(),
                    &self.out_str(),
                    &n.to_string(),
                ])?;
                Run {
                    secs: out["call_secs"].as_f64().context("call_secs")?,
                    cpu: Some(out["cpu_secs"].as_f64().context("cpu_secs")?),
                    rss_growth: Some(
                        out["rss_growth_bytes"]
                            .as_u64()
                            .context("rss_growth_bytes")?,
                    ),
                    ..Run::timed(0.0)
                }
            }
            Tool::Curl => {
                // The token is the client's own business: fetched before
                // the clock starts, as the 50-layer curl row does.
                let token = token(self.rig(), &self.repo)?;
                let url = format!(
                    "http://{}/v2/{}/blobs/{}",
                    self.registry, self.repo, self.digest
                );
                let started = Instant::now();
                // curl keeps a -H Authorization to the registry's
                // host:port; the CDN, on another port, would answer it 400.
                timed_output(
                    Command::new("curl")
                        .args(["-s", "-f", "-L", "-o", &self.out_str(), "-H"])
                        .arg(format!("Authorization: Bearer {token}"))
                        .arg(&url),
                )?;
                let run = Run::timed(started.elapsed().as_secs_f64());
                self.check_file(&self.out, "curl")?;
                return Ok(run);
            }
            Tool::OciClient => {
                let (size, out) = (self.bytes.to_string(), self.out_str());
                let (_, printed) = timed_output(Command::new(self.setting.peer).args([
                    self.registry.as_str(),
                    self.repo.as_str(),
                    self.digest.as_str(),
                    size.as_str(),
                    out.as_str(),
                ]))?;
                let secs = printed.trim().parse().context("oci-peer's seconds")?;
                let process = started.elapsed().as_secs_f64();
                self.check_file(&self.out, "oci-client")?;
                return Ok(Run {
                    process,
                    ..Run::timed(secs)
                });
            }
            Tool::Skopeo => {
                let dir = self.setting.scratch.join("skopeo-dir");
                let _ = std::fs::remove_dir_all(&dir);
                run_quiet(Command::new("skopeo").args([
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    &format!("docker://{}/{}:{}", self.registry, self.repo, self.tag),
                    &format!("dir:{}", dir.display()),
                ]))?;
                let run = Run::timed(started.elapsed().as_secs_f64());
                let got = std::fs::metadata(dir.join(&self.hex)).map(|m| m.len());
                let _ = std::fs::remove_dir_all(&dir);
                if got.as_ref().ok() != Some(&self.bytes) {
                    bail!("skopeo's dir: has no {}-byte layer: {got:?}", self.bytes);
                }
                return Ok(run);
            }
        };
        run.process = started.elapsed().as_secs_f64();
        Ok(run)
    }

    /// A client that does not say it verified the layer: the file must
    /// hash to it (untimed).
    fn check_file(&self, path: &Path, who: &str) -> Result<()> {
        worker::time_sha256_file(path, &self.hex).with_context(|| {
            format!(
                "{who} wrote {} that does not hash to the layer",
                path.display()
            )
        })?;
        Ok(())
    }

    /// The layer cut at half (the call is cancelled) and resumed by a
    /// second call, both over `MANY` connections: the layer's bytes the
    /// CDN sent for both.
    fn resume(&self) -> Result<u64> {
        let _ = std::fs::remove_file(&self.out);
        self.rig().clear_logs();
        for mode in ["to_file_cut", "to_file"] {
            worker_output(&[
                mode,
                &self.registry,
                &self.repo,
                &self.digest,
                &self.bytes.to_string(),
                &self.out_str(),
                &MANY.to_string(),
            ])?;
        }
        let (_, sent) = cdn_figures(self.rig(), &[&self.hex]);
        let _ = std::fs::remove_file(&self.out);
        Ok(sent)
    }
}

impl Run {
    /// A run whose row times the client's whole process.
    fn timed(secs: f64) -> Run {
        Run {
            secs,
            process: secs,
            cpu: None,
            rss_growth: None,
            conns: 0,
            sent: 0,
        }
    }
}

/// An anonymous pull token for `repo` from the CDN registry's issuer.
pub fn token(rig: &Rig, repo: &str) -> Result<String> {
    let cdn = rig.info().cdn.as_ref().context("rig has no CDN registry")?;
    let (_, body) = timed_output(Command::new("curl").args([
        "-s",
        "-f",
        &format!(
            "{}?service={}&scope=repository:{repo}:pull",
            cdn.realm, cdn.service
        ),
    ]))?;
    let answer: serde_json::Value = serde_json::from_str(&body)?;
    Ok(answer["token"].as_str().context("token")?.to_owned())
}

/// Distinct CDN connections that carried any of `hexes` (the CDN's paths
/// name blob files by their digest) since the logs were cleared, and the
/// bytes of those blobs it sent.
pub fn cdn_figures(rig: &Rig, hexes: &[&str]) -> (usize, u64) {
    let requests: Vec<_> = rig
        .cdn_requests()
        .into_iter()
        .filter(|r| hexes.iter().any(|h| r.path.contains(h)))
        .collect();
    let conns = requests
        .iter()
        .filter_map(|r| r.connection)
        .collect::<std::collections::HashSet<_>>()
        .len();
    (conns, requests.iter().map(|r| r.bytes).sum())
}

/// `3` when every run gave 3, else `min-max`.
pub fn spread(v: &[usize]) -> String {
    match (v.iter().min(), v.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
        _ => "-".into(),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

impl Measured {
    fn note(&self) -> String {
        match self.tool {
            Tool::Tank(_) => format!(
                "timed inside the call; whole process {:.3} s; peak RSS growth {:.1} MiB; CPU {:.2} s",
                self.process,
                mib(self.rss_growth.unwrap_or(0)),
                self.cpu.unwrap_or(f64::NAN)
            ),
            Tool::Curl => "timed: the process (token fetched beforehand; file hashed afterwards, untimed)".into(),
            Tool::OciClient => format!(
                "auth + pull_blob, timed inside the peer; whole process {:.3} s",
                self.process
            ),
            Tool::Skopeo => "timed: the process".into(),
        }
    }
}

impl Table {
    fn row(&self, tool: Tool) -> Option<&Measured> {
        self.rows.iter().find(|m| m.tool == tool)
    }

    /// What the row times (see its note).
    fn secs(&self, tool: Tool) -> f64 {
        self.row(tool).map_or(f64::NAN, |m| m.secs)
    }

    /// The client's whole process.
    fn process(&self, tool: Tool) -> f64 {
        self.row(tool).map_or(f64::NAN, |m| m.process)
    }

    /// tank with `MANY` connections this many times faster than one.
    fn speedup(&self) -> f64 {
        self.secs(BASELINE) / self.secs(Tool::Tank(MANY))
    }

    /// How many times faster tank with `MANY` connections was than `peer`:
    /// inside both calls for oci-client (both time themselves), whole
    /// processes for the command-line tools.
    fn faster_than(&self, peer: Tool) -> f64 {
        match peer {
            Tool::OciClient => self.secs(peer) / self.secs(Tool::Tank(MANY)),
            _ => self.process(peer) / self.process(Tool::Tank(MANY)),
        }
    }

    fn many_rss_growth(&self) -> Option<u64> {
        self.row(Tool::Tank(MANY)).and_then(|m| m.rss_growth)
    }

    fn print_comparisons(&self) {
        let tanks: Vec<String> = self
            .rows
            .iter()
            .filter_map(|m| match m.tool {
                Tool::Tank(n) if m.tool != BASELINE => {
                    Some(format!("{n} conns {:.2}x", self.secs(BASELINE) / m.secs))
                }
                _ => None,
            })
            .collect();
        if self.cap.is_some() {
            println!(
                "  tank, faster than with 1 connection (inside each call): {}",
                tanks.join(", ")
            );
            let peers: Vec<String> = [
                (Tool::Curl, "curl (whole processes)"),
                (Tool::OciClient, "oci-client (inside each)"),
                (Tool::Skopeo, "skopeo (whole processes)"),
            ]
            .iter()
            .filter(|(c, _)| self.row(*c).is_some())
            .map(|&(c, what)| format!("{what} {:.2}x", self.faster_than(c)))
            .collect();
            println!(
                "  tank with {MANY} connections, faster than: {}",
                peers.join(", ")
            );
        } else {
            println!(
                "  tank {MANY} connections / 1 connection (inside each call): {:.3}x; \
                 curl / tank 1 connection (whole processes): {:.2}x",
                1.0 / self.speedup(),
                self.process(Tool::Curl) / self.process(BASELINE)
            );
        }
        println!(
            "  peak RSS growth of tank with {MANY} connections: {:.1} MiB (the worker's VmHWM \
             after the call less its VmRSS before it, /proc/self/status; worst of the runs, \
             warm-up included)",
            mib(self.many_rss_growth().unwrap_or(0))
        );
        if let Some(sent) = self.resumed_sent {
            println!(
                "  resume: cut at half (cancelled) and resumed by a second call, {MANY} \
                 connections each: the CDN sent {:.1} MiB of {:.0} MiB ({:.3}x; at most \
                 {MANY} x {} MiB more is the bound)",
                mib(sent),
                mib(self.bytes),
                sent as f64 / self.bytes as f64,
                PIECE_MIN >> 20
            );
        }
    }
}

/// The single-layer targets of both tables, each with whether it was met.
pub fn targets(capped: &Table, uncapped: &Table) -> Vec<(String, bool)> {
    let growth = capped.many_rss_growth().unwrap_or(u64::MAX);
    let resumed = capped.resumed_sent.unwrap_or(u64::MAX);
    let bound = capped.bytes + MANY as u64 * PIECE_MIN;
    vec![
        (
            format!(
                "capped: tank {MANY} connections >= 3.5x faster than 1: {:.2}x",
                capped.speedup()
            ),
            capped.speedup() >= 3.5,
        ),
        (
            format!(
                "capped: tank {MANY} connections >= 3x faster than oci-client (inside each): {:.2}x",
                capped.faster_than(Tool::OciClient)
            ),
            capped.faster_than(Tool::OciClient) >= 3.0,
        ),
        (
            format!(
                "capped: tank {MANY} connections >= 3x faster than skopeo (whole processes): {:.2}x",
                capped.faster_than(Tool::Skopeo)
            ),
            capped.faster_than(Tool::Skopeo) >= 3.0,
        ),
        (
            format!(
                "uncapped: tank {MANY} connections within 1.05x of 1 (time {MANY} / time 1): {:.3}x",
                1.0 / uncapped.speedup()
            ),
            1.0 / uncapped.speedup() <= 1.05,
        ),
        (
            format!(
                "capped: peak RSS growth with {MANY} connections <= 64 MiB: {:.1} MiB",
                mib(growth)
            ),
            growth <= 64 << 20,
        ),
        (
            format!(
                "capped: cut at half and resumed, the CDN sent <= size + {MANY} x {} MiB: {:.1} MiB \
                 more than the layer",
                PIECE_MIN >> 20,
                (resumed as f64 - capped.bytes as f64) / 1048576.0
            ),
            resumed <= bound,
        ),
    ]
}
