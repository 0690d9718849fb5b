//! `scripts/install.sh`, checked as a packager would: it installs into a
//! temporary prefix, and from then on nothing but that prefix is used.
//! `examples/c/tank-pull.c` and the README's quick-start programs are built
//! with `pkg-config` (the shared library and the static one) and pull the
//! rig's multi-arch image; `readelf -d` shows the soname and what each
//! program needs; the Go package builds with `-tags tank_pkgconfig`; a
//! `DESTDIR` install stages the same files under its root.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(run(cmd).stdout)
        .unwrap()
        .trim()
        .to_string()
}

/// Fails loudly, naming the Debian package, when a tool is missing.
fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is missing: apt-get install {package} (bash scripts/install-deps.sh installs it)"
    );
}

struct Installed {
    _dir: tempfile::TempDir,
    prefix: PathBuf,
}

impl Installed {
    fn lib(&self) -> PathBuf {
        self.prefix.join("lib")
    }
    fn pkg_config_path(&self) -> PathBuf {
        self.lib().join("pkgconfig")
    }
    /// `pkg-config ARGS` against the prefix only.
    fn pkg_config(&self, args: &[&str]) -> String {
        stdout(
            Command::new("pkg-config")
                .args(args)
                .env("PKG_CONFIG_PATH", self.pkg_config_path())
                .env_remove("PKG_CONFIG_LIBDIR")
                .env_remove("PKG_CONFIG_SYSROOT_DIR"),
        )
    }
    /// A shell with the prefix's pkg-config files and no other library path.
    fn sh(&self, script: &str, dir: &Path) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-ec", script])
            .current_dir(dir)
            .env("PKG_CONFIG_PATH", self.pkg_config_path())
            .env_remove("PKG_CONFIG_LIBDIR")
            .env_remove("LIBRARY_PATH")
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("CPATH")
            .env_remove("C_INCLUDE_PATH");
        cmd
    }
}

/// `bash scripts/install.sh PREFIX` once per test process. It runs the
/// release build every script runs (fresh after scripts/test.sh's).
fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        need("pkg-config", "pkg-config");
        need("readelf", "binutils");
        need("cc", "gcc");
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("prefix");
        run(Command::new("bash")
            .arg(root().join("scripts/install.sh"))
            .arg(&prefix)
            .env_remove("DESTDIR")
            .env_remove("LIBDIR")
            .env_remove("INCLUDEDIR")
            .env_remove("PKGCONFIGDIR")
            .current_dir(root()));
        Installed { _dir: dir, prefix }
    })
}

/// `readelf -d`'s NEEDED entries and SONAME of an ELF file.
fn dynamic(file: &Path) -> (Vec<String>, Option<String>) {
    let text = stdout(
        Command::new("readelf")
            .arg("-d")
            .arg(file)
            .env("LC_ALL", "C"),
    );
    let bracketed = |l: &str| l.split('[').nth(1)?.split(']').next().map(String::from);
    let needed = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(bracketed)
        .collect();
    let soname = text
        .lines()
        .find(|l| l.contains("(SONAME)"))
        .and_then(bracketed);
    (needed, soname)
}

fn soname() -> String {
    format!("libtank.so.{MAJOR}")
}

fn assert_needs_libtank(exe: &Path) {
    let (needed, _) = dynamic(exe);
    assert!(
        needed.contains(&soname()),
        "{} needs {needed:?}, not {}",
        exe.display(),
        soname()
    );
    assert!(
        !needed.iter().any(|n| n == "libtank.so"),
        "{} needs the unversioned libtank.so",
        exe.display()
    );
}

fn assert_no_libtank(exe: &Path) {
    let (needed, _) = dynamic(exe);
    assert!(
        !needed.iter().any(|n| n.starts_with("libtank")),
        "{} is meant to have libtank linked in, yet needs {needed:?}",
        exe.display()
    );
}

/// The system libraries as rustc reports them for libtank.a.
fn native_static_libs() -> String {
    stdout(Command::new("bash").arg(root().join("scripts/native-static-libs.sh")))
}

/// The code block after `<!-- quickstart: NAME` in the README.
fn readme_block(name: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let marker = format!("<!-- quickstart: {name}");
    let after = &readme[readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))..];
    let fence = after
        .find("\n```")
        .expect("a code block follows the marker")
        + 4;
    let body = &after[fence..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("\n```").expect("the code block ends")].to_string() + "\n"
}

/// The image the rig serves, as `registry/repo:tag`.
fn multiarch(rig: &Rig) -> String {
    let idx = &rig.info().images.oci_index;
    format!("{}/{}:{}", rig.registry(Which::Plain), idx.repo, idx.tag)
}

