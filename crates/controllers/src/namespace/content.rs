//! Deleting everything in a namespace, resource by resource, and counting
//! what is left, as upstream's `NamespacedResourcesDeleter` does.

use std::sync::Arc;

use futures::{StreamExt, stream};
use http_body_util::BodyExt;
use kube::api::{DeleteParams, DynamicObject, ListParams, PropagationPolicy};
use kube::{Client, Resource as _};

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

/// Deletes every namespaced object in `namespace` and reports what
/// remains.
pub async fn delete_all(client: &Client, catalog: &Catalog, namespace: &str) -> Report {
    let resources: Vec<Arc<Resource>> = catalog
        .resources()
        .filter(|r| r.namespaced && r.can_delete())
        .cloned()
        .collect();
    let outcomes: Vec<(Arc<Resource>, Outcome)> = stream::iter(resources)
        .map(|r| async move {
            let o = delete_resource(client, &r, namespace).await;
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

async fn delete_resource(client: &Client, r: &Resource, namespace: &str) -> Outcome {
    let api = r.metadata_api(client, Some(namespace));
    let gr = r.group_resource();
    let mut out = Outcome::default();
    // Background: the collector deletes what these objects own; the
    // namespace waits only for its own content.
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let mut collection_done = false;
    if r.can_delete_collection() {
        match delete_collection(client, r, namespace, &dp).await {
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
        return out;
    }
    // A graceful deletion (a pod on a node) sets `deletionTimestamp` to
    // when its grace period ends: until then the object is expected.
    let now = jiff::Timestamp::now();
    out.estimate = left
        .iter()
        .filter_map(|i| i.metadata.deletion_timestamp.as_ref())
        .map(|t| t.0.duration_since(now).as_secs())
        .max()
        .unwrap_or(0)
        .max(0);
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

/// DELETE on the collection, without reading the answer: it lists every
/// deleted object in full, and kube-rs would hold all of them (as a JSON
/// tree) at once, a cost of tens of megabytes for a namespace of thousands
/// of objects that outlives the call in the allocator.
async fn delete_collection(
    client: &Client,
    r: &Resource,
    namespace: &str,
    dp: &DeleteParams,
) -> Result<(), kube::Error> {
    let url = DynamicObject::url_path(&r.ar, Some(namespace));
    let req = kube::core::Request::new(url)
        .delete_collection(dp, &ListParams::default())
        .map_err(kube::Error::BuildRequest)?;
    let res = client.send(req.map(kube::client::Body::from)).await?;
    let status = res.status();
    let mut body = res.into_body();
    if status.is_success() {
        while let Some(frame) = body.frame().await {
            frame?;
        }
        return Ok(());
    }
    // Errors are small `Status` objects.
    let bytes = body.collect().await?.to_bytes();
    let s = serde_json::from_slice::<kube::core::Status>(&bytes).unwrap_or_else(|_| {
        kube::core::Status::failure(&String::from_utf8_lossy(&bytes), "").with_code(status.as_u16())
    });
    Err(kube::Error::Api(Box::new(s)))
}

fn out_error(gr: &str, verb: &str, e: kube::Error) -> String {
    tracing::debug!(resource = gr, verb, error = %e, "namespace content deletion failed");
    format!("{verb} {gr}: {e}")
}
