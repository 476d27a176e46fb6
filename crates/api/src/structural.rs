//! Validation of custom resources against their CRD's structural OpenAPI
//! v3 schema (`openAPIV3Schema`), with upstream's error wording
//! (`spec.size: Invalid value: "string": spec.size in body must be of
//! type integer: "string"`).
//!
//! Unknown fields are not this module's concern: they are pruned before
//! validation. CEL rules (`x-kubernetes-validations`) are not evaluated.

use serde_json::Value;

use crate::validation::{ErrorType, FieldError};

/// Validates `obj` against `schema`; `path` names `obj` in messages
/// (empty for the root).
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(schema, obj, "", &mut errs);
    errs
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(path: &str, value: &Value, detail: String) -> FieldError {
    FieldError::invalid(path, shown(value), detail)
}

/// Values are shown as upstream does: scalars as they are, composites by
/// their type.
fn shown(v: &Value) -> Value {
    match v {
        Value::Object(_) => Value::String("object".into()),
        Value::Array(_) => Value::String("array".into()),
        other => other.clone(),
    }
}

fn body_path(path: &str) -> &str {
    if path.is_empty() { "body" } else { path }
}

fn walk(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(s) = schema.as_object() else {
        return;
    };
    if v.is_null() {
        if s.get("nullable").and_then(Value::as_bool) == Some(true) {
            return;
        }
        if s.get("type").is_some() {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body must be of type {}: \"null\"",
                    body_path(path),
                    s["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    let int_or_string = s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
    if let Some(want) = s.get("type").and_then(Value::as_str) {
        let got = type_name(v);
        let ok = got == want
            || (want == "number" && got == "integer")
            || (int_or_string && matches!(got, "integer" | "string"));
        if !ok {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body must be of type {want}: \"{got}\"",
                    body_path(path)
                ),
            ));
            return;
        }
    } else if int_or_string && !matches!(type_name(v), "integer" | "string") {
        errs.push(invalid(
            path,
            v,
            format!(
                "{} in body must be of type integer,string: \"{}\"",
                body_path(path),
                type_name(v)
            ),
        ));
        return;
    }
    if let Some(options) = s.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        errs.push(FieldError {
            kind: ErrorType::NotSupported,
            field: path.to_string(),
            value: Some(shown(v)),
            detail: format!("supported values: {}", list.join(", ")),
        });
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl_max = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            let excl_min = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let word = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                errs.push(invalid(
                    path,
                    v,
                    format!("{} in body should be {word} {max}", body_path(path)),
                ));
            }
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let word = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                errs.push(invalid(
                    path,
                    v,
                    format!("{} in body should be {word} {min}", body_path(path)),
                ));
            }
            if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
                && m > 0.0
                && (x / m).fract() != 0.0
            {
                errs.push(invalid(
                    path,
                    v,
                    format!("{} in body should be a multiple of {m}", body_path(path)),
                ));
            }
        }
        Value::String(text) => {
            let len = text.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push(FieldError {
                    kind: ErrorType::TooLong,
                    field: path.to_string(),
                    value: None,
                    detail: format!("may not be more than {max} bytes"),
                });
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errs.push(invalid(
                    path,
                    v,
                    format!(
                        "{} in body should be at least {min} chars long",
                        body_path(path)
                    ),
                ));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(text)
            {
                errs.push(invalid(
                    path,
                    v,
                    format!("{} in body should match '{p}'", body_path(path)),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                errs.push(FieldError {
                    kind: ErrorType::TooMany,
                    field: path.to_string(),
                    value: Some(Value::from(items.len())),
                    detail: format!("must have at most {max} items"),
                });
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errs.push(invalid(
                    path,
                    v,
                    format!(
                        "{} in body should have at least {min} items",
                        body_path(path)
                    ),
                ));
            }
            if s.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
                for (i, a) in items.iter().enumerate() {
                    if items[..i].contains(a) {
                        errs.push(FieldError {
                            kind: ErrorType::Duplicate,
                            field: format!("{path}[{i}]"),
                            value: Some(shown(a)),
                            detail: String::new(),
                        });
                    }
                }
            }
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => {
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = r.as_str()
                    && !map.contains_key(r)
                {
                    errs.push(FieldError::required(child(path, r), ""));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, val) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => walk(ps, val, &child(path, k), errs),
                    None => {
                        if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                            walk(ap, val, &child(path, k), errs);
                        }
                    }
                }
            }
            if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
                && map.len() as u64 > max
            {
                errs.push(FieldError {
                    kind: ErrorType::TooMany,
                    field: path.to_string(),
                    value: Some(Value::from(map.len())),
                    detail: format!("must have at most {max} items"),
                });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "color": {"type": "string", "enum": ["red", "blue"]},
            "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
            "port": {"x-kubernetes-int-or-string": true},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        }}}})
    }

    fn messages(obj: Value) -> Vec<String> {
        validate(&schema(), &obj)
            .iter()
            .map(FieldError::message)
            .collect()
    }

    #[test]
    fn accepts_valid_objects() {
        let ok = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "a"},
            "spec": {"size": 3, "color": "red", "name": "abc", "port": "http", "tags": ["a"], "labels": {"k": "v"}}});
        assert!(messages(ok).is_empty());
    }

    #[test]
    fn reports_upstream_messages() {
        let errs = messages(json!({"spec": {"size": "big"}}));
        assert_eq!(
            errs,
            [
                r#"spec.size: Invalid value: "big": spec.size in body must be of type integer: "string""#
            ]
        );
        let errs = messages(json!({"spec": {"size": 11, "color": "green"}}));
        assert!(errs.contains(&"spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10".to_string()), "{errs:?}");
        assert!(
            errs.contains(
                &r#"spec.color: Unsupported value: "green": supported values: "red", "blue""#
                    .to_string()
            ),
            "{errs:?}"
        );
        let errs = messages(json!({"spec": {}}));
        assert_eq!(errs, ["spec.size: Required value"]);
        let errs = messages(
            json!({"spec": {"size": 1, "port": true, "tags": ["a", "b", "c"], "labels": {"k": 1}}}),
        );
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
