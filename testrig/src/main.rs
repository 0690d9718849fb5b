//! `tank-testrig`: starts the rig, prints its info as one line of JSON on
//! stdout, and keeps it up until stdin closes or SIGTERM/SIGINT arrives.
//! Progress and errors go to stderr.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tank_testrig::{parse_rate, CdnRanges, Rig, RigOptions, CDN_RANGES_NAMES};

const USAGE: &str = "usage: tank-testrig [--plain-only] [--basic] [--client-cert] [--tls-token]
                    [--mirrors] [--everything] [--cdn-challenges]
                    [--cdn-rate-per-connection RATE] [--cdn-ranges MODE]
                    [--cdn-url-expiry SECS]
                    [--large-mib N] [--many-layers COUNTxMIB] [--no-stdin]

Starts real registries with fixtures on 127.0.0.1, prints their addresses,
credentials and the fixtures' digests as one line of JSON, then waits until
stdin reaches EOF (unless --no-stdin) or SIGTERM/SIGINT/SIGHUP, and stops.
By default: plain, token and cdn (the token ones with private/* repositories
that only the user in info.private may pull), and the https ones tls and
tls-redirect. Also on request:
  --basic          basic: auth htpasswd (bcrypt), user in info.basic_registry
  --client-cert    tls-client-cert: https requiring a client certificate
                   (info.tls.client_cert_registry, client_cert_pem, certs_dir)
  --tls-token      tls-token: https with token auth whose realm is http
  --mirrors        pull-through: distribution in proxy mode in front of
                   token (info.pull_through); empty-mirror, wrong-blob and a
                   port that refuses connections (info.faulty_mirrors)
  --everything     all four of the above
  --cdn-challenges start the CDN with its own Bearer challenges on
  --cdn-rate-per-connection RATE
                   pace each TCP connection to the CDN to RATE (64MiB/s,
                   512KiB/s, 1000B/s), as real CDNs cap a stream
  --cdn-ranges honour|ignore|wrong-content-range|refuse
                   how the CDN answers Range: 206 (the default), 200 with
                   the whole blob, 206 with Content-Range one byte off, or
                   416 to any Range at all
  --cdn-url-expiry SECS
                   the CDN answers the registry's redirect with a 307 to a
                   signed URL that answers 403 once SECS old (0: at once)
While it runs, a line on stdin is a query answered by one JSON line on stdout:
  token-requests        every token request so far (which realm, GET or POST,
                        grant type, client id, user name, scopes, status)
  cdn-requests          every CDN request so far (path, whether it carried
                        Authorization, Basic user name, the CDN's own token,
                        status, connection address:port, Range, offset
                        and count of the body bytes sent, at_ms and ended_ms
                        since the epoch, open_connections when it arrived)
  cdn-connections       TCP connections open to the CDN now, the most open
                        at once since start, clear or cdn-reset-peak, and
                        those (client address:port) open at that peak
  cdn-reset-peak        the peak starts again from what is open now
  clear                 forget both logs (and the CDN's peak)
  token-post 404|405    every issuer answers every POST with that status
  token-post on         the issuers answer OAuth2 POSTs again (the default)
  cdn-challenges on|off the CDN challenges blob reads with its own realm, or not
  cdn-ranges MODE       as --cdn-ranges, from now on
  cdn-expire-urls       every CDN URL signed so far answers 403 from now on
                        (needs --cdn-url-expiry)
  cdn-cut BYTES COUNT   the next COUNT blob bodies stop after BYTES and their
                        connections are shut down (COUNT 0 disarms)";

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
                options = with_extras_of(&options, RigOptions::plain_only());
            }
            "--basic" => options.basic = true,
            "--client-cert" => options.client_cert = true,
            "--tls-token" => options.tls_token = true,
            "--mirrors" => options.mirrors = true,
            "--everything" => {
                options = with_extras_of(&options, RigOptions::everything());
            }
            "--cdn-challenges" => options.cdn_challenges = true,
            "--cdn-rate-per-connection" => {
                let v = args
                    .next()
                    .context("--cdn-rate-per-connection needs a rate")?;
                options.cdn_rate_per_connection = Some(parse_rate(&v)?);
            }
            "--cdn-ranges" => {
                let v = args.next().context("--cdn-ranges needs a mode")?;
                options.cdn_ranges = CdnRanges::from_name(&v)
                    .with_context(|| format!("--cdn-ranges {v}: expected {CDN_RANGES_NAMES}"))?;
            }
            "--cdn-url-expiry" => {
                let v = args.next().context("--cdn-url-expiry needs seconds")?;
                let secs: u64 = v.parse().with_context(|| format!("--cdn-url-expiry {v}"))?;
                options.cdn_url_expiry = Some(Duration::from_secs(secs));
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

/// `base` with what the flags so far set beyond the choice of registries,
/// so `--plain-only` and `--everything` may come after them.
fn with_extras_of(options: &RigOptions, base: RigOptions) -> RigOptions {
    RigOptions {
        large_mib: options.large_mib,
        many_layers: options.many_layers,
        cdn_challenges: options.cdn_challenges,
        cdn_rate_per_connection: options.cdn_rate_per_connection,
        cdn_ranges: options.cdn_ranges,
        cdn_url_expiry: options.cdn_url_expiry,
        ..base
    }
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

    let (events_tx, events) = mpsc::channel::<Event>();
    if args.watch_stdin {
        let tx = events_tx.clone();
        std::thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Event::Command(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::Stop("stdin closed".into()));
        });
    }
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = events_tx.send(Event::Stop(format!("signal {signal}")));
        }
    });
    let reason = loop {
        match events.recv() {
            Ok(Event::Command(command)) => answer(&rig, command.trim())?,
            Ok(Event::Stop(reason)) => break reason,
            Err(_) => break "no stop source".into(),
        }
    };
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

/// Milliseconds since the epoch, as JSON carries them.
fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

enum Event {
    /// A line on stdin: a query from the process that started the rig.
    Command(String),
    Stop(String),
}

/// Answers one stdin command with one JSON line on stdout, so tests in any
/// language can count handshakes and CDN hits of a rig they started.
fn answer(rig: &Rig, command: &str) -> Result<()> {
    let reply = match command {
        "" => return Ok(()),
        "token-requests" => serde_json::json!({
            "token_requests": rig.token_requests().iter().map(|r| serde_json::json!({
                "which": r.which.name(),
                "method": r.method,
                "service": r.service,
                "scopes": r.scopes,
                "authorization": r.authorization,
                "username": r.username,
                "account": r.account,
                "grant_type": r.grant_type,
                "client_id": r.client_id,
                "offline": r.offline,
                "subject": r.subject,
                "status": r.status,
            })).collect::<Vec<_>>()
        }),
        "cdn-requests" => serde_json::json!({
            "cdn_requests": rig.cdn_requests().iter().map(|r| serde_json::json!({
                "method": r.method,
                "path": r.path,
                "authorization": r.authorization,
                "username": r.username,
                "cdn_token": r.cdn_token,
                "status": r.status,
                "connection": r.connection.map(|c| c.to_string()),
                "range": r.range,
                "offset": r.offset,
                "bytes": r.bytes,
                "at_ms": epoch_ms(r.at),
                "ended_ms": r.ended.map(epoch_ms),
                "open_connections": r.open_connections,
            })).collect::<Vec<_>>()
        }),
        "cdn-connections" => serde_json::json!({
            "open": rig.cdn_open_connections(),
            "peak": rig.cdn_peak_connections(),
            "at_peak": rig.cdn_connections_at_peak().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        }),
        "cdn-reset-peak" => {
            rig.reset_cdn_peak();
            serde_json::json!({"ok": true})
        }
        "clear" => {
            rig.clear_logs();
            serde_json::json!({"ok": true})
        }
        "token-post on" => {
            rig.set_token_post_status(None);
            serde_json::json!({"ok": true})
        }
        "cdn-challenges on" | "cdn-challenges off" => {
            rig.set_cdn_challenges(command.ends_with(" on"));
            serde_json::json!({"ok": true})
        }
        "cdn-expire-urls" => match rig.expire_cdn_urls() {
            true => serde_json::json!({"ok": true}),
            false => {
                serde_json::json!({"error": "CDN URLs do not expire: start with --cdn-url-expiry"})
            }
        },
        other if other.starts_with("cdn-cut ") => {
            let numbers: Vec<u64> = other["cdn-cut ".len()..]
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            match numbers[..] {
                [after, count] => {
                    rig.cut_cdn_bodies(after, usize::try_from(count).unwrap_or(usize::MAX));
                    serde_json::json!({"ok": true})
                }
                _ => {
                    serde_json::json!({"error": format!("{other:?}: expected cdn-cut BYTES COUNT")})
                }
            }
        }
        other if other.starts_with("cdn-ranges ") => {
            match CdnRanges::from_name(other["cdn-ranges ".len()..].trim()) {
                Some(ranges) => {
                    rig.set_cdn_ranges(ranges);
                    serde_json::json!({"ok": true})
                }
                None => serde_json::json!({"error": format!(
                    "{other:?}: expected cdn-ranges {CDN_RANGES_NAMES}"
                )}),
            }
        }
        other => match other
            .strip_prefix("token-post ")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|s| (400..600).contains(s))
        {
            Some(status) => {
                rig.set_token_post_status(Some(status));
                serde_json::json!({"ok": true})
            }
            None => serde_json::json!({"error": format!(
                "unknown command {other:?}; try token-requests, cdn-requests, clear, \
                 token-post 404|405|on, cdn-challenges on|off, cdn-ranges MODE, \
                 cdn-expire-urls, cdn-cut BYTES COUNT, cdn-connections, cdn-reset-peak"
            )}),
        },
    };
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{reply}").context("writing to stdout")?;
    stdout.flush().context("flushing stdout")
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
