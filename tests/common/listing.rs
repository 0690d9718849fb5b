//! `tank_tags` and `tank_catalog` as C calls them, the same listings on the
//! async core (where a test may ask for small pages), and a pusher that
//! tags an image many times on one of the rig's token registries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::ptr;
use std::time::Duration;

use base64::Engine;
use tank::ffi::listing::{tank_catalog, tank_strings_release, tank_tags, TankStrings};
use tank::stevedore::credential::Credential;
use tank::stevedore::{Client, Config, Registry, Repository, Session};

use super::*;

/// Copies a filled-in list out and releases it (twice: the second is a
/// no-op).
unsafe fn take_strings(out: &mut TankStrings) -> Vec<String> {
    let items = if out.len == 0 {
        assert!(out.items.is_null(), "an empty list has NULL items");
        Vec::new()
    } else {
        std::slice::from_raw_parts(out.items, out.len)
            .iter()
            .map(|&p| cstr(p).expect("no item is NULL"))
            .collect()
    };
    assert!(!out._private.is_null(), "a filled list owns its storage");
    tank_strings_release(out);
    assert!(
        out.items.is_null() && out.len == 0 && out._private.is_null(),
        "release zeroes"
    );
    tank_strings_release(out);
    items
}

unsafe fn listed(
    status: TankStatus,
    out: &mut TankStrings,
    err: *mut TankError,
) -> Result<Vec<String>, CallError> {
    if status == TankStatus::TANK_OK {
        assert!(err.is_null(), "err written on success");
        Ok(take_strings(out))
    } else {
        assert!(
            out.items.is_null() && out._private.is_null(),
            "out written on failure"
        );
        Err(take_error(status, err))
    }
}

/// `tank_tags`.
pub fn tags(
    registry: &str,
    repo: &str,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> Result<Vec<String>, CallError> {
    let (r, p) = (c(registry), c(repo));
    unsafe {
        let mut out: TankStrings = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_tags(
            r.as_ptr(),
            p.as_ptr(),
            cache.0,
            cancel.map_or(ptr::null_mut(), |c| c.0),
            &mut out,
            &mut err,
        );
        listed(status, &mut out, err)
    }
}

/// `tank_catalog`.
pub fn catalog(
    registry: &str,
    cache: &Cache,
    cancel: Option<&Cancel>,
) -> Result<Vec<String>, CallError> {
    let r = c(registry);
    unsafe {
        let mut out: TankStrings = std::mem::zeroed();
        let mut err: *mut TankError = ptr::null_mut();
        let status = tank_catalog(
            r.as_ptr(),
            cache.0,
            cancel.map_or(ptr::null_mut(), |c| c.0),
            &mut out,
            &mut err,
        );
        listed(status, &mut out, err)
    }
}

/// The async core's listings, `page_size` names a page.
pub struct Core {
    client: Client,
    runtime: tokio::runtime::Runtime,
    pub session: Session,
}

impl Core {
    pub fn new() -> Core {
        Core {
            client: Client::new(Config::default()).unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            session: Session::default(),
        }
    }

    /// Calls made as `user` at `registry`.
    pub fn signed_in(self, registry: &str, user: &str, password: &str) -> Core {
        self.session.credentials.set(
            &Registry::parse(registry).unwrap(),
            Credential::Basic {
                username: user.into(),
                password: password.into(),
            },
        );
        self
    }

    pub fn tags(
        &self,
        registry: &str,
        repo: &str,
        page_size: u32,
    ) -> Result<Vec<String>, CallError> {
        let repo = self
            .client
            .repo(
                Registry::parse(registry).unwrap(),
                Repository::parse(repo).unwrap(),
                Some(&self.session),
            )
            .map_err(as_c)?;
        self.runtime
            .block_on(repo.tags(Some(page_size)))
            .map_err(as_c)
    }

    pub fn catalog(&self, registry: &str, page_size: u32) -> Result<Vec<String>, CallError> {
        let catalog = self
            .client
            .catalog(Registry::parse(registry).unwrap(), Some(&self.session));
        self.runtime
            .block_on(catalog.repositories(Some(page_size)))
            .map_err(as_c)
    }
}

fn as_c(e: tank::stevedore::Error) -> CallError {
    CallError {
        status: TankStatus::of(e.kind),
        http_status: e.http_status.unwrap_or(0),
        reason: e.reason.id().to_owned(),
        message: e.message,
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the status, the headers
/// (names lowercased) and the body.
fn exchange(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, answer[split + 4..].to_vec())
}

/// Pushes a small image (a config, no layers) to `repo` on the rig's token
/// registry as the rig's own user, tagged with each of `tags`.
pub fn push_tags(rig: &Rig, repo: &str, tags: &[String]) {
    let info = rig
        .info()
        .token
        .clone()
        .expect("the rig has a token registry");
    let user = &rig.info().basic_auth;
    let registry = info.registry.as_str();
    let realm = url::Url::parse(&info.realm).unwrap();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", user.username, user.password));
    let scope = format!("repository:{repo}:pull,push");
    let target = format!(
        "{}?service={}&scope={}",
        realm.path(),
        info.service,
        scope
            .replace(':', "%3A")
            .replace('/', "%2F")
            .replace(',', "%2C")
    );
    let authority = format!(
        "{}:{}",
        realm.host_str().unwrap(),
        realm.port_or_known_default().unwrap()
    );
    let (status, _, body) = exchange(
        &authority,
        "GET",
        &target,
        &[("Authorization", &format!("Basic {basic}"))],
        b"",
    );
    assert_eq!(status, 200, "token: {}", String::from_utf8_lossy(&body));
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let auth = ("Authorization", bearer.as_str());

    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let digest = sha256(config);
    let (status, headers, body) = exchange(
        registry,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[auth],
        b"",
    );
    assert_eq!(status, 202, "upload: {}", String::from_utf8_lossy(&body));
    let location = headers
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .expect("an upload location");
    let location = url::Url::parse(&format!("http://{registry}"))
        .unwrap()
        .join(&location)
        .unwrap();
    let mut put = location.clone();
    put.query_pairs_mut().append_pair("digest", &digest);
    let target = format!("{}?{}", put.path(), put.query().unwrap());
    let (status, _, body) = exchange(
        registry,
        "PUT",
        &target,
        &[auth, ("Content-Type", "application/octet-stream")],
        config,
    );
    assert_eq!(status, 201, "blob: {}", String::from_utf8_lossy(&body));

    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest,
            "size": config.len(),
        },
        "layers": [],
    }))
    .unwrap();
    for tag in tags {
        let (status, _, body) = exchange(
            registry,
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[
                auth,
                ("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
            ],
            &manifest,
        );
        assert_eq!(
            status,
            201,
            "{repo}:{tag}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
