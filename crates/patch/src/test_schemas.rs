//! Small hand-written schemas in the shape of upstream's OpenAPI v3 for the
//! kinds the tests use (trimmed to the fields they touch).

use serde_json::{Map, Value, json};

use crate::schema::SchemaNode;

fn r(name: &str) -> Value {
    json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}]})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

fn string() -> Value {
    json!({"type": "string", "default": ""})
}

pub(crate) fn defs() -> Map<String, Value> {
    let defs = json!({
        "ObjectMeta": {"type": "object", "properties": {
            "name": string(), "namespace": string(), "uid": string(),
            "resourceVersion": string(), "generation": {"type": "integer"},
            "creationTimestamp": r("Time"),
            "labels": {"type": "object", "additionalProperties": string()},
            "annotations": {"type": "object", "additionalProperties": string()},
            "finalizers": {"type": "array", "items": string(),
                "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
            "ownerReferences": {"type": "array", "items": r("OwnerReference"),
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
                "x-kubernetes-patch-merge-key": "uid", "x-kubernetes-patch-strategy": "merge"},
            "managedFields": {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "atomic"},
        }},
        "OwnerReference": {"type": "object", "properties": {
            "uid": string(), "name": string(), "kind": string(), "apiVersion": string()},
            "x-kubernetes-map-type": "atomic"},
        "Time": {"type": "string", "format": "date-time"},
        "IntOrString": {"x-kubernetes-int-or-string": true, "format": "int-or-string"},
        "Quantity": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"},
        "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
        "LabelSelector": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
            "matchLabels": {"type": "object", "additionalProperties": string()}}},
        "Deployment": {"type": "object", "properties": {
            "apiVersion": string(), "kind": string(),
            "metadata": with(r("ObjectMeta"), json!({"default": {}})),
            "spec": with(r("DeploymentSpec"), json!({"default": {}})),
            "status": with(r("DeploymentStatus"), json!({"default": {}})),
        }},
        "DeploymentSpec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "format": "int32"},
            "selector": r("LabelSelector"),
            "template": with(r("PodTemplateSpec"), json!({"default": {}})),
            "strategy": with(r("DeploymentStrategy"), json!({
                "x-kubernetes-patch-strategy": "retainKeys"})),
        }},
        "DeploymentStatus": {"type": "object", "properties": {
            "replicas": {"type": "integer"}, "readyReplicas": {"type": "integer"}}},
        "DeploymentStrategy": {"type": "object", "properties": {
            "type": string(), "rollingUpdate": r("RollingUpdateDeployment")}},
        "RollingUpdateDeployment": {"type": "object", "properties": {
            "maxSurge": r("IntOrString"), "maxUnavailable": r("IntOrString")}},
        "PodTemplateSpec": {"type": "object", "properties": {
            "metadata": with(r("ObjectMeta"), json!({"default": {}})),
            "spec": with(r("PodSpec"), json!({"default": {}}))}},
        "PodSpec": {"type": "object", "properties": {
            "containers": {"type": "array", "items": with(r("Container"), json!({"default": {}})),
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
            "volumes": {"type": "array", "items": with(r("Volume"), json!({"default": {}})),
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge,retainKeys"},
            "nodeSelector": {"type": "object", "additionalProperties": string(),
                "x-kubernetes-map-type": "atomic"},
            "restartPolicy": string(),
        }},
        "Container": {"type": "object", "properties": {
            "name": string(), "image": string(),
            "args": {"type": "array", "items": string(), "x-kubernetes-list-type": "atomic"},
            "env": {"type": "array", "items": with(r("EnvVar"), json!({"default": {}})),
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
            "ports": {"type": "array", "items": with(r("ContainerPort"), json!({"default": {}})),
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                "x-kubernetes-patch-merge-key": "containerPort", "x-kubernetes-patch-strategy": "merge"},
            "resources": {"type": "object", "properties": {
                "limits": {"type": "object", "additionalProperties": r("Quantity")}}},
        }},
        "EnvVar": {"type": "object", "properties": {"name": string(), "value": string()}},
        "ContainerPort": {"type": "object", "properties": {
            "containerPort": {"type": "integer", "default": 0}, "name": string(),
            "protocol": {"type": "string", "default": "TCP"}}},
        "Volume": {"type": "object", "properties": {
            "name": string(),
            "emptyDir": {"type": "object", "properties": {"medium": string()}},
            "configMap": {"type": "object", "properties": {"name": string()}}}},
        "Service": {"type": "object", "properties": {
            "apiVersion": string(), "kind": string(),
            "metadata": with(r("ObjectMeta"), json!({"default": {}})),
            "spec": with(r("ServiceSpec"), json!({"default": {}}))}},
        "ServiceSpec": {"type": "object", "properties": {
            "type": string(),
            "selector": {"type": "object", "additionalProperties": string(), "x-kubernetes-map-type": "atomic"},
            "ports": {"type": "array", "items": with(r("ServicePort"), json!({"default": {}})),
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
                "x-kubernetes-patch-merge-key": "port", "x-kubernetes-patch-strategy": "merge"}}},
        "ServicePort": {"type": "object", "properties": {
            "name": string(), "port": {"type": "integer", "default": 0},
            "protocol": {"type": "string", "default": "TCP"}, "targetPort": r("IntOrString")}},
    });
    match defs {
        Value::Object(m) => m,
        _ => unreachable!("literal object"),
    }
}

/// The node of definition `name` in `defs`.
pub(crate) fn node<'a>(defs: &'a Map<String, Value>, name: &str) -> SchemaNode<'a> {
    SchemaNode::named(name, defs).expect("known definition")
}
