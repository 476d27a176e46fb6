//! Defaults of the core group (`pkg/apis/core/v1/defaults.go`).

use serde_json::{Map, Value, json};

use super::pod::{self, claim_spec, legacy_sources};
use super::{canon_list, default, default_str, each_obj, ensure_obj, non_empty, obj_mut, unset};

pub fn apply(kind: &str, obj: &mut Value) {
    match kind {
        "Pod" => pod::pod(obj),
        "PodTemplate" => {
            if let Some(o) = obj.as_object_mut() {
                pod::template(o, "template");
            }
        }
        "ReplicationController" => replication_controller(obj),
        "Service" => service(obj),
        "Secret" => {
            if let Some(o) = obj.as_object_mut() {
                default_str(o, "type", "Opaque");
            }
        }
        "Namespace" => namespace(obj),
        "PersistentVolume" => persistent_volume(obj),
        "PersistentVolumeClaim" => persistent_volume_claim(obj),
        "Endpoints" => {
            if let Some(o) = obj.as_object_mut() {
                each_obj(o, "subsets", |s| {
                    each_obj(s, "ports", |p| default_str(p, "protocol", "TCP"))
                });
            }
        }
        "Node" => node(obj),
        "LimitRange" => limit_range(obj),
        "ResourceQuota" => {
            if let Some(o) = obj.as_object_mut() {
                if let Some(spec) = obj_mut(o, "spec") {
                    canon_list(spec, "hard");
                }
                if let Some(status) = obj_mut(o, "status") {
                    canon_list(status, "hard");
                    canon_list(status, "used");
                }
            }
        }
        _ => {}
    }
}

fn spec_of(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("spec").and_then(Value::as_object_mut)
}

/// An RC without a selector selects its template's labels, and an RC
/// without labels takes them from the template too.
fn replication_controller(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(spec) = obj_mut(o, "spec") {
        default(spec, "replicas", json!(1));
        if let Some(labels) = &labels
            && !non_empty(spec, "selector")
        {
            spec.insert("selector".into(), labels.clone());
        }
        pod::template(spec, "template");
    }
    if let Some(labels) = labels
        && let Some(meta) = ensure_obj(o, "metadata")
        && !non_empty(meta, "labels")
    {
        meta.insert("labels".into(), labels);
    }
}

fn service(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": 10800}}),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    each_obj(spec, "ports", |p| {
        default_str(p, "protocol", "TCP");
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset && let Some(port) = p.get("port").filter(|v| v.is_i64()).cloned() {
            p.insert("targetPort".into(), port);
        }
    });
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && non_empty(spec, "externalIPs"));
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    ip_families(spec, &ty);
    if ty == "LoadBalancer"
        && let Some(ingress) = obj
            .get_mut("status")
            .and_then(|s| s.get_mut("loadBalancer"))
            .and_then(|l| l.get_mut("ingress"))
            .and_then(Value::as_array_mut)
    {
        for i in ingress.iter_mut().filter_map(Value::as_object_mut) {
            if i.get("ip")
                .and_then(Value::as_str)
                .is_some_and(|ip| !ip.is_empty())
            {
                default(i, "ipMode", json!("VIP"));
            }
        }
    }
}

/// What upstream's service REST storage fills in for IP families on a
/// single-stack IPv4 cluster (the cluster IP allocation itself is not done
/// here). ExternalName services have neither field. A headless service
/// without a selector asks for every family the cluster has.
fn ip_families(spec: &mut Map<String, Value>, ty: &str) {
    if ty == "ExternalName" {
        return;
    }
    let first_ip = spec
        .get("clusterIPs")
        .and_then(|ips| ips.get(0))
        .or_else(|| spec.get("clusterIP"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let headless = first_ip == "None";
    if headless && !non_empty(spec, "selector") {
        default(spec, "ipFamilyPolicy", json!("RequireDualStack"));
    } else {
        default(spec, "ipFamilyPolicy", json!("SingleStack"));
    }
    if !non_empty(spec, "ipFamilies") {
        let family = if first_ip.contains(':') {
            "IPv6"
        } else {
            "IPv4"
        };
        spec.insert("ipFamilies".into(), json!([family]));
    }
}

/// Upstream keeps `clusterIP` and `clusterIPs[0]` equal (registry strategy).
pub fn service_cluster_ips(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else {
        return;
    };
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !ip.is_empty() && !non_empty(spec, "clusterIPs") {
        spec.insert("clusterIPs".into(), json!([ip]));
    } else if ip.is_empty()
        && let Some(first) = spec.get("clusterIPs").and_then(|v| v.get(0)).cloned()
    {
        spec.insert("clusterIP".into(), first);
    }
}

/// Every namespace carries its own name as the label
/// `kubernetes.io/metadata.name`, so selectors can pick namespaces by name.
fn namespace(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty()
        && let Some(labels) = ensure_obj(o, "metadata").and_then(|m| ensure_obj(m, "labels"))
    {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Active");
    }
}

pub fn namespace_on_create(obj: &mut Value) {
    let Some(spec) = obj.as_object_mut().and_then(|o| ensure_obj(o, "spec")) else {
        return;
    };
    match spec.get_mut("finalizers") {
        Some(Value::Array(f)) if !f.iter().any(|v| v == "kubernetes") => {
            f.push(json!("kubernetes"));
        }
        None | Some(Value::Null) => {
            spec.insert("finalizers".into(), json!(["kubernetes"]));
        }
        _ => {}
    }
}

fn persistent_volume(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Pending");
    }
    if let Some(spec) = obj_mut(o, "spec") {
        default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
        default(spec, "volumeMode", json!("Filesystem"));
        canon_list(spec, "capacity");
        if let Some(h) = obj_mut(spec, "hostPath") {
            default(h, "type", json!(""));
        }
        legacy_sources(spec);
    }
}

fn persistent_volume_claim(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    claim(o);
}

/// A PVC, also the templates of a StatefulSet.
pub fn claim(o: &mut Map<String, Value>) {
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Pending");
        canon_list(status, "capacity");
        canon_list(status, "allocatedResources");
    }
    if let Some(spec) = ensure_obj(o, "spec") {
        claim_spec(spec);
    }
}

fn node(obj: &mut Value) {
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if unset(status, "allocatable")
        && let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        status.insert("allocatable".into(), cap);
    }
    canon_list(status, "capacity");
    canon_list(status, "allocatable");
}

/// A container limit range fills `default` from `max`, then
/// `defaultRequest` from `default`, then from `min`.
fn limit_range(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else {
        return;
    };
    each_obj(spec, "limits", |item| {
        if item.get("type").and_then(Value::as_str) == Some("Container") {
            let copy = |item: &mut Map<String, Value>, from: &str, to: &str| {
                let Some(src) = item.get(from).and_then(Value::as_object).cloned() else {
                    return;
                };
                if let Some(dst) = ensure_obj(item, to) {
                    for (k, v) in src {
                        dst.entry(k).or_insert(v);
                    }
                }
            };
            copy(item, "max", "default");
            copy(item, "default", "defaultRequest");
            copy(item, "min", "defaultRequest");
        }
        for list in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            canon_list(item, list);
        }
    });
}
