//! The unpack rows (issue 20): `tank_unpack` against `umoci unpack
//! --rootless`, GNU `tar -x` fed by `gzip -d` / `zstd -d`, and the limit
//! (the decompressor alone on the same bytes, as a process and in-process
//! by the crates tank uses); `tank_pull_unpack` from the rig's registry
//! against `tank_pull` followed by `tank_unpack`; peak RSS growth. Two
//! images built at the start of the run (see `images`), each with gzip and
//! with zstd layers; every tree lands on the filesystem the images are on,
//! in an empty directory, and is removed before the next run.

mod images;
mod mixed;
mod tree;
pub mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tank_testrig::{Rig, RigOptions, Which};

use images::{Compression, Image, Layout, Variant};

/// One row: its median seconds and what else it measured, or why the tool
/// could not do it (umoci and zstd; tank before its unpack is built).
struct Line {
    name: String,
    outcome: Result<f64, String>,
    /// Median CPU seconds (user + sys) of the processes of one run: the
    /// figure that other load on the machine disturbs least.
    cpu: Option<f64>,
    note: String,
}

/// The figures the targets need from one image and compression.
struct Figures {
    label: String,
    is_mixed: bool,
    compression: Compression,
    tank: Result<f64, String>,
    umoci: Result<f64, String>,
    tar: f64,
    decompressor: f64,
    /// The crate tank uses, in-process: alone, and with both sha256s.
    in_process: f64,
    in_process_hashes: f64,
    cpu: Cpu,
    rss_growth: Option<u64>,
    tree_ok: Result<(), String>,
    /// GNU tar's tree of the same layers.
    reference: tree::Summary,
    pull: Option<PullFigures>,
}

/// Median CPU seconds of the rows the targets compare (NaN where a tool
/// failed).
struct Cpu {
    tank: f64,
    umoci: f64,
    tar: f64,
    decompressor: f64,
}

struct PullFigures {
    pull: f64,
    unpack: f64,
    sequence: f64,
    pull_unpack: Result<f64, String>,
    rss_growth: Option<u64>,
    tree_ok: Result<(), String>,
}

/// With `perf`, also one `perf record` of `tank_unpack` per image and
/// compression, its top symbols printed under the rows.
pub fn run(quick: bool, runs: usize, perf: bool) -> Result<()> {
    for (tool, package) in [
        ("umoci", "umoci"),
        ("tar", "tar"),
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("bash", "bash"),
        ("skopeo", "skopeo"),
    ] {
        if !crate::host::on_path(tool) {
            bail!("{tool} is missing: apt-get install {package}");
        }
    }
    if perf && !crate::host::on_path("perf") {
        bail!("perf is missing (--perf): apt-get install linux-perf");
    }
    let mixed_mib: u64 = if quick { 256 } else { 1024 };
    let work = scratch_dir()?;
    let _remove = crate::measure::Scratch(work.clone());

    eprintln!(
        "building the unpack images in {} (a tree of this machine in 3 layers; {mixed_mib} MiB of mixed files)...",
        work.display()
    );
    let started = Instant::now();
    let layout = images::build(&work, mixed_mib)?;
    println!();
    println!(
        "unpack: images built in {:.0} s under {} (GNU tar, gzip -n, zstd -3); every tree is \
         unpacked onto an empty directory there, {runs} runs per row after one warm-up, median",
        started.elapsed().as_secs_f64(),
        work.display()
    );

    let mut all = Vec::new();
    for image in &layout.images {
        print_image(image);
        for v in &image.variants {
            let figures = unpack_rows(&layout, image, v, &work, runs)?;
            if perf && figures.tank.is_ok() {
                profile(&layout, v, &work)?;
            }
            all.push(figures);
        }
    }

    eprintln!("starting a rig (plain registry) and pushing the unpack images with skopeo...");
    let rig = Rig::start(RigOptions::plain_only())?;
    let reg = rig.registry(Which::Plain).to_owned();
    let mut at = 0;
    for image in &layout.images {
        for v in &image.variants {
            let reference = push(&layout, image, v, &reg)?;
            all[at].pull = Some(pull_rows(&reference, image, v, &work, runs, &all[at])?);
            at += 1;
        }
    }
    drop(rig);

    print_targets(&all, &layout);
    Ok(())
}

