//! Tools no one here wrote, which the tests check tank's output with.

use std::process::Command;

/// `name` on PATH; missing is a failure naming the Debian package, never a
/// skip.
pub fn tool(name: &str, package: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is missing: this test checks the layout with it (apt-get install {package})"
    );
    Command::new(name)
}
