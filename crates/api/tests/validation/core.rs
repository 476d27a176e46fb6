use serde_json::json;

use crate::{check, check_update};

#[test]
fn services() {
    check(
        "Service",
        json!({"spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
        &[],
    );
    check("Service", json!({"spec": {"clusterIP": "None"}}), &[]);
    check(
        "Service",
        json!({"spec": {}}),
        &["spec.ports: Required value"],
    );
    check(
        "Service",
        json!({"spec": {"type": "Cluster", "ports": [{"port": 0}, {"name": "b", "port": 80, "nodePort": 30000}]}}),
        &[
            "spec.ports[0].name: Required value",
            "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            // Defaulted from the port, as upstream does.
            "spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
            "spec.type: Unsupported value: \"Cluster\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
        ],
    );
    check(
        "Service",
        json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}),
        &["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    );
    check(
        "Service",
        json!({"spec": {"type": "ExternalName"}}),
        &["spec.externalName: Required value"],
    );
}

#[test]
fn service_cluster_ip_is_immutable() {
    let svc = |ip: &str| json!({"spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    check_update("Service", svc("10.0.0.1"), svc("10.0.0.1"), &[]);
    check_update(
        "Service",
        svc("10.0.0.1"),
        svc("10.0.0.2"),
        &["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.2\"}: may not change once set"],
    );
}

#[test]
fn config_maps_and_secrets() {
    check(
        "ConfigMap",
        json!({"data": {"app.properties": "x", "KEY_1": "y"}}),
        &[],
    );
    check(
        "ConfigMap",
        json!({"data": {"a b": "x", "..": "y"}}),
        &[
            "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
            "data[..]: Invalid value: \"..\": must not be '..'",
        ],
    );
    check(
        "ConfigMap",
        json!({"data": {"big": "x".repeat(1024 * 1024 + 1)}}),
        &["Too long: may not be more than 1048576 bytes"],
    );
    check_update(
        "ConfigMap",
        json!({"immutable": true, "data": {"a": "1"}}),
        json!({"immutable": true, "data": {"a": "2"}}),
        &["data: Forbidden: field is immutable when `immutable` is set"],
    );
    check_update(
        "ConfigMap",
        json!({"immutable": true, "data": {"a": "1"}}),
        json!({"data": {"a": "1"}}),
        &["immutable: Forbidden: field is immutable when `immutable` is set"],
    );
    check(
        "Secret",
        json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
        &["data[tls.key]: Required value"],
    );
    check_update(
        "Secret",
        json!({"data": {}}),
        json!({"type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}}),
        &["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"],
    );
}

#[test]
fn namespaces_and_templates() {
    check("Namespace", json!({"metadata": {"name": "a"}}), &[]);
    check(
        "Namespace",
        json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}}),
        &[
            "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
        ],
    );
    check(
        "PodTemplate",
        json!({"template": {"spec": {"containers": [{"name": "c"}]}}}),
        &["template.spec.containers[0].image: Required value"],
    );
    check(
        "ReplicationController",
        json!({"spec": {"selector": {"app": "a"}, "template": {"metadata": {"labels": {"app": "b"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
        &[
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"b\"}: `selector` does not match template `labels`",
        ],
    );
    check(
        "PersistentVolumeClaim",
        json!({"spec": {"resources": {"requests": {"storage": "0"}}}}),
        &[
            "spec.accessModes: Required value: at least 1 access mode is required",
            "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
        ],
    );
}

#[test]
fn custom_resource_definitions() {
    let crd = |name: &str, plural: &str, versions: serde_json::Value| {
        json!({"metadata": {"name": name}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": plural, "kind": "Widget"}, "versions": versions}})
    };
    let schema = json!({"openAPIV3Schema": {"type": "object"}});
    let v = |name: &str, storage: bool| json!({"name": name, "served": true, "storage": storage, "schema": schema});
    check(
        "apiextensions.k8s.io/CustomResourceDefinition",
        crd("widgets.example.com", "widgets", json!([v("v1", true)])),
        &[],
    );
    let errs = {
        let mut o = crd(
            "widget.example.com",
            "Widgets",
            json!([v("v1", true), v("v2", true)]),
        );
        skiff_api::defaults::apply_on_create(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            &mut o,
        );
        skiff_api::validation::validate("apiextensions.k8s.io", "CustomResourceDefinition", &o)
    };
    let msgs: Vec<String> = errs.iter().map(|e| e.message()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    assert_eq!(
        msgs[0],
        "metadata.name: Invalid value: \"widget.example.com\": must be spec.names.plural+\".\"+spec.group"
    );
    assert!(
        msgs[1].starts_with("spec.versions: Invalid value: ")
            && msgs[1].ends_with(": must have exactly one version marked as storage version")
    );
    assert!(msgs[2].starts_with(
        "spec.names.plural: Invalid value: \"Widgets\": a DNS-1035 label must consist of lower case"
    ));
    check(
        "apiextensions.k8s.io/CustomResourceDefinition",
        crd(
            "widgets.example.com",
            "widgets",
            json!([{"name": "v1", "served": true, "storage": true}]),
        ),
        &["spec.versions[0].schema.openAPIV3Schema: Required value"],
    );
}
