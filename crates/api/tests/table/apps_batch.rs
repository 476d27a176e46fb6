//! Workloads: `apps/v1`, `batch/v1` and `autoscaling`.

use serde_json::{Value, json};

use super::{ago, check, check_headers};

fn template(containers: Value) -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}})
}

#[test]
fn deployment() {
    check_headers(
        "apps/Deployment",
        &[
            ("Name", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1),
        ],
    );
    let obj = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(2 * 86400 + 3 * 3600)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
            "template": template(json!([{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "fluent-bit:3"}])),
        },
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    });
    check(
        "apps/Deployment",
        obj,
        json!([
            "web",
            "2/3",
            3,
            2,
            "2d3h",
            "nginx,log",
            "nginx:1.27,fluent-bit:3",
            "app=web,tier in (api,web)"
        ]),
    );
}

#[test]
fn deployment_fresh_without_status() {
    let obj = json!({
        "metadata": {"name": "new", "creationTimestamp": ago(1)},
        "spec": {"replicas": 1, "selector": {}, "template": template(json!([]))},
    });
    check(
        "apps/Deployment",
        obj,
        json!(["new", "0/1", 0, 0, "1s", "", "", ""]),
    );
}

#[test]
fn replica_set() {
    let obj = json!({
        "metadata": {"name": "web-7d4b9c8f6d", "creationTimestamp": ago(600)},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"}},
            "template": template(json!([{"name": "nginx", "image": "nginx:1.27"}])),
        },
        "status": {"replicas": 2, "readyReplicas": 1},
    });
    check(
        "apps/ReplicaSet",
        obj,
        json!([
            "web-7d4b9c8f6d",
            2,
            2,
            1,
            "10m",
            "nginx",
            "nginx:1.27",
            "app=web,pod-template-hash=7d4b9c8f6d"
        ]),
    );
}

#[test]
fn label_selector_forms() {
    let selector = |sel: Value| {
        let obj = json!({"metadata": {"name": "rs"}, "spec": {"selector": sel}});
        skiff_api::table::cells("apps", "ReplicaSet", &obj, super::now())[7].clone()
    };
    assert_eq!(selector(json!({})), "<none>");
    assert_eq!(
        selector(json!({"matchExpressions": [
            {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "app", "operator": "Exists"},
        ]})),
        "app,!canary,env notin (dev,prod)"
    );
    assert_eq!(
        selector(json!({"matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]})),
        "<error>"
    );
    assert_eq!(
        selector(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})),
        "<error>"
    );
    assert_eq!(
        selector(json!({"matchLabels": {"bad key!": "x"}})),
        "<error>"
    );
}

#[test]
fn stateful_set() {
    let obj = json!({
        "metadata": {"name": "pg", "creationTimestamp": ago(5 * 3600)},
        "spec": {"replicas": 3, "serviceName": "pg", "template": template(json!([{"name": "postgres", "image": "postgres:16"}]))},
        "status": {"replicas": 3, "readyReplicas": 3, "currentReplicas": 3},
    });
    check(
        "apps/StatefulSet",
        obj,
        json!(["pg", "3/3", "5h", "postgres", "postgres:16"]),
    );
}

#[test]
fn daemon_set() {
    let mut tpl = template(json!([{"name": "agent", "image": "agent:1"}]));
    tpl["spec"]["nodeSelector"] = json!({"kubernetes.io/os": "linux"});
    let obj = json!({
        "metadata": {"name": "agent", "creationTimestamp": ago(9 * 86400)},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": tpl},
        "status": {"desiredNumberScheduled": 4, "currentNumberScheduled": 4, "numberReady": 3, "updatedNumberScheduled": 4, "numberAvailable": 3},
    });
    check(
        "apps/DaemonSet",
        obj,
        json!([
            "agent",
            4,
            4,
            3,
            4,
            3,
            "kubernetes.io/os=linux",
            "9d",
            "agent",
            "agent:1",
            "app=agent"
        ]),
    );
}

#[test]
fn controller_revision() {
    let obj = json!({
        "metadata": {
            "name": "agent-5f7b8c9d",
            "creationTimestamp": ago(60),
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "other"},
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true},
            ],
        },
        "revision": 4,
        "data": {},
    });
    check(
        "apps/ControllerRevision",
        obj,
        json!(["agent-5f7b8c9d", "daemonset.apps/agent", 4, "60s"]),
    );
    let orphan = json!({"metadata": {"name": "r", "creationTimestamp": ago(60)}, "revision": 1});
    check(
        "apps/ControllerRevision",
        orphan,
        json!(["r", "<none>", 1, "60s"]),
    );
}

