//! `POST pods/{name}/eviction` (policy/v1 Eviction): a pod deletion that
//! respects PodDisruptionBudgets, as upstream's `EvictionREST`.
//!
//! When a budget covers the pod and allows a disruption, the budget's
//! `status.disruptionsAllowed` is decremented and the pod recorded in
//! `status.disruptedPods` in one compare-and-swap write *before* the pod is
//! deleted, so two concurrent evictions cannot both spend the last
//! allowed disruption (the PDB controller recomputes the status from the
//! pods afterwards). A budget with no disruption left answers 429.

use std::sync::Arc;

use http::Response;
use serde_json::{Value, json};
use skiff_api::selector::LabelSelector;

use super::Req;
use crate::App;
use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::wire::Body;

const PDB_PREFIX: &str = "/registry/policy/poddisruptionbudgets/";

pub async fn evict(app: &Arc<App>, req: &Req, body: &[u8]) -> ApiResult<Response<Body>> {
    if req.method != http::Method::POST {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let name = req.path.name.clone().unwrap_or_default();
    let eviction =
        super::decode_object(req.header("content-type"), body, ("policy/v1", "Eviction"))?;
    if let Some(n) = object::name(&eviction)
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {n}"
        )));
    }
    let key = req.key(&name);
    let pod = match app.cache.get(&key) {
        Some(p) => p,
        None => {
            app.cache.sync().await?;
            app.cache
                .get(&key)
                .ok_or_else(|| ApiError::not_found(req.target(&name)))?
        }
    };
    if !req.dry_run() && !can_ignore_budget(&pod.value) {
        spend_disruption(app, req.namespace().unwrap_or_default(), &pod.value).await?;
    }
    let opts = eviction
        .get("deleteOptions")
        .map(|o| serde_json::to_vec(o).unwrap_or_default())
        .unwrap_or_default();
    let opts = super::delete::options(req, &opts)?;
    super::delete::delete_one(app, req, &name, &opts).await?;
    Ok(crate::wire::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// Pods that are not running, or already going, need no budget
/// (upstream's `canIgnorePDB`).
fn can_ignore_budget(pod: &Value) -> bool {
    object::is_deleting(pod)
        || matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed" | "Pending")
        )
}

fn too_many(message: String, cause: Option<String>) -> ApiError {
    let mut e = ApiError::new(429, "TooManyRequests", message);
    let causes: Vec<Value> = cause
        .into_iter()
        .map(|m| json!({"reason": "DisruptionBudget", "message": m}))
        .collect();
    e.details = Some(json!({"causes": causes}));
    e
}

async fn spend_disruption(app: &Arc<App>, namespace: &str, pod: &Value) -> ApiResult<()> {
    let pod_name = object::name(pod).unwrap_or_default().to_string();
    for _ in 0..8 {
        let prefix = format!("{PDB_PREFIX}{namespace}/");
        let (pdbs, _, _) = app.cache.list(&prefix, None, 0, |o| covers(&o.value, pod));
        let pdb = match pdbs.as_slice() {
            [] => return Ok(()),
            [one] => one.clone(),
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        };
        let status = pdb
            .value
            .get("status")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let int = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
        let generation = pdb
            .value
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let pdb_name = object::name(&pdb.value).unwrap_or_default().to_string();
        if int("observedGeneration") < generation {
            return Err(too_many(
                "Cannot evict pod as it would violate the pod's disruption budget.".into(),
                Some(format!(
                    "The disruption budget {pdb_name} is still being processed by the server."
                )),
            ));
        }
        if int("disruptionsAllowed") < 0 {
            return Err(ApiError::forbidden(format!(
                "poddisruptionbudgets.policy \"{pdb_name}\" is forbidden: pdb disruptions allowed is negative"
            )));
        }
        if int("disruptionsAllowed") == 0 {
            return Err(too_many(
                "Cannot evict pod as it would violate the pod's disruption budget.".into(),
                Some(format!(
                    "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                    int("desiredHealthy"),
                    int("currentHealthy")
                )),
            ));
        }
        let mut updated = pdb.value.clone();
        updated["status"]["disruptionsAllowed"] = json!(int("disruptionsAllowed") - 1);
        if !updated["status"]["disruptedPods"].is_object() {
            updated["status"]["disruptedPods"] = json!({});
        }
        updated["status"]["disruptedPods"][&pod_name] = json!(object::now());
        let key = format!("{prefix}{pdb_name}");
        match app
            .cache
            .store()
            .update(&key, object::to_stored_bytes(&updated).into(), pdb.revision)
            .await
        {
            Ok(kv) => {
                app.cache.wait_for(kv.mod_revision).await?;
                return Ok(());
            }
            Err(skiff_store::Error::Conflict { .. }) => {
                app.cache.sync().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::new(
        409,
        "Conflict",
        "too many concurrent evictions for the pod's disruption budget",
    ))
}

/// Whether the budget's selector selects the pod (policy/v1: an empty
/// selector selects every pod of the namespace, an absent one none).
fn covers(pdb: &Value, pod: &Value) -> bool {
    let Some(sel) = pdb.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        return false;
    };
    LabelSelector::from_object(sel).is_ok_and(|s| s.matches(object::labels(pod)))
}
