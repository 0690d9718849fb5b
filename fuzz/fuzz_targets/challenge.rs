#![no_main]
//! WWW-Authenticate parsing never panics or loops, and what it returns is
//! well formed: non-empty schemes, lowercase parameter names.
use libfuzzer_sys::fuzz_target;
use tank::stevedore::challenge;

fuzz_target!(|input: &str| {
    for c in challenge::parse(input) {
        assert!(!c.scheme.is_empty());
        for (name, _) in &c.params {
            assert!(!name.is_empty());
            assert_eq!(name, &name.to_ascii_lowercase());
        }
    }
});
