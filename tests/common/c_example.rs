//! The C examples `tank-pull` and `tank-tags`, built for the tests that
//! run them.

use std::path::PathBuf;
use std::process::Command;

use super::{root, run};

/// The static `tank-pull`, built once per test process against the release
/// `libtank.a`, into a directory of that process's own: test runners that
/// give each test a process (nextest) must not have one relink the binary
/// another is running. The cargo command is the demo's and CI's, word for
/// word: another package set would unify features differently and rebuild
/// the library.
pub fn tank_pull_exe() -> PathBuf {
    built().join("tank-pull")
}

/// The static `tank-tags`, built as `tank-pull` is.
pub fn tank_tags_exe() -> PathBuf {
    built().join("tank-tags")
}

/// The directory both programs are built into.
fn built() -> PathBuf {
    static BUILT: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    BUILT.get_or_init(build).path().to_path_buf()
}

fn build() -> tempfile::TempDir {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["build", "--release", "-p", "tank", "-p", "tank-testrig"])
        .current_dir(root()));
    let dir = tempfile::tempdir().unwrap();
    let build_dir = format!("BUILD={}", dir.path().display());
    run(Command::new("make")
        .args(["-C", "examples/c", "PROFILE=release", &build_dir])
        .arg(dir.path().join("tank-pull"))
        .arg(dir.path().join("tank-tags"))
        .current_dir(root()));
    dir
}
