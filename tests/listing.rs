//! `tank_tags` and `tank_catalog` (issue 22, promise 6): every page
//! followed by its `Link: <…>; rel="next"`, relative or absolute, on the
//! registry's own origin only; `n=` sent; the spec's page shapes and Docker
//! Hub's; what is read bounded (4 MiB a page; the page and name bounds are
//! unit tests in src/stevedore/listing.rs).
//!
//! Against the rig's token registry (distribution 2.8: it pages its catalog
//! by `n` and `last`, and answers every tag at once whatever `n` says), with
//! its real token handshake, the catalog's own scope included; and against
//! a scripted origin for what no real registry does on demand: pages that
//! loop, a `Link` to another host, a huge page.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::listing::{catalog, push_tags, tags, Core};
use common::scripted::{respond, stream_chunked, Request, ScriptedServer};
use common::*;

const REPO: &str = "tank/listed";
const MIB: usize = 1 << 20;

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn twelve_tags() -> Vec<String> {
    (0..12).map(|i| format!("t{i:02}")).collect()
}

/// The registry's log of requests whose target starts with `path`.
fn asked(rig: &Rig, path: &str) -> Vec<tank_testrig::RegistryRequest> {
    rig.registry_requests(Which::Token)
        .into_iter()
        .filter(|r| r.uri.starts_with(path))
        .collect()
}

#[test]
fn tags_on_a_token_registry() {
    let rig = start(RigOptions::token_only());
    let registry = rig.registry(Which::Token).to_owned();
    push_tags(&rig, REPO, &twelve_tags());
    rig.clear_logs();

    let cache = Cache::new();
    assert_eq!(
        sorted(tags(&registry, REPO, &cache, None).unwrap()),
        twelve_tags()
    );
    let statuses: Vec<(u16, String)> = asked(&rig, &format!("/v2/{REPO}/tags/list"))
        .into_iter()
        .map(|r| (r.status, r.uri))
        .collect();
    let uri = format!("/v2/{REPO}/tags/list?n=1000");
    assert_eq!(statuses, [(401, uri.clone()), (200, uri)], "the handshake");
    let scopes: Vec<Vec<String>> = rig.token_requests().into_iter().map(|t| t.scopes).collect();
    assert_eq!(scopes, [[format!("repository:{REPO}:pull")]]);

    // Five a page: distribution 2.8 answers all twelve at once anyway, and
    // that page, with no Link, is the whole list.
    rig.clear_logs();
    let core = Core::new();
    assert_eq!(
        sorted(core.tags(&registry, REPO, 5).unwrap()),
        twelve_tags()
    );
    let pages: Vec<String> = asked(&rig, &format!("/v2/{REPO}/tags/list"))
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| r.uri)
        .collect();
    assert_eq!(pages, [format!("/v2/{REPO}/tags/list?n=5")]);

    // A private repository: refused to anonymous callers, listed to alice.
    let private = private(&rig);
    let e = tags(&registry, &private.oci_image, &Cache::new(), None).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 401),
        "{e:?}"
    );
    let alice = Cache::new();
    set_basic(&alice, &registry, &private.username, &private.password);
    assert_eq!(
        tags(&registry, &private.oci_image, &alice, None).unwrap(),
        [rig.info().images.oci_image.tag.clone()]
    );

    // A repository the registry does not know.
    let e = tags(&registry, "tank/nowhere", &cache, None).unwrap_err();
    assert_eq!(
        (e.status, e.http_status),
        (TankStatus::TANK_ERR_HTTP, 404),
        "{e:?}"
    );
}

