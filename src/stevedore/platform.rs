//! Which image of an index a pull takes: `os/arch[/variant]`, normalized
//! as containerd does (`aarch64` is `arm64`, which means `arm64/v8`; `arm`
//! means `arm/v7`), compared exactly after that, so an `arm/v6` request
//! never gets an `arm/v7` image. Attestation entries (`unknown/unknown`)
//! never match.

use super::error::{Error, Result};
use super::manifest::{Descriptor, Platform};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    os: String,
    architecture: String,
    /// Normalized: `None` where the architecture's default is meant.
    variant: Option<String>,
}

impl PlatformSpec {
    pub fn parse(input: &str) -> Result<PlatformSpec> {
        let bad = || {
            let shown: String = input.chars().take(80).collect();
            Error::bad_input(format!(
                "platform {shown:?}: expected os/arch or os/arch/variant, e.g. linux/arm64"
            ))
        };
        let parts: Vec<&str> = input.split('/').collect();
        let word = |s: &&str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(word) {
            return Err(bad());
        }
        Ok(PlatformSpec::normalized(
            parts[0],
            parts[1],
            parts.get(2).copied(),
        ))
    }

    /// The platform this process runs on.
    pub fn host() -> PlatformSpec {
        let arch = match std::env::consts::ARCH {
            "x86" => "386",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            a => a,
        };
        PlatformSpec::normalized(std::env::consts::OS, arch, None)
    }

    fn normalized(os: &str, architecture: &str, variant: Option<&str>) -> PlatformSpec {
        let os = os.to_ascii_lowercase();
        let architecture = architecture.to_ascii_lowercase();
        let variant = variant.map(str::to_ascii_lowercase);
        let (architecture, variant) = match (architecture.as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", None | Some("v1")) => ("amd64".to_owned(), None),
            ("x86_64" | "x86-64", v) => ("amd64".to_owned(), v.map(str::to_owned)),
            ("aarch64" | "arm64", None | Some("v8")) => ("arm64".to_owned(), None),
            ("aarch64", v) => ("arm64".to_owned(), v.map(str::to_owned)),
            ("armhf", None) => ("arm".to_owned(), None),
            ("armel", None) => ("arm".to_owned(), Some("v6".to_owned())),
            ("arm" | "armhf", None | Some("v7")) => ("arm".to_owned(), None),
            ("i386" | "i686", v) => ("386".to_owned(), v.map(str::to_owned)),
            (a, v) => (a.to_owned(), v.map(str::to_owned)),
        };
        PlatformSpec {
            os,
            architecture,
            variant,
        }
    }

    fn of(p: &Platform) -> PlatformSpec {
        PlatformSpec::normalized(&p.os, &p.architecture, p.variant.as_deref())
    }

    pub fn matches(&self, p: &Platform) -> bool {
        !is_attestation(p) && PlatformSpec::of(p) == *self
    }

    /// The first entry of an index for this platform; when there is none,
    /// an error naming the platforms the index has.
    pub fn choose<'a>(&self, entries: &'a [Descriptor]) -> Result<&'a Descriptor> {
        if let Some(d) = entries
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| self.matches(p)))
        {
            return Ok(d);
        }
        let available = platforms_of(entries);
        Err(Error::no_matching_platform(
            format!(
                "no image for {self} in the index; it has {}",
                if available.is_empty() {
                    "no platforms".to_owned()
                } else {
                    available.join(", ")
                }
            ),
            available,
        ))
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match (&self.variant, self.architecture.as_str()) {
            (Some(v), _) => write!(f, "/{v}"),
            (None, "arm64") => f.write_str("/v8"),
            (None, "arm") => f.write_str("/v7"),
            (None, _) => Ok(()),
        }
    }
}

fn is_attestation(p: &Platform) -> bool {
    p.os == "unknown" || p.architecture == "unknown"
}

/// `os/arch[/variant]` of each entry, as the index writes them, without
/// attestations.
pub fn platforms_of(entries: &[Descriptor]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .filter(|p| !is_attestation(p))
        .map(|p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(os: &str, arch: &str, variant: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: format!("{os}/{arch}/{variant:?}"),
            size: 0,
            platform: Some(Platform {
                os: os.into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
            artifact_type: None,
            annotations: Vec::new(),
        }
    }

    #[test]
    fn variants_and_aliases() {
        let index = [
            entry("unknown", "unknown", None),
            entry("linux", "amd64", None),
            entry("linux", "arm64", Some("v8")),
            entry("linux", "arm", Some("v7")),
        ];
        let pick = |s: &str| {
            PlatformSpec::parse(s)
                .unwrap()
                .choose(&index)
                .map(|d| d.digest.clone())
        };
        assert_eq!(pick("linux/amd64").unwrap(), index[1].digest);
        assert_eq!(pick("linux/x86_64").unwrap(), index[1].digest);
        assert_eq!(pick("linux/arm64").unwrap(), index[2].digest);
        assert_eq!(pick("linux/aarch64").unwrap(), index[2].digest);
        assert_eq!(pick("linux/arm64/v8").unwrap(), index[2].digest);
        assert_eq!(pick("linux/arm").unwrap(), index[3].digest);
        assert_eq!(pick("linux/arm/v7").unwrap(), index[3].digest);
        let e = pick("linux/arm/v6").unwrap_err();
        assert_eq!(e.reason.id(), "no_matching_platform");
        assert_eq!(
            e.platforms,
            ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
        );
        assert!(e.message.contains("linux/arm/v6"), "{}", e.message);
        assert!(pick("unknown/unknown").is_err());
        assert!(pick("windows/amd64").is_err());
        // An entry without a variant is the architecture's default.
        let bare = [entry("linux", "arm64", None)];
        let spec = PlatformSpec::parse("linux/arm64/v8").unwrap();
        assert!(spec.choose(&bare).is_ok());
    }

    #[test]
    fn bad_platforms() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/amd 64",
            "linux//v8",
        ] {
            assert!(PlatformSpec::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            PlatformSpec::parse("Linux/ARM64").unwrap().to_string(),
            "linux/arm64/v8"
        );
    }

    #[test]
    fn the_host_is_a_platform() {
        let host = PlatformSpec::host();
        assert_eq!(PlatformSpec::parse(&host.to_string()).unwrap(), host);
    }
}
