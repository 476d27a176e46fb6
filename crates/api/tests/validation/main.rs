//! Data-driven tests of validation: each case is an object as a client
//! sends it and the messages upstream's API server answers with (422
//! causes, `field: Type: detail`). Objects are defaulted first, as the API
//! server does. Only `check` and `check_update` touch the API.

mod apps_batch;
mod core;
mod pods;

use serde_json::Value;
use skiff_api::{defaults, validation};

fn group_kind(kind: &str) -> (&str, &str) {
    kind.rsplit_once('/').unwrap_or(("", kind))
}

fn messages(errs: Vec<validation::FieldError>) -> Vec<String> {
    errs.iter().map(validation::FieldError::message).collect()
}

/// Asserts that creating `obj` as `kind` fails with exactly `expected`.
#[track_caller]
fn check(kind: &str, obj: Value, expected: &[&str]) {
    let (group, kind) = group_kind(kind);
    let mut obj = obj;
    defaults::apply_on_create(group, kind, &mut obj);
    assert_eq!(messages(validation::validate(group, kind, &obj)), expected);
}

/// Asserts that updating `old` to `new` fails with exactly `expected`.
#[track_caller]
fn check_update(kind: &str, old: Value, new: Value, expected: &[&str]) {
    let (group, kind) = group_kind(kind);
    let (mut old, mut new) = (old, new);
    // A client updates what it read: the object as created, create-time
    // defaults (e.g. the default tolerations of pods) included.
    defaults::apply_on_create(group, kind, &mut old);
    defaults::apply_on_create(group, kind, &mut new);
    assert_eq!(
        messages(validation::validate_update(group, kind, &old, &new)),
        expected
    );
}

/// Whatever the shape, defaulting and validation answer without panicking.
#[test]
fn any_shape_is_safe() {
    let kinds = [
        "Pod",
        "PodTemplate",
        "ReplicationController",
        "Service",
        "ConfigMap",
        "Secret",
        "Namespace",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Node",
        "LimitRange",
        "apps/Deployment",
        "apps/ReplicaSet",
        "apps/StatefulSet",
        "apps/DaemonSet",
        "batch/Job",
        "batch/CronJob",
        "apiextensions.k8s.io/CustomResourceDefinition",
        "autoscaling/HorizontalPodAutoscaler",
        "networking.k8s.io/NetworkPolicy",
    ];
    let shapes = [
        serde_json::json!(null),
        serde_json::json!([]),
        serde_json::json!("x"),
        serde_json::json!({"spec": 1, "metadata": "m", "data": [1]}),
        serde_json::json!({"spec": {"containers": [1, "x", null, {"name": 3, "image": [], "ports": [{"containerPort": "80", "name": "é--"}],
            "resources": {"limits": {"cpu": {}, "é": "1é"}, "requests": []}}], "volumes": "v",
            "selector": "s", "template": {"metadata": {"labels": 1}, "spec": []},
            "ports": [{"port": "80", "targetPort": {}}], "schedule": "é é é é é", "jobTemplate": 1,
            "versions": [1], "names": [], "strategy": "x", "updateStrategy": {"rollingUpdate": 1}}}),
        serde_json::json!({"spec": {"schedule": "@every 1é", "clusterIP": "é", "type": 5,
            "template": {"spec": {"containers": [{"name": "a", "image": "b", "livenessProbe": 1,
                "env": [{"name": "é=", "valueFrom": 1}]}]}}}}),
    ];
    for kind in kinds {
        let (group, kind) = group_kind(kind);
        for shape in &shapes {
            let mut obj = shape.clone();
            defaults::apply_on_create(group, kind, &mut obj);
            let _ = validation::validate(group, kind, &obj);
            let _ = validation::validate_update(group, kind, shape, &obj);
            let _ = validation::validate_update(group, kind, &obj, shape);
            let _: Vec<String> = messages(validation::validate(group, kind, shape));
        }
    }
}
