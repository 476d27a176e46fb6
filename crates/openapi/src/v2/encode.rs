//! Swagger 2.0 protobuf from OpenAPI v3 JSON documents.

use serde_json::{Map, Value};

use super::wire::Msg;

const V3_REF: &str = "#/components/schemas/";
const V2_REF: &str = "#/definitions/";

/// A vendor extension (`x-...`) value: gnostic keeps them as YAML text,
/// and JSON is YAML.
fn named_any(name: &str, value: &Value) -> Msg {
    let mut any = Msg::new();
    any.string(2, &value.to_string());
    let mut named = Msg::new();
    named.string(1, name).message(2, any);
    named
}

fn any(value: &Value) -> Msg {
    let mut any = Msg::new();
    any.string(2, &value.to_string());
    any
}

fn extensions(obj: &Map<String, Value>, field: u32, into: &mut Msg) {
    for (k, v) in obj {
        if k.starts_with("x-") {
            into.message(field, named_any(k, v));
        }
    }
}

fn reference(r: &str) -> String {
    match r.strip_prefix(V3_REF) {
        Some(name) => format!("{V2_REF}{name}"),
        None => r.to_string(),
    }
}

/// One schema. v3-only shapes are mapped to what upstream's v2 spec shows:
/// a single-`$ref` `allOf` becomes a `$ref`, `oneOf` (int-or-string,
/// quantities) becomes a string.
fn schema(s: &Value) -> Msg {
    let mut m = Msg::new();
    let Some(obj) = s.as_object() else {
        return m;
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        m.string(1, &reference(r));
    }
    if let Some([single]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        && let Some(r) = single.get("$ref").and_then(Value::as_str)
    {
        m.string(1, &reference(r));
    }
    let str_of = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    let mut format = str_of("format").to_string();
    let mut types: Vec<String> = match obj.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    if obj.contains_key("oneOf") && types.is_empty() {
        types.push("string".into());
        if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) && format.is_empty() {
            format = "int-or-string".into();
        }
    }
    m.string(2, &format);
    m.string(3, str_of("title"));
    m.string(4, str_of("description"));
    if let Some(d) = obj.get("default") {
        m.message(5, any(d));
    }
    if let Some(v) = obj.get("maximum").and_then(Value::as_f64) {
        m.double(7, v);
    }
    if let Some(v) = obj.get("minimum").and_then(Value::as_f64) {
        m.double(9, v);
    }
    m.int64(
        11,
        obj.get("maxLength").and_then(Value::as_i64).unwrap_or(0),
    );
    m.int64(
        12,
        obj.get("minLength").and_then(Value::as_i64).unwrap_or(0),
    );
    m.string(13, str_of("pattern"));
    m.int64(14, obj.get("maxItems").and_then(Value::as_i64).unwrap_or(0));
    m.int64(15, obj.get("minItems").and_then(Value::as_i64).unwrap_or(0));
    m.boolean(
        16,
        obj.get("uniqueItems")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    for r in obj
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(r) = r.as_str() {
            m.string(19, r);
        }
    }
    for e in obj
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, any(e));
    }
    match obj.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::new();
            item.boolean(2, *b);
            m.message(21, item);
        }
        Some(v @ Value::Object(_)) => {
            let mut item = Msg::new();
            item.message(1, schema(v));
            m.message(21, item);
        }
        _ => {}
    }
    if !types.is_empty() {
        let mut t = Msg::new();
        for ty in &types {
            t.string(1, ty);
        }
        m.message(22, t);
    }
    if let Some(items) = obj.get("items") {
        let mut it = Msg::new();
        it.message(1, schema(items));
        m.message(23, it);
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array)
        && all.len() > 1
    {
        for s in all {
            m.message(24, schema(s));
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let mut p = Msg::new();
        for (name, s) in props {
            let mut named = Msg::new();
            named.string(1, name).message(2, schema(s));
            p.message(1, named);
        }
        m.message(25, p);
    }
    extensions(obj, 31, &mut m);
    m
}

