//! Writes `include/tank.h` from the `extern "C"` items in `src/ffi`, with
//! the version macros from Cargo.toml, and gives the shared library its
//! soname.

use std::path::{Path, PathBuf};

include!("header_config.rs");

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for watched in ["src", "cbindgen.toml", "header_config.rs"] {
        println!("cargo:rerun-if-changed={watched}");
    }
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(tank_header_config(&root, &version))
        .generate()
        .expect("cbindgen could not generate include/tank.h")
        .write_to_file(root.join("include/tank.h"));
    soname();
}

/// ELF targets: the shared library's soname is `libtank.so.<ABI version>`,
/// the crate's major version (0 for every 0.y, as the issue that added it
/// chose: 0.y releases keep the ABI of the ones before or bump the major),
/// so a program built against it refuses another ABI instead of loading it.
/// scripts/install.sh installs `libtank.so.X.Y.Z` with `libtank.so.X`
/// and `libtank.so` links to it.
///
/// A program linked in the tree against `target/<profile>/libtank.so`
/// (the C example's shared build, Go's `tank_shared` tag) then needs
/// `libtank.so.X` at run time: a link of that name beside the library is
/// made here, as ldconfig would make it.
fn soname() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let family = std::env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    if family != "unix" || matches!(os.as_str(), "macos" | "ios" | "tvos" | "watchos") {
        return;
    }
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets the version");
    let soname = format!("libtank.so.{major}");
    // Not rustc-cdylib-link-arg: cargo hands that one on to every cdylib
    // that depends on tank (cargo#9562), and the Elixir NIF came out named
    // libtank.so.0. rustc-link-arg stays in this package: the library, and
    // its test executables, where a soname does nothing.
    println!("cargo:rustc-link-arg=-Wl,-soname,{soname}");

    // OUT_DIR is <profile dir>/build/tank-<hash>/out.
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    if let Some(profile_dir) = out.ancestors().nth(3) {
        if let Err(e) = soname_link(profile_dir, &soname) {
            println!(
                "cargo:warning=could not link {soname} to libtank.so in {}: {e}",
                profile_dir.display()
            );
        }
    }
}

#[cfg(unix)]
fn soname_link(dir: &Path, soname: &str) -> std::io::Result<()> {
    let link = dir.join(soname);
    match std::fs::read_link(&link) {
        Ok(to) if to == Path::new("libtank.so") => return Ok(()),
        Ok(_) => std::fs::remove_file(&link)?,
        Err(_) if link.symlink_metadata().is_ok() => std::fs::remove_file(&link)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink("libtank.so", link)
}

#[cfg(not(unix))]
fn soname_link(_dir: &Path, _soname: &str) -> std::io::Result<()> {
    Ok(())
}
