//! `metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics, what
//! metrics-server serves upstream and `kubectl top` reads. Nothing is
//! stored: each read asks the nodes concerned for their `/stats/summary`
//! (through the node proxy's client) and reshapes it. A node that does not
//! answer is left out, as metrics-server leaves out nodes it could not
//! scrape; a pod without stats is left out of lists and 404 on a get.
//!
//! CPU is the agent's `usageNanoCores`: the rate between its last two
//! samples of the cgroup's counter, taken every 10 s (and on a request
//! when the last is over a second old), so `window` is reported as that
//! interval.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Response};
use serde_json::{Value, json};

use super::Req;
use super::list::Filter;
use crate::App;
use crate::error::{ApiError, ApiResult, Target};
use crate::wire::{self, Body};

/// How long one node may take to answer.
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// The agent's sampling interval (`skiff_streaming::stats::SAMPLE_INTERVAL`).
const WINDOW: &str = "10s";

pub async fn serve(app: &Arc<App>, req: &Req) -> ApiResult<Response<Body>> {
    if req.method != Method::GET {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    if req.path.subresource.is_some() {
        return Err(ApiError::not_found_path());
    }
    if req.query.flag("watch") {
        return Err(ApiError::method_not_allowed("watch"));
    }
    app.cache.sync().await?;
    match req.kind.kind.as_str() {
        "NodeMetrics" => nodes(app, req).await,
        _ => pods(app, req).await,
    }
}

fn core_kind(app: &Arc<App>, plural: &str) -> ApiResult<Arc<skiff_api::kinds::KindInfo>> {
    app.registry
        .snapshot()
        .resource("", "v1", plural)
        .cloned()
        .ok_or_else(ApiError::not_found_path)
}

/// Each node's summary, fetched concurrently; failures are skipped.
async fn summaries(
    app: &Arc<App>,
    nodes: &[Arc<crate::cache::CachedObject>],
) -> HashMap<String, Value> {
    let fetches = nodes.iter().map(|n| {
        let app = app.clone();
        let node = n.value.clone();
        async move {
            let name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
            let got = crate::node_proxy::get_from_node(&app, &node, "/stats/summary", NODE_TIMEOUT)
                .await
                .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(ApiError::internal));
            match got {
                Ok(v) => Some((name, v)),
                Err(e) => {
                    tracing::debug!(node = %name, error = %e.message, "no stats from node");
                    None
                }
            }
        }
    });
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn nodes(app: &Arc<App>, req: &Req) -> ApiResult<Response<Body>> {
    let nodes_kind = core_kind(app, "nodes")?;
    let mut filter = Filter::from_req(req)?;
    filter.group = String::new();
    filter.kind = "Node".into();
    let name = req.path.name.clone();
    let (nodes, _, _) = app
        .cache
        .list(&nodes_kind.key_prefix(), None, 0, |o| match &name {
            Some(n) => o.value["metadata"]["name"] == n.as_str(),
            None => filter.matches(&o.value),
        });
    let stats = summaries(app, &nodes).await;
    let items: Vec<Value> = nodes
        .iter()
        .filter_map(|n| {
            let name = n.value["metadata"]["name"].as_str()?;
            node_metrics(&n.value, stats.get(name)?)
        })
        .collect();
    match name {
        Some(n) => items
            .into_iter()
            .next()
            .map(|m| wire::json(200, &m))
            .ok_or_else(|| {
                ApiError::not_found(Target {
                    group: "metrics.k8s.io",
                    plural: "nodemetrics",
                    name: &n,
                })
            }),
        None => Ok(wire::json(200, &list("NodeMetricsList", items))),
    }
}

async fn pods(app: &Arc<App>, req: &Req) -> ApiResult<Response<Body>> {
    let pods_kind = core_kind(app, "pods")?;
    let nodes_kind = core_kind(app, "nodes")?;
    let mut filter = Filter::from_req(req)?;
    filter.group = String::new();
    filter.kind = "Pod".into();
    let namespace = req.namespace().map(str::to_string);
    let name = req.path.name.clone();
    let (pods, _, _) = app.cache.list(
        &pods_kind.namespace_prefix(namespace.as_deref()),
        None,
        0,
        |o| match &name {
            Some(n) => o.value["metadata"]["name"] == n.as_str(),
            None => filter.matches(&o.value),
        },
    );
    // Only the nodes these pods run on are asked.
    let mut node_names: Vec<&str> = pods
        .iter()
        .filter_map(|p| p.value["spec"]["nodeName"].as_str())
        .filter(|n| !n.is_empty())
        .collect();
    node_names.sort_unstable();
    node_names.dedup();
    let nodes: Vec<_> = node_names
        .iter()
        .filter_map(|n| app.cache.get(&nodes_kind.key(None, n)))
        .collect();
    let stats = summaries(app, &nodes).await;
    // (namespace, name, uid) → the pod's entry in its node's summary.
    let mut by_pod: HashMap<(&str, &str, &str), &Value> = HashMap::new();
    for s in stats.values() {
        for p in s["pods"].as_array().into_iter().flatten() {
            let r = &p["podRef"];
            if let (Some(ns), Some(n), Some(u)) = (
                r["namespace"].as_str(),
                r["name"].as_str(),
                r["uid"].as_str(),
            ) {
                by_pod.insert((ns, n, u), p);
            }
        }
    }
    let items: Vec<Value> = pods
        .iter()
        .filter_map(|p| {
            let m = &p.value["metadata"];
            let key = (
                m["namespace"].as_str()?,
                m["name"].as_str()?,
                m["uid"].as_str()?,
            );
            pod_metrics(&p.value, by_pod.get(&key)?)
        })
        .collect();
    match name {
        Some(n) => items
            .into_iter()
            .next()
            .map(|m| wire::json(200, &m))
            .ok_or_else(|| {
                let full = format!("{}/{n}", namespace.unwrap_or_default());
                ApiError::not_found(Target {
                    group: "metrics.k8s.io",
                    plural: "podmetrics",
                    name: &full,
                })
            }),
        None => Ok(wire::json(200, &list("PodMetricsList", items))),
    }
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": items,
    })
}

