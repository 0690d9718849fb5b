//! docker's credential helper protocol: `docker-credential-<name> get`
//! with the server URL on stdin, `{"Username", "Secret"}` on stdout.

use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::credentials::Credential;
use super::error::{reason, Error, Result};

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
            reason::CREDENTIAL_HELPER,
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
    let server_line = server.to_owned();
    let output = tokio::time::timeout(TIMEOUT, async move {
        // A helper that exits without reading is not an error here.
        let _ = stdin.write_all(server_line.as_bytes()).await;
        drop(stdin);
        child.wait_with_output().await
    })
    .await
    .map_err(|_| failed(format!("no answer within {} s; killed", TIMEOUT.as_secs())))?
    .map_err(|e| failed(format!("cannot read its answer: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        let first: String = first.chars().take(200).collect();
        return Err(failed(format!("{}: {first}", output.status)));
    }
    // Never quoted: stdout holds the secret.
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|_| failed("its answer is not {\"Username\", \"Secret\"} JSON".into()))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == "<token>" {
        Credential::IdentityToken(answer.secret)
    } else {
        Credential::Basic {
            username: answer.username,
            password: answer.secret,
        }
    }))
}
