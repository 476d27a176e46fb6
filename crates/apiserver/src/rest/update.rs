//! UPDATE (PUT) and PATCH, on objects and their status, through one
//! optimistic-concurrency loop.

use std::sync::Arc;

use http::Response;
use serde_json::Value;

use super::Req;
use super::list::{CachedObjectRef, object_response};
use crate::App;
use crate::cache::CachedObject;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::wire::Body;

/// The outcome of a guarded update.
pub enum Updated {
    /// Written (or unchanged); the object as stored now.
    Object(CachedObjectRef),
    /// The update removed the last finalizer of a deleting object, which
    /// was therefore deleted.
    Deleted(Value),
}

/// What a guarded update sends to the store.
enum Write<'a> {
    Delete(Value),
    Update(crate::cache::ExpectedWrite<'a>),
}

/// Reads the current object, applies `mutate`, and writes the result if
/// the object did not change in between; retried on conflicts unless the
/// caller pinned a `resourceVersion` (then a conflict is a 409).
///
/// `mutate` gets the current object and returns the desired one; the
/// server-owned metadata rules are applied after it.
pub async fn guaranteed_update(
    app: &Arc<App>,
    req: &Req,
    name: &str,
    status_only: bool,
    mut mutate: impl FnMut(&Value) -> ApiResult<Value>,
) -> ApiResult<Updated> {
    let key = req.key(name);
    let mut current = match app.cache.get(&key) {
        Some(c) => c,
        None => {
            // The cache may lag a write that just happened.
            app.cache.sync().await?;
            app.cache
                .get(&key)
                .ok_or_else(|| ApiError::not_found(req.target(name)))?
        }
    };
    for _ in 0..16 {
        let mut desired = mutate(&current.value)?;
        let pinned = object::meta_str(&desired, "resourceVersion").map(String::from);
        if let Some(rv) = &pinned
            && rv != &current.revision.to_string()
        {
            return Err(ApiError::modified(req.target(name)));
        }
        if object::meta_str(&desired, "uid")
            .is_some_and(|u| Some(u) != object::meta_str(&current.value, "uid"))
        {
            return Err(ApiError::conflict(
                req.target(name),
                &format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                    object::meta_str(&desired, "uid").unwrap_or_default(),
                    object::meta_str(&current.value, "uid").unwrap_or_default()
                ),
            ));
        }
        object::prepare_update(&req.kind, &current.value, &mut desired, status_only);
        super::write::apply_defaults(req, &mut desired, false);
        let claimed = if super::write::is_service(req) && !status_only {
            Some(
                app.alloc
                    .allocate(Some(&current.value), &mut desired, req.dry_run())
                    .await?,
            )
        } else {
            None
        };
        let abandon = |claimed: Option<crate::alloc::Claimed>| async move {
            if let Some(c) = claimed {
                app.alloc.abandon(&c).await;
            }
        };
        crate::managed::on_update(app, req, &current.value, &mut desired);
        if object::same_content(&current.value, &desired) {
            abandon(claimed).await;
            return Ok(Updated::Object(CachedObjectRef::Cached(current)));
        }
        if let Err(e) = validate_update(req, &desired)
            .and_then(|_| super::write::validate_kind(req, Some(&current.value), &desired))
        {
            abandon(claimed).await;
            return Err(e);
        }
        let finished = should_delete_during_update(&req.kind, &current.value, &desired);
        if req.dry_run() {
            return Ok(Updated::Object(CachedObjectRef::Value(
                object::with_revision(desired, current.revision),
            )));
        }
        // The last finalizer gone: the object is deleted, not written.
        let (result, write) = if finished {
            let deleted = app.cache.store().delete(&key, Some(current.revision)).await;
            (deleted, Write::Delete(desired))
        } else {
            let expected = app.cache.expect_write(key.clone(), desired);
            let updated = app
                .cache
                .store()
                .update(&key, expected.stored_bytes(), current.revision)
                .await;
            (updated, Write::Update(expected))
        };
        match (&result, claimed) {
            (Ok(_), Some(c)) => app.alloc.bind(&c).await,
            (Err(_), c) => abandon(c).await,
            _ => {}
        }
        match result {
            Ok(kv) => {
                return match write {
                    Write::Delete(desired) => Ok(Updated::Deleted(object::with_revision(
                        desired,
                        kv.mod_revision,
                    ))),
                    Write::Update(expected) => expected
                        .finish(&kv)
                        .map(|cached| Updated::Object(CachedObjectRef::Cached(cached)))
                        .ok_or_else(|| ApiError::internal("stored object is not JSON")),
                };
            }
            Err(skiff_store::Error::Conflict {
                current: Some(kv), ..
            }) => {
                // Retry on the new state: a body that pinned the old
                // resourceVersion then fails the check above with a 409.
                current = CachedObject::from_kv(&kv, kv.mod_revision)
                    .ok_or_else(|| ApiError::internal("stored object is not JSON"))?;
            }
            Err(
                skiff_store::Error::Conflict { current: None, .. }
                | skiff_store::Error::NotFound { .. },
            ) => {
                return Err(ApiError::not_found(req.target(name)));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        req.target(name),
        "too many concurrent updates",
    ))
}

