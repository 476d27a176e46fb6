//! The remaining API groups, one realistic object per kind.

use serde_json::{Value, json};

use super::{ago, check, check_headers};

fn meta(name: &str, age_secs: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_secs)})
}

#[test]
fn ingress() {
    let obj = json!({
        "metadata": meta("shop", 3600),
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [
                {"host": "shop.example.com", "http": {"paths": []}},
                {"http": {"paths": []}},
                {"host": "api.example.com"},
                {"host": "admin.example.com"},
                {"host": "extra.example.com"},
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.10"}, {"ip": "172.18.0.2"}]}},
    });
    check(
        "networking.k8s.io/Ingress",
        obj,
        json!([
            "shop",
            "nginx",
            "shop.example.com,api.example.com,admin.example.com + 2 more...",
            "172.18.0.10,172.18.0.2",
            "80, 443",
            "60m"
        ]),
    );
    let bare = json!({"metadata": meta("catch-all", 60), "spec": {"defaultBackend": {}}});
    check(
        "networking.k8s.io/Ingress",
        bare,
        json!(["catch-all", "<none>", "*", "", "80", "60s"]),
    );
}

#[test]
fn ingress_class_and_network_policy() {
    let class = json!({
        "metadata": {"name": "nginx", "creationTimestamp": ago(60)},
        "spec": {"controller": "k8s.io/ingress-nginx",
                 "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}},
    });
    check(
        "networking.k8s.io/IngressClass",
        class,
        json!([
            "nginx",
            "k8s.io/ingress-nginx",
            "IngressParameters.k8s.example.com/external-lb",
            "60s"
        ]),
    );
    let deny = json!({"metadata": meta("default-deny", 60), "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    check(
        "networking.k8s.io/NetworkPolicy",
        deny,
        json!(["default-deny", "<none>", "60s"]),
    );
    let db = json!({"metadata": meta("db", 60), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    check(
        "networking.k8s.io/NetworkPolicy",
        db,
        json!(["db", "role=db", "60s"]),
    );
}

#[test]
fn pod_disruption_budget() {
    let obj = json!({
        "metadata": meta("web", 60),
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}},
        "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3},
    });
    check(
        "policy/PodDisruptionBudget",
        obj,
        json!(["web", "50%", "N/A", 1, "60s"]),
    );
    let max = json!({"metadata": meta("db", 60), "spec": {"maxUnavailable": 1}});
    check(
        "policy/PodDisruptionBudget",
        max,
        json!(["db", "N/A", "1", 0, "60s"]),
    );
}

#[test]
fn rbac() {
    check_headers(
        "rbac.authorization.k8s.io/ClusterRole",
        &[("Name", 0), ("Created At", 0)],
    );
    let role = json!({"metadata": {"name": "admin", "creationTimestamp": "2024-04-01T08:00:00Z"}, "rules": []});
    check(
        "rbac.authorization.k8s.io/ClusterRole",
        role.clone(),
        json!(["admin", "2024-04-01T08:00:00Z"]),
    );
    check(
        "rbac.authorization.k8s.io/Role",
        role,
        json!(["admin", "2024-04-01T08:00:00Z"]),
    );
    let binding = json!({
        "metadata": meta("readers", 600),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "devs"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"},
            {"kind": "User", "name": "bob"},
        ],
    });
    check(
        "rbac.authorization.k8s.io/RoleBinding",
        binding.clone(),
        json!([
            "readers",
            "ClusterRole/view",
            "10m",
            "alice, bob",
            "devs",
            "build/ci"
        ]),
    );
    check(
        "rbac.authorization.k8s.io/ClusterRoleBinding",
        binding,
        json!([
            "readers",
            "ClusterRole/view",
            "10m",
            "alice, bob",
            "devs",
            "build/ci"
        ]),
    );
}

#[test]
fn storage() {
    let mut class = json!({
        "metadata": {"name": "standard", "creationTimestamp": ago(86400 * 30)},
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
    });
    class["metadata"]["annotations"] =
        json!({"storageclass.kubernetes.io/is-default-class": "true"});
    check(
        "storage.k8s.io/StorageClass",
        class,
        json!([
            "standard (default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            false,
            "30d"
        ]),
    );
    let attachment = json!({
        "metadata": {"name": "csi-123", "creationTimestamp": ago(60)},
        "spec": {"attacher": "ebs.csi.aws.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}},
        "status": {"attached": true},
    });
    check(
        "storage.k8s.io/VolumeAttachment",
        attachment,
        json!(["csi-123", "ebs.csi.aws.com", "pv-1", "node-1", true, "60s"]),
    );
    let driver = json!({
        "metadata": {"name": "hostpath.csi.k8s.io", "creationTimestamp": ago(60)},
        "spec": {"attachRequired": false, "podInfoOnMount": true, "volumeLifecycleModes": ["Persistent", "Ephemeral"],
                 "tokenRequests": [{"audience": "vault"}, {"audience": "gcp"}]},
    });
    check(
        "storage.k8s.io/CSIDriver",
        driver,
        json!([
            "hostpath.csi.k8s.io",
            false,
            true,
            false,
            "vault,gcp",
            false,
            "Persistent,Ephemeral",
            "60s"
        ]),
    );
    let bare_driver = json!({"metadata": {"name": "d", "creationTimestamp": ago(60)}, "spec": {}});
    check(
        "storage.k8s.io/CSIDriver",
        bare_driver,
        json!(["d", true, false, false, "<unset>", false, "<none>", "60s"]),
    );
    let csi_node = json!({
        "metadata": {"name": "node-1", "creationTimestamp": ago(60)},
        "spec": {"drivers": [{"name": "hostpath.csi.k8s.io", "nodeID": "node-1"}]},
    });
    check(
        "storage.k8s.io/CSINode",
        csi_node,
        json!(["node-1", 1, "60s"]),
    );
}

#[test]
fn lease_and_endpoint_slice() {
    let lease = json!({
        "metadata": {"name": "node-1", "namespace": "kube-node-lease", "creationTimestamp": ago(3600)},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40, "renewTime": "2024-05-01T11:59:58.000000Z"},
    });
    check(
        "coordination.k8s.io/Lease",
        lease,
        json!(["node-1", "node-1", "60m"]),
    );
    let slice = json!({
        "metadata": meta("web-abc12", 60),
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "metrics"}, {}, {"port": 9090}],
        "endpoints": [
            {"addresses": ["10.244.1.5"], "conditions": {"ready": true}},
            {"addresses": ["10.244.2.7"], "conditions": {"ready": true}},
        ],
    });
    check(
        "discovery.k8s.io/EndpointSlice",
        slice,
        json!([
            "web-abc12",
            "IPv4",
            "8080,metrics,* + 1 more...",
            "10.244.1.5,10.244.2.7",
            "60s"
        ]),
    );
    let empty = json!({"metadata": meta("e", 60), "addressType": "IPv6"});
    check(
        "discovery.k8s.io/EndpointSlice",
        empty,
        json!(["e", "IPv6", "<unset>", "<unset>", "60s"]),
    );
}

