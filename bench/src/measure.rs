//! How every row is measured, in both halves: runs after a warm-up, their
//! median, a command's or a worker's seconds, CPU time from the kernel.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// What `runs` runs of `once` gave, after one untimed warm-up run whose
/// result is dropped (as hyperfine's --warmup): the first run after the rig
/// starts pays for memory the rig's fixtures just churned.
pub fn timed_runs<T>(runs: usize, mut once: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
    once()?;
    (0..runs.max(1)).map(|_| once()).collect()
}

/// The median of `runs` timed runs after a warm-up.
pub fn median(runs: usize, once: impl FnMut() -> Result<f64>) -> Result<f64> {
    Ok(median_of(timed_runs(runs, once)?))
}

pub fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One run of this program as a worker (see `worker`): the figures it
/// printed as JSON.
pub fn worker_output(args: &[&str]) -> Result<serde_json::Value> {
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

/// CPU time (user + sys) of every child that has exited and been waited for.
pub fn children_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
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

/// A command's wall seconds and what it printed; its failure is an error.
pub fn timed_output(cmd: &mut Command) -> Result<(f64, String)> {
    let started = Instant::now();
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((secs, String::from_utf8_lossy(&out.stdout).into_owned()))
}

pub fn run_quiet(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("{cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Removes a directory when dropped.
pub struct Scratch(pub std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