/// Whether an update finishes a deletion, as upstream's
/// `ShouldDeleteDuringUpdate`: it removed the last finalizer of an object
/// whose grace period is over. An update that had no finalizer to remove
/// (a status write to a deleting object) deletes nothing, and a namespace
/// also waits for its `spec.finalizers` (released through `finalize`).
fn should_delete_during_update(
    kind: &skiff_api::kinds::KindInfo,
    current: &Value,
    desired: &Value,
) -> bool {
    let is_namespace = kind.custom.is_none() && kind.group.is_empty() && kind.kind == "Namespace";
    let spec_finalizers_left = is_namespace
        && desired
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    object::is_deleting(desired)
        && object::finalizers(desired).is_empty()
        && !object::finalizers(current).is_empty()
        && !spec_finalizers_left
        && desired
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            == 0
}

fn validate_update(req: &Req, obj: &Value) -> ApiResult<()> {
    if let Some(meta) = obj.get("metadata") {
        let errs = skiff_api::validation::validate_object_meta(meta);
        if !errs.is_empty() {
            return Err(ApiError::invalid(
                &req.kind.kind,
                &req.kind.group,
                object::name(obj).unwrap_or_default(),
                &errs,
            ));
        }
    }
    Ok(())
}

fn respond(req: &Req, updated: Updated) -> Response<Body> {
    match updated {
        Updated::Object(o) => object_response(req, 200, &o),
        Updated::Deleted(v) => object_response(req, 200, &CachedObjectRef::Value(v)),
    }
}

pub async fn put(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    let name = req.path.name.clone().unwrap_or_default();
    let mut obj = super::decode_object(
        req.header("content-type"),
        body,
        (&req.kind.api_version(), &req.kind.kind),
    )?;
    super::validate::field_validation(app, req, body, &mut obj)?;
    super::write::check_type(req, &mut obj)?;
    super::write::check_namespace(req, &mut obj)?;
    match object::name(&obj) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        None => {
            object::meta_mut(&mut obj).insert("name".into(), Value::String(name.clone()));
        }
        _ => {}
    }
    let obj = req.to_storage(obj);
    let status_only = req.path.subresource.as_deref() == Some("status");
    let finalize = req.path.subresource.as_deref() == Some("finalize");
    let updated = guaranteed_update(app, req, &name, status_only, |current| {
        if finalize {
            // The namespace finalize subresource changes only spec.finalizers.
            let mut next = current.clone();
            next["spec"]["finalizers"] = obj
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            return Ok(next);
        }
        Ok(obj.clone())
    })
    .await?;
    if let Updated::Object(v) = &updated
        && finalize
    {
        return super::delete::maybe_finish_namespace(app, req, v.value().clone()).await;
    }
    Ok(respond(req, updated))
}

pub async fn patch(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    let name = req.path.name.clone().unwrap_or_default();
    let status_only = req.path.subresource.as_deref() == Some("status");
    let patch_kind = crate::patch::patch_type(req)?;
    crate::patch::check_request(req, patch_kind)?;
    let is_apply = patch_kind == skiff_patch::PatchType::ApplyYaml;
    if is_apply && app.cache.get(&req.key(&name)).is_none() {
        app.cache.sync().await?;
        if app.cache.get(&req.key(&name)).is_none() {
            return crate::patch::apply_create(app, req, &name, body).await;
        }
    }
    let updated = guaranteed_update(app, req, &name, status_only, |current| {
        let next = match req.to_request(current) {
            Some(converted) => crate::patch::apply(app, req, patch_kind, Some(&converted), body)?,
            None => crate::patch::apply(app, req, patch_kind, Some(current), body)?,
        };
        let mut next = req.to_storage(next);
        // A patch may not rename or move the object.
        let m = object::meta_mut(&mut next);
        m.insert("name".into(), Value::String(name.clone()));
        if let Some(ns) = req.namespace() {
            m.insert("namespace".into(), Value::String(ns.to_string()));
        }
        Ok(next)
    })
    .await?;
    Ok(respond(req, updated))
}
