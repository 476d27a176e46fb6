//! Whole OpenAPI v3 documents: the root index and per-group-version documents.

use serde_json::{Map, Value, json};

use crate::kinds::{GroupVersion, KindInfo};
use crate::{components, paths};

/// Builds the OpenAPI 3.0 document for group-version `gv`, as served at
/// `/openapi/v3/<gv.path()>`: paths for every kind in `kinds` of that
/// group-version (others are ignored), and `components.schemas` with every
/// definition they reach.
///
/// Kinds with [`KindInfo::schema`] set (custom resources) are documented
/// from that schema under [`components::custom_definition_name`]; others
/// from their k8s-openapi type. Object keys are sorted, as upstream's are,
/// so the serialized bytes (and their hash) depend only on the content.
pub fn group_version_document(gv: &GroupVersion, kinds: &[KindInfo]) -> Value {
    let mut kinds: Vec<&KindInfo> = kinds
        .iter()
        .filter(|k| k.group == gv.group && k.version == gv.version)
        .collect();
    kinds.sort_by(|a, b| a.kind.cmp(&b.kind));
    let mut doc = json!({
        "components": {
            "schemas": components::build(gv, &kinds),
            "securitySchemes": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
        },
        "info": { "title": "Kubernetes", "version": "unversioned" },
        "openapi": "3.0.0",
        "paths": paths::build(gv, &kinds),
        "security": [{ "BearerToken": [] }],
    });
    sort_keys(&mut doc);
    doc
}

/// Serializes a group-version document and returns its bytes and their hash.
pub(crate) fn serialize(doc: &Value) -> (Vec<u8>, String) {
    let mut bytes = serde_json::to_vec(doc).unwrap_or_default();
    // The buffer grew by doubling; don't keep up to twice the document.
    bytes.shrink_to_fit();
    let hash = content_hash(&bytes);
    (bytes, hash)
}

/// The root index served at `/openapi/v3`: for each group-version its path
/// and the URL of its document, which carries the document's content hash
/// so clients may cache it for as long as the hash is unchanged.
///
/// `gvs` pairs each group-version with its hash (see [`crate::OpenApi`],
/// which computes and caches them).
pub fn root_index<'a>(gvs: impl IntoIterator<Item = (&'a GroupVersion, &'a str)>) -> Value {
    let paths: Map<String, Value> = gvs
        .into_iter()
        .map(|(gv, hash)| {
            let path = gv.path();
            let url = format!("/openapi/v3/{path}?hash={hash}");
            (path, json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// A stable hash of a document's bytes: 128-bit FNV-1a, upper-case hex.
/// Not cryptographic; it only has to change when the content changes.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u128::from(*b)).wrapping_mul(PRIME));
    format!("{hash:032X}")
}

/// Sorts every object's keys, recursively. Our `serde_json` keeps insertion
/// order (the workspace enables `preserve_order`), and schemars and our own
/// code insert in no particular order.
fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_content_sensitive() {
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
        assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
        assert_eq!(content_hash(b"").len(), 32);
    }
}