fn parameter(p: &Value) -> Option<Msg> {
    let obj = p.as_object()?;
    let name = obj.get("name").and_then(Value::as_str)?;
    let location = obj.get("in").and_then(Value::as_str)?;
    let required = obj
        .get("required")
        .and_then(Value::as_bool)
        .unwrap_or(location == "path");
    let description = obj
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ty = p
        .pointer("/schema/type")
        .and_then(Value::as_str)
        .unwrap_or("string");
    let unique = p
        .pointer("/schema/uniqueItems")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut sub = Msg::new();
    let field = match location {
        "path" => {
            sub.boolean(1, required)
                .string(2, location)
                .string(3, description)
                .string(4, name)
                .string(5, ty);
            4
        }
        "query" => {
            sub.boolean(1, required)
                .string(2, location)
                .string(3, description)
                .string(4, name)
                .string(6, ty)
                .boolean(20, unique);
            3
        }
        _ => return None,
    };
    let mut non_body = Msg::new();
    non_body.message(field, sub);
    let mut param = Msg::new();
    param.message(2, non_body);
    let mut item = Msg::new();
    item.message(1, param);
    Some(item)
}

fn body_parameter(request_body: &Value) -> Option<Msg> {
    let content = request_body.get("content")?.as_object()?;
    let s = content.values().find_map(|c| c.get("schema"))?;
    let mut body = Msg::new();
    body.string(2, "body")
        .string(3, "body")
        .boolean(4, true)
        .message(5, schema(s));
    let mut param = Msg::new();
    param.message(1, body);
    let mut item = Msg::new();
    item.message(1, param);
    Some(item)
}

fn operation(op: &Value, shared: &[Value]) -> Msg {
    let mut m = Msg::new();
    let Some(obj) = op.as_object() else {
        return m;
    };
    for t in obj
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = t.as_str() {
            m.string(1, t);
        }
    }
    m.string(
        3,
        obj.get("description")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    m.string(
        5,
        obj.get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    if let Some(content) = op
        .pointer("/requestBody/content")
        .and_then(Value::as_object)
    {
        for ct in content.keys() {
            m.string(7, ct);
        }
    }
    m.string(6, "application/json");
    for p in shared.iter().chain(
        obj.get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    ) {
        if let Some(p) = parameter(p) {
            m.message(8, p);
        }
    }
    if let Some(body) = obj.get("requestBody").and_then(body_parameter) {
        m.message(8, body);
    }
    let mut responses = Msg::new();
    for (code, r) in obj
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut resp = Msg::new();
        resp.string(
            1,
            r.get("description").and_then(Value::as_str).unwrap_or("OK"),
        );
        if let Some(s) = r
            .get("content")
            .and_then(Value::as_object)
            .and_then(|c| c.values().find_map(|c| c.get("schema")))
        {
            let mut item = Msg::new();
            item.message(1, schema(s));
            resp.message(2, item);
        }
        let mut value = Msg::new();
        value.message(1, resp);
        let mut named = Msg::new();
        named.string(1, code).message(2, value);
        responses.message(1, named);
    }
    m.message(9, responses);
    m.boolean(
        11,
        obj.get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    extensions(obj, 13, &mut m);
    m
}

/// The Swagger 2.0 document of every group-version, as protobuf.
pub fn document_protobuf(documents: &[Value], version: &str) -> Vec<u8> {
    let mut doc = Msg::new();
    doc.string(1, "2.0");
    let mut info = Msg::new();
    info.string(1, "Kubernetes").string(2, version);
    doc.message(2, info);
    let mut paths = Msg::new();
    let mut definitions = Msg::new();
    let mut seen = std::collections::HashSet::new();
    for d in documents {
        for (path, item) in d
            .get("paths")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut pi = Msg::new();
            for (field, method) in [
                (2, "get"),
                (3, "put"),
                (4, "post"),
                (5, "delete"),
                (8, "patch"),
            ] {
                if let Some(op) = item.get(method) {
                    pi.message(field, operation(op, &shared));
                }
            }
            let mut named = Msg::new();
            named.string(1, path).message(2, pi);
            paths.message(2, named);
        }
        for (name, s) in d
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if seen.insert(name.clone()) {
                let mut named = Msg::new();
                named.string(1, name).message(2, schema(s));
                definitions.message(1, named);
            }
        }
    }
    doc.message(8, paths);
    doc.message(9, definitions);
    doc.into_bytes()
}
