//! The pod STATUS, READY and RESTARTS logic in the states users meet most.

use serde_json::{Value, json};

use super::{ago, check, check_headers};

/// A one-container pod created ten minutes ago, with `status` as given.
fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(600)},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}], "nodeName": "node-1"},
        "status": status,
    })
}

/// A container status named `nginx` with the given fields.
fn container(fields: Value) -> Value {
    let mut c = json!({"name": "nginx", "image": "nginx:1.27", "restartCount": 0, "ready": false});
    c.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    c
}

#[test]
fn pod_headers() {
    check_headers(
        "Pod",
        &[
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ],
    );
}

#[test]
fn pending_unscheduled() {
    let mut obj = pod(json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        "qosClass": "BestEffort",
    }));
    obj["spec"].as_object_mut().unwrap().remove("nodeName");
    check(
        "Pod",
        obj,
        json!([
            "web", "0/1", "Pending", "0", "10m", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
}

#[test]
fn container_creating() {
    let obj = pod(json!({
        "phase": "Pending",
        "hostIP": "172.18.0.2",
        "containerStatuses": [container(json!({"state": {"waiting": {"reason": "ContainerCreating"}}}))],
    }));
    check(
        "Pod",
        obj,
        json!([
            "web",
            "0/1",
            "ContainerCreating",
            "0",
            "10m",
            "<none>",
            "node-1",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn running() {
    let obj = pod(json!({
        "phase": "Running",
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}, {"ip": "fd00::7"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [container(json!({
            "ready": true,
            "started": true,
            "state": {"running": {"startedAt": ago(590)}},
        }))],
    }));
    check(
        "Pod",
        obj,
        json!([
            "web",
            "1/1",
            "Running",
            "0",
            "10m",
            "10.244.1.7",
            "node-1",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn crash_loop_back_off_with_restarts_ago() {
    let obj = pod(json!({
        "phase": "Running",
        "podIPs": [{"ip": "10.244.1.8"}],
        "containerStatuses": [container(json!({
            "restartCount": 5,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
            "lastState": {"terminated": {
                "exitCode": 1, "reason": "Error", "startedAt": ago(310), "finishedAt": ago(300),
            }},
        }))],
    }));
    check(
        "Pod",
        obj,
        json!([
            "web",
            "0/1",
            "CrashLoopBackOff",
            "5 (5m ago)",
            "10m",
            "10.244.1.8",
            "node-1",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn restarts_without_termination_time_have_no_ago() {
    let obj = pod(json!({
        "phase": "Running",
        "containerStatuses": [container(json!({
            "restartCount": 2, "ready": true, "state": {"running": {}},
        }))],
    }));
    check(
        "Pod",
        obj,
        json!([
            "web", "1/1", "Running", "2", "10m", "<none>", "node-1", "<none>", "<none>"
        ]),
    );
}

#[test]
fn completed() {
    let obj = pod(json!({
        "phase": "Succeeded",
        "containerStatuses": [container(json!({
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(60)}},
        }))],
    }));
    check(
        "Pod",
        obj,
        json!([
            "web",
            "0/1",
            "Completed",
            "0",
            "10m",
            "<none>",
            "node-1",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn oom_killed() {
    let obj = pod(json!({
        "phase": "Failed",
        "containerStatuses": [container(json!({
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(60)}},
        }))],
    }));
    check(
        "Pod",
        obj,
        json!([
            "web",
            "0/1",
            "OOMKilled",
            "0",
            "10m",
            "<none>",
            "node-1",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn terminated_without_reason_shows_signal_or_exit_code() {
    let terminated = |t: Value| {
        pod(
            json!({"phase": "Failed", "containerStatuses": [container(json!({"state": {"terminated": t}}))]}),
        )
    };
    let status = |obj: Value| skiff_api::table::cells("", "Pod", &obj, super::now())[2].clone();
    assert_eq!(
        status(terminated(json!({"exitCode": 137, "signal": 9}))),
        "Signal:9"
    );
    assert_eq!(status(terminated(json!({"exitCode": 2}))), "ExitCode:2");
}

/// A pod with two init containers and one app container.
fn init_pod(init_statuses: Value, initialized: &str) -> Value {
    json!({
        "metadata": {"name": "app", "creationTimestamp": ago(30)},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "app:1"}, {"name": "warm", "image": "app:1"}],
            "containers": [{"name": "app", "image": "app:1"}],
        },
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Initialized", "status": initialized}],
            "initContainerStatuses": init_statuses,
            "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}],
        },
    })
}

#[test]
fn init_progress() {
    let obj = init_pod(
        json!([
            {"name": "migrate", "ready": true, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "warm", "ready": false, "restartCount": 0, "state": {"running": {"startedAt": ago(5)}}},
        ]),
        "False",
    );
    check(
        "Pod",
        obj,
        json!([
            "app", "0/1", "Init:1/2", "0", "30s", "<none>", "<none>", "<none>", "<none>"
        ]),
    );
}

#[test]
fn init_crash_loop_back_off() {
    let obj = init_pod(
        json!([
            {"name": "migrate", "ready": false, "restartCount": 3,
             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(20)}}},
            {"name": "warm", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
        ]),
        "False",
    );
    check(
        "Pod",
        obj,
        json!([
            "app",
            "0/1",
            "Init:CrashLoopBackOff",
            "3 (20s ago)",
            "30s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn init_failed_with_exit_code() {
    let obj = init_pod(
        json!([{"name": "migrate", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]),
        "False",
    );
    check(
        "Pod",
        obj,
        json!([
            "app",
            "0/1",
            "Init:ExitCode:3",
            "0",
            "30s",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn sidecar_counts_towards_ready() {
    let obj = json!({
        "metadata": {"name": "mesh", "creationTimestamp": ago(3600)},
        "spec": {
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "app:1"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(120)}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}],
        },
    });
    check(
        "Pod",
        obj,
        json!([
            "mesh",
            "2/2",
            "Running",
            "1 (2m ago)",
            "60m",
            "<none>",
            "<none>",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn completed_container_beside_a_running_one() {
    let obj = |ready: &str| {
        json!({
            "metadata": {"name": "pair", "creationTimestamp": ago(60)},
            "spec": {"containers": [{"name": "once"}, {"name": "server"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": ready}],
                "containerStatuses": [
                    {"name": "once", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "server", "ready": true, "restartCount": 0, "state": {"running": {}}},
                ],
            },
        })
    };
    let cells = |ready| skiff_api::table::cells("", "Pod", &obj(ready), super::now());
    assert_eq!(cells("True")[1..3], [json!("1/2"), json!("Running")]);
    assert_eq!(cells("False")[1..3], [json!("1/2"), json!("NotReady")]);
}

#[test]
fn terminating() {
    let mut obj = pod(json!({
        "phase": "Running",
        "containerStatuses": [container(json!({"ready": true, "state": {"running": {}}}))],
    }));
    obj["metadata"]["deletionTimestamp"] = json!(ago(10));
    obj["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    check(
        "Pod",
        obj,
        json!([
            "web",
            "1/1",
            "Terminating",
            "0",
            "10m",
            "<none>",
            "node-1",
            "<none>",
            "<none>"
        ]),
    );
}

#[test]
fn terminal_pods_being_deleted_keep_their_status() {
    let mut obj = pod(json!({
        "phase": "Succeeded",
        "containerStatuses": [container(json!({"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}))],
    }));
    obj["metadata"]["deletionTimestamp"] = json!(ago(10));
    assert_eq!(
        skiff_api::table::cells("", "Pod", &obj, super::now())[2],
        "Completed"
    );
}

#[test]
fn node_lost_is_unknown() {
    let mut obj = pod(json!({
        "phase": "Running",
        "reason": "NodeLost",
        "containerStatuses": [container(json!({"ready": true, "state": {"running": {}}}))],
    }));
    obj["metadata"]["deletionTimestamp"] = json!(ago(10));
    assert_eq!(
        skiff_api::table::cells("", "Pod", &obj, super::now())[2],
        "Unknown"
    );
}

#[test]
fn evicted_and_scheduling_gated() {
    let evicted = pod(json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}));
    assert_eq!(
        skiff_api::table::cells("", "Pod", &evicted, super::now())[2],
        "Evicted"
    );
    let gated = pod(json!({
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
    }));
    assert_eq!(
        skiff_api::table::cells("", "Pod", &gated, super::now())[2],
        "SchedulingGated"
    );
}

#[test]
fn wide_columns() {
    let mut obj = pod(json!({
        "phase": "Running",
        "podIP": "10.244.2.9",
        "nominatedNodeName": "node-2",
        "conditions": [{"type": "example.com/feature-1", "status": "True"}, {"type": "example.com/feature-2", "status": "False"}],
        "containerStatuses": [container(json!({"ready": true, "state": {"running": {}}}))],
    }));
    obj["spec"]["readinessGates"] = json!([
        {"conditionType": "example.com/feature-1"},
        {"conditionType": "example.com/feature-2"},
    ]);
    check(
        "Pod",
        obj,
        json!([
            "web",
            "1/1",
            "Running",
            "0",
            "10m",
            "10.244.2.9",
            "node-1",
            "node-2",
            "1/2"
        ]),
    );
}

#[test]
fn pod_template() {
    let obj = json!({
        "metadata": {"name": "tpl", "creationTimestamp": ago(5)},
        "template": {
            "metadata": {"labels": {"tier": "web", "app": "shop"}},
            "spec": {"containers": [{"name": "a", "image": "img-a"}, {"name": "b", "image": "img-b"}]},
        },
    });
    check(
        "PodTemplate",
        obj,
        json!(["tpl", "a,b", "img-a,img-b", "app=shop,tier=web"]),
    );
}
