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

    assert_eq!(reqs[0]["method"], "GET");
    assert_eq!(reqs[0]["subject"], serde_json::Value::Null);

    writeln!(stdin, "cdn-requests").unwrap();
    assert!(next()["cdn_requests"].as_array().unwrap().is_empty());
    writeln!(stdin, "nonsense").unwrap();
    assert!(next()["error"].is_string());

    // The POST switch, and back.
    let private = info["private"].clone();
    let identity = private["identity_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", identity),
        ("service", "tank-rig"),
        ("scope", "repository:private/oci-image:pull"),
        ("client_id", "tank"),
    ];
    let post = || match ureq::post(&realm).send_form(&form) {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("{e}"),
    };
    writeln!(stdin, "token-post 404").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(post(), 404);
    writeln!(stdin, "token-post on").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(post(), 200);
    writeln!(stdin, "token-post banana").unwrap();
    assert!(next()["error"].is_string());
    writeln!(stdin, "token-requests").unwrap();
    let reqs = next();
    let last = reqs["token_requests"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["method"], "POST");
    assert_eq!(last["grant_type"], "refresh_token");
    assert_eq!(last["client_id"], "tank");
    assert_eq!(last["subject"], "alice");

    // The CDN's own challenges, on and off.
    let cdn = info["cdn"]["cdn"].as_str().unwrap().to_owned();
    let blob = |path: &str| match ureq::get(&format!("{cdn}{path}")).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r.status(),
        Err(e) => panic!("{e}"),
    };
    writeln!(stdin, "cdn-challenges on").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(blob("/docker/registry/v2/blobs/none"), 401);
    writeln!(stdin, "cdn-challenges off").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(blob("/docker/registry/v2/blobs/none"), 404);
    writeln!(stdin, "cdn-requests").unwrap();
    let reqs = next();
    assert_eq!(reqs["cdn_requests"][0]["cdn_token"], false);
    assert_eq!(reqs["cdn_requests"][0]["status"], 401);

    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn the_cdn_flags_and_commands_reach_the_cdn() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tank-testrig"))
        .args(["--cdn-rate-per-connection", "64MiB/s"])
        .args(["--cdn-ranges", "ignore", "--cdn-url-expiry", "600"])
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
    let cdn = info["cdn"]["cdn"].as_str().unwrap().to_owned();
    let layer = info["images"]["oci_image"]["layers"][0].as_str().unwrap();
    let hex = layer.strip_prefix("sha256:").unwrap();
    let url = format!(
        "{cdn}/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    );
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let get = |url: &str| match agent.get(url).set("Range", "bytes=0-3").call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };

    let signed = get(&url).header("Location").unwrap().to_owned();
    assert_eq!(get(&signed).status(), 200, "ranges ignored");
    writeln!(stdin, "cdn-ranges honour").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(get(&signed).status(), 206);
    writeln!(stdin, "cdn-ranges refuse").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(get(&signed).status(), 416);
    writeln!(stdin, "cdn-ranges sideways").unwrap();
    assert!(next()["error"].as_str().unwrap().contains("refuse"));
    writeln!(stdin, "cdn-cut 2 1").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    writeln!(stdin, "cdn-cut two").unwrap();
    assert!(next()["error"].is_string());
    writeln!(stdin, "cdn-expire-urls").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));
    assert_eq!(get(&signed).status(), 403);

    writeln!(stdin, "cdn-requests").unwrap();
    let reqs = next();
    let reqs = reqs["cdn_requests"].as_array().unwrap();
    let seen: Vec<_> = reqs
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["range"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (307, "bytes=0-3"),
            (200, "bytes=0-3"),
            (206, "bytes=0-3"),
            (416, "bytes=0-3"),
            (403, "bytes=0-3")
        ]
    );
    assert_eq!(
        (&reqs[2]["offset"], &reqs[2]["bytes"]),
        (&0.into(), &4.into())
    );
    for r in reqs {
        let connection = r["connection"].as_str().unwrap();
        assert!(connection.starts_with("127.0.0.1:"), "{connection}");
        assert!(r["ended_ms"].as_u64().unwrap() >= r["at_ms"].as_u64().unwrap());
        // Its own at least (ureq may drop a connection after an error
        // status and open another).
        assert!(r["open_connections"].as_u64().unwrap() >= 1);
    }
    writeln!(stdin, "cdn-connections").unwrap();
    let connections = next();
    let peak = connections["peak"].as_u64().unwrap();
    let at_peak = connections["at_peak"].as_array().unwrap();
    assert!(peak >= 1);
    assert_eq!(at_peak.len() as u64, peak, "{connections}");
    assert!(at_peak
        .iter()
        .all(|c| c.as_str().unwrap().starts_with("127.0.0.1:")));
    writeln!(stdin, "cdn-reset-peak").unwrap();
    assert_eq!(next(), serde_json::json!({"ok": true}));

    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_rate_it_cannot_read_stops_the_binary() {
    let out = Command::new(env!("CARGO_BIN_EXE_tank-testrig"))
        .args(["--cdn-rate-per-connection", "64MB/s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64MB/s"));
}
