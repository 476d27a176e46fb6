//! `POST pods/{name}/binding`: how a scheduler assigns a pod to a node.
//!
//! As upstream's `BindingREST`: one compare-and-swap sets `spec.nodeName`
//! and the `PodScheduled=True` condition together (so no watcher ever sees
//! a bound pod that claims to be unscheduled), copies the Binding's
//! annotations onto the pod, and refuses with 409 a pod that is already
//! bound or being deleted. Pod update validation does not apply: the node
//! name is immutable through every other path.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};

use super::Req;
use crate::App;
use crate::cache::CachedObject;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::wire::{self, Body};

pub async fn bind(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    let name = req.path.name.clone().unwrap_or_default();
    let binding = super::decode_object(req.header("content-type"), body, ("v1", "Binding"))?;
    let bname = object::meta_str(&binding, "name").unwrap_or_default();
    if !bname.is_empty() && bname != name {
        return Err(ApiError::bad_request(format!(
            "name in URL ({name}) does not match name in Binding ({bname})"
        )));
    }
    let target_kind = binding
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !target_kind.is_empty() && target_kind != "Node" {
        return Err(ApiError::invalid(
            "Binding",
            "",
            &name,
            &[skiff_api::validation::FieldError::not_supported(
                "target.kind",
                target_kind,
                &["Node", "<empty>"],
            )],
        ));
    }
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            &name,
            &[skiff_api::validation::FieldError::required(
                "target.name",
                "",
            )],
        ));
    }
    let annotations = object::meta(&binding)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned();
    let key = req.key(&name);
    let mut current = match app.cache.get(&key) {
        Some(c) => c,
        None => {
            app.cache.sync().await?;
            app.cache
                .get(&key)
                .ok_or_else(|| ApiError::not_found(req.target(&name)))?
        }
    };
    for _ in 0..16 {
        let pod = &current.value;
        if let Some(uid) = object::meta_str(&binding, "uid")
            && Some(uid) != object::meta_str(pod, "uid")
        {
            return Err(ApiError::conflict(
                req.target(&name),
                "Precondition failed: UID in precondition does not match",
            ));
        }
        if object::is_deleting(pod) {
            return Err(ApiError::conflict(
                req.target(&name),
                &format!("pod {name} is being deleted, cannot be assigned to a host"),
            ));
        }
        if let Some(bound) = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                req.target(&name),
                &format!("pod {name} is already assigned to node {bound:?}"),
            ));
        }
        let mut next = pod.clone();
        next["spec"]["nodeName"] = json!(node);
        if let Some(a) = &annotations {
            let m = object::meta_mut(&mut next);
            let entry = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(obj) = entry.as_object_mut() {
                for (k, v) in a {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
        set_scheduled(&mut next);
        object::meta_mut(&mut next).remove("resourceVersion");
        if req.dry_run() {
            break;
        }
        let expected = app.cache.expect_write(key.clone(), next);
        match app
            .cache
            .store()
            .update(&key, expected.stored_bytes(), current.revision)
            .await
        {
            Ok(kv) => {
                expected.finish(&kv);
                break;
            }
            Err(skiff_store::Error::Conflict {
                current: Some(kv), ..
            }) => {
                current = CachedObject::from_kv(&kv, kv.mod_revision)
                    .ok_or_else(|| ApiError::internal("stored object is not JSON"))?;
                continue;
            }
            Err(
                skiff_store::Error::Conflict { current: None, .. }
                | skiff_store::Error::NotFound { .. },
            ) => return Err(ApiError::not_found(req.target(&name))),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(wire::json(
        201,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }),
    ))
}

/// Sets `PodScheduled=True` (replacing a `False` one from a failed
/// attempt), as upstream's `podutil.UpdatePodCondition`.
fn set_scheduled(pod: &mut Value) {
    let now = object::now();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let status = &mut pod["status"];
    if !status.get("conditions").is_some_and(Value::is_array) {
        status["conditions"] = json!([]);
    }
    let Some(conds) = status["conditions"].as_array_mut() else {
        return;
    };
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    match conds
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        Some(c) => *c = cond,
        None => conds.push(cond),
    }
}