/// Where the images and trees go: the directory `scripts/bench.sh` made
/// (and removes at exit), else tmpfs.
fn scratch_dir() -> Result<PathBuf> {
    let base = std::env::var_os("TANK_BENCH_SCRATCH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/dev/shm"));
    let dir = base.join(format!("tank-bench-unpack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    Ok(dir)
}

fn print_image(image: &Image) {
    let e = image.entries;
    println!();
    println!("{}", image.title);
    println!(
        "  {} entries in its tars: {} files, {} dirs, {} symlinks, {} hardlinks; {:.0} MiB uncompressed",
        e.all,
        e.files,
        e.dirs,
        e.symlinks,
        e.hardlinks,
        mib(image.tar_bytes)
    );
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// The unpack rows of one image and compression, printed as a table.
fn unpack_rows(
    layout: &Layout,
    image: &Image,
    v: &Variant,
    work: &Path,
    runs: usize,
) -> Result<Figures> {
    let tool = v.compression.tool();
    let layers: Vec<&Path> = v.layers.iter().map(PathBuf::as_path).collect();
    let out = work.join("out");
    let clear = || -> Result<()> {
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        std::fs::create_dir_all(&out)?;
        Ok(())
    };
    let mut lines = Vec::new();

    // GNU tar first: its tree is what the others' are checked against.
    // --no-same-owner: tank and umoci, rootless, leave files the caller's.
    let tar_dir = out.join("tree");
    let script = format!(
        "set -eo pipefail; d=$1; shift; for l in \"$@\"; do {tool} -dc \"$l\" | tar -x --no-same-owner -C \"$d\"; done"
    );
    let (tar, tar_cpu) = medians(&crate::measure::timed_runs(runs, || {
        clear()?;
        std::fs::create_dir(&tar_dir)?;
        timed_process(
            Command::new("bash")
                .args(["-c", &script, "bash"])
                .arg(&tar_dir)
                .args(&layers),
        )
    })?);
    let reference = tree::summarize(&tar_dir)?;
    lines.push(Line {
        name: format!("{tool} -dc | tar -x, each layer in turn"),
        outcome: Ok(tar),
        cpu: Some(tar_cpu),
        note: format!("tree: {reference}"),
    });

    let rootfs = out.join("rootfs");
    let mut tank_note = String::new();
    let mut rss_growth = None;
    let mut tank_cpu = None;
    let tank = attempt(runs, || {
        clear()?;
        let started = Instant::now();
        let r = crate::measure::worker_output(&[
            "unpack",
            &path_str(&layout.dir)?,
            &v.ref_name,
            &path_str(&rootfs)?,
        ])?;
        let process = started.elapsed().as_secs_f64();
        Ok((
            process,
            r["call_secs"].as_f64().context("call_secs")?,
            r["rss_growth_bytes"].as_u64().context("rss_growth_bytes")?,
            r["cpu_secs"].as_f64().context("cpu_secs")?,
        ))
    })
    .map(|r| {
        let growth = r.iter().map(|x| x.2).max().unwrap_or(0);
        rss_growth = Some(growth);
        tank_cpu = Some(crate::measure::median_of(r.iter().map(|x| x.3).collect()));
        tank_note = format!(
            "timed: the process; inside the call {:.3} s; peak RSS growth {:.1} MiB",
            crate::measure::median_of(r.iter().map(|x| x.1).collect()),
            mib(growth)
        );
        crate::measure::median_of(r.iter().map(|x| x.0).collect())
    });
    let tree_ok = match &tank {
        Ok(_) => same_tree(&rootfs, &reference),
        Err(e) => Err(e.clone()),
    };
    if let Err(e) = &tree_ok {
        if tank.is_ok() {
            tank_note = format!("TREE DIFFERS from tar -x: {e}; {tank_note}");
        }
    }
    lines.push(Line {
        name: "tank_unpack via C ABI".into(),
        outcome: tank.clone(),
        cpu: tank_cpu,
        note: tank_note,
    });

    let bundle = out.join("bundle");
    // umoci takes many times longer than the others: fewer runs, as the
    // skopeo rows.
    let umoci_runs = runs.min(3);
    let umoci = attempt(umoci_runs, || {
        clear()?;
        timed_process(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:{}", layout.dir.display(), v.ref_name))
                .arg(&bundle),
        )
    })
    .map(|r| medians(&r));
    let umoci_note = match &umoci {
        Ok(_) => match same_tree(&bundle.join("rootfs"), &reference) {
            Ok(()) => "timed: the process (it also writes an mtree manifest of the tree)".into(),
            Err(e) => format!("tree differs from tar -x: {e}"),
        },
        Err(_) => String::new(),
    };
    lines.push(Line {
        name: format!("umoci unpack --rootless ({umoci_runs} runs)"),
        outcome: umoci.as_ref().map(|u| u.0).map_err(Clone::clone),
        cpu: umoci.as_ref().ok().map(|u| u.1),
        note: umoci_note,
    });
    clear()?;

    let (decompressor, decompressor_cpu) = medians(&crate::measure::timed_runs(runs, || {
        timed_process(
            Command::new(tool)
                .arg("-dc")
                .args(&layers)
                .stdout(Stdio::null()),
        )
    })?);
    lines.push(Line {
        name: format!("limit: {tool} -dc > /dev/null"),
        outcome: Ok(decompressor),
        cpu: Some(decompressor_cpu),
        note: "timed: the process".into(),
    });
    let mut in_process = Vec::new();
    for (mode, what) in [
        ("inflate", "in-process to a sink"),
        ("inflate_hash", "+ sha256 of both sides, one thread"),
    ] {
        let mut args = vec![mode.to_owned(), tool.to_owned()];
        for l in &layers {
            args.push(path_str(l)?);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (secs, cpu) = medians(&crate::measure::timed_runs(runs, || {
            let r = crate::measure::worker_output(&args)?;
            if r["bytes"].as_u64() != Some(image.tar_bytes) {
                bail!("{mode} gave {} bytes, not {}", r["bytes"], image.tar_bytes);
            }
            Ok((
                r["call_secs"].as_f64().context("call_secs")?,
                r["cpu_secs"].as_f64().context("cpu_secs")?,
            ))
        })?);
        in_process.push(secs);
        lines.push(Line {
            name: format!("{} {what}", v.compression.crate_name()),
            outcome: Ok(secs),
            cpu: Some(cpu),
            note: "timed: inside the worker (CPU: the whole worker)".into(),
        });
    }

    let label = format!("{} ({tool})", image.name);
    print_table(
        &format!(
            "{label}: {} layer(s), {:.0} MiB compressed",
            v.layers.len(),
            mib(v.compressed_bytes)
        ),
        &lines,
        mib(image.tar_bytes),
        decompressor,
    );
    let tank_secs = tank.as_ref().copied().unwrap_or(f64::NAN);
    println!(
        "  umoci / tank_unpack: {}; tar / tank_unpack: {:.2}x; tank_unpack / {tool} -dc: {:.2}x; \
         tank_unpack / in-process decompress + hashes: {:.2}x",
        match &umoci {
            Ok(u) => format!("{:.2}x", u.0 / tank_secs),
            Err(_) => "-".into(),
        },
        tar / tank_secs,
        tank_secs / decompressor,
        tank_secs / in_process[1]
    );
    let cpu = Cpu {
        tank: tank_cpu.unwrap_or(f64::NAN),
        umoci: umoci.as_ref().map_or(f64::NAN, |u| u.1),
        tar: tar_cpu,
        decompressor: decompressor_cpu,
    };
    println!(
        "  by CPU seconds: umoci / tank_unpack: {:.2}x; tar / tank_unpack: {:.2}x; tank_unpack / {tool} -dc: {:.2}x",
        cpu.umoci / cpu.tank,
        cpu.tar / cpu.tank,
        cpu.tank / cpu.decompressor
    );
    Ok(Figures {
        label,
        is_mixed: image.name == "mixed",
        compression: v.compression,
        tank,
        umoci: umoci.map(|u| u.0),
        tar,
        decompressor,
        in_process: in_process[0],
        in_process_hashes: in_process[1],
        cpu,
        rss_growth,
        tree_ok,
        reference,
        pull: None,
    })
}

/// One more `tank_unpack` under `perf record` (all its threads), and the
/// symbols that took at least 1 % of its samples.
fn profile(layout: &Layout, v: &Variant, work: &Path) -> Result<()> {
    let out = work.join("out");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let data = work.join("perf.data");
    crate::measure::timed_output(
        Command::new("perf")
            .args(["record", "-q", "-F", "1999", "-o"])
            .arg(&data)
            .arg("--")
            .arg(std::env::current_exe()?)
            .args(["--worker", "unpack"])
            .arg(&layout.dir)
            .arg(&v.ref_name)
            .arg(out.join("rootfs")),
    )?;
    let (_, report) = crate::measure::timed_output(
        Command::new("perf")
            .args(["report", "--stdio", "--no-children", "-q"])
            .args(["--sort", "dso,symbol", "--percent-limit", "1", "-i"])
            .arg(&data),
    )?;
    std::fs::remove_file(&data)?;
    std::fs::remove_dir_all(&out)?;
    println!(
        "  perf record of tank_unpack ({}), symbols >= 1 % of samples:",
        v.ref_name
    );
    for line in report.lines().filter(|l| !l.trim().is_empty()).take(20) {
        // perf pads its columns with trailing dashes and spaces.
        println!("    {}", line.trim().trim_end_matches(['-', ' ']));
    }
    Ok(())
}

/// A command's wall seconds, and the CPU seconds of it and of every process
/// it waited for.
fn timed_process(cmd: &mut Command) -> Result<(f64, f64)> {
    let before = crate::measure::children_cpu_secs();
    let (secs, _) = crate::measure::timed_output(cmd)?;
    Ok((secs, crate::measure::children_cpu_secs() - before))
}

/// The medians of (seconds, CPU seconds) pairs.
fn medians(runs: &[(f64, f64)]) -> (f64, f64) {
    (
        crate::measure::median_of(runs.iter().map(|r| r.0).collect()),
        crate::measure::median_of(runs.iter().map(|r| r.1).collect()),
    )
}

/// `runs` timed runs after a warm-up; a failure is kept as the row's
/// message instead of ending the benchmark.
fn attempt<T>(runs: usize, once: impl FnMut() -> Result<T>) -> Result<Vec<T>, String> {
    crate::measure::timed_runs(runs, once).map_err(|e| failure_message(&format!("{e:#}")))
}

/// What went wrong, on one line: a worker's `Error: ...` line (not its
/// backtrace), else what a command printed after `failed:` (not the
/// command line).
fn failure_message(full: &str) -> String {
    let picked = full
        .lines()
        .find_map(|l| l.split_once("Error: ").map(|(_, msg)| msg.to_owned()))
        .unwrap_or_else(|| {
            full.rsplit_once("failed:")
                .map_or(full, |(_, tail)| tail)
                .to_owned()
        });
    let one_line = picked.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}

fn same_tree(root: &Path, reference: &tree::Summary) -> Result<(), String> {
    let got = tree::summarize(root).map_err(|e| format!("{e:#}"))?;
    if &got == reference {
        Ok(())
    } else {
        Err(format!(
            "{got}, mode sum {}, symlink target bytes {} (tar -x: mode sum {}, target bytes {})",
            got.mode_sum, got.target_bytes, reference.mode_sum, reference.target_bytes
        ))
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

fn print_table(title: &str, lines: &[Line], mib: f64, limit: f64) {
    println!();
    println!(
        "{:<52} {:>9} {:>8} {:>8} {:>7}  notes",
        title, "median s", "MiB/s", "x limit", "CPU s"
    );
    for l in lines {
        let cpu = l.cpu.map_or("-".into(), |c| format!("{c:.2}"));
        match &l.outcome {
            Ok(secs) => println!(
                "{:<52} {:>9.3} {:>8.0} {:>8.2} {:>7}  {}",
                l.name,
                secs,
                mib / secs,
                secs / limit,
                cpu,
                l.note
            ),
            Err(e) => println!(
                "{:<52} {:>9} {:>8} {:>8} {:>7}  FAILED: {e}",
                l.name, "-", "-", "-", "-"
            ),
        }
    }
}

/// Pushes one image to the rig's registry as the layout has it (skopeo
/// copies the blobs as they are) and gives the reference to pull.
fn push(layout: &Layout, image: &Image, v: &Variant, registry: &str) -> Result<String> {
    let reference = format!("{registry}/bench/{}:{}", image.name, v.compression.tool());
    crate::measure::run_quiet(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci:{}:{}", layout.dir.display(), v.ref_name),
        &format!("docker://{reference}"),
    ]))?;
    // The registry must serve the very manifest the layout has, or the
    // pull rows would measure other bytes.
    let (_, digest) = crate::measure::timed_output(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{reference}"),
    ]))?;
    if digest.trim() != v.manifest_digest {
        bail!(
            "skopeo pushed {reference} as {} instead of {}",
            digest.trim(),
            v.manifest_digest
        );
    }
    Ok(reference)
}

/// `tank_pull_unpack` against `tank_pull` then `tank_unpack` in one
/// process, each into an empty layout and rootfs.
fn pull_rows(
    reference: &str,
    image: &Image,
    v: &Variant,
    work: &Path,
    runs: usize,
    unpacked: &Figures,
) -> Result<PullFigures> {
    let out = work.join("out");
    let (layout, rootfs) = (out.join("layout"), out.join("rootfs"));
    let (layout_s, rootfs_s) = (path_str(&layout)?, path_str(&rootfs)?);
    let clear = || -> Result<()> {
        if out.exists() {
            std::fs::remove_dir_all(&out)?;
        }
        std::fs::create_dir_all(&out)?;
        Ok(())
    };
    // Each figure a worker reports, by name, as a median over the runs.
    let median = |runs: &[serde_json::Value], key: &str| {
        crate::measure::median_of(runs.iter().filter_map(|r| r[key].as_f64()).collect())
    };
    let seq = attempt(runs, || {
        clear()?;
        crate::measure::worker_output(&["pull_then_unpack", reference, &layout_s, &rootfs_s])
    });
    let both = attempt(runs, || {
        clear()?;
        let started = Instant::now();
        let mut r =
            crate::measure::worker_output(&["pull_unpack", reference, &layout_s, &rootfs_s])?;
        r["process_secs"] = started.elapsed().as_secs_f64().into();
        Ok(r)
    });
    // The last run's tree, against the one GNU tar made of the same layers.
    let tree_ok = match &both {
        Ok(_) => same_tree(&rootfs, &unpacked.reference),
        Err(e) => Err(e.clone()),
    };
    clear()?;
    std::fs::remove_dir_all(&out)?;

    let (sequence, pull, unpack) = match &seq {
        Ok(s) => (
            median(s, "call_secs"),
            median(s, "pull_secs"),
            median(s, "unpack_secs"),
        ),
        Err(_) => (f64::NAN, f64::NAN, f64::NAN),
    };
    let growth = both.as_ref().ok().and_then(|b| {
        b.iter()
            .filter_map(|r| r["rss_growth_bytes"].as_u64())
            .max()
    });
    let pull_unpack = both
        .as_ref()
        .map(|b| median(b, "call_secs"))
        .map_err(Clone::clone);
    let mut lines = vec![
        Line {
            name: "tank_pull, then tank_unpack (one process)".into(),
            outcome: seq.as_ref().map(|_| sequence).map_err(Clone::clone),
            cpu: seq.as_ref().ok().map(|s| median(s, "cpu_secs")),
            note: format!("pull {pull:.3} s + unpack {unpack:.3} s (medians of each part)"),
        },
        Line {
            name: "tank_pull_unpack via C ABI".into(),
            outcome: pull_unpack.clone(),
            cpu: both.as_ref().ok().map(|b| median(b, "cpu_secs")),
            note: match &both {
                Ok(b) => format!(
                    "{}timed inside the call; whole process {:.3} s; peak RSS growth {:.1} MiB",
                    match &tree_ok {
                        Ok(()) => String::new(),
                        Err(e) => format!("TREE DIFFERS from tar -x: {e}; "),
                    },
                    median(b, "process_secs"),
                    mib(growth.unwrap_or(0))
                ),
                Err(_) => String::new(),
            },
        },
    ];
    let larger = pull.max(unpack);
    lines.push(Line {
        name: "larger of pull alone and unpack alone".into(),
        cpu: None,
        outcome: if larger.is_nan() {
            Err("no tank_pull + tank_unpack figures".into())
        } else {
            Ok(larger)
        },
        note: if pull >= unpack {
            "pull".into()
        } else {
            "unpack".into()
        },
    });
    print_table(
        &format!(
            "{} pulled from the rig (plain registry, loopback)",
            unpacked.label
        ),
        &lines,
        mib(image.tar_bytes),
        larger,
    );
    let pu = pull_unpack.as_ref().copied().unwrap_or(f64::NAN);
    println!(
        "  tank_pull_unpack / max(pull, unpack): {:.2}x; / (pull + unpack): {:.2}x ({} layer(s); x limit above = against the larger)",
        pu / larger,
        pu / sequence,
        v.layers.len()
    );
    Ok(PullFigures {
        pull,
        unpack,
        sequence,
        pull_unpack,
        rss_growth: growth,
        tree_ok,
    })
}

fn print_targets(all: &[Figures], layout: &Layout) {
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let fmt = |r: &Result<f64, String>, f: &dyn Fn(f64) -> f64| match r {
        Ok(x) => format!("{:.2}x", f(*x)),
        Err(e) => format!("failed ({e})"),
    };
    let mut checks: Vec<(String, bool)> = Vec::new();
    let small = &layout.images[0];
    checks.push((
        format!(
            "small-files image: 50k+ entries with symlinks and hardlinks: {} entries, {} symlinks, {} hardlinks",
            small.entries.all, small.entries.symlinks, small.entries.hardlinks
        ),
        small.entries.all >= 50_000 && small.entries.symlinks > 0 && small.entries.hardlinks > 0,
    ));
    for f in all {
        checks.push((
            format!(
                "{}: tank_unpack's tree is tar -x's: {}",
                f.label,
                match &f.tree_ok {
                    Ok(()) => "same".into(),
                    Err(e) => e.clone(),
                }
            ),
            f.tree_ok.is_ok(),
        ));
    }
    // umoci 0.4 refuses tar+zstd layers: its target is on the gzip rows
    // (and on zstd ones only where it managed).
    for f in all
        .iter()
        .filter(|f| f.compression == Compression::Gzip || f.umoci.is_ok())
    {
        let shown = match &f.umoci {
            Ok(u) => fmt(&f.tank, &|t| u / t),
            Err(e) => format!("umoci failed ({e})"),
        };
        let ok = matches!((&f.umoci, &f.tank), (Ok(u), Ok(t)) if u / t >= 2.0);
        checks.push((
            format!(
                "{}: >= 2x faster than umoci: {shown} (by CPU seconds: {:.2}x)",
                f.label,
                f.cpu.umoci / f.cpu.tank
            ),
            ok,
        ));
    }
    for f in all
        .iter()
        .filter(|f| f.umoci.is_err() && f.compression == Compression::Zstd)
    {
        println!(
            "  ({}: umoci cannot unpack zstd layers here: {}; no umoci target for it)",
            f.label,
            f.umoci.as_ref().err().map_or("", String::as_str)
        );
    }
    for f in all {
        checks.push((
            format!(
                "{}: >= 1.3x faster than GNU tar: {} (by CPU seconds: {:.2}x)",
                f.label,
                fmt(&f.tank, &|t| f.tar / t),
                f.cpu.tar / f.cpu.tank
            ),
            f.tank.as_ref().is_ok_and(|t| f.tar / t >= 1.3),
        ));
    }
    for f in all.iter().filter(|f| f.is_mixed) {
        checks.push((
            format!(
                "{}: within 1.3x of decompression alone ({} -dc): {} (by CPU seconds: {:.2}x; against {} in-process: {}; with both sha256s: {})",
                f.label,
                f.compression.tool(),
                fmt(&f.tank, &|t| t / f.decompressor),
                f.cpu.tank / f.cpu.decompressor,
                f.compression.crate_name(),
                fmt(&f.tank, &|t| t / f.in_process),
                fmt(&f.tank, &|t| t / f.in_process_hashes)
            ),
            f.tank.as_ref().is_ok_and(|t| t / f.decompressor <= 1.3),
        ));
    }
    for f in all {
        let Some(p) = &f.pull else { continue };
        let larger = p.pull.max(p.unpack);
        checks.push((
            format!(
                "{}: tank_pull_unpack within 1.2x of max(pull {:.3} s, unpack {:.3} s): {} (pull then unpack: {:.3} s)",
                f.label,
                p.pull,
                p.unpack,
                fmt(&p.pull_unpack, &|s| s / larger),
                p.sequence
            ),
            p.pull_unpack.as_ref().is_ok_and(|s| s / larger <= 1.2),
        ));
    }
    for f in all {
        // Only where the call succeeded: a failed one has its line above.
        let Some(p) = f.pull.as_ref().filter(|p| p.pull_unpack.is_ok()) else {
            continue;
        };
        if let Err(e) = &p.tree_ok {
            checks.push((
                format!("{}: tank_pull_unpack's tree is tar -x's: {e}", f.label),
                false,
            ));
        }
    }
    let worst = all.iter().filter_map(|f| f.rss_growth).max();
    checks.push((
        format!(
            "tank_unpack peak RSS growth <= 64 MiB (worst of all rows): {}",
            worst.map_or("no figures".into(), |g| format!("{:.1} MiB", mib(g)))
        ),
        worst.is_some_and(|g| g <= 64 << 20) && all.iter().all(|f| f.rss_growth.is_some()),
    ));
    let worst_pull = all
        .iter()
        .filter_map(|f| f.pull.as_ref().and_then(|p| p.rss_growth))
        .max();
    println!();
    println!("unpack targets:");
    for (what, ok) in checks {
        println!("  {:<8} {what}", verdict(ok));
    }
    println!(
        "  (tank_pull_unpack's peak RSS growth, worst of all rows, download included: {})",
        worst_pull.map_or("no figures".into(), |g| format!("{:.1} MiB", mib(g)))
    );
}
