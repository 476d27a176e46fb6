//! The Go types with their own JSON forms: MicroTime, Duration,
//! RawExtension (JSON or a nested protobuf object), FieldsV1, named slices,
//! the apiextensions JSONSchemaProps family, doubles, packed numbers.

mod common;

use common::{body, check, map, meta, time};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::events::v1 as events;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as metav1;
use k8s_pb::apimachinery::pkg::runtime::RawExtension;
use k8s_pb::metrics::pkg::apis::metrics::v1beta1 as metrics;
use serde_json::json;

#[test]
fn event_micro_time_and_zero_value_structs() {
    let event = events::Event {
        metadata: Some(meta("e1", "ns1")),
        event_time: Some(metav1::MicroTime {
            seconds: Some(1_136_214_245),
            nanos: Some(123_456_789),
        }),
        reporting_controller: Some("skiff".into()),
        reason: Some("Started".into()),
        regarding: Some(core::ObjectReference {
            kind: Some("Pod".into()),
            name: Some("p1".into()),
            ..Default::default()
        }),
        r#type: Some("Normal".into()),
        ..Default::default()
    };
    check(
        &body("events.k8s.io/v1", "Event", &event),
        json!({
            "kind": "Event",
            "apiVersion": "events.k8s.io/v1",
            "metadata": {"name": "e1", "namespace": "ns1"},
            "eventTime": "2006-01-02T15:04:05.123456Z",
            "reportingController": "skiff",
            "reason": "Started",
            "regarding": {"kind": "Pod", "name": "p1"},
            "type": "Normal",
            "deprecatedSource": {},
            "deprecatedFirstTimestamp": null,
            "deprecatedLastTimestamp": null
        }),
    );
}

#[test]
fn controller_revision_raw_extension_json_and_managed_fields() {
    let revision = apps::ControllerRevision {
        metadata: Some(metav1::ObjectMeta {
            managed_fields: vec![metav1::ManagedFieldsEntry {
                manager: Some("kubectl".into()),
                operation: Some("Update".into()),
                api_version: Some("apps/v1".into()),
                time: Some(time(0)),
                fields_type: Some("FieldsV1".into()),
                fields_v1: Some(metav1::FieldsV1 {
                    raw: Some(br#"{"f:data":{}}"#.to_vec()),
                }),
                ..Default::default()
            }],
            ..meta("r1", "ns1")
        }),
        data: Some(RawExtension {
            raw: Some(br#"{"spec":{"template":{"x":[1,2.5,"s",null,true]}}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    check(
        &body("apps/v1", "ControllerRevision", &revision),
        json!({
            "kind": "ControllerRevision",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "r1",
                "namespace": "ns1",
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "apps/v1",
                    "time": "1970-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {}}
                }]
            },
            "data": {"spec": {"template": {"x": [1, 2.5, "s", null, true]}}},
            "revision": 3
        }),
    );
}

#[test]
fn raw_extension_holding_a_nested_protobuf_object() {
    let inner = core::ConfigMap {
        metadata: Some(meta("inner", "")),
        data: map(&[("k", "v".to_string())]),
        ..Default::default()
    };
    let revision = apps::ControllerRevision {
        metadata: Some(meta("r1", "")),
        data: Some(RawExtension {
            raw: Some(body("v1", "ConfigMap", &inner)),
        }),
        revision: Some(1),
    };
    let got = skiff_protobuf::decode(&body("apps/v1", "ControllerRevision", &revision)).unwrap();
    assert_eq!(
        got["data"],
        json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "inner"}, "data": {"k": "v"}})
    );
}

#[test]
fn api_resource_list_verbs_are_a_named_slice() {
    let list = metav1::APIResourceList {
        group_version: Some("v1".into()),
        resources: vec![metav1::APIResource {
            name: Some("pods".into()),
            singular_name: Some("pod".into()),
            namespaced: Some(true),
            kind: Some("Pod".into()),
            verbs: Some(metav1::Verbs {
                items: vec!["get".into(), "list".into()],
            }),
            short_names: vec!["po".into()],
            ..Default::default()
        }],
    };
    check(
        &body("v1", "APIResourceList", &list),
        json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "v1",
            "resources": [{
                "name": "pods",
                "singularName": "pod",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get", "list"],
                "shortNames": ["po"]
            }]
        }),
    );
}

