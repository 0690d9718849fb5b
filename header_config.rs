// The cbindgen configuration of include/tank.h: cbindgen.toml plus the
// version macros, which cbindgen cannot read from Cargo.toml by itself.
// Shared, with `include!`, by build.rs (which writes the header) and
// tests/header.rs (which checks the committed copy is what it would write),
// so the two can never disagree. Both pass the version cargo gives them.

/// `cbindgen.toml` under `root`, with the version macros after the
/// `#include`s. `version` is Cargo.toml's `major.minor.patch[-pre]`.
fn tank_header_config(root: &std::path::Path, version: &str) -> cbindgen::Config {
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let macros = tank_version_macros(version);
    config.after_includes = Some(match config.after_includes.take() {
        Some(own) => format!("{macros}\n{own}"),
        None => macros,
    });
    config
}

/// `TANK_VERSION_MAJOR`, `_MINOR`, `_PATCH`, `TANK_VERSION` and
/// `TANK_VERSION_NUMBER` for `version` ("0.2.0", or "1.0.0-rc.1").
fn tank_version_macros(version: &str) -> String {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let parts: Vec<u32> = core
        .split('.')
        .map(|p| p.parse().expect("the crate version is major.minor.patch"))
        .collect();
    let [major, minor, patch] = parts[..] else {
        panic!("the crate version {version:?} is not major.minor.patch");
    };
    format!(
        r#"
/*
 * The version of tank this header comes with (Cargo.toml's); tank_version()
 * gives the version of the library a program runs with. The shared
 * library's soname is libtank.so.{major}.
 */
#define TANK_VERSION_MAJOR {major}
#define TANK_VERSION_MINOR {minor}
#define TANK_VERSION_PATCH {patch}
#define TANK_VERSION "{version}"
/* One number to compare in #if: 0xMMmmpp, e.g. TANK_VERSION_NUMBER >= 0x000200. */
#define TANK_VERSION_NUMBER ((TANK_VERSION_MAJOR << 16) | (TANK_VERSION_MINOR << 8) | TANK_VERSION_PATCH)
"#
    )
}
