//! The API server's entry points: the patch type from `Content-Type`, body
//! decoding, and one function per use (plain patch, or patch with field
//! ownership and server-side apply).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::apply::{self, ManagerOptions};
use crate::error::PatchError;
use crate::json::json_patch;
use crate::merge::merge_patch;
use crate::schema::SchemaNode;
use crate::strategic::strategic_merge;

/// A `PATCH` request's body format, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply; JSON bodies too).
    ApplyYaml,
    /// `application/apply-patch+cbor`: recognised, not supported.
    ApplyCbor,
}

impl PatchType {
    /// Every type, in upstream's order of advertisement.
    pub const ALL: [PatchType; 5] = [
        PatchType::Json,
        PatchType::Merge,
        PatchType::StrategicMerge,
        PatchType::ApplyYaml,
        PatchType::ApplyCbor,
    ];

    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::ApplyYaml => "application/apply-patch+yaml",
            PatchType::ApplyCbor => "application/apply-patch+cbor",
        }
    }

    /// Parses a `Content-Type` header value (parameters such as `charset`
    /// are ignored). An unknown type is a 415 listing what is accepted;
    /// `apply-patch+cbor` parses, and [`apply_patch`] answers it with 415.
    pub fn from_content_type(content_type: &str) -> Result<PatchType, PatchError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        PatchType::ALL
            .into_iter()
            .find(|t| t.media_type().eq_ignore_ascii_case(media))
            .ok_or_else(|| unsupported(&SUPPORTED))
    }
}

impl fmt::Display for PatchType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.media_type())
    }
}

impl FromStr for PatchType {
    type Err = PatchError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PatchType::from_content_type(s)
    }
}

/// What built-in kinds accept.
const SUPPORTED: [PatchType; 4] = [
    PatchType::Json,
    PatchType::Merge,
    PatchType::StrategicMerge,
    PatchType::ApplyYaml,
];

/// What kinds without a strategic merge schema (custom resources) accept.
const SUPPORTED_WITHOUT_SCHEMA: [PatchType; 3] =
    [PatchType::Json, PatchType::Merge, PatchType::ApplyYaml];

/// Upstream's `UnsupportedMediaTypeError` message.
fn unsupported(accepted: &[PatchType]) -> PatchError {
    let list: Vec<&str> = accepted.iter().map(|t| t.media_type()).collect();
    PatchError::UnsupportedMediaType(format!(
        "the body of the request was in an unknown format - accepted media types include: {}",
        list.join(", ")
    ))
}

/// Decodes a JSON patch body; invalid JSON is upstream's 400
/// `invalid JSON patch`.
pub fn parse_json_body(body: &[u8]) -> Result<Value, PatchError> {
    serde_json::from_slice(body)
        .map_err(|_| PatchError::BadRequest("invalid JSON patch".to_string()))
}

/// Decodes an apply body: JSON (what kubectl sends) first, YAML otherwise.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, PatchError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| PatchError::BadRequest(format!("error decoding YAML: {e}")))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| PatchError::BadRequest(format!("error decoding YAML: {e}")))
}

/// Applies a patch that needs no field manager (JSON, merge, strategic
/// merge) to a copy of `original`. `schema` is the kind's schema; without
/// one, strategic merge patch is refused with 415 as upstream does for
/// custom resources. Apply bodies need a manager: use [`patch_object`].
pub fn apply_patch(
    kind: PatchType,
    original: &Value,
    patch_body: &[u8],
    schema: Option<SchemaNode<'_>>,
) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => json_patch(original, &parse_json_body(patch_body)?),
        PatchType::Merge => merge_patch(original, &parse_json_body(patch_body)?),
        PatchType::StrategicMerge => {
            let Some(schema) = schema else {
                return Err(unsupported(&SUPPORTED_WITHOUT_SCHEMA));
            };
            strategic_merge(original, &parse_json_body(patch_body)?, schema)
        }
        PatchType::ApplyYaml => Err(PatchError::BadRequest(
            "fieldManager: Required value: is required for apply patch".to_string(),
        )),
        PatchType::ApplyCbor => Err(unsupported(if schema.is_some() {
            &SUPPORTED
        } else {
            &SUPPORTED_WITHOUT_SCHEMA
        })),
    }
}

/// Who patches, and how (the `PATCH` query parameters and the clock).
#[derive(Clone, Copy, Debug)]
pub struct PatchOptions<'a> {
    /// `fieldManager`, subresource, time and reset fields.
    pub manager: ManagerOptions<'a>,
    /// `force` (apply only).
    pub force: bool,
}