#[test]
fn events_k8s_io() {
    let obj = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta("web.17c9", 600),
        "eventTime": "2024-05-01T11:50:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:00.000000Z"},
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "action": "Pulling",
        "reason": "BackOff",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default", "fieldPath": "spec.containers{app}"},
        "note": "Back-off pulling image \"app:9\"",
        "type": "Warning",
    });
    check(
        "events.k8s.io/Event",
        obj,
        json!([
            "60s",
            "Warning",
            "BackOff",
            "pod/web",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off pulling image \"app:9\"",
            "10m",
            7,
            "web.17c9"
        ]),
    );
}

#[test]
fn scheduling_node_certificates() {
    let pc = json!({
        "metadata": {"name": "high", "creationTimestamp": ago(60)},
        "value": 1000000,
        "globalDefault": false,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": "important",
    });
    check_headers(
        "scheduling.k8s.io/PriorityClass",
        &[
            ("Name", 0),
            ("Value", 0),
            ("Global-Default", 0),
            ("Age", 0),
            ("PreemptionPolicy", 0),
        ],
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        pc,
        json!(["high", 1000000, false, "60s", "PreemptLowerPriority"]),
    );
    let rc =
        json!({"metadata": {"name": "gvisor", "creationTimestamp": ago(60)}, "handler": "runsc"});
    check(
        "node.k8s.io/RuntimeClass",
        rc,
        json!(["gvisor", "runsc", "60s"]),
    );
    let csr = json!({
        "metadata": {"name": "csr-abc", "creationTimestamp": ago(120)},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "system:admin",
                 "expirationSeconds": 86400, "request": "LS0t", "usages": ["client auth"]},
        "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0tLS1CRUdJTg=="},
    });
    check(
        "certificates.k8s.io/CertificateSigningRequest",
        csr,
        json!([
            "csr-abc",
            "2m",
            "kubernetes.io/kube-apiserver-client",
            "system:admin",
            "24h",
            "Approved,Issued"
        ]),
    );
    let pending = json!({"metadata": {"name": "p", "creationTimestamp": ago(5)}, "spec": {"username": "u"},
                         "status": {"conditions": [{"type": "Denied"}, {"type": "Approved"}, {"type": "Failed"}]}});
    check(
        "certificates.k8s.io/CertificateSigningRequest",
        pending,
        json!(["p", "5s", "<none>", "u", "<none>", "Denied,Failed"]),
    );
}

