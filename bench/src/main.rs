//! `tank-bench`: how fast `tank_blob` pulls a large layer compared with the
//! limit (SHA-256 of the same bytes from the page cache), with `curl |
//! openssl`, and with skopeo; how a 50-layer image pulls from 8 threads
//! sharing one cache; and how `tank_pull` pulls a whole image (50 x 1 MiB,
//! and 4 layers of the large layer's size in all, from a second rig) into an
//! OCI layout next to skopeo and oci-client. Every figure comes from this one
//! run, against the rigs' real registries on loopback.
//!
//! Then the unpack rows (see `unpack`): `tank_unpack` and
//! `tank_pull_unpack` on two images built at the start of the run.
//!
//! Usage: tank-bench [--quick] [--runs N] [--only pull|unpack] [--perf]
//!   --quick   a 256 MiB layer instead of 1 GiB (and 4 x 64 MiB instead of
//!             4 x 256 MiB for the whole-image rows; a 256 MiB mixed layer
//!             for the unpack rows)
//!   --runs N  timed runs per row, after one warm-up; the median is
//!             reported (default 5)
//!   --only S  only the pull rows (blob, to-file and whole-image pulls) or
//!             only the unpack rows; both by default
//!   --perf    after each image's tank_unpack row, the top symbols of one
//!             more tank_unpack run under `perf record`

mod unpack;
mod worker;

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{Rig, RigOptions, Which};

struct Row {
    name: String,
    secs: f64,
    note: String,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker::run(&args[1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).context("--runs needs a number")?.parse()?,
        None => 5,
    };
    let only = match args.iter().position(|a| a == "--only") {
        Some(i) => match args.get(i + 1).map(String::as_str) {
            Some(s @ ("pull" | "unpack")) => Some(s),
            _ => bail!("--only takes pull or unpack"),
        },
        None => None,
    };
    println!("cpu: {}", cpu_model());
    if only != Some("unpack") {
        pull_rows(quick, runs)?;
    }
    if only != Some("pull") {
        unpack::run(quick, runs, args.iter().any(|a| a == "--perf"))?;
    }
    Ok(())
}

