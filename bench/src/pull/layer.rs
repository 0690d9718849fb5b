//! The single-layer rows: one large layer by each client, in a table whose
//! every row is set against the first, the limit; then the lines that
//! compare rows with each other, and the resumed transfer.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{Rig, Which};

use crate::host::cores;
use crate::measure::{
    children_cpu_secs, median, median_of, process_cpu_secs, run_quiet, timed_output, timed_runs,
    worker_output, Scratch,
};
use crate::worker;

/// What a row runs.
#[derive(Clone, Copy, PartialEq)]
enum Probe {
    /// `openssl dgst -sha256` of the blob's file in the plain registry's
    /// storage, from the page cache: the limit, every row's baseline.
    OpensslOfFile,
    /// The sha2 crate in this process, on the same file.
    Sha2OfFile,
    /// `curl | openssl dgst -sha256` from the plain registry.
    CurlThroughOpenssl,
    /// `curl -o /dev/null` from the plain registry: the registry and
    /// loopback alone, bytes neither hashed nor kept.
    CurlToNull,
    /// `tank_blob` in a worker process.
    TankBlob(Which),
    /// `dd` of the blob's file to /dev/shm: the kernel's file write alone.
    DdToShm,
    /// `tank_blob_to_file` to /dev/shm in a worker process.
    TankBlobToFile(Which),
    /// oci-client's pull_blob into a tokio::fs::File on /dev/shm.
    OciClientToFile(Which),
    /// `skopeo copy docker:// dir:` of the one-layer image from the plain
    /// registry.
    SkopeoToDir,
}

/// Every row's ratio is against this one's seconds ("x limit").
const BASELINE: Probe = Probe::OpensslOfFile;

const PLAIN: &str = "plain";
const CDN: &str = "token + 307 to CDN";

/// One row of the table: its name, what it runs, and how many timed runs.
struct Row {
    name: String,
    probe: Probe,
    runs: usize,
}

/// The table, in the order it runs and prints.
fn rows(runs: usize) -> Vec<Row> {
    let row = |name: String, probe| Row { name, probe, runs };
    // skopeo takes many times longer than the others.
    let skopeo_runs = runs.min(3);
    vec![
        row(
            "limit: openssl dgst -sha256 (page cache)".into(),
            Probe::OpensslOfFile,
        ),
        row(
            "sha2 crate in-process (same file)".into(),
            Probe::Sha2OfFile,
        ),
        row(
            "curl -s | openssl dgst -sha256 (plain)".into(),
            Probe::CurlThroughOpenssl,
        ),
        row(
            "wire only: curl -s -o /dev/null (plain)".into(),
            Probe::CurlToNull,
        ),
        row(
            format!("tank_blob via C ABI ({PLAIN})"),
            Probe::TankBlob(Which::Plain),
        ),
        row(
            format!("tank_blob via C ABI ({CDN})"),
            Probe::TankBlob(Which::Cdn),
        ),
        row(
            "file write alone: dd bs=1M to /dev/shm".into(),
            Probe::DdToShm,
        ),
        row(
            format!("tank_blob_to_file to /dev/shm ({PLAIN})"),
            Probe::TankBlobToFile(Which::Plain),
        ),
        row(
            format!("tank_blob_to_file to /dev/shm ({CDN})"),
            Probe::TankBlobToFile(Which::Cdn),
        ),
        row(
            format!("oci-client pull_blob to /dev/shm ({PLAIN})"),
            Probe::OciClientToFile(Which::Plain),
        ),
        row(
            format!("oci-client pull_blob to /dev/shm ({CDN})"),
            Probe::OciClientToFile(Which::Cdn),
        ),
        Row {
            name: format!("skopeo copy docker:// dir: (plain, {skopeo_runs} runs)"),
            probe: Probe::SkopeoToDir,
            runs: skopeo_runs,
        },
    ]
}

