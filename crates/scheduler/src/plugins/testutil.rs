//! Builders for plugin unit tests: pods and node infos from JSON.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::cache::Cache;
use crate::nodeinfo::NodeInfo;
use crate::podinfo::PodInfo;

pub fn pod(v: Value) -> Arc<PodInfo> {
    let mut v = v;
    if v.get("metadata").is_none() {
        v["metadata"] = json!({});
    }
    if v["metadata"].get("name").is_none() {
        v["metadata"]["name"] = json!("p");
    }
    if v["metadata"].get("namespace").is_none() {
        v["metadata"]["namespace"] = json!("default");
    }
    if v["metadata"].get("uid").is_none() {
        let n = v["metadata"]["name"].as_str().unwrap_or("p").to_string();
        v["metadata"]["uid"] = json!(format!("uid-{n}"));
    }
    if v.get("spec").is_none() {
        v["spec"] = json!({"containers": [{"name": "c"}]});
    }
    let p: Pod = serde_json::from_value(v).expect("pod JSON");
    Arc::new(PodInfo::new(Arc::new(p), &|p| {
        (p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0), false)
    }))
}

pub fn node_obj(name: &str, v: Value) -> Arc<Node> {
    let mut v = v;
    if v.get("metadata").is_none() {
        v["metadata"] = json!({});
    }
    v["metadata"]["name"] = json!(name);
    if v.pointer("/status/allocatable").is_none() {
        v["status"]["allocatable"] = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    }
    Arc::new(serde_json::from_value(v).expect("node JSON"))
}

pub fn node(name: &str, v: Value) -> NodeInfo {
    let mut n = NodeInfo::new(name);
    n.set_node(node_obj(name, v));
    n
}

pub fn cache(nodes: Vec<(&str, Value)>, pods: Vec<(&str, Arc<PodInfo>)>) -> Cache {
    let mut c = Cache::default();
    for (n, v) in nodes {
        c.upsert_node(node_obj(n, v));
    }
    for (n, p) in pods {
        c.assume(p, n);
    }
    c
}
