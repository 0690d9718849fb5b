//! Writes `include/tank.h` from the `extern "C"` items in `src/ffi`.

use std::path::PathBuf;

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for watched in ["src/ffi", "src/lib.rs", "cbindgen.toml"] {
        println!("cargo:rerun-if-changed={watched}");
    }
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is readable");
    cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/tank.h")
        .write_to_file(root.join("include/tank.h"));
}
