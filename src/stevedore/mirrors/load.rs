//! Reading the mirror files from disk: registries.conf with its drop-ins
//! (as containers/image's sysregistriesv2 finds them) and the `hosts.toml`
//! of containerd-style certs directories. The formats are parsed by
//! [`registries_conf`](super::registries_conf) and
//! [`hosts_toml`](super::hosts_toml); this module only finds and reads.
//!
//! Configuration is read, never created, so a symlink to a regular file is
//! followed (distributions link /etc files); anything that is not a regular
//! file (a FIFO would block the read, a device never ends) is refused, and
//! no file is read past [`MAX_CONFIG_FILE`].

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::hosts_toml::{self, HostsFile};
use super::registries_conf::RegistriesConf;
use crate::stevedore::{Error, ErrorKind, Reason, Result};

/// The most of one configuration file read: far more than any real
/// registries.conf or hosts.toml, far less than a runaway file.
pub(crate) const MAX_CONFIG_FILE: u64 = 1 << 20;

/// Where the default registries.conf search looks: the real system's
/// places ([`SearchRoots::system`]), or a test's.
#[derive(Debug, Clone)]
pub struct SearchRoots {
    /// The system-wide file (`/etc/containers/registries.conf`).
    pub system_file: PathBuf,
    /// The system-wide drop-in directory (`/etc/containers/registries.conf.d`).
    pub system_dir: PathBuf,
    /// The user's home; `None` (no `$HOME`) skips the per-user file and
    /// drop-ins.
    pub home: Option<PathBuf>,
}

impl SearchRoots {
    pub fn system() -> SearchRoots {
        SearchRoots {
            system_file: PathBuf::from("/etc/containers/registries.conf"),
            system_dir: PathBuf::from("/etc/containers/registries.conf.d"),
            home: std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from),
        }
    }

    fn user_file(&self) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|h| h.join(".config/containers/registries.conf"))
    }

    fn user_dir(&self) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|h| h.join(".config/containers/registries.conf.d"))
    }
}

/// registries.conf and its drop-ins, merged, from the real system's places.
/// See [`registries_conf_in`].
pub fn registries_conf(path: Option<&Path>) -> Result<RegistriesConf> {
    registries_conf_in(path, &SearchRoots::system())
}

/// registries.conf and its drop-ins, merged (later files override earlier
/// ones, [`RegistriesConf::merge`]), found as containers/image finds them
/// (sysregistriesv2's `newConfigWrapper` and `dropInConfigs`):
///
/// - `path` None, `$HOME/.config/containers/registries.conf` exists: that
///   file, then the `*.conf` of `$HOME/.config/containers/registries.conf.d`
///   only (the user's file replaces the system's drop-ins too).
/// - `path` None otherwise: `/etc/containers/registries.conf` (missing is
///   an empty configuration), then the `*.conf` of
///   `/etc/containers/registries.conf.d`, then those of
///   `$HOME/.config/containers/registries.conf.d`.
/// - `path` given: that file (missing is an error naming it), then both
///   drop-in directories as above. containers/image does this for a file
///   named explicitly (skopeo's `--registries-conf`,
///   `CONTAINERS_REGISTRIES_CONF`), so tank reads what those tools read.
///
/// In each drop-in directory, the files whose names end in `.conf`, in
/// lexical (byte) order; subdirectories are ignored and a missing
/// directory is skipped. Every error is `BadInput`/`registries_conf`
/// naming the file (and the line, for a malformed one).
pub fn registries_conf_in(path: Option<&Path>, roots: &SearchRoots) -> Result<RegistriesConf> {
    let (main, required, dirs) = match path {
        Some(p) => (
            p.to_path_buf(),
            true,
            [Some(roots.system_dir.clone()), roots.user_dir()],
        ),
        None => match roots.user_file().filter(|f| f.exists()) {
            Some(user) => (user, false, [roots.user_dir(), None]),
            None => (
                roots.system_file.clone(),
                false,
                [Some(roots.system_dir.clone()), roots.user_dir()],
            ),
        },
    };
    let conf_error = |p: &Path, why: String| {
        Error::new(
            ErrorKind::BadInput,
            Reason::RegistriesConf,
            format!("{}: {why}", p.display()),
        )
    };
    let mut conf = match read_config(&main, |why| conf_error(&main, why))? {
        Some(text) => RegistriesConf::parse(&text, &main.display().to_string())?,
        None if required => return Err(conf_error(&main, "no such file".to_string())),
        None => RegistriesConf::default(),
    };
    for dir in dirs.into_iter().flatten() {
        for file in drop_ins(&dir, |why| conf_error(&dir, why))? {
            // Removed since the listing: as containers/image, skipped.
            if let Some(text) = read_config(&file, |why| conf_error(&file, why))? {
                conf = conf.merge(RegistriesConf::parse(&text, &file.display().to_string())?);
            }
        }
    }
    Ok(conf)
}