/// The layout holds one image whose manifest, config and layers are there,
/// and it is the rig's `platform` entry when one is given, else any of the
/// index's.
fn assert_layout(rig: &Rig, layout: &Path, platform: Option<&str>) {
    let idx = &rig.info().images.oci_index;
    let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap())
        .unwrap_or_else(|e| panic!("{}/index.json: {e}", layout.display()));
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = match platform {
        Some(p) => idx.entry(p).unwrap_or_else(|| panic!("the rig has no {p}")),
        None => idx
            .manifests
            .iter()
            .find(|m| m.digest == digest)
            .unwrap_or_else(|| panic!("{digest} is none of the index's images")),
    };
    assert_eq!(digest, entry.digest, "index.json of {}", layout.display());
    for d in std::iter::once(&entry.digest)
        .chain([&entry.config])
        .chain(&entry.layers)
    {
        let (algo, hex) = d.split_once(':').unwrap();
        let bytes = std::fs::read(layout.join("blobs").join(algo).join(hex))
            .unwrap_or_else(|e| panic!("{d} missing from {}: {e}", layout.display()));
        assert_eq!(&sha256(&bytes), d);
    }
}

#[test]
fn install_lays_out_a_versioned_library_a_header_and_pkg_config_files() {
    let inst = installed();
    let lib = inst.lib();
    let real = lib.join(format!("libtank.so.{VERSION}"));
    let meta = std::fs::symlink_metadata(&real).unwrap();
    assert!(meta.file_type().is_file(), "{} is a file", real.display());
    let link = |name: &str| std::fs::read_link(lib.join(name)).unwrap();
    assert_eq!(link(&soname()), Path::new(&format!("libtank.so.{VERSION}")));
    assert_eq!(link("libtank.so"), Path::new(&soname()));
    assert!(std::fs::symlink_metadata(lib.join("libtank.a"))
        .unwrap()
        .is_file());
    assert_eq!(
        dynamic(&real).1.as_deref(),
        Some(soname().as_str()),
        "the installed library's soname"
    );
    assert_eq!(
        std::fs::read_to_string(inst.prefix.join("include/tank.h")).unwrap(),
        std::fs::read_to_string(root().join("include/tank.h")).unwrap()
    );

    let p = inst.prefix.display();
    let native = native_static_libs();
    assert!(native.split_whitespace().any(|l| l == "-lc"), "{native}");
    assert_eq!(inst.pkg_config(&["--modversion", "tank"]), VERSION);
    assert_eq!(
        inst.pkg_config(&["--cflags", "--libs", "tank"]),
        format!("-I{p}/include -L{p}/lib -ltank")
    );
    assert_eq!(
        inst.pkg_config(&["--static", "--libs", "tank"]),
        format!("-L{p}/lib -ltank {native}")
    );
    assert_eq!(
        inst.pkg_config(&["--cflags", "--libs", "tank-static"]),
        format!("-I{p}/include {p}/lib/libtank.a {native}")
    );

    // The in-tree Go link line is the one hand-kept copy (cgo runs no
    // commands): it must say what rustc says.
    let go = std::fs::read_to_string(root().join("examples/go/link_static.go")).unwrap();
    let ldflags = go
        .lines()
        .find_map(|l| l.strip_prefix("#cgo LDFLAGS: "))
        .unwrap();
    assert!(
        ldflags.ends_with(&format!("libtank.a {native}")),
        "examples/go/link_static.go links {ldflags:?}; rustc says {native}"
    );
}

