//! Errors of the patch entry points.
//!
//! Messages follow upstream's wording where upstream has one, because clients
//! (and people) match on them; [`PatchError::status_code`] says which HTTP
//! status upstream's API server answers with, so the server can build its
//! `metav1.Status` without knowing the patch internals.

use thiserror::Error;

use crate::apply::ApplyError;

/// Why a patch could not be applied.
#[derive(Debug, Error)]
pub enum PatchError {
    /// The body is not valid for its patch type (400).
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch operation failed: a `test` that did not match or a path
    /// that does not exist (422, like upstream).
    #[error("{0}")]
    Unprocessable(String),
    /// The patch type is not served for this resource (415): strategic merge
    /// patch without a schema (custom resources), or CBOR apply.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The JSON patch has more operations than upstream allows (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit, 10000 like upstream.
        max: usize,
        /// How many the patch had.
        got: usize,
    },
    /// Strategic merge patch failed; see the inner error for the status.
    #[error(transparent)]
    Strategic(#[from] StrategicMergeError),
    /// Server-side apply failed (conflicts are 409).
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl PatchError {
    /// The HTTP status upstream's API server answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::UnsupportedMediaType(_) => 415,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Strategic(e) => e.status_code(),
            PatchError::Apply(e) => e.status_code(),
        }
    }
}

/// Strategic merge patch errors, worded like `k8s.io/apimachinery`'s
/// `mergepatch` and `strategicpatch` packages.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StrategicMergeError {
    /// The original or the patch is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A list whose items are lists.
    #[error("lists of lists are not supported")]
    NoListOfLists,
    /// A `$deleteFromPrimitiveList/<field>` that is malformed.
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// A `$retainKeys` that is not a list, or a patch key missing from it.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    /// A `$setElementOrder/<field>` that is malformed.
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// An item of a merging list lacks the merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The item, as JSON.
        map: String,
        /// The merge key.
        key: String,
    },
    /// A value has the wrong JSON type for where it appears.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// What was expected.
        expected: &'static str,
        /// What came.
        actual: &'static str,
    },
    /// A `$patch` directive with an unknown value.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType {
        /// The directive's value.
        directive: String,
        /// The map it appeared in, as JSON.
        map: String,
    },
    /// `$patch: merge` inside a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A `merge` list of maps without a merge key in the schema.
    #[error("cannot merge lists without merge key for {0}")]
    NoMergeKeyInSchema(String),
    /// A list mixing items of different JSON types.
    #[error("list element types are not identical: {0}")]
    MixedListElements(String),
    /// `$setElementOrder` disagrees with the order of the patch list.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    SetElementOrderMismatch {
        /// The patch list, as JSON.
        patch: String,
        /// The order list, as JSON.
        order: String,
    },
    /// An `x-kubernetes-patch-strategy` this implementation does not know.
    #[error("unexpected patch strategy: {0}")]
    UnexpectedPatchStrategy(String),
}

impl StrategicMergeError {
    /// Upstream's `interpretStrategicMergePatchError`: format errors are 400,
    /// lists of lists 422, and everything else falls through as a 500.
    pub fn status_code(&self) -> u16 {
        use StrategicMergeError::*;
        match self {
            BadJsonDoc
            | BadPatchFormatForPrimitiveList
            | BadPatchFormatForRetainKeys
            | BadPatchFormatForSetElementOrderList => 400,
            NoListOfLists => 422,
            _ => 500,
        }
    }
}

/// A JSON type name in the style of Go's `reflect.TypeOf` for decoded JSON,
/// for [`StrategicMergeError::BadArgType`].
pub(crate) fn go_type_name(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}