/// The whole `PATCH`: applies the patch to `live` (`None` when the object
/// does not exist, which only apply accepts) and brings
/// `metadata.managedFields` up to date. `schema` is the kind's schema; for
/// custom resources pass their schema too (strategic merge is still
/// refused when `smp_allowed` is false, as upstream does for them).
pub fn patch_object(
    kind: PatchType,
    live: Option<&Value>,
    patch_body: &[u8],
    schema: SchemaNode<'_>,
    smp_allowed: bool,
    opts: &PatchOptions<'_>,
) -> Result<Value, PatchError> {
    match kind {
        PatchType::ApplyYaml => {
            let applied = parse_apply_body(patch_body)?;
            Ok(apply::apply_with(
                live,
                &applied,
                opts.force,
                schema,
                &opts.manager,
            )?)
        }
        _ => {
            let Some(live) = live else {
                return Err(PatchError::BadRequest(
                    "the object to patch does not exist".to_string(),
                ));
            };
            let smp_schema = smp_allowed.then_some(schema);
            let patched = apply_patch(kind, live, patch_body, smp_schema)?;
            Ok(apply::update_managed_fields_with(
                Some(live),
                patched,
                schema,
                &opts.manager,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_schemas::{defs, node};
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json").unwrap(),
            PatchType::Json
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8").unwrap(),
            PatchType::Merge
        );
        assert_eq!(
            "application/strategic-merge-patch+json"
                .parse::<PatchType>()
                .unwrap(),
            PatchType::StrategicMerge
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml").unwrap(),
            PatchType::ApplyYaml
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+cbor").unwrap(),
            PatchType::ApplyCbor
        );
        let err = PatchType::from_content_type("text/plain").unwrap_err();
        assert_eq!(err.status_code(), 415);
        assert_eq!(
            err.to_string(),
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
        );
    }

    #[test]
    fn one_entry_point_for_plain_patches() {
        let d = defs();
        let n = node(&d, "Service");
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]}});
        let out = apply_patch(
            PatchType::StrategicMerge,
            &svc,
            br#"{"spec":{"ports":[{"port":443}]}}"#,
            Some(n),
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 2);
        let out = apply_patch(
            PatchType::Merge,
            &svc,
            br#"{"spec":{"ports":[{"port":443}]}}"#,
            None,
        )
        .unwrap();
        assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 1);
        let out = apply_patch(
            PatchType::Json,
            &svc,
            br#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#,
            None,
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"]["a"], "b");

        let smp = apply_patch(PatchType::StrategicMerge, &svc, b"{}", None).unwrap_err();
        assert_eq!(smp.status_code(), 415);
        assert!(
            smp.to_string()
                .ends_with("application/merge-patch+json, application/apply-patch+yaml")
        );
        assert_eq!(
            apply_patch(PatchType::ApplyCbor, &svc, b"", Some(n))
                .unwrap_err()
                .status_code(),
            415
        );
        assert_eq!(
            apply_patch(PatchType::Merge, &svc, b"{nope", None)
                .unwrap_err()
                .to_string(),
            "invalid JSON patch"
        );
    }

    #[test]
    fn patch_object_tracks_managers_and_applies_yaml() {
        let d = defs();
        let n = node(&d, "Deployment");
        let opts = |m| PatchOptions {
            manager: ManagerOptions::new(m, "2024-01-01T00:00:00Z"),
            force: false,
        };
        let yaml =
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  labels: {app: d}\nspec:\n  replicas: 2\n";
        let live =
            patch_object(PatchType::ApplyYaml, None, yaml, n, true, &opts("kubectl")).unwrap();
        assert_eq!(live["spec"]["replicas"], 2);
        let scaled = patch_object(
            PatchType::Merge,
            Some(&live),
            br#"{"spec":{"replicas":3}}"#,
            n,
            true,
            &opts("kubectl-scale"),
        )
        .unwrap();
        assert_eq!(
            scaled["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let err = patch_object(
            PatchType::ApplyYaml,
            Some(&scaled),
            yaml,
            n,
            true,
            &opts("kubectl"),
        )
        .unwrap_err();
        assert_eq!(err.status_code(), 409);
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas"#
        );
        let bad = patch_object(
            PatchType::ApplyYaml,
            None,
            b"a: [b",
            n,
            true,
            &opts("kubectl"),
        )
        .unwrap_err();
        assert_eq!(bad.status_code(), 400);
    }
}