#[test]
fn the_catalog_of_a_token_registry_with_its_own_scope() {
    let rig = start(RigOptions::token_only());
    let registry = rig.registry(Which::Token).to_owned();
    push_tags(&rig, REPO, &["v1".to_owned()]);
    let images = &rig.info().images;
    let private = private(&rig);
    let mut every = vec![
        images.oci_image.repo.clone(),
        images.oci_index.repo.clone(),
        images.docker_image.repo.clone(),
        images.docker_list.repo.clone(),
        private.oci_image.clone(),
        private.oci_index.clone(),
        private.docker_image.clone(),
        private.docker_list.clone(),
        REPO.to_owned(),
    ];
    every.sort();
    every.dedup();

    // The rig's issuer, as Docker Hub's, opens the catalog to no anonymous
    // caller: the token it hands out grants nothing, and the registry says
    // so.
    let e = catalog(&registry, &Cache::new(), None).unwrap_err();
    assert_eq!(
        (e.status, e.http_status, e.reason.as_str()),
        (TankStatus::TANK_ERR_HTTP, 401, "http_status"),
        "{e:?}"
    );

    // Alice's credentials for a namespace are not the registry's: the
    // catalog stays closed, while her repositories open.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.json");
    let auth = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", private.username, private.password))
    };
    std::fs::write(
        &file,
        format!(r#"{{"auths": {{"{registry}/private": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    let namespaced = Cache::new();
    load_auth(&namespaced, Some(&file)).unwrap();
    let e = catalog(&registry, &namespaced, None).unwrap_err();
    assert_eq!((e.status, e.http_status), (TankStatus::TANK_ERR_HTTP, 401));
    assert!(tags(&registry, &private.oci_image, &namespaced, None).is_ok());

    // As alice for the whole registry: one page of up to 1000, in the
    // registry's (lexical) order, with a token for the catalog's scope.
    let alice = Cache::new();
    set_basic(&alice, &registry, &private.username, &private.password);
    rig.clear_logs();
    assert_eq!(catalog(&registry, &alice, None).unwrap(), every);
    let tokens = rig.token_requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].scopes, ["registry:catalog:*"]);
    assert_eq!(
        tokens[0].subject.as_deref(),
        Some(private.username.as_str())
    );
    // Its token is the catalog's: a repository's listing earns its own,
    // and the catalog's is still cached for the next listing.
    assert!(tags(&registry, REPO, &alice, None).is_ok());
    assert_eq!(catalog(&registry, &alice, None).unwrap(), every);
    let scopes: Vec<Vec<String>> = rig.token_requests().into_iter().map(|t| t.scopes).collect();
    assert_eq!(
        scopes,
        [
            vec!["registry:catalog:*".to_owned()],
            vec![format!("repository:{REPO}:pull")]
        ]
    );

    // Two a page: every page followed by its Link, on one token.
    rig.clear_logs();
    let core = Core::new().signed_in(&registry, &private.username, &private.password);
    assert_eq!(core.catalog(&registry, 2).unwrap(), every);
    let pages: Vec<String> = asked(&rig, "/v2/_catalog")
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| r.uri)
        .collect();
    assert_eq!(pages.len(), every.len().div_ceil(2), "{pages:?}");
    assert_eq!(pages[0], "/v2/_catalog?n=2");
    assert!(
        pages[1..]
            .iter()
            .all(|p| p.contains("last=") && p.contains("n=2")),
        "{pages:?}"
    );
    assert_eq!(rig.token_requests().len(), 1);
}

// ------------------------------------------------------------ scripted

/// One page an origin serves: its request target, its `Link` (if any) and
/// its body. In a link, `{origin}` is the origin's own
/// `http://127.0.0.1:PORT` and `{addr}` its `127.0.0.1:PORT`.
struct Page {
    target: &'static str,
    link: Option<String>,
    body: String,
}

fn page(target: &'static str, link: Option<&str>, body: &str) -> Page {
    Page {
        target,
        link: link.map(str::to_owned),
        body: body.to_owned(),
    }
}

