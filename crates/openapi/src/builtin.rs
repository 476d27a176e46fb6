//! The built-in kinds: every k8s-openapi type that implements `Resource`,
//! with its schema, as `skiff-openapi-builtin` generated them at build time
//! (see `build.rs`). The API server decides which of these it serves; this
//! table only lets a GVK be turned into a schema.

use serde_json::Value;

/// Where a built-in kind's objects live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Namespaced,
    Cluster,
    /// Only a request/response body of some other resource's subresource
    /// (`Scale`, `Eviction`, `TokenRequest`, `Status`).
    Sub,
}

/// One built-in kind.
#[derive(Debug)]
pub(crate) struct Builtin {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// URL segment: the plural for resources, the subresource name otherwise.
    pub plural: &'static str,
    pub scope: Scope,
    /// The `<Kind>List` kind, for kinds that can be listed.
    pub list_kind: Option<&'static str>,
    /// The upstream definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub name: &'static str,
}

// `BUILTINS`, `META` and `DEFINITIONS`, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

/// Finds a built-in kind by group, version and kind.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|b| b.group == group && b.version == version && b.kind == kind)
}

/// One definition's raw schema (before upstream fixups), parsed now.
pub(crate) fn definition(name: &str) -> Option<Value> {
    let i = DEFINITIONS.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
    // build.rs wrote this text from a `serde_json::Value`; this crate's
    // tests parse every one.
    serde_json::from_str(DEFINITIONS[i].1).ok()
}

/// Every definition, parsed: for tests and development tools.
pub(crate) fn all_definitions() -> serde_json::Map<String, Value> {
    DEFINITIONS
        .iter()
        .filter_map(|(n, _)| Some((n.to_string(), definition(n)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_sorted_and_all_parse() {
        assert!(DEFINITIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(all_definitions().len(), DEFINITIONS.len());
        for b in BUILTINS {
            assert!(definition(b.name).is_some(), "{}", b.name);
        }
        for m in META {
            assert!(definition(m).is_some(), "{m}");
        }
    }
}