/// What a row measured: its median seconds, its note, and the figures the
/// lines under the table and the targets need (NaN or 0 where the row has
/// none).
struct Measured {
    secs: f64,
    note: String,
    /// Median CPU seconds of the client: tank's worker, or dd.
    cpu: f64,
    /// Median CPU seconds the registry spent per pull.
    registry_cpu: f64,
    /// Worst of the runs: peak RSS (tank_blob) or peak RSS growth (to a
    /// file).
    memory: u64,
}

impl Measured {
    fn bare(secs: f64) -> Measured {
        Measured::noted(secs, String::new())
    }

    fn noted(secs: f64, note: String) -> Measured {
        Measured {
            secs,
            note,
            cpu: f64::NAN,
            registry_cpu: f64::NAN,
            memory: 0,
        }
    }
}

/// The layer every row pulls, where the rows find it and put it.
struct Layer<'a> {
    rig: &'a Rig,
    repo: String,
    tag: String,
    digest: String,
    hex: String,
    /// Its size in bytes: the N of "N + x MiB".
    bytes: u64,
    /// Its size as the registry has it, as the to-file calls are given it.
    size: String,
    /// The blob's file in the plain registry's storage.
    file: PathBuf,
    /// Where the to-file rows write: tmpfs, so the VM's disk does not set
    /// the pace.
    out: PathBuf,
    peer: &'a Path,
}

/// What the table gave: each row's figures, and the resumed transfer's.
pub struct Single {
    rows: Vec<(Probe, Measured)>,
    /// The layer's size: the N of "N + x MiB".
    bytes: u64,
    mib: u64,
    /// Bytes of the layer the registry sent for a cut and resumed pull.
    resumed_sent: u64,
}

/// Runs the table, printing each row as it is measured, then the resumed
/// transfer and the lines that compare rows.
pub fn run(rig: &Rig, mib: u64, runs: usize, peer: &Path) -> Result<Single> {
    let large = rig
        .info()
        .images
        .large
        .clone()
        .context("rig has no large image")?;
    let digest = large.layers[0].clone();
    let shm = Scratch(PathBuf::from("/dev/shm").join(format!("tank-bench-{}", std::process::id())));
    std::fs::create_dir_all(&shm.0)?;
    let layer = Layer {
        rig,
        file: rig.blob_data_path(Which::Plain, &digest),
        hex: digest.trim_start_matches("sha256:").to_owned(),
        bytes: mib << 20,
        size: large.blob_sizes[&digest].to_string(),
        out: shm.0.join("layer"),
        repo: large.repo,
        tag: large.tag,
        digest,
        peer,
    };
    run_quiet(Command::new("cat").arg(&layer.file).stdout(Stdio::null()))?;

    println!();
    println!(
        "{:<48} {:>9} {:>10} {:>9}  notes",
        "single layer", "median s", "MiB/s", "x limit"
    );
    let mut single = Single {
        rows: Vec::new(),
        bytes: layer.bytes,
        mib,
        resumed_sent: 0,
    };
    for row in rows(runs) {
        let m = layer.measure(row.probe, row.runs)?;
        // Each row leaves tmpfs as it found it.
        let _ = std::fs::remove_file(&layer.out);
        let limit = match row.probe {
            BASELINE => m.secs,
            _ => single.limit(),
        };
        println!(
            "{:<48} {:>9.3} {:>10.0} {:>9.2}  {}",
            row.name,
            m.secs,
            mib as f64 / m.secs,
            m.secs / limit,
            m.note
        );
        single.rows.push((row.probe, m));
    }
    single.resumed_sent = layer.resume()?;
    single.print_comparisons();
    Ok(single)
}

