//! `tank-testrig`: starts the rig, prints its info as one line of JSON on
//! stdout, and keeps it up until stdin closes or SIGTERM/SIGINT arrives.
//! Progress and errors go to stderr.

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tank_testrig::{Rig, RigOptions};

const USAGE: &str =
    "usage: tank-testrig [--plain-only] [--large-mib N] [--many-layers COUNTxMIB] [--no-stdin]

Starts real registries (plain, token, cdn) with fixtures on 127.0.0.1, prints
their addresses and the fixtures' digests as one line of JSON, then waits until
stdin reaches EOF (unless --no-stdin) or SIGTERM/SIGINT/SIGHUP, and stops.";

struct Args {
    options: RigOptions,
    watch_stdin: bool,
}

fn parse_args() -> Result<Option<Args>> {
    let mut options = RigOptions::default();
    let mut watch_stdin = true;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plain-only" => {
                options.token = false;
                options.cdn = false;
            }
            "--large-mib" => {
                let v = args.next().context("--large-mib needs a number")?;
                options.large_mib = Some(v.parse().with_context(|| format!("--large-mib {v}"))?);
            }
            "--many-layers" => {
                // The value is optional: a bare flag means the default shape.
                let shape = args.peek().and_then(|v| parse_shape(v));
                if shape.is_some() {
                    args.next();
                } else if let Some(v) = args.peek().filter(|v| !v.starts_with("--")) {
                    bail!("--many-layers {v}: expected COUNTxMIB, e.g. 50x1");
                }
                options.many_layers = Some(shape.unwrap_or(RigOptions::DEFAULT_MANY_LAYERS));
            }
            "--no-stdin" => watch_stdin = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(Some(Args {
        options,
        watch_stdin,
    }))
}

/// `COUNTxMIB`, e.g. `50x1`.
fn parse_shape(v: &str) -> Option<(usize, u64)> {
    let (count, mib) = v.split_once('x')?;
    Some((count.parse().ok()?, mib.parse().ok()?))
}

fn run() -> Result<()> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    // Registered before the rig starts so an early SIGTERM still cleans up.
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    let started = Instant::now();
    let rig = Rig::start(args.options)?;
    eprintln!("tank-testrig: ready in {:.2?}", started.elapsed());

    let line = serde_json::to_string(rig.info()).context("serialising the rig info")?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}").context("writing to stdout")?;
    stdout.flush().context("flushing stdout")?;
    drop(stdout);

    let (stop_tx, stop_rx) = mpsc::channel::<String>();
    if args.watch_stdin {
        let tx = stop_tx.clone();
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
            let _ = tx.send("stdin closed".into());
        });
    }
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = stop_tx.send(format!("signal {signal}"));
        }
    });
    let reason = stop_rx.recv().unwrap_or_else(|_| "no stop source".into());
    eprintln!("tank-testrig: stopping ({reason})");
    drop(rig);
    if std::env::var_os("TANK_RIG_VERBOSE").is_some() {
        for (who, what) in [
            ("self", libc::RUSAGE_SELF),
            ("registries", libc::RUSAGE_CHILDREN),
        ] {
            // SAFETY: getrusage only writes into the struct we hand it.
            let mut u: libc::rusage = unsafe { std::mem::zeroed() };
            unsafe { libc::getrusage(what, &mut u) };
            eprintln!(
                "tank-testrig: cpu {who}: user {}.{:03}s sys {}.{:03}s",
                u.ru_utime.tv_sec,
                u.ru_utime.tv_usec / 1000,
                u.ru_stime.tv_sec,
                u.ru_stime.tv_usec / 1000
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tank-testrig: {e:#}");
            ExitCode::FAILURE
        }
    }
}
