//! docker's credential helper protocol: `docker-credential-<name> get`
//! with the server URL on stdin, `{"Username", "Secret"}` on stdout.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::credential::Credential;
use super::error::{Error, Reason, Result};

/// A helper that has not answered by then is killed.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The credentials the helper `name` keeps for `server`; `None` when it
/// has none ("credentials not found").
pub async fn get(name: &str, server: &str) -> Result<Option<Credential>> {
    let program = format!("docker-credential-{name}");
    let failed = |why: String| {
        Error::auth(
            Reason::CredentialHelper,
            format!("{program} get for {server}: {why}"),
        )
    };
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("cannot run it: {e}")))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let server_line = server.to_owned();
    let answered = tokio::time::timeout(TIMEOUT, async move {
        // A helper that exits without reading is not an error here.
        let _ = stdin.write_all(server_line.as_bytes()).await;
        drop(stdin);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (read_out, read_err) =
            tokio::join!(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr));
        read_out.and(read_err)?;
        // A host that ignores SIGCHLD (the Erlang VM does) has its children
        // reaped by the kernel: then the exit status is lost, and what the
        // helper wrote is all there is to go by.
        let status = match child.wait().await {
            Ok(status) => Some(status),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => None,
            Err(e) => return Err(e),
        };
        Ok((status, stdout, stderr))
    })
    .await
    .map_err(|_| failed(format!("no answer within {} s; killed", TIMEOUT.as_secs())))?
    .map_err(|e: std::io::Error| failed(format!("cannot read its answer: {e}")))?;
    let (status, stdout_bytes, stderr_bytes) = answered;
    // The answer holds the secret: every copy of it is wiped when dropped.
    let stdout_bytes = Zeroizing::new(stdout_bytes);
    let stdout = Zeroizing::new(String::from_utf8_lossy(&stdout_bytes).into_owned());
    let succeeded = status.map_or(!stdout.trim().is_empty(), |s| s.success());
    if !succeeded || stdout.contains("credentials not found") {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&stderr_bytes);
        let first = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        let first: String = first.chars().take(200).collect();
        let exit = status.map_or("failed".to_owned(), |s| s.to_string());
        return Err(failed(format!("{exit}: {first}")));
    }
    // Never quoted: stdout holds the secret.
    let answer: Answer = serde_json::from_slice(&stdout_bytes)
        .map_err(|_| failed("its answer is not {\"Username\", \"Secret\"} JSON".into()))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken(answer.secret.into())
    } else {
        Credential::Basic {
            username: answer.username,
            password: answer.secret.into(),
        }
    }))
}
