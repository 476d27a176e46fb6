//! No object shape makes a printer panic or return a row of the wrong width.

use serde_json::{Value, json};
use skiff_api::table;

const KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PodTemplate"),
    ("", "Service"),
    ("", "Endpoints"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "Namespace"),
    ("", "Node"),
    ("", "ServiceAccount"),
    ("", "Event"),
    ("", "PersistentVolume"),
    ("", "PersistentVolumeClaim"),
    ("", "ReplicationController"),
    ("", "ResourceQuota"),
    ("", "LimitRange"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "IngressClass"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "CSIStorageCapacity"),
    ("storage.k8s.io", "VolumeAttributesClass"),
    ("coordination.k8s.io", "Lease"),
    ("coordination.k8s.io", "LeaseCandidate"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("certificates.k8s.io", "ClusterTrustBundle"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("", "ComponentStatus"),
    ("autoscaling", "Scale"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("networking.k8s.io", "ServiceCIDR"),
    ("networking.k8s.io", "IPAddress"),
    ("resource.k8s.io", "DeviceClass"),
    ("resource.k8s.io", "ResourceClaim"),
    ("resource.k8s.io", "ResourceClaimTemplate"),
    ("resource.k8s.io", "ResourceSlice"),
    ("example.com", "Unknown"),
];

/// Objects whose fields are missing, null, or of every wrong type.
fn odd_objects() -> Vec<Value> {
    let wrong = |v: Value| {
        json!({
            "apiVersion": v, "metadata": v, "spec": v, "status": v, "subsets": v, "data": v,
            "binaryData": v, "secrets": v, "webhooks": v, "involvedObject": v, "regarding": v,
            "series": v, "template": v, "roleRef": v, "subjects": v, "ports": v, "endpoints": v,
            "revision": v, "value": v, "handler": v, "provisioner": v, "capacity": v,
        })
    };
    let mut objects = vec![json!(null), json!({}), json!([]), json!("pod"), json!(7)];
    for v in [
        json!(null),
        json!(1),
        json!(-1.5),
        json!("x"),
        json!(true),
        json!([]),
        json!({}),
        json!([{}]),
        json!([null, 1, "a"]),
    ] {
        objects.push(wrong(v.clone()));
        // One level deeper: every well-known field of the wrong type.
        objects.push(json!({
            "metadata": {"name": v, "creationTimestamp": v, "deletionTimestamp": v, "labels": v, "annotations": v, "ownerReferences": v},
            "spec": {"containers": v, "initContainers": v, "ports": v, "selector": v, "replicas": v, "metrics": v,
                     "template": {"spec": {"containers": v}}, "rules": v, "tls": v, "paramRef": v, "paramKind": v,
                     "claimRef": v, "capacity": v, "accessModes": v, "scaleTargetRef": v, "jobTemplate": v,
                     "readinessGates": v, "drivers": v, "tokenRequests": v, "podSelector": v, "parameters": v},
            "status": {"conditions": v, "containerStatuses": [v], "initContainerStatuses": [v, {"state": v, "lastState": v}],
                       "addresses": v, "loadBalancer": {"ingress": v}, "hard": v, "used": v, "currentMetrics": v,
                       "active": v, "startTime": v, "completionTime": v, "phase": v, "podIPs": v},
        }));
    }
    objects
}

#[test]
fn odd_objects_give_full_rows() {
    let now = "2024-05-01T12:00:00Z".parse().unwrap();
    for (group, kind) in KINDS {
        let width = table::columns(group, kind).len();
        for obj in odd_objects() {
            let cells = table::cells(group, kind, &obj, now);
            assert_eq!(cells.len(), width, "{group}/{kind} with {obj}");
        }
    }
}

#[test]
fn every_kind_has_a_leading_or_named_name_column() {
    for (group, kind) in KINDS {
        let columns = table::columns(group, kind);
        // Upstream's Scale table alone leaves its name column unformatted.
        let format = if *kind == "Scale" { "" } else { "name" };
        let named = columns
            .iter()
            .any(|c| c.name == "Name" && c.format == format);
        assert!(named, "{group}/{kind}");
    }
}

#[test]
fn odd_printer_columns() {
    let now = "2024-05-01T12:00:00Z".parse().unwrap();
    let columns = json!([
        {"name": "A", "type": "string", "jsonPath": ".spec[?(@.x=="},
        {"name": "B", "type": "integer", "jsonPath": "[[["},
        {"name": "C", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "D"},
        7,
    ]);
    let width = table::crd_columns(&columns).len();
    for obj in odd_objects() {
        assert_eq!(table::crd_cells(&columns, &obj, now).len(), width, "{obj}");
    }
    assert_eq!(table::crd_columns(&json!("nonsense")).len(), 2);
}

#[test]
fn huge_counts_do_not_overflow() {
    let now = "2024-05-01T12:00:00Z".parse().unwrap();
    let status =
        json!({"name": "c", "restartCount": i64::MAX, "state": {"running": {}}, "ready": true});
    let pod = json!({
        "metadata": {"name": "p", "creationTimestamp": "0001-01-01T00:00:01Z"},
        "spec": {"containers": [{"name": "c"}, {"name": "c"}]},
        "status": {"containerStatuses": [status.clone(), status], "startTime": "9999-12-31T23:59:59Z"},
    });
    let cells = table::cells("", "Pod", &pod, now);
    // Go durations saturate at about 292 years.
    assert_eq!(cells[4], "292y");
    let job = json!({"status": {"startTime": "0001-01-01T00:00:01Z", "completionTime": "9999-12-31T23:59:59Z"}});
    assert_eq!(table::cells("batch", "Job", &job, now)[3], "292y");
}
