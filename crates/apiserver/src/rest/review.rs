//! Create-only virtual kinds: access reviews and token reviews. Nothing is
//! stored; the answer is the request with its status filled in.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};

use super::Req;
use crate::App;
use crate::error::ApiResult;
use crate::wire::{self, Body};

/// Until RBAC lands every authenticated user is allowed everything, which
/// is what the only credential that exists (the admin certificate, group
/// `system:masters`) is allowed upstream too.
pub fn create(_app: &Arc<App>, req: &Req, mut obj: Value) -> ApiResult<Response<Body>> {
    let user = &req.user;
    let status = match req.kind.kind.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            json!({"allowed": true, "reason": "skiff: authenticated users are cluster administrators until RBAC is enabled"})
        }
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        "SelfSubjectReview" => json!({"userInfo": {"username": user.name, "groups": user.groups}}),
        "TokenReview" => {
            json!({"authenticated": false, "error": "token authentication is not enabled"})
        }
        _ => json!({}),
    };
    obj["status"] = status;
    Ok(wire::json(201, &super::write::created(obj)))
}