#[test]
fn admission_registration() {
    let webhooks = json!({
        "metadata": {"name": "policy", "creationTimestamp": ago(60)},
        "webhooks": [{"name": "a.example.com"}, {"name": "b.example.com"}],
    });
    check(
        "admissionregistration.k8s.io/MutatingWebhookConfiguration",
        webhooks.clone(),
        json!(["policy", 2, "60s"]),
    );
    check(
        "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
        webhooks,
        json!(["policy", 2, "60s"]),
    );
    let policy = json!({
        "metadata": {"name": "replica-limit", "creationTimestamp": ago(60)},
        "spec": {
            "paramKind": {"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"},
            "validations": [{"expression": "object.spec.replicas <= params.maxReplicas"}],
        },
    });
    check(
        "admissionregistration.k8s.io/ValidatingAdmissionPolicy",
        policy,
        json!([
            "replica-limit",
            1,
            "rules.example.com/v1/ReplicaLimit",
            "60s"
        ]),
    );
    let binding = |param_ref: Value| {
        json!({
            "metadata": {"name": "b", "creationTimestamp": ago(60)},
            "spec": {"policyName": "replica-limit", "paramRef": param_ref, "validationActions": ["Deny"]},
        })
    };
    let kind = "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding";
    check(
        kind,
        binding(json!({"name": "limits", "namespace": "prod"})),
        json!(["b", "replica-limit", "prod/limits", "60s"]),
    );
    check(
        kind,
        binding(json!({"name": "limits"})),
        json!(["b", "replica-limit", "*/limits", "60s"]),
    );
    check(
        kind,
        binding(
            json!({"selector": {"matchLabels": {"env": "prod"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}}),
        ),
        json!([
            "b",
            "replica-limit",
            "&LabelSelector{MatchLabels:map[string]string{env: prod,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:In,Values:[a b],},},}",
            "60s"
        ]),
    );
    check(
        kind,
        json!({"metadata": {"name": "b", "creationTimestamp": ago(60)}, "spec": {"policyName": "p"}}),
        json!(["b", "p", "<unset>", "60s"]),
    );
}

#[test]
fn custom_resource_definitions_use_the_default_table() {
    let crd = json!({
        "metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-04-30T23:59:59+02:00"},
        "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced"},
    });
    check(
        "apiextensions.k8s.io/CustomResourceDefinition",
        crd,
        json!(["widgets.example.com", "2024-04-30T21:59:59Z"]),
    );
    let no_time = json!({"metadata": {"name": "x"}});
    check(
        "example.com/Widget",
        no_time,
        json!(["x", "0001-01-01T00:00:00Z"]),
    );
}