/// An origin that answers each page's target with it, and 404 to any
/// other.
fn origin(pages: Vec<Page>) -> ScriptedServer {
    let addr = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let own = addr.clone();
    let server = ScriptedServer::start(move |req: &Request, conn| {
        let me = own.get().cloned().unwrap_or_default();
        match pages.iter().find(|p| p.target == req.target) {
            Some(p) => {
                let link = p.link.as_ref().map(|l| {
                    l.replace("{origin}", &format!("http://{me}"))
                        .replace("{addr}", &me)
                });
                let headers: Vec<(&str, &str)> = link
                    .as_deref()
                    .map(|l| ("Link", l))
                    .into_iter()
                    .chain([("Content-Type", "application/json")])
                    .collect();
                respond(conn, 200, &headers, p.body.as_bytes())
            }
            None => respond(conn, 404, &[], br#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#),
        }
    });
    addr.set(server.addr().to_owned()).unwrap();
    server
}

fn targets(o: &ScriptedServer) -> Vec<String> {
    o.requests().into_iter().map(|r| r.target).collect()
}

#[track_caller]
fn protocol(e: CallError, reason: &str) -> CallError {
    assert_eq!(
        (e.status, e.reason.as_str()),
        (TankStatus::TANK_ERR_PROTOCOL, reason),
        "{e:?}"
    );
    e
}

#[test]
fn relative_and_absolute_links_are_followed() {
    let o = origin(vec![
        page(
            "/v2/a/b/tags/list?n=1000",
            // Path-absolute, as distribution, quay.io and Docker Hub send it.
            Some(r#"</v2/a/b/tags/list?last=t1&n=1000>; rel="next""#),
            r#"{"name":"a/b","tags":["t0","t1"]}"#,
        ),
        page(
            "/v2/a/b/tags/list?last=t1&n=1000",
            // Absolute, among other links.
            Some(
                r#"</v2/a/b/tags/list?n=1000>; rel="first", <{origin}/v2/a/b/tags/list?page=3>; rel="next""#,
            ),
            r#"{"name":"a/b","tags":["t2"]}"#,
        ),
        page(
            "/v2/a/b/tags/list?page=3",
            // Relative to the page, the rel unquoted.
            Some("<list?page=4>;rel=next"),
            r#"{"name":"a/b","tags":["t3"]}"#,
        ),
        page(
            "/v2/a/b/tags/list?page=4",
            None,
            r#"{"name":"a/b","tags":["t4"]}"#,
        ),
    ]);
    assert_eq!(
        tags(o.addr(), "a/b", &Cache::none(), None).unwrap(),
        ["t0", "t1", "t2", "t3", "t4"]
    );
    assert_eq!(
        targets(&o),
        [
            "/v2/a/b/tags/list?n=1000",
            "/v2/a/b/tags/list?last=t1&n=1000",
            "/v2/a/b/tags/list?page=3",
            "/v2/a/b/tags/list?page=4"
        ]
    );

    let o = origin(vec![
        page(
            "/v2/_catalog?n=1000",
            Some("<{origin}/v2/_catalog?last=b&n=1000>; rel=\"next\""),
            r#"{"repositories":["a","b"]}"#,
        ),
        page(
            "/v2/_catalog?last=b&n=1000",
            Some("<?last=c%2Fd&n=1000>; rel=\"next\""),
            r#"{"repositories":["c/d"]}"#,
        ),
        page(
            "/v2/_catalog?last=c%2Fd&n=1000",
            None,
            r#"{"repositories":[]}"#,
        ),
    ]);
    assert_eq!(
        catalog(o.addr(), &Cache::none(), None).unwrap(),
        ["a", "b", "c/d"]
    );
    assert_eq!(targets(&o).len(), 3);
}

/// Docker Hub's tags/list: `{"name": …, "tags": […]}` paged by
/// `Link: </v2/<name>/tags/list?last=…&n=…>; rel="next"`, and `"tags":
/// null` for a repository with none.
#[test]
fn docker_hub_pages() {
    let o = origin(vec![
        page(
            "/v2/library/alpine/tags/list?n=1000",
            Some(r#"</v2/library/alpine/tags/list?last=3.20&n=1000>; rel="next""#),
            r#"{"name":"library/alpine","tags":["3.19","3.20"]}"#,
        ),
        page(
            "/v2/library/alpine/tags/list?last=3.20&n=1000",
            None,
            r#"{"name":"library/alpine","tags":["3.21","latest"]}"#,
        ),
        page(
            "/v2/library/empty/tags/list?n=1000",
            None,
            r#"{"name":"library/empty","tags":null}"#,
        ),
    ]);
    let reg = o.addr();
    assert_eq!(
        tags(reg, "library/alpine", &Cache::none(), None).unwrap(),
        ["3.19", "3.20", "3.21", "latest"]
    );
    assert_eq!(
        tags(reg, "library/empty", &Cache::none(), None).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn pages_that_loop_end_at_the_first_page_read_again() {
    // Back to the first page, written another way: an absolute URL.
    let o = origin(vec![
        page(
            "/v2/a/b/tags/list?n=1000",
            Some(r#"</v2/a/b/tags/list?page=2>; rel="next""#),
            r#"{"tags":["1"]}"#,
        ),
        page(
            "/v2/a/b/tags/list?page=2",
            Some(r#"<{origin}/v2/a/b/tags/list?n=1000>; rel="next""#),
            r#"{"tags":["2"]}"#,
        ),
    ]);
    let e = protocol(
        tags(o.addr(), "a/b", &Cache::none(), None).unwrap_err(),
        "invalid_next_link",
    );
    assert!(e.message.contains("already read"), "{e:?}");
    assert_eq!(targets(&o).len(), 2, "no page is asked twice");

    // A page that names itself.
    let o = origin(vec![page(
        "/v2/_catalog?n=1000",
        Some(r#"<?n=1000>; rel="next""#),
        r#"{"repositories":["a"]}"#,
    )]);
    protocol(
        catalog(o.addr(), &Cache::none(), None).unwrap_err(),
        "invalid_next_link",
    );
    assert_eq!(targets(&o).len(), 1);
}

#[test]
fn a_link_to_another_origin_is_refused_unfollowed() {
    let elsewhere = Tripwire::new();
    let other = elsewhere.registry();
    for link in [
        format!("<http://{other}/v2/a/b/tags/list?page=2>; rel=\"next\""),
        format!("<//{other}/v2/a/b/tags/list?page=2>; rel=\"next\""),
        // The same host and port, another scheme: another origin.
        "<https://{addr}/v2/a/b/tags/list?page=2>; rel=\"next\"".to_owned(),
    ] {
        let o = origin(vec![page(
            "/v2/a/b/tags/list?n=1000",
            Some(&link),
            r#"{"tags":["1"]}"#,
        )]);
        let e = protocol(
            tags(o.addr(), "a/b", &Cache::none(), None).unwrap_err(),
            "invalid_next_link",
        );
        assert!(e.message.contains("another origin"), "{e:?}");
        assert_eq!(targets(&o).len(), 1, "{link}");
        assert!(
            o.raw_openings.lock().unwrap().is_empty(),
            "{link}: a TLS hello"
        );
    }
    assert!(!elsewhere.touched(), "a request went to the other origin");
}

#[test]
fn a_page_is_read_up_to_4_mib() {
    // Exactly 4 MiB, padded with JSON's own whitespace: read.
    let mut at_limit = br#"{"tags":["a"]}"#.to_vec();
    at_limit.resize(4 * MIB, b' ');
    let over = {
        let mut b = at_limit.clone();
        b.push(b' ');
        b
    };
    let serve = |body: Vec<u8>| {
        ScriptedServer::start(move |_: &Request, conn| respond(conn, 200, &[], &body))
    };
    let o = serve(at_limit);
    assert_eq!(tags(o.addr(), "a/b", &Cache::none(), None).unwrap(), ["a"]);
    let o = serve(over);
    let e = protocol(
        tags(o.addr(), "a/b", &Cache::none(), None).unwrap_err(),
        "list_too_large",
    );
    assert!(e.message.contains("4194304"), "{e:?}");

    // No length said, and no end: read no further than the limit.
    let (sent_tx, sent_rx) = std::sync::mpsc::channel();
    let o = ScriptedServer::start(move |_: &Request, conn| {
        use std::io::Write;
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let _ = sent_tx.send(stream_chunked(conn, 1 << 30, b' '));
    });
    let started = Instant::now();
    protocol(
        catalog(o.addr(), &Cache::none(), None).unwrap_err(),
        "list_too_large",
    );
    let sent = sent_rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(
        sent < 64 * MIB as u64,
        "the origin wrote {sent} bytes before tank hung up"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn pages_that_are_not_lists() {
    for (body, why) in [
        ("<html>rate limited</html>", "is not JSON"),
        (r#"{"name":"a/b"}"#, "has no \"tags\""),
        (r#"{"tags":{"a":1}}"#, "not a list"),
        (r#"{"tags":["ok",7]}"#, "not a string"),
    ] {
        let o = ScriptedServer::start(move |_: &Request, conn| {
            respond(conn, 200, &[], body.as_bytes())
        });
        let e = protocol(
            tags(o.addr(), "a/b", &Cache::none(), None).unwrap_err(),
            "invalid_list",
        );
        assert!(e.message.contains(why), "{body}: {e:?}");
    }
}

#[test]
fn a_page_size_the_registry_refuses_is_asked_again_without_one() {
    let o = ScriptedServer::start(|req: &Request, conn| {
        if req.target.contains("n=") {
            let body = br#"{"errors":[{"code":"PAGINATION_NUMBER_INVALID"}]}"#;
            respond(conn, 400, &[], body)
        } else {
            respond(conn, 200, &[], br#"{"repositories":["a"]}"#)
        }
    });
    assert_eq!(catalog(o.addr(), &Cache::none(), None).unwrap(), ["a"]);
    assert_eq!(targets(&o), ["/v2/_catalog?n=1000", "/v2/_catalog"]);
}

#[test]
fn cancel_ends_a_listing_between_pages_and_before_the_first() {
    let wire = Tripwire::new();
    let cancel = Cancel::new();
    cancel.trigger();
    let e = tags(&wire.registry(), "a/b", &Cache::none(), Some(&cancel)).unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);
    let e = catalog(&wire.registry(), &Cache::none(), Some(&cancel)).unwrap_err();
    assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED);
    assert!(!wire.touched());

    // The second page never comes; the caller cancels once it is asked.
    let o = ScriptedServer::start(|req: &Request, conn| {
        if req.target.contains("page=2") {
            let _ = conn.read(&mut [0u8; 1]);
        } else {
            let link = r#"<?page=2>; rel="next""#;
            respond(conn, 200, &[("Link", link)], br#"{"tags":["1"]}"#)
        }
    });
    let cancel = Cancel::new();
    std::thread::scope(|s| {
        let listing = s.spawn(|| tags(o.addr(), "a/b", &Cache::none(), Some(&cancel)));
        while o.requests().len() < 2 {
            assert!(!listing.is_finished(), "{:?}", listing.join());
            std::thread::yield_now();
        }
        let asked = Instant::now();
        cancel.trigger();
        let e = listing.join().unwrap().unwrap_err();
        assert_eq!(e.status, TankStatus::TANK_ERR_CANCELLED, "{e:?}");
        assert!(asked.elapsed() < Duration::from_secs(2));
    });
}
