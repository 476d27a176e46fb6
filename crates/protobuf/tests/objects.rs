//! Objects built with k8s-pb (prost) types, decoded and compared with the
//! JSON Go writes for them; each one also round-trips through `encode`.
//!
//! prost leaves unset proto2 fields off the wire where Go would write zero
//! values, so these also check that absent non-pointer fields come out as
//! Go's zero values (`"spec": {}`, `"containerPort": 0`, …).

mod common;

use common::{body, check, int, map, meta, string, time};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;

fn q(s: &str) -> Quantity {
    Quantity {
        string: Some(s.into()),
    }
}

#[test]
fn namespace() {
    let ns = core::Namespace {
        metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: map(&[("team", "a".to_string())]),
            creation_timestamp: Some(time(1_136_214_245)),
            ..meta("x", "")
        }),
        ..Default::default()
    };
    check(
        &body("v1", "Namespace", &ns),
        json!({
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": "x", "creationTimestamp": "2006-01-02T15:04:05Z", "labels": {"team": "a"}},
            "spec": {},
            "status": {}
        }),
    );
}

#[test]
fn configmap_with_data_and_binary_data() {
    let cm = core::ConfigMap {
        metadata: Some(meta("cm", "ns1")),
        immutable: Some(false), // a pointer: set, so written even though false
        data: map(&[("z", "last".to_string()), ("a", "first".to_string())]),
        binary_data: map(&[("bin", vec![0u8, 1, 255])]),
    };
    check(
        &body("v1", "ConfigMap", &cm),
        json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "cm", "namespace": "ns1"},
            "immutable": false,
            "data": {"a": "first", "z": "last"},
            "binaryData": {"bin": "AAH/"}
        }),
    );
}

#[test]
fn secret_with_data_and_type() {
    let secret = core::Secret {
        metadata: Some(meta("s", "ns1")),
        data: map(&[("password", b"hunter2".to_vec()), ("empty", Vec::new())]),
        r#type: Some("kubernetes.io/basic-auth".into()),
        ..Default::default()
    };
    check(
        &body("v1", "Secret", &secret),
        json!({
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": {"name": "s", "namespace": "ns1"},
            "data": {"empty": "", "password": "aHVudGVyMg=="},
            "type": "kubernetes.io/basic-auth"
        }),
    );
}

