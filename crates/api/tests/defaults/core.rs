use serde_json::json;

use crate::{check, check_apply};

/// `kubectl run nginx --image=nginx` with limits only: requests follow
/// limits, quantities are canonical, Pod-only defaults are set, and the
/// default tolerations are added.
#[test]
fn pod() {
    check(
        "Pod",
        json!({"metadata": {"name": "nginx"}, "spec": {"containers": [{
            "name": "nginx", "image": "nginx",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": 0.5, "memory": "1024Mi"}, "requests": {"cpu": "100m"}},
            "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5}
        }]}}),
        json!({"metadata": {"name": "nginx"}, "spec": {
            "containers": [{
                "name": "nginx", "image": "nginx", "imagePullPolicy": "Always",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"},
                    "requests": {"cpu": "100m", "memory": "1Gi"}},
                "env": [{"name": "NODE", "valueFrom":
                    {"fieldRef": {"fieldPath": "spec.nodeName", "apiVersion": "v1"}}}],
                "livenessProbe": {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10,
                    "successThreshold": 1, "failureThreshold": 3},
                "readinessProbe": {"grpc": {"port": 9000, "service": ""}, "periodSeconds": 5,
                    "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
            // Added on create, as upstream's DefaultTolerationSeconds
            // admission plugin does.
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 300}
            ]
        }}),
    );
}

#[test]
fn pod_volumes_and_host_network() {
    check_apply(
        "Pod",
        json!({"spec": {
            "hostNetwork": true,
            "containers": [{"name": "c", "image": "app@sha256:".to_string() + &"0".repeat(64),
                "ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9091}]}],
            "volumes": [
                {"name": "scratch"},
                {"name": "cm", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "host", "hostPath": {"path": "/var/log"}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1000Mi", "medium": ""}},
                {"name": "proj", "projected": {"sources": [
                    {"serviceAccountToken": {"path": "token"}},
                    {"downwardAPI": {"items": [{"path": "ns",
                        "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
                {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1e9"}}}}}}
            ]
        }}),
        json!({"spec": {
            "hostNetwork": true,
            "enableServiceLinks": true,
            "containers": [{"name": "c", "image": "app@sha256:".to_string() + &"0".repeat(64),
                "imagePullPolicy": "IfNotPresent", "resources": {},
                "ports": [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"},
                    {"containerPort": 9090, "hostPort": 9091, "protocol": "TCP"}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"}],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "cm", "configMap": {"name": "cfg", "defaultMode": 420}},
                {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
                {"name": "host", "hostPath": {"path": "/var/log", "type": ""}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1000Mi", "medium": ""}},
                {"name": "proj", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                    {"downwardAPI": {"items": [{"path": "ns",
                        "fieldRef": {"fieldPath": "metadata.namespace", "apiVersion": "v1"}}]}}]}},
                {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1e9"}},
                    "volumeMode": "Filesystem"}}}}
            ],
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            "schedulerName": "default-scheduler", "securityContext": {},
            "terminationGracePeriodSeconds": 30
        }}),
    );
}

#[test]
fn quantities_in_resource_lists() {
    let pod = |v: serde_json::Value| {
        json!({"spec": {"containers": [{"name": "c", "image": "x:1",
        "resources": {"limits": v}}]}})
    };
    for (given, stored) in [
        (json!("1000m"), "1"),
        (json!("1024Mi"), "1Gi"),
        (json!(0.5), "500m"),
        (json!("0.1m"), "1m"),
        (json!("1.5Gi"), "1536Mi"),
        (json!("2e3"), "2e3"),
        (json!(" 1 "), "1"),
        (json!(2), "2"),
    ] {
        let mut obj = pod(json!({"cpu": given}));
        skiff_api::defaults::apply("", "Pod", &mut obj);
        let res = &obj["spec"]["containers"][0]["resources"];
        assert_eq!(res["limits"]["cpu"], stored, "{given}");
        assert_eq!(res["requests"]["cpu"], stored, "{given}");
    }
    // Not a quantity: left for validation to report.
    let mut obj = pod(json!({"cpu": "lots"}));
    skiff_api::defaults::apply("", "Pod", &mut obj);
    assert_eq!(
        obj["spec"]["containers"][0]["resources"]["limits"]["cpu"],
        "lots"
    );
}

#[test]
fn service() {
    check(
        "Service",
        json!({"spec": {"selector": {"app": "web"},
            "ports": [{"port": 80}, {"name": "https", "port": 443, "targetPort": "https"}]}}),
        json!({"spec": {"selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
            "type": "ClusterIP", "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}}),
    );
    check(
        "Service",
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
            "ports": [{"port": 80, "targetPort": 0, "protocol": "UDP"}]}}),
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "ports": [{"port": 80, "targetPort": 80, "protocol": "UDP"}],
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": true,
            "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}}),
    );
    // Headless without selector; clusterIPs mirrors clusterIP on create.
    check(
        "Service",
        json!({"spec": {"clusterIP": "None"}}),
        json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"], "type": "ClusterIP",
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4"]}}),
    );
    check(
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "example.com",
            "sessionAffinityConfig": {"clientIP": {}}}}),
        json!({"spec": {"type": "ExternalName", "externalName": "example.com",
            "sessionAffinity": "None"}}),
    );
}

#[test]
fn namespace_secret_volumes() {
    check(
        "Namespace",
        json!({"metadata": {"name": "team-a"}}),
        json!({"metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
    );
    // On update, the finalizer is not re-added (the controller removes it).
    check_apply(
        "Namespace",
        json!({"metadata": {"name": "a"}, "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}),
        json!({"metadata": {"name": "a", "labels": {"kubernetes.io/metadata.name": "a"}},
            "spec": {"finalizers": []}, "status": {"phase": "Terminating"}}),
    );
    check(
        "Secret",
        json!({"data": {}}),
        json!({"data": {}, "type": "Opaque"}),
    );
    check(
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5120Mi"}}}}),
        json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
            "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    );
    check(
        "PersistentVolume",
        json!({"spec": {"capacity": {"storage": "10Gi"}, "hostPath": {"path": "/data"}}}),
        json!({"spec": {"capacity": {"storage": "10Gi"}, "hostPath": {"path": "/data", "type": ""},
            "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
            "status": {"phase": "Pending"}}),
    );
}

#[test]
fn replication_controller_and_others() {
    check(
        "ReplicationController",
        json!({"spec": {"template": {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}),
        json!({"metadata": {"labels": {"app": "a"}}, "spec": {
            "replicas": 1, "selector": {"app": "a"},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {
                "containers": [{"name": "c", "image": "nginx:1", "imagePullPolicy": "IfNotPresent",
                    "resources": {}, "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                "schedulerName": "default-scheduler", "securityContext": {},
                "terminationGracePeriodSeconds": 30}}}}),
    );
    check(
        "Endpoints",
        json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80, "protocol": "TCP"}]}]}),
    );
    check(
        "Node",
        json!({"status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}}),
        json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi"},
            "allocatable": {"cpu": "4", "memory": "8Gi"}}}),
    );
    check(
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}}),
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
            "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}}]}}),
    );
}
