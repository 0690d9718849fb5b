//! Pushes fixtures through a registry's own API (monolithic blob uploads,
//! manifests by tag or digest), as `docker push` would.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::fixtures::{Blob, BlobData, Manifest, RepoPlan};

const BLOB_LANES: usize = 3;

/// How the pusher gets push rights.
#[derive(Clone)]
pub(crate) enum PushAuth {
    /// A token from the registry's realm, asked for with Basic credentials.
    Token(TokenAuth),
    /// Basic credentials on every request (an htpasswd registry).
    Basic { username: String, password: String },
}

/// How the pusher earns push rights on a token-protected registry.
#[derive(Clone)]
pub(crate) struct TokenAuth {
    pub(crate) realm: String,
    pub(crate) service: String,
    pub(crate) username: String,
    pub(crate) password: String,
}

pub(crate) struct Pusher {
    agent: ureq::Agent,
    /// `http://127.0.0.1:PORT`
    base: String,
    auth: Option<PushAuth>,
    /// When set, generated (benchmark-sized) layers are written straight into
    /// this storage root instead of being uploaded; see [`Pusher::seed_blob`].
    seed_into: Option<PathBuf>,
}

/// ureq reports 4xx/5xx as errors; the pusher wants to read those answers.
fn send(result: Result<ureq::Response, ureq::Error>, what: &str) -> Result<ureq::Response> {
    match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => Ok(r),
        Err(e) => Err(anyhow!("{what}: {e}")),
    }
}

fn expect_status(response: ureq::Response, want: u16, what: &str) -> Result<ureq::Response> {
    if response.status() == want {
        return Ok(response);
    }
    let status = response.status();
    let body = response.into_string().unwrap_or_default();
    bail!(
        "{what}: expected HTTP {want}, got {status}: {}",
        body.trim()
    )
}

impl Pusher {
    pub(crate) fn new(
        registry: &str,
        auth: Option<PushAuth>,
        seed_into: Option<PathBuf>,
    ) -> Pusher {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .timeout_connect(Duration::from_secs(5))
            .timeout_read(Duration::from_secs(60))
            .max_idle_connections_per_host(4)
            .build();
        Pusher {
            agent,
            base: format!("http://{registry}"),
            auth,
            seed_into,
        }
    }

    /// Pushes a repository's blobs, then its manifests in order (an index's
    /// children before the index, which distribution insists on), under
    /// the name `repo` (the plan's own, or another one for the same content).
    pub(crate) fn push_repo(&self, plan: &RepoPlan, repo: &str) -> Result<()> {
        let bearer = self.authorization(repo)?;
        let bearer = bearer.as_deref();
        // Small requests, each mostly waiting on the registry: a few at once
        // shorten the longest repository's chain of round trips.
        let lanes = BLOB_LANES.min(plan.blobs.len()).max(1);
        let per_lane = plan.blobs.len().div_ceil(lanes).max(1);
        thread::scope(|s| {
            let handles: Vec<_> = plan
                .blobs
                .chunks(per_lane)
                .map(|blobs| s.spawn(move || self.put_blobs(repo, blobs, bearer)))
                .collect();
            for h in handles {
                h.join().map_err(|_| anyhow!("a blob push panicked"))??;
            }
            Ok::<_, anyhow::Error>(())
        })?;
        for manifest in &plan.manifests {
            self.push_manifest(repo, manifest, bearer)
                .with_context(|| format!("pushing manifest {} to {repo}", manifest.reference))?;
        }
        Ok(())
    }

    fn put_blobs(&self, repo: &str, blobs: &[Blob], bearer: Option<&str>) -> Result<()> {
        for blob in blobs {
            match (&self.seed_into, &blob.data) {
                (Some(storage), BlobData::File(source)) => self
                    .seed_blob(storage, repo, blob, source)
                    .with_context(|| format!("seeding blob {} into {repo}", blob.digest))?,
                _ => self
                    .push_blob(repo, blob, bearer)
                    .with_context(|| format!("pushing blob {} to {repo}", blob.digest))?,
            }
        }
        Ok(())
    }