fn web_container() -> core::Container {
    core::Container {
        name: Some("web".into()),
        image: Some("nginx:1.27".into()),
        args: vec!["-g".into(), "daemon off;".into()],
        ports: vec![
            core::ContainerPort {
                name: Some("http".into()),
                container_port: Some(8080),
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            core::ContainerPort::default(),
        ],
        env: vec![core::EnvVar {
            name: Some("MODE".into()),
            value: Some("prod".into()),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: map(&[("cpu", q("500m")), ("memory", q("128Mi"))]),
            requests: map(&[("cpu", q("100m"))]),
            ..Default::default()
        }),
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: Some("/healthz".into()),
                    port: Some(string("http")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(0), // non-pointer omitempty: zero is left out
            ..Default::default()
        }),
        readiness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                tcp_socket: Some(core::TcpSocketAction {
                    port: Some(int(8080)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: vec![core::VolumeMount {
            name: Some("config".into()),
            mount_path: Some("/etc/web".into()),
            read_only: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn deployment_with_pod_template() {
    let deployment = apps::Deployment {
        metadata: Some(meta("web", "ns1")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0), // a pointer: 0 is kept
            selector: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: map(&[("app", "web".to_string())]),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: map(&[("app", "web".to_string())]),
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    volumes: vec![core::Volume {
                        name: Some("config".into()),
                        volume_source: Some(core::VolumeSource {
                            config_map: Some(core::ConfigMapVolumeSource {
                                local_object_reference: Some(core::LocalObjectReference {
                                    name: Some("web-config".into()),
                                }),
                                default_mode: Some(0o644),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                    }],
                    containers: vec![web_container()],
                    security_context: Some(core::PodSecurityContext {
                        supplemental_groups: vec![1000, 2000],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(int(0)),
                    max_surge: Some(string("25%")),
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    check(
        &body("apps/v1", "Deployment", &deployment),
        json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "namespace": "ns1"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "volumes": [
                            {"name": "config", "configMap": {"name": "web-config", "defaultMode": 420}}
                        ],
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.27",
                            "args": ["-g", "daemon off;"],
                            "ports": [
                                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                {"containerPort": 0}
                            ],
                            "env": [{"name": "MODE", "value": "prod"}],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                                "requests": {"cpu": "100m"}
                            },
                            "volumeMounts": [{"name": "config", "readOnly": true, "mountPath": "/etc/web"}],
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "initialDelaySeconds": 5
                            },
                            "readinessProbe": {"tcpSocket": {"port": 8080}}
                        }],
                        "securityContext": {"supplementalGroups": [1000, 2000]}
                    }
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}
                }
            },
            "status": {}
        }),
    );
}

#[test]
fn self_subject_access_review() {
    let review = authz::SelfSubjectAccessReview {
        metadata: None,
        spec: Some(authz::SelfSubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: Some("ns1".into()),
                verb: Some("get".into()),
                resource: Some("pods".into()),
                subresource: Some("log".into()),
                ..Default::default()
            }),
            non_resource_attributes: None,
        }),
        status: None,
    };
    check(
        &body(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            &review,
        ),
        json!({
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {
                "resourceAttributes": {"namespace": "ns1", "verb": "get", "resource": "pods", "subresource": "log"}
            },
            "status": {"allowed": false}
        }),
    );
}

#[test]
fn subject_access_review_with_extra_values() {
    let review = authz::SubjectAccessReview {
        spec: Some(authz::SubjectAccessReviewSpec {
            non_resource_attributes: Some(authz::NonResourceAttributes {
                path: Some("/healthz".into()),
                verb: Some("get".into()),
            }),
            user: Some("alice".into()),
            groups: vec!["devs".into()],
            extra: map(&[(
                "scopes",
                authz::ExtraValue {
                    items: vec!["a".into(), "b".into()],
                },
            )]),
            ..Default::default()
        }),
        ..Default::default()
    };
    check(
        &body("authorization.k8s.io/v1", "SubjectAccessReview", &review),
        json!({
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": {
                "nonResourceAttributes": {"path": "/healthz", "verb": "get"},
                "user": "alice",
                "groups": ["devs"],
                "extra": {"scopes": ["a", "b"]}
            },
            "status": {"allowed": false}
        }),
    );
}

/// An independent decoder (prost, via k8s-pb) reads what `encode` writes.
#[test]
fn prost_reads_what_encode_writes() {
    use prost::Message;
    let json = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "labels": {"b": "2", "a": "1"}, "creationTimestamp": "2006-01-02T15:04:05Z"},
        "spec": {
            "replicas": 0,
            "template": {"spec": {
                "volumes": [{"name": "cfg", "configMap": {"name": "web-config"}}],
                "containers": [{
                    "name": "web",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"limits": {"memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"port": "http"}}
                }]
            }},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}
        }
    });
    let body = skiff_protobuf::encode(&json).unwrap();
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(&body[4..]).unwrap();
    assert_eq!(
        unknown.type_meta.as_ref().unwrap().kind.as_deref(),
        Some("Deployment")
    );
    let d = apps::Deployment::decode(unknown.raw.unwrap().as_slice()).unwrap();
    let meta = d.metadata.unwrap();
    assert_eq!(meta.labels.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        meta.creation_timestamp.unwrap().seconds,
        Some(1_136_214_245)
    );
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(0));
    let rolling = spec.strategy.unwrap().rolling_update.unwrap();
    assert_eq!(rolling.max_surge.unwrap().str_val.as_deref(), Some("25%"));
    assert_eq!(rolling.max_unavailable.unwrap().int_val, Some(1));
    let pod = spec.template.unwrap().spec.unwrap();
    let volume_source = pod.volumes[0].volume_source.as_ref().unwrap();
    let cm_ref = volume_source
        .config_map
        .as_ref()
        .unwrap()
        .local_object_reference
        .as_ref();
    assert_eq!(cm_ref.unwrap().name.as_deref(), Some("web-config"));
    let c = &pod.containers[0];
    assert_eq!(c.ports[0].container_port, Some(8080));
    let limits = &c.resources.as_ref().unwrap().limits;
    assert_eq!(limits["memory"].string.as_deref(), Some("128Mi"));
    let handler = c
        .readiness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap();
    assert_eq!(
        handler
            .http_get
            .as_ref()
            .unwrap()
            .port
            .as_ref()
            .unwrap()
            .r#type,
        Some(1)
    );
}
