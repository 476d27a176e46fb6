//! CREATE, and the checks every write of a new object shares.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};
use skiff_api::kinds::Verbs;
use skiff_api::validation::{FieldError, name_rule, validate_name, validate_object_meta};

use super::Req;
use super::list::{CachedObjectRef, object_response};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::wire::Body;

/// Checks the body's `apiVersion`/`kind` against the URL, filling them in
/// when absent.
pub fn check_type(req: &Req, obj: &mut Value) -> ApiResult<()> {
    let want_api = req.kind.api_version();
    let api = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !kind.is_empty() && kind != req.kind.kind {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): kind {kind} in the request body does not match",
            req.kind.kind
        )));
    }
    if !api.is_empty() && api != want_api {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api}) does not match the expected API version ({want_api})"
        )));
    }
    obj["apiVersion"] = Value::String(want_api);
    obj["kind"] = Value::String(req.kind.kind.clone());
    Ok(())
}

/// Checks the body's namespace against the URL's, filling it in.
pub fn check_namespace(req: &Req, obj: &mut Value) -> ApiResult<()> {
    let m = object::meta_mut(obj);
    match req.namespace() {
        Some(ns) => match m.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                m.insert("namespace".into(), Value::String(ns.to_string()));
                Ok(())
            }
        },
        None => {
            if req.kind.namespaced {
                return Err(ApiError::not_found_path());
            }
            m.remove("namespace");
            Ok(())
        }
    }
}

/// Validates what every kind shares: the name and the metadata maps.
pub fn validate_common(req: &Req, obj: &Value) -> ApiResult<()> {
    let name = object::name(obj).unwrap_or_default();
    let mut errs: Vec<FieldError> = Vec::new();
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        errs.extend(validate_name(
            name_rule(&req.kind.group, &req.kind.kind),
            name,
            "metadata.name",
        ));
    }
    if let Some(meta) = obj.get("metadata") {
        errs.extend(validate_object_meta(meta));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &req.kind.kind,
            &req.kind.group,
            name,
            &errs,
        ))
    }
}

/// The (group, kind) objects of this request are stored as.
fn stored_kind(req: &Req) -> (&str, &str) {
    let k = req.storage.as_deref().unwrap_or(&req.kind);
    (&k.group, &k.kind)
}

/// Applies upstream's defaults to a stored-form object; `create` adds the
/// steps upstream runs only on create.
pub fn apply_defaults(req: &Req, obj: &mut Value, create: bool) {
    if req.kind.custom.is_some() {
        return;
    }
    let (group, kind) = stored_kind(req);
    if create {
        skiff_api::defaults::apply_on_create(group, kind, obj);
    } else {
        skiff_api::defaults::apply(group, kind, obj);
    }
}

/// Validates an object against what its kind requires: a built-in kind
/// against upstream's rules (`old` set on update), a custom resource
/// against its CRD's structural schema.
pub fn validate_kind(req: &Req, old: Option<&Value>, obj: &Value) -> ApiResult<()> {
    let errs = if req.kind.custom.is_none() {
        let (group, kind) = stored_kind(req);
        match old {
            Some(old) => skiff_api::validation::validate_update(group, kind, old, obj),
            None => skiff_api::validation::validate(group, kind, obj),
        }
    } else {
        validate_schema(req, obj)
    };
    if errs.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        &req.kind.kind,
        &req.kind.group,
        object::name(obj).unwrap_or_default(),
        &errs,
    ))
}

fn validate_schema(req: &Req, obj: &Value) -> Vec<skiff_api::validation::FieldError> {
    let Some(schema) = req.kind.custom.as_ref().and_then(|c| c.schema.as_ref()) else {
        return Vec::new();
    };
    let as_requested = req.to_request(obj);
    skiff_api::structural::validate(schema, as_requested.as_ref().unwrap_or(obj))
}

/// A namespaced object may only be created in a namespace that exists and
/// is not terminating.
///
/// The watch cache lags the store by one event delivery, so a namespace
/// created a moment ago may not be in it yet; on a miss this reads the
/// store itself (upstream's NamespaceLifecycle admission does the same
/// live lookup), so a client that creates a namespace and then an object
/// in it never sees a spurious 404.
pub async fn check_namespace_open(app: &App, req: &Req) -> ApiResult<()> {
    let Some(ns) = req.namespace() else {
        return Ok(());
    };
    let key = format!("/registry/core/namespaces/{ns}");
    if let Some(n) = app.cache.get(&key) {
        return check_not_terminating(req, ns, &n.value);
    }
    match app.cache.store().get(&key).await? {
        Some(kv) => {
            let value: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
            check_not_terminating(req, ns, &value)
        }
        None => Err(ApiError::not_found(crate::error::Target {
            group: "",
            plural: "namespaces",
            name: ns,
        })),
    }
}

