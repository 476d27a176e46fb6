//! DELETE and DELETECOLLECTION: preconditions, graceful deletion,
//! finalizers and propagation policies, as upstream's generic store.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};

use super::Req;
use super::list::{CachedObjectRef, Filter, object_response};
use super::update::Updated;
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::wire::{self, Body};

/// `DeleteOptions` from the body and the query string.
#[derive(Debug, Default)]
pub(super) struct DeleteOptions {
    grace_period: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

pub(super) fn options(req: &Req, body: &[u8]) -> ApiResult<DeleteOptions> {
    let mut opts = DeleteOptions::default();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v = super::decode::parse_json(body)?;
        opts.grace_period = v.get("gracePeriodSeconds").and_then(Value::as_i64);
        opts.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(String::from);
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && opts.propagation.is_none()
        {
            opts.propagation = Some("Orphan".into());
        }
        opts.uid = v
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        opts.resource_version = v
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
    }
    if let Some(g) = req.query.int("gracePeriodSeconds")? {
        opts.grace_period = Some(g);
    }
    if let Some(p) = req.query.get("propagationPolicy") {
        opts.propagation = Some(p.to_string());
    }
    match opts.propagation.as_deref() {
        None | Some("Background" | "Foreground" | "Orphan") => Ok(opts),
        Some(other) => Err(ApiError::invalid(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            &[skiff_api::validation::FieldError {
                kind: skiff_api::validation::ErrorType::NotSupported,
                field: "propagationPolicy".into(),
                value: Some(Value::String(other.into())),
                detail: "supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                    .into(),
            }],
        )),
    }
}

/// The grace period a pod gets: the request's, else its spec's; zero for
/// pods that never reached a node or have finished.
fn grace_period(req: &Req, obj: &Value, asked: Option<i64>) -> i64 {
    if !req.kind.group.is_empty() || req.kind.kind != "Pod" {
        return 0;
    }
    let unscheduled = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty();
    let finished = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if unscheduled || finished {
        return 0;
    }
    asked
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

pub async fn delete(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    let opts = options(req, body)?;
    let name = req.path.name.clone().unwrap_or_default();
    let (code, obj) = delete_one(app, req, &name, &opts).await?;
    Ok(object_response(req, code, &CachedObjectRef::Value(obj)))
}

pub(super) async fn delete_one(
    app: &Arc<App>,
    req: &Req,
    name: &str,
    opts: &DeleteOptions,
) -> ApiResult<(u16, Value)> {
    let key = req.key(name);
    let current = match app.cache.get(&key) {
        Some(c) => c,
        None => {
            app.cache.sync().await?;
            app.cache
                .get(&key)
                .ok_or_else(|| ApiError::not_found(req.target(name)))?
        }
    };
    if let Some(uid) = &opts.uid
        && Some(uid.as_str()) != object::meta_str(&current.value, "uid")
    {
        return Err(ApiError::conflict(
            req.target(name),
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::meta_str(&current.value, "uid").unwrap_or_default()
            ),
        ));
    }
    if let Some(rv) = &opts.resource_version
        && rv != &current.revision.to_string()
    {
        return Err(ApiError::conflict(
            req.target(name),
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                current.revision
            ),
        ));
    }
    let grace = grace_period(req, &current.value, opts.grace_period);
    let is_namespace = req.kind.group.is_empty() && req.kind.kind == "Namespace";
    let propagation_finalizer = match opts.propagation.as_deref() {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    };
    let needs_wait = grace > 0
        || is_namespace
        || propagation_finalizer.is_some()
        || !object::finalizers(&current.value).is_empty();
    if !needs_wait {
        if req.dry_run() {
            return Ok((200, current.value.clone()));
        }
        return match app.cache.store().delete(&key, Some(current.revision)).await {
            Ok(kv) => Ok((
                200,
                object::with_revision(current.value.clone(), kv.mod_revision),
            )),
            Err(skiff_store::Error::NotFound { .. }) => Err(ApiError::not_found(req.target(name))),
            Err(skiff_store::Error::Conflict { .. }) => {
                // Changed under us: start over on the new state.
                Box::pin(delete_one(app, req, name, opts)).await
            }
            Err(e) => Err(e.into()),
        };
    }
    // Graceful: mark the object; whoever owns the finalizers (or the node,
    // for pods) finishes the deletion.
    let result = mark_deleting(app, req, name, grace, propagation_finalizer, is_namespace).await?;
    match result {
        Updated::Deleted(v) => Ok((200, v)),
        Updated::Object(v) => {
            let v = v.into_value();
            if is_namespace {
                return Ok((200, v));
            }
            Ok((202, v))
        }
    }
}

