//! The schema table: for every Kubernetes protobuf message, its fields' wire
//! layout joined with the Go JSON facts that decide the JSON form.
//!
//! `generated.rs` is produced by `gen/gen_schema.py` from the upstream
//! `generated.proto` files (wire layout) and Go `types.go` (JSON names,
//! `omitempty`, pointers, embedded structs). It is plain static data, so it
//! costs little to compile and nothing to initialise, and the decoder and
//! encoder stay generic: no per-kind code.

#[rustfmt::skip]
mod generated;

use generated::{KINDS, MESSAGES};

/// A field's element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    /// `string`: UTF-8 text.
    S,
    /// `bytes`: base64 in JSON (Go `[]byte`).
    B,
    /// `bool`.
    Z,
    /// `int32`.
    I32,
    /// `int64`.
    I64,
    /// `double`.
    F64,
    /// A message, by index into the table.
    M(u16),
}

/// A field's cardinality.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Card {
    /// `optional`/`required`: at most one value (a later one wins).
    One,
    /// `repeated`: a JSON array.
    Repeated,
    /// `map<string, ty>`: a JSON object with sorted keys, as Go writes maps.
    Map,
}

/// How a message appears in JSON. Everything but `Object` is a Go type with
/// its own `MarshalJSON`, or a named slice type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// A Go struct: a JSON object built from `fields`.
    Object,
    /// `metav1.Time` `{seconds, nanos}`: RFC 3339 in whole seconds, or null.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with six fractional digits, or null.
    MicroTime,
    /// `metav1.Duration` `{duration}` in nanoseconds: Go's `"1h2m3s"` form.
    Duration,
    /// `resource.Quantity` `{string}`: the string.
    Quantity,
    /// `intstr.IntOrString` `{type, intVal, strVal}`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `metav1.FieldsV1`, apiextensions `JSON`:
    /// field 1 holds JSON (or a nested `k8s\0` protobuf object), inlined.
    RawJson,
    /// A Go named slice (`Verbs`, `ExtraValue`): field 1's items as an array.
    List,
    /// `JSONSchemaPropsOrArray` `{schema, jSONSchemas}`.
    PropsOrArray,
    /// `JSONSchemaPropsOrBool` `{allows, schema}`.
    PropsOrBool,
    /// `JSONSchemaPropsOrStringArray` `{schema, property}`.
    PropsOrStringArray,
}

/// One field of a message, in Go struct order (the JSON key order).
#[derive(Debug)]
pub(crate) struct Field {
    pub tag: u32,
    /// The JSON name; empty for an inlined embedded struct.
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    pub flags: u8,
}

/// `json:",omitempty"`: a zero scalar, empty slice or empty map is left out.
pub(crate) const OMITEMPTY: u8 = 1;
/// The Go field is a pointer: when it is on the wire it is set, even if zero.
pub(crate) const POINTER: u8 = 2;
/// An embedded struct whose fields Go promotes into the parent object.
pub(crate) const INLINE: u8 = 4;
/// `json:",omitzero"` (Go 1.24): a zero value is left out.
pub(crate) const OMITZERO: u8 = 8;

impl Field {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// One message type.
#[derive(Debug)]
pub(crate) struct Message {
    /// The full protobuf name, e.g. `k8s.io.api.core.v1.Pod`.
    pub name: &'static str,
    pub form: Form,
    pub fields: &'static [Field],
}

impl Message {
    pub(crate) fn field(&self, tag: u32) -> Option<(usize, &'static Field)> {
        self.fields.iter().enumerate().find(|(_, f)| f.tag == tag)
    }
}

/// Shortens the generated table's rows.
const fn f(tag: u32, json: &'static str, ty: Ty, card: Card, flags: u8) -> Field {
    Field {
        tag,
        json,
        ty,
        card,
        flags,
    }
}

/// The message with this table index. Indices come from the table itself,
/// so they are always in range; the fallback only keeps this total.
pub(crate) fn message(index: u16) -> &'static Message {
    MESSAGES.get(usize::from(index)).unwrap_or(&EMPTY)
}

static EMPTY: Message = Message {
    name: "",
    form: Form::Object,
    fields: &[],
};

/// The message for a top-level `apiVersion`/`kind`.
///
/// Like the Go API server, the `meta.k8s.io/v1` kinds (`Status`,
/// `DeleteOptions`, `WatchEvent`, …) are also accepted under any group
/// version, since Go registers them into every group version.
pub(crate) fn kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    let find = |av: &str| {
        KINDS
            .binary_search_by(|(a, k, _)| (*a, *k).cmp(&(av, kind)))
            .ok()
            .and_then(|i| KINDS.get(i))
            .map(|(_, _, m)| message(*m))
    };
    find(api_version).or_else(|| find("meta.k8s.io/v1"))
}

/// Every registered `(apiVersion, kind)`, for callers that list them.
pub fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(a, k, _)| (*a, *k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_sorted_and_unique() {
        assert!(
            KINDS
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
    }

    #[test]
    fn message_indices_are_in_range() {
        for m in MESSAGES.iter() {
            for f in m.fields {
                if let Ty::M(i) = f.ty {
                    assert!(usize::from(i) < MESSAGES.len(), "{}", m.name);
                }
            }
        }
        for (_, _, i) in KINDS.iter() {
            assert!(usize::from(*i) < MESSAGES.len());
        }
    }

    #[test]
    fn core_kinds_resolve() {
        assert_eq!(
            kind("v1", "Namespace").unwrap().name,
            "k8s.io.api.core.v1.Namespace"
        );
        assert_eq!(
            kind("apps/v1", "Deployment").unwrap().name,
            "k8s.io.api.apps.v1.Deployment"
        );
        assert_eq!(
            kind("apps/v1", "DeleteOptions").unwrap().name,
            "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"
        );
        assert!(kind("v1", "NoSuchKind").is_none());
    }
}
