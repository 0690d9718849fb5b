//! What a caller names: a repository, a tag or a digest, and an image
//! reference as people write it (`alpine`, `ghcr.io/o/r:1.2`,
//! `localhost:5000/x@sha256:…`), with Docker's normalization; each checked
//! against the distribution grammar before any request is made.

use super::digest::Digest;
use super::error::{Error, Result};
use super::registry::{shown, Registry, DOCKER_HUB};

const MAX_TAG_LEN: usize = 128;

/// A repository path such as `library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository(String);

const MAX_REPOSITORY_LEN: usize = 255;

impl Repository {
    pub fn parse(input: &str) -> Result<Repository> {
        let bad = |why: &str| Error::bad_input(format!("repository {:?}: {why}", shown(input)));
        if input.is_empty() {
            return Err(bad("empty"));
        }
        if input.len() > MAX_REPOSITORY_LEN {
            return Err(bad(&format!(
                "{} bytes long, at most {MAX_REPOSITORY_LEN} allowed",
                input.len()
            )));
        }
        for component in input.split('/') {
            if !is_path_component(component) {
                return Err(bad(&format!(
                    "component {component:?} is not lowercase letters and digits joined by '.', '_', '__' or dashes"
                )));
            }
        }
        Ok(Repository(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagOrDigest {
    Tag(String),
    Digest(Digest),
}

impl TagOrDigest {
    /// Anything that parses as a digest is one; everything else must be a
    /// valid tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    pub fn parse(input: &str) -> Result<TagOrDigest> {
        if let Ok(d) = Digest::parse(input) {
            return Ok(TagOrDigest::Digest(d));
        }
        let valid = check_tag(input).is_ok();
        if !valid {
            return Err(Error::bad_input(format!(
                "reference {:?} is neither a digest (sha256:/sha512: + lowercase hex) nor a tag (letters, digits, '_', '.', '-', at most 128)",
                shown(input)
            )));
        }
        Ok(TagOrDigest::Tag(input.to_owned()))
    }
}

impl std::fmt::Display for TagOrDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagOrDigest::Tag(t) => f.write_str(t),
            TagOrDigest::Digest(d) => d.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry to contact (Docker Hub's serving host for its names),
    /// with the caller's `http://`/`https://` when there was one.
    pub registry: Registry,
    pub repository: Repository,
    /// `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    /// `docker.io/library/alpine:latest`: unique across registries, with
    /// no scheme.
    pub name: String,
}

impl ImageRef {
    pub fn parse(input: &str) -> Result<ImageRef> {
        let bad = |why: &str| Error::bad_input(format!("reference {:?}: {why}", shown(input)));
        if input.is_empty() {
            return Err(bad("empty"));
        }
        if input
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(bad("contains whitespace or control characters"));
        }
        let (scheme, rest) = match input.split_once("://") {
            Some((s, rest))
                if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") =>
            {
                (Some(s.to_ascii_lowercase()), rest)
            }
            Some(_) => return Err(bad("only http:// or https:// may prefix a reference")),
            None => (None, input),
        };

        let (rest, digest) = match rest.split_once('@') {
            Some((name, d)) => {
                let digest = Digest::parse(d).map_err(|e| bad(&format!("digest {}", e.0)))?;
                (name, Some(digest))
            }
            None => (rest, None),
        };
        // A tag follows the last ':' that comes after the last '/'; an
        // earlier ':' is a registry's port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(|why| bad(&why))?;
        }

        if scheme.is_none() && is_image_id(input) {
            return Err(bad(
                "64 hex digits are an image ID, not a repository (a digest needs 'sha256:')",
            ));
        }
        let (domain, remainder) = match path.split_once('/') {
            Some((first, remainder)) if scheme.is_some() || names_a_registry(first) => {
                (Some(first), remainder)
            }
            _ if scheme.is_some() => {
                return Err(bad(
                    "a scheme must be followed by a registry and a repository",
                ))
            }
            _ => (None, path),
        };
        let registry = match domain {
            None => Registry::parse(DOCKER_HUB)?,
            Some(d) => {
                Registry::from_parts(scheme.as_deref(), d, d).map_err(|e| bad(&e.message))?
            }
        };
        let hub = registry.names_docker_hub();
        let host = if hub {
            DOCKER_HUB
        } else {
            registry.authority()
        };
        let repository = if hub && !remainder.contains('/') {
            Repository::parse(&format!("library/{remainder}"))
        } else {
            Repository::parse(remainder)
        }
        .map_err(|e| bad(&e.message))?;

        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        let mut name = format!("{host}/{}", repository.as_str());
        if let Some(t) = &tag {
            name.push(':');
            name.push_str(t);
        }
        if let Some(d) = &digest {
            name.push('@');
            name.push_str(&d.to_string());
        }
        let registry = match hub {
            true => registry.docker_hub_host(),
            false => registry,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
            name,
        })
    }

    /// What to ask the registry for: the digest when there is one.
    pub fn target(&self) -> TagOrDigest {
        match (&self.digest, &self.tag) {
            (Some(d), _) => TagOrDigest::Digest(d.clone()),
            (None, Some(t)) => TagOrDigest::Tag(t.clone()),
            (None, None) => TagOrDigest::Tag("latest".to_owned()),
        }
    }
}

