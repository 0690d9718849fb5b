#![no_main]
//! Registry, repository and reference parsing never panic, and whatever
//! they accept builds a URL whose path is exactly the names given: nothing
//! is escaped, normalised away or smuggled into the query.
use libfuzzer_sys::fuzz_target;
use tank::stevedore::{Registry, Repository, TagOrDigest};

fuzz_target!(|input: &str| {
    let mut parts = input.splitn(3, '\n');
    let (registry, repo, reference) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let registry = Registry::parse(registry);
    let repo = Repository::parse(repo);
    let reference = TagOrDigest::parse(reference);
    if let (Ok(registry), Ok(repo), Ok(reference)) = (registry, repo, reference) {
        let url = registry.manifest_url(&repo, &reference);
        assert_eq!(
            url.path(),
            format!("/v2/{}/manifests/{reference}", repo.as_str())
        );
        assert!(url.query().is_none() && url.fragment().is_none());
        assert!(matches!(url.scheme(), "http" | "https"));
    }
});
