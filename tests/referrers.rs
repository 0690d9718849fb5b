//! `tank_referrers` (issue 22, promise 7): on a real registry (Debian's
//! distribution 2.8, which has no Referrers API and answers 404) through
//! the referrers tag an OCI 1.1 client pushes; an empty index when there is
//! neither; and, from a scripted registry, the Referrers API itself: one
//! that filters, one that ignores the filter, and ones that lie.

mod common;

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::scripted::{respond, respond_head, stream, Request, ScriptedServer};
use common::*;
use serde_json::{json, Value};
use tank_testrig::Upload;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const SBOM: &str = "application/vnd.example.sbom.v1+json";
const SIGNATURE: &str = "application/vnd.example.signature.v1";

fn parsed(raw: &[u8]) -> Value {
    serde_json::from_slice(raw).expect("tank hands out JSON")
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// An artifact manifest as OCI 1.1 clients (oras, cosign, notation) write
/// one: `artifactType`, the empty config, one layer, a `subject`.
fn referrer(artifact_type: &str, layer: &[u8], subject: &Value, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(EMPTY, b"{}"),
        "layers": [descriptor("application/octet-stream", layer)],
        "subject": subject,
        "annotations": {"org.example.note": note, "org.example.a": "first by key"},
    }))
    .unwrap()
}

/// The index entry an OCI 1.1 client adds to the referrers tag for `m`.
fn entry(artifact_type: &str, m: &[u8], note: &str) -> Value {
    json!({
        "mediaType": OCI_MANIFEST,
        "digest": sha256(m),
        "size": m.len(),
        "artifactType": artifact_type,
        "annotations": {"org.example.note": note, "org.example.a": "first by key"},
    })
}

fn index_of(entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap()
}

fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

fn artifact_types(index: &Fetched) -> Vec<Option<String>> {
    index
        .manifests
        .iter()
        .map(|d| d.artifact_type.clone())
        .collect()
}