/// Whether the first of several components is a registry, as
/// distribution's `splitDockerDomain` decides: `localhost`, or anything
/// with a '.' or a ':'. Unlike it, capitals alone do not make a registry:
/// `UPPER/x` is refused as a repository in capitals rather than sent to a
/// host named `upper`.
fn names_a_registry(first: &str) -> bool {
    first == "localhost" || first.contains(['.', ':'])
}

/// distribution's `identifier`, `[a-f0-9]{64}`: refused as a name.
fn is_image_id(input: &str) -> bool {
    input.len() == 64
        && input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn check_tag(tag: &str) -> std::result::Result<(), String> {
    if tag.is_empty() {
        return Err("empty tag after ':'".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!(
            "tag is {} characters long, at most {MAX_TAG_LEN} allowed",
            tag.len()
        ));
    }
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        let shown: String = tag.chars().take(40).collect();
        return Err(format!(
            "tag {shown:?} is not letters, digits, '_', '.' and '-' (not starting with '.' or '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for good in [
            "alpine",
            "library/alpine",
            "a/b/c",
            "my-repo",
            "a__b",
            "a.b_c",
            "a---b",
            "x9/0y",
        ] {
            assert!(Repository::parse(good).is_ok(), "{good:?} refused");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            "/",
            "a/",
            "/a",
            "a//b",
            "a/../b",
            "..",
            "A",
            "Library/alpine",
            "a b",
            "a___b",
            "a-",
            "-a",
            "a._b",
            "a/./b",
            "a\nb",
            long.as_str(),
        ] {
            assert!(Repository::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            TagOrDigest::parse(&digest).unwrap(),
            TagOrDigest::Digest(_)
        ));
        assert!(matches!(
            TagOrDigest::parse("latest").unwrap(),
            TagOrDigest::Tag(_)
        ));
        assert!(matches!(
            TagOrDigest::parse("v1.2_3-rc").unwrap(),
            TagOrDigest::Tag(_)
        ));
        let long = "a".repeat(129);
        for bad in [
            "",
            ".hidden",
            "-x",
            "a b",
            "tag\n",
            "a/b",
            long.as_str(),
            &digest.to_uppercase(),
            "sha256:abc",
        ] {
            assert!(TagOrDigest::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    const HUB_HOST: &str = "registry-1.docker.io";
    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// (input, registry, repository, tag, digest?, name)
    /// input, registry, repository, tag, whether a digest, name
    type Case = (
        String,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
        String,
    );

    fn good() -> Vec<Case> {
        vec![
            (
                "alpine".into(),
                HUB_HOST,
                "library/alpine",
                Some("latest"),
                false,
                "docker.io/library/alpine:latest".into(),
            ),
            (
                "alpine:3.19".into(),
                HUB_HOST,
                "library/alpine",
                Some("3.19"),
                false,
                "docker.io/library/alpine:3.19".into(),
            ),
            (
                "library/alpine".into(),
                HUB_HOST,
                "library/alpine",
                Some("latest"),
                false,
                "docker.io/library/alpine:latest".into(),
            ),
            (
                "docker.io/alpine".into(),
                HUB_HOST,
                "library/alpine",
                Some("latest"),
                false,
                "docker.io/library/alpine:latest".into(),
            ),
            (
                "index.docker.io/alpine".into(),
                HUB_HOST,
                "library/alpine",
                Some("latest"),
                false,
                "docker.io/library/alpine:latest".into(),
            ),
            (
                "docker.io/library/alpine:edge".into(),
                HUB_HOST,
                "library/alpine",
                Some("edge"),
                false,
                "docker.io/library/alpine:edge".into(),
            ),
            (
                "bitnami/redis".into(),
                HUB_HOST,
                "bitnami/redis",
                Some("latest"),
                false,
                "docker.io/bitnami/redis:latest".into(),
            ),
            (
                "localhost".into(),
                HUB_HOST,
                "library/localhost",
                Some("latest"),
                false,
                "docker.io/library/localhost:latest".into(),
            ),
            (
                "localhost:5000".into(),
                HUB_HOST,
                "library/localhost",
                Some("5000"),
                false,
                "docker.io/library/localhost:5000".into(),
            ),
            (
                "localhost/x".into(),
                "localhost",
                "x",
                Some("latest"),
                false,
                "localhost/x:latest".into(),
            ),
            (
                "localhost:5000/x".into(),
                "localhost:5000",
                "x",
                Some("latest"),
                false,
                "localhost:5000/x:latest".into(),
            ),
            (
                "ghcr.io/o/r:1.2".into(),
                "ghcr.io",
                "o/r",
                Some("1.2"),
                false,
                "ghcr.io/o/r:1.2".into(),
            ),
            (
                "GHCR.io/o/r".into(),
                "ghcr.io",
                "o/r",
                Some("latest"),
                false,
                "ghcr.io/o/r:latest".into(),
            ),
            (
                "quay.io/a/b/c/d".into(),
                "quay.io",
                "a/b/c/d",
                Some("latest"),
                false,
                "quay.io/a/b/c/d:latest".into(),
            ),
            (
                "127.0.0.1:5000/tank/multiarch:v1".into(),
                "127.0.0.1:5000",
                "tank/multiarch",
                Some("v1"),
                false,
                "127.0.0.1:5000/tank/multiarch:v1".into(),
            ),
            (
                "[::1]:5000/x:y".into(),
                "[::1]:5000",
                "x",
                Some("y"),
                false,
                "[::1]:5000/x:y".into(),
            ),
            (
                format!("localhost:5000/x@{D}"),
                "localhost:5000",
                "x",
                None,
                true,
                format!("localhost:5000/x@{D}"),
            ),
            (
                format!("alpine@{D}"),
                HUB_HOST,
                "library/alpine",
                None,
                true,
                format!("docker.io/library/alpine@{D}"),
            ),
            (
                format!("alpine:3@{D}"),
                HUB_HOST,
                "library/alpine",
                Some("3"),
                true,
                format!("docker.io/library/alpine:3@{D}"),
            ),
            (
                "http://127.0.0.1:5000/x:y".into(),
                "http://127.0.0.1:5000",
                "x",
                Some("y"),
                false,
                "127.0.0.1:5000/x:y".into(),
            ),
            (
                "https://myreg/x".into(),
                "https://myreg",
                "x",
                Some("latest"),
                false,
                "myreg/x:latest".into(),
            ),
            (
                format!("{}:1", &D[7..]),
                HUB_HOST,
                Box::leak(format!("library/{}", &D[7..]).into_boxed_str()),
                Some("1"),
                false,
                format!("docker.io/library/{}:1", &D[7..]),
            ),
            (
                "a.b/c_d/e__f/g-h---i:T_a.g-1".into(),
                "a.b",
                "c_d/e__f/g-h---i",
                Some("T_a.g-1"),
                false,
                "a.b/c_d/e__f/g-h---i:T_a.g-1".into(),
            ),
            (
                format!("x:{}", "t".repeat(128)),
                HUB_HOST,
                "library/x",
                Some(Box::leak("t".repeat(128).into_boxed_str())),
                false,
                format!("docker.io/library/x:{}", "t".repeat(128)),
            ),
        ]
    }

    #[test]
    fn references_people_write() {
        for (input, registry, repository, tag, has_digest, name) in good() {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry.as_written(), registry, "{input}");
            assert_eq!(r.repository.as_str(), repository, "{input}");
            assert_eq!(r.tag.as_deref(), tag, "{input}");
            assert_eq!(r.digest.is_some(), has_digest, "{input}");
            assert_eq!(r.name, name, "{input}");
            // The registry is what tank_manifest takes.
            Registry::parse(&r.registry.as_written()).unwrap_or_else(|e| panic!("{input}: {e}"));
        }
    }

    #[test]
    fn a_digest_is_what_gets_pulled() {
        let r = ImageRef::parse(&format!("alpine:3@{D}")).unwrap();
        assert_eq!(r.target().to_string(), D);
        let r = ImageRef::parse("alpine:3").unwrap();
        assert_eq!(r.target().to_string(), "3");
    }

    #[test]
    fn hostile_references_are_refused_naming_the_fault() {
        let long_repo = format!("x/{}", "a".repeat(254));
        let long_tag = format!("x:{}", "t".repeat(129));
        for (input, says) in [
            ("", "empty"),
            ("a//b", "component \"\""),
            ("UPPER/x", "UPPER"),
            ("upper/X", "X"),
            ("ghcr.io/Owner/r", "Owner"),
            ("x:tag@sha256:short", "digest"),
            ("x@sha256:", "digest"),
            ("x@md5:abc", "digest"),
            (long_repo.as_str(), "at most 255"),
            (long_tag.as_str(), "at most 128"),
            ("x:", "empty tag"),
            ("x:.hidden", "tag"),
            ("x:a/b", "\"x:a\""),
            ("/x", "component"),
            ("x/", "component"),
            ("a b", "whitespace"),
            ("x\n", "whitespace"),
            ("ftp://host/x", "only http"),
            ("http://alpine", "scheme must be followed"),
            ("host:99999/x", "host:99999"),
            ("a:b/c", "a:b"),
            ("ghcr.io/", "empty"),
            ("x@", "digest"),
            // A port is digits; a host is labels with '-' only inside.
            ("example.com:/x", "port \"\" is not digits"),
            ("http://example.com:/x", "port"),
            ("my_host.example/x", "\"my_host\""),
            ("a..example/x", "label \"\""),
            ("example./x", "label \"\""),
            ("-a.example/x", "\"-a\""),
            ("[::ffff:1.2.3.4]:5000/x", "IPv6"),
            ("[::1]x/y", "expected ':'"),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "image ID",
            ),
        ] {
            let e = ImageRef::parse(input).expect_err(input);
            assert_eq!(e.kind, crate::stevedore::ErrorKind::BadInput, "{input}");
            assert!(e.message.contains(says), "{input:?}: {}", e.message);
        }
    }
}