#[test]
fn tank_pull_c_builds_with_pkg_config_shared_and_static_and_pulls() {
    let inst = installed();
    let work = tempfile::tempdir().unwrap();
    let src = root().join("examples/c/tank-pull.c");
    let flags = "-std=c11 -Wall -Wextra -Werror -O2";
    run(inst
        .sh(
            &format!(
                "cc {flags} \"$1\" -o tank-pull-shared $(pkg-config --cflags --libs tank)\n\
             cc {flags} \"$1\" -o tank-pull-static $(pkg-config --cflags --libs tank-static)"
            ),
            work.path(),
        )
        .arg("sh")
        .arg(&src));
    let shared = work.path().join("tank-pull-shared");
    let static_ = work.path().join("tank-pull-static");
    assert_needs_libtank(&shared);
    assert_no_libtank(&static_);

    let rig = start(RigOptions::plain_only());
    let idx = &rig.info().images.oci_index;
    for (exe, platform, env) in [
        (&shared, "linux/arm64/v8", Some(inst.lib())),
        (&static_, "linux/amd64", None),
    ] {
        let layout = work.path().join(format!(
            "{}-{}",
            exe.file_name().unwrap().to_str().unwrap(),
            platform.replace('/', "-")
        ));
        let mut cmd = Command::new(exe);
        cmd.args([rig.registry(Which::Plain), &idx.repo, &idx.tag])
            .arg(&layout)
            .args(["--platform", platform])
            .env_remove("LD_LIBRARY_PATH");
        if let Some(lib) = env {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        run(&mut cmd);
        assert_layout(&rig, &layout, Some(platform));
    }

    // Without the prefix on its path the shared one does not start: it
    // loads the installed library, nothing in the tree (unless a libtank is
    // installed where the loader looks anyway).
    let elsewhere = Command::new("sh")
        .args(["-c", "PATH=$PATH:/sbin:/usr/sbin ldconfig -p"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libtank.so"))
        .unwrap_or(false);
    if elsewhere {
        return;
    }
    let alone = Command::new(&shared)
        .arg("--help")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(
        !alone.status.success()
            && String::from_utf8_lossy(&alone.stderr).contains(soname().as_str()),
        "{alone:?}"
    );
}

#[test]
fn readme_c_quick_start_builds_and_pulls_and_the_version_macros_agree() {
    let inst = installed();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("pull.c"), readme_block("pull.c")).unwrap();
    // The README's command, and the same with tank-static.
    run(&mut inst.sh(
        "cc -Wall -Wextra -Werror pull.c -o pull $(pkg-config --cflags --libs tank)\n\
         cc -Wall -Wextra -Werror pull.c -o pull-static $(pkg-config --cflags --libs tank-static)",
        work.path(),
    ));
    assert_needs_libtank(&work.path().join("pull"));
    assert_no_libtank(&work.path().join("pull-static"));

    let rig = start(RigOptions::plain_only());
    let out = stdout(
        Command::new(work.path().join("pull"))
            .arg(multiarch(&rig))
            .arg(work.path().join("image"))
            .env("LD_LIBRARY_PATH", inst.lib()),
    );
    assert!(out.contains("sha256:"), "{out}");
    assert_layout(&rig, &work.path().join("image"), None);
    run(Command::new(work.path().join("pull-static"))
        .arg(multiarch(&rig))
        .arg(work.path().join("image-static")));
    assert_layout(&rig, &work.path().join("image-static"), None);

    // The installed header's macros: usable in #if, and the library the
    // program runs with says the same version.
    let (maj, min, pat) = {
        let core = VERSION.split(['-', '+']).next().unwrap();
        let v: Vec<u32> = core.split('.').map(|p| p.parse().unwrap()).collect();
        (v[0], v[1], v[2])
    };
    std::fs::write(
        work.path().join("version.c"),
        format!(
            "#include <stdio.h>\n#include <string.h>\n#include <tank.h>\n\
             #if TANK_VERSION_NUMBER != {number:#08x} || TANK_VERSION_MAJOR != {maj} \
             || TANK_VERSION_MINOR != {min} || TANK_VERSION_PATCH != {pat}\n\
             #error \"tank.h's version macros are not Cargo.toml's\"\n#endif\n\
             int main(void) {{\n    printf(\"%s %s\\n\", TANK_VERSION, tank_version());\n\
             return strcmp(TANK_VERSION, tank_version()) != 0;\n}}\n",
            number = (maj << 16) | (min << 8) | pat
        ),
    )
    .unwrap();
    run(&mut inst.sh(
        "cc -std=c11 -Wall -Wextra -Werror version.c -o version $(pkg-config --cflags --libs tank)",
        work.path(),
    ));
    assert_eq!(
        stdout(Command::new(work.path().join("version")).env("LD_LIBRARY_PATH", inst.lib())),
        format!("{VERSION} {VERSION}")
    );
}

/// GOPROXY off, no toolchain downloads, a writable cache (as
/// examples/go/run-tests.sh sets them).
///
/// Go's build cache keys a cgo package on its `#cgo` lines and the CGO_*
/// variables, not on what pkg-config answers (golang/go#24544): a package
/// built against an earlier test's prefix, since deleted, would be linked
/// from the cache with that prefix's `-L`. CGO_LDFLAGS naming this prefix
/// (the `-L` pkg-config gives too) makes the key this prefix's.
fn go(args: &[&str], dir: &Path, inst: &Installed) -> Command {
    let mut cmd = Command::new("go");
    cmd.args(args)
        .current_dir(dir)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "")
        .env("PKG_CONFIG_PATH", inst.pkg_config_path())
        .env("CGO_LDFLAGS", format!("-L{}", inst.lib().display()))
        .env_remove("PKG_CONFIG_LIBDIR")
        .env_remove("CGO_CFLAGS")
        .env_remove("LD_LIBRARY_PATH");
    let home_writable = std::env::var_os("HOME")
        .map(PathBuf::from)
        .is_some_and(|h| {
            std::fs::metadata(&h).is_ok_and(|m| !m.permissions().readonly()) && h.is_dir()
        });
    if std::env::var_os("GOCACHE").is_none() && !home_writable {
        cmd.env("GOCACHE", root().join("target/go/cache"));
    }
    if std::env::var_os("GOPATH").is_none() && !home_writable {
        cmd.env("GOPATH", root().join("target/go/path"));
    }
    cmd
}

#[test]
fn go_package_builds_against_the_prefix_and_the_readme_quick_start_pulls() {
    need("go", "golang-go");
    let inst = installed();
    let pkg = root().join("examples/go");
    for tags in ["tank_pkgconfig", "tank_pkgconfig,tank_static"] {
        run(&mut go(&["build", "-tags", tags, "./..."], &pkg, inst));
    }

    // The README's Go quick start: a module of its own that requires the
    // package and replaces it by this checkout.
    let work = tempfile::tempdir().unwrap();
    let module = work.path().join("pull");
    std::fs::create_dir(&module).unwrap();
    run(&mut go(&["mod", "init", "example.com/pull"], &module, inst));
    let replace = format!("tank.example/tank={}", pkg.display());
    run(&mut go(
        &[
            "mod",
            "edit",
            "-require",
            "tank.example/tank@v0.0.0",
            "-replace",
            &replace,
        ],
        &module,
        inst,
    ));
    std::fs::write(module.join("main.go"), readme_block("main.go")).unwrap();
    run(&mut go(
        &["build", "-tags", "tank_pkgconfig"],
        &module,
        inst,
    ));
    let shared = work.path().join("pull-shared");
    std::fs::rename(module.join("pull"), &shared).unwrap();
    run(&mut go(
        &["build", "-tags", "tank_pkgconfig,tank_static"],
        &module,
        inst,
    ));
    let static_ = module.join("pull");
    assert_needs_libtank(&shared);
    assert_no_libtank(&static_);

    let rig = start(RigOptions::plain_only());
    for (exe, lib) in [(&shared, Some(inst.lib())), (&static_, None)] {
        let layout = work.path().join(format!(
            "{}-image",
            exe.file_name().unwrap().to_str().unwrap()
        ));
        let mut cmd = Command::new(exe);
        cmd.arg(multiarch(&rig))
            .arg(&layout)
            .env_remove("LD_LIBRARY_PATH");
        if let Some(lib) = lib {
            cmd.env("LD_LIBRARY_PATH", lib);
        }
        let out = stdout(&mut cmd);
        assert!(out.contains("sha256:"), "{out}");
        assert_layout(&rig, &layout, None);
    }
}

#[test]
fn destdir_stages_the_files_and_the_pc_files_name_the_prefix() {
    need("pkg-config", "pkg-config");
    let stage = tempfile::tempdir().unwrap();
    let prefix = "/opt/tank";
    let libdir = "/opt/tank/lib/x86_64-linux-gnu";
    run(Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .arg(prefix)
        .env("DESTDIR", stage.path())
        .env("LIBDIR", libdir)
        .env_remove("INCLUDEDIR")
        .env_remove("PKGCONFIGDIR")
        .current_dir(root()));
    let staged = |p: &str| stage.path().join(p.trim_start_matches('/'));
    let lib = staged(libdir);
    for name in [
        format!("libtank.so.{VERSION}"),
        soname(),
        "libtank.so".into(),
        "libtank.a".into(),
        "pkgconfig/tank.pc".into(),
        "pkgconfig/tank-static.pc".into(),
    ] {
        assert!(lib.join(&name).exists(), "{name} not staged in {libdir}");
    }
    assert!(staged("/opt/tank/include/tank.h").is_file());
    let mut found = Vec::new();
    for e in walk(stage.path()) {
        found.push(e.strip_prefix(stage.path()).unwrap().to_path_buf());
    }
    assert!(
        found.iter().all(|p| p.starts_with("opt/tank")),
        "files outside DESTDIR/PREFIX: {found:?}"
    );
    let pc = std::fs::read_to_string(lib.join("pkgconfig/tank.pc")).unwrap();
    assert!(pc.contains("prefix=/opt/tank\n"), "{pc}");
    assert!(
        !pc.contains(stage.path().to_str().unwrap()),
        "tank.pc names DESTDIR:\n{pc}"
    );
    let cflags_libs = stdout(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "tank"])
            .env("PKG_CONFIG_PATH", lib.join("pkgconfig"))
            .env_remove("PKG_CONFIG_SYSROOT_DIR"),
    );
    assert_eq!(
        cflags_libs,
        format!("-I/opt/tank/include -L{libdir} -ltank")
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
