// The cbindgen configuration of include/tank.h: cbindgen.toml plus the
// version macros, which cbindgen cannot read from Cargo.toml by itself, and
// the table of reason ids, written from the list the core's `Reason` enum
// is defined by (src/stevedore/reason_list.rs).
// Shared, with `include!`, by build.rs (which writes the header) and
// tests/header.rs (which checks the committed copy is what it would write),
// so the two can never disagree. Both pass the version cargo gives them.

/// `cbindgen.toml` under `root`, with the version macros after the
/// `#include`s and the reason ids in place of its header's `@REASON_IDS@`
/// line. `version` is Cargo.toml's `major.minor.patch[-pre]`.
fn tank_header_config(root: &std::path::Path, version: &str) -> cbindgen::Config {
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let header = config.header.take().unwrap_or_default();
    assert!(
        header.contains(TANK_REASON_IDS_AT),
        "cbindgen.toml's header has no {TANK_REASON_IDS_AT} line for the reason ids"
    );
    config.header = Some(header.replace(TANK_REASON_IDS_AT, &tank_reason_table()));
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

/// Where cbindgen.toml's header wants the table of reason ids.
const TANK_REASON_IDS_AT: &str = " * @REASON_IDS@\n";

/// Reads the list of reasons: each `ErrorKind`'s name with its reasons' ids
/// and one-line texts, in the list's order.
macro_rules! reasons {
    ($( $kind:ident { $( $variant:ident = $id:literal : $doc:literal; )* } )*) => {
        const TANK_REASONS: &[(&str, &[(&str, &str)])] = &[$( (stringify!($kind), &[$( ($id, $doc), )*]), )*];
    };
}

include!("src/stevedore/reason_list.rs");

/// The C status of an `ErrorKind`, by name: `DigestMismatch` is
/// `TANK_ERR_DIGEST_MISMATCH` (TankStatus::of maps them so; tests/header.rs
/// checks the two agree).
fn tank_status_of_kind(kind: &str) -> String {
    let mut name = String::from("TANK_ERR");
    for c in kind.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The header's table of reason ids, comment lines ending in `\n`: a line
/// per status (` *   TANK_ERR_...`), under it a line per reason
/// (` *     id   text`), the text wrapped to the id column's right.
fn tank_reason_table() -> String {
    const WIDTH: usize = 116;
    let column = TANK_REASONS
        .iter()
        .flat_map(|(_, reasons)| reasons.iter().map(|(id, _)| id.len()))
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::from(
        " * Reason ids (tank_error_reason), under the status that carries each:\n",
    );
    for (kind, reasons) in TANK_REASONS {
        out.push_str(&format!(" *   {}\n", tank_status_of_kind(kind)));
        for (id, text) in *reasons {
            let mut line = format!(" *     {id:column$}");
            let indent = line.len();
            let mut first = true;
            for word in text.split_whitespace() {
                if !first && line.len() + 1 + word.len() > WIDTH {
                    out.push_str(line.trim_end());
                    out.push('\n');
                    line = format!(" *{:1$}", "", indent - 2);
                    first = true;
                }
                if !first {
                    line.push(' ');
                }
                line.push_str(word);
                first = false;
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}
