//! Raw schemas for a set of built-in kinds, before upstream fixups: the
//! build-time definitions (see [`crate::builtin`]) reachable from them.

use serde_json::{Map, Value};

use crate::builtin::{self, Builtin};
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
    let mut todo: Vec<String> = builtins.into_iter().map(|b| b.name.to_string()).collect();
    if meta {
        todo.extend(builtin::META.iter().map(|m| m.to_string()));
    }
    let mut out = Map::new();
    while let Some(name) = todo.pop() {
        if out.contains_key(&name) {
            continue;
        }
        let Some(schema) = builtin::definition(&name) else {
            continue;
        };
        let mut found = Vec::new();
        refs(&schema, &mut found);
        todo.extend(found.into_iter().map(str::to_string));
        out.insert(name, schema);
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
        assert_eq!(builtin::BUILTINS.len(), generator::BUILTINS.len());
        for (embedded, source) in builtin::BUILTINS.iter().zip(generator::BUILTINS) {
            assert_eq!(
                (embedded.group, embedded.version),
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
