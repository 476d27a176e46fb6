//! PATCH bodies and `managedFields`: the request-side glue around
//! `skiff-patch`, which does the work against the kind's OpenAPI schema.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};
use skiff_openapi::{Gvk, Schemas};
use skiff_patch::{ApplyError, ManagerOptions, PatchError, PatchOptions, PatchType, SchemaNode};

use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::rest::Req;
use crate::wire::Body;

/// The kind's schema, when the OpenAPI documents have one.
pub fn schema_for(app: &App, req: &Req) -> Option<(String, Arc<Schemas>)> {
    let gvk = Gvk::new(&*req.kind.group, &*req.kind.version, &*req.kind.kind);
    app.openapi.get().schema_for(&gvk)
}

fn node<'a>(schema: &'a Option<(String, Arc<Schemas>)>) -> SchemaNode<'a> {
    match schema {
        Some((root, schemas)) => {
            // Not `unwrap_or_else(SchemaNode::none)`: that fn item returns
            // `SchemaNode<'static>` and would force the borrow to 'static.
            match SchemaNode::named(root, schemas.definitions()) {
                Some(n) => n,
                None => SchemaNode::none(),
            }
        }
        None => SchemaNode::none(),
    }
}

/// The field manager of a write: the `fieldManager` parameter, else the
/// client's user agent up to its first `/`, as upstream.
pub fn manager(req: &Req) -> String {
    if let Some(m) = req.query.get("fieldManager") {
        return m.to_string();
    }
    let agent = req.header("user-agent").unwrap_or_default();
    let prefix = agent.split('/').next().unwrap_or_default();
    if prefix.is_empty() {
        "unknown".into()
    } else {
        prefix.to_string()
    }
}

/// Fields a write through this endpoint never owns: status on the main
/// resource of kinds with a status subresource, spec through `/status`.
fn reset_fields(req: &Req) -> &'static [&'static [&'static str]] {
    match req.path.subresource.as_deref() {
        Some("status") => &[&["spec"]],
        _ if req.kind.has_sub(skiff_api::kinds::Sub::Status) => &[&["status"]],
        _ => &[],
    }
}

fn status_of(e: PatchError) -> ApiError {
    let code = e.status_code();
    if let PatchError::Apply(ApplyError::Conflict { conflicts }) = &e {
        let causes: Vec<Value> = conflicts
            .0
            .iter()
            .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message(), "field": c.field()}))
            .collect();
        return ApiError {
            details: Some(json!({"causes": causes})),
            ..ApiError::new(409, "Conflict", e.to_string())
        };
    }
    let reason = match code {
        400 => "BadRequest",
        409 => "Conflict",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        _ => "InternalError",
    };
    ApiError::new(code, reason, e.to_string())
}

/// Upstream's checks on the patch request itself.
pub fn check_request(req: &Req, kind: PatchType) -> ApiResult<()> {
    let invalid = |field: &str, msg: &str| {
        ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[skiff_api::validation::FieldError::invalid(
                field,
                Value::Null,
                msg,
            )],
        )
    };
    match kind {
        PatchType::ApplyYaml if req.query.get("fieldManager").is_none() => Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            &[skiff_api::validation::FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )],
        )),
        PatchType::ApplyYaml => Ok(()),
        _ if req.query.get("force").is_some() => {
            Err(invalid("force", "may not be specified for non-apply patch"))
        }
        _ => Ok(()),
    }
}

pub fn patch_type(req: &Req) -> ApiResult<PatchType> {
    PatchType::from_content_type(req.header("content-type").unwrap_or_default()).map_err(status_of)
}

/// Applies a patch (or a server-side apply) to the current object and
/// brings `managedFields` up to date.
pub fn apply(
    app: &App,
    req: &Req,
    kind: PatchType,
    current: Option<&Value>,
    body: &[u8],
) -> ApiResult<Value> {
    let schema = schema_for(app, req);
    let now = crate::object::now();
    let manager = manager(req);
    let opts = PatchOptions {
        manager: ManagerOptions {
            manager: &manager,
            subresource: req.path.subresource.as_deref(),
            now: &now,
            reset_fields: reset_fields(req),
        },
        force: req.query.flag("force"),
    };
    let smp_allowed = req.kind.custom.is_none();
    let mut next =
        skiff_patch::patch_object(kind, current, body, node(&schema), smp_allowed, &opts)
            .map_err(status_of)?;
    if let Some(cur) = current {
        skiff_patch::restore_unchanged_timestamps(cur, &mut next);
    }
    Ok(next)
}

/// A patch without `managedFields` bookkeeping (the scale subresource
/// patches a Scale view; the object's fields are tracked afterwards).
pub fn apply_plain(kind: PatchType, current: &Value, body: &[u8]) -> ApiResult<Value> {
    skiff_patch::apply_patch(kind, current, body, None).map_err(status_of)
}

/// Records the writer of an ordinary create or update in `managedFields`.
pub fn track_update(app: &App, req: &Req, old: Option<&Value>, new: Value) -> Value {
    let schema = schema_for(app, req);
    let now = crate::object::now();
    let manager = manager(req);
    let opts = ManagerOptions {
        manager: &manager,
        subresource: req.path.subresource.as_deref(),
        now: &now,
        reset_fields: reset_fields(req),
    };
    let mut next = skiff_patch::update_managed_fields_with(old, new, node(&schema), &opts);
    if let Some(old) = old {
        skiff_patch::restore_unchanged_timestamps(old, &mut next);
    }
    next
}

/// Server-side apply of an object that does not exist yet creates it.
pub async fn apply_create(
    app: &Arc<App>,
    req: &Req,
    name: &str,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let obj = apply(app, req, PatchType::ApplyYaml, None, body)?;
    match crate::object::name(&obj) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => {}
    }
    crate::rest::create_object(app, req, obj, true).await
}
