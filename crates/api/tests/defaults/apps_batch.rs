use serde_json::json;

use crate::check;

/// What `kubectl create deployment x --image=busybox` sends, and the object
/// `--dry-run=server -o yaml` shows (server metadata and status aside).
#[test]
fn deployment_from_kubectl_create() {
    check(
        "apps/Deployment",
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"app": "x"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "x"}},
                "strategy": {},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"image": "busybox", "name": "busybox", "resources": {}}]}
                }
            }
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "x", "labels": {"app": "x"}},
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 1,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "x"}},
                "strategy": {
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    "type": "RollingUpdate"
                },
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {
                        "containers": [{
                            "image": "busybox",
                            "imagePullPolicy": "Always",
                            "name": "busybox",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            }
        }),
    );
}

#[test]
fn deployment_keeps_what_is_set() {
    check(
        "apps/Deployment",
        json!({"spec": {
            "replicas": 0, "revisionHistoryLimit": 0,
            "strategy": {"type": "Recreate"},
            "template": {"spec": {"restartPolicy": "Always", "dnsPolicy": "Default",
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "a", "image": "nginx:1.27", "imagePullPolicy": "Never",
                    "resources": {"limits": {"cpu": "1000m", "memory": "1024Mi"}}}]}}
        }}),
        json!({"spec": {
            "replicas": 0, "revisionHistoryLimit": 0, "progressDeadlineSeconds": 600,
            "strategy": {"type": "Recreate"},
            "template": {"spec": {"restartPolicy": "Always", "dnsPolicy": "Default",
                "terminationGracePeriodSeconds": 0,
                "schedulerName": "default-scheduler", "securityContext": {},
                "containers": [{"name": "a", "image": "nginx:1.27", "imagePullPolicy": "Never",
                    // Templates get no requests from limits (Pods do).
                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"}]}}
        }}),
    );
}

fn default_pod_spec(image: &str, policy: &str) -> serde_json::Value {
    json!({
        "containers": [{"name": "c", "image": image, "imagePullPolicy": policy, "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
        "schedulerName": "default-scheduler", "securityContext": {},
        "terminationGracePeriodSeconds": 30
    })
}

#[test]
fn replica_set_and_daemon_set() {
    let tpl = json!({"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}});
    check(
        "apps/ReplicaSet",
        json!({"spec": {"template": tpl}}),
        json!({"spec": {"replicas": 1,
            "template": {"spec": default_pod_spec("nginx:1.27", "IfNotPresent")}}}),
    );
    check(
        "apps/DaemonSet",
        json!({"spec": {"template": tpl}}),
        json!({"spec": {
            "updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10,
            "template": {"spec": default_pod_spec("nginx:1.27", "IfNotPresent")}}}),
    );
    check(
        "apps/DaemonSet",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}, "revisionHistoryLimit": 10}}),
    );
}

#[test]
fn stateful_set() {
    check(
        "apps/StatefulSet",
        json!({"spec": {
            "serviceName": "web",
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1024Mi"}}}}]
        }}),
        json!({"spec": {
            "serviceName": "web",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "template": {"spec": default_pod_spec("nginx", "Always")},
            "volumeClaimTemplates": [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}}]
        }}),
    );
    // An explicit RollingUpdate without rollingUpdate keeps a nil partition.
    check(
        "apps/StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
        json!({"spec": {
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "replicas": 1, "revisionHistoryLimit": 10}}),
    );
}

/// `kubectl create job pi --image=perl -- perl -e 1`, created with a uid.
#[test]
fn job_with_generated_selector() {
    check(
        "batch/Job",
        json!({"metadata": {"name": "pi", "uid": "u-1"},
            "spec": {"template": {"metadata": {},
                "spec": {"containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl"]}],
                    "restartPolicy": "Never"}}}}),
        json!({"metadata": {"name": "pi", "uid": "u-1", "labels": {
                "batch.kubernetes.io/controller-uid": "u-1",
                "batch.kubernetes.io/job-name": "pi",
                "controller-uid": "u-1", "job-name": "pi"}},
            "spec": {
                "backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1,
                "parallelism": 1, "podReplacementPolicy": "TerminatingOrFailed",
                "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}},
                "suspend": false,
                "template": {
                    "metadata": {"labels": {
                        "batch.kubernetes.io/controller-uid": "u-1",
                        "batch.kubernetes.io/job-name": "pi",
                        "controller-uid": "u-1", "job-name": "pi"}},
                    "spec": {
                        "containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl"],
                            "imagePullPolicy": "IfNotPresent", "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"}],
                        "dnsPolicy": "ClusterFirst", "restartPolicy": "Never",
                        "schedulerName": "default-scheduler", "securityContext": {},
                        "terminationGracePeriodSeconds": 30}}}}),
    );
}

#[test]
fn job_variants() {
    // Parallelism alone leaves completions unset.
    crate::check_apply(
        "batch/Job",
        json!({"spec": {"parallelism": 3, "manualSelector": true,
            "backoffLimitPerIndex": 1, "completionMode": "Indexed",
            "podFailurePolicy": {"rules": [{"action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget"}]}]}}}),
        json!({"spec": {"parallelism": 3, "manualSelector": true,
            "backoffLimitPerIndex": 1, "completionMode": "Indexed",
            "backoffLimit": 2147483647, "suspend": false,
            "podReplacementPolicy": "Failed",
            "podFailurePolicy": {"rules": [{"action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}}}),
    );
}

#[test]
fn cron_job() {
    check(
        "batch/CronJob",
        json!({"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}],
                "restartPolicy": "OnFailure"}}}}}}),
        json!({"spec": {
            "schedule": "*/1 * * * *",
            "concurrencyPolicy": "Allow", "suspend": false,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            // The job template gets pod defaults only, no Job defaults.
            "jobTemplate": {"spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "busybox:1.36",
                    "imagePullPolicy": "IfNotPresent", "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "OnFailure",
                "schedulerName": "default-scheduler", "securityContext": {},
                "terminationGracePeriodSeconds": 30}}}}}}),
    );
}
