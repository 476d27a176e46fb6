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
    // Link order (release builds): the functions an idle server and agent
    // keep running first and together, so what they fault back in after
    // dropping their start-up pages is a few contiguous MiB (see
    // `src/code_pages.rs` and `scripts/order-file`). Names the build no
    // longer has are skipped, so a stale list costs memory, not errors.
    // The manifest directory as cargo gives it when the script runs (not
    // when it was compiled: one compiled script serves every worktree
    // that shares a target directory).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = std::path::Path::new(&manifest_dir).join("skiff.order");
    // rust-lld is the default linker of this target only (Rust >= 1.90);
    // GNU ld does not know the option.
    let lld_target = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    if lld_target && std::env::var("PROFILE").as_deref() == Ok("release") && order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rerun-if-changed=skiff.order");
    println!("cargo:rerun-if-changed=build.rs");
}
