//! Generates the built-in kinds' schemas (k8s-openapi through schemars)
//! once, at build time, into `$OUT_DIR/builtin.json`, which `builtin.rs`
//! embeds. Why: see `skiff-openapi-builtin`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("builtin.json");
    let json = serde_json::to_string(&skiff_openapi_builtin::export())?;
    std::fs::write(out, json)?;
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