impl Layer<'_> {
    fn url(&self, which: Which) -> String {
        format!(
            "http://{}/v2/{}/blobs/{}",
            self.rig.registry(which),
            self.repo,
            self.digest
        )
    }

    fn out_str(&self) -> String {
        self.out.to_string_lossy().into_owned()
    }

    /// `runs` timed runs of `probe` after a warm-up.
    fn measure(&self, probe: Probe, runs: usize) -> Result<Measured> {
        match probe {
            Probe::OpensslOfFile => Ok(Measured::bare(median(runs, || {
                let out = timed_output(
                    Command::new("openssl")
                        .args(["dgst", "-sha256"])
                        .arg(&self.file),
                )?;
                expect_hex(&out.1, &self.hex)?;
                Ok(out.0)
            })?)),
            Probe::Sha2OfFile => Ok(Measured::bare(median(runs, || {
                worker::time_sha256_file(&self.file, &self.hex)
            })?)),
            Probe::CurlThroughOpenssl => {
                let url = self.url(Which::Plain);
                Ok(Measured::bare(median(runs, || {
                    let out = timed_output(
                        Command::new("sh")
                            .args(["-c", &format!("curl -s {url} | openssl dgst -sha256")]),
                    )?;
                    expect_hex(&out.1, &self.hex)?;
                    Ok(out.0)
                })?))
            }
            Probe::CurlToNull => self.wire(runs),
            Probe::TankBlob(which) => self.tank_blob(which, runs),
            Probe::DdToShm => self.file_write(runs),
            Probe::TankBlobToFile(which) => self.tank_blob_to_file(which, runs),
            Probe::OciClientToFile(which) => self.oci_client(which, runs),
            Probe::SkopeoToDir => self.skopeo(runs),
        }
    }

    /// The registry shares this machine's cores with the client, so its
    /// CPU time bounds what any client can reach.
    fn wire(&self, runs: usize) -> Result<Measured> {
        let url = self.url(Which::Plain);
        let registry_pid = self.rig.registry_pid(Which::Plain);
        let pulls = timed_runs(runs, || {
            let before = process_cpu_secs(&registry_pid.to_string())?;
            let out = timed_output(Command::new("curl").args(["-s", "-o", "/dev/null", &url]))?;
            Ok((out.0, process_cpu_secs(&registry_pid.to_string())? - before))
        })?;
        let registry_cpu = median_of(pulls.iter().map(|p| p.1).collect());
        Ok(Measured::noted(
            median_of(pulls.iter().map(|p| p.0).collect()),
            format!("registry CPU {registry_cpu:.2} s per pull"),
        ))
    }

    fn tank_blob(&self, which: Which, runs: usize) -> Result<Measured> {
        let reg = self.rig.registry(which).to_owned();
        let pid = self.rig.registry_pid(which).to_string();
        let pulls = timed_runs(runs, || {
            let registry_before = process_cpu_secs(&pid)?;
            let started = Instant::now();
            let out = worker_output(&["blob", &reg, &self.repo, &self.digest])?;
            let process_secs = started.elapsed().as_secs_f64();
            Ok(BlobPull {
                call_secs: out["call_secs"].as_f64().context("call_secs")?,
                process_secs,
                peak_rss: out["peak_rss_bytes"].as_u64().context("peak_rss_bytes")?,
                tank_cpu: out["cpu_secs"].as_f64().context("cpu_secs")?,
                registry_cpu: process_cpu_secs(&pid)? - registry_before,
            })
        })?;
        let median_by = |f: fn(&BlobPull) -> f64| median_of(pulls.iter().map(f).collect());
        // The call's own time: the worker process's start-up and the
        // release of the buffer afterwards are shown beside it.
        let secs = median_by(|p| p.call_secs);
        let process_secs = median_by(|p| p.process_secs);
        let tank_cpu = median_by(|p| p.tank_cpu);
        let registry_cpu = median_by(|p| p.registry_cpu);
        let peak = pulls.iter().map(|p| p.peak_rss).max().unwrap_or(0);
        Ok(Measured {
            secs,
            note: format!(
                "whole process {process_secs:.3} s; peak RSS {:.1} MiB = N + {:.1} MiB; CPU: tank {tank_cpu:.2} s, registry {registry_cpu:.2} s",
                peak as f64 / 1048576.0,
                (peak as f64 - self.bytes as f64) / 1048576.0
            ),
            cpu: tank_cpu,
            registry_cpu,
            memory: peak,
        })
    }

    /// What the kernel charges to put the layer's bytes in a tmpfs file,
    /// with nothing received or hashed: every to-file client pays it.
    fn file_write(&self, runs: usize) -> Result<Measured> {
        let writes = timed_runs(runs, || {
            let _ = std::fs::remove_file(&self.out);
            let before = children_cpu_secs();
            let (secs, _) = timed_output(Command::new("dd").args([
                format!("if={}", self.file.display()),
                format!("of={}", self.out_str()),
                "bs=1M".into(),
                "status=none".into(),
            ]))?;
            Ok((secs, children_cpu_secs() - before))
        })?;
        let cpu = median_of(writes.iter().map(|w| w.1).collect());
        Ok(Measured {
            cpu,
            ..Measured::noted(
                median_of(writes.iter().map(|w| w.0).collect()),
                format!("CPU {cpu:.2} s (the kernel's tmpfs write; no hashing)"),
            )
        })
    }

    fn tank_blob_to_file(&self, which: Which, runs: usize) -> Result<Measured> {
        let reg = self.rig.registry(which).to_owned();
        let out = self.out_str();
        let pulls = timed_runs(runs, || {
            let _ = std::fs::remove_file(&self.out);
            let r = worker_output(&["to_file", &reg, &self.repo, &self.digest, &self.size, &out])?;
            Ok((
                r["call_secs"].as_f64().context("call_secs")?,
                r["rss_growth_bytes"].as_u64().context("rss_growth_bytes")?,
                r["cpu_secs"].as_f64().context("cpu_secs")?,
            ))
        })?;
        let growth = pulls.iter().map(|p| p.1).max().unwrap_or(0);
        let cpu = median_of(pulls.iter().map(|p| p.2).collect());
        Ok(Measured {
            cpu,
            memory: growth,
            ..Measured::noted(
                median_of(pulls.iter().map(|p| p.0).collect()),
                format!(
                    "peak RSS growth {:.1} MiB; CPU: tank {cpu:.2} s",
                    growth as f64 / 1048576.0
                ),
            )
        })
    }

    /// The peer, pulling the same blob from the same registry to the same
    /// tmpfs.
    fn oci_client(&self, which: Which, runs: usize) -> Result<Measured> {
        let reg = self.rig.registry(which).to_owned();
        let out = self.out_str();
        let secs = median(runs, || {
            let _ = std::fs::remove_file(&self.out);
            let timed = timed_output(Command::new(self.peer).args([
                reg.as_str(),
                self.repo.as_str(),
                self.digest.as_str(),
                self.size.as_str(),
                out.as_str(),
            ]))?;
            let got = worker::time_sha256_file(&self.out, &self.hex);
            got.with_context(|| {
                format!(
                    "oci-peer wrote {} that does not hash to the layer",
                    self.out.display()
                )
            })?;
            timed.1.trim().parse::<f64>().context("oci-peer's seconds")
        })?;
        Ok(Measured::noted(
            secs,
            "auth + pull_blob, timed inside the peer".into(),
        ))
    }

    fn skopeo(&self, runs: usize) -> Result<Measured> {
        let plain = self.rig.registry(Which::Plain);
        Ok(Measured::bare(median(runs, || {
            let dir =
                std::env::temp_dir().join(format!("tank-bench-skopeo-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let started = Instant::now();
            run_quiet(Command::new("skopeo").args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                &format!("docker://{plain}/{}:{}", self.repo, self.tag),
                &format!("dir:{}", dir.display()),
            ]))?;
            let secs = started.elapsed().as_secs_f64();
            let _ = std::fs::remove_dir_all(&dir);
            Ok(secs)
        })?))
    }

    /// The layer cut at half (the call is cancelled), then a second call:
    /// the bytes of the layer the registry sent for both.
    fn resume(&self) -> Result<u64> {
        let reg = self.rig.registry(Which::Plain).to_owned();
        let out = self.out_str();
        let _ = std::fs::remove_file(&self.out);
        self.rig.clear_logs();
        for mode in ["to_file_cut", "to_file"] {
            worker_output(&[mode, &reg, &self.repo, &self.digest, &self.size, &out])?;
        }
        let sent = self
            .rig
            .registry_requests(Which::Plain)
            .iter()
            .filter(|r| r.uri.contains("/blobs/"))
            .map(|r| r.bytes)
            .sum();
        let _ = std::fs::remove_file(&self.out);
        Ok(sent)
    }
}

