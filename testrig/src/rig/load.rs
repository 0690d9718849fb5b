//! Loading the fixtures: pushed through each registry's API, and the token
//! registries' `private/...` twins copied into their storage.

use std::path::Path;
use std::thread;

use anyhow::{anyhow, Context, Result};

use crate::fixtures::{self, Fixtures};
use crate::push::{PushAuth, Pusher};
use crate::registry::RegistryProcess;
use crate::which::Which;

/// Every repository into every registry, all at once: the registries work
/// in parallel and each request is small, so this is latency-bound.
pub(super) fn push_fixtures(
    registries: &[(Which, RegistryProcess)],
    fixtures: &Fixtures,
    auth_for: impl Fn(Which) -> Option<PushAuth>,
    seed_root: Option<&Path>,
) -> Result<()> {
    thread::scope(|s| {
        let mut handles = Vec::new();
        for (which, process) in registries.iter().filter(|(w, _)| w.gets_fixtures()) {
            for plan in &fixtures.repos {
                let seed_into = seed_root.map(|r| r.join(which.name()));
                let pusher = Pusher::new(process.addr(), auth_for(*which), seed_into);
                let label = format!("{} registry ({})", which.name(), process.addr());
                handles.push(s.spawn(move || {
                    pusher
                        .push_repo(plan, &plan.repo)
                        .with_context(|| format!("loading fixtures into the {label}"))
                }));
            }
        }
        for h in handles {
            h.join().map_err(|_| anyhow!("a fixture push panicked"))??;
        }
        Ok(())
    })
}

/// The token registries' `private/...` repositories: the standard
/// fixtures' repository trees (the link files their pushes left: layers,
/// manifest revisions, tags) copied under the private names. Pushing them
/// again through the API would cost every token rig ~0.2 s at start; the
/// registry serves the copy exactly as it would a push (no cache is
/// configured), and the blobs are shared, as a cross-repository mount
/// would share them.
pub(super) fn add_private_repos(
    root: &Path,
    registries: &[(Which, RegistryProcess)],
    fixtures: &Fixtures,
) -> Result<()> {
    for (which, _) in registries
        .iter()
        .filter(|(w, _)| w.is_token() && w.gets_fixtures())
    {
        let repos = root
            .join(which.storage_name())
            .join("docker/registry/v2/repositories");
        for public in fixtures.standard_repos() {
            copy_tree(
                &repos.join(public),
                &repos.join(fixtures::private_repo(public)),
            )
            .with_context(|| format!("adding the private twin of {public} to {}", which.name()))?;
        }
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!("copying {} to {}", entry.path().display(), target.display())
            })?;
        }
    }
    Ok(())
}
