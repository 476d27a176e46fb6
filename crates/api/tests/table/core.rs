//! The core group apart from pods.

use serde_json::{Value, json};

use super::{ago, check, check_headers};

fn meta(name: &str, age_secs: i64) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": ago(age_secs), "uid": "u1"})
}

#[test]
fn service_cluster_ip() {
    let obj = json!({
        "metadata": meta("web", 3 * 86400),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.12.34",
            "clusterIPs": ["10.96.12.34"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "web", "tier": "frontend"},
        },
    });
    check(
        "Service",
        obj,
        json!([
            "web",
            "ClusterIP",
            "10.96.12.34",
            "<none>",
            "80/TCP",
            "3d",
            "app=web,tier=frontend"
        ]),
    );
}

#[test]
fn service_node_port() {
    let obj = json!({
        "metadata": meta("shop", 90),
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.50",
            "ports": [
                {"port": 80, "protocol": "TCP", "nodePort": 30080},
                {"port": 443, "protocol": "TCP", "nodePort": 30443},
                {"port": 53, "protocol": "UDP", "nodePort": 30053},
            ],
        },
    });
    check(
        "Service",
        obj,
        json!([
            "shop",
            "NodePort",
            "10.96.0.50",
            "<none>",
            "80:30080/TCP,443:30443/TCP,53:30053/UDP",
            "90s",
            "<none>"
        ]),
    );
}

#[test]
fn service_load_balancer() {
    let lb = |status: Value, external_ips: Value| {
        json!({
            "metadata": meta("lb", 60),
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9", "externalIPs": external_ips,
                     "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]},
            "status": status,
        })
    };
    let external =
        |obj: Value| skiff_api::table::cells("", "Service", &obj, super::now())[3].clone();
    assert_eq!(external(lb(json!({}), json!([]))), "<pending>");
    assert_eq!(
        external(lb(
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}}),
            json!([])
        )),
        "203.0.113.9,lb.example.com"
    );
    assert_eq!(
        external(lb(
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}),
            json!(["198.51.100.1"])
        )),
        "203.0.113.9,198.51.100.1"
    );
}

#[test]
fn service_external_name_and_headless() {
    let ext = json!({
        "metadata": meta("db", 60),
        "spec": {"type": "ExternalName", "externalName": "db.example.com"},
    });
    check(
        "Service",
        ext,
        json!([
            "db",
            "ExternalName",
            "<none>",
            "db.example.com",
            "<none>",
            "60s",
            "<none>"
        ]),
    );
    let headless = json!({
        "metadata": meta("peers", 60),
        "spec": {"type": "ClusterIP", "clusterIP": "None", "ports": [{"port": 5432, "protocol": "TCP"}], "selector": {"app": "pg"}},
    });
    check(
        "Service",
        headless,
        json!([
            "peers",
            "ClusterIP",
            "None",
            "<none>",
            "5432/TCP",
            "60s",
            "app=pg"
        ]),
    );
}

#[test]
fn endpoints() {
    let obj = json!({
        "metadata": meta("web", 60),
        "subsets": [{
            "addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }],
    });
    check(
        "Endpoints",
        obj,
        json!(["web", "10.244.1.5:8080,10.244.2.7:8080", "60s"]),
    );
    let many = json!({
        "metadata": meta("big", 60),
        "subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
            "ports": [{"port": 80}, {"port": 443}],
        }],
    });
    check(
        "Endpoints",
        many,
        json!([
            "big",
            "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 3 more...",
            "60s"
        ]),
    );
    check(
        "Endpoints",
        json!({"metadata": meta("empty", 60)}),
        json!(["empty", "<none>", "60s"]),
    );
}

#[test]
fn config_map_and_secret_counts() {
    let cm = json!({
        "metadata": meta("settings", 300),
        "data": {"a.conf": "x", "b.conf": "y"},
        "binaryData": {"logo.png": "aGVsbG8="},
    });
    check("ConfigMap", cm, json!(["settings", 3, "5m"]));
    let secret = json!({
        "metadata": meta("tls", 300),
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Y3J0", "tls.key": "a2V5"},
    });
    check(
        "Secret",
        secret,
        json!(["tls", "kubernetes.io/tls", 2, "5m"]),
    );
}

#[test]
fn namespace_and_service_account() {
    check(
        "Namespace",
        json!({"metadata": {"name": "kube-system", "creationTimestamp": ago(40 * 86400)}, "status": {"phase": "Active"}}),
        json!(["kube-system", "Active", "40d"]),
    );
    check(
        "ServiceAccount",
        json!({"metadata": meta("default", 40 * 86400), "secrets": [{"name": "default-token"}]}),
        json!(["default", 1, "40d"]),
    );
}

fn node(labels: Value, conditions: Value, unschedulable: bool) -> Value {
    json!({
        "metadata": {"name": "node-1", "creationTimestamp": ago(10 * 86400), "labels": labels},
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "172.18.0.2"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.30.2",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0-18-amd64",
                "containerRuntimeVersion": "containerd://1.7.13",
            },
        },
    })
}

#[test]
fn node_ready_control_plane() {
    let obj = node(
        json!({"kubernetes.io/hostname": "node-1", "node-role.kubernetes.io/control-plane": ""}),
        json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]),
        false,
    );
    check_headers(
        "Node",
        &[
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1),
        ],
    );
    check(
        "Node",
        obj,
        json!([
            "node-1",
            "Ready",
            "control-plane",
            "10d",
            "v1.30.2",
            "172.18.0.2",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64",
            "containerd://1.7.13"
        ]),
    );
}