#[test]
fn node_metrics_duration() {
    let m = metrics::NodeMetrics {
        metadata: Some(meta("node1", "")),
        timestamp: Some(time(1_136_214_245)),
        window: Some(metav1::Duration {
            duration: Some(90_500_000_000),
        }),
        usage: map(&[(
            "cpu",
            Quantity {
                string: Some("250m".into()),
            },
        )]),
    };
    check(
        &body("metrics.k8s.io/v1beta1", "NodeMetrics", &m),
        json!({
            "kind": "NodeMetrics",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {"name": "node1"},
            "timestamp": "2006-01-02T15:04:05Z",
            "window": "1m30.5s",
            "usage": {"cpu": "250m"}
        }),
    );
}

fn props(ty: &str) -> ext::JsonSchemaProps {
    ext::JsonSchemaProps {
        r#type: Some(ty.into()),
        ..Default::default()
    }
}

#[test]
fn custom_resource_definition_schema_forms() {
    let schema = ext::JsonSchemaProps {
        r#type: Some("object".into()),
        properties: map(&[
            (
                "replicas",
                ext::JsonSchemaProps {
                    maximum: Some(10.5),
                    minimum: Some(1.0),
                    default: Some(ext::Json {
                        raw: Some(b"3".to_vec()),
                    }),
                    ..props("integer")
                },
            ),
            (
                "tags",
                ext::JsonSchemaProps {
                    items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                        schema: Some(Box::new(props("string"))),
                        j_son_schemas: vec![],
                    })),
                    ..props("array")
                },
            ),
            (
                "mode",
                ext::JsonSchemaProps {
                    r#enum: vec![
                        ext::Json {
                            raw: Some(br#""a""#.to_vec()),
                        },
                        ext::Json {
                            raw: Some(br#""b""#.to_vec()),
                        },
                    ],
                    ..props("string")
                },
            ),
        ]),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        x_kubernetes_preserve_unknown_fields: Some(true),
        r#ref: Some("#/defs/x".into()),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: Some(meta("widgets.example.com", "")),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: Some("example.com".into()),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: Some("widgets".into()),
                kind: Some("Widget".into()),
                ..Default::default()
            }),
            scope: Some("Namespaced".into()),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: Some("v1".into()),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(schema),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = skiff_protobuf::decode(&body(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .unwrap();
    assert_eq!(
        got["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        json!({
            "$ref": "#/defs/x",
            "type": "object",
            "properties": {
                "mode": {"type": "string", "enum": ["a", "b"]},
                "replicas": {"type": "integer", "default": 3, "maximum": 10.5, "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "additionalProperties": false,
            "x-kubernetes-preserve-unknown-fields": true
        })
    );
    let again = skiff_protobuf::encode(&got).unwrap();
    assert_eq!(skiff_protobuf::decode(&again).unwrap(), got);
}

/// Go writes repeated numbers unpacked (proto2), but a protobuf decoder must
/// accept the packed form too.
#[test]
fn packed_repeated_numbers() {
    let mut security_context = Vec::new();
    security_context.extend([0x22, 4, 0xe8, 0x07, 0xd0, 0x0f]); // field 4, packed [1000, 2000]
    let mut spec = vec![0x72, security_context.len() as u8]; // PodSpec.securityContext = 14
    spec.extend(security_context);
    let mut pod = vec![0x12, spec.len() as u8]; // Pod.spec = 2
    pod.extend(spec);
    let got = skiff_protobuf::decode(&raw_body("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        got["spec"]["securityContext"]["supplementalGroups"],
        json!([1000, 2000])
    );
}

/// An envelope around hand-made message bytes.
fn raw_body(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw.to_vec()),
        ..Default::default()
    };
    let mut out = b"k8s\0".to_vec();
    out.extend(prost::Message::encode_to_vec(&unknown));
    out
}