#[test]
fn jobs() {
    let complete = json!({
        "metadata": {"name": "pi", "creationTimestamp": ago(300)},
        "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
                 "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}}},
        "status": {"succeeded": 1, "startTime": ago(300), "completionTime": ago(262),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]},
    });
    check(
        "batch/Job",
        complete,
        json!([
            "pi",
            "Complete",
            "1/1",
            "38s",
            "5m",
            "pi",
            "perl:5.34",
            "batch.kubernetes.io/controller-uid=abc"
        ]),
    );
    let running = json!({
        "metadata": {"name": "work", "creationTimestamp": ago(200)},
        "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
        "status": {"active": 3, "startTime": ago(190)},
    });
    check(
        "batch/Job",
        running,
        json!([
            "work", "Running", "0/1 of 3", "3m10s", "3m20s", "", "", "<none>"
        ]),
    );
    let status = |conditions: Value, deleting: bool| {
        let mut obj =
            json!({"metadata": {"name": "j"}, "spec": {}, "status": {"conditions": conditions}});
        if deleting {
            obj["metadata"]["deletionTimestamp"] = json!(ago(1));
        }
        skiff_api::table::cells("batch", "Job", &obj, super::now())[1].clone()
    };
    assert_eq!(
        status(json!([{"type": "Failed", "status": "True"}]), true),
        "Failed"
    );
    assert_eq!(
        status(json!([{"type": "Suspended", "status": "True"}]), true),
        "Terminating"
    );
    assert_eq!(
        status(json!([{"type": "Suspended", "status": "True"}]), false),
        "Suspended"
    );
    assert_eq!(
        status(json!([{"type": "FailureTarget", "status": "True"}]), false),
        "FailureTarget"
    );
    assert_eq!(
        status(json!([{"type": "Complete", "status": "False"}]), false),
        "Running"
    );
}

#[test]
fn cron_job() {
    let obj = json!({
        "metadata": {"name": "backup", "creationTimestamp": ago(3 * 86400)},
        "spec": {
            "schedule": "0 2 * * *",
            "timeZone": "Europe/Berlin",
            "suspend": false,
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "backup", "image": "restic:0.16"}]}}}},
        },
        "status": {"active": [{"kind": "Job", "name": "backup-28576320"}], "lastScheduleTime": ago(36000)},
    });
    check(
        "batch/CronJob",
        obj,
        json!([
            "backup",
            "0 2 * * *",
            "Europe/Berlin",
            "False",
            1,
            "10h",
            "3d",
            "backup",
            "restic:0.16",
            "<none>"
        ]),
    );
    let fresh = json!({"metadata": {"name": "c", "creationTimestamp": ago(5)}, "spec": {"schedule": "@hourly"}});
    check(
        "batch/CronJob",
        fresh,
        json!([
            "c", "@hourly", "<none>", "<unset>", 0, "<none>", "5s", "", "", "<none>"
        ]),
    );
}

#[test]
fn hpa_v2() {
    let obj = json!({
        "apiVersion": "autoscaling/v2",
        "metadata": {"name": "web", "creationTimestamp": ago(86400)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
            ],
        },
        "status": {
            "currentReplicas": 3,
            "desiredReplicas": 3,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "90m"}}},
            ],
        },
    });
    check(
        "autoscaling/HorizontalPodAutoscaler",
        obj,
        json!([
            "web",
            "Deployment/web",
            "cpu: 45%/80%, memory: <unknown>/500Mi + 1 more...",
            "2",
            10,
            3,
            "24h"
        ]),
    );
}

#[test]
fn hpa_metric_kinds() {
    let targets = |metrics: Value, current: Value| {
        let obj = json!({"spec": {"metrics": metrics, "maxReplicas": 1}, "status": {"currentMetrics": current}});
        skiff_api::table::cells("autoscaling", "HorizontalPodAutoscaler", &obj, super::now())[2]
            .clone()
    };
    assert_eq!(targets(json!([]), json!([])), "<none>");
    assert_eq!(
        targets(
            json!([{"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "30"}}}]),
            json!([{"type": "External", "external": {"current": {"value": "12"}}}]),
        ),
        "12/30"
    );
    assert_eq!(
        targets(
            json!([{"type": "Object", "object": {"target": {"type": "AverageValue", "averageValue": "2"}}}]),
            json!([]),
        ),
        "<unknown>/2 (avg)"
    );
    assert_eq!(
        targets(
            json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization"}}}]),
            json!([]),
        ),
        "cpu: <unknown>/<auto>"
    );
    assert_eq!(
        targets(json!([{"type": "Bogus"}]), json!([])),
        "<unknown type>"
    );
}

#[test]
fn hpa_v1() {
    let obj = json!({
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "creationTimestamp": ago(120)},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60},
        "status": {"currentReplicas": 1, "currentCPUUtilizationPercentage": 12},
    });
    check(
        "autoscaling/HorizontalPodAutoscaler",
        obj,
        json!([
            "web",
            "Deployment/web",
            "cpu: 12%/60%",
            "<unset>",
            5,
            1,
            "2m"
        ]),
    );
    let defaulted = json!({
        "apiVersion": "autoscaling/v1",
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5},
    });
    let cells = skiff_api::table::cells(
        "autoscaling",
        "HorizontalPodAutoscaler",
        &defaulted,
        super::now(),
    );
    assert_eq!(cells[2..4], [json!("cpu: <unknown>/80%"), json!("1")]);
}