#[test]
fn a_real_registry_without_the_api_answers_through_the_referrers_tag() {
    let rig = start(RigOptions::token_only());
    let registry = rig.registry(Which::Token);
    let image = &rig.info().images.oci_image;
    let subject = json!({
        "mediaType": OCI_MANIFEST, "digest": image.digest, "size": image.size,
    });
    let (sbom_layer, sig_layer) = (b"an sbom".as_slice(), b"a signature".as_slice());
    let sbom = referrer(SBOM, sbom_layer, &subject, "sbom");
    let sig = referrer(SIGNATURE, sig_layer, &subject, "sig");
    let tag_index = index_of(vec![
        entry(SBOM, &sbom, "sbom"),
        entry(SIGNATURE, &sig, "sig"),
    ]);
    let cache = Cache::new();

    // Nothing refers to the image yet: an empty index, no error.
    let none = referrers(registry, &image.repo, &image.digest, None, &cache).unwrap();
    assert_eq!(none.media_type, OCI_INDEX);
    assert!(none.manifests.is_empty());
    assert_eq!(
        parsed(&none.raw),
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
    );
    assert_eq!(none.digest, sha256(&none.raw));

    // What an OCI 1.1 client pushes to a registry without the API: the
    // referrers by digest, then the index under the referrers tag.
    let tag = referrers_tag(&image.digest);
    let (sbom_digest, sig_digest) = (sha256(&sbom), sha256(&sig));
    rig.push(
        Which::Token,
        &image.repo,
        &[b"{}", sbom_layer, sig_layer],
        vec![
            Upload {
                reference: &sbom_digest,
                media_type: OCI_MANIFEST,
                bytes: sbom.clone(),
            },
            Upload {
                reference: &sig_digest,
                media_type: OCI_MANIFEST,
                bytes: sig.clone(),
            },
            Upload {
                reference: &tag,
                media_type: OCI_INDEX,
                bytes: tag_index.clone(),
            },
        ],
    )
    .unwrap();
    rig.clear_logs();

    let all = referrers(registry, &image.repo, &image.digest, None, &cache).unwrap();
    assert_eq!(all.media_type, OCI_INDEX);
    assert_eq!(
        all.raw, tag_index,
        "nothing dropped: the index as the registry sent it"
    );
    assert_eq!(all.digest, sha256(&tag_index));
    assert_eq!(
        artifact_types(&all),
        [Some(SBOM.to_owned()), Some(SIGNATURE.to_owned())]
    );
    assert_eq!(all.manifests[0].digest, sbom_digest);
    assert_eq!(all.manifests[1].digest, sig_digest);
    // Annotations reach C as key/value pairs, sorted by key.
    assert_eq!(
        all.manifests[1].annotations,
        [
            ("org.example.a".to_owned(), "first by key".to_owned()),
            ("org.example.note".to_owned(), "sig".to_owned()),
        ]
    );
    // The API first (distribution 2.8 has none: 404), then the tag.
    let asked: Vec<(String, u16)> = rig
        .registry_requests(Which::Token)
        .into_iter()
        .filter(|r| r.method == "GET" && r.status != 401)
        .map(|r| (r.uri, r.status))
        .collect();
    assert_eq!(
        asked,
        [
            (
                format!("/v2/{}/referrers/{}", image.repo, image.digest),
                404
            ),
            (format!("/v2/{}/manifests/{tag}", image.repo), 200),
        ]
    );

    // Filtered by tank: the registry could not.
    rig.clear_logs();
    let sboms = referrers(registry, &image.repo, &image.digest, Some(SBOM), &cache).unwrap();
    assert_eq!(artifact_types(&sboms), [Some(SBOM.to_owned())]);
    assert_eq!(sboms.manifests[0].digest, sbom_digest);
    assert_eq!(parsed(&sboms.raw)["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        sboms.digest,
        sha256(&sboms.raw),
        "a re-encoded index has its own digest"
    );
    let asked = &rig.registry_requests(Which::Token)[0].uri;
    assert!(
        asked.ends_with("?artifactType=application%2Fvnd.example.sbom.v1%2Bjson"),
        "the registry is asked to filter: {asked}"
    );
    let nothing = referrers(
        registry,
        &image.repo,
        &image.digest,
        Some("application/x-none"),
        &cache,
    )
    .unwrap();
    assert!(nothing.manifests.is_empty());

    // A referrer itself, fetched: its artifactType, subject and annotations.
    let got = manifest(registry, &image.repo, &sbom_digest, &cache).unwrap();
    assert_eq!(got.artifact_type.as_deref(), Some(SBOM));
    let subject = got.subject.expect("a referrer's subject");
    assert_eq!(
        (subject.digest.as_str(), subject.size),
        (image.digest.as_str(), image.size)
    );
    assert_eq!(
        got.annotations,
        [
            ("org.example.a".to_owned(), "first by key".to_owned()),
            ("org.example.note".to_owned(), "sbom".to_owned()),
        ]
    );
    assert_eq!(got.config.unwrap().media_type, EMPTY);
    // An image has none of them.
    let plain = manifest(registry, &image.repo, &image.digest, &cache).unwrap();
    assert!(plain.artifact_type.is_none() && plain.subject.is_none());
}

#[test]
fn a_referrers_tag_that_is_no_index_is_refused() {
    let rig = start(RigOptions::plain_only());
    let registry = rig.registry(Which::Plain);
    let subject = some_digest('e');
    // An artifact manifest, not an index, under the subject's referrers tag.
    let layer = b"not an index".as_slice();
    let wrong = referrer(
        SBOM,
        layer,
        &json!({"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}),
        "x",
    );
    let tag = referrers_tag(&subject);
    rig.push(
        Which::Plain,
        "tank/referrers-wrong",
        &[b"{}", layer],
        vec![Upload {
            reference: &tag,
            media_type: OCI_MANIFEST,
            bytes: wrong,
        }],
    )
    .unwrap();
    let e = referrers(
        registry,
        "tank/referrers-wrong",
        &subject,
        None,
        &Cache::new(),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "invalid_manifest_json"),
        "{e:?}"
    );
    assert!(e.message.contains(&tag), "{e:?}");
    // A repository with no such tag at all: empty.
    let none = referrers(
        registry,
        "tank/referrers-wrong",
        &some_digest('d'),
        None,
        &Cache::new(),
    )
    .unwrap();
    assert!(none.manifests.is_empty());
}

/// A registry with the Referrers API, scripted: `answer` gives the
/// response to every referrers request; anything else is 404.
fn api(answer: impl Fn(&Request, &mut TcpStream) + Send + Sync + 'static) -> ScriptedServer {
    ScriptedServer::start(move |req, conn| {
        if req.path().contains("/referrers/") {
            answer(req, conn);
        } else {
            respond(
                conn,
                404,
                &[],
                b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}",
            );
        }
    })
}

fn some_digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// Three referrers of different types, as a registry lists them.
fn listed() -> Vec<Value> {
    [(SBOM, 'a'), (SIGNATURE, 'b'), (SBOM, 'c')]
        .iter()
        .map(|(t, c)| {
            json!({"mediaType": OCI_MANIFEST, "digest": some_digest(*c), "size": 100,
                   "artifactType": t, "annotations": {"k": c.to_string()}})
        })
        .collect()
}

fn index_response(conn: &mut TcpStream, filtered: bool, body: &[u8]) {
    let mut headers = vec![("Content-Type", OCI_INDEX)];
    if filtered {
        headers.push(("OCI-Filters-Applied", "artifactType"));
    }
    respond(conn, 200, &headers, body);
}

#[test]
fn the_api_is_asked_first_and_its_filter_honoured() {
    let subject = some_digest('f');
    // A registry that filters, and says so.
    let server = api(|req, conn| {
        let wanted = req
            .target
            .split_once("?artifactType=")
            .map(|(_, t)| t.replace("%2F", "/").replace("%2B", "+"));
        let entries: Vec<Value> = listed()
            .into_iter()
            .filter(|e| wanted.as_deref().map_or(true, |w| e["artifactType"] == w))
            .collect();
        index_response(conn, wanted.is_some(), &index_of(entries));
    });
    let all = referrers(server.addr(), "a/b", &subject, None, &Cache::none()).unwrap();
    assert_eq!(all.manifests.len(), 3);
    assert_eq!(all.raw, index_of(listed()));
    assert_eq!(
        all.manifests[2].annotations,
        [("k".to_owned(), "c".to_owned())]
    );
    let sboms = referrers(server.addr(), "a/b", &subject, Some(SBOM), &Cache::none()).unwrap();
    assert_eq!(
        artifact_types(&sboms),
        [Some(SBOM.to_owned()), Some(SBOM.to_owned())]
    );
    // Filtered by the registry: its bytes, as sent.
    assert_eq!(sboms.digest, sha256(&sboms.raw));
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        2,
        "one request a call, no fallback: {requests:?}"
    );
    assert_eq!(requests[0].target, format!("/v2/a/b/referrers/{subject}"));
    assert_eq!(
        requests[1].target,
        format!(
            "/v2/a/b/referrers/{subject}?artifactType=application%2Fvnd.example.sbom.v1%2Bjson"
        )
    );
    assert_eq!(requests[0].header("accept"), Some(OCI_INDEX));
}

