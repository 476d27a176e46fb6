//! Raw schema generation with schemars, before upstream fixups.

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

use crate::builtin::Builtin;

/// Adds one type's schema (and what it references) to a generator.
pub(crate) type Root = fn(&mut SchemaGenerator) -> Schema;

fn root<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Definitions every group-version document carries: what its operations
/// reference (DeleteOptions, Status, Patch, APIResourceList), what list kinds
/// and custom resources reference (ListMeta, ObjectMeta), and WatchEvent,
/// which upstream marks with a GVK in every group-version.
pub(crate) const META_ROOTS: &[Root] = &[
    root::<meta::APIResourceList>,
    root::<meta::DeleteOptions>,
    root::<meta::ListMeta>,
    root::<meta::ObjectMeta>,
    root::<meta::Patch>,
    root::<meta::Status>,
    // The type parameter does not change the schema.
    root::<meta::WatchEvent<meta::Status>>,
];

/// Generates the definitions reachable from `builtins` and `extra`, keyed by
/// upstream name, with `$ref`s of the form `#/components/schemas/<name>`.
///
/// schemars' OpenAPI 3 settings already turn `$ref` with siblings (a field's
/// description) into `allOf: [{$ref}]`, which is what upstream emits too.
pub(crate) fn definitions<'a>(
    builtins: impl IntoIterator<Item = &'a Builtin>,
    extra: &[Root],
) -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    for b in builtins {
        (b.generate)(&mut generator);
    }
    for r in extra {
        r(&mut generator);
    }
    generator.take_definitions(true)
}
