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