/// One tank_blob worker run's figures.
struct BlobPull {
    call_secs: f64,
    process_secs: f64,
    peak_rss: u64,
    tank_cpu: f64,
    registry_cpu: f64,
}

fn expect_hex(output: &str, hex: &str) -> Result<()> {
    if !output.contains(hex) {
        bail!("wrong hash: {output}");
    }
    Ok(())
}

impl Single {
    fn row(&self, probe: Probe) -> Option<&Measured> {
        self.rows.iter().find(|(p, _)| *p == probe).map(|(_, m)| m)
    }

    fn secs(&self, probe: Probe) -> f64 {
        self.row(probe).map_or(f64::NAN, |m| m.secs)
    }

    /// `tank_blob_to_file`'s seconds from one registry.
    pub fn to_file_secs(&self, which: Which) -> f64 {
        self.secs(Probe::TankBlobToFile(which))
    }

    fn limit(&self) -> f64 {
        self.secs(BASELINE)
    }

    /// tank's and the registry's CPU for one plain pull, spread over the
    /// cores: no client can be faster.
    fn cpu_floor(&self) -> f64 {
        self.row(Probe::TankBlob(Which::Plain))
            .map_or(f64::NAN, |m| (m.cpu + m.registry_cpu) / cores())
    }

    fn to_file_cpu(&self) -> f64 {
        self.row(Probe::TankBlobToFile(Which::Plain))
            .map_or(f64::NAN, |m| m.cpu)
    }