/// nanocores as a quantity (`12345n`), as metrics-server prints them.
pub fn cpu_quantity(nanocores: u64) -> String {
    format!("{nanocores}n")
}

/// Bytes as a binary-SI quantity (`1024` → `1Ki`), the form
/// metrics-server's `resource.NewQuantity(.., BinarySI)` prints.
pub fn memory_quantity(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    for (shift, suffix) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

fn usage(stats: &Value) -> Option<Value> {
    Some(json!({
        "cpu": cpu_quantity(stats["cpu"]["usageNanoCores"].as_u64()?),
        "memory": memory_quantity(stats["memory"]["workingSetBytes"].as_u64()?),
    }))
}

fn labels(obj: &Value) -> Value {
    obj["metadata"]["labels"]
        .as_object()
        .map(|l| Value::Object(l.clone()))
        .unwrap_or_else(|| json!({}))
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A Node and its node's summary → NodeMetrics.
pub fn node_metrics(node: &Value, summary: &Value) -> Option<Value> {
    let s = &summary["node"];
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": node["metadata"]["name"],
            "creationTimestamp": now(),
            "labels": labels(node),
        },
        "timestamp": s["cpu"]["time"],
        "window": WINDOW,
        "usage": usage(s)?,
    }))
}

/// A Pod and its entry in its node's summary → PodMetrics, containers in
/// the pod's spec order.
pub fn pod_metrics(pod: &Value, stats: &Value) -> Option<Value> {
    let by_name: BTreeMap<&str, &Value> = stats["containers"]
        .as_array()?
        .iter()
        .filter_map(|c| Some((c["name"].as_str()?, c)))
        .collect();
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            let s = by_name.get(name)?;
            Some(json!({"name": name, "usage": usage(s)?}))
        })
        .collect();
    if containers.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": pod["metadata"]["name"],
            "namespace": pod["metadata"]["namespace"],
            "creationTimestamp": now(),
            "labels": labels(pod),
        },
        "timestamp": stats["cpu"]["time"],
        "window": WINDOW,
        "containers": containers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu_quantity(1_500_000), "1500000n");
        assert_eq!(memory_quantity(0), "0");
        assert_eq!(memory_quantity(4096), "4Ki");
        assert_eq!(memory_quantity(3 << 20), "3Mi");
        assert_eq!(memory_quantity(1000), "1000");
    }

    #[test]
    fn shapes() {
        let node = json!({"metadata": {"name": "n1", "labels": {"a": "b"}}});
        let summary = json!({"node": {
            "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 250_000_000u64},
            "memory": {"workingSetBytes": 1u64 << 30},
        }});
        let m = node_metrics(&node, &summary).unwrap();
        assert_eq!(m["usage"], json!({"cpu": "250000000n", "memory": "1Gi"}));
        assert_eq!(m["metadata"]["labels"]["a"], "b");

        let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "b"}, {"name": "a"}, {"name": "gone"}]}});
        let stats = json!({"cpu": {"time": "t"}, "containers": [
            {"name": "a", "cpu": {"usageNanoCores": 1}, "memory": {"workingSetBytes": 2048}},
            {"name": "b", "cpu": {"usageNanoCores": 2}, "memory": {"workingSetBytes": 1024}},
        ]});
        let m = pod_metrics(&pod, &stats).unwrap();
        let names: Vec<&str> = m["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(m["containers"][1]["usage"]["memory"], "2Ki");
        assert!(pod_metrics(&pod, &json!({"containers": []})).is_none());
    }
}
