//! The `scale` subresource: an `autoscaling/v1 Scale` view of any kind
//! with `spec.replicas` and a label selector.

use std::sync::Arc;

use http::{Method, Response};
use serde_json::{Value, json};

use super::Req;
use super::update::{Updated, guaranteed_update};
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::wire::{self, Body};

/// The label selector of a workload as the string form Scale carries.
fn selector_string(obj: &Value) -> String {
    let sel = obj.pointer("/spec/selector");
    let mut parts = Vec::new();
    match sel {
        // ReplicationControllers have a plain map selector.
        Some(Value::Object(m))
            if !m.contains_key("matchLabels") && !m.contains_key("matchExpressions") =>
        {
            for (k, v) in m {
                parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
            }
        }
        Some(s) => {
            if let Some(m) = s.get("matchLabels").and_then(Value::as_object) {
                for (k, v) in m {
                    parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
                }
            }
            for e in s
                .get("matchExpressions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                parts.push(match e.get("operator").and_then(Value::as_str) {
                    Some("In") => format!("{key} in ({})", values.join(",")),
                    Some("NotIn") => format!("{key} notin ({})", values.join(",")),
                    Some("Exists") => key.to_string(),
                    _ => format!("!{key}"),
                });
            }
        }
        None => {}
    }
    parts.join(",")
}

/// Where a kind keeps its replicas: `/spec/replicas` for built-ins, the
/// CRD's declared paths for custom resources (as JSON pointers).
struct Paths {
    spec: String,
    status: String,
    selector: Option<String>,
}

fn pointer(json_path: &str) -> String {
    json_path
        .trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, p| format!("{acc}/{p}"))
}

fn paths(req: &Req) -> Paths {
    match req.kind.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        Some(s) => Paths {
            spec: pointer(&s.spec_replicas),
            status: pointer(&s.status_replicas),
            selector: s.label_selector.as_deref().map(pointer),
        },
        None => Paths {
            spec: "/spec/replicas".into(),
            status: "/status/replicas".into(),
            selector: None,
        },
    }
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn set_pointer(obj: &mut Value, ptr: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        if i == parts.len() - 1 {
            cur[*p] = value;
            return;
        }
        cur = &mut cur[*p];
    }
}

fn to_scale(obj: &Value, paths: &Paths) -> Value {
    let meta = object::meta(obj).cloned().unwrap_or_default();
    let pick = |k: &str| meta.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"),
            "namespace": pick("namespace"),
            "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"),
            "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer(&paths.spec).cloned().unwrap_or(json!(if paths.selector.is_none() { 1 } else { 0 }))},
        "status": {
            "replicas": obj.pointer(&paths.status).cloned().unwrap_or(json!(0)),
            "selector": match &paths.selector {
                Some(p) => obj.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string(),
                None => selector_string(obj),
            },
        },
    })
}

pub async fn scale(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    let name = req.path.name.clone().unwrap_or_default();
    let paths = paths(req);
    match req.method {
        Method::GET => {
            app.cache.sync().await?;
            let obj = app
                .cache
                .get(&req.key(&name))
                .ok_or_else(|| ApiError::not_found(req.target(&name)))?;
            Ok(wire::json(200, &to_scale(&obj.value, &paths)))
        }
        Method::PUT | Method::PATCH => {
            let is_patch = req.method == Method::PATCH;
            let patch_kind = if is_patch {
                Some(crate::patch::patch_type(req)?)
            } else {
                None
            };
            let updated = guaranteed_update(app, req, &name, false, |current| {
                let scale = to_scale(current, &paths);
                let new_scale = match patch_kind {
                    Some(kind) => crate::patch::apply_plain(kind, &scale, body)?,
                    None => super::decode_object(
                        req.header("content-type"),
                        body,
                        (&req.kind.api_version(), &req.kind.kind),
                    )?,
                };
                let replicas = new_scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        "Scale",
                        "autoscaling",
                        &name,
                        &[skiff_api::validation::FieldError::invalid(
                            "spec.replicas",
                            replicas,
                            "must be greater than or equal to 0",
                        )],
                    ));
                }
                let mut next = current.clone();
                set_pointer(&mut next, &paths.spec, json!(replicas));
                if let Some(rv) = new_scale
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    && !is_patch
                {
                    object::meta_mut(&mut next)
                        .insert("resourceVersion".into(), Value::String(rv.to_string()));
                }
                Ok(next)
            })
            .await?;
            match updated {
                Updated::Object(o) => Ok(wire::json(200, &to_scale(o.value(), &paths))),
                Updated::Deleted(v) => Ok(wire::json(200, &to_scale(&v, &paths))),
            }
        }
        ref m => Err(ApiError::method_not_allowed(m.as_str())),
    }
}
