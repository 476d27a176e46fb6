//! `meta.k8s.io/v1` Table and PartialObjectMetadata renderings of objects,
//! what `kubectl get` asks for.

use serde_json::{Value, json};
use skiff_api::kinds::KindInfo;

/// The metadata-only form of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn column_definitions(kind: &KindInfo) -> Vec<Value> {
    let columns = match &kind.custom {
        Some(c) => skiff_api::table::crd_columns(&c.printer_columns).into(),
        None => skiff_api::table::columns(&kind.group, &kind.kind),
    };
    columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

fn row(kind: &KindInfo, obj: &Value, now: jiff::Timestamp, include_object: &str) -> Value {
    let cells = match &kind.custom {
        Some(c) => skiff_api::table::crd_cells(&c.printer_columns, obj, now),
        None => skiff_api::table::cells(&kind.group, &kind.kind, obj, now),
    };
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => partial_metadata(obj),
    };
    json!({"cells": cells, "object": object})
}

/// A Table of `objects`; `include_object` is the `includeObject` query
/// parameter (`None`, `Metadata` (default) or `Object`).
pub fn table<'a>(
    kind: &KindInfo,
    objects: impl Iterator<Item = &'a Value>,
    list_meta: Value,
    include_object: &str,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects.map(|o| row(kind, o, now, include_object)).collect();
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": if with_columns { Value::Array(column_definitions(kind)) } else { Value::Array(vec![]) },
        "rows": rows,
    });
    if !with_columns && let Some(o) = t.as_object_mut() {
        o.insert("columnDefinitions".into(), Value::Null);
    }
    t
}
