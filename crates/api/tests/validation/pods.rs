use serde_json::{Value, json};

use crate::{check, check_update};

fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[test]
fn valid_pod() {
    check(
        "Pod",
        pod(json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}])),
        &[],
    );
}

#[test]
fn containers_and_images() {
    check("Pod", pod(json!([])), &["spec.containers: Required value"]);
    check(
        "Pod",
        pod(json!([{"name": "a"}])),
        &["spec.containers[0].image: Required value"],
    );
    check(
        "Pod",
        pod(
            json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}, {"name": "B_1", "image": "z"}]),
        ),
        &[
            "spec.containers[1].name: Duplicate value: \"a\"",
            "spec.containers[2].name: Invalid value: \"B_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ],
    );
    check(
        "Pod",
        pod(json!([{"name": "a", "image": " nginx"}])),
        &[
            "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
        ],
    );
    check(
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": "x"}],
            "initContainers": [{"name": "a", "image": "x"}]}}),
        &["spec.initContainers[0].name: Duplicate value: \"a\""],
    );
}

#[test]
fn ports() {
    check(
        "Pod",
        pod(json!([{"name": "a", "image": "x", "ports": [
            {"containerPort": 70000},
            {"containerPort": 80, "protocol": "HTTP", "name": "web"},
            {"containerPort": 81, "name": "web"},
            {"name": "Bad--"}
        ]}])),
        &[
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].ports[2].name: Duplicate value: \"web\"",
            "spec.containers[0].ports[3].name: Invalid value: \"Bad--\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].ports[3].name: Invalid value: \"Bad--\": must not contain consecutive hyphens (-)",
            "spec.containers[0].ports[3].name: Invalid value: \"Bad--\": must not begin or end with a hyphen (-)",
            "spec.containers[0].ports[3].containerPort: Required value",
        ],
    );
}

#[test]
fn enums() {
    check(
        "Pod",
        json!({"spec": {"restartPolicy": "Sometimes", "dnsPolicy": "Google",
            "containers": [{"name": "a", "image": "x", "imagePullPolicy": "Maybe"}]}}),
        &[
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ],
    );
}

#[test]
fn resources() {
    check(
        "Pod",
        pod(json!([{"name": "a", "image": "x", "resources": {
            "limits": {"cpu": "1", "memory": "-1"}, "requests": {"cpu": "2000m"}}}])),
        &[
            "spec.containers[0].resources.limits[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
            "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
        ],
    );
    check(
        "Pod",
        pod(
            json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "lots", "gpu": "1"}}}]),
        ),
        &[
            "spec.containers[0].resources.limits[cpu]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
        ],
    );
    // Extended resources: integers, and requests equal to limits.
    check(
        "Pod",
        pod(json!([{"name": "a", "image": "x", "resources": {
            "limits": {"example.com/gpu": "1"}, "requests": {"example.com/gpu": "500m"}}}])),
        &[
            "spec.containers[0].resources.requests[example.com/gpu]: Invalid value: \"500m\": must be an integer",
            "spec.containers[0].resources.requests: Invalid value: \"500m\": must be equal to example.com/gpu limit of 1",
        ],
    );
}

#[test]
fn volumes() {
    check(
        "Pod",
        json!({"spec": {
            "volumes": [{"name": "data"}, {"name": "data"}, {"name": "two", "emptyDir": {}, "hostPath": {"path": "/"}}],
            "containers": [{"name": "a", "image": "x", "volumeMounts": [
                {"name": "data", "mountPath": "/d"}, {"name": "missing", "mountPath": "/d"}]}]}}),
        &[
            "spec.volumes[1].name: Duplicate value: \"data\"",
            "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
            "spec.containers[0].volumeMounts[1].name: Not found: \"missing\"",
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
        ],
    );
}

#[test]
fn pod_updates() {
    let old = pod(json!([{"name": "a", "image": "nginx:1", "ports": [{"containerPort": 80}]}]));
    // Images may change.
    check_update(
        "Pod",
        old.clone(),
        pod(json!([{"name": "a", "image": "nginx:2", "ports": [{"containerPort": 80}]}])),
        &[],
    );
    let mut errs = {
        let (mut o, mut n) = (
            old.clone(),
            pod(json!([{"name": "a", "image": "nginx:1", "ports": [{"containerPort": 81}]}])),
        );
        skiff_api::defaults::apply_on_create("", "Pod", &mut o);
        skiff_api::defaults::apply_on_create("", "Pod", &mut n);
        skiff_api::validation::validate_update("", "Pod", &o, &n)
    };
    assert_eq!(errs.len(), 1);
    let msg = errs.remove(0).message();
    assert!(
        msg.starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{msg}"
    );
    check_update(
        "Pod",
        old.clone(),
        pod(json!([{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "x"}])),
        &["spec.containers: Forbidden: pod updates may not add or remove containers"],
    );
    let with_deadline = |d: i64| {
        let mut p = old.clone();
        p["spec"]["activeDeadlineSeconds"] = json!(d);
        p
    };
    check_update("Pod", with_deadline(30), with_deadline(20), &[]);
    check_update(
        "Pod",
        with_deadline(30),
        with_deadline(40),
        &[
            "spec.activeDeadlineSeconds: Invalid value: 40: must be less than or equal to previous value",
        ],
    );
    let mut tolerated = old.clone();
    tolerated["spec"]["tolerations"] =
        json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]);
    check_update("Pod", old.clone(), tolerated.clone(), &[]);
    check_update(
        "Pod",
        tolerated,
        old,
        &[
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds",
        ],
    );
}
