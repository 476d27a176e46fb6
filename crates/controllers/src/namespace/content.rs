//! Deleting everything in a namespace, resource by resource, and counting
//! what is left, as upstream's `NamespacedResourcesDeleter` does.

use std::sync::Arc;

use futures::{StreamExt, stream};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PropagationPolicy};

use super::conditions::Report;
use crate::catalog::{Catalog, Resource};

/// How long to expect an object held by a finalizer to need, as upstream.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

/// Resources worked on at once.
const PARALLEL: usize = 4;

/// What became of one resource's content.
#[derive(Default)]
struct Outcome {
    remaining: usize,
    finalizers: Vec<String>,
    estimate: i64,
    error: Option<String>,
}

/// Deletes every namespaced object in `namespace` (deleted at
/// `deleted_at`) and reports what remains.
pub async fn delete_all(
    client: &Client,
    catalog: &Catalog,
    namespace: &str,
    deleted_at: jiff::Timestamp,
) -> Report {
    let resources: Vec<Arc<Resource>> = catalog
        .resources()
        .filter(|r| r.namespaced && r.can_delete())
        .cloned()
        .collect();
    let outcomes: Vec<(Arc<Resource>, Outcome)> = stream::iter(resources)
        .map(|r| async move {
            let o = delete_resource(client, &r, namespace, deleted_at).await;
            (r, o)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut report = Report::default();
    for (r, o) in outcomes {
        if let Some(e) = o.error {
            report.content_errors.push(e);
        }
        if o.remaining > 0 {
            report.remaining.insert(r.group_resource(), o.remaining);
        }
        for f in o.finalizers {
            *report.finalizers.entry(f).or_default() += 1;
        }
        report.estimate = report.estimate.max(o.estimate);
    }
    report
}

async fn delete_resource(
    client: &Client,
    r: &Resource,
    namespace: &str,
    deleted_at: jiff::Timestamp,
) -> Outcome {
    let api = r.metadata_api(client, Some(namespace));
    let gr = r.group_resource();
    let mut out = Outcome::default();
    match graceful_estimate(client, r, namespace, deleted_at).await {
        Ok(e) => out.estimate = e,
        Err(e) => {
            out.error = Some(out_error(&gr, "list", e));
            return out;
        }
    }
    // Background: the collector deletes what these objects own; the
    // namespace waits only for its own content.
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let mut collection_done = false;
    if r.can_delete_collection() {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => collection_done = true,
            Err(e) if matches!(crate::status_code(&e), Some(404 | 405)) => {}
            Err(e) => {
                out.error = Some(out_error(&gr, "deletecollection", e));
                return out;
            }
        }
    }
    if !r.can_list() {
        return out;
    }
    if !collection_done {
        let items = match api.list_metadata(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(e) if matches!(crate::status_code(&e), Some(404 | 405)) => return out,
            Err(e) => {
                out.error = Some(out_error(&gr, "list", e));
                return out;
            }
        };
        for item in items {
            let Some(name) = item.metadata.name.as_deref() else {
                continue;
            };
            match api.delete(name, &dp).await {
                Ok(_) => {}
                Err(e) if matches!(crate::status_code(&e), Some(404 | 405)) => {}
                Err(e) => {
                    out.error = Some(out_error(&gr, "delete", e));
                    return out;
                }
            }
        }
    }
    let left = match api.list_metadata(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) if matches!(crate::status_code(&e), Some(404 | 405)) => return out,
        Err(e) => {
            out.error = Some(out_error(&gr, "list", e));
            return out;
        }
    };
    out.remaining = left.len();
    if left.is_empty() {
        out.estimate = 0;
        return out;
    }
    out.finalizers = left
        .iter()
        .flat_map(|i| i.metadata.finalizers.iter().flatten().cloned())
        .collect();
    if out.estimate == 0 {
        if out.finalizers.is_empty() {
            out.error = Some(format!(
                "unexpected items still remain in namespace: {namespace} for gvr: {}/{}, Resource={}",
                r.ar.group, r.ar.version, r.ar.plural
            ));
        } else {
            out.estimate = FINALIZER_ESTIMATE_SECONDS;
        }
    }
    out
}

fn out_error(gr: &str, verb: &str, e: kube::Error) -> String {
    tracing::debug!(resource = gr, verb, error = %e, "namespace content deletion failed");
    format!("{verb} {gr}: {e}")
}

/// For pods, the longest grace period a running pod still has since the
/// namespace was deleted: until then pods are expected to remain (a
/// kubelet finishes them).
async fn graceful_estimate(
    client: &Client,
    r: &Resource,
    namespace: &str,
    deleted_at: jiff::Timestamp,
) -> Result<i64, kube::Error> {
    if !(r.ar.group.is_empty() && r.ar.plural == "pods") {
        return Ok(0);
    }
    let pods: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &r.ar);
    let list = pods.list(&ListParams::default()).await?;
    let longest = list
        .items
        .iter()
        .filter(|p| {
            !matches!(
                p.data.pointer("/status/phase").and_then(|v| v.as_str()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| {
            p.data
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(|v| v.as_i64())
        })
        .max()
        .unwrap_or(0);
    let elapsed = jiff::Timestamp::now()
        .duration_since(deleted_at)
        .as_secs()
        .max(0);
    Ok(if elapsed >= longest { 0 } else { longest })
}
