//! Dumps schemas or documents for development checks (see `tools/`).
//!
//! `dump raw` prints k8s-openapi's schemas for every built-in kind before any
//! upstream fixups; `dump doc api/v1` prints that group-version's document
//! for [`skiff_openapi::builtin_kinds`]; `dump root` prints the root index.
use skiff_openapi::{GroupVersion, OpenApi, builtin_kinds, group_version_document};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match (args.first().map(String::as_str), args.get(1)) {
        (Some("raw"), _) => skiff_openapi::__dev::raw_definitions(),
        (Some("doc"), Some(path)) => match GroupVersion::from_path(path) {
            Some(gv) => group_version_document(&gv, &builtin_kinds()),
            None => usage(),
        },
        (Some("root"), _) => {
            let bytes = OpenApi::new(builtin_kinds()).root_index();
            serde_json::from_slice(&bytes).unwrap_or_default()
        }
        _ => usage(),
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

fn usage() -> ! {
    eprintln!("usage: dump raw | dump doc <api/v1|apis/GROUP/VERSION> | dump root");
    std::process::exit(2)
}