/// The `*.conf` files of `dir`, in lexical order; none when it does not
/// exist.
fn drop_ins(dir: &Path, error: impl Fn(String) -> Error) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(format!("cannot list it: {e}"))),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| error(format!("cannot list it: {e}")))?;
        // As containers/image's WalkDir: a directory entry that is itself a
        // directory is skipped, anything else (a symlink included) is read.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if !is_dir && entry.file_name().as_encoded_bytes().ends_with(b".conf") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The text of configuration file `path`; `None` when it does not exist.
/// `error` turns what is wrong with it into the caller's error.
pub(crate) fn read_config(path: &Path, error: impl Fn(String) -> Error) -> Result<Option<String>> {
    let regular = |meta: &std::fs::Metadata| {
        if meta.is_file() {
            Ok(())
        } else {
            Err(error("is not a regular file".to_string()))
        }
    };
    match std::fs::metadata(path) {
        Ok(meta) => regular(&meta)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(format!("cannot read it: {e}"))),
    }
    // O_NONBLOCK: a FIFO swapped in after the check above must not block
    // the open; the opened file is checked again.
    let file = match std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error(format!("cannot read it: {e}"))),
    };
    regular(
        &file
            .metadata()
            .map_err(|e| error(format!("cannot read it: {e}")))?,
    )?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE {
        return Err(error(format!(
            "is larger than {MAX_CONFIG_FILE} bytes, more than a configuration file holds"
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| error("is not UTF-8 text".to_string()))
}

/// The registry authority a host directory names: containerd's `host_port_`
/// form is `host:port`; any other name is the authority itself.
pub fn authority_of_dir_name(name: &str) -> String {
    if let Some(rest) = name.strip_suffix('_') {
        if let Some((host, port)) = rest.rsplit_once('_') {
            if !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                return format!("{host}:{port}");
            }
        }
    }
    name.to_string()
}

/// The name of the directory whose `hosts.toml` serves any registry
/// without a directory of its own.
const DEFAULT_DIR: &str = "_default";

/// Stands for the registry while a `_default/hosts.toml` is checked at
/// load time (its upstream is whichever registry is asked for later).
const PLACEHOLDER_REGISTRY: &str = "registry.invalid";

/// One `hosts.toml`, kept as text: a `_default` one is parsed again for
/// each registry it serves (its upstream is that registry).
#[derive(Debug)]
struct HostsText {
    path: PathBuf,
    text: String,
}

/// One certs directory's host directories, by name (lowercase), each with
/// its `hosts.toml` or `None` (a directory without one: Docker-style
/// certificates only).
#[derive(Debug, Clone, Default)]
struct HostsRoot {
    dir: PathBuf,
    names: HashMap<String, Option<Arc<HostsText>>>,
}

/// The `hosts.toml` files of certs directories, looked up as containerd
/// looks them up (`config_path` with several directories): the directories
/// in the order given (and loaded), and in each the names
/// [`hosts_toml::host_dir_names`] gives (`host_port_`, `host:port`,
/// `_default`); the first directory that exists decides, even one without a
/// `hosts.toml` (the registry is then reached directly, its Docker-style
/// certificates in the trust). Cheap to clone: the texts are shared.
#[derive(Debug, Clone, Default)]
pub struct HostsDirs {
    roots: Vec<HostsRoot>,
}

impl HostsDirs {
    /// Reads every `<dir>/<name>/hosts.toml` of `dirs` and parses it (with
    /// the registry its directory names; a `_default` one with a
    /// placeholder), so a malformed file is an error now, not at a pull.
    /// Errors are `BadInput` naming the file.
    pub fn read(dirs: &[PathBuf]) -> Result<HostsDirs> {
        let mut roots = Vec::with_capacity(dirs.len());
        for dir in dirs {
            let error = |p: &Path, why: String| Error::bad_input(format!("{}: {why}", p.display()));
            let entries =
                std::fs::read_dir(dir).map_err(|e| error(dir, format!("cannot list it: {e}")))?;
            let mut root = HostsRoot {
                dir: dir.clone(),
                ..HostsRoot::default()
            };
            for entry in entries {
                let entry = entry.map_err(|e| error(dir, format!("cannot list it: {e}")))?;
                let host_dir = entry.path();
                if !host_dir.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_ascii_lowercase) else {
                    // Not UTF-8: no registry authority is named so.
                    continue;
                };
                let file = host_dir.join("hosts.toml");
                let hosts = read_config(&file, |why| error(&file, why))?.map(|text| {
                    Arc::new(HostsText {
                        path: file.clone(),
                        text,
                    })
                });
                if let Some(h) = &hosts {
                    let registry = match name.as_str() {
                        DEFAULT_DIR => PLACEHOLDER_REGISTRY.to_string(),
                        other => authority_of_dir_name(other),
                    };
                    hosts_toml::parse(&h.text, &h.path, &registry)?;
                }
                root.names.insert(name, hosts);
            }
            roots.push(root);
        }
        Ok(HostsDirs { roots })
    }

    /// Appends `later`'s directories: looked up after these, as a later
    /// entry of containerd's `config_path`. A directory read again
    /// replaces what was read of it before, in its place.
    pub fn extend(&mut self, later: HostsDirs) {
        for root in later.roots {
            match self.roots.iter_mut().find(|r| r.dir == root.dir) {
                Some(earlier) => *earlier = root,
                None => self.roots.push(root),
            }
        }
    }

    /// Whether no certs directory had any host directory.
    pub fn is_empty(&self) -> bool {
        self.roots.iter().all(|r| r.names.is_empty())
    }

    /// The sources `hosts.toml` gives for the registry `authority`
    /// (`host[:port]` as in an image reference: `docker.io` for Docker
    /// Hub); `None` when no `hosts.toml` applies (the registry is reached
    /// directly). An error only for a `_default` file that cannot name this
    /// registry as its upstream.
    pub fn for_registry(&self, authority: &str) -> Option<Result<HostsFile>> {
        let authority = authority.to_ascii_lowercase();
        let names = hosts_toml::host_dir_names(&authority);
        for root in &self.roots {
            for name in &names {
                if let Some(found) = root.names.get(name) {
                    let h = found.as_ref()?;
                    return Some(hosts_toml::parse(&h.text, &h.path, &authority));
                }
            }
        }
        None
    }

    /// Every `hosts.toml` whose registry its directory names (not
    /// `_default`), parsed: their TLS settings apply from load time on.
    pub fn named(&self) -> Result<Vec<HostsFile>> {
        let mut files = Vec::new();
        for root in &self.roots {
            for (name, hosts) in &root.names {
                if let (Some(h), false) = (hosts, name == DEFAULT_DIR) {
                    files.push(hosts_toml::parse(
                        &h.text,
                        &h.path,
                        &authority_of_dir_name(name),
                    )?);
                }
            }
        }
        Ok(files)
    }

    /// The `[host."…"]` entries of every `_default/hosts.toml` (whose hosts
    /// do not depend on the registry asked for): their TLS settings apply
    /// from load time on.
    pub fn default_mirrors(&self) -> Result<Vec<HostsFile>> {
        let mut files = Vec::new();
        for root in &self.roots {
            if let Some(Some(h)) = root.names.get(DEFAULT_DIR) {
                let mut file = hosts_toml::parse(&h.text, &h.path, PLACEHOLDER_REGISTRY)?;
                // The last source is the upstream (`server`, or the
                // registry asked for): only a `server` names a fixed host.
                if !has_server(&h.text) {
                    file.hosts.pop();
                }
                files.push(file);
            }
        }
        Ok(files)
    }
}

