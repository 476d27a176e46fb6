//! Link-time settings for the `skiff` binary only (dependencies and test
//! binaries are unaffected, so their build caches stay valid).

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        // Packed relative relocations (DT_RELR, glibc >= 2.36, binutils
        // >= 2.38): the position-independent binary's ~75,000 relative
        // relocations take a few KiB instead of 1.8 MB of `.rela.dyn`,
        // which the loader reads whole at every start, so each Skiff
        // process starts with ~1.8 MB less resident.
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
