//! The start-up sequence: the servers the registries depend on first, then
//! the registries, then the fixtures, then the info that describes it all.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use super::basic::BasicUser;
use super::cdn_wiring::start_cdn;
use super::describe::{build_info, Parts};
use super::handle::Rig;
use super::https::write_certs_dir;
use super::issuers::{issuer_of, start_issuers};
use super::load::{add_private_repos, push_fixtures};
use super::mirrors::{make_proxy, mirror_users, users_for, DeadPort};
use super::options::RigOptions;
use super::processes::start_registries;
use super::setups::{registry_setups, Inputs};
use crate::cdn::CdnLog;
use crate::fixtures;
use crate::push::PushAuth;
use crate::random::random_hex;
use crate::registry::{find_binary, Spawner};
use crate::tls::{Authority, ClientIdentity};
use crate::token::{Switches, Users};
use crate::which::Which;
use crate::workdir;

impl Rig {
    /// Starts the requested registries and servers and pushes the fixtures
    /// into each registry. Fails (never skips) when `docker-registry` is not
    /// installed.
    pub fn start(opts: RigOptions) -> Result<Rig> {
        let started = Instant::now();
        let binary = find_binary()?;
        let wanted = opts.wanted()?;

        let dir = workdir::create()?;
        let root = dir.path().to_path_buf();

        // Generating a large layer takes a while; overlap it with startup.
        let (large, many) = (opts.large_mib, opts.many_layers);
        let scratch = root.join("generated");
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("creating {}", scratch.display()))?;
        let fixtures = thread::Builder::new()
            .name("tank-rig-fixtures".into())
            .spawn(move || fixtures::build(large, many, &scratch))
            .context("cannot start the fixture builder thread")?;
        let password = random_hex(16)?;
        let users = Arc::new(Users {
            push_password: password.clone(),
            private_password: random_hex(16)?,
            identity_token: random_hex(24)?,
        });
        let mirror_users = Arc::new(mirror_users()?);
        let switches = Arc::new(Switches::default());
        let token_log = Arc::new(Mutex::new(Vec::new()));
        let cdn_log = Arc::new(CdnLog::default());

        let issuers = start_issuers(
            &wanted,
            &root,
            users_for(&users, &mirror_users),
            &switches,
            &token_log,
        )?;
        let cdn = start_cdn(&opts, &root, &cdn_log)?;
        let authority = match opts.tls {
            true => Some(Authority::generate(&root)?),
            false => None,
        };
        let identity = match opts.client_cert {
            true => Some(ClientIdentity::generate(&root)?),
            false => None,
        };
        let basic = match opts.basic {
            true => Some(BasicUser::create(&root)?),
            false => None,
        };
        let inputs = || Inputs {
            binary: binary.clone(),
            root: &root,
            issuers: &issuers,
            cdn: cdn.as_ref(),
            authority: authority.as_ref(),
            identity: identity.as_ref(),
            basic: basic.as_ref(),
        };
        // The pull-through cache asks its upstream for a challenge as it
        // starts: it comes up after the others.
        let (first, proxies): (Vec<Which>, Vec<Which>) =
            wanted.iter().partition(|w| **w != Which::PullThrough);
        let setups = registry_setups(&first, inputs())?;
        let mut proxy_setups = registry_setups(&proxies, inputs())?;
        let dead_port = match opts.mirrors {
            true => Some(DeadPort::bind()?),
            false => None,
        };

        let verbose = std::env::var_os("TANK_RIG_VERBOSE").is_some();
        let phase = |what: &str| {
            if verbose {
                eprintln!("tank-testrig: {what} at {:?}", started.elapsed());
            }
        };
        phase("servers up");
        let spawner = Spawner::new()?;
        let mut registries = start_registries(&spawner, &setups)?;
        for (_, setup) in &mut proxy_setups {
            make_proxy(setup, &registries, &password)?;
        }
        registries.extend(start_registries(&spawner, &proxy_setups)?);
        phase("registries up");
        let fixtures = fixtures
            .join()
            .map_err(|_| anyhow!("the fixture builder panicked"))??;

        let auth_for = |which: Which| -> Option<PushAuth> {
            if which == Which::Basic {
                return basic.as_ref().map(BasicUser::push_auth);
            }
            issuer_of(&issuers, which).map(|i| i.push_auth(&password))
        };
        phase("fixtures built");
        // See Pusher::seed_blob for why big generated layers skip the upload.
        let seed_root = match std::env::var_os("TANK_RIG_UPLOAD_LARGE") {
            Some(_) => None,
            None => Some(root.as_path()),
        };
        push_fixtures(&registries, &fixtures, auth_for, seed_root)?;
        let push_auth = registries
            .iter()
            .filter_map(|(w, _)| Some((*w, auth_for(*w)?)))
            .collect();
        add_private_repos(&root, &registries, &fixtures)?;
        phase("fixtures pushed");
        let certs_dir = root.join("certs.d");
        if let Some(a) = &authority {
            write_certs_dir(&certs_dir, &registries, a, identity.as_ref())?;
        }

        let info = build_info(Parts {
            registries: &registries,
            issuers: &issuers,
            cdn: &cdn,
            authority: authority.as_ref(),
            identity: identity.as_ref(),
            basic: basic.as_ref(),
            users: &users,
            mirror_users: &mirror_users,
            dead_port: dead_port.as_ref(),
            certs_dir: &certs_dir,
            root: &root,
            fixtures,
        });
        let rig = Rig {
            registries,
            issuers,
            cdn,
            switches,
            _spawner: spawner,
            token_log,
            cdn_log,
            info,
            push_auth,
            dead_port,
            dir,
        };
        // The pushes' own token requests are no test's business.
        rig.clear_logs();
        Ok(rig)
    }
}