#[test]
fn node_status_and_roles() {
    let cells = |obj: Value| skiff_api::table::cells("", "Node", &obj, super::now());
    let cordoned = cells(node(
        json!({}),
        json!([{"type": "Ready", "status": "Unknown"}]),
        true,
    ));
    assert_eq!(
        cordoned[1..3],
        [json!("NotReady,SchedulingDisabled"), json!("<none>")]
    );
    let unknown = cells(node(
        json!({"kubernetes.io/role": "worker", "node-role.kubernetes.io/master": "", "node-role.kubernetes.io/": "x"}),
        json!([]),
        false,
    ));
    assert_eq!(unknown[1..3], [json!("Unknown"), json!("master,worker")]);
}

#[test]
fn replication_controller() {
    let obj = json!({
        "metadata": meta("legacy", 7200),
        "spec": {
            "replicas": 3,
            "selector": {"app": "legacy"},
            "template": {"spec": {"containers": [{"name": "app", "image": "legacy:2"}]}},
        },
        "status": {"replicas": 3, "readyReplicas": 2},
    });
    check(
        "ReplicationController",
        obj,
        json!(["legacy", 3, 3, 2, "120m", "app", "legacy:2", "app=legacy"]),
    );
}

#[test]
fn resource_quota() {
    let obj = json!({
        "metadata": meta("compute", 60),
        "spec": {"hard": {"pods": "10"}},
        "status": {
            "hard": {"requests.cpu": "4", "limits.memory": "8Gi", "pods": "10", "requests.memory": "4Gi", "limits.cpu": "8"},
            "used": {"requests.cpu": "500m", "limits.memory": "1Gi", "pods": "3", "requests.memory": "512Mi"},
        },
    });
    check(
        "ResourceQuota",
        obj,
        json!([
            "compute",
            "pods: 3/10, requests.cpu: 500m/4, requests.memory: 512Mi/4Gi",
            "limits.cpu: 0/8, limits.memory: 1Gi/8Gi",
            "60s"
        ]),
    );
}

#[test]
fn limit_range_uses_the_default_table() {
    check_headers("LimitRange", &[("Name", 0), ("Created At", 0)]);
    let obj = json!({"metadata": {"name": "limits", "creationTimestamp": "2024-04-30T10:11:12Z"}, "spec": {"limits": []}});
    check("LimitRange", obj, json!(["limits", "2024-04-30T10:11:12Z"]));
}

#[test]
fn events_core() {
    check_headers(
        "Event",
        &[
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1),
        ],
    );
    let obj = json!({
        "metadata": meta("web.17c9f0a1b2c3d4e5", 300),
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "message": "Successfully pulled image \"nginx:1.27\"\n",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(300),
        "lastTimestamp": ago(30),
        "count": 3,
        "type": "Normal",
    });
    check(
        "Event",
        obj,
        json!([
            "30s",
            "Normal",
            "Pulled",
            "pod/web",
            "spec.containers{nginx}",
            "kubelet, node-1",
            "Successfully pulled image \"nginx:1.27\"",
            "5m",
            3,
            "web.17c9f0a1b2c3d4e5"
        ]),
    );
}

#[test]
fn events_without_legacy_timestamps() {
    // Recorded through the new API: only eventTime, no count.
    let obj = json!({
        "metadata": meta("web.1", 90),
        "involvedObject": {"kind": "Node", "name": ""},
        "reason": "Starting",
        "message": "Starting kubelet.",
        "reportingComponent": "kubelet",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "eventTime": "2024-05-01T11:58:30.123456Z",
        "type": "Normal",
    });
    check(
        "Event",
        obj,
        json!([
            "89s",
            "Normal",
            "Starting",
            "node",
            "",
            "kubelet, node-1",
            "Starting kubelet.",
            "89s",
            1,
            "web.1"
        ]),
    );
}

#[test]
fn persistent_volume() {
    let obj = json!({
        "metadata": {"name": "pv-data", "creationTimestamp": ago(86400)},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "default", "name": "data-web-0"},
            "storageClassName": "standard",
            "volumeMode": "Filesystem",
            "hostPath": {"path": "/data"},
        },
        "status": {"phase": "Bound"},
    });
    check(
        "PersistentVolume",
        obj,
        json!([
            "pv-data",
            "10Gi",
            "RWO,RWX",
            "Retain",
            "Bound",
            "default/data-web-0",
            "standard",
            "<unset>",
            "",
            "24h",
            "Filesystem"
        ]),
    );
}

#[test]
fn persistent_volume_claims() {
    let bound = json!({
        "metadata": meta("data-web-0", 3600),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
                 "storageClassName": "standard", "volumeName": "pv-data", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}},
    });
    check(
        "PersistentVolumeClaim",
        bound,
        json!([
            "data-web-0",
            "Bound",
            "pv-data",
            "10Gi",
            "RWO",
            "standard",
            "<unset>",
            "60m",
            "Filesystem"
        ]),
    );
    let mut pending = json!({
        "metadata": meta("scratch", 30),
        "spec": {"accessModes": ["ReadWriteOncePod"], "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"},
    });
    pending["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-class": "fast"});
    pending["metadata"]["deletionTimestamp"] = json!(ago(1));
    check(
        "PersistentVolumeClaim",
        pending,
        json!([
            "scratch",
            "Terminating",
            "",
            "",
            "",
            "fast",
            "<unset>",
            "30s",
            "<unset>"
        ]),
    );
}
