//! Dumps schemas or documents for development checks (see `tools/`).
//!
//! `dump raw` prints k8s-openapi's schemas for every built-in kind before any
//! upstream fixups; `dump doc api/v1` prints that group-version's document
//! for [`skiff_openapi::builtin_kinds`]; `dump root` prints the root index;
//! `dump export DIR` writes the root index and every document under `DIR`
//! (`DIR/openapi/v3.json`, `DIR/openapi/v3/api/v1.json`, ...) for
//! `tools/fake_apiserver.py`.
use skiff_openapi::{GroupVersion, OpenApi, builtin_kinds, group_version_document};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match (args.first().map(String::as_str), args.get(1)) {
        (Some("raw"), _) => skiff_openapi::__dev::raw_definitions(),
        (Some("doc"), Some(path)) => match GroupVersion::from_path(path) {
            Some(gv) => group_version_document(&gv, &builtin_kinds()),
            None => usage(),
        },
        (Some("export"), Some(dir)) => {
            export(std::path::Path::new(dir));
            return;
        }
        (Some("root"), _) => {
            let bytes = OpenApi::new(builtin_kinds()).root_index();
            serde_json::from_slice(&bytes).unwrap_or_default()
        }
        _ => usage(),
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

fn export(dir: &std::path::Path) {
    let api = OpenApi::new(builtin_kinds());
    let write = |path: std::path::PathBuf, bytes: &[u8]| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    };
    write(dir.join("openapi/v3.json"), &api.root_index());
    for gv in api.group_versions() {
        let doc = api.document(gv).unwrap_or_default();
        write(dir.join(format!("openapi/v3/{}.json", gv.path())), &doc);
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: dump raw | dump doc <api/v1|apis/GROUP/VERSION> | dump root | dump export DIR"
    );
    std::process::exit(2)
}
