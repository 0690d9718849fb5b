//! The async pull core, named after the Elixir client it replaces. Nothing
//! here knows about C: callers pass Rust strings and get [`Error`]s back.

pub mod auth;
pub mod blob;
pub mod cancel;
pub mod challenge;
mod clients;
mod config;
mod cred_helper;
pub mod credential;
pub mod credentials;
pub mod digest;
pub mod error;
mod fill_buffer;
mod layout;
mod lock;
pub mod manifest;
pub mod origin;
mod partial;
pub mod platform;
mod private_file;
pub mod progress;
mod proxy;
mod pull;
pub mod reference;
pub mod registry;
pub mod repo;
pub mod secret;
pub mod session;
mod tls;
mod to_file;
pub mod transport;
pub mod trust;
pub mod unpack;

pub use blob::Bounds;
pub use cancel::Cancel;
pub use config::Config;
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use manifest::{Descriptor, Manifest, Platform};
pub use platform::PlatformSpec;
pub use progress::ProgressFn;
pub use pull::{Pull, UnpackTo};
pub use reference::{ImageRef, Repository, TagOrDigest};
pub use registry::Registry;
pub use repo::Repo;
pub use session::Session;
pub use to_file::BlobTo;

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
    /// anonymous, nothing cached): where every manifest and blob request
    /// starts.
    pub fn repo<'a>(
        &self,
        registry: Registry,
        repository: Repository,
        session: Option<&'a Session>,
    ) -> Repo<'a> {
        Repo::new(&self.transport, session, registry, repository)
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