    /// The most any tank_blob run held above the layer's size.
    fn worst_rss_over(&self) -> u64 {
        [Which::Plain, Which::Cdn]
            .iter()
            .filter_map(|w| self.row(Probe::TankBlob(*w)))
            .map(|m| m.memory.saturating_sub(self.bytes))
            .max()
            .unwrap_or(0)
    }

    fn worst_to_file_growth(&self) -> u64 {
        [Which::Plain, Which::Cdn]
            .iter()
            .filter_map(|w| self.row(Probe::TankBlobToFile(*w)))
            .map(|m| m.memory)
            .max()
            .unwrap_or(0)
    }

    /// oci-client's seconds over tank_blob_to_file's, per registry.
    fn peer_ratios(&self) -> Vec<(&'static str, f64)> {
        [(Which::Plain, PLAIN), (Which::Cdn, CDN)]
            .iter()
            .map(|&(w, label)| {
                (
                    label,
                    self.secs(Probe::OciClientToFile(w)) / self.to_file_secs(w),
                )
            })
            .collect()
    }

    fn print_comparisons(&self) {
        let limit = self.limit();
        let tank_plain = self.secs(Probe::TankBlob(Which::Plain));
        let in_process = self.secs(Probe::Sha2OfFile);
        let (write_secs, write_cpu) = self
            .row(Probe::DdToShm)
            .map_or((f64::NAN, f64::NAN), |m| (m.secs, m.cpu));
        let to_file_cpu = self.to_file_cpu();
        println!(
            "skopeo / tank_blob (plain): {:.1}x",
            self.secs(Probe::SkopeoToDir) / tank_plain
        );
        println!(
            "CPU floor (plain): (tank CPU + registry CPU) / {} cores = {:.3} s = {:.2}x limit; \
             wire only = {:.2}x limit",
            cores(),
            self.cpu_floor(),
            self.cpu_floor() / limit,
            self.secs(Probe::CurlToNull) / limit
        );
        println!(
            "tank_blob_to_file CPU per byte / sha2 in-process: {:.2}x (plain; the part of tank's cost that is not SHA-256)",
            to_file_cpu / in_process
        );
        println!(
            "  of which the kernel's file write (dd's CPU, same run): {write_cpu:.2} s; \
             tank CPU less that write / sha2 in-process: {:.2}x",
            (to_file_cpu - write_cpu) / in_process
        );
        println!(
            "  hash and write back to back (sha2 in-process + dd): {:.3} s = {:.2}x limit; \
             to_file (CDN) against it: {:.2}x",
            in_process + write_secs,
            (in_process + write_secs) / limit,
            self.to_file_secs(Which::Cdn) / (in_process + write_secs)
        );
        println!(
            "resume: the layer cut at half (cancelled) and resumed by a second call: the registry sent {:.1} MiB of {} MiB ({:.3}x)",
            self.resumed_sent as f64 / 1048576.0,
            self.mib,
            self.resumed_sent as f64 / self.bytes as f64
        );
    }

