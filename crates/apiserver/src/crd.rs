//! CustomResourceDefinitions: turning established CRDs into served kinds,
//! reporting their status, and deleting their objects when a CRD goes.
//!
//! Upstream runs these loops inside the API server process too
//! (apiextensions-apiserver's naming, establishing and finalizer
//! controllers); here they are one task over the watch cache.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use skiff_api::kinds::{CustomKind, KindInfo, ScalePaths, Sub, Verbs};
use skiff_store::RangeRequest;
use tokio::sync::broadcast::error::RecvError;

use crate::App;
use crate::object;

const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";
const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The kinds one CRD serves (one per served version).
pub fn kinds_from_crd(crd: &Value) -> Vec<KindInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let (Some(kind), Some(plural)) = (names["kind"].as_str(), names["plural"].as_str()) else {
        return Vec::new();
    };
    let singular = names["singular"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let crd_name = object::name(crd).unwrap_or_default().to_string();
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["served"].as_bool() != Some(false))
                .collect()
        })
        .unwrap_or_default();
    // Discovery lists the storage version first, as upstream sorts by priority.
    versions.sort_by_key(|v| v["storage"].as_bool() != Some(true));
    versions
        .into_iter()
        .filter_map(|v| {
            let version = v["name"].as_str()?;
            let subs = &v["subresources"];
            let mut subresources = Vec::new();
            if subs.get("status").is_some() {
                subresources.push(Sub::Status);
            }
            let scale = subs.get("scale").map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas: s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .to_string(),
                label_selector: s["labelSelectorPath"].as_str().map(String::from),
            });
            if scale.is_some() {
                subresources.push(Sub::Scale);
            }
            Some(KindInfo {
                group: group.to_string(),
                version: version.to_string(),
                kind: kind.to_string(),
                plural: plural.to_string(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                subresources,
                verbs: Verbs::All,
                storage_version: v["storage"].as_bool() == Some(true),
                custom: Some(Arc::new(CustomKind {
                    crd: crd_name.clone(),
                    scale,
                    printer_columns: v
                        .get("additionalPrinterColumns")
                        .cloned()
                        .unwrap_or(json!([])),
                    schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                })),
            })
        })
        .collect()
}

/// Keeps the registry and CRD statuses in step with the stored CRDs.
pub async fn run(app: Arc<App>) {
    loop {
        let Some(mut watch) = app.cache.watch(CRD_PREFIX, app.cache.revision()) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        reconcile_all(&app).await;
        loop {
            match watch.live.recv().await {
                Ok(_) => reconcile_all(&app).await,
                Err(RecvError::Lagged(_)) => reconcile_all(&app).await,
                Err(RecvError::Closed) => break,
            }
        }
    }
}

pub(crate) async fn reconcile_all(app: &Arc<App>) {
    let (crds, _, _) = app.cache.list(CRD_PREFIX, None, 0, |_| true);
    let mut kinds = Vec::new();
    for crd in &crds {
        if object::is_deleting(&crd.value) {
            finalize(app, &crd.value, crd.revision).await;
            continue;
        }
        kinds.extend(kinds_from_crd(&crd.value));
        establish(app, &crd.value, crd.revision).await;
    }
    if app.registry.set_custom(kinds) {
        app.openapi.update(&app.registry.snapshot());
    }
}

/// Marks a CRD's names accepted and the CRD established, and adds the
/// cleanup finalizer, once.
async fn establish(app: &Arc<App>, crd: &Value, revision: i64) {
    let established = crd["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    });
    let has_finalizer = object::finalizers(crd)
        .iter()
        .any(|f| f == CLEANUP_FINALIZER);
    if established && has_finalizer {
        return;
    }
    let mut next = crd.clone();
    let names = crd["spec"]["names"].clone();
    let mut accepted = names.clone();
    if accepted.get("singular").is_none() {
        accepted["singular"] = json!(names["kind"].as_str().unwrap_or_default().to_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!(
            "{}List",
            names["kind"].as_str().unwrap_or_default()
        ));
    }
    let now = object::now();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| v["name"].clone())
        .collect();
    next["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": stored,
    });
    if !has_finalizer {
        let m = object::meta_mut(&mut next);
        let list = m.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            a.push(json!(CLEANUP_FINALIZER));
        }
    }
    let key = format!("{CRD_PREFIX}{}", object::name(crd).unwrap_or_default());
    if let Err(e) = app
        .cache
        .store()
        .update(&key, object::to_stored_bytes(&next).into(), revision)
        .await
    {
        tracing::debug!(error = %e, %key, "CRD status update lost a race; will retry on the next event");
    }
}

/// Deletes every object of a deleting CRD, then the CRD.
async fn finalize(app: &Arc<App>, crd: &Value, revision: i64) {
    let group = crd["spec"]["group"].as_str().unwrap_or_default();
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/registry/{group}/{plural}/");
    let store = app.cache.store();
    loop {
        let page = match store
            .range(RangeRequest {
                prefix: prefix.clone(),
                limit: 500,
                ..Default::default()
            })
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list custom resources to clean up");
                return;
            }
        };
        for kv in &page.kvs {
            let _ = store.delete(&kv.key, None).await;
        }
        if !page.more {
            break;
        }
    }
    let key = format!("{CRD_PREFIX}{}", object::name(crd).unwrap_or_default());
    let others: Vec<String> = object::finalizers(crd)
        .into_iter()
        .filter(|f| f != CLEANUP_FINALIZER)
        .collect();
    let result = if others.is_empty() {
        store.delete(&key, Some(revision)).await.map(|_| ())
    } else {
        let mut next = crd.clone();
        object::meta_mut(&mut next).insert("finalizers".into(), json!(others));
        store
            .update(&key, object::to_stored_bytes(&next).into(), revision)
            .await
            .map(|_| ())
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, %key, "CRD finalization lost a race; will retry");
    }
}