/// Whether a (valid) hosts.toml sets `server`.
fn has_server(text: &str) -> bool {
    text.parse::<toml::Table>()
        .map(|t| t.contains_key("server"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    struct Fixture {
        _dir: tempfile::TempDir,
        roots: SearchRoots,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let roots = SearchRoots {
                system_file: dir.path().join("etc/registries.conf"),
                system_dir: dir.path().join("etc/registries.conf.d"),
                home: Some(dir.path().join("home")),
            };
            Fixture { _dir: dir, roots }
        }

        fn user_file(&self) -> PathBuf {
            self.roots.user_file().unwrap()
        }

        fn user_dir(&self) -> PathBuf {
            self.roots.user_dir().unwrap()
        }

        fn load(&self, path: Option<&Path>) -> Result<RegistriesConf> {
            registries_conf_in(path, &self.roots)
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A file that sets the search list to `name` and has a registry
    /// `name.example` (whose location says which file set it last).
    fn marking(name: &str) -> String {
        format!(
            "unqualified-search-registries = [\"{name}.example\"]\n\
             [[registry]]\nprefix = \"shared.example\"\nlocation = \"{name}.example\"\n\
             [[registry]]\nlocation = \"{name}.example\"\n"
        )
    }

    fn search(conf: &RegistriesConf) -> Vec<String> {
        conf.unqualified_search_registries
            .clone()
            .unwrap_or_default()
    }

    fn shared_location(conf: &RegistriesConf) -> String {
        conf.find("shared.example/x").unwrap().location.clone()
    }

    fn prefixes(conf: &RegistriesConf) -> Vec<&str> {
        conf.registries.iter().map(|r| r.prefix.as_str()).collect()
    }

    fn assert_conf_error(e: &Error, path: &Path, words: &[&str]) {
        assert_eq!(e.kind, ErrorKind::BadInput, "{}", e.message);
        assert_eq!(e.reason, Reason::RegistriesConf, "{}", e.message);
        assert!(
            e.message.contains(&path.display().to_string()),
            "{} should name {}",
            e.message,
            path.display()
        );
        for w in words {
            assert!(e.message.contains(w), "{w:?} not in {}", e.message);
        }
    }

    #[test]
    fn no_file_anywhere_is_an_empty_configuration() {
        let f = Fixture::new();
        assert_eq!(f.load(None).unwrap(), RegistriesConf::default());
        let no_home = SearchRoots {
            home: None,
            ..f.roots.clone()
        };
        assert_eq!(
            registries_conf_in(None, &no_home).unwrap(),
            RegistriesConf::default()
        );
    }

    #[test]
    fn system_file_then_system_drop_ins_then_the_users_in_lexical_order() {
        let f = Fixture::new();
        write(&f.roots.system_file, &marking("system"));
        // Created out of order: neither the directory's order nor its
        // reverse is the lexical one.
        write(&f.roots.system_dir.join("05-y.conf"), &marking("sys-y"));
        write(&f.roots.system_dir.join("10-b.conf"), &marking("sys-b"));
        write(&f.roots.system_dir.join("02-a.conf"), &marking("sys-a"));
        write(&f.roots.system_dir.join("07-x.conf"), &marking("sys-x"));
        // Not `*.conf`, or a directory: ignored.
        write(&f.roots.system_dir.join("99-z.conf.bak"), "not toml [");
        write(&f.roots.system_dir.join("98.conf/inner.conf"), "not toml [");
        let conf = f.load(None).unwrap();
        assert_eq!(search(&conf), ["sys-b.example"]);
        assert_eq!(shared_location(&conf), "sys-b.example");
        assert_eq!(
            prefixes(&conf),
            [
                "shared.example",
                "sys-a.example",
                "sys-b.example",
                "sys-x.example",
                "sys-y.example",
                "system.example"
            ]
        );

        // The user's drop-ins come after the system's, whatever their names.
        write(&f.user_dir().join("00-first.conf"), &marking("user"));
        let conf = f.load(None).unwrap();
        assert_eq!(search(&conf), ["user.example"]);
        assert_eq!(shared_location(&conf), "user.example");
        assert!(prefixes(&conf).contains(&"system.example"));

        // A drop-in that sets nothing leaves what is set.
        write(
            &f.user_dir().join("50-aliases.conf"),
            "[aliases]\n\"x\" = \"quay.io/x/x\"\n",
        );
        let conf = f.load(None).unwrap();
        assert_eq!(search(&conf), ["user.example"]);
        assert_eq!(conf.aliases["x"], "quay.io/x/x");
    }

    #[test]
    fn the_users_file_replaces_the_system_file_and_its_drop_ins() {
        let f = Fixture::new();
        write(&f.roots.system_file, &marking("system"));
        write(&f.roots.system_dir.join("a.conf"), &marking("sys-a"));
        write(&f.user_file(), &marking("user-file"));
        let conf = f.load(None).unwrap();
        assert_eq!(search(&conf), ["user-file.example"]);
        assert_eq!(prefixes(&conf), ["shared.example", "user-file.example"]);

        write(&f.user_dir().join("b.conf"), &marking("user-b"));
        let conf = f.load(None).unwrap();
        assert_eq!(search(&conf), ["user-b.example"]);
        assert_eq!(
            prefixes(&conf),
            ["shared.example", "user-b.example", "user-file.example"]
        );
    }

    #[test]
    fn a_named_file_then_both_drop_in_directories() {
        let f = Fixture::new();
        let named = f.roots.home.clone().unwrap().join("mine.conf");
        write(&named, &marking("named"));
        write(&f.roots.system_file, &marking("system"));
        write(&f.user_file(), &marking("user-file"));
        let conf = f.load(Some(&named)).unwrap();
        assert_eq!(search(&conf), ["named.example"]);
        assert_eq!(prefixes(&conf), ["named.example", "shared.example"]);

        write(&f.roots.system_dir.join("a.conf"), &marking("sys-a"));
        write(&f.user_dir().join("a.conf"), &marking("user-a"));
        let conf = f.load(Some(&named)).unwrap();
        assert_eq!(search(&conf), ["user-a.example"]);
        assert_eq!(
            prefixes(&conf),
            [
                "named.example",
                "shared.example",
                "sys-a.example",
                "user-a.example"
            ]
        );
    }

    #[test]
    fn a_missing_named_file_is_an_error_naming_it() {
        let f = Fixture::new();
        let missing = f.roots.system_dir.join("nope.conf");
        let e = f.load(Some(&missing)).unwrap_err();
        assert_conf_error(&e, &missing, &["no such file"]);
        // Even when it is the default file's path.
        let e = f.load(Some(&f.roots.system_file)).unwrap_err();
        assert_conf_error(&e, &f.roots.system_file, &[]);
    }

    #[test]
    fn a_malformed_file_names_the_file_and_line() {
        let f = Fixture::new();
        write(&f.roots.system_file, &marking("system"));
        let bad = f.roots.system_dir.join("b.conf");
        write(
            &bad,
            "[[registry]]\nlocation = \"a.example\"\nblocked = \"yes\"\n",
        );
        let e = f.load(None).unwrap_err();
        assert_conf_error(&e, &bad, &[&format!("{}:3:", bad.display())]);
    }

    #[test]
    fn files_that_are_not_regular_are_refused() {
        let f = Fixture::new();
        // A FIFO would block a plain read until a writer came.
        let fifo = f.roots.home.clone().unwrap().join("fifo.conf");
        std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let e = f.load(Some(&fifo)).unwrap_err();
        assert_conf_error(&e, &fifo, &["not a regular file"]);
        // A directory named as the file.
        let e = f.load(Some(&f.roots.home.clone().unwrap())).unwrap_err();
        assert_conf_error(&e, f.roots.home.as_ref().unwrap(), &["not a regular file"]);
        // A FIFO among the drop-ins.
        std::fs::create_dir_all(&f.roots.system_dir).unwrap();
        let dropped = f.roots.system_dir.join("x.conf");
        std::fs::rename(&fifo, &dropped).unwrap();
        let e = f.load(None).unwrap_err();
        assert_conf_error(&e, &dropped, &["not a regular file"]);
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_read() {
        let f = Fixture::new();
        let real = f.roots.home.clone().unwrap().join("real.conf");
        write(&real, &marking("linked"));
        std::fs::create_dir_all(&f.roots.system_dir).unwrap();
        std::os::unix::fs::symlink(&real, f.roots.system_dir.join("l.conf")).unwrap();
        assert_eq!(search(&f.load(None).unwrap()), ["linked.example"]);
    }

    #[test]
    fn a_huge_file_is_refused() {
        let f = Fixture::new();
        let mut text = marking("big");
        text.push_str(&"# padding\n".repeat(MAX_CONFIG_FILE as usize / 10));
        assert!(text.len() as u64 > MAX_CONFIG_FILE);
        write(&f.roots.system_file, &text);
        let e = f.load(None).unwrap_err();
        assert_conf_error(&e, &f.roots.system_file, &["larger than"]);
        // Exactly the limit is read.
        text.truncate(MAX_CONFIG_FILE as usize);
        write(&f.roots.system_file, &text);
        assert_eq!(search(&f.load(None).unwrap()), ["big.example"]);
    }

    #[test]
    fn dir_names_as_containerd_writes_them() {
        assert_eq!(authority_of_dir_name("r.example_5000_"), "r.example:5000");
        assert_eq!(authority_of_dir_name("r.example:5000"), "r.example:5000");
        assert_eq!(authority_of_dir_name("[::1]_5000_"), "[::1]:5000");
        assert_eq!(authority_of_dir_name("docker.io"), "docker.io");
        assert_eq!(authority_of_dir_name("my_host_"), "my_host_");
        assert_eq!(authority_of_dir_name("_5000_"), "_5000_");
        assert_eq!(authority_of_dir_name("_default"), "_default");
    }

    fn hosts_root() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn urls(file: &HostsFile) -> Vec<&str> {
        file.hosts.iter().map(|h| h.url.as_str()).collect()
    }

    #[test]
    fn hosts_files_are_found_as_containerd_finds_them() {
        let root = hosts_root();
        let d = root.path();
        // containerd docs/hosts.md, "Setup Default Mirror for All Registries".
        write(
            &d.join("_default/hosts.toml"),
            "[host.\"https://registry.example.com\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
        );
        write(
            &d.join("r.example_5000_/hosts.toml"),
            "server = \"https://underscored.example\"\n",
        );
        write(
            &d.join("r.example:5000/hosts.toml"),
            "server = \"https://coloned.example\"\n",
        );
        write(
            &d.join("q.example:6000/hosts.toml"),
            "[host.\"https://m.example\"]\n",
        );
        // A directory without hosts.toml: the registry is reached directly,
        // `_default` does not apply.
        std::fs::create_dir_all(d.join("plain.example")).unwrap();
        write(&d.join("plain.example/ca.crt"), "");
        let dirs = HostsDirs::read(&[d.to_path_buf()]).unwrap();
        let found = |a: &str| dirs.for_registry(a).map(|r| r.unwrap());

        assert_eq!(
            urls(&found("r.example:5000").unwrap()),
            ["https://underscored.example"]
        );
        assert_eq!(
            urls(&found("q.example:6000").unwrap()),
            ["https://m.example", "https://q.example:6000"]
        );
        assert_eq!(found("plain.example"), None);
        // `_default`: its upstream is the registry asked for.
        assert_eq!(
            urls(&found("ghcr.io").unwrap()),
            ["https://registry.example.com", "https://ghcr.io"]
        );
        assert_eq!(
            urls(&found("docker.io").unwrap()),
            [
                "https://registry.example.com",
                "https://registry-1.docker.io"
            ]
        );
        assert_eq!(
            urls(&found("R.Example:5000").unwrap()),
            ["https://underscored.example"]
        );

        let named: Vec<Vec<String>> = dirs
            .named()
            .unwrap()
            .iter()
            .map(|f| urls(f).iter().map(|s| s.to_string()).collect())
            .collect();
        assert_eq!(named.len(), 3, "{named:?}");
        let defaults = dirs.default_mirrors().unwrap();
        assert_eq!(defaults.len(), 1);
        assert_eq!(urls(&defaults[0]), ["https://registry.example.com"]);
    }

    #[test]
    fn the_first_certs_directory_with_a_match_decides() {
        let first = hosts_root();
        let second = hosts_root();
        write(
            &first.path().join("_default/hosts.toml"),
            "server = \"https://first-default.example\"\n",
        );
        write(
            &second.path().join("ghcr.io/hosts.toml"),
            "server = \"https://second.example\"\n",
        );
        write(
            &second.path().join("quay.io/hosts.toml"),
            "server = \"https://second-quay.example\"\n",
        );
        let mut dirs = HostsDirs::read(&[first.path().to_path_buf()]).unwrap();
        dirs.extend(HostsDirs::read(&[second.path().to_path_buf()]).unwrap());
        // As containerd's config_path list: the first root's `_default`
        // wins over a later root's own directory.
        let file = dirs.for_registry("ghcr.io").unwrap().unwrap();
        assert_eq!(urls(&file), ["https://first-default.example"]);
        let dirs = HostsDirs::read(&[second.path().to_path_buf()]).unwrap();
        let file = dirs.for_registry("ghcr.io").unwrap().unwrap();
        assert_eq!(urls(&file), ["https://second.example"]);

        // Read again, a directory keeps its place with what it holds now.
        let mut again = HostsDirs::read(&[first.path().to_path_buf()]).unwrap();
        again.extend(HostsDirs::read(&[second.path().to_path_buf()]).unwrap());
        std::fs::remove_dir_all(first.path().join("_default")).unwrap();
        again.extend(HostsDirs::read(&[first.path().to_path_buf()]).unwrap());
        assert_eq!(again.roots.len(), 2);
        let file = again.for_registry("ghcr.io").unwrap().unwrap();
        assert_eq!(urls(&file), ["https://second.example"]);
        assert!(dirs.for_registry("docker.io").is_none());
        assert!(HostsDirs::default().for_registry("ghcr.io").is_none());
        assert!(HostsDirs::default().is_empty());
    }

    #[test]
    fn a_bad_hosts_file_is_an_error_at_load_naming_it() {
        let root = hosts_root();
        let file = root.path().join("r.example/hosts.toml");
        write(
            &file,
            "[host.\"https://m\"]\n  capabilities = [\"pull\", \"fetch\"]\n",
        );
        let e = HostsDirs::read(&[root.path().to_path_buf()]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadInput);
        assert!(
            e.message.contains(&file.display().to_string()),
            "{}",
            e.message
        );
        assert!(e.message.contains("fetch"), "{}", e.message);

        let file = root.path().join("r.example/hosts.toml");
        write(&file, &"#\n".repeat(MAX_CONFIG_FILE as usize));
        let e = HostsDirs::read(&[root.path().to_path_buf()]).unwrap_err();
        assert!(e.message.contains("larger than"), "{}", e.message);

        std::fs::remove_file(&file).unwrap();
        std::fs::create_dir(&file).unwrap();
        let e = HostsDirs::read(&[root.path().to_path_buf()]).unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);

        let e = HostsDirs::read(&[root.path().join("missing")]).unwrap_err();
        assert!(e.message.contains("missing"), "{}", e.message);
    }
}