    /// The `Authorization` value for pushing to `repo`, if one is needed.
    fn authorization(&self, repo: &str) -> Result<Option<String>> {
        match &self.auth {
            None => Ok(None),
            Some(PushAuth::Basic { username, password }) => Ok(Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{username}:{password}"))
            ))),
            Some(PushAuth::Token(auth)) => self.bearer(auth, repo).map(Some),
        }
    }

    /// A push token for `repo`, asked for with the rig's Basic credentials.
    fn bearer(&self, auth: &TokenAuth, repo: &str) -> Result<String> {
        let credentials = STANDARD.encode(format!("{}:{}", auth.username, auth.password));
        let scope = format!("repository:{repo}:pull,push");
        let what = format!("token request to {}", auth.realm);
        let response = send(
            self.agent
                .get(&auth.realm)
                .query("service", &auth.service)
                .query("scope", &scope)
                .set("Authorization", &format!("Basic {credentials}"))
                .call(),
            &what,
        )?;
        let response = expect_status(response, 200, &what)?;
        let body: serde_json::Value = serde_json::from_reader(response.into_reader())
            .with_context(|| format!("{what}: the answer is not JSON"))?;
        let token = body["token"]
            .as_str()
            .with_context(|| format!("{what}: no token in the answer"))?;
        Ok(format!("Bearer {token}"))
    }

    fn request(&self, method: &str, url: &str, bearer: Option<&str>) -> ureq::Request {
        let request = self.agent.request(method, url);
        match bearer {
            Some(b) => request.set("Authorization", b),
            None => request,
        }
    }

    fn push_blob(&self, repo: &str, blob: &Blob, bearer: Option<&str>) -> Result<()> {
        let start_url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let what = format!("POST {start_url}");
        let response = send(
            self.request("POST", &start_url, bearer)
                .set("Content-Length", "0")
                .call(),
            &what,
        )?;
        let response = expect_status(response, 202, &what)?;
        let location = response
            .header("Location")
            .with_context(|| format!("{what}: 202 without a Location"))?;
        let upload_url = self.absolute(location);
        let separator = if upload_url.contains('?') { '&' } else { '?' };
        let put_url = format!("{upload_url}{separator}digest={}", blob.digest);

        let what = format!("PUT {put_url}");
        let response = send(
            self.request("PUT", &put_url, bearer)
                .set("Content-Type", "application/octet-stream")
                // A known length keeps ureq from chunking, and lets distribution
                // stream the body straight to disk.
                .set("Content-Length", &blob.size.to_string())
                .send(blob.reader()?),
            &what,
        )?;
        expect_status(response, 201, &what)?;
        Ok(())
    }

    /// Puts a generated layer where distribution's filesystem driver keeps
    /// blobs (a hard link to the generated file, so three registries share
    /// one copy) and links it into the repository: what a completed upload
    /// leaves behind. Uploading costs distribution 2.8 (Go 1.19: sha256
    /// without SHA-NI) about 6 s of CPU per GiB per registry on this machine.
    /// The manifest that references the blob still goes through the API,
    /// which checks that the blob is there.
    fn seed_blob(&self, storage: &Path, repo: &str, blob: &Blob, source: &Path) -> Result<()> {
        let (algo, hex) = blob
            .digest
            .split_once(':')
            .with_context(|| format!("malformed digest {}", blob.digest))?;
        let v2 = storage.join("docker/registry/v2");
        let data = v2
            .join("blobs")
            .join(algo)
            .join(hex.get(..2).unwrap_or(hex))
            .join(hex)
            .join("data");
        let link = v2
            .join("repositories")
            .join(repo)
            .join("_layers")
            .join(algo)
            .join(hex)
            .join("link");
        for path in [&data, &link] {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        if !data.exists() {
            if let Err(e) = fs::hard_link(source, &data) {
                fs::copy(source, &data).with_context(|| {
                    format!(
                        "hard-linking (failed: {e}) or copying {} to {}",
                        source.display(),
                        data.display()
                    )
                })?;
            }
        }
        fs::write(&link, &blob.digest).with_context(|| format!("writing {}", link.display()))?;
        Ok(())
    }

    fn push_manifest(&self, repo: &str, manifest: &Manifest, bearer: Option<&str>) -> Result<()> {
        let url = format!("{}/v2/{repo}/manifests/{}", self.base, manifest.reference);
        let what = format!("PUT {url}");
        let response = send(
            self.request("PUT", &url, bearer)
                .set("Content-Type", manifest.media_type)
                .send_bytes(&manifest.bytes),
            &what,
        )?;
        let response = expect_status(response, 201, &what)?;
        let echoed = response.header("Docker-Content-Digest").unwrap_or("");
        if echoed != manifest.digest {
            bail!(
                "{what}: registry says the manifest is {echoed:?}, we computed {}",
                manifest.digest
            );
        }
        Ok(())
    }

    /// distribution answers absolute Locations unless `relativeurls` is set;
    /// accept both.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}{location}", self.base)
        }
    }
}
