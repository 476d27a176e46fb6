use serde_json::{Value, json};

use crate::{check, check_update};

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web"}, "spec": {"selector": selector,
        "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

#[test]
fn deployment_selector() {
    check(
        "apps/Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        ),
        &[],
    );
    check(
        "apps/Deployment",
        deployment(
            json!({"matchLabels": {"app": "api"}}),
            json!({"app": "web"}),
        ),
        &[
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
        ],
    );
    check(
        "apps/Deployment",
        deployment(Value::Null, json!({"app": "web"})),
        &[
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
        ],
    );
    check(
        "apps/Deployment",
        deployment(json!({}), json!({"app": "web"})),
        &[
            "spec.selector: Invalid value: map[string]string{}: empty selector is invalid for deployment",
        ],
    );
    check(
        "apps/Deployment",
        deployment(
            json!({"matchExpressions": [{"key": "app", "operator": "In"}]}),
            json!({"app": "web"}),
        ),
        &[
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
        ],
    );
}

#[test]
fn deployment_fields() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    check(
        "apps/Deployment",
        d,
        &[
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0",
        ],
    );
}

#[test]
fn deployment_selector_is_immutable() {
    check_update(
        "apps/Deployment",
        deployment(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web", "v": "2"}),
        ),
        deployment(
            json!({"matchLabels": {"app": "web", "v": "2"}}),
            json!({"app": "web", "v": "2"}),
        ),
        &[
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ],
    );
}

#[test]
fn stateful_set_and_daemon_set() {
    let sts = |replicas: i64, service: &str| {
        json!({"spec": {"replicas": replicas, "serviceName": service,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "postgres"}]}}}})
    };
    check("apps/StatefulSet", sts(1, "db"), &[]);
    check_update("apps/StatefulSet", sts(1, "db"), sts(3, "db"), &[]);
    check_update(
        "apps/StatefulSet",
        sts(1, "db"),
        sts(1, "other"),
        &[
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ],
    );
    check(
        "apps/DaemonSet",
        json!({"spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "c"}], "activeDeadlineSeconds": 10}}}}),
        &[
            "spec.template.spec.containers[0].image: Required value",
            "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported",
        ],
    );
}

fn job(restart: &str, image: &str) -> Value {
    json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {
        "spec": {"containers": [{"name": "pi", "image": image}], "restartPolicy": restart}}}})
}

#[test]
fn jobs() {
    check("batch/Job", job("Never", "perl"), &[]);
    check(
        "batch/Job",
        job("Always", "perl"),
        &[
            "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
        ],
    );
    // Without a uid no selector is generated.
    check(
        "batch/Job",
        json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "pi", "image": "perl"}], "restartPolicy": "Never"}}}}),
        &[
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"b\"}: `selector` does not match template `labels`",
        ],
    );
    let mut old = job("Never", "perl");
    skiff_api::defaults::apply_on_create("batch", "Job", &mut old);
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:2");
    let errs = skiff_api::validation::validate_update("batch", "Job", &old, &new);
    assert_eq!(errs.len(), 1);
    let msg = errs[0].message();
    assert!(msg.starts_with("spec.template: Invalid value: "), "{msg}");
    assert!(msg.ends_with(": field is immutable"), "{msg}");
}

#[test]
fn cron_jobs() {
    let cron = |schedule: &str| {
        json!({"metadata": {"name": "c"}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {
            "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                "restartPolicy": "OnFailure"}}}}}})
    };
    check("batch/CronJob", cron("*/5 * * * *"), &[]);
    check("batch/CronJob", cron("@hourly"), &[]);
    check(
        "batch/CronJob",
        cron("* * *"),
        &["spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]"],
    );
    check(
        "batch/CronJob",
        cron("61 * * * *"),
        &["spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"],
    );
    check(
        "batch/CronJob",
        cron("TZ=UTC 0 * * * *"),
        &[
            "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ],
    );
    let mut c = cron("0 * * * *");
    c["spec"]["concurrencyPolicy"] = json!("Sometimes");
    c["metadata"]["name"] = json!("a".repeat(53));
    check(
        "batch/CronJob",
        c,
        &[
            &format!(
                "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
                "a".repeat(53)
            ),
            "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
        ],
    );
}