#[test]
fn a_registry_that_ignores_the_filter_is_filtered_by_tank() {
    let server = api(|_, conn| index_response(conn, false, &index_of(listed())));
    let got = referrers(
        server.addr(),
        "a/b",
        &some_digest('f'),
        Some(SIGNATURE),
        &Cache::none(),
    )
    .unwrap();
    assert_eq!(artifact_types(&got), [Some(SIGNATURE.to_owned())]);
    assert_eq!(got.manifests[0].digest, some_digest('b'));
    assert_eq!(parsed(&got.raw)["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(got.digest, sha256(&got.raw));
}

#[test]
fn a_registry_that_claims_the_filter_and_lies_is_filtered_by_tank() {
    let server = api(|_, conn| index_response(conn, true, &index_of(listed())));
    let got = referrers(
        server.addr(),
        "a/b",
        &some_digest('f'),
        Some(SBOM),
        &Cache::none(),
    )
    .unwrap();
    assert_eq!(
        artifact_types(&got),
        [Some(SBOM.to_owned()), Some(SBOM.to_owned())]
    );
}

#[test]
fn api_answers_that_are_no_index_are_protocol_errors() {
    let image_manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(EMPTY, b"{}"), "layers": [],
    }))
    .unwrap();
    let bad_entry = index_of(vec![
        json!({"mediaType": OCI_MANIFEST, "digest": "sha256:short", "size": 1}),
    ]);
    for (what, body) in [
        ("an image manifest", image_manifest),
        ("not JSON", b"<html>referrers</html>".to_vec()),
        ("a JSON list", b"[]".to_vec()),
        ("no manifests", br#"{"schemaVersion":2}"#.to_vec()),
        ("an entry's bad digest", bad_entry),
    ] {
        let server = api(move |_, conn| index_response(conn, false, &body));
        let e = referrers(
            server.addr(),
            "a/b",
            &some_digest('f'),
            None,
            &Cache::none(),
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.reason.as_str()),
            (TankStatus::TANK_ERR_PROTOCOL, "invalid_manifest_json"),
            "{what}: {e:?}"
        );
        assert_eq!(
            server.requests().len(),
            1,
            "{what}: no fallback after a 200"
        );
    }
}

