//! Generates the built-in kinds' schemas (k8s-openapi through schemars)
//! once, at build time, as Rust statics in `$OUT_DIR/builtin.rs`, which
//! `builtin.rs` includes. Why: see `skiff-openapi-builtin`.
//!
//! Each definition is kept as its JSON text, sorted by name: the running
//! server parses only the definitions a group-version document needs, when
//! it needs them, and holds nothing for the others.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let export = skiff_openapi_builtin::export();
    let mut src = String::new();
    src.push_str("/// All built-in kinds, listable resources first.\n");
    src.push_str("pub(crate) static BUILTINS: &[Builtin] = &[\n");
    for k in export["kinds"].as_array().ok_or("kinds")? {
        let s = |f: &str| k[f].as_str().unwrap_or_default().to_string();
        let list_kind = match k["list_kind"].as_str() {
            Some(l) => format!("Some({l:?})"),
            None => "None".into(),
        };
        writeln!(
            src,
            "    Builtin {{ group: {:?}, version: {:?}, kind: {:?}, plural: {:?}, scope: Scope::{}, list_kind: {list_kind}, name: {:?} }},",
            s("group"),
            s("version"),
            s("kind"),
            s("plural"),
            s("scope"),
            s("name"),
        )?;
    }
    src.push_str("];\n\n/// Definition names every group-version document carries.\n");
    src.push_str("pub(crate) static META: &[&str] = &[\n");
    for m in export["meta"].as_array().ok_or("meta")? {
        writeln!(src, "    {:?},", m.as_str().unwrap_or_default())?;
    }
    src.push_str("];\n\n/// (definition name, its JSON), sorted by name.\n");
    src.push_str("pub(crate) static DEFINITIONS: &[(&str, &str)] = &[\n");
    let defs = export["definitions"].as_object().ok_or("definitions")?;
    let mut names: Vec<&String> = defs.keys().collect();
    names.sort();
    for name in names {
        let json = serde_json::to_string(&defs[name.as_str()])?;
        writeln!(src, "    ({name:?}, {json:?}),")?;
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("builtin.rs");
    std::fs::write(out, src)?;
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
