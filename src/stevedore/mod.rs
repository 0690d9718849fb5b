//! The async pull core, named after the Elixir client it replaces. Nothing
//! here knows about C: callers pass Rust strings and get [`Error`]s back.

pub mod auth;
pub mod blob;
pub mod cancel;
pub mod challenge;
mod clients;
mod cred_helper;
pub mod credentials;
pub mod digest;
pub mod error;
mod fill_buffer;
mod image_reference;
mod layout;
mod lock;
pub mod manifest;
pub mod origin;
mod partial;
mod platform;
mod private_file;
pub mod progress;
mod proxy;
mod pull;
pub mod reference;
pub mod secret;
mod tls;
mod to_file;
pub mod token_cache;
pub mod transport;
pub mod trust;
pub mod unpack;

pub use cancel::Cancel;
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use image_reference::ImageReference;
pub use manifest::{Descriptor, Manifest, Platform};
pub use progress::ProgressFn;
pub use token_cache::TokenCache;
pub use transport::Config;

use std::sync::Arc;

use reference::{Reference, Registry, Repository};
use transport::Transport;

/// A registry client: one HTTP client (and so one connection pool), shared
/// by every call made through it.
pub struct Client {
    transport: Arc<Transport>,
}

impl Client {
    pub fn new(config: Config) -> Result<Client> {
        Ok(Client {
            transport: Arc::new(Transport::new(config)?),
        })
    }

    /// What a call's requests go through: the process's client, and the
    /// cache's TLS trust picking its own for the hosts it has settings for.
    fn transport_for(&self, cache: Option<&TokenCache>) -> Transport {
        let trusted = cache.and_then(|c| c.trusted_clients(self.transport.config()));
        self.transport.with_trust(trusted)
    }