#[test]
fn a_huge_answer_is_cut_at_the_manifest_limit() {
    let sent = Arc::new(AtomicUsize::new(0));
    // Declared: refused on the header, nothing read.
    let declared = api(|_, conn| {
        respond_head(
            conn,
            200,
            &[
                ("Content-Type", OCI_INDEX),
                ("Content-Length", "1073741824"),
            ],
        );
        stream(conn, 1 << 30, b' ');
    });
    let e = referrers(
        declared.addr(),
        "a/b",
        &some_digest('f'),
        None,
        &Cache::none(),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "manifest_too_large"),
        "{e:?}"
    );
    // Undeclared: read up to the limit, no further.
    let counter = sent.clone();
    let undeclared = api(move |_, conn| {
        respond_head(conn, 200, &[("Content-Type", OCI_INDEX)]);
        let n = stream(conn, 64 << 20, b' ');
        counter.store(n as usize, Ordering::SeqCst);
    });
    let e = referrers(
        undeclared.addr(),
        "a/b",
        &some_digest('f'),
        None,
        &Cache::none(),
    )
    .unwrap_err();
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, "manifest_too_large"),
        "{e:?}"
    );
    drop(undeclared);
    assert!(
        sent.load(Ordering::SeqCst) < 32 << 20,
        "tank read on past its limit: {} bytes",
        sent.load(Ordering::SeqCst)
    );
}

#[test]
fn a_404_falls_back_to_the_tag_and_an_error_does_not() {
    let subject = some_digest('f');
    let tag_index = index_of(listed());
    let tag = referrers_tag(&subject);
    let served = tag_index.clone();
    let server = ScriptedServer::start(move |req, conn| {
        if req.path() == format!("/v2/a/b/manifests/{tag}") {
            respond(conn, 200, &[("Content-Type", OCI_INDEX)], &served);
        } else {
            respond(conn, 404, &[], b"404 page not found");
        }
    });
    let got = referrers(
        server.addr(),
        "a/b",
        &subject,
        Some(SIGNATURE),
        &Cache::none(),
    )
    .unwrap();
    assert_eq!(artifact_types(&got), [Some(SIGNATURE.to_owned())]);
    let paths: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/v2/a/b/referrers/{subject}"),
            format!("/v2/a/b/manifests/{}", referrers_tag(&subject)),
        ]
    );

    // A refusal that is not "no such API" is the caller's answer.
    let forbidden = api(|_, conn| respond(conn, 403, &[], b"{\"errors\":[{\"code\":\"DENIED\"}]}"));
    let e = referrers(forbidden.addr(), "a/b", &subject, None, &Cache::none()).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 403),
        "{e:?}"
    );
    assert_eq!(forbidden.requests().len(), 1, "no fallback after a 403");
}

#[test]
fn the_digest_is_checked_before_any_request() {
    let server = api(|_, conn| index_response(conn, false, &index_of(vec![])));
    for bad in ["latest", "sha256:abc", &referrers_tag(&some_digest('a'))] {
        let e = referrers(server.addr(), "a/b", bad, None, &Cache::none()).unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_BAD_INPUT, "{bad}: {e:?}");
    }
    assert_eq!(server.requests().len(), 0, "a request was sent");
    // The same server answers a digest.
    referrers(
        server.addr(),
        "a/b",
        &some_digest('a'),
        None,
        &Cache::none(),
    )
    .unwrap();
    assert_eq!(server.requests().len(), 1);
}
