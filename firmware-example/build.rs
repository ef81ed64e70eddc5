//! Puts memory.x on the linker's search path, adds defmt's linker script with the `defmt`
//! feature, and rebuilds when the embedded data changes.
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    if std::env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
    for f in ["memory.x", "data/detector.avmb", "data/flight_segment.avmq"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