    /// Fetches `repo:reference` from `registry`. Arguments are checked
    /// before any request is sent.
    pub async fn manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
        cache: Option<&TokenCache>,
    ) -> Result<Manifest> {
        let registry = Registry::parse(registry)?;
        let repo = Repository::parse(repo)?;
        let reference = Reference::parse(reference)?;
        let transport = self.transport_for(cache);
        manifest::fetch(&transport, cache, &registry, &repo, &reference).await
    }

    /// Fetches the blob `digest` from `repo`, verified against the digest.
    pub async fn blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &str,
        cache: Option<&TokenCache>,
    ) -> Result<Vec<u8>> {
        self.blob_sized(registry, repo, digest, None, cache).await
    }

    /// As [`Client::blob`], and when `size` is given (the descriptor's), the
    /// blob must be exactly that long: more is never read.
    pub async fn blob_sized(
        &self,
        registry: &str,
        repo: &str,
        digest: &str,
        size: Option<u64>,
        cache: Option<&TokenCache>,
    ) -> Result<Vec<u8>> {
        self.blob_at_most(registry, repo, digest, size, None, cache)
            .await
    }

    /// As [`Client::blob_sized`], and `limit`, when given, is the most the
    /// caller will hold in memory: a longer blob is `too_large` (a protocol
    /// error), and no more than `limit` bytes are ever buffered for it.
    pub async fn blob_at_most(
        &self,
        registry: &str,
        repo: &str,
        digest: &str,
        size: Option<u64>,
        limit: Option<u64>,
        cache: Option<&TokenCache>,
    ) -> Result<Vec<u8>> {
        let registry = Registry::parse(registry)?;
        let repo = Repository::parse(repo)?;
        let digest = Digest::parse_argument("digest", digest)?;
        let transport = self.transport_for(cache);
        blob::fetch_at_most(&transport, cache, &registry, &repo, &digest, size, limit).await
    }

    /// Fetches the blob `digest` into the file `path`: streamed through
    /// `<path>.partial` (resumed from what an earlier call left there),
    /// verified, flushed and renamed into place. Nothing is fetched when
    /// `path` already holds the blob. `progress` gets `(done, total)` from
    /// tank's threads; `cancel` ends every wait (a request, a body, a
    /// backoff, a lock, a hash of what is on disk), and the call returns
    /// only once its writer has stopped.
    #[allow(clippy::too_many_arguments)]
    pub async fn blob_to_file(
        &self,
        registry: &str,
        repo: &str,
        digest: &str,
        size: Option<u64>,
        path: &std::path::Path,
        cache: Option<&TokenCache>,
        cancel: Option<&Cancel>,
        progress: Option<ProgressFn>,
    ) -> Result<()> {
        let registry = Registry::parse(registry)?;
        let repo = Repository::parse(repo)?;
        let digest = Digest::parse_argument("digest", digest)?;
        if path.as_os_str().is_empty() {
            return Err(Error::bad_input("path is empty"));
        }
        let request = to_file::Request {
            registry: &registry,
            repo: &repo,
            digest: &digest,
            size,
            path,
            work: None,
            cancel,
            progress,
        };
        let transport = self.transport_for(cache);
        // Not dropped when `cancel` fires: the download ends itself, its
        // writer with it, so that nothing touches its files once it returns.
        to_file::fetch(&transport, cache, request).await
    }

    /// Pulls the image `reference` into the OCI layout `layout` (created
    /// when missing): for an index, the image for `platform` (`os/arch
    /// [/variant]`, `None` = this host's); up to `jobs` blobs at once (0 =
    /// 4). Returns the image manifest written.
    #[allow(clippy::too_many_arguments)]
    pub async fn pull(
        &self,
        reference: &str,
        layout: &std::path::Path,
        platform: Option<&str>,
        jobs: usize,
        cache: Option<&TokenCache>,
        cancel: Option<&Cancel>,
        progress: Option<ProgressFn>,
    ) -> Result<Manifest> {
        let reference = ImageReference::parse(reference)?;
        if layout.as_os_str().is_empty() {
            return Err(Error::bad_input("layout is empty"));
        }
        let platform = platform.map(platform::PlatformSpec::parse).transpose()?;
        let request = pull::Request {
            reference: &reference,
            layout,
            platform: platform.as_ref(),
            jobs,
            cancel,
            progress,
            unpack: None,
        };
        let transport = self.transport_for(cache);
        // As for `blob_to_file`: the pull ends itself, its downloads first.
        pull::pull(&transport, cache, request).await
    }

    /// As [`Client::pull`], and the image unpacked into the new directory
    /// `rootfs` as [`unpack::unpack`] does: each layer applied, on a
    /// blocking thread, as soon as its blob and every layer below it are in
    /// the layout, while later blobs still download. An existing `rootfs`
    /// (without `options.replace`) fails the call before any request.
    /// Progress counts each blob twice: downloaded, then applied (or, for
    /// the config, read).
    #[allow(clippy::too_many_arguments)]
    pub async fn pull_unpack(
        &self,
        reference: &str,
        layout: &std::path::Path,
        rootfs: &std::path::Path,
        platform: Option<&str>,
        jobs: usize,
        options: unpack::Options,
        cache: Option<&TokenCache>,
        cancel: Option<&Cancel>,
        progress: Option<ProgressFn>,
    ) -> Result<Manifest> {
        let reference = ImageReference::parse(reference)?;
        if layout.as_os_str().is_empty() {
            return Err(Error::bad_input("layout is empty"));
        }
        if rootfs.as_os_str().is_empty() {
            return Err(Error::bad_input("rootfs is empty"));
        }
        let platform = platform.map(platform::PlatformSpec::parse).transpose()?;
        let request = pull::Request {
            reference: &reference,
            layout,
            platform: platform.as_ref(),
            jobs,
            cancel,
            progress,
            unpack: Some(pull::UnpackTo { rootfs, options }),
        };
        let transport = self.transport_for(cache);
        pull::pull(&transport, cache, request).await
    }
}
