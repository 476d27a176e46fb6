use serde_json::json;

use crate::check;

#[test]
fn networking_and_discovery() {
    check(
        "networking.k8s.io/NetworkPolicy",
        json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
        json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}]}}),
    );
    check(
        "networking.k8s.io/NetworkPolicy",
        json!({"spec": {"podSelector": {}}}),
        json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}),
    );
    // Ingress paths get no pathType default in networking.k8s.io/v1.
    let ingress = json!({"spec": {"rules": [{"http": {"paths": [{"path": "/",
        "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}});
    check("networking.k8s.io/Ingress", ingress.clone(), ingress);
    check(
        "discovery.k8s.io/EndpointSlice",
        json!({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]}),
        json!({"addressType": "IPv4", "endpoints": [],
            "ports": [{"port": 80, "name": "", "protocol": "TCP"}]}),
    );
}

#[test]
fn rbac_scheduling_storage() {
    check(
        "rbac.authorization.k8s.io/RoleBinding",
        json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}]}),
        json!({"roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [
            {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}]}),
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        json!({"value": 1000}),
        json!({"value": 1000, "preemptionPolicy": "PreemptLowerPriority"}),
    );
    check(
        "storage.k8s.io/StorageClass",
        json!({"provisioner": "p"}),
        json!({"provisioner": "p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
    );
    check(
        "storage.k8s.io/CSIDriver",
        json!({"spec": {}}),
        json!({"spec": {"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
            "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
            "requiresRepublish": false, "seLinuxMount": false}}),
    );
}

#[test]
fn horizontal_pod_autoscaler() {
    check(
        "autoscaling/HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5, "minReplicas": 1,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]}}}}),
    );
    check(
        "autoscaling/HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v2", "spec": {"metrics": [{"type": "Pods",
            "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1000m"}}}]}}),
        json!({"apiVersion": "autoscaling/v2", "spec": {"minReplicas": 1, "metrics": [{"type": "Pods",
            "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1"}}}]}}),
    );
    check(
        "autoscaling/HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3}}),
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3, "minReplicas": 1}}),
    );
}

#[test]
fn webhooks_and_crds() {
    check(
        "admissionregistration.k8s.io/MutatingWebhookConfiguration",
        json!({"webhooks": [{"name": "w.example.com", "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "s", "namespace": "n"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["pods"]}]}]}),
        json!({"webhooks": [{"name": "w.example.com", "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "s", "namespace": "n", "port": 443}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                "resources": ["pods"], "scope": "*"}],
            "failurePolicy": "Fail", "matchPolicy": "Equivalent", "namespaceSelector": {},
            "objectSelector": {}, "timeoutSeconds": 10, "reinvocationPolicy": "Never"}]}),
    );
    check(
        "apiextensions.k8s.io/CustomResourceDefinition",
        json!({"spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced", "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        json!({"spec": {"group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced", "versions": [{"name": "v1", "served": true, "storage": true}],
            "conversion": {"strategy": "None"}},
            "status": {"storedVersions": ["v1"]}}),
    );
}
