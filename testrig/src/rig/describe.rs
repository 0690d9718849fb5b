//! The [`RigInfo`] a started rig reports: every registry's address, realm,
//! storage and credentials, for tests and for the binary's JSON.

use std::path::Path;

use super::basic::{BasicUser, BASIC_REALM, BASIC_USER};
use super::issuers::{issuer_of, Issuer};
use super::mirrors::DeadPort;
use crate::cdn::CdnServer;
use crate::fixtures::{self, Fixtures};
use crate::info::{
    BasicAuthInfo, BasicRegistryInfo, CdnRegistryInfo, FaultyMirrorsInfo, PlainRegistryInfo,
    PrivateInfo, PullThroughInfo, RigInfo, TlsRegistryInfo, TlsTokenRegistryInfo,
    TokenRegistryInfo,
};
use crate::registry::RegistryProcess;
use crate::tls::{Authority, ClientIdentity};
use crate::token::{self, Users};
use crate::which::Which;

/// What [`build_info`] reads.
pub(super) struct Parts<'a> {
    pub(super) registries: &'a [(Which, RegistryProcess)],
    pub(super) issuers: &'a [Issuer],
    pub(super) cdn: &'a Option<CdnServer>,
    pub(super) authority: Option<&'a Authority>,
    pub(super) identity: Option<&'a ClientIdentity>,
    pub(super) basic: Option<&'a BasicUser>,
    pub(super) users: &'a Users,
    pub(super) mirror_users: &'a Users,
    pub(super) dead_port: Option<&'a DeadPort>,
    pub(super) certs_dir: &'a Path,
    pub(super) root: &'a Path,
    pub(super) fixtures: Fixtures,
}

pub(super) fn build_info(parts: Parts<'_>) -> RigInfo {
    let Parts {
        registries,
        issuers,
        cdn,
        authority,
        identity,
        basic,
        users,
        mirror_users,
        dead_port,
        certs_dir,
        root,
        fixtures,
    } = parts;
    let addr = |which: Which| {
        registries
            .iter()
            .find(|(w, _)| *w == which)
            .map(|(_, p)| p.addr().to_owned())
    };
    let realm = |which: Which| {
        issuer_of(issuers, which)
            .map(|i| i.server.realm_url())
            .unwrap_or_default()
    };
    let storage = |which: Which| {
        root.join(which.storage_name())
            .to_string_lossy()
            .into_owned()
    };
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let cdn_url = cdn.as_ref().map(|c| c.base_url()).unwrap_or_default();
    let cdn_realm = cdn.as_ref().map(|c| c.realm_url()).unwrap_or_default();
    let private = |public: &str| fixtures::private_repo(public);
    let images = &fixtures.images;
    RigInfo {
        plain: addr(Which::Plain).map(|registry| PlainRegistryInfo {
            registry,
            storage: storage(Which::Plain),
        }),
        token: addr(Which::Token).map(|registry| TokenRegistryInfo {
            registry,
            realm: realm(Which::Token),
            service: token::SERVICE.to_owned(),
            storage: storage(Which::Token),
        }),
        cdn: addr(Which::Cdn).map(|registry| CdnRegistryInfo {
            registry,
            realm: realm(Which::Cdn),
            service: token::SERVICE.to_owned(),
            cdn: cdn_url.clone(),
            cdn_realm: cdn_realm.clone(),
            storage: storage(Which::Cdn),
        }),
        tls: match (addr(Which::Tls), addr(Which::TlsRedirect), authority) {
            (Some(registry), Some(redirecting_registry), Some(a)) => Some(TlsRegistryInfo {
                registry,
                redirecting_registry,
                cdn: cdn_url.clone(),
                cdn_realm: cdn_realm.clone(),
                ca_pem: path(&a.ca_pem),
                storage: storage(Which::Tls),
                certs_dir: path(certs_dir),
                client_cert_registry: addr(Which::TlsClientCert),
                client_ca_pem: identity.map(|id| path(&id.ca_pem)),
                client_cert_pem: identity.map(|id| path(&id.cert_pem)),
                client_key_pem: identity.map(|id| path(&id.key_pem)),
            }),
            _ => None,
        },
        tls_token: match (addr(Which::TlsToken), authority) {
            (Some(registry), Some(a)) => Some(TlsTokenRegistryInfo {
                registry,
                realm: realm(Which::TlsToken),
                service: token::SERVICE.to_owned(),
                ca_pem: path(&a.ca_pem),
                storage: storage(Which::TlsToken),
            }),
            _ => None,
        },
        basic_registry: match (addr(Which::Basic), basic) {
            (Some(registry), Some(b)) => Some(BasicRegistryInfo {
                registry,
                realm: BASIC_REALM.to_owned(),
                username: BASIC_USER.to_owned(),
                password: b.password.clone(),
                htpasswd: path(&b.htpasswd),
                storage: storage(Which::Basic),
            }),
            _ => None,
        },
        private: match issuers.is_empty() {
            true => None,
            false => Some(PrivateInfo {
                username: token::PRIVATE_USER.to_owned(),
                password: users.private_password.clone(),
                identity_token: users.identity_token.clone(),
                identity_token_username: token::IDENTITY_TOKEN_USER.to_owned(),
                prefix: token::PRIVATE_PREFIX.to_owned(),
                oci_image: private(&images.oci_image.repo),
                oci_index: private(&images.oci_index.repo),
                docker_image: private(&images.docker_image.repo),
                docker_list: private(&images.docker_list.repo),
            }),
        },
        pull_through: match (addr(Which::PullThrough), addr(Which::Token)) {
            (Some(registry), Some(upstream)) => Some(PullThroughInfo {
                registry,
                realm: realm(Which::PullThrough),
                service: token::SERVICE.to_owned(),
                upstream,
                upstream_username: token::USERNAME.to_owned(),
                username: token::PRIVATE_USER.to_owned(),
                password: mirror_users.private_password.clone(),
                storage: storage(Which::PullThrough),
            }),
            _ => None,
        },
        faulty_mirrors: match (dead_port, addr(Which::EmptyMirror), addr(Which::WrongBlob)) {
            (Some(dead), Some(empty), Some(wrong_blob)) => Some(FaultyMirrorsInfo {
                dead: dead.addr().to_owned(),
                empty,
                wrong_blob,
                wrong_blob_storage: storage(Which::WrongBlob),
            }),
            _ => None,
        },
        basic_auth: BasicAuthInfo {
            username: token::USERNAME.to_owned(),
            password: users.push_password.clone(),
        },
        images: fixtures.images,
    }
}
