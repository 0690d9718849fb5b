#![no_main]
//! A digest either parses and prints back exactly as given (one spelling per
//! content), or is refused; never a panic.
use libfuzzer_sys::fuzz_target;
use tank::stevedore::Digest;

fuzz_target!(|input: &str| {
    match Digest::parse(input) {
        Ok(d) => {
            assert_eq!(d.to_string(), input);
            assert!(input.starts_with("sha256:") || input.starts_with("sha512:"));
        }
        Err(_) => assert!(Digest::parse_argument("digest", input).is_err()),
    }
});