#[test]
fn beyond_the_core_list() {
    let cs = json!({"metadata": {"name": "etcd-0"},
                    "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
    check(
        "ComponentStatus",
        cs,
        json!(["etcd-0", "Healthy", "ok", ""]),
    );
    let scale = json!({"metadata": meta("web", 60), "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}});
    check("autoscaling/Scale", scale, json!(["web", 3, 2, "60s"]));
    let fs = json!({
        "metadata": {"name": "system-nodes", "creationTimestamp": ago(60)},
        "spec": {"priorityLevelConfiguration": {"name": "system"}, "matchingPrecedence": 500,
                 "distinguisherMethod": {"type": "ByUser"}},
        "status": {"conditions": [{"type": "Dangling", "status": "False"}]},
    });
    check(
        "flowcontrol.apiserver.k8s.io/FlowSchema",
        fs,
        json!(["system-nodes", "system", 500, "ByUser", "60s", "False"]),
    );
    let plc = json!({
        "metadata": {"name": "workload-low", "creationTimestamp": ago(60)},
        "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100,
                 "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}},
    });
    check(
        "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
        plc,
        json!(["workload-low", "Limited", 100, 128, 6, 50, "60s"]),
    );
    let exempt = json!({"metadata": {"name": "exempt", "creationTimestamp": ago(60)}, "spec": {"type": "Exempt", "exempt": {}}});
    check(
        "flowcontrol.apiserver.k8s.io/PriorityLevelConfiguration",
        exempt,
        json!([
            "exempt", "Exempt", "<none>", "<none>", "<none>", "<none>", "60s"
        ]),
    );
    let cidr = json!({"metadata": {"name": "kubernetes", "creationTimestamp": ago(60)},
                      "spec": {"cidrs": ["10.96.0.0/16", "fd00:10:96::/112"]}});
    check(
        "networking.k8s.io/ServiceCIDR",
        cidr,
        json!(["kubernetes", "10.96.0.0/16,fd00:10:96::/112", "60s"]),
    );
    let ip = json!({"metadata": {"name": "10.96.0.1"},
                    "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
    check(
        "networking.k8s.io/IPAddress",
        ip,
        json!(["10.96.0.1", "services/default/kubernetes"]),
    );
    let claim = json!({"metadata": meta("gpu", 60), "status": {"allocation": {}, "reservedFor": [{"resource": "pods", "name": "p"}]}});
    check(
        "resource.k8s.io/ResourceClaim",
        claim,
        json!(["gpu", "allocated,reserved", "60s"]),
    );
    let pending = json!({"metadata": meta("gpu2", 60)});
    check(
        "resource.k8s.io/ResourceClaim",
        pending,
        json!(["gpu2", "pending", "60s"]),
    );
    let slice = json!({"metadata": {"name": "node-1-gpu", "creationTimestamp": ago(60)},
                       "spec": {"nodeName": "node-1", "driver": "gpu.example.com", "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1}}});
    check(
        "resource.k8s.io/ResourceSlice",
        slice,
        json!(["node-1-gpu", "node-1", "gpu.example.com", "node-1", "60s"]),
    );
    check(
        "resource.k8s.io/DeviceClass",
        json!({"metadata": {"name": "gpu", "creationTimestamp": ago(60)}}),
        json!(["gpu", "60s"]),
    );
}
