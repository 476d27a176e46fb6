//! Defaults of the smaller groups: networking, discovery, RBAC, scheduling,
//! storage, autoscaling, admission registration, API extensions, node.

use serde_json::{Map, Value, json};

use super::{
    canon_list, canon_quantity, default, default_str, each_obj, ensure_obj, non_empty, obj_mut,
};

pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    match (group, kind) {
        ("networking.k8s.io", "NetworkPolicy") => network_policy(o),
        ("networking.k8s.io", "IngressClass") => {
            if let Some(p) = obj_mut(o, "spec").and_then(|s| obj_mut(s, "parameters")) {
                default(p, "scope", json!("Cluster"));
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => each_obj(o, "ports", |p| {
            default(p, "name", json!(""));
            default(p, "protocol", json!("TCP"));
        }),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if let Some(r) = obj_mut(o, "roleRef") {
                default_str(r, "apiGroup", "rbac.authorization.k8s.io");
            }
            each_obj(o, "subjects", subject);
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default(o, "preemptionPolicy", json!("PreemptLowerPriority"))
        }
        ("storage.k8s.io", "StorageClass") => {
            default(o, "reclaimPolicy", json!("Delete"));
            default(o, "volumeBindingMode", json!("Immediate"));
        }
        ("storage.k8s.io", "CSIDriver") => csi_driver(o),
        ("storage.k8s.io", "CSIStorageCapacity") => {
            canon_quantity(o, "capacity");
            canon_quantity(o, "maximumVolumeSize");
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(o),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
        ) => {
            let mutating = kind.starts_with("Mutating");
            each_obj(o, "webhooks", |w| webhook(w, mutating));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(o),
        ("node.k8s.io", "RuntimeClass") => {
            if let Some(oh) = obj_mut(o, "overhead") {
                canon_list(oh, "podFixed");
            }
        }
        _ => {}
    }
}

/// A policy that names no types is an Ingress policy, and an Egress one
/// too when it has egress rules; ports without a protocol mean TCP.
fn network_policy(o: &mut Map<String, Value>) {
    let Some(spec) = obj_mut(o, "spec") else {
        return;
    };
    if !non_empty(spec, "policyTypes") {
        let mut types = vec![json!("Ingress")];
        if non_empty(spec, "egress") {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
    for dir in ["ingress", "egress"] {
        each_obj(spec, dir, |rule| {
            each_obj(rule, "ports", |p| default(p, "protocol", json!("TCP")));
        });
    }
}

fn subject(s: &mut Map<String, Value>) {
    let empty = s
        .get("apiGroup")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if empty
        && matches!(
            s.get("kind").and_then(Value::as_str),
            Some("User" | "Group")
        )
    {
        s.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
    }
}

fn csi_driver(o: &mut Map<String, Value>) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default(spec, "attachRequired", json!(true));
    default(spec, "podInfoOnMount", json!(false));
    default(spec, "storageCapacity", json!(false));
    default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    if !non_empty(spec, "volumeLifecycleModes") {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    default(spec, "requiresRepublish", json!(false));
    default(spec, "seLinuxMount", json!(false));
}

/// `autoscaling/v1` only defaults `minReplicas`; `v2` also targets 80% CPU
/// when no metric is given and fills a partial `behavior`.
fn hpa(o: &mut Map<String, Value>) {
    let v1 = o.get("apiVersion").and_then(Value::as_str) == Some("autoscaling/v1");
    let Some(spec) = obj_mut(o, "spec") else {
        return;
    };
    default(spec, "minReplicas", json!(1));
    if v1 {
        return;
    }
    if !non_empty(spec, "metrics") {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    if let Some(b) = obj_mut(spec, "behavior") {
        scaling_rules(
            b,
            "scaleUp",
            json!(0),
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                   {"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
        scaling_rules(
            b,
            "scaleDown",
            Value::Null,
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
        );
    }
    each_obj(spec, "metrics", |m| {
        for source in [
            "resource",
            "containerResource",
            "pods",
            "object",
            "external",
        ] {
            if let Some(t) = obj_mut(m, source).and_then(|s| obj_mut(s, "target")) {
                canon_quantity(t, "value");
                canon_quantity(t, "averageValue");
            }
        }
    });
}

fn scaling_rules(b: &mut Map<String, Value>, key: &str, window: Value, policies: Value) {
    let Some(r) = ensure_obj(b, key) else {
        return;
    };
    if !window.is_null() {
        default(r, "stabilizationWindowSeconds", window);
    }
    default(r, "selectPolicy", json!("Max"));
    default(r, "policies", policies);
}

fn webhook(w: &mut Map<String, Value>, mutating: bool) {
    default(w, "failurePolicy", json!("Fail"));
    default(w, "matchPolicy", json!("Equivalent"));
    default(w, "namespaceSelector", json!({}));
    default(w, "objectSelector", json!({}));
    default(w, "timeoutSeconds", json!(10));
    if mutating {
        default(w, "reinvocationPolicy", json!("Never"));
    }
    each_obj(w, "rules", |r| default(r, "scope", json!("*")));
    if let Some(s) = obj_mut(w, "clientConfig").and_then(|c| obj_mut(c, "service")) {
        default(s, "port", json!(443));
    }
}

fn crd(o: &mut Map<String, Value>) {
    let mut storage = None;
    if let Some(spec) = obj_mut(o, "spec") {
        if let Some(names) = obj_mut(spec, "names") {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            default_str(names, "singular", &kind.to_lowercase());
            if !kind.is_empty() {
                default_str(names, "listKind", &format!("{kind}List"));
            }
        }
        default(spec, "conversion", json!({"strategy": "None"}));
        if let Some(s) = obj_mut(spec, "conversion")
            .and_then(|c| obj_mut(c, "webhook"))
            .and_then(|w| obj_mut(w, "clientConfig"))
            .and_then(|c| obj_mut(c, "service"))
        {
            default(s, "port", json!(443));
        }
        storage = spec
            .get("versions")
            .and_then(Value::as_array)
            .and_then(|vs| vs.iter().find(|v| v.get("storage") == Some(&json!(true))))
            .and_then(|v| v.get("name"))
            .cloned();
    }
    if let Some(name) = storage
        && let Some(status) = ensure_obj(o, "status")
        && !non_empty(status, "storedVersions")
    {
        status.insert("storedVersions".into(), json!([name]));
    }
}
