//! Unknown fields, for `fieldValidation=Strict` (reject) and `Warn`.
//!
//! Upstream finds these while decoding into Go structs (built-in kinds) or
//! while pruning (custom resources). We find them by walking the object
//! beside its OpenAPI schema, with pruning's rules: a property-less,
//! `additionalProperties`-less `type: object` is closed; a schema without a
//! `type` (int-or-string, quantity, free-form JSON) accepts anything.

use serde_json::Value;

use crate::schemas::Schemas;

/// Values nested deeper than this are not inspected. serde_json refuses to
/// parse more than 128 levels, so real objects never get here.
const MAX_DEPTH: usize = 256;

/// Returns the path of every field of `value` that schema `root` (a
/// definition in `schemas`) does not declare, in document order, e.g.
/// `spec.foo` or `spec.containers[0].imagePullPolizy`. Upstream's message
/// for each is `unknown field "<path>"`.
///
/// Maps (`additionalProperties`) accept any key and check their values;
/// `x-kubernetes-preserve-unknown-fields` accepts any key and still checks
/// declared properties; `x-kubernetes-embedded-resource` objects always
/// accept `apiVersion`, `kind` and `metadata`. Type mismatches are not
/// reported: that is validation's job. An unknown `root` yields nothing.
pub fn unknown_fields(schemas: &Schemas, root: &str, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(schema) = schemas.get(root) {
        let mut walk = Walk {
            schemas,
            path: String::new(),
            out: &mut out,
        };
        walk.value(schema, value, 0);
    }
    out
}

struct Walk<'a> {
    schemas: &'a Schemas,
    path: String,
    out: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn value(&mut self, schema: &Value, value: &Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let schema = self.schemas.resolve(schema);
        match value {
            Value::Object(fields) => {
                let props = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
                if props.is_none() && additional.is_none() && !is_object {
                    return;
                }
                let flag = |name: &str| schema.get(name).and_then(Value::as_bool) == Some(true);
                let preserve = flag("x-kubernetes-preserve-unknown-fields");
                let embedded = flag("x-kubernetes-embedded-resource");
                for (key, field) in fields {
                    let len = self.path.len();
                    if len > 0 {
                        self.path.push('.');
                    }
                    self.path.push_str(key);
                    if let Some(prop) = props.and_then(|p| p.get(key)) {
                        self.value(prop, field, depth + 1);
                    } else if let Some(map_values @ Value::Object(_)) = additional {
                        self.value(map_values, field, depth + 1);
                    } else if !(preserve
                        || additional == Some(&Value::Bool(true))
                        || embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
                    {
                        self.out.push(self.path.clone());
                    }
                    self.path.truncate(len);
                }
            }
            Value::Array(items) => {
                let Some(item_schema) = schema.get("items") else {
                    return;
                };
                for (i, item) in items.iter().enumerate() {
                    let len = self.path.len();
                    self.path.push_str(&format!("[{i}]"));
                    self.value(item_schema, item, depth + 1);
                    self.path.truncate(len);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kinds::{GroupVersion, KindInfo};

    fn pod_schemas() -> Schemas {
        Schemas::for_group_version(
            &GroupVersion::new("", "v1"),
            &[KindInfo::new("", "v1", "Pod", "pods", true)],
        )
    }

    const POD: &str = "io.k8s.api.core.v1.Pod";

    #[test]
    fn finds_misspelled_and_invented_fields() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": { "name": "p", "labels": { "app": "x" }, "annotations": { "a/b": "c" }, "nmae": "typo" },
            "spec": {
                "foo": 1,
                "containers": [
                    { "name": "a", "image": "busybox", "imagePullPolizy": "Always" },
                    {
                        "name": "b",
                        "image": "busybox",
                        "ports": [{ "containerPort": 80, "protocol": "TCP" }],
                        "livenessProbe": { "httpGet": { "port": "http", "path": "/" } },
                        "resources": { "limits": { "cpu": "500m", "memory": 1024 }, "requests": { "cpu": 0.5 } },
                        "env": [{ "name": "X", "valueFrom": { "fieldRef": { "fieldPath": "x", "bogus": true } } }],
                    },
                ],
            },
            "status": { "phase": "Running", "podIP": "10.0.0.1" },
        });
        assert_eq!(
            unknown_fields(&pod_schemas(), POD, &pod),
            [
                "metadata.nmae",
                "spec.foo",
                "spec.containers[0].imagePullPolizy",
                "spec.containers[1].env[0].valueFrom.fieldRef.bogus"
            ]
        );
    }

    #[test]
    fn accepts_maps_int_or_string_quantities_and_free_form() {
        let pod = json!({
            "metadata": {
                "labels": { "any/key": "v" },
                "managedFields": [{ "manager": "m", "fieldsV1": { "f:metadata": { "f:labels": {} } } }],
            },
            "spec": {
                "containers": [{
                    "name": "a",
                    "ports": [{ "containerPort": 8080 }],
                    "readinessProbe": { "tcpSocket": { "port": 8080 } },
                    "resources": { "limits": { "nvidia.com/gpu": "1" } },
                }],
                "nodeSelector": { "disk": "ssd" },
            },
            "status": null,
        });
        assert_eq!(
            unknown_fields(&pod_schemas(), POD, &pod),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unknown_root_and_non_objects_yield_nothing() {
        let s = pod_schemas();
        assert!(unknown_fields(&s, "no.such.Kind", &json!({ "x": 1 })).is_empty());
        assert!(unknown_fields(&s, POD, &json!("a string")).is_empty());
        assert!(unknown_fields(&s, POD, &json!({ "spec": "not an object" })).is_empty());
    }

    #[test]
    fn custom_resources_follow_pruning_rules() {
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "closed": { "type": "object" },
                        "open": { "type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": { "n": { "type": "object" } } },
                        "port": { "x-kubernetes-int-or-string": true },
                        "tags": { "type": "object", "additionalProperties": { "type": "string" } },
                        "template": { "type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": false },
                    },
                },
            },
        });
        let crd = KindInfo::new("example.com", "v1", "Widget", "widgets", true).with_schema(schema);
        let s = Schemas::for_group_version(&GroupVersion::new("example.com", "v1"), &[crd]);
        let obj = json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": { "name": "w", "bogus": 1 },
            "spec": {
                "closed": { "x": 1 },
                "open": { "anything": { "deep": 1 }, "n": { "y": 2 } },
                "port": { "weird": 1 },
                "tags": { "a": "b" },
                "template": { "apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {} },
                "other": 1,
            },
        });
        assert_eq!(
            unknown_fields(&s, "com.example.v1.Widget", &obj),
            [
                "metadata.bogus",
                "spec.closed.x",
                "spec.open.n.y",
                "spec.template.spec",
                "spec.other"
            ]
        );
    }
}