/// Sets `deletionTimestamp` and friends, which ordinary updates may not
/// touch.
async fn mark_deleting(
    app: &Arc<App>,
    req: &Req,
    name: &str,
    grace: i64,
    propagation_finalizer: Option<&str>,
    is_namespace: bool,
) -> ApiResult<Updated> {
    let key = req.key(name);
    for _ in 0..16 {
        let Some(cur) = app.cache.get(&key) else {
            return Err(ApiError::not_found(req.target(name)));
        };
        let mut next = cur.value.clone();
        let already = object::is_deleting(&cur.value);
        let m = object::meta_mut(&mut next);
        if let Some(f) = propagation_finalizer {
            let list = m.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut()
                && !a.iter().any(|x| x == f)
            {
                a.push(Value::String(f.into()));
            }
        }
        let current_grace = m.get("deletionGracePeriodSeconds").and_then(Value::as_i64);
        if !already || current_grace.is_some_and(|g| grace < g) {
            let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            m.insert(
                "deletionTimestamp".into(),
                Value::String(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if !already && next.get("spec").is_some() {
                let g = next
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                object::meta_mut(&mut next).insert("generation".into(), json!(g + 1));
            }
        }
        if is_namespace {
            next["status"] = json!({"phase": "Terminating"});
        }
        if object::same_content(&cur.value, &next) {
            return Ok(Updated::Object(CachedObjectRef::Cached(cur)));
        }
        if req.dry_run() {
            return Ok(Updated::Object(CachedObjectRef::Value(next)));
        }
        let finished = object::finalizers(&next).is_empty() && grace == 0 && !is_namespace;
        let result = if finished {
            app.cache.store().delete(&key, Some(cur.revision)).await
        } else {
            app.cache
                .store()
                .update(&key, object::to_stored_bytes(&next).into(), cur.revision)
                .await
        };
        match result {
            Ok(kv) if finished => {
                return Ok(Updated::Deleted(object::with_revision(
                    next,
                    kv.mod_revision,
                )));
            }
            Ok(kv) => {
                return Ok(Updated::Object(CachedObjectRef::Value(
                    object::with_revision(next, kv.mod_revision),
                )));
            }
            Err(skiff_store::Error::Conflict {
                current: Some(kv), ..
            }) => {
                app.cache.wait_for(kv.mod_revision).await?;
            }
            Err(skiff_store::Error::NotFound { .. }) => {
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

/// After `namespaces/<n>/finalize`, a terminating namespace with no
/// finalizers left is removed.
pub async fn maybe_finish_namespace(
    app: &Arc<App>,
    req: &Req,
    ns: Value,
) -> ApiResult<Response<Body>> {
    let empty = ns
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    if object::is_deleting(&ns) && empty && object::finalizers(&ns).is_empty() {
        let name = object::name(&ns).unwrap_or_default().to_string();
        let key = req.key(&name);
        if let Ok(kv) = app.cache.store().delete(&key, None).await {
            return Ok(object_response(
                req,
                200,
                &CachedObjectRef::Value(object::with_revision(ns, kv.mod_revision)),
            ));
        }
    }
    Ok(object_response(req, 200, &CachedObjectRef::Value(ns)))
}

pub async fn delete_collection(
    app: &Arc<App>,
    req: &Req,
    body: &[u8],
) -> ApiResult<Response<Body>> {
    let opts = options(req, body)?;
    let filter = Filter::from_req(req)?;
    app.cache.sync().await?;
    let prefix = req.kind.namespace_prefix(req.namespace());
    let (objs, _, revision) = app
        .cache
        .list(&prefix, None, 0, |o| filter.matches(&o.value));
    let mut items = Vec::new();
    for o in objs {
        let name = object::name(&o.value).unwrap_or_default().to_string();
        let ns = object::meta_str(&o.value, "namespace").map(String::from);
        let item_req = Req {
            method: req.method.clone(),
            path: crate::request::ResourcePath {
                namespace: ns,
                name: Some(name.clone()),
                ..req.path.clone()
            },
            kind: req.kind.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            user: req.user.clone(),
            repr: req.repr,
            warnings: Default::default(),
            storage: req.storage.clone(),
        };
        match delete_one(app, &item_req, &name, &opts).await {
            Ok((_, v)) => items.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": req.kind.list_kind(),
        "apiVersion": req.kind.api_version(),
        "metadata": {"resourceVersion": revision.to_string()},
        "items": items,
    });
    Ok(wire::json(200, &list))
}
