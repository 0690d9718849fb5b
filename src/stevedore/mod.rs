//! The async pull core, named after the Elixir client it replaces. Nothing
//! here knows about C: callers parse their strings once into typed values
//! ([`ImageRef`], [`Registry`], [`Repository`], [`Digest`],
//! [`PlatformSpec`]), ask through a [`Repo`] or [`Client::pull`], and get
//! [`Error`]s back.

pub mod artifact;
pub mod auth;
pub mod blob;
mod blocking;
pub mod cancel;
pub mod challenge;
mod clients;
mod config;
mod cred_helper;
pub mod credential;
pub mod credentials;
pub mod digest;
mod download;
pub mod error;
mod fill_buffer;
mod layout;
pub mod listing;
pub mod manifest;
pub mod mirrors;
pub mod origin;
pub mod platform;
pub mod progress;
mod proxy;
mod pull;
mod reason;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod repo;
pub mod secret;
pub mod session;
mod store;
mod tls;
pub mod transport;
pub mod trust;
pub mod unpack;

pub use blob::Bounds;
pub use cancel::Cancel;
pub use config::Config;
pub use digest::Digest;
pub use download::{BlobTo, Settings as DownloadSettings};
pub use error::{Error, ErrorKind, Reason, Result};
pub use listing::Catalog;
pub use manifest::{Descriptor, Manifest, Platform};
pub use platform::PlatformSpec;
pub use progress::ProgressFn;
pub use pull::{Pull, UnpackTo};
pub use reference::{ImageRef, Repository, TagOrDigest};
pub use registry::Registry;
pub use repo::Repo;
pub use session::Session;

use std::sync::Arc;

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

    /// `repository` on `registry`, asked with what `session` holds (none:
    /// anonymous, nothing cached, no mirrors): where every manifest and
    /// blob request starts. A registry the session's registries.conf
    /// blocks is an error here.
    pub fn repo<'a>(
        &self,
        registry: Registry,
        repository: Repository,
        session: Option<&'a Session>,
    ) -> Result<Repo<'a>> {
        Repo::new(&self.transport, session, registry, repository)
    }

    /// `registry`'s catalog, asked with what `session` holds for the
    /// registry as a whole; an error when the session's registries.conf
    /// blocks the registry.
    pub fn catalog<'a>(
        &self,
        registry: Registry,
        session: Option<&'a Session>,
    ) -> Result<Catalog<'a>> {
        if let Some(s) = session {
            s.check_registry_blocked(&registry)?;
        }
        Ok(Catalog::new(&self.transport, session, registry))
    }

    /// Pulls `image` into the OCI layout `pull.layout`, and with
    /// `pull.unpack` into a root filesystem too, each layer applied on a
    /// blocking thread as soon as its blob and every layer below it are in
    /// the layout. Returns the image manifest written. The pull ends
    /// itself on cancel, its downloads and their writers first: nothing of
    /// it runs once this returns.
    pub async fn pull(
        &self,
        image: &ImageRef,
        session: Option<&Session>,
        pull: Pull<'_>,
    ) -> Result<Manifest> {
        pull::pull(&self.transport, session, image, pull).await
    }
}
