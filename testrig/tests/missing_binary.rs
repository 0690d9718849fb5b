//! Its own test binary: it changes the environment, which would race with
//! rigs starting on other test threads.

use tank_testrig::{Rig, RigOptions};

#[test]
fn a_missing_registry_binary_is_an_error_that_says_how_to_install_it() {
    std::env::set_var("TANK_DOCKER_REGISTRY", "/nonexistent/docker-registry");
    let err = Rig::start(RigOptions::plain_only()).unwrap_err();
    assert!(
        format!("{err:#}").contains("apt-get install docker-registry"),
        "{err:#}"
    );
}