fn check_not_terminating(req: &Req, ns: &str, value: &Value) -> ApiResult<()> {
    if object::is_deleting(value)
        || value.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
    {
        return Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            req.kind.plural,
            object::name(value).unwrap_or_default()
        )));
    }
    Ok(())
}

pub async fn create(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    let mut obj = super::decode_object(
        req.header("content-type"),
        body,
        (&req.kind.api_version(), &req.kind.kind),
    )?;
    super::validate::field_validation(app, req, body, &mut obj)?;
    check_type(req, &mut obj)?;
    if req.kind.verbs == Verbs::CreateOnly {
        return super::review::create(app, req, obj);
    }
    create_object(app, req, obj, false).await
}

/// Creates a decoded object: the path shared by POST and by a server-side
/// apply of an object that does not exist (whose `managedFields` the apply
/// already wrote).
pub async fn create_object(
    app: &Arc<App>,
    req: &Req,
    obj: Value,
    applied: bool,
) -> ApiResult<Response<Body>> {
    let mut obj = obj;
    check_type(req, &mut obj)?;
    let mut obj = req.to_storage(obj);
    check_namespace(req, &mut obj)?;
    if applied && let Some(name) = &req.path.name {
        object::meta_mut(&mut obj).insert("name".into(), Value::String(name.clone()));
    }
    let generate = object::name(&obj).is_none()
        && object::meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty());
    if generate {
        let base = object::meta_str(&obj, "generateName")
            .unwrap_or_default()
            .to_string();
        object::meta_mut(&mut obj).insert(
            "name".into(),
            Value::String(format!("{base}{}", object::random_suffix())),
        );
    }
    validate_common(req, &obj)?;
    object::prepare_create(&req.kind, &mut obj);
    apply_defaults(req, &mut obj, true);
    check_namespace_open(app, req).await?;
    if req.kind.custom.is_none() && req.kind.group.is_empty() {
        crate::storage_admission::admit_create(app, &req.kind.plural, &mut obj);
        if let Some(ns) = req.namespace() {
            crate::limitrange::admit_create(app, ns, &req.kind.plural, &mut obj)?;
        }
    }
    let claimed = if is_service(req) {
        Some(app.alloc.allocate(None, &mut obj, req.dry_run()).await?)
    } else {
        None
    };
    let result = create_allocated(app, req, obj, applied, generate).await;
    if let Some(claimed) = claimed {
        match &result {
            Ok(_) => app.alloc.bind(&claimed).await,
            Err(_) => app.alloc.abandon(&claimed).await,
        }
    }
    result
}

/// Whether the request is for core Services, whose writes allocate cluster
/// IPs and node ports.
pub fn is_service(req: &Req) -> bool {
    req.kind.custom.is_none() && req.kind.group.is_empty() && req.kind.kind == "Service"
}

async fn create_allocated(
    app: &Arc<App>,
    req: &Req,
    mut obj: Value,
    applied: bool,
    generate: bool,
) -> ApiResult<Response<Body>> {
    validate_kind(req, None, &obj)?;
    if !applied {
        crate::managed::on_create(app, req, &mut obj);
    }
    if req.dry_run() {
        return Ok(object_response(req, 201, &CachedObjectRef::Value(obj)));
    }
    if req.kind.custom.is_none()
        && let Some(ns) = req.namespace()
    {
        let (group, _) = stored_kind(req);
        crate::quota::admit_create(app, ns, group, &req.kind.plural, &obj).await?;
    }
    for attempt in 0..3 {
        let name = object::name(&obj).unwrap_or_default().to_string();
        let expected = app.cache.expect_write(req.key(&name), obj);
        match app
            .cache
            .store()
            .create(expected.key(), expected.stored_bytes())
            .await
        {
            Ok(kv) => {
                let cached = expected
                    .finish(&kv)
                    .ok_or_else(|| ApiError::internal("stored object is not JSON"))?;
                return Ok(object_response(req, 201, &CachedObjectRef::Cached(cached)));
            }
            Err(skiff_store::Error::AlreadyExists { .. }) if generate && attempt < 2 => {
                obj = expected.withdraw();
                let base = object::meta_str(&obj, "generateName")
                    .unwrap_or_default()
                    .to_string();
                object::meta_mut(&mut obj).insert(
                    "name".into(),
                    Value::String(format!("{base}{}", object::random_suffix())),
                );
            }
            Err(skiff_store::Error::AlreadyExists { .. }) => {
                return Err(ApiError::already_exists(req.target(&name)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal("could not generate a unique name"))
}

/// The object a 201/200 answer carries for a create-only virtual kind.
pub fn created(obj: Value) -> Value {
    let mut obj = obj;
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({});
    }
    obj
}