    /// The single-layer targets, each with whether it was met.
    pub fn targets(&self) -> Vec<(String, bool)> {
        let limit = self.limit();
        let tank_plain = self.secs(Probe::TankBlob(Which::Plain));
        let tank_cdn = self.secs(Probe::TankBlob(Which::Cdn));
        let skopeo = self.secs(Probe::SkopeoToDir);
        let to_file_cdn = self.to_file_secs(Which::Cdn);
        let in_process = self.secs(Probe::Sha2OfFile);
        let sent = self.resumed_sent as f64;
        let bytes = self.bytes as f64;
        let peer_ratios = self.peer_ratios();
        vec![
            (
                format!("tank_blob plain <= 1.15x limit: {:.2}x", tank_plain / limit),
                tank_plain / limit <= 1.15,
            ),
            (
                format!(
                    "tank_blob token+CDN <= 1.15x limit: {:.2}x",
                    tank_cdn / limit
                ),
                tank_cdn / limit <= 1.15,
            ),
            (
                format!("skopeo / tank >= 5x: {:.1}x", skopeo / tank_plain),
                skopeo / tank_plain >= 5.0,
            ),
            (
                format!(
                    "peak RSS <= N + 64 MiB: N + {:.1} MiB",
                    self.worst_rss_over() as f64 / 1048576.0
                ),
                self.worst_rss_over() <= 64 << 20,
            ),
            (
                format!(
                    "to_file token+CDN <= 1.15x limit: {:.2}x",
                    to_file_cdn / limit
                ),
                to_file_cdn / limit <= 1.15,
            ),
            (
                format!(
                    "to_file CPU <= 1.6x in-process SHA-256: {:.2}x",
                    self.to_file_cpu() / in_process
                ),
                self.to_file_cpu() / in_process <= 1.6,
            ),
            (
                format!(
                    "to_file peak RSS growth <= 32 MiB: {:.1} MiB",
                    self.worst_to_file_growth() as f64 / 1048576.0
                ),
                self.worst_to_file_growth() <= 32 << 20,
            ),
            (
                format!(
                    "resumed transfer <= 1.05x the blob sent: {:.3}x",
                    sent / bytes
                ),
                sent <= 1.05 * bytes,
            ),
            (
                format!(
                    "to_file >= 1.3x faster than oci-client on both registries: {}",
                    peer_ratios
                        .iter()
                        .map(|(l, r)| format!("{r:.2}x ({l})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                peer_ratios.iter().all(|(_, r)| *r >= 1.3),
            ),
        ]
    }
}
