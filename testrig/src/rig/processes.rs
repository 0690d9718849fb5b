//! Starting the registry processes, all at once. (Each stops when its
//! `RegistryProcess` is dropped.)

use std::thread;

use anyhow::{anyhow, Result};

use crate::registry::{RegistryProcess, RegistrySetup, Spawner};
use crate::which::Which;

/// Every setup's process, started in parallel; on any failure the ones that
/// did come up are killed and the first error returned.
pub(super) fn start_registries(
    spawner: &Spawner,
    setups: &[(Which, RegistrySetup)],
) -> Result<Vec<(Which, RegistryProcess)>> {
    thread::scope(|s| {
        let handles: Vec<_> = setups
            .iter()
            .map(|(which, setup)| {
                (
                    *which,
                    s.spawn(move || RegistryProcess::start(spawner, setup)),
                )
            })
            .collect();
        let mut started = Vec::new();
        let mut first_error = None;
        for (which, handle) in handles {
            match handle.join() {
                Ok(Ok(p)) => started.push((which, p)),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow!("starting {} panicked", which.name()));
                }
            }
        }
        match first_error {
            // Dropping `started` kills what did come up.
            Some(e) => Err(e),
            None => Ok(started),
        }
    })
}