/// The rows of the pull calls: tank_blob, tank_blob_to_file and tank_pull
/// against their baselines, with their targets.
fn pull_rows(quick: bool, runs: usize) -> Result<()> {
    for tool in ["openssl", "curl", "skopeo", "sh", "xargs", "dd"] {
        if !on_path(tool) {
            bail!(
                "{tool} is missing: apt-get install {}",
                match tool {
                    "xargs" => "findutils",
                    "dd" => "coreutils",
                    t => t,
                }
            );
        }
    }
    let mib: u64 = if quick { 256 } else { 1024 };
    let bytes = mib << 20;

    println!(
        "sha extensions: {} (the sha2 crate picks them at run time; in-process sha256 below shows whether it does)",
        if cpu_has("sha_ni") { "sha_ni present" } else { "absent" }
    );
    println!("layer: {mib} MiB, {runs} runs per row after one warm-up run, median reported");

    eprintln!("starting the rig (3 registries, {mib} MiB layer, 50 x 1 MiB image)...");
    let rig = Rig::start(RigOptions {
        large_mib: Some(mib),
        many_layers: Some((50, 1)),
        // The https registries are for tests; nothing here reads them.
        tls: false,
        ..RigOptions::default()
    })?;
    let large = rig
        .info()
        .images
        .large
        .clone()
        .context("rig has no large image")?;
    let digest = large.layers[0].clone();
    let file = rig.blob_data_path(Which::Plain, &digest);
    let hex = digest.trim_start_matches("sha256:").to_owned();
    run_quiet(Command::new("cat").arg(&file).stdout(Stdio::null()))?;

    let mut rows = Vec::new();
    let mut worst_rss_over: u64 = 0;
    let limit = median(runs, || {
        let out = timed_output(Command::new("openssl").args(["dgst", "-sha256"]).arg(&file))?;
        expect_hex(&out.1, &hex)?;
        Ok(out.0)
    })?;
    rows.push(Row {
        name: "limit: openssl dgst -sha256 (page cache)".into(),
        secs: limit,
        note: String::new(),
    });

    let in_process = median(runs, || worker::time_sha256_file(&file, &hex))?;
    rows.push(Row {
        name: "sha2 crate in-process (same file)".into(),
        secs: in_process,
        note: String::new(),
    });

    let plain = rig.registry(Which::Plain).to_owned();
    let curl_url = format!("http://{plain}/v2/{}/blobs/{digest}", large.repo);
    let curl = median(runs, || {
        let out = timed_output(
            Command::new("sh").args(["-c", &format!("curl -s {curl_url} | openssl dgst -sha256")]),
        )?;
        expect_hex(&out.1, &hex)?;
        Ok(out.0)
    })?;
    rows.push(Row {
        name: "curl -s | openssl dgst -sha256 (plain)".into(),
        secs: curl,
        note: String::new(),
    });

    // What the registry and loopback cost alone: the bytes are neither
    // hashed nor kept. The registry shares this machine's cores with the
    // client, so its CPU time bounds what any client can reach.
    let registry_pid = rig.registry_pid(Which::Plain);
    let pulls = timed_runs(runs, || {
        let before = process_cpu_secs(&registry_pid.to_string())?;
        let out = timed_output(Command::new("curl").args(["-s", "-o", "/dev/null", &curl_url]))?;
        Ok((out.0, process_cpu_secs(&registry_pid.to_string())? - before))
    })?;
    let wire = median_of(pulls.iter().map(|p| p.0).collect());
    let registry_cpu = median_of(pulls.iter().map(|p| p.1).collect());
    rows.push(Row {
        name: "wire only: curl -s -o /dev/null (plain)".into(),
        secs: wire,
        note: format!("registry CPU {registry_cpu:.2} s per pull"),
    });

    let mut floor = f64::NAN;
    for (which, label) in [(Which::Plain, "plain"), (Which::Cdn, "token + 307 to CDN")] {
        let reg = rig.registry(which).to_owned();
        let pid = rig.registry_pid(which).to_string();
        let pulls = timed_runs(runs, || {
            let registry_before = process_cpu_secs(&pid)?;
            let started = Instant::now();
            let out = worker_output(&["blob", &reg, &large.repo, &digest])?;
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
        if which == Which::Plain {
            floor = (tank_cpu + registry_cpu) / cores();
        }
        let peak = pulls.iter().map(|p| p.peak_rss).max().unwrap_or(0);
        worst_rss_over = worst_rss_over.max(peak.saturating_sub(bytes));
        rows.push(Row {
            name: format!("tank_blob via C ABI ({label})"),
            secs,
            note: format!(
                "whole process {process_secs:.3} s; peak RSS {:.1} MiB = N + {:.1} MiB; CPU: tank {tank_cpu:.2} s, registry {registry_cpu:.2} s",
                peak as f64 / 1048576.0,
                (peak as f64 - bytes as f64) / 1048576.0
            ),
        });
    }

    // To a file on tmpfs, so the VM's disk does not set the pace.
    let shm =
        std::path::PathBuf::from("/dev/shm").join(format!("tank-bench-{}", std::process::id()));
    std::fs::create_dir_all(&shm)?;
    let out_path = shm.join("layer");
    let out = out_path.to_string_lossy().into_owned();
    let layer_size = large.blob_sizes[&digest].to_string();
    // What the kernel charges to put the layer's bytes in a tmpfs file,
    // with nothing received or hashed: every to-file client pays it.
    let writes = timed_runs(runs, || {
        let _ = std::fs::remove_file(&out_path);
        let before = children_cpu_secs();
        let (secs, _) = timed_output(Command::new("dd").args([
            format!("if={}", file.display()),
            format!("of={out}"),
            "bs=1M".into(),
            "status=none".into(),
        ]))?;
        Ok((secs, children_cpu_secs() - before))
    })?;
    let _ = std::fs::remove_file(&out_path);
    let write_secs = median_of(writes.iter().map(|w| w.0).collect());
    let write_cpu = median_of(writes.iter().map(|w| w.1).collect());
    rows.push(Row {
        name: "file write alone: dd bs=1M to /dev/shm".into(),
        secs: write_secs,
        note: format!("CPU {write_cpu:.2} s (the kernel's tmpfs write; no hashing)"),
    });
    let mut worst_to_file_growth: u64 = 0;
    let mut to_file_cpu = f64::NAN;
    for (which, label) in [(Which::Plain, "plain"), (Which::Cdn, "token + 307 to CDN")] {
        let reg = rig.registry(which).to_owned();
        let pulls = timed_runs(runs, || {
            let _ = std::fs::remove_file(&out_path);
            let r = worker_output(&["to_file", &reg, &large.repo, &digest, &layer_size, &out])?;
            Ok((
                r["call_secs"].as_f64().context("call_secs")?,
                r["rss_growth_bytes"].as_u64().context("rss_growth_bytes")?,
                r["cpu_secs"].as_f64().context("cpu_secs")?,
            ))
        })?;
        let secs = median_of(pulls.iter().map(|p| p.0).collect());
        let growth = pulls.iter().map(|p| p.1).max().unwrap_or(0);
        let cpu = median_of(pulls.iter().map(|p| p.2).collect());
        if which == Which::Plain {
            to_file_cpu = cpu;
        }
        worst_to_file_growth = worst_to_file_growth.max(growth);
        rows.push(Row {
            name: format!("tank_blob_to_file to /dev/shm ({label})"),
            secs,
            note: format!(
                "peak RSS growth {:.1} MiB; CPU: tank {cpu:.2} s",
                growth as f64 / 1048576.0
            ),
        });
    }
    // The peer, pulling the same blob from the same registries to the same
    // tmpfs: oci-client's pull_blob into a tokio::fs::File.
    let peer = std::env::current_dir()?.join("bench/oci-peer/target/release/oci-peer");
    if !peer.is_file() {
        bail!(
            "{} is missing: cargo build --release --manifest-path bench/oci-peer/Cargo.toml \
             (scripts/bench.sh does)",
            peer.display()
        );
    }
    let mut peer_ratios = Vec::new();
    for (which, label) in [(Which::Plain, "plain"), (Which::Cdn, "token + 307 to CDN")] {
        let reg = rig.registry(which).to_owned();
        let secs = median(runs, || {
            let _ = std::fs::remove_file(&out_path);
            let out = timed_output(Command::new(&peer).args([
                reg.as_str(),
                large.repo.as_str(),
                digest.as_str(),
                layer_size.as_str(),
                out.as_str(),
            ]))?;
            let got = worker::time_sha256_file(&out_path, &hex);
            got.with_context(|| {
                format!(
                    "oci-peer wrote {} that does not hash to the layer",
                    out_path.display()
                )
            })?;
            out.1.trim().parse::<f64>().context("oci-peer's seconds")
        })?;
        peer_ratios.push((label, secs / tank_secs_to_file(&rows, label)));
        rows.push(Row {
            name: format!("oci-client pull_blob to /dev/shm ({label})"),
            secs,
            note: "auth + pull_blob, timed inside the peer".into(),
        });
    }

    // Resumed: cut at half (the call is cancelled), then a second call.
    let resume_reg = rig.registry(Which::Plain).to_owned();
    let _ = std::fs::remove_file(&out_path);
    rig.clear_logs();
    worker_output(&[
        "to_file_cut",
        &resume_reg,
        &large.repo,
        &digest,
        &layer_size,
        &out,
    ])?;
    worker_output(&[
        "to_file",
        &resume_reg,
        &large.repo,
        &digest,
        &layer_size,
        &out,
    ])?;
    let sent: u64 = rig
        .registry_requests(Which::Plain)
        .iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .map(|r| r.bytes)
        .sum();
    let _ = std::fs::remove_dir_all(&shm);

    let skopeo_runs = runs.min(3);
    let skopeo = median(skopeo_runs, || {
        let dir = std::env::temp_dir().join(format!("tank-bench-skopeo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        run_quiet(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &format!("docker://{plain}/{}:{}", large.repo, large.tag),
            &format!("dir:{}", dir.display()),
        ]))?;
        let secs = started.elapsed().as_secs_f64();
        let _ = std::fs::remove_dir_all(&dir);
        Ok(secs)
    })?;
    rows.push(Row {
        name: format!("skopeo copy docker:// dir: (plain, {skopeo_runs} runs)"),
        secs: skopeo,
        note: String::new(),
    });

    println!();
    println!(
        "{:<48} {:>9} {:>10} {:>9}  notes",
        "single layer", "median s", "MiB/s", "x limit"
    );
    for r in &rows {
        println!(
            "{:<48} {:>9.3} {:>10.0} {:>9.2}  {}",
            r.name,
            r.secs,
            mib as f64 / r.secs,
            r.secs / limit,
            r.note
        );
    }
    let tank_secs = |label: &str| {
        rows.iter()
            .find(|r| r.name.starts_with("tank_blob") && r.name.contains(label))
            .map_or(f64::NAN, |r| r.secs)
    };
    let (tank_plain, tank_cdn) = (tank_secs("(plain)"), tank_secs("CDN"));
    println!("skopeo / tank_blob (plain): {:.1}x", skopeo / tank_plain);
    println!(
        "CPU floor (plain): (tank CPU + registry CPU) / {} cores = {floor:.3} s = {:.2}x limit; \
         wire only = {:.2}x limit",
        cores(),
        floor / limit,
        wire / limit
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
        tank_secs_to_file(&rows, "CDN") / (in_process + write_secs)
    );
    println!(
        "resume: the layer cut at half (cancelled) and resumed by a second call: the registry sent {:.1} MiB of {mib} MiB ({:.3}x)",
        sent as f64 / 1048576.0,
        sent as f64 / bytes as f64
    );

    let many = many_layers(&rig, runs)?;
    let pulls = whole_images(&rig, runs, mib, &peer)?;
    print_image_pulls(&pulls, runs, &rows, mib);

    println!();
    println!("targets:");
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut checks = vec![
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
                worst_rss_over as f64 / 1048576.0
            ),
            worst_rss_over <= 64 << 20,
        ),
        (
            format!(
                "to_file token+CDN <= 1.15x limit: {:.2}x",
                tank_secs_to_file(&rows, "CDN") / limit
            ),
            tank_secs_to_file(&rows, "CDN") / limit <= 1.15,
        ),
        (
            format!(
                "to_file CPU <= 1.6x in-process SHA-256: {:.2}x",
                to_file_cpu / in_process
            ),
            to_file_cpu / in_process <= 1.6,
        ),
        (
            format!(
                "to_file peak RSS growth <= 32 MiB: {:.1} MiB",
                worst_to_file_growth as f64 / 1048576.0
            ),
            worst_to_file_growth <= 32 << 20,
        ),
        (
            format!(
                "resumed transfer <= 1.05x the blob sent: {:.3}x",
                sent as f64 / bytes as f64
            ),
            (sent as f64) <= 1.05 * bytes as f64,
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
        (
            format!("50 layers: one token request per pull: {:?}", many.tokens),
            many.tokens.iter().all(|&t| t == 1),
        ),
        (
            format!(
                "50 layers: connections <= 12 for 8 threads (reuse, not one per request): {:?}",
                many.connections
            ),
            many.connections.iter().all(|&c| c <= 12),
        ),
        (
            format!("50 layers: <= 1.5x curl per layer: {:.2}x", many.ratio),
            many.ratio <= 1.5,
        ),
    ];
    let fifty = &pulls[0];
    let four = &pulls[1];
    checks.extend([
        (
            format!(
                "tank_pull {}: >= 3x faster than skopeo (whole processes): {:.2}x",
                fifty.title,
                fifty.skopeo / fifty.tank_process
            ),
            fifty.skopeo / fifty.tank_process >= 3.0,
        ),
        (
            format!(
                "tank_pull {}: >= 1.5x faster than oci-client: {:.2}x",
                fifty.title,
                fifty.oci_client / fifty.tank_call
            ),
            fifty.oci_client / fifty.tank_call >= 1.5,
        ),
        {
            let seq = four.to_file_seq.unwrap_or(f64::NAN);
            (
                format!(
                    "tank_pull {} within 1.2x of tank_blob_to_file of the same layers in turn: {:.2}x",
                    four.title,
                    four.tank_call / seq
                ),
                four.tank_call / seq <= 1.2,
            )
        },
        (
            format!(
                "tank_pull: one token request per pull: {}",
                pulls
                    .iter()
                    .map(|p| format!("{:?} ({})", p.tank_tokens, p.title))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            pulls.iter().all(|p| p.tank_tokens.iter().all(|&t| t == 1)),
        ),
        (
            format!(
                "tank_pull: a second pull into the same layout sends no blob request: {}",
                pulls
                    .iter()
                    .map(|p| format!("{} ({})", p.again_blob_requests, p.title))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            pulls.iter().all(|p| p.again_blob_requests == 0),
        ),
    ]);
    for (what, ok) in checks {
        println!("  {:<8} {what}", verdict(ok));
    }
    Ok(())
}

fn tank_secs_to_file(rows: &[Row], label: &str) -> f64 {
    rows.iter()
        .find(|r| r.name.starts_with("tank_blob_to_file") && r.name.contains(label))
        .map_or(f64::NAN, |r| r.secs)
}

struct ManyLayers {
    tokens: Vec<usize>,
    connections: Vec<u64>,
    ratio: f64,
}

/// The 50-layer image by 8 threads through one cache, against the token
/// registry, next to `curl` per layer run 8 at a time.
fn many_layers(rig: &Rig, runs: usize) -> Result<ManyLayers> {
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
        use std::io::Write;
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

fn worker_output(args: &[&str]) -> Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("--worker").args(args).output()?;
    if !out.status.success() {
        bail!(
            "worker {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// One tank_blob worker run's figures.
struct BlobPull {
    call_secs: f64,
    process_secs: f64,
    peak_rss: u64,
    tank_cpu: f64,
    registry_cpu: f64,
}

/// What `runs` runs of `once` gave, after one untimed warm-up run whose
/// result is dropped (as hyperfine's --warmup): the first run after the rig
/// starts pays for memory the rig's fixtures just churned.
fn timed_runs<T>(runs: usize, mut once: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
    once()?;
    (0..runs.max(1)).map(|_| once()).collect()
}

/// The median of `runs` timed runs after a warm-up.
fn median(runs: usize, once: impl FnMut() -> Result<f64>) -> Result<f64> {
    Ok(median_of(timed_runs(runs, once)?))
}

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// CPU time (user + sys) of every child that has exited and been waited for.
fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// User plus system CPU seconds of a process (`self` or a pid), all its
/// threads, from /proc.
pub fn process_cpu_secs(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which may itself hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // SAFETY: sysconf only reads a constant.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok(ticks / per_sec)
}

fn timed_output(cmd: &mut Command) -> Result<(f64, String)> {
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((secs, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn run_quiet(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn expect_hex(output: &str, hex: &str) -> Result<()> {
    if !output.contains(hex) {
        bail!("wrong hash: {output}");
    }
    Ok(())
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cpuinfo() -> String {
    std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default()
}

fn cpu_model() -> String {
    cpuinfo()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_has(flag: &str) -> bool {
    cpuinfo()
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == flag))
}

/// One tool's pulls of a whole image.
struct PullRow {
    name: String,
    secs: f64,
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
}

/// What the whole-image rows of one image gave.
struct ImagePulls {
    title: String,
    mib: f64,
    rows: Vec<PullRow>,
    /// tank_pull's median: inside the call, and the worker process's.
    tank_call: f64,
    tank_process: f64,
    skopeo: f64,
    oci_client: f64,
    /// The same layers by tank_blob_to_file one after the other (only for
    /// the 4-layer image).
    to_file_seq: Option<f64>,
    tank_tokens: Vec<usize>,
    /// The second tank_pull into the same layout: /blobs/ requests the
    /// registry logged, token requests, seconds.
    again_blob_requests: usize,
    again_tokens: usize,
    again_secs: f64,
}

/// Removes a directory when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The whole-image rows: `tank_pull` (default jobs), `skopeo copy` to an
/// `oci:` layout and the oci-client peer's image mode, each into an empty
/// layout on /dev/shm, from the token registry: the 50 x 1 MiB image of
/// `rig`, then a 4-layer image of `mib` MiB in all from a second rig (the
/// token registry alone), where the same layers by `tank_blob_to_file` one
/// after the other are the "same bytes" baseline.
fn whole_images(
    rig: &Rig,
    runs: usize,
    mib: u64,
    peer: &std::path::Path,
) -> Result<Vec<ImagePulls>> {
    let scratch = Scratch(
        std::path::PathBuf::from("/dev/shm")
            .join(format!("tank-bench-pull-{}", std::process::id())),
    );
    std::fs::create_dir_all(&scratch.0)?;
    let many = rig
        .info()
        .images
        .many
        .clone()
        .context("rig has no many-layer image")?;
    let mut all = vec![pull_image(
        rig,
        &many,
        &format!("{} x 1 MiB layers", many.layers.len()),
        runs,
        &scratch.0,
        peer,
        false,
    )?];

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
    all.push(pull_image(
        &four,
        &image,
        &format!("4 x {each} MiB layers"),
        runs,
        &scratch.0,
        peer,
        true,
    )?);
    Ok(all)
}

fn pull_image(
    rig: &Rig,
    image: &tank_testrig::ImageInfo,
    title: &str,
    runs: usize,
    scratch: &std::path::Path,
    peer: &std::path::Path,
    to_file_baseline: bool,
) -> Result<ImagePulls> {
    let reg = rig.registry(Which::Token).to_owned();
    let reference = format!("{reg}/{}:{}", image.repo, image.tag);
    let blobs: Vec<&String> = std::iter::once(&image.config)
        .chain(&image.layers)
        .collect();
    let total: u64 = blobs.iter().map(|d| image.blob_sizes[*d]).sum();
    let layout = scratch.join("layout");
    let layout_s = layout.to_string_lossy().into_owned();
    // Every blob of the image at `dir/<hex>`, at its size: each tool
    // verified the digests itself.
    let check = |dir: &std::path::Path, which: &[&String]| -> Result<()> {
        for d in which {
            let path = dir.join(d.trim_start_matches("sha256:"));
            let len = std::fs::metadata(&path)
                .with_context(|| format!("{} is missing", path.display()))?
                .len();
            if len != image.blob_sizes[*d] {
                bail!(
                    "{} has {len} bytes, not {}",
                    path.display(),
                    image.blob_sizes[*d]
                );
            }
        }
        Ok(())
    };
    let blob_dir = layout.join("blobs/sha256");
    // One run: an empty layout, fresh logs; `run` gives the seconds the
    // tool reports.
    let measure = |run: &mut dyn FnMut() -> Result<f64>| -> Result<PullRun> {
        let _ = std::fs::remove_dir_all(&layout);
        rig.clear_logs();
        let cpu_before = children_cpu_secs();
        let started = Instant::now();
        let secs = run()?;
        let process = started.elapsed().as_secs_f64();
        let cpu = children_cpu_secs() - cpu_before;
        // Waits for the registry's log to settle.
        let requests = rig.registry_requests(Which::Token).len();
        Ok(PullRun {
            secs,
            process,
            cpu,
            tokens: rig.token_requests().len(),
            requests,
            connections: connections_logged(&rig.registry_log(Which::Token)),
        })
    };
    let summarize = |name: &str, runs: &[PullRun], note: &str| PullRow {
        name: name.to_owned(),
        secs: median_of(runs.iter().map(|r| r.secs).collect()),
        tokens: runs.iter().map(|r| r.tokens).collect(),
        requests: runs.iter().map(|r| r.requests).collect(),
        connections: runs.iter().map(|r| r.connections).collect(),
        note: format!(
            "{note}; whole process {:.3} s, its CPU {:.2} s",
            median_of(runs.iter().map(|r| r.process).collect()),
            median_of(runs.iter().map(|r| r.cpu).collect())
        ),
    };
    let mut rows = Vec::new();

    let mut growth: u64 = 0;
    let tank_runs = timed_runs(runs, || {
        let r = measure(&mut || {
            let out = worker_output(&["pull", &reference, &layout_s])?;
            let grew = out["rss_growth_bytes"]
                .as_u64()
                .context("rss_growth_bytes")?;
            growth = growth.max(grew);
            out["call_secs"].as_f64().context("call_secs")
        })?;
        check(&blob_dir, &blobs)?;
        if !layout.join("index.json").is_file() {
            bail!("tank_pull wrote no index.json");
        }
        Ok(r)
    })?;
    let tank_call = median_of(tank_runs.iter().map(|r| r.secs).collect());
    let tank_process = median_of(tank_runs.iter().map(|r| r.process).collect());
    let tank_tokens: Vec<usize> = tank_runs.iter().map(|r| r.tokens).collect();
    rows.push(summarize(
        "tank_pull via C ABI (default jobs: 4)",
        &tank_runs,
        &format!(
            "timed inside the call; peak RSS growth {:.1} MiB",
            growth as f64 / 1048576.0
        ),
    ));

    // Again into the layout the last run left: nothing to fetch but the
    // manifest.
    rig.clear_logs();
    let started = Instant::now();
    worker_output(&["pull", &reference, &layout_s])?;
    let again_secs = started.elapsed().as_secs_f64();
    let again_blob_requests = rig
        .registry_requests(Which::Token)
        .iter()
        .filter(|r| r.uri.contains("/blobs/"))
        .count();
    let again_tokens = rig.token_requests().len();

    // skopeo keeps the layers as they are only when told: by default an
    // oci: destination gzips uncompressed layers, which these are.
    let skopeo_runs = timed_runs(runs, || {
        let r = measure(&mut || {
            let started = Instant::now();
            run_quiet(Command::new("skopeo").args([
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-oci-accept-uncompressed-layers",
                &format!("docker://{reference}"),
                &format!("oci:{layout_s}:{}", image.tag),
            ]))?;
            Ok(started.elapsed().as_secs_f64())
        })?;
        check(&blob_dir, &blobs)?;
        Ok(r)
    })?;
    let skopeo = median_of(skopeo_runs.iter().map(|r| r.secs).collect());
    rows.push(summarize(
        "skopeo copy docker:// oci:",
        &skopeo_runs,
        "timed: the process; --dest-oci-accept-uncompressed-layers, else it gzips the layers",
    ));

    let peer_runs = timed_runs(runs, || {
        let r = measure(&mut || {
            let out = timed_output(Command::new(peer).args([
                "image",
                reg.as_str(),
                image.repo.as_str(),
                image.tag.as_str(),
                layout_s.as_str(),
            ]))?;
            out.1.trim().parse::<f64>().context("oci-peer's seconds")
        })?;
        check(&blob_dir, &blobs)?;
        Ok(r)
    })?;
    let oci_client = median_of(peer_runs.iter().map(|r| r.secs).collect());
    rows.push(summarize(
        "oci-client: manifest, then pull_blob x 16 at once",
        &peer_runs,
        "timed inside the peer; each blob into a tokio::fs::File",
    ));

    let to_file_seq = if to_file_baseline {
        let list: String = image
            .layers
            .iter()
            .map(|d| format!("{d}={}", image.blob_sizes[d]))
            .collect::<Vec<_>>()
            .join(",");
        let seq_runs = timed_runs(runs, || {
            let r = measure(&mut || {
                std::fs::create_dir_all(&layout)?;
                let out = worker_output(&["to_file_seq", &reg, &image.repo, &layout_s, &list])?;
                out["call_secs"].as_f64().context("call_secs")
            })?;
            let layers: Vec<&String> = image.layers.iter().collect();
            check(&layout, &layers)?;
            Ok(r)
        })?;
        let secs = median_of(seq_runs.iter().map(|r| r.secs).collect());
        rows.push(summarize(
            "tank_blob_to_file, the 4 layers in turn",
            &seq_runs,
            "timed around the 4 calls; one cache; no manifest or config",
        ));
        Some(secs)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&layout);

    Ok(ImagePulls {
        title: title.to_owned(),
        mib: total as f64 / 1048576.0,
        rows,
        tank_call,
        tank_process,
        skopeo,
        oci_client,
        to_file_seq,
        tank_tokens,
        again_blob_requests,
        again_tokens,
        again_secs,
    })
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

fn print_image_pulls(pulls: &[ImagePulls], runs: usize, rows: &[Row], large_mib: u64) {
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
                r.name,
                r.secs,
                p.mib / r.secs,
                spread(&r.tokens),
                spread(&r.requests),
                spread(&r.connections),
                r.note
            );
        }
        println!(
            "  skopeo / tank_pull (whole processes): {:.2}x; oci-client / tank_pull (inside each): {:.2}x",
            p.skopeo / p.tank_process,
            p.oci_client / p.tank_call
        );
        if let Some(seq) = p.to_file_seq {
            println!(
                "  tank_pull / to_file of the 4 layers in turn: {:.2}x",
                p.tank_call / seq
            );
            if (p.mib - large_mib as f64).abs() < 1.0 {
                for label in ["plain", "CDN"] {
                    println!(
                        "  tank_pull / tank_blob_to_file of the one {large_mib} MiB layer ({label} row above): {:.2}x",
                        p.tank_call / tank_secs_to_file(rows, label)
                    );
                }
            }
        }
        println!(
            "  second tank_pull into the same layout: {} /blobs/ requests, {} token requests, {:.3} s (whole process)",
            p.again_blob_requests, p.again_tokens, p.again_secs
        );
    }
}
