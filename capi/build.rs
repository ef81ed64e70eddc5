//! Generates the C header from `src/lib.rs` with cbindgen into `OUT_DIR/avm.h`. The committed
//! `include/avm.h` is checked against it by a test (`AVM_BLESS=1` rewrites it), so a change of
//! the API cannot leave C users with a stale header.
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("avm.h");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("capi/cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate avm.h from src/lib.rs")
        .write_to_file(&out);
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
}
