//! Raw schemas for a set of built-in kinds, before upstream fixups: the
//! build-time definitions (see [`crate::builtin`]) reachable from them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::builtin::{Builtin, GENERATED};
use crate::components::REF_PREFIX;

/// The definitions reachable from `builtins` and, with `meta`, from the
/// definitions every group-version document carries (DeleteOptions, Status,
/// Patch, APIResourceList, ListMeta, ObjectMeta, WatchEvent), keyed by
/// upstream name, with `$ref`s of the form `#/components/schemas/<name>`.
///
/// This is exactly what schemars generates for those roots alone (a test
/// compares the two), without running it.
pub(crate) fn definitions<'a>(
    builtins: impl IntoIterator<Item = &'a Builtin>,
    meta: bool,
) -> Map<String, Value> {
    let all = &GENERATED.definitions;
    let mut todo: Vec<&str> = builtins.into_iter().map(|b| b.name.as_str()).collect();
    if meta {
        todo.extend(GENERATED.meta.iter().map(String::as_str));
    }
    let mut seen = BTreeSet::new();
    let mut out = Map::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name) {
            continue;
        }
        let Some(schema) = all.get(name) else {
            continue;
        };
        refs(schema, &mut todo);
        out.insert(name.to_string(), schema.clone());
    }
    out
}

/// Pushes the definition names `schema` refers to.
fn refs<'a>(schema: &'a Value, into: &mut Vec<&'a str>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(REF_PREFIX) {
                            into.push(name);
                        }
                    }
                    _ => refs(v, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;
    use skiff_openapi_builtin as generator;

    /// The embedded closure of each kind is what schemars produces for that
    /// kind alone: the build-time export loses nothing and adds nothing.
    #[test]
    fn reachable_definitions_equal_generating_each_kind_alone() {
        assert_eq!(builtin::all().len(), generator::BUILTINS.len());
        for (embedded, source) in builtin::all().iter().zip(generator::BUILTINS) {
            assert_eq!(
                (embedded.group.as_str(), embedded.version.as_str()),
                (source.group, source.version)
            );
            assert_eq!(embedded.kind, source.kind);
            let ours = definitions([embedded], true);
            let theirs = generator::definitions([source], generator::META_ROOTS);
            assert_eq!(ours, theirs, "{}", embedded.kind);
        }
    }

    #[test]
    fn without_meta_only_the_kind_and_its_references() {
        let pod = builtin::find("", "v1", "Pod").expect("Pod");
        let defs = definitions([pod], false);
        assert!(defs.contains_key("io.k8s.api.core.v1.Pod"));
        assert!(defs.contains_key("io.k8s.api.core.v1.Container"));
        assert!(!defs.contains_key("io.k8s.api.apps.v1.Deployment"));
        assert!(!defs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.Status"));
    }
}
