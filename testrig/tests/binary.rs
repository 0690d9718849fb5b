//! The rig binary as other languages' tests use it: JSON on stdout, queries
//! on stdin, and a clean stop when stdin closes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

#[test]
fn answers_queries_on_stdin_and_stops_when_it_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tank-testrig"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tank-testrig");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };

    let info = next();
    let realm = info["token"]["realm"].as_str().unwrap().to_owned();
    writeln!(stdin, "clear").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));

    let answer = ureq::get(&format!(
        "{realm}?service=tank-rig&scope=repository:tank/oci-image:pull"
    ))
    .call()
    .unwrap();
    assert_eq!(answer.status(), 200);
    writeln!(stdin, "token-requests").unwrap();
    let reqs = next();
    let reqs = reqs["token_requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["scopes"][0], "repository:tank/oci-image:pull");
    assert_eq!(reqs[0]["authorization"], false);

    writeln!(stdin, "cdn-requests").unwrap();
    assert!(next()["cdn_requests"].as_array().unwrap().is_empty());
    writeln!(stdin, "nonsense").unwrap();
    assert!(next()["error"].is_string());

    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
